// The engine compiled while the page idles before `init` (the ESM entry): V8 compiles a wasm
// function on its first call, so the entry instantiates the module in an idle callback and runs a
// throwaway engine through what `init` runs. That run must be invisible: nothing stored, no cookie,
// no request, no id, no listener or data-layer call, the stored profile left byte for byte; and a
// page that calls `init` at once never waits for it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DEFS = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };

/** Counts the wasm instances made (`window.__instances`), and requests after the page loaded. */
async function counted(ctx) {
  await ctx.addInitScript(() => {
    window.__instances = 0;
    const I = WebAssembly.Instance;
    WebAssembly.Instance = function (...a) {
      window.__instances++;
      window.__madeAt = performance.now();
      const inst = new I(...a);
      window.__memory = Object.values(inst.exports).find((x) => x instanceof WebAssembly.Memory);
      return inst;
    };
    WebAssembly.Instance.prototype = I.prototype;
  });
}

/** Everything Keystone could have left: storage of both kinds, cookies. */
const traces = (page) => page.evaluate(() => ({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }));

/** The page after the module's idle callback has run: it instantiated the engine before `init`.
 * (Polled on a timer: Playwright's default polls each animation frame, and a page drawing frames
 * has no idle period long enough for the warm-up.) */
const warmed = (page) => page.waitForFunction(() => window.__instances === 1, null, { timeout: 15000, polling: 100 });

test("an idle page: the engine is instantiated and run before init, leaving no trace; init then starts on the stored profile", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  // A returning visitor: one page stores a profile with two events.
  const first = await h.open("/tests/esm.html", { context: ctx });
  const id = await first.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs });
    ks.track("Product Viewed", { sku: "A1" });
    ks.track("Product Viewed", { sku: "B2" });
    ks.persistNow();
    return ks.anonymousId();
  }, DEFS);
  await first.close();
  // What is stored, read from a page without Keystone.
  const plain = await ctx.newPage();
  await plain.goto(h.url("/tests/blank.html"));
  const before = await traces(plain);
  assert.match(before.local.ks_profile, /Product Viewed/);
  await plain.close();

  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  const requests = [];
  page.on("request", (r) => requests.push(new URL(r.url()).pathname));
  await page.goto(h.url("/tests/esm.html"));
  await warmed(page);
  // Idle a while longer: nothing the throwaway engine did may surface later either.
  await page.evaluate(() => new Promise((r) => setTimeout(r, 400)));
  assert.deepEqual(await traces(page), before, "the warm-up stored nothing and changed nothing");
  assert.deepEqual(requests.filter((p) => !p.startsWith("/pkg/") && p !== "/tests/esm.html"), [], "no request");
  assert.equal(await page.evaluate(() => window.dataLayer), undefined, "no data-layer push");
  // `evalCondition` still answers as before any `init` or `load()`, whenever the idle moment came.
  page.warnings = [];
  page.on("console", (m) => m.type() === "warning" && page.warnings.push(m.text()));
  assert.equal(await page.evaluate(() => K.evalCondition({ a: 1 }, { a: 1 })), false);
  assert.ok(page.warnings.some((w) => w.includes("not_ready")), page.warnings.join("\n"));

  const out = await page.evaluate(async (defs) => {
    const heard = [];
    const ks = await Keystone.init({ segments: defs, dataLayer: true });
    ks.on("segment:enter", (e) => heard.push(e.segment));
    return { id: ks.anonymousId(), count: ks.profile().events["Product Viewed"]?.count, segments: ks.segments(), heard, instances: window.__instances };
  }, DEFS);
  assert.equal(out.id, id, "the stored visitor, not the throwaway engine's");
  assert.equal(out.count, 2);
  assert.deepEqual(out.segments, ["viewers"]);
  assert.equal(out.instances, 1, "init used the instance made while idle");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("the warm-up leaves the set-aside profiles alone: a damaged list is init's to report, an old one init's to keep under the site's retention", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  // Ada logs in and out: her profile is set aside. Then it is made 100 days old (past the
  // default retention of 90 days, within the site's 365).
  const first = await h.open("/tests/esm.html", { context: ctx });
  const aside = await first.evaluate(async () => {
    const ks = await Keystone.init({ retention: "365d" });
    await ks.identify("ada@example.com", { tier: "gold" });
    ks.reset();
    ks.persistNow();
    const list = JSON.parse(localStorage.getItem("ks_aside"));
    list[0][1] -= 100 * 86400000;
    return JSON.stringify(list);
  });
  await first.close();
  for (const [stored, expect] of [
    [aside, { errors: [], tier: "gold" }],
    [aside.slice(0, 40), { errors: ["storage_corrupt"], tier: null }],
    ['["junk",' + aside.slice(1), { errors: ["storage_corrupt"], tier: "gold" }],
  ]) {
    const plain = await ctx.newPage();
    await plain.goto(h.url("/tests/blank.html"));
    await plain.evaluate((v) => localStorage.setItem("ks_aside", v), stored);
    await plain.close();
    const page = await ctx.newPage();
    await page.goto(h.url("/tests/esm.html"));
    await warmed(page);
    await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
    assert.equal(await page.evaluate(() => localStorage.getItem("ks_aside")), stored, "the warm-up wrote nothing");
    const out = await page.evaluate(async () => {
      const errors = [];
      const ks = await Keystone.init({ retention: "365d" });
      ks.on("error", (e) => errors.push(e.code));
      await new Promise((r) => setTimeout(r, 50));
      await ks.identify("ada@example.com");
      const tier = ks.profile().traits.tier ?? null;
      ks.reset();
      ks.persistNow();
      return { errors, tier };
    });
    assert.deepEqual(out, expect, stored.slice(0, 50));
    await page.close();
  }
  await ctx.close();
});

