#![cfg(not(target_arch = "wasm32"))]
//! The profile natively: windows and retention of the minute buckets, their bound, sessions,
//! consent gating, events in the Segment spec shape, and the cross-tab journal (rebase onto
//! another tab's write, repair after a write made from a stale copy).
mod common;

use common::{json, to_json, NativeHost};
use keystone::core::buckets::{minute_of, window_start_minute, Counts, MAX_ENTRIES};
use keystone::core::keystone::{Keystone, Notice, Options};
use keystone::core::time::{parse_duration, DAY, MINUTE};
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;

fn ks(seed: u64, stored: Option<&Value>, now: f64) -> Keystone {
    Keystone::new(Options::default(), NativeHost::boxed(seed), stored, now)
}

fn count(k: &Keystone, name: &str) -> f64 {
    k.profile_document().path(&format!("events.{name}.count")).and_then(Value::as_num).unwrap_or(0.0)
}

#[test]
fn windows_are_exact_to_the_minute_for_every_duration() {
    for w in ["30m", "1h", "24h", "7d", "30d", "90d"] {
        let w = parse_duration(w).unwrap();
        let t = T0 + 12_345.0;
        let c = Counts::from_entries([(minute_of(t), 1)]);
        let held = |now: f64| c.count_since(window_start_minute(now, w));
        assert_eq!(held(t), 1);
        assert_eq!(held(t + w - MINUTE), 1, "still inside one minute before the end");
        assert_eq!(held(t + w + MINUTE), 0, "out one minute after");
    }
}

