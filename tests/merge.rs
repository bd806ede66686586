#![cfg(not(target_arch = "wasm32"))]
//! Property tests of the profile merge (DESIGN §5): over profiles drawn by a seeded generator,
//! merge is commutative and associative, the empty profile is its identity element, and each
//! field follows its rule (counts add, firstSeen min, lastSeen max, traits last-writer-wins,
//! rings interleave by time within their bound).
mod common;

use keystone::core::buckets::{Counts, MAX_ENTRIES};
use keystone::core::merge::{link, merge, LINKED_MAX};
use keystone::core::profile::{EventStats, Profile, RecentEvent, Session, RING_MAX_EVENTS};
use keystone::core::value::{Map, Value};

const T0: f64 = 1_764_403_200_000.0;
const CASES: usize = 400;

use common::SplitMix as Rng;

/// A small trait or property value.
fn small_value(r: &mut Rng) -> Value {
    match r.below(5) {
        0 => Value::Null,
        1 => Value::Bool(r.below(2) == 0),
        2 => Value::Num(r.below(4) as f64),
        3 => Value::Str(r.pick(&["gold", "silver", "Paris"]).into()),
        _ => Value::Obj(Map::new().with("k", r.below(3) as f64)),
    }
}

const NAMES: &[&str] = &["Page Viewed", "Product Viewed", "Order Completed", "Product Added"];

fn gen(r: &mut Rng) -> Profile {
    gen_with(r, true)
}

/// `blobs`: some ring events carry a few KB of properties, so the ring's byte bound binds.
fn gen_with(r: &mut Rng, blobs: bool) -> Profile {
    if r.below(6) == 0 {
        return Profile::default();
    }
    let mut p = Profile::default();
    p.anonymous_id = r.pick(&["", "a1", "a2", "a3"]).into();
    p.user_id = [None, Some("u1".to_string()), Some("u2".to_string())][r.below(3) as usize].clone();
    p.epoch = r.below(4) as u32;
    for _ in 0..r.below(4) {
        let k = r.pick(&["tier", "city", "ltv", "vip"]);
        p.traits.insert(k, small_value(r));
        // Few distinct times, so ties (broken by value order) happen often.
        p.trait_times.insert(k, Value::Num(T0 + r.below(3) as f64 * 1000.0));
    }
    if r.below(3) > 0 {
        p.context = Value::Obj(Map::new().with("url", r.pick(&["/a", "/b", "/c"])));
    }
    if r.below(3) > 0 {
        p.first_seen = T0 + r.below(50) as f64 * 60_000.0;
        p.last_seen = p.first_seen + r.below(50) as f64 * 60_000.0;
    }
    if r.below(3) > 0 {
        let start = T0 + r.below(20) as f64 * 60_000.0;
        p.session = Session { id: r.pick(&["s1", "s2", "s3"]).into(), count: r.below(5) as u32 + 1, pageviews: r.below(9) as u32, started_at: start, last_activity: start + r.below(3) as f64 * 60_000.0 };
    }
    for name in NAMES {
        if r.below(2) == 0 {
            continue;
        }
        let entries: Vec<(u32, u32)> = (0..r.below(6)).map(|_| (29_406_720 + r.below(100) as u32, r.below(4) as u32 + 1)).collect();
        let first = T0 + r.below(10) as f64;
        p.events.push(EventStats { name: (*name).into(), counts: Counts::from_entries(entries), first, last: first + r.below(10) as f64 });
    }
    // Rings: sorted by (time, name), sometimes long or heavy enough that a merge hits the bounds.
    let n = match r.below(4) {
        0 => 0,
        1 => r.below(8),
        2 => RING_MAX_EVENTS as u64 / 2 + r.below(60),
        _ => r.below(30),
    };
    let mut ring: Vec<RecentEvent> = (0..n)
        .map(|_| {
            let mut props = Map::new().with("i", r.below(3) as f64);
            if blobs && r.below(20) == 0 {
                props.insert("blob", Value::Str("x".repeat(2000 + r.below(3000) as usize)));
            }
            RecentEvent { name: r.pick(NAMES).into(), ts: T0 + r.below(40) as f64 * 1000.0, props }
        })
        .collect();
    ring.sort_by(|a, b| a.ts.total_cmp(&b.ts).then(a.name.cmp(&b.name)).then_with(|| keystone::core::merge::cmp_value(&Value::Obj(a.props.clone()), &Value::Obj(b.props.clone()))));
    for e in ring {
        p.push_recent(e);
    }
    for _ in 0..r.below(3) {
        let (x, v) = (r.pick(&["hero", "footer"]), r.pick(&["gold", "default"]));
        p.activation.expose(x, v, T0 + r.below(100) as f64 * 60_000.0, 90.0 * 86_400_000.0);
        if r.below(2) == 0 {
            let s = [r.pick(&["s1", "s2"]).to_string()];
            p.activation.report(&s, &["s1".to_string(), "s2".to_string()]);
        }
    }
    for _ in 0..r.below(3) {
        link(&mut p.linked, r.pick(&["a1", "a2", "a3", "a4"]));
    }
    p
}

