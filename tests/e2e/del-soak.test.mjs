// Delivery soak: long random sequences against the real local collector (scripts/collector.mjs)
// in real Chromium, checking the end-to-end promise of DESIGN §8/§10 that the peers break: with
// analytics consent, every tracked event reaches the collector at least once (nothing lost),
// any second copy carries the messageId of the first, and second copies have a documented cause.
//
// A seeded generator drives 1–3 tabs of one browser context: `track()` bursts (one tab, or every
// tab at once) whose properties carry a unique id; `flush()` calls left running; reloads;
// navigations to another page of the origin (the same page under another URL, which starts
// Keystone again, or a page without Keystone), Back and Forward with the back/forward cache on;
// closing tabs and opening new ones (no page loads while offline); hiding a page
// (`visibilitychange` → hidden: headless Chromium never hides a tab by itself), and freezing it
// through CDP (`Page.setWebLifecycleState` frozen, then active) before showing it again; collector
// faults (500/503, 429 with Retry-After, requests held unanswered for up to 3 s, slow answers);
// offline and online (`context.setOffline`). Half the sequences run on Playwright's clock
// (timers, Date and performance.now jump together by up to 5 s: a request held by the collector
// is not jumped past its 6 × requestTimeout deadline, where it is retried, a duplicate if it did
// arrive, as documented), and half of those without Web Locks (the storage lease and heartbeats;
// the end jumps the clock past the 3 min after which a closed tab's heartbeat is stale). At the
// end: the collector healthy, online, one tab left, reloaded (it takes over what the others left
// stored), flushed until the collector holds every id. sent / delivered / duplicates printed.
//
// What "nothing lost" excludes (README "Delivery to a collector"), and how this test keeps to it:
// - a tab killed within 250 ms of an event, before its queue is stored: never generated (closing
//   a tab, reloading and navigating run `pagehide`, which stores the queue and sends it);
// - storage full, no `personalization` consent (queue in memory only), the queue's bounds
//   (1,000 events, 512 KB): never generated (default consent, < 600 small events a sequence);
// - a batch in flight when its page is gone counts as sent: if the collector then fails it, no
//   page is left to retry it; and a beacon the collector answers with an error is lost (its
//   answer is never seen). Accounted for: an id missing at the end whose every copy failed, one
//   of them in a beacon (text/plain) or in a request during which the tab that sent it was left
//   (which tab sent what: Playwright's `request` events), is "lost as documented", counted and
//   printed, not failed. Any other missing id fails the test. Hangs end within 3 s (the browser
//   does not keep a keepalive request of a page gone forever).
// A second copy is "documented" when a copy went in a request during which the tab that sent it
// was left (while the collector fails, a retry in flight when the page is left stays stored, and
// the next page sends it again); any other second copy fails the test, as does one with another
// messageId than the first.
//
// Seeds: a fixed list by default; KEYSTONE_SOAK_SEED="7" or "1-200" or "3,9" runs others,
// KEYSTONE_SOAK_STEPS the steps per sequence. A failure prints the seed and the last steps, the
// requests and the pages left; KEYSTONE_SOAK_DEBUG=1 prints them for every sequence, with each
// page's fetch and sendBeacon calls and the back/forward cache's reasons not to restore a page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../../scripts/serve.mjs";
import { launchWithBfcache, seeds, prng } from "./harness.mjs";

// The back/forward cache on (Playwright turns it off): Back and Forward restore pages from it.
let h;
const rows = [];
before(async () => {
  // Pages served without no-store (which alone keeps a page out of the back/forward cache), by the
  // server itself: no route in the context. A route turns on Playwright's request interception for
  // every request, and that held some keepalive requests of a page being left (reloaded, navigated
  // away from, put in the cache) unsent for good: events "lost" by the driver, not by Chromium.
  const server = await startServer({ cacheablePages: true });
  const browser = await launchWithBfcache();
  h = { server, browser, url: (p) => server.url + p, close: async () => (await browser.close(), await server.close()) };
  tap(server.collector);
});
after(async () => {
  const t = {};
  for (const r of rows) for (const k in r) t[k] = (t[k] || 0) + r[k];
  console.log(`delivery soak: ${rows.length} sequence(s): sent ${t.sent}, delivered ${t.delivered}, duplicates ${t.dup}, lost as documented ${t.doc}`);
  if (h) await h.close();
});

