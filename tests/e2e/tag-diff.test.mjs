// Differential random test of the tag-manager path against the ESM path (DESIGN §1): a seeded
// generator makes a random sequence of public calls — init with random options (consent,
// segments as an object or a URL, dataLayer, trackSegments, storagePrefix), track and page with
// random properties (nested objects and arrays, Dates, class instances, unicode, -0, NaN,
// ±Infinity, undefined), setTraits, identify with and without a userId (a string, a number, an
// empty one), reset, setConsent, loadSegments (valid, partly invalid, invalid, a URL), on/off of
// four listeners (one calls Keystone back), decide, explain, segments, inSegment, profile,
// refresh, flush, a later init (same or other options, none, or a number) — with the page now and
// then changing its title or URL (`history.replaceState`) and the object it passed to a call right
// after it. The same sequence runs twice, each in a fresh browser context on the same page
// (/tests/blank.html):
//   (a) through the snippet (pkg/dist/snippet.js) and keystone.global.js: the first `cut` calls
//       are made on the stub while a Playwright route holds keystone.global.js back; the options
//       of the start come from `window.keystoneConfig`, from an `init(options)` queued on the
//       stub, or from both (split, a key in both); once the script is released and Keystone is
//       ready, the rest of the calls are made on `window.keystone`;
//   (b) through the ESM entry: `Keystone.init(options)`, then every call in order (the queued
//       part in the task init resolves in, as the replay makes them).
// Then the end states must agree: profile() (ids turned into labels by first appearance, times
// dropped), segments(), userId(), anonymousId(), the events that reached the local collector
// (type, event, properties, traits, userId, context minus the volatile fields, in order), the
// listener calls, the data layer, the outcome of every Promise call, the answers of the calls
// made once ready, the `[keystone]` warnings (each error is reported with its stable code), what
// the page's `data-keystone-show` element shows, and no page error.
//
// Differences the README ("Quick start: tag manager") documents, encoded here:
// - a query made on the stub answers the empty state (`segments()` [], `inSegment()` false,
//   `profile()`/`decide()`/`explain()`/`anonymousId()`/`userId()` null; checked) and is not
//   replayed: in run (b) a query of the queued part is not made (a `decide()` would record an
//   exposure);
// - `on`/`off` return `window.keystone` (the stub, then the same object upgraded), the instance
//   in run (b): both are compared as "self";
// - an `init(options)` made before the engine has loaded adds its options to those of
//   keystoneConfig and of the inits before it: run (b) starts with all of them merged in call
//   order, and the queued inits' own answers are not compared;
// - a queued call records the time of the call: timestamps are never compared (nor firstSeen,
//   lastSeen, firstAt, lastAt, the session's start and length), and the generator keeps clear
//   of time windows (no score decay, windows of a day or more);
// - arguments of a queued call are copied through JSON when they are plain objects: the
//   generator gives only values that JSON carries as a direct call records them (NaN and
//   ±Infinity in properties and traits are null either way; no NaN `userId`, no number option),
//   and changes afterwards only the plain objects it passed (a class instance is queued as given).
// Where the README is silent, and the two paths differ by what they are (not a defect):
// - once the queue is replayed, the context is the page's as it is then, its title included
//   (Keystone starts then, and the context is captured at the start; the title is not followed
//   otherwise), while in run (b) it is the one captured at the last page view or URL change. A
//   queued part that changes the title or the URL puts back, at its end, the page's URL and the
//   title of run (b)'s context (read there by a profile() that run (a) does not make), so both
//   go on from the same page (the events of the queued calls carry the page each was made on);
//   and the URL changes are not made while queued with auto-capture on (a navigation made before
//   ready is recorded at the replay, as the README says, after the queued calls);
// - the engine tells two sessions apart by their last activity, to the millisecond, and takes
//   either on a tie when a login merges the anonymous profile into a person's set-aside one:
//   calls queued on the stub are made within one millisecond far more often than calls that
//   run the engine, so the sequences leave a millisecond before and after each identify and
//   reset (in both runs);
// - the trackSegments reports (`Segment Entered`/`Exited`) are made asynchronously, under the
//   profile's lock, each pass the net change since the last one (exits, then entries, by id):
//   compared apart from the other events, as the segments whose last report is an entry;
// - a hash-only URL change is not generated: the page view auto-capture defers under consent is
//   recorded, once consent comes, with the landing page's context by the script-tag build and
//   with the context current then by the ESM entry (after a page() made on `#frag`, its URL);
// - once Keystone is ready, both runs wait for the Promises of the queued part before the next
//   call: a definitions URL loaded by a queued call lands among later calls at a moment that
//   depends on the network (its warnings and events before or after theirs), in either run; for
//   the same reason a `loadSegments` of a URL made once ready is always awaited (one left in
//   flight across an awaited `identify` and `flush` landed before or after the next `identify`
//   event from one run of a seed to the next);
// - the data layer hears of the queued calls once they are replayed: run (a) pushes one
//   `keystone.ready` then, with the membership and the marketing consent of that moment, where
//   run (b) pushed `keystone.ready` at the start and each queued call's changes; run (b)'s
//   pushes of the queued part are folded into that one before the comparison;
// - run (a) needs one call (b) does not make to know Keystone is ready: `keystone.init()` without
//   options once the script is released (it answers with the running instance), unless the
//   sequence's own `init` is made then.
//
// Seeds: a fixed list by default (≤ 60 s); KEYSTONE_TAG_SEED="7" or "1-200" or "3,9" runs
// others, KEYSTONE_TAG_STEPS the calls per sequence (24); KEYSTONE_TAG_DEBUG=1 prints every
// sequence and its state. A failure prints the seed, the sequence and the difference between
// the two states.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, seeds, prng } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const SEEDS = seeds("KEYSTONE_TAG_SEED", [1, 2, 3, 4, 5, 6]);
const STEPS = Number(process.env.KEYSTONE_TAG_STEPS || 24);
const PAGE = "/tests/blank.html";
const TITLE = "Plain page (tag manager target)";

