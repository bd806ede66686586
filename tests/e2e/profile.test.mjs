// The profile in real Chromium: anonymous id in localStorage and a first-party cookie, sessions,
// traits, coalesced writes, and storage that fails soft (blocked, full, corrupted).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function reinit(page, options = {}) {
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  return page.evaluate(async (o) => (window.ks = await Keystone.init(o)).anonymousId(), options);
}

test("anonymous id: UUID v4 in localStorage and a SameSite=Lax cookie, stable across reloads", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const id = await page.evaluate(async () => (window.ks = await Keystone.init({})).anonymousId());
  assert.match(id, UUID);
  // Written at once, not after the coalescing delay.
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")).aid), id);
  const cookie = (await ctx.cookies()).find((c) => c.name === "ks_aid");
  assert.equal(cookie.value, id);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.path, "/");
  assert.ok(cookie.expires > Date.now() / 1000 + 300 * 86400, "long-lived");
  assert.equal(await reinit(page), id);
  // localStorage lost (e.g. cleared by the browser): the cookie brings the id back.
  await page.evaluate(() => localStorage.clear());
  assert.equal(await reinit(page), id);
  await ctx.close();
});

test("reset() and identify() write the id cookie at once, in the same turn", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const cookie = () => (document.cookie.match(/(?:^|; )ks_aid=([^;]*)/) || [])[1];
    const first = ks.anonymousId();
    ks.identify("a@example.com");
    const afterIdentify = cookie();
    ks.reset();
    return { first, afterIdentify, afterReset: cookie(), id: ks.anonymousId() };
  });
  assert.equal(out.afterIdentify, out.first, "an anonymous login keeps the id");
  assert.notEqual(out.id, out.first);
  assert.equal(out.afterReset, out.id, "the new id is in the cookie before reset() returns");
  await ctx.close();
});

test("with cookieDomain the cookie is the source of truth for the id", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const local = await page.evaluate(async () => (window.ks = await Keystone.init({ cookieDomain: "localhost" })).anonymousId());
  const shared = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b"; // as set by another subdomain
  await ctx.addCookies([{ name: "ks_aid", value: shared, domain: "localhost", path: "/" }]);
  assert.notEqual(local, shared);
  assert.equal(await reinit(page, { cookieDomain: "localhost" }), shared);
  await page.waitForTimeout(100);
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")).aid), shared);
  // A known visitor here; then another subdomain logs out (its reset() writes a new shared id):
  // this subdomain's profile is someone else's now. It is set aside, a fresh anonymous one starts
  // under the shared id, and the known person gets their profile back when they log in again.
  await page.evaluate(async () => {
    await ks.identify("ada@example.com", { name: "Ada" });
    ks.track("Product Viewed");
    ks.persistNow();
  });
  const afterLogout = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
  await ctx.addCookies([{ name: "ks_aid", value: afterLogout, domain: "localhost", path: "/" }]);
  assert.equal(await reinit(page, { cookieDomain: "localhost" }), afterLogout);
  const fresh = await page.evaluate(() => ({ user: ks.userId(), traits: ks.profile().traits, viewed: !!ks.profile().events["Product Viewed"] }));
  assert.deepEqual(fresh, { user: null, traits: {}, viewed: false }, "nothing of Ada under the shared id");
  const back = await page.evaluate(async () => {
    await ks.identify("ada@example.com");
    return { name: ks.profile().traits.name, viewed: ks.profile().events["Product Viewed"].count };
  });
  assert.deepEqual(back, { name: "Ada", viewed: 1 });
  // Without cookieDomain, localStorage wins over a differing cookie.
  const page2 = await h.open("/tests/esm.html");
  const own = await page2.evaluate(async () => (window.ks = await Keystone.init({})).anonymousId());
  await page2.context().addCookies([{ name: "ks_aid", value: shared, domain: "localhost", path: "/" }]);
  assert.equal(await reinit(page2), own);
  await page2.context().close();
  await ctx.close();
});

