// The vertical slice: init with a segment → page + track → the anonymous id persists across a
// reload → profile() counts the event → the $performed segment holds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DEFS = {
  version: 1,
  segments: [{ id: "viewers", name: "Product viewers", condition: { $performed: { event: "Product Viewed", count: { $gte: 1 } } } }],
};

test("track → profile counts → segment, anonymous id stable across reload", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const first = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs });
    const before = ks.segments();
    ks.page();
    ks.track("Product Viewed", { category: "shoes" });
    return { id: ks.anonymousId(), before, after: ks.segments(), inSeg: ks.inSegment("viewers"), profile: ks.profile() };
  }, DEFS);
  assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(first.before, []);
  assert.deepEqual(first.after, ["viewers"]);
  assert.equal(first.inSeg, true);
  assert.equal(first.profile.events["Product Viewed"].count, 1);
  assert.equal(first.profile.anonymousId, first.id);

  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const second = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs });
    return { id: ks.anonymousId(), segs: ks.segments(), count: ks.profile().events["Product Viewed"].count };
  }, DEFS);
  assert.equal(second.id, first.id);
  assert.deepEqual(second.segs, ["viewers"]);
  assert.equal(second.count, 1);
  assert.deepEqual(page.problems, []);
  assert.ok(!page.warnings.some((w) => /wasm|MIME/i.test(w)), "no wasm MIME warnings: " + page.warnings.join("\n"));
  await ctx.close();
});

test("init is safe to call twice and returns the same instance", async () => {
  const page = await h.open();
  const same = await page.evaluate(async () => {
    const [a, b] = await Promise.all([Keystone.init({}), Keystone.init({})]);
    const c = await Keystone.init({});
    const d = await Keystone.init();
    return a === b && b === c && c === d;
  });
  assert.equal(same, true);
  assert.ok(!page.warnings.some((w) => w.includes("already_initialized")), "the same options, or none: no warning");
  // Other options: the same instance, and a warning that they are not applied.
  const other = await page.evaluate(async () => (await Keystone.init({ storagePrefix: "b_" })) === (await Keystone.init()));
  assert.equal(other, true);
  assert.equal(page.warnings.filter((w) => w.includes("already_initialized")).length, 1);
  await page.context().close();
});

test("bad input never throws into the page", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({});
    const errors = [];
    ks.on("error", (e) => errors.push([e instanceof Error, e.code]));
    let threw = false;
    try {
      ks.track(42);
      ks.track("x", "not an object");
      const cyc = {};
      cyc.self = cyc;
      ks.track("y", cyc);
    } catch (e) {
      threw = true;
    }
    await new Promise((r) => setTimeout(r, 0));
    return { threw, errors };
  });
  assert.equal(out.threw, false);
  assert.deepEqual(out.errors, [[true, "invalid_argument"], [true, "invalid_argument"], [true, "invalid_argument"]]);
  await page.context().close();
});
