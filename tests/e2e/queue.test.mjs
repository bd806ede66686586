// The delivery queue (pkg-template/src/queue.js) on its own, under Node: bounds and drop
// reports, when a flush is due, batches and claims, outcomes (2xx / retry / refused / not sent /
// handed off), backoff with jitter and Retry-After, the stored form and adoption.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createQueue, HANDED_OFF, HEADER, NOT_SENT, size } from "../../pkg-template/src/queue.js";

const ev = (i, pad = "") => JSON.stringify({ type: "track", event: "E", messageId: "m" + i, properties: { pad } });
const ids = (b) => JSON.parse("[" + b[1] + "]").map((e) => e.messageId);

function make(opts = {}) {
  const errors = [];
  const q = createQueue({ endpoint: "/v1/batch", writeKey: "k", ...opts }, (code) => errors.push(code));
  return { q, errors };
}

test("bounded by count: the oldest dropped first, drops counted and reported at the 1st, 2nd, 4th, 8th…", () => {
  const { q, errors } = make({ maxQueueEvents: 3, flushAt: 100 });
  for (let i = 0; i < 5; i++) q.push(ev(i), i);
  assert.deepEqual(errors, ["queue_overflow", "queue_overflow"]);
  const b = q.claim();
  assert.deepEqual(ids(b), ["m2", "m3", "m4"]);
  // Delivered: a later overflow is reported from its first drop again.
  q.settle(b[0], 200);
  for (let i = 5; i < 9; i++) q.push(ev(i), i);
  assert.equal(errors.length, 3, "the first drop after a delivery is reported");
});

test("bounded by bytes; an event larger than a batch is dropped and reported", () => {
  const one = ev(0).length;
  const { q, errors } = make({ maxQueueBytes: one * 4, flushAt: 100 });
  for (let i = 0; i < 10; i++) q.push(ev(i), 0);
  assert.equal(errors.filter((e) => e === "queue_overflow").length, 3, "6 drops: reported at the 1st, 2nd and 4th");
  assert.equal(ids(q.claim()).length, 4);
  q.push(ev(99, "x".repeat(70000)), 0);
  assert.equal(errors.at(-1), "event_too_large");
});

test("due by count, bytes and time; one batch in flight at a time", () => {
  const { q } = make({ flushAt: 3, flushInterval: 1000 });
  assert.equal(q.due(0), -1);
  q.push(ev(1), 100);
  assert.equal(q.due(100), 1000);
  assert.equal(q.due(600), 500);
  assert.equal(q.due(5000), 0);
  q.push(ev(2), 200);
  q.push(ev(3), 300);
  assert.equal(q.due(300), 0, "flushAt reached");
  q.claim();
  assert.equal(q.due(300), -1);
  assert.equal(q.claim(), null);
  const big = make({ maxBatchBytes: 400, flushAt: 100 }).q;
  for (let i = 0; i < 9; i++) big.push(ev(i), 0);
  assert.equal(big.due(0), 0, "a full batch of bytes waits");
});

test("batches never exceed the byte cap (64 KB at most)", () => {
  const { q } = make({ maxBatchBytes: 1e6, flushAt: 1 });
  for (let i = 0; i < 100; i++) q.push(ev(i, "y".repeat(2000)), 0);
  const b = q.claim();
  const body = '{"batch":[' + b[1] + '],"sentAt":"2026-01-01T00:00:00.000Z","writeKey":"k"}';
  assert.ok(body.length <= 65536 && body.length > 60000, String(body.length));
});

test("each event of a batch carries the batch's sentAt; with it the batch still fits in 64 KB", () => {
  const { q } = make({ maxBatchBytes: 1e6, flushAt: 1 });
  for (let i = 0; i < 100; i++) q.push(ev(i, "y".repeat(2000)), 0);
  const at = "2026-11-29T16:00:00.000Z";
  const b = q.claim(at);
  const events = JSON.parse("[" + b[1] + "]");
  assert.ok(events.length > 20 && events.every((e) => e.sentAt === at && e.properties.pad.length === 2000));
  const body = '{"batch":[' + b[1] + '],"sentAt":"' + at + '","writeKey":"k"}';
  assert.ok(body.length <= 65536 && body.length > 60000, String(body.length));
});

test("accepted batches leave; failed ones come back in order; stale outcomes change nothing", () => {
  const { q } = make({ flushAt: 1 });
  for (let i = 0; i < 3; i++) q.push(ev(i), 0);
  let b = q.claim();
  q.settle(b[0], 500, 0, 1000, 0.5);
  assert.ok(q.due(1000) > 0, "backing off");
  const again = q.claim();
  assert.deepEqual(ids(again), ["m0", "m1", "m2"]);
  q.settle(again[0], 200, 0, 2000, 0.5);
  assert.equal(q.claim(), null);
  q.push(ev(9), 3000);
  q.settle(again[0], 500, 0, 3000, 0.5);
  assert.equal(q.due(3000), 0);
});

test("429, 5xx and network errors retry; other 4xx drop with a report; NOT_SENT has no penalty", () => {
  for (const [status, retried] of [[0, true], [429, true], [500, true], [503, true], [400, false], [401, false], [413, false]]) {
    const { q, errors } = make({ flushAt: 1 });
    q.push(ev(1), 0);
    q.settle(q.claim()[0], status, 0, 0, 0);
    assert.equal(q.claim() !== null, retried, "status " + status);
    assert.deepEqual(errors, retried ? [] : ["delivery_rejected"]);
  }
  const { q } = make({ flushAt: 1 });
  q.push(ev(1), 0);
  q.settle(q.claim()[0], NOT_SENT);
  assert.equal(q.due(0), 0);
});

