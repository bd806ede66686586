#![cfg(not(target_arch = "wasm32"))]
//! Experiences (DESIGN §13) natively: validation, priority, frequency caps at their window
//! boundary, fallback, the holdout draw (distribution over 10,000 identities, stability), the
//! page-view stickiness of decisions, and `Segment Entered` / `Segment Exited` reporting.
mod common;

use common::{json, to_json, NativeHost};
use keystone::core::consent::Consent;
use keystone::core::experience::draw;
use keystone::core::keystone::{Keystone, Notice, Options};
use keystone::core::time::{DAY, MINUTE};
use keystone::core::value::{Map, Value};
use serde_json::json as j;

const T0: f64 = 1_764_403_200_000.0;

fn defs(holdout: f64) -> Value {
    let mut v = json(
        r#"{"version":1,
        "segments":[
          {"id":"gold","condition":{"traits.tier":"gold"}},
          {"id":"shoe_fans","condition":{"$performed":{"event":"Product Viewed","within":"7d","count":{"$gte":2}}}},
          {"id":"buyers","condition":{"$performed":{"event":"Order Completed"}}}
        ],
        "experiences":[{"id":"hero","holdout":0,"variants":[
          {"id":"gold_offer","segment":"gold","priority":10,"cap":{"count":3,"within":"7d"}},
          {"id":"shoes","segment":"shoe_fans","priority":5},
          {"id":"default"}]}]}"#,
    );
    if let Value::Obj(m) = &mut v {
        if let Some(Value::Arr(xs)) = m.get_mut("experiences") {
            if let Some(Value::Obj(x)) = xs.get_mut(0) {
                x.insert("holdout", Value::Num(holdout));
            }
        }
    }
    v
}

fn engine(seed: u64, stored: Option<&Value>, opts: Options) -> Keystone {
    let mut ks = Keystone::new(opts, NativeHost::boxed(seed), stored, T0);
    ks.load_definitions(&defs(0.0), T0).unwrap();
    ks
}

/// The `Segment Entered` / `Segment Exited` events the engine queued since the last call, as
/// "Segment Entered <segment>" (the other events taken out too).
fn segment_reports(ks: &mut Keystone) -> Vec<String> {
    ks.take_outbox()
        .iter()
        .map(|e| to_json(&e.to_spec()))
        .filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("Segment ")))
        .map(|e| format!("{} {}", e["event"].as_str().unwrap(), e["properties"]["segment"].as_str().unwrap()))
        .collect()
}

/// A stored profile with the given traits (the engine has no setTraits of its own here).
fn stored_with(ks: &mut Keystone, traits: serde_json::Value) -> Value {
    let mut v = ks.take_dirty().unwrap_or_else(|| panic!("profile should be dirty"));
    if let Value::Obj(m) = &mut v {
        m.insert("traits", common::from_json(&traits));
    }
    v
}

/// An engine over a stored profile whose traits hold `tier: "gold"` (the gold offer's segment).
fn gold_visitor() -> Keystone {
    let mut ks = engine(1, None, Options::default());
    let stored = stored_with(&mut ks, j!({"tier": "gold"}));
    engine(1, Some(&stored), Options::default())
}

fn viewed(ks: &mut Keystone) -> Vec<serde_json::Value> {
    ks.take_outbox()
        .iter()
        .map(|e| to_json(&e.to_spec()))
        .filter(|e| e["event"] == "Experience Viewed")
        .map(|e| e["properties"].clone())
        .collect()
}

fn variant(ks: &mut Keystone, now: f64) -> String {
    ks.decide("hero", now).unwrap().variant
}

