//! Behavioural operators (`$performed`, `$sequence`) compiled into incremental state.
//!
//! Each operator node of the loaded definitions is keyed by a fingerprint of what its state
//! depends on (event, `where`, window, aggregate). Its state lives in the profile
//! ([`State`]), is updated once per matching event, and is read in time independent of the
//! visitor's history: windows keep only what can still be inside them, pruned from the front.
//! Unchanged definitions keep their state across reloads; new or changed ones are back-filled
//! from the profile's ring of recent events.
//!
//! Windows: an event at `t` is inside a window `w` at `now` while `now - t < w` (exact to the
//! millisecond where timestamps are kept — counted thresholds, sequences); other counts and
//! their aggregates (sum, avg, min/max, distinct) are kept per minute, a bucket being inside
//! while its end is less than `w` ago (exact to the minute). Data older than the retention is
//! dropped.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::buckets::Counts;
use crate::core::codec::{pack, unpack};
use crate::core::condition::{eval_condition, js_string, to_number, Ctx};
use crate::core::profile::{EventStats, RecentEvent};
use crate::core::score::{ScoreDef, ScoreSlot};
use crate::core::time::{floor, MINUTE};
use crate::core::value::Value;

/// The aggregate a `$performed` node tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Agg {
    /// Only the count.
    Count,
    /// Sum of a numeric property.
    Sum,
    /// Average of a numeric property.
    Avg,
    /// Minimum of a numeric property.
    Min,
    /// Maximum of a numeric property.
    Max,
    /// Number of distinct values of a property.
    Distinct,
}

/// A compiled `$performed`.
#[derive(Clone, Debug, PartialEq)]
pub struct Performed {
    /// Event name.
    pub event: String,
    /// Condition on the event's properties.
    pub filter: Option<Value>,
    /// Window (ms); the retention when the definition has none.
    pub within: f64,
    /// Aggregate.
    pub agg: Agg,
    /// The aggregated property (dot path), empty for `Count`.
    pub prop: String,
    /// When non-zero, the count is tested against numbers only, and every count from `k` up gets
    /// the same answer: only the `k` latest timestamps are kept (the count read is at most `k`).
    pub k: u32,
}

/// A compiled `$sequence`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Steps: event name and property condition (null for none: a condition is an object), in
    /// order. (Pairs of the type a [`Map`](crate::core::value::Map) holds: a pair type of its
    /// own brought its own vector code.)
    pub steps: Vec<(String, Value)>,
    /// Maximum time from the first step to the last (ms).
    pub within: Option<f64>,
    /// The retention (ms): a completed sequence is forgotten when its first step is this old.
    pub retention: f64,
}

/// A behavioural node.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    /// `$performed`.
    Performed(Performed),
    /// `$sequence`.
    Sequence(Sequence),
}

/// A behavioural node and its state fingerprint.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Fingerprint of everything the state depends on (53 bits, storable as a JSON number).
    pub key: u64,
    /// The node.
    pub spec: Spec,
}

/// Behavioural state of one profile: per node and per score, keyed by fingerprint.
///
/// The node states of the loaded definitions come first, in their order (held); after them, those
/// of nodes this tab does not hold (foreign: another tab's definitions, or earlier ones, kept for
/// the tabs that hold them), each up to date at the `w`-th event. A tab that loads the node
/// again adopts its state and applies to it the ring's events after that one (recorded by tabs
/// that did not hold it). A stored state is read as foreign: the definitions loaded next adopt
/// it, with the events recorded since it was read. The state of a score this tab does not hold
/// is kept the same way, as a foreign node state ([`NodeState::Score`]); stored score states are
/// read as such too.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct State {
    /// Node states.
    pub nodes: Vec<Slot>,
    /// Score states, of the loaded scores, in their order.
    pub scores: Vec<ScoreSlot>,
    /// Events applied to this profile, counted from an arbitrary start (a stored state is read at
    /// 1e15): the ring's last event is the `n`-th.
    pub n: f64,
}

/// The most foreign node states (score states among them) a stored state keeps when read (the
/// first ones).
pub const FOREIGN_MAX: usize = 128;

