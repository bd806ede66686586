//! Delivery state (DESIGN §8): this page's bounded queue of events waiting for the collector,
//! which of them are claimed by a batch in flight, when the next flush is due, and the retry
//! backoff. Pure bookkeeping: the browser layer serializes events (`JSON.stringify`), stores the
//! queue text, sends batches (fetch / sendBeacon), holds the cross-tab lock, and reports each
//! outcome back through [`Queue::settle`].
//!
//! Invariants:
//! - an event leaves the queue only when the collector accepted its batch (2xx), when a beacon
//!   carrying it was accepted for sending, when the collector refused it for good (other 4xx,
//!   reported), or when the bounds drop it (oldest first, each drop counted and reported);
//! - at most one batch is claimed at a time, and it is the oldest events (a prefix of the
//!   queue); a failed batch returns its events, in order, to the queue (so the worst case of a
//!   lost answer is a duplicate, never a loss: each event keeps its `messageId` in its JSON);
//! - the queue never holds more than `max_events` events nor `max_bytes` bytes, and no single
//!   event larger than a batch can carry.
//!
//! The stored form is one line per event (JSON text never contains a raw newline) after a
//! version header, so storing and restoring needs no JSON parser in the core.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::error::{codes, Error};
use crate::core::time::DAY;
use crate::core::value::{Map, Value};

/// The first line of the stored queue text.
pub const HEADER: &str = "ksq1";
/// The most a beacon (and a keepalive request) may carry: 64 KB.
pub const BEACON_LIMIT: usize = 65_536;

/// Delivery settings, from the `init` options. Sizes are in bytes, times in ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Whether an `endpoint` is configured (otherwise nothing is queued or sent).
    pub enabled: bool,
    /// Flush when this many events are waiting (`flushAt`, default 20).
    pub flush_at: f64,
    /// Flush this long after the oldest waiting event was queued (`flushInterval`, default 5 s).
    pub interval: f64,
    /// The largest request body (`maxBatchBytes`, default and maximum 64 KB, the beacon limit).
    pub batch_bytes: f64,
    /// Bound on queued events (`maxQueueEvents`, default 1000).
    pub max_events: f64,
    /// Bound on queued bytes (`maxQueueBytes`, default 512 KB).
    pub max_bytes: f64,
    /// First retry delay (`retryBase`, default 1 s); doubles per failed attempt.
    pub retry_base: f64,
    /// Longest retry delay (`retryMax`, default 60 s).
    pub retry_max: f64,
    /// Bytes of a body around its events (`{"batch":[…],"sentAt":…,"writeKey":…}`).
    pub overhead: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            enabled: false,
            flush_at: 20.0,
            interval: 5_000.0,
            batch_bytes: BEACON_LIMIT as f64,
            max_events: 1_000.0,
            max_bytes: 512.0 * 1024.0,
            retry_base: 1_000.0,
            retry_max: 60_000.0,
            overhead: 80,
        }
    }
}

/// The number at `key` when it is positive and finite, else `default`.
#[inline(never)]
fn positive(m: &Map, key: &str, default: f64) -> f64 {
    m.get(key).and_then(Value::as_num).filter(|n| *n > 0.0 && n.is_finite()).unwrap_or(default)
}

impl Config {
    /// Reads the delivery options from the `init` options object. Missing or invalid numbers
    /// (not positive) keep their defaults; a batch never exceeds the beacon limit.
    pub fn from_options(m: &Map) -> Config {
        let d = Config::default();
        Config {
            enabled: m.get("endpoint").and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
            flush_at: positive(m, "flushAt", d.flush_at),
            interval: positive(m, "flushInterval", d.interval),
            batch_bytes: positive(m, "maxBatchBytes", d.batch_bytes).min(d.batch_bytes),
            max_events: positive(m, "maxQueueEvents", d.max_events),
            max_bytes: positive(m, "maxQueueBytes", d.max_bytes),
            retry_base: positive(m, "retryBase", d.retry_base),
            retry_max: positive(m, "retryMax", d.retry_max),
            // `{"batch":[` + `],"sentAt":"2026-01-01T00:00:00.000Z","writeKey":"` + key + `"}`,
            // with room for every byte of the key to be escaped.
            overhead: 80 + 2 * m.get("writeKey").and_then(Value::as_str).map_or(0, str::len),
        }
    }

    /// The most event bytes one batch carries.
    fn capacity(&self) -> usize {
        (self.batch_bytes as usize).saturating_sub(self.overhead)
    }
}

struct Item {
    json: String,
    /// When it was queued (`f64::MIN` for events adopted from storage: due at once).
    at: f64,
}

