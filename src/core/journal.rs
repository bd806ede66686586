//! The operations this tab applied to the profile, kept until storage is known to hold them.
//!
//! Many tabs share one stored profile, and `localStorage` read-modify-write is not atomic across
//! tabs (a tab's cached copy can even lag another tab's write). So each tab journals what it did:
//! its in-memory profile is always *the stored profile + its own operations not yet in it*. The
//! stored profile records, per tab, the last operation it includes (`Profile::writers`); on every
//! write and every `storage` event the tab rebases onto the stored profile and re-applies the
//! operations after that mark. Operations already in storage are kept [`KEEP_MS`] longer, so that
//! a write from a tab that read a stale copy (and dropped them) is detected and repaired.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::value::Map;

/// How long an operation stays journaled after storage held it (ms).
pub const KEEP_MS: f64 = 10_000.0;
/// The most operations journaled (the oldest already-stored ones go first).
pub const MAX_OPS: usize = 4096;

/// One change to the profile, replayable on top of another tab's stored profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A page view (`page`) or named event (`track`).
    Event {
        /// Whether it is a page view (counts into `session.pageviews`).
        page: bool,
        /// Event name (`"Page Viewed"` for page views).
        name: String,
        /// Epoch ms of the call.
        ts: f64,
        /// Properties.
        props: Map,
        /// The event's message id; also the id of the session it starts, if it starts one (so
        /// replays in every tab agree on the session id).
        id: String,
    },
    /// An experience exposure (`decide`), counted for frequency caps.
    Expose {
        /// Experience id.
        experience: String,
        /// Variant id shown.
        variant: String,
        /// Epoch ms of the decision.
        ts: f64,
        /// The retention the exposure counts are kept for (ms).
        retention: f64,
    },
    /// `setTraits`.
    Traits {
        /// The traits merged.
        traits: Map,
        /// Epoch ms of the call.
        ts: f64,
    },
}

/// A journaled operation.
pub struct Entry {
    /// Its sequence number in this tab.
    pub seq: u32,
    /// Epoch ms it was journaled.
    pub at: f64,
    /// The operation.
    pub op: Op,
}

/// This tab's journal.
pub struct Journal {
    /// This tab's id (random, per page load).
    pub tab: String,
    seq: u32,
    ops: Vec<Entry>,
}

impl Journal {
    /// An empty journal for tab `tab`.
    pub fn new(tab: String) -> Journal {
        Journal { tab, seq: 0, ops: Vec::new() }
    }

    /// The sequence number of the last operation journaled.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Journals `op`, applied at `now`.
    pub fn push(&mut self, op: Op, now: f64) {
        self.seq += 1;
        if self.ops.len() >= MAX_OPS {
            // Drop the oldest half at once (amortized; never reached in normal use).
            crate::core::sort::drop_front(&mut self.ops, MAX_OPS / 2);
        }
        self.ops.push(Entry { seq: self.seq, at: now, op });
    }

    /// Operations after `stored` (the mark the stored profile holds for this tab), in order.
    pub fn after(&self, stored: u32) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(move |e| e.seq > stored).map(|e| &e.op)
    }

    /// Drops operations storage holds (`seq <= stored`) journaled before `now - KEEP_MS`.
    pub fn trim(&mut self, stored: u32, now: f64) {
        // Operations are in seq and time order: what goes is a prefix.
        // Found by a scan (the removal after it is linear anyway): no `partition_point` of its own.
        let mut i = 0;
        while self.ops.get(i).is_some_and(|e| e.seq <= stored && e.at < now - KEEP_MS) {
            i += 1;
        }
        crate::core::sort::drop_front(&mut self.ops, i);
    }

    /// Takes every operation held, with its sequence number (the entries themselves: a copy
    /// into pairs was a vector type of its own).
    pub fn take_all(&mut self) -> Vec<Entry> {
        ::core::mem::take(&mut self.ops)
    }

    /// Forgets everything (after `forget()`).
    pub fn clear(&mut self) {
        self.ops.clear();
    }

    /// Number of operations held.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation is held.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
