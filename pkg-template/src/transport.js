// Delivery (DESIGN §8): sends the engine's queued events to the collector as Segment-spec
// batches. The engine (src/core/queue.rs) keeps the queue and decides what is due and what a
// batch holds; this module stores the queue, holds the cross-tab locks, talks HTTP and reports
// each outcome back.
//
// Tabs: each page keeps its own queue under `<prefix>q.<tab>` — only that page writes it, so no
// two tabs ever read-modify-write one key — and holds the Web Lock `<prefix>tab.<tab>` while it
// lives (a heartbeat key where Web Locks are missing). Sending is serialized across tabs by the
// Web Lock `<prefix>flush` (a lease in storage otherwise). Its holder also adopts the queues of
// pages that are gone (tab lock released / heartbeat stale): it stores them in its own queue
// first, then removes theirs, so an event can at worst be sent twice, never lost.
//
// Requests are `keepalive` (they outlive the page). On `visibilitychange` → hidden and
// `pagehide`, the batch in flight counts as accepted for sending, and every waiting event leaves
// by `sendBeacon` as text/plain (no CORS preflight; the write key rides in the body), in batches
// of at most 64 KB; an event counts as sent once its beacon was accepted. What the browser's
// beacon quota refuses stays stored for the next page.

const STALE_MS = 180000; // heartbeat age after which a page without Web Locks counts as gone
const BEAT_MS = 30000;

const fail = (code, message) => ({ code, message });

/** Checks the delivery options (throws an invalid_argument error object). */
export function checkDelivery(o) {
  const bad = (m) => {
    throw fail("invalid_argument", m);
  };
  if (o.endpoint != null) {
    let u;
    try {
      u = new URL(o.endpoint, location.href);
    } catch (_) {}
    if (typeof o.endpoint !== "string" || !u || !/^https?:$/.test(u.protocol)) bad("endpoint must be an http(s) URL");
  }
  if (o.writeKey != null && typeof o.writeKey !== "string") bad("writeKey must be a string");
}

