// Delivery and the wire format as DESIGN §8, the "Delivery" bullet of §12 and the delivery rows
// of §10 state them, checked from outside the package: what a collector receives (read from
// Playwright routes, the request as the browser sent it), timings on Playwright's clock, and
// the inputs a site may give in other valid forms. What delivery.test.mjs already asserts is not
// repeated here.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && (await h.close()));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms = 8000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return true;
    await sleep(25);
  }
  return false;
}
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const QUIET = { endpoint: "/collect", writeKey: "k", autoCapture: false, flushAt: 100, flushInterval: 60000 };

/** Routes `**\/collect` in `context`: `answer(record)` says how each request is answered (200 by
 * default; `{status, headers}`, `{abort}` or `{hang}`); every request is recorded with its
 * content type, Authorization header and parsed body. */
async function collect(context, answer = () => null) {
  const got = [];
  await context.route("**/collect", async (route) => {
    const r = route.request();
    const rec = { type: r.headers()["content-type"] || "", auth: r.headers().authorization, raw: r.postData() || "" };
    try {
      rec.body = JSON.parse(rec.raw);
    } catch (_) {}
    got.push(rec);
    const a = (await answer(rec, got.length - 1)) || { status: 200 };
    rec.status = a.status || 0;
    if (a.abort) return route.abort(a.abort);
    if (a.hang) return;
    return route.fulfill({ status: a.status, headers: { "access-control-allow-origin": "*", "access-control-expose-headers": "retry-after", ...a.headers }, body: "" });
  });
  // The events the collector accepted (a 2xx answer).
  return { got, events: () => got.flatMap((g) => (g.status > 199 && g.status < 300 && g.body && g.body.batch) || []) };
}

async function routed(answer) {
  const context = await h.browser.newContext();
  const c = await collect(context, answer);
  const page = await h.open("/tests/esm.html", { context });
  return { context, page, ...c };
}

/** A page on Playwright's clock (installed at `time`, then paused: only `page.clock.runFor`
 * moves it), the package loaded, requests to `**\/collect` answered by `answer`. `page.fetches`
 * (page side) holds the fake time of each call to fetch for the collector. */
async function clocked(time, answer) {
  const context = await h.browser.newContext();
  const c = await collect(context, answer);
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  await page.clock.install({ time });
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  await page.clock.pauseAt(time + 60000);
  await page.evaluate(() => {
    window.fetches = [];
    window.answers = 0;
    const f = window.fetch;
    window.fetch = function (...a) {
      if (!String(a[0]).includes("/collect")) return f.apply(this, a);
      fetches.push(Date.now());
      return f.apply(this, a).finally(() => answers++);
    };
  });
  // The fake clock stands still between steps, but the page's work runs in real time (Web
  // Locks, the request): a step is taken once the page is done with what the last one started.
  const state = () => page.evaluate(async () => [fetches.length, answers, (await navigator.locks.query()).held.some((l) => l.name == "ks_flush")]);
  /** Waits (real time) until `n` requests were made, answered, and the send loop is over. */
  c.settled = async (n) => assert.ok(await until(async () => ((s) => s[0] >= n && s[1] >= n && !s[2])(await state()), 5000), "request " + n + " made and answered");
  /** Advances the fake clock by `ms`, then says how many requests were made (after a real pause
   * long enough for a request started by a timer of that step to show). */
  c.advance = async (ms) => {
    await page.clock.runFor(ms);
    await sleep(150);
    return (await state())[0];
  };
  c.now = () => page.evaluate(() => Date.now());
  return { context, page, ...c };
}

