// Storage faults (DESIGN §10): localStorage that throws on access, setItem throwing
// QuotaExceededError, cookies disabled, another tab clearing storage mid-session. Keystone keeps
// working in memory, reports `storage_unavailable` (an "error" event and a warning), never throws,
// and loses nothing it can still hold.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DEFS = { version: 1, segments: [{ id: "viewer", condition: { $performed: { event: "Product Viewed" } } }] };

/** Opens the ESM page in a fresh context with `script` run before any page script. */
async function openWith(script, options = {}) {
  const ctx = await h.browser.newContext();
  if (script) await ctx.addInitScript(script);
  await ctx.addInitScript(() => {
    window.__bad = [];
    window.onerror = (m) => void window.__bad.push("onerror: " + m);
    addEventListener("unhandledrejection", (e) => window.__bad.push("unhandledrejection: " + (e.reason && e.reason.message)));
  });
  return h.open("/tests/esm.html", { context: ctx, ...options });
}

/** A fresh context whose first page finds `text` stored as the profile (a reload does not store
 * it again). */
async function storedAs(text) {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript((t) => {
    if (!sessionStorage.getItem("seeded")) {
      sessionStorage.setItem("seeded", "1");
      localStorage.setItem("ks_profile", t);
    }
  }, text);
  return ctx;
}

/** Runs the standard session in the page: init, events, a persist; returns what it saw. */
function session(page, opts = {}) {
  return page.evaluate(
    async ({ DEFS, opts }) => {
      const codes = [];
      let threw = null;
      const out = {};
      try {
        const ks = await Keystone.init({ segments: DEFS, autoCapture: false, ...opts });
        ks.on("error", (e) => codes.push(e.code));
        out.id = ks.anonymousId();
        ks.track("Product Viewed");
        out.viewer = ks.inSegment("viewer");
        ks.persistNow();
        ks.track("Other");
        ks.persistNow();
        out.profileEvents = ks.profile() !== null;
        out.sameId = ks.anonymousId() === out.id;
        out.stillViewer = ks.inSegment("viewer");
      } catch (e) {
        threw = String(e);
      }
      await new Promise((r) => setTimeout(r, 20));
      return { ...out, threw, codes, bad: window.__bad };
    },
    { DEFS, opts },
  );
}

function assertWorking(out) {
  assert.equal(out.threw, null);
  assert.equal(typeof out.id, "string");
  assert.equal(out.viewer, true);
  assert.equal(out.stillViewer, true);
  assert.equal(out.sameId, true);
  assert.equal(out.profileEvents, true);
  assert.deepEqual(out.bad, []);
}

