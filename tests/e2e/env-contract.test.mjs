// Acceptance checks of the browser environments a real site puts Keystone in, read from DESIGN
// and the README as an outside tester reads them: a page prerendered by the browser (Speculation
// Rules) that the visitor may never open, Keystone inside iframes (same origin, another site's
// partitioned storage, `about:srcdoc`, a sandbox without `allow-same-origin`), a private window
// (a fresh context per visit) and a document whose <body> does not exist yet when Keystone starts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DELIVERY = { endpoint: "/v1/batch", writeKey: "demo-key" };
const EVERYONE = { version: 1, segments: [{ id: "everyone", condition: {} }] };
const ESM = `<script type="module">import * as K from "/pkg/dist/keystone.js"; window.Keystone = K.Keystone; window.__ksLoaded = true;</script>`;
const until = async (f, ms = 5000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (await f()) return true;
  return !!(await f());
};
const doc = (head, body = "") => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>env</title><link rel="icon" href="data:,">${head}</head><body>${body}</body></html>`;

/** A context serving each `pages[path]` (HTML text) at that path of the test server, on both of
 * its hosts (localhost and 127.0.0.1: two sites), and the package with `Access-Control-Allow-Origin`
 * (as a CDN serves it; a sandboxed frame's opaque origin fetches it in CORS mode). */
async function contextWith(pages, { init } = {}) {
  const ctx = await h.browser.newContext();
  const other = h.url("/").replace("localhost", "127.0.0.1");
  for (const base of [h.url("/"), other])
    for (const [path, html] of Object.entries(pages)) await ctx.route(base + path.slice(1) + "*", (r) => r.fulfill({ contentType: "text/html; charset=utf-8", body: html }));
  await ctx.route("**/pkg/**", async (r) => {
    const res = await r.fetch();
    await r.fulfill({ response: res, headers: { ...res.headers(), "access-control-allow-origin": "*" } });
  });
  if (init) await ctx.addInitScript(init);
  return { ctx, other };
}

/** Watches a page for what must never reach the host page: errors and unhandled rejections. */
function watch(page) {
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  page.on("console", (m) => m.type() === "error" && !/Failed to load resource/.test(m.text()) && page.problems.push("console.error: " + m.text()));
  return page;
}

// ---------------------------------------------------------------------------------------------
// Prerendering. Chromium prerenders a page a Speculation Rule names before the visitor opens it
// (and may throw it away unopened). Chromium refuses to prerender while DevTools drives it
// (`PrerenderingDisabledByDevTools`, which is how Playwright drives it), so the browser's side is
// emulated by an init script, as the platform presents it: `document.prerendering` true and the
// page hidden until activation, then `prerenderingchange` and `visibilitychange` (visible).
const PRERENDER = () => {
  let on = true;
  const D = Document.prototype;
  Object.defineProperty(D, "prerendering", { get: () => on, configurable: true });
  Object.defineProperty(D, "visibilityState", { get: () => (on ? "hidden" : "visible"), configurable: true });
  Object.defineProperty(D, "hidden", { get: () => on, configurable: true });
  window.__activate = () => {
    on = false;
    window.__activatedAt = Date.now();
    document.dispatchEvent(new Event("prerenderingchange"));
    document.dispatchEvent(new Event("visibilitychange"));
  };
};

/** Stored keys and cookies of Keystone (default prefix). */
const storedState = () => ({
  keys: Object.keys(localStorage).filter((k) => k.startsWith("ks_")).sort().map((k) => [k, localStorage.getItem(k)]),
  cookies: document.cookie.split("; ").filter((c) => c.startsWith("ks_")).sort(),
});

for (const build of ["npm", "script-tag"]) {
  test(`prerendering (${build}): a prerendered page not yet opened records no page view, sends nothing and stores nothing; activated, its page view is recorded with the activation time`, async () => {
    const boot =
      build == "npm"
        ? `${ESM}<script type="module">window.__ks = Keystone.init(${JSON.stringify({ segments: EVERYONE, ...DELIVERY, flushInterval: 100 })}).then((ks) => (window.ks = ks));</script>`
        : `<script>window.keystoneConfig = ${JSON.stringify({ segments: EVERYONE, ...DELIVERY, flushInterval: 100 })};</script><script src="/pkg/dist/keystone.global.js" async></script>`;
    const { ctx } = await contextWith({ "/env/visit.html": doc(ESM), "/env/prerendered.html": doc(boot, `<p id="p" data-keystone-show="everyone" hidden>in</p>`) });
    h.server.collector.reset();
    // An earlier visit: a stored profile with one page view in its session.
    const first = watch(await ctx.newPage());
    await first.goto(h.url("/env/visit.html"));
    await first.waitForFunction(() => window.__ksLoaded === true);
    const id = await first.evaluate(async (o) => {
      const ks = await Keystone.init(o);
      await ks.flush();
      ks.persistNow();
      return ks.anonymousId();
    }, { ...DELIVERY });
    const sent = h.server.collector.events.length;
    const before = await first.evaluate(storedState);
    await first.close();

    // The prerendered page: Keystone loads there and may get ready, but the visitor has not seen it.
    await ctx.addInitScript(PRERENDER);
    const page = watch(await ctx.newPage());
    await page.goto(h.url("/env/prerendered.html"));
    await page.waitForTimeout(1500); // the coalesced writes (250 ms) and the flush interval (100 ms) several times over
    assert.deepEqual(await page.evaluate(storedState), before, "the stored profile, queue and cookies are as the earlier visit left them");
    assert.equal(h.server.collector.events.length, sent, "nothing was sent from the prerendered page");

    // Opened: its page view now, with the time of the activation.
    await page.evaluate(() => window.__activate());
    const activatedAt = await page.evaluate(() => window.__activatedAt);
    assert.ok(await until(() => page.evaluate(() => !!(window.ks || window.keystone?.profile?.()))), "Keystone is ready once the page is shown");
    assert.ok(await until(() => h.server.collector.events.some((e) => e.type == "page" && e.anonymousId == id && Date.parse(e.timestamp) >= activatedAt)), "the page view is sent, timed at the activation");
    const views = h.server.collector.events.filter((e) => e.type == "page" && e.anonymousId == id);
    assert.equal(views.length, 2, "one page view per page the visitor saw");
    const profile = await page.evaluate(() => (window.ks || window.keystone).profile());
    assert.equal(profile.session.pageviews, 2);
    assert.equal(await page.evaluate(() => document.getElementById("p").hidden), false, "personalized once shown");
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });
}

test("prerendering: a prerendered first visit that is never opened creates no anonymous id, no stored profile and no cookie", async () => {
  const { ctx } = await contextWith(
    { "/env/prerendered.html": doc(`${ESM}<script type="module">Keystone.init(${JSON.stringify({ segments: EVERYONE, ...DELIVERY, flushInterval: 100 })}).then((ks) => (window.ks = ks));</script>`) },
    { init: PRERENDER },
  );
  h.server.collector.reset();
  const page = watch(await ctx.newPage());
  await page.goto(h.url("/env/prerendered.html"));
  await page.waitForTimeout(1500);
  assert.deepEqual(await page.evaluate(storedState), { keys: [], cookies: [] });
  assert.equal(h.server.collector.events.length, 0);
  await page.close(); // discarded: never opened
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