const SEEDS = seeds("KEYSTONE_SOAK_SEED", [1, 7, 9]);
const STEPS = Number(process.env.KEYSTONE_SOAK_STEPS || 40);


const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KEY = "demo-key";
// Small timings, so that a sequence sees many batches, retries and hand-offs in seconds.
const OPTS = { endpoint: "/v1/batch", writeKey: KEY, autoCapture: false, flushInterval: 150, retryBase: 100, retryMax: 1000, requestTimeout: 3000 };

/** Every request the collector sees, failed ones included (the collector keeps the events of
 * accepted ones only): when it started and ended, its content type, the soak ids it carried and
 * how it ended (an HTTP status, or "dropped": the client went away unanswered). */
const seen = [];
function tap(c) {
  const handle = c.handle.bind(c);
  c.handle = (req, res, url) => {
    if (url.pathname === "/v1/batch" && req.method === "POST") {
      const rec = { t0: Date.now(), t1: 0, type: req.headers["content-type"] || "", ids: [], end: null };
      const chunks = [];
      req.on("data", (d) => chunks.push(d));
      req.on("end", () => {
        try {
          rec.ids = JSON.parse(Buffer.concat(chunks).toString()).batch.filter((e) => e.properties && e.properties.u).map((e) => e.properties.u);
        } catch (_) {}
      });
      res.on("close", () => {
        rec.t1 = Date.now();
        rec.end = res.writableEnded ? res.statusCode : "dropped";
      });
      seen.push(rec);
    }
    return handle(req, res, url);
  };
}