// ---- the generator ----------------------------------------------------------------------

const DEFS_A = {
  version: 1,
  segments: [
    { id: "viewers", condition: { $performed: { event: "Product Viewed" } } },
    { id: "gold", condition: { "traits.tier": "gold" } },
    { id: "shoe2", condition: { $performed: { event: "Product Viewed", where: { category: "shoes" }, within: "7d", count: { $gte: 2 } } } },
    { id: "funnel", condition: { $sequence: { steps: [{ event: "Product Viewed" }, { event: "Product Added" }], within: "1d" } } },
    { id: "known", condition: { identified: true } },
    { id: "engaged", condition: { "scores.engagement": { $gte: 3 } } },
    { id: "hot", condition: { $and: [{ $inSegment: "viewers" }, { "traits.age": { $gte: 30 } }] } },
    { id: "unicode", condition: { $performed: { event: "Ünïcødé ✓ 🚀" } } },
  ],
  scores: [{ id: "engagement", rules: [{ event: "Product Viewed", points: 1 }, { event: "Order Completed", where: { revenue: { $gte: 100 } }, points: 5 }] }],
  experiences: [
    {
      id: "hero",
      variants: [{ id: "gold_offer", segment: "gold", priority: 10, cap: { count: 2, within: "7d" } }, { id: "shoes", segment: "shoe2", priority: 5 }, { id: "default" }],
    },
  ],
};
const DEFS_B = {
  version: 1,
  segments: [
    { id: "buyers", condition: { $performed: { event: "Order Completed", sum: "revenue", value: { $gte: 100 } } } },
    { id: "silver", condition: { "traits.tier": { $in: ["silver", "gold"] } } },
    { id: "viewers", condition: { $performed: { event: "Product Viewed", count: { $gte: 2 } } } },
  ],
  experiences: [{ id: "hero", variants: [{ id: "silver_offer", segment: "silver" }, { id: "default" }] }],
};
// Valid documents with invalid segments (each rejected with its id and path), and a document
// that is not one at all (rejected whole).
const DEFS_PARTLY = {
  version: 1,
  segments: [
    { id: "gold", condition: { "traits.tier": "gold" } },
    { id: "broken", condition: { $performed: { event: 3 } } },
    { id: "cyclic", condition: { $inSegment: "cyclic" } },
  ],
};
const DEFS_BAD = { version: 1, segments: "nope" };
const DEFS_URL = "/tests/segments-definitions.json";

