//! The local pseudonymous profile (DESIGN §3): identity, traits, context, session, bounded
//! per-event aggregates and a bounded ring of recent raw events.
//!
//! Invariants: `events` holds one entry per event name with minute counts no older than the
//! retention, within [`MAX_EVENT_NAMES`] and [`MAX_EVENT_BYTES`] besides the names loaded
//! definitions read (see [`Profile::bound_events`], applied as events are recorded); `recent` holds at most [`RING_MAX_EVENTS`] events and [`RING_MAX_BYTES`] bytes,
//! oldest first.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::activation::Activation;
use crate::core::buckets::{minute_of, Counts, MAX_ENTRIES};
use crate::core::journal::Op;
use crate::core::sort::sort_by;
use crate::core::keystone::MAX_TRAITS_BYTES;
use crate::core::segment::{reads, Definitions};
use crate::core::time::iso;
use crate::core::value::{Map, Value};

/// The most raw events the recent ring keeps.
pub const RING_MAX_EVENTS: usize = 200;
/// The most bytes (approximate JSON size) the recent ring keeps.
pub const RING_MAX_BYTES: usize = 24 * 1024;

/// The most event names the aggregates keep, besides those a loaded definition reads.
pub const MAX_EVENT_NAMES: usize = 256;
/// The most bytes (approximate stored size) the aggregates keep, besides the names a loaded
/// definition reads.
pub const MAX_EVENT_BYTES: usize = 48 * 1024;

/// Aggregates of one event name.
#[derive(Clone, Debug, PartialEq)]
pub struct EventStats {
    /// The event name (`"Product Viewed"`; page views are `"Page Viewed"`).
    pub name: String,
    /// Counts per minute, within the retention.
    pub counts: Counts,
    /// First time seen (epoch ms).
    pub first: f64,
    /// Last time seen (epoch ms).
    pub last: f64,
}

/// A recent raw event, kept for back-filling new segment definitions.
#[derive(Clone, Debug, PartialEq)]
pub struct RecentEvent {
    /// Event name.
    pub name: String,
    /// Epoch milliseconds.
    pub ts: f64,
    /// Properties.
    pub props: Map,
}

/// The visit (DESIGN §3 `session`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Session {
    /// Session id (UUID v4).
    pub id: String,
    /// Sessions so far, this one included.
    pub count: u32,
    /// Page views in this session.
    pub pageviews: u32,
    /// Start (epoch ms).
    pub started_at: f64,
    /// Last activity (epoch ms).
    pub last_activity: f64,
}

/// The profile of one identity on this device.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Profile {
    /// The anonymous id (UUID v4).
    pub anonymous_id: String,
    /// The known user id, once identified.
    pub user_id: Option<String>,
    /// Traits (CRM attributes, `setTraits`).
    pub traits: Map,
    /// The context document (DESIGN §3 `context`).
    pub context: Value,
    /// The current session.
    pub session: Session,
    /// First activity (epoch ms).
    pub first_seen: f64,
    /// Last activity (epoch ms).
    pub last_seen: f64,
    /// Per-event aggregates.
    pub events: Vec<EventStats>,
    /// Recent raw events, oldest first.
    pub recent: Vec<RecentEvent>,
    /// Experience exposures and segments reported to the collector (DESIGN §13).
    pub activation: Activation,
    recent_bytes: usize,
    /// Incremental state of the behavioural segment operators and scores.
    pub behaviour: crate::core::segment::State,
    /// Storage bookkeeping: per tab, the last journaled operation this stored profile includes
    /// `{tab: seq}`, least recently written first, at most [`MAX_WRITERS`] (see `journal.rs`).
    /// merge: not merged — device-local sync state; keep the target profile's list as it is.
    pub writers: Map,
    /// When each trait was last set (epoch ms, as `Value::Num`), for last-writer-wins merges.
    pub trait_times: Map,
    /// Anonymous ids linked to this known identity, oldest first.
    pub linked: Vec<String>,
    /// Identity generation: raised by every identity change (identify to another user, reset)
    /// so that a tab holding an older identity adopts the stored one instead of writing over it.
    pub epoch: u32,
}

