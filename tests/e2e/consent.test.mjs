// Consent (DESIGN §6): opt-in stores nothing before consent, granting starts collection,
// withdrawing stops it, forget() erases everything, Global Privacy Control turns marketing off.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, launchSubdomains, subdomainOpener } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

/** Every byte Keystone could have left on the device: storages, cookies, IndexedDB. */
async function footprint(page) {
  return page.evaluate(async () => {
    const keys = (s) => Object.keys(s).filter((k) => k.startsWith("ks_"));
    const dbs = indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [];
    const bytes = (s) => keys(s).reduce((n, k) => n + k.length + (s.getItem(k) || "").length, 0);
    return {
      local: keys(localStorage),
      session: keys(sessionStorage),
      cookie: document.cookie,
      idb: dbs,
      bytes: bytes(localStorage) + bytes(sessionStorage) + document.cookie.length,
    };
  });
}
const EMPTY = { local: [], session: [], cookie: "", idb: [], bytes: 0 };

/** Waits for the marker forget() leaves for the site's other tabs (a cookie holding the time of
 * the forget(), no identifier) to expire: 2 s after the forget(). */
async function markerGone(page, prefix = "ks_") {
  const t = await page.evaluate(async (p) => {
    const at = performance.now();
    const mark = () => document.cookie.split("; ").find((c) => c.startsWith(p + "fg="));
    const m = mark();
    if (m && !/^[^=]+=\d{13}$/.test(m)) return "not a time: " + m;
    while (mark() && performance.now() - at < 3000) await new Promise((r) => setTimeout(r, 50));
    return mark() || "gone";
  }, prefix);
  assert.equal(t, "gone");
}

test("opt-in: nothing stored and no id before consent; granting starts collection", async () => {
  const page = await h.open();
  const before = await page.evaluate(async () => {
    window.ks = await Keystone.init({ consent: "opt-in" });
    ks.track("Before Consent");
    ks.setTraits({ plan: "free" });
    await new Promise((r) => setTimeout(r, 700));
    const p = ks.profile();
    return { id: ks.anonymousId(), consent: p.consent, events: Object.keys(p.events), segments: ks.segments() };
  });
  assert.equal(before.id, null, "no anonymous id before consent");
  assert.deepEqual(before.consent, { analytics: false, personalization: false, marketing: false });
  assert.deepEqual(before.events, []);
  assert.deepEqual(await footprint(page), EMPTY);

  const after = await page.evaluate(async () => {
    await ks.setConsent({ analytics: true, personalization: true });
    const id = ks.anonymousId();
    const stored = JSON.parse(localStorage.getItem("ks_profile"));
    ks.track("After Consent");
    return { id, storedId: stored && stored.aid, consent: ks.profile().consent, events: Object.keys(ks.profile().events) };
  });
  assert.match(after.id, /^[0-9a-f-]{36}$/);
  assert.equal(after.storedId, after.id, "the id is written at once when consent is granted");
  assert.deepEqual(after.consent, { analytics: true, personalization: true, marketing: false });
  assert.deepEqual(after.events, ["Page Viewed", "After Consent"], "nothing from before consent was kept but the page's view, recorded once consent allowed it");
  const fp = await footprint(page);
  assert.deepEqual(fp.local, ["ks_profile"]);
  assert.match(fp.cookie, new RegExp("ks_aid=" + after.id));
  await page.context().close();
});

test("opt-in: a login made before consent is sent at the grant, as identify (with its traits) and alias", async () => {
  const page = await h.open();
  const got = await page.evaluate(async () => {
    window.ks = await Keystone.init({ consent: "opt-in", endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false });
    await ks.identify("pre@example.com", { plan: "pro" });
    await new Promise((r) => setTimeout(r, 300));
    const before = (await fetch("/collector/events").then((r) => r.json())).events.length;
    await ks.setConsent({ analytics: true, personalization: true });
    ks.track("After");
    await ks.flush();
    return { before, id: ks.anonymousId(), user: ks.userId() };
  });
  assert.equal(got.before, 0, "nothing sent before consent");
  const sent = h.server.collector.events.filter((e) => e.anonymousId === got.id);
  assert.deepEqual(
    sent.map((e) => [e.type, e.event || "", e.userId, e.traits?.plan || "", e.previousId || ""]),
    [["identify", "", got.user, "pro", ""], ["alias", "", got.user, "", got.id], ["track", "After", got.user, "", ""]],
  );
  assert.deepEqual(page.problems, []);
});

