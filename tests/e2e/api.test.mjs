// The API contract (DESIGN §2, §12): every method exists on the instance, and none throws into
// the caller whatever it is passed. An error is a KeystoneError (a real Error with an enumerable,
// stable `code`), reported through a rejected Promise where the method returns one, an "error"
// event, and exactly one console warning carrying the code.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";
import { METHODS, PROMISE_METHODS } from "../../pkg-template/src/methods.js";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

/** DESIGN §2, in its order. */
const API = ["page", "track", "identify", "reset", "setTraits", "setConsent", "forget", "loadSegments", "segments", "inSegment", "explain", "decide", "profile", "anonymousId", "userId", "on", "off", "flush", "refresh"];
const ASYNC = ["identify", "loadSegments", "setConsent", "forget", "flush"];

/** Values of the wrong type for properties, traits and options (JSON would print them as
 * nothing, `null` or `{}`). */
const WRONG = ["NaN", "Symbol('s')", "() => {}", "new Map([['a', 1]])", "[1, 2]", "'str'"];

/**
 * Bad calls, by method. Each is [args (built in the page), expected error code or null when the
 * call may also be accepted]. `H` is a hostile object: every property access throws.
 */
const BAD = {
  page: [["42", "invalid_argument"], ["'not an object'", "invalid_argument"], ["H", "invalid_argument"], ["CYC", null], ...WRONG.map((v) => [v, "invalid_argument"])],
  track: [["", "invalid_argument"], ["42", "invalid_argument"], ["null, {}", "invalid_argument"], ["'x', 'not an object'", "invalid_argument"], ["'x', CYC", "invalid_argument"], ["'x', H", null], ["Symbol('x')", "invalid_argument"], ["'x', { n: 10n }", null], ...WRONG.map((v) => ["'x', " + v, "invalid_argument"])],
  identify: [["", "invalid_email"], ["42", "invalid_email"], ["'not an email'", "invalid_email"], ["'a@b.example', 'traits?'", "invalid_argument"], ["H", null], ...WRONG.map((v) => ["'a@b.example', " + v, "invalid_argument"]), ...WRONG.map((v) => ["'a@b.example', {}, " + v, "invalid_argument"])],
  reset: [["42, H", null]],
  setTraits: [["", null], ["null", null], ["'x'", "invalid_argument"], ["[1, 2]", "invalid_argument"], ["H", null], ["CYC", null]],
  setConsent: [["", "invalid_argument"], ["'yes'", "invalid_argument"], ["{ analytics: 'maybe' }", "invalid_argument"], ["H", null], ["new Map([['analytics', false]])", "invalid_argument"], ["42", "invalid_argument"]],
  forget: [["H", null]],
  loadSegments: [["", "invalid_definitions"], ["42", "invalid_definitions"], ["{ version: 2, segments: [] }", "invalid_definitions"], ["'/nowhere/segments.json'", "definitions_fetch_failed"], ["H", "invalid_argument"]],
  segments: [["H", null]],
  inSegment: [["", "invalid_argument"], ["42", "invalid_argument"], ["H", "invalid_argument"], ["'no_such_segment'", null]],
  explain: [["", "invalid_argument"], ["42", "invalid_argument"], ["'no_such_segment'", "unknown_id"], ["H", "invalid_argument"]],
  decide: [["", "invalid_argument"], ["42", "invalid_argument"], ["'no_such_experience'", "unknown_id"], ["H", "invalid_argument"]],
  profile: [["H", null]],
  anonymousId: [["H", null]],
  userId: [["H", null]],
  on: [["", "invalid_argument"], ["'segment:enter', 'not a function'", "invalid_argument"], ["42, () => {}", "invalid_argument"]],
  off: [["", "invalid_argument"], ["H, H", "invalid_argument"], ["42, () => {}", "invalid_argument"], ["'error', 'not a function'", "invalid_argument"]],
  flush: [["H", null]],
  refresh: [["H", null]],
};

test("the method lists the script-tag build and the snippet queue cover DESIGN §2", () => {
  for (const m of [...API, "init"]) assert.ok(METHODS.includes(m), m + " is in methods.js");
  assert.deepEqual([...PROMISE_METHODS].sort(), [...ASYNC, "init"].sort());
});

test("init with bad options rejects with a KeystoneError and one warning, never throws", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const warns = [];
    const w = console.warn;
    console.warn = (...a) => (warns.push(a.join(" ")), w.apply(console, a));
    let threw = false;
    let p;
    try {
      p = Keystone.init({ sessionTimeout: "forever" });
    } catch (_) {
      threw = true;
    }
    const e = await p.then(() => null, (e) => e);
    const ok = await Keystone.init({}).then((ks) => typeof ks.track === "function");
    return { threw, isError: e instanceof Error, name: e && e.name, code: e && e.code, enumerable: !!e && Object.keys(e).includes("code"), warns, ok };
  });
  assert.equal(out.threw, false);
  assert.equal(out.isError, true);
  assert.equal(out.name, "KeystoneError");
  assert.equal(out.code, "invalid_argument");
  assert.equal(out.enumerable, true);
  assert.equal(out.warns.filter((w) => w.includes("invalid_argument")).length, 1, out.warns.join("\n"));
  assert.equal(out.ok, true, "a later init with good options works");
  await page.context().close();
});

