// Renders the figures of a `make bench` JSON (default out/bench.json) as the Markdown table of
// the README's "Benchmarks" section: `node bench/markdown.mjs [file]`.
import { readFileSync } from "node:fs";

const file = process.argv[2] || "out/bench.json";
const j = JSON.parse(readFileSync(file, "utf8"));
const na = (v) => v == null || (typeof v === "object" && "na" in v);
const f = (v, d = 1) => (na(v) || Number.isNaN(v) ? "n/a" : Number(v).toFixed(d));
const kb = (b) => (na(b) ? "n/a" : (b / 1024).toFixed(1) + " KB");
const mm = (a, d = 1) => (a ? `${f(a[0], d)}–${f(a[1], d)}` : "n/a");
const rate = (x) => (x >= 1e6 ? (x / 1e6).toFixed(2) + " M/s" : x >= 1e4 ? (x / 1e3).toFixed(1) + " k/s" : x.toFixed(0) + "/s");
const ratio = (x) => (na(x) ? "n/a" : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2));
const rows = [];
const row = (what, value, ref) => rows.push(`| ${what} | ${value} | ${ref} |`);

const s = j.size;
if (!na(s)) {
  const peer = (name) => s.peers.find((p) => p.name.startsWith(name));
  const seg = peer("Segment"), rud = peer("RudderStack");
  row("wasm + JS an ESM page loads, gzip -9 (brotli)", `${kb(s.esmPage.total.gzip)} (${kb(s.esmPage.total.brotli)})`,
    `Segment ${seg.version} ${kb(seg.gzip)} → ×${f(seg.ratioGzip, 2)}; RudderStack ${rud.version} ${kb(rud.gzip)} → ×${f(rud.ratioGzip, 2)}; budget ≤ 45 KB`);
  row("wasm + JS + snippet a tag-manager page loads, gzip -9", kb(s.scriptTagPage.total.gzip), "budget ≤ 45 KB");
  row("tag-manager snippet, gzip -9", `${s.snippet.gzip} B`, "budget ≤ 1 KB");
}
const st = j.startup;
if (!na(st)) {
  for (const c of st.configs) {
    row(`\`init\` to ready, ${c.name} (median / p95, ${c.loads} loads)`, `${f(c.median, 1)} / ${f(c.p95, 1)} ms`,
      `after wasm compile: median ${f(c.afterWasmMedian, 1)}, fastest ${f(c.afterWasmMin, 1)} ms; run medians ${mm(c.medianMinMax)} ms${c.warmedLoads != null ? `; idle compilation before init in ${c.warmedLoads} of ${c.loads} loads` : ""}${c.name === "heavy profile, 100 segments" ? "; budget ≤ 10 ms" : ""}`);
  }
}
const t = j.track;
if (!na(t)) {
  for (const c of t.configs) {
    row(`\`track()\`, ${c.name} (p50 / p99 / max)`, `${f(c.p50)} / ${f(c.p99)} / ${f(c.max, 0)} µs`,
      `mean ${f(c.mean)} µs; p99 over runs ${mm(c.p99MinMax)} µs${c.name === "100 segments" ? "; budget p99 ≤ 50 µs" : ""}`);
  }
  // The machine's share: the same loop, pages and timer around no Keystone call at all.
  const c = t.configs.find((c) => c.name === "100 segments");
  if (c && c.floor)
    row("floor: the same loop around a function that does nothing (p50 / p99 / max)", `${f(c.floor.p50)} / ${f(c.floor.p99)} / ${f(c.floor.max, 0)} µs`,
      `a busy-wait as long as \`track()\`'s p50 (${f(c.busy.waitUs, 0)} µs): ${f(c.busy.p50)} / ${f(c.busy.p99)} / ${f(c.busy.max, 0)} µs; same pages as "100 segments"`);
}
const e = j.evaluation;
if (!na(e)) {
  const gb = e.growthbook;
  row(`GrowthBook ${gb.version} \`evalCondition\` (JS), ${e.conditions} conditions × ${e.profiles} profiles`, rate(gb.evalsPerSec), `runs ${rate(gb.minMax[0])}–${rate(gb.minMax[1])}`);
  const ks = (label, x, r, agree, goal) =>
    row(label, na(x) ? "n/a" : `${rate(x.evalsPerSec)} (×${ratio(r)} GrowthBook)`, na(x) ? x.na : `runs ${rate(x.minMax[0])}–${rate(x.minMax[1])}${x.profilesEvaluated && x.profilesEvaluated < e.profiles ? ` (first ${x.profilesEvaluated} profiles: time cap)` : ""}; ${agree}/${e.conditions} conditions agree; ${goal}`);
  ks("Keystone `evalCondition`, JS→wasm per call", e.keystoneCall, e.ratioCall, e.agreement.keystoneCall, "goal ≥ ×1");
  ks("same, `savedGroups` passed only where used", e.keystoneCallGroupsWhereUsed, e.ratioCallGroupsWhereUsed, e.agreement.keystoneCallGroupsWhereUsed, "—");
  ks("Keystone, profiles and conditions held in wasm", e.keystoneHeld, e.ratioHeld, e.agreement.keystoneHeld, "goal ≥ ×10");
  if (e.byVisitor && !na(e.byVisitor.growthbook)) {
    const v = e.byVisitor;
    row("visitor-major order (all conditions for one visitor, then the next): GrowthBook", rate(v.growthbook.evalsPerSec), `runs ${rate(v.growthbook.minMax[0])}–${rate(v.growthbook.minMax[1])}`);
    ks("visitor-major order: Keystone `evalCondition` per call", v.keystoneCall, v.ratio, v.agree, "per call, only the attributes the condition reads cross into wasm (as JSON text)");
  }
  const i = e.incremental;
  row("incremental: one `track()`, heavy visitor, 100 segments (mean)", `${f(i.trackMeanUs)} µs`, `from scratch (\`loadSegments\` of the same 100): ${f(i.fromScratchMs, 2)} ms → ×${f(i.ratio, 0)}; \`refresh()\` ${f(i.refreshUs)} µs`);
}
const sg = j.storage;
if (!na(sg)) {
  row(`stored profile, heavy visitor (${sg.events} events over 90 days)`, `${sg.profileBytes} B (${kb(sg.profileBytes)})`, `all keys ${sg.totalBytes} B; budget ≤ 64 KB`);
  row("profile load / save", `${sg.loadMs < 0 ? "−" + f(-sg.loadMs, 2) : "+" + f(sg.loadMs, 2)} / ${f(sg.saveMs, 2)} ms`, `load = heavy minus empty init (a difference of two noisy medians); save = ${sg.saveHow}`);
}
const m = j.memory;
if (!na(m)) row("wasm linear memory after the heavy-profile run", kb(m.heavyAfter1000Tracks), `empty profile after init: ${kb(m.emptyAfterInit)}`);

console.log(`Figures of \`${j.meta.command}\`, ${j.meta.date.slice(0, 16).replace("T", " ")} UTC, ${j.meta.browser}, ${j.meta.cpus} cores (load average ${j.meta.loadavg.map((x) => x.toFixed(1)).join(" ")} — shared machine, timings are noisy), ${j.meta.runs} runs, performance.now() step ${f(j.meta.timerResolutionUs, 0)} µs (cross-origin isolated: ${j.meta.crossOriginIsolated}).\n`);
console.log("| figure | Keystone | peer / budget / spread |\n|---|---|---|");
console.log(rows.join("\n"));
