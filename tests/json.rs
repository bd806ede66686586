#![cfg(not(target_arch = "wasm32"))]
//! The core's JSON reader and writer (the boundary for large documents) against serde_json.
mod common;

use common::{from_json, to_json, NativeHost};
use keystone::core::json::{parse, write};
use keystone::core::value::Value;

fn host() -> NativeHost {
    NativeHost::new(1)
}

#[test]
fn reads_what_serde_reads() {
    let texts = [
        r#"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-12.5,"g":1e3,"h":"\u00e9\ud83d\ude00\n\t\"\\\/"}"#,
        r#"[0,-0,1.5e-7,123456789012345,1234567890123456789,9007199254740993,-3.25E+2]"#,
        r#"  {"dup":1,"x":2,"dup":3}  "#,
        r#""plain""#,
        "[]",
        "{}",
        r#"{"__proto__":{"polluted":true}}"#,
        "\"caf\u{e9} \u{1f600}\"",
    ];
    let h = host();
    for t in texts {
        let mine = parse(t, &h, 64).unwrap_or_else(|e| panic!("{t}: {}", e.message));
        let theirs = from_json(&serde_json::from_str::<serde_json::Value>(t).unwrap());
        assert_eq!(to_json(&mine), to_json(&theirs), "{t}");
    }
}

#[test]
fn rejects_malformed_text_with_a_stable_code() {
    let h = host();
    for t in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"a", "\"\u{1}\"", "{\"a\":1}x", "\"\\x\"", "\"\\u12\"", "NaN", "[1 2]"] {
        let e = parse(t, &h, 64).expect_err(t);
        assert_eq!(e.code, "invalid_argument", "{t}");
    }
}

#[test]
fn depth_is_bounded() {
    let h = host();
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    assert!(parse(&deep(64), &h, 64).is_ok());
    assert!(parse(&deep(66), &h, 64).is_err());
    // 100,000 levels: an error, not a stack overflow.
    assert!(parse(&deep(100_000), &h, 64).is_err());
}

