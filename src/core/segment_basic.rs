//! The basic segment evaluator of builds without the `segments` feature (the full engine is
//! `segment.rs`): plain equality tests of the profile document, `$and/$or/$not`, and `$performed`
//! counts from the profile's per-minute event aggregates. Same API as the full engine; no
//! behavioural state, scores or explain. Kept so that the package can ship within its size
//! budget while the full engine is switched off.
//!
//! A definitions document is `{version: 1, segments: [...], scores?: [...]}`. A document of
//! another shape is rejected whole; inside a valid document each invalid segment is rejected
//! with its id and a JSON pointer to the fault, and the valid ones load.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::error::{codes, Error};
pub use crate::core::error::{join, join_pointer};
use crate::core::host::Host;
use crate::core::profile::Profile;
use crate::core::time::parse_duration;
use crate::core::buckets::window_start_minute;
use crate::core::value::{Map, Value};

/// No behavioural state in this build.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State;

/// One segment definition.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDef {
    /// Stable id (`"shoe_fans"`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The condition document.
    pub condition: Value,
}

/// Loaded definitions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Definitions {
    /// Valid segments, in document order.
    pub segments: Vec<SegmentDef>,
    /// Whether any segment reads the profile document (always, here).
    pub uses_doc: bool,
    /// Top-level document keys read; empty: all of them.
    pub doc_keys: Vec<String>,
}

/// What a load did: ids loaded, and one error per rejected definition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Ids of the definitions loaded.
    pub loaded: Vec<String>,
    /// One error per rejected definition.
    pub rejected: Vec<Error>,
}

/// Parses a definitions document. `Err` when the document is not `{version, segments: [...]}`.
pub fn parse(doc: &Value, retention_ms: f64) -> Result<(Definitions, LoadReport), Error> {
    let Some(m) = doc.as_obj() else {
        return Err(Error::new(codes::INVALID_DEFINITIONS, "definitions must be an object {version, segments: [...]}"));
    };
    if m.get("version").and_then(Value::as_num) != Some(1.0) {
        return Err(Error::at(codes::INVALID_DEFINITIONS, None, "/version", "version must be 1"));
    }
    let Some(list) = m.get("segments").and_then(Value::as_arr) else {
        return Err(Error::at(codes::INVALID_DEFINITIONS, None, "/segments", "segments must be an array"));
    };
    let mut defs = Definitions { uses_doc: true, ..Definitions::default() };
    let mut report = LoadReport::default();
    for (i, s) in list.iter().enumerate() {
        let base = join_pointer("/segments", i);
        match parse_segment(s, &base, retention_ms, &defs) {
            Ok(def) => {
                report.loaded.push(def.id.clone());
                defs.segments.push(def);
            }
            Err(e) => report.rejected.push(e),
        }
    }
    Ok((defs, report))
}

/// Whether a loaded definition reads events named `name` (a `$performed`).
pub fn reads(defs: &Definitions, name: &str) -> bool {
    fn find(c: &Value, name: &str) -> bool {
        match c {
            Value::Obj(m) => m.iter().any(|(k, v)| if k == "$performed" { v.get("event").and_then(Value::as_str) == Some(name) } else { find(v, name) }),
            Value::Arr(a) => a.iter().any(|v| find(v, name)),
            _ => false,
        }
    }
    defs.segments.iter().any(|d| find(&d.condition, name))
}

fn parse_segment(s: &Value, base: &str, retention_ms: f64, loaded: &Definitions) -> Result<SegmentDef, Error> {
    let Some(m) = s.as_obj() else {
        return Err(Error::at(codes::INVALID_SEGMENT, None, base, "a segment must be an object"));
    };
    let id = match m.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id,
        _ => return Err(Error::at(codes::INVALID_SEGMENT, None, join(base, "id"), "id must be a non-empty string")),
    };
    if loaded.segments.iter().any(|d| d.id == id) {
        return Err(Error::at(codes::INVALID_SEGMENT, Some(id), join(base, "id"), "duplicate segment id"));
    }
    let Some(condition) = m.get("condition").filter(|c| c.as_obj().is_some()) else {
        return Err(Error::at(codes::INVALID_SEGMENT, Some(id), join(base, "condition"), "condition must be an object"));
    };
    validate(condition, &join(base, "condition"), id, retention_ms)?;
    let name = m.get("name").and_then(Value::as_str).unwrap_or(id);
    Ok(SegmentDef { id: id.into(), name: name.into(), condition: condition.clone() })
}