test("on the wire: page, track, identify (also from setTraits) and alias carry the Segment-spec fields; a login links the anonymous id, a switch of user does not; reset starts a new anonymousId; a non-ASCII write key is Basic auth over its UTF-8", async () => {
  const { context, page, got, events } = await routed();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ endpoint: "/collect", writeKey: "clé✓ 𝄞", flushAt: 100, flushInterval: 60000 });
    const a0 = ks.anonymousId();
    ks.track("Viewed", { sku: "A1" });
    history.pushState({}, "", "/tests/spa/second?utm_source=mail");
    ks.track("After Navigation");
    ks.setTraits({ plan: "pro" });
    await ks.identify("ada@example.com", { tier: "gold" }, { userId: "crm-ada" });
    ks.track("Logged In");
    ks.setTraits({ plan: "team" });
    await ks.identify("bob@example.com", { tier: "silver" }, { userId: "crm-bob" });
    const a1 = ks.anonymousId();
    ks.reset();
    const a2 = ks.anonymousId();
    ks.track("Logged Out");
    await ks.flush();
    return { a0, a1, a2, origin: location.origin };
  });
  assert.equal(got.length, 1, "one batch");
  const [req] = got;
  assert.equal(req.auth, "Basic " + Buffer.from("clé✓ 𝄞:", "utf8").toString("base64"), "Basic base64(UTF-8 of writeKey + ':')");
  assert.ok(req.type.startsWith("application/json"));
  assert.deepEqual(Object.keys(req.body).filter((k) => k !== "writeKey").sort(), ["batch", "sentAt"]);
  assert.match(req.body.sentAt, ISO);
  const evs = events();
  const id = (v) => ({ [out.a0]: "a0", [out.a1]: "a1", [out.a2]: "a2" })[v] || v;
  const row = (e) => [e.type, e.event || "", id(e.anonymousId), e.userId, e.previousId ? id(e.previousId) : "", JSON.stringify(e.traits || e.properties), e.context.page.path];
  assert.deepEqual(evs.map(row), [
    ["page", "", "a0", null, "", JSON.stringify(evs[0].properties), "/tests/esm.html"],
    ["track", "Viewed", "a0", null, "", '{"sku":"A1"}', "/tests/esm.html"],
    ["page", "", "a0", null, "", JSON.stringify(evs[2].properties), "/tests/spa/second"],
    ["track", "After Navigation", "a0", null, "", "{}", "/tests/spa/second"],
    ["identify", "", "a0", null, "", '{"plan":"pro"}', "/tests/spa/second"],
    ["identify", "", "a0", "crm-ada", "", '{"tier":"gold"}', "/tests/spa/second"],
    ["alias", "", "a0", "crm-ada", "a0", undefined, "/tests/spa/second"],
    ["track", "Logged In", "a0", "crm-ada", "", "{}", "/tests/spa/second"],
    ["identify", "", "a0", "crm-ada", "", '{"plan":"team"}', "/tests/spa/second"],
    // A → B without reset: B starts on a new anonymous id, so nothing on the wire links A and B.
    ["identify", "", "a1", "crm-bob", "", '{"tier":"silver"}', "/tests/spa/second"],
    ["alias", "", "a1", "crm-bob", "a1", undefined, "/tests/spa/second"],
    ["track", "Logged Out", "a2", null, "", "{}", "/tests/spa/second"],
  ]);
  assert.ok(new Set([out.a0, out.a1, out.a2]).size === 3 && [out.a0, out.a1, out.a2].every((a) => UUID4.test(a)));
  for (const e of evs) {
    assert.match(e.messageId, UUID4);
    assert.match(e.timestamp, ISO);
    assert.equal(e.sentAt, req.body.sentAt, "each event carries its batch's sentAt");
    assert.ok(Date.parse(e.timestamp) <= Date.parse(e.sentAt));
  }
  assert.equal(new Set(evs.map((e) => e.messageId)).size, evs.length);
  // The context current when each event was made: the navigation's utm only after it.
  assert.deepEqual(evs.map((e) => (e.context.campaign || {}).source || ""), ["", "", ...Array(10).fill("mail")]);
  assert.equal(evs[3].context.page.url, out.origin + "/tests/spa/second?utm_source=mail");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("a batch whose answer was lost (the connection dropped after it arrived) is retried with the same messageIds and a new sentAt", async () => {
  const { context, page, got } = await routed((r, n) => (n === 0 ? { abort: "connectionreset" } : null));
  const r = await page.evaluate(async (o) => {
    window.ks = await Keystone.init({ ...o, retryBase: 300, retryMax: 300 });
    ks.track("A");
    ks.track("B");
    return ks.flush().then(() => "resolved", (e) => e.code);
  }, QUIET);
  assert.equal(r, "delivery_failed", "flush() rejects: that attempt failed");
  assert.ok(await until(() => got.length === 2), "retried in the background");
  const [a, b] = got.map((g) => g.body);
  assert.deepEqual(b.batch.map((e) => e.messageId), a.batch.map((e) => e.messageId));
  assert.deepEqual(b.batch.map((e) => e.timestamp), a.batch.map((e) => e.timestamp), "timestamp: when the call was made");
  assert.ok(Date.parse(b.sentAt) > Date.parse(a.sentAt), "sentAt: when this batch left");
  assert.ok(b.batch.every((e) => e.sentAt === b.sentAt));
  await context.close();
});

