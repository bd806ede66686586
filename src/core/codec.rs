//! The stored profile format: the profile as a JSON-ready [`Value`] (the host turns it into a
//! string with `JSON.stringify`), versioned, and a decoder that never fails: what is valid is
//! kept, the rest is reset, and each problem is reported with a stable code.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::buckets::Counts;
use crate::core::error::{codes, Error};
use crate::core::profile::{EventStats, Profile, RecentEvent, Session};
use crate::core::value::{Map, Value};

/// The format version written by this build.
pub const VERSION: f64 = 1.0;

/// Encodes a profile for storage.
pub fn encode(p: &Profile) -> Value {
    let events: Vec<Value> = p
        .events
        .iter()
        .map(|e| {
            let mut flat = Vec::with_capacity(e.counts.entries().len() * 2);
            for &(m, n) in e.counts.entries() {
                flat.push(Value::Num(m as f64));
                flat.push(Value::Num(n as f64));
            }
            Value::Arr(vec![e.name.as_str().into(), Value::Num(e.first), Value::Num(e.last), Value::Arr(flat)])
        })
        .collect();
    let recent: Vec<Value> = p
        .recent
        .iter()
        .map(|r| Value::Arr(vec![r.name.as_str().into(), Value::Num(r.ts), Value::Obj(r.props.clone())]))
        .collect();
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
                    (s.count as f64).into(),
                    (s.pageviews as f64).into(),
                    s.started_at.into(),
                    s.last_activity.into(),
                ]),
            )
            .with("first", p.first_seen)
            .with("last", p.last_seen)
            .with("ev", Value::Arr(events))
            .with("recent", Value::Arr(recent))
            .with("act", p.activation.encode())
            .with("seg", crate::core::segment::encode_state(&p.behaviour)),
    )
}

/// Decodes a stored profile. Never fails: returns the best profile it could rebuild (None when
/// nothing usable was there) and the problems found.
pub fn decode(v: &Value) -> (Option<Profile>, Vec<Error>) {
    let mut errors = Vec::new();
    let Some(m) = v.as_obj() else {
        errors.push(Error::new(codes::STORAGE_CORRUPT, "stored profile is not an object"));
        return (None, errors);
    };
    match m.get("v").and_then(Value::as_num) {
        Some(x) if x == VERSION => {}
        Some(x) if x > VERSION => {
            errors.push(Error::new(codes::STORAGE_CORRUPT, "stored profile is from a newer version"));
            return (None, errors);
        }
        _ => {
            errors.push(Error::new(codes::STORAGE_CORRUPT, "stored profile has no known version"));
            return (None, errors);
        }
    }
    let Some(aid) = m.get("aid").and_then(Value::as_str).filter(|s| crate::core::ids::is_uuid(s)) else {
        errors.push(Error::new(codes::STORAGE_CORRUPT, "stored profile has no valid anonymous id"));
        return (None, errors);
    };
    let mut p = Profile::new(aid.into(), num(m.get("first")));
    p.user_id = m.get("uid").and_then(Value::as_str).map(|s| s.into());
    if let Some(t) = m.get("traits").and_then(Value::as_obj) {
        p.traits = t.clone();
    }
    if let Some(c) = m.get("ctx").filter(|c| c.as_obj().is_some()) {
        p.context = c.clone();
    }
    p.last_seen = num(m.get("last"));
    if let Some(s) = m.get("sess").and_then(Value::as_arr) {
        if s.len() == 5 {
            p.session = Session {
                id: s[0].as_str().unwrap_or("").into(),
                count: num(Some(&s[1])) as u32,
                pageviews: num(Some(&s[2])) as u32,
                started_at: num(Some(&s[3])),
                last_activity: num(Some(&s[4])),
            };
        }
    }
    let mut bad_events = false;
    if let Some(list) = m.get("ev").and_then(Value::as_arr) {
        for e in list {
            match decode_stats(e) {
                Some(s) => p.events.push(s),
                None => bad_events = true,
            }
        }
    }
    if let Some(list) = m.get("recent").and_then(Value::as_arr) {
        for r in list {
            match r.as_arr().map(|a| a.as_slice()) {
                Some([Value::Str(n), Value::Num(ts), Value::Obj(props)]) => {
                    p.push_recent(RecentEvent { name: n.clone(), ts: *ts, props: props.clone() })
                }
                _ => bad_events = true,
            }
        }
    }
    p.activation = crate::core::activation::Activation::decode(m.get("act"));
    p.behaviour = crate::core::segment::decode_state(m.get("seg"));
    if bad_events {
        errors.push(Error::new(codes::STORAGE_CORRUPT, "some stored events were unreadable and were dropped"));
    }
    (Some(p), errors)
}

fn decode_stats(e: &Value) -> Option<EventStats> {
    let a = e.as_arr()?;
    let [Value::Str(name), Value::Num(first), Value::Num(last), Value::Arr(flat)] = a.as_slice() else { return None };
    if flat.len() % 2 != 0 {
        return None;
    }
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    for c in flat.chunks(2) {
        let (m, n) = (c[0].as_num()?, c[1].as_num()?);
        if !(m >= 0.0 && n >= 0.0 && m < u32::MAX as f64 && n < u32::MAX as f64) {
            return None;
        }
        pairs.push((m as u32, n as u32));
    }
    Some(EventStats { name: name.clone(), counts: Counts::from_entries(pairs), first: *first, last: *last })
}

fn num(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_num).filter(|n| n.is_finite()).unwrap_or(0.0)
}
