// Delivery end to end (DESIGN §8, §10): real Chromium, the real local collector
// (scripts/collector.mjs). For each fault, N events are tracked and counted at the collector by
// messageId: every one must arrive; duplicates are reported (goal 0). The table
// fault → sent / delivered / duplicates is printed at the end.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { setup } from "./harness.mjs";

let h;
const rows = [];
before(async () => (h = await setup()));
after(async () => {
  const w = Math.max(...rows.map((r) => r.fault.length), 5);
  const lines = ["", "delivery faults: fault → sent / delivered / duplicates (requests)", "fault".padEnd(w) + "   sent  delivered  duplicates  requests"];
  for (const r of rows) {
    lines.push(r.fault.padEnd(w) + String(r.sent).padStart(7) + String(r.delivered).padStart(11) + String(r.duplicates).padStart(12) + String(r.requests).padStart(10));
  }
  console.log(lines.join("\n"));
  if (h) await h.close();
});

const KEY = "demo-key";
// Small timings so the suite runs in seconds (defaults: flushAt 20, flushInterval 5 s).
const FAST = { endpoint: "/v1/batch", writeKey: KEY, autoCapture: false, flushAt: 5, flushInterval: 100, retryBase: 50, retryMax: 400, requestTimeout: 3000 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(fn, ms = 10000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return true;
    await sleep(25);
  }
  return false;
}

const collector = () => h.server.collector;
const faults = (f) => collector().setFaults(f);

/** Events of this run at the collector: distinct messageIds, duplicates, missing (tab, i). */
function tally(run, tabs, n) {
  const evs = collector().events.filter((e) => e.properties && e.properties.run === run);
  const ids = new Set(evs.map((e) => e.messageId));
  const seen = new Set(evs.map((e) => e.properties.tab + ":" + e.properties.i));
  const missing = [];
  for (let t = 0; t < tabs; t++) for (let i = 0; i < n; i++) if (!seen.has(t + ":" + i)) missing.push(t + ":" + i);
  return { delivered: ids.size, duplicates: evs.length - ids.size, missing, events: evs };
}

async function delivered(run, tabs, n, ms) {
  await until(() => tally(run, tabs, n).missing.length === 0, ms);
  return tally(run, tabs, n);
}

function record(fault, run, tabs, n) {
  const t = tally(run, tabs, n);
  rows.push({ fault, sent: tabs * n, delivered: t.delivered, duplicates: t.duplicates, requests: collector().requests.length });
  assert.deepEqual(t.missing, [], fault + ": every event arrives");
  assert.equal(t.delivered, tabs * n, fault + ": one messageId per event");
  return t;
}

/** Makes `page` refuse to store delivery queues (`ks_q.*`), as a full storage would. */
const refuseQueues = (page) =>
  page.evaluate(() => {
    const set = Storage.prototype.setItem;
    Storage.prototype.setItem = function (k, v) {
      if (String(k).startsWith("ks_q.")) throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
      return set.call(this, k, v);
    };
  });

/** Inits Keystone in `page` and tracks n events tagged {run, tab, i}. */
function track(page, opts, run, n, tab = 0) {
  return page.evaluate(
    async ({ opts, run, n, tab }) => {
      const ks = (window.ks = await Keystone.init(opts));
      window.errors = window.errors || [];
      ks.on("error", (e) => window.errors.push(e.code));
      for (let i = 0; i < n; i++) ks.track("Delivery Test", { run, tab, i });
    },
    { opts, run, n, tab },
  );
}

async function fresh() {
  collector().reset();
  const context = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context });
  return { context, page };
}