test("Playwright's clock, default options: timestamp is the call's time and sentAt the batch's; a batch leaves 5 s after the oldest event; retries back off from 1 s, doubling, with jitter, up to 60 s; Retry-After as an HTTP date is honoured", async () => {
  let retryAfter = null;
  const c = await clocked(Date.parse("2030-01-01T00:00:00.000Z"), () => ({ status: 503, headers: retryAfter ? { "retry-after": retryAfter } : {} }));
  const { page, got } = c;
  await page.evaluate(async () => {
    window.ks = await Keystone.init({ endpoint: "/collect", writeKey: "k", autoCapture: false });
    ks.track("First");
  });
  const t0 = await c.now();
  await page.clock.runFor(3000);
  await page.evaluate(() => ks.track("Second"));
  assert.equal(await c.advance(1999), 0, "nothing before 5 s");
  assert.equal(await c.advance(2), 1, "a batch at 5 s");
  await c.settled(1);
  const first = got[0].body;
  assert.deepEqual(first.batch.map((e) => e.event), ["First", "Second"]);
  assert.deepEqual(first.batch.map((e) => e.timestamp), [new Date(t0).toISOString(), new Date(t0 + 3000).toISOString()], "the time of each call");
  assert.equal(first.sentAt, new Date(t0 + 5001).toISOString(), "the time the batch left");
  // The collector keeps failing: the n-th retry waits between half and all of
  // min(1 s × 2^(n-1), 60 s) (64 s and 128 s for the 7th and 8th without the cap).
  for (let n = 1; n <= 9; n++) {
    const d = Math.min(1000 * 2 ** (n - 1), 60000);
    assert.equal(await c.advance(d / 2 - 1), n, `retry ${n}: not before ${d / 2} ms`);
    assert.equal(await c.advance(d / 2 + 1), n + 1, `retry ${n}: by ${d} ms`);
    await c.settled(n + 1);
  }
  assert.ok(got.every((g) => g.body.batch.length === 2 && g.body.batch[0].messageId === first.batch[0].messageId), "every attempt carries the same events");
  // Retry-After as an HTTP date (second resolution), some 30 s ahead: the retry waits for it,
  // not for the backoff; flush() makes the attempt that gets it at once.
  const now = await c.now();
  const date = Math.ceil((now + 30000) / 1000) * 1000;
  retryAfter = new Date(date).toUTCString();
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "delivery_failed");
  await c.settled(11);
  retryAfter = null;
  assert.equal(await c.advance(date - now - 1), 11, "not before the date");
  assert.equal(await c.advance(1002), 12, "at the date");
  assert.deepEqual(page.problems, []);
  await c.context.close();
});

test("without an endpoint nothing leaves the device: not one request beyond the page's own files through a whole visit (auto-capture, calls, flush, hidden, left)", async () => {
  const context = await h.browser.newContext();
  const requests = [];
  context.on("request", (r) => requests.push(r.method() + " " + new URL(r.url()).pathname));
  const page = await h.open("/tests/esm.html", { context });
  const r = await page.evaluate(async () => {
    window.beacons = 0;
    navigator.sendBeacon = () => (beacons++, true);
    const ks = await Keystone.init({ writeKey: "k", flushAt: 1, flushInterval: 1, trackSegments: true, segments: { version: 1, segments: [{ id: "all", condition: {} }] } });
    ks.track("A", { x: 1 });
    ks.page({ name: "Virtual" });
    history.pushState({}, "", "/tests/esm.html?next");
    await ks.identify("ada@example.com", { tier: "gold" });
    ks.setTraits({ plan: "pro" });
    ks.reset();
    const flushed = await ks.flush().then(() => "resolved", (e) => e.code);
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    await new Promise((r) => setTimeout(r, 300));
    return [flushed, beacons, Object.keys(localStorage).filter((k) => /q\.|lease|hb\./.test(k))];
  });
  assert.deepEqual(r, ["resolved", 0, []]);
  await page.goto(h.url("/tests/blank.html"));
  await sleep(300);
  assert.deepEqual(requests, ["GET /tests/esm.html", "GET /pkg/dist/keystone.js", "GET /pkg/dist/keystone_bg.wasm", "GET /tests/blank.html"]);
  await context.close();
});

