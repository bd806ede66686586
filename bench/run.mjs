// `make bench`: Keystone's size, start-up, per-event cost, condition evaluation against
// GrowthBook, storage and memory, measured in headless Chromium (playwright-core), printed as a
// table and written as JSON. Asserts nothing about time. Knobs: see bench/README.md.
//
// Robust on purpose: each figure whose API the package does not offer (yet) is reported as
// "n/a" with the reason, instead of failing the run.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { build } from "esbuild";
import { launch } from "../tests/e2e/harness.mjs";
import { CONDITIONS, definitions, eventMix, profiles, savedGroups } from "./data.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const QUICK = env.BENCH_QUICK === "1";
const num = (v, d) => (v != null && v !== "" && Number.isFinite(Number(v)) ? Number(v) : d);
const CFG = {
  quick: QUICK,
  runs: num(env.BENCH_RUNS, QUICK ? 1 : 3), // repetitions of every timed section (min–max)
  loads: num(env.BENCH_LOADS, QUICK ? 3 : 21), // page loads per start-up configuration, split over the runs
  calls: num(env.BENCH_CALLS, QUICK ? 500 : 10000), // track() calls per configuration and run
  heavyEvents: num(env.BENCH_HEAVY_EVENTS, QUICK ? 400 : 10000),
  heavyDays: 90,
  profiles: num(env.BENCH_PROFILES, QUICK ? 300 : 10000),
  evalRounds: num(env.BENCH_EVAL_ROUNDS, QUICK ? 1 : 3),
  evalCapMs: num(env.BENCH_EVAL_CAP_MS, 20000), // a runner slower than this per full pass evaluates fewer profiles
  out: env.BENCH_OUT || join(root, "out", "bench.json"),
};
const PKG_DIR = env.BENCH_PKG_DIR ? normalize(env.BENCH_PKG_DIR) : join(root, "pkg"); // the built package (pkg/)
const PKG = join(PKG_DIR, "dist");
const VARIANT = join(root, "target", "bench-bindgen"); // `make bench-pkg` (cargo feature `bench`)
const GEN = join(root, "target", "bench-gen"); // bundles made here (esbuild)
const NM = join(root, "node_modules");

// ---- statistics -----------------------------------------------------------------------------

const sorted = (a) => Float64Array.from(a).sort();
function pct(s, p) {
  if (!s.length) return null;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const median = (a) => pct(sorted(a), 50);
const minmax = (a) => (a.length ? [Math.min(...a), Math.max(...a)] : null);
const NA = (why) => ({ na: why });
const isNA = (v) => v == null || (typeof v === "object" && "na" in v);

// ---- sizes ------------------------------------------------------------------------------------

function sizeOfBuf(buf) {
  return {
    raw: buf.length,
    gzip: gzipSync(buf, { level: 9 }).length,
    brotli: brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}
const sizeOf = (p) => sizeOfBuf(readFileSync(p));
const addSizes = (list) => list.reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip, brotli: a.brotli + s.brotli }), { raw: 0, gzip: 0, brotli: 0 });
const version = (name) => JSON.parse(readFileSync(join(NM, name, "package.json"), "utf8")).version;

// ---- server -----------------------------------------------------------------------------------
// Same-origin pages served with COOP/COEP, so the page is cross-origin isolated and Chromium's
// performance.now() resolution is 5 µs instead of 100 µs.

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm" };
const MOUNTS = [
  ["/pkg/", PKG_DIR],
  ["/bench/", join(root, "bench", "pages")],
  ["/variant/", VARIANT],
  ["/gen/", GEN],
];
function startServer() {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    for (const [prefix, dir] of MOUNTS) {
      if (!url.pathname.startsWith(prefix)) continue;
      const file = normalize(join(dir, decodeURIComponent(url.pathname.slice(prefix.length))));
      if (!file.startsWith(dir)) break;
      try {
        const f = (await stat(file)).isDirectory() ? join(file, "index.html") : file;
        const body = await readFile(f);
        res.writeHead(200, {
          "content-type": TYPES[extname(f)] || "application/octet-stream",
          "cache-control": "no-store",
          "cross-origin-opener-policy": "same-origin",
          "cross-origin-embedder-policy": "require-corp",
          "cross-origin-resource-policy": "same-origin",
        });
        return res.end(body);
      } catch {
        break;
      }
    }
    // The collector a site may configure answers 200 (Keystone is run without an endpoint here).
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ url: `http://localhost:${server.address().port}`, close: () => new Promise((c) => { server.closeAllConnections?.(); server.close(() => c()); }) })));
}

// ---- page helpers -----------------------------------------------------------------------------

let browser, server;

async function openPage({ storageState, path = "/bench/index.html", clock } = {}) {
  const ctx = await browser.newContext(storageState ? { storageState } : {});
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  if (clock != null) await page.clock.install({ time: clock });
  await page.goto(server.url + path);
  if (path.startsWith("/bench/index.html")) {
    await page.waitForFunction(() => window.__ksLoaded === true);
    const err = await page.evaluate(() => window.__ksLoadError || null);
    if (err) throw new Error("the package did not load: " + err);
  }
  return { ctx, page, close: () => ctx.close() };
}

/** Keystone.init in the page (with `segments` when given); sets window.ks. Returns ms taken. */
function initInPage(page, { defs = null, options = {} } = {}) {
  return page.evaluate(async ({ defs, options }) => {
    const opts = Object.assign({}, options);
    if (defs) opts.segments = defs;
    const b = window.__bench;
    // An instance made before the call (the ESM entry's idle compilation) is not init's time.
    const w0 = b.wasmMs, warmed = b.wasmCalls > 0;
    const t0 = performance.now();
    const ks = await K.Keystone.init(opts);
    const t1 = performance.now();
    window.ks = ks;
    const compiled = b.compileStart != null;
    return {
      ms: t1 - t0, wasmMs: b.wasmMs - w0, warmed, segmentsNow: (ks.segments && ks.segments().length) ?? null,
      // Compilation started ahead of init (at import): its length, what of it init still waited
      // for, and import-to-ready (compile start → init resolved).
      compileMs: compiled ? b.compileMs : null, compileWaitMs: compiled ? Math.max(0, b.compileEnd - t0) : null, fromImportMs: compiled ? t1 - b.compileStart : null,
    };
  }, { defs, options });
}

