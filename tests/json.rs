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