test("no fault: flushed by count and by time, Segment shape, Basic auth, JSON body", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 20, flushInterval: 2000 }, "ok", 19);
  await sleep(150);
  assert.equal(collector().requests.length, 0, "19 < flushAt: waits");
  await page.evaluate(() => ks.track("Delivery Test", { run: "ok", tab: 0, i: 19 }));
  assert.ok(await until(() => collector().requests.length === 1, 1500), "the 20th event flushes at once (well before flushInterval, 2 s)");
  assert.equal(collector().requests[0].count, 20);
  await page.evaluate(() => {
    for (let i = 20; i < 25; i++) ks.track("Delivery Test", { run: "ok", tab: 0, i });
  });
  const t0 = Date.now();
  const t = await delivered("ok", 1, 25, 5000);
  assert.ok(Date.now() - t0 >= 1000, "the rest after flushInterval");
  record("none", "ok", 1, 25);
  const reqs = collector().requests;
  assert.ok(reqs.every((r) => r.auth === "header" && r.type.startsWith("application/json") && r.status === 200), JSON.stringify(reqs));
  assert.ok(!Number.isNaN(Date.parse(reqs[0].sentAt)));
  const e = t.events[0];
  for (const k of ["type", "event", "properties", "anonymousId", "messageId", "timestamp", "sentAt", "context"]) assert.ok(k in e, k);
  assert.equal(e.sentAt, reqs[0].sentAt, "each event carries its batch's sentAt");
  // RudderStack's common fields too (its server takes a missing originalTimestamp as the receipt time).
  assert.deepEqual([e.originalTimestamp, e.channel], [e.timestamp, "web"]);
  assert.equal(e.type, "track");
  assert.equal(collector().maxActive, 1);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("message ids: 600 events draw random bytes from the browser in a few blocks, not every 16th event; every id distinct and a UUID v4", async () => {
  const { context, page } = await fresh();
  await page.evaluate(() => {
    window.draws = 0;
    const get = crypto.getRandomValues;
    crypto.getRandomValues = function (a) {
      draws++;
      return get.call(this, a);
    };
  });
  await track(page, { ...FAST, flushAt: 100 }, "ids", 600);
  const draws = await page.evaluate(() => draws);
  // One block per 256 ids (before: one per 16, 38 or more for 600 events).
  assert.ok(draws <= 4, "crypto.getRandomValues calls for 600 events: " + draws);
  await delivered("ids", 1, 600, 15000);
  const t = record("none (600 ids)", "ids", 1, 600);
  assert.ok(t.events.every((e) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(e.messageId)), "UUID v4 message ids");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("page events carry a string name and category top-level, as in the Segment spec, and in properties", async () => {
  const { context, page } = await fresh();
  const code = await page.evaluate(async (opts) => {
    const ks = await Keystone.init({ ...opts, flushAt: 100, flushInterval: 60000 });
    ks.page({ name: "Home", category: "Landing", run: "page", i: 0 });
    ks.page({ run: "page", i: 1 });
    ks.page({ name: 5, category: null, run: "page", i: 2 });
    // A virtual page view: its own url, path and title are its context.page too (as analytics.js).
    ks.page({ url: "https://shop.example/virtual?x=1&utm_source=mail", path: "/virtual", title: "Virtual", run: "page", i: 3 });
    // ... and the profile's context, which segments read.
    const c = ks.profile().context;
    const virtual = [c.url, c.path, c.host, c.title, c.utm.source];
    return ks.flush().then(() => ["resolved", virtual], (e) => [e.code]);
  }, FAST);
  assert.deepEqual(code, ["resolved", ["https://shop.example/virtual?x=1&utm_source=mail", "/virtual", "shop.example", "Virtual", "mail"]]);
  const evs = collector().events.filter((e) => e.properties && e.properties.run === "page").sort((a, b) => a.properties.i - b.properties.i);
  const shape = evs.map((e) => [e.type, e.name, e.category, e.properties.name, e.properties.category]);
  assert.deepEqual(shape, [
    ["page", "Home", "Landing", "Home", "Landing"],
    ["page", undefined, undefined, undefined, undefined],
    ["page", undefined, undefined, 5, null],
    ["page", undefined, undefined, undefined, undefined],
  ]);
  const ctx = (e) => [e.context.page.url, e.context.page.path, e.context.page.title];
  assert.deepEqual(ctx(evs[3]), ["https://shop.example/virtual?x=1&utm_source=mail", "/virtual", "Virtual"]);
  assert.equal(evs[3].context.page.search, "?x=1&utm_source=mail");
  assert.deepEqual(ctx(evs[1]), [evs[1].properties.url, evs[1].properties.path, evs[1].properties.title], "else the page's own");
  assert.ok(!("name" in evs[1]) && !("category" in evs[2]), "no empty or non-string name/category");
  await context.close();
});

test("flush() resolves once the collector accepted the events", async () => {
  const { context, page } = await fresh();
  const out = await page.evaluate(async (opts) => {
    const ks = await Keystone.init({ ...opts, flushAt: 100, flushInterval: 60000 });
    for (let i = 0; i < 7; i++) ks.track("Delivery Test", { run: "flush", tab: 0, i });
    const r = await ks.flush().then(() => "resolved", (e) => e.code);
    const empty = await ks.flush().then(() => "resolved", (e) => e.code);
    return { r, empty };
  }, FAST);
  assert.deepEqual(out, { r: "resolved", empty: "resolved" });
  assert.equal(tally("flush", 1, 7).missing.length, 0, "delivered when flush() resolved");
  record("flush()", "flush", 1, 7);
  await context.close();
});

test("maxBatchBytes: an event larger than a batch (but within 64 KB) goes alone in its batch, not dropped", async () => {
  const { context, page } = await fresh();
  const out = await page.evaluate(async (opts) => {
    const errors = [];
    const ks = await Keystone.init({ ...opts, flushAt: 100, flushInterval: 60000, maxBatchBytes: 4096 });
    ks.on("error", (e) => errors.push(e.code + ": " + e.message));
    ks.track("Delivery Test", { run: "maxbatch", tab: 0, i: 0 });
    ks.track("Delivery Test", { run: "maxbatch", tab: 0, i: 1, blob: "x".repeat(5000) });
    ks.track("Delivery Test", { run: "maxbatch", tab: 0, i: 2 });
    ks.track("Delivery Test", { run: "maxbatch", tab: 0, i: 3, blob: "x".repeat(30000) });
    const r = await ks.flush().then(() => "resolved", (e) => e.code);
    return { r, errors };
  }, FAST);
  assert.equal(out.r, "resolved");
  assert.deepEqual(out.errors, []);
  const got = collector().events.filter((e) => e.properties?.run == "maxbatch").map((e) => e.properties.i);
  assert.deepEqual(got.sort(), [0, 1, 2, 3]);
  await context.close();
});

test("500 for the first K requests: retried with exponential backoff", async () => {
  const { context, page } = await fresh();
  faults({ status: 500, count: 3 });
  await track(page, FAST, "500", 30);
  await delivered("500", 1, 30);
  record("500 × 3", "500", 1, 30);
  const reqs = collector().requests;
  assert.deepEqual(reqs.slice(0, 4).map((r) => r.status), [500, 500, 500, 200]);
  const gap = (i) => reqs[i + 1].at - reqs[i].answeredAt;
  // Jittered delays: attempt 1 in [25, 50] ms, 2 in [50, 100], 3 in [100, 200] — a loaded
  // machine can only lengthen them, so only the lower bounds are checked.
  assert.ok(gap(0) >= 20 && gap(1) >= 45 && gap(2) >= 95, "backoff grows: " + [gap(0), gap(1), gap(2)]);
  await context.close();
});

test("429 with Retry-After: flush() rejects, the retry waits as told", async () => {
  const { context, page } = await fresh();
  faults({ status: 429, count: 1, retryAfter: 1 });
  await track(page, { ...FAST, flushAt: 100, flushInterval: 60000 }, "429", 10);
  const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e instanceof Error && e.code));
  assert.equal(code, "delivery_failed");
  await delivered("429", 1, 10, 5000);
  record("429 Retry-After: 1", "429", 1, 10);
  const [a, b] = collector().requests;
  assert.equal(a.status, 429);
  assert.ok(b.at - a.answeredAt >= 950, "waited " + (b.at - a.answeredAt) + " ms");
  await context.close();
});

test("offline, then online: nothing is lost, sending resumes on `online`", async () => {
  const { context, page } = await fresh();
  await track(page, FAST, "offline", 0);
  await context.setOffline(true);
  await track(page, FAST, "offline", 20);
  const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code));
  assert.equal(code, "delivery_failed");
  await sleep(300);
  assert.equal(collector().events.length, 0);
  await context.setOffline(false);
  await delivered("offline", 1, 20, 5000);
  record("offline → online", "offline", 1, 20);
  await context.close();
});

test("reload in the middle of a flush: the keepalive request completes, the rest leaves by beacon", async () => {
  const { context, page } = await fresh();
  faults({ hang: true });
  await track(page, { ...FAST, flushAt: 10 }, "reload", 10);
  assert.ok(await until(() => collector().requests.length > 0, 3000), "a request is in flight");
  await page.evaluate(() => {
    for (let i = 10; i < 25; i++) ks.track("Delivery Test", { run: "reload", tab: 0, i });
  });
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  await track(page, FAST, "reload", 0);
  await sleep(200);
  faults({ hang: false });
  await delivered("reload", 1, 25, 6000);
  await sleep(300);
  record("reload mid-flush", "reload", 1, 25);
  assert.ok(collector().requests.some((r) => r.type.startsWith("text/plain") && r.auth === "body"), "beacon");
  await context.close();
});

test("reload with the beacon refused: the next page adopts the stored queue", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "adopt", 25);
  await page.evaluate(() => (navigator.sendBeacon = () => false));
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length);
  assert.equal(stored, 1, "the first page's queue is stored");
  assert.equal(collector().events.length, 0);
  await track(page, FAST, "adopt", 0);
  await delivered("adopt", 1, 25);
  record("reload, beacon refused", "adopt", 1, 25);
  await until(async () => (await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length)) === 0, 2000);
  await context.close();
});

test("hidden while offline: no beacon (it would be accepted and lost); the events stay stored and arrive once online", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "offline-hide", 10);
  await context.setOffline(true);
  const keys = await page.evaluate(async () => {
    await new Promise((r) => setTimeout(r, 400)); // the queue is stored
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    return Object.keys(localStorage).filter((k) => k.startsWith("ks_q.") && localStorage.getItem(k).split("\n").length > 1).length;
  });
  assert.equal(keys, 1, "still stored");
  await context.setOffline(false);
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await delivered("offline-hide", 1, 10, 8000);
  record("hidden while offline, then online", "offline-hide", 1, 10);
  await context.close();
});

