#![cfg(all(not(target_arch = "wasm32"), feature = "segments"))]
//! The segment engine natively: the versioned behavioural cases and load-error cases of
//! tests/cases/ (also run in Chromium by tests/e2e/segments.test.mjs), state persistence and
//! merge, the next-expiry time, and property tests.
mod common;

use common::{json, to_json, NativeHost};
use keystone::core::behaviour;
use keystone::core::codec;
use keystone::core::keystone::{Keystone, Notice, Options};
use keystone::core::time::parse_duration;
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;

/// "7d1m30s" → ms (units w d h m s ms).
fn offset(s: &str) -> f64 {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().unwrap_or(0.0);
        num.clear();
        let unit = match c {
            'w' => 604_800_000.0,
            'd' => 86_400_000.0,
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            _ => panic!("bad offset {s}"),
        };
        total += n * unit;
    }
    total + num.parse::<f64>().unwrap_or(0.0)
}

fn options(case: &Value) -> Options {
    let mut o = Options::default();
    if let Some(r) = case.get("retention").and_then(Value::as_str) {
        o.retention = parse_duration(r).unwrap();
    }
    o
}

fn props(step: &Value, key: &str) -> Map {
    step.get(key).and_then(Value::as_obj).cloned().unwrap_or_default()
}

fn behaviour_cases() -> Vec<Value> {
    json(include_str!("cases/segments-behaviour.json")).get("cases").and_then(Value::as_arr).unwrap().clone()
}

fn run_case(case: &Value) {
    let name = case.get("name").and_then(Value::as_str).unwrap();
    let opts = options(case);
    let mut ks = Keystone::new(opts.clone(), NativeHost::boxed(7), None, T0);
    let report = ks.load_definitions(case.get("definitions").unwrap(), T0).unwrap();
    assert!(report.rejected.is_empty(), "{name}: {:?}", report.rejected);
    let defs = case.get("definitions").unwrap().clone();
    let mut defs = defs;
    for (i, step) in case.get("steps").and_then(Value::as_arr).unwrap().iter().enumerate() {
        let at = T0 + offset(step.get("at").and_then(Value::as_str).unwrap());
        let here = format!("{name} / step {i}");
        if let Some(ev) = step.get("track").and_then(Value::as_str) {
            let n = step.get("repeat").and_then(Value::as_num).unwrap_or(1.0) as usize;
            for _ in 0..n {
                ks.track(at, ev, props(step, "properties")).unwrap();
            }
        }
        if step.get("page").is_some() {
            ks.page(at, props(step, "page"));
        }
        if let Some(d) = step.get("load") {
            let r = ks.load_definitions(d, at).unwrap();
            assert!(r.rejected.is_empty(), "{here}: {:?}", r.rejected);
            defs = d.clone();
        }
        if step.get("restore").is_some() {
            let stored = codec::encode(&profile_of(&mut ks));
            ks = Keystone::new(opts.clone(), NativeHost::boxed(8), Some(&stored), at);
            ks.load_definitions(&defs, at).unwrap();
        }
        if let Some(exp) = step.get("expect") {
            ks.refresh(at);
            if let Some(want) = exp.get("segments") {
                let got = Value::Arr(ks.segments().iter().map(|s| Value::Str(s.clone())).collect());
                assert_eq!(to_json(&got), to_json(want), "{here}: segments");
                let doc = ks.document_at(at);
                assert_eq!(doc.get("segments"), Some(&got), "{here}: profile().segments agrees");
                for s in ks.segments().to_vec() {
                    assert!(ks.in_segment(&s));
                }
            }
            if let Some(want) = exp.get("scores").and_then(Value::as_obj) {
                let doc = ks.document_at(at);
                for (id, v) in want.iter() {
                    let got = doc.path(&format!("scores.{id}")).and_then(Value::as_num).unwrap();
                    assert!((got - v.as_num().unwrap()).abs() < 1e-6, "{here}: score {id} = {got}, want {v:?}");
                }
            }
            if let Some(want) = exp.get("explain") {
                let id = want.get("id").and_then(Value::as_str).unwrap();
                let x = ks.explain(id, at).unwrap();
                assert_eq!(x.get("result"), want.get("result"), "{here}: explain result {}", to_json(&x));
                assert_eq!(x.path("tree.result"), want.get("result"), "{here}: explain tree result");
                if let Some(v) = want.get("value") {
                    assert_eq!(x.path("tree.value").map(to_json), Some(to_json(v)), "{here}: explain value {}", to_json(&x));
                }
                assert_eq!(x.get("result") == Some(&Value::Bool(true)), ks.in_segment(id), "{here}: explain agrees with inSegment");
            }
        }
    }
}

/// The profile, through its stored form (what a reload sees).
fn profile_of(ks: &mut Keystone) -> keystone::core::profile::Profile {
    let stored = ks.take_dirty().unwrap_or_else(|| panic!("profile changed"));
    codec::decode(&stored).0.unwrap()
}

#[test]
fn behavioural_case_file() {
    let cases = behaviour_cases();
    assert!(cases.len() >= 10);
    for c in &cases {
        run_case(c);
    }
}

