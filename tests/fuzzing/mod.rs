//! The fuzz targets' bodies, shared by the cargo-fuzz crate (`fuzz/`), the replay of the kept
//! corpus and crash inputs (`tests/fuzz_regressions.rs`) and the seeded in-process driver
//! (`tests/fuzz_smoke.rs`). Each takes raw bytes, as libFuzzer gives them: JSON text where the
//! target needs a document. Each asserts the properties that must hold for every input.
#![allow(dead_code)]

use crate::common::{from_json, NativeHost};
use keystone::core::codec;
use keystone::core::keystone::{Keystone, Options};
use keystone::core::value::{Map, Value};

pub const T0: f64 = 1_764_403_200_000.0;
const MIN: f64 = 60_000.0;

/// The targets, by the name of their corpus folder.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[("segments", segments), ("profile_decoder", profile_decoder), ("event_sequence", event_sequence)];

fn parse(data: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(data).ok()?;
    // serde_json's own recursion limit (128) bounds the depth, as the browser layer does (64).
    serde_json::from_str::<serde_json::Value>(text).ok().map(|v| from_json(&v))
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
/// profile; the engine restores from anything.
pub fn profile_decoder(data: &[u8]) {
    let Some(v) = parse(data) else { return };
    let (p, _errors) = codec::decode(&v);
    if let Some(p) = p {
        let again = codec::encode(&p);
        let (p2, errors2) = codec::decode(&again);
        let p2 = p2.expect("a decoded profile re-decodes");
        assert!(errors2.is_empty(), "re-decoding an encoded profile reports problems: {errors2:?}");
        assert_eq!(codec::encode(&p2), again, "encode/decode is not stable");
    }
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), Some(&v), T0);
    let _ = ks.track(T0, "Product Viewed", Map::new());
    assert!(!ks.anonymous_id().is_empty());
    let _ = ks.profile_document();
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
            3 => ks.page(now, Map::new().with("path", "/p")),
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
