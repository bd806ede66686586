//! The fuzz targets' bodies, shared by the cargo-fuzz crate (`fuzz/`), the replay of the kept
//! corpus and crash inputs (`tests/fuzz_regressions.rs`) and the seeded in-process driver
//! (`tests/fuzz_smoke.rs`). Each takes raw bytes, as libFuzzer gives them: JSON text where the
//! target needs a document. Each asserts the properties that must hold for every input.
#![allow(dead_code)]

use crate::common::{from_json, to_json, NativeHost};
use keystone::core::codec;
use keystone::core::keystone::{Keystone, Options};
use keystone::core::merge::{merge as merge_profiles, LINKED_MAX};
use keystone::core::profile::{Profile, RING_MAX_EVENTS};
use keystone::core::value::{Map, Value};

pub const T0: f64 = 1_764_403_200_000.0;
const MIN: f64 = 60_000.0;

/// The targets, by the name of their corpus folder.
pub const TARGETS: &[(&str, fn(&[u8]))] =
    &[("segments", segments), ("profile_decoder", profile_decoder), ("event_sequence", event_sequence), ("merge", merge), ("json", json)];

fn parse(data: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(data).ok()?;
    // serde_json's own recursion limit (128) bounds the depth, as the browser layer does (64).
    serde_json::from_str::<serde_json::Value>(text).ok().map(|v| from_json(&v))
}

/// The JSON reader and writer of the JS↔wasm boundary (`core::json`), which also reads the
/// stored profile's text (any script of the page can write it). Invariants: no panic, depth
/// bounded; what it reads, it writes back to text it reads the same; any text serde_json
/// accepts (within the depth bound), it accepts with the same value.
pub fn json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let host = NativeHost::new(1);
    let mine = keystone::core::json::parse(text, &host, 64);
    if let Ok(v) = &mine {
        // Written text reads back to a value that writes the same text (a literal out of range,
        // `1e400`, reads as Infinity and writes as `null`, as JSON.parse / JSON.stringify do).
        let out = keystone::core::json::write(v, &host);
        let again = keystone::core::json::parse(&out, &host, 64).expect("written JSON reads back");
        assert_eq!(keystone::core::json::write(&again, &host), out, "write ∘ parse is not stable");
    }
    if let Ok(theirs) = serde_json::from_str::<serde_json::Value>(text) {
        if depth(&theirs) <= 64 {
            let v = mine.unwrap_or_else(|e| panic!("serde_json reads it, core::json refuses: {}", e.message));
            // (A key written twice after an object's 64th is kept twice, the first read: taken
            // once through serde_json's map, as serde_json keeps it — first place, last value.)
            assert!(same_value(&from_json(&to_json(&v)), &from_json(&theirs)), "core::json and serde_json read different values");
        }
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Equal as JSON values; numbers within 1e-15 relative (serde_json without its float_roundtrip
/// feature rounds integers of 20+ digits less exactly than the correctly rounded `Number()`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs()),
        (Value::Arr(x), Value::Arr(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        (Value::Obj(x), Value::Obj(y)) => x.len() == y.len() && x.iter().zip(y.iter()).all(|((k, p), (l, q))| k == l && same_value(p, q)),
        _ => a == b,
    }
}

/// Segment definitions: parse + validate (load), then evaluate over a few events and a refresh.
/// Loading never panics; a rejected document leaves no segment loaded; membership only names
/// loaded segments.
pub fn segments(data: &[u8]) {
    let Some(doc) = parse(data) else { return };
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(7), None, T0);
    let loaded = match ks.load_definitions(&doc, T0) {
        Ok(r) => r.loaded,
        Err(_) => Vec::new(),
    };
    let props = Map::new().with("revenue", 120.0).with("category", "shoes");
    for (i, name) in ["Product Viewed", "Order Completed", "Product Added"].iter().enumerate() {
        let _ = ks.track(T0 + (i as f64) * MIN, name, props.clone());
        for s in ks.segments() {
            assert!(loaded.contains(s), "member of a segment that was not loaded: {s}");
        }
    }
    ks.page(T0 + 5.0 * MIN, Map::new());
    ks.refresh(T0 + 90.0 * 24.0 * 60.0 * MIN);
    let _ = ks.profile_document();
    let _ = ks.take_notices();
}

/// The stored-profile decoder: never fails; what it keeps encodes and decodes to the same
/// profile; the engine restores from anything and keeps working (page views, sessions, login,
/// logout).
pub fn profile_decoder(data: &[u8]) {
    let Some(v) = parse(data) else { return };
    let (p, _errors) = codec::decode(&v);
    if let Some(p) = p {
        let again = codec::encode(&p);
        let (p2, errors2) = codec::decode(&again);
        let p2 = p2.expect("a decoded profile re-decodes");
        // A profile kept without a valid id (the engine makes one) says so again, and only that.
        let errors2: Vec<_> = errors2.into_iter().filter(|e| !(p.anonymous_id.is_empty() && e.message.contains("anonymous id"))).collect();
        assert!(errors2.is_empty(), "re-decoding an encoded profile reports problems: {errors2:?}");
        assert_eq!(codec::encode(&p2), again, "encode/decode is not stable");
    }
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), Some(&v), T0);
    let _ = ks.track(T0, "Product Viewed", Map::new());
    assert!(!ks.anonymous_id().is_empty());
    let _ = ks.profile_document();
    // The restored profile keeps working: more page views and a new session, a login and a
    // logout (session counters and the identity epoch come from the stored record).
    for m in [1.0, 2.0, 120.0, 240.0] {
        ks.page(T0 + m * MIN, Map::new());
    }
    let opts = Value::Obj(Map::new().with("userId", "u1"));
    ks.identify(T0 + 241.0 * MIN, "ada@example.com", Map::new(), &opts).expect("a valid login");
    assert_eq!(ks.user_id(), Some("u1"));
    ks.reset(T0 + 242.0 * MIN);
    assert_eq!(ks.user_id(), None);
    let _ = ks.take_dirty();
}