#[test]
fn load_error_case_file() {
    let doc = json(include_str!("cases/segments-load-errors.json"));
    for case in doc.get("cases").and_then(Value::as_arr).unwrap() {
        let name = case.get("name").and_then(Value::as_str).unwrap();
        let mut ks = Keystone::new(options(case), NativeHost::boxed(1), None, T0);
        let out = ks.load_definitions(case.get("definitions").unwrap(), T0);
        if let Some(e) = case.get("error") {
            let err = out.expect_err(name);
            assert_eq!(Some(err.code), e.get("code").and_then(Value::as_str), "{name}");
            assert_eq!(err.path.as_deref(), e.get("path").and_then(Value::as_str), "{name}");
            continue;
        }
        let r = out.unwrap();
        let loaded: Vec<Value> = r.loaded.iter().map(|s| Value::Str(s.clone())).collect();
        assert_eq!(to_json(&Value::Arr(loaded)), to_json(case.get("loaded").unwrap()), "{name}: loaded");
        let got: Vec<serde_json::Value> = r
            .rejected
            .iter()
            .map(|e| serde_json::json!({"code": e.code, "segmentId": e.segment_id, "path": e.path}))
            .collect();
        assert_eq!(serde_json::Value::Array(got), to_json(case.get("rejected").unwrap()), "{name}: rejected");
        for e in &r.rejected {
            assert!(!e.message.is_empty());
        }
    }
}

/// A segment rejected for its `$inSegment` says which segment it names: an unknown one (a typo),
/// a rejected one, or one on a cycle.
#[test]
fn in_segment_rejections_name_the_segment_named() {
    let doc = json(r#"{"version":1,"segments":[
        {"id":"a","condition":{"$inSegment":"b"}},
        {"id":"b","condition":{"$or":[{"$inSegment":"a"}]}},
        {"id":"fan","condition":{"$and":[{"$inSegment":"base"},{"$inSegment":"gohst"}]}},
        {"id":"broken","condition":{"$performed":{"event":"A","within":"soon"}}},
        {"id":"broken_fan","condition":{"$not":{"$inSegment":"broken"}}},
        {"id":"base","condition":{}}]}"#);
    let (_, report) = keystone::core::segment::parse(&doc, 90.0 * 86_400_000.0).unwrap();
    let said: Vec<(String, String)> = report.rejected.iter().map(|e| (e.segment_id.clone().unwrap(), e.message.clone())).collect();
    for (id, named) in [("a", "b"), ("b", "a"), ("fan", "gohst"), ("broken_fan", "broken")] {
        let m = &said.iter().find(|s| s.0 == id).unwrap_or_else(|| panic!("{id} rejected")).1;
        assert!(m.contains(&format!("\"{named}\"")), "{id}: {m}");
    }
}