/// A foreign node state that missed more events than this (a heavy visitor's retention) is
/// dropped when read: no tab has held it for that long.
pub const FOREIGN_MISSED_MAX: f64 = 10_000.0;

/// The state of one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// The node's fingerprint.
    pub key: u64,
    /// Its state.
    pub st: NodeState,
    /// Held: -1; foreign: the event count [`State::n`] it is up to date at.
    pub w: f64,
}

/// Per-node state.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeState {
    /// `$performed`.
    Perf(PerfState),
    /// `$sequence`.
    Seq(SeqState),
    /// A score's value and its time ([`ScoreSlot`]), kept foreign only: no loaded node has it.
    Score(f64, f64),
}

/// Incremental state of a `$performed` node.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PerfState {
    /// Threshold mode: at most this many latest timestamps (0 = bucket mode).
    pub k: u32,
    /// Threshold mode: the latest timestamps, oldest first.
    pub recent: Vec<f64>,
    /// Bucket mode: `(minute, count, sum)` oldest first.
    pub buckets: Vec<(f64, f64, f64)>,
    /// Running count over `buckets`.
    pub n: f64,
    /// Running sum over `buckets`.
    pub sum: f64,
    /// Min/max: a monotonic queue of `(ts, value)`; the front is the extreme.
    pub ext: Vec<(f64, f64)>,
    /// Distinct: `(value as text, last seen ms)`.
    pub distinct: Vec<(String, f64)>,
    /// Whether `ext` keeps the maximum (else the minimum).
    pub max: bool,
}

/// Incremental state of a `$sequence` node.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeqState {
    /// For each step but the last: the latest start (ms) of a partial match through it, -1 if none.
    pub partial: Vec<f64>,
    /// The latest start (ms) of a complete match, -1 if none.
    pub done: f64,
}

/// The most distinct values a node keeps.
const DISTINCT_MAX: usize = 500;

impl Node {
    /// A fresh state for this node.
    pub fn fresh(&self) -> NodeState {
        match &self.spec {
            Spec::Performed(p) => NodeState::Perf(PerfState { k: p.k, max: p.agg == Agg::Max, ..Default::default() }),
            Spec::Sequence(s) => {
                // Pushed, not `vec![-1.0; n]`: that links its own fill code for f64 alone.
                let mut partial = Vec::new();
                for _ in &s.steps {
                    partial.push(-1.0);
                }
                NodeState::Seq(SeqState { partial, done: -1.0 })
            }
        }
    }

    /// Whether an event named `name` can concern this node.
    pub fn listens(&self, name: &str) -> bool {
        match &self.spec {
            Spec::Performed(p) => p.event == name,
            Spec::Sequence(s) => s.steps.iter().any(|(e, _)| e == name),
        }
    }

    /// Applies one event (in call order) to the node's state.
    pub fn update(&self, st: &mut NodeState, name: &str, ts: f64, props: &Value, cx: &Ctx) {
        let pass = |f: &Option<Value>| f.as_ref().map_or(true, |c| eval_condition(props, c, cx));
        match (&self.spec, st) {
            (Spec::Performed(p), NodeState::Perf(s)) => {
                if p.event != name || !pass(&p.filter) {
                    return;
                }
                let v = if p.prop.is_empty() { &Value::Null } else { props.path(&p.prop).unwrap_or(&Value::Null) };
                let x = to_number(v, cx.host);
                // A number, or text JavaScript reads as one: any such text has a digit (a blank
                // string, which `Number` reads as 0, has none).
                let numeric = x.is_finite() && matches!(v, Value::Num(_) | Value::Str(_)) && v.as_str().is_none_or(|t| t.as_bytes().iter().any(u8::is_ascii_digit));
                match p.agg {
                    Agg::Count => {}
                    Agg::Distinct if v.is_null() => return,
                    Agg::Distinct => {}
                    _ if !numeric => return,
                    _ => {}
                }
                // Text (a `distinct` value) reads as NaN, which is not stored: its buckets count 0.
                s.add(p, ts, if numeric { x } else { 0.0 }, v, cx);
            }
            (Spec::Sequence(q), NodeState::Seq(s)) => {
                let last = q.steps.len().saturating_sub(1);
                for i in (0..q.steps.len()).rev() {
                    let Some((ev, filter)) = q.steps.get(i) else { continue };
                    if ev != name || !(filter.is_null() || eval_condition(props, filter, cx)) {
                        continue;
                    }
                    let start = if i == 0 { ts } else { s.partial.get(i - 1).copied().unwrap_or(-1.0) };
                    if start < 0.0 || q.within.is_some_and(|w| ts - start >= w) {
                        continue;
                    }
                    if i == last {
                        s.done = s.done.max(start);
                    } else if let Some(slot) = s.partial.get_mut(i) {
                        *slot = slot.max(start);
                    }
                }
            }
            _ => {}
        }
    }