test("opt-in: the page's view (with its utm) is recorded once consent allows it, once; never twice", async () => {
  const page = await h.open("/tests/esm.html?utm_source=newsletter");
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ consent: "opt-in", endpoint: "/v1/batch", writeKey: "demo-key", flushInterval: 100000 });
    const views = () => [(ks.profile().events["Page Viewed"] || { count: 0 }).count, ks.profile().session.pageviews];
    const before = views();
    await ks.setConsent({ marketing: true }); // no consent that records anything yet
    const marketing = views();
    await ks.setConsent({ analytics: true, personalization: true });
    const granted = views();
    await ks.setConsent({ analytics: true, personalization: true }); // again: not twice
    const again = views();
    history.pushState({}, "", "/tests/esm.html/p2");
    const next = views();
    await ks.flush();
    return { id: ks.anonymousId(), before, marketing, granted, again, next };
  });
  assert.deepEqual([out.before, out.marketing, out.granted, out.again, out.next], [[0, 0], [0, 0], [1, 1], [1, 1], [2, 2]]);
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id && e.type === "page");
  assert.deepEqual(
    sent.map((e) => [e.properties.url.replace(/^.*\/tests\//, ""), (e.context.campaign || {}).source || ""]),
    [["esm.html?utm_source=newsletter", "newsletter"], ["esm.html/p2", ""]],
  );
  await page.context().close();

  // Consent that allowed the page's view from the start, or page views not captured: a grant adds none.
  for (const o of [{}, { consent: "opt-in", autoCapture: { pageViews: false } }]) {
    const p = await h.open();
    const n = await p.evaluate(async (o) => {
      window.ks = await Keystone.init(o);
      await ks.setConsent({ analytics: true, personalization: true });
      return ks.profile().session.pageviews;
    }, o);
    assert.equal(n, o.consent ? 0 : 1, JSON.stringify(o));
    await p.context().close();
  }

  // Granted one category at a time: the view goes into each channel once, as it opens.
  for (const order of [["analytics", "personalization"], ["personalization", "analytics"]]) {
    h.server.collector.reset();
    const p = await h.open("/tests/esm.html?order=" + order[0]);
    const got = await p.evaluate(async (order) => {
      window.ks = await Keystone.init({ consent: "opt-in", endpoint: "/v1/batch", writeKey: "demo-key", flushInterval: 100000 });
      const steps = [];
      for (const c of order) {
        await ks.setConsent({ [c]: true });
        steps.push(ks.profile().session.pageviews);
      }
      await ks.setConsent({ analytics: true, personalization: true });
      await ks.flush();
      return { steps, id: ks.anonymousId() };
    }, order);
    const sent = h.server.collector.events.filter((e) => e.anonymousId === got.id && e.type === "page").length;
    assert.deepEqual({ steps: got.steps, sent }, { steps: order[0] == "analytics" ? [0, 1] : [1, 1], sent: 1 }, order.join(" then "));
    await p.context().close();
  }

  // After forget(), a navigation's view waits for consent the same way.
  const p = await h.open();
  const later = await p.evaluate(async () => {
    window.ks = await Keystone.init({});
    await ks.forget();
    history.pushState({}, "", "/tests/esm.html/after-forget");
    await ks.setConsent({ analytics: true, personalization: true });
    const e = ks.profile();
    return [e.events["Page Viewed"].count, e.context.path];
  });
  assert.deepEqual(later, [1, "/tests/esm.html/after-forget"]);
  await p.context().close();

  // After forget(), granting again on the same page records that page's view for the new identity.
  h.server.collector.reset();
  const p2 = await h.open();
  const same = await p2.evaluate(async () => {
    window.ks = await Keystone.init({ endpoint: "/v1/batch", writeKey: "demo-key", flushInterval: 100000 });
    const before = ks.anonymousId();
    await ks.forget();
    await ks.setConsent({ analytics: true, personalization: true });
    await ks.setConsent({ analytics: true, personalization: true }); // again: once
    await ks.flush();
    return { before, after: ks.anonymousId(), views: ks.profile().session.pageviews };
  });
  const pages = (id) => h.server.collector.events.filter((e) => e.type === "page" && e.anonymousId === id).length;
  // (The first identity's view was still queued: forget() erased it.)
  assert.notEqual(same.before, same.after);
  assert.deepEqual([same.views, pages(same.before), pages(same.after)], [1, 0, 1]);
  await p2.context().close();
});

test("withdrawing personalization erases what was stored (the delivery queue too) and stops storing", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    // Events wait in the delivery queue (flushed only at 1,000 or after a minute).
    window.ks = await Keystone.init({ endpoint: "/v1/batch", writeKey: "k", flushAt: 1000, flushInterval: 60000 });
    ks.track("A");
    await new Promise((r) => setTimeout(r, 600));
    const had = localStorage.getItem("ks_profile") !== null && Object.keys(localStorage).some((k) => k.startsWith("ks_q."));
    await ks.setConsent({ personalization: false });
    ks.track("B");
    await new Promise((r) => setTimeout(r, 600));
    return { had, segments: ks.segments(), consent: ks.profile().consent };
  });
  assert.equal(out.had, true);
  assert.deepEqual(out.consent, { analytics: true, personalization: false, marketing: true });
  assert.deepEqual(await footprint(page), EMPTY);
  await page.context().close();
});

test("personalization refused in the init option erases what an earlier page stored; opt-in (no choice yet) keeps it", async () => {
  const page = await h.open();
  const first = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    ks.setTraits({ firstName: "Ann" });
    await ks.identify("ann@example.com");
    ks.persistNow();
    return ks.anonymousId();
  });
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const undecided = await page.evaluate(async () => {
    await Keystone.init({ autoCapture: false, consent: "opt-in" });
    return localStorage.getItem("ks_profile") !== null;
  });
  assert.equal(undecided, true, "opt-in before the choice leaves the stored profile alone");
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false, consent: { analytics: false, personalization: false, marketing: false } });
    await new Promise((r) => setTimeout(r, 700)); // past the coalesced write
    return { anon: ks.anonymousId(), user: ks.userId(), traits: ks.profile().traits };
  });
  assert.notEqual(out.anon, first, "not the stored anonymous id");
  assert.equal(out.user, null, "nothing of the known profile is loaded");
  assert.deepEqual(out.traits, {});
  assert.deepEqual(await footprint(page), EMPTY);
  await page.context().close();
});