#[test]
fn enter_and_exit_notices_fire_once_per_change() {
    let defs = json(r#"{"version":1,"segments":[{"id":"recent","condition":{"$performed":{"event":"A","within":"1h"}}}]}"#);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    ks.load_definitions(&defs, T0).unwrap();
    ks.take_notices();
    ks.track(T0, "A", Map::new()).unwrap();
    ks.track(T0 + 1000.0, "A", Map::new()).unwrap();
    assert_eq!(ks.take_notices(), vec![Notice::Enter("recent".into())]);
    assert_eq!(ks.next_check(T0 + 2000.0), Some(T0 + 1000.0 + 3_600_000.0), "expiry of the latest event");
    ks.refresh(T0 + 3_600_000.0);
    assert!(ks.take_notices().is_empty());
    ks.refresh(T0 + 1000.0 + 3_600_000.0);
    assert_eq!(ks.take_notices(), vec![Notice::Exit("recent".into())]);
    // Then only the retention's drop of the events' minute (90 days on).
    assert_eq!(ks.next_check(T0 + 2.0 * 3_600_000.0), Some(T0 + 60_000.0 + 90.0 * 86_400_000.0));
}

#[test]
fn score_threshold_crossing_is_the_next_check() {
    let defs = json(r#"{"version":1,"scores":[{"id":"e","halfLife":"1d","rules":[{"event":"A","points":40}]}],
        "segments":[{"id":"hot","condition":{"scores.e":{"$gte":20}}}]}"#);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    ks.load_definitions(&defs, T0).unwrap();
    ks.track(T0, "A", Map::new()).unwrap();
    assert!(ks.in_segment("hot"));
    // Read to 2 decimals: a check when the reading goes from 20.01 to 20 (a change for `$gt`,
    // none for `$gte`), then the exit once the exact value is below 19.995.
    let t = ks.next_check(T0 + 1.0).unwrap();
    let want = T0 + 86_400_000.0 * (40.0f64 / 20.005).log2();
    assert!((t - want).abs() <= 2.0, "a little before one half-life: {}", t - T0);
    ks.refresh(t);
    assert!(ks.in_segment("hot"));
    let t = ks.next_check(t).unwrap();
    let want = T0 + 86_400_000.0 * (40.0f64 / 19.995).log2();
    assert!((t - want).abs() <= 2.0, "a little after one half-life: {}", t - T0);
    ks.refresh(t - 2.0);
    assert!(ks.in_segment("hot"));
    ks.refresh(t);
    assert!(!ks.in_segment("hot"));
}

#[test]
fn score_thresholds_inside_not_and_in_have_timers_too() {
    let defs = json(r#"{"version":1,"scores":[{"id":"a","halfLife":"1d","rules":[{"event":"A","points":5}]}],
        "segments":[{"id":"not_lt","condition":{"scores.a":{"$not":{"$lt":5}}}},
                    {"id":"in","condition":{"scores.a":{"$in":[5, 7]}}}]}"#);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(4), None, T0);
    ks.load_definitions(&defs, T0).unwrap();
    ks.track(T0, "A", Map::new()).unwrap();
    assert_eq!(ks.segments(), &["in".to_string(), "not_lt".to_string()]);
    // Both leave when the reading leaves 5.00 (the exact value below 4.995), by the timer.
    let t = ks.next_check(T0).expect("a timer for thresholds under $not and $in");
    let want = T0 + 86_400_000.0 * (5.0f64 / 4.995).log2() + 1.0;
    assert!((t - want).abs() <= 2.0, "exit at {}", t - T0);
    ks.refresh(t);
    assert!(ks.segments().is_empty());
}

#[test]
fn scores_read_to_two_decimals_reach_a_threshold_equal_to_the_points_and_exit_on_time() {
    let defs = json(r#"{"version":1,"scores":[{"id":"e","halfLife":"1d","rules":[{"event":"A","points":1}]}],
        "segments":[{"id":"three","condition":{"scores.e":{"$gte":3}}},
                    {"id":"near","condition":{"scores.e":{"$gte":2.994}}},
                    {"id":"one","condition":{"scores.e":{"$gte":1}}},
                    {"id":"cooled","condition":{"scores.e":{"$lte":1,"$gt":0}}}]}"#);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    ks.load_definitions(&defs, T0).unwrap();
    // Three points 5 ms apart: 2.9999998… by the last one, read as 3.
    for i in 0..3 {
        ks.track(T0 + 5.0 * i as f64, "A", Map::new()).unwrap();
    }
    let exact: f64 = [10.0, 5.0, 0.0].iter().map(|d| 2f64.powf(-d / 86_400_000.0)).sum();
    assert!(exact < 3.0);
    let at = |b: f64| T0 + 10.0 + 86_400_000.0 * (exact / b).log2() + 1.0;
    let score = |ks: &Keystone| ks.profile_document().path("scores.e").and_then(Value::as_num);
    assert_eq!(score(&ks), Some(3.0));
    assert_eq!(ks.segments(), &["near".to_string(), "one".to_string(), "three".to_string()]);
    let explained = to_json(&ks.explain("three", T0 + 10.0).unwrap());
    assert_eq!(explained["tree"]["value"].as_f64(), Some(3.0));
    // The next check is when the reading leaves 3 (the exact value below 2.995), not the
    // exact crossing of 3, which has already passed; 2.99 is below 2.994 too.
    let t = ks.next_check(T0 + 10.0).unwrap();
    let want = at(2.995);
    assert!((t - want).abs() <= 2.0, "exit of `three` at {}", t - T0);
    ks.refresh(t - 2.0);
    assert!(ks.in_segment("three") && ks.in_segment("near"));
    ks.take_notices();
    ks.refresh(t);
    assert_eq!(ks.segments(), &["one".to_string()]);
    assert_eq!(ks.take_notices(), vec![Notice::Exit("near".into()), Notice::Exit("three".into())]);
    // `$lte: 1` holds once the reading is 1.00 (below 1.005), `$gt: 0` until it is 0.00.
    let t = ks.next_check(t).unwrap();
    let want = at(1.005);
    assert!((t - want).abs() <= 2.0, "entry of `cooled` at {}", t - T0);
    ks.refresh(t - 2.0);
    assert!(!ks.in_segment("cooled"));
    ks.refresh(t);
    assert_eq!(ks.segments(), &["cooled".to_string(), "one".to_string()]);
    let t = ks.next_check(t).unwrap();
    ks.refresh(t);
    assert_eq!(ks.segments(), &["cooled".to_string()], "`one` exits below 0.995");
    let t = ks.next_check(t).unwrap();
    let want = at(0.005);
    assert!((t - want).abs() <= 2.0, "exit of `cooled` at {}", t - T0);
    ks.refresh(t);
    assert!(ks.segments().is_empty());
    assert_eq!(score(&ks), Some(0.0));
    // Then only the retention's drop of the events' minute (90 days on).
    assert_eq!(ks.next_check(t), Some(T0 + 60_000.0 + 90.0 * 86_400_000.0));
}

#[test]
fn state_merge_adds_counts_and_is_order_independent() {
    let defs = json(r#"{"version":1,"scores":[{"id":"e","halfLife":"7d","rules":[{"event":"A","points":10}]}],
        "segments":[{"id":"three","condition":{"$performed":{"event":"A","count":{"$gte":3}}}},
                    {"id":"sum","condition":{"$performed":{"event":"A","within":"7d","sum":"v","value":{"$gte":6}}}},
                    {"id":"seq","condition":{"$sequence":{"steps":[{"event":"A"},{"event":"B"}]}}}]}"#);
    let mk = |seed: u64, evs: &[(&str, f64, f64)]| {
        let mut ks = Keystone::new(Options::default(), NativeHost::boxed(seed), None, T0);
        ks.load_definitions(&defs, T0).unwrap();
        for (n, t, v) in evs {
            ks.track(T0 + t, n, Map::new().with("v", *v)).unwrap();
        }
        profile_of(&mut ks).behaviour
    };
    let a = mk(1, &[("A", 0.0, 1.0), ("A", 86_400_000.0, 2.0)]);
    let b = mk(2, &[("A", 3_600_000.0, 3.0), ("B", 7_200_000.0, 0.0)]);
    let mut ab = a.clone();
    behaviour::merge(&mut ab, b.clone());
    let mut ba = b.clone();
    behaviour::merge(&mut ba, a.clone());
    let norm = |s: &behaviour::State| behaviour::encode(&{
        let mut s = s.clone();
        // Two states of one score, read from storage (foreign), are kept apart: in either order.
        s.nodes.sort_by_key(|n| (n.key, format!("{:?}", n.st)));
        s.scores.sort_by_key(|n| n.key);
        s
    });
    assert_eq!(to_json(&norm(&ab)), to_json(&norm(&ba)));
    // The merged state drives membership: 3 As in total, sum 6, A then B.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(4), None, T0);
    ks.load_definitions(&defs, T0).unwrap();
    let mut stored = codec::encode(&profile_of(&mut ks));
    let mut p = codec::decode(&stored).0.unwrap();
    p.behaviour = ab;
    stored = codec::encode(&p);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(5), Some(&stored), T0 + 2.0 * 86_400_000.0);
    ks.load_definitions(&defs, T0 + 2.0 * 86_400_000.0).unwrap();
    assert_eq!(ks.segments(), &["seq".to_string(), "sum".to_string(), "three".to_string()]);
    // And the score's two states (foreign: each read from storage) added after decay to a
    // common time: 10 points at 0, 1 h and 1 d, read at 2 d.
    let v: f64 = [0.0, 1.0 / 24.0, 1.0].iter().map(|d| 10.0 * (-(2.0 - d) / 7.0f64).exp2()).sum();
    assert_eq!(ks.document_at(T0 + 2.0 * 86_400_000.0).path("scores.e").and_then(Value::as_num), Some((v * 100.0).round() / 100.0));
}