/// The same content in one canonical order: see `common::canon_profile`.
fn canon(p: &Profile) -> Profile {
    common::canon_profile(p)
}

#[test]
fn merge_is_commutative() {
    let mut r = Rng(1);
    for i in 0..CASES {
        let (a, b) = (gen(&mut r), gen(&mut r));
        assert!(canon(&merge(a.clone(), b.clone())) == canon(&merge(b.clone(), a.clone())), "case {i}");
    }
}

/// Associative under the ring's count bound. Under its byte bound (24 KB) it is not exactly:
/// when an intermediate merge drops a large event, a smaller older one can fit again later.
#[test]
fn merge_is_associative() {
    let mut r = Rng(2);
    for i in 0..CASES {
        let (a, b, c) = (gen_with(&mut r, false), gen_with(&mut r, false), gen_with(&mut r, false));
        assert!(canon(&merge(merge(a.clone(), b.clone()), c.clone())) == canon(&merge(a.clone(), merge(b.clone(), c.clone()))), "case {i}");
    }
}

#[test]
fn the_empty_profile_is_the_identity() {
    let mut r = Rng(3);
    let empty = Profile::default();
    for i in 0..CASES {
        let a = gen(&mut r);
        assert!(merge(a.clone(), empty.clone()) == a, "case {i}");
        assert!(canon(&merge(empty.clone(), a.clone())) == canon(&a), "case {i}");
    }
}

#[test]
fn fields_follow_their_rules() {
    let mut r = Rng(4);
    for _ in 0..CASES {
        let (a, b) = (gen(&mut r), gen(&mut r));
        let m = merge(a.clone(), b.clone());
        // Counts and buckets add.
        for name in NAMES {
            let total = |p: &Profile| p.stats(name).map_or(0, |s| s.counts.total());
            assert_eq!(total(&m), total(&a) + total(&b));
        }
        // firstSeen min (of those set), lastSeen max.
        let firsts: Vec<f64> = [a.first_seen, b.first_seen].into_iter().filter(|t| *t > 0.0).collect();
        let expect = if firsts.is_empty() { 0.0 } else { firsts.iter().cloned().fold(f64::INFINITY, f64::min) };
        assert_eq!(m.first_seen, expect);
        assert_eq!(m.last_seen, a.last_seen.max(b.last_seen));
        // Traits: the later write wins.
        for (k, v) in m.traits.iter() {
            let t = |p: &Profile| p.trait_times.get(k).and_then(Value::as_num);
            let winner = match (t(&a), t(&b)) {
                (Some(x), Some(y)) if x > y => a.traits.get(k),
                (Some(x), Some(y)) if y > x => b.traits.get(k),
                (Some(_), None) => a.traits.get(k),
                (None, Some(_)) => b.traits.get(k),
                _ => Some(v),
            };
            assert_eq!(Some(v), winner, "trait {k}");
        }
        // Sessions counted once each.
        assert_eq!(m.session.count, a.session.count + b.session.count);
        // Rings interleave by time within their bound and keep the newest.
        let ts: Vec<f64> = m.recent.iter().map(|e| e.ts).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "ring ordered by time");
        assert!(m.recent.len() <= RING_MAX_EVENTS);
        let newest = a.recent.iter().chain(b.recent.iter()).map(|e| e.ts).fold(f64::NEG_INFINITY, f64::max);
        if let Some(last) = m.recent.last() {
            assert_eq!(last.ts, newest);
        }
        if a.recent.len() + b.recent.len() <= RING_MAX_EVENTS && !m.recent.iter().any(|e| e.props.contains_key("blob")) {
            assert_eq!(m.recent.len(), a.recent.len() + b.recent.len(), "nothing dropped below the bound");
        }
        // Linked ids: the union, bounded.
        for id in a.linked.iter().chain(b.linked.iter()) {
            assert!(m.linked.contains(id));
        }
        assert!(m.linked.len() <= LINKED_MAX);
    }
}