test("init: options that are not a plain object or have a wrong type reject (nothing stored); an unknown option or consent category warns unknown_option once", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const warns = [];
    const w = console.warn;
    console.warn = (...a) => (warns.push(a.join(" ")), w.apply(console, a));
    const bad = [42, "str", [], () => {}, new Date(0), { storagePrefix: "" }, { storagePrefix: 42 }, { storagePrefix: {} }, { storagePrefix: "a b;c=" }, { autoCapture: "no" }, { dataLayer: 42 }, { debug: "yes" }, { cookieDomain: 42 }, { antiFlicker: "abc" }, { trackSegments: "yes" }, { flushAt: "many" }, { flushAt: -1 }, { retryMax: NaN }, { autoCapture: { clicks: "no" } }, { autoCapture: { scroll: 0 } }];
    const rejected = [];
    for (const o of bad) {
      warns.length = 0;
      let code;
      try {
        code = await Keystone.init(o).then(() => "resolved", (e) => e.code);
      } catch (e) {
        code = "threw " + e;
      }
      rejected.push([String(o && typeof o == "object" && !Array.isArray(o) ? Object.keys(o) : o), code, warns.filter((x) => x.includes("invalid_argument")).length]);
    }
    const stored = Object.keys(localStorage).concat(document.cookie || []);
    warns.length = 0;
    const ks = await Keystone.init({ segmnts: { version: 1, segments: [] }, consent: { analytcs: false, marketing: false }, autoCapture: false }).catch((e) => e.code);
    return { rejected, stored, works: typeof ks.track == "function", consent: ks.profile().consent, warns };
  });
  for (const [o, code, warned] of out.rejected) {
    assert.equal(code, "invalid_argument", o);
    assert.equal(warned, 1, o + ": one warning");
  }
  assert.deepEqual(out.stored, [], "a rejected init stores nothing");
  assert.equal(out.works, true, "unknown names do not reject (a later version's option)");
  assert.deepEqual(out.consent, { analytics: true, personalization: true, marketing: false });
  assert.equal(out.warns.filter((w) => w.includes("unknown_option") && w.includes("segmnts")).length, 1, out.warns.join("\n"));
  assert.equal(out.warns.filter((w) => w.includes("unknown_option") && w.includes("analytcs")).length, 1, out.warns.join("\n"));
  await page.context().close();
});

/** A page whose console warnings are collected in `window.warns` from its start. */
async function openWarned() {
  const page = await h.open();
  await page.evaluate(() => {
    window.warns = [];
    const w = console.warn;
    console.warn = (...a) => (warns.push(a.join(" ")), w.apply(console, a));
  });
  return page;
}

test('autoCapture\'s switches: "false" from a tag manager turns one off, an unknown one warns unknown_option once', async () => {
  const page = await openWarned();
  const out = await page.evaluate(async () => {
    document.body.insertAdjacentHTML("beforeend", '<button id="b" data-keystone-track="Clicked">b</button>');
    const ks = await Keystone.init({ autoCapture: { pageViews: "false", clicks: "false", scroll: "true", click: true } });
    document.getElementById("b").click();
    await new Promise((r) => setTimeout(r, 50));
    const events = ks.profile().events;
    return { views: events["Page Viewed"]?.count || 0, clicks: events.Clicked?.count || 0, warns: warns.filter((x) => x.includes("unknown_option")) };
  });
  assert.deepEqual([out.views, out.clicks], [0, 0], "no page view, no click recorded");
  assert.equal(out.warns.length, 1, out.warns.join("\n"));
  assert.match(out.warns[0], /autoCapture options unknown: click$/);
  await page.context().close();
});

test("setTraits with nothing is setTraits({}); evalCondition given attributes with a throwing getter warns invalid_argument", async () => {
  const page = await openWarned();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    ks.setTraits({ plan: "pro" });
    ks.setTraits(null);
    ks.setTraits(undefined);
    ks.setTraits();
    const traits = ks.profile().traits;
    const bad = { get a() { throw new Error("getter threw"); } };
    const r = Keystone.evalCondition(bad, { a: 1 });
    return { traits, r, warns };
  });
  assert.deepEqual(out.traits, { plan: "pro" });
  assert.equal(out.r, false);
  assert.equal(out.warns.length, 1, out.warns.join("\n"));
  assert.match(out.warns[0], /invalid_argument: attributes cannot be read as JSON: getter threw/);
  await page.context().close();
});

test("unknown_option is said once per page for the same names (setConsent, identify, init, definitions fields); a definitions document's unknown top-level field warns", async () => {
  const page = await openWarned();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    for (let i = 0; i < 3; i++) await ks.setConsent({ analytcs: true });
    for (let i = 0; i < 2; i++) await ks.identify("ada@example.com", {}, { userID: 1 });
    const defs = { version: 1, segments: [], socres: [{ id: "s", rules: [] }] };
    const r = await ks.loadSegments(defs);
    await ks.loadSegments(defs);
    return { warns: warns.filter((x) => x.includes("unknown_option")), rejected: r.rejected.length };
  });
  assert.deepEqual(out.warns.map((w) => w.replace(/^.*unknown_option: /, "")), ["consent categories unknown: analytcs", "identify options unknown: userID", "definitions fields unknown: socres"]);
  assert.equal(out.rejected, 0, "a warning, not a rejection (a document may carry fields of its own)");
  await page.context().close();
});

