// The delivery queue (DESIGN §8): this page's bounded queue of events (their Segment-spec JSON)
// waiting for the collector, which of them a batch in flight holds, when the next flush is
// due, and the retry backoff. Pure bookkeeping — no browser API, so Node runs it too;
// transport.js stores it, sends batches and reports each outcome through `settle`.
//
// Invariants:
// - an event leaves only when the collector accepted its batch (2xx) or a beacon carrying it was
//   accepted for sending, when the collector refused it for good (other 4xx, reported as
//   "delivery_rejected"), or when the bounds drop it (oldest first, each drop reported as
//   "queue_overflow"; an event larger than 64 KB as "event_too_large"; one larger than
//   `maxBatchBytes` goes alone);
// - at most one batch is claimed at a time, the oldest events; a failed batch returns its events,
//   in order (each keeps its messageId: the worst case of a lost answer is a duplicate);
// - never more than `maxQueueEvents` events nor `maxQueueBytes` bytes; no batch over 64 KB (the
//   beacon limit).
// Stored form: a version line, then one event per line (JSON text has no raw newline).

export const HEADER = "ksq1";
/** `settle` statuses besides HTTP ones: 0 is a network error; NOT_SENT returns the batch with
 * no penalty; HANDED_OFF is a keepalive request in flight as the page hides — accepted for
 * sending, so its events leave the queue (and its stored form), but come back if it fails while
 * the page still lives. */
export const NOT_SENT = -1;
export const HANDED_OFF = -2;

/** UTF-8 bytes of `s`, encoded into one buffer kept for it: a `TextEncoder().encode` per event
 * (an encoder and an array made each time) was ≈ a fifth of a `track()` with delivery. */
const enc = new TextEncoder();
let buf = new Uint8Array(0);
export const size = (s) => (buf.length < s.length * 3 && (buf = new Uint8Array(s.length * 3)), enc.encodeInto(s, buf).written);
// A number option: the default for 0, a negative, NaN or Infinity; at most 3e8 (≈ 3.5 days), so
// every timer made from it (6 × requestTimeout included) stays within what setTimeout takes
// (2^31 − 1 ms): a longer delay fires at once.
export const num = (v, d) => (v > 0 && v < Infinity ? Math.min(v, 3e8) : d);

/** Whether a stored line is one event: a JSON object with a `type`. */
const readable = (line) => {
  try {
    const e = JSON.parse(line);
    return !!e && typeof e == "object" && typeof e.type == "string";
  } catch (_) {
    return false;
  }
};