test("a collector on another origin: batches by fetch (JSON, Basic auth, CORS) and the beacon on leaving both arrive", async () => {
  h.server.collector.reset();
  const context = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context });
  const endpoint = `http://127.0.0.1:${h.server.port}/v1/batch`; // the page is on localhost
  const r = await page.evaluate(async (endpoint) => {
    window.ks = await Keystone.init({ endpoint, writeKey: "demo-key", autoCapture: false, flushAt: 100, flushInterval: 60000 });
    ks.track("By Fetch");
    const r = await ks.flush().then(() => "resolved", (e) => e.code);
    ks.track("By Beacon");
    return r;
  }, endpoint);
  assert.equal(r, "resolved");
  await page.goto(h.url("/tests/blank.html"));
  assert.ok(await until(() => h.server.collector.events.length === 2, 3000));
  assert.deepEqual(h.server.collector.events.map((e) => e.event), ["By Fetch", "By Beacon"]);
  assert.deepEqual(h.server.collector.requests.map((q) => [q.type.split(";")[0], q.auth, q.status]), [["application/json", "header", 200], ["text/plain", "body", 200]]);
  await context.close();
});

test("an ad-blocker stopping delivery: with the default bounds the stored queue stays under 512 KB, keeps the newest events, and the drops are reported with their count", async () => {
  let blocked = true;
  const { context, page, events } = await routed(() => (blocked ? { abort: "blockedbyclient" } : null));
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ endpoint: "/collect", writeKey: "k", autoCapture: false });
    const errors = [];
    ks.on("error", (e) => errors.push(e.code + " " + e.message));
    const pad = "x".repeat(1000);
    for (let i = 0; i < 1200; i++) ks.track("Blocked", { i, pad });
    await new Promise((r) => setTimeout(r, 400));
    const stored = Object.keys(localStorage).filter((k) => k.startsWith("ks_q.")).map((k) => localStorage.getItem(k));
    const lines = stored[0].split("\n").slice(1);
    const size = (t) => new TextEncoder().encode(t).length;
    return { keys: stored.length, bytes: size(lines.join("")), one: size(lines[0]), count: lines.length, first: JSON.parse(lines[0]).properties.i, last: JSON.parse(lines.at(-1)).properties.i, errors };
  });
  assert.equal(out.keys, 1);
  // 512 KB of events (1 KB = 1,024 bytes): no room left for one more.
  assert.ok(out.bytes <= 512 * 1024 && out.bytes + out.one > 512 * 1024, `stored: ${out.bytes} B in ${out.count} events of ${out.one} B`);
  assert.equal(out.last, 1199, "the newest kept");
  assert.equal(out.first, 1200 - out.count, "the oldest dropped first");
  const dropped = 1200 - out.count;
  assert.ok(out.errors.length >= 8 && out.errors.every((e) => e.startsWith("queue_overflow ")), out.errors.join("\n"));
  const said = out.errors.map((e) => +/(\d+) event/.exec(e)[1]);
  assert.deepEqual(said, said.map((_, i) => 2 ** i), "counted, said at the 1st, 2nd, 4th, 8th… drop");
  assert.ok(said.at(-1) <= dropped && said.at(-1) * 2 > dropped);
  blocked = false;
  assert.equal(await page.evaluate(() => ks.flush().then(() => "resolved", (e) => e.code)), "resolved");
  const got = events().map((e) => e.properties.i);
  assert.equal(got.length, out.count);
  assert.equal(got[0], dropped);
  await context.close();
});

test("snippet: flush() queued on the stub before the script arrives settles once the calls queued before it were delivered", async () => {
  const SNIPPET = readFileSync(new URL("../../pkg/dist/snippet.js", import.meta.url), "utf8");
  const context = await h.browser.newContext();
  const { events } = await collect(context);
  let release;
  const gate = new Promise((r) => (release = r));
  await context.route("**/keystone.global.js", async (route) => (await gate, route.continue()));
  const page = await context.newPage();
  await page.goto(h.url("/tests/blank.html"));
  await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/collect", writeKey: "k", autoCapture: false, flushAt: 100, flushInterval: 60000 };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    keystone.track("Queued On The Stub");
    window.flushed = keystone.flush().then(() => "resolved", (e) => e.code);
  }, SNIPPET);
  await sleep(150);
  release();
  assert.equal(await page.evaluate(() => window.flushed), "resolved");
  assert.deepEqual(events().map((e) => e.event), ["Queued On The Stub"], "delivered when flush() settled");
  await context.close();
});
test("the persisted queue across a reload: events the first page could not send (its beacon refused) are delivered by the next page's first `await flush()`", async () => {
  // A flush made right after init used to resolve with them still stored when the page's own
  // watch on the gone page's tab lock had just been granted (then released): the lock looked
  // taken, the queue was skipped, and sent a moment later. Several reloads, as the race is timing.
  const { context, page, events } = await routed();
  const left = [];
  for (let i = 0; i < 6; i++) {
    await page.evaluate(async ({ o, i }) => {
      window.ks = await Keystone.init(o);
      ks.track("Left Stored", { i });
      await new Promise((r) => setTimeout(r, 350)); // stored (within 250 ms)
      navigator.sendBeacon = () => false; // the browser's beacon quota refuses
    }, { o: QUIET, i });
    await page.reload();
    await page.waitForFunction(() => window.__ksLoaded === true);
    const r = await page.evaluate(async (o) => {
      window.ks = await Keystone.init(o);
      return ks.flush().then(() => "resolved", (e) => e.code);
    }, QUIET);
    assert.equal(r, "resolved");
    if (!events().some((e) => e.event === "Left Stored" && e.properties.i === i)) left.push(i);
  }
  assert.deepEqual(left, [], "reloads whose flush() resolved with the last page's events not delivered");
  assert.equal(events().length, 6, "each once");
  await context.close();
});

