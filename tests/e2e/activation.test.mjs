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
