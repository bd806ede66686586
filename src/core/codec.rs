//! The stored profile format: the profile as a JSON-ready [`Value`] (the host turns it into a
//! string with `JSON.stringify`), versioned, and a decoder that never fails: what is valid is
//! kept, the rest is reset, and each problem is reported with a stable code (`storage_corrupt`).
//!
//! Format (version 2), one JSON object:
//!
//! | key | value |
//! |---|---|
//! | `v` | format version (`2`) |
//! | `aid`, `uid` | anonymous id, user id (or null) |
//! | `traits`, `ctx` | traits, last page context |
//! | `sess` | `[id, count, pageviews, startedAt ms, lastActivity ms]` |
//! | `first`, `last` | first / last seen (ms) |
//! | `ev` | per event name `[name, first ms, last ms, packed minute counts]` |
//! | `recent` | ring of recent raw events `[name, ts ms, properties]`, oldest first |
//! | `w` | `{tab: seq}`, least recently written first (cross-tab sync, see `journal.rs`) |
//! | `act` | experience exposures and reported segments (`activation.rs`) |
//!
//! Packed minute counts: a string of base-32 varints (the last digit of a number from
//! `0-9a-v`, the digits before it from `A-Zwxyz-_`, most significant first; every character is
//! JSON-safe, so the string is stored as is). Each entry `(minute, count)` is one number
//! `(minute - previous minute) * 2 + (count > 1)`, followed by `count - 2` when `count > 1`; the
//! first entry's previous minute is 0. An event in a new minute 40 minutes after the previous one
//! takes 2 characters; a heavy visitor's 10,000 events over 90 days take about 20 KB.
//!
//! Migration: [`migrate`] lifts an older stored object to the current version before decoding.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::buckets::Counts;
use crate::core::error::{codes, Error};
use crate::core::ids::is_uuid;
use crate::core::profile::{EventStats, Profile, RecentEvent, Session};
use crate::core::value::{Map, Value};

/// The format version written by this build.
pub const VERSION: f64 = 2.0;

/// Encodes a profile for storage.
pub fn encode(p: &Profile) -> Value {
    // Plain loops: an iterator chain per list costs more wasm than it saves source.
    let mut events = Vec::with_capacity(p.events.len());
    for e in &p.events {
        events.push(Value::Arr(vec![e.name.as_str().into(), Value::Num(e.first), Value::Num(e.last), pack(&e.counts).into()]));
    }
    let mut recent = Vec::with_capacity(p.recent.len());
    for r in &p.recent {
        recent.push(Value::Arr(vec![r.name.as_str().into(), Value::Num(r.ts), Value::Obj(r.props.clone())]));
    }
    let s = &p.session;
    Value::Obj(
        Map::new()
            .with("v", VERSION)
            .with("aid", p.anonymous_id.as_str())
            .with("uid", p.user_id.as_deref())
            .with("traits", Value::Obj(p.traits.clone()))
            .with("ctx", p.context.clone())
            .with(
                "sess",
                Value::Arr(vec![
                    s.id.as_str().into(),
                    s.count.into(),
                    s.pageviews.into(),
                    s.started_at.into(),
                    s.last_activity.into(),
                ]),
            )
            .with("first", p.first_seen)
            .with("last", p.last_seen)
            .with("ev", Value::Arr(events))
            .with("recent", Value::Arr(recent))
            .with("act", p.activation.encode())
            .with("seg", crate::core::segment::encode_state(&p.behaviour))
            .with("w", Value::Obj(p.writers.clone()))
            .with("tt", Value::Obj(p.trait_times.clone()))
            .with("ln", crate::core::value::str_array(&p.linked))
            .with("ep", p.epoch),
    )
}

fn corrupt(errors: &mut Vec<Error>, msg: &'static str) {
    errors.push(Error::new(codes::STORAGE_CORRUPT, msg));
}

/// Lifts a stored object of an older format `version` to [`VERSION`]; `None` when it cannot.
/// The hook for the next format: add an arm rewriting version N into N+1. (Version 1 was never
/// released; it is not migrated.) Borrowed: an arm copies what it rewrites (a copy made for
/// every older version, only to be dropped, was code in the decoder).
pub fn migrate(m: &Map, version: f64) -> Option<Map> {
    let _ = (m, version);
    None
}

