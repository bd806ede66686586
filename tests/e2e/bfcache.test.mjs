// The back/forward cache: a page using Keystone stays eligible for it, so going back to it is
// instant. Playwright turns the cache off by default; this file's browser has it on.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve.mjs";
import { CHROMIUM_ARGS } from "./harness.mjs";

let server, browser;
before(async () => {
  server = await startServer();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS, headless: true, ignoreDefaultArgs: ["--disable-back-forward-cache"] });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

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
    await ctx.addInitScript(() => addEventListener("pageshow", (e) => (window.__restored = e.persisted)));
    // The test server says no-store (which alone keeps a page out of the cache), as a site's
    // server would not for these files.
    await ctx.route("**/*", async (route) => {
      const r = await route.fetch();
      const headers = { ...r.headers() };
      delete headers["cache-control"];
      await route.fulfill({ response: r, headers });
    });
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("Page.enable");
    let why = "";
    cdp.on("Page.backForwardCacheNotUsed", (e) => (why = e.notRestoredExplanations.map((r) => r.reason).join(", ")));
    const problems = [];
    page.on("pageerror", (e) => problems.push(e.message));
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
    assert.equal(await page.evaluate(() => window.__restored), true, "not restored from the back/forward cache: " + why);
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