test("a refusal of personalization passed at init reaches the site's other open tabs: none stores anything after it", async () => {
  const a = await h.open();
  await a.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    ks.setTraits({ firstName: "Bob" });
    ks.persistNow();
  });
  const b = await h.open("/tests/esm.html", { context: a.context() });
  await b.evaluate(() => Keystone.init({ autoCapture: false, consent: { analytics: true, personalization: false, marketing: false } }).then(() => {}));
  await a.waitForFunction(() => ks.profile().consent.personalization === false, null, { timeout: 3000 });
  await a.evaluate(async () => {
    ks.setTraits({ late: 1 });
    ks.persistNow();
    await new Promise((r) => setTimeout(r, 700));
  });
  assert.deepEqual(await footprint(a), EMPTY);
  await a.context().close();
});

test("opt-in before any choice leaves the shared id cookie another subdomain wrote; a refusal then erases it", async () => {
  const ctx = await h.browser.newContext();
  const shared = "4f5a6b7c-8d9e-4f0a-9b1c-2d3e4f5a6b7c";
  await ctx.addCookies([{ name: "ks_aid", value: shared, domain: "localhost", path: "/" }]);
  const page = await h.open("/tests/esm.html", { context: ctx });
  const cookie = () => page.evaluate(() => (document.cookie.match(/(?:^|; )ks_aid=([^;]*)/) || [])[1] || null);
  await page.evaluate(async () => {
    window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false, consent: "opt-in" });
    ks.track("Before consent");
    ks.persistNow();
    await new Promise((r) => setTimeout(r, 700));
  });
  assert.equal(await cookie(), shared, "no choice yet: left alone");
  await page.evaluate(() => ks.setConsent({ analytics: true, personalization: false }));
  assert.equal(await cookie(), null, "personalization refused: erased");
  await ctx.close();
});

test("trackSegments: the stamp of the last report (a key and a cookie) is kept only with personalization consent, and erased with the rest", async () => {
  const page = await h.open();
  const stamp = () => page.evaluate(() => [localStorage.getItem("ks_rs"), (document.cookie.match(/(?:^|; )ks_rs=([^;]*)/) || [])[1] || null]);
  await page.evaluate(async () => {
    window.ks = await Keystone.init({
      endpoint: "/v1/batch", writeKey: "k", trackSegments: true, consent: "opt-in", flushAt: 1000, flushInterval: 60000,
      segments: { version: 1, segments: [{ id: "any", condition: {} }, { id: "viewer", condition: { $performed: { event: "PV" } } }] },
    });
    ks.track("PV");
    await new Promise((r) => setTimeout(r, 600));
  });
  assert.deepEqual(await footprint(page), EMPTY, "nothing before consent");
  // Granted: "any" and "viewer" are reported, and the report stamped (the same in both places).
  await page.evaluate(() => ks.setConsent({ analytics: true, personalization: true }));
  await page.waitForTimeout(600);
  const [key, cookie] = await stamp();
  assert.match(key, /^[0-9a-z]{1,6}$/);
  assert.equal(cookie, key);
  // Withdrawn: erased with the profile and the id cookie.
  await page.evaluate(() => ks.setConsent({ personalization: false }));
  await page.waitForTimeout(600);
  assert.deepEqual(await footprint(page), EMPTY, "nothing after the withdrawal");
  // Granted again, a report stamped again; forget() erases it.
  await page.evaluate(() => ks.setConsent({ personalization: true }));
  await page.evaluate(() => ks.forget().then(() => ks.setConsent({ analytics: true, personalization: true })));
  await page.waitForTimeout(600);
  assert.notDeepEqual(await stamp(), [null, null]);
  await page.evaluate(() => ks.forget());
  await markerGone(page);
  assert.deepEqual(await footprint(page), EMPTY, "nothing after forget()");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("forget() erases every key and cookie, withdraws consent, starts a fresh anonymous state; another instance's prefix is left alone", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "any", condition: {} }] } });
    ks.track("A");
    ks.setTraits({ name: "Ada" });
    localStorage.setItem("ks_q.zz9", "x"); // a closed tab's queue and heartbeat
    localStorage.setItem("ks_hb.zz9", "1");
    localStorage.setItem("site_key", "kept"); // not Keystone's
    // Another instance on this origin, under the prefix "ks_shop_": not this one's to erase.
    localStorage.setItem("ks_shop_profile", "{}");
    document.cookie = "ks_shop_aid=1; Path=/";
    await new Promise((r) => setTimeout(r, 600));
    const id = ks.anonymousId();
    const exits = [];
    ks.on("segment:exit", (e) => exits.push(e.segment));
    await ks.forget();
    // At once: no key or cookie of this prefix is left (no other tab of the site is open, so
    // forget() leaves no marker for one).
    const right = [document.cookie, Object.keys(localStorage).filter((k) => k.startsWith("ks_") && !k.startsWith("ks_shop_")), Object.keys(sessionStorage)];
    ks.track("After Forget");
    await new Promise((r) => setTimeout(r, 600));
    const other = [localStorage.getItem("ks_shop_profile"), document.cookie];
    localStorage.removeItem("ks_shop_profile");
    document.cookie = "ks_shop_aid=; Max-Age=0; Path=/";
    return { id, after: ks.anonymousId(), traits: ks.profile().traits, events: Object.keys(ks.profile().events), consent: ks.profile().consent, segments: ks.segments(), exits, site: localStorage.getItem("site_key"), other, right };
  });
  assert.deepEqual(out.right, ["ks_shop_aid=1", [], []], "nothing of this prefix once forget() resolves");
  assert.deepEqual(out.other, ["{}", "ks_shop_aid=1"], "another instance's storage is left");
  assert.match(out.id, /^[0-9a-f-]{36}$/);
  assert.equal(out.after, null);
  assert.deepEqual(out.traits, {});
  assert.deepEqual(out.events, []);
  assert.deepEqual(out.consent, { analytics: false, personalization: false, marketing: false });
  assert.deepEqual(out.segments, []);
  assert.deepEqual(out.exits, ["any"]);
  assert.equal(out.site, "kept");
  assert.deepEqual(await footprint(page), EMPTY);
  // Granting again starts a new, unrelated anonymous id.
  const again = await page.evaluate(async () => {
    await ks.setConsent({ analytics: true, personalization: true });
    return ks.anonymousId();
  });
  assert.match(again, /^[0-9a-f-]{36}$/);
  assert.notEqual(again, out.id);
  await page.context().close();
});