const safe = (fn) => {
  try {
    fn();
  } catch (_) {}
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Parses Retry-After (seconds or an HTTP date) into ms; 0 when absent or unreadable. */
function retryAfter(h) {
  if (!h) return 0;
  const n = +h;
  return (n >= 0 ? n * 1000 : Date.parse(h) - Date.now()) || 0;
}

/**
 * Starts delivery for an engine. `after()` delivers the engine's notices (errors).
 * Returns `{tick, flush}`: `tick()` after every mutating call, `flush()` for `ks.flush()`.
 */
export function transport(core, o, after) {
  const url = new URL(o.endpoint, location.href).href;
  const P = typeof o.storagePrefix === "string" ? o.storagePrefix : "ks_";
  const wk = o.writeKey || "";
  const auth = "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(wk + ":")));
  const tail = '","writeKey":' + JSON.stringify(wk) + "}";
  const tab = Math.random().toString(36).slice(2);
  const QK = P + "q.";
  const HB = P + "hb.";
  const own = QK + tab;
  const locks = navigator.locks;
  const timeout = o.requestTimeout > 0 ? o.requestTimeout : 10000;
  let ls = null;
  try {
    ls = localStorage;
  } catch (_) {}
  let timer = 0;
  let timerAt = 0;
  let ptimer = 0;
  let inflight = null;
  let chain = Promise.resolve();
  let busy = 0;
  let gone = false; // after pagehide: no new request (it could not leave a detached page)
  let renew = () => {};

  const get = (k) => {
    try {
      return ls.getItem(k);
    } catch (_) {
      return null;
    }
  };
  const put = (k, v) => {
    try {
      v ? ls.setItem(k, v) : ls.removeItem(k);
      return true;
    } catch (_) {
      return false;
    }
  };
  const keys = (prefix) => {
    const out = [];
    try {
      for (let i = 0; i < ls.length; i++) {
        const k = ls.key(i);
        if (k.startsWith(prefix)) out.push(k);
      }
    } catch (_) {}
    return out;
  };
  const body = (b) => '{"batch":[' + b[1] + '],"sentAt":"' + new Date().toISOString() + tail;

  /** Stores this page's queue if it changed; false when storage refused. */
  function persist() {
    clearTimeout(ptimer);
    ptimer = 0;
    const t = core.deliver(4);
    if (t === null) {
      // Consent refused: no stored queue of this origin may leave any more.
      for (const k of keys(QK)) put(k, "");
      return true;
    }
    return t === undefined || put(own, t);
  }

  async function withLock(fn) {
    if (locks) return locks.request(P + "flush", fn);
    // No Web Locks: a lease in storage, confirmed after a pause (another tab may have written
    // at the same moment), renewed before each request.
    const LK = P + "lease";
    renew = () => put(LK, tab + " " + (Date.now() + timeout + 5000));
    const mine = () => (get(LK) || "").startsWith(tab + " ");
    for (;;) {
      const until = +(get(LK) || "").split(" ")[1];
      if (mine() || !(until > Date.now())) {
        renew();
        await sleep(50);
        if (mine()) {
          try {
            return await fn();
          } finally {
            if (mine()) put(LK, "");
          }
        }
      }
      await sleep(100 + Math.random() * 200);
    }
  }

  /** Adopts the stored queues of pages that are gone (under the flush lock). */
  async function adopt() {
    const theirs = keys(QK).filter((k) => k !== own);
    if (!theirs.length) return;
    let held = null;
    if (locks) {
      try {
        held = (await locks.query()).held.map((l) => l.name);
      } catch (_) {
        return;
      }
    }
    for (const k of theirs) {
      const id = k.slice(QK.length);
      if (held ? held.includes(P + "tab." + id) : Date.now() - (+get(HB + id) || 0) < STALE_MS) continue;
      const t = get(k);
      if (t) core.deliver(3, 0, 0, 0, t);
      // Ours (with theirs) stored first, then theirs removed.
      if (persist()) {
        put(k, "");
        put(HB + id, "");
      }
    }
    after();
  }

  async function post(b) {
    const ac = new AbortController();
    inflight = b;
    const t = setTimeout(() => ac.abort(), timeout);
    try {
      const r = await fetch(url, {
        method: "POST",
        body: body(b),
        headers: { "content-type": "application/json", authorization: auth },
        credentials: "omit",
        signal: ac.signal,
        keepalive: true,
      });
      return [r.status, retryAfter(r.headers.get("retry-after"))];
    } catch (_) {
      return [0, 0];
    } finally {
      clearTimeout(t);
      inflight = null;
    }
  }

  /** One delivery run under the flush lock. mode 0: what is due; 1: all; 2: all, for flush(). */
  async function send(mode) {
    await adopt();
    let b;
    while (!gone && (mode || core.deliver(0) === 0) && (b = core.deliver(1))) {
      persist(); // the queue is stored before any send is attempted
      renew();
      const [status, ra] = await post(b);
      // Handed off at hide: when the page goes, the browser rejects the fetch here while the
      // keepalive request itself carries on — that is no failure to act on.
      if (b.h && !status) return;
      core.deliver(2, b[0], status, ra);
      after();
      if (status < 200 || status > 299) {
        if (mode < 2) return;
        const refused = status >= 400 && status < 500 && status !== 429;
        throw fail(refused ? "delivery_rejected" : "delivery_failed", status ? "the collector answered " + status : "the collector could not be reached");
      }
    }
    persist();
  }

  function cycle(mode) {
    busy++;
    const run = chain.then(() => withLock(() => send(mode)));
    chain = run.catch(() => {}).then(() => {
      busy--;
      schedule();
    });
    return run;
  }

  function schedule() {
    if (busy) return;
    const d = core.deliver(0);
    if (d < 0 || navigator.onLine === false) {
      clearTimeout(timer);
      timer = 0;
      return;
    }
    const at = Date.now() + d;
    if (timer && timerAt <= at) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = 0;
      cycle(0).catch(() => {});
    }, d);
  }

  /** The page is hidden or going away: everything waiting leaves by beacon now. */
  const hide = () => safe(beacon);

  function beacon() {
    // A request in flight is a keepalive one: it outlives the page, so it counts as accepted
    // for sending (its events leave the stored queue; they come back if it fails meanwhile).
    if (inflight && !inflight.h) {
      inflight.h = 1;
      core.deliver(2, inflight[0], -2);
    }
    let b;
    while ((b = core.deliver(1))) {
      let ok = false;
      try {
        ok = navigator.sendBeacon(url, body(b));
      } catch (_) {}
      core.deliver(2, b[0], ok ? 200 : -1);
      if (!ok) break; // over the browser's beacon quota: stays stored for the next page
    }
    persist();
    after();
  }

  if (locks) {
    try {
      locks.request(P + "tab." + tab, () => new Promise(() => {})).catch(() => {});
    } catch (_) {}
  } else {
    const beat = () => put(HB + tab, "" + Date.now());
    beat();
    setInterval(beat, BEAT_MS);
  }
  addEventListener("pagehide", () => {
    gone = true;
    hide();
  });
  addEventListener("pageshow", () => (gone = false));
  document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && hide());
  addEventListener("online", () => cycle(1).catch(() => {}));
  if (keys(QK).length) setTimeout(() => cycle(0).catch(() => {}));

  return {
    tick: () =>
      safe(() => {
        if (!ptimer) ptimer = setTimeout(() => safe(persist), 250);
        schedule();
      }),
    flush: () => cycle(2),
  };
}
