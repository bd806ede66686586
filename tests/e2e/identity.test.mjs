// Identity end to end in Chromium: the email is hashed on the device and never stored or sent;
// each transition of DESIGN §5 through the public API; identity written at once; other tabs
// follow identify/reset and never write the old identity back.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const sha = (s) => createHash("sha256").update(s, "utf8").digest("hex");
const ADA = sha("ada.lovelace@example.com");
const BOB = sha("bob@example.com");

const DEFS = {
  version: 1,
  segments: [
    { id: "gold_viewers", condition: { $and: [{ "traits.tier": "gold" }, { $performed: { event: "Product Viewed" } }] } },
    { id: "viewers", condition: { $performed: { event: "Product Viewed" } } },
    { id: "buyers", condition: { $performed: { event: "Order Completed" } } },
  ],
};

/** Everything Keystone could have left in the page's storage areas, as one string. */
async function dumpStorage(page) {
  return page.evaluate(async () => {
    const parts = [document.cookie];
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) parts.push(s.key(i), s.getItem(s.key(i)));
    for (const info of (await indexedDB.databases()) || []) {
      const db = await new Promise((ok, ko) => {
        const r = indexedDB.open(info.name);
        r.onsuccess = () => ok(r.result);
        r.onerror = () => ko(r.error);
      });
      for (const name of db.objectStoreNames) {
        const all = await new Promise((ok) => {
          const r = db.transaction(name).objectStore(name).getAll();
          r.onsuccess = () => ok(r.result);
          r.onerror = () => ok([]);
        });
        parts.push(name, JSON.stringify(all));
      }
      db.close();
    }
    return parts.join("\n");
  });
}

test("the raw email never reaches storage, cookies or the wire; only its SHA-256 does", async () => {
  await fetch(h.url("/collector/reset"));
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const bodies = [];
  page.on("request", (r) => bodies.push(r.url() + "\n" + (r.postData() || "")));
  const out = await page.evaluate(
    async ({ defs, endpoint }) => {
      const ks = await Keystone.init({ segments: defs, endpoint, writeKey: "demo-key" });
      ks.track("Product Viewed", { sku: "A1" });
      await ks.identify("  Ada.Lovelace@Example.COM ", { tier: "gold" });
      ks.track("Order Completed", { revenue: 120 });
      ks.reset();
      await ks.identify("Ada.Lovelace@example.com");
      await ks.identify("bob@example.com", { tier: "silver" });
      try {
        await ks.flush();
      } catch (_) {}
      dispatchEvent(new Event("pagehide"));
      return { userId: ks.userId(), traits: ks.profile().traits };
    },
    { defs: DEFS, endpoint: h.url("/v1/batch") },
  );
  assert.equal(out.userId, BOB);
  assert.equal(out.traits.email, undefined);
  await page.waitForTimeout(300);
  const stored = await dumpStorage(page);
  const wire = bodies.join("\n") + JSON.stringify(await (await fetch(h.url("/collector/events"))).json());
  for (const where of [stored, wire]) {
    const lower = where.toLowerCase();
    for (const needle of ["ada.lovelace@example.com", "ada.lovelace%40example.com", "bob@example.com", "bob%40example.com"]) {
      assert.ok(!lower.includes(needle), "raw email found: " + needle);
    }
  }
  assert.ok(stored.includes(ADA) && stored.includes(BOB), "the hashes are what is stored");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("storeEmail: true is the explicit opt-in that keeps the normalized email as a trait", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({});
    await ks.identify(" Ünïcödé.Üser@Exämple.com ", {}, { storeEmail: true });
    const a = { userId: ks.userId(), email: ks.profile().traits.email };
    await ks.identify("x@example.com", {}, { userId: "crm-42" });
    return { ...a, own: ks.userId() };
  });
  assert.equal(out.email, "ünïcödé.üser@exämple.com");
  assert.equal(out.userId, sha("ünïcödé.üser@exämple.com"));
  assert.equal(out.own, "crm-42");
  await ctx.close();
});