async function runSequence(seed, steps) {
  const r = prng(seed);
  const collector = h.server.collector;
  collector.reset();
  seen.length = 0;
  const context = await h.browser.newContext();
  await context.addInitScript(() => addEventListener("pageshow", (e) => e.persisted && (window.__restored = (window.__restored || 0) + 1)));
  if (process.env.KEYSTONE_SOAK_DEBUG)
    await context.addInitScript(() => {
      const f = window.fetch;
      const b = navigator.sendBeacon;
      const n = (body) => (String(body).match(/"u":/g) || []).length;
      window.fetch = function (u, o) {
        if (!String(u).includes("/v1/batch")) return f.apply(this, arguments);
        const t = performance.now();
        console.log(`fetch ${n(o.body)} events, online ${navigator.onLine}`);
        return f.apply(this, arguments).then(
          (r) => (console.log(`fetch answered ${r.status} after ${Math.round(performance.now() - t)} ms`), r),
          (e) => (console.log(`fetch failed after ${Math.round(performance.now() - t)} ms: ${e}`), Promise.reject(e)),
        );
      };
      navigator.sendBeacon = function (u, body) {
        const ok = b.call(navigator, u, body);
        console.log(`beacon ${n(body)} events: ${ok}`);
        return ok;
      };
    });
  const clock = r.chance(0.5);
  if (clock) await context.clock.install();
  // Half of those without Web Locks: one sender at a time by a lease in storage, a closed tab's
  // queue taken over once its heartbeat is 3 min old (the clock jumps past it at the end).
  const noLocks = clock && r.chance(0.5);
  if (noLocks) await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
  const trace = [];
  const T0 = Date.now();
  const leaves = []; // when a tab's page was left (reload, navigation, close): {tab, a, b}
  /** Runs `go`, which leaves tab `t`'s page, noting when. */
  const leave = async (t, go) => {
    const l = { tab: t.n, a: Date.now(), b: 0 };
    leaves.push(l);
    await go();
    l.b = Date.now();
  };
  // Which tab sent each batch (the browser's view: beacons and requests of pages gone included),
  // by the soak ids it carried.
  const senders = new Map();
  context.on("request", (q) => {
    if (!q.url().includes("/v1/batch") || q.method() !== "POST") return;
    try {
      const key = JSON.parse(q.postData()).batch.filter((e) => e.properties && e.properties.u).map((e) => e.properties.u).join(" ");
      const t = tabs.find((x) => x.page === q.frame().page()) || { n: -1 };
      senders.set(key, (senders.get(key) || new Set()).add(t.n));
    } catch (_) {}
  });
  const ids = new Map(); // soak id → the step that tracked it
  let next = 0;
  let offline = false;
  let hang = false;
  const tabs = [];
  const opts = { ...OPTS, flushAt: 2 + r.int(9) };
  const stamp = (x) => trace.push(`+${Date.now() - T0} ${x}`);
  const fail = (msg) => {
    throw new assert.AssertionError({ message: `seed ${seed} (KEYSTONE_SOAK_SEED=${seed} KEYSTONE_SOAK_STEPS=${steps}${clock ? ", clock installed" : ""}${noLocks ? ", no Web Locks" : ""}): ${msg}\nlast steps:\n  ${trace.slice(-30).join("\n  ")}` });
  };

  /** Starts Keystone on a tab's page (after each load of the Keystone page). */
  const boot = async (t) => {
    await t.page.waitForFunction(() => document.readyState === "complete");
    t.ks = t.page.url().includes("/tests/esm.html");
    t.hidden = false;
    if (!t.ks) return;
    await t.page.waitForFunction(() => window.__ksLoaded === true);
    await t.page.evaluate(async (o) => {
      if (window.ks) return; // restored from the back/forward cache: running already
      window.ks = await Keystone.init(o);
      window.errs = [];
      ks.on("error", (e) => errs.push(e.code));
    }, opts);
  };
  const open = async () => {
    const page = await context.newPage();
    page.problems = [];
    page.on("pageerror", (e) => page.problems.push(e.message));
    page.on("console", (m) => process.env.KEYSTONE_SOAK_DEBUG && stamp(`console ${m.type()}: ${m.text()}`));
    if (process.env.KEYSTONE_SOAK_DEBUG) {
      const cdp = await context.newCDPSession(page);
      await cdp.send("Page.enable");
      cdp.on("Page.backForwardCacheNotUsed", (e) => stamp(`  (not restored from the back/forward cache: ${e.notRestoredExplanations.map((x) => x.reason).join(", ")})`));
    }
    const t = { page, n: tabs.length ? Math.max(...tabs.map((x) => x.n)) + 1 : 0 };
    tabs.push(t);
    await page.goto(h.url("/tests/esm.html?tab=" + t.n));
    await boot(t);
    return t;
  };
  const track = (t, n) => {
    const us = [];
    for (let i = 0; i < n; i++) {
      const u = `s${seed}.${next++}`;
      ids.set(u, trace.length);
      us.push(u);
    }
    return t.page.evaluate((us) => {
      for (const u of us) ks.track("Soak", { u });
    }, us);
  };
  const live = () => tabs.filter((t) => t.ks);

  await open();
  try {
    for (let s = 0; s < steps; s++) {
      const t = r.pick(tabs);
      const k = r.int(100);
      let what;
      if (k < 30) {
        if (!t.ks) continue;
        const n = 1 + r.int(8);
        what = `tab ${t.n}: track ${n} from s${seed}.${next}`;
        stamp(what);
        await track(t, n);
      } else if (k < 36) {
        what = `every tab: track 3 from s${seed}.${next}`;
        stamp(what);
        await Promise.all(live().map((x) => track(x, 3)));
      } else if (k < 42) {
        if (!t.ks) continue;
        stamp((what = `tab ${t.n}: flush()`));
        await t.page.evaluate(() => void ks.flush().catch(() => {}));
      } else if (k < 50) {
        if (offline) continue; // no page loads offline
        stamp((what = `tab ${t.n}: reload`));
        await leave(t, () => t.page.reload());
        await boot(t);
      } else if (k < 57) {
        if (offline) continue;
        const to = r.pick(["/tests/esm.html?nav=" + s, "/tests/esm.html?nav=" + s, "/tests/blank.html", "back", "back", "forward"]);
        stamp((what = `tab ${t.n}: navigate ${to}`));
        // (A page restored from the cache fires no `load`: waited for below, by `boot`.)
        await leave(t, () => (to === "back" ? t.page.goBack({ waitUntil: "commit" }) : to === "forward" ? t.page.goForward({ waitUntil: "commit" }) : t.page.goto(h.url(to))));
        await boot(t);
        if (t.ks && (await t.page.evaluate(() => window.__restored))) stamp(`  (tab ${t.n}: restored from the back/forward cache)`);
      } else if (k < 62) {
        if (tabs.length < 2) continue;
        stamp((what = `tab ${t.n}: close`));
        await leave(t, () => t.page.close());
        tabs.splice(tabs.indexOf(t), 1);
      } else if (k < 67) {
        if (tabs.length > 2 || offline) continue;
        stamp((what = `open a tab`));
        await open();
      } else if (k < 74) {
        if (!t.ks) continue;
        const freeze = r.chance(0.5);
        stamp((what = `tab ${t.n}: ${t.hidden ? "show" : freeze ? "hide, freeze 300 ms, resume" : "hide"}`));
        await t.page.evaluate((v) => {
          Object.defineProperty(document, "visibilityState", { value: v, configurable: true });
          Object.defineProperty(document, "hidden", { value: v === "hidden", configurable: true });
          document.dispatchEvent(new Event("visibilitychange"));
        }, t.hidden ? "visible" : "hidden");
        t.hidden = !t.hidden;
        if (t.hidden && freeze) {
          // One CDP session per tab, kept while the tab lives: detaching one turns the page's
          // `navigator.onLine` back to true while the context is still offline (the network
          // stays cut), and Keystone would send what waits by beacon into the void.
          const cdp = (t.cdp ||= await context.newCDPSession(t.page));
          await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
          await sleep(300);
          await cdp.send("Page.setWebLifecycleState", { state: "active" });
        }
      } else if (k < 84) {
        const f = r.pick([
          { status: 500, count: 1 + r.int(3) },
          { status: 503, count: 1 + r.int(3) },
          { status: 429, retryAfter: 1, count: 1 + r.int(2) },
          { hang: true },
          { delay: 200 + r.int(1200) },
          { delay: 0 },
        ]);
        if (f.hang && hang) continue;
        stamp((what = `collector faults ${JSON.stringify(f)}`));
        collector.setFaults(f);
        if (f.hang) {
          hang = true;
          const ms = 500 + r.int(2500);
          setTimeout(() => {
            stamp(`(collector: hang off after ${ms} ms)`);
            collector.setFaults({ hang: false });
            hang = false;
          }, ms);
        }
      } else if (k < 92) {
        offline = !offline;
        stamp((what = offline ? "offline" : "online"));
        await context.setOffline(offline);
      } else if (k < 95 && clock) {
        const ms = r.pick([1000, 2500, 5000]);
        stamp((what = `clock +${ms} ms`));
        await context.clock.fastForward(ms);
      } else {
        const ms = 50 + r.int(700);
        stamp((what = `wait ${ms} ms`));
        await sleep(ms);
      }
      await sleep(r.int(120));
    }

    // The end: a healthy collector, online, every page shown, one tab left, reloaded.
    stamp("end: healthy collector, online, one tab, reloaded");
    collector.setFaults({ status: 0, count: 0, hang: false, delay: 0 });
    await context.setOffline(false);
    while (tabs.length > 1) {
      const t = tabs[tabs.length - 1];
      await leave(t, () => t.page.close());
      tabs.pop();
    }
    const last = tabs[0];
    await leave(last, () => (last.ks ? last.page.reload() : last.page.goto(h.url("/tests/esm.html?end"))));
    await boot(last);
    const missing = () => {
      const got = new Set(collector.events.map((e) => e.properties && e.properties.u));
      return [...ids.keys()].filter((u) => !got.has(u));
    };
    // A request during which the page that sent it was left (reload, navigation, close): the
    // tab that sent it (any tab, when the browser's view of it was missed) was left meanwhile.
    const leaving = (q) => {
      const by = senders.get(q.ids.join(" "));
      return leaves.some((l) => (!by || by.has(l.tab) || by.has(-1)) && l.a <= (q.t1 || Date.now()) + 50 && l.b >= q.t0 - 50);
    };
    const ok = (q) => q.end >= 200 && q.end < 300;
    // Lost as documented: every copy failed, and one went in a beacon, or in a request during
    // which the page that sent it was left (that page counted it sent; none was left to retry
    // it). Copies that failed while their page lived were retried: by that last copy.
    const excused = (u) => {
      const carried = seen.filter((q) => q.ids.includes(u));
      return carried.every((q) => q.end !== null && !ok(q)) && carried.some((q) => q.type.startsWith("text/plain") || leaving(q));
    };
    if (noLocks) {
      // The queues of the tabs closed: taken over once their heartbeat is stale (3 min). The
      // jump is made with nothing in flight (a request jumped past its deadline is sent again).
      for (let i = 0; i < 50 && !(await last.page.evaluate(() => ks.flush().then(() => 1, () => 0))); i++) await sleep(100);
      await sleep(300);
      stamp("clock +190 s (heartbeats of the tabs gone are stale)");
      await context.clock.fastForward(190000);
    }
    const t0 = Date.now();
    while (Date.now() - t0 < 20000 && !(missing().every(excused) && seen.every((q) => q.end !== null))) {
      await last.page.evaluate(() => ks.flush().catch(() => {}));
      await sleep(200);
    }
    await sleep(300); // copies still on their way (keepalive requests of pages gone)

    // Every id at least once, each copy with the messageId of its first. A second copy is
    // documented when a copy went in a request during which a page was left: a retry in flight
    // while the collector fails stays stored and the next page sends it again.
    const first = new Map();
    const foreign = [];
    const dupIds = new Set();
    let dup = 0;
    for (const e of collector.events) {
      const u = e.properties && e.properties.u;
      if (!u) continue;
      if (!first.has(u)) first.set(u, e.messageId);
      else {
        dup++;
        dupIds.add(u);
        if (first.get(u) !== e.messageId) foreign.push(u);
      }
    }
    const odd = [...dupIds].filter((u) => !seen.some((q) => q.ids.includes(u) && leaving(q)));
    const lost = missing();
    const documented = lost.filter(excused);
    const bad = lost.filter((u) => !documented.includes(u));
    if (process.env.KEYSTONE_SOAK_DEBUG || bad.length || odd.length || foreign.length) {
      console.log(`--- seed ${seed}\n` + trace.join("\n"));
      for (const q of seen) console.log(`req +${q.t0 - T0}..+${q.t1 - T0} ${q.type.slice(0, 10)} ${q.end} from tab ${[...(senders.get(q.ids.join(" ")) || [])]} [${q.ids.join(" ")}]`);
      console.log("lost:", lost.join(" "), "\ndocumented:", documented.join(" "), "\nduplicated:", [...dupIds].join(" "), "\nnot at a page left:", odd.join(" "));
      console.log("leaves:", leaves.map((l) => `tab ${l.tab} +${l.a - T0}..+${l.b - T0}`).join(", "));
    }
    const stored = await last.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ks_q.") && localStorage.getItem(k)));
    const row = { sent: ids.size, delivered: first.size, dup, doc: documented.length };
    rows.push(row);
    console.log(`seed ${seed}: sent ${row.sent}, delivered ${row.delivered}, duplicates ${dup} (${odd.length} not at a page left), lost as documented ${documented.length}, requests ${seen.length}${clock ? " (clock)" : ""}${noLocks ? " (no Web Locks)" : ""}`);
    if (foreign.length) fail(`${foreign.length} duplicate(s) with another messageId than the first copy: ${foreign.slice(0, 5)}`);
    if (bad.length) {
      const where = bad.slice(0, 5).map((u) => `${u} (tracked at step ${ids.get(u)}; requests: ${JSON.stringify(seen.filter((q) => q.ids.includes(u)).map((q) => ({ end: q.end, type: q.type.slice(0, 10), ms: q.t1 - q.t0 })))})`);
      fail(`${bad.length} of ${ids.size} tracked events never reached the collector: ${where.join(", ")}; queues still stored: ${stored.length}`);
    }
    if (odd.length) fail(`${odd.length} id(s) delivered twice, no copy in flight while the tab that sent it was left: ${odd.slice(0, 8)}`);
    for (const t of tabs) assert.deepEqual(t.page.problems, [], `seed ${seed}: page errors`);
  } finally {
    collector.setFaults({ status: 0, count: 0, hang: false, delay: 0 });
    await context.close();
  }
}

for (const seed of SEEDS)
  test(`delivery soak: seed ${seed}, ${STEPS} random steps (tabs, reloads, navigations, hides, faults, offline): every event delivered, duplicates keep their messageId`, async () => {
    await runSequence(seed, STEPS);
  });