test("identify with an unknown option (a misspelt userID) warns unknown_option and identifies by the email's hash", async () => {
  const page = await openWarned();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    await ks.identify("ada@example.com", {}, { userID: "crm-1", storeEmail: false });
    const first = ks.userId();
    await ks.identify("ada@example.com", {}, { userId: "crm-1" });
    return { first, second: ks.userId(), warns: warns.filter((x) => x.includes("unknown_option")) };
  });
  assert.equal(out.first, "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72");
  assert.equal(out.second, "crm-1");
  assert.equal(out.warns.length, 1, out.warns.join("\n"));
  assert.match(out.warns[0], /identify options unknown: userID$/);
  await page.context().close();
});

test('init from a tag manager\'s variables: "true"/"false" of a boolean option mean the boolean everywhere (the engine too); antiFlicker true or "" is the default wait', async () => {
  const run = async (v) => {
    const page = await h.open();
    const out = await page.evaluate(async (v) => {
      let debug = 0;
      console.debug = () => debug++;
      window.dataLayer = [];
      const defs = { version: 1, segments: [{ id: "anyone", condition: {} }] };
      const o = { segments: defs, endpoint: "/v1/batch", flushInterval: 60000, debug: v, trackSegments: v, autoCapture: v, dataLayer: v, antiFlicker: v };
      const ks = await Keystone.init(o).catch((e) => e);
      if (!ks.track) return ks.code;
      ks.persistNow();
      await new Promise((r) => setTimeout(r, 600));
      const queued = Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).map((k) => localStorage.getItem(k)).join();
      return { debug: debug > 0, entered: queued.includes("Segment Entered"), pageviews: ks.profile().session.pageviews, layer: window.dataLayer.map((e) => e.event), named: "true" in window || "false" in window };
    }, v);
    await page.context().close();
    return out;
  };
  assert.deepEqual(await run("true"), { debug: true, entered: true, pageviews: 1, layer: ["keystone.ready"], named: false });
  assert.deepEqual(await run("false"), { debug: false, entered: false, pageviews: 0, layer: [], named: false });
  assert.deepEqual(await run(true), { debug: true, entered: true, pageviews: 1, layer: ["keystone.ready"], named: false }, "as the booleans");
  assert.equal(await run("TRUE"), "invalid_argument", "other text still rejects");
  // So are the consent categories (a consent manager's variables); the object given is not changed.
  let page = await h.open();
  const consent = await page.evaluate(async () => {
    const given = { analytics: "false", personalization: "true", marketing: "false" };
    const ks = await Keystone.init({ autoCapture: false, consent: given }).catch((e) => e);
    return { consent: ks.profile?.().consent ?? ks.code, given: given.analytics };
  });
  assert.deepEqual(consent, { consent: { analytics: false, personalization: true, marketing: false }, given: "false" });
  await page.context().close();
  const bad = await h.open();
  assert.equal(await bad.evaluate(() => Keystone.init({ consent: { analytics: "no" } }).then(() => "resolved", (e) => e.code)), "invalid_argument");
  await bad.context().close();
  page = await h.open();
  const af = await page.evaluate(async () => {
    const p = Keystone.init({ autoCapture: false, antiFlicker: "" }).then(() => "resolved", (e) => e.code);
    const cloaked = document.adoptedStyleSheets.length > 0;
    return { p: await p, cloaked };
  });
  assert.deepEqual(af, { p: "resolved", cloaked: true });
  await page.context().close();
});

test('init from a tag manager\'s variables: a number option given as its digits is that number (flushInterval "300" sends 300 ms after the event, not never)', async () => {
  const page = await h.open();
  const sent = await page.evaluate(async () => {
    const ks = await Keystone.init({ endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false, flushInterval: "300", flushAt: "50", retryBase: "1000", requestTimeout: "10000" });
    ks.track("Digits Option Probe");
    const t0 = performance.now();
    // The collector's answer is the proof: a batch left on the interval (20 events or a hidden
    // page would send it too, and neither happens here).
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const { events } = await (await fetch("/collector/events")).json();
      if (events.some((e) => e.event === "Digits Option Probe")) return performance.now() - t0;
    }
    return null;
  });
  assert.ok(sent !== null && sent >= 250 && sent < 3000, "the event was sent on the 300 ms interval, after " + sent + " ms");
  await page.context().close();
});

