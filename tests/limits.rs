#![cfg(not(target_arch = "wasm32"))]
//! Bounds on what one call may put into the profile: a runaway event name or payload is
//! rejected with `invalid_argument` and leaves the profile as it was.
mod common;

use common::NativeHost;
use keystone::core::keystone::{Keystone, Options, MAX_EVENT_NAME_BYTES, MAX_PROPERTIES_BYTES};
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
fn an_unknown_experience_error_does_not_echo_a_huge_id() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let e = ks.decide(&"z".repeat(100_000), T0).unwrap_err();
    assert_eq!(e.code, "unknown_id");
    assert!(e.message.len() < 200, "{}", e.message.len());
}
