// The segment engine through the built package in Chromium: the versioned behavioural cases and
// load-error cases of tests/cases/ (also run natively by tests/segments.rs), definitions from a
// URL, explain, enter/exit delivery, and a timed exit with Playwright's clock (no call made).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setup, fulfillDefinitions } from "./harness.mjs";

const read = (f) => JSON.parse(readFileSync(new URL("../cases/" + f, import.meta.url), "utf8"));
const BEHAVIOUR = read("segments-behaviour.json");
const LOAD_ERRORS = read("segments-load-errors.json");
const T0 = Date.UTC(2025, 10, 29, 8, 0, 0);

/** "7d1m30s" → ms (units w d h m s ms). */
function offset(s) {
  const unit = { w: 604800000, d: 86400000, h: 3600000, m: 60000, s: 1000, ms: 1 };
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+)(ms|w|d|h|m|s)?/g)) total += Number(n) * (unit[u] || 1);
  return total;
}

let h;
// Whether the package carries the full segment engine (cargo feature `segments`; without it the
// package ships the basic evaluator and these tests are skipped).
let full = false;
const SKIP = "package built without the segment engine (make pkg CARGO_FEATURES=segments)";
before(async () => {
  h = await setup();
  const page = await h.open();
  full = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "x", condition: { a: 1 } }] } });
    return ks.explain("x") !== null;
  });
  await page.context().close();
});
after(async () => h && h.close());

/** A fresh page whose clock starts at `time` (fake timers: they fire as the clock advances). */
async function openAt(time) {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  page.on("console", (m) => m.type() === "error" && page.problems.push("console.error: " + m.text()));
  await page.clock.install({ time });
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  return page;
}

