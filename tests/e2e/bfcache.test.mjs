// The back/forward cache: a page using Keystone stays eligible for it, so going back to it is
// instant. Playwright turns the cache off by default; this file's browser has it on.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../../scripts/serve.mjs";
import { launchWithBfcache } from "./harness.mjs";

let server, browser;
before(async () => {
  // Pages without no-store (which alone keeps a page out of the cache), as a site's server would
  // serve them: served so, not rewritten by a route (a route turns on Playwright's request
  // interception, which held some keepalive requests of a page being left unsent for good).
  server = await startServer({ cacheablePages: true });
  browser = await launchWithBfcache();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** A page of `ctx` that can enter the back/forward cache. Each `pageshow` sets
 * `window.__restored` to its `persisted` (then `init`, a script of the test's own, is added);
 * `why` is Chromium's reason for the last page it did not restore, `problems` the page's errors. */
async function cachedPage(ctx, init) {
  await ctx.addInitScript(() => addEventListener("pageshow", (e) => (window.__restored = e.persisted)));
  if (init) await ctx.addInitScript(init);
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Page.enable");
  const c = { page, why: "", problems: [] };
  cdp.on("Page.backForwardCacheNotUsed", (e) => (c.why = e.notRestoredExplanations.map((r) => r.reason).join(", ")));
  page.on("pageerror", (e) => c.problems.push(e.message));
  return c;
}

const SEGMENTS = { version: 1, segments: [{ id: "everyone", condition: {} }, { id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };
const CONFIGS = {
  "segments": { segments: SEGMENTS },
  "an endpoint": { endpoint: "/v1/batch", writeKey: "demo-key" },
  // The report pass of trackSegments once queried the Web Locks: a query from the next page
  // evicted every page of the site holding a lock from the cache.
  "trackSegments, segments and an endpoint": { segments: SEGMENTS, endpoint: "/v1/batch", writeKey: "demo-key", trackSegments: true },
};

for (const [name, options] of Object.entries(CONFIGS)) {
  test(`with ${name}, a page left for another Keystone page is restored from the back/forward cache, and answers`, async () => {
    const ctx = await browser.newContext();
    const c = await cachedPage(ctx);
    const { page, problems } = c;
    const start = async (path) => {
      await page.goto(server.url + path);
      await page.waitForFunction(() => window.__ksLoaded === true);
      await page.evaluate(async (o) => {
        window.ks = await Keystone.init(o);
        ks.track("Product Viewed");
      }, options);
      await page.waitForTimeout(700); // the writes and report passes of a page being read
    };
    await start("/tests/esm.html?first");
    await start("/tests/esm.html?second");
    await page.goBack({ waitUntil: "commit" });
    await page.waitForFunction(() => location.search == "?first" && window.__restored !== undefined);
    assert.equal(await page.evaluate(() => window.__restored), true, "not restored from the back/forward cache: " + c.why);
    const after = await page.evaluate(() => {
      ks.track("Product Viewed");
      return { count: ks.profile().events["Product Viewed"].count, viewers: ks.inSegment("viewers") };
    });
    assert.equal(after.count, 3, "the restored page sees the other page's event and its own");
    if (options.segments) assert.equal(after.viewers, true);
    assert.deepEqual(problems, []);
    await ctx.close();
  });
}

// A shared computer: Ada logs in on one page, goes to another page of the site and logs out
// there, then Back restores the first page from the cache. The site's own `pageshow` listener
// (added before or after init) records a restore event at once: it must not go out as Ada.
for (const early of [false, true]) {
  test(`a page restored by Back after a logout on the next page: its first event (a pageshow listener added ${early ? "before" : "after"} init) is the logged-out visitor's`, async () => {
    const ctx = await browser.newContext();
    const listen = () =>
      addEventListener("pageshow", (e) => {
        if (!e.persisted) return;
        window.__seen = { user: ks.userId(), anon: ks.anonymousId() };
        ks.track("Restored");
      });
    const c = await cachedPage(ctx, early ? `(${listen})()` : undefined);
    const { page, problems } = c;
    const options = { endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false };
    await page.goto(server.url + "/tests/esm.html?first");
    await page.waitForFunction(() => window.__ksLoaded === true);
    const ada = await page.evaluate(async ({ o, late }) => {
      window.ks = await Keystone.init(o);
      if (late) (0, eval)(`(${late})()`);
      await ks.identify("ada@example.com");
      await ks.flush();
      return ks.userId();
    }, { o: options, late: early ? null : listen.toString() });
    await page.waitForTimeout(700);
    await page.goto(server.url + "/tests/esm.html?second");
    await page.waitForFunction(() => window.__ksLoaded === true);
    const after = await page.evaluate(async (o) => {
      window.ks = await Keystone.init(o);
      ks.reset();
      ks.persistNow();
      await ks.flush();
      return ks.anonymousId();
    }, options);
    await page.waitForTimeout(300);
    await page.goBack({ waitUntil: "commit" });
    await page.waitForFunction(() => location.search == "?first" && window.__restored !== undefined);
    assert.equal(await page.evaluate(() => window.__restored), true, "not restored from the back/forward cache: " + c.why);
    await page.waitForFunction(() => !!window.__seen);
    assert.deepEqual(await page.evaluate(() => window.__seen), { user: null, anon: after });
    await page.evaluate(() => ks.flush());
    const restored = server.collector.events.filter((e) => e.event === "Restored" && (e.anonymousId === after || e.userId === ada));
    assert.deepEqual(restored.map((e) => [e.anonymousId === after, e.userId ?? null]), [[true, null]]);
    assert.deepEqual(problems, []);
    await ctx.close();
  });
}

// Back, Forward, Back with delivery: the page gone forward stores its queue and sends it by beacon
// as it is left; the page restored by Back hears that queue (a `storage` event) and must not
// contend for the other page's tab lock over it (a lock request evicts a page holding it from the
// cache), yet no event may be lost or sent twice.
for (const flushOnShow of [false, true]) {
  test(`with an endpoint${flushOnShow ? " and a flush() as each page is shown" : ""}, Back, Forward and Back again restore each page from the back/forward cache, and each event reaches the collector once`, async () => {
    const ctx = await browser.newContext();
    // A site's own `pageshow` listener that sends at once: the send (which adopts the queues of
    // pages gone) starts before the page has heard what changed while it was in the cache.
    const flush = flushOnShow ? () => addEventListener("pageshow", (e) => e.persisted && window.ks.flush().catch(() => {})) : undefined;
    const c = await cachedPage(ctx, flush);
    const { page, problems } = c;
    const run = "bf" + Math.random().toString(36).slice(2);
    const options = { endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false };
    let n = 0;
    const track = (k) => page.evaluate(({ run, k, n }) => { for (let i = 0; i < k; i++) ks.track("Back Forward", { run, i: n + i }); }, { run, k, n }).then(() => (n += k));
    // Each page's mark is cleared as it is left: a page restored from the cache shows it set again
    // by `pageshow` (persisted or not), never the value of its first load.
    const leave = async (go) => {
      if (n) await page.evaluate(() => (window.__restored = undefined));
      c.why = "";
      await go();
    };
    const start = async (path) => {
      await leave(() => page.goto(server.url + path));
      await page.waitForFunction(() => window.__ksLoaded === true);
      await page.evaluate(async (o) => (window.ks = await Keystone.init(o)), options);
      await track(3);
      await page.waitForTimeout(700); // the queue is stored (within 250 ms), not yet due (5 s)
    };
    const restored = async (search) => {
      await page.waitForFunction((s) => location.search == s && window.__restored !== undefined, search);
      return page.evaluate(() => window.__restored);
    };
    await start("/tests/esm.html?first");
    await start("/tests/esm.html?second");
    await leave(() => page.goBack({ waitUntil: "commit" }));
    assert.equal(await restored("?first"), true, "Back: not restored from the back/forward cache: " + c.why);
    await track(2);
    await page.waitForTimeout(1500); // the storage events of the page left, and what follows them
    await leave(() => page.goForward({ waitUntil: "commit" }));
    assert.equal(await restored("?second"), true, "Forward: not restored from the back/forward cache: " + c.why);
    await track(2);
    await page.waitForTimeout(1500); // the same, the other way
    await leave(() => page.goBack({ waitUntil: "commit" }));
    assert.equal(await restored("?first"), true, "Back again: not restored from the back/forward cache: " + c.why);
    await track(1);
    await page.evaluate(() => ks.flush());
    const mine = () => server.collector.events.filter((e) => e.properties?.run === run);
    for (let t0 = Date.now(); Date.now() - t0 < 5000 && new Set(mine().map((e) => e.properties.i)).size < n; ) await page.waitForTimeout(50);
    await page.waitForTimeout(500); // a late duplicate would show now
    const got = mine().map((e) => e.properties.i).sort((a, b) => a - b);
    assert.deepEqual(got, [...Array(n).keys()], "every event reaches the collector exactly once");
    assert.deepEqual(problems, []);
    await ctx.close();
  });
}

// The page gone forward leaves events stored (its beacon refused): the page restored by Back
// still takes them over, once its view of storage has caught up, and sends them once (the page
// in the cache, whose tab lock that takes, is evicted from it: delivery comes first).
test("with an endpoint, a page left with its events still stored (beacon refused): the page restored by Back delivers them, once", async () => {
  const ctx = await browser.newContext();
  const { page, problems } = await cachedPage(ctx);
  const run = "bfkept" + Math.random().toString(36).slice(2);
  const options = { endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false };
  const start = async (path, i) => {
    await page.goto(server.url + path);
    await page.waitForFunction(() => window.__ksLoaded === true);
    await page.evaluate(async ({ o, run, i }) => {
      window.ks = await Keystone.init(o);
      for (let j = i; j < i + 3; j++) ks.track("Back Forward", { run, i: j });
    }, { o: options, run, i });
    await page.waitForTimeout(700);
  };
  await start("/tests/esm.html?first", 0);
  await start("/tests/esm.html?second", 3);
  await page.evaluate(() => (navigator.sendBeacon = () => false));
  await page.goBack({ waitUntil: "commit" });
  await page.waitForFunction(() => location.search == "?first" && window.__restored === true);
  const mine = () => server.collector.events.filter((e) => e.properties?.run === run);
  for (let t0 = Date.now(); Date.now() - t0 < 6000 && new Set(mine().map((e) => e.properties.i)).size < 6; ) await page.waitForTimeout(50);
  await page.waitForTimeout(500);
  assert.deepEqual(mine().map((e) => e.properties.i).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5], "every event reaches the collector exactly once");
  assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length), 0, "no queue left stored");
  assert.deepEqual(problems, []);
  await ctx.close();
});

// A batch in flight as the page enters the back/forward cache counts as handed off at `pagehide`
// (its events leave the stored queue): Chromium carries a keepalive request on while its page sits
// in the cache, so it reaches the collector though the page is never restored. Each round sends
// one batch and navigates away at once, to a page without Keystone: in even rounds the collector
// holds the request 1 s (sent, not yet answered at `pagehide`), in odd rounds `flush()` is
// called by a timer 0–10 ms after the navigation is asked for (the request not yet sent, or not
// made at all: then the beacon of `pagehide` carries the events). With a route in the context
// (Playwright's request interception, as this file once used to take no-store off the pages) the
// test failed in 2 of 7 runs: a request held unsent for good, the driver's doing, not Chromium's.
test("with an endpoint, a batch in flight as the page enters the back/forward cache reaches the collector, the page never restored", async () => {
  const run = "bfgo" + Math.random().toString(36).slice(2);
  const options = { endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false, flushAt: 1000, flushInterval: 60000 };
  const ROUNDS = 12;
  const hides = [];
  try {
    for (let k = 0; k < ROUNDS; k++) {
      server.collector.setFaults({ delay: k % 2 ? 0 : 1000 });
      const ctx = await browser.newContext();
      // Whether the flush was still waiting for its answer when the page was left, and whether it
      // went into the cache (this script's listener runs before Keystone's).
      const { page, problems } = await cachedPage(ctx, () => addEventListener("pagehide", (e) => window.ks && localStorage.setItem("hide", JSON.stringify({ persisted: e.persisted, waiting: !!window.__waiting }))));
      await page.goto(server.url + "/tests/esm.html?first");
      await page.waitForFunction(() => window.__ksLoaded === true);
      await page.evaluate(async ({ o, run, k }) => {
        window.ks = await Keystone.init(o);
        for (let j = 0; j < 3; j++) ks.track("Back Forward", { run, i: 3 * k + j });
        await new Promise((r) => setTimeout(r, 300)); // stored (within 250 ms)
      }, { o: options, run, k });
      await page.evaluate((d) => {
        const go = () => ((window.__waiting = 1), ks.flush().then(() => (window.__waiting = 0), () => (window.__waiting = 0)));
        d < 0 ? go() : setTimeout(go, d);
      }, k % 2 ? (k >> 1) * 2 : -1);
      await page.goto(server.url + "/tests/blank.html");
      hides.push(JSON.parse(await page.evaluate(() => localStorage.getItem("hide"))));
      assert.equal(hides[k].persisted, true, `round ${k}: the page went into the back/forward cache`);
      const mine = () => server.collector.events.filter((e) => e.properties?.run === run && e.properties.i >= 3 * k);
      for (let t0 = Date.now(); Date.now() - t0 < 3000 && mine().length < 3; ) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(mine().map((e) => e.properties.i).sort((a, b) => a - b), [3 * k, 3 * k + 1, 3 * k + 2], `round ${k}: the batch reached the collector, the page never restored`);
      assert.deepEqual(problems, []);
      await ctx.close();
    }
  } finally {
    server.collector.setFaults({ delay: 0 });
  }
  assert.ok(hides.filter((x) => x.waiting).length >= ROUNDS / 3, "the batch was in flight at pagehide in a third of the rounds at least: " + JSON.stringify(hides));
});