/** A queue configured from the `init` options; `report(code, message)` receives each drop. */
export function createQueue(o, report) {
  const flushAt = num(o.flushAt, 20);
  const interval = num(o.flushInterval, 5000);
  const maxEvents = num(o.maxQueueEvents, 1000);
  const maxBytes = num(o.maxQueueBytes, 524288);
  const base = num(o.retryBase, 1000);
  const max = num(o.retryMax, 60000);
  // Body overhead: {"batch":[…],"sentAt":"…","writeKey":"…"}, every key byte maybe escaped.
  const over = 80 + 2 * size(o.writeKey || "");
  const cap = Math.min(num(o.maxBatchBytes, 65536), 65536) - over;
  // Each event gets `,"sentAt":"<ISO>"` when its batch is made.
  const S = 36;
  let items = []; // [JSON text, UTF-8 bytes, when queued]
  let bytes = 0;
  let claimed = 0;
  let id = 0;
  let handed = null; // [batch id, its items]
  let retryAt = 0;
  let attempts = 0;
  let dirty = false;
  let dropped = 0;
  let most = 1e9; // events per batch: halved by each 413 (the collector's body limit is lower)

  const take = (n) => {
    const out = items.splice(0, n);
    for (const i of out) bytes -= i[1];
    dirty = true;
    return out;
  };
  /** Puts events before the queued ones (`front`) or after, then enforces the bounds. */
  const put = (list, front) => {
    items = front ? list.concat(items) : items.concat(list);
    for (const i of list) bytes += i[1];
    while (items.length > maxEvents || (bytes > maxBytes && items[1])) {
      take(1);
      if (claimed) claimed--;
      // Counted; reported at the 1st, 2nd, 4th, 8th… drop (a blocked collector must not flood
      // the page's error listeners with one report per event).
      if (!(++dropped & (dropped - 1))) report("queue_overflow", "delivery queue full: " + dropped + " event(s) dropped so far, oldest first");
    }
    dirty = true;
  };
  // (Nothing is queued for a dropped event: `report` returns the error it raised.)
  // (An event over `maxBatchBytes` but within 64 KB goes alone in its batch.)
  const item = (j, t, n = size(j)) => (n + S + over > 65536 ? void report("event_too_large", "event over 64 KB dropped") : [j, n, t]);

  return {
    /** Queues one event's JSON, made at `now`. */
    push(json, now) {
      const i = item(json, now);
      if (i) put([i]);
    },

    /** Ms until the next flush is due (0 = now), -1 when nothing waits or a batch is in flight. */
    due(now) {
      return claimed || !items[0] ? -1 : retryAt ? Math.max(0, retryAt - now) : items.length >= flushAt || bytes + items.length * (S + 1) > cap ? 0 : Math.max(0, items[0][2] + interval - now);
    },

    /**
     * Claims the oldest events that fit in one batch: [id, their JSON joined by commas], each
     * with `sentAt` set to `at` (an ISO time) when given.
     */
    claim(at) {
      if (claimed || !items[0]) return null;
      let n = items[0][1] + S;
      claimed = 1;
      while (items[claimed] && claimed < most && n + 1 + S + items[claimed][1] <= cap) n += 1 + S + items[claimed++][1];
      return [++id, items.slice(0, claimed).map((i) => (at ? i[0].slice(0, -1) + ',"sentAt":"' + at + '"}' : i[0])).join()];
    },

    /**
     * Records batch `bid`'s outcome: 2xx (or a beacon accepted) removes its events; 408, 429,
     * 5xx and network errors (0) return them and set the retry after `retryAfter` ms when the
     * collector gave one, else after an exponential backoff with equal jitter (`random` in
     * [0, 1)); 413 on more than one event returns them to go at once in batches of half as many;
     * other 4xx drop them, reported. A stale id changes nothing.
     */
    settle(bid, status, retryAfter, now, random) {
      let n = claimed;
      if (handed && bid == handed[0]) {
        n = handed[1].length;
        put(handed[1], 1);
        handed = null;
      } else if (bid != id || !claimed) return;
      claimed = 0;
      if (status == HANDED_OFF) handed = [bid, take(n)];
      else if (status == 413 && n > 1) return (most = n >> 1); // its events stay first in the queue
      else if ((status > 199 && status < 300) || (status > 399 && status < 500 && status != 429 && status != 408)) {
        if (status > 399) report("delivery_rejected", "collector refused a batch: " + status);
        else dropped = 0; // delivered: a later overflow is reported from its first drop again
        take(n);
        attempts = retryAt = 0;
      } else if (status != NOT_SENT) {
        const d = Math.min(base * 2 ** attempts++, max);
        retryAt = now + (retryAfter > 0 ? Math.min(retryAfter, 864e5) : (d / 2) * (1 + random));
      }
    },

    /** Back to the normal schedule (online again). */
    retryNow: () => (retryAt = 0),

    /** Whether the last attempt failed (the collector is failing): until one succeeds, also
     * once `online` made the retry due at once (by `retryAt`, a page left with that retry in
     * flight took it as sent, and lost it when it failed too). */
    failing: () => attempts > 0,

    /**
     * Takes in another page's stored queue (older: first). Unreadable lines (not a JSON event)
     * are dropped and reported: one would make a whole batch invalid JSON for the collector;
     * so is a stored value that is no queue at all.
     */
    adopt(text) {
      // (Trimmed: a line's `sentAt` is spliced in before its last character, the closing brace.)
      const lines = text.split("\n").map((l) => l.trim());
      if (claimed) return;
      if (lines.shift() != HEADER) return text && report("storage_corrupt", "a stored delivery queue is unreadable, dropped");
      const ok = lines.filter(readable);
      if (ok.length < lines.length) report("storage_corrupt", lines.length - ok.length + " stored event(s) unreadable, dropped");
      put(ok.map((l) => item(l, -Infinity)).filter(Boolean), 1);
    },

    /** Erases every event (consent refused). */
    clear() {
      if (items[0] || handed) dirty = true;
      items = [];
      bytes = claimed = attempts = retryAt = 0;
      handed = null;
    },

    /** The stored form when it changed since the last call ("" when empty), else undefined. */
    text() {
      if (!dirty) return;
      dirty = false;
      return items[0] ? HEADER + "\n" + items.map((i) => i[0]).join("\n") : "";
    },
  };
}
