//! Field-wise, order-independent profile merge (DESIGN §5): what happens when the anonymous
//! profile meets the known one on login.
//!
//! `merge(a, b)` is commutative and associative, and `Profile::default()` is its identity
//! element, so the result does not depend on which device state was merged first:
//! counts and buckets add, `firstSeen` takes the min, `lastSeen` the max, traits are
//! last-writer-wins by their timestamps, the recent rings interleave by time within their
//! bound, linked anonymous ids form a bounded union. Where a whole value must be chosen
//! (context, session) the one with the later activity wins, ties broken by a total order on
//! values, so no choice depends on argument order (only the order of keys and event names in
//! the output does: the first argument's come first). Callers set the identity fields (ids, epoch) they want afterwards.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::profile::{Profile, Session};
use crate::core::value::{Map, Value};
use ::core::cmp::Ordering;

/// The most anonymous ids kept linked to one identity (the most recently linked win).
pub const LINKED_MAX: usize = 32;

/// Merges two profiles of the same person (see the module docs for the rules).
pub fn merge(a: &Profile, b: &Profile) -> Profile {
    let mut p = Profile::default();
    p.anonymous_id = a.anonymous_id.clone().max(b.anonymous_id.clone());
    p.user_id = a.user_id.clone().max(b.user_id.clone());
    p.epoch = a.epoch.max(b.epoch);
    p.first_seen = match (a.first_seen, b.first_seen) {
        (x, y) if x <= 0.0 => y,
        (x, y) if y <= 0.0 => x,
        (x, y) => x.min(y),
    };
    p.last_seen = a.last_seen.max(b.last_seen);
    let later = a.last_seen.total_cmp(&b.last_seen).then_with(|| cmp_value(&a.context, &b.context));
    p.context = if later == Ordering::Less { b.context.clone() } else { a.context.clone() };
    p.session = merge_session(&a.session, &b.session);
    merge_traits(&mut p, a, b);
    p.events = a.events.clone();
    for e in &b.events {
        match p.events.iter_mut().find(|x| x.name == e.name) {
            Some(x) => {
                x.counts.merge(&e.counts);
                x.first = x.first.min(e.first);
                x.last = x.last.max(e.last);
            }
            None => p.events.push(e.clone()),
        }
    }
    // Interleave the rings by (time, then value order); push_recent keeps the newest within bounds.
    let (mut x, mut y) = (a.recent.iter().peekable(), b.recent.iter().peekable());
    loop {
        let take_x = match (x.peek(), y.peek()) {
            (Some(l), Some(r)) => {
                let ord = l.ts.total_cmp(&r.ts).then_with(|| l.name.cmp(&r.name)).then_with(|| cmp_map(&l.props, &r.props));
                ord != Ordering::Greater
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_x { x.next() } else { y.next() };
        if let Some(e) = next {
            p.push_recent(e.clone());
        }
    }
    p.activation = a.activation.clone();
    p.activation.merge(&b.activation);
    for (id, t) in a.linked.iter().chain(b.linked.iter()) {
        link(&mut p.linked, id, *t);
    }
    p
}

/// Records that anonymous id `id` was linked at `t` (keeping the latest time per id, ordered
/// by time then id, at most [`LINKED_MAX`], the most recent kept).
pub fn link(list: &mut Vec<(String, f64)>, id: &str, t: f64) {
    let mut t = t;
    if let Some(i) = list.iter().position(|(x, _)| x == id) {
        t = t.max(list.remove(i).1);
    }
    let i = list.partition_point(|(x, u)| u.total_cmp(&t).then_with(|| x.as_str().cmp(id)) == Ordering::Less);
    list.insert(i, (id.into(), t));
    while list.len() > LINKED_MAX {
        list.remove(0);
    }
}

fn merge_session(a: &Session, b: &Session) -> Session {
    let ord = a
        .last_activity
        .total_cmp(&b.last_activity)
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.started_at.total_cmp(&b.started_at))
        .then_with(|| a.pageviews.cmp(&b.pageviews));
    let mut s = if ord == Ordering::Less { b.clone() } else { a.clone() };
    s.count = a.count.saturating_add(b.count);
    s
}

fn merge_traits(p: &mut Profile, a: &Profile, b: &Profile) {
    let time = |q: &Profile, k: &str| q.trait_times.get(k).and_then(Value::as_num).unwrap_or(0.0);
    for k in a.traits.keys().chain(b.traits.keys()) {
        if p.traits.contains_key(k) {
            continue;
        }
        let pick = match (a.traits.get(k), b.traits.get(k)) {
            (Some(x), Some(y)) => {
                let (tx, ty) = (time(a, k), time(b, k));
                if tx.total_cmp(&ty).then_with(|| cmp_value(x, y)) == Ordering::Less { (y, ty) } else { (x, tx) }
            }
            (Some(x), None) => (x, time(a, k)),
            (None, Some(y)) => (y, time(b, k)),
            (None, None) => continue,
        };
        p.traits.insert(k.as_str(), pick.0.clone());
        if a.trait_times.contains_key(k) || b.trait_times.contains_key(k) {
            p.trait_times.insert(k.as_str(), Value::Num(pick.1));
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