#[test]
fn invalid_experiences_are_rejected_one_by_one_and_the_valid_ones_load() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let doc = json(
        r#"{"version":1,"segments":[{"id":"gold","condition":{"traits.tier":"gold"}}],
        "experiences":[
          {"id":"ok","variants":[{"id":"a","segment":"gold"},{"id":"b"}]},
          {"id":"no_variants","variants":[]},
          {"id":"bad_holdout","holdout":1.5,"variants":[{"id":"a"}]},
          {"id":"bad_cap","variants":[{"id":"a","cap":{"count":3,"within":"7 days"}},{"id":"b"}]},
          {"id":"bad_count","variants":[{"id":"a"},{"id":"b","cap":{"count":0,"within":"1d"}}]},
          {"id":"long_cap","variants":[{"id":"a","cap":{"count":1,"within":"200d"}}]},
          {"id":"bad_segment","variants":[{"id":"a","segment":"nope"},{"id":"b"}]},
          {"id":"bad_priority","variants":[{"id":"a","priority":"high"}]},
          {"id":"dup_variant","variants":[{"id":"a"},{"id":"a"}]},
          {"variants":[{"id":"a"}]},
          {"id":"ok","variants":[{"id":"a"}]},
          "nope",
          {"id":"ok2","holdout":0.5,"variants":[{"id":"x","priority":2,"cap":{"count":1}}]},
          {"id":"gold","variants":[{"id":"a"}]}
        ]}"#,
    );
    let report = ks.load_definitions(&doc, T0).unwrap();
    assert_eq!(report.loaded, vec!["gold", "ok", "ok2"]);
    let got: Vec<(Option<String>, Option<String>)> = report.rejected.iter().map(|e| (e.segment_id.clone(), e.path.clone())).collect();
    let want = [
        (Some("no_variants"), "/experiences/1/variants"),
        (Some("bad_holdout"), "/experiences/2/holdout"),
        (Some("bad_cap"), "/experiences/3/variants/0/cap/within"),
        (Some("bad_count"), "/experiences/4/variants/1/cap/count"),
        (Some("long_cap"), "/experiences/5/variants/0/cap/within"),
        (Some("bad_segment"), "/experiences/6/variants/0/segment"),
        (Some("bad_priority"), "/experiences/7/variants/0/priority"),
        (Some("dup_variant"), "/experiences/8/variants/1/id"),
        (None, "/experiences/9/id"),
        (Some("ok"), "/experiences/10/id"),
        (None, "/experiences/11"),
        (Some("gold"), "/experiences/13/id"),
    ];
    let want: Vec<(Option<String>, Option<String>)> = want.iter().map(|(i, p)| (i.map(String::from), Some(p.to_string()))).collect();
    assert_eq!(got, want);
    for e in &report.rejected {
        assert_eq!(e.code, "invalid_segment");
        assert!(!e.message.is_empty());
    }
    assert_eq!(ks.decide("ok", T0).unwrap().variant, "b");
    assert_eq!(ks.decide("no_variants", T0).unwrap_err().code, "unknown_id");

    // `experiences` that is not an array rejects the whole document; the previous stays.
    let err = ks.load_definitions(&json(r#"{"version":1,"segments":[],"experiences":{}}"#), T0).unwrap_err();
    assert_eq!((err.code, err.path.as_deref()), ("invalid_definitions", Some("/experiences")));
    assert_eq!(ks.decide("ok", T0).unwrap().variant, "b");
}

#[test]
fn unknown_fields_of_an_experience_its_variants_and_caps_are_rejected_with_their_path() {
    // A typo must not load as the default (no segment, no cap, no holdout): the gold offer
    // would then go to every visitor.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(1), None, T0);
    let doc = json(
        r#"{"version":1,"segments":[{"id":"gold","condition":{"traits.tier":"gold"}}],
        "experiences":[
          {"id":"typo_segment","variants":[{"id":"gold_offer","segmnet":"gold"},{"id":"none"}]},
          {"id":"typo_within","variants":[{"id":"gold_offer","segment":"gold","cap":{"count":1,"whithin":"1d"}},{"id":"none"}]},
          {"id":"typo_holdout","holduot":0.5,"variants":[{"id":"a"},{"id":"control"}]},
          {"id":"slash","variants":[{"id":"a","cap":{"count":1,"a/b":1}}]},
          {"id":"labelled","name":"Hero","description":"the banner","variants":[{"id":"a","name":"A","description":"plain"}]}
        ]}"#,
    );
    let report = ks.load_definitions(&doc, T0).unwrap();
    assert_eq!(report.loaded, vec!["gold", "labelled"]);
    let got: Vec<(&str, Option<&str>, Option<&str>, &str)> =
        report.rejected.iter().map(|e| (e.code, e.segment_id.as_deref(), e.path.as_deref(), e.message.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("invalid_segment", Some("typo_segment"), Some("/experiences/0/variants/0/segmnet"), "unknown field"),
            ("invalid_segment", Some("typo_within"), Some("/experiences/1/variants/0/cap/whithin"), "unknown field"),
            ("invalid_segment", Some("typo_holdout"), Some("/experiences/2/holduot"), "unknown field"),
            ("invalid_segment", Some("slash"), Some("/experiences/3/variants/0/cap/a~1b"), "unknown field"),
        ]
    );
    assert_eq!(ks.decide("typo_segment", T0).unwrap_err().code, "unknown_id");
}

#[test]
fn priority_among_eligible_variants_with_fallback_and_ties_in_document_order() {
    // Nobody: fallback to the last variant.
    let mut ks = engine(1, None, Options::default());
    assert_eq!(variant(&mut ks, T0), "default");
    // Shoe fan only.
    ks.page(T0, Map::new());
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    assert_eq!(variant(&mut ks, T0), "shoes");
    // Gold and shoe fan: the higher priority wins.
    let stored = stored_with(&mut ks, j!({"tier": "gold"}));
    let mut ks = engine(2, Some(&stored), Options::default());
    assert_eq!(ks.segments(), &["gold".to_string(), "shoe_fans".to_string()]);
    assert_eq!(variant(&mut ks, T0), "gold_offer");

    // Equal priorities: document order. No variant eligible and the last has a segment: it is
    // still the fallback.
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    let doc = json(
        r#"{"version":1,"segments":[{"id":"all","condition":{}},{"id":"none","condition":{"traits.x":1}}],
        "experiences":[{"id":"tie","variants":[{"id":"first","segment":"all","priority":1},{"id":"second","priority":1},{"id":"low"}]},
                       {"id":"fb","variants":[{"id":"a","segment":"none","priority":9},{"id":"last","segment":"none"}]}]}"#,
    );
    ks.load_definitions(&doc, T0).unwrap();
    assert_eq!(ks.decide("tie", T0).unwrap().variant, "first");
    assert_eq!(ks.decide("fb", T0).unwrap().variant, "last");
}