const EVENTS = ["Product Viewed", "Product Added", "Order Completed", "Signed Up", "Ünïcødé ✓ 🚀"];
const PEOPLE = [["ann@example.com"], ["  Bob@Example.COM "], ["cy@example.com", { userId: "crm-cy" }], ["Zoë@Exämple.com", { userId: 42 }], ["dee@example.com", { userId: "" }]];
const LISTEN = ["segment:enter", "segment:exit", "identify", "reset", "error"];

/** A random JSON-ish value, the kinds a site passes (nested, unicode, Dates, odd numbers). */
function value(r, depth = 0) {
  const k = r.int(depth > 2 ? 7 : 10);
  if (k === 0) return r.int(1000) - 200;
  if (k === 1) return r.pick([0.5, -0, 1e21, 2 ** 53, NaN, Infinity, -Infinity]);
  if (k === 2) return r.pick(["", "shoes", "hats", "Zoë 😀", "日本語", "a\"b\\c\n", "\u2028"]);
  if (k === 3) return r.chance(0.5);
  if (k === 4) return null;
  if (k === 5) return { $date: Date.UTC(2026, r.int(12), 1 + r.int(28)) };
  if (k === 6) return r.chance(0.5) ? undefined : { $item: { sku: "c" + r.int(9), category: "shoes" } };
  if (k === 7) return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
  return props(r, depth + 1);
}
function props(r, depth = 0) {
  const o = {};
  for (let n = r.int(4); n > 0; n--) o[r.pick(["category", "revenue", "sku", "nested", "list", "ключ", "emoji 🎉", "when"])] = value(r, depth);
  if (r.chance(0.5)) o.category = r.pick(["shoes", "hats"]);
  if (r.chance(0.3)) o.revenue = r.pick([20, 100, 150, "120"]);
  return o;
}
function traits(r) {
  const t = {};
  if (r.chance(0.6)) t.tier = r.pick(["gold", "silver", "bronze", null]);
  if (r.chance(0.5)) t.age = r.pick([25, 30, 41, "35", NaN]);
  if (r.chance(0.4)) t.firstName = r.pick(["Zoë", "Åsa 🌸", "", "李"]);
  if (r.chance(0.3)) t.prefs = props(r, 1);
  return t;
}
function consent(r) {
  const c = {};
  for (const k of ["analytics", "personalization", "marketing"]) if (r.chance(0.6)) c[k] = r.chance(0.7);
  return c;
}

/** One random call: [method, args, awaited, mutated] (awaited: the next call waits for its
 * Promise, once ready; mutated: the page changes the object it passed right after the call, as a
 * page reusing one object does). Dates are written {$date: ms} and made in the page. Besides the
 * API, the page changes its title, or its URL (`history.replaceState`: not while queued when
 * auto-capture is on, since a navigation made before ready is recorded at the replay, as the
 * README says, after the queued calls instead of between them). */