test("while the collector is failing, hiding or leaving the page sends no beacon (its answer is never seen): nothing is lost", async () => {
  const { context, page } = await fresh();
  faults({ status: 503, count: 1e9 });
  await track(page, { ...FAST, retryBase: 3000, retryMax: 6000 }, "failing-hide", 6);
  await until(() => collector().requests.length >= 1);
  await sleep(200); // the first attempt failed: a retry waits
  const stored = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).reduce((n, k) => n + localStorage.getItem(k).split("\n").length - 1, 0));
  // A tab switch: the page lives on, hidden, then shown again once the collector is back.
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  assert.equal(await stored(), 6, "still stored");
  // Leaving the page (a navigation to the site's next page) while the collector still fails.
  await page.evaluate(() => dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false })));
  assert.equal(await stored(), 6, "still stored when leaving");
  assert.deepEqual(collector().requests.map((r) => r.type.split(";")[0]), ["application/json"], "no beacon");
  faults({ status: 0, count: 0 });
  await page.evaluate(() => {
    dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await page.evaluate(() => ks.flush());
  await delivered("failing-hide", 1, 6, 8000);
  record("hidden and left while the collector fails", "failing-hide", 1, 6);
  await context.close();
});

test("leaving while the collector is failing: a retry in flight that fails too is not lost (the next page sends it); a queue that cannot be stored still leaves by beacon", async () => {
  // A retry in flight when the page is left, which then fails as well: its events stayed stored.
  let { context, page } = await fresh();
  faults({ status: 503, count: 1e9 });
  await track(page, { ...FAST, retryBase: 600, retryMax: 600 }, "failing-inflight", 6);
  await until(() => collector().requests.length >= 1);
  faults({ status: 503, count: 1e9, delay: 1500 }); // the retry stays in flight, then fails
  await until(() => collector().active >= 1, 3000);
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  await page.evaluate(async (o) => (window.ks = await Keystone.init(o)), { ...FAST, retryBase: 600, retryMax: 600 });
  await sleep(1800); // the old page's retry has failed by now
  faults({ status: 0, count: 0, delay: 0 });
  await delivered("failing-inflight", 1, 6, 8000);
  record("left with a retry in flight that fails", "failing-inflight", 1, 6);
  await context.close();

  // Without personalization nothing is stored: leaving sends the beacon even while failing.
  ({ context, page } = await fresh());
  faults({ status: 503, count: 1 });
  await track(page, { ...FAST, retryBase: 3000, retryMax: 3000, consent: { analytics: true, personalization: false } }, "failing-memory", 6);
  await until(() => collector().requests.length >= 1);
  await sleep(200);
  await page.evaluate(() => dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false })));
  await delivered("failing-memory", 1, 6, 4000);
  record("left while failing, queue kept in memory only", "failing-memory", 1, 6);
  await context.close();
});

test("leaving with a retry in flight sent at `online` while the collector is failing: not lost (the next page sends it)", async () => {
  // Found by tests/e2e/del-soak.test.mjs: the `online` event sent the retry at once but also
  // forgot that the collector was failing, so leaving the page handed that retry off as sent.
  const { context, page } = await fresh();
  const o = { ...FAST, retryBase: 60000, retryMax: 60000 };
  faults({ status: 503, count: 1e9 });
  await track(page, o, "online-inflight", 6);
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "delivery_failed");
  faults({ status: 503, count: 1e9, delay: 1500 }); // the retry stays in flight, then fails
  await context.setOffline(true);
  await context.setOffline(false); // `online`: the retry leaves at once
  assert.ok(await until(() => collector().active >= 1, 3000), "the retry is in flight");
  await page.goto(h.url("/tests/blank.html"));
  await sleep(1800); // the old page's retry has failed by now
  faults({ status: 0, count: 0, delay: 0 });
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  await page.evaluate(async (o) => (window.ks = await Keystone.init(o)), o);
  await delivered("online-inflight", 1, 6, 6000);
  record("online, then left with the retry in flight that fails", "online-inflight", 1, 6);
  await context.close();
});

// Seen in tests/e2e/del-soak.test.mjs (seed 10201): the collector back, the page reloaded at once;
// a backlog of two batches (the first cut at 64 KB) leaves at `online`, the first answered during
// the reload, the second made just before `pagehide`, which hands it off as sent. Chromium carries
// that keepalive request to the collector; the soak once lost it under Playwright's request
// interception (a route in the context), which can hold a request of a page being left unsent for
// good. Each round reloads at another moment after `online`.
test("the collector failing, then online and a reload at once: a backlog of two batches sent as the page is left all arrives", async () => {
  const o = { ...FAST, flushAt: 1000, flushInterval: 60000, retryBase: 60000, retryMax: 60000 };
  const DELAYS = [0, 5, 10, 20, 30, 45];
  for (const d of DELAYS) {
    const run = "online-reload-" + d;
    const { context, page } = await fresh();
    faults({ status: 503, count: 1 });
    await track(page, o, run, 10);
    assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "delivery_failed");
    await context.setOffline(true);
    await page.evaluate((run) => {
      for (let i = 10; i < 110; i++) ks.track("Delivery Test", { run, tab: 0, i });
    }, run);
    await sleep(300); // stored
    await context.setOffline(false); // `online`: the retry leaves at once, the backlog after it
    await sleep(d);
    await page.reload();
    await page.waitForFunction(() => window.__ksLoaded === true);
    await page.evaluate(async (o) => (window.ks = await Keystone.init(o)), o);
    await delivered(run, 1, 110, 6000);
    assert.ok(collector().requests.length >= 3, "the failed batch, then two");
    record(`failing, online, reload ${d} ms after`, run, 1, 110);
    await context.close();
  }
});

test("an event tracked in the site's own visibilitychange listener as the page is left is delivered", async () => {
  const { context, page } = await fresh();
  await h.open("/tests/esm.html", { context }); // another tab of the site stays open
  await page.evaluate(async (opts) => {
    window.ks = await Keystone.init(opts);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") ks.track("Delivery Test", { run: "late-leave", tab: 0, i: 1 });
    });
    ks.track("Delivery Test", { run: "late-leave", tab: 0, i: 0 });
  }, { ...FAST, flushAt: 1000, flushInterval: 60000 });
  await page.close({ runBeforeUnload: true });
  await delivered("late-leave", 1, 2, 5000);
  record("tracked in the site's hidden listener, page closed", "late-leave", 1, 2);
  await context.close();
});