test("with cookieDomain an open page follows the shared id when it is shown again (another subdomain logged out)", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const before = await page.evaluate(async () => {
    window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false, segments: { version: 1, segments: [{ id: "known", condition: { identified: true } }] } });
    window.heard = [];
    ks.on("segment:exit", (e) => heard.push("exit " + e.segment)).on("reset", (e) => heard.push("reset " + e.anonymousId));
    await ks.identify("ada@example.com", { name: "Ada" });
    ks.track("Product Viewed");
    return ks.anonymousId();
  });
  // Another subdomain's reset() writes a new shared id while this page stays open, hidden.
  const afterLogout = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a";
  await ctx.addCookies([{ name: "ks_aid", value: afterLogout, domain: "localhost", path: "/" }]);
  const hidden = await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    return ks.anonymousId();
  });
  assert.equal(hidden, before, "nothing changes while hidden");
  const shown = await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    return { id: ks.anonymousId(), user: ks.userId(), traits: ks.profile().traits, viewed: !!ks.profile().events["Product Viewed"], stored: JSON.parse(localStorage.getItem("ks_profile")).aid };
  });
  assert.deepEqual(shown, { id: afterLogout, user: null, traits: {}, viewed: false, stored: afterLogout }, "nothing of Ada under the shared id");
  assert.deepEqual(await page.evaluate(() => heard), ["reset " + afterLogout, "exit known"], "heard as a logout");
  const back = await page.evaluate(async () => {
    await ks.identify("ada@example.com");
    return { name: ks.profile().traits.name, viewed: ks.profile().events["Product Viewed"].count };
  });
  assert.deepEqual(back, { name: "Ada", viewed: 1 }, "Ada's profile comes back at her next login");
  await ctx.close();
});

test("with cookieDomain a login here after another subdomain's logout applies to the shared id and is kept", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  await page.evaluate(async () => (window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false })));
  const shared = "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a7b"; // another subdomain's reset()
  await ctx.addCookies([{ name: "ks_aid", value: shared, domain: "localhost", path: "/" }]);
  const out = await page.evaluate(async () => {
    await ks.identify("carol@example.com", { firstName: "Carol" });
    const atLogin = { id: ks.anonymousId(), user: !!ks.userId() };
    dispatchEvent(new Event("focus"));
    return { atLogin, id: ks.anonymousId(), user: !!ks.userId(), name: ks.profile().traits.firstName };
  });
  assert.deepEqual(out, { atLogin: { id: shared, user: true }, id: shared, user: true, name: "Carol" });
  // reset() or identify() of the same person after another subdomain's logout: one notice each,
  // for the net change.
  const net = await h.open("/tests/esm.html", { context: await h.browser.newContext() });
  const heard = await net.evaluate(async () => {
    window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false, segments: { version: 1, segments: [{ id: "known", condition: { identified: true } }] } });
    await ks.identify("dora@example.com");
    window.heard = [];
    for (const t of ["reset", "identify", "segment:enter", "segment:exit"]) ks.on(t, (e) => heard.push(t + " " + (e.segment || e.anonymousId || (e.userId ? "user" : ""))));
    return true;
  });
  assert.equal(heard, true);
  const another = () => net.context().addCookies([{ name: "ks_aid", value: crypto.randomUUID(), domain: "localhost", path: "/" }]);
  // A second tab of this origin hears the outcome only (no in-between logout).
  const tab2 = await h.open("/tests/esm.html", { context: net.context() });
  await tab2.evaluate(async () => {
    window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false, segments: { version: 1, segments: [{ id: "known", condition: { identified: true } }] } });
    window.heard = [];
    for (const t of ["reset", "segment:enter", "segment:exit"]) ks.on(t, (e) => heard.push(t));
  });
  await another();
  const again = await net.evaluate(async () => {
    await ks.identify("dora@example.com");
    await new Promise((r) => setTimeout(r, 0));
    return heard.splice(0);
  });
  assert.deepEqual(again, ["identify user"], "the same person logging in again: no exit and enter");
  await tab2.waitForTimeout(300);
  assert.deepEqual(await tab2.evaluate(() => heard), [], "the other tab hears no logout in between");
  await tab2.close();
  // A login refused after the shared id changed: the logout it implies is reported.
  await another();
  const refused1 = await net.evaluate(async () => {
    const code = await ks.identify("").then(() => "resolved", (e) => e.code);
    await new Promise((r) => setTimeout(r, 0));
    return { code, heard: heard.splice(0), id: ks.anonymousId(), segs: ks.segments() };
  });
  assert.deepEqual(refused1, { code: "invalid_email", heard: ["reset " + refused1.id, "segment:exit known"], id: refused1.id, segs: [] });
  await net.evaluate(() => ks.identify("dora@example.com").then(() => heard.splice(0)));
  await another();
  const out2 = await net.evaluate(async () => {
    ks.reset();
    await new Promise((r) => setTimeout(r, 0));
    return { heard: heard.splice(0), id: ks.anonymousId() };
  });
  assert.deepEqual(out2.heard, ["reset " + out2.id, "segment:exit known"], "one reset, with the final id");
  await net.context().close();
  // Personalization refused here: the shared id is neither read at start nor followed after.
  const refused = await h.open("/tests/esm.html", { context: await h.browser.newContext() });
  const own = await refused.evaluate(async () => (window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false, consent: { analytics: true, personalization: false, marketing: false } })).anonymousId());
  await refused.context().addCookies([{ name: "ks_aid", value: shared, domain: "localhost", path: "/" }]);
  assert.equal(await refused.evaluate(() => (dispatchEvent(new Event("focus")), ks.anonymousId())), own);
  await refused.context().close();
  await ctx.close();
});