const T0 = Date.now();
const log = (...a) => console.error(`[bench ${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a);

// ---- 0. builds the comparison bundles (esbuild; fast) ----------------------------------------

async function buildGenerated() {
  mkdirSync(GEN, { recursive: true });
  // GrowthBook's own evalCondition, bundled for the page.
  await build({
    stdin: { contents: 'export { evalCondition } from "@growthbook/growthbook";', resolveDir: root, loader: "js" },
    bundle: true, minify: true, format: "esm", target: ["es2022"], outfile: join(GEN, "growthbook-eval.js"), logLevel: "error",
  });
  // RudderStack's npm "modern" UMD build is not minified; its CDN serves the same build minified.
  const rsIn = join(NM, "@rudderstack", "analytics-js", "dist", "npm", "modern", "umd", "index.js");
  const rsOut = join(GEN, "rudderstack-modern.min.js");
  if (existsSync(rsOut) && (await stat(rsOut)).mtimeMs > (await stat(rsIn)).mtimeMs) return;
  await build({
    entryPoints: [rsIn],
    minify: true, outfile: rsOut, logLevel: "error", legalComments: "none",
  });
}

// ---- 1. size ----------------------------------------------------------------------------------

async function sectionSize() {
  const files = {};
  for (const f of ["keystone.js", "keystone_bg.wasm", "keystone.global.js", "snippet.js"]) {
    if (existsSync(join(PKG, f))) files[f] = sizeOf(join(PKG, f));
  }
  // What a page really loads: record the package requests of an ESM page and a snippet page.
  async function loaded(path, ready) {
    const { page, close } = await openPage({ path });
    const urls = new Set();
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith("/pkg/")) urls.add(u.pathname);
    });
    await ready(page);
    await page.waitForLoadState("networkidle");
    // Requests made before the listener was attached (the document's own scripts).
    const early = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname));
    for (const p of early) if (p.startsWith("/pkg/")) urls.add(p);
    await close();
    const list = [...urls].sort().map((p) => ({ file: p.replace(/^\/pkg\//, ""), ...sizeOf(join(PKG_DIR, p.slice(5))) }));
    return { files: list, total: addSizes(list) };
  }
  const esm = await loaded("/bench/index.html", (page) => page.evaluate(() => K.Keystone.init({})));
  const tag = await loaded("/bench/snippet.html", (page) => page.waitForFunction(() => window.keystone && window.keystone.__keystone && typeof window.keystone.segments === "function"));
  const peers = [
    {
      name: "Segment analytics-next",
      pkg: "@segment/analytics-next",
      file: "dist/umd/standalone.js",
      note: "the snippet's CDN script (analytics.min.js); more chunks load on demand per settings",
      path: join(NM, "@segment", "analytics-next", "dist", "umd", "standalone.js"),
    },
    {
      name: "RudderStack analytics-js v3",
      pkg: "@rudderstack/analytics-js",
      file: "dist/npm/modern/umd/index.js, minified with esbuild",
      note: "the build its CDN serves minified (rsa.min.js); plugins load on demand",
      path: join(GEN, "rudderstack-modern.min.js"),
    },
    {
      name: "GrowthBook (flags/targeting only)",
      pkg: "@growthbook/growthbook",
      file: "dist/bundles/index.min.js",
      note: "its script-tag bundle; not a CDP, listed for scale",
      path: join(NM, "@growthbook", "growthbook", "dist", "bundles", "index.min.js"),
    },
  ].map((p) => {
    const s = existsSync(p.path) ? sizeOf(p.path) : null;
    const { path, ...rest } = p;
    return { ...rest, version: version(p.pkg), ...(s || { na: "file missing" }), ratioGzip: s ? esm.total.gzip / s.gzip : null, ratioBrotli: s ? esm.total.brotli / s.brotli : null };
  });
  return { files, esmPage: esm, scriptTagPage: tag, snippet: files["snippet.js"] || NA("no snippet.js"), peers };
}

// ---- heavy visitor ----------------------------------------------------------------------------

/**
 * Makes the stored state of a heavy visitor through the public API: `heavyEvents` events over
 * `heavyDays` days in sessions (a page view then a few events), with the page's clock moved by
 * Playwright's clock API, 100 segments loaded. Returns Playwright's storageState (localStorage
 * and cookies), reused by every later page load.
 */
async function makeHeavy(defs) {
  const DAY = 86400000;
  const end = Date.now() - 60000;
  const start = end - CFG.heavyDays * DAY + 3600000;
  const { ctx, page, close } = await openPage({ clock: start });
  await initInPage(page, { defs });
  const mix = eventMix(97, 11);
  const perSession = 28; // ≈ 4 sessions a day over 90 days for 10,000 events
  const sessions = Math.ceil(CFG.heavyEvents / perSession);
  let made = 0;
  const t0 = Date.now();
  for (let s = 0; s < sessions && made < CFG.heavyEvents; s++) {
    await page.clock.setSystemTime(start + Math.floor(((end - start) * s) / sessions));
    const n = Math.min(perSession, CFG.heavyEvents - made);
    await page.evaluate(({ mix, n, offset }) => {
      for (let i = 0; i < n; i++) {
        const [name, props] = mix[(offset + i) % mix.length];
        if (name == null || i === 0) ks.page(props);
        else ks.track(name, props);
      }
    }, { mix, n, offset: made });
    made += n;
  }
  // Let the coalesced write run, then the page-hide flush.
  await page.clock.runFor(2000);
  await page.evaluate(() => {
    if (typeof ks.persistNow === "function") ks.persistNow();
    dispatchEvent(new Event("pagehide"));
  });
  const state = await ctx.storageState();
  await close();
  log(`heavy visitor: ${made} events over ${CFG.heavyDays} days made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { state, events: made };
}

