#![cfg(not(target_arch = "wasm32"))]
//! The delivery queue (DESIGN §8): bounds and drop accounting, when a flush is due, batches and
//! claims, outcomes (2xx / retry / refused / not sent), backoff with jitter and Retry-After,
//! the stored form and adoption of another page's queue, and the engine's consent gating.

mod common;

use common::{json, NativeHost};
use keystone::core::error::codes;
use keystone::core::keystone::{Keystone, Options};
use keystone::core::queue::{status, Config, Queue, BEACON_LIMIT, HEADER};

struct Batch {
    id: u32,
    events: String,
    count: usize,
}

fn claim(q: &mut Queue) -> Option<Batch> {
    q.claim().map(|(id, events)| Batch { id, count: ids(&events).len(), events })
}
use keystone::core::value::Map;

fn cfg(extra: &str) -> Config {
    let v = json(&format!(r#"{{"endpoint": "/v1/batch", "writeKey": "k"{extra}}}"#));
    Config::from_options(v.as_obj().unwrap())
}

fn ev(i: usize) -> String {
    format!(r#"{{"type":"track","event":"E","messageId":"m{i}"}}"#)
}

fn ids(events: &str) -> Vec<String> {
    let v = json(&format!("[{events}]"));
    v.as_arr().unwrap().iter().map(|e| e.get("messageId").unwrap().as_str().unwrap().to_string()).collect()
}

#[test]
fn options_and_defaults() {
    let c = Config::from_options(&Map::new());
    assert!(!c.enabled);
    assert_eq!((c.flush_at, c.interval, c.batch_bytes), (20.0, 5000.0, 65_536.0));
    let c = cfg("");
    assert!(c.enabled);
    let c = cfg(r#", "flushAt": 5, "flushInterval": 100, "maxBatchBytes": 1000000, "maxQueueEvents": 7, "retryBase": -1"#);
    assert_eq!((c.flush_at, c.interval, c.max_events, c.retry_base), (5.0, 100.0, 7.0, 1000.0));
    assert_eq!(c.batch_bytes, BEACON_LIMIT as f64, "a batch never exceeds the beacon limit");
    let empty = json(r#"{"endpoint": ""}"#);
    assert!(!Config::from_options(empty.as_obj().unwrap()).enabled);
}

#[test]
fn without_endpoint_nothing_is_queued() {
    let mut q = Queue::new(Config::from_options(&Map::new()));
    q.push(ev(1), 0.0);
    assert!(q.is_empty());
    assert_eq!(q.due(0.0), -1.0);
    assert_eq!(q.take_text(), None);
}

#[test]
fn bounded_by_count_oldest_dropped_first_and_each_drop_reported() {
    let mut q = Queue::new(cfg(r#", "maxQueueEvents": 3, "flushAt": 100"#));
    for i in 0..5 {
        q.push(ev(i), i as f64);
    }
    assert_eq!(q.len(), 3);
    assert_eq!(q.dropped(), 2);
    let errors = q.take_errors();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e.code == codes::QUEUE_OVERFLOW));
    let b = claim(&mut q).unwrap();
    assert_eq!(ids(&b.events), ["m2", "m3", "m4"]);
}

#[test]
fn bounded_by_bytes() {
    let one = ev(0).len();
    let mut q = Queue::new(cfg(&format!(r#", "maxQueueBytes": {}, "flushAt": 100"#, one * 4)));
    for i in 0..10 {
        q.push(ev(i), 0.0);
    }
    assert!(q.bytes() <= one * 4 + 1);
    assert_eq!(q.len() as u64 + q.dropped(), 10);
    assert!(q.len() >= 3);
}

#[test]
fn an_event_larger_than_a_batch_is_dropped_and_reported() {
    let mut q = Queue::new(cfg(""));
    let big = format!(r#"{{"type":"track","properties":{{"x":"{}"}}}}"#, "a".repeat(70_000));
    q.push(big, 0.0);
    assert!(q.is_empty());
    assert_eq!(q.take_errors()[0].code, codes::EVENT_TOO_LARGE);
}

#[test]
fn due_by_count_bytes_and_time() {
    let mut q = Queue::new(cfg(r#", "flushAt": 3, "flushInterval": 1000"#));
    assert_eq!(q.due(0.0), -1.0, "nothing waiting");
    q.push(ev(1), 100.0);
    assert_eq!(q.due(100.0), 1000.0);
    assert_eq!(q.due(600.0), 500.0);
    assert_eq!(q.due(5000.0), 0.0);
    q.push(ev(2), 200.0);
    q.push(ev(3), 300.0);
    assert_eq!(q.due(300.0), 0.0, "flushAt reached");

    let mut q = Queue::new(cfg(r#", "maxBatchBytes": 400, "flushAt": 100"#));
    q.push(ev(1), 0.0);
    assert!(q.due(0.0) > 0.0);
    for i in 2..10 {
        q.push(ev(i), 0.0);
    }
    assert_eq!(q.due(0.0), 0.0, "a full batch of bytes waits");
}

#[test]
fn batches_fit_the_byte_cap_and_claims_are_exclusive() {
    let mut q = Queue::new(cfg(r#", "maxBatchBytes": 500"#));
    for i in 0..20 {
        q.push(ev(i), 0.0);
    }
    let overhead = q.config().overhead;
    let a = claim(&mut q).unwrap();
    assert!(a.events.len() + overhead <= 500, "{}", a.events.len());
    assert_eq!(ids(&a.events).len(), a.count);
    assert_eq!(q.due(0.0), -1.0, "one batch in flight at a time");
    assert!(q.claim().is_none(), "one batch in flight at a time");
    q.settle(a.id, 200, 0.0, 0.0, 0.0);
    let b = claim(&mut q).unwrap();
    let (ia, ib) = (ids(&a.events), ids(&b.events));
    assert!(ia.iter().all(|m| !ib.contains(m)), "an accepted event is not sent again");
    assert_eq!(ia[0], "m0");
    assert_eq!(ib[0], format!("m{}", a.count));
}

#[test]
fn accepted_batches_leave_failed_ones_come_back_in_order() {
    let mut q = Queue::new(cfg(r#", "flushAt": 1"#));
    for i in 0..3 {
        q.push(ev(i), 0.0);
    }
    let b = claim(&mut q).unwrap();
    q.settle(b.id, 500, 0.0, 1000.0, 0.5);
    assert_eq!(q.len(), 3);
    assert_eq!(q.attempts(), 1);
    assert!(q.due(1000.0) > 0.0, "backing off");
    let again = claim(&mut q).unwrap();
    assert_eq!(ids(&again.events), ["m0", "m1", "m2"], "same events, same messageIds, same order");
    q.settle(again.id, 200, 0.0, 2000.0, 0.5);
    assert!(q.is_empty());
    assert_eq!(q.attempts(), 0);
    // A stale outcome (the events already gone) changes nothing.
    q.push(ev(9), 3000.0);
    q.settle(again.id, 500, 0.0, 3000.0, 0.5);
    assert_eq!(q.attempts(), 0);
}

#[test]
fn retryable_and_refused_statuses() {
    for (code, retried) in [(0, true), (429, true), (500, true), (503, true), (400, false), (401, false), (413, false)] {
        let mut q = Queue::new(cfg(""));
        q.push(ev(1), 0.0);
        let b = claim(&mut q).unwrap();
        q.settle(b.id, code, 0.0, 0.0, 0.0);
        assert_eq!(q.len() == 1, retried, "status {code}");
        let errors = q.take_errors();
        if retried {
            assert!(errors.is_empty());
        } else {
            assert_eq!(errors[0].code, codes::DELIVERY_REJECTED, "status {code}");
        }
    }
}

#[test]
fn not_sent_returns_events_without_penalty() {
    let mut q = Queue::new(cfg(r#", "flushAt": 1"#));
    q.push(ev(1), 0.0);
    let b = claim(&mut q).unwrap();
    q.settle(b.id, status::NOT_SENT, 0.0, 0.0, 0.0);
    assert_eq!((q.len(), q.attempts(), q.due(0.0)), (1, 0, 0.0));
}

#[test]
fn a_handed_off_batch_leaves_storage_but_returns_if_it_fails() {
    let mut q = Queue::new(cfg(r#", "flushAt": 2, "maxBatchBytes": 200"#));
    for i in 0..4 {
        q.push(ev(i), 0.0);
    }
    q.take_text();
    let b = claim(&mut q).unwrap();
    assert!(b.count < 4);
    q.settle(b.id, status::HANDED_OFF, 0.0, 0.0, 0.0);
    let stored = q.take_text().unwrap();
    assert_eq!(stored.lines().count(), 1 + 4 - b.count, "in-flight events are not stored");
    // The page is hidden: the rest leaves by beacon while the handed-off batch is in flight.
    let beacon = claim(&mut q).unwrap();
    assert!(ids(&beacon.events).iter().all(|m| !ids(&b.events).contains(m)));
    q.settle(beacon.id, 200, 0.0, 0.0, 0.0);
    assert_eq!(q.len(), 4 - b.count - beacon.count);
    let left = q.len();
    q.settle(b.id, 503, 0.0, 0.0, 0.0);
    assert_eq!(q.len(), left + b.count, "a failure brings them back");
    assert_eq!(q.take_text().unwrap().lines().count(), 1 + left + b.count);
    let again = claim(&mut q).unwrap();
    assert_eq!(again.events, b.events, "first, in order");
    q.settle(again.id, status::HANDED_OFF, 0.0, 0.0, 0.0);
    q.settle(again.id, 200, 0.0, 0.0, 0.0);
    assert_eq!(q.len(), left);
}

#[test]
fn exponential_backoff_with_jitter_and_retry_after() {
    let mut q = Queue::new(cfg(r#", "retryBase": 1000, "retryMax": 8000"#));
    q.push(ev(1), 0.0);
    let mut delays = Vec::new();
    for (n, r) in [0.0, 1.0, 0.0, 0.999, 0.0, 0.5].iter().enumerate() {
        let b = claim(&mut q).unwrap();
        q.settle(b.id, 503, 0.0, 0.0, *r);
        let d = q.due(0.0);
        delays.push(d);
        let full = (1000.0 * 2f64.powi(n as i32)).min(8000.0);
        assert!(d >= full / 2.0 && d <= full, "attempt {} delay {d} within [{}, {full}]", n + 1, full / 2.0);
    }
    assert_eq!(delays[0], 500.0);
    assert_eq!(delays[1], 2000.0);
    // Retry-After wins.
    let b = claim(&mut q).unwrap();
    q.settle(b.id, 429, 3000.0, 100.0, 0.0);
    assert_eq!(q.due(100.0), 3000.0);
    assert_eq!(q.due(3100.0), 0.0);
    q.retry_now();
    assert_eq!(q.due(100.0), 4900.0, "back to the normal schedule");
}

#[test]
fn stored_form_round_trips_and_adoption_puts_older_events_first() {
    let mut a = Queue::new(cfg(r#", "flushAt": 100"#));
    assert_eq!(a.take_text(), None, "unchanged");
    for i in 0..3 {
        a.push(ev(i), 0.0);
    }
    let text = a.take_text().unwrap();
    assert!(text.starts_with(HEADER));
    assert_eq!(text.lines().count(), 4);
    assert_eq!(a.take_text(), None);

    let mut b = Queue::new(cfg(r#", "flushAt": 100"#));
    b.push(ev(10), 50.0);
    b.adopt(&format!("{text}\nnot json\n{{truncated"));
    assert_eq!(b.len(), 4);
    assert_eq!(b.due(60.0), 0.0, "adopted events are due at once");
    let batch = claim(&mut b).unwrap();
    assert_eq!(ids(&batch.events), ["m0", "m1", "m2", "m10"]);
    b.adopt("something else\n{}");
    assert_eq!(b.len(), 4, "a foreign value is ignored");

    assert!(!a.take_erased());
    a.clear();
    assert_eq!(a.take_text().as_deref(), Some(""), "empty: the key is removed");
    assert!(a.take_erased(), "erased, not delivered");
    assert!(!a.take_erased());
}

fn engine(options: &str) -> Keystone {
    let opts = Options::from_value(&json(options), false).unwrap();
    Keystone::new(opts, NativeHost::boxed(7), None, 1_000_000.0)
}

#[test]
fn engine_gates_the_outbox_on_endpoint_and_consent() {
    let mut ks = engine(r#"{"endpoint": "/v1/batch"}"#);
    ks.track(1_000_001.0, "A", Map::new()).unwrap();
    let out = ks.take_outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name, "A");
    assert!(ks.queue().enabled());

    let mut ks = engine("{}");
    assert!(!ks.queue().enabled(), "no endpoint: the queue takes nothing");

    let mut ks = engine(r#"{"endpoint": "/v1/batch", "consent": "opt-in"}"#);
    ks.queue().push(ev(1), 0.0);
    ks.track(1_000_001.0, "A", Map::new()).unwrap();
    assert!(ks.take_outbox().is_empty(), "no analytics consent: nothing is queued");
    assert!(ks.queue().is_empty(), "and what was queued is erased");
}

#[test]
fn queue_errors_become_error_notices() {
    let mut ks = engine(r#"{"endpoint": "/v1/batch", "maxQueueEvents": 1}"#);
    ks.queue().push(ev(1), 0.0);
    ks.queue().push(ev(2), 0.0);
    let notices = ks.take_notices();
    assert!(notices.iter().any(|n| matches!(n, keystone::core::keystone::Notice::Error(e) if e.code == codes::QUEUE_OVERFLOW)));
}