test("sessions: a new one after sessionTimeout of inactivity; count, pageviews, start, duration", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.clock.install({ time: new Date("2026-03-01T10:00:00Z") });
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  const s1 = await page.evaluate(async () => {
    window.ks = await Keystone.init({ sessionTimeout: "10m" });
    return ks.profile().session;
  });
  assert.equal(s1.count, 1);
  assert.equal(s1.pageviews, 1);
  assert.match(s1.id, UUID);
  await page.clock.fastForward("09:00");
  const s2 = await page.evaluate(() => (ks.track("Still Here"), ks.profile().session));
  assert.equal(s2.id, s1.id);
  assert.equal(s2.durationSec, 540);
  await page.clock.fastForward("10:01");
  const s3 = await page.evaluate(() => (ks.page(), ks.profile().session));
  assert.notEqual(s3.id, s1.id);
  assert.equal(s3.count, 2);
  assert.equal(s3.pageviews, 1);
  assert.equal(s3.durationSec, 0);
  assert.ok(Date.parse(s3.startedAt) - Date.parse(s1.startedAt) >= 19 * 60000, "the new session starts at its first event");
  await ctx.close();
});

test("a segment on the document's events leaves by itself when the retention drops them, with its exit heard", async () => {
  // (Its `$performed` nodes have windows of their own; a condition on `events.<name>` had none:
  // the member stayed in, `explain()` and `profile()` saying otherwise, until the next event.)
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.clock.install({ time: new Date("2026-03-01T10:00:00Z") });
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  await page.evaluate(async () => {
    const segments = { version: 1, segments: [{ id: "old", condition: { "events.Old.count": { $gte: 1 } } }] };
    window.ks = await Keystone.init({ autoCapture: false, retention: "1d", segments });
    window.heard = [];
    ks.on("segment:exit", (e) => heard.push([e.segment, Date.now()]));
    ks.track("Old");
    window.t0 = Date.now();
  });
  await page.clock.runFor("23:58:00");
  assert.deepEqual(await page.evaluate(() => [ks.inSegment("old"), heard.length]), [true, 0]);
  await page.clock.runFor("00:04:00");
  const r = await page.evaluate(() => ({ heard, t0, events: Object.keys(ks.profile().events), explained: ks.explain("old").result }));
  assert.equal(r.heard.length, 1, JSON.stringify(r));
  assert.equal(r.heard[0][0], "old");
  const late = r.heard[0][1] - r.t0 - 86400000;
  assert.ok(late > 0 && late <= 60000, `left ${late} ms after the event's day (its minute's end)`);
  assert.deepEqual(r.events, []);
  assert.equal(r.explained, false);
  assert.equal(await page.evaluate(() => ks.inSegment("old")), false);
  await ctx.close();
});