/// What the browser reports about a batch in [`Queue::settle`] besides HTTP statuses.
pub mod status {
    /// The request was not sent (aborted when the page was hidden, or the beacon was refused):
    /// the events wait again, with no retry penalty.
    pub const NOT_SENT: i32 = -1;
    /// A network error or a timeout.
    pub const NETWORK: i32 = 0;
    /// The page is being hidden while the batch is in flight in a `keepalive` request, which
    /// outlives the page: the request was accepted for sending, so its events leave the queue
    /// and its stored form (a later page must not send them again) — kept aside in memory until
    /// the answer comes: should it be a failure while the page still lives, they return.
    pub const HANDED_OFF: i32 = -2;
}

/// This page's delivery queue.
pub struct Queue {
    cfg: Config,
    items: Vec<Item>,
    bytes: usize,
    /// Events of the batch in flight: the first `claimed` items.
    claimed: usize,
    batch: u32,
    /// The events of a batch handed off ([`status::HANDED_OFF`]) and its id.
    handed: Vec<Item>,
    handed_id: u32,
    attempts: u32,
    retry_at: f64,
    dropped: u64,
    dirty: bool,
    erased: bool,
    errors: Vec<Error>,
}

impl Queue {
    /// An empty queue.
    pub fn new(cfg: Config) -> Queue {
        Queue {
            cfg,
            items: Vec::new(),
            bytes: 0,
            claimed: 0,
            batch: 0,
            handed: Vec::new(),
            handed_id: 0,
            attempts: 0,
            retry_at: 0.0,
            dropped: 0,
            dirty: false,
            erased: false,
            errors: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether delivery is configured (an `endpoint`).
    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Events queued (waiting or in flight).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of JSON queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Events dropped so far because the queue was full (or an event too large).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Consecutive failed attempts (0 after a success).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Queues one event (its Segment-spec JSON). An event larger than a batch can carry is
    /// dropped and reported; then the oldest events are dropped while over the bounds.
    pub fn push(&mut self, json: String, now: f64) {
        if !self.cfg.enabled {
            return;
        }
        if json.len() > self.cfg.capacity() {
            self.dropped += 1;
            self.errors.push(Error::new(codes::EVENT_TOO_LARGE, "an event larger than a batch (64 KB) was dropped"));
            return;
        }
        self.bytes += json.len();
        self.items.push(Item { json, at: now });
        self.dirty = true;
        self.trim();
    }

    /// Drops the oldest events while over the bounds, counting and reporting each drop.
    fn trim(&mut self) {
        let (mut n, mut bytes, mut over) = (self.items.len(), self.bytes, 0);
        for i in &self.items {
            if n as f64 <= self.cfg.max_events && (bytes as f64 <= self.cfg.max_bytes || n == 1) {
                break;
            }
            n -= 1;
            bytes -= i.json.len();
            over += 1;
            self.dropped += 1;
            self.errors.push(Error::new(codes::QUEUE_OVERFLOW, "delivery queue full: the oldest event was dropped"));
        }
        self.claimed = self.claimed.saturating_sub(over);
        self.drop_front(over);
    }

    /// Removes the first `n` events.
    fn drop_front(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let mut k = 0;
        let mut bytes = self.bytes;
        self.items.retain(|i| {
            k += 1;
            if k <= n {
                bytes -= i.json.len();
            }
            k > n
        });
        self.bytes = bytes;
        self.dirty = true;
    }

    /// Milliseconds until the next flush is due (0 = now), or -1 when there is nothing to do:
    /// nothing waiting, or a batch already in flight. A retry backoff, once set, decides alone;
    /// otherwise a flush is due when `flush_at` events or a full batch of bytes are waiting, or
    /// `interval` after the oldest waiting event.
    pub fn due(&self, now: f64) -> f64 {
        let Some(first) = self.items.first().filter(|_| self.claimed == 0) else { return -1.0 };
        if self.retry_at > 0.0 {
            return (self.retry_at - now).max(0.0);
        }
        if self.items.len() as f64 >= self.cfg.flush_at || self.bytes + self.items.len() > self.cfg.capacity() {
            return 0.0;
        }
        (first.at + self.cfg.interval - now).max(0.0)
    }

    /// Claims the oldest events that fit in one batch (at least one): the batch id (for
    /// [`Queue::settle`]) and the events' JSON joined by commas, ready to go between
    /// `{"batch":[` and `]`. None when nothing waits or a batch is already in flight.
    pub fn claim(&mut self) -> Option<(u32, String)> {
        if self.claimed > 0 || self.items.is_empty() {
            return None;
        }
        let cap = self.cfg.capacity();
        let mut events = String::new();
        for item in &self.items {
            if self.claimed > 0 {
                if events.len() + 1 + item.json.len() > cap {
                    break;
                }
                events.push(',');
            }
            events.push_str(&item.json);
            self.claimed += 1;
        }
        self.batch = self.batch.wrapping_add(1).max(1);
        Some((self.batch, events))
    }

    /// Records the outcome of batch `id`: a 2xx status (or a beacon accepted for sending)
    /// removes its events; `429`, `5xx` and network errors ([`status::NETWORK`]) return them to
    /// the queue and set the next retry after `retry_after` ms when the collector gave one, else
    /// after an exponential backoff with jitter (`random` in [0, 1)); other `4xx` drop them with
    /// a reported error; [`status::NOT_SENT`] returns them with no penalty. A stale id (not the
    /// batch in flight) changes nothing.
    pub fn settle(&mut self, id: u32, status: i32, retry_after: f64, now: f64, random: f64) {
        let n = if id == self.handed_id && !self.handed.is_empty() {
            // The answer to a handed-off batch: its events come back to the front first.
            let n = self.handed.len();
            self.bytes += self.handed.iter().map(|i| i.json.len()).sum::<usize>();
            self.handed.append(&mut self.items);
            ::core::mem::swap(&mut self.handed, &mut self.items);
            self.dirty = true;
            n
        } else if id == self.batch && self.claimed > 0 {
            ::core::mem::take(&mut self.claimed)
        } else {
            return;
        };
        if status == status::HANDED_OFF {
            let mut k = 0;
            for i in ::core::mem::take(&mut self.items) {
                k += 1;
                if k <= n {
                    self.bytes -= i.json.len();
                    self.handed.push(i);
                } else {
                    self.items.push(i);
                }
            }
            self.handed_id = id;
            self.dirty = true;
            return;
        }
        if (200..300).contains(&status) || ((400..500).contains(&status) && status != 429) {
            if status >= 400 {
                self.errors.push(Error::new(codes::DELIVERY_REJECTED, "the collector refused a batch (4xx); its events were dropped"));
            }
            self.drop_front(n);
            self.attempts = 0;
            self.retry_at = 0.0;
        } else if status != status::NOT_SENT {
            self.attempts = self.attempts.saturating_add(1);
            self.retry_at = now + self.backoff(retry_after, random);
        }
    }

    /// The wait before the next attempt: `retry_after` when the collector said so (at most a
    /// day), else `retry_base · 2^(attempts-1)` capped at `retry_max`, with equal jitter (half
    /// fixed, half random).
    fn backoff(&self, retry_after: f64, random: f64) -> f64 {
        if retry_after > 0.0 {
            return retry_after.min(DAY);
        }
        let mut d = self.cfg.retry_base;
        for _ in 1..self.attempts.min(40) {
            d *= 2.0;
        }
        d.min(self.cfg.retry_max) / 2.0 * (1.0 + random)
    }

    /// Lifts the retry backoff (back to the normal schedule).
    pub fn retry_now(&mut self) {
        self.retry_at = 0.0;
    }

    /// Takes in the events of another page's stored queue (a tab that closed or crashed before
    /// delivering them), ahead of this page's own (they are older). Unreadable lines are
    /// skipped. Only while no batch is in flight (the claimed events stay a prefix).
    pub fn adopt(&mut self, text: &str) {
        let Some(mut rest) = text.strip_prefix(HEADER).filter(|_| self.cfg.enabled && self.claimed == 0) else { return };
        let cap = self.cfg.capacity();
        let mut items: Vec<Item> = Vec::new();
        while let Some(r) = rest.strip_prefix('\n') {
            let end = r.find('\n').unwrap_or(r.len());
            let line = r.get(..end).unwrap_or_default();
            rest = r.get(end..).unwrap_or_default();
            if line.starts_with('{') && line.ends_with('}') && line.len() <= cap {
                self.bytes += line.len();
                self.dirty = true;
                items.push(Item { json: line.into(), at: f64::MIN });
            }
        }
        items.append(&mut self.items);
        self.items = items;
        self.trim();
    }

    /// Erases every queued event (consent refused, `forget()`).
    pub fn clear(&mut self) {
        if !self.items.is_empty() {
            self.items.clear();
            self.bytes = 0;
            self.dirty = true;
            self.erased = true;
        }
        self.claimed = 0;
        self.handed.clear();
        self.attempts = 0;
        self.retry_at = 0.0;
    }

    /// The stored form when the queue changed since the last call (`""` when empty: the key is
    /// removed), else None.
    pub fn take_text(&mut self) -> Option<String> {
        if !::core::mem::take(&mut self.dirty) {
            return None;
        }
        let mut out = String::new();
        if !self.items.is_empty() {
            out.push_str(HEADER);
            for i in &self.items {
                out.push('\n');
                out.push_str(&i.json);
            }
        }
        Some(out)
    }

    /// Whether events were erased (not delivered) since the last call: the browser layer then
    /// erases the stored queues of other pages too.
    pub fn take_erased(&mut self) -> bool {
        ::core::mem::take(&mut self.erased)
    }

    /// Errors to report (drops, refused batches) since the last call.
    pub fn take_errors(&mut self) -> Vec<Error> {
        ::core::mem::take(&mut self.errors)
    }
}