function call(r, queued, autoCapture) {
  if (!queued && r.chance(0.01)) return ["init", [5], 0]; // rejected (queued, it would be the start's when first)
  if (r.chance(0.04)) return ["title", [r.pick(["Basket", "Käse & Brot 🧀", ""])], 0];
  if (r.chance(0.04) && !(queued && autoCapture)) return ["nav", [r.pick(["?utm_source=mail&utm_campaign=x", "/deeper?utm_medium=cpc", ""])], 0];
  const c = base(r);
  if (r.chance(0.25) && /track|page|setTraits|identify|setConsent/.test(c[0])) c.push(1);
  return c;
}
function base(r) {
  const k = r.int(100);
  const aw = r.chance(0.4);
  if (k < 28) return ["track", r.chance(0.85) ? [r.pick(EVENTS), props(r)] : [r.pick(EVENTS)], 0];
  if (k < 36) return ["page", r.chance(0.5) ? [props(r)] : [], 0];
  if (k < 44) return ["setTraits", [traits(r)], 0];
  if (k < 52) {
    const p = r.pick(PEOPLE);
    const a = [p[0]];
    if (p[1] || r.chance(0.5)) a.push(traits(r));
    if (p[1]) a.push(p[1]);
    return ["identify", a, aw];
  }
  if (k < 56) return ["reset", [], 0];
  if (k < 62) return ["setConsent", [consent(r)], aw];
  if (k < 67) {
    // A URL made once Keystone is ready is awaited (see the header): it lands when the network
    // answers, so its warning and `error` event would fall among the later calls' at random.
    const d = r.pick([DEFS_A, DEFS_B, DEFS_PARTLY, DEFS_A, DEFS_B, DEFS_BAD, DEFS_URL]);
    return ["loadSegments", [d], aw || d === DEFS_URL];
  }
  if (k < 75) return ["on", [r.pick(LISTEN), r.int(4)], 0];
  if (k < 79) return ["off", [r.pick(LISTEN), r.int(4)], 0];
  if (k < 85) return ["decide", [r.pick(["hero", "hero", "none"])], 0];
  if (k < 88) return ["explain", [r.pick(["viewers", "gold", "buyers"])], 0];
  if (k < 91) return ["segments", [], 0];
  if (k < 93) return ["inSegment", [r.pick(["viewers", "gold", "silver"])], 0];
  if (k < 94) return r.chance(0.5) ? ["refresh", [], 0] : ["init", r.pick([[], [{ dataLayer: "tagLayer" }], [{ trackSegments: true }], [{ segments: DEFS_B, storagePrefix: "tag_" }]]), aw];
  if (k < 96) return ["profile", [], 0];
  return ["flush", [], aw];
}

function sequence(seed, steps) {
  const r = prng(seed);
  const options = { endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: r.chance(0.7) ? { engagement: false, scroll: false } : false };
  if (r.chance(0.8)) options.segments = r.pick([DEFS_A, DEFS_A, DEFS_B, DEFS_PARTLY, DEFS_URL]);
  if (r.chance(0.2)) options.storagePrefix = "tag_";
  if (r.chance(0.6)) options.consent = r.pick(["opt-in", "opt-out", consent(r), consent(r)]);
  if (r.chance(0.5)) options.dataLayer = r.pick([true, "tagLayer"]);
  if (r.chance(0.5)) options.trackSegments = r.chance(0.8);
  // The calls made on the stub, before keystone.global.js arrives.
  const cut = r.pick([0, r.int(steps + 1), r.int(steps + 1), steps]);
  const calls = Array.from({ length: steps }, (_, i) => call(r, i < cut, options.autoCapture));
  // Where the options come from in run (a): the config, an init queued on the stub (at a random
  // place among the queued calls; made once loaded when nothing is queued), or both.
  const how = r.pick(cut ? ["config", "queued", "both"] : ["config", "live"]);
  const cfg = {};
  const opts = {};
  for (const [key, v] of Object.entries(options)) (how === "config" || (how === "both" && r.chance(0.5)) ? cfg : opts)[key] = v;
  // A key both give: the queued init's value wins ("adds its options to the config's").
  if (how === "both" && r.chance(0.4)) for (const key of Object.keys(opts).slice(0, 1)) if (key !== "segments") cfg[key] = key === "consent" ? "opt-in" : key === "autoCapture" ? true : key === "dataLayer" ? "otherLayer" : opts[key];
  const initAt = how === "queued" || how === "both" ? r.int(cut + 1) : -1;
  const restore = calls.slice(0, cut).some((c) => c[0] === "title" || c[0] === "nav") ? [TITLE, PAGE] : null;
  // The options Keystone starts with: those of keystoneConfig and of every init queued on the
  // stub, in call order (the README: an init made before the engine has loaded adds its
  // options); run (b) starts with them.
  const inits = [];
  for (let i = 0; i <= cut; i++) {
    if (i === initAt) inits.push(opts);
    if (i < cut && calls[i][0] === "init") inits.push(calls[i][1][0]);
  }
  const start = Object.assign({}, how === "config" || how === "both" ? cfg : {}, ...(how === "live" ? [opts] : inits));
  return { options: start, calls, cut, how, cfg, opts, initAt, restore };
}