test("a page that is only hidden (another tab in front) goes on batching: no beacon per event", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 5, flushInterval: 60000 }, "bg", 0);
  await page.evaluate(async () => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    for (let i = 0; i < 10; i++) {
      ks.track("Delivery Test", { run: "bg", tab: 0, i });
      await new Promise((r) => setTimeout(r, 10));
    }
    // What is left short of flushAt (on a busy machine a batch may take 7 events, leaving 3).
    await ks.flush();
  });
  await delivered("bg", 1, 10, 5000);
  record("hidden tab tracking (batched)", "bg", 1, 10);
  assert.ok(collector().requests.length <= 3, `${collector().requests.length} requests for 10 events`);
  // An event made while hidden (a mobile app switch: the page may be frozen before any timer) is
  // stored at once.
  const stored = await page.evaluate(async () => {
    ks.track("Delivery Test", { run: "bg-stored", tab: 0, i: 0 });
    await Promise.resolve(); // the write follows the task's events
    return Object.keys(localStorage).some((k) => k.startsWith("ks_q.") && localStorage.getItem(k).includes("bg-stored"));
  });
  assert.equal(stored, true);
  await context.close();
});

test("page hidden with events pending (navigate away): beacon, text/plain, key in body", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "hide", 30);
  await sleep(50);
  assert.equal(collector().requests.length, 0);
  await page.goto("about:blank");
  await delivered("hide", 1, 30, 5000);
  record("navigate away (beacon)", "hide", 1, 30);
  const r = collector().requests[0];
  assert.ok(r.type.startsWith("text/plain") && r.auth === "body", JSON.stringify(r));
  await context.close();
});

test("visibilitychange → hidden: beacon, the page keeps working", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "vis", 12);
  const keys = await page.evaluate(async () => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    return Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length;
  });
  assert.equal(keys, 0, "recorded as sent once the beacon was accepted");
  await delivered("vis", 1, 12, 5000);
  record("visibility hidden (beacon)", "vis", 1, 12);
  await context.close();
});

test("a tab that closes with its beacon refused: a tab still open adopts its queue without another call", async () => {
  collector().reset();
  const context = await h.browser.newContext();
  const stay = await h.open("/tests/esm.html", { context });
  const leave = await h.open("/tests/esm.html", { context });
  await track(stay, FAST, "closed", 0, 1);
  await track(leave, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "closed", 12);
  await leave.evaluate(() => (navigator.sendBeacon = () => false));
  await sleep(400);
  assert.equal(collector().events.length, 0, "nothing due yet");
  const stored = () => stay.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length);
  assert.equal(await stored(), 1, "the closing tab's queue is stored");
  await leave.close({ runBeforeUnload: true });
  await delivered("closed", 1, 12, 5000);
  record("tab closed, beacon refused", "closed", 1, 12);
  assert.ok(await until(async () => (await stored()) === 0, 2000), "its stored queue is removed once adopted");
  assert.deepEqual(stay.problems, []);
  await context.close();
});

test("a closed tab's queue adopted by a tab that cannot store its own: sent once, not again at every send; its key removed once delivered", async () => {
  collector().reset();
  const context = await h.browser.newContext();
  const stay = await h.open("/tests/esm.html", { context });
  const leave = await h.open("/tests/esm.html", { context });
  await refuseQueues(stay);
  await track(stay, { ...FAST, flushAt: 100, flushInterval: 300 }, "adoptfull", 0, 1);
  await track(leave, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "adoptfull", 5);
  await leave.evaluate(() => (navigator.sendBeacon = () => false));
  await sleep(400);
  const stored = () => stay.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length);
  assert.equal(await stored(), 1, "the closing tab's queue is stored");
  faults({ status: 500, count: 3 }); // retried meanwhile: each retry is a send
  await leave.close({ runBeforeUnload: true });
  for (let i = 0; i < 5; i++) {
    await sleep(500);
    await stay.evaluate((i) => ks.track("Delivery Test", { run: "adoptfull", tab: 1, i }), i);
  }
  await delivered("adoptfull", 2, 5, 5000);
  await sleep(800);
  const t = record("closed tab adopted, own queue write refused", "adoptfull", 2, 5);
  assert.equal(t.duplicates, 0, "each event arrives once");
  assert.equal(await stored(), 0, "its stored queue is removed once delivered");
  assert.deepEqual(stay.problems.filter((p) => !p.includes("status of 500")), []);
  await context.close();
});