test("init options and payloads: any object but an array, a function or a built-in (told apart across frames too): a module namespace, an instance with Symbol.toStringTag, another frame's object or URL", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const f = document.createElement("iframe");
    document.body.appendChild(f);
    const W = f.contentWindow;
    // A module namespace ([object Module]) as the options, with another frame's URL as segments.
    const ns = await import("data:text/javascript,export const autoCapture = false; export const storagePrefix = 'acme:ks/';");
    const ks = await Keystone.init(ns).catch((e) => e);
    if (!ks.track) return ks.code;
    const loaded = await ks.loadSegments(new W.URL("data:application/json," + encodeURIComponent(JSON.stringify({ version: 1, segments: [{ id: "anyone", condition: {} }] }))));
    class Model {
      get [Symbol.toStringTag]() {
        return "Model";
      }
      constructor() {
        this.sku = "A1";
      }
    }
    const good = [new Model(), ns, new W.Object(), W.JSON.parse('{"a":[1]}'), Object.freeze({ a: 1 })];
    const bad = [new W.Array(), new W.Map(), new W.Date(0), new Date(0), new String("s"), Object(1n), new Uint8Array(2), new W.Float64Array(1), new ArrayBuffer(2), new Error("x"), new W.Error("x"), Promise.resolve(), /re/, new WeakMap(), new Set(), (function () { return arguments; })(1)];
    const errors = [];
    ks.on("error", (e) => errors.push(e.code));
    for (const v of good) ks.track("Good", v);
    for (const v of bad) ks.track("Bad", v);
    const traits = [];
    for (const v of bad) traits.push(await ks.identify("ada@example.com", v).then(() => "resolved", (e) => e.code));
    const p = ks.profile();
    return { prefix: Object.keys(localStorage).filter((k) => k.startsWith("acme:ks/")).length > 0, loaded: loaded.loaded, segs: ks.segments(), good: p.events.Good.count, bad: p.events.Bad || null, errors: errors.length, traits };
  });
  assert.deepEqual(out, { prefix: true, loaded: ["anyone"], segs: ["anyone"], good: 5, bad: null, errors: 16 * 2, traits: Array(16).fill("invalid_argument") });
  await page.context().close();
});

test("wrong-typed payloads record nothing and change nothing; object literals, class instances and null-prototype objects are accepted", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const wrong = [NaN, Symbol("s"), () => {}, new Map([["a", 1]]), [1, 2], "str"];
    const settle = (p) => p.then(() => "resolved", (e) => e.code);
    const pageviews = ks.profile().session.pageviews;
    for (const v of wrong) {
      ks.track("Bad", v);
      ks.page(v);
    }
    const identify = [];
    for (const v of wrong) identify.push(await settle(ks.identify("ada@example.com", v)), await settle(ks.identify("ada@example.com", {}, v)));
    const consent = [await settle(ks.setConsent(new Map([["analytics", false]]))), await settle(ks.setConsent(42))];
    class Item {
      constructor() {
        this.sku = "A1";
      }
    }
    ks.track("Good", new Item());
    ks.track("Good", Object.assign(Object.create(null), { sku: "B2" }));
    ks.track("Good", { nested: { a: [1, { b: 2 }] } });
    ks.track("Good", null);
    const p = ks.profile();
    return { bad: p.events.Bad || null, pageviews: p.session.pageviews - pageviews, userId: ks.userId(), identify, consent, analytics: p.consent.analytics, good: p.events.Good.count, in: ks.inSegment(42) };
  });
  assert.equal(out.bad, null, "no Bad event recorded");
  assert.equal(out.pageviews, 0, "no page view recorded");
  assert.deepEqual(out.identify, Array(12).fill("invalid_argument"));
  assert.equal(out.userId, null, "no identify applied");
  assert.deepEqual(out.consent, ["invalid_argument", "invalid_argument"]);
  assert.equal(out.analytics, true);
  assert.equal(out.good, 4);
  assert.equal(out.in, false);
  await page.context().close();
});

test("every method of DESIGN §2 exists on the instance", async (t) => {
  const page = await h.open();
  const have = await page.evaluate(async (api) => {
    const ks = await Keystone.init({});
    return api.filter((m) => typeof ks[m] === "function");
  }, API);
  await page.context().close();
  const missing = API.filter((m) => !have.includes(m));
  // Methods still being built are reported as TODO (visible in the run's summary) until they land.
  if (missing.length) t.todo("not yet implemented: " + missing.join(", "));
  assert.ok(have.length >= 10, "the core methods exist: " + have.join(", "));
});