// ---- running a sequence in the page -----------------------------------------------------

/** In the page: makes `calls` on `target()` in order, recording each answer in window.__out.
 * `queued`: made on the stub (nothing awaited; queries not made when `skipQueries`). */
async function drive({ calls, from, queued, skipQueries, initAt, opts, restore }) {
  const QUERIES = ["segments", "inSegment", "explain", "decide", "profile", "anonymousId", "userId"];
  const out = (window.__out = window.__out || {});
  const log = (window.__log = window.__log || []);
  // Listener 3 also calls Keystone back (a track of its own) when it hears a segment change.
  const cbs = (window.__cbs =
    window.__cbs ||
    [0, 1, 2, 3].map((i) => (e) => {
      log.push([i, e && typeof e == "object" ? { ...e, code: e.code, message: undefined } : e]);
      if (i === 3 && e && typeof e.segment == "string") window.__target().track("Heard", { segment: e.segment });
    }));
  class Item {
    constructor(o) {
      Object.assign(this, o);
    }
  }
  const revive = (v) =>
    v && typeof v == "object"
      ? Array.isArray(v)
        ? v.map(revive)
        : "$date" in v
          ? new Date(v.$date)
          : "$item" in v
            ? new Item(revive(v.$item))
            : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]))
      : v;
  const pending = (window.__pending = window.__pending || []);
  const err = (e) => ({ code: e && e.code, segmentId: e && e.segmentId, path: e && e.path });
  // Once ready, the page first waits for what it queued (a definitions URL in flight would land
  // among the next calls at a moment that depends on the network, in either run).
  if (!queued) await Promise.all(pending);
  for (let n = 0; n <= calls.length; n++) {
    const i = from + n;
    if (queued && i === initAt) {
      const p = window.keystone.init(revive(opts));
      pending.push(p.then(() => (out.init = "ok"), (e) => (out.init = err(e))));
    }
    if (n === calls.length) {
      // The end of the queued part: the page's URL put back, and the title the context holds.
      if (restore) {
        history.replaceState({}, "", restore[1]);
        if (skipQueries) {
          const t = window.__target().profile()?.context?.title;
          window.__restoreTitle = restore[0] = typeof t == "string" ? t : restore[0];
        }
        document.title = restore[0];
      }
      break;
    }
    const [m, a0, aw, mut] = calls[n];
    if (skipQueries && (QUERIES.includes(m) || m === "init")) continue;
    if (m === "title") {
      document.title = a0[0];
      continue;
    }
    if (m === "nav") {
      history.replaceState({}, "", "/tests/blank.html" + a0[0]);
      continue;
    }
    let a = revive(a0);
    if (m === "on" || m === "off") a = [a[0], cbs[a[1]]];
    // A change of identity starts in a later millisecond than the calls before it, and the
    // calls after it come a millisecond later still (see the header).
    const tick = () => {
      for (const t = Date.now(); Date.now() === t; );
    };
    if (m === "reset" || m === "identify") tick();
    let v;
    try {
      v = m === "init" ? (window.__K || window.keystone).init(...a) : window.__target()[m](...a);
      if (m === "reset" || m === "identify") tick();
    } catch (e) {
      out[i] = [m, "threw", String(e)];
      continue;
    }
    // The page changes the object it passed (what the call recorded must not change).
    const o = mut && a[m === "track" || m === "identify" ? 1 : 0];
    if (o && typeof o == "object") {
      if (m === "setConsent") o.analytics = !o.analytics;
      else for (const key of Object.keys(o)) if (o[key] && typeof o[key] == "object") o[key].changed = 1;
      if (m !== "setConsent") Object.assign(o, { tier: "gold", category: "shoes", revenue: 999 });
    }
    if (v && typeof v.then == "function") {
      const p = v.then(
        (x) => (out[i] = [m, "ok", x && typeof x.track == "function" ? "instance" : x && typeof x == "object" && Array.isArray(x.rejected) ? { loaded: x.loaded, rejected: x.rejected.map(err) } : x === undefined ? "undefined" : x]),
        (e) => (out[i] = [m, "rejected", err(e)]),
      );
      pending.push(p);
      if (aw && !queued) await p;
    } else {
      out[i] = [m, "=", v === window.__target() ? "self" : v === undefined ? "undefined" : JSON.parse(JSON.stringify(v) ?? "null")];
    }
  }
}

