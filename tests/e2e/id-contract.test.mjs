// Identity, consent, persistence and tabs read from DESIGN §5, §6, §10 and §12 word by word, as
// an outside tester would drive the package: the wire (every identify/alias/setTraits event the
// collector gets), merges seen through the clock, consent in every form the option takes, the
// snippet's queue, real subdomains sharing the id cookie, and open tabs following each other.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { setup, launchSubdomains, subdomainOpener } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const sha = (s) => createHash("sha256").update(s, "utf8").digest("hex");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SNIPPET = readFileSync(new URL("../../pkg/dist/snippet.js", import.meta.url), "utf8");
const DELIVER = { endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false, flushAt: 1000, flushInterval: 60000 };

/** Every key, value and cookie Keystone could have left on the device, as one string. */
const footprint = (page) =>
  page.evaluate(() => {
    const parts = [document.cookie];
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) parts.push(s.key(i), s.getItem(s.key(i)));
    return parts.join("\n");
  });

/** Requests the page made to the collector, with their bodies. */
function wireOf(page) {
  const bodies = [];
  page.on("request", (r) => r.url().includes("/v1/batch") && bodies.push(r.postData() || ""));
  return bodies;
}

test("the wire: an identify and an alias (previousId = the anonymous id) at each reconciliation, identify only for A → A; setTraits is an identify; nothing links A and B", async () => {
  h.server.collector.reset();
  const page = await h.open();
  const bodies = wireOf(page);
  const ids = await page.evaluate(async (o) => {
    const ks = await Keystone.init(o);
    const heard = [];
    ks.on("identify", (p) => heard.push(["identify", p])).on("reset", (p) => heard.push(["reset", p]));
    const a0 = ks.anonymousId();
    ks.setTraits({ plan: "free" }); // anonymous: an identify with the traits, no userId
    await ks.identify(" Ann@Example.com ", { tier: "gold" }); // anonymous → A
    ks.setTraits({ seats: 3 }); // known: an identify with the userId
    await ks.identify("ann@example.com", { city: "Oslo" }); // A → A: identify only
    ks.track("A Did This");
    await ks.identify("bea@example.com", {}, { userId: "crm-7" }); // A → B: new anonymous id
    const a1 = ks.anonymousId();
    ks.track("B Did This");
    ks.reset();
    const a2 = ks.anonymousId();
    await ks.identify("ann@example.com"); // A again, from a fresh anonymous id
    await ks.flush();
    return { a0, a1, a2, heard };
  }, DELIVER);
  const A = sha("ann@example.com");
  const ev = h.server.collector.events.filter((e) => [ids.a0, ids.a1, ids.a2].includes(e.anonymousId));
  const line = (e) => [e.type, e.event || "", "a" + [ids.a0, ids.a1, ids.a2].indexOf(e.anonymousId), e.userId ?? "-", e.previousId ? "a" + [ids.a0, ids.a1, ids.a2].indexOf(e.previousId) : ""].join(" ").trim();
  assert.deepEqual(ev.map(line), [
    "identify  a0 -",
    `identify  a0 ${A}`,
    `alias  a0 ${A} a0`,
    `identify  a0 ${A}`,
    `identify  a0 ${A}`,
    `track A Did This a0 ${A}`,
    "identify  a1 crm-7",
    "alias  a1 crm-7 a1",
    "track B Did This a1 crm-7",
    `identify  a2 ${A}`,
    `alias  a2 ${A} a2`,
  ]);
  const traitsOf = ev.filter((e) => e.type === "identify").map((e) => e.traits || {});
  assert.equal(traitsOf[0].plan, "free", "setTraits carries the traits");
  assert.equal(traitsOf[1].tier, "gold", "the login carries its traits");
  assert.equal(traitsOf[2].seats, 3);
  assert.equal(traitsOf[3].city, "Oslo");
  assert.notEqual(ids.a1, ids.a0, "A → B starts a new anonymous id");
  assert.deepEqual(Object.keys(traitsOf[4]).filter((k) => ["plan", "tier", "seats", "city"].includes(k)), [], "nothing of A in B's identify");
  // Listener payloads (§12): identify {userId} (at every identify() call, A → A included, as the
  // Segment identify event is sent then too), reset {anonymousId}.
  assert.deepEqual(ids.heard, [["identify", { userId: A }], ["identify", { userId: A }], ["identify", { userId: "crm-7" }], ["reset", { anonymousId: ids.a2 }], ["identify", { userId: A }]]);
  const all = bodies.join("\n").toLowerCase();
  for (const raw of ["ann@example.com", "bea@example.com", "ann%40example.com"]) assert.ok(!all.includes(raw), "raw email on the wire: " + raw);
  assert.ok(!all.includes(sha("bea@example.com")), "the site's own userId replaces the hash everywhere");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("merge at login, seen through the clock: counts add, firstSeen min, lastSeen max, traits by time, scores add after decay", async () => {
  const DEFS = {
    version: 1,
    segments: [],
    scores: [{ id: "engagement", halfLife: "7d", rules: [{ event: "Product Viewed", points: 8 }] }],
  };
  const T0 = Date.parse("2026-03-02T10:00:00Z");
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  await page.clock.install({ time: T0 });
  // A's profile, begun a week ago; a logout today sets it aside on this device; a reload.
  await page.evaluate(async (d) => {
    window.ks = await Keystone.init({ autoCapture: false, segments: d });
    ks.track("Product Viewed");
    await ks.identify("ann@example.com", { tier: "gold", city: "Paris" });
  }, DEFS);
  await page.clock.fastForward(7 * 24 * 3600 * 1000); // one half-life later
  await page.evaluate(() => ks.reset());
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async (d) => {
    window.ks = await Keystone.init({ autoCapture: false, segments: d });
    ks.track("Product Viewed");
    ks.setTraits({ tier: "silver" }); // newer than A's "gold"
    const anon = ks.profile();
    await ks.identify("ann@example.com");
    const p = ks.profile();
    return { anon: { firstSeen: anon.firstSeen }, p };
  }, DEFS);
  assert.equal(out.p.events["Product Viewed"].count, 2, "counts add");
  const WEEK = 7 * 24 * 3600 * 1000;
  assert.ok(Date.parse(out.p.firstSeen) - T0 < 60000, "firstSeen: the earlier, " + out.p.firstSeen);
  assert.ok(Date.parse(out.p.lastSeen) >= T0 + WEEK, "lastSeen: the later, " + out.p.lastSeen);
  assert.ok(Date.parse(out.anon.firstSeen) >= T0 + WEEK, "(the anonymous profile began a week later)");
  assert.deepEqual(out.p.traits, { tier: "silver", city: "Paris" }, "the trait set last wins, A's others stay");
  assert.ok(Math.abs(out.p.scores.engagement - 12) < 0.01, `A's 8 points decayed to 4, plus the new 8: ${out.p.scores.engagement}`);

  // By time, not by which side merges into which: a trait the anonymous profile set at an earlier
  // time (the device clock was set back) loses to A's later one.
  const ctx2 = await h.browser.newContext();
  const p2 = await h.open("/tests/esm.html", { context: ctx2 });
  await p2.clock.install({ time: T0 + 3600000 });
  await p2.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    await ks.identify("ann@example.com", { tier: "gold" });
    ks.reset();
  });
  await p2.clock.setSystemTime(T0);
  const got = await p2.evaluate(async () => {
    ks.setTraits({ tier: "bronze", city: "Rome" });
    await ks.identify("ann@example.com");
    return ks.profile().traits;
  });
  assert.deepEqual(got, { tier: "gold", city: "Rome" });
  await ctx.close();
  await ctx2.close();
});