test("no method throws into the caller; errors are KeystoneErrors with a code, an event and one warning", async () => {
  const page = await h.open();
  const results = await page.evaluate(async (bad) => {
    const ks = await Keystone.init({});
    const warns = [];
    const w = console.warn;
    console.warn = (...a) => (warns.push(a.join(" ")), w.apply(console, a));
    const events = [];
    ks.on("error", (e) => events.push(e));
    const H = new Proxy({}, { get() { throw new Error("hostile get"); }, ownKeys() { throw new Error("hostile keys"); }, getOwnPropertyDescriptor() { throw new Error("hostile descriptor"); }, getPrototypeOf() { throw new Error("hostile proto"); } });
    const CYC = {};
    CYC.self = CYC;
    const out = [];
    for (const [m, cases] of Object.entries(bad)) {
      if (typeof ks[m] !== "function") continue;
      for (const [src, expected] of cases) {
        const args = new Function("H", "CYC", "return [" + src + "]")(H, CYC);
        warns.length = 0;
        events.length = 0;
        let threw = null;
        let ret;
        try {
          ret = ks[m](...args);
        } catch (e) {
          threw = String(e);
        }
        let rejected = null;
        const isPromise = ret instanceof Promise;
        if (isPromise) rejected = await ret.then(() => null, (e) => e);
        await new Promise((r) => setTimeout(r, 0));
        const describe = (e) => e && { isError: e instanceof Error, name: e.name, code: e.code, enumerable: Object.keys(e).includes("code") };
        out.push({ m, src, expected, threw, isPromise, rejected: describe(rejected), events: events.map(describe), warns: warns.slice() });
      }
    }
    return out;
  }, BAD);
  const problems = [];
  for (const r of results) {
    const where = `${r.m}(${r.src})`;
    if (r.threw) problems.push(`${where} threw ${r.threw}`);
    const async = ["identify", "loadSegments", "setConsent", "forget", "flush"].includes(r.m);
    if (async && !r.isPromise) problems.push(`${where} did not return a Promise`);
    const errs = [...(r.rejected ? [r.rejected] : []), ...r.events];
    for (const e of errs) {
      if (!e.isError || e.name !== "KeystoneError" || typeof e.code !== "string" || !e.enumerable) problems.push(`${where} reported a non-KeystoneError ${JSON.stringify(e)}`);
    }
    const code = r.rejected ? r.rejected.code : r.events[0] && r.events[0].code;
    if (r.expected) {
      if (async && !r.rejected) problems.push(`${where} should reject with ${r.expected}`);
      if (code !== r.expected) problems.push(`${where} should report ${r.expected}, reported ${code}`);
    }
    if (code) {
      if (!r.events.some((e) => e.code === code)) problems.push(`${where} reported ${code} without an "error" event`);
      const w = r.warns.filter((x) => x.includes(code));
      if (w.length !== 1) problems.push(`${where} should warn once with ${code}, warned ${JSON.stringify(r.warns)}`);
    } else if (r.warns.length) problems.push(`${where} warned without reporting an error: ${r.warns.join(" | ")}`);
  }
  assert.deepEqual(problems, []);
  assert.ok(results.length >= 25, `${results.length} bad calls checked`);
  const ok = await page.evaluate(async () => {
    const ks = await Keystone.init({});
    // forget() withdrew all consent (DESIGN §12); grant it again before checking.
    await ks.setConsent({ analytics: true, personalization: true });
    ks.track("Still Working", { ok: true });
    return ks.profile().events["Still Working"].count;
  });
  assert.equal(ok, 1, "the instance still works after every bad call");
  await page.context().close();
});

test("debug: one console.debug line per call and per notice, never the raw email; silent without it", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const lines = [];
    console.debug = (...a) => lines.push(a.map((x) => (typeof x == "string" ? x : String(JSON.stringify(x)))).join(" "));
    const defs = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };
    const ks = await Keystone.init({ debug: true, autoCapture: false, segments: defs });
    ks.track("Product Viewed", { sku: "A1" });
    await ks.identify("Ada@Example.com", { tier: "gold" });
    ks.reset();
    // Absent arguments are not logged as "undefined".
    await ks.identify("bob@example.com");
    ks.track("Bare");
    ks.page();
    return lines;
  });
  assert.ok(out.some((l) => l.startsWith("[keystone] track Product Viewed") && l.includes("A1")), out.join("\n"));
  assert.ok(out.some((l) => l === "[keystone] segment:enter viewers"), out.join("\n"));
  assert.ok(out.some((l) => l.startsWith("[keystone] identify")), out.join("\n"));
  for (const l of ["[keystone] identify", "[keystone] track Bare", "[keystone] page"]) assert.ok(out.includes(l), l + " in\n" + out.join("\n"));
  assert.ok(!out.some((l) => /undefined/.test(l)), out.join("\n"));
  assert.ok(!out.some((l) => /(ada|bob)@example\.com/i.test(l)), "no email in the log");
  await page.context().close();

  const quiet = await h.open();
  const none = await quiet.evaluate(async () => {
    let n = 0;
    console.debug = () => n++;
    const ks = await Keystone.init({ autoCapture: false });
    ks.track("Product Viewed");
    return n;
  });
  assert.equal(none, 0);
  await quiet.context().close();
});

test("methods work detached from the instance; on() with an unknown event name warns once, with an error event", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const problems = [];
    window.addEventListener("error", (e) => problems.push(e.message));
    window.addEventListener("unhandledrejection", (e) => problems.push(String(e.reason)));
    const ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "any", condition: { $performed: { event: "E" } } }] } });
    const { track, inSegment, segments, profile, refresh, identify, on, off } = ks;
    track("E");
    refresh();
    await identify("ada@example.com");
    await Promise.resolve().then(ks.flush);
    const f = () => {};
    on("segment:exit", f);
    off("segment:exit", f);
    const errors = [];
    on("error", (e) => errors.push([e instanceof Error, e.code, e.message]));
    ks.on("segment_enter", f);
    ks.on("segment_enter", () => {});
    await new Promise((r) => setTimeout(r, 20));
    return { problems, errors, inSeg: inSegment("any"), segs: segments(), identified: profile().identified, keys: Object.keys(ks) };
  });
  assert.deepEqual(out, { problems: [], errors: [[true, "invalid_argument", 'on(): no event is named "segment_enter"']], inSeg: true, segs: ["any"], identified: true, keys: [] });
  assert.equal(page.warnings.filter((w) => w.includes('no event is named "segment_enter"')).length, 1, page.warnings.join("\n"));
  await page.context().close();
});