/** In the page: the final state after a last flush. */
async function finish(layer) {
  await Promise.all(window.__pending || []);
  const k = window.__target();
  try {
    await k.flush();
  } catch (_) {}
  await new Promise((r) => setTimeout(r, 300));
  const l = layer && window[layer === true ? "dataLayer" : layer];
  return {
    out: window.__out,
    log: window.__log || [],
    profile: k.profile(),
    segments: k.segments(),
    userId: k.userId(),
    anonymousId: k.anonymousId(),
    dataLayer: l ? JSON.parse(JSON.stringify(l)) : null,
    shown: !document.getElementById("show").hidden,
  };
}

async function collectorQuiet() {
  let n = -1;
  for (let i = 0; i < 40 && n !== h.server.collector.events.length; i++) {
    n = h.server.collector.events.length;
    await new Promise((r) => setTimeout(r, 150));
  }
  return h.server.collector.events.slice();
}

async function fresh(hold) {
  h.server.collector.reset();
  const ctx = await h.browser.newContext();
  let release = () => {};
  if (hold) {
    const gate = new Promise((r) => (release = r));
    await ctx.route("**/keystone.global.js", async (route) => {
      await gate;
      await route.continue();
    });
  }
  const page = await h.open(PAGE, { context: ctx });
  return { ctx, page, release };
}

/** Run (a): the snippet and the script-tag build. */
async function runSnippet(s) {
  const { ctx, page, release } = await fresh(true);
  await page.evaluate(async (cfg) => {
    window.__target = () => window.keystone;
    if (cfg) window.keystoneConfig = cfg;
    await new Promise((r, j) => {
      const t = document.createElement("script");
      t.src = "/pkg/dist/snippet.js";
      t.onload = r;
      t.onerror = j;
      document.head.appendChild(t);
    });
  }, s.how === "config" || s.how === "both" ? s.cfg : null);
  await page.evaluate(drive, { calls: s.calls.slice(0, s.cut), from: 0, queued: true, initAt: s.initAt, opts: s.opts, restore: s.restore });
  const stub = await page.evaluate(() => window.keystone.__keystone === undefined && Array.isArray(window.keystone.q));
  release();
  await page.evaluate(async ({ live, opts }) => {
    await new Promise((r) => (function wait() { window.keystone.__keystone ? r() : setTimeout(wait, 10); })());
    try {
      await (live ? window.keystone.init(opts) : window.keystone.init());
      window.__out.init = "ok";
    } catch (e) {
      window.__out.init = { code: e && e.code };
    }
  }, { live: s.how === "live", opts: s.opts }).catch(() => {});
  await page.evaluate(drive, { calls: s.calls.slice(s.cut), from: s.cut, queued: false });
  const state = await page.evaluate(finish, s.options.dataLayer);
  state.events = await collectorQuiet();
  state.warnings = page.warnings.filter((w) => w.startsWith("[keystone]"));
  state.problems = page.problems;
  state.stub = stub;
  await ctx.close();
  return state;
}

