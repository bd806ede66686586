//! The local pseudonymous profile (DESIGN §3): identity, traits, context, session, bounded
//! per-event aggregates and a bounded ring of recent raw events.
//!
//! Invariants: `events` holds one entry per event name with minute counts no older than the
//! retention; `recent` holds at most [`RING_MAX_EVENTS`] events and [`RING_MAX_BYTES`] bytes,
//! oldest first.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::activation::Activation;
use crate::core::buckets::{minute_of, Counts};
use crate::core::time::iso;
use crate::core::value::{Map, Value};
use alloc::collections::VecDeque;

/// The most raw events the recent ring keeps.
pub const RING_MAX_EVENTS: usize = 200;
/// The most bytes (approximate JSON size) the recent ring keeps.
pub const RING_MAX_BYTES: usize = 24 * 1024;

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
    pub recent: VecDeque<RecentEvent>,
    /// Experience exposures and segments reported to the collector (DESIGN §13).
    pub activation: Activation,
    recent_bytes: usize,
    /// Incremental state of the behavioural segment operators and scores.
    pub behaviour: crate::core::segment::State,
}

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
        let stats = &mut self.events[i];
        stats.counts.add(minute_of(ts), 1);
        stats.first = stats.first.min(ts);
        stats.last = stats.last.max(ts);
        if self.first_seen == 0.0 || ts < self.first_seen {
            self.first_seen = ts;
        }
        self.last_seen = self.last_seen.max(ts);
        self.push_recent(RecentEvent { name: name.into(), ts, props: props.clone() });
    }

    /// Appends to the recent ring, evicting the oldest beyond its bounds.
    pub fn push_recent(&mut self, e: RecentEvent) {
        self.recent_bytes += ring_size(&e);
        self.recent.push_back(e);
        while self.recent.len() > RING_MAX_EVENTS || (self.recent_bytes > RING_MAX_BYTES && self.recent.len() > 1) {
            if let Some(old) = self.recent.pop_front() {
                self.recent_bytes -= ring_size(&old);
            }
        }
    }

    /// Aggregates of `name`, if seen.
    pub fn stats(&self, name: &str) -> Option<&EventStats> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The profile document (DESIGN §3) as conditions see it. `extra` fields (scores, segments,
    /// consent) are appended by the caller.
    pub fn document(&self) -> Map {
        let mut events = Map::new();
        for e in &self.events {
            events.insert(
                e.name.as_str(),
                Value::Obj(
                    Map::new()
                        .with("count", e.counts.total())
                        .with("firstAt", iso(e.first))
                        .with("lastAt", iso(e.last)),
                ),
            );
        }
        let session = Map::new()
            .with("id", self.session.id.as_str())
            .with("count", self.session.count)
            .with("pageviews", self.session.pageviews)
            .with("startedAt", iso(self.session.started_at))
            .with("durationSec", ((self.session.last_activity - self.session.started_at) / 1000.0).max(0.0) as u32);
        Map::new()
            .with("anonymousId", self.anonymous_id.as_str())
            .with("userId", self.user_id.as_deref())
            .with("identified", self.user_id.is_some())
            .with("traits", Value::Obj(self.traits.clone()))
            .with("context", self.context.clone())
            .with("session", Value::Obj(session))
            .with("firstSeen", iso(self.first_seen))
            .with("lastSeen", iso(self.last_seen))
            .with("events", Value::Obj(events))
    }
}

fn ring_size(e: &RecentEvent) -> usize {
    e.name.len() + 16 + e.props.approx_size()
}
