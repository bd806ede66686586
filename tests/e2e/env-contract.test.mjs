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
  // The package from a CDN, and the collector: a sandboxed frame's opaque origin reaches them in
  // CORS mode, and Chromium refuses it the loopback address the test server has (Local Network
  // Access), which a site's CDN and collector do not have. Both are answered through the test's
  // own fetch, with the headers they would send.
  const pass = async (r) => {
    const res = await r.fetch();
    await r.fulfill({ response: res, headers: { ...res.headers(), "access-control-allow-origin": r.request().headers().origin || "*" } });
  };
  await ctx.route("**/pkg/**", pass);
  await ctx.route("**/v1/batch", pass);
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

test("prerendering (script-tag): calls the page queues while prerendered are recorded at the activation, after its page view, in order, and their Promises settle", async () => {
  const config = JSON.stringify({ segments: EVERYONE, ...DELIVERY, flushInterval: 100, src: "/pkg/dist/keystone.global.js" });
  const snippet = await (await fetch(h.url("/pkg/dist/snippet.js"))).text();
  const boot = `<script>window.keystoneConfig = ${config};</script><script>${snippet}</script>
    <script>keystone.track("Viewed", { n: 1 }); window.__p = [keystone.setConsent({ analytics: true }), keystone.identify("ada@example.com"), keystone.flush()].map((p) => p.then(() => "ok", (e) => e.code)); keystone.track("Viewed", { n: 2 });</script>`;
  const { ctx } = await contextWith({ "/env/queued.html": doc(boot) }, { init: PRERENDER });
  h.server.collector.reset();
  const page = watch(await ctx.newPage());
  await page.goto(h.url("/env/queued.html"));
  await page.waitForTimeout(1200);
  assert.equal(h.server.collector.events.length, 0, "nothing sent while prerendered");
  await page.evaluate(() => window.__activate());
  const activatedAt = await page.evaluate(() => window.__activatedAt);
  assert.deepEqual(await page.evaluate(() => Promise.all(window.__p)), ["ok", "ok", "ok"], "the queued calls' Promises settle");
  assert.ok(await until(() => h.server.collector.events.filter((e) => e.type == "track").length == 2));
  const evs = h.server.collector.events.filter((e) => e.type == "page" || e.type == "track").sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  assert.deepEqual(evs.map((e) => e.type + ":" + (e.properties?.n ?? "")), ["page:", "track:1", "track:2"], "the page view first, then the calls in order");
  for (const e of h.server.collector.events) assert.ok(Date.parse(e.timestamp) >= activatedAt, `${e.type} timed at or after the activation (${e.timestamp} vs ${new Date(activatedAt).toISOString()})`);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

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

// ---------------------------------------------------------------------------------------------
// Frames. A site embeds Keystone's page in an iframe, or Keystone runs in a widget's frame.

/** A frame's page that starts Keystone (the `build`) and posts to its parent what it saw:
 * whether init resolved, the error codes heard, the id, membership, the event recorded, flush(). */
const framed = (build) => {
  const probe = `
    const codes = []; let out;
    try {
      const ks = await KS;
      ks.on("error", (e) => codes.push(e.code));
      ks.track("Product Viewed");
      await new Promise((r) => setTimeout(r, 400));
      out = { id: ks.anonymousId(), everyone: ks.inSegment("everyone"), viewed: ks.profile().events?.["Product Viewed"]?.count ?? 0,
              shown: !document.getElementById("p").hidden, flushed: await ks.flush().then(() => true, (e) => e.code) };
    } catch (e) { out = { rejected: String(e && (e.code || e.message)) }; }
    parent.postMessage({ out, codes }, "*");`;
  const config = JSON.stringify({ segments: EVERYONE, ...DELIVERY });
  const head =
    build == "npm"
      ? `<script type="module">import { Keystone } from "/pkg/dist/keystone.js"; const KS = Keystone.init(${config}); ${probe}</script>`
      : `<script>window.keystoneConfig = ${config};</script><script src="/pkg/dist/keystone.global.js"></script>
         <script type="module">const KS = new Promise((r) => { const t = setInterval(() => { try { if (keystone.segments().length) { clearInterval(t); r(keystone); } } catch (_) {} }, 20); }); ${probe}</script>`;
  return doc(head, `<p id="p" data-keystone-show="everyone" hidden>in</p>`);
};
/** The parent page: one iframe (attributes `attrs`), the frame's report in `window.__report`. */
const parentOf = (attrs) => doc(`<script>addEventListener("message", (e) => (window.__report = e.data));</script>`, `<iframe ${attrs}></iframe>`);
async function reportOf(page) {
  assert.ok(await until(() => page.evaluate(() => !!window.__report), 10000), "the frame reported");
  return page.evaluate(() => window.__report);
}

for (const build of ["npm", "script-tag"]) {
  test(`a page inside a sandboxed iframe without allow-same-origin (${build}): storage and cookies throw SecurityError, init resolves and works in memory, storage_unavailable is reported, nothing throws`, async () => {
    const { ctx } = await contextWith({ "/env/framed.html": framed(build), "/env/parent.html": parentOf(`sandbox="allow-scripts" src="/env/framed.html"`) });
    const page = watch(await ctx.newPage());
    h.server.collector.reset();
    await page.goto(h.url("/env/parent.html"));
    const { out, codes } = await reportOf(page);
    const frame = page.frames().find((f) => f.url().endsWith("/env/framed.html"));
    assert.deepEqual(await frame.evaluate(() => [() => localStorage, () => document.cookie].map((f) => { try { f(); return "ok"; } catch (e) { return e.name; } })), ["SecurityError", "SecurityError"], "(the browser's side)");
    assert.equal(typeof out.id, "string", JSON.stringify(out));
    assert.deepEqual({ everyone: out.everyone, viewed: out.viewed, shown: out.shown, flushed: out.flushed }, { everyone: true, viewed: 1, shown: true, flushed: true });
    assert.ok(codes.includes("storage_unavailable"), JSON.stringify(codes));
    assert.ok(h.server.collector.events.some((e) => e.event == "Product Viewed" && e.anonymousId == out.id), "delivered from the opaque origin");
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });
}

test("a same-origin iframe, Keystone in the page and in the frame: one visitor (one id), each sees what the other recorded within 1 s, each event delivered once", async () => {
  const { ctx } = await contextWith({ "/env/framed.html": framed("npm"), "/env/parent.html": parentOf("") });
  h.server.collector.reset();
  const page = watch(await ctx.newPage());
  await page.goto(h.url("/env/parent.html"));
  await page.evaluate(async (o) => {
    const { Keystone } = await import("/pkg/dist/keystone.js");
    window.ks = await Keystone.init(o);
    ks.track("Parent Event");
  }, { ...DELIVERY, segments: EVERYONE });
  await page.evaluate(() => (document.querySelector("iframe").src = "/env/framed.html"));
  const { out } = await reportOf(page);
  const parentId = await page.evaluate(() => ks.anonymousId());
  assert.equal(out.id, parentId, "one visitor");
  assert.deepEqual([out.everyone, out.viewed, out.shown, out.flushed], [true, 1, true, true]);
  assert.ok(await until(() => page.evaluate(() => ks.profile().events["Product Viewed"]?.count === 1), 1500), "the page sees the frame's event");
  const frame = page.frames().find((f) => f.url().endsWith("/env/framed.html"));
  assert.equal(await frame.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")).aid), parentId);
  await page.evaluate(() => ks.flush());
  const mine = h.server.collector.events.filter((e) => e.type == "track");
  assert.deepEqual(mine.map((e) => e.event).sort(), ["Parent Event", "Product Viewed"]);
  assert.equal(h.server.collector.duplicates(), 0);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("an iframe of another site (a widget, a checkout): Keystone works there with the storage the browser grants a third party, delivers, and leaves the frame site's own first-party profile alone", async () => {
  const { ctx, other } = await contextWith({ "/env/framed.html": framed("npm"), "/env/parent.html": parentOf("") });
  h.server.collector.reset();
  const page = watch(await ctx.newPage());
  const visit = async () => {
    await page.goto(h.url("/env/parent.html"));
    await page.evaluate((src) => (document.querySelector("iframe").src = src), other + "env/framed.html");
    return reportOf(page);
  };
  const one = await visit();
  const frame = page.frames().find((f) => f.url().startsWith(other));
  // Chromium here blocks third-party cookies, as incognito windows and a growing share of browsers
  // do; with them blocked, a third-party frame's localStorage throws SecurityError (where they
  // are allowed, it works, partitioned by the top-level site).
  const storage = await frame.evaluate(() => { try { localStorage.length; return "ok"; } catch (e) { return e.name; } });
  assert.equal(typeof one.out.id, "string", JSON.stringify(one));
  assert.deepEqual([one.out.everyone, one.out.viewed, one.out.shown, one.out.flushed], [true, 1, true, true]);
  assert.equal(one.codes.includes("storage_unavailable"), storage != "ok", storage + " " + JSON.stringify(one.codes));
  assert.ok(h.server.collector.events.some((e) => e.event == "Product Viewed" && e.anonymousId == one.out.id));
  const two = await visit();
  if (storage == "ok") assert.equal(two.out.id, one.out.id, "the partitioned storage keeps the id");
  else assert.deepEqual([two.out.everyone, two.out.viewed, two.out.flushed], [true, 1, true], "each embedding starts afresh, in memory");
  // The frame's site opened on its own: its first-party storage holds none of the frame's data.
  const top = watch(await ctx.newPage());
  await top.goto(other + "env/framed.html");
  await top.waitForFunction(() => !!localStorage.getItem("ks_profile"));
  const topId = await top.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")).aid);
  assert.ok(![one.out.id, two.out.id].includes(topId));
  assert.deepEqual([...page.problems, ...top.problems], []);
  await ctx.close();
});

test("an about:srcdoc iframe and a script-made about:blank iframe of the page: Keystone starts there, records and delivers", async () => {
  const { ctx } = await contextWith({ "/env/parent.html": parentOf(`id="f"`) });
  const page = watch(await ctx.newPage());
  h.server.collector.reset();
  await page.goto(h.url("/env/parent.html"));
  await page.evaluate((html) => (document.getElementById("f").srcdoc = html), framed("npm"));
  const srcdoc = await reportOf(page);
  assert.deepEqual([srcdoc.out.everyone, srcdoc.out.viewed, srcdoc.out.shown, srcdoc.out.flushed], [true, 1, true, true], JSON.stringify(srcdoc));
  await page.evaluate((html) => {
    window.__report = null;
    const f = document.createElement("iframe");
    document.body.appendChild(f);
    f.contentDocument.open();
    f.contentDocument.write(html);
    f.contentDocument.close();
  }, framed("npm"));
  const blank = await reportOf(page);
  assert.deepEqual([blank.out.everyone, blank.out.shown, blank.out.flushed], [true, true, true], JSON.stringify(blank));
  assert.equal(blank.out.id, srcdoc.out.id, "one origin, one storage: one visitor");
  assert.ok(h.server.collector.events.filter((e) => e.event == "Product Viewed").length >= 2);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

// ---------------------------------------------------------------------------------------------
// A document still being parsed: Keystone starts from <head> before <body> exists (a synchronous
// script further down <head> holds the parser), and the personalized markup arrives afterwards.
for (const build of ["npm", "script-tag"]) {
  test(`started from <head> before <body> exists (${build}): the markup parsed afterwards is personalized, the anti-flicker phase ends`, async () => {
    const config = JSON.stringify({ segments: EVERYONE });
    const start =
      build == "npm"
        ? `<script type="module" async>import { Keystone } from "/pkg/dist/keystone.js"; Keystone.init(${config}).then(() => (window.__noBody = !document.body));</script>`
        : `<script>window.keystoneConfig = ${config};</script><script src="/pkg/dist/keystone.global.js"></script>`;
    const html = doc(`${start}<script src="/env/slow.js"></script>`, `<p id="show" data-keystone-show="everyone" hidden>in</p><p id="hide" data-keystone-hide="everyone">out</p><p id="text" data-keystone-text="context.path">path</p>`);
    let ready;
    const { ctx } = await contextWith({ "/env/nobody.html": html });
    // The parser waits on this script until Keystone is ready (the npm build) or 1.5 s.
    await ctx.route("**/env/slow.js", (r) => (ready = r));
    const page = watch(await ctx.newPage());
    const nav = page.goto(h.url("/env/nobody.html"));
    assert.ok(await until(() => !!ready, 5000));
    if (build == "npm") assert.ok(await until(() => page.evaluate(() => window.__noBody === true), 5000), "init resolved while the document had no <body>");
    else await page.waitForTimeout(1500);
    await ready.fulfill({ contentType: "text/javascript", body: "window.__slow = 1;" });
    await nav;
    assert.ok(await until(() => page.evaluate(() => document.documentElement.classList.contains("keystone-ready"))), "the anti-flicker phase ended");
    await page.waitForTimeout(100);
    const out = await page.evaluate(() => ({ show: document.getElementById("show").hidden, hide: document.getElementById("hide").hidden, text: document.getElementById("text").textContent, visible: getComputedStyle(document.getElementById("show")).visibility }));
    assert.deepEqual(out, { show: false, hide: true, text: "/env/nobody.html", visible: "visible" });
    assert.deepEqual(page.problems, []);
    await ctx.close();
  });
}

// ---------------------------------------------------------------------------------------------
// Private windows and full storage.
test("a private window per visit (a fresh context each time, nothing stored): each visit starts, records its page view and delivers under a new id", async () => {
  h.server.collector.reset();
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const { ctx } = await contextWith({ "/env/visit.html": doc(ESM) });
    const page = watch(await ctx.newPage());
    await page.goto(h.url("/env/visit.html"));
    await page.waitForFunction(() => window.__ksLoaded === true);
    const out = await page.evaluate(async (o) => {
      const ks = await Keystone.init(o);
      await ks.flush();
      return { id: ks.anonymousId(), session: ks.profile().session, stored: !!localStorage.getItem("ks_profile") };
    }, DELIVERY);
    assert.deepEqual([out.session.count, out.session.pageviews, out.stored], [1, 1, true]);
    ids.push(out.id);
    assert.deepEqual(page.problems, []);
    await ctx.close();
  }
  assert.notEqual(ids[0], ids[1]);
  assert.deepEqual(h.server.collector.events.filter((e) => e.type == "page").map((e) => e.anonymousId), ids);
});

test("localStorage filled to the brim by the page before init (a first visit): init resolves and works in memory, storage_unavailable is reported, the id cookie carries the visitor to the next page", async () => {
  const { ctx } = await contextWith({ "/env/visit.html": doc(ESM) });
  h.server.collector.reset();
  const page = watch(await ctx.newPage());
  await page.goto(h.url("/env/visit.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async (o) => {
    let n = 0;
    for (let size = 1 << 20; size >= 1; size >>= 1)
      try {
        for (;;) localStorage.setItem("fill" + n++, "x".repeat(size));
      } catch (_) {}
    const codes = [];
    const ks = await Keystone.init({ ...o, segments: { version: 1, segments: [{ id: "viewer", condition: { $performed: { event: "Product Viewed" } } }] } });
    ks.on("error", (e) => codes.push(e.code));
    ks.track("Product Viewed");
    const flushed = await ks.flush().then(() => true, (e) => e.code);
    await new Promise((r) => setTimeout(r, 400));
    const res = { id: ks.anonymousId(), viewer: ks.inSegment("viewer"), flushed, codes, stored: localStorage.getItem("ks_profile") };
    for (let i = 0; i < n; i++) localStorage.removeItem("fill" + i);
    return res;
  }, DELIVERY);
  assert.deepEqual([typeof out.id, out.viewer, out.flushed, out.stored], ["string", true, true, null], JSON.stringify(out));
  assert.ok(out.codes.includes("storage_unavailable"), JSON.stringify(out.codes));
  assert.ok(h.server.collector.events.some((e) => e.event == "Product Viewed" && e.anonymousId == out.id));
  const next = watch(await ctx.newPage());
  await next.goto(h.url("/env/visit.html"));
  await next.waitForFunction(() => window.__ksLoaded === true);
  assert.equal(await next.evaluate(async () => (await Keystone.init({})).anonymousId()), out.id, "the next page keeps the visitor's id");
  assert.deepEqual([...page.problems, ...next.problems], []);
  await ctx.close();
});

// ---------------------------------------------------------------------------------------------
// Documents over time: a hash router.
test("a hash-routed SPA (#/a → #/b): no page view by default (a hash-only change); with hashChange: true one per route, whether by pushState, location.hash or Back (popstate and hashchange together count once)", async () => {
  for (const hashChange of [false, true]) {
    const { ctx } = await contextWith({ "/env/app.html": doc(ESM) });
    const page = watch(await ctx.newPage());
    await page.goto(h.url("/env/app.html#/a"));
    await page.waitForFunction(() => window.__ksLoaded === true);
    const out = await page.evaluate(async (hashChange) => {
      const ks = await Keystone.init({ autoCapture: { hashChange } });
      const views = () => ks.profile().events["Page Viewed"].count;
      const tick = () => new Promise((r) => setTimeout(r, 50));
      // The browser's hashchange (after popstate), then a moment: a fixed pause alone lost the
      // race on a loaded machine.
      const changed = () => new Promise((r) => addEventListener("hashchange", r, { once: true })).then(tick);
      const seen = [views()];
      history.pushState({}, "", "#/b");
      await tick();
      seen.push(views());
      let next = changed();
      location.hash = "#/c";
      await next;
      seen.push(views());
      next = changed();
      history.back();
      await next;
      seen.push(views());
      return { seen };
    }, hashChange);
    assert.deepEqual(out.seen, hashChange ? [1, 2, 3, 4] : [1, 1, 1, 1], "hashChange " + hashChange);
    assert.deepEqual(page.problems, []);
    await ctx.close();
  }
});
