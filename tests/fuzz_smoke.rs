#![cfg(not(target_arch = "wasm32"))]
//! A deterministic, seeded in-process driver over the fuzz targets (`tests/fuzzing/mod.rs`), for
//! machines without cargo-fuzz: structure-aware random documents built from the definitions'
//! and the stored format's vocabulary, plus mutations of the kept corpus. Bounded: a fixed number
//! of inputs per target, and at most a few seconds each.
mod common;
mod fuzzing;

use std::time::{Duration, Instant};

use common::SplitMix as Rng;

const KEYS: &[&str] = &[
    "version", "segments", "scores", "experiences", "savedGroups", "id", "name", "condition", "$performed", "$sequence", "steps",
    "event", "where", "within", "count", "sum", "avg", "min", "max", "distinct", "value", "$inSegment", "$and", "$or", "$nor",
    "$not", "$gte", "$lt", "$eq", "$in", "$regex", "$exists", "$elemMatch", "$size", "$all", "$inGroup", "$vgt", "traits.tier",
    "scores.engagement", "rules", "points", "halfLife", "v", "anonymousId", "userId", "traits", "events", "recent", "session",
    "firstSeen", "lastSeen", "consent", "__proto__", "constructor", "variants", "priority", "cap", "holdout",
];
const STRS: &[&str] = &["Product Viewed", "Order Completed", "7d", "1h", "30m", "0d", "-5d", "99999999999999w", "1.5h", "", "a",
    "^a.*$", "(", "1.2.3", "gold", "\u{0}", "é", "🎉", "x"];

fn value(r: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    match r.index(if depth > 6 { 4 } else { 7 }) {
        0 => J::Null,
        1 => J::Bool(r.index(2) == 0),
        2 => {
            let n = [0.0, -0.0, 1.0, -1.0, 3.0, 1e308, -1e308, 0.5, 1e-300, 2f64.powi(53) + 1.0, 100.0][r.index(11)];
            serde_json::Number::from_f64(n).map(J::Number).unwrap_or(J::Null)
        }
        3 => J::String(r.pick(STRS).into()),
        4 => J::Array((0..r.index(5)).map(|_| value(r, depth + 1)).collect()),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.index(6) {
                m.insert(r.pick(KEYS).into(), value(r, depth + 1));
            }
            J::Object(m)
        }
    }
}

/// A document shaped like the target's input, with random parts.
fn document(r: &mut Rng, target: &str) -> Vec<u8> {
    let v = value(r, 0);
    let doc = match (target, r.index(3)) {
        ("segments", 0 | 1) => serde_json::json!({"version": 1, "segments": [{"id": "s", "condition": v}, {"id": "t", "condition": value(r, 2)}], "scores": [{"id": "engagement", "halfLife": r.pick(STRS), "rules": [{"event": r.pick(STRS), "points": value(r, 5)}]}]}),
        ("profile_decoder", 0 | 1) => serde_json::json!({"v": 1, "anonymousId": r.pick(STRS), "traits": v, "events": [[r.pick(STRS), value(r, 5), value(r, 5), [value(r, 6), value(r, 6)]]], "recent": value(r, 3), "session": value(r, 3), "firstSeen": value(r, 6), "lastSeen": value(r, 6)}),
        _ => v,
    };
    serde_json::to_vec(&doc).unwrap()
}

fn mutate(r: &mut Rng, mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + r.index(4) {
        if data.is_empty() {
            data.push(b'{');
        }
        let i = r.index(data.len());
        match r.index(3) {
            0 => data[i] = r.next() as u8,
            1 => {
                let alphabet = b"{}[]\",:0123456789-e.nulltrue";
                data.insert(i, alphabet[r.index(alphabet.len())])
            }
            _ => {
                data.remove(i);
            }
        }
    }
    data
}

#[test]
fn seeded_random_inputs_hold_every_targets_invariants() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus");
    for (name, run) in fuzzing::TARGETS {
        let mut r = Rng(0x5EED ^ name.len() as u64);
        let corpus: Vec<Vec<u8>> = std::fs::read_dir(root.join(name))
            .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| std::fs::read(e.path()).ok()).collect())
            .unwrap_or_default();
        let start = Instant::now();
        let mut n = 0;
        while n < 3000 && start.elapsed() < Duration::from_secs(2) {
            let data = match r.index(3) {
                0 if !corpus.is_empty() => {
                    let seed = corpus[r.index(corpus.len())].clone();
                    mutate(&mut r, seed)
                }
                1 => (0..r.index(64)).map(|_| r.next() as u8).collect(),
                _ => document(&mut r, name),
            };
            let res = std::panic::catch_unwind(|| run(&data));
            assert!(res.is_ok(), "{name}: input {:?} fails", String::from_utf8_lossy(&data));
            n += 1;
        }
        println!("{name}: {n} inputs");
    }
}
