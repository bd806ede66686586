// The tag-manager snippet and the script-tag build (DESIGN §1): a stub `window.keystone` that
// queues every call with an effect (queries answer the empty state), loads keystone.global.js asynchronously, replays in order once ready, and
// then answers directly. Injected the way a tag manager does it: after DOMContentLoaded, with
// calls made while the script is still loading (the test server delays it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const SNIPPET = readFileSync(new URL("../../pkg/dist/snippet.js", import.meta.url), "utf8");
const DEFS = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };

/** A fresh context whose keystone.global.js answers only when `release()` is called. */
async function delayedContext(path = "/tests/blank.html", referer) {
  let release;
  const gate = new Promise((r) => (release = r));
  const ctx = await h.browser.newContext();
  const seen = [];
  await ctx.route("**/keystone.global.js", async (route) => {
    seen.push(route.request().url());
    await gate;
    await route.continue();
  });
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  page.on("console", (m) => m.type() === "error" && page.problems.push(m.text()));
  await page.goto(h.url(path), { referer });
  await page.waitForFunction(() => document.readyState === "complete");
  return { ctx, page, release, seen };
}

test("inline snippet injected after DOMContentLoaded: calls queue, replay in order, then answer directly", async () => {
  const { ctx, page, release } = await delayedContext();
  await page.evaluate(([snippet, defs]) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", segments: { version: 1, segments: [] } };
    const s = document.createElement("script");
    s.textContent = snippet; // what a tag manager's custom HTML tag does
    document.body.appendChild(s);
    const k = window.keystone;
    window.log = [];
    window.stub = k.__keystone === undefined && Array.isArray(k.q);
    k.on("segment:enter", (e) => log.push("enter " + e.segment));
    window.pLoad = k.loadSegments(defs); // replace the config's empty definitions
    window.pTrack = k.track("Product Viewed", { sku: "A1" }); // after loadSegments: enters
    window.pInit = k.init();
    window.queued = k.q.length;
  }, [SNIPPET, DEFS]);
  assert.equal(await page.evaluate(() => window.stub), true);
  assert.equal(await page.evaluate(() => window.queued), 4);
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.keystone.__keystone), undefined, "still the stub while the script is held");
  release();
  const out = await page.evaluate(async () => {
    const ks = await window.pInit;
    const loaded = await window.pLoad;
    await new Promise((r) => setTimeout(r, 20));
    return {
      ready: window.keystone.__keystone === true,
      sameInstanceApi: typeof ks.inSegment === "function",
      loaded: loaded.loaded,
      inSeg: window.keystone.inSegment("viewers"),
      segs: window.keystone.segments(),
      count: window.keystone.profile().events["Product Viewed"].count,
      log: window.log,
      shown: !document.getElementById("show").hidden,
    };
  });
  assert.deepEqual(out, { ready: true, sameInstanceApi: true, loaded: ["viewers"], inSeg: true, segs: ["viewers"], count: 1, log: ["enter viewers"], shown: true });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("calls queued on the stub record the time and page they were made on; the start's page view is the landing page's", async () => {
  const { ctx, page, release } = await delayedContext("/tests/blank.html?utm_source=newsletter");
  const made = await page.evaluate(async (snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/v1/batch", writeKey: "demo-key" };
    const s = document.createElement("script");
    s.textContent = snippet;
    const landed = Date.now();
    document.body.appendChild(s);
    const pause = () => new Promise((r) => setTimeout(r, 150));
    await pause();
    const a = Date.now();
    keystone.track("Made On A");
    await pause();
    history.replaceState({}, "", "/tests/blank.html/b"); // the landing URL is gone before Keystone loads
    document.title = "Page B";
    const b = Date.now();
    keystone.track("Made On B");
    await pause();
    return { landed, a, b, queued: Date.now() };
  }, SNIPPET);
  release();
  const out = await page.evaluate(async () => {
    await keystone.init();
    const ready = Date.now();
    keystone.track("Made Live");
    await keystone.flush();
    return { id: keystone.anonymousId(), ready, context: keystone.profile().context };
  });
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id);
  const row = (e) => [e.type, e.event || "", e.context.page.url.replace(/^.*\/tests\//, ""), e.context.page.title, e.context.page.referrer.replace(/^.*\/tests\//, ""), (e.context.campaign || {}).source || ""];
  assert.deepEqual(sent.map(row), [
    ["page", "", "blank.html?utm_source=newsletter", "Plain page (tag manager target)", "", "newsletter"],
    ["track", "Made On A", "blank.html?utm_source=newsletter", "Plain page (tag manager target)", "", "newsletter"],
    ["track", "Made On B", "blank.html/b", "Page B", "blank.html?utm_source=newsletter", ""],
    // The navigation made before ready is one: its page view, once the queue is replayed.
    ["page", "", "blank.html/b", "Page B", "blank.html?utm_source=newsletter", ""],
    ["track", "Made Live", "blank.html/b", "Page B", "blank.html?utm_source=newsletter", ""],
  ]);
  const at = sent.map((e) => Date.parse(e.timestamp));
  // Each at the time of its call (ms resolution), not at the replay's.
  assert.ok(at[0] >= made.landed && at[0] <= made.a - 100, "page view at the snippet's run: " + [made.landed, at[0]]);
  assert.ok(at[1] >= made.a && at[1] <= made.b - 100, "Made On A when called: " + [made.a, at[1]]);
  assert.ok(at[2] >= made.b && at[2] <= made.queued - 100, "Made On B when called: " + [made.b, at[2]]);
  assert.ok(at[3] >= made.queued && at[3] <= out.ready, "the navigation's view at the replay");
  assert.ok(at[4] >= out.ready, "the live call at its own time");
  // After the replay the context is the page's as it is now.
  assert.deepEqual([out.context.url.replace(/^.*\/tests\//, ""), out.context.title, out.context.utm.source], ["blank.html/b", "Page B", ""]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("keystoneConfig with segments, the URL changed before the script loaded: the landing page view keeps document.referrer (not the landing URL), the navigation's view has the landing URL", async () => {
  const { ctx, page, release } = await delayedContext("/tests/blank.html?utm_source=ad", "https://www.google.com/");
  await page.evaluate(async (snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/v1/batch", writeKey: "demo-key", segments: { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Viewed" } } }] } };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    keystone.track("Viewed");
    history.replaceState({}, "", "/tests/blank.html/b");
  }, SNIPPET);
  release();
  const id = await page.evaluate(async () => (await keystone.init(), await keystone.flush(), keystone.anonymousId()));
  const sent = h.server.collector.events.filter((e) => e.anonymousId === id);
  const row = (e) => [e.type, e.event || "", e.context.page.url.replace(/^.*\/tests\//, ""), e.context.page.referrer.replace(/^.*\/tests\//, "")];
  assert.deepEqual(sent.map(row), [
    ["page", "", "blank.html?utm_source=ad", "https://www.google.com/"],
    ["track", "Viewed", "blank.html?utm_source=ad", "https://www.google.com/"],
    ["page", "", "blank.html/b", "blank.html?utm_source=ad"],
  ]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("opt-in on the snippet: the view recorded once consent comes is the landing page's, utm included, although the URL changed before the script loaded", async () => {
  const { ctx, page, release } = await delayedContext("/tests/blank.html?utm_source=newsletter&utm_campaign=summer");
  await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/v1/batch", writeKey: "demo-key", consent: "opt-in", autoCapture: { engagement: false, scroll: false } };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    history.replaceState({}, "", "/tests/blank.html/clean"); // a site stripping the utm at once
    keystone.track("Before Consent"); // made on the clean URL: not recorded, and not the view's page
    keystone.setConsent({ analytics: true, personalization: true }); // the visitor's choice, queued
    keystone.track("After Consent");
  }, SNIPPET);
  release();
  const id = await page.evaluate(async () => {
    await keystone.init();
    await keystone.flush();
    return keystone.anonymousId();
  });
  const sent = h.server.collector.events.filter((e) => e.anonymousId === id);
  const row = (e) => [e.type, e.event || "", e.context.page.url.replace(/^.*\/tests\//, ""), e.context.page.referrer.replace(/^.*\/tests\//, ""), e.context.campaign || null];
  // As with consent given from the start: the landing page's view, the call made on the clean
  // URL, then the navigation's view.
  assert.deepEqual(sent.map(row), [
    ["page", "", "blank.html?utm_source=newsletter&utm_campaign=summer", "", { source: "newsletter", name: "summer" }],
    ["track", "After Consent", "blank.html/clean", "blank.html?utm_source=newsletter&utm_campaign=summer", null],
    ["page", "", "blank.html/clean", "blank.html?utm_source=newsletter&utm_campaign=summer", null],
  ]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("after the replay, events carry the page's title as it is now, not the one seen when the snippet ran", async () => {
  const { ctx, page, release } = await delayedContext("/tests/blank.html");
  await page.evaluate(async (snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/v1/batch", writeKey: "demo-key" };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    await new Promise((r) => setTimeout(r, 100));
    document.title = "Rendered Title"; // the app renders its title after the tag ran, same URL
  }, SNIPPET);
  release();
  const out = await page.evaluate(async () => {
    await keystone.init();
    keystone.track("Live");
    await keystone.flush();
    return { id: keystone.anonymousId(), title: keystone.profile().context.title };
  });
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id);
  assert.deepEqual(sent.map((e) => [e.type, e.event || "", e.context.page.title]), [
    ["page", "", "Plain page (tag manager target)"],
    ["track", "Live", "Rendered Title"],
  ]);
  assert.equal(out.title, "Rendered Title");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("snippet as a file, no keystoneConfig: init queued on the stub, global script found next to the snippet", async () => {
  const { ctx, page, release, seen } = await delayedContext();
  await page.evaluate((defs) => {
    const s = document.createElement("script");
    s.src = "/pkg/dist/snippet.js";
    s.onload = () => {
      const k = (window.k0 = window.keystone); // a reference kept to the stub
      window.pInit = k.init({ segments: defs });
      window.log = [];
      // Synchronous calls answer synchronously before ready: the empty state, on() chains.
      window.chained = k.on("segment:enter", (e) => log.push("enter " + e.segment)).on("segment:exit", () => {}) === k;
      window.early = { track: k.track("Product Viewed"), segs: k.segments(), inSeg: k.inSegment("viewers"), profile: k.profile(), decide: k.decide("hero"), id: k.anonymousId() };
      window.pFlush = k.flush();
    };
    document.head.appendChild(s);
  }, DEFS);
  await page.waitForFunction(() => !!window.pInit);
  release();
  const out = await page.evaluate(async () => {
    await window.pInit;
    const flushed = await window.pFlush.then(() => "resolved", (e) => e.code);
    window.k0.track("Product Viewed"); // through the kept reference, after ready
    return {
      early: window.early,
      chained: window.chained,
      flushed,
      same: window.k0 === window.keystone,
      chainedAfter: window.k0.on("reset", () => {}).off("reset", () => {}) === window.k0,
      inSeg: window.keystone.inSegment("viewers"),
      count: window.keystone.profile().events["Product Viewed"].count,
      log: window.log,
    };
  });
  assert.deepEqual(out, {
    early: { track: undefined, segs: [], inSeg: false, profile: null, decide: null, id: null },
    chained: true,
    flushed: "resolved",
    same: true,
    chainedAfter: true,
    inSeg: true,
    count: 2,
    log: ["enter viewers"],
  });
  assert.equal(seen.length, 1);
  assert.ok(seen[0].endsWith("/pkg/dist/keystone.global.js"), seen[0]);
  await ctx.close();
});

test("several inits queued on the stub: the options of each add up in call order, as for one made before the engine loaded; one whose options are no object rejects", async () => {
  const { ctx, page, release } = await delayedContext();
  const warnings = [];
  page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  await page.evaluate((defs) => {
    // Two tags of a tag manager, each with its own init, before keystone.global.js arrives.
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: false };
    const s = document.createElement("script");
    s.src = "/pkg/dist/snippet.js";
    s.onload = () => {
      window.pA = keystone.init({ segments: defs, dataLayer: true });
      keystone.track("Product Viewed");
      window.pB = keystone.init({ dataLayer: "tagLayer", trackSegments: true });
      window.pBad = keystone.init(5);
    };
    document.head.appendChild(s);
  }, DEFS);
  await page.waitForFunction(() => !!window.pBad);
  release();
  const out = await page.evaluate(async () => {
    const [a, b, bad] = await Promise.allSettled([window.pA, window.pB, window.pBad]);
    return {
      a: a.status,
      b: b.status === "fulfilled" && b.value === a.value,
      bad: bad.status === "rejected" && bad.reason.code,
      segs: keystone.segments(),
      tagLayer: window.tagLayer || [],
      dataLayer: window.dataLayer || null,
      pageviews: keystone.profile().session.pageviews,
    };
  });
  assert.deepEqual(out, { a: "fulfilled", b: true, bad: "invalid_argument", segs: ["viewers"], tagLayer: [{ event: "keystone.ready", keystoneSegments: ["viewers"] }], dataLayer: null, pageviews: 0 });
  assert.deepEqual(warnings.filter((w) => w.includes("already_initialized")), []);
  await ctx.close();
});

test("init options that throw when read, queued on the stub: the queued init rejects with invalid_argument, nothing escapes into the page", async () => {
  const { ctx, page, release } = await delayedContext();
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.src = "/pkg/dist/snippet.js";
    s.onload = () => {
      window.pInit = window.keystone.init({ autoCapture: false, get segments() { throw new Error("getter"); } }).then(() => "resolved", (e) => e.code);
    };
    document.head.appendChild(s);
  });
  await page.waitForFunction(() => !!window.pInit);
  release();
  assert.equal(await page.evaluate(() => window.pInit), "invalid_argument");
  // The page can still start Keystone with good options.
  assert.equal(await page.evaluate(() => window.keystone.init({ autoCapture: false }).then((ks) => typeof ks.track)), "function");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("the global script failing to load settles the queued Promises and those of later calls", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/blank.html"));
  const out = await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/nope.js" };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    const init = window.keystone.init().then(() => "resolved", (e) => e.code);
    const track = "track " + window.keystone.track("x");
    const flush = window.keystone.flush().then(() => "resolved", (e) => e.code);
    // Made once the load has failed: settled too, not left pending.
    const later = init.then(() => Promise.race([window.keystone.identify("ada@example.com").then(() => "resolved", (e) => e.code), new Promise((r) => setTimeout(() => r("pending"), 1000))]));
    // Calls without a Promise made after the failure are not kept (a long-lived page).
    const kept = init.then(() => {
      for (let i = 0; i < 100; i++) window.keystone.track("x");
      return "queued " + window.keystone.q.length + ", on " + (window.keystone.on("error", () => {}) === window.keystone);
    });
    return Promise.all([init, track, flush, later, kept]);
  }, SNIPPET);
  assert.deepEqual(out, ["load_failed", "track undefined", "load_failed", "load_failed", "queued 0, on true"]);
  await ctx.close();
});

test("a page that enforces Trusted Types: the snippet throws nothing into the page and its Promises reject with load_failed", async () => {
  const ctx = await h.browser.newContext();
  // The snippet's script URL is a plain string, which such a page refuses for a script's src.
  await ctx.route("**/tests/trusted-types.html", (route) =>
    route.fulfill({
      contentType: "text/html",
      headers: { "content-security-policy": "require-trusted-types-for 'script'" },
      body: `<!doctype html><title>tt</title><script>window.keystoneConfig = { src: "/pkg/dist/keystone.global.js" };</script>
<script src="/pkg/dist/snippet.js"></script>
<script>
  const settled = (p) => Promise.race([p.then(() => "resolved", (e) => e.code), new Promise((r) => setTimeout(() => r("pending"), 3000))]);
  window.out = Promise.all([settled(window.keystone.init()), "track " + window.keystone.track("x"), settled(window.keystone.flush())]);
  window.after = "the page's next script ran";
</script>`,
    }),
  );
  const page = await ctx.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(h.url("/tests/trusted-types.html"));
  const out = await page.evaluate(() => window.out);
  assert.deepEqual(out, ["load_failed", "track undefined", "load_failed"]);
  assert.equal(await page.evaluate(() => window.after), "the page's next script ran");
  assert.deepEqual(problems, []);
  await ctx.close();
});

test("wasm failing to load rejects the queued Promise calls with a KeystoneError", async () => {
  const ctx = await h.browser.newContext();
  await ctx.route("**/keystone_bg.wasm", (route) => route.fulfill({ status: 404, body: "" }));
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/blank.html"));
  const out = await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js" };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    const init = window.keystone.init().then(() => "resolved", (e) => e.code);
    const load = window.keystone.loadSegments({ version: 1, segments: [] }).then(() => "resolved", (e) => e.code);
    return Promise.all([init, load]);
  }, SNIPPET);
  assert.deepEqual(out, ["wasm_load_failed", "wasm_load_failed"]);
  await ctx.close();
});

test("keystone.global.js from a plain script tag: keystoneConfig auto-init", async () => {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript((defs) => (window.keystoneConfig = { segments: defs }), DEFS);
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/global.html"));
  const out = await page.evaluate(async () => {
    const before = window.keystone.inSegment("viewers");
    const ks = await window.keystone.init(); // the running auto-init
    window.keystone.track("Product Viewed");
    await new Promise((r) => setTimeout(r, 20));
    return { before, inSeg: window.keystone.inSegment("viewers"), same: ks.anonymousId() === window.keystone.anonymousId(), shown: !document.getElementById("show").hidden };
  });
  assert.deepEqual(out, { before: false, inSeg: true, same: true, shown: true });
  // init again with other options: the same instance, and a warning that they are not applied.
  const warnings = [];
  page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  const same = await page.evaluate(async () => (await window.keystone.init({ storagePrefix: "other_" })) === (await window.keystone.init()));
  await page.waitForTimeout(50);
  assert.equal(same, true);
  assert.equal(warnings.filter((w) => w.includes("already_initialized")).length, 1, warnings.join("\n"));
  await ctx.close();
});

test("keystone.global.js with keystoneConfig, then init(options) before it is ready: the options are added to the config's", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  const warnings = [];
  page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  await page.goto(h.url("/tests/global-config-init.html"));
  const out = await page.evaluate(async () => ({ segs: await window.started, auto: window.keystone.profile().session.pageviews }));
  assert.deepEqual(out, { segs: ["anyone"], auto: 0 }, "segments from init, autoCapture: false from the config");
  assert.deepEqual(warnings.filter((w) => w.includes("already_initialized")), []);
  await ctx.close();
});