#[test]
fn compaction_keeps_totals_and_the_recent_half_exact() {
    let mut c = Counts::new();
    let base = minute_of(T0 - 90.0 * DAY);
    for i in 0..(3 * MAX_ENTRIES as u32) {
        c.add(base + i * 37, 1 + i % 3);
    }
    let total = c.total();
    let recent_from = base + (3 * MAX_ENTRIES as u32 - 500) * 37;
    let recent = c.count_since(recent_from);
    c.compact(MAX_ENTRIES);
    assert!(c.entries().len() <= MAX_ENTRIES, "{}", c.entries().len());
    assert_eq!(c.total(), total);
    assert_eq!(c.count_since(recent_from), recent, "recent windows stay exact");
    assert!(c.entries().windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique");
    // A window never under-counts: folded buckets are keyed by their last minute.
    for probe in [base + 1000, base + 20_000, base + 60_000] {
        let exact: u32 = (0..(3 * MAX_ENTRIES as u32)).filter(|i| base + i * 37 >= probe).map(|i| 1 + i % 3).sum();
        assert!(c.count_since(probe) >= exact);
    }
}

#[test]
fn duration_options_take_text_only() {
    for bad in [r#"{"retention":90}"#, r#"{"sessionTimeout":30}"#, r#"{"retention":"90"}"#, r#"{"sessionTimeout":"soon"}"#, r#"{"retention":true}"#] {
        let e = Options::from_value(&json(bad), false).err().unwrap_or_else(|| panic!("{bad} accepted"));
        assert_eq!(e.code, "invalid_argument", "{bad}");
    }
    assert!(Options::from_value(&json(r#"{"retention":"2w","sessionTimeout":"45m"}"#), false).is_ok());
}

#[test]
fn retention_drops_old_behaviour_on_load_and_on_write() {
    let opts = Options::from_value(&json(r#"{"retention":"7d"}"#), false).unwrap();
    let mut a = Keystone::new(opts.clone(), NativeHost::boxed(1), None, T0);
    a.track(T0, "Old", Map::new()).unwrap();
    a.track(T0 + 5.0 * DAY, "Newer", Map::new()).unwrap();
    let stored = a.write(None, T0 + 5.0 * DAY).unwrap();
    // On load, 8 days later: "Old" is gone, "Newer" stays.
    let b = Keystone::new(opts.clone(), NativeHost::boxed(2), Some(&stored), T0 + 8.0 * DAY);
    assert_eq!(count(&b, "Old"), 0.0);
    assert_eq!(count(&b, "Newer"), 1.0);
    // On write, 13 days later: "Newer" goes too (also from the ring).
    let mut c = Keystone::new(opts, NativeHost::boxed(3), Some(&stored), T0 + 8.0 * DAY);
    c.track(T0 + 13.0 * DAY, "Latest", Map::new()).unwrap();
    let v = c.write(None, T0 + 13.0 * DAY).unwrap();
    let text = serde_json::to_string(&to_json(&v)).unwrap();
    assert!(!text.contains("Newer") && !text.contains("\"Old\""), "{text}");
    assert!(text.contains("Latest"));
}

#[test]
fn retention_moves_first_at_to_the_first_event_kept_and_applies_in_an_open_page() {
    let opts = Options::from_value(&json(r#"{"retention":"1d"}"#), false).unwrap();
    let first_at = |k: &Keystone, name: &str| k.profile_document().path(&format!("events.{name}.firstAt")).cloned();
    let mut a = Keystone::new(opts.clone(), NativeHost::boxed(1), None, T0);
    a.track(T0 + 325.0, "A", Map::new()).unwrap();
    let kept = T0 + 12.0 * 3_600_000.0 + 333.0;
    a.track(kept, "A", Map::new()).unwrap();
    let stored = a.write(None, kept).unwrap();
    // Loaded 25 h after the first event: one "A" is kept, and its time is firstAt (from the ring).
    let later = T0 + 25.0 * 3_600_000.0;
    let b = Keystone::new(opts.clone(), NativeHost::boxed(2), Some(&stored), later);
    assert_eq!(count(&b, "A"), 1.0);
    assert_eq!(first_at(&b, "A"), Some(Value::from(keystone::core::time::iso(kept))));
    // A page left open past the retention: refresh() drops what left it.
    let mut c = Keystone::new(opts, NativeHost::boxed(3), Some(&stored), later);
    c.refresh(T0 + 37.0 * 3_600_000.0);
    assert_eq!(count(&c, "A"), 0.0);
    assert!(c.profile_document().path("events.A").is_none());
    // An event in the cutoff's minute, just before the cutoff: still counted (per minute), and
    // its firstAt is never after its lastAt.
    let mut d = Keystone::new(Options::from_value(&json(r#"{"retention":"1d"}"#), false).unwrap(), NativeHost::boxed(4), None, T0);
    d.track(T0 + 1_033.0, "B", Map::new()).unwrap();
    d.refresh(T0 + 86_400_000.0 + 30_000.0);
    let doc = d.profile_document();
    let (f, l) = (doc.path("events.B.firstAt").and_then(Value::as_str), doc.path("events.B.lastAt").and_then(Value::as_str));
    assert!(f.is_some() && f <= l, "{f:?} {l:?}");
}

#[test]
fn a_condition_on_the_documents_events_leaves_when_the_retention_drops_them() {
    let opts = Options::from_value(&json(r#"{"retention":"1d"}"#), false).unwrap();
    let defs = json(r#"{"version":1,"segments":[{"id":"old","condition":{"events.Old.count":{"$gte":1}}}]}"#);
    let t = T0 + 1_000.0;
    let mut a = Keystone::new(opts.clone(), NativeHost::boxed(5), None, T0);
    a.load_definitions(&defs, T0).unwrap();
    a.track(t, "Old", Map::new()).unwrap();
    assert!(a.in_segment("old"));
    a.take_notices();
    // The engine asks to be woken when the minute of "Old" leaves the retention, and then leaves.
    let due = a.next_check(t).expect("a check is due");
    assert_eq!(due, (minute_of(t) + 1) as f64 * MINUTE + DAY);
    a.refresh(due - 1.0);
    assert!(a.in_segment("old"));
    a.refresh(due);
    assert!(!a.in_segment("old") && a.profile_document().path("events.Old").is_none());
    assert_eq!(a.take_notices(), vec![Notice::Exit("old".into())]);
    assert_eq!(a.next_check(due), None);
    // A page whose timers stood still (a device asleep past it): after the next event the check
    // is due at once, and then the document agrees with the membership.
    let mut b = Keystone::new(opts, NativeHost::boxed(6), None, T0);
    b.load_definitions(&defs, T0).unwrap();
    b.track(t, "Old", Map::new()).unwrap();
    let woke = t + DAY + 2.0 * MINUTE;
    b.track(woke, "New", Map::new()).unwrap();
    assert!(b.next_check(woke).is_some_and(|at| at <= woke));
    b.refresh(woke);
    assert!(!b.in_segment("old"));
    assert!(b.next_check(woke).is_some_and(|at| at > woke));
    assert!(b.profile_document().path("events.Old").is_none());
    assert_eq!(count(&b, "New"), 1.0);
}

/// A tab left idle past the timeout, then hidden or closed: its `Page Engagement` report is
/// time already spent, no new visit (before, it started session 2, with no page view, and a
/// "returning visitor" segment on `session.count` entered for a first-time visitor).
#[test]
fn a_page_engagement_report_goes_on_with_its_visit_and_never_starts_one() {
    let mut k = ks(1, None, T0);
    k.page(T0, Map::new());
    let sess = |k: &Keystone, f: &str| k.profile_document().path(&format!("session.{f}")).and_then(Value::as_num).unwrap();
    let engaged = Map::new().with("seconds", 30.0);
    // Within the timeout: it continues the visit (its activity counts).
    k.track(T0 + 20.0 * MINUTE, "Page Engagement", engaged.clone()).unwrap();
    assert_eq!((sess(&k, "count"), sess(&k, "durationSec")), (1.0, 1200.0));
    // 40 minutes idle (timeout 30): recorded, in no new session.
    k.track(T0 + 60.0 * MINUTE, "Page Engagement", engaged).unwrap();
    assert_eq!((sess(&k, "count"), sess(&k, "pageviews")), (1.0, 1.0));
    assert_eq!(count(&k, "Page Engagement"), 2.0);
    // The next activity of the visitor is a new visit.
    k.track(T0 + 61.0 * MINUTE, "Clicked", Map::new()).unwrap();
    assert_eq!((sess(&k, "count"), sess(&k, "pageviews")), (2.0, 0.0));
}

/// A page left open past the retention, no definition reading `events`: the check is due when
/// the retention drops the event, and the refresh then drops it from the profile and writes the
/// profile without it (before, only the next write of an event did: the stored profile kept the
/// event's properties past the retention).
#[test]
fn past_the_retention_an_open_page_drops_the_data_from_the_profile_and_from_storage() {
    let mut k = Keystone::new(Options { retention: 2.0 * DAY, ..Options::default() }, NativeHost::boxed(5), None, T0);
    k.track(T0, "X", Map::new().with("secret", "s3cr3t")).unwrap();
    assert!(k.take_dirty().is_some());
    let at = k.next_check(T0 + 1000.0).expect("a check when the retention drops X");
    assert!(at > T0 + 2.0 * DAY && at <= T0 + 2.0 * DAY + 2.0 * MINUTE, "{at}");
    k.refresh(at - 1.0);
    assert_eq!(count(&k, "X"), 1.0, "not before");
    k.refresh(at);
    assert_eq!(count(&k, "X"), 0.0);
    let stored = k.take_dirty().expect("written again");
    assert!(!to_json(&stored).to_string().contains("s3cr3t"), "{}", to_json(&stored));
}

#[test]
fn sessions_follow_the_inactivity_timeout() {
    let mut k = ks(1, None, T0);
    // Before the first event no session has started: empty id and start, zero counts.
    let s0 = k.profile_document().get("session").cloned().unwrap();
    assert_eq!(s0.get("id"), Some(&Value::Str(String::new())));
    assert_eq!(s0.get("startedAt"), Some(&Value::Str(String::new())));
    assert_eq!(s0.get("count"), Some(&Value::Num(0.0)));
    k.page(T0, Map::new());
    k.track(T0 + 29.0 * MINUTE, "A", Map::new()).unwrap();
    let s = k.profile_document().get("session").cloned().unwrap();
    assert_eq!(s.get("count"), Some(&Value::Num(1.0)));
    assert_eq!(s.get("durationSec"), Some(&Value::Num(29.0 * 60.0)));
    k.page(T0 + 60.0 * MINUTE, Map::new());
    let s2 = k.profile_document().get("session").cloned().unwrap();
    assert_eq!(s2.get("count"), Some(&Value::Num(2.0)));
    assert_eq!(s2.get("pageviews"), Some(&Value::Num(1.0)));
    assert_ne!(s2.get("id"), s.get("id"));
}

#[test]
fn events_have_the_segment_spec_shape() {
    let mut k = ks(4, None, T0);
    k.set_context(json(
        r#"{"url":"https://shop.example/p?utm_source=news&utm_campaign=spring","path":"/p","search":"?utm_source=news&utm_campaign=spring","title":"P","referrer":"https://google.com/","utm":{"source":"news","medium":"","campaign":"spring","term":"","content":""},"language":"fr-FR","timezone":"Europe/Paris",
            "spec":{"page":{"path":"/p","search":"?utm_source=news&utm_campaign=spring"},"campaign":{"name":"spring","source":"news"},"locale":"fr-FR","timezone":"Europe/Paris","userAgent":"UA","library":{"name":"keystone-cdp","version":"0.1.0"}}}"#,
    ));
    assert!(k.profile_document().path("context.spec").is_none(), "the spec context stays out of the profile document");
    k.page(T0, Map::new());
    k.track(T0 + 1.0, "Order Completed", Map::new().with("revenue", 120.5).with("items", Value::Arr(vec![Value::Bool(true)]))).unwrap();
    k.set_traits(T0 + 2.0, Map::new().with("plan", "pro"));
    let out: Vec<serde_json::Value> = k.take_outbox().iter().map(|e| to_json(&e.to_spec())).collect();
    assert_eq!(out.len(), 3);
    let page = &out[0];
    assert_eq!(page["type"], "page");
    assert_eq!(page["properties"]["path"], "/p");
    assert_eq!(page["properties"]["referrer"], "https://google.com/");
    assert_eq!(page["context"]["page"]["search"], "?utm_source=news&utm_campaign=spring");
    assert_eq!(page["context"]["campaign"], serde_json::json!({"name": "spring", "source": "news"}));
    assert_eq!(page["context"]["locale"], "fr-FR");
    assert_eq!(page["context"]["timezone"], "Europe/Paris");
    assert_eq!(page["context"]["userAgent"], "UA");
    assert_eq!(page["context"]["library"]["name"], "keystone-cdp");
    assert_eq!(page["timestamp"], "2025-11-29T08:00:00.000Z");
    let track = &out[1];
    assert_eq!(track["event"], "Order Completed");
    assert_eq!(track["properties"], serde_json::json!({"revenue": 120.5, "items": [true]}));
    assert_ne!(track["messageId"], page["messageId"]);
    let identify = &out[2];
    assert_eq!(identify["type"], "identify");
    assert_eq!(identify["traits"], serde_json::json!({"plan": "pro"}));
    assert_eq!(identify["anonymousId"].as_str(), Some(k.anonymous_id()));
    assert_eq!(identify["userId"], serde_json::Value::Null);
}

#[test]
fn opt_in_keeps_nothing_and_creates_no_id_until_consent() {
    let opts = Options::from_value(&json(r#"{"consent":"opt-in"}"#), false).unwrap();
    let mut k = Keystone::new(opts, NativeHost::boxed(1), None, T0);
    k.page(T0, Map::new());
    k.track(T0, "Before", Map::new()).unwrap();
    assert_eq!(k.anonymous_id(), "");
    k.reset(T0);
    assert_eq!(k.anonymous_id(), "", "reset() before consent makes no id either");
    assert!(k.take_outbox().is_empty());
    assert!(k.write(None, T0).is_none());
    k.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 1.0).unwrap();
    assert_eq!(k.anonymous_id().len(), 36);
    k.track(T0 + 2.0, "After", Map::new()).unwrap();
    assert_eq!(count(&k, "Before"), 0.0);
    assert_eq!(count(&k, "After"), 1.0);
    assert!(k.write(None, T0 + 3.0).is_some(), "written once granted");
    let granted_id = k.anonymous_id().to_string();
    k.forget(T0 + 4.0);
    assert_eq!(k.anonymous_id(), "");
    k.reset(T0 + 4.5);
    assert_eq!(k.anonymous_id(), "", "nor after forget()");
    k.track(T0 + 5.0, "Gone", Map::new()).unwrap();
    assert!(k.write(None, T0 + 6.0).is_none());
    assert!(k.take_outbox().is_empty());
    k.set_consent(&json(r#"{"analytics":true,"personalization":true}"#), T0 + 7.0).unwrap();
    assert_eq!(k.anonymous_id().len(), 36);
    assert_ne!(k.anonymous_id(), granted_id, "a new id once consent is granted again");
}

#[test]
fn gpc_keeps_marketing_off() {
    let opts = Options::from_value(&Value::Null, true).unwrap();
    let mut k = Keystone::new(opts, NativeHost::boxed(1), None, T0);
    k.set_consent(&json(r#"{"marketing":true}"#), T0).unwrap();
    assert!(!k.consent().marketing);
    assert!(k.set_consent(&json(r#"{"marketing":"yes"}"#), T0).is_err());
}

/// Two tabs over one storage slot. `a` and `b` track at once; `b` writes from a copy that lacks
/// `a`'s last write (a lagging cache). `a` sees `b`'s write, notices its operations are missing,
/// re-applies them and writes again: no count is lost and both converge.
#[test]
fn tabs_rebase_and_repair_a_write_from_a_stale_copy() {
    let mut a = ks(1, None, T0);
    let s0 = a.write(None, T0).unwrap();
    let mut b = ks(2, Some(&s0), T0 + 10.0);
    assert_eq!(a.anonymous_id(), b.anonymous_id());
    for i in 0..5 {
        a.track(T0 + 100.0 + i as f64, "Tick", Map::new()).unwrap();
        b.track(T0 + 100.0 + i as f64, "Tick", Map::new()).unwrap();
    }
    let s1 = a.write(Some(&s0), T0 + 200.0).unwrap(); // a: 5 ticks stored
    assert_eq!(count(&a, "Tick"), 5.0);
    // b writes from the stale s0 (it did not see s1): the stored form now lacks a's ticks.
    let s2 = b.write(Some(&s0), T0 + 210.0).unwrap();
    assert_eq!(count(&b, "Tick"), 5.0);
    let _ = s1;
    // a receives the storage event for s2: rebase re-applies its 5 ticks and wants to write.
    assert!(a.rebase(&s2, T0 + 220.0));
    assert_eq!(count(&a, "Tick"), 10.0);
    assert!(a.dirty());
    let s3 = a.write(Some(&s2), T0 + 230.0).unwrap();
    // b receives s3: it holds b's ticks already, nothing to re-apply.
    assert!(b.rebase(&s3, T0 + 240.0));
    assert_eq!(count(&b, "Tick"), 10.0);
    assert!(!b.dirty());
    // The sessions agree too: one session, page views of both tabs.
    let sa = a.profile_document().get("session").cloned();
    let sb = b.profile_document().get("session").cloned();
    assert_eq!(sa, sb);
}

#[test]
fn a_tab_adopts_the_identity_another_tab_wrote() {
    // Two tabs that started together with no stored profile (a lagging cache): each made an id.
    let mut a = ks(1, None, T0);
    let mut b = ks(2, None, T0);
    assert_ne!(a.anonymous_id(), b.anonymous_id());
    a.track(T0 + 1.0, "A", Map::new()).unwrap();
    let sb = b.write(None, T0 + 2.0).unwrap();
    assert!(a.rebase(&sb, T0 + 3.0));
    assert_eq!(a.anonymous_id(), b.anonymous_id(), "converged on one id");
    assert_eq!(count(&a, "A"), 1.0, "and kept its own events");
}

/// A stored session at the top of its counters' range (only tampered storage gets there):
/// further page views and sessions saturate instead of overflowing (a panic would trap the
/// engine). (Found while fuzzing the stored-profile decoder.)
#[test]
fn session_counters_saturate_at_their_ceiling() {
    let mut k = ks(1, None, T0);
    k.page(T0, Map::new());
    let mut stored = k.take_dirty().unwrap();
    let max = f64::from(u32::MAX) - 1.0; // the largest the decoder accepts
    if let Value::Obj(m) = &mut stored {
        m.insert("sess", Value::Arr(vec!["s1".into(), Value::Num(max), Value::Num(max), Value::Num(T0), Value::Num(T0)]));
    }
    let mut k = ks(2, Some(&stored), T0);
    let session = |k: &Keystone, key: &str| k.profile_document().path(&format!("session.{key}")).and_then(Value::as_num);
    k.page(T0 + MINUTE, Map::new());
    k.page(T0 + 2.0 * MINUTE, Map::new());
    assert_eq!(session(&k, "pageviews"), Some(f64::from(u32::MAX)));
    assert_eq!(session(&k, "count"), Some(max));
    k.page(T0 + 120.0 * MINUTE, Map::new());
    k.page(T0 + 240.0 * MINUTE, Map::new());
    assert_eq!(session(&k, "count"), Some(f64::from(u32::MAX)));
    assert_eq!(session(&k, "pageviews"), Some(1.0));
}

#[test]
fn sessions_still_time_out_after_the_clock_is_set_back() {
    let mut k = ks(1, None, T0);
    let sess = |k: &Keystone, f: &str| k.profile_document().path(&format!("session.{f}")).cloned().unwrap();
    k.track(T0, "A", Map::new()).unwrap();
    k.track(T0 + 5.0 * MINUTE, "A", Map::new()).unwrap();
    let first = sess(&k, "id");
    // The device's clock is set back 3 hours (a correction): the visit goes on.
    let back = 180.0 * MINUTE;
    k.track(T0 + 10.0 * MINUTE - back, "B", Map::new()).unwrap();
    assert_eq!(sess(&k, "id"), first);
    assert_eq!(sess(&k, "count"), Value::Num(1.0));
    assert_eq!(sess(&k, "durationSec"), Value::Num(300.0));
    // Its duration goes on from the set-back moment, rather than standing at 0 for 3 hours.
    k.track(T0 + 20.0 * MINUTE - back, "B", Map::new()).unwrap();
    assert_eq!(sess(&k, "durationSec"), Value::Num(900.0));
    // 40 minutes of inactivity by the new clock end the session, as they would have before.
    k.track(T0 + 60.0 * MINUTE - back, "C", Map::new()).unwrap();
    assert_ne!(sess(&k, "id"), first);
    assert_eq!(sess(&k, "count"), Value::Num(2.0));
    assert_eq!(sess(&k, "durationSec"), Value::Num(0.0));
    // A tab's event applied a moment after a later one of another tab (journal order) is no
    // set-back: it changes nothing.
    k.track(T0 + 61.0 * MINUTE - back, "C", Map::new()).unwrap();
    k.track(T0 + 60.5 * MINUTE - back, "C", Map::new()).unwrap();
    assert_eq!(sess(&k, "count"), Value::Num(2.0));
    assert_eq!(sess(&k, "durationSec"), Value::Num(60.0));
}