    /// Observes the node at `now`, pruning what left its window. A `$performed` answers its
    /// count and aggregate (null when there is none); a `$sequence` whether it completed and the
    /// number of steps matched so far. With `pruned`, the state was observed at `now` already
    /// (pruning again would change nothing).
    pub fn observe(&self, st: &mut NodeState, now: f64, pruned: bool) -> (bool, f64, Value) {
        match (&self.spec, st) {
            (Spec::Performed(p), NodeState::Perf(s)) => {
                if !pruned {
                    s.prune(now - p.within);
                }
                let count = if p.k > 0 { s.recent.len() as f64 } else { s.n };
                let value = match p.agg {
                    Agg::Count => Value::Null,
                    Agg::Sum => Value::Num(s.sum),
                    Agg::Avg if s.n > 0.0 => Value::Num(s.sum / s.n),
                    Agg::Min | Agg::Max => s.ext.first().map_or(Value::Null, |e| Value::Num(e.1)),
                    Agg::Distinct => Value::Num(s.distinct.len() as f64),
                    _ => Value::Null,
                };
                (true, count, value)
            }
            (Spec::Sequence(q), NodeState::Seq(s)) => {
                if s.done >= 0.0 && s.done <= now - q.retention {
                    s.done = -1.0;
                }
                if let Some(w) = q.within {
                    for x in s.partial.iter_mut() {
                        if *x >= 0.0 && *x <= now - w {
                            *x = -1.0;
                        }
                    }
                }
                let steps = if s.done >= 0.0 {
                    q.steps.len()
                } else {
                    s.partial.iter().rposition(|x| *x >= 0.0).map_or(0, |i| i + 1)
                };
                (s.done >= 0.0, steps as f64, Value::Null)
            }
            _ => (false, 0.0, Value::Null),
        }
    }

    /// The next time after `now` when this node's result may change without an event.
    pub fn next_change(&self, st: &NodeState, now: f64) -> Option<f64> {
        let mut best: Option<f64> = None;
        let mut consider = |t: f64| {
            if t > now && best.map_or(true, |b| t < b) {
                best = Some(t);
            }
        };
        match (&self.spec, st) {
            (Spec::Performed(p), NodeState::Perf(s)) => {
                let w = p.within;
                if let Some(t) = s.recent.first() {
                    consider(t + w);
                }
                // Min/max and distinct values leave with their bucket.
                if let Some(b) = s.buckets.first() {
                    consider((b.0 + 1.0) * MINUTE + w);
                }
            }
            (Spec::Sequence(q), NodeState::Seq(s)) if s.done >= 0.0 => consider(s.done + q.retention),
            _ => {}
        }
        best
    }
}

impl PerfState {
    fn add(&mut self, p: &Performed, ts: f64, x: f64, v: &Value, cx: &Ctx) {
        if self.k > 0 {
            let i = self.recent.iter().rposition(|t| *t <= ts).map_or(0, |i| i + 1);
            crate::core::sort::insert(&mut self.recent, i, ts);
            trim(&mut self.recent, self.k);
            return;
        }
        let minute = floor(ts / MINUTE);
        match self.buckets.iter().rposition(|b| b.0 <= minute) {
            Some(i) if self.buckets.get(i).is_some_and(|b| b.0 == minute) => {
                if let Some(b) = self.buckets.get_mut(i) {
                    b.1 += 1.0;
                    b.2 += x;
                }
            }
            i => crate::core::sort::insert(&mut self.buckets, i.map_or(0, |i| i + 1), (minute, 1.0, x)),
        }
        self.n += 1.0;
        if p.agg != Agg::Count && p.agg != Agg::Distinct {
            self.sum += x;
        }
        match p.agg {
            Agg::Min | Agg::Max => self.push_ext(ts, x),
            Agg::Distinct => {
                let key = js_string(v, cx.host);
                see(&mut self.distinct, &key, ts);
            }
            _ => {}
        }
    }