test("storagePrefix: everything is stored under a custom prefix (any cookie-safe text, `:` and `/` too) and forget() erases it all; an empty one or one with a space, control, `;=,\"\\` rejects init", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    localStorage.setItem("profile", "the site's own");
    const codes = [];
    for (const storagePrefix of ["", 42, {}, "a b", "a;b", "a=b", "a,b", 'a"b', "a\\b", "a\tb", "a\u0001b", "a\u00a0b"]) codes.push(await Keystone.init({ storagePrefix }).then(() => "resolved", (e) => e.code));
    const early = { local: Object.keys(localStorage), cookie: document.cookie };
    window.ks = await Keystone.init({ storagePrefix: "acme:app/", autoCapture: false, endpoint: "/v1/batch", flushInterval: 60000 });
    ks.setTraits({ name: "Ada" });
    ks.track("A");
    ks.persistNow();
    await new Promise((r) => setTimeout(r, 600));
    const stored = { local: Object.keys(localStorage).sort(), cookie: document.cookie };
    await ks.forget();
    await new Promise((r) => setTimeout(r, 600));
    return { codes, early, stored };
  });
  await markerGone(page, "acme:app/");
  Object.assign(out, await page.evaluate(() => ({ local: Object.keys(localStorage), session: Object.keys(sessionStorage), cookie: document.cookie, site: localStorage.getItem("profile") })));
  assert.deepEqual(out.codes, Array(12).fill("invalid_argument"));
  assert.deepEqual(out.early, { local: ["profile"], cookie: "" }, "a rejected init stores nothing");
  assert.ok(out.stored.local.includes("acme:app/profile") && out.stored.local.some((k) => k.startsWith("acme:app/q.")), out.stored.local.join());
  assert.ok(out.stored.local.every((k) => k == "profile" || k.startsWith("acme:app/")), out.stored.local.join());
  assert.match(out.stored.cookie, /^acme:app\/aid=[0-9a-f-]{36}$/);
  assert.deepEqual({ local: out.local, session: out.session, cookie: out.cookie }, { local: ["profile"], session: [], cookie: "" });
  assert.equal(out.site, "the site's own");
  await page.context().close();
});

test("forget() in one tab: the site's other open tabs forget too and store nothing after", async () => {
  const ctx = await h.browser.newContext();
  const [a, b] = [await h.open("/tests/esm.html", { context: ctx }), await h.open("/tests/esm.html", { context: ctx })];
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await b.evaluate(() => ks.track("In B"));
  await a.evaluate(() => ks.forget());
  // B keeps being used after A's forget(): nothing of it may reach storage or cookies.
  const bState = await b.evaluate(async () => {
    await new Promise((r) => setTimeout(r, 100));
    ks.track("After Forget In A");
    ks.setTraits({ name: "Bea" });
    await new Promise((r) => setTimeout(r, 700));
    return { id: ks.anonymousId(), consent: ks.profile().consent, events: Object.keys(ks.profile().events) };
  });
  assert.equal(bState.id, null, "the other tab dropped its anonymous id");
  assert.deepEqual(bState.consent, { analytics: false, personalization: false, marketing: false });
  assert.deepEqual(bState.events, []);
  await markerGone(b);
  assert.deepEqual(await footprint(b), EMPTY);
  assert.deepEqual(await footprint(a), EMPTY);
  await ctx.close();
});

/** Opens the test page in `ctx` with the site's `BroadcastChannel` messages heard `ms` late:
 * a tab busy or throttled at the moment another tab's message arrives. */
async function lateListener(ctx, ms) {
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  await page.addInitScript((ms) => {
    const d = Object.getOwnPropertyDescriptor(BroadcastChannel.prototype, "onmessage");
    Object.defineProperty(BroadcastChannel.prototype, "onmessage", {
      configurable: true,
      get() {
        return d.get.call(this);
      },
      set(f) {
        d.set.call(this, f && ((e) => setTimeout(() => f.call(this, e), ms)));
      },
    });
  }, ms);
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  return page;
}

/** Holds the profile's Web Lock in `page` until `release()` is called there: another tab's
 * write of the profile, which takes that lock, waits. */
