#![cfg(not(target_arch = "wasm32"))]
//! Bounds on what one call may put into the profile: a runaway event name or payload is
//! rejected with `invalid_argument` and leaves the profile as it was; the number of event
//! names the aggregates keep is bounded too.
mod common;

use common::{json, to_json, NativeHost};
use keystone::core::keystone::{check_properties, Keystone, Options, MAX_EVENT_NAME_BYTES, MAX_PROPERTIES_BYTES, MAX_TRAITS_BYTES};
use keystone::core::profile::{MAX_EVENT_BYTES, MAX_EVENT_NAMES};
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;

#[test]
fn oversized_event_names_and_properties_are_rejected_and_nothing_is_recorded() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let _ = ks.take_dirty();
    let before = ks.profile_document();
    let long = "x".repeat(MAX_EVENT_NAME_BYTES + 1);
    assert_eq!(ks.track(T0, &long, Map::new()).unwrap_err().code, "invalid_argument");
    let big = Map::new().with("blob", "y".repeat(MAX_PROPERTIES_BYTES + 1).as_str());
    assert_eq!(ks.track(T0, "Product Viewed", big).unwrap_err().code, "invalid_argument");
    assert_eq!(ks.profile_document(), before);
    assert!(ks.take_dirty().is_none(), "nothing to persist");
    assert!(ks.take_outbox().is_empty(), "nothing queued");
    // At the limits, accepted.
    ks.track(T0, &"x".repeat(MAX_EVENT_NAME_BYTES), Map::new().with("blob", "y".repeat(1000).as_str())).unwrap();
}

#[test]
fn page_properties_and_traits_are_bounded_too() {
    let big = Map::new().with("blob", "y".repeat(MAX_PROPERTIES_BYTES + 1).as_str());
    assert_eq!(check_properties(&big).unwrap_err().code, "invalid_argument");
    assert!(check_properties(&Map::new().with("blob", "y".repeat(1000).as_str())).is_ok());
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    // All traits together: each 10 KB trait is fine alone, the fourth one is not.
    let ten = "z".repeat(10 * 1024);
    for k in ["a", "b", "c"] {
        let t = Map::new().with(k, ten.as_str());
        ks.check_traits(&t).unwrap();
        ks.set_traits(T0, t);
    }
    assert_eq!(ks.check_traits(&Map::new().with("d", ten.as_str())).unwrap_err().code, "invalid_argument");
    // Replacing a trait counts its new size, not both.
    ks.check_traits(&Map::new().with("a", "short")).unwrap();
    ks.check_traits(&Map::new().with("a", ten.as_str())).unwrap();
    assert_eq!(ks.check_traits(&Map::new().with("x", "w".repeat(MAX_TRAITS_BYTES).as_str())).unwrap_err().code, "invalid_argument");
}

#[test]
fn an_unknown_experience_error_does_not_echo_a_huge_id() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let e = ks.decide(&"z".repeat(100_000), T0).unwrap_err();
    assert_eq!(e.code, "unknown_id");
    assert!(e.message.len() < 200, "{}", e.message.len());
}

#[test]
fn traits_over_the_bound_after_a_merge_can_still_shrink_or_stay() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(2), None, T0);
    let twenty = "q".repeat(20 * 1024);
    ks.set_traits(T0, Map::new().with("a", twenty.as_str()).with("b", twenty.as_str())); // set directly: 40 KB
    assert_eq!(ks.check_traits(&Map::new().with("c", "more")).unwrap_err().code, "invalid_argument", "growing is refused");
    ks.check_traits(&Map::new().with("a", "short")).unwrap(); // shrinking is fine
    ks.check_traits(&Map::new().with("b", twenty.as_str())).unwrap(); // the same size is fine
}

fn names(ks: &Keystone) -> Vec<String> {
    ks.profile_document().get("events").and_then(Value::as_obj).unwrap().keys().cloned().collect()
}