test("sessions after the device's clock is set back: the visit goes on, its duration keeps counting, and inactivity still ends it", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  const T0 = Date.parse("2026-03-01T10:00:00Z");
  await page.clock.install({ time: T0 });
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  // Paused a minute after install, so a slow page load cannot have passed it already.
  const P = T0 + 60000;
  await page.clock.pauseAt(P);
  const s1 = await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    ks.track("A");
    return ks.profile().session;
  });
  await page.clock.runFor(5 * 60000);
  await page.evaluate(() => ks.track("A"));
  // Set back 3 hours (a clock correction), then an event every 10 minutes: one visit.
  await page.clock.setSystemTime(P - 3 * 3600000);
  const s2 = await page.evaluate(() => (ks.track("B"), ks.profile().session));
  await page.clock.runFor(10 * 60000);
  const s3 = await page.evaluate(() => (ks.track("B"), ks.profile().session));
  assert.deepEqual([s2.id, s2.count, s2.durationSec], [s1.id, 1, 300]);
  assert.deepEqual([s3.id, s3.count, s3.durationSec], [s1.id, 1, 900]);
  // 40 minutes without events (by the new clock, 2 hours before the last events' time): a new session.
  await page.clock.runFor(40 * 60000);
  const s4 = await page.evaluate(() => (ks.track("C"), ks.profile().session));
  assert.notEqual(s4.id, s1.id);
  assert.equal(s4.count, 2);
  assert.equal(Date.parse(s4.startedAt), P - 3 * 3600000 + 50 * 60000);
  await ctx.close();
});

test("page/track/setTraits: JSON types kept, traits merged, writes coalesced within 500 ms", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    let writes = 0;
    const orig = Storage.prototype.setItem;
    Storage.prototype.setItem = function (k, v) {
      if (k === "ks_profile") writes++;
      return orig.call(this, k, v);
    };
    for (let i = 0; i < 50; i++) ks.track("Product Viewed", { sku: "A" + i, price: 9.5, tags: ["x", 1, true, null], nested: { a: { b: 2 } } });
    ks.setTraits({ firstName: "Ada", vip: true });
    ks.setTraits({ tier: 2 });
    const immediate = writes;
    await new Promise((r) => setTimeout(r, 500));
    Storage.prototype.setItem = orig;
    const stored = JSON.parse(localStorage.getItem("ks_profile"));
    return { immediate, writes, traits: ks.profile().traits, last: stored.recent[stored.recent.length - 1], count: ks.profile().events["Product Viewed"].count, storedTraits: stored.traits };
  });
  assert.equal(out.immediate, 0, "no write per event");
  assert.equal(out.writes, 1, "one coalesced write within 500 ms");
  assert.deepEqual(out.traits, { firstName: "Ada", vip: true, tier: 2 });
  assert.deepEqual(out.storedTraits, out.traits);
  assert.equal(out.count, 50);
  assert.deepEqual(out.last[2], { sku: "A49", price: 9.5, tags: ["x", 1, true, null], nested: { a: { b: 2 } } });
  await page.context().close();
});

test("distinct event names are bounded: 2,500 names keep at most 256, never one a definition reads", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const segments = { version: 1, segments: [{ id: "viewer", condition: { $performed: { event: "Product Viewed" } } }] };
    window.ks = await Keystone.init({ autoCapture: false, segments });
    ks.track("Product Viewed");
    for (let i = 0; i < 2500; i++) ks.track("N" + i);
    ks.persistNow();
    const names = Object.keys(ks.profile().events);
    return { n: names.length, viewed: names.includes("Product Viewed"), last: names.includes("N2499"), first: names.includes("N0"), viewer: ks.inSegment("viewer"), bytes: localStorage.getItem("ks_profile").length };
  });
  assert.ok(out.n <= 256, `${out.n} names kept`);
  assert.deepEqual([out.viewed, out.last, out.first, out.viewer], [true, true, false, true]);
  assert.ok(out.bytes < 64 * 1024, `${out.bytes} B stored`);
  await page.context().close();
});

test("blocked localStorage: no crash, one storage_unavailable, the cookie keeps the id", async () => {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() =>
    Object.defineProperty(window, "localStorage", {
      get() {
        throw new DOMException("blocked", "SecurityError");
      },
    }),
  );
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({});
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 5; i++) ks.track("Blocked " + i);
    await new Promise((r) => setTimeout(r, 600));
    ks.track("Later");
    await new Promise((r) => setTimeout(r, 600));
    return { id: ks.anonymousId(), codes, count: Object.keys(ks.profile().events).length };
  });
  assert.match(out.id, UUID);
  assert.deepEqual(out.codes, ["storage_unavailable"]);
  assert.equal(out.count, 7); // page view + 5 + Later, in memory
  assert.deepEqual(page.problems, []);
  assert.equal(await reinit(page), out.id, "the first-party cookie carries the id");
  await ctx.close();
});