    /// Monotonic queue insert: drop entries an (at least as recent) better value dominates.
    fn push_ext(&mut self, ts: f64, x: f64) {
        let is_max = self.max;
        let dominated = |old: f64| if is_max { old <= x } else { old >= x };
        if self.ext.last().is_some_and(|b| b.0 > ts) {
            // Out of order (merge, back-fill): rebuild the queue.
            let mut all = ::core::mem::take(&mut self.ext);
            let i = all.iter().rposition(|e| e.0 <= ts).map_or(0, |i| i + 1);
            crate::core::sort::insert(&mut all, i, (ts, x));
            for &(t, v) in &all {
                self.push_ext(t, v);
            }
            return;
        }
        while self.ext.last().is_some_and(|b| dominated(b.1)) {
            self.ext.pop();
        }
        self.ext.push((ts, x));
    }

    /// Drops what is not after `from` (events at or before it are out of the window). Bucketed
    /// events leave with their minute, and so do their min/max and distinct values: the count and
    /// the aggregate of a node always cover the same events.
    fn prune(&mut self, from: f64) {
        // Oldest first: what goes is a prefix (dropped as `trim` does: a `retain` was one more
        // instance of its own).
        let mut i = 0;
        while self.recent.get(i).is_some_and(|t| *t <= from) {
            i += 1;
        }
        crate::core::sort::drop_front(&mut self.recent, i);
        let live = |minute: f64| (minute + 1.0) * MINUTE > from;
        // Oldest first: what leaves is a prefix.
        let mut i = 0;
        while let Some(b) = self.buckets.get(i).filter(|b| !live(b.0)) {
            self.n -= b.1;
            self.sum -= b.2;
            i += 1;
        }
        crate::core::sort::drop_front(&mut self.buckets, i);
        if self.buckets.is_empty() {
            self.n = 0.0;
            self.sum = 0.0;
        }
        // In time order too (a monotonic queue): a prefix.
        let mut i = 0;
        while self.ext.get(i).is_some_and(|e| !live(floor(e.0 / MINUTE))) {
            i += 1;
        }
        crate::core::sort::drop_front(&mut self.ext, i);
        crate::core::sort::retain(&mut self.distinct, |d| live(floor(d.1 / MINUTE)));
    }
}

/// Keeps the `k` latest timestamps (k = 0: all).
fn trim(v: &mut Vec<f64>, k: u32) {
    let extra = v.len().saturating_sub(k as usize);
    if k > 0 {
        crate::core::sort::drop_front(v, extra);
    }
}

fn see(list: &mut Vec<(String, f64)>, key: &str, ts: f64) {
    if let Some(d) = list.iter_mut().find(|d| d.0 == key) {
        d.1 = d.1.max(ts);
    } else if list.len() < DISTINCT_MAX {
        list.push((key.into(), ts));
    }
}

