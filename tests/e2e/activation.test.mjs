// Data layer activation (DESIGN §13) in Chromium, read by a tag-manager-style consumer (a
// listener wrapping `dataLayer.push`, as tag managers do): `keystone.ready` then one push per
// membership change, in order, only while `marketing` consent is granted (none before consent,
// none after withdrawal, none under Global Privacy Control).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DEFS = {
  version: 1,
  segments: [
    { id: "everyone", condition: {} },
    { id: "viewers", condition: { $performed: { event: "Product Viewed" } } },
    { id: "one_view", condition: { $performed: { event: "Product Viewed", count: 1 } } },
  ],
};

/** A page whose data layer is consumed like a tag manager does; `gpc` sets the GPC signal. */
async function openWithConsumer({ gpc = false, name = "dataLayer" } = {}) {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(
    ({ gpc, name }) => {
      if (gpc) Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true });
      const layer = (window[name] = window[name] || []);
      window.__seen = [];
      const push = layer.push;
      layer.push = function (...items) {
        for (const it of items) window.__seen.push(JSON.parse(JSON.stringify(it)));
        return push.apply(layer, items);
      };
    },
    { gpc, name },
  );
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  return page;
}

const seen = (page) => page.evaluate(() => window.__seen);

test("granted marketing: keystone.ready with the segments, then each change once, in order", async () => {
  const page = await openWithConsumer();
  const ready = await page.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, dataLayer: true, autoCapture: false });
    return window.__seen.slice();
  }, DEFS);
  assert.deepEqual(ready, [{ event: "keystone.ready", keystoneSegments: ["everyone"] }]);
  await page.evaluate(() => {
    ks.track("Product Viewed"); // enters viewers and one_view
    ks.track("Other"); // no change: no push
    ks.track("Product Viewed"); // leaves one_view
  });
  assert.deepEqual(await seen(page), [
    { event: "keystone.ready", keystoneSegments: ["everyone"] },
    { event: "keystone.segment_enter", keystoneSegment: "one_view" },
    { event: "keystone.segment_enter", keystoneSegment: "viewers" },
    { event: "keystone.segment_exit", keystoneSegment: "one_view" },
  ]);
  // The consumer saw exactly what is in the array (pushed through its own push).
  assert.deepEqual(await page.evaluate(() => JSON.parse(JSON.stringify(window.dataLayer))), await seen(page));
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("with auto-capture, keystone.ready carries what init resolves with (its page view included), no enter for it", async () => {
  const page = await openWithConsumer();
  const out = await page.evaluate(async () => {
    const defs = { version: 1, segments: [{ id: "browsing", condition: { $performed: { event: "Page Viewed" } } }, { id: "everyone", condition: {} }] };
    const entered = [];
    const ks = await Keystone.init({ segments: defs, dataLayer: true });
    ks.on("segment:enter", (e) => entered.push(e.segment));
    await new Promise((r) => setTimeout(r, 50));
    return { segs: ks.segments(), seen: window.__seen, entered };
  });
  assert.deepEqual(out.segs, ["browsing", "everyone"]);
  assert.deepEqual(out.seen, [{ event: "keystone.ready", keystoneSegments: ["browsing", "everyone"] }]);
  assert.deepEqual(out.entered, []);
  await page.context().close();
});

test("dataLayer names its array; without the option nothing is pushed", async () => {
  const page = await openWithConsumer({ name: "tagLayer" });
  const out = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs, dataLayer: "tagLayer", autoCapture: false });
    ks.track("Product Viewed");
    return { tag: window.tagLayer.map((x) => x.event), dl: window.dataLayer };
  }, DEFS);
  assert.deepEqual(out.tag, ["keystone.ready", "keystone.segment_enter", "keystone.segment_enter"]);
  assert.equal(out.dl, undefined);
  await page.context().close();

  const off = await openWithConsumer();
  const none = await off.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.track("Product Viewed");
    return window.__seen;
  }, DEFS);
  assert.deepEqual(none, []);
  await off.context().close();
});

test("nothing before marketing consent; keystone.ready once it is granted; nothing after withdrawal", async () => {
  const page = await openWithConsumer();
  const before = await page.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, dataLayer: true, autoCapture: false, consent: { marketing: false } });
    ks.track("Product Viewed");
    return { seen: window.__seen.slice(), segs: ks.segments() };
  }, DEFS);
  assert.deepEqual(before.seen, []);
  assert.deepEqual(before.segs, ["everyone", "one_view", "viewers"], "segments evaluate; only the data layer waits");

  const hasConsentApi = await page.evaluate(() => typeof ks.setConsent === "function");
  if (hasConsentApi) {
    await page.evaluate(async () => {
      await ks.setConsent({ marketing: true });
      ks.track("Product Viewed"); // leaves one_view
      await ks.setConsent({ marketing: false });
      ks.track("Product Viewed");
      ks.track("Order Completed");
    });
    assert.deepEqual(await seen(page), [
      { event: "keystone.ready", keystoneSegments: ["everyone", "one_view", "viewers"] },
      { event: "keystone.segment_exit", keystoneSegment: "one_view" },
    ]);
  }
  await page.context().close();

  // Opt-in mode: nothing at all before consent.
  const optIn = await openWithConsumer();
  const quiet = await optIn.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs, dataLayer: true, consent: "opt-in" });
    ks.track("Product Viewed");
    return window.__seen;
  }, DEFS);
  assert.deepEqual(quiet, []);
  await optIn.context().close();
});