use common::XorShift as Rng;

#[test]
fn windowed_counts_and_sums_do_not_depend_on_event_order() {
    let defs = json(r#"{"version":1,"segments":[
        {"id":"c","condition":{"$performed":{"event":"A","within":"1d","count":{"$gte":4}}}},
        {"id":"s","condition":{"$performed":{"event":"A","within":"1d","sum":"v","value":{"$gte":10}}}},
        {"id":"mx","condition":{"$performed":{"event":"A","within":"1d","max":"v","value":{"$gte":5}}}},
        {"id":"d","condition":{"$performed":{"event":"A","within":"1d","distinct":"v","value":{"$gte":3}}}}]}"#);
    let mut rng = Rng(0xDEC0_DE00_1234_5678);
    for _ in 0..200 {
        let n = 1 + rng.next() % 7;
        let mut evs: Vec<(f64, f64)> = (0..n).map(|_| ((rng.next() % 600) as f64 * 60_000.0, (rng.next() % 6) as f64)).collect();
        let run = |evs: &[(f64, f64)]| {
            // Events are recorded in time order; the defs see them through back-fill from the ring
            // when loaded after the events, in any order of insertion time.
            let mut ks = Keystone::new(Options::default(), NativeHost::boxed(9), None, T0);
            ks.load_definitions(&defs, T0).unwrap();
            let mut sorted = evs.to_vec();
            sorted.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            for (t, v) in &sorted {
                ks.track(T0 + t, "A", Map::new().with("v", *v)).unwrap();
            }
            ks.refresh(T0 + 700.0 * 60_000.0);
            ks.segments().to_vec()
        };
        let first = run(&evs);
        // Same multiset of (time, value), shuffled: ties in time may now come in another order.
        for i in (1..evs.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            evs.swap(i, j);
        }
        assert_eq!(run(&evs), first);
        // And against a direct computation.
        let in_window: Vec<&(f64, f64)> = evs.iter().collect();
        let count = in_window.len();
        let sum: f64 = in_window.iter().map(|e| e.1).sum();
        let max = in_window.iter().map(|e| e.1).fold(f64::MIN, f64::max);
        let mut distinct: Vec<u64> = in_window.iter().map(|e| e.1 as u64).collect();
        distinct.sort();
        distinct.dedup();
        let mut want = Vec::new();
        if count >= 4 { want.push("c".to_string()); }
        if distinct.len() >= 3 { want.push("d".to_string()); }
        if max >= 5.0 { want.push("mx".to_string()); }
        if sum >= 10.0 { want.push("s".to_string()); }
        assert_eq!(first, want, "{evs:?}");
    }
}

