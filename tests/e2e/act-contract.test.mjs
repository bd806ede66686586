// Acceptance checks of DESIGN §1, §2, §3, §7 and §13 read as an outside tester reads them:
// the profile document field by field, decide()'s rule (priority whatever the document order,
// ties, eligibility, caps falling to the next variant, the holdout fraction over many
// identities), `Experience Viewed` as an event like any other, the data layer and trackSegments
// on a window that passes by itself, the script-tag build and the snippet (queued calls keep
// their arguments as they were, a module script tag, Promise-returning calls on every surface),
// the anti-flicker timeout and data-keystone-text of numbers and nested paths.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const SNIPPET = readFileSync(new URL("../../pkg/dist/snippet.js", import.meta.url), "utf8");
const DELIVERY = { endpoint: "/v1/batch", writeKey: "demo-key" };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A context (options `opts`) serving `body` as the page at /act/<name>.html, `prepare`d. */
async function pageOf(name, head, body = "", { opts = {}, prepare, referer } = {}) {
  const ctx = await h.browser.newContext(opts);
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acceptance ${name}</title><link rel="icon" href="data:,">${head}</head><body>${body}</body></html>`;
  await ctx.route(h.url("/act/" + name + ".html") + "*", (r) => r.fulfill({ contentType: "text/html; charset=utf-8", body: html }));
  if (prepare) await prepare(ctx);
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  page.on("console", (m) => m.type() === "error" && page.problems.push("console.error: " + m.text()));
  return { ctx, page, go: (query = "") => page.goto(h.url("/act/" + name + ".html" + query), referer ? { referer } : {}) };
}
const ESM = `<script type="module">import * as K from "/pkg/dist/keystone.js"; window.Keystone = K.Keystone; window.__ksLoaded = true;</script>`;

test("profile(): every field of DESIGN §3 with its type, the context from the page and the browser (utm, referrer, language, timezone), a plain copy", async () => {
  const { ctx, page, go } = await pageOf("profile", ESM, "", { opts: { locale: "de-DE", timezoneId: "America/Sao_Paulo" }, referer: "https://news.example.org/story?id=1" });
  await go("?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=boots&utm_content=top");
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async () => {
    const defs = { version: 1, segments: [{ id: "everyone", condition: {} }], scores: [{ id: "engagement", rules: [{ event: "Liked", points: 2 }] }] };
    const ks = await Keystone.init({ segments: defs });
    const p = ks.profile();
    // A copy: changing it changes nothing in Keystone.
    p.traits.hacked = true;
    p.segments.push("vip");
    p.context.utm.source = "changed";
    p.consent.marketing = false;
    const again = ks.profile();
    return { p: JSON.parse(JSON.stringify(again)), plain: Object.getPrototypeOf(again) === Object.prototype, json: JSON.stringify(again) === JSON.stringify(JSON.parse(JSON.stringify(again))), segs: ks.segments(), id: ks.anonymousId(), title: document.title };
  });
  const p = out.p;
  assert.equal(out.plain, true);
  assert.equal(out.json, true, "JSON-safe");
  for (const k of ["anonymousId", "userId", "identified", "traits", "context", "session", "firstSeen", "lastSeen", "scores", "segments", "consent"]) assert.ok(k in p, "field " + k);
  assert.equal(p.anonymousId, out.id);
  assert.match(p.anonymousId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual([p.userId, p.identified, p.traits], [null, false, {}], "the copy's changes did not reach Keystone");
  const c = p.context;
  const url = new URL(h.url("/act/profile.html"));
  assert.equal(c.url, h.url("/act/profile.html?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=boots&utm_content=top"));
  assert.deepEqual([c.path, c.host, c.title], ["/act/profile.html", url.host, out.title]);
  assert.deepEqual([c.referrer, c.referrerHost], ["https://news.example.org/story?id=1", "news.example.org"]);
  assert.deepEqual(c.utm, { source: "newsletter", medium: "email", campaign: "spring", term: "boots", content: "top" });
  assert.deepEqual([c.language, c.timezone, c.device], ["de-DE", "America/Sao_Paulo", "desktop"]);
  const s = p.session;
  assert.equal(typeof s.id, "string");
  assert.ok(s.id.length > 0);
  assert.deepEqual([s.count, s.pageviews, typeof s.durationSec], [1, 1, "number"]);
  for (const t of [s.startedAt, p.firstSeen, p.lastSeen]) assert.match(t, ISO);
  assert.ok(Date.parse(p.firstSeen) <= Date.parse(p.lastSeen));
  assert.deepEqual(p.scores, { engagement: 0 });
  assert.deepEqual(p.segments, ["everyone"]);
  assert.deepEqual(out.segs, ["everyone"]);
  assert.deepEqual(p.consent, { analytics: true, personalization: true, marketing: true }, "all granted when the option is omitted (no GPC)");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("decide(): the highest priority wins whatever the document order, ties go to document order, a variant without segment is always eligible, none eligible gives the last; a capped variant falls to the next eligible one", async () => {
  const { ctx, page, go } = await pageOf("decide", ESM);
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async () => {
    const defs = {
      version: 1,
      segments: [{ id: "a", condition: { "traits.a": true } }, { id: "b", condition: { "traits.b": true } }],
      experiences: [
        // Listed lowest priority first.
        { id: "order", variants: [{ id: "low", segment: "a", priority: 1 }, { id: "high", segment: "b", priority: 9 }, { id: "tie", segment: "b", priority: 9 }, { id: "last", segment: "a" }] },
        // A segment-less variant at the top priority wins over any segment.
        { id: "open", variants: [{ id: "everyone", priority: 100 }, { id: "gold", segment: "b", priority: 50 }, { id: "fallback" }] },
        // Negative priorities: the eligible one of highest priority, not the first eligible.
        { id: "negative", variants: [{ id: "n5", priority: -5 }, { id: "n1", segment: "a", priority: -1 }] },
        // A cap on the top variant (a window in weeks): once reached, the next eligible variant (not
        // the last).
        { id: "capped", variants: [{ id: "top", segment: "a", priority: 3, cap: { count: 1, within: "1w" } }, { id: "middle", segment: "a", priority: 2 }, { id: "bottom" }] },
      ],
    };
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    const v = (id) => ks.decide(id).variant;
    const r = { none: v("order"), negativeNone: v("negative") };
    ks.page();
    ks.setTraits({ a: true });
    r.a = [v("order"), v("negative")];
    ks.setTraits({ b: true });
    r.ab = [v("order"), v("order"), v("open")];
    r.same = JSON.stringify(ks.decide("order")) === JSON.stringify(ks.decide("order"));
    ks.page();
    r.capped = [v("capped"), v("capped")];
    ks.page();
    r.capped.push(v("capped"));
    ks.page();
    r.capped.push(v("capped"));
    return r;
  });
  assert.deepEqual(out, {
    none: "last", // no segment held: none eligible, the last variant
    negativeNone: "n5",
    a: ["low", "n1"],
    ab: ["high", "high", "everyone"],
    same: true,
    capped: ["top", "top", "middle", "middle"],
  });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("holdout: over 3,000 identities the share in the holdout is the configured fraction (10 %, 50 %, 90 %); they get the last variant flagged, the others never", async () => {
  const { ctx, page, go } = await pageOf("holdout", ESM);
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async () => {
    const fractions = [0.1, 0.5, 0.9];
    const defs = { version: 1, segments: [], experiences: fractions.map((f, i) => ({ id: "x" + i, holdout: f, variants: [{ id: "treatment" }, { id: "control" }] })) };
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    const N = 3000;
    const held = fractions.map(() => 0);
    const wrong = [];
    for (let n = 0; n < N; n++) {
      ks.reset(); // a new visitor
      fractions.forEach((_, i) => {
        const d = ks.decide("x" + i);
        if (d.holdout) held[i]++;
        if (d.variant !== (d.holdout ? "control" : "treatment")) wrong.push(d);
      });
    }
    return { shares: held.map((x) => x / N), wrong: wrong.slice(0, 3) };
  });
  assert.deepEqual(out.wrong, []);
  // 4 standard deviations of a binomial share over 3,000 draws is at most 0.037.
  [0.1, 0.5, 0.9].forEach((f, i) => assert.ok(Math.abs(out.shares[i] - f) < 0.04, `holdout ${f}: share ${out.shares[i]}`));
  await ctx.close();
});

test("Experience Viewed is an event like any other: a segment on it (where on variant or holdout) enters when decide() records it, before decide() returns, and the collector gets {experience, variant, holdout}", async () => {
  const { ctx, page, go } = await pageOf("exposure", ESM);
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async (delivery) => {
    const defs = {
      version: 1,
      segments: [
        { id: "saw_promo", condition: { $performed: { event: "Experience Viewed", where: { experience: "promo", variant: "banner" } } } },
        { id: "control_group", condition: { $performed: { event: "Experience Viewed", where: { holdout: true } } } },
        { id: "saw_twice", condition: { $performed: { event: "Experience Viewed", where: { experience: "promo" }, count: { $gte: 2 } } } },
      ],
      experiences: [
        { id: "promo", variants: [{ id: "banner" }, { id: "none" }] },
        { id: "all_held", holdout: 1, variants: [{ id: "x" }, { id: "ctl" }] },
      ],
    };
    const ks = await Keystone.init({ segments: defs, autoCapture: false, ...delivery });
    const entered = [];
    ks.on("segment:enter", (e) => entered.push(e.segment));
    const r = { before: ks.segments() };
    ks.decide("promo");
    r.afterPromo = [ks.inSegment("saw_promo"), entered.slice()];
    ks.decide("promo"); // same page view: no second exposure
    r.samePage = ks.inSegment("saw_twice");
    ks.page();
    ks.decide("promo");
    r.secondPage = ks.inSegment("saw_twice");
    ks.decide("all_held");
    r.control = ks.inSegment("control_group");
    await ks.flush();
    r.id = ks.anonymousId();
    return r;
  }, DELIVERY);
  assert.deepEqual(out.before, []);
  assert.deepEqual(out.afterPromo, [true, ["saw_promo"]]);
  assert.equal(out.samePage, false);
  assert.equal(out.secondPage, true);
  assert.equal(out.control, true);
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id && e.event === "Experience Viewed");
  assert.deepEqual(
    sent.map((e) => [e.type, e.properties]),
    [
      ["track", { experience: "promo", variant: "banner", holdout: false }],
      ["track", { experience: "promo", variant: "banner", holdout: false }],
      ["track", { experience: "all_held", variant: "ctl", holdout: true }],
    ],
  );
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("a window that passes by itself (Playwright clock): keystone.segment_exit is pushed to a data layer Keystone created, and Segment Exited {segment} is sent", async () => {
  const { ctx, page, go } = await pageOf("timed", ESM);
  await page.clock.install({ time: new Date("2026-03-02T10:00:00Z") });
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const start = await page.evaluate(async (delivery) => {
    const had = "dataLayer" in window;
    const defs = { version: 1, segments: [{ id: "recent", condition: { $performed: { event: "Product Viewed", within: "30m" } } }] };
    window.ks = await Keystone.init({ segments: defs, autoCapture: false, dataLayer: true, trackSegments: true, ...delivery });
    ks.track("Product Viewed");
    await ks.flush(); // delivered before the clock jumps (a request in flight over a 31-minute jump is retried)
    return { had, id: ks.anonymousId() };
  }, DELIVERY);
  assert.equal(start.had, false, "the page had no data layer");
  await page.clock.runFor(31 * 60 * 1000);
  const out = await page.evaluate(async () => {
    await ks.flush();
    return { layer: window.dataLayer, segs: ks.segments() };
  });
  assert.deepEqual(out.segs, []);
  assert.deepEqual(out.layer, [
    { event: "keystone.ready", keystoneSegments: [] },
    { event: "keystone.segment_enter", keystoneSegment: "recent" },
    { event: "keystone.segment_exit", keystoneSegment: "recent" },
  ]);
  const sent = h.server.collector.events.filter((e) => e.anonymousId === start.id && e.event.startsWith("Segment "));
  assert.deepEqual(sent.map((e) => [e.type, e.event, e.properties]), [["track", "Segment Entered", { segment: "recent" }], ["track", "Segment Exited", { segment: "recent" }]]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("trackSegments sends each membership change, also a segment entered and left again within one task (as the listeners and the data layer hear them), each once", async () => {
  const { ctx, page, go } = await pageOf("bounce", ESM);
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async (delivery) => {
    const defs = { version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }] };
    window.ks = await Keystone.init({ segments: defs, autoCapture: false, dataLayer: true, trackSegments: true, ...delivery });
    const heard = [];
    ks.on("segment:enter", (e) => heard.push("enter " + e.segment));
    ks.on("segment:exit", (e) => heard.push("exit " + e.segment));
    ks.setTraits({ tier: "gold" });
    ks.setTraits({ tier: "silver" });
    await ks.flush();
    // Left and entered again within one task, after an exit that was reported.
    ks.setTraits({ tier: "gold" });
    await ks.flush();
    ks.setTraits({ tier: "silver" });
    ks.setTraits({ tier: "gold" });
    await ks.flush();
    // Three changes, then four, each within one task.
    for (const t of ["silver", "gold", "silver"]) ks.setTraits({ tier: t });
    await ks.flush();
    for (const t of ["gold", "silver", "gold", "silver"]) ks.setTraits({ tier: t });
    await ks.flush();
    await new Promise((r) => setTimeout(r, 300));
    await ks.flush();
    return { heard, layer: window.dataLayer.filter((e) => e.event != "keystone.ready").map((e) => e.event.slice(17) + " " + e.keystoneSegment), id: ks.anonymousId() };
  }, DELIVERY);
  const changes = ["enter gold", "exit gold", "enter gold", "exit gold", "enter gold", "exit gold", "enter gold", "exit gold", "enter gold", "exit gold", "enter gold", "exit gold"];
  assert.deepEqual(out.heard, changes);
  assert.deepEqual(out.layer, changes);
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id && e.event?.startsWith("Segment "));
  assert.deepEqual(sent.map((e) => ({ "Segment Entered": "enter", "Segment Exited": "exit" })[e.event] + " " + e.properties.segment), changes);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("trackSegments sends the changes of several segments in the order they were made, as the listeners and the data layer hear them", async () => {
  const { ctx, page, go } = await pageOf("order", ESM);
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async (delivery) => {
    const defs = { version: 1, segments: ["a", "b", "c"].map((id) => ({ id, condition: { ["traits." + id]: 1 } })) };
    window.ks = await Keystone.init({ segments: defs, autoCapture: false, dataLayer: true, trackSegments: true, ...delivery });
    const heard = [];
    ks.on("segment:enter", (e) => heard.push("enter " + e.segment));
    ks.on("segment:exit", (e) => heard.push("exit " + e.segment));
    // Within one task, then across tasks.
    for (const [k, v] of [["a", 1], ["b", 1], ["a", 0], ["c", 1], ["b", 0], ["a", 1]]) ks.setTraits({ [k]: v });
    await ks.flush();
    ks.setTraits({ c: 0 });
    ks.setTraits({ b: 1 });
    await new Promise((r) => setTimeout(r, 300));
    await ks.flush();
    return { heard, layer: window.dataLayer.filter((e) => e.event != "keystone.ready").map((e) => e.event.slice(17) + " " + e.keystoneSegment), id: ks.anonymousId() };
  }, DELIVERY);
  const changes = ["enter a", "enter b", "exit a", "enter c", "exit b", "enter a", "exit c", "enter b"];
  assert.deepEqual(out.heard, changes);
  assert.deepEqual(out.layer, changes);
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id && e.event?.startsWith("Segment "));
  assert.deepEqual(sent.map((e) => ({ "Segment Entered": "enter", "Segment Exited": "exit" })[e.event] + " " + e.properties.segment), changes);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("exposure page views: a replaceState that changes the URL and a popstate start new ones, a no-op replaceState does not; a cap reached in another open tab holds in this tab's next page view", async () => {
  const { ctx, page, go } = await pageOf("views", ESM);
  await go();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const defs = { version: 1, segments: [], experiences: [{ id: "hero", variants: [{ id: "offer", cap: { count: 1, within: "1d" } }, { id: "default" }] }] };
  const counts = await page.evaluate(async (defs) => {
    window.ks = await Keystone.init({ autoCapture: false, segments: defs });
    const views = () => (ks.profile().events["Experience Viewed"] || { count: 0 }).count;
    const n = [];
    ks.decide("hero");
    n.push(views());
    history.pushState({}, "", location.pathname + "?step=2");
    history.replaceState({}, "", location.pathname + "?step=3");
    ks.decide("hero");
    n.push(views());
    history.replaceState({}, "", location.href); // no-op
    ks.decide("hero");
    n.push(views());
    await new Promise((r) => (addEventListener("popstate", r, { once: true }), history.back()));
    ks.decide("hero");
    n.push(views());
    return n;
  }, defs);
  assert.deepEqual(counts, [1, 2, 2, 3]);
  // Two tabs of one visitor: the second tab's exposure of "offer" caps it in the first tab's
  // next page view (an open tab follows what other tabs recorded within 1 s).
  assert.deepEqual(page.problems, []);
  await ctx.close();

  const two = await pageOf("views-tabs", ESM);
  const tab = async () => {
    const p = await two.ctx.newPage();
    await p.goto(h.url("/act/views-tabs.html"));
    await p.waitForFunction(() => window.__ksLoaded === true);
    return p;
  };
  const start = (defs) => Keystone.init({ autoCapture: false, segments: defs }).then((ks) => (window.ks = ks).anonymousId());
  const a = await tab();
  const first = await a.evaluate(start, defs);
  const b = await tab();
  assert.equal(await b.evaluate(start, defs), first, "one visitor");
  assert.equal(await b.evaluate(() => ks.decide("hero").variant), "offer");
  await a.waitForTimeout(1200);
  assert.equal(await a.evaluate(() => (ks.page(), ks.decide("hero").variant)), "default");
  await two.ctx.close();
});

/** A page whose keystone.global.js is held until `release()`; the snippet is pasted by the test. */
async function heldGlobal(name, { head = "", body = "" } = {}) {
  let release;
  const gate = new Promise((r) => (release = r));
  const p = await pageOf(name, head, body, { prepare: (ctx) => ctx.route("**/keystone.global.js", async (route) => (await gate, route.continue())) });
  await p.go();
  return { ...p, release };
}

/** The snippet's `keystoneConfig` of the data-layer tests: segments `everyone`, `viewers` (a
 * Product Viewed) and `more`. */
const layerConfig = (...more) => ({
  src: "/pkg/dist/keystone.global.js",
  autoCapture: false,
  dataLayer: true,
  segments: { version: 1, segments: [{ id: "everyone", condition: {} }, { id: "viewers", condition: { $performed: { event: "Product Viewed" } } }, ...more] },
});

test("script-tag build through the snippet with keystoneConfig {dataLayer: true}: with calls queued before ready, the data layer's pushes add up to the membership", async () => {
  const { ctx, page, release } = await heldGlobal("layer");
  await page.evaluate(([snippet, config]) => {
    window.keystoneConfig = config;
    new Function(snippet)();
    keystone.track("Product Viewed");
    window.ready = keystone.init();
  }, [SNIPPET, layerConfig({ id: "first_view", condition: { $performed: { event: "Product Viewed", count: 1 } } })]);
  release();
  const out = await page.evaluate(async () => {
    await window.ready;
    const after1 = window.dataLayer.slice();
    keystone.track("Product Viewed"); // leaves first_view
    return { after1, layer: window.dataLayer, segs: keystone.segments() };
  });
  const sum = (layer) => {
    let held = [];
    for (const e of layer) {
      if (e.event === "keystone.ready") held = [...e.keystoneSegments];
      else if (e.event === "keystone.segment_enter") held.push(e.keystoneSegment);
      else if (e.event === "keystone.segment_exit") held = held.filter((s) => s !== e.keystoneSegment);
    }
    return held.sort();
  };
  assert.equal(out.after1.filter((e) => e.event === "keystone.ready").length, 1);
  assert.deepEqual(sum(out.after1), ["everyone", "first_view", "viewers"]);
  assert.deepEqual(sum(out.layer), out.segs);
  assert.deepEqual(out.segs, ["everyone", "viewers"]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("snippet: a marketing refusal queued before the script arrives reaches the data layer before anything else does: no keystone.ready (nor change) is pushed until marketing is granted", async () => {
  const { ctx, page, release } = await heldGlobal("layer-refused");
  await page.evaluate(([snippet, config]) => {
    window.dataLayer = [];
    window.keystoneConfig = config;
    new Function(snippet)();
    // A consent manager answering before Keystone has loaded (the default grants marketing).
    keystone.setConsent({ marketing: false });
    keystone.track("Product Viewed");
    window.ready = keystone.init();
  }, [SNIPPET, layerConfig()]);
  release();
  const out = await page.evaluate(async () => {
    await window.ready;
    await new Promise((r) => setTimeout(r, 100));
    const refused = window.dataLayer.slice();
    const segs = keystone.segments();
    await keystone.setConsent({ marketing: true });
    return { refused, segs, granted: window.dataLayer.slice() };
  });
  assert.deepEqual(out.segs, ["everyone", "viewers"]);
  assert.deepEqual(out.refused, [], "nothing pushed while the refusal holds");
  assert.deepEqual(out.granted, [{ event: "keystone.ready", keystoneSegments: ["everyone", "viewers"] }]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("snippet and script-tag build: a queued call records the object it was given as it was when the call was made (the page changes the object afterwards)", async () => {
  const { ctx, page, release } = await heldGlobal("snapshot");
  await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: false, endpoint: "/v1/batch", writeKey: "demo-key" };
    new Function(snippet)();
    // One object reused for each call, as a loop over a cart does.
    const props = { sku: "A-1", cart: { items: 1 } };
    keystone.track("Product Added", props);
    props.sku = "B-2";
    props.cart.items = 2;
    keystone.track("Product Added", props);
    const traits = { plan: "free" };
    keystone.setTraits(traits);
    traits.plan = "pro";
    window.ready = keystone.init();
  }, SNIPPET);
  release();
  const out = await page.evaluate(async () => {
    await window.ready;
    await keystone.flush();
    return { id: keystone.anonymousId(), plan: keystone.profile().traits.plan };
  });
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id && e.event === "Product Added");
  assert.deepEqual(sent.map((e) => [e.properties.sku, e.properties.cart.items]), [["A-1", 1], ["B-2", 2]]);
  assert.equal(out.plan, "free");
  assert.deepEqual(page.problems, []);
  await ctx.close();

  // The script-tag build's own queue (loaded, its wasm still on its way).
  let releaseWasm;
  const gate = new Promise((r) => (releaseWasm = r));
  const p = await pageOf("snapshot-global", `<script src="/pkg/dist/keystone.global.js"></script>`, "", { prepare: (c) => c.route("**/keystone_bg.wasm", async (route) => (await gate, route.continue())) });
  await p.go();
  await p.page.evaluate(() => {
    window.ready = keystone.init({ autoCapture: false, endpoint: "/v1/batch", writeKey: "demo-key" });
    window.errors = [];
    keystone.on("error", (e) => errors.push(e.code));
    keystone.track("Not Recorded", new Map([["sku", "M-1"]])); // not an object literal: still refused at the replay
    const props = { sku: "C-3", qty: 1 };
    keystone.track("Product Added", props);
    props.sku = "D-4";
    props.qty = 2;
    keystone.track("Product Added", props);
  });
  releaseWasm();
  const { id, errors, refused } = await p.page.evaluate(async () => {
    await window.ready;
    await keystone.flush();
    return { id: keystone.anonymousId(), errors: window.errors, refused: keystone.profile().events["Not Recorded"] };
  });
  assert.deepEqual([errors, refused], [["invalid_argument"], undefined]);
  const sent2 = h.server.collector.events.filter((e) => e.anonymousId === id && e.event === "Product Added");
  assert.deepEqual(sent2.map((e) => [e.properties.sku, e.properties.qty]), [["C-3", 1], ["D-4", 2]]);
  assert.deepEqual(p.page.problems, []);
  await p.ctx.close();
});

test("snippet and script-tag build: a queued object without prototype (Object.create(null), as query-string parsers make) is recorded as it was at the call", async () => {
  const calls = () => {
    const q = Object.create(null);
    q.term = "boots";
    keystone.track("Searched", q);
    q.term = "changed";
    const t = Object.create(null);
    t.plan = "free";
    keystone.setTraits(t);
    t.plan = "pro";
  };
  const check = async (page) => {
    const out = await page.evaluate(async () => {
      await window.ready;
      await keystone.flush();
      return { id: keystone.anonymousId(), plan: keystone.profile().traits.plan };
    });
    const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id && e.event === "Searched");
    assert.deepEqual([sent.map((e) => e.properties.term), out.plan], [["boots"], "free"]);
    assert.deepEqual(page.problems, []);
  };
  const { ctx, page, release } = await heldGlobal("null-proto");
  await page.evaluate(([snippet, calls]) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: false, endpoint: "/v1/batch", writeKey: "demo-key" };
    new Function(snippet)();
    new Function("(" + calls + ")()")();
    window.ready = keystone.init();
  }, [SNIPPET, String(calls)]);
  release();
  await check(page);
  await ctx.close();
  // The script-tag build's own queue (its wasm still on its way).
  let releaseWasm;
  const gate = new Promise((r) => (releaseWasm = r));
  const p = await pageOf("null-proto-global", `<script src="/pkg/dist/keystone.global.js"></script>`, "", { prepare: (c) => c.route("**/keystone_bg.wasm", async (route) => (await gate, route.continue())) });
  await p.go();
  await p.page.evaluate((calls) => {
    window.ready = keystone.init({ autoCapture: false, endpoint: "/v1/batch", writeKey: "demo-key" });
    new Function("(" + calls + ")()")();
  }, String(calls));
  releaseWasm();
  await check(p.page);
  await p.ctx.close();
});

test("keystone.global.js loaded by a module script tag finds its wasm next to its own URL (not the page's)", async () => {
  const { ctx, page, go } = await pageOf(
    "module-tag",
    `<script>window.keystoneConfig = { autoCapture: false, segments: { version: 1, segments: [{ id: "everyone", condition: {} }] } };</script><script type="module" src="/pkg/dist/keystone.global.js"></script>`,
    `<p id="show" data-keystone-show="everyone" hidden>shown</p>`,
  );
  const wasm = [];
  page.on("request", (r) => r.url().endsWith(".wasm") && wasm.push(new URL(r.url()).pathname));
  await go();
  const out = await page.evaluate(async () => {
    await new Promise((r) => (window.keystone ? r() : addEventListener("load", r)));
    return keystone.init().then(() => ({ segs: keystone.segments(), shown: !document.getElementById("show").hidden }), (e) => e.code);
  });
  assert.deepEqual(out, { segs: ["everyone"], shown: true });
  assert.deepEqual(wasm, ["/pkg/dist/keystone_bg.wasm"]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("keystone.global.js loaded by a module script tag from a path holding @ or ( (a CDN's /pkg@version/) finds its wasm next to itself; from a blob: URL it still defines window.keystone", async () => {
  const dist = new URL("../../pkg/dist/", import.meta.url);
  const dirs = ["/cdn/npm/keystone-cdp@1.0.0/dist/", "/cdn/v(2)/"];
  for (const dir of dirs) {
    const { ctx, page, go } = await pageOf("module-at", `<script type="module" src="${dir}keystone.global.js"></script>`, "", {
      prepare: (c) => c.route(h.url("/cdn/") + "**", (r) => {
        const f = new URL(r.request().url()).pathname.split("/").pop();
        return r.fulfill({ body: readFileSync(new URL(f, dist)), contentType: f.endsWith(".wasm") ? "application/wasm" : "text/javascript" });
      }),
    });
    const wasm = [];
    page.on("request", (r) => r.url().endsWith(".wasm") && wasm.push(decodeURI(new URL(r.url()).pathname)));
    await go();
    const out = await page.evaluate(async () => {
      await new Promise((r) => (document.readyState == "complete" ? r() : addEventListener("load", r)));
      return window.keystone ? keystone.init({ autoCapture: false }).then(() => "ready", (e) => e.code) : "no window.keystone";
    });
    assert.deepEqual([out, wasm, page.problems], ["ready", [dir + "keystone_bg.wasm"], []], dir);
    await ctx.close();
  }
  // A blob: script has no URL to find a wasm next to: the page's URL stands in (init fails with
  // its error code for want of a wasm there), and the script still runs.
  const { ctx, page, go } = await pageOf("module-blob", "");
  await go();
  const out = await page.evaluate(async (code) => {
    const s = document.createElement("script");
    s.type = "module";
    s.src = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    await new Promise((r) => ((s.onload = s.onerror = r), document.head.append(s)));
    return window.keystone ? keystone.init({ autoCapture: false }).then(() => "ready", (e) => e.code) : "no window.keystone";
  }, readFileSync(new URL("keystone.global.js", dist), "utf8"));
  assert.equal(out, "wasm_load_failed");
  assert.ok(!page.problems.some((p) => p.startsWith("pageerror")), page.problems.join());
  await ctx.close();
});

const CALLS = [["identify", ["ada@example.com"]], ["loadSegments", [{ version: 1, segments: [] }]], ["setConsent", [{ marketing: true }]], ["flush", []], ["page", []], ["track", ["X"]], ["setTraits", [{ a: 1 }]], ["segments", []], ["inSegment", ["x"]], ["explain", ["x"]], ["decide", ["x"]], ["profile", []], ["anonymousId", []], ["userId", []], ["refresh", []], ["reset", []], ["forget", []]];
const PROMISE_CALLS = ["identify", "loadSegments", "setConsent", "flush", "forget"];
/** In the page: calls each method of `calls` on `window.keystone_target`; `window[name][method]` is
 * "sync", or a Promise of how the call's Promise settled. */
const callAll = (calls, name) => {
  window[name] = {};
  for (const [m, args] of calls) {
    const v = window.keystone_target[m](...args);
    window[name][m] = !!v && typeof v.then === "function" ? v.then(() => "resolved", (e) => "rejected " + e.code) : "sync";
  }
};

test("Promise-returning calls (init, identify, loadSegments, setConsent, forget, flush) return Promises that settle, on the ESM instance, on window.keystone once ready and on the snippet's stub; the other calls answer at once, with no Promise", async () => {
  const expect = (kinds, where) => {
    for (const [m] of CALLS) {
      if (PROMISE_CALLS.includes(m)) assert.equal(kinds[m], "resolved", `${where}: ${m} returns a Promise that resolves`);
      else assert.equal(kinds[m], "sync", `${where}: ${m} answers synchronously`);
    }
  };
  // The ESM instance.
  const esm = await pageOf("promises-esm", ESM);
  await esm.go();
  await esm.page.waitForFunction(() => window.__ksLoaded === true);
  const a = await esm.page.evaluate(async ([calls, callAll]) => {
    window.keystone_target = await Keystone.init({ autoCapture: false });
    new Function("calls", "(" + callAll + ")(calls, '__esm')")(calls);
    const init = Keystone.init({ autoCapture: false });
    const out = { init: typeof init.then === "function" ? await init.then(() => "resolved") : "sync" };
    for (const k of Object.keys(window.__esm)) out[k] = await window.__esm[k];
    return out;
  }, [CALLS, callAll.toString()]);
  expect(a, "ESM instance");
  assert.equal(a.init, "resolved");
  assert.deepEqual(esm.page.problems, []);
  await esm.ctx.close();

  // The snippet's stub (the script held), then window.keystone once ready.
  const { ctx, page, release } = await heldGlobal("promises-stub");
  await page.evaluate(([snippet, calls, callAll]) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: false };
    new Function(snippet)();
    window.keystone_target = window.keystone;
    window.__init = keystone.init();
    new Function("calls", "(" + callAll + ")(calls, '__stub')")(calls);
  }, [SNIPPET, CALLS, callAll.toString()]);
  release();
  const b = await page.evaluate(async ([calls, callAll]) => {
    const out = { init: typeof window.__init.then === "function" ? await window.__init.then(() => "resolved") : "sync" };
    const stub = {};
    for (const k of Object.keys(window.__stub)) stub[k] = await window.__stub[k];
    await keystone.setConsent({ analytics: true, personalization: true }); // forget() withdrew it
    new Function("calls", "(" + callAll + ")(calls, '__ready')")(calls);
    const ready = {};
    for (const k of Object.keys(window.__ready)) ready[k] = await window.__ready[k];
    return { out, stub, ready, init2: await keystone.init().then(() => "resolved") };
  }, [CALLS, callAll.toString()]);
  assert.equal(b.out.init, "resolved");
  expect(b.stub, "snippet stub");
  expect(b.ready, "window.keystone");
  assert.equal(b.init2, "resolved");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("anti-flicker: with the engine still loading, personalized content stays invisible, then shows by itself after the antiFlicker timeout (ms)", async () => {
  const { ctx, page, go } = await pageOf(
    "cloak",
    `<script type="module">
      import { Keystone } from "/pkg/dist/keystone.js";
      const el = document.getElementById("text"), t0 = performance.now();
      window.ready = Keystone.init({ antiFlicker: 600, segments: { version: 1, segments: [] } }).then(() => performance.now() - t0);
      window.log = [];
      (function f() { log.push([performance.now() - t0, getComputedStyle(el).visibility, getComputedStyle(document.getElementById("hide")).visibility]); performance.now() - t0 < 2000 && requestAnimationFrame(f); })();
    </script>`,
    `<p id="text" data-keystone-text="traits.name">authored</p><p id="hide" data-keystone-hide="nobody">authored too</p><p>plain</p>`,
    { prepare: (ctx) => ctx.route("**/keystone_bg.wasm", (route) => setTimeout(() => route.continue().catch(() => {}), 3000)) },
  );
  // (the module is in the page's head: the elements are parsed before it runs)
  await go();
  await page.waitForFunction(() => window.log && window.log.length && window.log.at(-1)[0] >= 2000, null, { timeout: 10000 });
  const out = await page.evaluate(async () => ({ log: window.log, readyAfter: await window.ready }));
  const early = out.log.filter(([t]) => t < 500);
  const late = out.log.filter(([t]) => t > 750 && t < out.readyAfter);
  assert.ok(early.length > 0 && late.length > 0, JSON.stringify(out.log.slice(0, 5)));
  assert.ok(early.every(([, a, b]) => a === "hidden" && b === "hidden"), "invisible before the timeout");
  assert.ok(late.every(([, a, b]) => a === "visible" && b === "visible"), "shown after the timeout, the engine not there yet");
  assert.ok(out.readyAfter >= 2500, "the engine arrived later");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("data-keystone-text shows numbers and nested paths of the profile (scores, session, context.utm) as text, live", async () => {
  const { ctx, page, go } = await pageOf(
    "text",
    ESM,
    `<span id="score" data-keystone-text="scores.engagement">no score</span> <span id="count" data-keystone-text="session.pageviews">?</span> <span id="utm" data-keystone-text="context.utm.campaign">no campaign</span> <span id="nested" data-keystone-text="traits.address.city">somewhere</span>`,
  );
  await go("?utm_campaign=%3Cb%3Espring%3C%2Fb%3E");
  await page.waitForFunction(() => window.__ksLoaded === true);
  const text = () => page.evaluate(() => ["score", "count", "utm", "nested"].map((id) => document.getElementById(id).innerHTML));
  await page.evaluate(() =>
    Keystone.init({ segments: { version: 1, segments: [], scores: [{ id: "engagement", rules: [{ event: "Liked", points: 2.5 }] }] } }).then((ks) => (window.ks = ks)),
  );
  await page.waitForFunction(() => document.documentElement.classList.contains("keystone-ready"));
  assert.deepEqual(await text(), ["0", "1", "&lt;b&gt;spring&lt;/b&gt;", "somewhere"]);
  await page.evaluate(() => {
    ks.track("Liked");
    ks.page();
    ks.setTraits({ address: { city: "Lyon" } });
  });
  await page.waitForFunction(() => document.getElementById("nested").textContent === "Lyon");
  assert.deepEqual(await text(), ["2.5", "2", "&lt;b&gt;spring&lt;/b&gt;", "Lyon"]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