test("a tab killed without pagehide (renderer crash) after its queue was stored: the site's next page delivers its events, once, by the time its first flush() resolves", async () => {
  let hang = true;
  const { context, page, got, events } = await routed(() => (hang ? { hang: true } : null));
  await page.evaluate(async (o) => {
    window.ks = await Keystone.init({ ...o, flushAt: 3 });
    for (let i = 0; i < 5; i++) ks.track("Before Crash", { i });
  }, QUIET);
  assert.ok(await until(() => got.length === 1), "a batch in flight, never answered");
  await sleep(400); // past the 250 ms within which the queue is stored
  const cdp = await context.newCDPSession(page);
  cdp.send("Page.crash").catch(() => {});
  await sleep(300);
  hang = false;
  const next = await h.open("/tests/esm.html", { context });
  await next.evaluate(async (o) => {
    window.ks = await Keystone.init(o);
    await ks.flush();
  }, QUIET);
  const sent = events().filter((e) => e.event === "Before Crash");
  assert.deepEqual([...new Set(sent.map((e) => e.properties.i))].sort(), [0, 1, 2, 3, 4], "delivered, none lost");
  assert.equal(new Set(sent.map((e) => e.messageId)).size, 5, "the same messageIds: a collector can drop the copies");
  await context.close();
});

test("the device clock set back (a correction) holds no batch back: due 5 s after the event and a retry's wait keep their length", async () => {
  const c = await clocked(Date.parse("2030-01-01T12:00:00.000Z"), (r, n) => (n === 1 ? { status: 503 } : null));
  const { page, got } = c;
  const back = async () => page.clock.setSystemTime(new Date((await c.now()) - 3600e3)); // an hour
  await page.evaluate(async () => {
    window.ks = await Keystone.init({ endpoint: "/collect", writeKey: "k", autoCapture: false });
    ks.track("Before The Correction");
  });
  await page.clock.runFor(1000);
  await back();
  assert.equal(await c.advance(4100), 1, "sent 5 s after the event, not an hour later");
  await c.settled(1);
  assert.equal(got[0].body.batch[0].event, "Before The Correction");
  // A failed attempt, then the clock set back while the retry waits (1 s at most).
  await page.evaluate(() => ks.track("Retried"));
  assert.equal(await c.advance(5100), 2, "the second batch, answered 503");
  await c.settled(2);
  await back();
  assert.equal(await c.advance(1100), 3, "retried within 1 s of the failure");
  await c.settled(3);
  assert.equal(got[2].body.batch[0].event, "Retried");
  await c.context.close();
});

test("the endpoint given as a URL object (as fetch and sendBeacon take it) delivers; other types still reject init", async () => {
  const { context, page, events } = await routed();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ endpoint: new URL("/collect", location.href), writeKey: "k", autoCapture: false }).catch((e) => e);
    if (!ks.track) return [ks.code];
    ks.track("Via URL Object");
    return [await ks.flush().then(() => "resolved", (e) => e.code)];
  });
  assert.deepEqual(out, ["resolved"]);
  assert.deepEqual(events().map((e) => e.event), ["Via URL Object"]);
  const other = await (await h.open("/tests/esm.html", { context })).evaluate(() => Promise.all([42, {}, ["/collect"]].map((endpoint) => Keystone.init({ endpoint }).then(() => "resolved", (e) => e.code))));
  assert.deepEqual(other, ["invalid_argument", "invalid_argument", "invalid_argument"]);
  await context.close();
});
