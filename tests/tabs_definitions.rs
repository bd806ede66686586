#![cfg(not(target_arch = "wasm32"))]
//! Tabs (or loads) holding different definitions share one behavioural state: the state of
//! definitions a tab does not hold is kept for the tabs that do (foreign slots), with the number
//! of events it saw, and a tab that holds it again adopts it and applies the recent ring's events
//! since. Two tabs over one storage slot, as in `profile.rs`: `write` and `rebase` are what the
//! browser layer calls at a write and at another tab's `storage` event (a write is given `None`
//! while storage still holds what the tab last read or wrote, as the browser layer does).
mod common;

use common::{json, NativeHost};
use keystone::core::behaviour::{self, NodeState, FOREIGN_MAX, FOREIGN_MISSED_MAX};
use keystone::core::codec;
use keystone::core::keystone::{Keystone, Options};
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;

fn ks(seed: u64, stored: Option<&Value>, now: f64) -> Keystone {
    Keystone::new(Options::default(), NativeHost::boxed(seed), stored, now)
}

fn ticks(k: &mut Keystone, t: &mut f64, n: usize) {
    for i in 0..n {
        *t += 1000.0;
        k.track(*t, "Tick", Map::new().with("i", i as f64)).unwrap();
    }
}

/// The behavioural state as stored.
fn state(k: &mut Keystone) -> behaviour::State {
    codec::decode(&k.take_dirty().unwrap()).0.unwrap().behaviour
}

const FUNNEL: &str = r#"{"version":1,"segments":[{"id":"funnel","condition":{"$sequence":{"steps":[{"event":"A"},{"event":"B"}]}}}]}"#;

/// Tab `a` completes a `$sequence`, then 210 more events push it out of the ring; tab `b` loads
/// `other` (and tracks `b_events`), writes; `a` hears of that write and still holds the sequence.
fn sequence_survives(other: &str, b_events: &[&str]) {
    let mut t = T0;
    let mut a = ks(1, None, t);
    a.load_definitions(&json(FUNNEL), t).unwrap();
    a.track(t + 1.0, "A", Map::new()).unwrap();
    a.track(t + 2.0, "B", Map::new()).unwrap();
    ticks(&mut a, &mut t, 210);
    assert_eq!(a.segments(), &["funnel".to_string()]);
    let sa = a.write(None, t).unwrap();
    let mut b = ks(2, Some(&sa), t);
    b.load_definitions(&json(other), t).unwrap();
    for e in b_events {
        t += 1000.0;
        b.track(t, e, Map::new()).unwrap();
    }
    let sb = b.write(None, t).unwrap();
    assert!(a.rebase(&sb, t + 1.0));
    assert_eq!(a.segments(), &["funnel".to_string()], "after {other}");
    // And back: `a` writes, `b` adopts that, writes again; `a` still holds it.
    round_trip(&mut a, &mut b, t + 2.0, "Other");
    assert_eq!(a.segments(), &["funnel".to_string()]);
}

/// `a` tracks and writes, `b` adopts that, tracks `b_event` and writes, `a` adopts that (from
/// `t` to `t + 5`); returns `b`'s write.
fn round_trip(a: &mut Keystone, b: &mut Keystone, t: f64, b_event: &str) -> Value {
    a.track(t, "Tick", Map::new()).unwrap();
    let sa = a.write(None, t + 1.0).unwrap();
    assert!(b.rebase(&sa, t + 2.0));
    b.track(t + 3.0, b_event, Map::new()).unwrap();
    let sb = b.write(None, t + 4.0).unwrap();
    assert!(a.rebase(&sb, t + 5.0));
    sb
}

