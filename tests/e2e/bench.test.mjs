// Smoke test of `make bench`: runs the benchmark in its quick mode with tiny inputs and checks
// that the JSON it writes has every section and no section failed. Asserts nothing about time.
// Alone on 2 cores it takes ~20 s; the generous timeout is for machines shared with other work.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = join(root, "out", "bench-smoke.json");

test("the benchmark runs in quick mode and reports every section", { timeout: 330000 }, () => {
  rmSync(out, { force: true });
  const r = spawnSync(process.execPath, [join(root, "bench", "run.mjs")], {
    cwd: root,
    encoding: "utf8",
    timeout: 300000,
    env: {
      ...process.env,
      BENCH_QUICK: "1",
      BENCH_OUT: out,
      BENCH_LOADS: "1",
      BENCH_RUNS: "1",
      BENCH_CALLS: "100",
      BENCH_HEAVY_EVENTS: "60",
      BENCH_PROFILES: "50",
      BENCH_EVAL_ROUNDS: "1",
    },
  });
  assert.equal(r.status, 0, `bench/run.mjs exited ${r.status} (signal ${r.signal})\n${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(readFileSync(out, "utf8"));
  assert.deepEqual(j.errors, {}, "no section failed");
  for (const k of ["meta", "size", "startup", "track", "evaluation", "storage", "memory"]) {
    assert.ok(j[k] && !("na" in j[k]), `section ${k} is present`);
  }
  assert.ok(j.size.esmPage.total.gzip > 0 && j.size.snippet.gzip > 0);
  assert.ok(j.size.esmPage.files.some((f) => f.file.endsWith(".wasm")), "the ESM page loads the wasm");
  assert.equal(j.size.peers.length, 3);
  assert.ok(j.size.peers.every((p) => p.gzip > 0), "every peer bundle was measured");
  assert.equal(j.startup.configs.length, 4);
  assert.ok(j.startup.configs.every((c) => c.loads === 1 && c.median > 0));
  assert.deepEqual(j.track.configs.map((c) => [c.segments, c.perTask]), [[0, false], [10, false], [100, false], [100, false], [100, true]]);
  assert.ok(j.track.configs.every((c) => c.calls === (c.perTask ? 10 : 100) && c.p99 >= c.p50 && c.max >= c.p99));
  // The machine's floor, measured in the same pages: a function that does nothing, and a
  // busy-wait as long as track()'s p50 (which takes at least that long).
  assert.ok(j.track.configs.every((c) => c.floor.p99 >= c.floor.p50 && c.busy.waitUs === c.p50 && c.busy.p50 >= c.p50));
  assert.equal(j.evaluation.conditions, 20);
  assert.ok(j.evaluation.growthbook.evalsPerSec > 0);
  assert.ok(j.storage.profileBytes > 0, "the heavy visitor's profile was stored");
  assert.ok(j.memory.heavyAfter1000Tracks > 0, "wasm memory was read");
  assert.match(r.stdout, /1\. SIZE[\s\S]*2\. START-UP[\s\S]*3\. PER EVENT[\s\S]*4\. EVALUATION[\s\S]*5\. STORAGE[\s\S]*6\. MEMORY/);
});