test("keystone.global.js without config: nothing starts until init, calls before are queued", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/global.html"));
  const out = await page.evaluate(async (defs) => {
    await new Promise((r) => setTimeout(r, 50));
    const k = window.keystone;
    const anonBefore = k.anonymousId();
    k.track("Product Viewed"); // queued, replayed after init
    const ks = await k.init({ segments: defs });
    await new Promise((r) => setTimeout(r, 0));
    return { anonBefore, inSeg: k.inSegment("viewers"), type: typeof k.inSegment("viewers"), id: typeof ks.anonymousId() };
  }, DEFS);
  assert.deepEqual(out, { anonBefore: null, inSeg: true, type: "boolean", id: "string" });
  await ctx.close();
});

test("keystone.global.js whose keystoneConfig start fails: later Promise calls reject with its error, other calls do not throw and wait for an init that starts it", async () => {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() => (window.keystoneConfig = { autoCapture: false, debug: 5 }));
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  await page.goto(h.url("/tests/global.html"));
  const out = await page.evaluate(async (defs) => {
    const k = window.keystone; // its start from keystoneConfig has failed (the options are checked first)
    // Settled or still pending after 1 s.
    const settle = (p) => Promise.race([p.then(() => "resolved", (e) => e.name + " " + e.code), new Promise((r) => setTimeout(() => r("pending"), 1000))]);
    const after = await Promise.all([settle(k.identify("ada@example.com")), settle(k.flush()), settle(k.setConsent({ marketing: false }))]);
    const first = await settle(k.init()); // init() without options: the failed start's answer
    let threw = null;
    let on;
    try {
      k.track("Product Viewed");
      k.page();
      on = k.on("segment:enter", () => {}) === k;
    } catch (e) {
      threw = String(e);
    }
    const ks = await k.init({ autoCapture: false, segments: defs });
    await new Promise((r) => setTimeout(r, 0));
    return { first, after, threw, on, started: typeof ks.anonymousId(), inSeg: k.inSegment("viewers"), flush: await settle(k.flush()) };
  }, DEFS);
  assert.deepEqual(out, {
    first: "KeystoneError invalid_argument",
    after: Array(3).fill("KeystoneError invalid_argument"),
    threw: null,
    on: true,
    started: "string",
    inSeg: true, // the track made after the failure is replayed by the init that starts it
    flush: "resolved",
  });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

/** The snippet file loaded, `init` (with a segment on the path /checkout/2) and then `queue`
 * (a function run in the page) called on its stub before the global script arrives; released. */
async function queuedOnSnippet(queue) {
  const { ctx, page, release } = await delayedContext();
  await page.evaluate((queue) => {
    const s = document.createElement("script");
    s.src = "/pkg/dist/snippet.js";
    s.onload = () => {
      window.pInit = window.keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "checkout", condition: { "context.path": "/checkout/2" } }] } });
      (0, eval)(queue)();
    };
    document.head.appendChild(s);
  }, queue.toString());
  await page.waitForFunction(() => !!window.pInit);
  release();
  return { ctx, page };
}

