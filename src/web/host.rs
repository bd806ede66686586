//! The core's [`Host`] in the browser: JavaScript RegExp, `Number()`, `String()` and
//! `crypto.getRandomValues` (through getrandom).

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::host::Host;
use js_sys::RegExp;
use wasm_bindgen::JsValue;

/// Host services backed by the browser.
pub struct BrowserHost;

impl Host for BrowserHost {
    fn regex_test(&self, pattern: &str, flags: &str, text: &str) -> Option<bool> {
        // `new RegExp` throws on an invalid pattern; js_sys exposes no catching constructor, so
        // go through Reflect.construct, which returns the exception as an Err.
        let args = js_sys::Array::of2(&JsValue::from_str(pattern), &JsValue::from_str(flags));
        let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("RegExp")).ok()?.into();
        let re: RegExp = js_sys::Reflect::construct(&ctor, &args).ok()?.into();
        Some(re.test(text))
    }

    fn parse_number(&self, s: &str) -> f64 {
        js_sys::Number::from(JsValue::from_str(s)).value_of()
    }

    fn format_number(&self, n: f64) -> String {
        js_sys::Number::from(n).to_string_with_radix(10).map(String::from).unwrap_or_default()
    }

    fn lowercase(&self, s: &str) -> String {
        js_sys::JsString::from(s).to_lower_case().into()
    }

    fn random_bytes(&self, out: &mut [u8]) {
        if getrandom::fill(out).is_err() {
            // No crypto source at all (never in a browser that runs wasm); fall back to Math.random.
            for b in out.iter_mut() {
                *b = (js_sys::Math::random() * 256.0) as u8;
            }
        }
    }
}