/// Brings `state` in line with the compiled `nodes` and `scores` (same order, same keys): states
/// of unchanged definitions are kept, foreign ones adopted (brought up to date from `ring`, the
/// recent events, oldest first), new ones built by replaying `ring`; the states of definitions
/// no longer loaded become foreign (see [`State`]).
pub fn align(state: &mut State, nodes: &[Node], scores: &[ScoreDef], ring: &[RecentEvent], events: &[EventStats], cx: &Ctx) {
    let n = state.n;
    let mut old = ::core::mem::take(&mut state.nodes);
    // Held score states join the foreign ones, up to date: a score's state is adopted one way.
    let_go(&mut old, &::core::mem::take(&mut state.scores), n);
    // To fill: (index, 0) for a new slot (from the minute counts and the ring), (index, j + 1)
    // for an adopted foreign one, up to date at its `w`-th event: from ring event `j` on.
    let mut new_nodes = Vec::new();
    for (i, d) in nodes.iter().enumerate() {
        let slot = match take_key(&mut old, d.key) {
            Some(mut s) => {
                // Adopted: the events it missed, if any, from the ring.
                if s.w >= 0.0 && s.w < n {
                    new_nodes.push((i, ring.len().saturating_sub((n - s.w) as usize) + 1));
                }
                s.w = -1.0;
                s
            }
            None => {
                new_nodes.push((i, 0));
                Slot { key: d.key, st: d.fresh(), w: -1.0 }
            }
        };
        state.nodes.push(slot);
    }
    // The same for the scores (no node has a score's key). A login's merge keeps a score's two
    // states apart ([`merge`]): they add after decay to a common time here, taken by the last of
    // the scores with that key (others alike take one each).
    let mut new_scores = Vec::new();
    for (i, d) in scores.iter().enumerate() {
        let mut slot = ScoreSlot { key: d.key, v: 0.0, t: 0.0 };
        let mut f = 0;
        while let Some(s) = take_key(&mut old, d.key) {
            if let NodeState::Score(v, t) = s.st {
                d.add(&mut slot, v, t);
            }
            f = ring.len().saturating_sub((n - s.w) as usize) + 1;
            if scores.iter().skip(i + 1).any(|e| e.key == d.key) {
                break;
            }
        }
        if f <= ring.len() {
            new_scores.push((i, f));
        }
        state.scores.push(slot);
    }
    // What is no longer held is kept for the tabs that hold it (`decode` bounds it).
    for s in old.iter_mut() {
        if s.w < 0.0 {
            s.w = n;
        }
    }
    state.nodes.append(&mut old);
    if new_nodes.is_empty() && new_scores.is_empty() {
        return;
    }
    // Back-fill the new slots only (kept ones already saw those events). Before the ring, the
    // profile's per-minute counts stand in where no property is read (a count without `where`, a
    // score rule without `where`): each event at the start of its minute.
    // In the ring's first minute, only the events the ring does not hold.
    let start = floor(ring.iter().fold(f64::INFINITY, |a, r| a.min(r.ts)) / MINUTE) * MINUTE;
    for e in events {
        for &(m, k) in e.counts.entries() {
            let ts = m as f64 * MINUTE;
            if ts > start {
                break;
            }
            let k = if ts < start { k } else { k.saturating_sub(ring.iter().filter(|r| r.ts < start + MINUTE && r.name == e.name).count() as u32) };
            for &(i, f) in &new_nodes {
                if let (0, Some(n @ Node { spec: Spec::Performed(Performed { event, filter: None, agg: Agg::Count, .. }), .. }), Some(slot)) = (f, nodes.get(i), state.nodes.get_mut(i)) {
                    for _ in 0..if *event == e.name { k } else { 0 } {
                        n.update(&mut slot.st, &e.name, ts, &Value::Null, cx);
                    }
                }
            }
            for &(i, f) in &new_scores {
                if let (0, Some(d), Some(slot)) = (f, scores.get(i), state.scores.get_mut(i)) {
                    for r in &d.rules {
                        if r.event == e.name && r.filter.is_none() {
                            d.add(slot, r.points * k as f64, ts);
                        }
                    }
                }
            }
        }
    }
    for (j, r) in ring.iter().enumerate() {
        let props = Value::Obj(r.props.clone());
        for &(i, f) in &new_nodes {
            if let (true, Some(n), Some(slot)) = (j + 1 >= f, nodes.get(i), state.nodes.get_mut(i)) {
                n.update(&mut slot.st, &r.name, r.ts, &props, cx);
            }
        }
        for &(i, f) in &new_scores {
            if let (true, Some(d), Some(slot)) = (j + 1 >= f, scores.get(i), state.scores.get_mut(i)) {
                d.update(slot, &r.name, r.ts, &props, cx);
            }
        }
    }
}

/// Appends `scores` to `states` as foreign score states up to date at event count `w`.
fn let_go(states: &mut Vec<Slot>, scores: &[ScoreSlot], w: f64) {
    for s in scores {
        states.push(Slot { key: s.key, st: NodeState::Score(s.v, s.t), w });
    }
}