test("a login not awaited, then reset() at once (or a track whose write is pending): the logout stands, in memory, in storage and after a reload", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    ks.track("Before");
    const login = ks.identify("ann@example.com", { tier: "gold" }); // not awaited
    ks.track("As Ann"); // a coalesced write of Ann's profile is pending
    ks.reset();
    const id = ks.anonymousId();
    await login;
    await new Promise((r) => setTimeout(r, 700)); // past every coalesced write
    const s = JSON.parse(localStorage.getItem("ks_profile"));
    return { id, user: ks.userId(), aid: s.aid, uid: s.uid, traits: ks.profile().traits, events: Object.keys(ks.profile().events) };
  });
  assert.match(out.id, UUID);
  assert.deepEqual([out.user, out.uid, out.aid], [null, null, out.id]);
  assert.deepEqual(out.traits, {});
  assert.deepEqual(out.events, []);
  // reset() then an immediate reload (no time for a coalesced write): the new id is what starts.
  const fresh = await page.evaluate(() => {
    ks.track("Again");
    ks.reset();
    return ks.anonymousId();
  });
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const back = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    return { id: ks.anonymousId(), user: ks.userId(), events: Object.keys(ks.profile().events) };
  });
  assert.deepEqual(back, { id: fresh, user: null, events: [] });
  await ctx.close();
});