// A CRM's numeric primary key as the user id (Segment's analytics.js takes it): its decimal text,
// as String(n) gives it, in userId(), the listener payload, storage and on the wire; NaN,
// ±Infinity and other types stay invalid_argument and change nothing.
test("identify with a numeric userId uses its decimal text (String(n)); NaN, Infinity, booleans, objects and arrays are rejected", async () => {
  await fetch(h.url("/collector/reset"));
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async (endpoint) => {
    const ks = await Keystone.init({ autoCapture: false, endpoint, writeKey: "demo-key" });
    const heard = [];
    ks.on("identify", (p) => heard.push(p.userId));
    const ids = [];
    for (const userId of [12345, 12.5, 1e21, -0, 42]) {
      await ks.identify("ada@example.com", {}, { userId });
      ids.push(ks.userId());
    }
    const codes = [];
    for (const userId of [NaN, Infinity, -Infinity, true, { id: 1 }, [1], ""]) codes.push(await ks.identify("bob@example.com", {}, { userId }).then(() => "ok", (e) => e.code));
    await ks.flush();
    await new Promise((r) => setTimeout(r, 600)); // past the coalesced write
    return { ids, heard, codes, after: ks.userId(), stored: JSON.parse(localStorage.getItem("ks_profile")).uid };
  }, h.url("/v1/batch"));
  assert.deepEqual(out.ids, ["12345", "12.5", "1e+21", "0", "42"]);
  assert.deepEqual(out.heard, out.ids);
  assert.deepEqual(out.codes, Array(7).fill("invalid_argument"));
  assert.equal(out.after, "42", "a rejected call changes nothing");
  assert.equal(out.stored, "42");
  const wire = (await (await fetch(h.url("/collector/events"))).json()).events.filter((e) => e.type === "identify").map((e) => e.userId);
  assert.deepEqual(wire, out.ids, "strings on the wire");
  await ctx.close();
});

test("the snippet and the script-tag build: a numeric userId queued before the script loads, and one given once ready", async () => {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.goto(h.url("/tests/blank.html"));
  const out = await page.evaluate(async (snippet) => {
    window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: false };
    const s = document.createElement("script");
    s.textContent = snippet;
    document.body.appendChild(s);
    const queued = await keystone.identify("ada@example.com", {}, { userId: 1001 }).then(() => keystone.userId(), (e) => e.code);
    const ready = await keystone.identify("bob@example.com", {}, { userId: 1002 }).then(() => keystone.userId(), (e) => e.code);
    const nan = await keystone.identify("bob@example.com", {}, { userId: NaN }).then(() => "ok", (e) => e.code);
    return { queued, ready, nan };
  }, readFileSync(new URL("../../pkg/dist/snippet.js", import.meta.url), "utf8"));
  assert.deepEqual(out, { queued: "1001", ready: "1002", nan: "invalid_argument" });
  await ctx.close();
});

