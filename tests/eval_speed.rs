#![cfg(not(target_arch = "wasm32"))]
//! A native timing of the condition evaluator on the benchmark's own inputs (bench/data.mjs: the
//! 20 marketing conditions × generated profiles), per condition, with std::time. Not a test of
//! behaviour: ignored by default; run it with
//! `cargo test --release --test eval_speed -- --ignored --nocapture` (needs `node`).
mod common;

use common::{json, NativeHost};
use keystone::core::condition::{eval_condition, Ctx, Groups};
use keystone::core::host::Host;
use keystone::core::value::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

/// The native host with each regex compiled once (the browser's host caches them too), so the
/// figures are the evaluator's, not the `regex` crate's compiler's.
struct CachingHost {
    inner: NativeHost,
    regexes: RefCell<HashMap<(String, bool), Option<regex::Regex>>>,
    calls: RefCell<u64>,
}

impl Host for CachingHost {
    fn regex_test(&self, pattern: &str, flags: &str, text: &str) -> Option<bool> {
        *self.calls.borrow_mut() += 1;
        let key = (pattern.to_string(), flags == "i");
        let mut m = self.regexes.borrow_mut();
        let re = m.entry(key).or_insert_with(|| regex::Regex::new(&format!("{}{}", if flags == "i" { "(?i)" } else { "" }, pattern)).ok());
        re.as_ref().map(|r| r.is_match(text))
    }
    fn parse_number(&self, s: &str) -> f64 {
        *self.calls.borrow_mut() += 1;
        self.inner.parse_number(s)
    }
    fn format_number(&self, n: f64) -> String {
        *self.calls.borrow_mut() += 1;
        self.inner.format_number(n)
    }
    fn lowercase(&self, s: &str) -> String {
        *self.calls.borrow_mut() += 1;
        self.inner.lowercase(s)
    }
    fn random_bytes(&self, out: &mut [u8]) {
        self.inner.random_bytes(out)
    }
}

fn inputs(n: usize) -> Value {
    let script = format!(
        "import('./bench/data.mjs').then(m => console.log(JSON.stringify({{profiles: m.profiles({n}, 42), conditions: m.CONDITIONS, groups: m.savedGroups()}})))"
    );
    let out = std::process::Command::new("node").args(["--input-type=module", "-e", &script]).output().expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json(&String::from_utf8(out.stdout).unwrap())
}

#[test]
#[ignore]
fn time_the_benchmark_conditions_natively() {
    let n: usize = std::env::var("EVAL_PROFILES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let data = inputs(n);
    let docs = data.get("profiles").and_then(Value::as_arr).unwrap();
    let conds = data.get("conditions").and_then(Value::as_arr).unwrap();
    let groups = Groups::new(data.get("groups").and_then(Value::as_obj).cloned().unwrap());
    let host = CachingHost { inner: NativeHost::new(1), regexes: RefCell::new(HashMap::new()), calls: RefCell::new(0) };
    let cx = Ctx { groups: Some(&groups), host: &host };
    // Warm-up (and regex compilation).
    for c in conds {
        for d in docs.iter().take(200) {
            eval_condition(d, c, &cx);
        }
    }
    let rounds: usize = std::env::var("EVAL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut total = 0.0;
    for (i, c) in conds.iter().enumerate() {
        *host.calls.borrow_mut() = 0;
        let mut best = f64::INFINITY;
        let mut matched = 0;
        for _ in 0..rounds {
            let t0 = Instant::now();
            matched = docs.iter().filter(|d| eval_condition(d, c, &cx)).count();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let ns = best * 1e9 / docs.len() as f64;
        total += ns;
        let calls = *host.calls.borrow() as f64 / (rounds * docs.len()) as f64;
        println!("condition {i:2}: {ns:7.1} ns/eval, {matched:5} matches, {calls:.2} host calls/eval  {}", common::to_json(c));
    }
    println!("mean over the 20 conditions: {:.1} ns/eval ({:.2} M evals/s)", total / conds.len() as f64, conds.len() as f64 / total * 1e3);
}