test("the snippet: identify then reset queued before the script loads end logged out; the raw email is stored and sent nowhere", async () => {
  h.server.collector.reset();
  const ctx = await h.browser.newContext();
  let release;
  const gate = new Promise((r) => (release = r));
  await ctx.route("**/keystone.global.js", async (route) => (await gate, route.continue()));
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  const bodies = wireOf(page);
  await page.goto(h.url("/tests/blank.html"));
  await page.evaluate((snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", endpoint: "/v1/batch", writeKey: "demo-key", autoCapture: false };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    window.heard = [];
    keystone.on("identify", (p) => heard.push(["identify", p.userId])).on("reset", (p) => heard.push(["reset", p.anonymousId]));
    window.pLogin = keystone.identify("Queued.User@Example.com", { tier: "gold" });
    keystone.reset();
  }, SNIPPET);
  release();
  const out = await page.evaluate(async () => {
    await pLogin;
    await keystone.flush().catch(() => {});
    await new Promise((r) => setTimeout(r, 600));
    const s = JSON.parse(localStorage.getItem("ks_profile"));
    return { user: keystone.userId(), id: keystone.anonymousId(), uid: s.uid, aid: s.aid, traits: keystone.profile().traits, heard };
  });
  const U = sha("queued.user@example.com");
  assert.deepEqual([out.user, out.uid], [null, null]);
  assert.equal(out.aid, out.id);
  assert.deepEqual(out.traits, {});
  assert.deepEqual(out.heard, [["identify", U], ["reset", out.id]]);
  const everything = ((await footprint(page)) + "\n" + bodies.join("\n")).toLowerCase();
  assert.ok(!everything.includes("queued.user@example.com"), "raw email kept or sent");
  assert.ok(h.server.collector.events.some((e) => e.type === "identify" && e.userId === U));
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("consent in every form: \"opt-out\" is the default; under GPC marketing stays off whatever the option or setConsent grants", async () => {
  const page = await h.open();
  const plain = await page.evaluate(async () => (await Keystone.init({ consent: "opt-out", autoCapture: false })).profile().consent);
  assert.deepEqual(plain, { analytics: true, personalization: true, marketing: true });
  await page.context().close();

  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true }));
  const run = async (consent, grant) => {
    const p = await h.open("/tests/esm.html", { context: ctx });
    const r = await p.evaluate(
      async ([consent, grant]) => {
        const ks = await Keystone.init({ consent, autoCapture: false, dataLayer: true });
        const start = ks.profile().consent;
        if (grant) await ks.setConsent(grant);
        return { start, now: ks.profile().consent, pushed: (window.dataLayer || []).length };
      },
      [consent, grant],
    );
    await p.close();
    return r;
  };
  const all = { analytics: true, personalization: true, marketing: true };
  const explicit = await run(all, null);
  assert.deepEqual(explicit.start, { analytics: true, personalization: true, marketing: false }, "a consent object granting marketing");
  assert.equal(explicit.pushed, 0, "no data layer push without marketing");
  const optIn = await run("opt-in", all);
  assert.deepEqual(optIn.start, { analytics: false, personalization: false, marketing: false });
  assert.deepEqual(optIn.now, { analytics: true, personalization: true, marketing: false }, "opt-in then everything granted");
  const optOut = await run("opt-out", null);
  assert.deepEqual(optOut.start, { analytics: true, personalization: true, marketing: false });
  await ctx.close();
});

test("opt-in with an endpoint: before consent no request leaves, even for flush(), a login or the page being hidden; no key, no cookie", async () => {
  const page = await h.open();
  const bodies = wireOf(page);
  const out = await page.evaluate(async (o) => {
    window.ks = await Keystone.init({ ...o, consent: "opt-in", autoCapture: true, flushAt: 1 });
    ks.track("Before Consent");
    ks.setTraits({ plan: "free" });
    const login = await ks.identify("ann@example.com", { tier: "gold" }).then(() => "resolved", (e) => e.code);
    const flushed = await ks.flush().then(() => "resolved", (e) => e.code);
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
    dispatchEvent(new Event("pagehide"));
    await new Promise((r) => setTimeout(r, 700));
    return { login, flushed, id: ks.anonymousId() };
  }, DELIVER);
  assert.equal(out.id, null);
  assert.deepEqual(bodies, [], "nothing sent before consent");
  assert.equal(await footprint(page), "", "nothing stored before consent");
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  await page.context().close();
});