#[test]
fn traits_are_last_writer_wins_by_time_not_by_argument_order() {
    let mut old = Profile::default();
    old.set_traits(&Map::new().with("tier", "silver").with("city", "Paris"), T0);
    let mut new = Profile::default();
    new.set_traits(&Map::new().with("tier", "gold"), T0 + 1.0);
    for m in [merge(old.clone(), new.clone()), merge(new, old)] {
        assert_eq!(m.traits.get("tier"), Some(&Value::Str("gold".into())));
        assert_eq!(m.traits.get("city"), Some(&Value::Str("Paris".into())));
    }
}

#[test]
fn linked_ids_are_a_bounded_union_oldest_dropped() {
    let mut list = Vec::new();
    for i in 0..LINKED_MAX + 5 {
        link(&mut list, &format!("id{i}"));
    }
    link(&mut list, "id10");
    assert_eq!(list.len(), LINKED_MAX);
    assert_eq!(list[0], "id5");
    assert_eq!(list.last().unwrap(), &format!("id{}", LINKED_MAX + 4));
}

/// Rings as the engine records them: in recording order, so several events of one millisecond
/// (a page view and a track) are not sorted by name, and a clock set back records an older
/// event after a newer one. The merged ring is the same whatever the argument order, and in
/// time order. (Found by the `merge` fuzz target.)
#[test]
fn rings_recorded_out_of_order_merge_the_same_either_way() {
    let mut a = Profile::new("a1".into(), T0);
    a.record("Product Viewed", T0, &Map::new().with("revenue", 0.0));
    a.record("Order Completed", T0, &Map::new().with("revenue", 10.0));
    a.record("Page Viewed", T0, &Map::new());
    a.record("Product Viewed", T0 + 60_000.0, &Map::new());
    a.record("Product Added", T0 - 5_000.0, &Map::new()); // the clock went back
    let mut b = Profile::new("a2".into(), T0);
    b.record("Order Completed", T0, &Map::new().with("revenue", 50.0));
    b.record("Product Viewed", T0, &Map::new().with("revenue", 0.0));
    let (ab, ba) = (merge(a.clone(), b.clone()), merge(b.clone(), a.clone()));
    assert_eq!(ab.recent, ba.recent);
    assert_eq!(ab.recent.len(), a.recent.len() + b.recent.len());
    assert!(ab.recent.windows(2).all(|w| w[0].ts <= w[1].ts), "merged ring in time order");
    // A ring merged with an empty one is kept as recorded.
    assert_eq!(merge(a.clone(), Profile::default()).recent, a.recent);
    assert_eq!(merge(Profile::default(), a.clone()).recent, a.recent);
}

/// A firstSeen that is not set (0) or is out of range (a tampered stored profile can hold a
/// negative one) merges the same whatever the argument order. (Found while fuzzing the merge.)
#[test]
fn unset_or_negative_first_seen_merges_the_same_either_way() {
    for (x, y) in [(-5.0, 0.0), (0.0, -5.0), (-5.0, -7.0), (-5.0, T0), (0.0, T0)] {
        let (mut a, mut b) = (Profile::default(), Profile::default());
        a.first_seen = x;
        b.first_seen = y;
        let (ab, ba) = (merge(a.clone(), b.clone()), merge(b.clone(), a.clone()));
        assert_eq!(ab.first_seen, ba.first_seen, "{x} {y}");
        let expect = if x > 0.0 || y > 0.0 { [x, y].into_iter().filter(|t| *t > 0.0).fold(f64::INFINITY, f64::min) } else { x.min(y) };
        assert_eq!(ab.first_seen, expect, "{x} {y}");
        assert_eq!(merge(a.clone(), Profile::default()).first_seen, x, "the empty profile is the identity");
    }
}