for (const c of BEHAVIOUR.cases) {
  test("behaviour case: " + c.name, async (t) => {
    if (!full) return t.skip(SKIP);
    const page = await openAt(T0);
    await page.evaluate(async ({ defs, retention }) => {
      window.ks = await Keystone.init({ segments: defs, autoCapture: false, ...(retention ? { retention } : {}) });
    }, { defs: c.definitions, retention: c.retention });
    for (const [i, step] of c.steps.entries()) {
      if (step.restore) continue; // native only: the stored form round trip
      await page.clock.setSystemTime(T0 + offset(step.at));
      const out = await page.evaluate(async (step) => {
        if (step.track) for (let n = 0; n < (step.repeat || 1); n++) ks.track(step.track, step.properties);
        if (step.page) ks.page(step.page);
        if (step.load) {
          const r = await ks.loadSegments(step.load);
          if (r.rejected.length) return { rejected: r.rejected.map((e) => e.message) };
        }
        if (!step.expect) return {};
        ks.refresh();
        const p = ks.profile();
        const ex = step.expect.explain ? ks.explain(step.expect.explain.id) : null;
        return {
          segments: ks.segments(),
          profileSegments: p.segments,
          inSegment: ks.segments().map((s) => ks.inSegment(s)),
          scores: p.scores,
          explain: ex && { result: ex.result, treeResult: ex.tree.result, value: ex.tree.value, member: ks.inSegment(step.expect.explain.id) },
        };
      }, step);
      const where = `${c.name} / step ${i}`;
      assert.equal(out.rejected, undefined, where);
      const e = step.expect;
      if (!e) continue;
      if (e.segments) {
        assert.deepEqual(out.segments, e.segments, where);
        assert.deepEqual(out.profileSegments, e.segments, where + " profile().segments");
        assert.ok(out.inSegment.every(Boolean), where);
      }
      // The page's clock runs between the steps' calls (tens of ms on a loaded machine): a score
      // halving every 7 days loses ~1e-6 of 21 points per 40 ms, so the tolerance allows seconds.
      for (const [id, v] of Object.entries(e.scores || {})) assert.ok(Math.abs(out.scores[id] - v) < 1e-4, `${where}: score ${id} ${out.scores[id]} != ${v}`);
      if (e.explain) {
        assert.equal(out.explain.result, e.explain.result, where + " explain");
        assert.equal(out.explain.treeResult, e.explain.result, where + " explain tree");
        assert.equal(out.explain.member, e.explain.result, where + " explain agrees with inSegment");
        if (typeof e.explain.value === "number") assert.ok(Math.abs(out.explain.value - e.explain.value) < 1e-4, `${where}: explain value ${out.explain.value}`);
        else if ("value" in e.explain) assert.deepEqual(out.explain.value, e.explain.value, where + " explain value");
      }
    }
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
}

test("load errors: each invalid definition is a KeystoneError {code, segmentId, path}; the valid ones load", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await h.open();
  const results = await page.evaluate(async (cases) => {
    const ks = await Keystone.init({ autoCapture: false, retention: "30d" });
    const out = [];
    const warn = console.warn;
    let warns;
    console.warn = (m) => warns.push(String(m));
    for (const c of cases) {
      warns = [];
      const events = [];
      const onError = (e) => events.push(e.code);
      ks.on("error", onError);
      let r;
      try {
        const res = await ks.loadSegments(c.definitions);
        r = {
          loaded: res.loaded,
          rejected: res.rejected.map((e) => ({ code: e.code, segmentId: e.segmentId ?? null, path: e.path, isError: e instanceof Error, message: e.message })),
        };
      } catch (e) {
        r = { error: { code: e.code, path: e.path ?? null, isError: e instanceof Error } };
      }
      await new Promise((res) => setTimeout(res, 0));
      ks.off("error", onError);
      out.push({ name: c.name, r, events, warns });
    }
    console.warn = warn;
    return out;
  }, LOAD_ERRORS.cases.map((c) => ({ ...c, definitions: c.definitions })));
  for (const [i, c] of LOAD_ERRORS.cases.entries()) {
    const { r, events, warns } = results[i];
    if (c.retention && c.retention !== "30d") continue;
    if (c.error) {
      assert.deepEqual(r.error, { ...c.error, isError: true }, c.name);
      continue;
    }
    assert.deepEqual(r.loaded, c.loaded, c.name);
    assert.deepEqual(r.rejected.map(({ code, segmentId, path }) => ({ code, segmentId, path })), c.rejected, c.name);
    assert.ok(r.rejected.every((e) => e.isError && e.message), c.name);
    assert.equal(events.filter((e) => e === "invalid_segment").length, c.rejected.length, c.name + ": one error event each");
    // Each console warning says which definition and where.
    for (const e of c.rejected) assert.ok(warns.some((w) => w.startsWith(`[keystone] invalid_segment (${e.segmentId ? e.segmentId + " " : ""}at ${e.path}): `)), c.name + ": " + warns.join(" | "));
  }
  await page.context().close();
});

test("a rejected document keeps the previous definitions; init takes a URL; explain of an unknown id is null", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const errors = [];
    const ks = await Keystone.init({ segments: "/tests/segments-definitions.json", autoCapture: false });
    ks.on("error", (e) => errors.push(e.code));
    ks.track("Product Viewed");
    const before = ks.segments();
    let rejected = null;
    await ks.loadSegments({ version: 3, segments: [] }).catch((e) => (rejected = e.code));
    const after = ks.segments();
    const unknown = ks.explain("nope");
    const ex = ks.explain("viewers");
    await new Promise((r) => setTimeout(r, 0));
    return { before, after, rejected, unknown, ex, errors };
  });
  assert.deepEqual(out.before, ["viewers"]);
  assert.deepEqual(out.after, ["viewers"]);
  assert.equal(out.rejected, "invalid_definitions");
  assert.equal(out.unknown, null);
  assert.ok(out.errors.includes("unknown_id"), out.errors.join());
  assert.deepEqual(out.ex, {
    id: "viewers", kind: "segment", name: "Product viewers", result: true,
    tree: { op: "$performed", result: true, value: 1, expected: { $gte: 1 } },
  });
  await page.context().close();
});