test("without personalization no segment is evaluated (not even one that holds for everyone) and nothing is persisted; granted, they are", async () => {
  const page = await h.open();
  const DEFS = { version: 1, segments: [{ id: "everyone", condition: {} }, { id: "viewer", condition: { $performed: { event: "PV" } } }] };
  const out = await page.evaluate(async (d) => {
    window.ks = await Keystone.init({ autoCapture: false, segments: d, consent: { analytics: true, personalization: false, marketing: false } });
    const heard = [];
    ks.on("segment:enter", (e) => heard.push(e.segment));
    const atInit = ks.segments();
    ks.track("PV");
    ks.setTraits({ plan: "pro" });
    await new Promise((r) => setTimeout(r, 600));
    const refused = { atInit, after: ks.segments(), everyone: ks.inSegment("everyone"), viewer: ks.inSegment("viewer"), heard: heard.slice(), keys: localStorage.length, cookie: document.cookie };
    await ks.setConsent({ personalization: true });
    await new Promise((r) => setTimeout(r, 50));
    return { refused, granted: ks.segments(), heard, stored: localStorage.getItem("ks_profile") !== null };
  }, DEFS);
  assert.deepEqual(out.refused, { atInit: [], after: [], everyone: false, viewer: false, heard: [], keys: 0, cookie: "" });
  assert.ok(out.granted.includes("everyone"), "evaluated once granted");
  assert.ok(out.heard.includes("everyone"));
  assert.equal(out.stored, true);
  await page.context().close();
});

test("forget(): what it erased does not come back — not a profile set aside in memory, not through a login before consent is granted again", async () => {
  h.server.collector.reset();
  const page = await h.open();
  const bodies = wireOf(page);
  const out = await page.evaluate(async (o) => {
    window.ks = await Keystone.init(o);
    await ks.identify("ann@example.com", { tier: "gold", city: "Paris" });
    ks.track("As Ann");
    ks.reset(); // Ann set aside on this device
    ks.track("Anonymous");
    await ks.flush();
    const sentBefore = (await (await fetch("/collector/events")).json()).events.length;
    await ks.forget();
    // Nothing is stored or sent until setConsent grants it: a login, traits, a logout, events.
    const login = await ks.identify("ann@example.com").then(() => "resolved", (e) => e.code);
    ks.setTraits({ late: 1 });
    ks.reset();
    ks.track("After Forget");
    await ks.flush().catch(() => {});
    await new Promise((r) => setTimeout(r, 700));
    // (Nothing but the marker forget() leaves for the site's other tabs, a cookie holding its
    // time for 2 s: consent.test.mjs.)
    const quiet = { id: ks.anonymousId(), keys: Object.keys(localStorage), cookie: document.cookie.replace(/^ks_fg=\w+$/, ""), sent: (await (await fetch("/collector/events")).json()).events.length - sentBefore };
    // Granted again: a new visitor; Ann logging in finds nothing of before forget().
    await ks.setConsent({ analytics: true, personalization: true });
    const fresh = ks.anonymousId();
    await ks.identify("ann@example.com");
    const p = ks.profile();
    return { login, quiet, fresh, traits: p.traits, events: Object.keys(p.events), linked: p.linkedAnonymousIds };
  }, { ...DELIVER, flushAt: 1000 });
  assert.deepEqual(out.quiet, { id: null, keys: [], cookie: "", sent: 0 });
  assert.match(out.fresh, UUID);
  assert.deepEqual(out.traits, {}, "Ann's traits were erased by forget()");
  assert.deepEqual(out.events, [], "Ann's events were erased by forget()");
  assert.deepEqual(out.linked, [out.fresh]);
  assert.ok(!bodies.join("\n").includes("late"), "nothing of after forget() on the wire");
  await page.context().close();
});

test("tabs: a tab opened later gets the same id; an open tab (the script-tag build) enters a segment another tab's event made, within 1 s, without a call", async () => {
  const ctx = await h.browser.newContext();
  const DEFS = { version: 1, segments: [{ id: "viewer", condition: { $performed: { event: "PV" } } }] };
  const a = await h.open("/tests/esm.html", { context: ctx });
  const id = await a.evaluate(async (d) => (window.ks = await Keystone.init({ autoCapture: false, segments: d })).anonymousId(), DEFS);
  const b = await ctx.newPage();
  await b.goto(h.url("/tests/global.html"));
  const bid = await b.evaluate(async (d) => {
    const ks = await window.keystone.init({ autoCapture: false, segments: d });
    window.heard = [];
    ks.on("segment:enter", (e) => heard.push([e.segment, performance.now()]));
    return ks.anonymousId();
  }, DEFS);
  assert.equal(bid, id, "one anonymous id for the tabs of the site");
  const t0 = await b.evaluate(() => performance.now());
  await a.evaluate(() => ks.track("PV"));
  await b.waitForFunction(() => window.heard.length > 0, null, { timeout: 1500 });
  const seen = await b.evaluate(() => ({ heard, in: keystone.inSegment("viewer"), count: keystone.profile().events.PV.count }));
  assert.equal(seen.heard[0][0], "viewer");
  assert.ok(seen.heard[0][1] - t0 < 1000, `heard after ${Math.round(seen.heard[0][1] - t0)} ms`);
  assert.deepEqual([seen.in, seen.count], [true, 1]);
  // And a logout in the other direction: tab A follows tab B's reset within 1 s.
  const fresh = await b.evaluate(() => (keystone.reset(), keystone.anonymousId()));
  await a.waitForFunction((f) => ks.anonymousId() === f && !ks.inSegment("viewer"), fresh, { timeout: 1000 });
  await ctx.close();
});