/** Run (b): the ESM entry, every call once `init` resolved. */
async function runEsm(s) {
  const { ctx, page } = await fresh(false);
  // The calls of the queued part are made right after `init` resolves, in the same task (as
  // the replay makes them: a listener added then hears what the start reports).
  await page.evaluate(
    async ([options, drive, args]) => {
      window.__out = {};
      const { Keystone } = await import("/pkg/dist/keystone.js");
      window.__K = Keystone;
      try {
        window.__ks = await Keystone.init(options);
        window.__out.init = "ok";
      } catch (e) {
        window.__out.init = { code: e && e.code };
      }
      window.__target = () => window.__ks;
      await (0, eval)("(" + drive + ")")(args);
      // The data layer hears of the queued part once it is replayed: run (a) pushes then one
      // `keystone.ready` with the membership of that moment, if marketing consent holds then
      // (a consent choice queued before ready holds before anything is pushed), instead of the
      // pushes of the start and of each queued call (none: the array Keystone made is not there).
      const name = options && options.dataLayer && (options.dataLayer === true ? "dataLayer" : options.dataLayer);
      if (name && window[name] && window.__ks) {
        if (window.__ks.profile()?.consent?.marketing) window[name].splice(0, Infinity, { event: "keystone.ready", keystoneSegments: window.__ks.segments() });
        else delete window[name];
      }
    },
    [s.options, drive.toString(), { calls: s.calls.slice(0, s.cut), from: 0, queued: true, skipQueries: true, initAt: -1, restore: s.restore }],
  );
  await page.evaluate(drive, { calls: s.calls.slice(s.cut), from: s.cut, queued: false });
  const state = await page.evaluate(finish, s.options.dataLayer);
  state.events = await collectorQuiet();
  state.warnings = page.warnings.filter((w) => w.startsWith("[keystone]"));
  state.problems = page.problems;
  state.restoreTitle = await page.evaluate(() => window.__restoreTitle);
  await ctx.close();
  return state;
}

// ---- normalising and comparing -----------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const VOLATILE = new Set(["timestamp", "originalTimestamp", "sentAt", "receivedAt", "messageId", "firstSeen", "lastSeen", "firstAt", "lastAt", "startedAt", "durationSec", "userAgent", "userAgentData"]);

/** The comparable form of a run's state: ids as labels (A1, A2… by first appearance), volatile
 * fields dropped, the queued part's answers (which differ by design) left out. */
