//! The core's [`Host`] in the browser: JavaScript RegExp, `Number()`, `String()` and
//! `crypto.getRandomValues`; those that could throw are caught in `host.js`.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::host::Host;
use wasm_bindgen::convert::WasmSlice;

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/web/host.js")]
extern "C" {
    /// JavaScript RegExp `pattern`, with flag `i` when `icase`, tested on `text` (compiled once,
    /// cached in JS): 1 a match, 0 none, 2 an invalid pattern.
    #[wasm_bindgen(js_name = regexTest)]
    fn regex(pattern: &str, icase: bool, text: &str) -> u32;
    /// `crypto.getRandomValues(bytes)` (`Math.random` where there is no crypto).
    #[wasm_bindgen(js_name = randomFill)]
    fn random_fill(bytes: &mut [u8]);
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    // The few JavaScript built-ins the core needs, imported directly (js-sys's typed wrappers
    // would link its closure and task machinery too).
    /// `Number(text)`.
    #[wasm_bindgen(js_name = Number)]
    fn js_number(text: &str) -> f64;
    /// `String(n)`.
    #[wasm_bindgen(js_name = String)]
    fn js_string(n: f64) -> JsString;
    /// `String.prototype.toLowerCase.call(text)`.
    #[wasm_bindgen(js_namespace = ["String", "prototype", "toLowerCase"], js_name = call)]
    fn js_lower(text: &str) -> JsString;
    /// `Date.now()`.
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    pub fn date_now() -> f64;
}

/// Text crossing between JS and wasm as wasm-bindgen's `String` does (the same description, so
/// the same glue), without wasm-bindgen's `String` conversions: those go through a `Box<str>`, whose
/// `into_boxed_slice` linked the shrinking reallocation (`RawVec::shrink`) for the crossings alone.
/// In, the text the glue allocated is taken over as it is (its capacity is its length); out, it
/// is handed over with a capacity equal to its length, the size the glue frees (copied when it
/// is not).
pub struct JsString(pub String);

impl JsString {
    /// Takes over the string the glue passed as `js`: a pointer `__wbindgen_malloc` returned and
    /// its length in bytes of UTF-8.
    ///
    /// # Safety
    /// `js` must be such a string, not taken over before.
    #[inline(never)]
    pub unsafe fn take(js: WasmSlice) -> String {
        let len = js.len.into_usize();
        // SAFETY: the caller's contract; the glue allocates exactly `len` bytes.
        unsafe { String::from_raw_parts(js.ptr.into_usize() as *mut u8, len, len) }
    }
}

impl wasm_bindgen::describe::WasmDescribe for JsString {
    fn describe() {
        <String as wasm_bindgen::describe::WasmDescribe>::describe()
    }
}

impl wasm_bindgen::convert::FromWasmAbi for JsString {
    type Abi = WasmSlice;

    unsafe fn from_abi(js: WasmSlice) -> JsString {
        // SAFETY: an import declared to return a `String`: the glue passes one it allocated.
        JsString(unsafe { JsString::take(js) })
    }
}

impl wasm_bindgen::convert::IntoWasmAbi for JsString {
    type Abi = WasmSlice;

    fn into_abi(self) -> WasmSlice {
        let mut s = self.0;
        if s.capacity() != s.len() {
            let mut exact = String::with_capacity(s.len());
            exact.push_str(&s);
            s = exact;
        }
        let s = ::core::mem::ManuallyDrop::new(s);
        WasmSlice::from_usize(s.as_ptr() as usize, s.len())
    }
}

/// Host services backed by the browser.
pub struct BrowserHost;

impl Host for BrowserHost {
    fn regex_test(&self, pattern: &str, flags: &str, text: &str) -> Option<bool> {
        // The core's flags are "" or "i" (`$regex`, `$regexi`).
        match regex(pattern, flags == "i", text) {
            2 => None,
            r => Some(r == 1),
        }
    }

    fn parse_number(&self, s: &str) -> f64 {
        js_number(s)
    }

    fn format_number(&self, n: f64) -> String {
        js_string(n).0
    }

    fn lowercase(&self, s: &str) -> String {
        js_lower(s).0
    }

    fn random_bytes(&self, out: &mut [u8]) {
        // Served from a block of `crypto.getRandomValues` bytes, each used once: one call into
        // the browser per 256 message ids instead of one per event (a tenth of `track()`'s time).
        // (A 256-byte block made every 16th `track()` the one that refilled it: 6% of the calls,
        // over-represented among the slow ones.)
        POOL.with_mut(|(buf, at)| {
            for b in out.iter_mut() {
                if *at >= buf.len() {
                    random_fill(buf);
                    *at = 0;
                }
                *b = buf[*at];
                *at += 1;
            }
        })
    }
}

/// Random bytes not yet used, and the index of the next one.
static POOL: Slot<([u8; 4096], usize)> = Slot::new(([0; 4096], 4096));

/// A value kept across calls by the single-threaded wasm instance (the regex cache, the saved
/// groups of `evalCondition`). Accessors take closures that must not touch the same slot again
/// (none does); a plain cell keeps RefCell's panic paths out of the binary.
pub struct Slot<T>(core::cell::UnsafeCell<T>);

// SAFETY: wasm32 without the atomics feature has one thread; a Slot is never shared across threads.
unsafe impl<T> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// A slot holding `v`.
    pub const fn new(v: T) -> Slot<T> {
        Slot(core::cell::UnsafeCell::new(v))
    }
    /// Replaces the value.
    pub fn set(&self, v: T) {
        self.with_mut(|x| *x = v);
    }
    /// Reads the value.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: one thread, and no accessor closure re-enters this slot, so no &mut is alive.
        f(unsafe { &*self.0.get() })
    }
    /// Changes the value.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: as in `with`: this is the only reference while `f` runs.
        f(unsafe { &mut *self.0.get() })
    }
}