/// Event sequences applied to a profile: each byte pair is an operation (track one of a few
/// names or a name from the input, page, refresh, time steps forward or backward, persist and
/// restore). Invariants: no panic; a restore keeps the anonymous id and the segments.
pub fn event_sequence(data: &[u8]) {
    let defs = parse(br#"{"version":1,"segments":[
        {"id":"viewers","condition":{"$performed":{"event":"Product Viewed"}}},
        {"id":"buyers3","condition":{"$performed":{"event":"Order Completed","within":"1h","count":{"$gte":3}}}},
        {"id":"big","condition":{"$performed":{"event":"Order Completed","sum":"revenue","value":{"$gte":100}}}},
        {"id":"both","condition":{"$and":[{"$inSegment":"viewers"},{"$inSegment":"buyers3"}]}}]}"#)
    .unwrap();
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(5), None, T0);
    let _ = ks.load_definitions(&defs, T0);
    let mut now = T0;
    let names = ["Product Viewed", "Order Completed", "Product Added", "", "__proto__"];
    for pair in data.chunks(2) {
        let (op, arg) = (pair[0], *pair.get(1).unwrap_or(&0));
        match op % 8 {
            0 | 1 | 2 => {
                let name = names[arg as usize % names.len()];
                let props = Map::new().with("revenue", f64::from(arg) * 10.0).with("i", f64::from(op));
                let _ = ks.track(now, name, props);
            }
            3 => {
                ks.page(now, Map::new().with("path", "/p"));
            }
            4 => now += f64::from(arg) * MIN,
            5 => now -= f64::from(arg) * 1000.0, // clocks go backwards
            6 => ks.refresh(now),
            _ => {
                ks.refresh(now);
                if let Some(stored) = ks.take_dirty() {
                    let before: Vec<String> = ks.segments().to_vec();
                    let id = ks.anonymous_id().to_string();
                    let mut restored = Keystone::new(Options::default(), NativeHost::boxed(5), Some(&stored), now);
                    let _ = restored.load_definitions(&defs, now);
                    assert_eq!(restored.anonymous_id(), id, "a restore keeps the anonymous id");
                    assert_eq!(restored.segments(), &before[..], "a restore keeps membership");
                    ks = restored;
                }
            }
        }
    }
    let _ = ks.profile_document();
}