function normal(st, s, esm) {
  const ids = new Map();
  const label = (v) => (ids.has(v) || ids.set(v, "id" + (ids.size + 1)), ids.get(v));
  const walk = (v) => {
    if (typeof v == "string") return UUID.test(v) ? label(v) : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v == "object") {
      const o = {};
      for (const k of Object.keys(v).sort()) if (!VOLATILE.has(k)) o[k] = walk(v[k]);
      return o;
    }
    return v;
  };
  // The trackSegments reports are made asynchronously (under the profile's lock, one tab at a
  // time), each pass the net change since the last: their place among the other events, their
  // order and whether a quick enter and exit are reported at all depend on timing in either run.
  // Compared: the segments whose last report is an entry.
  const all = walk(st.events);
  const report = (e) => e.type === "track" && /^Segment (Entered|Exited)$/.test(e.event);
  const per = {};
  for (const e of all.filter(report)) (per[e.properties?.segment] ||= []).push(e.event === "Segment Entered");
  const reports = Object.keys(per).filter((id) => per[id].at(-1)).sort();
  const events = { calls: all.filter((e) => !report(e)), reports };
  // The answers of queued calls: Promise outcomes compared; the sync answers of the stub differ
  // by design (checked to be the documented empty state below).
  const out = {};
  const stubAnswers = [];
  for (const [i, o] of Object.entries(st.out)) {
    if (Number(i) < s.cut && o[0] === "init") continue; // (a) queued: resolved by the start; (b) its options are the start's
    if (Number(i) < s.cut && o[1] === "=") {
      if (!esm) stubAnswers.push([o[0], o[2]]);
      continue;
    }
    out[i] = o;
  }
  const profile = walk(st.profile);
  return {
    events,
    log: walk(st.log),
    out: walk(out),
    profile,
    segments: st.segments,
    userId: st.userId,
    anonymousId: walk(st.anonymousId),
    dataLayer: walk(st.dataLayer),
    shown: st.shown,
    warnings: st.warnings.map((w) => w.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<id>")),
    problems: st.problems,
    stubAnswers,
  };
}

/** The first differences between two normalised states, as text. */
function diff(a, b, path = "", out = []) {
  if (out.length > 12) return out;
  if (JSON.stringify(a) === JSON.stringify(b)) return out;
  if (a && b && typeof a == "object" && typeof b == "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) diff(a[k], b[k], path + "." + k, out);
    return out;
  }
  const cut = (v) => (v = JSON.stringify(v)) && (v.length > 240 ? v.slice(0, 240) + "…" : v);
  out.push(`${path}: snippet ${cut(a)} | esm ${cut(b)}`);
  return out;
}

const EMPTY = { segments: [], inSegment: false, explain: null, decide: null, profile: null, anonymousId: null, userId: null, on: "self", off: "self" };

for (const seed of SEEDS) {
  test(`seed ${seed}: the snippet's page ends as the ESM entry's (${STEPS} calls)`, async () => {
    const s = sequence(seed, STEPS);
    const esm = await runEsm(s);
    if (s.restore) s.restore = [esm.restoreTitle, PAGE];
    const a = normal(await runSnippet(s), s, false);
    const b = normal(esm, s, true);
    const stubAnswers = a.stubAnswers;
    delete a.stubAnswers;
    delete b.stubAnswers;
    const d = diff(a, b);
    const show = () =>
      `seed ${seed} (KEYSTONE_TAG_SEED=${seed} KEYSTONE_TAG_STEPS=${STEPS}): cut ${s.cut}, options via ${s.how}${s.initAt >= 0 ? " (init queued at " + s.initAt + ")" : ""}\n` +
      `options ${JSON.stringify(s.options)}\n` +
      s.calls.map((c, i) => `  ${i}${i < s.cut ? " (queued)" : ""}: ${c[0]}(${JSON.stringify(c[1]).slice(1, -1)})${c[2] ? " awaited" : ""}${c[3] ? " then changed" : ""}`).join("\n") +
      "\ndifferences:\n  " +
      d.join("\n  ");
    if (process.env.KEYSTONE_TAG_DEBUG) console.log(show(), "\n", JSON.stringify({ ...a, events: a.events.calls.map((e) => [e.type, e.event, e.userId && e.userId.slice(0, 6), e.anonymousId]), reports: a.events.reports }));
    // The queued part: the stub answered the documented empty state.
    for (const [m, v] of stubAnswers) if (m in EMPTY || v !== "undefined") assert.deepEqual(v, m in EMPTY ? EMPTY[m] : "undefined", `seed ${seed}: the stub's ${m}() answered ${JSON.stringify(v)}`);
    assert.deepEqual(d, [], show());
    assert.deepEqual(a.problems, [], show());
  });
}