#[test]
fn cap_counts_exposures_of_earlier_page_views_within_its_window() {
    let mut ks = gold_visitor();
    let t = |m: f64| T0 + m * MINUTE;
    // Three page views, each shows the gold offer once.
    for i in 0..3 {
        ks.page(t(i as f64), Map::new());
        assert_eq!(variant(&mut ks, t(i as f64)), "gold_offer", "view {i}");
        // Sticky within the page view, and recorded once.
        assert_eq!(variant(&mut ks, t(i as f64) + 1000.0), "gold_offer");
        assert_eq!(viewed(&mut ks), vec![j!({"experience": "hero", "variant": "gold_offer", "holdout": false})]);
    }
    // Fourth page view: capped, falls to the next eligible (default: not a shoe fan).
    ks.page(t(3.0), Map::new());
    assert_eq!(variant(&mut ks, t(3.0)), "default");
    assert_eq!(viewed(&mut ks), vec![j!({"experience": "hero", "variant": "default", "holdout": false})]);
    let ex = to_json(&ks.explain_experience("hero", t(3.0)).unwrap());
    assert_eq!(ex["capped"], j!(["gold_offer"]));
    assert_eq!(ex["eligible"], j!(["default"]));
    assert_eq!(ex["variants"][0]["seen"].as_f64(), Some(3.0));
    assert_eq!(ex["holdout"], j!(false));

    // The first exposure (minute 0) is still inside the 7-day window a minute before its end…
    let just_before = t(0.0) + 7.0 * DAY - MINUTE;
    ks.page(just_before, Map::new());
    assert_eq!(variant(&mut ks, just_before), "default");
    // …and out of it a minute after: two exposures in the window, the cap of 3 releases.
    let just_after = t(0.0) + 7.0 * DAY + MINUTE;
    ks.page(just_after, Map::new());
    assert_eq!(variant(&mut ks, just_after), "gold_offer");

    // Exposures survive a reload (they are part of the stored profile).
    let stored = ks.take_dirty().unwrap();
    let again = engine(9, Some(&stored), Options::default());
    let ex = to_json(&again.explain_experience("hero", just_after + MINUTE).unwrap());
    assert_eq!(ex["variants"][0]["seen"].as_f64(), Some(2.0), "minute 2 and the last view are in the window");
    let ex = to_json(&again.explain_experience("hero", t(2.0) + 7.0 * DAY + MINUTE).unwrap());
    assert_eq!(ex["variants"][0]["seen"].as_f64(), Some(1.0), "only the last view is left in the window");
}

/// `explain` of an experience reports the decision the page view holds, as `decide` answers it,
/// while its counts (`seen`, `capped`, `eligible`) are those of now, which the next page view
/// decides by.
#[test]
fn explain_reports_the_page_views_decision_and_the_counts_now() {
    let mut ks = gold_visitor();
    let t = |m: f64| T0 + m * MINUTE;
    for i in 0..3 {
        ks.page(t(i as f64), Map::new());
        assert_eq!(variant(&mut ks, t(i as f64)), "gold_offer");
    }
    ks.page(t(3.0), Map::new());
    assert_eq!(variant(&mut ks, t(3.0)), "default", "capped");
    // The same page view, 8 days on: the cap has released, the decision stays.
    let later = t(3.0) + 8.0 * DAY;
    assert_eq!(variant(&mut ks, later), "default", "sticky");
    let ex = to_json(&ks.explain_experience("hero", later).unwrap());
    assert_eq!((&ex["variant"], &ex["variants"][0]["chosen"], &ex["variants"][2]["chosen"]), (&j!("default"), &j!(false), &j!(true)));
    assert_eq!(ex["eligible"], j!(["gold_offer", "default"]), "the counts of now");
    assert_eq!(ex["variants"][0]["seen"].as_f64(), Some(0.0));
    // The next page view decides by them.
    ks.page(later, Map::new());
    assert_eq!(variant(&mut ks, later), "gold_offer");
    assert_eq!(to_json(&ks.explain_experience("hero", later).unwrap())["variant"], j!("gold_offer"));
}

#[test]
fn a_decision_is_sticky_in_a_page_view_unless_membership_changes() {
    let mut ks = engine(4, None, Options::default());
    ks.page(T0, Map::new());
    assert_eq!(variant(&mut ks, T0), "default");
    ks.track(T0 + 1.0, "Product Viewed", Map::new()).unwrap();
    assert_eq!(variant(&mut ks, T0 + 2.0), "default", "membership unchanged: sticky");
    ks.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    assert!(ks.in_segment("shoe_fans"));
    assert_eq!(variant(&mut ks, T0 + 4.0), "shoes", "membership changed: re-decided");
    // Recorded at most once per experience per page view.
    assert_eq!(viewed(&mut ks).len(), 1);
    ks.page(T0 + 5.0, Map::new());
    assert_eq!(variant(&mut ks, T0 + 6.0), "shoes");
    assert_eq!(viewed(&mut ks), vec![j!({"experience": "hero", "variant": "shoes", "holdout": false})]);
    // Caps and conditions see the exposures like any event.
    assert_eq!(ks.profile_document().path("events.Experience Viewed.count").and_then(Value::as_num), Some(2.0));
    assert_eq!(ks.decide("nope", T0).unwrap_err().code, "unknown_id");
}