/// Definitions for the merge target: behavioural state and a score, so the identity merge also
/// merges segment state (`segment::merge_state`; the score's states add when next aligned).
const MERGE_DEFS: &[u8] = br#"{"version":1,"segments":[
    {"id":"viewers","condition":{"$performed":{"event":"Product Viewed","within":"7d","count":{"$gte":2}}}},
    {"id":"big","condition":{"$performed":{"event":"Order Completed","sum":"revenue","value":{"$gte":100}}}},
    {"id":"gold","condition":{"traits.tier":{"$eq":"gold"}}}],
    "scores":[{"id":"engagement","halfLife":"7d","rules":[{"event":"Product Viewed","points":1}]}]}"#;

/// The most operation bytes the merge target reads.
const MAX_OPS: usize = 256;

/// The user id the merge target logs in as.
const USER: &str = "u1";

/// MERGE (DESIGN §5): the anonymous profile meets the known one. An input starting with `[` is
/// a JSON array `[anonymous, known]` of two stored profiles; any other is read as two operation
/// sequences (split at the first 0xFF, at most [`MAX_OPS`] bytes in all): the first builds the
/// anonymous visitor, the second a visitor who logs in as `u1` and logs out (setting the known
/// profile aside).
///
/// Invariants, for the pure merge (`merge::merge`): no panic; the result encodes and decodes
/// to the same profile with no problem reported; per event name the counts add (saturating at
/// u32::MAX), as do sessions; firstSeen is the earliest set, lastSeen the latest; linked ids
/// are a bounded union; the ring keeps its bounds; merge is commutative (up to key order) and
/// the empty profile is its identity element. For the engine's login: the anonymous profile
/// merges into the set-aside one with every event count kept, the known profile leaves the
/// aside store, and logging in again as the same user merges nothing twice.
pub fn merge(data: &[u8]) {
    let defs = parse(MERGE_DEFS).unwrap();
    let json = data.first() == Some(&b'[');
    let (anonymous, aside) = match parse(data).filter(|_| json) {
        None if json => return,
        Some(Value::Arr(pair)) if pair.len() < 2 => return,
        Some(Value::Arr(pair)) => {
            let (a, b) = (&pair[0], &pair[1]);
            let known = codec::decode(b).0.unwrap_or_default();
            if let Some(a) = codec::decode(a).0 {
                // A stored id that is no UUID decodes as "" (the rest kept), which the engine
                // replaces with a new id (or the cookie's) before it merges anything: so here.
                let id = |mut p: Profile, n: u8| {
                    if p.anonymous_id.is_empty() {
                        p.anonymous_id = format!("{n}0000000-0000-4000-8000-000000000000");
                    }
                    p
                };
                check_merge(id(a, 1), id(known.clone(), 2));
            }
            // The known profile as the engine sets it aside: under its user id.
            let mut known = known;
            known.user_id = Some(USER.into());
            let aside = Value::Arr(vec![Value::Arr(vec![USER.into(), Value::Num(T0), codec::encode(&known)])]);
            // The anonymous side is stored anonymous (a stored user id would make login a switch).
            let anonymous = match a {
                Value::Obj(m) => {
                    let mut m = m.clone();
                    m.insert("uid", Value::Null);
                    Value::Obj(m)
                }
                v => v.clone(),
            };
            (Some(anonymous), aside)
        }
        Some(_) => return,
        None => {
            // Every operation evaluates the profile: bounded, so each run stays fast.
            let data = &data[..data.len().min(MAX_OPS)];
            let cut = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
            let (ops_a, ops_b) = (&data[..cut], data.get(cut + 1..).unwrap_or(&[]));
            // The known visitor: behaviour, login, more behaviour, logout.
            let mut kb = Keystone::new(Options::default(), NativeHost::boxed(11), None, T0);
            let _ = kb.load_definitions(&defs, T0);
            let half = ops_b.len() / 2;
            let mut now = apply_ops(&mut kb, &ops_b[..half], T0);
            kb.identify(now, "ada@example.com", Map::new().with("tier", "silver"), &Value::Obj(Map::new().with("userId", USER))).expect("a valid login");
            now = apply_ops(&mut kb, &ops_b[half..], now);
            kb.reset(now);
            let aside = kb.take_aside().expect("logout sets the known profile aside");
            // The anonymous visitor, stored and restored as the page would.
            let mut ka = Keystone::new(Options::default(), NativeHost::boxed(13), None, T0);
            let _ = ka.load_definitions(&defs, T0);
            apply_ops(&mut ka, ops_a, T0);
            let stored = ka.take_dirty();
            if let (Some(a), Some(b)) = (stored.as_ref().and_then(|s| codec::decode(s).0), aside_profile(&aside)) {
                check_merge(a, b);
            }
            (stored, aside)
        }
    };
    check_login(anonymous.as_ref(), &aside, &defs);
}