test("localStorage that throws on access: works in memory, reports storage_unavailable", async () => {
  const page = await openWith(() => {
    Object.defineProperty(window, "localStorage", { configurable: true, get() { throw new DOMException("denied", "SecurityError"); } });
  });
  const out = await session(page);
  assertWorking(out);
  assert.ok(out.codes.includes("storage_unavailable"), JSON.stringify(out.codes));
  assert.ok(page.warnings.some((w) => w.includes("storage_unavailable")));
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("setItem throwing QuotaExceededError: the profile stays in memory, storage_unavailable is reported", async () => {
  const page = await openWith(() => {
    Storage.prototype.setItem = function () {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
  });
  const out = await session(page);
  assertWorking(out);
  assert.ok(out.codes.includes("storage_unavailable"), JSON.stringify(out.codes));
  // The in-memory copy answers for the rest of the page.
  assert.equal(await page.evaluate(async () => (await Keystone.init()).profile().anonymousId), out.id);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("storage full at a logout or a switch of user: the profile set aside is kept, not lost to the one replacing it", async () => {
  for (const change of ["reset", "switch"]) {
    const ctx = await h.browser.newContext();
    const page = await h.open("/tests/esm.html", { context: ctx });
    const out = await page.evaluate(async (change) => {
      const ks = await Keystone.init({ autoCapture: false });
      const codes = [];
      ks.on("error", (e) => codes.push(e.code));
      await ks.identify("full@example.com", { o: 1 });
      for (let i = 0; i < 3; i++) ks.track("Old", { pad: "p".repeat(300) });
      ks.persistNow();
      // Fill the origin's storage to its quota, then leave less room than the profile takes.
      let n = 0;
      for (let size = 1 << 20; size >= 16; size >>= 1) {
        try {
          for (;;) localStorage.setItem("fill" + n++, "x".repeat(size));
        } catch (_) {}
      }
      for (let i = n - 1; i >= 0; i--) {
        const v = localStorage.getItem("fill" + i);
        if (v && v.length == 512) {
          localStorage.removeItem("fill" + i);
          break;
        }
      }
      change == "reset" ? ks.reset() : await ks.identify("next@example.com");
      for (let i = 0; i < n; i++) localStorage.removeItem("fill" + i);
      return { codes, aside: (localStorage.getItem("ks_aside") || "").includes("Old") };
    }, change);
    assert.ok(out.codes.includes("storage_unavailable"), JSON.stringify(out));
    assert.equal(out.aside, true, change + ": the set-aside profile is stored");
    // The next page: the person who logged out is gone from the page, and comes back whole.
    const next = await h.open("/tests/esm.html", { context: ctx });
    const back = await next.evaluate(async () => {
      const ks = await Keystone.init({ autoCapture: false });
      const before = ks.userId();
      await ks.identify("full@example.com");
      const p = ks.profile();
      return { before, old: p.events.Old && p.events.Old.count, o: p.traits.o };
    });
    // (After a switch, the next person's own profile may not have fitted: kept in memory only.)
    if (change == "reset") assert.equal(back.before, null);
    else assert.notEqual(back.before, createHash("sha256").update("full@example.com").digest("hex"));
    assert.deepEqual({ old: back.old, o: back.o }, { old: 3, o: 1 });
    await ctx.close();
  }
});

test("damaged set-aside profiles: storage_corrupt at the next login or logout, the readable ones kept", async () => {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    await ks.identify("kept@example.com");
    ks.track("Kept");
    ks.reset();
    const good = JSON.parse(localStorage.getItem("ks_aside"))[0];
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    const seen = [];
    for (const stored of ["42", '[["ab', JSON.stringify([1, good, { v: 2 }])]) {
      localStorage.setItem("ks_aside", stored);
      await ks.identify("other@example.com");
      ks.reset();
      seen.push(codes.splice(0));
    }
    await ks.identify("kept@example.com");
    return { seen, kept: ks.profile().events.Kept && ks.profile().events.Kept.count, codes };
  });
  assert.deepEqual(out.seen, [["storage_corrupt"], ["storage_corrupt"], ["storage_corrupt"]]);
  assert.deepEqual({ kept: out.kept, codes: out.codes }, { kept: 1, codes: [] });
  await ctx.close();
});

test("cookies disabled (document.cookie throws, or ignores writes): no crash, ids still held", async () => {
  for (const mode of ["throw", "noop"]) {
    const page = await openWith((mode) => {
      Object.defineProperty(Document.prototype, "cookie", {
        configurable: true,
        get() {
          if (mode === "throw") throw new DOMException("cookies are disabled", "SecurityError");
          return "";
        },
        set() {
          if (mode === "throw") throw new DOMException("cookies are disabled", "SecurityError");
        },
      });
    });
    await page.evaluate(() => 0);
    const out = await session(page, { cookieDomain: "localhost" });
    assertWorking(out);
    assert.deepEqual(page.problems, [], mode);
    await page.context().close();
  }
});

test("another tab clearing storage mid-session: this tab keeps its profile and writes it back", async () => {
  const ctx = await h.browser.newContext();
  const a = await h.open("/tests/esm.html", { context: ctx });
  const b = await h.open("/tests/esm.html", { context: ctx });
  const first = await a.evaluate(async (DEFS) => {
    const ks = await Keystone.init({ segments: DEFS, autoCapture: false });
    ks.track("Product Viewed");
    ks.persistNow();
    return { id: ks.anonymousId(), keys: Object.keys(localStorage).length };
  }, DEFS);
  assert.ok(first.keys > 0);
  await b.evaluate(() => localStorage.clear());
  await a.waitForTimeout(1200); // longer than the cross-tab reflection delay
  const later = await a.evaluate(async () => {
    const ks = await Keystone.init();
    const r = { id: ks.anonymousId(), viewer: ks.inSegment("viewer") };
    ks.track("Other");
    ks.persistNow();
    r.keys = Object.keys(localStorage).length;
    r.stored = Object.keys(localStorage).some((k) => (localStorage.getItem(k) || "").includes(r.id));
    return r;
  });
  assert.equal(later.id, first.id, "the anonymous id held in memory is kept");
  assert.equal(later.viewer, true, "behaviour held in memory is kept");
  assert.ok(later.keys > 0 && later.stored, "the profile is written back");
  assert.deepEqual(a.problems, []);
  await ctx.close();
});

/** A context whose stored profile holds traits and events (written by a first page). */
async function seeded() {
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const stored = await page.evaluate(async (DEFS) => {
    const ks = await Keystone.init({ segments: DEFS, autoCapture: false });
    ks.setTraits({ name: "Ada" });
    ks.track("Product Viewed");
    ks.persistNow();
    return { id: ks.anonymousId(), text: localStorage.getItem("ks_profile") };
  }, DEFS);
  await page.close();
  assert.ok(stored.text.includes('"Ada"'));
  return { ctx, stored };
}

test("getItem throwing while setItem works: storage_unavailable, and the stored profile it could not read is never overwritten", async () => {
  const { ctx, stored } = await seeded();
  await ctx.addInitScript(() => {
    const get = Storage.prototype.getItem;
    window.__rawGet = (k) => get.call(localStorage, k);
    Storage.prototype.getItem = function (k) {
      if (String(k).startsWith("ks_")) throw new DOMException("denied", "SecurityError");
      return get.call(this, k);
    };
  });
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    await new Promise((r) => setTimeout(r, 0));
    ks.setTraits({ name: "Someone else" });
    ks.track("During");
    ks.persistNow();
    await new Promise((r) => setTimeout(r, 700)); // past the coalesced write
    return { codes, text: window.__rawGet("ks_profile"), traits: ks.profile().traits };
  });
  assert.deepEqual(out.codes, ["storage_unavailable"]);
  assert.equal(out.traits.name, "Someone else", "the page works in memory");
  assert.equal(out.text, stored.text, "the stored profile is untouched (it was overwritten with an empty one)");
  await ctx.close();
});

test("a profile stored by a newer version: the id is kept, the page works in memory, the newer data is left alone", async () => {
  const id = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
  const newer = JSON.stringify({ v: 3, aid: id, uid: "u1", future: { shape: [1, 2, 3] } });
  const ctx = await storedAs(newer);
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = (window.ks = await Keystone.init({ autoCapture: false }));
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    await new Promise((r) => setTimeout(r, 0));
    ks.page();
    ks.track("Product Viewed");
    ks.setTraits({ a: 1 });
    ks.persistNow();
    await new Promise((r) => setTimeout(r, 700));
    return { codes, id: ks.anonymousId(), text: localStorage.getItem("ks_profile"), count: ks.profile().events["Product Viewed"].count };
  });
  assert.deepEqual(out.codes, ["storage_corrupt"]);
  assert.equal(out.id, id);
  assert.equal(out.count, 1);
  assert.equal(out.text, newer, "a newer version's data is never overwritten by this one");
  // forget() erases it; consent granted again: this page's profile is stored from then on.
  const after = await page.evaluate(async () => {
    await ks.forget();
    await ks.setConsent({ analytics: true, personalization: true });
    ks.track("Again");
    ks.persistNow();
    return JSON.parse(localStorage.getItem("ks_profile") || "null");
  });
  assert.equal(after && after.v, 2, "stored again after forget() and new consent");
  assert.equal(after.aid, await page.evaluate(() => ks.anonymousId()));
  await ctx.close();
});