for (const goes of [false, true]) {
  test(`a closed tab's queue is adopted by one tab only: a third tab leaves it to the tab holding it${goes ? ", and sends it once that tab goes" : ""}`, async () => {
    // The adopter cannot store its own queue, so the closed tab's queue stays stored while the
    // adopter owns its events: what a tab whose view of storage lags the adopter's removal sees.
    const run = goes ? "adoptgone" : "adoptonce";
    collector().reset();
    const context = await h.browser.newContext();
    const stay = await h.open("/tests/esm.html", { context });
    const leave = await h.open("/tests/esm.html", { context });
    await refuseQueues(stay);
    await stay.evaluate(() => (navigator.sendBeacon = () => false));
    // A retry long after the first failure: none is in flight when `stay` is closed.
    await track(stay, { ...FAST, flushAt: 100, flushInterval: 300, retryBase: 3e4, retryMax: 3e4 }, run, 0, 1);
    await track(leave, { ...FAST, flushAt: 1000, flushInterval: 60000 }, run, 5);
    await leave.evaluate(() => (navigator.sendBeacon = () => false));
    await sleep(400);
    const queues = () => stay.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")));
    const left = await queues();
    assert.equal(left.length, 1, "the closing tab's queue is stored");
    faults({ status: 503, count: 1e9 });
    await leave.close({ runBeforeUnload: true });
    assert.ok(await until(() => collector().requests.length >= 1, 3000), "adopted: `stay` tried to send it");
    const other = await h.open("/tests/esm.html", { context });
    await track(other, FAST, run, 0, 2);
    await sleep(600);
    assert.deepEqual(await queues(), left, "the third tab took nothing over");
    if (goes) await stay.close({ runBeforeUnload: true }); // its events in memory only: gone with it
    faults({ status: 0, count: 0 });
    await Promise.all((goes ? [other] : [stay, other]).map((p) => p.evaluate(() => ks.flush().catch(() => {}))));
    await delivered(run, 1, 5, 5000);
    await sleep(800);
    const t = record(goes ? "closed tab's queue, its adopter closed too" : "closed tab's queue, a third tab opens", run, 1, 5);
    assert.equal(t.duplicates, 0, "each event arrives once");
    assert.ok(await until(async () => (await other.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")))).length === 0, 2000), "the stored queue is removed once delivered");
    assert.deepEqual(other.problems.filter((p) => !p.includes("status of 503")), []);
    await context.close();
  });
}

test("beacon batches never exceed 64 KB; what the quota refuses waits for the next page", async () => {
  const { context, page } = await fresh();
  const pad = "x".repeat(1500);
  await page.evaluate(async ({ opts, pad }) => {
    const ks = await Keystone.init({ ...opts, flushAt: 1000, flushInterval: 60000 });
    for (let i = 0; i < 150; i++) ks.track("Delivery Test", { run: "big", tab: 0, i, pad });
  }, { opts: FAST, pad });
  await page.goto("about:blank");
  await sleep(300);
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  await track(page, FAST, "big", 0);
  await delivered("big", 1, 150, 8000);
  record("150 × 2 KB, hidden", "big", 1, 150);
  const beacons = collector().requests.filter((r) => r.type.startsWith("text/plain"));
  assert.ok(beacons.length >= 1);
  assert.ok(collector().requests.every((r) => r.bytes <= 65536), collector().requests.map((r) => r.bytes).join(","));
  await context.close();
});

// A browser (or a privacy extension) without navigator.sendBeacon, or one whose sendBeacon
// throws: leaving the page sends the waiting events by keepalive fetch instead, same text/plain
// body, key in the body; nothing waits for the next page that the page could send.
test("no navigator.sendBeacon (or one that throws): hidden and leaving, the events leave by keepalive fetch as text/plain", async () => {
  collector().reset();
  const context = await h.browser.newContext();
  await context.addInitScript(() => delete Navigator.prototype.sendBeacon);
  const page = await h.open("/tests/esm.html", { context });
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "nobeacon", 12);
  const keys = await page.evaluate(async () => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    return Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length;
  });
  assert.equal(keys, 0, "recorded as sent once the keepalive request was made");
  await delivered("nobeacon", 1, 12, 5000);
  record("no sendBeacon, hidden (keepalive fetch)", "nobeacon", 1, 12);
  assert.ok(collector().requests.every((r) => r.type.startsWith("text/plain") && r.auth === "body"), JSON.stringify(collector().requests));
  // A sendBeacon that throws (a page or an extension replaced it): the same fallback on leaving.
  collector().reset();
  const page2 = await h.open("/tests/esm.html", { context });
  await page2.evaluate(() => (navigator.sendBeacon = () => {
    throw new TypeError("blocked");
  }));
  await track(page2, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "throws", 8);
  await page2.goto("about:blank");
  await delivered("throws", 1, 8, 5000);
  record("sendBeacon throws, leaving (keepalive fetch)", "throws", 1, 8);
  assert.ok(collector().requests.every((r) => r.type.startsWith("text/plain") && r.auth === "body"));
  assert.deepEqual([...page.problems, ...page2.problems], []);
  await context.close();
});

test("no navigator.sendBeacon: the keepalive fallback stays within the browser's 64 KB quota; the rest waits for the next page, nothing lost", async () => {
  collector().reset();
  const context = await h.browser.newContext();
  await context.addInitScript(() => delete Navigator.prototype.sendBeacon);
  const page = await h.open("/tests/esm.html", { context });
  const pad = "x".repeat(1500);
  await page.evaluate(async ({ opts, pad }) => {
    const ks = await Keystone.init({ ...opts, flushAt: 1000, flushInterval: 60000 });
    for (let i = 0; i < 150; i++) ks.track("Delivery Test", { run: "nbbig", tab: 0, i, pad });
  }, { opts: FAST, pad });
  await page.goto("about:blank");
  await sleep(300);
  const first = collector().requests.filter((r) => r.type.startsWith("text/plain")).length;
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  await track(page, FAST, "nbbig", 0);
  await delivered("nbbig", 1, 150, 8000);
  record("no sendBeacon, 150 × 2 KB, leaving", "nbbig", 1, 150);
  assert.ok(first >= 1, "what fits in 64 KB left with the page, by keepalive fetch");
  assert.ok(collector().requests.every((r) => r.bytes <= 65536), collector().requests.map((r) => r.bytes).join(","));
  await context.close();
});

test("no navigator.sendBeacon: a batch in flight counts against the 64 KB; what would not fit beside it is sent after, nothing lost", async () => {
  collector().reset();
  const context = await h.browser.newContext();
  await context.addInitScript(() => delete Navigator.prototype.sendBeacon);
  const page = await h.open("/tests/esm.html", { context });
  faults({ delay: 1000 }); // the first batch (≈ 60 KB) stays in flight
  const pad = "x".repeat(1500);
  await page.evaluate(async ({ opts, pad }) => {
    // (A hidden page goes on batching: what is left after the batches leaves on the interval.)
    const ks = (window.ks = await Keystone.init({ ...opts, flushAt: 1000, flushInterval: 2000 }));
    for (let i = 0; i < 60; i++) ks.track("Delivery Test", { run: "nbfly", tab: 0, i, pad });
    await new Promise((r) => setTimeout(r, 100));
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, { opts: FAST, pad });
  faults({ delay: 0 });
  await delivered("nbfly", 1, 60, 8000);
  record("no sendBeacon, hidden with a batch in flight", "nbfly", 1, 60);
  await context.close();
});

async function tabs(n, fault, { noLocks = false } = {}) {
  collector().reset();
  const context = await h.browser.newContext();
  if (noLocks) await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
  const pages = [];
  for (let t = 0; t < n; t++) pages.push(await h.open("/tests/esm.html", { context }));
  const run = "tabs" + n + (noLocks ? "nl" : "");
  const N = 40;
  await Promise.all(
    pages.map((p, tab) =>
      p.evaluate(
        async ({ opts, run, tab, N }) => {
          const ks = await Keystone.init(opts);
          for (let i = 0; i < N; i++) {
            ks.track("Delivery Test", { run, tab, i });
            if (i % 4 === 3) await new Promise((r) => setTimeout(r, 15));
          }
        },
        { opts: FAST, run, tab, N },
      ),
    ),
  );
  await delivered(run, n, N, 10000);
  record(fault, run, n, N);
  if (!noLocks) assert.equal(collector().maxActive, 1, "one flusher at a time");
  for (const p of pages) assert.deepEqual(p.problems, []);
  await context.close();
}

test("two tabs tracking at once", () => tabs(2, "2 tabs"));
test("three tabs tracking at once", () => tabs(3, "3 tabs"));
test("three tabs, no Web Locks (storage lease)", () => tabs(3, "3 tabs, lease fallback", { noLocks: true }));

for (const [run, name, script] of [
  ["nolease1", "localStorage throwing on access", () => Object.defineProperty(window, "localStorage", { get() { throw new DOMException("The operation is insecure.", "SecurityError"); } })],
  ["nolease2", "setItem throwing QuotaExceededError", () => (Storage.prototype.setItem = () => { throw new DOMException("The quota has been exceeded.", "QuotaExceededError"); })],
]) {
  test("no Web Locks and " + name + ": init and fetch delivery go on without the lease", async () => {
    collector().reset();
    const context = await h.browser.newContext();
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
    await context.addInitScript(script);
    const page = await h.open("/tests/esm.html", { context });
    const t0 = Date.now();
    await track(page, FAST, run, 0);
    assert.ok(Date.now() - t0 < 2000, "init resolves at once");
    const r = await page.evaluate(async (run) => {
      for (let i = 0; i < 5; i++) ks.track("Delivery Test", { run, tab: 0, i });
      return ks.flush().then(() => "resolved", (e) => e.code + ": " + e.message);
    }, run);
    assert.equal(r, "resolved");
    record("no Web Locks, " + name, run, 1, 5);
    assert.ok(collector().requests.every((x) => x.type.startsWith("application/json")), "sent by fetch, not by beacon");
    assert.deepEqual(page.problems, []);
    await context.close();
  });
}

test("no Web Locks: a lease ending later than any tab sets one (written before the clock was set back an hour, or damaged) does not stop delivery or the profile's writes", async () => {
  for (const [run, lease] of [["lease1h", (t) => "other " + (t + 3600e3)], ["leasebig", () => "x 99999999999999"], ["leaseinf", () => "x 1e300"]]) {
    collector().reset();
    const context = await h.browser.newContext();
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
    await context.addInitScript(`localStorage.setItem("ks_lease", ${JSON.stringify(lease(Date.now()))}); localStorage.setItem("ks_profile.lease", ${JSON.stringify(lease(Date.now()))});`);
    const page = await h.open("/tests/esm.html", { context });
    const t0 = Date.now();
    await track(page, FAST, run, 0);
    const r = await page.evaluate(async (run) => {
      for (let i = 0; i < 5; i++) ks.track("Delivery Test", { run, tab: 0, i });
      return ks.flush().then(() => "resolved", (e) => e.code + ": " + e.message);
    }, run);
    assert.equal(r, "resolved", run);
    assert.ok(Date.now() - t0 < 5000, `${run}: took ${Date.now() - t0} ms (the flush waits 10 s for a lease it cannot take)`);
    record("no Web Locks, stale lease " + run, run, 1, 5);
    assert.deepEqual(page.problems, []);
    await context.close();
  }
});

test("the queue is stored before any send is attempted", async () => {
  const { context, page } = await fresh();
  faults({ hang: true });
  await track(page, FAST, "stored", 5);
  assert.ok(await until(() => collector().requests.length > 0, 3000));
  const lines = await page.evaluate(() => {
    const k = Object.keys(localStorage).find((k) => k.startsWith("ks_q."));
    return k ? localStorage.getItem(k).split("\n").length - 1 : 0;
  });
  assert.equal(lines, 5);
  faults({ hang: false });
  await context.close();
});

for (const junk of ["42", '{"batch":[1]}']) {
  test(`a stored queue key holding no queue (${junk}): dropped when adopted and reported once as storage_corrupt; this tab's events arrive`, async () => {
    const { context, page } = await fresh();
    await page.evaluate((j) => localStorage.setItem("ks_q.gone", j), junk);
    await track(page, FAST, "junkq", 3);
    await page.evaluate(() => ks.flush());
    await delivered("junkq", 1, 3, 5000);
    record("stored queue key with no queue (" + junk + ")", "junkq", 1, 3);
    await page.evaluate(() => (ks.track("Delivery Test", { run: "junkq", tab: 0, i: 3 }), ks.flush()));
    await page.waitForTimeout(50);
    assert.equal(await page.evaluate(() => localStorage.getItem("ks_q.gone")), null, "the key is removed");
    assert.deepEqual(await page.evaluate(() => window.errors), ["storage_corrupt"]);
    await context.close();
  });
}

test("other 4xx: the batch is dropped and reported; flush() rejects", async () => {
  const { context, page } = await fresh();
  faults({ status: 400, count: 1 });
  await track(page, { ...FAST, flushAt: 100, flushInterval: 60000 }, "400", 3);
  const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code));
  assert.equal(code, "delivery_rejected");
  await sleep(50);
  assert.deepEqual(await page.evaluate(() => window.errors), ["delivery_rejected"]);
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved")), "resolved", "nothing left to send");
  assert.equal(collector().events.length, 0);
  await context.close();
});