test("Global Privacy Control: no pushes, even when the site grants marketing", async () => {
  const page = await openWithConsumer({ gpc: true });
  const out = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs, dataLayer: true, consent: { marketing: true } });
    ks.track("Product Viewed");
    if (ks.setConsent) await ks.setConsent({ marketing: true });
    ks.track("Product Viewed");
    return { gpc: navigator.globalPrivacyControl, seen: window.__seen, marketing: ks.profile().consent.marketing, segs: ks.segments() };
  }, DEFS);
  assert.equal(out.gpc, true);
  assert.equal(out.marketing, false);
  assert.deepEqual(out.segs, ["everyone", "viewers"]);
  assert.deepEqual(out.seen, []);
  await page.context().close();
});

test("a throwing tag manager does not break Keystone", async () => {
  const page = await openWithConsumer();
  const out = await page.evaluate(async (defs) => {
    window.dataLayer.push = () => {
      throw new Error("tag manager failure");
    };
    const ks = await Keystone.init({ segments: defs, dataLayer: true, autoCapture: false });
    ks.track("Product Viewed");
    return ks.segments();
  }, DEFS);
  assert.deepEqual(out, ["everyone", "one_view", "viewers"]);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

// trackSegments (DESIGN §13): each membership change goes to the collector once, under the
// identity that made it. The report is made a moment after the change (one tab at a time, under
// the profile's lock); a login, a logout or a consent change made before that moment must not
// lose it, nor send it under the next identity.
const REPORTING = {
  endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false, trackSegments: true, flushAt: 1000, flushInterval: 60000,
  segments: { version: 1, segments: [
    { id: "everyone", condition: {} },
    { id: "viewer", condition: { $performed: { event: "PV" } } },
    { id: "buyer", condition: { $performed: { event: "Buy" } } },
  ] },
};

/** What the collector got from the anonymous ids `ids`, in order, as "type event segment anonymousId userId". */
const wire = (ids) =>
  h.server.collector.events
    .filter((e) => ids.includes(e.anonymousId))
    .map((e) => [e.type, e.event || "", e.properties?.segment || "", "a" + ids.indexOf(e.anonymousId), e.userId ? "user" : "-"].join(" "));

test("trackSegments: a change made right before a login and a logout is reported once, under the identity that made it, before the identity events", async () => {
  const page = await h.open();
  const ids = await page.evaluate(async (o) => {
    const ks = await Keystone.init(o);
    await ks.flush(); // the start's report ("everyone")
    const a0 = ks.anonymousId();
    ks.track("PV"); // enters "viewer"
    await ks.identify("a@b.co");
    ks.reset(); // a new anonymous visitor: "viewer" is left here, yet the known person is still in it
    const a1 = ks.anonymousId();
    await ks.identify("a@b.co"); // the known profile comes back: what it reported is not reported again
    await new Promise((r) => setTimeout(r, 300)); // the report passes
    await ks.flush();
    return [a0, a1];
  }, REPORTING);
  assert.deepEqual(wire(ids), [
    "track Segment Entered everyone a0 -",
    "track PV  a0 -",
    "track Segment Entered viewer a0 -",
    "identify   a0 user",
    "alias   a0 user",
    "track Segment Entered everyone a1 -",
    "identify   a1 user",
    "alias   a1 user",
  ]);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("trackSegments: nothing is reported after forget(), not even the change made right before it; the next id reports its own", async () => {
  const page = await h.open();
  const ids = await page.evaluate(async (o) => {
    const ks = await Keystone.init(o);
    await ks.flush();
    const a0 = ks.anonymousId();
    ks.track("PV"); // enters "viewer": erased with the rest, as the event itself
    await ks.forget();
    await new Promise((r) => setTimeout(r, 300)); // the report pass
    await ks.setConsent({ analytics: true, personalization: true }); // a new id starts
    const a1 = ks.anonymousId();
    await new Promise((r) => setTimeout(r, 300));
    await ks.flush();
    return [a0, a1];
  }, REPORTING);
  assert.notEqual(ids[0], ids[1]);
  assert.deepEqual(wire(ids), ["track Segment Entered everyone a0 -", "track Segment Entered everyone a1 -"]);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("trackSegments: a change made right before personalization is withdrawn is reported then (analytics kept), with no exit; before analytics is withdrawn, nothing is sent until it is granted again", async () => {
  const page = await h.open();
  const out = await page.evaluate(async (o) => {
    const ks = await Keystone.init(o);
    await ks.flush();
    const sent = async () => {
      await new Promise((r) => setTimeout(r, 300)); // the report pass
      await ks.flush();
      return (await (await fetch("/collector/events")).json()).events.filter((e) => e.anonymousId === ks.anonymousId() && /^Segment /.test(e.event)).map((e) => e.event + " " + e.properties.segment);
    };
    const steps = {};
    ks.track("PV"); // enters "viewer"
    await ks.setConsent({ personalization: false }); // no segment is evaluated from now on
    steps.withdrawn = await sent();
    await ks.setConsent({ personalization: true });
    steps.regranted = await sent();
    await ks.setConsent({ analytics: false });
    ks.track("Buy"); // enters "buyer": neither the event nor its report is sent
    steps.noAnalytics = await sent();
    await ks.setConsent({ analytics: true });
    steps.analytics = await sent();
    return steps;
  }, REPORTING);
  assert.deepEqual(out, {
    withdrawn: ["Segment Entered everyone", "Segment Entered viewer"],
    regranted: ["Segment Entered everyone", "Segment Entered viewer"],
    noAnalytics: ["Segment Entered everyone", "Segment Entered viewer"],
    analytics: ["Segment Entered everyone", "Segment Entered viewer", "Segment Entered buyer"], // reported once analytics allows it
  });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