const holdLock = (page) => page.evaluate(() => new Promise((held) => navigator.locks.request("ks_profile", () => (held(), new Promise((r) => (window.release = r))))));

/** What Keystone left but the short-lived forget() marker (the `fg` cookie). */
const unmarked = async (page) => ({ ...(await footprint(page)), cookie: (await page.evaluate(() => document.cookie)).split("; ").filter((c) => c && !c.startsWith("ks_fg=")).join("; "), bytes: undefined });

test("forget() leaves its marker only where another tab of the site may write before hearing of it: one open (counted by a shared Web Lock), or no Web Locks to count with", async () => {
  const marker = (p) => p.evaluate(async () => {
    await ks.forget();
    return document.cookie.split("; ").filter((c) => c.startsWith("ks_fg=")).length;
  });
  for (const noLocks of [false, true]) {
    const ctx = await h.browser.newContext();
    if (noLocks) await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
    const a = await h.open("/tests/esm.html", { context: ctx });
    await a.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
    const alone = await marker(a);
    const b = await h.open("/tests/esm.html", { context: ctx });
    await b.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
    await a.waitForTimeout(2100); // the first marker, if any, expired
    const two = await marker(a);
    await b.close();
    await a.waitForTimeout(300);
    const closed = await marker(a);
    assert.deepEqual([alone, two, closed], noLocks ? [1, 1, 1] : [0, 1, 0], noLocks ? "no Web Locks: always" : "only while B is open");
    assert.deepEqual(a.problems, []);
    await ctx.close();
  }
});

test("forget() in one tab is not undone by another tab's pending write that runs before that tab hears of it", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  // B hears A's message 1 s late: its write of the profile, due 250 ms after its last change,
  // runs first (under load this happened by itself, now and then).
  const b = await lateListener(ctx, 1000);
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await b.waitForTimeout(400); // each start's write done
  // B's write, due 250 ms after its change, waits for the profile's lock (held in A) until A
  // has forgotten: it runs then, before B hears A.
  await holdLock(a);
  await b.evaluate(() => ks.track("In B"));
  await b.waitForTimeout(400);
  await a.evaluate(() => ks.forget().then(() => release()));
  await b.waitForTimeout(300); // B's write has run; B has not heard A yet
  const between = await unmarked(b);
  // B hears A: it forgets (it has already, at its write), and nothing it does after is stored.
  await b.waitForTimeout(800);
  const bState = await b.evaluate(async () => {
    ks.track("After Forget In A");
    await new Promise((r) => setTimeout(r, 400));
    return { id: ks.anonymousId(), consent: ks.profile().consent, events: Object.keys(ks.profile().events) };
  });
  assert.deepEqual({ ...between, bytes: undefined }, { ...EMPTY, bytes: undefined }, "B's pending write did not store the profile (or the id cookie) again");
  assert.equal(bState.id, null);
  assert.deepEqual(bState.consent, { analytics: false, personalization: false, marketing: false });
  assert.deepEqual(bState.events, []);
  await markerGone(b);
  assert.deepEqual(await footprint(b), EMPTY, "nothing once the marker expired");
  assert.deepEqual(b.problems, []);
  await ctx.close();
});

test("forget() in one tab is not undone by another tab closed before it heard of it (its write on pagehide)", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await lateListener(ctx, 1000);
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await b.waitForTimeout(400);
  await holdLock(a); // B's write waits (as above)
  await b.evaluate(() => ks.track("In B"));
  await a.evaluate(() => ks.forget());
  const wrote = b.evaluate(() => new Promise((r) => addEventListener("pagehide", () => r(localStorage.getItem("ks_profile")))));
  await b.close({ runBeforeUnload: true }); // B's write on pagehide: before it hears A
  assert.equal(await wrote.catch(() => "closed before pagehide was seen"), null, "B's write on pagehide did not store the profile again");
  await a.evaluate(() => release());
  await a.waitForTimeout(300);
  assert.deepEqual(await unmarked(a), { ...EMPTY, bytes: undefined });
  await ctx.close();
});

test("a login, then a grant of consent, in another tab that has not heard of forget() yet: that tab forgets first (nothing of before is stored again), once", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await lateListener(ctx, 1000);
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await b.evaluate(() => ks.track("In B"));
  await b.waitForTimeout(400); // written
  await a.evaluate(() => ks.forget());
  // A login is written at once (the profile and the id cookie): B forgets before it.
  const login = await b.evaluate(() => ks.identify("ann@example.com").then(() => ({ id: ks.anonymousId(), user: ks.userId(), events: Object.keys(ks.profile().events) })));
  const afterLogin = await unmarked(b);
  // The visitor's choice made after the forget() stands: B does not forget it again when A's
  // message reaches it.
  const granted = await b.evaluate(async () => {
    await ks.setConsent({ analytics: true, personalization: true });
    const id = ks.anonymousId();
    await new Promise((r) => setTimeout(r, 1200)); // A's message heard
    return { id, now: ks.anonymousId(), consent: ks.profile().consent, events: Object.keys(ks.profile().events), stored: JSON.parse(localStorage.getItem("ks_profile"))?.aid };
  });
  assert.deepEqual(login.events, [], "the login found nothing of before forget()");
  assert.equal(login.id, null);
  assert.deepEqual({ ...afterLogin, bytes: undefined }, { ...EMPTY, bytes: undefined }, "the login stored nothing");
  assert.match(granted.id, /^[0-9a-f-]{36}$/);
  assert.equal(granted.now, granted.id, "not forgotten a second time");
  assert.deepEqual(granted.consent, { analytics: true, personalization: true, marketing: false });
  assert.deepEqual(granted.events, []);
  assert.equal(granted.stored, granted.id);
  assert.deepEqual(b.problems, []);
  await ctx.close();
});