#[test]
fn holdout_fraction_over_ten_thousand_identities_is_within_one_and_a_half_points() {
    for fraction in [0.1, 0.25, 0.5] {
        let doc = defs(fraction);
        let mut held = 0;
        for seed in 0..10_000u64 {
            let mut ks = Keystone::new(Options::default(), NativeHost::boxed(seed * 7919 + 13), None, T0);
            ks.load_definitions(&doc, T0).unwrap();
            let d = ks.decide("hero", T0).unwrap();
            assert_eq!(d.holdout, draw(ks.anonymous_id(), "hero") < fraction);
            if d.holdout {
                assert_eq!(d.variant, "default", "the holdout gets the last variant");
                held += 1;
            }
        }
        let got = held as f64 / 10_000.0;
        assert!((got - fraction).abs() <= 0.015, "fraction {fraction}: got {got}");
        println!("holdout {fraction}: {got} over 10000 identities");
    }
    // The draw is uniform: each decile holds about a tenth, and other experiences draw independently.
    let mut deciles = [0u32; 10];
    let mut both = 0;
    for i in 0..10_000u64 {
        let id = keystone::core::ids::uuid_v4(keystone::core::host::random16(&NativeHost::new(i)));
        let d = draw(&id, "hero");
        deciles[(d * 10.0) as usize] += 1;
        if d < 0.5 && draw(&id, "footer") < 0.5 {
            both += 1;
        }
    }
    for n in deciles {
        assert!((850..=1150).contains(&n), "{deciles:?}");
    }
    assert!((2350..=2650).contains(&both), "independent draws: {both}");
}

#[test]
fn the_draw_is_stable_across_calls_page_views_and_reloads_and_follows_the_known_identity() {
    let doc = defs(0.5);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(77), None, T0);
    ks.load_definitions(&doc, T0).unwrap();
    let first = ks.decide("hero", T0).unwrap().holdout;
    for i in 1..20 {
        ks.page(T0 + i as f64, Map::new());
        assert_eq!(ks.decide("hero", T0 + i as f64).unwrap().holdout, first);
    }
    let aid = ks.anonymous_id().to_string();
    let mut stored = ks.take_dirty().unwrap();
    let mut again = Keystone::new(Options::default(), NativeHost::boxed(78), Some(&stored), T0 + DAY);
    again.load_definitions(&doc, T0 + DAY).unwrap();
    assert_eq!(again.anonymous_id(), aid);
    assert_eq!(again.decide("hero", T0 + DAY).unwrap().holdout, first);

    // A known identity: the draw follows the user id, not the anonymous id. Pick a user id whose
    // draw differs from the anonymous one.
    let uid = (0..100).map(|i| i.to_string()).find(|u| (draw(u, "hero") < 0.5) != first).unwrap();
    if let Value::Obj(m) = &mut stored {
        m.insert("uid", Value::Str(uid.clone()));
    }
    let mut known = Keystone::new(Options::default(), NativeHost::boxed(79), Some(&stored), T0 + DAY);
    known.load_definitions(&doc, T0 + DAY).unwrap();
    assert_eq!(known.user_id(), Some(uid.as_str()));
    assert_eq!(known.decide("hero", T0 + DAY).unwrap().holdout, !first);
    let ex = to_json(&known.explain_experience("hero", T0 + DAY).unwrap());
    assert_eq!(ex["holdout"], j!(!first));
    assert_eq!(ex["kind"], j!("experience"));
}

/// The first email (by index) whose user id draws the other arm than `holdout` for "hero" at 0.5.
fn email_drawing(holdout: bool) -> String {
    (0..200).map(|i| format!("p{i}@example.com")).find(|e| (draw(&keystone::core::sha256::sha256_hex(e), "hero") < 0.5) != holdout).unwrap()
}

#[test]
fn within_a_page_view_a_login_keeps_the_decision_and_another_person_gets_their_own_exposure() {
    let doc = defs(0.5);
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(91), None, T0);
    ks.load_definitions(&doc, T0).unwrap();
    ks.page(T0, Map::new());
    let anon = ks.decide("hero", T0 + 1.0).unwrap();
    assert_eq!(viewed(&mut ks).len(), 1);

    // Anonymous → A (the same person, profile merged): A's own draw differs, yet the page view
    // keeps its decision and records no second exposure.
    let a = email_drawing(anon.holdout);
    ks.identify(T0 + 2.0, &a, Map::new(), &Value::Null).unwrap();
    assert_eq!(ks.decide("hero", T0 + 3.0).unwrap(), anon, "sticky across the login");
    assert!(viewed(&mut ks).is_empty());

    // Next page view: A's own draw.
    ks.page(T0 + 4.0, Map::new());
    let a_next = ks.decide("hero", T0 + 5.0).unwrap();
    assert_eq!(a_next.holdout, !anon.holdout, "the known identity's draw from the next page view");
    assert_eq!(viewed(&mut ks).len(), 1);

    // A → B without reset: another person; B's first decision in this page view is B's own,
    // and its exposure is recorded under B.
    let b = email_drawing(a_next.holdout);
    ks.identify(T0 + 6.0, &b, Map::new(), &Value::Null).unwrap();
    let b_d = ks.decide("hero", T0 + 7.0).unwrap();
    assert_eq!(b_d.holdout, !a_next.holdout);
    assert_eq!(viewed(&mut ks), vec![j!({"experience": "hero", "variant": b_d.variant, "holdout": b_d.holdout})]);
    assert_eq!(ks.profile_document().path("events.Experience Viewed.count").and_then(Value::as_num), Some(1.0));

    // reset(): a new anonymous visitor, who gets their own exposure too.
    ks.reset(T0 + 8.0);
    let r = ks.decide("hero", T0 + 9.0).unwrap();
    assert_eq!(r.holdout, draw(ks.anonymous_id(), "hero") < 0.5);
    assert_eq!(viewed(&mut ks).len(), 1);
    assert_eq!(ks.profile_document().path("events.Experience Viewed.count").and_then(Value::as_num), Some(1.0));
}

