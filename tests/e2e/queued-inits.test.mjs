// Several inits queued on the snippet's stub (two tags of a tag manager, each calling
// keystone.init before keystone.global.js loads), checked against the same calls made once the
// script runs, or on the ESM entry, which they are documented to match.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DEFS = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };

/** A fresh page whose requests matching `pattern` answer only when `release()` is called. */
async function held(pattern) {
  let release;
  const gate = new Promise((r) => (release = r));
  const ctx = await h.browser.newContext();
  await ctx.route(pattern, async (route) => {
    await gate;
    await route.continue();
  });
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/blank.html"));
  await page.waitForFunction(() => document.readyState === "complete");
  return { ctx, page, release };
}

/** Loads `/pkg/dist/<script>` (the snippet, with `keystoneConfig` naming the script-tag build,
 * or that build itself) and, as soon as it ran, calls `keystone.init(a)` then `keystone.init(b)`:
 * their Promises in `window.pA` and `window.pB`. */
async function twoInits(page, script, a, b) {
  await page.evaluate(
    ([script, a, b]) => {
      if (script == "snippet.js") window.keystoneConfig = { src: "/pkg/dist/keystone.global.js" };
      const s = document.createElement("script");
      s.src = "/pkg/dist/" + script;
      s.onload = () => {
        window.pA = keystone.init(a);
        window.pB = keystone.init(b);
      };
      document.head.appendChild(s);
    },
    [script, a, b],
  );
  await page.waitForFunction(() => !!window.pB);
}

const outcome = () =>
  Promise.allSettled([window.pA, window.pB]).then(([a, b]) => ({
    a: a.status === "fulfilled" ? "fulfilled" : a.reason.code,
    b: b.status === "fulfilled" ? "fulfilled" : b.reason.code,
    started: !!window.keystone.profile(),
  }));

test("reference: two inits made once keystone.global.js runs, before the engine loaded: a later init with a bad option rejects alone, the start goes on", async () => {
  const { ctx, page, release } = await held("**/keystone_bg.wasm");
  await twoInits(page, "keystone.global.js", { segments: DEFS, autoCapture: false }, { flushAt: -1 }); // a second tag, with a bad option
  release();
  assert.deepEqual(await page.evaluate(outcome), { a: "fulfilled", b: "invalid_argument", started: true });
  await ctx.close();
});

test("two inits queued on the snippet's stub: a later init with a bad option rejects alone, the start goes on (as when made once the script runs)", async () => {
  const { ctx, page, release } = await held("**/keystone.global.js");
  await twoInits(page, "snippet.js", { segments: DEFS, autoCapture: false }, { flushAt: -1 });
  release();
  assert.deepEqual(await page.evaluate(outcome), { a: "fulfilled", b: "invalid_argument", started: true });
  await ctx.close();
});

test("init(5) then init(options) queued on the snippet's stub: the first rejects, the second starts Keystone (as the ESM entry does)", async () => {
  const { ctx, page, release } = await held("**/keystone.global.js");
  await twoInits(page, "snippet.js", 5, { autoCapture: false });
  release();
  const out = await page.evaluate(() =>
    Promise.allSettled([window.pA, window.pB]).then(([a, b]) => ({
      a: a.status === "fulfilled" ? "fulfilled" : a.reason.code,
      b: b.status === "fulfilled" ? "fulfilled" : b.reason.code,
    })),
  );
  assert.deepEqual(out, { a: "invalid_argument", b: "fulfilled" });
  await ctx.close();
});

test("reference: init(5) then init(options) on the ESM entry: the first rejects, the second starts", async () => {
  const { ctx, page } = await held("**/nothing-held");
  const out = await page.evaluate(async () => {
    const { Keystone } = await import("/pkg/dist/keystone.js");
    const [a, b] = await Promise.allSettled([Keystone.init(5), Keystone.init({ autoCapture: false })]);
    return { a: a.status === "fulfilled" ? "fulfilled" : a.reason.code, b: b.status === "fulfilled" ? "fulfilled" : b.reason.code };
  });
  assert.deepEqual(out, { a: "invalid_argument", b: "fulfilled" });
  await ctx.close();
});

for (const [script, held_] of [["snippet.js", "**/keystone.global.js"], ["keystone.global.js", "**/keystone_bg.wasm"]])
  test(`two inits, the FIRST with a bad option (${script}${script == "snippet.js" ? ", queued on the stub" : ", made once it runs"}): it rejects alone, the second starts Keystone and a call queued before is recorded`, async () => {
    const { ctx, page, release } = await held(held_);
    await twoInits(page, script, { flushAt: -1 }, { segments: DEFS, autoCapture: false });
    await page.evaluate(() => keystone.track("Product Viewed"));
    release();
    assert.deepEqual(await page.evaluate(outcome), { a: "invalid_argument", b: "fulfilled", started: true });
    assert.deepEqual(await page.evaluate(() => [keystone.segments(), keystone.profile().events["Product Viewed"]?.count]), [["viewers"], 1]);
    await ctx.close();
  });

test("reference: two Keystone.init calls in one tick on the ESM entry, the first with a bad option: it rejects alone, the second starts", async () => {
  const { ctx, page } = await held("**/nothing-held");
  const out = await page.evaluate(async () => {
    const { Keystone } = await import("/pkg/dist/keystone.js");
    const [a, b] = await Promise.allSettled([Keystone.init({ debug: "yes" }), Keystone.init({ autoCapture: false })]);
    return { a: a.status === "fulfilled" ? "fulfilled" : a.reason.code, b: b.status === "fulfilled" ? "fulfilled" : b.reason.code };
  });
  assert.deepEqual(out, { a: "invalid_argument", b: "fulfilled" });
  await ctx.close();
});