test("exponential backoff with equal jitter; Retry-After wins", () => {
  const { q } = make({ retryBase: 1000, retryMax: 8000 });
  q.push(ev(1), 0);
  const delays = [];
  for (const r of [0, 1, 0, 0.999, 0, 0.5]) {
    q.settle(q.claim()[0], 503, 0, 0, r);
    delays.push(q.due(0));
  }
  assert.deepEqual(delays.slice(0, 3), [500, 2000, 2000]);
  delays.forEach((d, n) => {
    const full = Math.min(1000 * 2 ** n, 8000);
    assert.ok(d >= full / 2 && d <= full, `attempt ${n + 1}: ${d}`);
  });
  q.settle(q.claim()[0], 429, 3000, 100, 0);
  assert.equal(q.due(100), 3000);
  q.retryNow();
  assert.equal(q.due(100), 4900, "back to the normal schedule");
});

test("failing: from a failed attempt until one succeeds, also after `online` (retryNow)", () => {
  const { q } = make();
  q.push(ev(1), 0);
  assert.equal(q.failing(), false);
  q.settle(q.claim()[0], 0, 0, 0, 0);
  assert.equal(q.failing(), true);
  q.retryNow();
  assert.equal(q.failing(), true, "online again: the collector has not answered yet");
  q.settle(q.claim()[0], 503, 0, 0, 0);
  assert.equal(q.failing(), true);
  q.settle(q.claim()[0], 200);
  assert.equal(q.failing(), false);
});

test("a handed-off batch leaves the stored form; a failure while the page lives brings it back", () => {
  const { q } = make({ flushAt: 2, maxBatchBytes: 250 });
  for (let i = 0; i < 4; i++) q.push(ev(i), 0);
  q.text();
  const b = q.claim();
  const n = ids(b).length;
  assert.ok(n < 4);
  q.settle(b[0], HANDED_OFF);
  assert.equal(q.text().split("\n").length, 1 + 4 - n, "in-flight events are not stored");
  const beacon = q.claim();
  assert.ok(ids(beacon).every((m) => !ids(b).includes(m)));
  q.settle(beacon[0], 200);
  const left = 4 - n - ids(beacon).length;
  q.settle(b[0], 503, 0, 0, 0);
  assert.equal(q.text().split("\n").length, 1 + left + n, "a failure brings them back");
  assert.deepEqual(ids(q.claim()), ids(b), "first, in order");
});

test("stored form round-trips; adoption puts the older events first and skips junk", () => {
  const a = make({ flushAt: 100 }).q;
  assert.equal(a.text(), undefined, "unchanged");
  for (let i = 0; i < 3; i++) a.push(ev(i), 0);
  const text = a.text();
  assert.ok(text.startsWith(HEADER + "\n"));
  assert.equal(a.text(), undefined);
  const { q, errors } = make({ flushAt: 100 });
  q.push(ev(10), 50);
  // A truncated line that still ends with "}" would make the whole batch invalid JSON.
  q.adopt(text + '\nnot json\n{truncated\n{"type":"track","event":"T","properties":{"a":1}\n{"no":"type"}');
  assert.deepEqual(errors, ["storage_corrupt"], "unreadable lines reported once");
  assert.equal(q.due(60), 0, "adopted events are due at once");
  const batch = q.claim();
  assert.deepEqual(ids(batch), ["m0", "m1", "m2", "m10"], "the batch is valid JSON");
  // Lines that parse with white space around them (a CRLF file, a trailing space or tab): their
  // `sentAt` is spliced in before the closing brace, so they are trimmed (before: the batch was
  // invalid JSON, the collector refused it, and the adopted events and this tab's were lost).
  const crlf = make({ flushAt: 100 }).q;
  crlf.push(ev(20), 50);
  crlf.adopt(text.split("\n").map((l, i) => l + ["\r", " ", "\t", "\r"][i]).join("\n"));
  const sent = crlf.claim("2026-01-01T00:00:00.000Z");
  const parsed = JSON.parse("[" + sent[1] + "]");
  assert.deepEqual(parsed.map((e) => e.messageId), ["m0", "m1", "m2", "m20"]);
  assert.ok(parsed.every((e) => e.sentAt === "2026-01-01T00:00:00.000Z"));
  const other = make().q;
  other.adopt("something else\n{}");
  assert.equal(other.claim(), null, "a foreign value is ignored");
  a.clear();
  assert.equal(a.text(), "", "erased: the key is removed");
});

test("size() counts UTF-8 bytes as TextEncoder writes them (a lone surrogate as U+FFFD), without encoding", () => {
  const cases = ["", "abc", "é", "€", "😀", "a😀b", "\ud800", "\udc00x", "\ud800\ud800\udc00", "x\ud83d", "日本語", JSON.stringify({ a: "\ud800", b: "😀" })];
  // And random strings over the whole range of UTF-16 code units.
  let seed = 7;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  for (let k = 0; k < 500; k++) cases.push(String.fromCharCode(...Array.from({ length: rnd(40) }, () => [rnd(128), rnd(2048), rnd(65536), 0xd800 + rnd(2048)][rnd(4)])));
  for (const s of cases) assert.equal(size(s), new TextEncoder().encode(s).length, JSON.stringify(s));
});