#[test]
fn not_inverts_and_single_and_or_equal_the_condition_for_behaviour() {
    let mut rng = Rng(0xABCD_EF01_2345_6789);
    let conds = [
        r#"{"$performed":{"event":"A","within":"1h","count":{"$gte":2}}}"#,
        r#"{"$performed":{"event":"B","sum":"v","value":{"$gt":3}}}"#,
        r#"{"$sequence":{"steps":[{"event":"A"},{"event":"B"}],"within":"2h"}}"#,
        r#"{"session.count":{"$gte":1}}"#,
    ];
    for _ in 0..60 {
        let c = conds[(rng.next() % conds.len() as u64) as usize];
        let defs = json(&format!(
            r#"{{"version":1,"segments":[{{"id":"x","condition":{c}}},{{"id":"not","condition":{{"$not":{c}}}}},
            {{"id":"and","condition":{{"$and":[{c}]}}}},{{"id":"or","condition":{{"$or":[{c}]}}}}]}}"#
        ));
        let mut ks = Keystone::new(Options::default(), NativeHost::boxed(rng.next()), None, T0);
        ks.load_definitions(&defs, T0).unwrap();
        let mut t = T0;
        for _ in 0..(rng.next() % 6) {
            t += (rng.next() % 90) as f64 * 60_000.0;
            let name = if rng.next() % 2 == 0 { "A" } else { "B" };
            ks.track(t, name, Map::new().with("v", (rng.next() % 5) as f64)).unwrap();
            let x = ks.in_segment("x");
            assert_eq!(ks.in_segment("not"), !x, "{c}");
            assert_eq!(ks.in_segment("and"), x, "{c}");
            assert_eq!(ks.in_segment("or"), x, "{c}");
        }
    }
}