function storedItems(state) {
  const origin = state.origins.find((o) => o.origin.startsWith(server.url)) || { localStorage: [] };
  return origin.localStorage.map(({ name, value }) => ({ name, chars: value.length, bytes: Buffer.byteLength(value, "utf8") }));
}

// ---- 2. start-up ------------------------------------------------------------------------------

async function sectionStartup(heavy, defs100) {
  const configs = [
    { name: "empty profile, 0 segments", state: null, defs: null },
    { name: "empty profile, 100 segments", state: null, defs: defs100 },
    { name: "heavy profile, 0 segments", state: heavy.state, defs: null },
    { name: "heavy profile, 100 segments", state: heavy.state, defs: defs100 },
  ];
  const out = [];
  for (const c of configs) {
    const all = [], wasm = [], after = [], runMedians = [], runP95 = [], compile = [], compileWait = [], fromImport = [];
    let warmed = 0;
    let segmentsHeld = null;
    const perRun = Math.ceil(CFG.loads / CFG.runs);
    for (let r = 0; r < CFG.runs; r++) {
      const run = [];
      for (let i = 0; i < perRun; i++) {
        const { page, close } = await openPage({ storageState: c.state || undefined });
        const res = await initInPage(page, { defs: c.defs });
        await close();
        run.push(res.ms);
        wasm.push(res.wasmMs);
        after.push(res.ms - res.wasmMs);
        warmed += res.warmed ? 1 : 0;
        if (res.compileMs != null) compile.push(res.compileMs), compileWait.push(res.compileWaitMs), fromImport.push(res.fromImportMs);
        segmentsHeld = res.segmentsNow;
      }
      all.push(...run);
      runMedians.push(median(run));
      runP95.push(pct(sorted(run), 95));
    }
    const s = sorted(all);
    out.push({
      name: c.name, loads: all.length, median: pct(s, 50), p95: pct(s, 95), min: s[0], runMedians, runP95,
      medianMinMax: minmax(runMedians), p95MinMax: minmax(runP95),
      wasmMedian: median(wasm), afterWasmMedian: median(after), afterWasmP95: pct(sorted(after), 95), afterWasmMin: sorted(after)[0],
      compileAtImportMedian: compile.length ? median(compile) : null, compileWaitMedian: compileWait.length ? median(compileWait) : null, importToReadyMedian: fromImport.length ? median(fromImport) : null,
      segmentsHeld, warmedLoads: warmed,
    });
    log(`start-up ${c.name}: median ${pct(s, 50).toFixed(2)} ms`);
  }
  return { unit: "ms", note: "Keystone.init() call to its Promise resolving, in the page (performance.now()); a fresh browser context per load (cold HTTP cache, wasm fetched and compiled each time; the ESM entry starts compiling at import, and compileAtImport/compileWait/importToReady show how much of it init waited for). 'after wasm' subtracts the time spent in WebAssembly.instantiate(Streaming) during init; warmedLoads: the loads where the ESM entry had instantiated the module in the page's idle time before init (its idle compilation), as a page that waits before init gets.", configs: out };
}

// ---- 3. per event -----------------------------------------------------------------------------

async function trackLoop(page, calls, mix, perTask) {
  return page.evaluate(async ({ calls, mix, perTask }) => {
    // The same loop times `f(name, properties)` for track() and for the floors below.
    const CHUNK = perTask ? 1 : 500;
    const stats = (times) => {
      times.sort();
      const at = (p) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)] * 1000;
      return { p50: at(50), p99: at(99), max: times[times.length - 1] * 1000, zeroes: times.filter((t) => t === 0).length };
    };
    const run = async (f) => {
      // Warm-up (JIT, first allocations) is not counted.
      for (let i = 0; i < 200; i++) {
        const [n, p] = mix[i % mix.length];
        f(n || "Page Ping", p);
      }
      const times = new Float64Array(calls);
      let total = 0;
      for (let start = 0; start < calls; start += CHUNK) {
        const end = Math.min(calls, start + CHUNK);
        const c0 = performance.now();
        for (let i = start; i < end; i++) {
          const [n, p] = mix[i % mix.length];
          const name = n || "Page Ping";
          const t0 = performance.now();
          f(name, p);
          times[i] = performance.now() - t0;
        }
        total += performance.now() - c0;
        // Yield like a real page between bursts (timers, microtasks, coalesced storage writes).
        await new Promise((r) => setTimeout(r, 0));
      }
      return { ...stats(times), mean: (total / calls) * 1000 };
    };
    const out = await run((n, p) => ks.track(n, p));
    // The machine's floor, in the same page with the same timer and loop: a function that does
    // nothing (the timer's own cost and steps), and one that busy-waits as long as track()'s
    // p50 (how often a call that long is interrupted by something else: other threads and
    // processes on the machine, the browser's own work). Neither touches Keystone.
    out.floor = await run(() => {});
    const wait = out.p50 / 1000;
    out.busy = await run(() => {
      const t0 = performance.now();
      while (performance.now() - t0 < wait);
    });
    out.busy.waitUs = out.p50;
    return out;
  }, { calls, mix, perTask });
}