test("answers reflect the present after the clock jumps past a window (timers that did not run: a device asleep)", async () => {
  const page = await h.open();
  await page.clock.install({ time: new Date("2026-05-01T10:00:00Z") });
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const before = await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "recent", condition: { $performed: { event: "E", within: "30m" } } }] } });
    window.exits = [];
    ks.on("segment:exit", (e) => exits.push(e.segment));
    ks.track("E");
    return ks.inSegment("recent");
  });
  assert.equal(before, true);
  await page.clock.setSystemTime(new Date("2026-05-01T13:00:00Z")); // no timer runs
  const after = await page.evaluate(async () => {
    const r = { inSeg: ks.inSegment("recent"), segs: ks.segments() };
    await Promise.resolve();
    return { ...r, exits };
  });
  assert.deepEqual(after, { inSeg: false, segs: [], exits: ["recent"] });
  await page.context().close();
});

test("explain() also catches up a time-based change whose timer did not run (a device asleep), as segments() does", async () => {
  const page = await h.open();
  await page.clock.install({ time: new Date("2026-05-01T10:00:00Z") });
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const before = await page.evaluate(async () => {
    const segments = [{ id: "recent", condition: { $performed: { event: "E", within: "30m" } } }];
    const experiences = [{ id: "hero", variants: [{ id: "offer", segment: "recent" }, { id: "plain" }] }];
    window.ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments, experiences } });
    window.exits = [];
    ks.on("segment:exit", (e) => exits.push(e.segment));
    ks.track("E");
    return [ks.explain("recent").result, ks.explain("hero").variant];
  });
  assert.deepEqual(before, [true, "offer"]);
  await page.clock.setSystemTime(new Date("2026-05-01T13:00:00Z")); // no timer runs
  // The pending exit is recorded before explain() answers, and the answer agrees with it: the
  // experience's variant too (it reads membership). Its listeners are called a microtask after
  // the read (a read runs none: it may be made during a framework's render).
  const after = await page.evaluate(async () => {
    const e = ks.explain("recent");
    const during = exits.slice();
    const variant = ks.explain("hero").variant;
    await Promise.resolve();
    return { result: e.result, during, heard: exits.slice(), variant };
  });
  assert.deepEqual(after, { result: false, during: [], heard: ["recent"], variant: "plain" });
  await page.context().close();
});

test("a throwing listener does not break Keystone, the caller, or the other listeners", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "any", condition: { $performed: { event: "E" } } }] } });
    const seen = [];
    window.addEventListener("error", (e) => e.preventDefault());
    ks.on("segment:enter", () => {
      throw new Error("listener bug");
    });
    ks.on("segment:enter", (e) => seen.push(e.segment));
    let threw = false;
    try {
      ks.track("E");
    } catch (_) {
      threw = true;
    }
    await new Promise((r) => setTimeout(r, 20));
    return { threw, seen, inSeg: ks.inSegment("any") };
  });
  assert.deepEqual(out, { threw: false, seen: ["any"], inSeg: true });
  await page.context().close();
});

test("listeners hear a call's changes before it returns; a listener may call Keystone again", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({
      segments: {
        version: 1,
        segments: [
          { id: "viewer", condition: { $performed: { event: "Viewed" } } },
          { id: "rewarded", condition: { $performed: { event: "Reward" } } },
        ],
      },
    });
    const log = [];
    ks.on("segment:enter", ({ segment }) => {
      log.push("enter " + segment);
      // Called back from a listener: its own changes are heard too, in order.
      if (segment === "viewer") ks.track("Reward");
    });
    ks.on("segment:exit", ({ segment }) => log.push("exit " + segment));
    ks.on("identify", ({ userId }) => log.push("identify " + userId.length));
    ks.on("reset", () => log.push("reset"));
    ks.on("error", (e) => log.push("error " + e.code));
    ks.track("Viewed");
    const afterTrack = [...log];
    ks.track(42);
    const afterBad = [...log];
    const p = ks.identify("ada@example.com");
    const afterIdentify = [...log];
    await p;
    ks.reset();
    const afterReset = [...log];
    return { afterTrack, afterBad, afterIdentify, afterReset, segs: ks.segments() };
  });
  assert.deepEqual(out.afterTrack, ["enter viewer", "enter rewarded"]);
  assert.deepEqual(out.afterBad.slice(2), ["error invalid_argument"]);
  assert.deepEqual(out.afterIdentify.slice(3), ["identify 64"]);
  assert.deepEqual(out.afterReset.slice(4).sort(), ["exit rewarded", "exit viewer", "reset"]);
  assert.deepEqual(out.segs, []);
  await page.context().close();
});