#[test]
fn distinct_event_names_are_bounded_least_recently_seen_first_keeping_those_definitions_read() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    let defs = r#"{"version": 1, "segments": [
        {"id": "viewers", "condition": {"$performed": {"event": "Viewed", "count": {"$gte": 1}}}},
        {"id": "funnel", "condition": {"$sequence": {"steps": [{"event": "Step A"}, {"event": "Step B"}]}}}],
        "scores": [{"id": "s", "rules": [{"event": "Scored", "points": 1}]}]}"#;
    ks.load_definitions(&json(defs), T0).unwrap();
    for (i, n) in ["Viewed", "Step A", "Step B", "Scored", "Plain"].iter().enumerate() {
        ks.track(T0 + i as f64, n, Map::new()).unwrap();
    }
    for i in 0..2_000 {
        ks.track(T0 + 1_000.0 + i as f64 * 1_000.0, &format!("N{i}"), Map::new()).unwrap();
    }
    let kept = names(&ks);
    assert!(kept.len() <= MAX_EVENT_NAMES, "{}", kept.len());
    for n in ["Viewed", "Step A", "Step B", "Scored", "N1999"] {
        assert!(kept.iter().any(|k| k == n), "{n} kept");
    }
    assert!(!kept.iter().any(|k| k == "Plain" || k == "N0"), "the least recently seen went first");
    assert!(ks.in_segment("viewers") && ks.in_segment("funnel"));
    let text = to_json(&ks.write(None, T0 + 3_000_000.0).unwrap()).to_string();
    assert!(text.len() < 64 * 1024, "{}", text.len());
    // A name seen again comes back with its new count only.
    ks.track(T0 + 3_000_000.0, "N0", Map::new()).unwrap();
    assert_eq!(ks.profile_document().path("events.N0.count").and_then(Value::as_num), Some(1.0));
}

#[test]
fn long_event_names_are_bounded_in_bytes() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(4), None, T0);
    for i in 0..300 {
        ks.track(T0 + i as f64 * 60_000.0, &format!("{i:03}{}", "x".repeat(MAX_EVENT_NAME_BYTES - 3)), Map::new()).unwrap();
    }
    let kept = names(&ks);
    let bytes: usize = kept.iter().map(|n| n.len()).sum();
    assert!(bytes <= MAX_EVENT_BYTES && kept.len() > 50, "{} names, {bytes} B", kept.len());
    assert!(kept.iter().any(|k| k.starts_with("299")));
}

#[test]
fn a_login_checks_its_traits_against_the_profile_they_go_into() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(6), None, T0);
    ks.identify(T0, "ada@example.com", Map::new().with("big", "b".repeat(MAX_TRAITS_BYTES - 100).as_str()), &Value::Null).unwrap();
    let more = Map::new().with("tier", "x".repeat(200).as_str());
    // The same person: her profile would pass the bound.
    assert_eq!(ks.identify(T0 + 1.0, "ada@example.com", more.clone(), &Value::Null).unwrap_err().code, "invalid_argument");
    // Another person: a profile of his own, where they fit.
    ks.identify(T0 + 2.0, "bob@example.com", more, &Value::Null).unwrap();
    let traits = ks.profile_document().get("traits").and_then(Value::as_obj).unwrap().clone();
    assert_eq!(traits.keys().collect::<Vec<_>>(), ["tier"]);
}

