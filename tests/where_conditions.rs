#![cfg(all(not(target_arch = "wasm32"), feature = "segments"))]
//! The condition evaluator as segment definitions reach it: a number or a boolean in a
//! condition's place (the empty condition, true, in `evalCondition`, as in GrowthBook) is rejected
//! at the top of a segment's condition, but read as `evalCondition` reads it inside a `where` or an
//! `$elemMatch` (see the README, "Plain conditions").
mod common;

use common::{json, NativeHost};
use keystone::core::keystone::{Keystone, Options};
use keystone::core::value::Map;

const T0: f64 = 1_764_403_200_000.0;

fn load(defs: &str) -> (Keystone, Vec<String>, Vec<(String, Option<String>)>) {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let r = ks.load_definitions(&json(defs), T0).unwrap();
    let rejected = r.rejected.iter().map(|e| (e.code.to_string(), e.path.clone())).collect();
    (ks, r.loaded, rejected)
}

/// `{"$not": 1}` at the top is a load error, the same
/// inside `$performed.where` loads and, since numbers became the empty condition, counts no
/// event (before, every one).
#[test]
fn a_malformed_not_in_a_where_loads_and_matches_no_event() {
    let (mut ks, loaded, rejected) = load(
        r#"{"version":1,"segments":[
        {"id":"top","condition":{"$not":1}},
        {"id":"in_where","condition":{"$performed":{"event":"A","where":{"$not":1}}}},
        {"id":"or_where","condition":{"$performed":{"event":"A","where":{"$or":[true]}}}}]}"#,
    );
    assert_eq!(rejected, vec![("invalid_segment".to_string(), Some("/segments/0/condition/$not".to_string()))]);
    assert_eq!(loaded, vec!["in_where".to_string(), "or_where".to_string()]);
    ks.track(T0, "A", Map::new()).unwrap();
    assert_eq!(ks.segments(), &["or_where".to_string()]);
    for (id, held) in [("in_where", false), ("or_where", true)] {
        let x = ks.explain(id, T0).unwrap();
        assert_eq!(x.get("result"), Some(&keystone::core::value::Value::Bool(held)), "{id}: {x:?}");
    }
}

/// A field test `{"$elemMatch": 1}` (no condition) loads and holds for any array with an
/// element that is not null: a segment of everyone with a non-empty `traits.tags`.
#[test]
fn elem_match_of_a_number_in_a_segment_holds_for_any_non_empty_array() {
    let (mut ks, loaded, rejected) = load(r#"{"version":1,"segments":[{"id":"em","condition":{"traits.tags":{"$elemMatch":1}}}]}"#);
    assert!(rejected.is_empty());
    assert_eq!(loaded, vec!["em".to_string()]);
    let mut t = Map::new();
    t.insert("tags", json(r#"["anything"]"#));
    ks.set_traits(T0, t);
    assert_eq!(ks.segments(), &["em".to_string()]);
    // explain() answers as the membership does.
    let x = ks.explain("em", T0).unwrap();
    assert_eq!(x.get("result"), Some(&keystone::core::value::Value::Bool(true)), "{x:?}");
}

/// A `where` naming a saved group (`$inGroup`/`$notInGroup`), in a `$performed`, an aggregate, a
/// `$sequence` step or a score rule, follows a change of that group at the next `loadSegments`,
/// as a fresh profile would: the state counted under the old group restarts from the recent
/// events.
#[test]
fn a_where_on_a_saved_group_follows_the_group() {
    let defs = |promo: &str| {
        format!(
            r#"{{"version":1,"savedGroups":{{"promo":{promo},"vip":["v"]}},
            "scores":[{{"id":"sc","rules":[{{"event":"Order","where":{{"sku":{{"$inGroup":"promo"}}}},"points":5}}]}}],
            "segments":[
            {{"id":"buyer","condition":{{"$performed":{{"event":"Order","where":{{"sku":{{"$inGroup":"promo"}}}}}}}}}},
            {{"id":"not_buyer","condition":{{"$performed":{{"event":"Order","where":{{"$not":{{"sku":{{"$notInGroup":"promo"}}}}}}}}}}}},
            {{"id":"spent","condition":{{"$performed":{{"event":"Order","where":{{"sku":{{"$inGroup":"promo"}}}},"sum":"price","value":{{"$gte":10}}}}}}}},
            {{"id":"funnel","condition":{{"$sequence":{{"steps":[{{"event":"View"}},{{"event":"Order","where":{{"sku":{{"$inGroup":"promo"}}}}}}]}}}}}},
            {{"id":"scored","condition":{{"scores.sc":{{"$gte":5}}}}}},
            {{"id":"vip","condition":{{"$performed":{{"event":"Order","where":{{"sku":{{"$inGroup":"vip"}}}}}}}}}}]}}"#
        )
    };
    let all = ["buyer", "funnel", "not_buyer", "scored", "spent"];
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    ks.load_definitions(&json(&defs(r#"["s1"]"#)), T0).unwrap();
    ks.track(T0 + 1.0, "View", Map::new()).unwrap();
    let mut p = Map::new();
    p.insert("sku", keystone::core::value::Value::Str("s2".into()));
    p.insert("price", keystone::core::value::Value::Num(12.0));
    ks.track(T0 + 2.0, "Order", p).unwrap();
    assert!(ks.segments().is_empty(), "{:?}", ks.segments());
    // The group grows to take s2: every node naming it counts the Order, as a fresh profile does.
    ks.load_definitions(&json(&defs(r#"["s1","s2"]"#)), T0 + 3.0).unwrap();
    assert_eq!(ks.segments(), &all.map(String::from));
    let mut fresh = Keystone::new(Options::default(), NativeHost::boxed(2), None, T0);
    fresh.track(T0 + 1.0, "View", Map::new()).unwrap();
    let mut p = Map::new();
    p.insert("sku", keystone::core::value::Value::Str("s2".into()));
    p.insert("price", keystone::core::value::Value::Num(12.0));
    fresh.track(T0 + 2.0, "Order", p).unwrap();
    fresh.load_definitions(&json(&defs(r#"["s1","s2"]"#)), T0 + 3.0).unwrap();
    assert_eq!(fresh.segments(), ks.segments());
    // It shrinks again: out of all of them.
    ks.load_definitions(&json(&defs(r#"["s1"]"#)), T0 + 4.0).unwrap();
    assert!(ks.segments().is_empty(), "{:?}", ks.segments());
    for id in all {
        let x = ks.explain(id, T0 + 4.0).unwrap();
        assert_eq!(x.get("result"), Some(&keystone::core::value::Value::Bool(false)), "{id}: {x:?}");
    }
}