// The site's consent UI may offer "accept" again right after "forget": what the granting tab
// then writes reaches another tab as `storage` events (not held back with the message). That
// tab, logged in as Ada and not yet told of the forget(), followed the newer identity stored
// (a login there) as a switch of users made elsewhere and set Ada's profile aside: written at
// once, kept by the next identity change, and found again at Ada's next login.
test("forget(), a grant and logins in one tab: another tab that has not heard of the forget() yet does not set its known profile aside again as the new identities reach it", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await lateListener(ctx, 1000);
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await b.evaluate(async () => {
    await ks.identify("ada@example.com", { name: "Ada" });
    ks.track("Product Viewed");
    await new Promise((r) => setTimeout(r, 400)); // written
  });
  const ada = await b.evaluate(() => ks.userId());
  await a.evaluate(async () => {
    ks.forget();
    ks.setConsent({ analytics: true, personalization: true });
    ks.identify("bob@example.com");
    await ks.identify("carol@example.com"); // a newer identity than B's
  });
  await b.waitForTimeout(150); // A's writes have reached B; B has not heard A's message yet
  const between = await b.evaluate((ada) => ({ aside: (localStorage.getItem("ks_aside") || "").includes(ada), user: ks.userId() }), ada);
  await b.waitForTimeout(1100); // B has heard it
  const login = await a.evaluate(async () => {
    await ks.identify("ada@example.com");
    return { name: ks.profile().traits.name ?? null, events: Object.keys(ks.profile().events) };
  });
  assert.deepEqual(between, { aside: false, user: null }, "B forgot before it took A's new profile");
  assert.deepEqual(login, { name: null, events: [] }, "Ada's login finds nothing of before forget()");
  assert.deepEqual(b.problems, []);
  await ctx.close();
});

// With `cookieDomain` a tab follows the shared id cookie when it is shown again (another
// subdomain's logout), setting the known profile aside and writing at once. Shown right after a
// forget() it had not heard of yet, it wrote Ada's profile (just erased) into the set-aside
// profiles and the profile under the new id, before any check of the marker.
test("cookieDomain: a tab shown right after forget() in another tab, before it heard of it, does not store its profile again when it follows the shared id", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await lateListener(ctx, 1000);
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false })));
  await b.evaluate(async () => {
    await ks.identify("ada@example.com", { name: "Ada" });
    ks.track("Product Viewed");
    await new Promise((r) => setTimeout(r, 400)); // written
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const ada = await b.evaluate(() => ks.userId());
  await a.evaluate(() => ks.forget());
  // Another subdomain's logout writes a new shared id meanwhile; B is shown before it hears A.
  await ctx.addCookies([{ name: "ks_aid", value: "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a", domain: "localhost", path: "/" }]);
  const shown = await b.evaluate((ada) => {
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    return { aside: (localStorage.getItem("ks_aside") || "").includes(ada), profile: localStorage.getItem("ks_profile"), consent: ks.profile().consent.personalization };
  }, ada);
  assert.deepEqual(shown, { aside: false, profile: null, consent: false });
  assert.deepEqual(b.problems, []);
  await ctx.close();
});

// With `cookieDomain` one visitor spans the site's subdomains, each with its own localStorage,
// which a page on one subdomain cannot reach. forget() erased the shared id cookie and its own
// origin's storage only: a page on another subdomain took its stored id for one the browser had
// cleared, wrote it back into the shared cookie, and the visitor forgotten on one subdomain was
// the same visitor again on all of them.
test("cookieDomain: forget() on one subdomain reaches the others: a page opened there later does not bring back the id or profile stored before, an open one stores nothing of it; what is stored after a new grant stays", async () => {
  const browser = await launchSubdomains();
  try {
    const ctx = await browser.newContext();
    const open = subdomainOpener(ctx, h.server);
    const init = (p) => p.evaluate(async () => (window.ks = await Keystone.init({ cookieDomain: "site.test", autoCapture: false })).anonymousId());
    const state = (p) => p.evaluate(() => ({ id: ks.anonymousId(), traits: ks.profile().traits, events: Object.keys(ks.profile().events), stored: ["ks_profile", "ks_aside"].filter((k) => localStorage.getItem(k)) }));
    const [a, b, c] = [await open("a"), await open("b"), await open("c")];
    const id = await init(a);
    for (const p of [b, c]) assert.equal(await init(p), id);
    for (const p of [b, c]) await p.evaluate(async () => (ks.track("Before"), ks.setTraits({ name: "Ada" }), await ks.identify("ada@example.com"), ks.track("Known")));
    await c.close(); // c.site.test keeps Ada's profile in its storage
    await a.evaluate(() => ks.forget());
    // b is open and has not heard of it (another origin: no message reaches it): its next write
    // stores nothing of before.
    const late = await b.evaluate(async () => {
      ks.track("Late");
      await new Promise((r) => setTimeout(r, 800));
      return { id: ks.anonymousId(), stored: ["ks_profile", "ks_aside"].filter((k) => localStorage.getItem(k)) };
    });
    assert.deepEqual(late, { id: null, stored: [] });
    // c, opened again later: a new visitor, none of Ada's profile, known or anonymous.
    const c2 = await open("c");
    const fresh = await init(c2);
    assert.notEqual(fresh, id);
    const s = await state(c2);
    assert.deepEqual([s.traits, s.events, await c2.evaluate(() => ks.userId())], [{}, [], null]);
    // What the new visitor records there is kept: the next start does not erase it again.
    await c2.evaluate(async () => (ks.track("After"), await new Promise((r) => setTimeout(r, 800))));
    await c2.reload();
    await c2.waitForFunction(() => window.__ksLoaded === true);
    assert.equal(await init(c2), fresh);
    assert.deepEqual((await state(c2)).events, ["After"]);
    // b and a, loaded again, are that same new visitor, with nothing of Ada.
    for (const p of [a, b]) {
      await p.reload();
      await p.waitForFunction(() => window.__ksLoaded === true);
      assert.equal(await init(p), fresh);
      const t = await state(p);
      assert.deepEqual([t.traits, t.events.filter((e) => e != "After")], [{}, []]);
    }
    await ctx.close();
  } finally {
    await browser.close();
  }
});