test("opt-in: the warm-up creates no id and stores nothing before or after consent is asked", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  const page = await h.open("/tests/esm.html", { context: ctx });
  await warmed(page);
  assert.deepEqual(await traces(page), { local: {}, session: {}, cookie: "" });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ consent: "opt-in" });
    ks.track("Product Viewed");
    ks.persistNow();
    return { id: ks.anonymousId(), local: { ...localStorage }, cookie: document.cookie };
  });
  assert.deepEqual(out, { id: null, local: {}, cookie: "" });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("init called at once after the import does not wait for the warm-up, and one instance serves the page", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/blank.html"));
  const out = await page.evaluate(async (defs) => {
    const { Keystone } = await import("/pkg/dist/keystone.js");
    const ks = await Keystone.init({ segments: defs });
    ks.track("Product Viewed");
    const at = window.__instances;
    // The idle callback, when it comes, finds the engine started and leaves it alone.
    await new Promise((r) => requestIdleCallback(() => setTimeout(r, 50)));
    return { at, later: window.__instances, segments: ks.segments(), count: ks.profile().events["Product Viewed"]?.count };
  }, DEFS);
  assert.deepEqual(out, { at: 1, later: 1, segments: ["viewers"], count: 1 });
  await ctx.close();
});

test("a page without requestIdleCallback, or whose replacement throws: no warm-up, no error, init works", async () => {
  for (const script of ["delete window.requestIdleCallback", "window.requestIdleCallback = () => { throw new Error('no idle here') }"]) {
    const ctx = await h.browser.newContext();
    await counted(ctx);
    await ctx.addInitScript(script);
    const page = await h.open("/tests/esm.html", { context: ctx });
    await page.evaluate(() => new Promise((r) => setTimeout(r, 500)));
    assert.equal(await page.evaluate(() => window.__instances), 0, script);
    const out = await page.evaluate(async (defs) => {
      const ks = await Keystone.init({ segments: defs });
      ks.track("Product Viewed");
      return { segments: ks.segments(), instances: window.__instances };
    }, DEFS);
    assert.deepEqual(out, { segments: ["viewers"], instances: 1 }, script);
    assert.deepEqual(page.problems, [], script);
    await ctx.close();
  }
});

test("a site's own large `ks_profile` (Keystone under another storagePrefix) is not parsed by the warm-up", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  // ≈ 3 MB of the site's own JSON under the default key.
  await ctx.addInitScript(() => {
    if (!localStorage.getItem("ks_profile")) localStorage.setItem("ks_profile", JSON.stringify({ items: Array.from({ length: 60000 }, (_, i) => ({ id: i, name: "item " + i, tags: ["a", "b", "c"] })) }));
  });
  const page = await h.open("/tests/esm.html", { context: ctx });
  await warmed(page);
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ storagePrefix: "shop_" });
    return { memory: window.__memory.buffer.byteLength, kept: localStorage.getItem("ks_profile").length, id: typeof ks.anonymousId() };
  });
  // Parsed, the 3 MB would have grown the wasm memory past 20 MB (it never shrinks).
  assert.ok(out.memory < 8 * 1024 * 1024, "wasm memory " + out.memory);
  assert.ok(out.kept > 3000000, "the site's key is left alone");
  assert.equal(out.id, "string");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("a page drawing a frame after frame: its idle periods are too short, and the warm-up waits (init works as without it)", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  await ctx.addInitScript(() => {
    const spin = () => {
      if (window.__stop) return;
      const t = performance.now();
      while (performance.now() - t < 4);
      requestAnimationFrame(spin);
    };
    requestAnimationFrame(spin);
  });
  const page = await h.open("/tests/esm.html", { context: ctx });
  await page.evaluate(() => new Promise((r) => setTimeout(r, 1500)));
  assert.equal(await page.evaluate(() => window.__instances), 0, "no warm-up within frames");
  const out = await page.evaluate(async (defs) => {
    window.__stop = true;
    const ks = await Keystone.init({ segments: defs });
    ks.track("Product Viewed");
    return { segments: ks.segments(), instances: window.__instances };
  }, DEFS);
  assert.deepEqual(out, { segments: ["viewers"], instances: 1 });
  await ctx.close();
});

test("a page that draws frames for a while after it loads (an intro animation) is warmed once it idles", async () => {
  const ctx = await h.browser.newContext();
  await counted(ctx);
  await ctx.addInitScript(() => {
    const end = performance.now() + 1500;
    const spin = () => {
      if (performance.now() > end) return (window.__still = performance.now());
      const t = performance.now();
      while (performance.now() - t < 4);
      requestAnimationFrame(spin);
    };
    requestAnimationFrame(spin);
  });
  const page = await h.open("/tests/esm.html", { context: ctx });
  await warmed(page);
  const at = await page.evaluate(() => ({ still: window.__still, made: window.__madeAt }));
  assert.ok(at.still > 0 && at.made > at.still, `made at ${at.made} ms, the frames stopped at ${at.still} ms`);
  const out = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs });
    ks.track("Product Viewed");
    return { segments: ks.segments(), instances: window.__instances };
  }, DEFS);
  assert.deepEqual(out, { segments: ["viewers"], instances: 1 });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