test("cookieDomain on real subdomains: one anonymous id on a.site.test and b.site.test (\"site.test\" or \".site.test\"); a logout on one is the other's id at its next load", async () => {
  const browser = await launchSubdomains();
  try {
    for (const cookieDomain of ["site.test", ".site.test"]) {
      const ctx = await browser.newContext();
      const open = subdomainOpener(ctx, h.server);
      const init = (p) => p.evaluate(async (cd) => (window.ks = await Keystone.init({ cookieDomain: cd, autoCapture: false })).anonymousId(), cookieDomain);
      const a = await open("a");
      const idA = await init(a);
      const b = await open("b");
      const idB = await init(b);
      assert.match(idA, UUID);
      assert.equal(idB, idA, `shared id with cookieDomain ${cookieDomain}`);
      const cookie = (await ctx.cookies()).find((c) => c.name === "ks_aid");
      assert.equal(cookie.domain, ".site.test");
      // A login and logout on a: b, loaded afterwards, starts on the id the logout made, anonymous.
      const after = await a.evaluate(async () => {
        await ks.identify("ann@example.com");
        ks.reset();
        return ks.anonymousId();
      });
      await b.reload();
      await b.waitForFunction(() => window.__ksLoaded === true);
      assert.equal(await init(b), after);
      assert.equal(await b.evaluate(() => ks.userId()), null);
      await ctx.close();
    }
  } finally {
    await browser.close();
  }
});

test("cookieDomain set on a site that ran without it: b's own host-only id cookie does not hide the shared one (b follows a's id, and a keeps it)", async () => {
  const browser = await launchSubdomains();
  try {
    const ctx = await browser.newContext();
    const open = subdomainOpener(ctx, h.server);
    const init = (p, o) => p.evaluate(async (o) => (window.ks = await Keystone.init({ autoCapture: false, ...o })).anonymousId(), o);
    // Before the site set cookieDomain, b made its own id (stored, and a host-only cookie).
    let b = await open("b");
    const old = await init(b, {});
    await b.evaluate(() => ks.persistNow());
    await b.close();
    // Then a, with cookieDomain, writes the shared cookie.
    let a = await open("a");
    const shared = await init(a, { cookieDomain: "site.test" });
    assert.notEqual(shared, old);
    await a.close();
    const jar = (await ctx.cookies()).filter((c) => c.name === "ks_aid").map((c) => c.domain).sort();
    assert.deepEqual(jar, [".site.test", "b.site.test"], "both cookies present before b runs again");
    b = await open("b");
    assert.equal(await init(b, { cookieDomain: "site.test" }), shared, "b takes the shared id");
    const left = (await ctx.cookies()).filter((c) => c.name === "ks_aid").map((c) => [c.domain, c.value]);
    assert.deepEqual(left, [[".site.test", shared]], "b's host-only cookie is gone; the shared one kept");
    a = await open("a");
    assert.equal(await init(a, { cookieDomain: "site.test" }), shared, "a's id did not change");
    // A logout on a is still followed by b at its next load.
    const after = await a.evaluate(() => (ks.reset(), ks.anonymousId()));
    await b.reload();
    await b.waitForFunction(() => window.__ksLoaded === true);
    assert.equal(await init(b, { cookieDomain: "site.test" }), after);
    assert.deepEqual(b.problems ?? [], []);
    await ctx.close();
  } finally {
    await browser.close();
  }
});

test("identify trims as JavaScript does (tabs, newlines, no-break spaces, a byte-order mark) before lower-casing and hashing", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const ids = [];
    for (const e of ["\t Ann@Example.COM\n", "\u00a0ann@example.com\u00a0", "\ufeffann@example.com", "\u2003ANN@example.com\u3000"]) {
      ks.reset();
      ids.push(await ks.identify(e).then(() => ks.userId(), (err) => err.code));
    }
    return ids;
  });
  assert.deepEqual(out, Array(4).fill(sha("ann@example.com")));
  await page.context().close();
});

