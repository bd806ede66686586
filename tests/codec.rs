#![cfg(not(target_arch = "wasm32"))]
//! The storage codec: round trips, the packed minute counts, the heavy-visitor size budget, and
//! a fuzz-style robustness test of the decoder over random, truncated and mutated inputs.
mod common;

use common::{json, to_json, NativeHost};
use keystone::core::buckets::Counts;
use keystone::core::codec::{decode, encode, pack, unpack, VERSION};
use keystone::core::keystone::{Keystone, Notice, Options, MAX_TRAITS_BYTES};
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;
const DAY: f64 = 86_400_000.0;

use common::XorShift as Rng;

fn stored_text(v: &Value) -> String {
    serde_json::to_string(&to_json(v)).unwrap()
}

#[test]
fn packed_counts_round_trip_random_series() {
    let mut r = Rng(0x5eed);
    for _ in 0..300 {
        let mut c = Counts::new();
        let mut m = (r.below(30_000_000)) as u32;
        for _ in 0..r.below(400) {
            let span = if r.below(4) == 0 { 200_000 } else { 90 };
            m = m.saturating_add(1 + r.below(span) as u32);
            let n = if r.below(3) == 0 { r.below(5000) as u32 } else { 0 };
            c.add(m, 1 + n);
        }
        let s = pack(&c);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "JSON-safe: {s}");
        assert_eq!(unpack(&s).as_ref(), Some(&c));
    }
    assert_eq!(unpack(""), Some(Counts::new()));
    for bad in ["A", "0!", "Z", "__________________", "a a"] {
        assert_eq!(unpack(bad), None, "{bad}");
    }
}

#[test]
fn encode_decode_round_trip() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(3), None, T0);
    ks.set_context(json(r#"{"url":"https://shop.example/p?utm_source=news","path":"/p","utm":{"source":"news"}}"#));
    ks.page(T0, Map::new());
    ks.track(T0 + 60_000.0, "Product Viewed", Map::new().with("price", 12.5).with("tags", Value::Arr(vec!["a".into(), Value::Null]))).unwrap();
    ks.track(T0 + 61_000.0, "Product Viewed", Map::new()).unwrap();
    ks.set_traits(T0 + 62_000.0, Map::new().with("plan", "pro"));
    let v = ks.write(None, T0 + 63_000.0).expect("dirty");
    assert_eq!(v.get("v"), Some(&Value::Num(VERSION)));
    let (p, errors) = decode(&v);
    assert!(errors.is_empty(), "{errors:?}");
    let p = p.unwrap();
    assert_eq!(p.anonymous_id, ks.anonymous_id());
    assert_eq!(p.stats("Product Viewed").unwrap().counts.total(), 2);
    assert_eq!(p.session.pageviews, 1);
    assert_eq!(p.traits.get("plan"), Some(&Value::Str("plan".replace("plan", "pro"))));
    assert_eq!(p.recent.len(), 3);
    assert_eq!(p.recent[1].props.get("price"), Some(&Value::Num(12.5)));
    // Encoding the decoded profile gives the same stored form (stable, idempotent).
    assert_eq!(stored_text(&encode(&p)), stored_text(&v));
}

#[test]
fn heavy_visitor_fits_in_64_kb() {
    // 10,000 events over 90 days, 12 event names, realistic properties.
    let names = [
        "Page Viewed", "Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed",
        "Search", "Scroll Depth", "Page Engagement", "Newsletter Signup", "Coupon Applied", "Product Removed",
    ];
    let start = T0 - 90.0 * DAY + 60_000.0;
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(9), None, start);
    let mut r = Rng(42);
    let mut t = start;
    for i in 0..10_000u32 {
        t += (r.below(2 * 77_760) * 10) as f64 + 1.0; // ≈ 90 days / 10,000 on average, in bursts
        if t > T0 {
            t = T0;
        }
        let name = names[(r.below(names.len() as u64)) as usize];
        let props = Map::new()
            .with("sku", Value::Str(format!("SKU-{:05}", r.below(99_999))))
            .with("category", ["shoes", "shirts", "bags", "hats"][(i % 4) as usize])
            .with("price", (r.below(20_000) as f64) / 100.0)
            .with("url", Value::Str(format!("https://shop.example/products/item-{}", r.below(5000))));
        ks.track(t, name, props).unwrap();
    }
    let v = ks.write(None, T0).unwrap();
    let text = stored_text(&v);
    let total: u32 = {
        let (p, _) = decode(&v);
        p.unwrap().events.iter().map(|e| e.counts.total()).sum()
    };
    println!("heavy visitor: 10,000 events over 90 days → {} bytes stored ({} counted)", text.len(), total);
    assert_eq!(total, 10_000, "no event lost by packing (all within retention)");
    assert!(text.len() <= 64 * 1024, "stored profile is {} bytes", text.len());
}