/// A node shared by several segments is pruned to the evaluation time once, at its first use:
/// every segment answers (and explains) as it does when it is the only one loaded, where each
/// use has a node of its own.
#[test]
fn shared_nodes_observed_once_answer_as_nodes_of_their_own() {
    let mut rng = Rng(0x5EED_0F_5A4E_D0DE);
    let conds = [
        r#"{"$performed":{"event":"A","within":"1h","count":{"$gte":2}}}"#,
        r#"{"$not":{"$performed":{"event":"A","within":"1h","count":{"$gte":2}}}}"#,
        r#"{"$or":[{"$performed":{"event":"B","within":"2h","sum":"v","value":{"$gt":3}}},{"$performed":{"event":"A","within":"1h","count":{"$gte":2}}}]}"#,
        r#"{"$and":[{"$performed":{"event":"B","within":"2h","sum":"v","value":{"$gt":3}}},{"$performed":{"event":"B","within":"2h","max":"v","value":{"$gte":4}}}]}"#,
        r#"{"$performed":{"event":"B","within":"2h","max":"v","value":{"$gte":4}}}"#,
        r#"{"$sequence":{"steps":[{"event":"A"},{"event":"B"}],"within":"2h"}}"#,
        r#"{"$and":[{"$sequence":{"steps":[{"event":"A"},{"event":"B"}],"within":"2h"}},{"$performed":{"event":"A","within":"1h","count":{"$gte":2}}}]}"#,
    ];
    let doc = |ids: &[usize]| {
        let segs: Vec<String> = ids.iter().map(|&i| format!(r#"{{"id":"s{i}","condition":{}}}"#, conds[i])).collect();
        json(&format!(r#"{{"version":1,"segments":[{}]}}"#, segs.join(",")))
    };
    for round in 0..20 {
        let all: Vec<usize> = (0..conds.len()).collect();
        let mut shared = Keystone::new(Options::default(), NativeHost::boxed(round), None, T0);
        shared.load_definitions(&doc(&all), T0).unwrap();
        let mut alone: Vec<Keystone> = all.iter().map(|&i| {
            let mut ks = Keystone::new(Options::default(), NativeHost::boxed(round), None, T0);
            ks.load_definitions(&doc(&[i]), T0).unwrap();
            ks
        }).collect();
        let mut t = T0;
        for _ in 0..12 {
            t += (rng.next() % 50) as f64 * 60_000.0;
            let name = if rng.next() % 2 == 0 { "A" } else { "B" };
            let v = (rng.next() % 6) as f64;
            shared.track(t, name, Map::new().with("v", v)).unwrap();
            for (i, ks) in alone.iter_mut().enumerate() {
                ks.track(t, name, Map::new().with("v", v)).unwrap();
                let id = format!("s{i}");
                assert_eq!(shared.in_segment(&id), ks.in_segment(&id), "{}", conds[i]);
                assert_eq!(shared.explain(&id, t + 1.0).unwrap(), ks.explain(&id, t + 1.0).unwrap(), "{}", conds[i]);
            }
        }
    }
}

/// `explain` of a `$performed` with an aggregate shows both parts it requires: the aggregate
/// (`value`/`expected`) and the count (`count`/`countExpected`).
#[test]
fn explain_of_an_aggregate_shows_the_count_it_requires_too() {
    let t0 = 1_764_403_200_000.0;
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, t0);
    let defs = json(r#"{"version":1,"segments":[{"id":"s","condition":{"$performed":{"event":"O","sum":"v","value":{"$gte":1},"count":{"$gte":3}}}}]}"#);
    ks.load_definitions(&defs, t0).unwrap();
    ks.track(t0 + 1.0, "O", Map::new().with("v", 5.0)).unwrap();
    ks.track(t0 + 2.0, "O", Map::new().with("v", 5.0)).unwrap();
    let tree = to_json(&ks.explain("s", t0 + 3.0).unwrap())["tree"].clone();
    assert_eq!(tree, serde_json::json!({"op": "$performed", "result": false, "value": 10.0, "expected": {"$gte": 1.0}, "count": 2.0, "countExpected": {"$gte": 3.0}}));
    ks.track(t0 + 3.0, "O", Map::new().with("v", 5.0)).unwrap();
    assert_eq!(to_json(&ks.explain("s", t0 + 4.0).unwrap())["tree"]["result"], serde_json::json!(true));
}

/// A score that is new or changed is back-filled from the ring before the first evaluation reads
/// it: membership follows at once, with no exit and re-entry.
#[test]
fn a_new_or_changed_score_counts_at_the_first_evaluation() {
    let seg = r#""segments":[{"id":"buyers","condition":{"scores.engagement":{"$gte":10}}}]"#;
    let one = json(&format!(r#"{{"version":1,{seg},"scores":[{{"id":"engagement","rules":[{{"event":"Buy","points":10}}]}}]}}"#));
    let two = json(&format!(
        r#"{{"version":1,{seg},"scores":[{{"id":"engagement","rules":[{{"event":"Buy","points":10}},{{"event":"Signup","points":5}}]}}]}}"#
    ));
    let held = vec!["buyers".to_string()];

    // A rule added to the score.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(11), None, T0);
    ks.load_definitions(&one, T0).unwrap();
    ks.track(T0 + 1000.0, "Buy", Map::new()).unwrap();
    assert_eq!(ks.segments(), held.as_slice());
    ks.take_notices();
    ks.load_definitions(&two, T0 + 2000.0).unwrap();
    assert_eq!(ks.segments(), held.as_slice(), "changed score");
    assert_eq!(ks.take_notices(), vec![], "no exit and re-entry");

    // The score (and the segment) loaded after the events.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(12), None, T0);
    ks.track(T0 + 1000.0, "Buy", Map::new()).unwrap();
    ks.load_definitions(&two, T0 + 2000.0).unwrap();
    assert_eq!(ks.segments(), held.as_slice(), "new score");
    assert_eq!(ks.take_notices(), vec![Notice::Enter("buyers".into())]);

    // A stored profile meeting new score definitions at init.
    let stored = codec::encode(&profile_of(&mut ks));
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(13), Some(&stored), T0 + 3000.0);
    ks.load_definitions(&one, T0 + 3000.0).unwrap();
    assert_eq!(ks.segments(), held.as_slice(), "init with a stored profile");
    assert_eq!(ks.document_at(T0 + 3000.0).path("scores.engagement"), Some(&Value::Num(10.0)));
}

/// `$inSegment` dependencies checked at load in time linear in the graph: 40 layers of 3
/// segments, each an `$or` over the layer below (3^39 paths), load at once; closing a cycle
/// through every layer rejects the segments on it and those depending on them.
#[test]
fn deep_layered_in_segment_graphs_load_quickly() {
    let layered = |cycle: bool| {
        let (layers, width) = (40, 3);
        let mut segs = Vec::new();
        for l in 0..layers {
            for w in 0..width {
                let cond = if l == 0 && !(cycle && w == 0) {
                    format!(r#"{{"traits.x":{w}}}"#)
                } else if l == 0 {
                    format!(r#"{{"$inSegment":"l{}_0"}}"#, layers - 1)
                } else {
                    let or: Vec<String> = (0..width).map(|j| format!(r#"{{"$inSegment":"l{}_{j}"}}"#, l - 1)).collect();
                    format!(r#"{{"$or":[{}]}}"#, or.join(","))
                };
                segs.push(format!(r#"{{"id":"l{l}_{w}","condition":{cond}}}"#));
            }
        }
        json(&format!(r#"{{"version":1,"segments":[{}]}}"#, segs.join(",")))
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for cycle in [false, true] {
            let (defs, report) = keystone::core::segment::parse(&layered(cycle), 90.0 * 86_400_000.0).unwrap();
            tx.send((defs.segments.len(), report.loaded.len(), report.rejected.len())).unwrap();
        }
    });
    let wait = std::time::Duration::from_secs(20);
    assert_eq!(rx.recv_timeout(wait).expect("acyclic graph loads in time"), (120, 120, 0));
    assert_eq!(rx.recv_timeout(wait).expect("cyclic graph loads in time"), (2, 2, 118), "only l0_1 and l0_2 stay");
}

#[test]
fn new_definitions_count_events_older_than_the_ring_where_no_property_is_read() {
    // A heavy visitor: one Signup, then 300 page views, before the definitions are published.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(9), None, T0);
    let mut props = Map::new();
    props.insert("plan", Value::from("pro"));
    ks.track(T0, "Signup", props).unwrap();
    for i in 0..300 {
        ks.track(T0 + 60_000.0 * (1 + i) as f64, "Product Viewed", Map::new()).unwrap();
    }
    // 30 s after the last view: the last hour holds the views of minutes 241 to 300 (60).
    let now = T0 + 60_000.0 * 300.0 + 30_000.0;
    let defs = json(r#"{"version":1,
        "scores":[{"id":"eng","rules":[{"event":"Signup","points":50}]},
                  {"id":"pro","rules":[{"event":"Signup","points":5,"where":{"plan":"pro"}}]}],
        "segments":[{"id":"signed","condition":{"$performed":{"event":"Signup"}}},
                    {"id":"viewed300","condition":{"$performed":{"event":"Product Viewed","count":{"$gte":300}}}},
                    {"id":"viewed_hour","condition":{"$performed":{"event":"Product Viewed","within":"1h","count":{"$gte":60}}}},
                    {"id":"viewed_hour_61","condition":{"$performed":{"event":"Product Viewed","within":"1h","count":{"$gte":61}}}}]}"#);
    ks.load_definitions(&defs, now).unwrap();
    assert_eq!(ks.segments(), &["signed".to_string(), "viewed300".to_string(), "viewed_hour".to_string()]);
    let score = |id: &str| ks.profile_document().path(&format!("scores.{id}")).and_then(Value::as_num);
    assert_eq!(score("eng"), Some(50.0), "a rule without `where` counts the events before the ring");
    assert_eq!(score("pro"), Some(0.0), "a rule with `where` sees only the ring (the properties are gone)");
}

#[test]
fn a_sequence_split_across_the_profiles_joined_by_a_login_completes() {
    let defs = json(r#"{"version":1,"segments":[
        {"id":"ba","condition":{"$sequence":{"steps":[{"event":"B"},{"event":"A"}],"within":"1h"}}},
        {"id":"ab","condition":{"$sequence":{"steps":[{"event":"A"},{"event":"B"}],"within":"1h"}}}]}"#);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(11), None, T0);
    ks.load_definitions(&defs, T0).unwrap();
    // B as the known user, then (after a logout) A anonymously, then the login joins them.
    ks.identify(T0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    ks.track(T0 + 1_000.0, "B", Map::new()).unwrap();
    ks.reset(T0 + 2_000.0);
    ks.track(T0 + 3_000.0, "A", Map::new()).unwrap();
    assert!(ks.segments().is_empty());
    ks.identify(T0 + 4_000.0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    assert_eq!(ks.segments(), &["ba".to_string()], "B then A, across the two profiles; not A then B");
}

#[test]
fn back_fill_counts_the_events_of_the_ring_s_first_minute_once() {
    // One Signup then 249 views in one minute: the ring holds the last 200 views; the minute's
    // count holds all 250 events.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(12), None, T0);
    ks.track(T0, "Signup", Map::new()).unwrap();
    for i in 0..249 {
        ks.track(T0 + 1.0 + i as f64, "Product Viewed", Map::new()).unwrap();
    }
    let defs = json(r#"{"version":1,"scores":[{"id":"eng","rules":[{"event":"Signup","points":50},{"event":"Product Viewed","points":1}]}],
        "segments":[{"id":"signed","condition":{"$performed":{"event":"Signup"}}},
                    {"id":"pv249","condition":{"$performed":{"event":"Product Viewed","count":{"$gte":249}}}},
                    {"id":"pv250","condition":{"$performed":{"event":"Product Viewed","count":{"$gte":250}}}}]}"#);
    ks.load_definitions(&defs, T0 + 1_000.0).unwrap();
    assert_eq!(ks.segments(), &["pv249".to_string(), "signed".to_string()]);
    assert_eq!(ks.profile_document().path("scores.eng").and_then(Value::as_num), Some(299.0));
}

#[test]
fn back_fill_does_not_count_twice_a_ring_out_of_time_order() {
    // A clock set back (or a ring rebased onto another tab's newer write): recorded later, earlier in time.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(13), None, T0);
    ks.track(T0 + 120_000.0, "V", Map::new()).unwrap();
    ks.track(T0, "V", Map::new()).unwrap();
    let defs = json(r#"{"version":1,"scores":[{"id":"v","rules":[{"event":"V","points":1}]}],"segments":[
        {"id":"ge2","condition":{"$performed":{"event":"V","count":{"$gte":2}}}},
        {"id":"ge3","condition":{"$performed":{"event":"V","count":{"$gte":3}}}}]}"#);
    ks.load_definitions(&defs, T0 + 180_000.0).unwrap();
    assert_eq!(ks.segments(), &["ge2".to_string()]);
    assert_eq!(ks.profile_document().path("scores.v").and_then(Value::as_num), Some(2.0));
}

/// Definition errors locate their fault with a JSON pointer made only when the error is
/// reported (the compiler walks a borrowed chain of keys and indexes): it must equal the pointer
/// joined step by step, escapes (`~0`, `~1`) and array indexes included, at every depth.
#[test]
fn error_pointers_rendered_on_error_equal_joined_ones() {
    use keystone::core::error::{join, join_pointer};
    use keystone::core::segment::parse;
    // Steps joined one at a time, the old way (numbers are array indexes).
    let ptr = |steps: &[&str]| steps.iter().fold(String::new(), |p, s| match s.parse::<usize>() {
        Ok(i) => join_pointer(&p, i),
        Err(_) => join(&p, s),
    });
    let cases: Vec<(&str, String)> = vec![
        (r#"{"id":"a","condition":{"$and":[{"x":1},{"$or":[{"y":2},{"$not":{"$performed":{"event":"E","within":"9999d"}}}]}]}}"#, ptr(&["segments", "0", "condition", "$and", "1", "$or", "1", "$not", "$performed", "within"])),
        (r#"{"id":"a","condition":{"a/b~c":{"$eq":1},"$sequence":{"steps":[{"event":"A"},{"event":"B","bogus~/":1}]}}}"#, ptr(&["segments", "0", "condition", "$sequence", "steps", "1", "bogus~/"])),
        (r#"{"id":"a","condition":{"$sequence":{"steps":[]}}}"#, ptr(&["segments", "0", "condition", "$sequence", "steps"])),
        (r#"{"id":"a","condition":{"$performed":{"event":"E","sum":"v"}}}"#, ptr(&["segments", "0", "condition", "$performed"])),
        (r#"{"id":"a","condition":{"segments.x":1}}"#, ptr(&["segments", "0", "condition", "segments.x"])),
        (r#"{"id":"a","condition":{"$inSegment":"nope"}}"#, ptr(&["segments", "0", "condition", "$inSegment"])),
        (r#"{"id":"a","condition":{"$and":{}}}"#, ptr(&["segments", "0", "condition", "$and"])),
        (r#"{"id":"","condition":{}}"#, ptr(&["segments", "0", "id"])),
        (r#"{"id":"a","condition":{},"x/y":1}"#, ptr(&["segments", "0", "x/y"])),
        (r#"7"#, ptr(&["segments", "0"])),
    ];
    for (def, want) in cases {
        let doc = json(&format!(r#"{{"version":1,"segments":[{def}]}}"#));
        let (_, report) = parse(&doc, 90.0 * 86_400_000.0).unwrap();
        assert_eq!(report.rejected.len(), 1, "{def}");
        assert_eq!(report.rejected[0].path.as_deref(), Some(want.as_str()), "{def}");
    }
    // Scores: rules by index, keys escaped.
    let doc = json(r#"{"version":1,"segments":[],"scores":[{"id":"s","rules":[{"event":"A","points":1},{"event":"B","points":"x"}]},{"id":"t","rules":[],"~":1}]}"#);
    let (_, report) = parse(&doc, 90.0 * 86_400_000.0).unwrap();
    let paths: Vec<_> = report.rejected.iter().map(|e| e.path.clone().unwrap()).collect();
    assert_eq!(paths, vec![ptr(&["scores", "0", "rules", "1", "points"]), ptr(&["scores", "1", "~"])]);
}

/// Counts tested against numbers keep only the latest timestamps, up to the largest number + 1;
/// a test the cap would change stays per minute: `$inGroup`/`$notInGroup` read the count as
/// text, a saved group's id, so `{"$inGroup": 3}` with group "3" = [5] holds at exactly 5
/// events (with the count capped at 4 it never did).
#[test]
fn a_count_tested_by_a_saved_group_keeps_every_event() {
    let member = |defs: &str, n: usize| {
        let mut k = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
        assert!(k.load_definitions(&json(defs), T0).unwrap().rejected.is_empty());
        for i in 0..n {
            k.track(T0 + 1.0 + i as f64, "E", Map::new()).unwrap();
        }
        k.refresh(T0 + 1000.0);
        k.in_segment("s")
    };
    let defs = |op: &str, id: &str| format!(r#"{{"version":1,"savedGroups":{{"3":[5]}},"segments":[{{"id":"s","condition":{{"$performed":{{"event":"E","count":{{"{op}":{id}}}}}}}}}]}}"#);
    for (id, n, inside) in [("\"3\"", 5, true), ("3", 5, true), ("3", 4, false), ("3", 6, false)] {
        assert_eq!(member(&defs("$inGroup", id), n), inside, "$inGroup {id}, {n} events");
        assert_eq!(member(&defs("$notInGroup", id), n), !inside, "$notInGroup {id}, {n} events");
    }
    // And a range of comparisons, exact: in at 2 and 3 events, out at 4.
    let range = r#"{"version":1,"segments":[{"id":"s","condition":{"$performed":{"event":"E","count":{"$gte":2,"$lt":4}}}}]}"#;
    assert_eq!([1, 2, 3, 4, 9].map(|n| member(range, n)), [false, true, true, false, false]);
}