async function sectionTrack(heavy) {
  const mix = eventMix(64, 5);
  const configs = [
    { name: "0 segments", n: 0, state: null },
    { name: "10 segments", n: 10, state: null },
    { name: "100 segments", n: 100, state: null },
    { name: "100 segments, heavy profile", n: 100, state: heavy.state },
    // As on a real page, where each event is its own task (a click, a navigation): the engine's
    // memory and the browser's timers are no longer in the CPU's caches when the call starts.
    { name: "100 segments, one call per task", n: 100, state: null, perTask: true },
  ];
  // One call per task waits for a timer after each call: a tenth of the calls.
  const calls = (c) => (c.perTask ? Math.max(1, Math.round(CFG.calls / 10)) : CFG.calls);
  const out = [];
  for (const c of configs) {
    const runs = [];
    for (let r = 0; r < CFG.runs; r++) {
      const { page, close } = await openPage({ storageState: c.state || undefined });
      await initInPage(page, { defs: c.n ? definitions(c.n) : null });
      runs.push(await trackLoop(page, calls(c), mix, c.perTask));
      await close();
    }
    const pick = (k, o) => runs.map((x) => (o ? x[o][k] : x[k]));
    const floor = (o) => ({ p50: median(pick("p50", o)), p99: median(pick("p99", o)), max: median(pick("max", o)), p99MinMax: minmax(pick("p99", o)) });
    out.push({
      name: c.name, segments: c.n, calls: calls(c), perTask: !!c.perTask, runs,
      p50: median(pick("p50")), p99: median(pick("p99")), max: median(pick("max")), mean: median(pick("mean")),
      p50MinMax: minmax(pick("p50")), p99MinMax: minmax(pick("p99")), maxMinMax: minmax(pick("max")), meanMinMax: minmax(pick("mean")),
      floor: floor("floor"), busy: { ...floor("busy"), waitUs: median(pick("waitUs", "busy")) },
    });
    log(`track ${c.name}: p50 ${out.at(-1).p50.toFixed(1)} µs, p99 ${out.at(-1).p99.toFixed(1)} µs`);
  }
  return { unit: "µs", note: "performance.now() around each ks.track() call, after 200 warm-up calls, in bursts of 500 with a macrotask yield between (one call per task: a setTimeout after each call); 'mean' is each burst's total time / calls (finer than the timer). 'floor': the same loop in the same page timing a function that does nothing; 'busy': one that busy-waits as long as track()'s p50.", configs: out };
}

// ---- 4. evaluation vs GrowthBook ------------------------------------------------------------

async function sectionEval(heavy, defs100, trackSection) {
  const docs = profiles(CFG.profiles, 42);
  const groups = savedGroups();
  const { page, close } = await openPage();
  const hasVariant = existsSync(join(VARIANT, "keystone.js")) && existsSync(join(VARIANT, "keystone_opt.wasm"));
  const result = await page.evaluate(async ({ docs, conds, groups, rounds, hasVariant, capMs }) => {
    const gb = (await import("/gen/growthbook-eval.js")).evalCondition;
    if (typeof K.Keystone.load === "function") await K.Keystone.load();
    else await K.Keystone.init({ autoCapture: false });
    const ksEval = (K.Keystone && typeof K.Keystone.evalCondition === "function" && K.Keystone.evalCondition.bind(K.Keystone)) || (typeof K.evalCondition === "function" && K.evalCondition) || null;
    let held = null, heldWhy = "the bench variant is not built (make bench-pkg)", evaluator = null, handOverMs = null;
    if (hasVariant) {
      try {
        const v = await import("/variant/keystone.js");
        await v.default({ module_or_path: "/variant/keystone_opt.wasm" });
        if (typeof v.ConditionBench !== "function") throw new Error("no ConditionBench export");
        const t0 = performance.now();
        held = new v.ConditionBench(conds, groups);
        held.load(docs);
        handOverMs = performance.now() - t0;
        evaluator = v.ConditionBench.evaluator();
      } catch (e) {
        held = null;
        heldWhy = "bench variant: " + (e && e.message || e);
      }
    }
    const usesGroups = conds.map((c) => /"\$(inGroup|notInGroup)"/.test(JSON.stringify(c)));
    // One pass: every condition over every document; times each condition.
    const pass = (f, n = docs.length, groupsWhere = () => groups) => {
      const counts = new Array(conds.length).fill(0), per = new Array(conds.length).fill(0);
      const t0 = performance.now();
      for (let c = 0; c < conds.length; c++) {
        const cond = conds[c], g = groupsWhere(c);
        const c0 = performance.now();
        let m = 0;
        for (let i = 0; i < n; i++) if (f(docs[i], cond, g) === true) m++;
        per[c] = performance.now() - c0;
        counts[c] = m;
      }
      return { ms: performance.now() - t0, counts, per };
    };
    // Visitor-major: every condition for one visitor, then the next (what an SDK does when it
    // evaluates a site's rules for the visitor on the page).
    const byVisitor = (f, n = docs.length) => {
      const counts = new Array(conds.length).fill(0);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) for (let c = 0; c < conds.length; c++) if (f(docs[i], conds[c], groups) === true) counts[c]++;
      return { ms: performance.now() - t0, counts, per: null };
    };
    const runners = {
      growthbook: (n) => pass(gb, n),
      growthbookByVisitor: (n) => byVisitor(gb, n),
      keystoneCallByVisitor: ksEval ? (n) => byVisitor(ksEval, n) : null,
      keystoneCall: ksEval ? (n) => pass(ksEval, n) : null,
      keystoneCallGroupsWhereUsed: ksEval ? (n) => pass(ksEval, n, (c) => (usesGroups[c] ? groups : undefined)) : null,
      keystoneHeld: held ? (n) => {
        if (n < docs.length) return held.run();
        const counts = [], per = [];
        const t0 = performance.now();
        for (let c = 0; c < conds.length; c++) {
          const c0 = performance.now();
          counts.push(held.runOne(c));
          per.push(performance.now() - c0);
        }
        return { ms: performance.now() - t0, counts, per };
      } : null,
    };
    const names = Object.keys(runners).filter((k) => runners[k]);
    const res = Object.fromEntries(names.map((k) => [k, { ms: [], counts: null, per: null, n: docs.length, gbCounts: null }]));
    // Warm-up (JIT) on 200 documents, which also estimates each runner's pass. A runner whose
    // full pass would take longer than capMs evaluates the first n documents only (reported),
    // so one slow evaluator cannot stretch the run past a few minutes.
    const W = Math.min(200, docs.length);
    if (held) held.load(docs.slice(0, W));
    for (const k of names) {
      const t0 = performance.now();
      runners[k](W);
      const perEval = (performance.now() - t0) / (W * conds.length);
      if (k !== "keystoneHeld" && !k.startsWith("growthbook") && perEval * docs.length * conds.length > capMs) {
        res[k].n = Math.max(W, Math.min(docs.length, Math.floor(capMs / perEval / conds.length)));
        res[k].gbCounts = pass(gb, res[k].n).counts;
      }
    }
    if (held) held.load(docs);
    for (let r = 0; r < rounds; r++) {
      const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
      for (const k of order) {
        const out = k === "keystoneHeld" ? runners[k]() : runners[k](res[k].n);
        res[k].ms.push(out.ms);
        res[k].counts = out.counts;
        res[k].per = out.per;
      }
    }
    return { res, evaluator, heldWhy, handOverMs, hasCall: !!ksEval };
  }, { docs, conds: CONDITIONS, groups, rounds: CFG.evalRounds, hasVariant, capMs: CFG.evalCapMs });
  await close();

  const evals = CFG.profiles * CONDITIONS.length;
  const fig = (k) => {
    const r = result.res[k];
    if (!r) return null;
    const rates = r.ms.map((ms) => (r.n * CONDITIONS.length) / (ms / 1000));
    return { evalsPerSec: median(rates), minMax: minmax(rates), msPerPass: median(r.ms), passes: r.ms.length, profilesEvaluated: r.n, counts: r.counts, gbCounts: r.gbCounts, msPerCondition: r.per };
  };
  const gb = fig("growthbook");
  const call = fig("keystoneCall") || NA("the package exports no evalCondition yet");
  const callG = fig("keystoneCallGroupsWhereUsed") || NA("the package exports no evalCondition yet");
  const held = fig("keystoneHeld") || NA(result.heldWhy);
  const gbV = fig("growthbookByVisitor");
  const callV = fig("keystoneCallByVisitor") || NA("the package exports no evalCondition yet");
  const ref = (x) => x.gbCounts || gb.counts; // GrowthBook's counts over the same profiles
  const agree = (x) => (isNA(x) ? null : x.counts.map((n, i) => n === ref(x)[i]).filter(Boolean).length);
  const disagree = (x) => (isNA(x) ? null : x.counts.map((n, i) => (n === ref(x)[i] ? null : { condition: i, keystone: n, growthbook: ref(x)[i] })).filter(Boolean));

  // Incremental path vs from scratch, on the heavy visitor with 100 segments.
  const inc = await incremental(heavy, defs100, trackSection);
  return {
    conditions: CONDITIONS.length, profiles: CFG.profiles, evaluationsPerPass: evals, rounds: CFG.evalRounds,
    note: "each pass evaluates every condition on every profile; runs alternate (order rotates each round) in one page, after a warm-up pass over 200 profiles; a runner whose first pass exceeds evalCapMs is not repeated",
    growthbook: { version: version("@growthbook/growthbook"), ...gb },
    keystoneCall: call,
    keystoneCallGroupsWhereUsed: callG,
    keystoneHeld: isNA(held) ? held : { ...held, evaluator: result.evaluator, handOverMs: result.handOverMs },
    byVisitor: { growthbook: gbV, keystoneCall: callV, ratio: isNA(callV) || !gbV ? null : callV.evalsPerSec / gbV.evalsPerSec, agree: agree(callV) },
    ratioCall: isNA(call) ? null : call.evalsPerSec / gb.evalsPerSec,
    ratioCallGroupsWhereUsed: isNA(callG) ? null : callG.evalsPerSec / gb.evalsPerSec,
    ratioHeld: isNA(held) ? null : held.evalsPerSec / gb.evalsPerSec,
    agreement: { keystoneCall: agree(call), keystoneCallGroupsWhereUsed: agree(callG), keystoneHeld: agree(held), of: CONDITIONS.length, callMismatches: disagree(call), heldMismatches: disagree(held) },
    incremental: inc,
  };
}

