//! The core's [`Host`] in the browser: JavaScript RegExp, `Number()`, `String()` and
//! `crypto.getRandomValues` (through getrandom).

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::host::Host;
use wasm_bindgen::JsValue;

/// How many compiled regexes are kept.
const REGEX_CACHE: usize = 64;

/// Compiled regexes (None: the pattern is invalid); emptied when full.
static REGEXES: Slot<Vec<(String, String, Option<Re>)>> = Slot::new(Vec::new());

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A JavaScript RegExp.
    #[wasm_bindgen(js_name = RegExp)]
    #[derive(Clone)]
    type Re;
    /// `new RegExp(pattern, flags)`, its SyntaxError returned rather than thrown (js_sys's
    /// constructor has no catching form).
    #[wasm_bindgen(catch, constructor, js_class = "RegExp")]
    fn new(pattern: &str, flags: &str) -> Result<Re, JsValue>;
    #[wasm_bindgen(method)]
    fn test(this: &Re, text: &str) -> bool;

    // The few JavaScript built-ins the core needs, imported directly (js-sys's typed wrappers
    // would link its closure and task machinery too).
    /// `Number(text)`.
    #[wasm_bindgen(js_name = Number)]
    fn js_number(text: &str) -> f64;
    /// `String(n)`.
    #[wasm_bindgen(js_name = String)]
    fn js_string(n: f64) -> String;
    /// `String.prototype.toLowerCase.call(text)`.
    #[wasm_bindgen(js_namespace = ["String", "prototype", "toLowerCase"], js_name = call)]
    fn js_lower(text: &str) -> String;
    /// `Math.random()`.
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    fn js_random() -> f64;
    /// `Date.now()`.
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    pub fn date_now() -> f64;
}

/// Host services backed by the browser.
pub struct BrowserHost;

impl Host for BrowserHost {
    fn regex_test(&self, pattern: &str, flags: &str, text: &str) -> Option<bool> {
        // Compiled once per (pattern, flags): evaluation tests the same few patterns over and
        // over. Flags are only "" or "i", so `test` keeps no state between calls.
        let hit = REGEXES.with(|c| c.iter().find(|(p, f, _)| p == pattern && f == flags).map(|(_, _, re)| re.clone()));
        let re = match hit {
            Some(re) => re,
            None => {
                let re = Re::new(pattern, flags).ok();
                REGEXES.with_mut(|c| {
                    if c.len() >= REGEX_CACHE {
                        c.clear();
                    }
                    c.push((pattern.into(), flags.into(), re.clone()));
                });
                re
            }
        };
        Some(re?.test(text))
    }

    fn parse_number(&self, s: &str) -> f64 {
        js_number(s)
    }

    fn format_number(&self, n: f64) -> String {
        js_string(n)
    }

    fn lowercase(&self, s: &str) -> String {
        js_lower(s)
    }

    fn random_bytes(&self, out: &mut [u8]) {
        // Served from a block of `crypto.getRandomValues` bytes, each used once: one call into
        // the browser per 16 message ids instead of one per event (a tenth of `track()`'s time).
        POOL.with_mut(|(buf, at)| {
            for b in out.iter_mut() {
                if *at >= buf.len() {
                    if getrandom::fill(buf).is_err() {
                        // No crypto source at all (never in a browser that runs wasm): Math.random.
                        for x in buf.iter_mut() {
                            *x = (js_random() * 256.0) as u8;
                        }
                    }
                    *at = 0;
                }
                *b = buf[*at];
                *at += 1;
            }
        })
    }
}

/// Random bytes not yet used, and the index of the next one.
static POOL: Slot<([u8; 256], usize)> = Slot::new(([0; 256], 256));

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