test("bounded queue: the oldest are dropped first, the drops counted and reported", async () => {
  const { context, page } = await fresh();
  faults({ status: 503, count: 1000 });
  await track(page, { ...FAST, maxQueueEvents: 5, retryBase: 5000 }, "bound", 8);
  await sleep(50);
  assert.deepEqual(await page.evaluate(() => window.errors), ["queue_overflow", "queue_overflow"], "3 drops: reported at the 1st and 2nd");
  faults({ status: 0, count: 0 });
  await page.evaluate(() => ks.flush());
  const t = tally("bound", 1, 8);
  assert.deepEqual(t.events.map((e) => e.properties.i), [3, 4, 5, 6, 7]);
  await context.close();
});

test("an event too large for a batch (an SPA page view of a 20 KB URL) is dropped alone: the events after it are delivered and flush() resolves", async () => {
  const { context, page } = await fresh();
  const out = await page.evaluate(async (opts) => {
    const ks = (window.ks = await Keystone.init({ ...opts, autoCapture: true, flushAt: 100, flushInterval: 60000 }));
    const errors = [];
    ks.on("error", (e) => errors.push(e.code));
    const here = location.pathname;
    // The page view carries the URL four times (url and search, in properties and context): over 64 KB.
    history.pushState({}, "", here + "?long=" + "y".repeat(20000));
    history.pushState({}, "", here + "?short=1");
    ks.track("Delivery Test", { run: "too-large", tab: 0, i: 0 });
    const flush = await ks.flush().then(() => "resolved", (e) => e.code + ": " + e.message);
    ks.track("Delivery Test", { run: "too-large", tab: 0, i: 1 });
    const again = await ks.flush().then(() => "resolved", (e) => e.code + ": " + e.message);
    return { errors, flush, again };
  }, FAST);
  assert.deepEqual(out, { errors: ["event_too_large"], flush: "resolved", again: "resolved" });
  const t = tally("too-large", 1, 2);
  assert.deepEqual(t.missing, [], "the events after the dropped one arrive");
  assert.deepEqual(collector().events.filter((e) => e.type === "page").map((e) => e.properties.search), ["", "?short=1"]);
  await context.close();
});

test("no endpoint: nothing is queued or sent; no analytics consent: nothing either", async () => {
  const { context, page } = await fresh();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    for (let i = 0; i < 5; i++) ks.track("Delivery Test", { run: "idle", i });
    await ks.flush();
    await new Promise((r) => setTimeout(r, 400));
    return Object.keys(localStorage).filter((k) => k.startsWith("ks_q."));
  });
  assert.deepEqual(out, []);
  const page2 = await h.open("/tests/esm.html", { context: await h.browser.newContext() });
  await page2.evaluate(async (opts) => {
    const ks = await Keystone.init({ ...opts, consent: "opt-in" });
    for (let i = 0; i < 5; i++) ks.track("Delivery Test", { run: "idle", i });
    await ks.flush();
    await new Promise((r) => setTimeout(r, 300));
  }, FAST);
  assert.equal(collector().requests.length, 0);
  await page2.context().close();
  await context.close();
});

test("events queued before a consent refusal are erased: stored queue emptied, never sent", async () => {
  const { context, page } = await fresh();
  // Held back by count and time, so they sit in the stored queue.
  await track(page, { ...FAST, flushAt: 100, flushInterval: 60000 }, "refused", 6);
  const stored = () =>
    page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).reduce((n, k) => n + Math.max(0, (localStorage.getItem(k) || "").split("\n").length - 1), 0)); // a header line, then one per event
  assert.ok(await until(async () => (await stored()) === 6, 3000), "the 6 events are stored before the refusal");
  await page.evaluate(() => ks.setConsent({ analytics: false }));
  assert.equal(await stored(), 0, "the refusal erases the stored queue");
  await page.evaluate(() => ks.track("Delivery Test", { run: "refused", tab: 0, i: 6 }));
  await page.evaluate(() => ks.setConsent({ analytics: true }));
  await page.evaluate(() => ks.track("Delivery Test", { run: "granted", tab: 0, i: 0 }));
  await page.evaluate(() => ks.flush());
  // A later page of the same visitor has nothing left to send either.
  const page2 = await h.open("/tests/esm.html", { context });
  await page2.evaluate(async (opts) => {
    const ks = await Keystone.init(opts);
    await ks.flush();
  }, FAST);
  await sleep(300);
  const runs = collector().events.map((e) => e.properties && e.properties.run);
  assert.equal(runs.filter((r) => r === "refused").length, 0, "nothing queued before or during the refusal is sent");
  assert.equal(runs.filter((r) => r === "granted").length, 1, "events after consent is granted again are sent");
  rows.push({ fault: "consent refused with 6 queued", sent: 0, delivered: 0, duplicates: 0, requests: collector().requests.length });
  await context.close();
});