/// Each byte pair is an operation: track (one of a few names), page, set a trait, time steps
/// forward or backward, refresh. Returns the clock.
fn apply_ops(ks: &mut Keystone, ops: &[u8], mut now: f64) -> f64 {
    let names = ["Product Viewed", "Order Completed", "Product Added", "__proto__"];
    for pair in ops.chunks(2) {
        let (op, arg) = (pair[0], *pair.get(1).unwrap_or(&0));
        match op % 7 {
            0 | 1 => {
                let props = Map::new().with("revenue", f64::from(arg) * 10.0);
                let _ = ks.track(now, names[arg as usize % names.len()], props);
            }
            2 => {
                ks.page(now, Map::new().with("path", "/p"));
            }
            3 => ks.set_traits(now, Map::new().with("tier", ["gold", "silver", "bronze"][arg as usize % 3])),
            4 => now += f64::from(arg) * 7.0 * MIN,
            5 => now -= f64::from(arg) * 1000.0,
            _ => ks.refresh(now),
        }
    }
    now
}

/// The set-aside profile of `USER` in a stored aside list.
fn aside_profile(aside: &Value) -> Option<Profile> {
    aside.as_arr()?.iter().find_map(|e| match e.as_arr().map(Vec::as_slice) {
        Some([Value::Str(u), _, p]) if u == USER => codec::decode(p).0,
        _ => None,
    })
}

fn total(p: &Profile, name: &str) -> u32 {
    p.stats(name).map_or(0, |s| s.counts.total())
}