/** Two tabs delivering to the collector (nothing sent before a flush or `pagehide`), the second
 * hearing the other tabs' messages 1 s late. */
async function deliveringTabs() {
  h.server.collector.reset();
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await lateListener(ctx, 1000);
  const opts = { autoCapture: false, endpoint: "/v1/batch", writeKey: "demo-key", flushAt: 1000, flushInterval: 60000 };
  for (const p of [a, b]) await p.evaluate(async (o) => (window.ks = await Keystone.init(o)), opts);
  return { ctx, a, b };
}

// A tab's delivery sends what it queued by beacon on `pagehide`, before the write that reads
// the marker: a tab closed before it heard of a forget() sent the events it held, which the
// forgetting tab erased from storage (as it drops its own).
test("forget() in one tab: another tab closed before it heard of it does not send what it had queued (its beacon on pagehide)", async () => {
  const { ctx, a, b } = await deliveringTabs();
  await a.evaluate(() => ks.track("Queued In A"));
  await b.evaluate(() => ks.track("Queued In B"));
  await a.evaluate(() => ks.forget());
  await b.close({ runBeforeUnload: true }); // before it hears A
  await a.waitForTimeout(1000);
  assert.deepEqual(h.server.collector.events.map((e) => e.event || e.type), []);
  assert.deepEqual(await unmarked(a), { ...EMPTY, bytes: undefined });
  await ctx.close();
});

test("forget() in one tab: a flush() in another tab that has not heard of it yet sends nothing", async () => {
  const { ctx, a, b } = await deliveringTabs();
  await b.evaluate(() => ks.track("Queued In B"));
  await a.evaluate(() => ks.forget());
  const flushed = await b.evaluate(() => ks.flush().then(() => ({ id: ks.anonymousId(), consent: ks.profile().consent.analytics }), (e) => e.code));
  await b.waitForTimeout(300);
  assert.deepEqual(flushed, { id: null, consent: false });
  assert.deepEqual(h.server.collector.events.map((e) => e.event || e.type), []);
  assert.deepEqual(b.problems, []);
  await ctx.close();
});

test("a page started right after forget() (a reload) starts from its consent option: the forget() before it is not applied to it", async () => {
  const page = await h.open();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    ks.track("Before");
    await ks.forget();
  });
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    const id = ks.anonymousId();
    ks.track("After Reload");
    await new Promise((r) => setTimeout(r, 500)); // its write, within 2 s of the forget()
    return { id, now: ks.anonymousId(), consent: ks.profile().consent, events: Object.keys(ks.profile().events), stored: JSON.parse(localStorage.getItem("ks_profile"))?.aid };
  });
  assert.match(out.id, /^[0-9a-f-]{36}$/);
  assert.equal(out.now, out.id);
  assert.deepEqual(out.consent, { analytics: true, personalization: true, marketing: true });
  assert.deepEqual(out.events, ["After Reload"]);
  assert.equal(out.stored, out.id);
  await page.context().close();
});

// A tab's start reads the stored profile, then waits for its definitions URL before it listens
// to the site's other tabs: a forget() made meanwhile was neither heard there nor, once the
// start had taken more than the marker's 2 s, read from the marker; the tab then wrote the
// profile it had read back.
test("forget() in one tab while another tab is still starting (its definitions URL slow): that tab hears it and stores nothing of before", async () => {
  const ctx = await h.browser.newContext();
  let asked = 0;
  await ctx.route("**/slow-defs.json", (route) => ((asked = 1), setTimeout(() => route.fulfill({ contentType: "application/json", body: '{"version":1,"segments":[]}' }), 3000)));
  const a = await h.open("/tests/esm.html", { context: ctx });
  await a.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    ks.track("In A");
    await new Promise((r) => setTimeout(r, 400)); // written
  });
  const b = await h.open("/tests/esm.html", { context: ctx });
  await b.evaluate(() => void (window.started = Keystone.init({ autoCapture: false, segments: "/slow-defs.json" }).then((ks) => (window.ks = ks))));
  while (!asked) await b.waitForTimeout(20); // B has read the stored profile and waits for its definitions
  await b.waitForTimeout(300);
  await a.evaluate(() => ks.forget());
  const out = await b.evaluate(async () => {
    await started;
    ks.track("In B");
    await new Promise((r) => setTimeout(r, 600));
    return { id: ks.anonymousId(), events: Object.keys(ks.profile().events), stored: localStorage.getItem("ks_profile"), cookie: document.cookie };
  });
  assert.deepEqual(out, { id: null, events: [], stored: null, cookie: "" });
  assert.deepEqual(await footprint(a), EMPTY);
  await ctx.close();
});