test("opt-in, one category at a time: analytics alone sends (nothing stored, no cookie); personalization alone stores (nothing sent)", async () => {
  h.server.collector.reset();
  const a = await h.open();
  const sentA = await a.evaluate(async (o) => {
    window.ks = await Keystone.init({ ...o, consent: "opt-in" });
    await ks.setConsent({ analytics: true });
    ks.track("Analytics Only");
    await ks.flush();
    await new Promise((r) => setTimeout(r, 600));
    return ks.anonymousId();
  }, DELIVER);
  assert.ok(h.server.collector.events.some((e) => e.event === "Analytics Only" && e.anonymousId === sentA), "sent with analytics consent");
  assert.equal(await footprint(a), "", "nothing stored without personalization");
  await a.context().close();

  const b = await h.open();
  const bodies = wireOf(b);
  const stored = await b.evaluate(async (o) => {
    window.ks = await Keystone.init({ ...o, consent: "opt-in", flushAt: 1 });
    await ks.setConsent({ personalization: true });
    ks.track("Personalization Only");
    await ks.flush().catch(() => {});
    await new Promise((r) => setTimeout(r, 600));
    return JSON.parse(localStorage.getItem("ks_profile") || "null")?.aid === ks.anonymousId();
  }, DELIVER);
  assert.equal(stored, true, "stored with personalization consent");
  assert.deepEqual(bodies, [], "nothing sent without analytics");
  await b.context().close();
});

test("localStorage blocked: the id cookie keeps the id across tabs, and a reset() is the id the next page starts with", async () => {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() =>
    Object.defineProperty(window, "localStorage", {
      get() {
        throw new DOMException("blocked", "SecurityError");
      },
    }),
  );
  const a = await h.open("/tests/esm.html", { context: ctx });
  const id = await a.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })).anonymousId());
  const b = await h.open("/tests/esm.html", { context: ctx });
  assert.equal(await b.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })).anonymousId()), id, "the second tab reads the cookie");
  const fresh = await b.evaluate(() => (ks.reset(), ks.anonymousId()));
  assert.notEqual(fresh, id);
  const c = await h.open("/tests/esm.html", { context: ctx });
  assert.equal(await c.evaluate(async () => (await Keystone.init({ autoCapture: false })).anonymousId()), fresh);
  await ctx.close();
});

test("two tabs on the wire: after a login in one, the other's next events carry the user; after a logout, the new anonymous id and no user", async () => {
  h.server.collector.reset();
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await h.open("/tests/esm.html", { context: ctx });
  for (const p of [a, b]) await p.evaluate(async (o) => (window.ks = await Keystone.init(o)), { ...DELIVER, flushAt: 1, flushInterval: 50 });
  await b.waitForFunction(async () => JSON.parse(localStorage.getItem("ks_profile") || "{}").aid === ks.anonymousId(), null, { timeout: 2000 });
  const A = sha("ann@example.com");
  await a.evaluate(() => ks.identify("ann@example.com"));
  await b.waitForTimeout(1000);
  await b.evaluate(() => ks.track("B After Login"));
  const fresh = await a.evaluate(() => (ks.reset(), ks.anonymousId()));
  await b.waitForTimeout(1000);
  await b.evaluate(async () => {
    ks.track("B After Logout");
    await ks.flush();
  });
  await a.evaluate(() => ks.flush().catch(() => {}));
  const ev = (name) => h.server.collector.events.find((e) => e.event === name);
  assert.equal(ev("B After Login").userId, A);
  assert.deepEqual([ev("B After Logout").anonymousId, ev("B After Logout").userId ?? null], [fresh, null]);
  await ctx.close();
});

test("switching users without a logout, back and forth: each finds only their own profile, on their own anonymous ids", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const view = () => ({ user: ks.userId(), traits: ks.profile().traits, events: Object.keys(ks.profile().events).sort(), anon: ks.anonymousId() });
    await ks.identify("ann@example.com", { name: "Ann" });
    ks.track("Ann Event");
    const ann1 = view();
    await ks.identify("bob@example.com", { name: "Bob" });
    ks.track("Bob Event");
    const bob1 = view();
    await ks.identify("ann@example.com");
    const ann2 = view();
    await ks.identify("bob@example.com");
    const bob2 = view();
    return { ann1, bob1, ann2, bob2 };
  });
  assert.deepEqual(out.ann2.traits, { name: "Ann" });
  assert.deepEqual(out.ann2.events, ["Ann Event"]);
  assert.deepEqual(out.bob2.traits, { name: "Bob" });
  assert.deepEqual(out.bob2.events, ["Bob Event"]);
  const anons = [out.ann1.anon, out.bob1.anon, out.ann2.anon, out.bob2.anon];
  assert.equal(new Set(anons).size, 4, "a new anonymous id at each switch: " + anons.join(" "));
  await page.context().close();
});