#[test]
fn lone_surrogates_become_replacement_characters() {
    let h = host();
    assert_eq!(parse(r#""a\ud800b""#, &h, 8).unwrap(), Value::Str("a\u{fffd}b".into()));
    assert_eq!(parse(r#""\udc00""#, &h, 8).unwrap(), Value::Str("\u{fffd}".into()));
    assert_eq!(parse(r#""\ud800\u0041""#, &h, 8).unwrap(), Value::Str("\u{fffd}A".into()));
}

#[test]
fn writes_what_serde_writes_and_round_trips() {
    let h = host();
    let texts = [
        r#"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-12.5,"g":1000,"s":"q\"b\\n\n\r\t\u0001\u001f\u0008\u000c é 😀"}"#,
        r#"[0,-1,9007199254740992,-9007199254740992,0.1,-2.5,12345678901234567,123.456]"#,
    ];
    for t in texts {
        let v = parse(t, &h, 64).unwrap();
        let out = write(&v, &h);
        let reparsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(from_json(&reparsed), v, "{out}");
        assert_eq!(parse(&out, &h, 64).unwrap(), v);
    }
    // Non-finite numbers print as null, like JSON.stringify; -0 as 0.
    let v = Value::Arr(vec![Value::Num(f64::NAN), Value::Num(f64::INFINITY), Value::Num(-0.0), Value::Num(-7.0)]);
    assert_eq!(write(&v, &h), "[null,null,0,-7]");
    // Control characters are escaped as JSON.stringify does.
    assert_eq!(write(&Value::Str("\u{1}\u{8}\n\"".into()), &h), r#""\u0001\b\n\"""#);
}

/// A host that must not be asked to read numbers.
struct NoNumberHost(NativeHost);
impl keystone::core::host::Host for NoNumberHost {
    fn regex_test(&self, p: &str, f: &str, t: &str) -> Option<bool> {
        self.0.regex_test(p, f, t)
    }
    fn parse_number(&self, s: &str) -> f64 {
        panic!("the host was asked to read {s:?}")
    }
    fn format_number(&self, n: f64) -> String {
        self.0.format_number(n)
    }
    fn random_bytes(&self, out: &mut [u8]) {
        self.0.random_bytes(out)
    }
}

/// Decimals of up to 15 digits without exponent (prices, amounts) are read in the core, to the
/// same double as a correctly rounding reader (Rust's, JavaScript's `Number()`), -0.0 included.
#[test]
fn short_decimals_are_read_exactly_without_the_host() {
    let h = NoNumberHost(host());
    let mut g = common::XorShift(0x5eed);
    let mut texts: Vec<String> = ["0.1", "-0.0", "0.0", "129.99", "-2.5", "0.00000000000001", "99999999999999.9", "1.00000000000000", "9.87654321012345", "0.30000000000000"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for _ in 0..20_000 {
        let digits = 1 + g.below(15) as usize;
        let point = 1 + g.below(digits as u64) as usize;
        let mut t = String::new();
        if g.below(4) == 0 {
            t.push('-');
        }
        for i in 0..digits {
            if i == point {
                t.push('.');
            }
            let d = if i == 0 && point > 1 { 1 + g.below(9) } else { g.below(10) };
            t.push((b'0' + d as u8) as char);
        }
        if point == digits {
            t.push_str(".5");
            if digits == 15 {
                t.remove(t.len() - 3);
            }
        }
        texts.push(t);
    }
    for t in &texts {
        let want: f64 = t.parse().unwrap();
        match parse(t, &h, 4) {
            Ok(Value::Num(n)) => assert!(n.to_bits() == want.to_bits(), "{t}: {n:?} != {want:?}"),
            other => panic!("{t}: {other:?}"),
        }
    }
}

/// A key written twice is read once, in its first place with its last value (as `JSON.parse`
/// and serde_json read it) when its first place is among the object's first 64 keys; an object
/// of 100,000 keys reads in linear time (each key was looked for among all before it: about
/// 5·10⁹ comparisons, seconds of a frozen page in the browser).
#[test]
fn keys_written_twice_and_wide_objects() {
    let h = host();
    let mut t = String::from("{");
    for i in 0..100 {
        t += &format!("\"k{i}\":{i},");
    }
    t += "\"k3\":\"again\",\"k63\":\"again\"}";
    let v = parse(&t, &h, 64).unwrap();
    let m = v.as_obj().unwrap();
    assert_eq!(m.len(), 100);
    assert_eq!(m.keys().nth(3).map(String::as_str), Some("k3"));
    assert_eq!(m.get("k3"), Some(&Value::Str("again".into())));
    assert_eq!(m.get("k63"), Some(&Value::Str("again".into())));
    // 100,000 keys: read whole, every one kept in order.
    let wide = format!("{{{}}}", (0..100_000).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
    let v = parse(&wide, &h, 64).unwrap();
    let m = v.as_obj().unwrap();
    assert_eq!(m.len(), 100_000);
    assert_eq!(m.get("k99999"), Some(&Value::Num(99_999.0)));
}

#[test]
fn a_segment_nested_too_deeply_is_rejected_on_its_own_with_its_path() {
    // The facade reads definitions up to 256 levels (`DEFINITIONS_DEPTH`); the engine takes 64.
    let h = host();
    let not = |n: usize| format!("{}{{}}{}", r#"{"$not":"#.repeat(n), "}".repeat(n));
    let and = |n: usize| format!("{}{{}}{}", r#"{"$and":["#.repeat(n), "]}".repeat(n));
    let text = format!(r#"{{"version":1,"segments":[{{"id":"ok","condition":{{}}}},{{"id":"deep","condition":{}}},{{"id":"deep_and","condition":{}}},{{"id":"sixty","condition":{}}}]}}"#, not(100), and(60), not(60));
    assert!(parse(&text, &h, 64).is_err(), "the argument reader refuses it whole");
    let doc = parse(&text, &h, 256).unwrap();
    let mut ks = keystone::core::keystone::Keystone::new(Default::default(), common::NativeHost::boxed(1), None, 1.7e12);
    let report = ks.load_definitions(&doc, 1.7e12).unwrap();
    assert_eq!(report.loaded, vec!["ok".to_string(), "sixty".to_string()]);
    let rejected: Vec<_> = report.rejected.iter().map(|e| (e.segment_id.clone().unwrap_or_default(), e.code, e.message.contains("nested too deeply"), e.path.as_deref().map(|p| p.matches("$not").count() + p.matches("$and").count()))).collect();
    assert_eq!(rejected, vec![("deep".into(), "invalid_segment", true, Some(63)), ("deep_and".into(), "invalid_segment", true, Some(32))]);
    assert!(ks.in_segment("ok"));
    assert!(ks.in_segment("sixty"), "60 $not around an empty condition: even, so it holds");
}