test("a stored queue of an earlier page is not sent when this page starts without analytics consent (definitions from a URL)", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "earlier", 5);
  const queued = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).length);
  assert.ok(await until(async () => (await queued()) === 1, 3000), "the first page's queue is stored");
  await page.evaluate(() => (navigator.sendBeacon = () => false));
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  // The definitions' fetch keeps init waiting after the transport has started.
  await page.evaluate((opts) => Keystone.init({ ...opts, consent: { analytics: false }, segments: "/tests/segments-definitions.json" }).then(() => {}), FAST);
  await sleep(600);
  assert.equal(collector().events.filter((e) => e.properties && e.properties.run === "earlier").length, 0, "nothing leaves without analytics consent");
  assert.equal(await queued(), 0, "the refusal erases the stored queue");
  await context.close();
});

test("408 is retried; 413 splits the batch into halves sent at once; nothing is lost or reported", async () => {
  const { context, page } = await fresh();
  faults({ status: 408, count: 1 });
  await track(page, { ...FAST, flushAt: 100, flushInterval: 60000 }, "408", 3);
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "delivery_failed", "a timeout is no rejection");
  await delivered("408", 1, 3);
  record("408 once", "408", 1, 3);
  collector().reset();
  faults({ status: 413, count: 1 });
  await page.evaluate(() => {
    for (let i = 0; i < 4; i++) ks.track("Delivery Test", { run: "413", tab: 0, i });
  });
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "resolved");
  record("413 once (4 events)", "413", 1, 4);
  assert.deepEqual(collector().requests.map((r) => [r.status, r.count]), [[413, 0], [200, 2], [200, 2]]);
  assert.deepEqual(await page.evaluate(() => window.errors), []);
  await context.close();
});

test("a bad endpoint rejects init with invalid_argument", async () => {
  const { context, page } = await fresh();
  const code = await page.evaluate(() => Keystone.init({ endpoint: "ftp://x/y" }).then(() => "resolved", (e) => e.code));
  assert.equal(code, "invalid_argument");
  await context.close();
});

test("a collector slower than requestTimeout: flush() rejects at the timeout, the batch stays owned and arrives once", async () => {
  const { context, page } = await fresh();
  faults({ delay: 1500 });
  await track(page, { ...FAST, flushAt: 100, flushInterval: 60000, requestTimeout: 400 }, "slow", 5);
  const t0 = Date.now();
  const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code));
  assert.equal(code, "delivery_failed");
  assert.ok(Date.now() - t0 < 1400, "flush() stops waiting at the timeout");
  const t = await delivered("slow", 1, 5, 6000);
  await sleep(1500); // a re-send would arrive by now
  record("collector slower than the timeout", "slow", 1, 5);
  assert.equal(tally("slow", 1, 5).duplicates, 0, "never re-sent while it may still arrive");
  assert.equal(collector().requests.length, 1);
  faults({ delay: 0 });
  assert.equal(t.delivered, 5);
  await context.close();
});

test("requestTimeout: Infinity (or past what setTimeout takes) is no timeout at once: a collector answering in 600 ms gets the batch, flush() resolves", async () => {
  for (const requestTimeout of [Infinity, 1e12]) {
    const { context, page } = await fresh();
    faults({ delay: 600 });
    const run = "long-timeout-" + requestTimeout;
    await track(page, { ...FAST, flushAt: 100, flushInterval: 60000, requestTimeout }, run, 3);
    const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code));
    faults({ delay: 0 });
    assert.equal(code, "resolved", "requestTimeout " + requestTimeout);
    record("requestTimeout " + requestTimeout, run, 1, 3);
    assert.equal(tally(run, 1, 3).duplicates, 0);
    await context.close();
  }
});

test("flush() with a backlog of several batches to a slow but healthy collector: waits per request, resolves", async () => {
  const { context, page } = await fresh();
  faults({ delay: 500 });
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000, maxBatchBytes: 2500, requestTimeout: 1200 }, "slow-backlog", 15);
  const t0 = Date.now();
  const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code));
  faults({ delay: 0 });
  assert.ok(collector().requests.length >= 3, "several batches: " + collector().requests.length);
  assert.ok(Date.now() - t0 > 1200, "longer in total than one request's timeout");
  assert.equal(code, "resolved");
  record("a backlog to a slow collector", "slow-backlog", 1, 15);
  await context.close();
});

test("a backlog over 64 KB: batches follow one another at once and flush() resolves (responses are read)", async () => {
  const { context, page } = await fresh();
  await track(page, { ...FAST, flushAt: 1000, flushInterval: 60000 }, "backlog", 0);
  await context.setOffline(true);
  await page.evaluate(() => {
    for (let i = 0; i < 300; i++) ks.track("Delivery Test", { run: "backlog", tab: 0, i, pad: "x".repeat(200) });
  });
  await context.setOffline(false);
  const code = await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code));
  assert.equal(code, "resolved", "every batch accepted in one flush");
  assert.ok(collector().requests.length >= 2, "more than one batch");
  record("backlog over 64 KB", "backlog", 1, 300);
  await context.close();
});

test("hidden with a request in flight that then fails: the page still lives, the events come back and arrive", async () => {
  const { context, page } = await fresh();
  let release;
  const gate = new Promise((r) => (release = r));
  let first = true;
  await context.route("**/v1/batch", async (route) => {
    if (first) {
      first = false;
      await gate;
      return route.abort("connectionreset");
    }
    return route.continue();
  });
  await track(page, { ...FAST, flushAt: 5 }, "handoff", 5);
  assert.ok(await until(() => !first, 3000), "a request is in flight");
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  release();
  await sleep(200);
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
    document.dispatchEvent(new Event("visibilitychange"));
    ks.track("Delivery Test", { run: "handoff", tab: 0, i: 5 });
  });
  await page.evaluate(() => ks.flush().catch(() => {}));
  await delivered("handoff", 1, 6, 5000);
  record("hidden, then the request failed", "handoff", 1, 6);
  await context.close();
});

test("the delivery queue's own write refused: storage_unavailable is reported, sending goes on", async () => {
  const { context, page } = await fresh();
  await refuseQueues(page);
  await track(page, FAST, "qfull", 10);
  await delivered("qfull", 1, 10, 5000);
  record("queue write refused", "qfull", 1, 10);
  assert.deepEqual(await page.evaluate(() => window.errors), ["storage_unavailable"]);
  await context.close();
});