/// The per-minute counts of a login merge are the minute-wise sum of the two series (checked
/// against a map-based reference), for series that interleave minute by minute, that do not
/// overlap (in either order), that overlap in part or wholly, that saturate, and random ones, in
/// both argument orders; and so are they after what follows a merge in the profile, the
/// retention cut and the folding of series longer than `MAX_ENTRIES` into hours and days.
#[test]
fn minute_counts_merge_to_the_minute_wise_sum() {
    fn reference(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
        let mut m = std::collections::BTreeMap::new();
        for &(k, n) in a.iter().chain(b) {
            let e = m.entry(k).or_insert(0u32);
            *e = e.saturating_add(n);
        }
        m.into_iter().collect()
    }
    let base = 29_406_720u32;
    let run = |from: u32, step: u32, len: u32, n: u32| -> Vec<(u32, u32)> { (0..len).map(|i| (base + from + i * step, 1 + (i + n) % 4)).collect() };
    let mut cases: Vec<(Vec<(u32, u32)>, Vec<(u32, u32)>)> = vec![
        (run(0, 2, MAX_ENTRIES as u32, 0), run(1, 2, MAX_ENTRIES as u32, 1)),
        (run(0, 2, 700, 0), run(1, 2, 700, 3)),
        (run(0, 1, 100, 0), run(200, 1, 100, 1)),
        (run(0, 3, MAX_ENTRIES as u32, 2), run(10 * MAX_ENTRIES as u32, 1, MAX_ENTRIES as u32, 0)),
        (run(0, 1, 300, 0), run(150, 3, 300, 2)),
        (run(0, 5, 900, 1), run(0, 5, 900, 1)),
        (run(0, 1, 50, 0), vec![]),
        (vec![], vec![]),
        (vec![(base, u32::MAX - 1), (base + 2, 7)], vec![(base, 10), (base + 1, 1)]),
    ];
    let mut r = Rng(77);
    for _ in 0..60 {
        let pick = |r: &mut Rng| -> Vec<(u32, u32)> { (0..r.below(3000)).map(|_| (base + r.below(6000) as u32, r.below(5) as u32 + 1)).collect() };
        let (a, b) = (pick(&mut r), pick(&mut r));
        cases.push((Counts::from_entries(a).entries().to_vec(), Counts::from_entries(b).entries().to_vec()));
    }
    for (a, b) in &cases {
        for (x, y) in [(a, b), (b, a)] {
            let want = reference(x, y);
            let mut m = Counts::from_entries(x.iter().copied());
            m.merge(&Counts::from_entries(y.iter().copied()));
            assert_eq!(m.entries(), &want[..], "{} + {} entries", x.len(), y.len());
            assert_eq!(m.total(), want.iter().fold(0u32, |s, e| s.saturating_add(e.1)));
            // Through the profile merge, then its retention cut and folding.
            let cutoff = (base + 40) as f64 * 60_000.0;
            let prof = |e: &[(u32, u32)]| {
                let mut p = Profile::default();
                if !e.is_empty() {
                    p.events.push(EventStats { name: "Page Viewed".into(), counts: Counts::from_entries(e.iter().copied()), first: cutoff, last: cutoff });
                }
                p
            };
            let mut p = merge(prof(x), prof(y));
            p.prune(cutoff);
            let mut want = Counts::from_entries(want);
            want.prune(base + 40);
            want.compact(MAX_ENTRIES);
            match p.events.first() {
                Some(e) => assert_eq!(e.counts, want),
                None => assert!(want.entries().is_empty()),
            }
        }
    }
}