#[test]
fn a_login_that_changes_membership_keeps_the_page_views_holdout_draw() {
    // Re-decided within the login's page view (the traits put the visitor in "gold"), the answer
    // may change variant but not arm: the exposure already sent and shown was the anonymous
    // draw's. The next page view uses the known identity's draw.
    let doc = defs(0.5);
    for want in [false, true] {
        let mut ks = (90..200)
            .map(|seed| Keystone::new(Options::default(), NativeHost::boxed(seed), None, T0))
            .find(|k| (draw(k.anonymous_id(), "hero") < 0.5) == want)
            .unwrap();
        ks.load_definitions(&doc, T0).unwrap();
        ks.page(T0, Map::new());
        let anon = ks.decide("hero", T0 + 1.0).unwrap();
        assert_eq!(anon.holdout, want);
        let a = email_drawing(want);
        let mut traits = Map::new();
        traits.insert("tier", Value::Str("gold".into()));
        ks.identify(T0 + 2.0, &a, traits, &Value::Null).unwrap();
        assert!(ks.in_segment("gold"), "membership changed at the login");
        let again = ks.decide("hero", T0 + 3.0).unwrap();
        assert_eq!(again.holdout, want, "the page view keeps its draw across the login");
        assert_eq!(again.variant, if want { "default" } else { "gold_offer" });
        assert_eq!(to_json(&ks.explain_experience("hero", T0 + 3.0).unwrap())["holdout"], j!(want));
        ks.page(T0 + 4.0, Map::new());
        assert_eq!(ks.decide("hero", T0 + 5.0).unwrap().holdout, !want, "the known identity's draw from the next page view");
    }
}

#[test]
fn only_a_decision_fixes_the_page_views_draw_and_forget_lets_it_go() {
    let doc = defs(0.5);
    let grant = common::from_json(&j!({"analytics": true, "personalization": true}));
    for want in [false, true] {
        let fresh = |seed_from: u64| {
            (seed_from..seed_from + 200)
                .map(|seed| Keystone::new(Options::default(), NativeHost::boxed(seed), None, T0))
                .find(|k| (draw(k.anonymous_id(), "hero") < 0.5) == want)
                .unwrap()
        };
        // An unknown id decides nothing: the first decision, after a login, is the known identity's.
        let mut ks = fresh(300);
        ks.load_definitions(&doc, T0).unwrap();
        ks.page(T0, Map::new());
        assert!(ks.decide("nope", T0 + 1.0).is_err());
        let a = email_drawing(want);
        ks.identify(T0 + 2.0, &a, Map::new(), &Value::Null).unwrap();
        assert_eq!(ks.decide("hero", T0 + 3.0).unwrap().holdout, !want, "drawn from the known identity");

        // forget(), then a grant: the new visitor's decisions are drawn from the new id, not the
        // forgotten one's.
        let mut ks = fresh(600);
        ks.load_definitions(&doc, T0).unwrap();
        ks.page(T0, Map::new());
        assert_eq!(ks.decide("hero", T0 + 1.0).unwrap().holdout, want);
        ks.forget(T0 + 2.0);
        ks.set_consent(&grant, T0 + 3.0).unwrap();
        let next = ks.anonymous_id().to_string();
        assert!(!next.is_empty());
        let d = ks.decide("hero", T0 + 4.0).unwrap();
        assert_eq!(d.holdout, draw(&next, "hero") < 0.5);
        assert_eq!(to_json(&ks.explain_experience("hero", T0 + 4.0).unwrap())["draw"], j!(draw(&next, "hero")));
    }
}

