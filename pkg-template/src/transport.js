// Delivery (DESIGN §8): sends the engine's events to the collector as Segment-spec batches,
// `POST {endpoint}` `{"batch": [...], "sentAt": ISO}` with `Authorization: Basic
// base64(writeKey + ":")` (none without a write key). The engine hands over each event it made and whether `analytics`
// consent holds; the queue (queue.js) decides what is due and what a batch holds; this module
// stores the queue, holds the cross-tab locks, talks HTTP and reports each outcome back.
//
// Tabs: each page keeps its own queue under `<prefix>q.<tab>` — only that page writes it, so no
// two tabs ever read-modify-write one key — and holds the Web Lock `<prefix>tab.<tab>` while it
// lives (a heartbeat key where Web Locks are missing). Sending is serialized across tabs by the
// Web Lock `<prefix>flush` (a lease in storage otherwise). Its holder also adopts the queues of
// pages that are gone (tab lock released / heartbeat stale), taking over their tab lock: it
// stores them in its own queue first, then removes theirs — so an event can at worst be sent
// twice, never lost. A queue is taken in once; while this page cannot store its own, theirs stay
// stored (and go to another tab if this one goes first).
//
// Requests are `keepalive` (they outlive the page). On `visibilitychange` → hidden and
// `pagehide`, the batch in flight counts as accepted for sending, and every waiting event leaves
// by `sendBeacon` as text/plain (no CORS preflight; the write key rides in the body), in batches
// of at most 64 KB; an event counts as sent once its beacon was accepted. What the browser's
// beacon quota refuses stays stored for the next page. Without a working `sendBeacon`, a
// keepalive fetch carries the same text/plain body, within the browser's 64 KB for keepalive
// requests in flight (this page's are counted: what does not fit stays stored the same way).
import { createQueue, HANDED_OFF, NOT_SENT, size, num } from "./queue.js";
import { locked, micro, stringify, sleep, stored, store, Prom } from "./sync.js";

const fail = (code, message) => ({ code, message });
const safe = (fn) => {
  try {
    fn();
  } catch (_) {}
};
const now = () => Date.now();
// The queue's timings (when a batch is due, the retry backoff) run on the page's monotonic
// clock: on the wall clock, a device clock set back (a correction) would hold every event back
// by as much (an hour back: no batch for an hour). Times shared with other tabs stay on it.
const mono = () => performance.now();

/** Checks the delivery options (throws an invalid_argument error object). */
export function checkDelivery(o) {
  let u;
  try {
    // Resolved as `fetch` resolves it: against the document's base URL (a `<base href>`).
    u = new URL(o.endpoint, document.baseURI);
  } catch (_) {}
  // An http(s) URL without credentials (`user:password@`): `fetch` and `sendBeacon` refuse one
  // holding them, so every batch would fail.
  if ((o.endpoint != null && (typeof o.endpoint != "string" || !/^https?:$/.test(u?.protocol) || u.username || u.password)) || (o.writeKey != null && typeof o.writeKey != "string")) {
    throw fail("invalid_argument", "endpoint must be an http(s) URL and writeKey a string");
  }
}

/**
 * Starts delivery. `report(code, message)` raises an "error" event; `check()`, before anything
 * is sent, lets the instance apply a forget() made in another tab that it has not heard of yet
 * (its events are then erased, not sent). Returns `{take, flush}`:
 * `take(notes)` after every call (the engine's drained notices carry `q`, the events made, and
 * `a`, whether `analytics` consent holds), `flush()` for `ks.flush()`.
 */