test("transitions: anonymous → A, A → A, A → B, reset, A again; applied and written at once", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const r = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs });
    const events = [];
    for (const t of ["identify", "reset", "error", "segment:enter", "segment:exit"]) ks.on(t, (p) => events.push([t, p && (p.userId || p.anonymousId || p.segment || p.code)]));
    const stored = () => JSON.parse(localStorage.getItem("ks_profile"));
    const out = {};
    ks.track("Product Viewed", { sku: "A1" });
    out.anon = ks.anonymousId();
    // Malformed email: rejected with a stable code, nothing changes.
    out.bad = await ks.identify("not-an-email", { tier: "gold" }).then(() => "resolved", (e) => e instanceof Error && e.code);
    out.badKept = [ks.userId(), ks.profile().traits.tier ?? null];
    await Promise.resolve();
    events.length = 0;
    // anonymous → A: the segment needing the CRM trait and the anonymous behaviour holds at once.
    const p = ks.identify("Ada.Lovelace@example.com", { tier: "gold" });
    out.sync = { userId: ks.userId(), gold: ks.inSegment("gold_viewers"), stored: stored().uid, firedYet: events.length };
    await p;
    out.afterA = { events: events.splice(0), linked: ks.profile().linkedAnonymousIds, anon: ks.anonymousId() };
    // A → A: traits only.
    const before = ks.profile();
    await ks.identify("ada.lovelace@example.com", { city: "Paris" });
    const same = ks.profile();
    out.aa = { anon: same.anonymousId === before.anonymousId, count: same.events["Product Viewed"].count, traits: same.traits };
    ks.track("Order Completed");
    events.length = 0;
    // A → B: nothing of A in B, and a new anonymous id.
    await ks.identify("bob@example.com");
    const b = ks.profile();
    out.ab = { userId: b.userId, anon: b.anonymousId, events: Object.keys(b.events), traits: b.traits, segments: ks.segments(), stored: stored().aid, linked: b.linkedAnonymousIds, fired: events.splice(0) };
    // reset: B set aside, new anonymous id, empty profile, "reset" heard before the call returns.
    ks.reset();
    out.reset = { firedYet: events.length, userId: ks.userId(), anon: ks.anonymousId(), stored: stored().aid, events: Object.keys(ks.profile().events), traits: ks.profile().traits };
    await Promise.resolve();
    out.reset.fired = events.splice(0);
    ks.track("Product Viewed", { sku: "B2" });
    // A again: A's profile comes back, merged with the new anonymous activity.
    await ks.identify("ada.lovelace@example.com");
    const back = ks.profile();
    out.back = { userId: back.userId, anon: back.anonymousId, viewed: back.events["Product Viewed"].count, bought: back.events["Order Completed"].count, traits: back.traits, segs: ks.segments(), linked: back.linkedAnonymousIds };
    out.aside = JSON.parse(localStorage.getItem("ks_aside")).map((e) => e[0]);
    return out;
  }, DEFS);

  assert.equal(r.bad, "invalid_email");
  assert.deepEqual(r.badKept, [null, null]);
  assert.deepEqual(r.sync, { userId: ADA, gold: true, stored: ADA, firedYet: 2 }, "listeners heard it before identify returned");
  assert.deepEqual(r.afterA.events, [["identify", ADA], ["segment:enter", "gold_viewers"]]);
  assert.deepEqual(r.afterA.linked, [r.anon]);
  assert.equal(r.afterA.anon, r.anon);
  assert.deepEqual(r.aa, { anon: true, count: 1, traits: { tier: "gold", city: "Paris" } });
  assert.equal(r.ab.userId, BOB);
  assert.notEqual(r.ab.anon, r.anon);
  assert.equal(r.ab.stored, r.ab.anon);
  assert.deepEqual(r.ab.events, []);
  assert.deepEqual(r.ab.traits, {});
  assert.deepEqual(r.ab.segments, []);
  assert.deepEqual(r.ab.linked, [r.ab.anon]);
  assert.deepEqual(r.ab.fired.filter(([t]) => t === "identify"), [["identify", BOB]]);
  assert.ok(r.ab.fired.some(([t, s]) => t === "segment:exit" && s === "buyers"));
  assert.equal(r.reset.firedYet, 1, "reset heard before the call returns");
  assert.equal(r.reset.userId, null);
  assert.notEqual(r.reset.anon, r.ab.anon);
  assert.equal(r.reset.stored, r.reset.anon, "reset written at once");
  assert.deepEqual(r.reset.events, []);
  assert.deepEqual(r.reset.traits, {});
  assert.deepEqual(r.reset.fired, [["reset", r.reset.anon]]);
  assert.equal(r.back.userId, ADA);
  assert.equal(r.back.anon, r.reset.anon);
  assert.equal(r.back.viewed, 2);
  assert.equal(r.back.bought, 1);
  assert.deepEqual(r.back.traits, { tier: "gold", city: "Paris" });
  assert.deepEqual(r.back.segs, ["buyers", "gold_viewers", "viewers"]);
  assert.deepEqual(r.back.linked, [r.anon, r.reset.anon]);
  assert.deepEqual(r.aside, [BOB]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("set-aside profiles are bounded (least recently used dropped) and expire with retention", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  await page.clock.install({ time: new Date("2026-01-01T00:00:00Z") });
  const r = await page.evaluate(async () => {
    const ks = await Keystone.init({ retention: "30d" });
    for (let i = 0; i < 7; i++) {
      ks.track("Product Viewed");
      await ks.identify(`user${i}@example.com`);
    }
    ks.reset();
    return JSON.parse(localStorage.getItem("ks_aside")).map((e) => e[0]);
  });
  assert.deepEqual(r, [2, 3, 4, 5, 6].map((i) => sha(`user${i}@example.com`)));
  await page.clock.fastForward(31 * 24 * 3600 * 1000);
  const later = await page.evaluate(async () => {
    const ks = await Keystone.init({});
    await ks.identify("user6@example.com");
    return { viewed: ks.profile().events["Product Viewed"]?.count ?? 0, aside: JSON.parse(localStorage.getItem("ks_aside")).length };
  });
  assert.deepEqual(later, { viewed: 0, aside: 0 });
  await ctx.close();
});