/// The most tabs remembered in [`Profile::writers`] (the least recent is forgotten first).
pub const MAX_WRITERS: usize = 8;

impl Profile {
    /// A fresh profile for `anonymous_id`, first seen `now`.
    pub fn new(anonymous_id: String, now: f64) -> Profile {
        Profile { anonymous_id, first_seen: now, last_seen: now, context: Value::Obj(Map::new()), ..Default::default() }
    }

    /// Records an event occurrence into the aggregates and the ring.
    pub fn record(&mut self, name: &str, ts: f64, props: &Map) {
        let i = match self.events.iter().position(|e| e.name == name) {
            Some(i) => i,
            None => {
                self.events.push(EventStats { name: name.into(), counts: Counts::new(), first: ts, last: ts });
                self.events.len() - 1
            }
        };
        // `get_mut` (always Some here) and the other unindexed forms in this file leave out the
        // bounds-check panic and its message (143 B gzip less in all).
        if let Some(stats) = self.events.get_mut(i) {
            stats.counts.add(minute_of(ts), 1);
            stats.first = stats.first.min(ts);
            stats.last = stats.last.max(ts);
        }
        if self.first_seen == 0.0 || ts < self.first_seen {
            self.first_seen = ts;
        }
        self.last_seen = self.last_seen.max(ts);
        self.push_recent(RecentEvent { name: name.into(), ts, props: props.clone() });
    }

    /// Applies a journaled operation: sessions, page views, aggregates, ring, traits.
    pub fn apply(&mut self, op: &Op, session_timeout: f64) {
        match op {
            Op::Event { page, name, ts, props, id } => {
                // Auto-capture's `Page Engagement` reports time already spent: it goes on with
                // the visit it was spent in, and never starts one (a tab left idle past the
                // timeout, then hidden or closed, is no new visit).
                let s = &self.session;
                if name != "Page Engagement" || (!s.id.is_empty() && *ts - s.last_activity <= session_timeout) {
                    self.touch_session(*ts, session_timeout, id);
                }
                if *page {
                    self.session.pageviews = self.session.pageviews.saturating_add(1);
                }
                self.record(name, *ts, props);
            }
            Op::Expose { experience, variant, ts, retention } => self.activation.expose(experience, variant, *ts, *retention),
            Op::Traits { traits, ts } => self.set_traits(traits, *ts),
        }
    }

    /// Activity at `now`: continues the session, or starts session `new_id` after `timeout` ms
    /// of inactivity (or when there is none).
    pub fn touch_session(&mut self, now: f64, timeout: f64, new_id: &str) {
        let s = &mut self.session;
        // The clock was set back by more than the timeout (no two tabs' events are that far out
        // of order): the visit goes on from `now`, its duration kept, so inactivity by the new
        // clock ends it again instead of the session standing until the clock catches up.
        let back = s.last_activity - now;
        if back > timeout {
            s.started_at -= back;
            s.last_activity = now;
        }
        if s.id.is_empty() || now - s.last_activity > timeout {
            s.id = new_id.into();
            s.count = s.count.saturating_add(1);
            s.pageviews = 0;
            s.started_at = now;
            s.last_activity = now;
        }
        if now > s.last_activity {
            s.last_activity = now;
        }
    }

    /// When a retention of `r` ms next drops part of an event aggregate (the document's
    /// `events`): the end of the oldest minute counted, plus `r`.
    /// (Infinite when there is none.)
    pub fn next_drop(&self, r: f64) -> f64 {
        let mut m = f64::INFINITY;
        for e in &self.events {
            if let Some(x) = e.counts.first_minute() {
                m = m.min(x as f64);
            }
        }
        (m + 1.0) * 60_000.0 + r
    }