fn to_u32(x: f64) -> Option<u32> {
    (x >= 0.0 && x < u32::MAX as f64).then_some(x as u32)
}

/// Decodes a stored profile. Never fails: returns the best profile it could rebuild (None when
/// nothing usable was there) and the problems found. (Stored text that is not JSON, e.g.
/// truncated, arrives as a string: not an object. The id cookie then keeps the visitor's id.)
pub fn decode(v: &Value) -> (Option<Profile>, Vec<Error>) {
    let mut errors = Vec::new();
    let m = match v {
        Value::Obj(m) => m,
        _ => {
            corrupt(&mut errors, "stored profile is not an object");
            return (None, errors);
        }
    };
    let migrated;
    let m = match m.get("v").and_then(Value::as_num) {
        Some(x) if x == VERSION => m,
        Some(x) if x > VERSION => {
            corrupt(&mut errors, "stored profile is from a newer version");
            return (salvage(m), errors);
        }
        Some(x) => match migrate(m, x) {
            Some(n) => {
                migrated = n;
                &migrated
            }
            None => {
                corrupt(&mut errors, "stored profile has an unknown version");
                return (salvage(m), errors);
            }
        },
        None => {
            corrupt(&mut errors, "stored profile has no version");
            return (salvage(m), errors);
        }
    };
    // A bad id alone does not throw the rest away: a new id (or the id cookie's) takes its place.
    let mut p = salvage(m).unwrap_or_else(|| {
        corrupt(&mut errors, "stored profile has no valid anonymous id; the rest of it is kept");
        Profile::new(String::new(), 0.0)
    });
    // Fields of the wrong type are reset, and said so (the rest is kept).
    let wrong = |k: &str, ok: fn(&Value) -> bool| m.get(k).is_some_and(|v| !ok(v));
    if wrong("traits", |v| v.as_obj().is_some())
        || wrong("uid", |v| v.is_null() || v.as_str().is_some())
        || wrong("ev", |v| v.as_arr().is_some())
        || wrong("recent", |v| v.as_arr().is_some())
        || wrong("sess", |v| session(v).is_some())
        || wrong("first", |v| v.as_num().is_some_and(|t| fin(t) == t))
        || wrong("last", |v| v.as_num().is_some_and(|t| fin(t) == t))
    {
        corrupt(&mut errors, "some stored fields were unreadable and were reset");
    }
    p.first_seen = num(m.get("first"));
    p.user_id = m.get("uid").and_then(Value::as_str).map(|s| s.into());
    if let Some(t) = m.get("traits").and_then(Value::as_obj) {
        p.traits = t.clone();
    }
    if let Some(c) = m.get("ctx").filter(|c| c.as_obj().is_some()) {
        p.context = c.clone();
    }
    p.last_seen = num(m.get("last"));
    if let Some(t) = m.get("tt").and_then(Value::as_obj) {
        for (k, v) in t.iter() {
            if v.as_num().is_some() {
                p.trait_times.insert(k.as_str(), v.clone());
            }
        }
    }
    for v in m.get("ln").and_then(Value::as_arr).map_or(&[][..], Vec::as_slice) {
        if let Some(id) = v.as_str() {
            p.linked.push(id.into());
        }
    }
    // Over the bound `setTraits` and a login's merge keep (edited storage): those that do not fit go.
    if p.bound_traits() {
        corrupt(&mut errors, "stored traits over 32 KB were dropped");
    }
    p.epoch = num(m.get("ep")) as u32;
    // (A damaged session is reset whole: the next activity starts a session, counted from 1.)
    if let Some(s) = m.get("sess").and_then(session) {
        p.session = s;
    }
    let mut bad_events = false;
    if let Some(list) = m.get("ev").and_then(Value::as_arr) {
        for e in list {
            match decode_stats(e) {
                Some(s) if p.stats(&s.name).is_none() => p.events.push(s),
                _ => bad_events = true,
            }
        }
    }
    if let Some(list) = m.get("recent").and_then(Value::as_arr) {
        for r in list {
            match r.as_arr().map(|a| a.as_slice()) {
                Some([Value::Str(n), Value::Num(ts), Value::Obj(props)]) if ts.is_finite() => {
                    p.push_recent(RecentEvent { name: n.clone(), ts: *ts, props: props.clone() })
                }
                _ => bad_events = true,
            }
        }
    }
    p.activation = crate::core::activation::Activation::decode(m.get("act"));
    p.behaviour = crate::core::segment::decode_state(m.get("seg"));
    if let Some(w) = m.get("w").and_then(Value::as_obj) {
        p.writers = w.clone();
    }
    if bad_events {
        corrupt(&mut errors, "some stored events were unreadable and were dropped");
    }
    (Some(p), errors)
}