test("other tabs follow identify and reset, and never write the old identity back", async () => {
  const ctx = await h.browser.newContext();
  const one = await h.open("/tests/esm.html", { context: ctx });
  const two = await h.open("/tests/esm.html", { context: ctx });
  const init = async (defs) => {
    window.ks = await Keystone.init({ segments: defs });
    window.seen = [];
    for (const t of ["identify", "reset", "segment:enter", "segment:exit"]) ks.on(t, (p) => seen.push([t, p.userId || p.anonymousId || p.segment]));
    return ks.anonymousId();
  };
  await one.evaluate(init, DEFS);
  await two.evaluate(init, DEFS);
  // Two tabs that started at once converge on one anonymous id (ties of identity go to one side).
  await one.waitForFunction(() => JSON.parse(localStorage.getItem("ks_profile") || "{}").aid === ks.anonymousId(), null, { timeout: 2000 });
  const a1 = await one.evaluate(() => ks.anonymousId());
  await two.waitForFunction((id) => ks.anonymousId() === id, a1, { timeout: 2000 });
  await two.evaluate(() => (seen.length = 0));
  await one.evaluate(() => ks.track("Product Viewed"));
  await one.evaluate(() => ks.identify("ada.lovelace@example.com", { tier: "gold" }));
  await two.waitForFunction((id) => ks.userId() === id, ADA, { timeout: 1000 });
  const followed = await two.evaluate(() => ({ segs: ks.segments(), tier: ks.profile().traits.tier, seen }));
  assert.deepEqual(followed.segs, ["gold_viewers", "viewers"]);
  assert.equal(followed.tier, "gold");
  assert.ok(followed.seen.some(([t, u]) => t === "identify" && u === ADA));

  // The race that undid reset() in peers: tab two has a pending (coalesced) write of A when tab
  // one resets. Tab two must adopt the new anonymous state, not write A back.
  await two.evaluate(() => ks.track("Product Viewed"));
  const fresh = await one.evaluate(() => {
    ks.reset();
    return ks.anonymousId();
  });
  await two.waitForFunction((id) => ks.anonymousId() === id && ks.userId() === null, fresh, { timeout: 1000 });
  await two.waitForTimeout(600); // past tab two's coalesced write
  const after = await two.evaluate(() => {
    const s = JSON.parse(localStorage.getItem("ks_profile"));
    return { aid: s.aid, uid: s.uid, segs: ks.segments(), seen: seen.filter(([t]) => t === "reset") };
  });
  assert.equal(after.aid, fresh);
  assert.equal(after.uid, null);
  assert.deepEqual(after.segs, []);
  assert.deepEqual(after.seen, [["reset", fresh]]);
  assert.equal(await one.evaluate(() => ks.userId()), null);
  // Tab two's event of A, not yet written when tab one logged out, went into A's set-aside
  // profile: A finds both views (tab one's, merged at login, and tab two's) when logging in again.
  const views = await one.evaluate(async () => {
    await ks.identify("ada.lovelace@example.com");
    return ks.profile().events["Product Viewed"].count;
  });
  assert.equal(views, 2);
  assert.deepEqual(one.problems, []);
  assert.deepEqual(two.problems, []);
  await ctx.close();
});

