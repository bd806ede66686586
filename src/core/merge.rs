//! Field-wise, order-independent profile merge (DESIGN §5): what happens when the anonymous
//! profile meets the known one on login.
//!
//! `merge(a, b)` is commutative and associative, and `Profile::default()` is its identity
//! element, so the result does not depend on which device state was merged first:
//! counts and buckets add, `firstSeen` takes the min, `lastSeen` the max, traits are
//! last-writer-wins by their timestamps, the recent rings combine in time order (ties by
//! name, then properties) within their bound, linked anonymous ids form a union (bounded: past [`LINKED_MAX`] it keeps the first
//! argument's links first). Where a whole value must be chosen
//! (context, session) the one with the later activity wins, ties broken by a total order on
//! values, so no choice depends on argument order (only the order of keys and event names in
//! the output does: the first argument's come first). Callers set the identity fields (ids, epoch) they want afterwards.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::buckets::Counts;
use crate::core::profile::{EventStats, Profile, RecentEvent};
use crate::core::value::{Map, Value};
use ::core::cmp::Ordering;

/// The most anonymous ids kept linked to one identity (the oldest links are dropped first).
pub const LINKED_MAX: usize = 32;

/// Merges two profiles of the same person (see the module docs for the rules); `a` absorbs
/// `b`, moving rather than copying.
pub fn merge(mut a: Profile, b: Profile) -> Profile {
    a.epoch = a.epoch.max(b.epoch);
    // The earliest of those set (> 0); when neither is (0, or a tampered stored value below),
    // the smaller, so the result still does not depend on the argument order.
    let (fa, fb) = (a.first_seen, b.first_seen);
    a.first_seen = match (fa > 0.0, fb > 0.0) {
        (true, false) => fa,
        (false, true) => fb,
        _ => fa.min(fb),
    };
    if a.last_seen.total_cmp(&b.last_seen).then_with(|| cmp_value(&a.context, &b.context)) == Ordering::Less {
        a.context = b.context;
    }
    a.last_seen = a.last_seen.max(b.last_seen);
    if b.anonymous_id > a.anonymous_id {
        a.anonymous_id = b.anonymous_id;
    }
    if b.user_id > a.user_id {
        a.user_id = b.user_id;
    }
    let count = a.session.count.saturating_add(b.session.count);
    let (x, y) = (&a.session, &b.session);
    let ord = x.last_activity.total_cmp(&y.last_activity).then_with(|| x.id.cmp(&y.id)).then_with(|| x.started_at.total_cmp(&y.started_at)).then(x.pageviews.cmp(&y.pageviews));
    if ord == Ordering::Less {
        a.session = b.session;
    }
    a.session.count = count;
    // Moved out in place (a consuming loop linked an `IntoIter` of its own).
    let mut traits = b.traits;
    for (k, v) in traits.iter_mut() {
        let t = b.trait_times.get(k).and_then(Value::as_num);
        let keep = match a.traits.get(k) {
            Some(x) => {
                let ta = a.trait_times.get(k).and_then(Value::as_num).unwrap_or(0.0);
                ta.total_cmp(&t.unwrap_or(0.0)).then_with(|| cmp_value(x, v)) != Ordering::Less
            }
            None => false,
        };
        if !keep {
            match t {
                Some(t) => a.trait_times.insert(k.as_str(), Value::Num(t)),
                None => drop(a.trait_times.remove(k)),
            }
            a.traits.insert(::core::mem::take(k), ::core::mem::take(v));
        }
    }
    // Moved out in place (a consuming loop linked an `IntoIter` of its own).
    let mut events = b.events;
    for e in events.iter_mut() {
        match a.events.iter_mut().find(|x| x.name == e.name) {
            Some(x) => {
                x.counts.merge(&e.counts);
                x.first = x.first.min(e.first);
                x.last = x.last.max(e.last);
            }
            None => a.events.push(::core::mem::replace(e, EventStats { name: String::new(), counts: Counts::new(), first: 0.0, last: 0.0 })),
        }
    }
    // Two rings combine sorted by (time, then name and properties), a total order: a ring is
    // only ordered by recording, so events of one millisecond (a page view and a track) or
    // recorded under a clock set back would otherwise land in an order that depends on the
    // argument order. push_recent keeps the newest within the ring's bounds. A ring merged with
    // an empty one stays as it is (the empty profile is the identity).
    if !b.recent.is_empty() {
        let mut ring = a.take_recent();
        if ring.is_empty() {
            ring = b.recent;
        } else {
            let mut recent = b.recent;
            ring.append(&mut recent);
            // A total order, so equal elements are identical and the (unstable) sort is exact.
            crate::core::sort::sort_by(&mut ring, |l, r| l.ts.total_cmp(&r.ts).then_with(|| l.name.cmp(&r.name)).then_with(|| cmp_map(&l.props, &r.props)) == Ordering::Less);
        }
        // Moved out in place (a consuming loop linked an `IntoIter` of its own).
        for e in ring.iter_mut() {
            a.push_recent(::core::mem::replace(e, RecentEvent { name: String::new(), ts: 0.0, props: Map::new() }));
        }
    }
    a.activation.merge(b.activation);
    for id in &b.linked {
        link(&mut a.linked, id);
    }
    a
}

/// Links anonymous id `id` (appended once; beyond [`LINKED_MAX`] the oldest is dropped).
pub fn link(list: &mut Vec<String>, id: &str) {
    // (No id yet: a login before consent; the id made at consent is linked then.)
    if !id.is_empty() && !list.iter().any(|x| x == id) {
        list.push(id.into());
        if list.len() > LINKED_MAX {
            crate::core::sort::remove(list, 0);
        }
    }
}

/// A total order on values (null < bool < number < string < array < object; then by content),
/// used only to break ties deterministically.
pub fn cmp_value(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Num(_) => 2,
            Value::Str(_) => 3,
            Value::Arr(_) => 4,
            Value::Obj(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Num(x), Value::Num(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Arr(x), Value::Arr(y)) => {
            for (l, r) in x.iter().zip(y.iter()) {
                let o = cmp_value(l, r);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Obj(x), Value::Obj(y)) => cmp_map(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn cmp_map(x: &Map, y: &Map) -> Ordering {
    for ((kl, l), (kr, r)) in x.iter().zip(y.iter()) {
        let o = kl.cmp(kr).then_with(|| cmp_value(l, r));
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}
