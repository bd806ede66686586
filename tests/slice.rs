#![cfg(not(target_arch = "wasm32"))]
//! The vertical slice natively: events → profile counts → a $performed segment; the stored
//! profile restores the same anonymous id and counts.
mod common;

use common::{json, NativeHost};
use keystone::core::keystone::{Keystone, Options};
use keystone::core::value::Map;

const T0: f64 = 1_764_403_200_000.0;

#[test]
fn track_counts_and_segment_membership_survive_a_restore() {
    let defs = json(r#"{"version":1,"segments":[{"id":"viewers","condition":{"$performed":{"event":"Product Viewed","count":{"$gte":1}}}}]}"#);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let report = ks.load_definitions(&defs, T0).unwrap();
    assert_eq!(report.loaded, vec!["viewers".to_string()]);
    assert!(ks.segments().is_empty());
    ks.page(T0, Map::new());
    ks.track(T0 + 1000.0, "Product Viewed", Map::new().with("category", "shoes")).unwrap();
    assert!(ks.in_segment("viewers"));
    let id = ks.anonymous_id().to_string();
    assert_eq!(id.len(), 36);

    let stored = ks.take_dirty().expect("profile changed");
    let mut again = Keystone::new(Options::default(), NativeHost::boxed(2), Some(&stored), T0 + 5000.0);
    again.load_definitions(&defs, T0 + 5000.0).unwrap();
    assert_eq!(again.anonymous_id(), id);
    assert_eq!(again.segments(), &["viewers".to_string()]);
    let doc = again.profile_document();
    assert_eq!(doc.path("events.Product Viewed.count").and_then(|v| v.as_num()), Some(1.0));
}