    /// Drops behaviour older than `cutoff` (epoch ms): minute counts, event names left with no
    /// count, ring events. Also folds over-long series (see `buckets.rs`).
    pub fn prune(&mut self, cutoff: f64) {
        let from = minute_of(cutoff);
        for e in self.events.iter_mut() {
            e.counts.prune(from);
            e.counts.compact(MAX_ENTRIES);
            // `firstAt` is the first event kept: its time when the recent ring holds it, else the
            // start of its minute (or the cutoff, within that minute).
            if e.first < cutoff {
                let m = e.counts.first_minute().map_or(cutoff, |m| (m as f64 * 60_000.0).max(cutoff));
                e.first = self.recent.iter().find(|r| r.ts >= m && r.name == e.name).map_or(m, |r| if r.ts < m + 60_000.0 { r.ts } else { m }).min(e.last);
            }
        }
        crate::core::sort::retain(&mut self.events, |e| e.counts.total() > 0);
        self.trim_recent(cutoff);
    }

    /// Keeps the aggregates within [`MAX_EVENT_NAMES`] names and [`MAX_EVENT_BYTES`] bytes by
    /// forgetting the least recently seen names, except those a definition of `defs` reads.
    pub fn bound_events(&mut self, defs: &Definitions) {
        loop {
            let mut bytes = 0;
            for e in &self.events {
                bytes += e.name.len() + 40 + 2 * e.counts.entries().len();
            }
            if self.events.len() <= MAX_EVENT_NAMES && bytes <= MAX_EVENT_BYTES {
                return;
            }
            let mut old: Option<(usize, f64)> = None;
            for (i, e) in self.events.iter().enumerate() {
                if old.map_or(true, |(_, last)| e.last < last) && !reads(defs, &e.name) {
                    old = Some((i, e.last));
                }
            }
            let Some((i, _)) = old else { return };
            crate::core::sort::remove(&mut self.events, i);
        }
    }

