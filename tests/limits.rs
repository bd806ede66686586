#![cfg(not(target_arch = "wasm32"))]
//! Bounds on what one call may put into the profile: a runaway event name or payload is
//! rejected with `invalid_argument` and leaves the profile as it was.
mod common;

use common::NativeHost;
use keystone::core::keystone::{check_properties, Keystone, Options, MAX_EVENT_NAME_BYTES, MAX_PROPERTIES_BYTES, MAX_TRAITS_BYTES};
use keystone::core::value::Map;

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