fn validate(cond: &Value, path: &str, id: &str, retention_ms: f64) -> Result<(), Error> {
    let Some(m) = cond.as_obj() else { return Ok(()) };
    for (k, v) in m.iter() {
        let p = join(path, k);
        if k == "$performed" {
            let Some(pm) = v.as_obj() else {
                return Err(Error::at(codes::INVALID_SEGMENT, Some(id), p, "$performed takes an object"));
            };
            if pm.get("event").and_then(Value::as_str).is_none() {
                return Err(Error::at(codes::INVALID_SEGMENT, Some(id), join(&p, "event"), "$performed needs an event name"));
            }
            if let Some(w) = pm.get("within") {
                match w.as_str().and_then(parse_duration) {
                    Some(ms) if ms <= retention_ms => {}
                    Some(_) => return Err(Error::at(codes::INVALID_SEGMENT, Some(id), join(&p, "within"), "window longer than retention")),
                    None => return Err(Error::at(codes::INVALID_SEGMENT, Some(id), join(&p, "within"), "bad duration")),
                }
            }
        } else if let Value::Arr(items) = v {
            for (i, item) in items.iter().enumerate() {
                validate(item, &join_pointer(&p, i), id, retention_ms)?;
            }
        } else {
            validate(v, &p, id, retention_ms)?;
        }
    }
    Ok(())
}

/// Evaluates every segment at `now`; whether each is held, by index.
pub fn evaluate(defs: &Definitions, profile: &mut Profile, doc: Option<&Value>, now: f64, host: &dyn Host) -> Vec<bool> {
    let null = Value::Null;
    let subject = Subject { doc: doc.unwrap_or(&null), profile, now, host };
    let mut hits = Vec::with_capacity(defs.segments.len());
    for def in &defs.segments {
        hits.push(matches(&def.condition, &subject));
    }
    hits
}

/// The ids of the segments held (`hits` as [`evaluate`] returns them), sorted.
pub fn members(defs: &Definitions, hits: &[bool]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (def, hit) in defs.segments.iter().zip(hits) {
        if *hit {
            let i = ids.partition_point(|x| x < &def.id);
            ids.insert(i, def.id.clone());
        }
    }
    ids
}

/// No behavioural state to align in this build.
pub fn prepare(_: &Definitions, _: &mut Profile, _: &dyn Host) {}

/// No `$sequence` in the basic evaluator.
pub fn rejoin(_: &Definitions, _: &mut Profile, _: &dyn Host) {}

/// Nothing to record per event in this build.
pub fn on_event(_: &Definitions, _: &mut Profile, _: &str, _: f64, _: &Value, _: &dyn Host) {}

/// No explain in this build.
pub fn explain(_: &Definitions, _: &mut Profile, _: Option<&Value>, _: &str, _: f64, _: &dyn Host) -> Option<Value> {
    None
}

/// No timer of its own in this build (windows are re-checked on events and `refresh`): only
/// `other`, the retention dropping a minute of the document's `events`.
pub fn next_change(_: &Definitions, _: &Profile, _: f64, other: f64) -> Option<f64> {
    Some(other).filter(|t| t.is_finite())
}

/// No scores in this build.
pub fn scores_doc(_: &Definitions, _: &State, _: f64) -> Map {
    Map::new()
}

/// Nothing stored in this build.
pub fn encode_state(_: &State) -> Value {
    Value::Null
}

/// Nothing stored in this build.
pub fn decode_state(_: Option<&Value>) -> State {
    State
}

/// Nothing to merge in this build.
pub fn merge_state(_: &mut State, _: State, _: &Definitions) {}

/// What a condition is evaluated against.
pub struct Subject<'a> {
    /// The profile document (DESIGN §3).
    pub doc: &'a Value,
    /// The profile (behaviour aggregates).
    pub profile: &'a Profile,
    /// Now, epoch ms.
    pub now: f64,
    /// Host services (regex, numbers).
    pub host: &'a dyn Host,
}

/// Whether `cond` holds for the subject.
pub fn matches(cond: &Value, subject: &Subject) -> bool {
    let Some(m) = cond.as_obj() else { return false };
    m.iter().all(|(k, v)| match k.as_str() {
        "$performed" => performed(v, subject),
        "$and" => v.as_arr().is_some_and(|a| a.iter().all(|c| matches(c, subject))),
        "$or" => v.as_arr().is_some_and(|a| a.is_empty() || a.iter().any(|c| matches(c, subject))),
        "$not" => !matches(v, subject),
        path => subject.doc.path(path) == Some(v) || (v.is_null() && subject.doc.path(path).is_none()),
    })
}

fn performed(spec: &Value, subject: &Subject) -> bool {
    let Some(name) = spec.get("event").and_then(Value::as_str) else { return false };
    let from = match spec.get("within").and_then(Value::as_str).and_then(parse_duration) {
        Some(w) => window_start_minute(subject.now, w),
        None => 0,
    };
    let n = subject.profile.stats(name).map_or(0, |s| s.counts.count_since(from)) as f64;
    let default_count = Value::Obj(Map::new().with("$gte", 1.0));
    let count = spec.get("count").unwrap_or(&default_count);
    compare_count(n, count)
}

fn compare_count(n: f64, cond: &Value) -> bool {
    match cond {
        Value::Num(x) => n == *x,
        Value::Obj(m) => m.iter().all(|(op, v)| {
            let Some(x) = v.as_num() else { return false };
            match op.as_str() {
                "$eq" => n == x,
                "$ne" => n != x,
                "$gt" => n > x,
                "$gte" => n >= x,
                "$lt" => n < x,
                "$lte" => n <= x,
                _ => false,
            }
        }),
        _ => false,
    }
}