#[test]
fn an_exposure_before_consent_is_recorded_by_the_first_decision_after_it() {
    let doc = json(
        r#"{"version":1,"segments":[],
        "experiences":[{"id":"deal","variants":[{"id":"offer","cap":{"count":1,"within":"1d"}},{"id":"none"}]},
                       {"id":"plain","variants":[{"id":"a"}]}]}"#,
    );
    let opt_in = Options { consent: Consent::none(), ..Options::default() };
    let mut ks = Keystone::new(opt_in, NativeHost::boxed(11), None, T0);
    ks.load_definitions(&doc, T0).unwrap();
    ks.page(T0, Map::new());
    // Before consent (the declarative renderer decides at init): shown, nothing recorded.
    assert_eq!(ks.decide("deal", T0 + 1.0).unwrap().variant, "offer");
    assert!(viewed(&mut ks).is_empty());
    ks.set_consent(&common::from_json(&j!({"analytics": true, "personalization": true})), T0 + 2.0).unwrap();
    // The same page view: the exposure is recorded once, and its own view does not cap it.
    assert_eq!(ks.decide("deal", T0 + 3.0).unwrap().variant, "offer");
    assert_eq!(viewed(&mut ks), vec![j!({"experience": "deal", "variant": "offer", "holdout": false})]);
    assert_eq!(ks.decide("deal", T0 + 4.0).unwrap().variant, "offer");
    assert!(viewed(&mut ks).is_empty());
    assert_eq!(ks.profile_document().path("events.Experience Viewed.count").and_then(Value::as_num), Some(1.0));
    // The next page view: capped by one exposure, not two.
    ks.page(T0 + 5.0, Map::new());
    assert_eq!(ks.decide("deal", T0 + 6.0).unwrap().variant, "none");
    let ex = to_json(&ks.explain_experience("deal", T0 + 6.0).unwrap());
    assert_eq!(ex["variants"][0]["seen"].as_f64(), Some(1.0));
    viewed(&mut ks);

    // Consent withdrawn then granted again in one page view (the identity stays, so does the
    // decision): recorded at the first decision after the grant.
    ks.set_consent(&common::from_json(&j!({"analytics": false, "personalization": false})), T0 + 7.0).unwrap();
    ks.page(T0 + 8.0, Map::new());
    assert_eq!(ks.decide("plain", T0 + 9.0).unwrap().variant, "a");
    assert!(viewed(&mut ks).is_empty());
    ks.set_consent(&common::from_json(&j!({"analytics": true})), T0 + 10.0).unwrap();
    assert_eq!(ks.decide("plain", T0 + 11.0).unwrap().variant, "a");
    assert_eq!(viewed(&mut ks), vec![j!({"experience": "plain", "variant": "a", "holdout": false})]);
    // Recorded (sent): granting personalization as well records nothing more.
    ks.set_consent(&common::from_json(&j!({"personalization": true})), T0 + 12.0).unwrap();
    ks.decide("plain", T0 + 13.0).unwrap();
    assert!(viewed(&mut ks).is_empty());
}

#[test]
fn a_decision_before_consent_counts_for_no_cap_when_consent_changes_the_variant() {
    // Before consent no segment is evaluated: `plain` is shown; after it, `gold`. Only `gold`
    // was recorded, so only `gold` is capped at the next page view.
    let doc = json(
        r#"{"version":1,"segments":[{"id":"vip","condition":{}}],
        "experiences":[{"id":"hero","variants":[{"id":"gold","segment":"vip","cap":{"count":1,"within":"1d"}},
                                                {"id":"plain","cap":{"count":1,"within":"1d"}},{"id":"last"}]}]}"#,
    );
    let opt_in = Options { consent: Consent::none(), ..Options::default() };
    let mut ks = Keystone::new(opt_in, NativeHost::boxed(12), None, T0);
    ks.load_definitions(&doc, T0).unwrap();
    ks.page(T0, Map::new());
    assert_eq!(ks.decide("hero", T0 + 1.0).unwrap().variant, "plain");
    ks.set_consent(&common::from_json(&j!({"analytics": true, "personalization": true})), T0 + 2.0).unwrap();
    assert_eq!(ks.decide("hero", T0 + 3.0).unwrap().variant, "gold");
    assert_eq!(viewed(&mut ks), vec![j!({"experience": "hero", "variant": "gold", "holdout": false})]);
    ks.page(T0 + 4.0, Map::new());
    assert_eq!(ks.decide("hero", T0 + 5.0).unwrap().variant, "plain", "plain was never recorded: not capped");
    let ex = to_json(&ks.explain_experience("hero", T0 + 5.0).unwrap());
    assert_eq!(ex["variants"][1]["seen"].as_f64(), Some(0.0));
}

#[test]
fn track_segments_reports_each_change_once_across_reloads_under_analytics_consent() {
    let opts = Options { track_segments: true, ..Options::default() };
    let mut ks = engine(5, None, opts.clone());
    let segment_events = segment_reports;
    assert!(segment_events(&mut ks).is_empty());
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    assert_eq!(segment_events(&mut ks), ["Segment Entered shoe_fans", "Segment Entered buyers"]);
    // A reload does not repeat what was reported; a window passing while away is reported on load.
    let stored = ks.take_dirty().unwrap();
    let mut again = engine(6, Some(&stored), opts.clone());
    assert!(segment_events(&mut again).is_empty());
    let mut later = Keystone::new(opts.clone(), NativeHost::boxed(7), Some(&stored), T0 + 8.0 * DAY);
    later.load_definitions(&defs(0.0), T0 + 8.0 * DAY).unwrap();
    assert_eq!(segment_events(&mut later), ["Segment Exited shoe_fans"]);

    // Off by default; nothing without analytics consent.
    let mut off = engine(8, None, Options::default());
    off.track(T0, "Order Completed", Map::new()).unwrap();
    assert!(segment_events(&mut off).is_empty());
    let no_analytics = Options { consent: Consent { analytics: false, personalization: true, marketing: false }, ..opts };
    let mut quiet = engine(9, None, no_analytics);
    quiet.track(T0, "Order Completed", Map::new()).unwrap();
    assert!(quiet.in_segment("buyers"));
    assert!(segment_events(&mut quiet).is_empty());
}