test("setItem throwing QuotaExceededError: keeps working in memory, one storage_unavailable", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    Storage.prototype.setItem = function () {
      throw new DOMException("full", "QuotaExceededError");
    };
    window.ks = await Keystone.init({ autoCapture: false });
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 3; i++) {
      ks.track("Full");
      await new Promise((r) => setTimeout(r, 300));
    }
    return { codes, count: ks.profile().events.Full.count, stored: localStorage.getItem("ks_profile") };
  });
  assert.deepEqual(out.codes, ["storage_unavailable"]);
  assert.equal(out.count, 3);
  assert.equal(out.stored, null);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

for (const [what, value] of [
  ["truncated", (s) => s.slice(0, Math.floor(s.length / 2))],
  ["foreign", () => JSON.stringify({ hello: "world" })],
  ["future version", (s) => JSON.stringify({ ...JSON.parse(s), v: 99 })],
  ["damaged counts", (s) => JSON.stringify({ ...JSON.parse(s), ev: [["X", 1, 2, "!!"], ...JSON.parse(s).ev] })],
]) {
  test(`${what} stored data: storage_corrupt event, what is valid kept, never throws`, async () => {
    const page = await h.open();
    const id = await page.evaluate(async () => {
      window.ks = await Keystone.init({ autoCapture: false });
      ks.track("Kept", { a: 1 });
      await new Promise((r) => setTimeout(r, 600));
      return ks.anonymousId();
    });
    const good = await page.evaluate(() => localStorage.getItem("ks_profile"));
    await page.evaluate((v) => localStorage.setItem("ks_profile", v), value(good));
    await page.reload();
    await page.waitForFunction(() => window.__ksLoaded === true);
    const out = await page.evaluate(async () => {
      window.ks = await Keystone.init({ autoCapture: false });
      const codes = [];
      ks.on("error", (e) => codes.push(e instanceof Error && e.code));
      await new Promise((r) => setTimeout(r, 10));
      ks.track("After");
      return { id: ks.anonymousId(), codes, events: Object.keys(ks.profile().events) };
    });
    assert.deepEqual(out.codes, ["storage_corrupt"]);
    assert.equal(out.id, id, "the anonymous id survives (from the data or the cookie)");
    if (what === "damaged counts") assert.deepEqual(out.events, ["Kept", "After"]);
    else assert.deepEqual(out.events, ["After"]);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
}

test("text of every width crosses into the engine and back unchanged, also from storage after a reload", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  // ASCII, 2-, 3- and 4-byte UTF-8 at the start, middle and end of short and long strings
  // (the text is copied into wasm memory in one pass, then the rest after the first wide one).
  const traits = {
    ascii: "plain",
    latin: "héllo wörld",
    wideFirst: "é" + "a".repeat(3000),
    wideLast: "a".repeat(3000) + "ü",
    allTwoByte: "ü".repeat(2000),
    cjk: "中文字".repeat(700),
    emoji: "😀👍🏽".repeat(300),
    mixed: ("ab" + "é" + "中" + "😀").repeat(400),
    // (Lone surrogates are no text: they read back as U+FFFD, as they always have.)
    loneSurrogates: "x\uD800y\uDC00z",
    "clé": "ключ",
    empty: "",
  };
  const got = await page.evaluate(async (t) => {
    window.ks = await Keystone.init({});
    ks.setTraits(t);
    ks.track("Über Event 😀", { "näme": "中".repeat(100) });
    ks.persistNow();
    const p = ks.profile();
    return { traits: p.traits, events: Object.keys(p.events) };
  }, traits);
  const want = { ...traits, loneSurrogates: "x\uFFFDy\uFFFDz" };
  // Names of the traits that differ (the strings themselves are too long to print).
  const differ = (t) => Object.keys({ ...want, ...t }).filter((k) => t[k] !== want[k]);
  assert.deepEqual(differ(got.traits), []);
  assert.ok(got.events.includes("Über Event 😀"), got.events.join());
  await reinit(page);
  assert.deepEqual(differ(await page.evaluate(() => ks.profile().traits)), []);
  await ctx.close();
});