#[test]
fn an_identity_merge_keeps_the_event_names_and_traits_within_their_bounds() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(5), None, T0);
    ks.identify(T0, "ada@example.com", Map::new(), &Value::Null).unwrap();
    for i in 0..200 {
        ks.track(T0 + 1.0 + i as f64, &format!("K{i}"), Map::new()).unwrap();
    }
    let twenty = "q".repeat(20 * 1024);
    ks.set_traits(T0 + 500.0, Map::new().with("a", twenty.as_str()).with("tier", "gold"));
    ks.reset(T0 + 1_000.0);
    ks.set_traits(T0 + 1_500.0, Map::new().with("b", (twenty.clone() + "q").as_str()));
    for i in 0..200 {
        ks.track(T0 + 2_000.0 + i as f64, &format!("A{i}"), Map::new()).unwrap();
    }
    assert_eq!(names(&ks).len(), 200);
    ks.identify(T0 + 3_000.0, "ada@example.com", Map::new().with("plan", "gold"), &Value::Null).unwrap();
    let kept = names(&ks);
    assert_eq!(kept.len(), MAX_EVENT_NAMES);
    assert!(kept.iter().any(|k| k == "A199") && !kept.iter().any(|k| k == "K0"));
    // Traits: 40 KB of them together; the most recently set are kept (the login's own, the
    // anonymous visitor's), the known profile's older one that no longer fits goes. The stored
    // profile reads back whole, with nothing reported, and takes new traits within the bound.
    let traits = ks.profile_document().get("traits").and_then(Value::as_obj).unwrap().clone();
    assert!(traits.approx_size() <= MAX_TRAITS_BYTES);
    let mut keys: Vec<_> = traits.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["b", "plan", "tier"]);
    assert!(ks.check_traits(&Map::new().with("city", "Paris")).is_ok());
    let stored = ks.take_dirty().unwrap();
    let (back, errors) = keystone::core::codec::decode(&stored);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(back.unwrap().traits, traits);
}

/// The 32 KB bounds are on the JSON's bytes (1 KB = 1,024 bytes): properties or traits of exactly
/// 32,768 bytes are accepted, one more is refused; an integer counts its digits (2,600 small
/// numbers, 5 KB of JSON, were refused as 34 KB).
#[test]
fn the_32_kb_bounds_are_the_jsons_bytes() {
    // As JavaScript prints it: an integer without serde's ".0".
    let text = |m: &Map| serde_json::to_string(&to_json(&Value::Obj(m.clone()))).unwrap().replace(".0,", ",").replace(".0]", "]").replace(".0}", "}").len();
    // {"blob":"…"}: 11 bytes around the string.
    let exact = Map::new().with("blob", "y".repeat(MAX_PROPERTIES_BYTES - 11).as_str());
    assert_eq!(text(&exact), MAX_PROPERTIES_BYTES);
    assert!(check_properties(&exact).is_ok());
    let over = Map::new().with("blob", "y".repeat(MAX_PROPERTIES_BYTES - 10).as_str());
    assert_eq!(check_properties(&over).unwrap_err().code, "invalid_argument");
    for n in [1.0, 7.0, 12.0, 345.0, -9.0, 1e14, 123456789012345.0] {
        let m = Map::new().with("n", n);
        assert_eq!(m.approx_size(), text(&m), "{n}");
    }
    let prices = Map::new().with("prices", Value::Arr(vec![Value::Num(1.0); 2600])).with("ids", Value::Arr((0..500).map(|i| Value::Num(i as f64)).collect()));
    assert_eq!(prices.approx_size(), text(&prices));
    assert!(check_properties(&prices).is_ok());
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    ks.track(T0, "Order Completed", prices).unwrap();
    // Traits: exactly 32 KB in all, in one call and as a merge, accepted; a byte more refused.
    let exact = Map::new().with("a", "t".repeat(MAX_TRAITS_BYTES - 8).as_str());
    assert_eq!(text(&exact), MAX_TRAITS_BYTES);
    ks.check_traits(&exact).unwrap();
    ks.set_traits(T0, Map::new().with("a", "t".repeat(1000).as_str()));
    // {"a":"…1000…","b":"…"}: 15 bytes around the two strings.
    let b = |n: usize| Map::new().with("b", "u".repeat(n).as_str());
    ks.check_traits(&b(MAX_TRAITS_BYTES - 1015)).unwrap();
    assert_eq!(ks.check_traits(&b(MAX_TRAITS_BYTES - 1014)).unwrap_err().code, "invalid_argument");
}