/// Takes the state keyed `key` out of `states`, if there is one.
fn take_key(states: &mut Vec<Slot>, key: u64) -> Option<Slot> {
    let j = states.iter().position(|s| s.key == key)?;
    Some(states.swap_remove(j))
}

/// Whether `state` already matches the compiled definitions (held slots in their order, then
/// foreign ones only).
pub fn is_aligned(state: &State, nodes: &[Node], scores: &[ScoreDef]) -> bool {
    // One plain loop: slot `i` is held exactly when a definition `i` exists, with its key.
    let mut i = 0;
    for s in &state.nodes {
        let d = nodes.get(i);
        if (s.w < 0.0) != d.is_some() || d.is_some_and(|d| d.key != s.key) {
            return false;
        }
        i += 1;
    }
    i >= nodes.len()
        && state.scores.len() == scores.len()
        && state.scores.iter().zip(scores).all(|(s, d)| s.key == d.key)
}

/// Merges `other` into `into` (two profiles of one person): counts and sums add, windows keep
/// the union, sequences keep the latest matches. Score states are all kept apart, foreign (the
/// half-life of a score the definitions lack is not known here): the aligning that follows adds
/// those of each loaded score after decay to a common time, and a later one those of the others.
/// Commutative: `merge(a, b)` and `merge(b, a)` give equal states (up to slot order).
/// All node states come out foreign, up to date at the merge (the aligning that follows adopts
/// those loaded): what a foreign one missed before is told by its own profile's event count,
/// which the merged ring does not follow, so those events are not applied to it.
pub fn merge(into: &mut State, other: State) {
    // `other` is moved in: its slots are taken, not cloned (in place: a consuming loop linked
    // an `IntoIter` of its own).
    let mut nodes = other.nodes;
    for o in nodes.iter_mut() {
        match into.nodes.iter_mut().find(|s| s.key == o.key && !matches!(s.st, NodeState::Score(..))) {
            Some(s) => merge_node(&mut s.st, &o.st),
            None => into.nodes.push(::core::mem::replace(o, Slot { key: 0, st: NodeState::Seq(SeqState::default()), w: -1.0 })),
        }
    }
    let_go(&mut into.nodes, &::core::mem::take(&mut into.scores), 0.0);
    let_go(&mut into.nodes, &other.scores, 0.0);
    // Every state foreign, up to date at the merge (one loop over the merged slots).
    for s in into.nodes.iter_mut() {
        s.w = into.n;
    }
}

/// Merges node state `b` into `a` (see [`merge`]).
pub fn merge_node(a: &mut NodeState, b: &NodeState) {
    match (a, b) {
        (NodeState::Perf(x), NodeState::Perf(y)) => {
            for &t in &y.recent {
                let i = x.recent.iter().rposition(|u| *u <= t).map_or(0, |i| i + 1);
                crate::core::sort::insert(&mut x.recent, i, t);
            }
            x.k = x.k.max(y.k);
            trim(&mut x.recent, x.k);
            for &(m, n, s) in &y.buckets {
                match x.buckets.iter().rposition(|b| b.0 <= m) {
                    Some(i) if x.buckets.get(i).is_some_and(|b| b.0 == m) => {
                        if let Some(b) = x.buckets.get_mut(i) {
                            b.1 += n;
                            b.2 += s;
                        }
                    }
                    i => crate::core::sort::insert(&mut x.buckets, i.map_or(0, |i| i + 1), (m, n, s)),
                }
            }
            x.n += y.n;
            x.sum += y.sum;
            for &(t, v) in &y.ext {
                x.push_ext(t, v);
            }
            for (k, t) in &y.distinct {
                see(&mut x.distinct, k, *t);
            }
        }
        (NodeState::Seq(x), NodeState::Seq(y)) => {
            for (a, b) in x.partial.iter_mut().zip(&y.partial) {
                *a = a.max(*b);
            }
            x.done = x.done.max(y.done);
        }
        _ => {}
    }
}

fn num_arr(out: &mut Vec<Value>, xs: &[f64]) {
    let mut a = Vec::with_capacity(xs.len());
    for x in xs {
        a.push(Value::Num(*x));
    }
    out.push(Value::Arr(a));
}