/// Event counts per name in a profile document.
fn doc_counts(doc: &Value) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = match doc.as_obj().and_then(|d| d.get("events")).and_then(Value::as_obj) {
        Some(ev) => ev.iter().map(|(k, v)| (k.clone(), v.as_obj().and_then(|e| e.get("count")).and_then(Value::as_num).unwrap_or(0.0))).collect(),
        None => Vec::new(),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The content merge promises whatever the argument order (events by name, traits by key; the
/// fields merge leaves to its caller — behaviour state, writers — cleared).
fn canon(p: &Profile) -> Profile {
    let mut c = crate::common::canon_profile(p);
    c.behaviour = Default::default();
    c.writers = Map::new();
    c
}

/// Asserts two profiles are equal, naming the first field that differs.
fn same(x: &Profile, y: &Profile, what: &str) {
    assert_eq!(x.anonymous_id, y.anonymous_id, "{what}: anonymousId");
    assert_eq!(x.user_id, y.user_id, "{what}: userId");
    assert_eq!(x.epoch, y.epoch, "{what}: epoch");
    assert_eq!((x.first_seen, x.last_seen), (y.first_seen, y.last_seen), "{what}: firstSeen, lastSeen");
    assert_eq!(x.traits, y.traits, "{what}: traits");
    assert_eq!(x.trait_times, y.trait_times, "{what}: trait times");
    assert_eq!(x.context, y.context, "{what}: context");
    assert_eq!(x.session, y.session, "{what}: session");
    assert_eq!(x.events, y.events, "{what}: events");
    assert_eq!(x.recent, y.recent, "{what}: recent ring");
    assert_eq!(x.activation, y.activation, "{what}: activation");
    assert_eq!(x.linked, y.linked, "{what}: linked ids");
    assert!(x == y, "{what}: other fields");
}

/// The pure merge's invariants over two decoded profiles.
fn check_merge(a: Profile, b: Profile) {
    let m = merge_profiles(a.clone(), b.clone());
    let again = codec::encode(&m);
    let (m2, errors) = codec::decode(&again);
    let m2 = m2.expect("a merged profile decodes");
    assert!(errors.is_empty(), "decoding a merged profile reports problems: {errors:?}");
    assert_eq!(codec::encode(&m2), again, "a merged profile does not re-encode the same");
    let mut names: Vec<&str> = a.events.iter().chain(b.events.iter()).map(|e| e.name.as_str()).collect();
    names.sort();
    names.dedup();
    for name in &names {
        assert_eq!(total(&m, name), total(&a, name).saturating_add(total(&b, name)), "event counts of {name:?} are lost");
    }
    assert_eq!(m.events.len(), names.len(), "merge invents or drops event names");
    assert_eq!(m.session.count, a.session.count.saturating_add(b.session.count), "sessions are lost");
    let set: Vec<f64> = [a.first_seen, b.first_seen].into_iter().filter(|t| *t > 0.0).collect();
    if !set.is_empty() {
        assert_eq!(m.first_seen, set.iter().cloned().fold(f64::INFINITY, f64::min), "firstSeen is the earliest set");
    }
    assert_eq!(m.last_seen, a.last_seen.max(b.last_seen), "lastSeen");
    assert!(m.recent.len() <= RING_MAX_EVENTS, "the ring outgrew its bound");
    assert!(m.linked.len() <= LINKED_MAX, "linked ids outgrew their bound");
    let mut union: Vec<&String> = a.linked.iter().chain(b.linked.iter()).collect();
    union.sort();
    union.dedup();
    if union.len() <= LINKED_MAX {
        assert!(union.iter().all(|id| m.linked.contains(id)), "linked ids are lost");
    }
    same(&canon(&m), &canon(&merge_profiles(b.clone(), a.clone())), "merge is not commutative");
    same(&merge_profiles(a.clone(), Profile::default()), &a, "the empty profile is not merge's identity");
}

/// The engine's login of the anonymous visitor (`anonymous`, a stored profile) as the set-aside
/// known one (`aside`, the stored aside list).
fn check_login(anonymous: Option<&Value>, aside: &Value, defs: &Value) {
    let Some(known) = aside_profile(aside) else { return };
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(17), anonymous, T0);
    let _ = ks.load_definitions(defs, T0);
    let before = doc_counts(&ks.profile_document());
    let aid = ks.anonymous_id().to_string();
    ks.load_aside(aside);
    let opts = Value::Obj(Map::new().with("userId", USER));
    ks.identify(T0, "ada@example.com", Map::new(), &opts).expect("a valid login");
    assert_eq!(ks.user_id(), Some(USER));
    assert_eq!(ks.anonymous_id(), aid, "login keeps the anonymous id");
    let after = doc_counts(&ks.profile_document());
    let mut expect: Vec<(String, f64)> = before.clone();
    for e in &known.events {
        let n = f64::from(e.counts.total());
        match expect.iter_mut().find(|x| x.0 == e.name) {
            Some(x) => x.1 = (x.1 + n).min(f64::from(u32::MAX)),
            None => expect.push((e.name.clone(), n)),
        }
    }
    expect.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(after, expect, "login loses or invents events");
    let left = ks.take_aside().expect("the known profile left the aside store");
    assert!(aside_profile(&left).is_none(), "the known profile is still set aside after merging");
    // Logging in again as the same user merges nothing twice.
    ks.identify(T0 + MIN, "ada@example.com", Map::new(), &opts).expect("a valid login");
    assert_eq!(doc_counts(&ks.profile_document()), after, "a second login merged again");
    // What is written restores to the same identity and counts.
    let stored = ks.take_dirty().expect("login is written");
    let (p, errors) = codec::decode(&stored);
    assert!(errors.is_empty(), "the merged profile writes a corrupt record: {errors:?}");
    let p = p.expect("the merged profile decodes");
    assert_eq!(p.user_id.as_deref(), Some(USER));
    let restored = Keystone::new(Options::default(), NativeHost::boxed(19), Some(&stored), T0 + MIN);
    assert_eq!(restored.anonymous_id(), aid, "a restore keeps the anonymous id");
    assert_eq!(restored.user_id(), Some(USER), "a restore keeps the user id");
}