async function incremental(heavy, defs100, trackSection) {
  const { page, close } = await openPage({ storageState: heavy.state });
  await initInPage(page, { defs: defs100 });
  const reps = QUICK ? 3 : 15;
  const r = await page.evaluate(async ({ defs, reps }) => {
    const load = [], refresh = [];
    if (typeof ks.loadSegments === "function") {
      for (let i = 0; i < reps; i++) {
        const copy = JSON.parse(JSON.stringify(defs)); // a fresh document, as a site would fetch it
        const t0 = performance.now();
        await ks.loadSegments(copy);
        load.push(performance.now() - t0);
      }
    }
    if (typeof ks.refresh === "function") {
      for (let i = 0; i < reps * 10; i++) {
        const t0 = performance.now();
        ks.refresh();
        refresh.push(performance.now() - t0);
      }
    }
    return { load, refresh };
  }, { defs: defs100, reps });
  await close();
  const t = isNA(trackSection) ? null : trackSection.configs.find((c) => c.name === "100 segments, heavy profile");
  const loadMs = r.load.length ? median(r.load) : null;
  return {
    note: "incremental = one track() with 100 segments on the heavy visitor (segments re-evaluated after one event); from scratch = loadSegments() of the same 100 definitions on the same visitor (parse, compile, back-fill from stored history, evaluate all); refresh() = re-check of time-windowed segments",
    trackMeanUs: t ? t.mean : null, trackP50Us: t ? t.p50 : null,
    fromScratchMs: loadMs, fromScratchMinMax: minmax(r.load),
    refreshUs: r.refresh.length ? median(r.refresh) * 1000 : null,
    ratio: t && loadMs ? (loadMs * 1000) / t.mean : null,
  };
}

// ---- 5. storage and 6. memory -------------------------------------------------------------