/// The stored form of a [`State`] (part of the stored profile): per node
/// `[key, k, max, recent, buckets, ext, distinct]` (buckets as `[packed minutes and counts,
/// sums…]`, or flat `minute, count, sum` triples) or `[key, partial, done]`, a foreign one with
/// the number of events it missed after those (`n - w`), a foreign score's `[key, value, time,
/// missed]` (a shape an older build skips); then the held scores flat (`key, value, time` each).
pub fn encode(s: &State) -> Value {
    let mut nodes = Vec::with_capacity(s.nodes.len());
    for slot in &s.nodes {
        let mut a = vec![Value::Num(slot.key as f64)];
        match &slot.st {
            NodeState::Perf(p) => {
                a.push(Value::Num(p.k as f64));
                a.push(Value::Bool(p.max));
                num_arr(&mut a, &p.recent);
                // The minutes and counts packed as the event counts are (`codec::pack`: a
                // bucket in 2–4 characters, not 14), then the sums, none when all are 0; the
                // plain triples when a bucket does not fit (minutes not increasing, a count
                // that is not a whole number).
                let (mut c, mut sums, mut fits, mut prev) = (Counts::new(), vec![Value::Null], true, -1.0);
                let any = p.buckets.iter().any(|b| b.2 != 0.0);
                let mut flat = Vec::with_capacity(p.buckets.len() * 3);
                for b in &p.buckets {
                    flat.extend_from_slice(&[b.0, b.1, b.2]);
                    fits &= b.0 > prev && b.0 == b.0 as u32 as f64 && b.1 >= 1.0 && b.1 == b.1 as u32 as f64;
                    prev = b.0;
                    c.add(b.0 as u32, b.1 as u32);
                    if any {
                        sums.push(Value::Num(b.2));
                    }
                }
                if fits {
                    sums[0] = Value::Str(pack(&c));
                    a.push(Value::Arr(sums));
                } else {
                    num_arr(&mut a, &flat);
                }
                flat.clear();
                for e in &p.ext {
                    flat.extend_from_slice(&[e.0, e.1]);
                }
                num_arr(&mut a, &flat);
                let mut d = Vec::with_capacity(p.distinct.len() * 2);
                for (k, t) in &p.distinct {
                    d.push(Value::Str(k.clone()));
                    d.push(Value::Num(*t));
                }
                a.push(Value::Arr(d));
            }
            NodeState::Seq(q) => {
                num_arr(&mut a, &q.partial);
                a.push(Value::Num(q.done));
            }
            NodeState::Score(v, t) => {
                a.push(Value::Num(*v));
                a.push(Value::Num(*t));
            }
        }
        if slot.w >= 0.0 {
            a.push(Value::Num(s.n - slot.w));
        }
        nodes.push(Value::Arr(a));
    }
    let mut flat = Vec::with_capacity(s.scores.len() * 3);
    for x in &s.scores {
        flat.extend_from_slice(&[x.key as f64, x.v, x.t]);
    }
    let mut out = vec![Value::Arr(nodes)];
    num_arr(&mut out, &flat);
    Value::Arr(out)
}

/// The finite numbers of an array (empty when anything else is in it).
fn nums(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for x in v.as_arr().map_or(&[][..], |a| a.as_slice()) {
        match x {
            Value::Num(n) if n.is_finite() => out.push(*n),
            _ => return Vec::new(),
        }
    }
    out
}

