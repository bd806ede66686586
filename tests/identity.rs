#![cfg(not(target_arch = "wasm32"))]
//! Identity natively: the email hash (vectors incl. non-ASCII), validation, every transition of
//! DESIGN §5 (anonymous → A, A → A, A → B, reset, the bounded and retention-bounded set-aside
//! store), the identify/alias events, and the identity stamp that lets tabs follow each other.
mod common;

use common::{json, to_json, NativeHost};
use keystone::core::event::Kind;
use keystone::core::identity::{normalize_email, Aside, ASIDE_MAX};
use keystone::core::keystone::{Keystone, Notice, Options};
use keystone::core::sha256::sha256_hex;
use keystone::core::time::DAY;
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;
const ADA: &str = "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"; // sha256("ada@example.com")

fn defs() -> Value {
    json(
        r#"{"version":1,"segments":[
        {"id":"gold_viewers","condition":{"$and":[{"traits.tier":"gold"},{"$performed":{"event":"Product Viewed"}}]}},
        {"id":"viewers","condition":{"$performed":{"event":"Product Viewed"}}},
        {"id":"buyers","condition":{"$performed":{"event":"Order Completed"}}}]}"#,
    )
}

fn engine(seed: u64) -> Keystone {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(seed), None, T0);
    ks.load_definitions(&defs(), T0).unwrap();
    ks.take_notices();
    ks.take_outbox();
    ks
}

fn traits(pairs: &[(&str, &str)]) -> Map {
    pairs.iter().map(|(k, v)| (k.to_string(), Value::Str(v.to_string()))).collect()
}

fn count(ks: &Keystone, event: &str) -> f64 {
    ks.profile_document().path(&format!("events.{event}.count")).and_then(Value::as_num).unwrap_or(0.0)
}

fn doc_str(ks: &Keystone, path: &str) -> Option<String> {
    ks.profile_document().path(path).and_then(Value::as_str).map(String::from)
}

fn linked(ks: &Keystone) -> Vec<String> {
    let doc = ks.profile_document();
    doc.path("linkedAnonymousIds").and_then(Value::as_arr).unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn identify(ks: &mut Keystone, t: f64, email: &str, tr: Map) {
    ks.identify(t, email, tr, &Value::Null).unwrap();
}

#[test]
fn sha256_vectors_including_block_boundaries() {
    assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    for (n, hex) in [
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        (1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ] {
        assert_eq!(sha256_hex(&"a".repeat(n)), hex, "length {n}");
    }
}

#[test]
fn emails_are_trimmed_lowercased_and_hashed_including_non_ascii() {
    for (raw, norm, hex) in [
        ("  Ada@Example.COM\n", "ada@example.com", ADA),
        ("Ünïcödé.Üser@Exämple.com", "ünïcödé.üser@exämple.com", "5480bb0a3e9a2e9a9981a59f7a20906ccd1e6a1dfb79f9451223f09f14c07422"),
        ("用户@例子.中国", "用户@例子.中国", "79f85d535fbb6d565bc9f3b23d354e277bdab984e41a9c4cd24272a0c447c495"),
    ] {
        assert_eq!(normalize_email(raw, &NativeHost::new(0)).unwrap(), norm);
        let mut ks = engine(1);
        identify(&mut ks, T0, raw, Map::new());
        assert_eq!(ks.user_id(), Some(hex));
    }
}

#[test]
fn malformed_emails_are_rejected_and_change_nothing() {
    let mut ks = engine(2);
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    ks.take_outbox();
    ks.take_notices();
    ks.take_dirty();
    let before = ks.profile_document();
    for bad in ["", "   ", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@@example.com", "a@b@example.com", "Ada <ada@example.com>", "ada@.example.com", "ada@example.com.", "ada@exa..mple.com"] {
        let e = ks.identify(T0 + 1.0, bad, traits(&[("tier", "gold")]), &Value::Null).unwrap_err();
        assert_eq!(e.code, "invalid_email", "{bad:?}");
    }
    // Bad options are rejected before anything changes too.
    for opts in [r#"{"userId": true}"#, r#"{"userId": {"id": 5}}"#, r#"{"userId": [5]}"#, r#"{"userId": ""}"#, r#"{"storeEmail": "yes"}"#, "[1]"] {
        let e = ks.identify(T0 + 1.0, "ada@example.com", Map::new(), &json(opts)).unwrap_err();
        assert_eq!(e.code, "invalid_argument", "{opts}");
    }
    assert_eq!(ks.profile_document(), before);
    assert!(ks.take_outbox().is_empty());
    assert!(ks.take_notices().is_empty());
    assert!(ks.take_dirty().is_none());
    assert!(ks.take_aside().is_none());
}

#[test]
fn anonymous_to_known_merges_and_segments_needing_both_enter_at_once() {
    let mut ks = engine(3);
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    let aid = ks.anonymous_id().to_string();
    assert_eq!(ks.segments(), &["viewers".to_string()]);
    ks.take_notices();
    ks.take_outbox();

    identify(&mut ks, T0 + 1000.0, " Ada@Example.com ", traits(&[("tier", "gold")]));
    // Synchronous: the segment needing the CRM trait and the anonymous behaviour holds now.
    assert!(ks.in_segment("gold_viewers"));
    assert_eq!(ks.user_id(), Some(ADA));
    assert_eq!(ks.anonymous_id(), aid, "the device's anonymous id is kept on login");
    assert_eq!(count(&ks, "Product Viewed"), 1.0);
    assert_eq!(linked(&ks), vec![aid.clone()]);
    assert_eq!(ks.profile_document().get("identified"), Some(&Value::Bool(true)));
    assert_eq!(ks.take_notices(), vec![Notice::Identify(ADA.into()), Notice::Enter("gold_viewers".into())]);

    let out = ks.take_outbox();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].kind, Kind::Identify);
    assert_eq!(out[0].user_id.as_deref(), Some(ADA));
    assert_eq!(out[0].traits.get("tier"), Some(&Value::Str("gold".into())));
    let alias = to_json(&out[1].to_spec());
    assert_eq!(alias["type"], "alias");
    assert_eq!(alias["previousId"], aid.as_str());
    assert_eq!(alias["userId"], ADA);
    // The identity change must be written (not coalesced): the profile is dirty now.
    assert!(ks.take_dirty().is_some());
}