#[test]
fn a_tab_without_behaviour_does_not_take_a_completed_sequence_from_another() {
    sequence_survives(r#"{"version":1,"segments":[{"id":"pro","condition":{"traits.plan":"pro"}}]}"#, &[]);
}

#[test]
fn a_tab_with_other_behaviour_does_not_take_a_completed_sequence_from_another() {
    sequence_survives(r#"{"version":1,"segments":[{"id":"viewers","condition":{"$performed":{"event":"Viewed"}}}]}"#, &["Other"]);
}

/// The events another tab recorded while it did not hold a definition are applied when this
/// tab adopts the state again, once each (a `where` count, which the minute counts cannot
/// rebuild, of exactly 2).
#[test]
fn an_adopted_state_gets_the_events_other_tabs_recorded_meanwhile_once() {
    let defs = r#"{"version":1,"segments":[{"id":"two","condition":{"$performed":{"event":"Buy","where":{"ok":true},"count":{"$eq":2}}}}]}"#;
    let ok = || Map::new().with("ok", true);
    let mut t = T0;
    let mut a = ks(1, None, t);
    a.load_definitions(&json(defs), t).unwrap();
    a.track(t, "Buy", ok()).unwrap();
    ticks(&mut a, &mut t, 250); // out of the ring
    let sa = a.write(None, t).unwrap();
    let mut b = ks(2, Some(&sa), t);
    b.load_definitions(&json(r#"{"version":1,"segments":[{"id":"v","condition":{"$performed":{"event":"Viewed"}}}]}"#), t).unwrap();
    t += 1000.0;
    b.track(t, "Buy", ok()).unwrap();
    let sb = b.write(None, t).unwrap();
    assert!(a.rebase(&sb, t + 1.0));
    assert_eq!(a.segments(), &["two".to_string()], "a's Buy (kept) and b's (from the ring)");
    // Round trips through storage apply nothing twice.
    let sb2 = round_trip(&mut a, &mut b, t + 2.0, "Tick");
    assert_eq!(a.segments(), &["two".to_string()]);
    // A reload of `a` (the stored state, then the same definitions) too.
    let sa3 = a.write(None, t + 7.0).unwrap_or(sb2);
    let mut a2 = ks(3, Some(&sa3), t + 8.0);
    a2.load_definitions(&json(defs), t + 8.0).unwrap();
    assert_eq!(a2.segments(), &["two".to_string()]);
}

/// A load of part of the definitions lets the others go: loaded again, they get the events
/// recorded meanwhile (the kept ones first in the same order: they stay held).
#[test]
fn a_load_of_part_of_the_definitions_lets_the_others_go() {
    let all = r#"{"version":1,"segments":[{"id":"a","condition":{"$performed":{"event":"A"}}},{"id":"two","condition":{"$performed":{"event":"Buy","where":{"ok":true},"count":{"$eq":2}}}}]}"#;
    let mut k = ks(1, None, T0);
    k.load_definitions(&json(all), T0).unwrap();
    k.track(T0 + 1.0, "Buy", Map::new().with("ok", true)).unwrap();
    k.load_definitions(&json(r#"{"version":1,"segments":[{"id":"a","condition":{"$performed":{"event":"A"}}}]}"#), T0 + 2.0).unwrap();
    k.track(T0 + 3.0, "Buy", Map::new().with("ok", true)).unwrap();
    k.load_definitions(&json(all), T0 + 4.0).unwrap();
    assert_eq!(k.segments(), &["two".to_string()]);
}

/// Events recorded before the definitions load (a definitions URL still in flight) reach the
/// stored state of those definitions once they load.
#[test]
fn events_before_the_first_load_reach_the_stored_state() {
    let defs = r#"{"version":1,"segments":[{"id":"two","condition":{"$performed":{"event":"Buy","where":{"ok":true},"count":{"$eq":2}}}}]}"#;
    let mut a = ks(1, None, T0);
    a.load_definitions(&json(defs), T0).unwrap();
    a.track(T0 + 1.0, "Buy", Map::new().with("ok", true)).unwrap();
    let sa = a.write(None, T0 + 2.0).unwrap();
    let mut a2 = ks(2, Some(&sa), T0 + 3.0);
    a2.track(T0 + 4.0, "Buy", Map::new().with("ok", true)).unwrap();
    a2.load_definitions(&json(defs), T0 + 5.0).unwrap();
    assert_eq!(a2.segments(), &["two".to_string()]);
}

fn defs_of(prefix: &str, n: usize) -> Value {
    let segs: Vec<String> = (0..n).map(|i| format!(r#"{{"id":"{prefix}{i}","condition":{{"$performed":{{"event":"{prefix}{i}"}}}}}}"#)).collect();
    json(&format!(r#"{{"version":1,"segments":[{}],"scores":[]}}"#, segs.join(",")))
}

/// The stored node states: `None` for a held one, the number of events it missed for a foreign
/// one (which the stored form follows with that number).
fn stored_nodes(k: &mut Keystone) -> Vec<Option<f64>> {
    nodes_of(&k.take_dirty().unwrap())
}

fn nodes_of(stored: &Value) -> Vec<Option<f64>> {
    let seg = stored.get("seg").and_then(Value::as_arr).unwrap();
    let nodes = seg[0].as_arr().unwrap();
    nodes.iter().map(|n| n.as_arr().unwrap()).map(|a| if a.len() == 8 || a.len() == 4 { a.last().and_then(Value::as_num) } else { None }).collect()
}

/// Definitions changing over deploys do not grow the stored state without bound: a stored state
/// read keeps at most `FOREIGN_MAX` foreign node states (the first: here those let go last), and
/// none that missed more than `FOREIGN_MISSED_MAX` events.
#[test]
fn foreign_states_are_bounded() {
    let mut k = ks(1, None, T0);
    k.load_definitions(&defs_of("e", 10), T0).unwrap();
    k.track(T0 + 1.0, "X", Map::new()).unwrap();
    k.load_definitions(&defs_of("f", FOREIGN_MAX + 2), T0 + 2.0).unwrap();
    k.track(T0 + 3.0, "X", Map::new()).unwrap();
    let s = stored_nodes(&mut k);
    assert_eq!(s.len(), FOREIGN_MAX + 12);
    assert!(s[..FOREIGN_MAX + 2].iter().all(Option::is_none), "held first");
    assert!(s[FOREIGN_MAX + 2..].iter().all(|x| *x == Some(1.0)), "the e states missed one event");
    k.load_definitions(&json(r#"{"version":1,"segments":[]}"#), T0 + 4.0).unwrap();
    let stored = k.take_dirty().unwrap();
    let s = nodes_of(&stored);
    assert_eq!(s.len(), FOREIGN_MAX + 12, "written as they are");
    assert!(s[..FOREIGN_MAX + 2].iter().all(|x| *x == Some(0.0)) && s[FOREIGN_MAX + 2..].iter().all(|x| *x == Some(1.0)), "the f states first");
    // Read back, the first FOREIGN_MAX are kept: f states only, let go last.
    let read = codec::decode(&stored).0.unwrap().behaviour;
    assert_eq!(read.nodes.len(), FOREIGN_MAX);
    assert!(read.nodes.iter().all(|x| x.w == read.n));
    let missed = behaviour::decode(Some(&json("[[[7,[-1],-1,10001],[8,[-1],-1,10000],[9,[-1],-1]],[]]")));
    assert_eq!(missed.nodes.iter().map(|x| x.key).collect::<Vec<_>>(), [8, 9]);
    assert_eq!(FOREIGN_MISSED_MAX, 10_000.0);
}

/// The stored form: a foreign state is followed by the number of events it missed; a state
/// stored by an earlier build (no foreign states) reads as before.
#[test]
fn foreign_states_round_trip_and_older_stored_states_read() {
    let mut k = ks(1, None, T0);
    k.load_definitions(&json(FUNNEL), T0).unwrap();
    k.load_definitions(&json(r#"{"version":1,"segments":[{"id":"x","condition":{"$performed":{"event":"B","where":{"ok":true}}}}]}"#), T0 + 1.0).unwrap();
    k.track(T0 + 2.0, "A", Map::new()).unwrap();
    k.track(T0 + 3.0, "A", Map::new()).unwrap();
    let profile = k.take_dirty().unwrap();
    assert_eq!(nodes_of(&profile), [None, Some(2.0)], "[x: 7 items, funnel: [key, partial, done, 2]]");
    // A stored state read back is foreign until definitions load (then adopted): written before
    // that, each is followed by what it missed, 0 here.
    let stored = behaviour::encode(&codec::decode(&profile).0.unwrap().behaviour);
    let nodes = stored.as_arr().unwrap()[0].as_arr().unwrap();
    assert_eq!(nodes.iter().map(|n| n.as_arr().unwrap().last().cloned().unwrap()).collect::<Vec<_>>(), [Value::Num(0.0), Value::Num(2.0)]);
    assert_eq!(behaviour::encode(&behaviour::decode(Some(&stored))), stored);
    // A state stored by an earlier build (its score states, read as foreign too, follow).
    let old = json("[[[7,[-1],-1],[8,0,false,[],[1,2,3],[],[]]],[9,1,2]]");
    let d = behaviour::decode(Some(&old));
    assert_eq!((d.nodes.len(), d.scores.len()), (3, 0));
    // Buckets are written packed (minute 1, 2 events: "30"; then the sums), and read back the same.
    let packed = json("[[[7,[-1],-1,0],[8,0,false,[],[\"30\",3],[],[],0],[9,1,2,0]],[]]");
    assert_eq!(behaviour::encode(&d), packed);
    assert_eq!(behaviour::decode(Some(&packed)), d);
}

/// Buckets are stored packed when they fit (minutes increasing, whole counts): the sums follow,
/// trailing zeros left out, decimals and negatives exact; buckets that do not fit stay triples;
/// a damaged packed string reads as no buckets, the rest of the node kept.
#[test]
fn buckets_stored_packed_round_trip() {
    let node = |b: &str| json(&format!("[[[8,0,false,[],{b},[],[],0]],[]]"));
    let buckets = |v: &Value| -> Vec<(f64, f64, f64)> {
        match &behaviour::decode(Some(v)).nodes[0].st {
            NodeState::Perf(p) => p.buckets.clone(),
            _ => panic!("not a $performed state"),
        }
    };
    let cases: [&[(f64, f64, f64)]; 4] = [
        &[(29_811_707.0, 2.0, 54.0), (29_812_974.0, 1.0, 0.0), (29_812_975.0, 3.0, 19.99), (29_900_000.0, 1.0, 0.0)],
        &[(29_811_707.0, 1.0, -0.1), (29_811_708.0, 40_000.0, 1e300)],
        &[(5.0, 1.0, 0.0), (6.0, 1.0, 0.0)],
        &[],
    ];
    for want in cases {
        let flat: Vec<String> = want.iter().map(|b| format!("{},{},{}", b.0, b.1, b.2)).collect();
        let stored = behaviour::encode(&behaviour::decode(Some(&node(&format!("[{}]", flat.join(","))))));
        let nodes = stored.as_arr().unwrap()[0].as_arr().unwrap();
        let b = &nodes[0].as_arr().unwrap()[4];
        assert!(matches!(b.as_arr().unwrap().first(), Some(Value::Str(_))), "packed: {b:?}");
        assert_eq!(buckets(&stored), want);
        assert_eq!(behaviour::encode(&behaviour::decode(Some(&stored))), stored);
    }
    // The sums: all of them, or none when all are 0.
    assert_eq!(behaviour::encode(&behaviour::decode(Some(&node("[1,1,0,3,2,7,4,1,0]")))), json("[[[8,0,false,[],[\"2502\",0,7,0],[],[],0]],[]]"));
    assert_eq!(behaviour::encode(&behaviour::decode(Some(&node("[1,1,0,3,2,0]")))), json("[[[8,0,false,[],[\"250\"],[],[],0]],[]]"));
    // Minutes not increasing (a state of an earlier build after a clock set back) or a count
    // that is not whole: written as triples, as read.
    for flat in ["[9,1,5,3,1,2]", "[1,0.5,2]", "[1,0,2]"] {
        let stored = behaviour::encode(&behaviour::decode(Some(&node(flat))));
        assert_eq!(stored, node(flat));
    }
    // Damaged packed strings and sums: no buckets or a sum of 0, the node kept.
    assert_eq!(buckets(&node("[\"3!\",4]")), []);
    assert_eq!(buckets(&node("[\"2\",\"x\"]")), [(1.0, 1.0, 0.0)]);
}

/// An identity merge: all node states come out foreign, up to date at the merge (the aligning
/// that follows adopts those loaded); a foreign state is not dropped.
#[test]
fn a_merge_keeps_foreign_states() {
    let mk = |seed: u64| {
        let mut k = ks(seed, None, T0);
        k.load_definitions(&json(FUNNEL), T0).unwrap();
        k.track(T0 + 1.0, "A", Map::new()).unwrap();
        k.track(T0 + 2.0, "B", Map::new()).unwrap();
        k.load_definitions(&defs_of("e", 2), T0 + 3.0).unwrap();
        k.track(T0 + 4.0, "X", Map::new()).unwrap();
        state(&mut k)
    };
    let mut a = mk(1);
    let b = mk(2);
    assert_eq!((a.nodes.len(), b.nodes.len()), (3, 3));
    behaviour::merge(&mut a, b);
    assert_eq!(a.nodes.len(), 3);
    assert!(a.nodes.iter().all(|x| x.w == a.n), "foreign, up to date at the merge");
    // Through a login: the funnel was completed by the known person, set aside at logout while
    // other definitions were loaded; the anonymous visitor logs in again (the two profiles
    // merge) and the funnel's definitions load again: it is still completed.
    let mut k = ks(3, None, T0);
    k.load_definitions(&json(FUNNEL), T0).unwrap();
    k.identify(T0 + 1.0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    k.track(T0 + 2.0, "A", Map::new()).unwrap();
    k.track(T0 + 3.0, "B", Map::new()).unwrap();
    k.load_definitions(&defs_of("e", 2), T0 + 4.0).unwrap();
    let mut t = T0 + 4.0;
    ticks(&mut k, &mut t, 210);
    k.reset(t + 1.0);
    k.track(t + 2.0, "X", Map::new()).unwrap();
    k.identify(t + 3.0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    k.load_definitions(&json(FUNNEL), t + 4.0).unwrap();
    assert_eq!(k.segments(), &["funnel".to_string()]);
}

const SCORED: &str = r#"{"version":1,"segments":[],"scores":[{"id":"eng","halfLife":"1h","rules":[{"event":"Buy","where":{"ok":true},"points":5},{"event":"View","points":1}]}]}"#;
const HOUR: f64 = 3_600_000.0;

/// `eng` of `SCORED` at `now` from `(time, points)` earned, as the document reads it.
fn eng_at(points: &[(f64, f64)], now: f64) -> f64 {
    let v: f64 = points.iter().map(|(t, p)| p * (-(now - t) / HOUR).exp2()).sum();
    (v * 100.0).round() / 100.0
}

fn eng(k: &Keystone, now: f64) -> Option<f64> {
    k.document_at(now).path("scores.eng").and_then(Value::as_num)
}

/// A score's state is kept for the tabs that hold it, as an operator's is: tab `a` earns points
/// (a `where` rule, which the minute counts cannot rebuild) that 210 later events push out of the
/// ring; tab `b`, whose definitions lack the score (`other`), records a scoring event and writes;
/// `a` adopts that: the points it kept, and `b`'s event applied once, each decayed from its time.
fn score_survives(other: &str) {
    let mut t = T0;
    let mut a = ks(1, None, t);
    a.load_definitions(&json(SCORED), t).unwrap();
    let mut earned = Vec::new();
    for _ in 0..4 {
        t += 600_000.0;
        a.track(t, "Buy", Map::new().with("ok", true)).unwrap();
        a.track(t + 1.0, "Buy", Map::new().with("ok", false)).unwrap();
        earned.push((t, 5.0));
    }
    ticks(&mut a, &mut t, 210);
    assert_eq!(eng(&a, t), Some(eng_at(&earned, t)));
    let sa = a.write(None, t).unwrap();
    let mut b = ks(2, Some(&sa), t);
    b.load_definitions(&json(other), t).unwrap();
    t += 1000.0;
    b.track(t, "Buy", Map::new().with("ok", true)).unwrap();
    b.track(t + 1.0, "View", Map::new()).unwrap();
    earned.extend([(t, 5.0), (t + 1.0, 1.0)]);
    assert_eq!(eng(&b, t + 1.0), None, "{other}: the document shows the scores loaded");
    let sb = b.write(None, t + 2.0).unwrap();
    assert!(a.rebase(&sb, t + 3.0));
    assert_eq!(eng(&a, t + 3.0), Some(eng_at(&earned, t + 3.0)), "after {other}");
    // Round trips through storage apply nothing twice (`b`'s Tick scores nothing).
    let sb = round_trip(&mut a, &mut b, t + 4.0, "Tick");
    assert_eq!(eng(&a, t + 9.0), Some(eng_at(&earned, t + 9.0)));
    // Another page of the site loading the score later (a reload of `a`'s page) adopts it too.
    let mut c = ks(3, Some(&sb), t + 11.0);
    c.load_definitions(&json(SCORED), t + 11.0).unwrap();
    assert_eq!(eng(&c, t + 11.0), Some(eng_at(&earned, t + 11.0)));
}

#[test]
fn a_tab_without_behaviour_does_not_take_a_score_from_another() {
    score_survives(r#"{"version":1,"segments":[{"id":"pro","condition":{"traits.plan":"pro"}}]}"#);
}

#[test]
fn a_tab_with_other_scores_does_not_take_a_score_from_another() {
    score_survives(r#"{"version":1,"segments":[{"id":"v","condition":{"$performed":{"event":"View"}}}],"scores":[{"id":"other","rules":[{"event":"View","points":2}]}]}"#);
}

/// The stored form: a foreign score state is `[key, value, time, missed]` among the foreign
/// operator states (an older build skips it: no operator state has that shape), held ones stay
/// `[key, value, time]` triples; the bounds of foreign states count them too.
#[test]
fn foreign_score_states_round_trip_and_are_bounded() {
    let mut k = ks(1, None, T0);
    k.load_definitions(&json(SCORED), T0).unwrap();
    k.track(T0 + 1.0, "View", Map::new()).unwrap();
    k.load_definitions(&json(FUNNEL), T0 + 2.0).unwrap();
    k.track(T0 + 3.0, "View", Map::new()).unwrap();
    k.track(T0 + 4.0, "A", Map::new()).unwrap();
    let stored = k.take_dirty().unwrap();
    assert_eq!(nodes_of(&stored), [None, Some(2.0)], "the funnel held, then the score: [key, 1, T0 + 1, 2]");
    let seg = stored.get("seg").and_then(Value::as_arr).unwrap();
    let score = &seg[0].as_arr().unwrap()[1];
    assert_eq!(score.as_arr().unwrap()[1..], [Value::Num(1.0), Value::Num(T0 + 1.0), Value::Num(2.0)]);
    assert_eq!(seg[1], json("[]"));
    // Read back: foreign, kept (a held triple too, until definitions load: written before
    // that, it is followed by what it missed, 0); bounded as operator states are.
    let d = behaviour::decode(Some(&json("[[[7,1,2,10001],[8,3,4,5],[9,[-1],-1,1]],[10,1,2]]")));
    assert_eq!(behaviour::encode(&d), json("[[[8,3,4,5],[9,[-1],-1,1],[10,1,2,0]],[]]"));
    let many: Vec<String> = (0..FOREIGN_MAX + 3).map(|i| format!("[{i},1,2,0]")).collect();
    let d = behaviour::encode(&behaviour::decode(Some(&json(&format!("[[{}],[]]", many.join(","))))));
    assert_eq!(d.as_arr().unwrap()[0].as_arr().unwrap().len(), FOREIGN_MAX);
}

/// A login's merge: the score states of both profiles are kept though the definitions then
/// loaded lack the score (its half-life unknown, they are not added yet); the definitions that
/// hold it add them after decay to a common time.
#[test]
fn a_merge_keeps_score_states_and_adds_them_once_loaded() {
    let other = r#"{"version":1,"segments":[{"id":"pro","condition":{"traits.plan":"pro"}}]}"#;
    let mut t = T0;
    let mut k = ks(1, None, t);
    k.load_definitions(&json(SCORED), t).unwrap();
    k.identify(t + 1.0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    k.track(t + 2.0, "Buy", Map::new().with("ok", true)).unwrap();
    let mut earned = vec![(t + 2.0, 5.0)];
    ticks(&mut k, &mut t, 210);
    k.load_definitions(&json(other), t + 1.0).unwrap();
    t += 2.0 * HOUR;
    k.reset(t);
    k.load_definitions(&json(SCORED), t + 1.0).unwrap();
    k.track(t + 2.0, "Buy", Map::new().with("ok", true)).unwrap();
    earned.push((t + 2.0, 5.0));
    ticks(&mut k, &mut t, 210);
    k.load_definitions(&json(other), t + 1.0).unwrap();
    k.identify(t + 2.0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    t += HOUR;
    k.load_definitions(&json(SCORED), t).unwrap();
    assert_eq!(eng(&k, t), Some(eng_at(&earned, t)));
}

/// `forget()` erases the score states kept for other definitions with the rest.
#[test]
fn forget_erases_foreign_score_states() {
    let mut k = ks(1, None, T0);
    k.load_definitions(&json(SCORED), T0).unwrap();
    k.track(T0 + 1.0, "View", Map::new()).unwrap();
    k.load_definitions(&json(FUNNEL), T0 + 2.0).unwrap();
    assert_eq!(scores_kept(&state(&mut k)), [1.0]);
    k.forget(T0 + 3.0);
    assert!(k.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 4.0).is_ok());
    k.load_definitions(&json(SCORED), T0 + 5.0).unwrap();
    assert_eq!(eng(&k, T0 + 5.0), Some(0.0));
}

/// Two scores alike but for their id share a fingerprint, and each keeps its own state through a
/// write and a read: the adoption does not add the second one's (loaded later, back-filled from
/// the ring: 5) to the first's. (The document reads the first's for both.)
#[test]
fn scores_alike_keep_their_own_states() {
    let rules = r#""rules":[{"event":"Buy","where":{"ok":true},"points":5}]"#;
    let one = format!(r#"{{"version":1,"segments":[],"scores":[{{"id":"a",{rules}}}]}}"#);
    let two = format!(r#"{{"version":1,"segments":[],"scores":[{{"id":"a",{rules}}},{{"id":"b",{rules}}}]}}"#);
    let mut t = T0;
    let mut k = ks(1, None, t);
    k.load_definitions(&json(&one), t).unwrap();
    k.track(t, "Buy", Map::new().with("ok", true)).unwrap();
    ticks(&mut k, &mut t, 210);
    k.track(t, "Buy", Map::new().with("ok", true)).unwrap();
    k.load_definitions(&json(&two), t).unwrap();
    let read = |k: &Keystone| ["a", "b"].map(|id| k.document_at(t).path(&format!("scores.{id}")).and_then(Value::as_num));
    assert_eq!(read(&k), [Some(10.0), Some(10.0)]);
    let stored = k.write(None, t).unwrap();
    assert_eq!(scores_kept(&codec::decode(&stored).0.unwrap().behaviour), [10.0, 5.0], "read as foreign");
    let mut k2 = ks(2, Some(&stored), t);
    k2.load_definitions(&json(&two), t).unwrap();
    assert_eq!(read(&k2), [Some(10.0), Some(10.0)]);
}

/// The values of the foreign score states.
fn scores_kept(s: &behaviour::State) -> Vec<f64> {
    s.nodes.iter().filter_map(|n| if let NodeState::Score(v, _) = n.st { Some(v) } else { None }).collect()
}

/// Events recorded before the definitions load (a definitions URL still in flight) reach the
/// stored state of a score too, once.
#[test]
fn events_before_the_first_load_reach_the_stored_score() {
    let mut a = ks(1, None, T0);
    a.load_definitions(&json(SCORED), T0).unwrap();
    a.track(T0 + 1.0, "Buy", Map::new().with("ok", true)).unwrap();
    let sa = a.write(None, T0 + 2.0).unwrap();
    let mut a2 = ks(2, Some(&sa), T0 + 3.0);
    a2.track(T0 + 4.0, "Buy", Map::new().with("ok", true)).unwrap();
    a2.load_definitions(&json(SCORED), T0 + 5.0).unwrap();
    assert_eq!(eng(&a2, T0 + 5.0), Some(eng_at(&[(T0 + 1.0, 5.0), (T0 + 4.0, 5.0)], T0 + 5.0)));
    let sa2 = a2.write(None, T0 + 6.0).unwrap();
    let mut a3 = ks(3, Some(&sa2), T0 + 7.0);
    a3.load_definitions(&json(SCORED), T0 + 7.0).unwrap();
    assert_eq!(eng(&a3, T0 + 7.0), Some(eng_at(&[(T0 + 1.0, 5.0), (T0 + 4.0, 5.0)], T0 + 7.0)));
}

/// A score let go, then an event made after a clock set back that is already older than the
/// retention (so the ring drops it), then the score loaded again: the score adopts its state
/// and applies only the events it missed — not the one before it was let go, in the ring's
/// place of the dropped one.
#[test]
fn a_score_loaded_again_does_not_count_twice_an_event_made_before_it_was_let_go() {
    const DAY: f64 = 86_400_000.0;
    let scored = r#"{"version":1,"segments":[],"scores":[{"id":"s","rules":[{"event":"Search","points":1}]}]}"#;
    let none = r#"{"version":1,"segments":[{"id":"v","condition":{"$performed":{"event":"View"}}}]}"#;
    let mut o = Options::default();
    o.retention = 7.0 * DAY;
    let t = T0 + 30.0 * DAY;
    let mut k = Keystone::new(o, NativeHost::boxed(9), None, t);
    k.load_definitions(&json(scored), t).unwrap();
    k.track(t + 1.0, "Search", Map::new()).unwrap();
    k.load_definitions(&json(none), t + 2.0).unwrap();
    // The clock set back 10 days: the event is older than the retention at once.
    k.track(t - 10.0 * DAY, "Other", Map::new()).unwrap();
    k.refresh(t + 3.0);
    k.load_definitions(&json(scored), t + 4.0).unwrap();
    assert_eq!(k.document_at(t + 5.0).path("scores.s").and_then(Value::as_num), Some(1.0));
}