test("the anonymous id does not come from Math.random: two visitors with a constant Math.random get different UUID v4s", async () => {
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const ctx = await h.browser.newContext();
    await ctx.addInitScript(() => (Math.random = () => 0.5));
    const page = await h.open("/tests/esm.html", { context: ctx });
    ids.push(await page.evaluate(async () => (await Keystone.init({ autoCapture: false })).anonymousId()));
    await ctx.close();
  }
  for (const id of ids) assert.match(id, UUID);
  assert.notEqual(ids[0], ids[1]);
});

test("with cookieDomain, the id stays stable when the cookie was cleared (localStorage still has it) or cannot be set for that domain", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const reinit = async (cookieDomain) => {
    await page.reload();
    await page.waitForFunction(() => window.__ksLoaded === true);
    return page.evaluate(async (cd) => (window.ks = await Keystone.init({ cookieDomain: cd, autoCapture: false })).anonymousId(), cookieDomain);
  };
  const id = await page.evaluate(async () => (window.ks = await Keystone.init({ cookieDomain: "localhost", autoCapture: false })).anonymousId());
  await ctx.clearCookies();
  assert.equal(await reinit("localhost"), id, "cookie cleared: localStorage still holds the id");
  assert.equal((await ctx.cookies()).find((c) => c.name === "ks_aid")?.value, id, "and the shared cookie is written back");
  // A cookieDomain the page is not on (a staging host, a typo): the browser refuses the cookie.
  const ctx2 = await h.browser.newContext();
  const p2 = await h.open("/tests/esm.html", { context: ctx2 });
  const id2 = await p2.evaluate(async () => (await Keystone.init({ cookieDomain: "example.com", autoCapture: false })).anonymousId());
  const again = [];
  for (let i = 0; i < 2; i++) {
    await p2.reload();
    await p2.waitForFunction(() => window.__ksLoaded === true);
    again.push(await p2.evaluate(async () => (await Keystone.init({ cookieDomain: "example.com", autoCapture: false })).anonymousId()));
  }
  assert.deepEqual(again, [id2, id2], "stable across reloads");
  await ctx.close();
  await ctx2.close();
});

test("persistence under a fake clock (page.clock): other changes are not written in the call's turn, and are stored once 500 ms have run", async () => {
  const page = await h.open();
  await page.clock.install();
  const stored = () => page.evaluate(() => JSON.parse(localStorage.getItem("ks_profile") || "{}"));
  await page.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await page.clock.runFor(1000);
  // The start's own write, whose timer has just run, waits for the profile's Web Lock (its grant
  // is not a timer): done before the calls below, or on a loaded machine it lands after them,
  // and writes them in their turn.
  await page.waitForFunction(() => (localStorage.getItem("ks_profile") || "").includes('"aid"'));
  await page.waitForTimeout(50);
  await page.evaluate(() => {
    ks.setTraits({ plan: "pro" });
    ks.track("Coalesced");
  });
  assert.equal((await stored()).traits?.plan, undefined, "not in the same turn");
  await page.clock.runFor(500);
  await page.waitForTimeout(50); // (a Web Lock's grant is not a timer)
  await page.clock.runFor(10);
  const s = await stored();
  assert.ok(JSON.stringify(s).includes("Coalesced") && JSON.stringify(s).includes("pro"), "stored within 500 ms");
  await page.context().close();
});

/** The stored profile of a visitor who logged in as `email` with `traits` and did `event`, made
 * in a context of its own: what another tab of the site would have written. */
async function storedLogin(email, traits, event) {
  const page = await h.open();
  const text = await page.evaluate(
    async ([email, traits, event]) => {
      const ks = await Keystone.init({ autoCapture: false });
      await ks.identify(email, traits);
      ks.track(event);
      ks.persistNow();
      return localStorage.getItem("ks_profile");
    },
    [email, traits, event],
  );
  await page.context().close();
  return text;
}

test("two logins at once in two tabs (a shared computer): the login that loses the race is set aside, not lost — the stored one replaced unheard", async () => {
  // Another tab logged Bob in and wrote his profile; this tab, not having heard it yet (its
  // storage event still on the way, or the tab already navigated), logs Ann in. Ann's profile
  // replaces Bob's in storage: Bob's must be set aside on this device, as at any switch of user.
  const bob = await storedLogin("bob@example.com", { name: "Bob" }, "Bob Event");
  const page = await h.open();
  const out = await page.evaluate(async (bob) => {
    const ks = await Keystone.init({ autoCapture: false });
    localStorage.setItem("ks_profile", bob); // (a page hears no storage event for its own writes)
    await ks.identify("ann@example.com", { name: "Ann" });
    ks.track("Ann Event");
    await new Promise((r) => setTimeout(r, 600));
    const ann = { traits: ks.profile().traits, events: Object.keys(ks.profile().events) };
    await ks.identify("bob@example.com");
    return { ann, bob: { traits: ks.profile().traits, events: Object.keys(ks.profile().events) } };
  }, bob);
  assert.deepEqual(out.ann, { traits: { name: "Ann" }, events: ["Ann Event"] });
  assert.deepEqual(out.bob, { traits: { name: "Bob" }, events: ["Bob Event"] }, "Bob's profile comes back at his next login");
  await page.context().close();
});