test("snippet: a virtual page view queued before ready stays the context after the replay", async () => {
  const { ctx, page } = await queuedOnSnippet(() => window.keystone.page({ url: "/checkout/2?utm_source=mail", path: "/checkout/2", title: "Step 2" }));
  const out = await page.evaluate(async () => {
    await window.pInit;
    const c = window.keystone.profile().context;
    const read = [c.path, c.title, c.utm.source, window.keystone.segments()];
    window.keystone.track("Next");
    return [read, window.keystone.segments()];
  });
  assert.deepEqual(out, [["/checkout/2", "Step 2", "mail", ["checkout"]], ["checkout"]]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("snippet: after a navigation made before ready, membership follows the context the replay ends on", async () => {
  const { ctx, page } = await queuedOnSnippet(() => {
    window.keystone.page({ url: "/checkout/2?utm_source=mail", path: "/checkout/2" });
    history.pushState({}, "", "/tests/elsewhere");
  });
  const out = await page.evaluate(async () => {
    await window.pInit;
    return [window.keystone.profile().context.path, window.keystone.segments()];
  });
  assert.deepEqual(out, ["/tests/elsewhere", []]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

// A call queued on the stub keeps its object arguments as their JSON, which has no ±Infinity
// nor NaN (null instead): what the README's snippet section says of them holds. A queued
// `maxQueueEvents: Infinity` is the default bound, as the same option given once ready is (the
// queue is always bounded); a queued userId NaN takes the hash (refused when called once ready).
test("snippet: numbers JSON cannot carry in a queued call: maxQueueEvents Infinity is the default bound, a userId NaN the hash", async () => {
  const { ctx, page, release } = await delayedContext();
  await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: false };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    const k = window.keystone;
    window.errors = [];
    k.on("error", (e) => errors.push(e.code));
    window.pInit = k.init({ endpoint: "/v1/batch", writeKey: "demo-key", maxQueueEvents: Infinity, maxQueueBytes: Infinity, flushInterval: 60000 });
    window.pId = k.identify("ada@example.com", {}, { userId: NaN }).then(() => "resolved", (e) => e.code);
  }, SNIPPET);
  release();
  await page.evaluate(() => window.pInit);
  await ctx.setOffline(true); // nothing leaves: the queue only grows
  const out = await page.evaluate(async () => {
    for (let i = 0; i < 1001; i++) keystone.track("Queued", { i });
    await new Promise((r) => setTimeout(r, 50));
    const direct = await keystone.identify("ada@example.com", {}, { userId: NaN }).then(() => "resolved", (e) => e.code);
    return { identify: await window.pId, hashed: /^[0-9a-f]{64}$/.test(keystone.userId()), direct, bounded: window.errors.includes("queue_overflow") };
  });
  assert.deepEqual(out, { identify: "resolved", hashed: true, direct: "invalid_argument", bounded: true });
  await ctx.close();
});

/** A page whose HTML is `html` (served at /tests/tm.html?utm_source=search), in a fresh context
 * whose keystone.global.js (or what `gated` names) answers only when `release()` is called. */
async function servedPage(html, gated = "**/keystone.global.js") {
  let release;
  const gate = new Promise((r) => (release = r));
  const ctx = await h.browser.newContext();
  await ctx.route(gated, async (route) => (await gate, route.continue()));
  await ctx.route("**/tests/tm.html*", (route) => route.fulfill({ status: 200, contentType: "text/html", body: html }));
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  // (Not waiting for the load event: the gated script holds it.)
  await page.goto(h.url("/tests/tm.html?utm_source=search"), { waitUntil: "domcontentloaded" });
  return { ctx, page, release };
}

const CONFIG = `<script>window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: { clicks: false } };</script>`;

/** The events sent for the page's visitor, once the replay is done and flushed. */
async function sentAfterReplay(page, release) {
  release();
  await page.waitForFunction(() => window.keystone.__keystone === true);
  const id = await page.evaluate(async () => {
    await new Promise((r) => setTimeout(r, 100));
    keystone.track("Live");
    await keystone.flush();
    return keystone.anonymousId();
  });
  return h.server.collector.events.filter((e) => e.anonymousId === id);
}

test("snippet at the top of <head>, before <title>: the landing view and the calls made on that page carry its title", async () => {
  const { ctx, page, release } = await servedPage(
    `<!doctype html><html><head>${CONFIG}<script>${SNIPPET}</script><script>keystone.track("In Head")</script><title>Red Shoes | Shop</title></head><body><script>keystone.track("In Body")</script></body></html>`,
  );
  const sent = await sentAfterReplay(page, release);
  assert.deepEqual(sent.map((e) => [e.type, e.event || "", e.context.page.title, e.properties.title ?? null]), [
    ["page", "", "Red Shoes | Shop", "Red Shoes | Shop"],
    ["track", "In Head", "Red Shoes | Shop", null],
    ["track", "In Body", "Red Shoes | Shop", null],
    ["track", "Live", "Red Shoes | Shop", null],
  ]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("a page with Prototype.js's Array.prototype.toJSON: arrays in calls queued on the snippet (and on the script-tag build) stay arrays", async () => {
  // Prototype.js 1.6: Array.prototype.toJSON returns the array's JSON text, so JSON.stringify
  // of an object holding an array writes a string where the array was.
  const PROTOTYPE = `<script>Array.prototype.toJSON = function () { var r = []; for (var i = 0; i < this.length; i++) r.push(JSON.stringify(this[i])); return "[" + r.join(", ") + "]"; };</script>`;
  // The snippet's stub while keystone.global.js loads; the script-tag build's own queue while
  // its wasm loads.
  for (const [loader, gated] of [
    [`<script>${SNIPPET}</script>`, "**/keystone.global.js"],
    [`<script src="/pkg/dist/keystone.global.js"></script>`, "**/keystone_bg.wasm"],
  ]) {
    const { ctx, page, release } = await servedPage(
      `<!doctype html><html><head><title>Cart</title>${PROTOTYPE}${CONFIG.replace("autoCapture", 'segments: { version: 1, segments: [{ id: "two", condition: { "traits.tags": { $size: 2 } } }] }, autoCapture')}${loader}</head><body><script>
        keystone.track("Cart Viewed", { skus: ["A1", "B2"], nested: { ids: [1, [2, 3]] } });
        keystone.setTraits({ tags: ["vip", "new"] });
      </script></body></html>`,
      gated,
    );
    const sent = await sentAfterReplay(page, release);
    const cart = sent.find((e) => e.event === "Cart Viewed");
    assert.deepEqual(cart?.properties, { skus: ["A1", "B2"], nested: { ids: [1, [2, 3]] } }, loader.slice(0, 30));
    const out = await page.evaluate(() => [keystone.profile().traits.tags, keystone.segments()]);
    assert.deepEqual(out, [["vip", "new"], ["two"]], loader.slice(0, 30));
    assert.deepEqual(page.problems, []);
    await ctx.close();
  }
});

test("two SPA navigations before the script arrived: the navigation's view after the replay has the page before it as referrer, not the landing page", async () => {
  const { ctx, page, release } = await servedPage(
    `<!doctype html><html><head><title>Landing</title>${CONFIG}<script>${SNIPPET}</script></head><body><script>
      keystone.track("On Landing");
      history.pushState({}, "", "/tests/b"); document.title = "B";
      keystone.track("On B");
      history.pushState({}, "", "/tests/c"); document.title = "C";
    </script></body></html>`,
  );
  const sent = await sentAfterReplay(page, release);
  const row = (e) => [e.type, e.event || "", e.context.page.url.replace(/^.*\/tests\//, ""), e.context.page.referrer.replace(/^.*\/tests\//, "")];
  assert.deepEqual(sent.map(row), [
    ["page", "", "tm.html?utm_source=search", ""],
    ["track", "On Landing", "tm.html?utm_source=search", ""],
    ["track", "On B", "b", "tm.html?utm_source=search"],
    ["page", "", "c", "b"],
    ["track", "Live", "c", "b"],
  ]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