#[test]
fn deferred_track_segments_reports_are_made_before_an_identity_or_consent_change_under_the_identity_that_made_them() {
    // Reports wait for `report_now` (the browser makes them one tab at a time); a login, a logout
    // or a withdrawal of personalization made first must neither lose them nor send them under
    // the next identity.
    let opts = Options { track_segments: true, ..Options::default() };
    let wire = |ks: &mut Keystone| -> Vec<String> {
        ks.take_outbox()
            .iter()
            .map(|e| to_json(&e.to_spec()))
            .map(|e| {
                let seg = e["properties"]["segment"].as_str().unwrap_or("").to_string();
                format!("{} {} {} {}", e["type"].as_str().unwrap(), e["event"].as_str().unwrap_or(""), seg, e["userId"].as_str().map_or("-", |_| "user"))
            })
            .collect()
    };
    let mut ks = engine(21, None, opts.clone());
    ks.deferred = true;
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    assert!(ks.reports_pending());
    ks.identify(T0 + 1.0, "a@b.co", Map::new(), &Value::Null).unwrap();
    assert_eq!(wire(&mut ks), ["track Order Completed  -", "track Segment Entered buyers -", "identify   user", "alias   user"]);
    // The known person is still a buyer: nothing more to report for them.
    ks.report_now(T0 + 2.0);
    assert!(wire(&mut ks).is_empty());
    // Same person again (traits only): no report is made ahead of its turn.
    ks.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    ks.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    ks.identify(T0 + 4.0, "a@b.co", Map::new(), &Value::Null).unwrap();
    assert_eq!(wire(&mut ks), ["track Product Viewed  user", "track Product Viewed  user", "identify   user"]);
    // A logout: the change made before it is the known person's; the new visitor entered nothing.
    ks.reset(T0 + 5.0);
    assert_eq!(wire(&mut ks), ["track Segment Entered shoe_fans user"]);
    ks.report_now(T0 + 6.0);
    assert!(wire(&mut ks).is_empty());
    // The known person logs in again: what their profile reported is not reported again.
    ks.identify(T0 + 7.0, "a@b.co", Map::new(), &Value::Null).unwrap();
    ks.report_now(T0 + 8.0);
    assert_eq!(wire(&mut ks), ["identify   user", "alias   user"]);

    // Personalization withdrawn (analytics kept): the change made before is reported then; the
    // membership dropped with it is no exit, and a grant again repeats nothing.
    let mut ks = engine(22, None, opts.clone());
    ks.deferred = true;
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    ks.take_outbox();
    ks.set_consent(&common::from_json(&j!({"personalization": false})), T0 + 1.0).unwrap();
    assert_eq!(wire(&mut ks), ["track Segment Entered buyers -"]);
    ks.report_now(T0 + 2.0);
    ks.set_consent(&common::from_json(&j!({"personalization": true})), T0 + 3.0).unwrap();
    ks.report_now(T0 + 4.0);
    assert!(wire(&mut ks).is_empty());

    // Analytics withdrawn: nothing is made (the queue is erased); the change is reported once
    // analytics is granted again.
    let mut ks = engine(23, None, opts);
    ks.deferred = true;
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    ks.take_outbox();
    ks.set_consent(&common::from_json(&j!({"analytics": false})), T0 + 1.0).unwrap();
    ks.report_now(T0 + 2.0);
    assert!(wire(&mut ks).is_empty());
    ks.set_consent(&common::from_json(&j!({"analytics": true})), T0 + 3.0).unwrap();
    ks.report_now(T0 + 4.0);
    assert_eq!(wire(&mut ks), ["track Segment Entered buyers -"]);
}

