//! Shared native test support: a [`Host`] over Rust's std and the `regex` crate, with a seeded
//! random generator so tests are deterministic, and JSON helpers over serde_json.
#![allow(dead_code)]

use keystone::core::host::Host;
use keystone::core::value::{Map, Value};
use std::cell::Cell;

/// A deterministic native host. Regexes use the `regex` crate, which lacks look-around and
/// back-references: patterns using them report as invalid (JavaScript would accept them).
pub struct NativeHost {
    state: Cell<u64>,
}

impl NativeHost {
    pub fn new(seed: u64) -> NativeHost {
        NativeHost { state: Cell::new(seed ^ 0x9E37_79B9_7F4A_7C15) }
    }
    pub fn boxed(seed: u64) -> Box<dyn Host> {
        Box::new(NativeHost::new(seed))
    }
}

impl Host for NativeHost {
    fn regex_test(&self, pattern: &str, flags: &str, text: &str) -> Option<bool> {
        let mut p = String::new();
        if flags.contains('i') {
            p.push_str("(?i)");
        }
        p.push_str(pattern);
        regex::Regex::new(&p).ok().map(|re| re.is_match(text))
    }
    fn parse_number(&self, s: &str) -> f64 {
        let t = s.trim();
        if t.is_empty() {
            return 0.0;
        }
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return i64::from_str_radix(hex, 16).map(|n| n as f64).unwrap_or(f64::NAN);
        }
        match t {
            "Infinity" | "+Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ if t.contains("inf") || t.contains("nan") || t.contains("NaN") => f64::NAN,
            _ => t.parse::<f64>().unwrap_or(f64::NAN),
        }
    }
    fn format_number(&self, n: f64) -> String {
        if n.is_nan() {
            "NaN".into()
        } else if n.is_infinite() {
            if n > 0.0 { "Infinity".into() } else { "-Infinity".into() }
        } else if n == n.trunc() && n.abs() < 1e21 {
            format!("{}", n as i64)
        } else {
            format!("{}", n)
        }
    }
    fn lowercase(&self, s: &str) -> String {
        s.to_lowercase()
    }
    fn random_bytes(&self, out: &mut [u8]) {
        for b in out.iter_mut() {
            // splitmix64
            let mut z = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            self.state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

/// serde_json → core Value.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) => Value::Arr(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::Obj(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect::<Map>()),
    }
}

/// Parses JSON text into a core Value.
pub fn json(text: &str) -> Value {
    from_json(&serde_json::from_str(text).expect("valid JSON in test"))
}

/// core Value → serde_json (for readable assertions).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Num(n) => serde_json::Number::from_f64(*n).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Arr(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Obj(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// A profile's content in one canonical order (events by name, linked ids and exposures sorted,
/// traits by key): merge promises the same content whatever the argument order, not the same
/// key order.
#[allow(dead_code)]
pub fn canon_profile(p: &keystone::core::profile::Profile) -> keystone::core::profile::Profile {
    let mut c = p.clone();
    c.events.sort_by(|a, b| a.name.cmp(&b.name));
    c.linked.sort();
    c.activation.exposures.sort_by(|a, b| (&a.experience, &a.variant).cmp(&(&b.experience, &b.variant)));
    let mut keys: Vec<String> = p.traits.keys().cloned().collect();
    keys.sort();
    c.traits = keys.iter().map(|k| (k.clone(), p.traits.get(k).unwrap().clone())).collect();
    c.trait_times = keys.iter().filter_map(|k| p.trait_times.get(k).map(|t| (k.clone(), t.clone()))).collect();
    c
}

/// splitmix64: a small seeded generator for test data.
#[allow(dead_code)]
pub struct SplitMix(pub u64);

#[allow(dead_code)]
impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// An index below `n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.index(xs.len())]
    }
}

/// xorshift64: a small seeded generator for property tests.
#[allow(dead_code)]
pub struct XorShift(pub u64);

#[allow(dead_code)]
impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
