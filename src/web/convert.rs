//! JavaScript values to and from the core's [`Value`], by hand over `js_sys` (no serde: it
//! would cost ~12 KB gzip of wasm). Conversion follows `JSON.stringify`: `undefined`,
//! functions and symbols are dropped from objects (null in arrays), non-finite numbers become
//! null, `toJSON` is not called. Hostile input (cycles, 10,000-deep nesting, throwing getters,
//! Proxies, BigInt) becomes an error, never an exception or a stack overflow.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::error::{codes, Error};
use crate::core::value::{Map, Value};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

pub use crate::core::json::MAX_DEPTH;

/// Converts a JavaScript value.
pub fn from_js(v: &JsValue) -> Result<Value, Error> {
    convert(v, 0)
}

/// Converts a JavaScript value that must be an object (or undefined/null → empty map).
pub fn object_from_js(v: &JsValue, what: &str) -> Result<Map, Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(Map::new());
    }
    match convert(v, 0)? {
        Value::Obj(m) => Ok(m),
        _ => {
            let mut msg = String::from(what);
            msg.push_str(" must be a plain object");
            Err(Error::new(codes::INVALID_ARGUMENT, msg))
        }
    }
}

fn bad(msg: &str) -> Error {
    Error::new(codes::INVALID_ARGUMENT, msg)
}

fn convert(v: &JsValue, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(bad("value nested too deeply (or cyclic)"));
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = v.as_f64() {
        return Ok(if n.is_finite() { Value::Num(if n == 0.0 { 0.0 } else { n }) } else { Value::Null });
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Str(s));
    }
    if v.is_bigint() {
        return Err(bad("BigInt values are not supported"));
    }
    if v.is_symbol() || v.is_function() {
        return Ok(Value::Null);
    }
    if Array::is_array(v) {
        let arr: &Array = v.unchecked_ref();
        let mut out = Vec::with_capacity(arr.length() as usize);
        for i in 0..arr.length() {
            let item = Reflect::get_u32(v, i).map_err(|_| bad("an array element could not be read"))?;
            out.push(if item.is_function() || item.is_symbol() { Value::Null } else { convert(&item, depth + 1)? });
        }
        return Ok(Value::Arr(out));
    }
    if v.is_object() {
        let obj: &Object = v.unchecked_ref();
        // Date: as its ISO string, like JSON.stringify.
        if let Some(d) = obj.dyn_ref::<js_sys::Date>() {
            return Ok(if d.get_time().is_finite() { Value::Str(String::from(d.to_iso_string())) } else { Value::Null });
        }
        let keys = Reflect::own_keys(v).map_err(|_| bad("an object's keys could not be read"))?;
        let mut m = Map::new();
        for k in keys.iter() {
            let Some(name) = k.as_string() else { continue };
            let enumerable = Reflect::get_own_property_descriptor(obj, &k)
                .ok()
                .filter(|d| !d.is_undefined())
                .and_then(|d| Reflect::get(&d, &JsValue::from_str("enumerable")).ok())
                .is_some_and(|e| e.is_truthy());
            if !enumerable {
                continue;
            }
            let item = Reflect::get(v, &k).map_err(|_| bad("an object property could not be read"))?;
            if item.is_undefined() || item.is_function() || item.is_symbol() {
                continue;
            }
            m.insert(name, convert(&item, depth + 1)?);
        }
        return Ok(Value::Obj(m));
    }
    Err(bad("unsupported value"))
}

/// Converts a core value to a fresh JavaScript value (plain objects and arrays).
pub fn to_js(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Num(n) => JsValue::from_f64(*n),
        Value::Str(s) => JsValue::from_str(s),
        Value::Arr(a) => {
            let out = Array::new_with_length(a.len() as u32);
            for (i, item) in a.iter().enumerate() {
                out.set(i as u32, to_js(item));
            }
            out.into()
        }
        Value::Obj(m) => {
            let out = Object::new();
            for (k, item) in m.iter() {
                let (key, val) = (JsValue::from_str(k), to_js(item));
                if k == "__proto__" {
                    // An own data property, as JSON.parse makes it: assigning would replace
                    // the object's prototype instead.
                    let d = Object::new();
                    let _ = Reflect::set(&d, &JsValue::from_str("value"), &val);
                    for f in ["enumerable", "writable", "configurable"] {
                        let _ = Reflect::set(&d, &JsValue::from_str(f), &JsValue::TRUE);
                    }
                    Object::define_property(&out, &key, &d);
                } else {
                    let _ = Reflect::set(&out, &key, &val);
                }
            }
            out.into()
        }
    }
}

/// A core error as the plain object the JS wrapper turns into a `KeystoneError`.
pub fn error_to_js(e: &Error) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &JsValue::from_str("code"), &JsValue::from_str(e.code));
    let _ = Reflect::set(&o, &JsValue::from_str("message"), &JsValue::from_str(&e.message));
    if let Some(id) = &e.segment_id {
        let _ = Reflect::set(&o, &JsValue::from_str("segmentId"), &JsValue::from_str(id));
    }
    if let Some(p) = &e.path {
        let _ = Reflect::set(&o, &JsValue::from_str("path"), &JsValue::from_str(p));
    }
    o.into()
}