test("storage full for good: storage_unavailable is reported once per failing spell, not at every delivery cycle", async () => {
  const { context, page } = await fresh();
  await page.evaluate(() => {
    const set = Storage.prototype.setItem;
    Storage.prototype.setItem = function (k, v) {
      if (window.full && String(k).startsWith("ks_q.")) throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
      return set.call(this, k, v);
    };
  });
  await track(page, FAST, "spell", 0);
  const rounds = (from, full) =>
    page.evaluate(
      async ({ from, full }) => {
        window.full = full;
        for (let i = from; i < from + 3; i++) {
          ks.track("Delivery Test", { run: "spell", tab: 0, i });
          await ks.flush();
          await new Promise((r) => setTimeout(r, 100));
        }
        return window.errors.slice();
      },
      { from, full },
    );
  assert.deepEqual(await rounds(0, true), ["storage_unavailable"], "one spell, one report");
  assert.deepEqual(await rounds(3, true), ["storage_unavailable"], "still the same spell: emptying the queue is no write");
  assert.deepEqual(await rounds(6, false), ["storage_unavailable"], "writes succeed again: the spell ends");
  assert.deepEqual(await rounds(9, true), ["storage_unavailable", "storage_unavailable"], "a new spell, reported");
  assert.equal(page.warnings.filter((w) => w.includes("storage_unavailable")).length, 2);
  record("queue writes refused, 12 cycles", "spell", 1, 12);
  await context.close();
});

test("a request that never ends: aborted at 6 × requestTimeout and retried, delivery goes on", async () => {
  const { context, page } = await fresh();
  let first = true;
  await context.route("**/v1/batch", (route) => {
    if (first) return void (first = false); // never answered
    return route.continue();
  });
  await track(page, { ...FAST, requestTimeout: 300 }, "stall", 5);
  await delivered("stall", 1, 5, 8000);
  record("a request that never ends", "stall", 1, 5);
  await page.evaluate(() => ks.track("Delivery Test", { run: "stall", tab: 0, i: 5 }));
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "resolved");
  await context.close();
});

// A relative endpoint resolves as `fetch` resolves it: against the document's base URL. On a
// page with `<base href>` (an SPA served from a sub-path), every way out — fetch, sendBeacon,
// keepalive fetch — reaches the URL `fetch("../v1/batch")` would, not one resolved against the
// page's own address (here /tests/v1/batch, a 404); the segments URL resolves the same way.
test("a relative endpoint on a page with <base href>: fetch, beacon and keepalive fetch all go where fetch() would", async () => {
  collector().reset();
  const context = await h.browser.newContext();
  await context.route("**/tests/app/shop.html", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: '<!doctype html><html><head><base href="/tests/"><script type="module">import { Keystone } from "/pkg/dist/keystone.js"; window.Keystone = Keystone;</script></head><body></body></html>',
    }),
  );
  const page = await h.open("/tests/app/shop.html", { context });
  await page.waitForFunction(() => window.Keystone);
  const out = await page.evaluate(async (opts) => {
    const ks = (window.ks = await Keystone.init({ ...opts, endpoint: "../v1/batch", segments: "segments-definitions.json" }));
    window.errors = [];
    ks.on("error", (e) => window.errors.push(e.code));
    ks.track("Product Viewed", { run: "base", tab: 0, i: 0 });
    ks.track("Delivery Test", { run: "base", tab: 0, i: 1 });
    const flushed = await ks.flush().then(() => "resolved", (e) => e.code);
    return { base: document.baseURI, flushed, viewers: ks.inSegment("viewers"), fetched: await fetch("../v1/batch", { method: "OPTIONS" }).then((r) => r.url) };
  }, { ...FAST, flushAt: 1000, flushInterval: 60000 });
  assert.equal(out.base, h.url("/tests/"));
  assert.equal(out.fetched, h.url("/v1/batch"), "what fetch() makes of the same relative URL");
  assert.equal(out.flushed, "resolved", "fetch: the batch reached the collector");
  assert.equal(out.viewers, true, "the segments URL resolved against the base URL too");
  // Hidden: sendBeacon.
  await page.evaluate(() => {
    ks.track("Delivery Test", { run: "base", tab: 0, i: 2 });
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await delivered("base", 1, 3, 5000);
  // Shown again, then hidden with a sendBeacon that throws: keepalive fetch.
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    navigator.sendBeacon = () => {
      throw new TypeError("blocked");
    };
    ks.track("Delivery Test", { run: "base", tab: 0, i: 3 });
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await delivered("base", 1, 4, 5000);
  record("relative endpoint under <base href>", "base", 1, 4);
  const types = collector().requests.map((r) => r.type.split(";")[0] + ":" + r.count);
  assert.deepEqual(types, ["application/json:2", "text/plain:1", "text/plain:1"], "fetch, then beacon, then keepalive fetch");
  assert.deepEqual(await page.evaluate(() => window.errors.filter((c) => c != "invalid_segment")), [], "(the definitions' one bad segment aside)");
  assert.deepEqual(page.problems, []);
  await context.close();
});

// Without a writeKey no Authorization header is sent (as Segment's and RudderStack's SDKs do:
// the header only with a write key). A self-hosted collector on another origin that takes no key
// answers the CORS preflight allowing `content-type` only, as many do: an Authorization header
// (`Basic Og==`, base64(":"), before) is not allowed there, so the browser never sent the batch.
test("no writeKey: no Authorization header, so a cross-origin collector that allows only content-type receives the batch, a body of exactly {batch, sentAt}", async () => {
  const seen = [];
  const server = createServer((req, res) => {
    const cors = { "access-control-allow-origin": "*", "access-control-allow-headers": "content-type", "access-control-allow-methods": "POST" };
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, auth: req.headers.authorization ?? null, asked: req.headers["access-control-request-headers"] ?? null, body });
      res.writeHead(req.method == "OPTIONS" ? 204 : 200, cors);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { context, page } = await fresh();
  const endpoint = `http://127.0.0.1:${server.address().port}/v1/batch`;
  const flushed = await page.evaluate(async (opts) => {
    const ks = await Keystone.init(opts);
    ks.track("Delivery Test", { run: "nokey", tab: 0, i: 0 });
    return ks.flush().then(() => "resolved", (e) => e.code);
  }, { ...FAST, writeKey: undefined, endpoint, flushAt: 1000, flushInterval: 60000 });
  server.close();
  assert.equal(flushed, "resolved", JSON.stringify(seen));
  const posts = seen.filter((r) => r.method == "POST");
  assert.equal(posts.length, 1);
  assert.equal(posts[0].auth, null, "no Authorization header");
  assert.equal(JSON.parse(posts[0].body).batch[0].properties.run, "nokey");
  // DESIGN §8's body, with no empty "writeKey" (kept in the body only when there is a key, for the
  // beacon, which carries no header).
  assert.deepEqual(Object.keys(JSON.parse(posts[0].body)), ["batch", "sentAt"]);
  assert.ok(seen.every((r) => !/authorization/i.test(r.asked || "")), "the preflight asks for no Authorization header: " + JSON.stringify(seen));
  await context.close();
});