/// The stored session, when every part of it is readable: counts that are counts, times that
/// are times (a negative or impossible number is damage, not 0).
fn session(v: &Value) -> Option<Session> {
    let [Value::Str(id), Value::Num(count), Value::Num(pv), Value::Num(start), Value::Num(last)] = v.as_arr()?.as_slice() else {
        return None;
    };
    (fin(*start) == *start && fin(*last) == *last).then_some(())?;
    Some(Session { id: id.clone(), count: to_u32(*count)?, pageviews: to_u32(*pv)?, started_at: *start, last_activity: *last })
}

/// A fresh profile keeping only the anonymous id of an unreadable stored object.
fn salvage(m: &Map) -> Option<Profile> {
    let aid = m.get("aid").and_then(Value::as_str).filter(|s| is_uuid(s))?;
    Some(Profile::new(aid.into(), 0.0))
}

fn decode_stats(e: &Value) -> Option<EventStats> {
    let [Value::Str(name), Value::Num(first), Value::Num(last), Value::Str(packed)] = e.as_arr()?.as_slice() else {
        return None;
    };
    let counts = unpack(packed)?;
    if counts.total() == 0 {
        return None;
    }
    Some(EventStats { name: name.clone(), counts, first: fin(*first), last: fin(*last) })
}

const DIGITS: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZwxyz-_";

fn put(out: &mut String, x: u64) {
    let mut n = 1;
    while n < 13 && x >> (5 * n) != 0 {
        n += 1;
    }
    for k in (0..n).rev() {
        let d = ((x >> (5 * k)) & 31) as usize;
        let c = if k == 0 { DIGITS[d] } else { DIGITS[32 + d] };
        out.push(c as char);
    }
}

/// Packs minute counts into a string (format in the module docs).
#[inline(never)]
pub fn pack(c: &Counts) -> String {
    let mut out = String::with_capacity(c.entries().len() * 2);
    let mut prev = 0u32;
    for &(m, n) in c.entries() {
        let delta = (m.wrapping_sub(prev)) as u64;
        put(&mut out, delta * 2 + (n > 1) as u64);
        if n > 1 {
            put(&mut out, (n - 2) as u64);
        }
        prev = m;
    }
    out
}

/// Unpacks minute counts; None when the text is not a valid packed series.
#[inline(never)]
pub fn unpack(s: &str) -> Option<Counts> {
    let mut c = Counts::new();
    let (mut acc, mut minute, mut pending, mut open) = (0u64, 0u64, None::<u64>, false);
    for b in s.bytes() {
        let (d, last) = match b {
            b'0'..=b'9' => (b - b'0', true),
            b'a'..=b'v' => (b - b'a' + 10, true),
            b'A'..=b'Z' => (b - b'A', false),
            b'w'..=b'z' => (b - b'w' + 26, false),
            b'-' => (30, false),
            b'_' => (31, false),
            _ => return None,
        };
        acc = (acc << 5) | d as u64;
        if acc >> 33 != 0 {
            return None;
        }
        open = !last;
        if open {
            continue;
        }
        let x = ::core::mem::take(&mut acc);
        let n = match pending.take() {
            // x is the count (minus 2) of the entry read before
            Some(m) => {
                minute = m;
                x + 2
            }
            None => {
                // Entries strictly increase (a zero delta only for the very first).
                if x >> 1 == 0 && !c.entries().is_empty() {
                    return None;
                }
                let m = minute + (x >> 1);
                if x & 1 == 1 {
                    pending = Some(m);
                    continue;
                }
                minute = m;
                1
            }
        };
        if minute > u32::MAX as u64 || n > u32::MAX as u64 {
            return None;
        }
        c.add(minute as u32, n as u32);
    }
    (!open && pending.is_none()).then_some(c)
}

/// A stored time: epoch ms within the range of a JavaScript Date (and not before 1970), else 0.
fn fin(x: f64) -> f64 {
    if (0.0..=8.64e15).contains(&x) { x } else { 0.0 }
}

fn num(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_num).map_or(0.0, fin)
}