test("a tab still starting (its definitions URL slow) when another tab logs out and logs someone else in: it starts as the new person, and sends nothing as the one before", async () => {
  await fetch(h.url("/collector/reset"));
  const ctx = await h.browser.newContext();
  let release;
  const gate = new Promise((r) => (release = r));
  await ctx.route("**/defs-slow.json", async (route) => (await gate, route.fulfill({ contentType: "application/json", body: JSON.stringify({ version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }] }) })));
  const one = await h.open("/tests/esm.html", { context: ctx });
  await one.evaluate(async () => {
    window.ks = await Keystone.init({ autoCapture: false });
    await ks.identify("ada.lovelace@example.com", { tier: "gold", firstName: "Ada" });
  });
  const two = await h.open("/tests/esm.html", { context: ctx });
  await two.evaluate(() => {
    window.done = Keystone.init({ segments: "/defs-slow.json", endpoint: "/v1/batch", writeKey: "demo-key", flushAt: 1000 }).then((k) => (window.ks = k));
  });
  await new Promise((r) => setTimeout(r, 300));
  const bobIds = await one.evaluate(async () => {
    ks.reset();
    await ks.identify("bob@example.com");
    return [ks.anonymousId(), ks.userId()];
  });
  await new Promise((r) => setTimeout(r, 300));
  release();
  const seen = await two.evaluate(async () => {
    await window.done;
    const at = { userId: ks.userId(), anonymousId: ks.anonymousId(), segments: ks.segments(), traits: ks.profile().traits };
    ks.track("Clicked");
    await ks.flush();
    return at;
  });
  assert.deepEqual(seen, { userId: BOB, anonymousId: bobIds[0], segments: [], traits: {} });
  const sent = h.server.collector.events.filter((e) => e.type == "page" || e.event == "Clicked");
  assert.deepEqual(sent.map((e) => [e.type, e.userId, e.anonymousId]), [["page", BOB, bobIds[0]], ["track", BOB, bobIds[0]]]);
  await ctx.close();
});

test("a known visitor logged out or switched before the choice of an opt-in page (or while personalization is withdrawn) is set aside once it is granted, and comes back at their next login", async () => {
  const SEGS = { version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }] };
  for (const how of ["reset", "switch", "withdrawn"]) {
    const ctx = await h.browser.newContext();
    const page = await h.open("/tests/esm.html", { context: ctx });
    await page.evaluate(async (segments) => {
      window.ks = await Keystone.init({ autoCapture: false, segments });
      await ks.identify("ada.lovelace@example.com", { tier: "gold" });
      ks.track("T");
      ks.persistNow();
    }, SEGS);
    await page.reload();
    await page.waitForFunction(() => window.__ksLoaded === true);
    const out = await page.evaluate(
      async ([segments, how]) => {
        window.ks = await Keystone.init({ autoCapture: false, segments, consent: how == "withdrawn" ? undefined : "opt-in" });
        if (how == "withdrawn") await ks.setConsent({ personalization: false });
        if (how == "switch") await ks.identify("bob@example.com");
        else ks.reset();
        await ks.setConsent({ analytics: true, personalization: true });
        ks.persistNow();
        if (how == "switch") ks.reset();
        await ks.identify("ada.lovelace@example.com");
        return { userId: ks.userId(), traits: ks.profile().traits, count: ks.profile().events.T?.count, segments: ks.segments() };
      },
      [SEGS, how],
    );
    assert.deepEqual(out, { userId: ADA, traits: { tier: "gold" }, count: 1, segments: ["gold"] }, how);
    await ctx.close();
  }
});