test("a document nested past what is read (256 levels), as an object or too deep for JSON.stringify, is rejected whole as invalid_definitions; the previous definitions stay", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "ok", condition: { "traits.a": 1 } }] }, autoCapture: false });
    ks.setTraits({ a: 1 });
    const deep = (n) => {
      let c = { "traits.a": 1 };
      for (let i = 0; i < n; i++) c = { $and: [c] };
      return { version: 1, segments: [{ id: "ok2", condition: { "traits.a": 1 } }, { id: "deep", condition: c }] };
    };
    const codes = [];
    for (const n of [300, 20000]) await ks.loadSegments(deep(n)).then(() => codes.push("loaded"), (e) => codes.push(e.code));
    // Within what is read, the deep segment alone is rejected.
    const within = await ks.loadSegments(deep(100));
    return { codes, within: [within.loaded, within.rejected.map((e) => [e.code, e.segmentId])], segments: ks.segments() };
  });
  assert.deepEqual(out.codes, ["invalid_definitions", "invalid_definitions"]);
  assert.deepEqual(out.within, [["ok2"], [["invalid_segment", "deep"]]]);
  assert.deepEqual(out.segments, ["ok2"]);
  await page.context().close();
});

test("a $regex is run once per text: a pattern that backtracks for long on a trait's value is not run again at each later call", async (t) => {
  if (!full) return t.skip(SKIP);
  const ctx = await h.browser.newContext();
  // Counts the runs of the segment's pattern (the engine tests patterns with RegExp#test).
  await ctx.addInitScript(() => {
    const test = RegExp.prototype.test;
    window.__runs = 0;
    RegExp.prototype.test = function (s) {
      if (this.source === "^(a+)+$") window.__runs++;
      return test.call(this, s);
    };
  });
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "aaa", condition: { "traits.x": { $regex: "^(a+)+$" } } }] }, autoCapture: false });
    ks.setTraits({ x: "a".repeat(18) + "b" });
    const once = window.__runs;
    for (let i = 0; i < 20; i++) ks.track("Unrelated");
    ks.setTraits({ x: "aaaa" });
    return { once, after: window.__runs, segments: ks.segments() };
  });
  assert.ok(out.once >= 1);
  assert.equal(out.after, out.once + 1, "the 20 events ran it again: " + JSON.stringify(out));
  assert.deepEqual(out.segments, ["aaa"], "a new value is tested");
  await ctx.close();
});

test("loadSegments calls apply in call order: a slow URL never lands over a later call's definitions", async (t) => {
  if (!full) return t.skip(SKIP);
  const ctx = await h.browser.newContext();
  await ctx.route("**/tests/slow-definitions.json", (route) => fulfillDefinitions(route, "from_url", 400));
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const p1 = ks.loadSegments("/tests/slow-definitions.json");
    const p2 = ks.loadSegments({ version: 1, segments: [{ id: "newest", condition: {} }] });
    const order = [];
    await Promise.all([p1.then(() => order.push("url")), p2.then(() => order.push("object"))]);
    const last = ks.segments();
    // With no URL in flight, objects apply before each call returns, also several in a row.
    ks.loadSegments({ version: 1, segments: [{ id: "first", condition: {} }] });
    const firstNow = ks.segments();
    ks.loadSegments({ version: 1, segments: [{ id: "sync", condition: {} }] });
    return { order, last, firstNow, syncNow: ks.segments() };
  });
  assert.deepEqual(out.firstNow, ["first"]);
  assert.deepEqual(out.order, ["url", "object"]);
  assert.deepEqual(out.last, ["newest"], "the later call wins");
  assert.deepEqual(out.syncNow, ["sync"]);
  await ctx.close();
});

test("errors of the segments option reach an error listener added right after init resolves", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const doc = { version: 1, segments: [{ id: "ok", condition: { a: 1 } }, { id: "bad", condition: { $performed: { event: "X", within: "soon" } } }] };
    const ks = await Keystone.init({ segments: doc, autoCapture: false });
    const errors = [];
    ks.on("error", (e) => errors.push({ code: e.code, segmentId: e.segmentId, path: e.path, isError: e instanceof Error }));
    await new Promise((r) => setTimeout(r, 50));
    return { errors, held: ks.explain("ok") !== null };
  });
  assert.equal(out.held, true, "the valid segment loaded");
  assert.equal(out.errors.length, 1, JSON.stringify(out.errors));
  assert.equal(out.errors[0].segmentId, "bad");
  assert.equal(out.errors[0].isError, true);
  assert.ok(out.errors[0].path.startsWith("/segments/1/condition"), out.errors[0].path);
  await page.context().close();
});