    /// Keeps the traits within [`MAX_TRAITS_BYTES`]: the most recently set first, each while it
    /// fits (one without a time last); whether any was dropped.
    pub fn bound_traits(&mut self) -> bool {
        let times = &mut self.trait_times;
        let mut order = Vec::new();
        let mut size = 1; // (as `Map::approx_size`: `{`, `}`, a comma between entries)
        for (i, (k, v)) in self.traits.iter().enumerate() {
            let s = k.len() + 4 + v.approx_size();
            size += s;
            order.push((times.get(k).and_then(Value::as_num).unwrap_or(f64::MIN), i, s));
        }
        if size <= MAX_TRAITS_BYTES {
            return false;
        }
        sort_by(&mut order, |a, b| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1));
        // Bytes, not bools: a vector of bools was a `vec!` of its own.
        let mut keep = vec![0u8; order.len()];
        size = 1;
        // Read in place (`&order`, and so for copyable elements elsewhere): a consuming loop
        // links a per-type `IntoIter` and its drop (56 B gzip less over three such loops).
        for &(_, i, s) in &order {
            if size + s <= MAX_TRAITS_BYTES {
                if let Some(k) = keep.get_mut(i) {
                    *k = 1;
                }
                size += s;
            }
        }
        let mut i = 0;
        self.traits.retain(|k, _| {
            let kept = keep.get(i) == Some(&1);
            i += 1;
            if !kept {
                times.remove(k);
            }
            kept
        });
        true
    }

    /// The last operation of `tab` this profile includes (0: none).
    pub fn writer_seq(&self, tab: &str) -> u32 {
        self.writers.get(tab).and_then(Value::as_num).map_or(0, |n| n as u32)
    }

    /// Records that this profile includes `tab`'s operations up to `seq`.
    pub fn set_writer(&mut self, tab: &str, seq: u32) {
        // Most recently written last: past the bound, the least recent tab is forgotten.
        self.writers.remove(tab);
        if self.writers.len() >= MAX_WRITERS {
            self.writers.remove_first();
        }
        self.writers.insert(tab, Value::Num(seq as f64));
    }

    /// Merges `traits` into the profile, each stamped with `ts` for last-writer-wins merges.
    pub fn set_traits(&mut self, traits: &Map, ts: f64) {
        for (k, v) in traits.iter() {
            self.traits.insert(k.as_str(), v.clone());
            self.trait_times.insert(k.as_str(), Value::Num(ts));
        }
    }

    /// Takes the recent ring out (leaving it empty).
    pub fn take_recent(&mut self) -> Vec<RecentEvent> {
        self.recent_bytes = 0;
        ::core::mem::take(&mut self.recent)
    }

    /// Appends to the recent ring, evicting the oldest beyond its bounds.
    pub fn push_recent(&mut self, e: RecentEvent) {
        self.recent_bytes += ring_size(&e);
        self.recent.push(e);
        self.trim_recent(f64::NEG_INFINITY);
    }

    /// Drops the ring events before `cutoff` (all of them: after a clock set back, one may follow
    /// a newer-stamped event) and the oldest beyond the bounds.
    fn trim_recent(&mut self, cutoff: f64) {
        let (mut k, mut bytes, len) = (0, self.recent_bytes, self.recent.len());
        for r in &self.recent {
            if !(len - k > RING_MAX_EVENTS || (bytes > RING_MAX_BYTES && len - k > 1)) {
                break;
            }
            bytes -= ring_size(r);
            k += 1;
        }
        // The first `k` go, and the others before `cutoff`. `retain` rather than `drain` (whose
        // range check links its panic messages) or `sort::drop_front` (whose swaps cost ≈ 1 µs
        // per event here, where the ring is trimmed at every event once full; `retain` moves
        // each kept event once).
        let mut i = 0;
        #[cfg(feature = "segments")]
        let st = &mut self.behaviour;
        crate::core::sort::retain(&mut self.recent, |r| {
            i += 1;
            let old = i > k && r.ts < cutoff;
            if old {
                bytes -= ring_size(r);
                // An event made after a clock set back may leave before older-made ones: a
                // foreign state that missed it takes it as seen, so that the ring's last events
                // it applies when adopted stay the ones it missed (`behaviour::align`), not one
                // made before it was let go.
                #[cfg(feature = "segments")]
                {
                    let e = st.n - (len - i) as f64;
                    for s in st.nodes.iter_mut() {
                        if s.w >= 0.0 && s.w < e {
                            s.w += 1.0;
                        }
                    }
                }
            }
            i > k && !old
        });
        self.recent_bytes = bytes;
    }

    /// Aggregates of `name`, if seen.
    pub fn stats(&self, name: &str) -> Option<&EventStats> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The profile document (DESIGN §3) as conditions see it. `extra` fields (scores, segments,
    /// consent) are appended by the caller.
    pub fn document(&self) -> Map {
        let mut m = Map::new();
        for k in PROFILE_KEYS {
            m.insert(k, self.field(k));
        }
        m
    }

    /// One top-level field of [`Profile::document`] (`null` for a key it does not have).
    pub fn field(&self, key: &str) -> Value {
        match key {
            "anonymousId" => Some(self.anonymous_id.as_str()).filter(|s| !s.is_empty()).into(),
            "userId" => self.user_id.as_deref().into(),
            "identified" => self.user_id.is_some().into(),
            "traits" => Value::Obj(self.traits.clone()),
            "context" => self.context.clone(),
            "session" => Value::Obj(
                Map::new()
                    .with("id", self.session.id.as_str())
                    .with("count", self.session.count)
                    .with("pageviews", self.session.pageviews)
                    // No session before the first event (not the epoch's date).
                    .with("startedAt", if self.session.id.is_empty() { String::new() } else { iso(self.session.started_at) })
                    .with("durationSec", ((self.session.last_activity - self.session.started_at) / 1000.0).max(0.0) as u32),
            ),
            "firstSeen" => iso(self.first_seen).into(),
            "lastSeen" => iso(self.last_seen).into(),
            "events" => {
                let mut events = Map::new();
                for e in &self.events {
                    let m = Map::new().with("count", e.counts.total()).with("firstAt", iso(e.first)).with("lastAt", iso(e.last));
                    events.insert(e.name.as_str(), Value::Obj(m));
                }
                Value::Obj(events)
            }
            _ => Value::Null,
        }
    }
}

/// The top-level keys of [`Profile::document`], in order.
pub const PROFILE_KEYS: [&str; 9] = ["anonymousId", "userId", "identified", "traits", "context", "session", "firstSeen", "lastSeen", "events"];

fn ring_size(e: &RecentEvent) -> usize {
    e.name.len() + 16 + e.props.approx_size()
}