/// Decodes a stored [`State`]; anything unreadable is dropped (it is rebuilt from the ring).
pub fn decode(v: Option<&Value>) -> State {
    // The event count starts high enough for every foreign slot's mark to stay positive.
    let mut s = State { n: 1e15, ..State::default() };
    let Some([Value::Arr(nodes), scores]) = v.and_then(Value::as_arr).map(|a| a.as_slice()) else { return s };
    // Foreign states: at most `FOREIGN_MAX`, none that missed more than `FOREIGN_MISSED_MAX`.
    let mut foreign = 0;
    for n in nodes {
        let a = n.as_arr().map_or(&[][..], |a| a.as_slice());
        let st = match a {
            [Value::Num(_), Value::Num(k), Value::Bool(max), recent, buckets, ext, Value::Arr(distinct), ..] => {
                let mut p = PerfState { k: *k as u32, max: *max, recent: nums(recent), ..Default::default() };
                let mut flat = nums(buckets);
                // Packed buckets: the minutes and counts, then the sums (see `encode`).
                if let Some([Value::Str(s), sums @ ..]) = buckets.as_arr().map(|a| a.as_slice()) {
                    if let Some(c) = unpack(s) {
                        let mut i = 0;
                        for &(m, n) in c.entries() {
                            let x = match sums.get(i) {
                                Some(Value::Num(x)) if x.is_finite() => *x,
                                _ => 0.0,
                            };
                            i += 1;
                            flat.extend_from_slice(&[m as f64, n as f64, x]);
                        }
                    }
                }
                for c in flat.chunks_exact(3) {
                    if let [m, n, x] = c {
                        p.buckets.push((*m, *n, *x));
                        p.n += n;
                        p.sum += x;
                    }
                }
                for c in nums(ext).chunks_exact(2) {
                    if let [t, x] = c {
                        p.ext.push((*t, *x));
                    }
                }
                for c in distinct.chunks_exact(2) {
                    if let [Value::Str(k), Value::Num(t)] = c {
                        p.distinct.push((k.clone(), *t));
                    }
                }
                NodeState::Perf(p)
            }
            [Value::Num(_), partial @ Value::Arr(_), Value::Num(done), ..] => NodeState::Seq(SeqState { partial: nums(partial), done: *done }),
            [Value::Num(_), Value::Num(v), Value::Num(t), Value::Num(_)] => NodeState::Score(*v, *t),
            _ => continue,
        };
        let missed = match a.get(7).or(a.get(3)) {
            Some(Value::Num(m)) => {
                foreign += 1;
                *m
            }
            _ => 0.0,
        };
        if let (Some(Value::Num(key)), true) = (a.first(), foreign <= FOREIGN_MAX && missed <= FOREIGN_MISSED_MAX) {
            // Read as foreign (the definitions loaded next adopt it), up to date but for the
            // events it missed: a foreign state's number follows it, 8th of a `$performed`, 4th
            // of a `$sequence` or a score (the 4th of a `$performed` is an array).
            s.nodes.push(Slot { key: *key as u64, st, w: s.n - missed });
        }
    }
    // Held score states are read as foreign too (after the bound: the writer held them).
    for c in nums(scores).chunks_exact(3) {
        if let [k, v, t] = c {
            s.nodes.push(Slot { key: *k as u64, st: NodeState::Score(*v, *t), w: s.n });
        }
    }
    s
}

/// A 53-bit FNV-1a fingerprint builder (order-independent for object keys).
#[derive(Clone, Copy)]
pub struct Fp(pub u64);

impl Fp {
    /// A fresh fingerprint.
    pub fn new() -> Fp {
        Fp(0xcbf2_9ce4_8422_2325)
    }
    /// Feeds bytes.
    #[inline(never)]
    pub fn bytes(mut self, b: &[u8]) -> Fp {
        for &x in b {
            self.0 = (self.0 ^ x as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        self
    }
    /// Feeds a number.
    pub fn num(self, n: f64) -> Fp {
        self.bytes(&n.to_bits().to_le_bytes())
    }
    /// Feeds a value (object key order does not matter).
    #[inline(never)]
    pub fn value(self, v: &Value) -> Fp {
        match v {
            Value::Null => self.bytes(b"n"),
            Value::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Value::Num(n) => self.bytes(b"#").num(*n),
            Value::Str(s) => self.bytes(b"s").bytes(s.as_bytes()),
            Value::Arr(a) => a.iter().fold(self.bytes(b"["), |f, x| f.value(x)).bytes(b"]"),
            Value::Obj(m) => {
                let sum = m.iter().fold(0u64, |acc, (k, v)| acc.wrapping_add(Fp::new().bytes(k.as_bytes()).value(v).0));
                self.bytes(b"{").num(sum as f64).bytes(&sum.to_le_bytes())
            }
        }
    }
    /// The 53-bit result.
    pub fn finish(self) -> u64 {
        self.0 & ((1u64 << 53) - 1)
    }
}

impl Default for Fp {
    fn default() -> Fp {
        Fp::new()
    }
}