#[test]
fn track_segments_reports_a_segment_entered_and_left_again_before_the_report_as_both_changes() {
    // The report compares the membership with what the profile last reported: a segment entered
    // and left again before it (one task of the page) compared equal, and neither change was sent.
    let opts = Options { track_segments: true, ..Options::default() };
    let wire = segment_reports;
    let tier = |ks: &mut Keystone, t: f64, v: &str| ks.set_traits(t, Map::new().with("tier", v));
    let mut ks = engine(31, None, opts.clone());
    ks.deferred = true;
    wire(&mut ks);
    tier(&mut ks, T0 + 1.0, "gold");
    tier(&mut ks, T0 + 2.0, "silver");
    ks.report_now(T0 + 3.0);
    assert_eq!(wire(&mut ks), ["Segment Entered gold", "Segment Exited gold"]);
    // Left and entered again: the exit first.
    tier(&mut ks, T0 + 4.0, "gold");
    ks.report_now(T0 + 5.0);
    assert_eq!(wire(&mut ks), ["Segment Entered gold"]);
    tier(&mut ks, T0 + 6.0, "silver");
    tier(&mut ks, T0 + 7.0, "gold");
    ks.report_now(T0 + 8.0);
    assert_eq!(wire(&mut ks), ["Segment Exited gold", "Segment Entered gold"]);
    // Three changes, then four: each, in order, once (before: the net one).
    tier(&mut ks, T0 + 9.0, "silver");
    tier(&mut ks, T0 + 10.0, "gold");
    tier(&mut ks, T0 + 11.0, "silver");
    ks.report_now(T0 + 12.0);
    assert_eq!(wire(&mut ks), ["Segment Exited gold", "Segment Entered gold", "Segment Exited gold"]);
    ks.report_now(T0 + 13.0);
    assert!(wire(&mut ks).is_empty(), "nothing is reported twice");
    for (i, v) in ["gold", "silver", "gold", "silver"].iter().enumerate() {
        tier(&mut ks, T0 + 14.0 + i as f64, v);
    }
    ks.report_now(T0 + 18.0);
    assert_eq!(wire(&mut ks), ["Segment Entered gold", "Segment Exited gold", "Segment Entered gold", "Segment Exited gold"]);
    // Past the bound of changes kept between reports (256), the net one: here, none.
    for i in 0..300 {
        tier(&mut ks, T0 + 20.0 + i as f64, if i % 2 == 0 { "gold" } else { "silver" });
    }
    ks.report_now(T0 + 400.0);
    assert_eq!(wire(&mut ks).len(), 256);
    ks.report_now(T0 + 401.0);
    assert!(wire(&mut ks).is_empty());

    // Another tab reported the first change (entered) before this tab's report: this tab's exit
    // is reported alone, not as a bounce.
    let stored = ks.take_dirty().unwrap();
    let mut a = engine(32, Some(&stored), opts.clone());
    let mut b = engine(33, Some(&stored), opts.clone());
    for t in [&mut a, &mut b] {
        t.deferred = true;
        wire(t);
    }
    tier(&mut a, T0 + 20.0, "gold");
    tier(&mut b, T0 + 20.0, "gold");
    b.report_now(T0 + 21.0);
    assert_eq!(wire(&mut b), ["Segment Entered gold"]);
    assert!(a.rebase(&b.take_dirty().unwrap(), T0 + 22.0));
    tier(&mut a, T0 + 23.0, "silver");
    a.report_now(T0 + 24.0);
    assert_eq!(wire(&mut a), ["Segment Exited gold"]);

    // Made while analytics is withdrawn: reported once it is granted again, as a change is.
    let mut q = engine(34, None, opts);
    q.deferred = true;
    wire(&mut q);
    q.set_consent(&common::from_json(&j!({"analytics": false})), T0 + 1.0).unwrap();
    tier(&mut q, T0 + 2.0, "gold");
    tier(&mut q, T0 + 3.0, "silver");
    q.report_now(T0 + 4.0);
    q.set_consent(&common::from_json(&j!({"analytics": true})), T0 + 5.0).unwrap();
    q.report_now(T0 + 6.0);
    assert_eq!(wire(&mut q), ["Segment Entered gold", "Segment Exited gold"]);
}

#[test]
fn track_segments_reports_changes_of_several_segments_in_the_order_they_were_made() {
    // Reported per segment (all of gold's, then the next segment's), the collector could not
    // tell the order the listeners and the data layer heard: a, b, then a left.
    let doc = json(
        r#"{"version":1,"segments":[
          {"id":"a","condition":{"traits.a":1}},
          {"id":"b","condition":{"traits.b":1}},
          {"id":"c","condition":{"traits.c":1}}]}"#,
    );
    let opts = Options { track_segments: true, ..Options::default() };
    let mut ks = Keystone::new(opts, NativeHost::boxed(41), None, T0);
    ks.load_definitions(&doc, T0).unwrap();
    ks.deferred = true;
    segment_reports(&mut ks);
    let set = |ks: &mut Keystone, t: f64, k: &str, v: f64| ks.set_traits(t, Map::new().with(k, v));
    set(&mut ks, T0 + 1.0, "a", 1.0);
    set(&mut ks, T0 + 2.0, "b", 1.0);
    set(&mut ks, T0 + 3.0, "a", 0.0);
    set(&mut ks, T0 + 4.0, "c", 1.0);
    set(&mut ks, T0 + 5.0, "b", 0.0);
    set(&mut ks, T0 + 6.0, "a", 1.0);
    let heard: Vec<String> = ks
        .take_notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Enter(s) => Some(format!("Segment Entered {s}")),
            Notice::Exit(s) => Some(format!("Segment Exited {s}")),
            _ => None,
        })
        .collect();
    ks.report_now(T0 + 7.0);
    let sent = segment_reports(&mut ks);
    assert_eq!(sent, ["Segment Entered a", "Segment Entered b", "Segment Exited a", "Segment Entered c", "Segment Exited b", "Segment Entered a"]);
    assert_eq!(sent, heard, "as the listeners heard them");
    ks.report_now(T0 + 8.0);
    assert!(segment_reports(&mut ks).is_empty(), "nothing is reported twice");
}