test("a logout in one tab while another tab of the visitor switches users: the event tracked just before the logout stays in the person's set-aside profile (20 rounds)", async () => {
  // Both tabs hold Ada. At one moment tab two tracks an event and logs out while tab one logs Bob
  // in: both set Ada aside from their own copy, and each writes the set-aside profiles. Ada's
  // next login must find the event, once, whichever write lands last.
  const ROUNDS = Number(process.env.KEYSTONE_RACE_ROUNDS) || 20;
  const lost = [];
  const at = (p, t, fn) => p.evaluate(([t, fn]) => new Promise((r) => setTimeout(() => r(new Function(fn)()), t - Date.now())), [t, fn]);
  for (let i = 0; i < ROUNDS; i++) {
    const ctx = await h.browser.newContext();
    const one = await h.open("/tests/esm.html", { context: ctx });
    const two = await h.open("/tests/esm.html", { context: ctx });
    for (const p of [one, two]) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
    await one.evaluate(async () => {
      await ks.identify("ada.lovelace@example.com");
      ks.persistNow();
    });
    await two.waitForFunction((u) => ks.userId() === u, ADA, { timeout: 1000 });
    const t = (await one.evaluate(() => Date.now())) + 200;
    await Promise.all([at(one, t, 'ks.identify("bob@example.com")'), at(two, t, 'ks.track("Before Logout"); ks.reset()')]);
    await one.waitForTimeout(1000); // the storage events and the writes that follow them
    const n = await one.evaluate(async () => {
      await ks.identify("ada.lovelace@example.com");
      return ks.profile().events["Before Logout"]?.count ?? 0;
    });
    if (n !== 1) lost.push(`round ${i}: ${n}`);
    assert.deepEqual([one.problems, two.problems], [[], []]);
    await ctx.close();
  }
  console.log(`# set-aside race: lost in ${lost.length} of ${ROUNDS} rounds`);
  assert.deepEqual(lost, []);
});

test("three tabs of one visitor, two logging different people in at the same moment: each person's event made right after the login is there at their next login", async () => {
  // Rarer than the race above (about 1 round in 15 before the set-aside profiles were filed
  // again by each tab): a few rounds here; KEYSTONE_RACE_ROUNDS=90 measures the rate.
  const ROUNDS = Number(process.env.KEYSTONE_RACE_ROUNDS) || 4;
  const lost = [];
  const at = (p, t, fn) => p.evaluate(([t, fn]) => new Promise((r) => setTimeout(() => r(new Function(fn)()), t - Date.now())), [t, fn]);
  for (let i = 0; i < ROUNDS; i++) {
    const ctx = await h.browser.newContext();
    const tabs = [];
    for (let k = 0; k < 3; k++) tabs.push(await h.open("/tests/esm.html", { context: ctx }));
    for (const p of tabs) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
    await tabs[0].waitForTimeout(700); // the three tabs agree on one anonymous id
    const t = (await tabs[0].evaluate(() => Date.now())) + 200;
    await Promise.all([
      at(tabs[0], t, 'return ks.identify("ada.lovelace@example.com").then(() => ks.track("Ada After"))'),
      at(tabs[1], t, 'return ks.identify("bob@example.com").then(() => ks.track("Bob After"))'),
    ]);
    await tabs[2].waitForTimeout(1500); // the storage events, the coalesced writes and the filings that follow
    const n = await tabs[2].evaluate(async () => {
      await ks.identify("ada.lovelace@example.com");
      const ada = ks.profile().events["Ada After"]?.count ?? 0;
      await ks.identify("bob@example.com");
      return [ada, ks.profile().events["Bob After"]?.count ?? 0];
    });
    if (n[0] !== 1 || n[1] !== 1) lost.push(`round ${i}: ${n}`);
    assert.deepEqual(tabs.map((p) => p.problems), [[], [], []]);
    await ctx.close();
  }
  console.log(`# two logins at once in three tabs: lost in ${lost.length} of ${ROUNDS} rounds`);
  assert.deepEqual(lost, []);
});

