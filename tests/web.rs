//! The browser layer in headless Chromium (wasm-bindgen-test): value conversion against
//! hostile JavaScript values, the RegExp/Number host, and storage that fails soft.
#![cfg(target_arch = "wasm32")]

use keystone::core::host::Host;
use keystone::core::value::Value;
use keystone::web::convert::{from_js, to_js};
use keystone::web::host::BrowserHost;
use keystone::web::storage;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn eval(src: &str) -> JsValue {
    js_sys::eval(src).expect("test JS evaluates")
}

#[wasm_bindgen_test]
fn converts_json_like_values_both_ways() {
    let v = from_js(&eval("({a: 1, b: [true, null, 'x'], c: {d: -0}, u: undefined, f() {}})")).unwrap();
    assert_eq!(v.path("a"), Some(&Value::Num(1.0)));
    assert_eq!(v.path("b.2"), Some(&Value::Str("x".into())));
    assert_eq!(v.path("c.d"), Some(&Value::Num(0.0)));
    assert_eq!(v.get("u"), None, "undefined is dropped like JSON.stringify");
    assert_eq!(v.get("f"), None, "functions are dropped");
    let back = to_js(&v);
    let text: String = js_sys::JSON::stringify(&back).unwrap().into();
    assert_eq!(text, r#"{"a":1,"b":[true,null,"x"],"c":{"d":0}}"#);
}

#[wasm_bindgen_test]
fn hostile_values_become_errors_not_exceptions() {
    for src in [
        "(() => { const o = {}; o.o = o; return o; })()",
        "(() => { let o = {}; for (let i = 0; i < 10000; i++) o = {o}; return o; })()",
        "({ get boom() { throw new Error('getter'); } })",
        "new Proxy({}, { ownKeys() { throw new Error('trap'); } })",
        "({ n: 10n })",
    ] {
        let e = from_js(&eval(src)).expect_err(src);
        assert_eq!(e.code, "invalid_argument");
    }
}

#[wasm_bindgen_test]
fn host_uses_javascript_regexp_and_number() {
    let h = BrowserHost;
    assert_eq!(h.regex_test("^a(?=b)", "", "ab"), Some(true), "look-ahead is JavaScript syntax");
    assert_eq!(h.regex_test("A", "i", "a"), Some(true));
    assert_eq!(h.regex_test("(", "", "a"), None, "an invalid regex is reported, not thrown");
    assert_eq!(h.parse_number(" 12.5 "), 12.5);
    assert!(h.parse_number("12abc").is_nan());
    assert_eq!(h.format_number(0.1 + 0.2), "0.30000000000000004");
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    h.random_bytes(&mut a);
    h.random_bytes(&mut b);
    assert_ne!(a, b);
}

#[wasm_bindgen_test]
fn storage_round_trips_and_survives_a_throwing_set_item() {
    assert!(storage::set("ks_test_key", "v1"));
    assert_eq!(storage::get("ks_test_key").as_deref(), Some("v1"));
    // A full storage: setItem throws QuotaExceededError. The value stays readable from memory.
    eval("window.__origSet = Storage.prototype.setItem; Storage.prototype.setItem = function () { throw new DOMException('full', 'QuotaExceededError'); };");
    let ok = storage::set("ks_test_key2", "v2");
    eval("Storage.prototype.setItem = window.__origSet;");
    assert!(!ok);
    assert_eq!(storage::get("ks_test_key2").as_deref(), Some("v2"));
    storage::remove("ks_test_key");
    storage::remove("ks_test_key2");
    assert_eq!(storage::get("ks_test_key"), None);
}

#[wasm_bindgen_test]
fn proto_keys_round_trip_as_own_data_never_as_prototypes() {
    let v = from_js(&eval(r#"JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}}')"#)).unwrap();
    assert_eq!(v.path("__proto__.polluted"), Some(&Value::Num(1.0)), "an own __proto__ key is data");
    let back = to_js(&v);
    let check = eval("(o) => Object.getPrototypeOf(o) === Object.prototype && Object.hasOwn(o, '__proto__') && o.polluted === undefined && ({}).polluted === undefined && JSON.stringify(o) === '{\"__proto__\":{\"polluted\":1},\"constructor\":{\"prototype\":{\"polluted\":1}}}'");
    let f: js_sys::Function = check.into();
    assert_eq!(f.call1(&JsValue::NULL, &back).unwrap(), JsValue::TRUE);
}