test("enter fires once, before the call returns; a timed exit fires by itself when the clock passes the window", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await openAt(T0);
  const out1 = await page.evaluate(async () => {
    window.log = [];
    const ks = await Keystone.init({
      autoCapture: false,
      segments: { version: 1, segments: [{ id: "recent", condition: { $performed: { event: "Product Viewed", within: "30m" } } }] },
    });
    let returned = false;
    ks.on("segment:enter", (p) => log.push(["enter", p.segment, returned, Date.now()]));
    ks.on("segment:exit", (p) => log.push(["exit", p.segment, Date.now()]));
    const t0 = Date.now();
    ks.track("Product Viewed");
    returned = true;
    ks.track("Product Viewed");
    const t1 = Date.now();
    const now = ks.inSegment("recent");
    await new Promise((r) => setTimeout(r, 0));
    window.ks = ks;
    return { now, log: log.slice(), t0, t1 };
  });
  assert.equal(out1.now, true);
  assert.equal(out1.log.length, 1);
  assert.deepEqual(out1.log[0].slice(0, 3), ["enter", "recent", false]);
  await page.clock.runFor(29 * 60 * 1000);
  assert.deepEqual(await page.evaluate(() => [log.length, ks.inSegment("recent")]), [1, true]);
  await page.clock.runFor(2 * 60 * 1000);
  const out2 = await page.evaluate(() => ({ log, segs: ks.segments(), prof: ks.profile().segments }));
  assert.equal(out2.log.length, 2, JSON.stringify(out2.log));
  assert.deepEqual(out2.log[1].slice(0, 2), ["exit", "recent"]);
  assert.ok(out2.log[1][2] - out1.t0 >= 30 * 60 * 1000, "exit once the 30m window passed");
  assert.ok(out2.log[1][2] - out1.t1 < 31 * 60 * 1000, "and not much later (a timer, not polling)");
  assert.deepEqual(out2.segs, []);
  assert.deepEqual(out2.prof, []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("events that move the next timed change later set no timer of their own; the exit still comes when the last event's window passes", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await openAt(T0);
  await page.evaluate(async () => {
    window.log = [];
    window.ks = await Keystone.init({
      autoCapture: false,
      segments: { version: 1, segments: [{ id: "recent", condition: { $performed: { event: "Product Viewed", within: "30m" } } }] },
    });
    ks.on("segment:enter", (p) => log.push(["enter", p.segment, Date.now()]));
    ks.on("segment:exit", (p) => log.push(["exit", p.segment, Date.now()]));
    // Timers cleared, and timers of more than a second set, while a track() call runs (the
    // expiry timer waits up to a minute; the profile's coalesced write and the declarative
    // rendering's throttle set shorter ones).
    window.timers = 0;
    window.inCall = false;
    for (const k of ["setTimeout", "clearTimeout"]) {
      const f = window[k];
      window[k] = function (_, ms) {
        if (inCall && (k == "clearTimeout" || ms > 1000)) timers++;
        return f.apply(this, arguments);
      };
    }
    window.tracked = () => {
      inCall = true;
      try {
        ks.track("Product Viewed");
      } finally {
        inCall = false;
      }
    };
  });
  // One event a second for 40 seconds: each moves the exit a second later.
  for (let i = 0; i < 40; i++) {
    await page.evaluate(() => tracked());
    await page.clock.runFor(1000);
  }
  const last = T0 + 39 * 1000;
  const timers = await page.evaluate(() => timers);
  // The first event sets the expiry timer; the other 39 leave it (each set it again before: a
  // clearTimeout and a setTimeout).
  assert.ok(timers <= 2, "expiry timers set or cleared by 40 track() calls: " + timers);
  await page.clock.runFor(last + 29 * 60 * 1000 - (T0 + 40 * 1000));
  assert.deepEqual(await page.evaluate(() => [log.length, ks.inSegment("recent")]), [1, true]);
  await page.clock.runFor(2 * 60 * 1000);
  const out = await page.evaluate(() => log);
  assert.equal(out.length, 2, JSON.stringify(out));
  assert.deepEqual(out[1].slice(0, 2), ["exit", "recent"]);
  assert.ok(out[1][2] >= last + 30 * 60 * 1000, "exit once the last event's 30m window passed");
  assert.ok(out[1][2] < last + 31 * 60 * 1000, "and not much later");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("after a sleep (the wall clock jumped, the expiry timer still pending), an event whose change comes sooner than that timer fires is on time", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await openAt(T0);
  await page.evaluate(async () => {
    window.log = [];
    window.ks = await Keystone.init({
      autoCapture: false,
      segments: {
        version: 1,
        scores: [{ id: "engagement", halfLife: "1h", rules: [{ event: "Engaged", points: 101 }] }],
        segments: [
          { id: "recent", condition: { $performed: { event: "Product Viewed", within: "30m" } } },
          { id: "engaged", condition: { "scores.engagement": { $gte: 100 } } },
        ],
      },
    });
    ks.on("segment:exit", (p) => log.push([p.segment, Date.now()]));
    ks.track("Product Viewed"); // the expiry timer waits its minute
  });
  // Asleep for 2 hours at once: the timer has a minute to go when the page runs again.
  await page.clock.setSystemTime(T0 + 2 * 3600 * 1000);
  const woke = await page.evaluate(() => {
    ks.track("Engaged"); // 101 points, under 100 after 51.7 s (half-life 1 h)
    return Date.now();
  });
  await page.clock.runFor(2 * 60 * 1000);
  const log = await page.evaluate(() => log);
  assert.deepEqual(log.map((l) => l[0]), ["recent", "engaged"], JSON.stringify(log));
  const after = (log[1][1] - woke) / 1000;
  assert.ok(after >= 51.6 && after < 53, "engaged left " + after + " s after the event (the score crosses 100 after 51.7 s)");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("a window that passes while the device sleeps (the wall clock jumps, timers stand still) is caught up within a minute, and at once when the page is shown again", async (t) => {
  if (!full) return t.skip(SKIP);
  const page = await openAt(T0);
  await page.evaluate(async () => {
    window.log = [];
    window.ks = await Keystone.init({
      autoCapture: false,
      segments: { version: 1, segments: [{ id: "recent", condition: { $performed: { event: "Product Viewed", within: "30m" } } }] },
    });
    ks.on("segment:enter", (p) => log.push(["enter", p.segment]));
    ks.on("segment:exit", (p) => log.push(["exit", p.segment]));
    const p = document.createElement("p");
    p.id = "recently";
    p.setAttribute("data-keystone-show", "recent");
    document.body.append(p);
    ks.track("Product Viewed");
  });
  await page.clock.runFor(10 * 60 * 1000);
  // Asleep for 3 hours: Date.now() jumps, the pending 20-minute timer has not run.
  await page.clock.setSystemTime(T0 + 3 * 3600 * 1000);
  await page.clock.runFor(61 * 1000);
  // (No call reads Keystone here: its own timer notices.)
  const woke = await page.evaluate(() => ({ log: log.slice(), hidden: document.getElementById("recently").hidden }));
  assert.deepEqual(woke.log, [["enter", "recent"], ["exit", "recent"]]);
  assert.equal(woke.hidden, true);
  // Asleep again; shown again (the screen unlocked): the visibilitychange catches up at once.
  await page.evaluate(() => ks.track("Product Viewed"));
  await page.clock.setSystemTime(T0 + 6 * 3600 * 1000);
  const shown = await page.evaluate(() => {
    const before = log.length;
    document.dispatchEvent(new Event("visibilitychange"));
    return { visible: document.visibilityState, log: log.slice(before - 1) };
  });
  assert.equal(shown.visible, "visible");
  assert.deepEqual(shown.log, [["enter", "recent"], ["exit", "recent"]]);
  assert.equal(await page.evaluate(() => document.getElementById("recently").hidden), true);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