test("a stored profile edited to hold a 3,000,000-character trait: that trait is dropped and reported, the others kept", async () => {
  const id = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
  const ctx = await storedAs(JSON.stringify({ v: 2, aid: id, traits: { plan: "pro", blob: "x".repeat(3_000_000) } }));
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    await new Promise((r) => setTimeout(r, 0));
    ks.track("A");
    ks.persistNow();
    return { codes, id: ks.anonymousId(), traits: ks.profile().traits, stored: localStorage.getItem("ks_profile").length };
  });
  assert.deepEqual(out.codes, ["storage_corrupt"]);
  assert.equal(out.id, id);
  assert.deepEqual(out.traits, { plan: "pro" });
  assert.ok(out.stored < 10_000, `${out.stored} B stored`);
  await ctx.close();
});

test("forget() with removeItem throwing: rejects with storage_unavailable instead of claiming success", async () => {
  const { ctx } = await seeded();
  await ctx.addInitScript(() => {
    Storage.prototype.removeItem = function () {
      throw new DOMException("denied", "SecurityError");
    };
  });
  const page = await h.open("/tests/esm.html", { context: ctx });
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const code = await ks.forget().then(() => "resolved", (e) => e.code);
    return { code, consent: ks.profile() && ks.profile().consent };
  });
  assert.equal(out.code, "storage_unavailable");
  assert.ok(page.warnings.some((w) => w.includes("storage_unavailable")));
  await ctx.close();
});