test("setConsent in one tab: the site's other open tabs follow within 1 s, and agree on one id", async () => {
  h.server.collector.reset();
  const ctx = await h.browser.newContext();
  const [a, b] = [await h.open("/tests/esm.html", { context: ctx }), await h.open("/tests/esm.html", { context: ctx })];
  const opts = { endpoint: "/v1/batch", writeKey: "k", autoCapture: false, flushAt: 1, flushInterval: 50 };
  for (const p of [a, b]) await p.evaluate(async (o) => (window.ks = await Keystone.init(o)), opts);
  await a.evaluate(() => ks.setConsent({ analytics: false }));
  const bState = await b.evaluate(async () => {
    for (let t = 0; t < 40 && ks.profile().consent.analytics; t++) await new Promise((r) => setTimeout(r, 25));
    const consent = ks.profile().consent;
    ks.track("Sent After Withdrawal In A");
    await new Promise((r) => setTimeout(r, 500));
    return consent;
  });
  assert.deepEqual(bState, { analytics: false, personalization: true, marketing: true });
  assert.deepEqual(h.server.collector.events.map((e) => e.event).filter(Boolean), [], "nothing sent by the other tab");
  await ctx.close();

  // Opt-in: granting in one tab starts collection in the other, with the same anonymous id.
  const ctx2 = await h.browser.newContext();
  const [c, d] = [await h.open("/tests/esm.html", { context: ctx2 }), await h.open("/tests/esm.html", { context: ctx2 })];
  for (const p of [c, d]) await p.evaluate(async () => (window.ks = await Keystone.init({ consent: "opt-in", autoCapture: false })));
  const idC = await c.evaluate(async () => (await ks.setConsent({ analytics: true, personalization: true }), ks.anonymousId()));
  const dState = await d.evaluate(async () => {
    for (let t = 0; t < 40 && !ks.anonymousId(); t++) await new Promise((r) => setTimeout(r, 25));
    ks.track("In D");
    await new Promise((r) => setTimeout(r, 600));
    return { id: ks.anonymousId(), consent: ks.profile().consent };
  });
  assert.deepEqual(dState.consent, { analytics: true, personalization: true, marketing: false });
  assert.equal(dState.id, idC);
  const stored = await c.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")));
  assert.equal(stored.aid, idC, "one id stored");
  assert.equal(await c.evaluate(() => ks.anonymousId()), idC);
  await ctx2.close();
});

test("Global Privacy Control turns marketing off, and it stays off", async () => {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true }));
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({});
    const initial = ks.profile().consent;
    await ks.setConsent({ marketing: true });
    return { initial, later: ks.profile().consent };
  });
  assert.deepEqual(out.initial, { analytics: true, personalization: true, marketing: false });
  assert.deepEqual(out.later, { analytics: true, personalization: true, marketing: false });
  await ctx.close();
});

test("setConsent rejects bad input with a KeystoneError and keeps the state", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({});
    let code = null;
    try {
      await ks.setConsent({ analytics: "yes" });
    } catch (e) {
      code = e instanceof Error && e.code;
    }
    return { code, consent: ks.profile().consent };
  });
  assert.equal(out.code, "invalid_argument");
  assert.deepEqual(out.consent, { analytics: true, personalization: true, marketing: true });
  await page.context().close();
});

test("consent set on the page survives the engine's rebuild after a failure (a trap): a refusal stays a refusal", async () => {
  h.server.collector.reset();
  const run = (steps) =>
    h.open().then(async (page) => {
      const out = await page.evaluate(async (steps) => {
        const trap = () => {
          // A failure inside the engine (what a wasm trap is): the next call runs on a rebuilt one.
          Object.defineProperty(document, "title", { configurable: true, get: () => { throw new WebAssembly.RuntimeError("simulated trap"); } });
          ks.page();
          delete document.title;
        };
        window.ks = await Keystone.init({ endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false, flushAt: 100, flushInterval: 60000, consent: steps.initial });
        for (const s of steps.before) s == "forget" ? await ks.forget() : await ks.setConsent(s);
        const before = ks.profile().consent;
        trap();
        ks.track(steps.event);
        await ks.flush().catch(() => {});
        return { before, after: ks.profile().consent, id: ks.anonymousId() };
      }, steps);
      await page.context().close();
      return out;
    });
  const refused = await run({ initial: undefined, before: [{ analytics: false }], event: "While Refused" });
  assert.deepEqual(refused.after, refused.before);
  assert.equal(refused.after.analytics, false);
  const granted = await run({ initial: "opt-in", before: [{ analytics: true, personalization: true }], event: "While Granted" });
  assert.deepEqual(granted.after, { analytics: true, personalization: true, marketing: false });
  const forgot = await run({ initial: undefined, before: ["forget"], event: "After Forget" });
  assert.deepEqual(forgot.after, { analytics: false, personalization: false, marketing: false });
  assert.equal(forgot.id, null);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(h.server.collector.events.map((e) => e.event).filter(Boolean), ["While Granted"]);
});