test("two logins at once in two tabs: the tab whose login lost keeps that person's profile set aside, with what it had not written yet", async () => {
  // This tab logged Bob in and tracked an event (its write still pending); another tab that had
  // not heard it logs Ann in and writes her profile (a newer identity). This tab follows Ann;
  // Bob's profile and his pending event are set aside for his next login.
  const ann = JSON.parse(await storedLogin("ann@example.com", { name: "Ann" }, "Ann Event"));
  const page = await h.open();
  const other = await h.open("/tests/blank.html", { context: page.context() });
  await page.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    await ks.identify("bob@example.com", { name: "Bob" });
    ks.track("Bob Event");
  });
  ann.ep = 7; // written by a tab that saw more identity changes: this tab must follow it
  await other.evaluate((t) => localStorage.setItem("ks_profile", t), JSON.stringify(ann));
  await page.waitForFunction(() => ks.profile().traits.name === "Ann", null, { timeout: 1000 });
  const out = await page.evaluate(async () => {
    await new Promise((r) => setTimeout(r, 600));
    await ks.identify("bob@example.com");
    return { traits: ks.profile().traits, events: Object.keys(ks.profile().events) };
  });
  assert.deepEqual(out, { traits: { name: "Bob" }, events: ["Bob Event"] });
  await page.context().close();
});

test("a tab that follows another tab's logout with nothing of its own pending writes nothing: the set-aside profiles are the other tab's to write", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await h.open("/tests/esm.html", { context: ctx });
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await a.evaluate(async () => {
    await ks.identify("ann@example.com", { name: "Ann" });
    ks.track("Ann Event");
    ks.persistNow();
  });
  await b.waitForFunction(() => ks.userId() !== null, null, { timeout: 1000 });
  await b.waitForTimeout(600); // past its own coalesced write, if any
  await b.evaluate(() => {
    window.writes = [];
    const set = Storage.prototype.setItem;
    Storage.prototype.setItem = function (k, v) {
      writes.push(k);
      return set.call(this, k, v);
    };
  });
  const fresh = await a.evaluate(() => (ks.reset(), ks.anonymousId()));
  await b.waitForFunction((f) => ks.anonymousId() === f, fresh, { timeout: 1000 });
  await b.waitForTimeout(400);
  assert.deepEqual(await b.evaluate(() => writes.filter((k) => k.startsWith("ks_") && !k.startsWith("ks_hb.") && !k.startsWith("ks_q."))), []);
  const back = await b.evaluate(async () => (await ks.identify("ann@example.com"), ks.profile().traits));
  assert.deepEqual(back, { name: "Ann" });
  await ctx.close();
});

test("the same person logged in at once in two tabs: both logins' traits and what each tab made before them are kept, and the tabs agree", async () => {
  // Two tabs of one anonymous visitor (a session that reaches both tabs at once) log the same
  // person in at the same moment: tab 0's write of its login lands just after tab 1 read the
  // stored profile for its own (held here until tab 1 has written, then made as it was).
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await h.open("/tests/esm.html", { context: ctx });
  for (const p of [a, b]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await a.evaluate(async () => {
    const set = Storage.prototype.setItem;
    window.held = [];
    Storage.prototype.setItem = function (k, v) {
      if (held && k === "ks_profile") return void held.push([k, v]);
      return set.call(this, k, v);
    };
    window.release = () => {
      for (const [k, v] of held.splice(0)) set.call(localStorage, k, v);
      window.held = null;
    };
    ks.track("Before Login 0");
    await ks.identify("ann@example.com", { from0: true });
  });
  await b.evaluate(async () => {
    ks.track("Before Login 1");
    await ks.identify("ann@example.com", { from1: true });
  });
  await a.waitForFunction(() => ks.profile().traits.from1, null, { timeout: 1000 }); // heard tab 1's write
  await a.evaluate(() => release());
  const state = (p) => p.evaluate(() => ({ traits: ks.profile().traits, events: Object.keys(ks.profile().events).sort() }));
  const want = { traits: { from0: true, from1: true }, events: ["Before Login 0", "Before Login 1"] };
  await a.waitForTimeout(1500); // the storage events and the coalesced writes that follow them
  assert.deepEqual([await state(a), await state(b)], [want, want]);
  assert.deepEqual([a.problems, b.problems], [[], []]);
  await ctx.close();
});