test("a switch of users with neither analytics nor personalization granted makes no anonymous id, as a logout does", async () => {
  // Found by tests/e2e/model.test.mjs: reset() made none, identify() of another person did.
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    await ks.identify("ann@example.com");
    await ks.setConsent({ analytics: false, personalization: false });
    await ks.identify("bob@example.com");
    const switched = [ks.userId() !== null, ks.anonymousId(), ks.profile().anonymousId, ks.profile().linkedAnonymousIds];
    ks.reset();
    const reset = ks.anonymousId();
    await ks.setConsent({ analytics: true });
    return { switched, reset, granted: typeof ks.anonymousId() };
  });
  assert.deepEqual(out, { switched: [true, null, null, []], reset: null, granted: "string" });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("a login brings back a profile set aside under other definitions: its earlier events count for the definitions loaded now", async () => {
  // Found by tests/e2e/model.test.mjs: the merge took the anonymous side's state of a
  // definition the set-aside profile had never been evaluated with, so Bob's earlier shoe view
  // (counted in his events) never reached the segment.
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const A = { version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }] };
    const B = { version: 1, segments: [{ id: "shoe_ever", condition: { $performed: { event: "Product Viewed", where: { category: "shoes" } } } }, { id: "viewed_2", condition: { $performed: { event: "Product Viewed", count: { $gte: 2 } } } }] };
    const ks = await Keystone.init({ autoCapture: false, segments: A });
    await ks.identify("bob@example.com");
    ks.track("Product Viewed", { category: "shoes" });
    ks.reset();
    await ks.loadSegments(B);
    ks.track("Product Viewed", { category: "hats" });
    const before = ks.segments();
    await ks.identify("bob@example.com");
    return { before, after: ks.segments(), explain: ks.explain("shoe_ever").result, views: ks.profile().events["Product Viewed"].count };
  });
  assert.deepEqual(out, { before: [], after: ["shoe_ever", "viewed_2"], explain: true, views: 2 });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("a person set aside by one tab, then logged in and out again in another after a third person's visit: their events are counted once", async () => {
  // Tab one files Ada's event as it sets her aside (kept 10 s, to be filed again if another
  // tab's write drops it). Tab two then logs Bob in and out (a fresh anonymous profile, whose
  // record of what each tab wrote starts empty), logs Ada in and out: the profile set aside
  // anew must still say it holds tab one's event, or tab one files it a second time.
  const ctx = await h.browser.newContext();
  const tabs = [await h.open("/tests/esm.html", { context: ctx }), await h.open("/tests/esm.html", { context: ctx })];
  for (const p of tabs) await p.evaluate(async () => (window.ks = await Keystone.init({ autoCapture: false })));
  await tabs[0].waitForTimeout(600);
  await tabs[0].evaluate(async () => {
    await ks.identify("ada.lovelace@example.com");
    ks.track("Ada Before");
    await ks.reset();
  });
  await tabs[0].waitForTimeout(700);
  await tabs[1].evaluate(() => ks.identify("bob@example.com").then(() => ks.reset()));
  await tabs[1].waitForTimeout(700);
  await tabs[1].evaluate(() => ks.identify("ada.lovelace@example.com"));
  await tabs[1].waitForTimeout(700);
  await tabs[1].evaluate(() => ks.reset());
  await tabs[1].waitForTimeout(1500); // the storage events and what tab one files after them
  const n = await tabs[1].evaluate(async () => {
    await ks.identify("ada.lovelace@example.com");
    return ks.profile().events["Ada Before"]?.count ?? 0;
  });
  assert.equal(n, 1, "Ada's event, once");
  assert.deepEqual(tabs.map((p) => p.problems), [[], []]);
  await ctx.close();
});