test("a read that records a navigation's page view first (inSegment in a component's render after a router's pushState) calls the listeners a microtask after it returns, not during it", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "cart", condition: { "context.path": "/cart" } }] } });
    const log = [];
    ks.on("segment:enter", ({ segment }) => log.push("enter " + segment));
    ks.on("segment:exit", ({ segment }) => log.push("exit " + segment));
    const read = (what, f) => {
      log.push(what + " begins");
      const r = f();
      log.push(what + " returns " + r);
    };
    // A router: pushState, then its components render and read membership.
    history.pushState({}, "", "/cart");
    read("inSegment", () => ks.inSegment("cart"));
    read("segments", () => ks.segments().join());
    await Promise.resolve();
    log.push("microtask");
    // A change made by a call (not a read) is heard before that call returns.
    history.pushState({}, "", "/home");
    ks.track("Clicked");
    log.push("track returned");
    await new Promise((r) => setTimeout(r, 0));
    history.back();
    await new Promise((r) => addEventListener("popstate", r, { once: true }));
    read("profile", () => ks.profile().context.path);
    const sync = [...log];
    await new Promise((r) => setTimeout(r, 0));
    return { sync, log };
  });
  assert.deepEqual(out.sync, [
    "inSegment begins", "inSegment returns true", "segments begins", "segments returns cart", "enter cart", "microtask",
    "exit cart", "track returned",
    "profile begins", "profile returns /cart",
  ]);
  assert.deepEqual(out.log.slice(out.sync.length), ["enter cart"]);
  await page.context().close();
});

test("a listener removed by another listener during an event is not called for it (as with DOM listeners); one added then waits for the next", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "a", condition: { $performed: { event: "A" } } }, { id: "b", condition: { $performed: { event: "B" } } }] } });
    const log = [];
    const second = ({ segment }) => log.push("second " + segment);
    const third = ({ segment }) => log.push("third " + segment);
    ks.on("segment:enter", ({ segment }) => {
      log.push("first " + segment);
      if (segment === "a") ks.off("segment:enter", second).on("segment:enter", third);
    });
    ks.on("segment:enter", second);
    ks.track("A");
    ks.track("B");
    return log;
  });
  assert.deepEqual(out, ["first a", "first b", "third b"]);
  await page.context().close();
});

test("a listener that calls Keystone again: every listener hears the changes in the order they happened", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({
      autoCapture: false,
      dataLayer: true,
      segments: {
        version: 1,
        segments: [
          { id: "x", condition: { $and: [{ $performed: { event: "A" } }, { $nor: [{ $performed: { event: "B" } }] }] } },
          { id: "known", condition: { identified: true } },
        ],
      },
    });
    const log = [];
    ks.on("segment:enter", ({ segment }) => segment === "x" && ks.track("B"));
    ks.on("reset", () => ks.identify("guest@example.com"));
    ks.on("segment:enter", ({ segment }) => log.push("enter " + segment));
    ks.on("segment:exit", ({ segment }) => log.push("exit " + segment));
    ks.on("reset", () => log.push("reset"));
    ks.track("A");
    const first = { log: log.splice(0), segs: ks.segments() };
    await ks.identify("staff@example.com");
    log.length = 0;
    ks.reset();
    await new Promise((r) => setTimeout(r, 20));
    const layer = dataLayer.filter((e) => e.keystoneSegment === "x").map((e) => e.event);
    return { first, second: { log, known: ks.inSegment("known") }, layer };
  });
  assert.deepEqual(out.first, { log: ["enter x", "exit x"], segs: [] });
  assert.deepEqual(out.second, { log: ["reset", "exit known", "enter known"], known: true });
  assert.deepEqual(out.layer, ["keystone.segment_enter", "keystone.segment_exit"]);
  await page.context().close();
});

test("listeners that keep answering each other's changes stop instead of hanging the page", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "on", condition: { "traits.on": true } }] } });
    let heard = 0;
    ks.on("segment:enter", () => (heard++, ks.setTraits({ on: false })));
    ks.on("segment:exit", () => (heard++, ks.setTraits({ on: true })));
    ks.setTraits({ on: true });
    const stopped = heard;
    ks.setTraits({ other: 1 }); // and Keystone goes on working
    return { stopped, after: heard, traits: Object.keys(ks.profile().traits).sort() };
  });
  assert.ok(out.stopped > 100 && out.stopped <= 10_000, String(out.stopped));
  assert.equal(out.after, out.stopped);
  assert.deepEqual(out.traits, ["on", "other"]);
  await page.context().close();
});

test("a segments URL that fails: init resolves and reports definitions_fetch_failed; loadSegments(url) rejects with it", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false, segments: "/nowhere/segments.json" });
    const events = [];
    ks.on("error", (e) => events.push(e.code));
    await new Promise((r) => setTimeout(r, 50));
    await ks.loadSegments({ version: 1, segments: [{ id: "all", condition: {} }] });
    const rejected = await ks.loadSegments("/nowhere/segments.json").then(() => "resolved", (e) => e instanceof K.KeystoneError && e.code);
    return { events, rejected, kept: ks.inSegment("all") };
  });
  assert.deepEqual(out, { events: ["definitions_fetch_failed", "definitions_fetch_failed"], rejected: "definitions_fetch_failed", kept: true });
  assert.equal(page.warnings.filter((w) => w.startsWith("[keystone] definitions_fetch_failed")).length, 2);
  await page.context().close();
});