async function sectionStorage(heavy, startup) {
  const items = storedItems(heavy.state);
  const profile = items.find((i) => /profile/i.test(i.name)) || null;
  const { page, close } = await openPage({ storageState: heavy.state });
  const keyName = profile && profile.name;
  const parse = await page.evaluate((key) => {
    if (!key) return null;
    const t = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      JSON.parse(localStorage.getItem(key));
      t.push(performance.now() - t0);
    }
    return t.sort((a, b) => a - b)[10];
  }, keyName);
  await initInPage(page, { defs: null });
  const save = await page.evaluate(async () => {
    const how = typeof ks.persistNow === "function" ? "ks.persistNow()" : "pagehide event";
    const t = [];
    for (let i = 0; i < 20; i++) {
      ks.track("Storage Probe", { i });
      const t0 = performance.now();
      if (how === "ks.persistNow()") ks.persistNow();
      else dispatchEvent(new Event("pagehide"));
      t.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 0));
    }
    t.sort((a, b) => a - b);
    return { ms: t[10], max: t[t.length - 1], how };
  });
  await close();
  const cfg = (n) => startup.configs.find((c) => c.name === n);
  const heavy0 = cfg("heavy profile, 0 segments"), empty0 = cfg("empty profile, 0 segments");
  return {
    events: heavy.events,
    items,
    profileKey: keyName,
    profileBytes: profile ? profile.bytes : null,
    totalBytes: items.reduce((a, i) => a + i.bytes, 0),
    loadMs: heavy0 && empty0 ? heavy0.afterWasmMedian - empty0.afterWasmMedian : null,
    loadNote: "init-to-ready median (after wasm) with the heavy stored profile minus with none, 0 segments: what restoring the profile adds to init",
    readParseMs: parse,
    saveMs: save.ms, saveMaxMs: save.max, saveHow: save.how,
  };
}

async function sectionMemory(heavy, defs100) {
  const measure = async (state, tracks) => {
    const { page, close } = await openPage({ storageState: state || undefined });
    await initInPage(page, { defs: defs100 });
    const r = await page.evaluate(async ({ tracks, mix }) => {
      for (let i = 0; i < tracks; i++) {
        const [n, p] = mix[i % mix.length];
        ks.track(n || "Page Ping", p);
      }
      await new Promise((r) => setTimeout(r, 300));
      const mem = window.__bench.memories;
      return mem.length ? mem.map((m) => m.buffer.byteLength) : null;
    }, { tracks, mix: eventMix(64, 9) });
    await close();
    return r ? Math.max(...r) : null;
  };
  const afterHeavy = await measure(heavy.state, 1000);
  const afterEmpty = await measure(null, 0);
  return {
    unit: "bytes",
    note: "WebAssembly.Memory of the page's Keystone instance (read by bench/pages/probe.js, which observes WebAssembly instantiation); 100 segments loaded",
    heavyAfter1000Tracks: afterHeavy ?? NA("no wasm memory observed"),
    emptyAfterInit: afterEmpty ?? NA("no wasm memory observed"),
  };
}

// ---- timer ----------------------------------------------------------------------------------

async function timerInfo() {
  const { page, close } = await openPage();
  const report = await page.evaluate(async (defs) => {
    const ks = await K.Keystone.init({ autoCapture: false });
    const r = await ks.loadSegments(defs);
    return { loaded: r.loaded.length, rejected: r.rejected.map((e) => `${e.segmentId}: ${e.code} ${e.path || ""} ${e.message}`) };
  }, definitions(100)).catch((e) => ({ error: String(e.message || e) }));
  const r = await page.evaluate(() => {
    let min = Infinity, last = performance.now();
    for (let i = 0; i < 2e5; i++) {
      const t = performance.now();
      if (t > last && t - last < min) min = t - last;
      last = t;
    }
    return { crossOriginIsolated: self.crossOriginIsolated === true, resolutionUs: min * 1000, userAgent: navigator.userAgent };
  });
  await close();
  return { ...r, definitions: report };
}

// ---- table ----------------------------------------------------------------------------------