#[test]
fn text_that_is_not_json_is_reported() {
    let (p, errors) = decode(&Value::Str(r#"{"v":2,"aid":"0b7e1a52-3c4d-4e5f"#.into()));
    assert!(p.is_none());
    assert_eq!(errors[0].code, "storage_corrupt");
}

#[test]
fn future_foreign_and_partial_data_keep_what_is_valid() {
    let id = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
    let (p, e) = decode(&json(&format!(r#"{{"v":99,"aid":"{id}","whatever":[1]}}"#)));
    assert_eq!(p.unwrap().anonymous_id, id);
    assert_eq!(e[0].code, "storage_corrupt");
    let (p, e) = decode(&json(r#"{"hello":"world"}"#));
    assert!(p.is_none());
    assert_eq!(e.len(), 1);
    // One bad event entry: the others and everything else are kept.
    let (p, e) = decode(&json(&format!(
        r#"{{"v":2,"aid":"{id}","first":1,"last":2,"traits":{{"t":1}},"ev":[["A",1,2,"2"],["B",1,2,"!"],["C",1,2,7]],"recent":[["A",1,{{}}],"junk"],"sess":["s",1,"x",1,2]}}"#
    )));
    let p = p.unwrap();
    assert_eq!(p.events.len(), 1);
    assert_eq!(p.recent.len(), 1);
    assert_eq!(p.traits.get("t"), Some(&Value::Num(1.0)));
    assert_eq!(p.session.id, "", "a malformed session is reset");
    // Said twice: the events dropped, the session reset.
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn a_bad_id_alone_keeps_the_identity_traits_and_events_and_the_cookie_id_takes_its_place() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(8), None, T0);
    ks.identify(T0, "ann@example.com", Map::new().with("tier", "gold"), &Value::Null).unwrap();
    ks.track(T0 + 1.0, "Order Completed", Map::new()).unwrap();
    let cookie_id = ks.anonymous_id().to_string();
    let uid = ks.user_id().unwrap().to_string();
    let mut v = ks.take_dirty().unwrap();
    for bad in [Value::Str(format!("{cookie_id} ")), Value::Str("0b7e1a52-3c4d".into()), Value::Num(5.0), Value::Str(String::new())] {
        if let Value::Obj(m) = &mut v {
            m.insert("aid", bad);
        }
        let (p, e) = decode(&v);
        let p = p.expect("kept");
        assert_eq!(p.user_id.as_deref(), Some(uid.as_str()));
        assert_eq!(p.traits.get("tier"), Some(&Value::Str("gold".into())));
        assert!(p.stats("Order Completed").is_some());
        assert_eq!((e.len(), e[0].code), (1, "storage_corrupt"));
        // The engine: the id cookie's id (the same visitor), everything else as stored.
        let mut again = Keystone::new(Options::default(), NativeHost::boxed(9), Some(&v), T0 + 5.0);
        again.adopt_anonymous_id(&cookie_id, false);
        assert_eq!(again.anonymous_id(), cookie_id);
        assert_eq!(again.user_id(), Some(uid.as_str()));
        // Without a cookie: a new valid id.
        let fresh = Keystone::new(Options::default(), NativeHost::boxed(10), Some(&v), T0 + 5.0);
        assert_eq!(fresh.anonymous_id().len(), 36);
        assert_eq!(fresh.user_id(), Some(uid.as_str()));
    }
}

#[test]
fn fields_of_the_wrong_type_and_impossible_times_are_reset_and_reported() {
    let id = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
    for field in [r#""traits":"oops""#, r#""traits":[1,2]"#, r#""ev":{"a":1}"#, r#""sess":"x""#, r#""sess":["s",-5,-7,1,2]"#, r#""sess":["s",1e308,1,1,2]"#, r#""sess":["s",1,1,-1,2]"#, r#""uid":5"#, r#""first":-1e20"#, r#""last":9e15"#] {
        let (p, e) = decode(&json(&format!(r#"{{"v":2,"aid":"{id}",{field}}}"#)));
        let p = p.unwrap();
        assert_eq!(p.anonymous_id, id, "{field}");
        assert_eq!(e.len(), 1, "{field}: {e:?}");
        assert_eq!(e[0].code, "storage_corrupt");
        assert!(p.first_seen >= 0.0 && p.first_seen <= 8.64e15 && p.last_seen <= 8.64e15, "{field}");
    }
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(11), Some(&json(&format!(r#"{{"v":2,"aid":"{id}","first":-1e20,"last":9e15}}"#))), T0);
    let doc = to_json(&ks.profile_document());
    assert_eq!(doc["firstSeen"].as_str().unwrap().len(), 24, "a real ISO date: {}", doc["firstSeen"]);
    ks.track(T0, "A", Map::new()).unwrap();
}

/// Negative or impossible session counts are damage, not 0: reported, and the session reset
/// whole, so the visitor's next activity starts a session counted from 1 (kept as they were,
/// `session.count` stayed 0 through that session).
#[test]
fn a_damaged_session_is_reported_and_the_next_activity_starts_one_counted_from_one() {
    let id = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
    let stored = json(&format!(r#"{{"v":2,"aid":"{id}","first":{T0},"last":{T0},"sess":["s",-5,-7,{T0},{T0}]}}"#));
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(12), Some(&stored), T0);
    let codes: Vec<_> = ks.take_notices().into_iter().filter_map(|n| if let Notice::Error(e) = n { Some(e.code) } else { None }).collect();
    assert_eq!(codes, ["storage_corrupt"]);
    ks.track(T0 + 1000.0, "A", Map::new()).unwrap();
    let doc = to_json(&ks.profile_document());
    assert_eq!((doc["session"]["count"].as_f64(), doc["session"]["pageviews"].as_f64()), (Some(1.0), Some(0.0)), "{}", doc["session"]);
    assert_ne!(doc["session"]["id"], "s");
}

#[test]
fn stored_traits_over_the_bound_are_dropped_and_reported_the_others_kept() {
    let id = "0b7e1a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b";
    let big = "x".repeat(3_000_000);
    let text = format!(r#"{{"v":2,"aid":"{id}","traits":{{"plan":"pro","blob":"{big}","n":1}},"tt":{{"plan":5,"blob":6}}}}"#);
    let (p, e) = decode(&json(&text));
    let p = p.unwrap();
    assert_eq!((e.len(), e[0].code), (1, "storage_corrupt"), "{e:?}");
    assert_eq!(p.traits.keys().collect::<Vec<_>>(), ["plan", "n"]);
    assert_eq!(p.trait_times.keys().collect::<Vec<_>>(), ["plan"]);
    // At the bound, kept as is.
    let at = format!(r#"{{"v":2,"aid":"{id}","traits":{{"a":"{}"}}}}"#, "y".repeat(MAX_TRAITS_BYTES - 8));
    let (p, e) = decode(&json(&at));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(p.unwrap().traits.approx_size(), MAX_TRAITS_BYTES);
}

/// Fuzz-style: random bytes, truncations and mutations of a valid stored profile never panic.
#[test]
fn decoder_never_panics_on_hostile_input() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(5), None, T0);
    for i in 0..40 {
        ks.track(T0 + i as f64 * 97_000.0, ["A", "B", "C"][i % 3], Map::new().with("i", i as f64)).unwrap();
    }
    let good = stored_text(&ks.write(None, T0 + 5_000_000.0).unwrap());
    let mut r = Rng(7);
    let alphabet: Vec<char> = "{}[]\",:0123456789abcvwxyzAZ_-.eE+ nulltruefalse\\".chars().collect();
    let mut decoded = 0;
    for round in 0..1200 {
        let text: String = match round % 3 {
            0 => good.chars().take(r.below(good.len() as u64) as usize).collect(),
            1 => {
                let mut s: Vec<char> = good.chars().collect();
                for _ in 0..1 + r.below(6) {
                    let at = r.below(s.len() as u64) as usize;
                    s[at] = alphabet[r.below(alphabet.len() as u64) as usize];
                }
                s.into_iter().collect()
            }
            _ => (0..r.below(200)).map(|_| alphabet[r.below(alphabet.len() as u64) as usize]).collect(),
        };
        let value = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => common::from_json(&v),
            Err(_) => Value::Str(text),
        };
        let (p, _) = decode(&value);
        if p.is_some() {
            decoded += 1;
        }
        // Whatever came back can be used: a fresh engine starts from it without panicking.
        let mut k = Keystone::new(Options::default(), NativeHost::boxed(round), Some(&value), T0 + 6_000_000.0);
        k.track(T0 + 6_000_000.0, "X", Map::new()).unwrap();
        assert!(k.write(Some(&value), T0 + 6_000_001.0).is_some());
    }
    assert!(decoded > 10, "some mutations of a valid profile keep something ({decoded})");
}

#[test]
fn another_tabs_write_with_a_bad_id_is_not_adopted() {
    let mut ks = Keystone::new(Options::default(), NativeHost::boxed(12), None, T0);
    ks.track(T0, "A", Map::new()).unwrap();
    let id = ks.anonymous_id().to_string();
    let mut v = ks.take_dirty().unwrap();
    if let Value::Obj(m) = &mut v {
        m.insert("aid", Value::Str("not-a-uuid".into()));
    }
    assert!(!ks.rebase(&v, T0 + 1.0), "unusable: this tab keeps its own");
    assert_eq!(ks.anonymous_id(), id);
}