export function transport(o, report, check) {
  const q = createQueue(o, report);
  const url = new URL(o.endpoint, document.baseURI).href;
  const P = o.storagePrefix || "ks_";
  const wk = o.writeKey || "";
  // Without a write key, no Authorization header (as Segment's and RudderStack's SDKs): a
  // self-hosted collector that takes none need not allow the header in its CORS preflight.
  const headers = { "content-type": "application/json", ...(wk && { authorization: "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(wk + ":"))) }) };
  // The key also in the body, for the beacon (which carries no header), as Segment's SDK does;
  // without one, the body is DESIGN §8's `{"batch", "sentAt"}`.
  const tail = '"' + (wk && ',"writeKey":' + stringify(wk)) + "}";
  const tab = Math.random().toString(36).slice(2);
  const QK = P + "q.";
  const HB = P + "hb.";
  const own = QK + tab;
  const locks = navigator.locks;
  const timeout = num(o.requestTimeout, 1e4);
  let ls;
  let timer = 0;
  let timerAt = 0;
  let ptimer = 0;
  let inflight = null;
  let kb = 0; // bytes of this page's keepalive requests in flight
  let chain = Prom.resolve();
  let busy = 0;
  const progress = new Set(); // the timeouts of flush() calls waiting, re-armed by each answer
  let gone = false; // after pagehide: no new request (it could not leave a detached page)
  // Analytics consent: unknown (null) until the instance's first take(), which starts the page;
  // until then no other page's stored queue is adopted or sent.
  let granted = null;
  let keep = true; // personalization consent: without it nothing is persisted, the queue included
  let renew = () => {};
  let refused = false; // the last queue write failed
  let warned = false; // a failing spell was reported (it ends when a write, not a removal, succeeds)
  let late = 0; // a beacon is due for events made while the page is being left
  let pm = 0; // a write of the queue is due (events made while hidden)
  const taken = {}; // the stored queues adopted, until removed
  const held = {}; // the tab locks of pages gone that this page holds, by tab
  // Back from the back/forward cache, a page's view of storage lags: the changes the other pages
  // made meanwhile reach it one by one, each with its `storage` event, in the moments after
  // `pageshow` — a queue another page stored, then removed once its beacon went, shows as still
  // stored. No queue is watched or adopted in the second after `pageshow`, while they arrive:
  // any Web Lock request for the tab lock of a page now in the cache (the page just left) evicts
  // it from the cache, and adopting a queue already sent would send it twice.
  // (On the page's own monotonic clock: a wall clock set back would prolong the pause.)
  const SETTLE = 1e3;
  let thaw = -SETTLE; // when the page was last restored from the cache
  const thawing = () => performance.now() - thaw < SETTLE;
  try {
    ls = localStorage;
  } catch (_) {}

  const keys = () => {
    const out = [];
    try {
      for (let i = 0; i < ls.length; i++) if (ls.key(i).startsWith(QK)) out.push(ls.key(i));
    } catch (_) {}
    return out;
  };
  // The batch and each event in it carry the same `sentAt` (claimed just before).
  const body = (b) => '{"batch":[' + b[1] + '],"sentAt":"' + b.at + tail;
  const claim = () => {
    const at = new Date().toISOString();
    const b = q.claim(at);
    if (b) b.at = at;
    return b;
  };

  /** Stores this page's queue if it changed. */
  const persist = () => {
    clearTimeout(ptimer);
    ptimer = 0;
    const t = q.text();
    if (t !== undefined && keep) {
      // Without Web Locks, a heartbeat tells other pages this one lives, while its queue is
      // stored (written first: its queue is never seen without a fresh one).
      if (!locks) store(HB + tab, t && "" + now());
      const ok = store(own, t);
      if (!ok && !warned) report("storage_unavailable", "storage refused the delivery queue; it is kept in memory");
      warned = ok ? warned && !t : 1;
      refused = !ok;
    }
    // Queues adopted from pages gone are removed once this page's (with what is left of them)
    // is stored; until then they stay, in case this page goes before sending them.
    if (!keep || !refused) for (const k in taken) store(k) && store(HB + k.slice(QK.length)) && delete taken[k];
  };

  async function withLock(fn) {
    if (locks) return locked(locks, P + "flush", fn);
    // No Web Locks: a lease in storage, confirmed after a pause (another tab may have written
    // at the same moment), renewed before each request. Storage that refuses to write it or
    // read it back: without it, as where Web Locks are refused. A lease ending later than any
    // tab sets one (written before the clock was set back, or damaged) is taken as ended.
    const LK = P + "lease";
    const mine = () => stored(LK).startsWith(tab + " ");
    renew = () => store(LK, tab + " " + (now() + timeout + 5e3));
    for (;;) {
      const left = stored(LK).split(" ")[1] - now();
      if (mine() || !(left > 0 && left < timeout + 6e4)) {
        if (!renew() || !mine()) return fn();
        await sleep(50);
        if (mine()) {
          try {
            return await fn();
          } finally {
            if (mine()) store(LK);
          }
        }
      }
      await sleep(100 + Math.random() * 200);
    }
  }

  /** Takes the tab lock of page `id` if it is free and holds it while this page lives (at once
   * when this page holds it already: its watch below was granted). The watch may be granted while
   * this request is on its way, which then finds the lock held (by this page): it must not undo
   * the watch's mark, or the queue would never be taken over. */
  const hold = (id) => held[id] || new Prom((r) => locks.request(P + "tab." + id, { ifAvailable: true }, (l) => (r((held[id] = held[id] || l)), l && new Prom(() => {}))).catch(() => r()));

  /** Adopts the stored queues of pages that are gone (under the flush lock). A page gone is
   * known by its tab lock being free; the adopter then holds that lock while it lives: no other
   * tab takes the queue over again (its view of storage may not show the removal yet), and if
   * the adopter goes before the queue is sent, another tab does. */
  async function adopt() {
    const theirs = keys().filter((k) => k != own);
    if (!theirs[0] || !granted) return;
    if (thawing()) return void setTimeout(background, SETTLE);
    for (const k of theirs) {
      const id = k.slice(QK.length);
      if (taken[k] || (locks ? !(await hold(id)) : now() - stored(HB + id) < 18e4)) continue;
      q.adopt(stored(k));
      taken[k] = 1; // once per page: kept while ours cannot be stored, it is not taken in again
    }
    persist();
  }

  // A request is not aborted and re-sent at `requestTimeout`: once sent, an abort would not
  // take it back from a slow collector, and the retry would deliver the batch twice. The batch
  // stays owned until the collector answers or the network fails (`flush()` alone stops waiting
  // at the timeout), up to a deadline of 6 × `requestTimeout` (60 s by default): a request that
  // never ends (a dropped connection) must not stop delivery in every tab for good.
  async function post(b) {
    inflight = b;
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 6 * timeout);
    try {
      const r = await keepalivePost(body(b), {
        headers,
        credentials: "omit",
        signal: ac.signal,
      });
      // Retry-After: seconds or an HTTP date.
      const ra = r.headers.get("retry-after");
      return [r.status, ra ? (+ra >= 0 ? ra * 1e3 : Date.parse(ra) - now()) || 0 : 0];
    } catch (_) {
      return [0, 0];
    } finally {
      clearTimeout(t);
      inflight = null;
    }
  }

  /** A keepalive POST of `text` to the collector, resolving with its response read to the end:
   * an unread keepalive response keeps counting against the 64 KB the browser allows a page's
   * keepalive requests in flight, and the next batch would be refused. Throws at once when
   * `text` would not fit in what this page's requests in flight leave of them. */
  const keepalivePost = (text, o) => {
    const n = size(text);
    if (kb + n > 65536) throw 0;
    const r = fetch(url, { ...o, method: "POST", body: text, keepalive: true });
    kb += n;
    return r.then(async (r) => (await r.text().catch(() => {}), r)).finally(() => (kb -= n));
  };

  /** One delivery run under the flush lock. mode 0: what is due; 1: all; 2: all, for flush(). */
  async function send(mode) {
    check(); // (a forget() in another tab, not heard yet: nothing is sent)
    await adopt();
    let b;
    while (!gone && (mode || !q.due(mono())) && (b = claim())) {
      persist(); // the queue is stored before any send is attempted
      renew();
      const [status, ra] = await post(b);
      if (status > 199 && status < 300) progress.forEach((f) => f());
      // Handed off at hide: when the page goes, the browser rejects the fetch here while the
      // keepalive request itself carries on — that is no failure to act on. A page that is
      // still there (hidden, then shown again) takes a failed batch back.
      if (b.h && !status && gone) return;
      if (q.settle(b[0], status, ra, mono(), Math.random())) continue; // split after a 413: at once
      if (status < 200 || status > 299) {
        persist(); // a batch handed off at hide is back: stored again at once
        if (mode > 1) throw fail(status > 399 && status < 500 && status != 429 && status != 408 ? "delivery_rejected" : "delivery_failed", "collector answered " + status);
        return;
      }
    }
    persist();
  }

  function cycle(mode) {
    busy++;
    const run = chain.then(() => withLock(() => send(mode)));
    chain = run.catch(() => {}).then(() => {
      busy--;
      safe(schedule); // (a page that broke its timers: no unhandled rejection, no broken chain)
    });
    return run;
  }
  const background = (mode) => cycle(mode).catch(() => {});

  function schedule() {
    if (busy) return;
    const d = q.due(mono());
    if (d < 0 || !navigator.onLine) return clearTimeout(timer), (timer = 0);
    if (timer && timerAt <= mono() + d) return;
    clearTimeout(timer);
    timerAt = mono() + d;
    timer = setTimeout(() => {
      timer = 0;
      background(0);
    }, d);
  }

  /** The page is hidden or going away: everything waiting leaves by beacon now. Not offline,
   * nor while the collector is failing (a retry waits) if the queue is stored: a beacon's answer
   * is never seen, so its events would be lost; they stay stored, for the retry, the `online`
   * event or the next page. (Not stored — no personalization consent, storage refused — the
   * beacon is their only chance.) */
  const hide = () =>
    safe(() => {
      check();
      late = 0;
      const stay = q.failing() && keep && !refused;
      // The request in flight is keepalive: it outlives the page, so it counts as accepted for
      // sending (its events leave the stored queue; they come back if it fails meanwhile). Not
      // while the collector is failing: it may fail too, with no page left to see it, so its
      // events stay stored (at worst sent twice, with their messageIds; never lost).
      if (inflight && !inflight.h && !stay) q.settle(inflight[0], HANDED_OFF, (inflight.h = 1));
      let b;
      let ok = !stay;
      while (ok && navigator.onLine !== false && (b = claim())) {
        ok = 0;
        const t = body(b);
        try {
          ok = navigator.sendBeacon(url, t);
        } catch (_) {
          // No sendBeacon (a browser or an extension without it) or one that throws: a keepalive
          // fetch, same text/plain body, if it fits in the browser's 64 KB for keepalive requests
          // in flight (beyond it the request would fail once the page is gone, its events lost):
          // what does not fit stays stored, as what the beacon quota refuses.
          try {
            keepalivePost(t).catch(() => {});
            ok = 1;
          } catch (_) {}
        }
        q.settle(b[0], ok ? 200 : NOT_SENT); // refused (over the quota): stays for the next page
      }
      persist();
    });

  if (locks) locks.request(P + "tab." + tab, () => new Prom(() => {})).catch(() => {});
  else {
    setInterval(() => stored(own) && store(HB + tab, "" + now()), 3e4);
  }

  // Another page's stored queue is adopted as soon as that page is gone, not only at this
  // page's next send: a waiting request for its tab lock is granted when it goes (or, without
  // Web Locks, a timer fires when its heartbeat turns stale). Its queue may still be stored
  // while the page unloads, or appear later (a tab that opened after this one). The lock granted
  // is kept, as `hold` keeps it: released at once, it would still be held, for a moment, when a
  // `flush()` made meanwhile asks for it, and that flush would leave the queue behind.
  const watched = {};
  const watch = (k) => {
    const id = k.slice(QK.length);
    if (k == own || watched[id]) return;
    if (thawing()) return void setTimeout(() => safe(() => stored(k) && watch(k)), SETTLE);
    watched[id] = 1;
    const go = () => {
      delete watched[id];
      setTimeout(background);
    };
    if (locks) locks.request(P + "tab." + id, () => ((held[id] = 1), setTimeout(background), new Prom(() => {}))).catch(() => {});
    else {
      const check = () => {
        const left = +stored(HB + id) + 18e4 - now();
        if (!stored(k)) delete watched[id];
        else if (left >= 0) setTimeout(check, left + 1e3);
        else go();
      };
      check();
    }
  };
  keys().forEach(watch);
  addEventListener("storage", (e) => e.key?.startsWith(QK) && e.newValue && safe(() => watch(e.key)));
  addEventListener("pagehide", () => {
    gone = true;
    hide();
  });
  addEventListener("pageshow", (e) => {
    gone = false;
    if (e.persisted) thaw = performance.now();
  });
  document.addEventListener("visibilitychange", () => document.visibilityState == "hidden" && hide());
  addEventListener("online", () => {
    q.retryNow();
    background(1);
  });

  return {
    take: (notes) =>
      safe(() => {
        if (!notes.q) return;
        if (!notes.a) {
          // No analytics consent: nothing is queued, and what was queued is erased, here and
          // in every stored queue of this origin.
          if (granted !== false) for (const k of keys()) store(k);
          granted = false;
          return q.clear();
        }
        // Consent known (or granted again): the stored queues of pages gone meanwhile now go.
        if (granted !== true && keys().some((k) => k != own)) setTimeout(background);
        granted = true;
        // Without personalization the queue lives in memory only (its stored form is erased).
        if (keep != (keep = notes.p !== false) && !keep) store(own);
        for (const e of notes.q) q.push(e, mono()); // (JSON text)
        if (notes.q[0]) {
          // Made while the page is being left (in the site's own `pagehide` or `visibilitychange`
          // listener, which may run after Keystone's): they leave by beacon as well, once the
          // listener has returned (no timer would run in a page being left). A page that is only
          // hidden goes on with the normal schedule (batched, retried).
          if (gone && !late) (late = 1), micro(hide);
          // Hidden, a page may be frozen or killed before a timer runs (mobile): stored at once
          // (once per task: a burst of events is one write).
          if (document.visibilityState == "hidden") pm || ((pm = 1), micro(() => ((pm = 0), safe(persist))));
          else if (!ptimer) ptimer = setTimeout(() => safe(persist), 250);
        }
        schedule();
      }),
    flush: () =>
      new Prom((ok, no) => {
        // Stops waiting (not sending) when a request gets no answer within the timeout: the batch
        // stays in flight, owned. (Per request: a backlog of many batches may take longer.)
        let t;
        const arm = () => (clearTimeout(t), (t = setTimeout(() => no(fail("delivery_failed", "no answer from the collector within " + timeout + " ms")), timeout)));
        arm();
        progress.add(arm);
        cycle(2).then(ok, no).finally(() => (clearTimeout(t), progress.delete(arm)));
      }),
  };
}