function printTable(j) {
  const L = [];
  const section = (title, obj, fn) => {
    if (isNA(obj)) {
      L.push(`${title}: n/a — ${obj ? obj.na : "not measured"}`, "");
      return;
    }
    try {
      fn(obj);
    } catch (e) {
      L.push(`${title}: (could not print: ${e.message})`, "");
    }
  };
  const f = (v, d = 1) => (v == null || Number.isNaN(v) ? "n/a" : typeof v === "number" ? v.toFixed(d) : String(v));
  const mm = (a, d = 1) => (a ? `${f(a[0], d)}–${f(a[1], d)}` : "n/a");
  const pad = (s, n) => String(s).padStart(n);
  const row = (cells, widths) => L.push(cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[0]) : pad(c, widths[i]))).join(""));
  const kb = (b) => (b == null ? "n/a" : (b / 1024).toFixed(1) + " KB");
  const m = j.meta;
  L.push(`Keystone benchmark — ${m.date}`);
  L.push(`command: ${m.command}   runs: ${m.runs}   quick: ${m.quick}`);
  L.push(`machine: ${m.cpus} cores (${m.cpuModel}), load average ${m.loadavg.map((x) => x.toFixed(2)).join(" ")}; ${m.browser}`);
  L.push(`timer: crossOriginIsolated=${m.crossOriginIsolated} (pages served with COOP/COEP), performance.now() step ${f(m.timerResolutionUs, 1)} µs`);
  L.push("");
  section("1. SIZE", j.size, (s) => {
  L.push("1. SIZE (bytes; gzip -9; brotli q11)");
  const W1 = [46, 9, 9, 9];
  row(["file", "raw", "gzip", "brotli"], W1);
  for (const [name, z] of Object.entries(s.files)) row([name, z.raw, z.gzip, z.brotli], W1);
  row([`ESM page total (${s.esmPage.files.length} files loaded)`, s.esmPage.total.raw, s.esmPage.total.gzip, s.esmPage.total.brotli], W1);
  L.push(`    ${s.esmPage.files.map((x) => x.file.replace("dist/", "")).join(" + ")}`);
  row([`script-tag page total (${s.scriptTagPage.files.length} files loaded)`, s.scriptTagPage.total.raw, s.scriptTagPage.total.gzip, s.scriptTagPage.total.brotli], W1);
  L.push(`    ${s.scriptTagPage.files.map((x) => x.file.replace("dist/", "")).join(" + ")}`);
  row(["snippet.js", s.snippet.raw ?? "n/a", s.snippet.gzip ?? "n/a", s.snippet.brotli ?? "n/a"], W1);
  L.push("peers (the file a site loads from their CDN)        raw     gzip   brotli  Keystone ESM page / peer (gzip)");
  for (const p of s.peers) {
    row([`${p.name} ${p.version}`, p.raw ?? "n/a", p.gzip ?? "n/a", p.brotli ?? "n/a"], W1);
    L[L.length - 1] += `   ${f(p.ratioGzip, 2)}×`;
    L.push(`    ${p.pkg}/${p.file}`);
  }
  L.push("");
  });
  section("2. START-UP", j.startup, (st) => {
  L.push("2. START-UP: Keystone.init() to ready (ms)   [min–max of per-run medians]");
  const W2 = [30, 8, 8, 8, 16, 9, 12, 10, 7];
  row(["configuration", "median", "p95", "min", "median min–max", "in wasm", "after wasm", "(its min)", "loads"], W2);
  for (const c of st.configs) row([c.name, f(c.median, 1), f(c.p95, 1), f(c.min, 1), mm(c.medianMinMax, 1), f(c.wasmMedian, 1), f(c.afterWasmMedian, 1), f(c.afterWasmMin, 1), c.loads], W2);
  L.push("    in wasm = WebAssembly.instantiate(Streaming) during init; after wasm = the rest of init; min = fastest load (least disturbed by other processes)");
  const ci = st.configs.filter((c) => c.compileAtImportMedian != null);
  if (ci.length) L.push("    the ESM entry fetches and compiles the wasm when it is imported (before init): " + ci.map((c) => `${c.name}: compile ${f(c.compileAtImportMedian, 1)} ms, of it waited for by init ${f(c.compileWaitMedian, 1)} ms, import→ready ${f(c.importToReadyMedian, 1)} ms, compiled in the page's idle time before init in ${c.warmedLoads} of ${c.loads} loads`).join("; ") + " (medians)");
  L.push("");
  });
  section("3. PER EVENT", j.track, (tr) => {
  L.push("3. PER EVENT: track() main-thread time (µs)   [min–max over runs]");
  const W3 = [30, 8, 14, 8, 14, 9, 8, 14];
  row(["segments loaded", "p50", "p50 min–max", "p99", "p99 min–max", "max", "mean", "calls×runs"], W3);
  for (const c of tr.configs) row([c.name, f(c.p50), mm(c.p50MinMax), f(c.p99), mm(c.p99MinMax), f(c.max, 0), f(c.mean, 2), `${c.calls}×${c.runs.length}`], W3);
  L.push("  the machine's floor, same pages, timer and loop (p50 / p99 / max): a function that does nothing; one that busy-waits as long as track()'s p50");
  for (const c of tr.configs) if (c.floor) L.push(`    ${c.name.padEnd(32)} ${f(c.floor.p50)} / ${f(c.floor.p99)} / ${f(c.floor.max, 0)};  busy-wait ${f(c.busy.waitUs, 0)} µs: ${f(c.busy.p50)} / ${f(c.busy.p99)} / ${f(c.busy.max, 0)}`);
  L.push("");
  });
  section("4. EVALUATION", j.evaluation, (e) => {
  L.push(`4. EVALUATION: ${e.conditions} conditions × ${e.profiles} profiles = ${e.evaluationsPerPass} evaluations per pass, ${e.rounds} alternating rounds`);
  const W4 = [46, 14, 22, 10, 10];
  row(["evaluator", "evals/s", "min–max", "vs GB", "agree"], W4);
  const k = (x) => (x >= 1e6 ? (x / 1e6).toFixed(2) + " M" : x >= 1e3 ? (x / 1e3).toFixed(1) + " k" : f(x, 0));
  const er = (label, x, ratio, agree) =>
    isNA(x) ? row([label, "n/a", x && x.na ? x.na.slice(0, 21) : "", "", ""], W4) : row([label, k(x.evalsPerSec), `${k(x.minMax[0])}–${k(x.minMax[1])}`, ratio == null ? "1.00×" : (ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2)) + "×", agree == null ? "" : `${agree}/${e.conditions}`], W4);
  er(`GrowthBook ${e.growthbook.version} evalCondition (JS)`, e.growthbook, null, null);
  er("Keystone evalCondition (crosses JS→wasm per call)", e.keystoneCall, e.ratioCall, e.agreement.keystoneCall);
  er("  same, savedGroups passed only where used", e.keystoneCallGroupsWhereUsed, e.ratioCallGroupsWhereUsed, e.agreement.keystoneCallGroupsWhereUsed);
  er("Keystone held in wasm (ConditionBench)", e.keystoneHeld, e.ratioHeld, e.agreement.keystoneHeld);
  if (e.byVisitor && e.byVisitor.growthbook) {
    L.push("  visitor-major order (all conditions for one visitor, then the next — an SDK's pattern):");
    er("  GrowthBook evalCondition", e.byVisitor.growthbook, null, null);
    er("  Keystone evalCondition, per call", e.byVisitor.keystoneCall, e.byVisitor.ratio, e.byVisitor.agree);
  }
  if (isNA(e.keystoneCall)) L.push(`    evalCondition: n/a — ${e.keystoneCall.na}`);
  if (isNA(e.keystoneHeld)) L.push(`    held in wasm: n/a — ${e.keystoneHeld.na}`);
  else L.push(`    held-in-wasm evaluator: ${e.keystoneHeld.evaluator}; hand-over of conditions + profiles: ${f(e.keystoneHeld.handOverMs, 1)} ms (once)`);
  L.push(`    agree = conditions whose match count equals GrowthBook's over the same profiles; passes × profiles per evaluator: ${["growthbook", "keystoneCall", "keystoneCallGroupsWhereUsed", "keystoneHeld"].map((k) => (isNA(e[k]) ? "n/a" : `${e[k].passes}×${e[k].profilesEvaluated}`)).join(", ")}`);
  L.push(`    (an evaluator whose full pass would exceed ${CFG.evalCapMs / 1000} s evaluates the first profiles only; BENCH_EVAL_CAP_MS)`);
  const slow = (x) => (isNA(x) || !x.msPerCondition ? null : x.msPerCondition.map((ms, i) => [i, (ms / x.profilesEvaluated) / (e.growthbook.msPerCondition[i] / e.growthbook.profilesEvaluated)]).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([i, r]) => `#${i} ${f(r, 1)}×`).join(", "));
  if (slow(e.keystoneHeld)) L.push(`    slowest conditions vs GrowthBook, held in wasm (time ratio): ${slow(e.keystoneHeld)}`);
  if (slow(e.keystoneCallGroupsWhereUsed)) L.push(`    slowest conditions vs GrowthBook, per call, groups where used: ${slow(e.keystoneCallGroupsWhereUsed)}`);
  const inc = e.incremental;
  L.push(`    incremental vs from scratch (heavy visitor, 100 segments): one track() ${f(inc.trackMeanUs, 1)} µs mean / ${f(inc.trackP50Us, 1)} µs p50;`);
  L.push(`    loadSegments(same definitions) ${f(inc.fromScratchMs, 2)} ms (${mm(inc.fromScratchMinMax, 2)}); ratio ${f(inc.ratio, 0)}×; refresh() ${f(inc.refreshUs, 1)} µs`);
  L.push("");
  });
  section("5. STORAGE", j.storage, (st) => {
  L.push(`5. STORAGE: heavy visitor (${st.events} events over ${CFG.heavyDays} days, made through the public API)`);
  L.push(`    stored profile (${st.profileKey ?? "n/a"}): ${st.profileBytes ?? "n/a"} B (${kb(st.profileBytes)}); all stored keys: ${st.totalBytes} B [${st.items.map((i) => `${i.name} ${i.bytes}`).join(", ")}]`);
  L.push(`    load: ${st.loadMs < 0 ? "−" + f(-st.loadMs, 2) : "+" + f(st.loadMs, 2)} ms at init (heavy vs empty, after wasm); localStorage read + JSON.parse alone ${f(st.readParseMs, 3)} ms`);
  L.push(`    save: ${f(st.saveMs, 3)} ms median, ${f(st.saveMaxMs, 3)} ms max (${st.saveHow}, after one track)`);
  L.push("");
  });
  section("6. MEMORY", j.memory, (me) => {
  L.push("6. MEMORY: wasm linear memory");
  L.push(`    heavy profile + 100 segments + 1,000 track(): ${isNA(me.heavyAfter1000Tracks) ? "n/a" : me.heavyAfter1000Tracks + " B (" + kb(me.heavyAfter1000Tracks) + ")"}; empty profile after init: ${isNA(me.emptyAfterInit) ? "n/a" : me.emptyAfterInit + " B (" + kb(me.emptyAfterInit) + ")"}`);
  L.push("");
  });
  L.push(`JSON: ${j.meta.outFile}`);
  return L.join("\n");
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  if (!existsSync(join(PKG, "keystone.js"))) throw new Error("pkg/dist is missing: run `make pkg` first (or `make bench`)");
  await buildGenerated();
  server = await startServer();
  browser = await launch();
  const out = { meta: {}, size: null, startup: null, track: null, evaluation: null, storage: null, memory: null, errors: {} };
  const guard = async (name, fn) => {
    try {
      return await fn();
    } catch (e) {
      log(`${name}: failed: ${e && e.stack || e}`);
      out.errors[name] = String((e && e.message) || e);
      return NA("failed: " + out.errors[name]);
    }
  };
  try {
    const timer = await timerInfo();
    const defs100 = definitions(100);
    out.meta = {
      date: new Date().toISOString(),
      command: (QUICK ? "BENCH_QUICK=1 " : "") + "make bench",
      ...CFG,
      outFile: CFG.out.startsWith(root) ? CFG.out.slice(root.length + 1) : CFG.out,
      node: process.version,
      cpus: cpus().length,
      cpuModel: (cpus()[0] && cpus()[0].model) || "?",
      loadavg: loadavg(),
      browser: "Chromium " + browser.version(),
      crossOriginIsolated: timer.crossOriginIsolated,
      timerResolutionUs: timer.resolutionUs,
      definitions100: timer.definitions,
      packageVersion: JSON.parse(readFileSync(join(PKG_DIR, "package.json"), "utf8")).version,
    };
    delete out.meta.out;
    // BENCH_SECTIONS=startup,track,… runs some sections only (the others print n/a).
    const only = env.BENCH_SECTIONS ? new Set(env.BENCH_SECTIONS.split(",")) : null;
    const section = (name, fn) => (!only || only.has(name) ? guard(name, fn) : NA("skipped (BENCH_SECTIONS)"));
    out.size = await section("size", sectionSize);
    log("size done");
    const heavy = await makeHeavy(defs100);
    out.startup = await section("startup", () => sectionStartup(heavy, defs100));
    out.track = await section("track", () => sectionTrack(heavy));
    out.evaluation = await section("evaluation", () => sectionEval(heavy, defs100, out.track));
    out.storage = await section("storage", () => sectionStorage(heavy, out.startup));
    out.memory = await section("memory", () => sectionMemory(heavy, defs100));
  } finally {
    await browser.close();
    await server.close();
  }
  out.meta.seconds = (Date.now() - t0) / 1000;
  mkdirSync(dirname(CFG.out), { recursive: true });
  writeFileSync(CFG.out, JSON.stringify(out, null, 2) + "\n");
  let table;
  try {
    table = printTable(out);
  } catch (e) {
    table = "(table could not be printed: " + e.message + ")";
  }
  console.log(table);
  console.log(`(${out.meta.seconds.toFixed(0)} s)`);
  if (Object.keys(out.errors).length) console.log("sections that failed: " + Object.keys(out.errors).join(", "));
}

main().catch((e) => {
  console.error(e && e.stack || e);
  process.exit(1);
});