test("a segments URL behind a page's fetch wrapper that throws, or never answers and drops the abort signal: init resolves, definitions_fetch_failed", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.clock.install();
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  // Monitoring scripts wrap window.fetch; some rebuild the request without its signal.
  await page.evaluate(() => {
    const real = window.fetch;
    window.__asked = [];
    window.fetch = function (url, init) {
      if (!String(url).includes("segments")) return real.apply(this, arguments);
      window.__asked.push(String(url));
      if (String(url).includes("throws")) throw new TypeError("the wrapper failed");
      return new Promise(() => {}); // no answer, and the abort signal is not passed on
    };
    window.__out = {};
    const run = (name, url) =>
      Keystone.init({ autoCapture: false, segments: url }).then(async (ks) => {
        const heard = [];
        ks.on("error", (e) => heard.push(e.code));
        await new Promise((r) => setTimeout(r, 0));
        window.__out[name] = heard;
      }, (e) => (window.__out[name] = "init rejected: " + e.code));
    window.__run = run;
    run("throws", "/throws/segments.json");
  });
  await page.clock.runFor(100);
  await page.waitForFunction(() => window.__out.throws);
  const a = await page.evaluate(() => window.__out.throws);
  // The instance is kept: the next URL goes through loadSegments.
  await page.evaluate(() => {
    window.__ls = null;
    Keystone.init().then((ks) => ks.loadSegments("/silent/segments.json").then(() => (window.__ls = "resolved"), (e) => (window.__ls = e.code)));
  });
  await page.waitForFunction(() => window.__asked.length == 2);
  await page.clock.runFor(9_000);
  const early = await page.evaluate(() => window.__ls);
  await page.clock.runFor(1_500);
  await page.waitForFunction(() => window.__ls, null, { timeout: 5000 }).catch(() => {});
  const b = await page.evaluate(() => window.__ls);
  assert.deepEqual(a, ["definitions_fetch_failed"], "a wrapper that throws at once is an unreachable URL");
  assert.equal(early, null, "still waiting before 10 s");
  assert.equal(b, "definitions_fetch_failed", "no answer within 10 s");
  await ctx.close();
});

test("wasm that cannot be fetched: Keystone.load() and init reject with wasm_load_failed", async () => {
  const ctx = await h.browser.newContext();
  await ctx.route("**/keystone_bg.wasm", (route) => route.fulfill({ status: 404, body: "" }));
  const page = await h.open("/tests/esm.html", { context: ctx });
  const codes = await page.evaluate(async () => {
    const code = (p) => p.then(() => "resolved", (e) => e instanceof K.KeystoneError && e.code);
    return [await code(Keystone.load()), await code(Keystone.init({ autoCapture: false }))];
  });
  assert.deepEqual(codes, ["wasm_load_failed", "wasm_load_failed"]);
  assert.deepEqual(page.problems.filter((p) => !/404/.test(p)), []);
  await ctx.close();
});

// "Sorted" as JavaScript sorts: segments() equals `[...ids].sort()` (UTF-16 code units), which
// differs from code point order for ids mixing U+E000–U+FFFF with characters beyond U+FFFF
// (U+FF5E sorts after U+1F600 in JavaScript, before it by code point); the profile's `segments`
// and the data layer's `keystoneSegments` too.
test("segments() is sorted as [...ids].sort() sorts, also for ids mixing U+E000–U+FFFF and astral characters; so are profile().segments and keystoneSegments", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ids = ["b", "\u{1F600}", "\uFF5E", "a\uE000", "a\u{10000}", "Z"];
    const ks = await Keystone.init({ autoCapture: false, dataLayer: true, consent: { marketing: true }, segments: { version: 1, segments: ids.map((id) => ({ id, condition: {} })) } });
    return { js: [...ids].sort(), segments: ks.segments(), profile: ks.profile().segments, dataLayer: window.dataLayer.find((e) => e.event == "keystone.ready")?.keystoneSegments, all: ids.every((id) => ks.inSegment(id)) };
  });
  assert.deepEqual(out.segments, out.js);
  assert.deepEqual(out.profile, out.js);
  assert.deepEqual(out.dataLayer, out.js);
  assert.equal(out.all, true);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

// One message for one fault: a track without a name and a login without an email address say
// so in the same words whether the argument is missing, of another type or empty/malformed.
test("track without an event name and identify without an email address: one message each, whatever was passed", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const errors = [];
    ks.on("error", (e) => errors.push(e.message));
    for (const name of ["", 42, undefined]) ks.track(name);
    const track = errors.splice(0);
    const identify = [];
    for (const email of ["not an email", 42, undefined]) identify.push(await ks.identify(email).then(() => "resolved", (e) => e.code + ": " + e.message));
    return { track, identify };
  });
  assert.deepEqual(out.track, Array(3).fill("track needs a non-empty event name string"));
  assert.deepEqual(out.identify, Array(3).fill('invalid_email: identify needs an email address such as "ada@example.com"'));
  await page.context().close();
});