#[test]
fn the_raw_email_is_never_stored_or_queued_unless_opted_in() {
    let mut ks = engine(4);
    identify(&mut ks, T0, "Ada@Example.com", traits(&[("tier", "gold")]));
    ks.reset(T0 + 1.0);
    let everything = format!(
        "{:?}{:?}{:?}{:?}",
        ks.take_dirty(),
        ks.take_aside(),
        ks.take_outbox().iter().map(|e| e.to_spec()).collect::<Vec<_>>(),
        ks.profile_document()
    );
    assert!(!everything.to_lowercase().contains("ada@example.com"));
    assert!(everything.contains(ADA), "the hash is there");

    let mut ks = engine(5);
    ks.identify(T0, "Ada@Example.com", Map::new(), &json(r#"{"storeEmail": true}"#)).unwrap();
    assert_eq!(doc_str(&ks, "traits.email").as_deref(), Some("ada@example.com"));
    assert_eq!(ks.take_outbox()[0].traits.get("email"), Some(&Value::Str("ada@example.com".into())));
}

#[test]
fn a_site_user_id_replaces_the_hash() {
    let mut ks = engine(6);
    ks.identify(T0, "ada@example.com", Map::new(), &json(r#"{"userId": "crm-42"}"#)).unwrap();
    assert_eq!(ks.user_id(), Some("crm-42"));
    assert_eq!(ks.take_outbox()[0].user_id.as_deref(), Some("crm-42"));
}

/// A numeric user id (a CRM's numeric primary key), as Segment's analytics.js takes it: its
/// decimal text, as JavaScript's `String(n)` prints it, everywhere the user id goes.
#[test]
fn a_numeric_site_user_id_is_its_decimal_text() {
    for (given, want) in [("12345", "12345"), ("0", "0"), ("-0", "0"), ("-7", "-7"), ("12.5", "12.5"), ("9007199254740993", "9007199254740992")] {
        let mut ks = engine(6);
        ks.identify(T0, "ada@example.com", Map::new(), &json(&format!(r#"{{"userId": {given}}}"#))).unwrap();
        assert_eq!(ks.user_id(), Some(want), "{given}");
        assert_eq!(ks.take_outbox()[0].user_id.as_deref(), Some(want), "{given}");
    }
}

#[test]
fn same_user_again_updates_traits_only() {
    let mut ks = engine(7);
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    identify(&mut ks, T0 + 1.0, "ada@example.com", traits(&[("tier", "silver"), ("city", "Paris")]));
    let aid = ks.anonymous_id().to_string();
    ks.take_outbox();
    ks.take_notices();
    let mut before = ks.profile_document();
    identify(&mut ks, T0 + 2.0, "ADA@example.com", traits(&[("tier", "gold")]));
    let mut after = ks.profile_document();
    assert_eq!(after.path("traits.tier"), Some(&Value::Str("gold".into())));
    assert_eq!(after.path("traits.city"), Some(&Value::Str("Paris".into())));
    assert_eq!(ks.anonymous_id(), aid);
    for d in [&mut before, &mut after] {
        if let Value::Obj(m) = d {
            m.remove("traits");
            m.remove("segments");
        }
    }
    assert_eq!(before, after, "nothing but traits (and the segments they drive) changed");
    let out = ks.take_outbox();
    assert_eq!(out.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![Kind::Identify], "no alias without a change of identity");
    assert_eq!(ks.take_notices(), vec![Notice::Identify(ADA.into()), Notice::Enter("gold_viewers".into())]);
}

#[test]
fn switching_users_without_reset_leaks_nothing_and_unlinks_the_anonymous_id() {
    let mut ks = engine(8);
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    identify(&mut ks, T0 + 1.0, "ada@example.com", traits(&[("tier", "gold")]));
    let aid_a = ks.anonymous_id().to_string();
    assert_eq!(ks.segments().len(), 3);
    ks.take_notices();
    ks.take_outbox();

    identify(&mut ks, T0 + 2.0, "bob@example.com", traits(&[("city", "Lyon")]));
    let bob = sha256_hex("bob@example.com");
    assert_eq!(ks.user_id(), Some(bob.as_str()));
    assert_ne!(ks.anonymous_id(), aid_a, "a new anonymous id: nothing links A and B");
    assert!(ks.segments().is_empty());
    let doc = ks.profile_document();
    assert_eq!(doc.path("events").and_then(Value::as_obj).map(|m| m.len()), Some(0));
    assert_eq!(doc.path("traits").and_then(Value::as_obj).map(|m| m.keys().cloned().collect::<Vec<_>>()), Some(vec!["city".to_string()]));
    assert_eq!(linked(&ks), vec![ks.anonymous_id().to_string()]);
    let text = format!("{:?}", ks.take_dirty().unwrap());
    assert!(!text.contains(&aid_a) && !text.contains(ADA) && !text.contains("gold"), "nothing of A in B's stored profile");
    let out = ks.take_outbox();
    assert_eq!(out.len(), 2);
    for e in &out {
        let s = format!("{:?}", e.to_spec());
        assert!(!s.contains(&aid_a) && !s.contains(ADA), "nothing of A on B's wire: {s}");
    }
    assert_eq!(out[1].previous_id.as_deref(), Some(ks.anonymous_id()));
    let notices = ks.take_notices();
    assert!(notices.contains(&Notice::Exit("buyers".into())) && notices.contains(&Notice::Identify(bob.clone())));

    // B → A: A comes back whole (under yet another anonymous id), B is set aside.
    ks.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    identify(&mut ks, T0 + 4.0, "ada@example.com", Map::new());
    assert_eq!(count(&ks, "Order Completed"), 1.0);
    assert_eq!(count(&ks, "Product Viewed"), 1.0, "B's view stays with B");
    assert_eq!(doc_str(&ks, "traits.tier").as_deref(), Some("gold"));
    assert!(doc_str(&ks, "traits.city").is_none());
    let aside = Aside::from_value(&ks.take_aside().unwrap());
    assert_eq!(aside.user_ids().collect::<Vec<_>>(), vec![bob.as_str()]);
}

#[test]
fn reset_sets_aside_and_a_later_login_brings_the_profile_back_merged() {
    let mut ks = engine(9);
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    let aid1 = ks.anonymous_id().to_string();
    identify(&mut ks, T0 + 1.0, "ada@example.com", traits(&[("tier", "gold")]));
    ks.take_notices();

    ks.reset(T0 + 2.0);
    let aid2 = ks.anonymous_id().to_string();
    assert_ne!(aid2, aid1);
    assert_eq!(ks.user_id(), None);
    assert!(ks.segments().is_empty());
    let doc = ks.profile_document();
    assert_eq!(doc.path("traits"), Some(&Value::Obj(Map::new())));
    assert_eq!(doc.path("events"), Some(&Value::Obj(Map::new())));
    assert!(linked(&ks).is_empty());
    let notices = ks.take_notices();
    assert_eq!(notices.first(), Some(&Notice::Reset(aid2.clone())), "reset first, then the exits");
    assert!(notices.contains(&Notice::Exit("buyers".into())));
    assert!(ks.take_dirty().is_some() && ks.take_aside().is_some(), "both written at once");

    ks.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    identify(&mut ks, T0 + 4.0, "ada@example.com", Map::new());
    assert_eq!(ks.anonymous_id(), aid2);
    assert_eq!(count(&ks, "Order Completed"), 1.0);
    assert_eq!(count(&ks, "Product Viewed"), 1.0);
    assert!(ks.in_segment("gold_viewers"), "A's CRM trait meets the new anonymous behaviour");
    assert_eq!(linked(&ks), vec![aid1, aid2]);
    assert_eq!(doc_str(&ks, "firstSeen").as_deref(), Some("2025-11-29T08:00:00.000Z"));
}

#[test]
fn set_aside_profiles_survive_a_reload_through_their_stored_form() {
    let mut ks = engine(10);
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    identify(&mut ks, T0, "ada@example.com", Map::new());
    ks.reset(T0 + 1.0);
    let profile = ks.take_dirty().unwrap();
    let aside = ks.take_aside().unwrap();

    let mut again = Keystone::new(Options::default(), NativeHost::boxed(11), Some(&profile), T0 + 2.0);
    again.load_aside(&aside);
    identify(&mut again, T0 + 3.0, "ada@example.com", Map::new());
    assert_eq!(count(&again, "Order Completed"), 1.0);
}

/// The `storage_corrupt` errors among the notices since the last call.
fn corrupt_reports(ks: &mut Keystone) -> usize {
    ks.take_notices().iter().filter(|n| matches!(n, Notice::Error(e) if e.code == "storage_corrupt")).count()
}

#[test]
fn damaged_set_aside_profiles_are_reported_and_written_back_without_the_damage() {
    let mut ks = engine(13);
    ks.track(T0, "Order Completed", Map::new()).unwrap();
    identify(&mut ks, T0, "ada@example.com", Map::new());
    ks.reset(T0 + 1.0);
    let good = ks.take_aside().unwrap().as_arr().unwrap()[0].clone();

    // Unreadable forms: reported once per read, the readable entry kept and brought back.
    for stored in [json("42"), Value::Str("[[\"ab".into()), json(r#"{"a":1}"#), Value::Arr(vec![json("1"), good.clone(), json(r#"{"v":2}"#)])] {
        let mut again = engine(14);
        again.load_aside(&stored);
        assert_eq!(corrupt_reports(&mut again), 1, "{stored:?}");
        let written = again.take_aside().expect("written back without the damage");
        assert!(written.as_arr().unwrap().iter().all(|e| e.as_arr().is_some_and(|e| e.len() == 3)));
        identify(&mut again, T0 + 2.0, "ada@example.com", Map::new());
        let held = usize::from(stored.as_arr().is_some());
        assert_eq!(count(&again, "Order Completed"), held as f64, "{stored:?}");
    }
    // A readable entry whose profile is damaged: repaired when taken, and reported.
    let mut bad = good.clone();
    if let Value::Arr(e) = &mut bad {
        if let Value::Obj(p) = &mut e[2] {
            p.insert(String::from("traits"), json("7"));
        }
    }
    let mut again = engine(15);
    again.load_aside(&Value::Arr(vec![bad]));
    assert_eq!(corrupt_reports(&mut again), 0);
    identify(&mut again, T0 + 2.0, "ada@example.com", Map::new());
    assert_eq!(corrupt_reports(&mut again), 1);
    assert_eq!(count(&again, "Order Completed"), 1.0);
    // Nothing damaged, nothing reported.
    let mut clean = engine(16);
    clean.load_aside(&Value::Arr(vec![good]));
    identify(&mut clean, T0 + 2.0, "ada@example.com", Map::new());
    assert_eq!(corrupt_reports(&mut clean), 0);
    clean.load_aside(&Value::Null);
    assert_eq!(corrupt_reports(&mut clean), 0);
}

#[test]
fn set_aside_store_is_lru_bounded_and_obeys_retention() {
    let mut ks = engine(12);
    let users: Vec<String> = (0..ASIDE_MAX + 2).map(|i| format!("user{i}@example.com")).collect();
    for (i, u) in users.iter().enumerate() {
        ks.track(T0 + i as f64, "Product Viewed", Map::new()).unwrap();
        identify(&mut ks, T0 + i as f64, u, Map::new());
    }
    ks.reset(T0 + 100.0);
    let aside = Aside::from_value(&ks.take_aside().unwrap());
    let held: Vec<&str> = aside.user_ids().collect();
    let expect: Vec<String> = users[users.len() - ASIDE_MAX..].iter().map(|u| sha256_hex(u)).collect();
    assert_eq!(held, expect.iter().map(String::as_str).collect::<Vec<_>>(), "least recently used dropped first");

    // Using an entry makes it the most recent: user2 survives the next eviction, user3 does not.
    ks.load_aside(&aside.to_value());
    identify(&mut ks, T0 + 200.0, &users[2], Map::new());
    ks.reset(T0 + 201.0);
    identify(&mut ks, T0 + 202.0, "new@example.com", Map::new());
    ks.reset(T0 + 203.0);
    let held: Vec<String> = Aside::from_value(&ks.take_aside().unwrap()).user_ids().map(String::from).collect();
    assert_eq!(held.len(), ASIDE_MAX);
    assert!(held.contains(&sha256_hex(&users[2])) && !held.contains(&sha256_hex(&users[3])));

    // Retention (90 days by default): a profile set aside longer ago is gone.
    identify(&mut ks, T0 + 91.0 * DAY, &users[2], Map::new());
    assert_eq!(count(&ks, "Product Viewed"), 0.0, "expired set-aside profile not restored");
    let held = Aside::from_value(&ks.take_aside().unwrap());
    assert_eq!(held.user_ids().count(), 0);
}

#[test]
fn a_tab_holding_an_older_identity_adopts_the_stored_one_and_never_writes_it_back() {
    let mut tab1 = engine(13);
    tab1.track(T0, "Product Viewed", Map::new()).unwrap();
    identify(&mut tab1, T0, "ada@example.com", traits(&[("tier", "gold")]));
    let stored = tab1.take_dirty().unwrap();
    let mut tab2 = Keystone::new(Options::default(), NativeHost::boxed(14), Some(&stored), T0 + 1.0);
    tab2.load_definitions(&defs(), T0 + 1.0).unwrap();
    assert!(tab2.in_segment("gold_viewers"));
    tab2.take_notices();

    // Tab 1 logs out and writes at once.
    tab1.reset(T0 + 2.0);
    let after_reset = tab1.write(None, T0 + 2.0).unwrap();
    let stamp = |v: &Value| (v.get("ep").and_then(Value::as_num).unwrap(), v.get("aid").and_then(Value::as_str).unwrap().to_string());

    // Tab 2 still holds A and has pending changes; it hears the logout and follows it.
    tab2.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    assert!(tab2.rebase(&after_reset, T0 + 3.0));
    assert_eq!(tab2.user_id(), None);
    assert_eq!(tab2.anonymous_id(), tab1.anonymous_id());
    assert!(tab2.segments().is_empty());
    let notices = tab2.take_notices();
    assert!(notices.contains(&Notice::Reset(tab1.anonymous_id().to_string())));
    assert!(notices.contains(&Notice::Exit("gold_viewers".into())));
    let written = tab2.take_dirty().unwrap_or_else(|| after_reset.clone());
    assert_eq!(written.get("uid"), Some(&Value::Null), "the old identity is not written back");

    // The reverse: tab 1 hears a write made from a stale copy that still holds A (a tab that had
    // not yet heard the logout). It keeps its own identity and writes it back.
    tab1.take_notices();
    assert!(!tab1.rebase(&stored, T0 + 4.0));
    assert_eq!(tab1.user_id(), None);
    assert!(tab1.take_notices().is_empty(), "no identify of A in the tab that logged A out");
    let repaired = tab1.write(None, T0 + 4.0).expect("the newer identity is written back");
    assert_eq!(stamp(&repaired), stamp(&after_reset));
    assert_eq!(repaired.get("uid"), Some(&Value::Null));
}

/// Two tabs change the identity at once (a login as different people, or two logouts): each
/// hears the other's write. Both settle on the same identity (the tie of epochs is broken by the
/// anonymous id), not on each other's.
#[test]
fn two_tabs_changing_identity_at_once_settle_on_one() {
    let mut tab1 = engine(30);
    tab1.track(T0, "Product Viewed", Map::new()).unwrap();
    let stored = tab1.write(None, T0).unwrap();
    let mut tab2 = Keystone::new(Options::default(), NativeHost::boxed(31), Some(&stored), T0 + 1.0);
    // First two logins from the one anonymous visitor (who keeps the anonymous id).
    for (e1, e2) in [(Some("ada@example.com"), Some("eve@example.com")), (Some("bob@example.com"), Some("carol@example.com")), (None, None), (None, Some("dan@example.com"))] {
        for (tab, e) in [(&mut tab1, e1), (&mut tab2, e2)] {
            match e {
                Some(e) => identify(tab, T0 + 2.0, e, Map::new()),
                None => tab.reset(T0 + 2.0),
            }
        }
        // Written at once, as the page does after an identity change.
        let w1 = tab1.write(None, T0 + 2.0).unwrap();
        let w2 = tab2.write(None, T0 + 2.0).unwrap();
        // Each hears the other's write; the loser follows, the winner writes its own back.
        let a1 = tab1.rebase(&w2, T0 + 3.0);
        let a2 = tab2.rebase(&w1, T0 + 3.0);
        assert!(a1 != a2, "exactly one tab follows the other");
        let again = if a1 { tab2.write(None, T0 + 3.0) } else { tab1.write(None, T0 + 3.0) }.expect("the winner writes back");
        if a1 { tab1.rebase(&again, T0 + 4.0) } else { tab2.rebase(&again, T0 + 4.0) };
        assert_eq!(tab1.anonymous_id(), tab2.anonymous_id(), "{e1:?} / {e2:?}");
        assert_eq!(tab1.user_id(), tab2.user_id(), "{e1:?} / {e2:?}");
        tab1.write(None, T0 + 4.0);
        tab2.write(None, T0 + 4.0);
    }
}

#[test]
fn without_consent_nothing_is_queued_or_persisted() {
    let mut o = Options::default();
    o.consent = keystone::core::consent::Consent::none();
    let mut ks = Keystone::new(o, NativeHost::boxed(15), None, T0);
    identify(&mut ks, T0, "ada@example.com", Map::new());
    ks.reset(T0 + 1.0);
    assert!(ks.take_outbox().is_empty());
    assert!(ks.take_dirty().is_none());
    assert!(ks.take_aside().is_none());
}

/// A stored profile whose identity epoch is already at the top of its range (only tampered
/// storage gets there): login, logout and a switch of user neither panic nor wrap the epoch
/// back to 0 (which would make other tabs take the new identity for an older one); the
/// behaviour is kept. (Found while fuzzing the merge.)
#[test]
fn an_epoch_at_its_ceiling_saturates_instead_of_wrapping() {
    let mut ks = engine(40);
    ks.track(T0, "Product Viewed", Map::new()).unwrap();
    let mut stored = ks.take_dirty().unwrap();
    if let Value::Obj(m) = &mut stored {
        m.insert("ep", Value::Num(1e12));
    }
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(41), Some(&stored), T0);
    ks.load_definitions(&defs(), T0).unwrap();
    let epoch = |ks: &mut Keystone| ks.take_dirty().and_then(|v| v.as_obj().and_then(|m| m.get("ep")).and_then(Value::as_num));
    identify(&mut ks, T0 + 1000.0, "ada@example.com", Map::new());
    assert_eq!(epoch(&mut ks), Some(f64::from(u32::MAX)));
    assert_eq!(count(&ks, "Product Viewed"), 1.0);
    identify(&mut ks, T0 + 2000.0, "grace@example.com", Map::new());
    assert_eq!(epoch(&mut ks), Some(f64::from(u32::MAX)));
    ks.reset(T0 + 3000.0);
    assert_eq!(epoch(&mut ks), Some(f64::from(u32::MAX)));
    assert_eq!(ks.user_id(), None);
}

/// Tab 2 holds A with an event it has not written yet when tab 1 logs out: following the logout,
/// tab 2 files that event into A's set-aside profile, so A finds it at the next login.
#[test]
fn a_tab_following_a_logout_files_its_unwritten_events_into_the_set_aside_profile() {
    let mut tab1 = engine(21);
    identify(&mut tab1, T0, "ada@example.com", Map::new());
    tab1.track(T0 + 1.0, "Product Viewed", Map::new()).unwrap();
    let stored = tab1.take_dirty().unwrap();
    let mut tab2 = Keystone::new(Options::default(), NativeHost::boxed(22), Some(&stored), T0 + 2.0);
    tab2.load_definitions(&defs(), T0 + 2.0).unwrap();
    assert_eq!(count(&tab2, "Product Viewed"), 1.0);

    // Tab 2 records an event of A (not written yet); tab 1 logs out and writes at once.
    tab2.track(T0 + 3.0, "Product Viewed", Map::new()).unwrap();
    tab2.track(T0 + 3.5, "Order Completed", Map::new()).unwrap();
    tab1.reset(T0 + 4.0);
    let aside = tab1.take_aside().unwrap();
    let after_reset = tab1.take_dirty().unwrap();

    // Tab 2 follows: its pending operations of A are orphans, filed into A's set-aside copy.
    assert!(tab2.rebase(&after_reset, T0 + 5.0));
    assert_eq!(tab2.user_id(), None);
    assert_eq!(count(&tab2, "Product Viewed"), 0.0, "nothing of A leaks into the anonymous profile");
    assert!(tab2.has_orphans());
    tab2.load_aside(&aside);
    tab2.file_orphans(T0 + 5.0);
    let filed = tab2.take_aside().expect("the set-aside profiles are written again");
    // Filed once: checked again against what it wrote, nothing lacks and nothing is written.
    assert!(tab2.has_orphans());
    tab2.load_aside(&filed);
    tab2.file_orphans(T0 + 5.5);
    assert_eq!(tab2.take_aside(), None);

    // A logs in again (in tab 1): the set-aside copy holds both tabs' events, once each.
    tab1.load_aside(&filed);
    identify(&mut tab1, T0 + 6.0, "ada@example.com", Map::new());
    assert_eq!(count(&tab1, "Product Viewed"), 2.0);
    assert_eq!(count(&tab1, "Order Completed"), 1.0);
}

/// Both tabs hold A. Tab 2 tracks an event and logs out while tab 1, which read the set-aside
/// profiles before tab 2 wrote them, switches to B: tab 1's write of the set-aside profiles
/// holds its own copy of A, without tab 2's event, and lands last. Tab 2, hearing that write,
/// files its event into A's set-aside profile again (once), so A finds it at the next login;
/// tab 1, hearing that, finds nothing of its own missing and writes nothing.
#[test]
fn a_set_aside_profile_written_over_from_an_older_read_gets_the_tabs_operations_again() {
    let mut tab1 = engine(60);
    identify(&mut tab1, T0, "ada@example.com", Map::new());
    let stored = tab1.write(None, T0).unwrap();
    let mut tab2 = Keystone::new(Options::default(), NativeHost::boxed(61), Some(&stored), T0 + 1.0);
    tab2.load_definitions(&defs(), T0 + 1.0).unwrap();
    let empty = Value::Arr(Vec::new());
    tab1.load_aside(&empty);
    tab2.load_aside(&empty);
    tab2.track(T0 + 2.0, "Order Completed", Map::new()).unwrap();
    tab2.reset(T0 + 3.0);
    let _ = tab2.take_aside().expect("A set aside by tab 2, with its event");
    identify(&mut tab1, T0 + 3.0, "bob@example.com", Map::new());
    let over = tab1.take_aside().expect("A set aside by tab 1, from its own copy");

    // Tab 2 hears tab 1's write (the set-aside profiles): its event is filed again, once.
    assert!(tab2.has_orphans());
    tab2.load_aside(&over);
    tab2.file_orphans(T0 + 4.0);
    let fixed = tab2.take_aside().expect("the set-aside profiles are written again");
    tab2.load_aside(&fixed);
    tab2.file_orphans(T0 + 4.5);
    assert_eq!(tab2.take_aside(), None, "written once: nothing lacks any more");
    // Tab 1 hears that write: nothing of its own lacks, nothing is written.
    tab1.load_aside(&fixed);
    tab1.file_orphans(T0 + 5.0);
    assert_eq!(tab1.take_aside(), None);
    // Past the 10 s, nothing is checked any more.
    tab2.load_aside(&over);
    tab2.file_orphans(T0 + 20_000.0);
    assert!(!tab2.has_orphans());
    assert_eq!(tab2.take_aside(), None);

    let mut next = engine(62);
    next.load_aside(&fixed);
    identify(&mut next, T0 + 6.0, "ada@example.com", Map::new());
    assert_eq!(count(&next, "Order Completed"), 1.0);
}

/// Two tabs of one anonymous visitor log in as different people at the same moment (a shared
/// computer). Each login replaces the stored profile without having heard the other, so no tab
/// sets the other person aside at its switch: the tab whose write replaces a known profile it
/// never held sets that one aside, and the tab that follows the other's login sets its own
/// person aside (with what it had not written yet). Both people find their profile at their
/// next login. (Before: the login that lost the race was dropped whole.)
#[test]
fn two_logins_at_once_keep_both_people_set_aside() {
    let mut tab1 = engine(50);
    let stored = tab1.write(None, T0).unwrap();
    let mut tab2 = Keystone::new(Options::default(), NativeHost::boxed(51), Some(&stored), T0);
    tab2.load_definitions(&defs(), T0).unwrap();
    identify(&mut tab1, T0 + 1.0, "ada@example.com", traits(&[("name", "Ada")]));
    tab1.track(T0 + 2.0, "Product Viewed", Map::new()).unwrap();
    let ada = tab1.write(None, T0 + 2.0).unwrap();
    identify(&mut tab2, T0 + 1.0, "bob@example.com", traits(&[("name", "Bob")]));
    // Tab 2 writes over Ada's profile, which it never heard of: Ada is set aside.
    let bob = tab2.write(Some(&ada), T0 + 3.0).unwrap();
    assert!(tab2.has_orphans());
    tab2.file_orphans(T0 + 3.0);
    let aside = tab2.take_aside().expect("Ada set aside");
    // Tab 1 tracks once more (not written), then hears Bob's login (a newer identity here).
    tab1.track(T0 + 4.0, "Order Completed", Map::new()).unwrap();
    let mut newer = bob.clone();
    if let Value::Obj(m) = &mut newer {
        m.insert("ep", Value::Num(9.0));
    }
    assert!(tab1.rebase(&newer, T0 + 5.0));
    assert_eq!(tab1.user_id(), tab2.user_id());
    tab1.load_aside(&aside);
    tab1.file_orphans(T0 + 5.0);
    let aside = tab1.take_aside().unwrap();
    tab1.load_aside(&aside);
    identify(&mut tab1, T0 + 6.0, "ada@example.com", Map::new());
    assert_eq!(doc_str(&tab1, "traits.name").as_deref(), Some("Ada"));
    assert_eq!((count(&tab1, "Product Viewed"), count(&tab1, "Order Completed")), (1.0, 1.0));

    // The same without a set-aside copy from the writer (another tab's, then closed): the tab
    // that follows sets its own person aside whole.
    let mut tab3 = engine(52);
    identify(&mut tab3, T0, "ada@example.com", traits(&[("name", "Ada")]));
    tab3.track(T0 + 1.0, "Product Viewed", Map::new()).unwrap();
    tab3.write(None, T0 + 1.0).unwrap();
    tab3.track(T0 + 2.0, "Order Completed", Map::new()).unwrap();
    assert!(tab3.rebase(&newer, T0 + 3.0));
    tab3.load_aside(&Value::Null);
    tab3.file_orphans(T0 + 3.0);
    let aside = tab3.take_aside().expect("Ada set aside by the tab that held her");
    tab3.load_aside(&aside);
    identify(&mut tab3, T0 + 4.0, "ada@example.com", Map::new());
    assert_eq!(doc_str(&tab3, "traits.name").as_deref(), Some("Ada"));
    assert_eq!((count(&tab3, "Product Viewed"), count(&tab3, "Order Completed")), (1.0, 1.0));
}

/// `cookieDomain`: the shared cookie names an anonymous id this subdomain's stored profile does
/// not know (another subdomain logged out, or switched users): the stored profile is someone
/// else's now. It is set aside, a fresh anonymous profile starts under the cookie's id, and
/// nothing of it is attached to that id; the known person gets their profile back on login.
#[test]
fn a_cookie_id_that_contradicts_the_stored_profile_starts_a_fresh_one_and_sets_the_known_one_aside() {
    let mut ks = engine(40);
    identify(&mut ks, T0, "ada@example.com", traits(&[("name", "Ada")]));
    ks.track(T0 + 1.0, "Product Viewed", Map::new()).unwrap();
    let stored = ks.take_dirty().unwrap();
    let aside = ks.take_aside();
    let cookie = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b"; // written by another subdomain's reset()

    let mut b = Keystone::new(Options::default(), NativeHost::boxed(41), Some(&stored), T0 + 10.0);
    b.load_definitions(&defs(), T0 + 10.0).unwrap();
    if let Some(a) = &aside {
        b.load_aside(a);
    }
    b.adopt_anonymous_id(cookie, true);
    assert_eq!(b.anonymous_id(), cookie);
    assert_eq!(b.user_id(), None, "not Ada's any more");
    assert_eq!(doc_str(&b, "traits.name"), None);
    assert_eq!(count(&b, "Product Viewed"), 0.0);
    // Ada logs in again: her profile comes back from the set-aside store.
    let set_aside = b.take_aside().expect("Ada's profile is set aside and written");
    b.load_aside(&set_aside);
    identify(&mut b, T0 + 20.0, "ada@example.com", Map::new());
    assert_eq!(b.user_id(), Some(ADA));
    assert_eq!(doc_str(&b, "traits.name").as_deref(), Some("Ada"));
    assert_eq!(count(&b, "Product Viewed"), 1.0);

    // An anonymous profile takes the cookie's id and keeps its history (a re-made cookie).
    let mut anon = engine(43);
    anon.track(T0, "Product Viewed", Map::new()).unwrap();
    let anon_stored = anon.take_dirty().unwrap();
    let mut d = Keystone::new(Options::default(), NativeHost::boxed(44), Some(&anon_stored), T0 + 10.0);
    d.adopt_anonymous_id(cookie, true);
    assert_eq!(d.anonymous_id(), cookie);
    assert_eq!(count(&d, "Product Viewed"), 1.0);

    // The same visitor's own earlier anonymous id (linked to the known profile): adopted as is.
    let mut c = Keystone::new(Options::default(), NativeHost::boxed(42), Some(&stored), T0 + 10.0);
    let own = linked(&c)[0].clone();
    c.adopt_anonymous_id(&own, true);
    assert_eq!((c.anonymous_id(), c.user_id()), (own.as_str(), Some(ADA)));
}

/// A login before consent (opt-in): no anonymous id exists yet, so none is linked and nothing
/// is sent; the id made when consent is given is the known person's: linked, and the login goes
/// out then, as DESIGN §5 asks of every reconciliation: `identify` with its traits, and `alias`
/// (`previousId` = that id). Without analytics it is never sent (events made without it are
/// not sent later). Without personalization, `explain` answers no, as `inSegment` does.
#[test]
fn a_login_before_consent_links_the_id_made_at_consent() {
    let mut o = Options::default();
    o.consent = keystone::core::consent::Consent::none();
    let mut ks = Keystone::new(o, NativeHost::boxed(50), None, T0);
    ks.load_definitions(&json(r#"{"version":1,"segments":[{"id":"all","condition":{}}]}"#), T0).unwrap();
    identify(&mut ks, T0 + 1.0, "ada@example.com", traits(&[("plan", "pro")]));
    assert_eq!(ks.anonymous_id(), "");
    assert!(linked(&ks).is_empty(), "no empty id linked");
    assert!(ks.take_outbox().is_empty(), "nothing is sent before consent");
    assert!(!ks.in_segment("all"));
    let x = ks.explain("all", T0 + 1.0).unwrap();
    assert_eq!(x.get("result"), Some(&Value::Bool(false)), "explain agrees with inSegment without personalization");
    ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    let id = ks.anonymous_id().to_string();
    assert_eq!(linked(&ks), vec![id.clone()]);
    let sent = ks.take_outbox();
    assert_eq!(sent.len(), 2, "the login's identify and alias");
    assert!(matches!(sent[0].kind, Kind::Identify) && sent[0].traits.get("plan") == Some(&Value::Str("pro".into())));
    assert!(matches!(sent[1].kind, Kind::Alias) && sent[1].previous_id.as_deref() == Some(id.as_str()));
    assert!(sent.iter().all(|e| e.user_id.as_deref() == Some(ADA) && e.anonymous_id == id));
    ks.set_consent(&json(r#"{"analytics":true}"#), T0 + 3.0).unwrap();
    assert!(ks.take_outbox().is_empty(), "sent once");
    assert!(ks.in_segment("all"));
    assert_eq!(ks.explain("all", T0 + 2.0).unwrap().get("result"), Some(&Value::Bool(true)));

    let opt_in = |seed, stored: Option<&Value>| {
        let mut o = Options::default();
        o.consent = keystone::core::consent::Consent::none();
        Keystone::new(o, NativeHost::boxed(seed), stored, T0)
    };
    let kinds = |ks: &mut Keystone| ks.take_outbox().iter().map(|e| (e.kind, e.previous_id.clone())).collect::<Vec<_>>();

    // Personalization alone first: nothing may be sent; the first grant of analytics sends the
    // login made before any consent.
    let mut ks = opt_in(51, None);
    identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
    ks.set_consent(&json(r#"{"personalization":true}"#), T0 + 2.0).unwrap();
    assert!(ks.take_outbox().is_empty());
    ks.set_consent(&json(r#"{"analytics":true}"#), T0 + 3.0).unwrap();
    let id = ks.anonymous_id().to_string();
    assert_eq!(kinds(&mut ks), vec![(Kind::Identify, None), (Kind::Alias, Some(id))]);

    // A logout before the grant: nothing of the login is sent.
    let mut ks = opt_in(52, None);
    identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
    ks.reset(T0 + 1.5);
    ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    assert!(ks.take_outbox().is_empty());

    // A returning visitor (an id stored with consent on an earlier page) on a page that asks
    // again: the login aliases that id at the grant.
    let mut first = engine(53);
    first.track(T0, "Viewed", Map::new()).unwrap();
    let stored = first.write(None, T0).unwrap();
    let mut ks = opt_in(54, Some(&stored));
    let known = ks.anonymous_id().to_string();
    assert_eq!(known, first.anonymous_id());
    identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
    assert!(ks.take_outbox().is_empty());
    ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    assert_eq!(kinds(&mut ks), vec![(Kind::Identify, None), (Kind::Alias, Some(known))]);

    // A login made with personalization granted and analytics refused is not sent later, as
    // events made without analytics are not.
    let mut o = Options::default();
    o.consent = keystone::core::consent::Consent::none();
    o.consent.personalization = true;
    let mut ks = Keystone::new(o, NativeHost::boxed(55), None, T0);
    identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
    ks.set_consent(&json(r#"{"analytics":true}"#), T0 + 2.0).unwrap();
    assert!(ks.take_outbox().is_empty());

    // A person set aside before consent (no anonymous id made yet) is stored at the grant and
    // read back whole at the next login, not reported as damage.
    let mut ks = opt_in(56, None);
    identify(&mut ks, T0 + 1.0, "ada@example.com", traits(&[("plan", "pro")]));
    ks.reset(T0 + 1.5);
    ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    let aside = ks.take_aside().expect("set aside at the grant");
    let mut next = engine(57);
    next.load_aside(&aside);
    identify(&mut next, T0 + 3.0, "ada@example.com", Map::new());
    assert!(!next.take_notices().iter().any(|n| matches!(n, Notice::Error(_))), "no storage_corrupt");
    assert_eq!(next.profile_document().path("traits.plan"), Some(&Value::Str("pro".into())));

    // The grant made in another tab (`grant_of` its stored profile's ids): this tab takes that
    // tab's id, which its login then aliases; one made here would carry nothing.
    let mut other = opt_in(58, None);
    other.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    let x = other.anonymous_id().to_string();
    let mut ks = opt_in(59, None);
    identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
    ks.grant_of(&x, None);
    ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    assert_eq!((ks.anonymous_id(), linked(&ks)), (x.as_str(), vec![x.clone()]));
    assert_eq!(kinds(&mut ks), vec![(Kind::Identify, None), (Kind::Alias, Some(x.clone()))]);
    // Both tabs logged the same person in before the grant: the granting tab sent the login.
    let mut ks = opt_in(60, None);
    identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
    ks.grant_of(&x, Some(ADA));
    ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
    assert_eq!(ks.anonymous_id(), x);
    assert!(ks.take_outbox().is_empty());
    // Another person's profile granted there (Ada's), Bob logged in here, or logged out here:
    // this tab makes its own id; nothing links two people.
    for bob in [true, false] {
        let mut ks = opt_in(61, None);
        identify(&mut ks, T0 + 1.0, "ada@example.com", Map::new());
        if bob {
            identify(&mut ks, T0 + 1.2, "bob@example.com", Map::new());
        } else {
            ks.reset(T0 + 1.2);
        }
        ks.grant_of(&x, Some(ADA));
        ks.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 2.0).unwrap();
        assert!(ks.anonymous_id() != x && !ks.anonymous_id().is_empty());
        let sent = kinds(&mut ks);
        let me = ks.anonymous_id().to_string();
        assert_eq!(sent, if bob { vec![(Kind::Identify, None), (Kind::Alias, Some(me))] } else { vec![] });
    }
}

/// SHA-256's constants, computed at run time (`sha256::constants`), are the published ones
/// (FIPS 180-4, §4.2.2 and §5.3.3).
#[test]
fn sha256_constants_are_the_published_ones() {
    let k: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let h: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    assert_eq!(keystone::core::sha256::constants(), (h, k));
}

/// Two tabs of one anonymous visitor log the same person in at once, each writing without
/// having heard the other: each tab's login (its traits) and what it made before it are kept
/// once the tabs hear each other's write, whichever wrote last. (Before: each tab took the
/// other's write whole, its own login's traits and unwritten events were gone, and the two
/// tabs held different profiles.)
#[test]
fn the_same_person_logged_in_at_once_in_two_tabs_keeps_both_logins() {
    let mut tab1 = engine(60);
    let stored = tab1.write(None, T0).unwrap();
    let mut tab2 = Keystone::new(Options::default(), NativeHost::boxed(61), Some(&stored), T0);
    tab2.load_definitions(&defs(), T0).unwrap();
    tab1.track(T0 + 1.0, "Product Viewed", Map::new()).unwrap();
    tab2.track(T0 + 1.0, "Order Completed", Map::new()).unwrap();
    identify(&mut tab1, T0 + 2.0, "ada@example.com", traits(&[("a", "1")]));
    identify(&mut tab2, T0 + 2.0, "ada@example.com", traits(&[("b", "2")]));
    let w1 = tab1.write(None, T0 + 3.0).unwrap();
    let w2 = tab2.write(Some(&w1), T0 + 3.0).unwrap(); // over tab 1's, unheard
    assert!(!tab2.has_orphans(), "the same person is no one to set aside");
    // Each hears the other's write (tab 2's event for tab 1's write arrives late).
    assert!(tab1.rebase(&w2, T0 + 4.0));
    assert!(tab2.rebase(&w1, T0 + 4.0));
    for tab in [&mut tab1, &mut tab2] {
        assert_eq!((doc_str(tab, "traits.a").as_deref(), doc_str(tab, "traits.b").as_deref()), (Some("1"), Some("2")));
        assert_eq!((count(tab, "Product Viewed"), count(tab, "Order Completed")), (1.0, 1.0));
    }
    // Their next writes agree: each holds the other's operations by its mark.
    let w1 = tab1.write(None, T0 + 5.0).unwrap();
    assert!(tab2.rebase(&w1, T0 + 5.0));
    assert_eq!((count(&tab2, "Product Viewed"), count(&tab2, "Order Completed")), (1.0, 1.0));
}

#[test]
fn set_aside_profiles_past_the_retention_are_dropped_at_load_and_written_again() {
    // A shared computer's earlier person who never logs in again: their set-aside profile (an
    // email kept with `storeEmail` included) left storage only at a later login or logout.
    let mut ks = engine(31);
    identify(&mut ks, T0, "ada@example.com", Map::new());
    ks.reset(T0 + 1.0);
    let stored = ks.take_aside().unwrap();
    identify(&mut ks, T0 + 10.0 * DAY, "bob@example.com", Map::new());
    ks.reset(T0 + 10.0 * DAY + 1.0);
    let both = ks.take_aside().unwrap();
    assert_eq!(Aside::from_value(&both).user_ids().count(), 2);
    // Loaded within the retention: nothing changes, nothing to write.
    let mut a = engine(32);
    a.load_aside(&stored);
    a.prune_aside(T0 + 89.0 * DAY);
    assert!(a.take_aside().is_none());
    // Past Ada's retention, not Bob's: Ada's goes, and the rest is written again.
    let mut b = engine(33);
    b.load_aside(&both);
    b.prune_aside(T0 + 91.0 * DAY);
    let left = Aside::from_value(&b.take_aside().expect("written again"));
    assert_eq!(left.user_ids().collect::<Vec<_>>(), [sha256_hex("bob@example.com").as_str()]);
}
