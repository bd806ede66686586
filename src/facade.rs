//! The wasm-bindgen facade: the only module with `#[wasm_bindgen]` exports. Each method converts
//! its arguments, calls the core, and converts the result; errors leave as plain
//! `{code, message, segmentId?, path?}` objects that the JS wrapper turns into `KeystoneError`s.
//! The hand-written wrapper in `pkg-template/src/` is the public API; this class is internal.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::error::{codes, Error};
use crate::core::keystone::{Keystone, Notice, Options};
use crate::core::value::Value;
use crate::web::convert::{error_to_js, from_js, object_from_js, to_js};
use crate::web::host::BrowserHost;
use crate::web::storage;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

type JsResult = Result<JsValue, JsValue>;

fn fail(e: Error) -> JsValue {
    error_to_js(&e)
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn set(o: &Object, k: &str, v: JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(k), &v);
}

/// The engine behind one `Keystone` instance.
#[wasm_bindgen]
pub struct Core {
    ks: Keystone,
    key_profile: String,
    /// Whether an `endpoint` is set: only then do events go to the wrapper's delivery queue.
    deliver: bool,
}

#[wasm_bindgen]
impl Core {
    /// Creates the engine from the `init` options, restoring the stored profile.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Core, JsValue> {
        let opts_value = from_js(&options).map_err(fail)?;
        let gpc = web_sys::window()
            .and_then(|w| Reflect::get(&w.navigator(), &JsValue::from_str("globalPrivacyControl")).ok())
            .is_some_and(|v| v.is_truthy());
        let opts = Options::from_value(&opts_value, gpc).map_err(fail)?;
        let mut prefix = String::from(opts_value.get("storagePrefix").and_then(Value::as_str).unwrap_or("ks_"));
        prefix.push_str("profile");
        let stored = storage::get(&prefix).map(|s| match js_sys::JSON::parse(&s) {
            Ok(v) => from_js(&v).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        });
        let ks = Keystone::new(opts, Box::new(BrowserHost), stored.as_ref(), now());
        let deliver = opts_value.get("endpoint").is_some_and(|v| !v.is_null());
        Ok(Core { ks, key_profile: prefix, deliver })
    }

    /// Replaces the page context (read by the wrapper at init and on every navigation).
    #[wasm_bindgen(js_name = setContext)]
    pub fn set_context(&mut self, context: JsValue) -> JsResult {
        let ctx = from_js(&context).map_err(fail)?;
        self.ks.set_context(ctx);
        Ok(JsValue::UNDEFINED)
    }

    /// A page view.
    pub fn page(&mut self, properties: JsValue) -> JsResult {
        let props = object_from_js(&properties, "page properties").map_err(fail)?;
        self.ks.page(now(), props);
        Ok(JsValue::UNDEFINED)
    }

    /// A named event.
    pub fn track(&mut self, event: JsValue, properties: JsValue) -> JsResult {
        let Some(name) = event.as_string() else {
            return Err(fail(Error::new(codes::INVALID_ARGUMENT, "track needs an event name string")));
        };
        let props = object_from_js(&properties, "track properties").map_err(fail)?;
        self.ks.track(now(), &name, props).map_err(fail)?;
        Ok(JsValue::UNDEFINED)
    }

    /// Loads definitions (an object); returns `{loaded, rejected}`.
    #[wasm_bindgen(js_name = loadSegments)]
    pub fn load_segments(&mut self, definitions: JsValue) -> JsResult {
        let doc = from_js(&definitions).map_err(fail)?;
        let report = self.ks.load_definitions(&doc, now()).map_err(fail)?;
        let out = Object::new();
        set(&out, "loaded", report.loaded.iter().map(|s| JsValue::from_str(s)).collect::<Array>().into());
        set(&out, "rejected", report.rejected.iter().map(error_to_js).collect::<Array>().into());
        Ok(out.into())
    }

    /// Which variant of an experience to show: `{experience, variant, holdout}`; records the
    /// exposure once per page view. Errors with `unknown_id` for an unknown experience.
    pub fn decide(&mut self, id: JsValue) -> JsResult {
        let id = id.as_string().unwrap_or_default();
        self.ks.decide(&id, now()).map(|d| to_js(&d.to_value())).map_err(fail)
    }

    /// Ids of the segments the visitor is in, sorted.
    pub fn segments(&self) -> Array {
        self.ks.segments().iter().map(|s| JsValue::from_str(s)).collect()
    }

    /// Whether the visitor is in segment `id`.
    #[wasm_bindgen(js_name = inSegment)]
    pub fn in_segment(&self, id: JsValue) -> bool {
        id.as_string().is_some_and(|id| self.ks.in_segment(&id))
    }

    /// The profile document (a fresh plain object).
    pub fn profile(&self) -> JsValue {
        to_js(&self.ks.document_at(now()))
    }

    /// Why the visitor is or is not in segment `id`; throws `unknown_id` for an unknown id.
    pub fn explain(&mut self, id: JsValue) -> JsResult {
        let id = id.as_string().unwrap_or_default();
        self.ks.explain(&id, now()).map(|v| to_js(&v)).map_err(fail)
    }

    /// Epoch ms of the next time-based membership change, or -1 when none is due.
    #[wasm_bindgen(js_name = nextCheck)]
    pub fn next_check(&self) -> f64 {
        self.ks.next_check(now()).unwrap_or(-1.0)
    }

    /// The anonymous id.
    #[wasm_bindgen(js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.ks.anonymous_id().into()
    }

    /// The known user id, or null.
    #[wasm_bindgen(js_name = userId)]
    pub fn user_id(&self) -> Option<String> {
        self.ks.user_id().map(String::from)
    }

    /// Re-evaluates time-windowed segments now.
    pub fn refresh(&mut self) {
        self.ks.refresh(now());
    }

    /// Writes the profile to storage if it changed. Returns false when storage refused.
    pub fn persist(&mut self) -> bool {
        match self.ks.take_dirty() {
            Some(v) => match js_sys::JSON::stringify(&to_js(&v)) {
                Ok(s) => storage::set(&self.key_profile, &String::from(s)),
                Err(_) => false,
            },
            None => true,
        }
    }

    /// Notifications since the last call: `[{type: "segment:enter", segment}, …]`; the array's
    /// `m` property tells whether `marketing` consent is granted now (data layer activation).
    pub fn drain(&mut self) -> Array {
        let events = self.ks.take_outbox();
        let out: Array = self.ks
            .take_notices()
            .into_iter()
            .map(|n| {
                let o = Object::new();
                let (kind, key, val) = match n {
                    Notice::Enter(s) => ("segment:enter", "segment", JsValue::from_str(&s)),
                    Notice::Exit(s) => ("segment:exit", "segment", JsValue::from_str(&s)),
                    Notice::Identify(u) => ("identify", "userId", JsValue::from_str(&u)),
                    Notice::Reset(a) => ("reset", "anonymousId", JsValue::from_str(&a)),
                    Notice::Error(e) => ("error", "error", error_to_js(&e)),
                };
                set(&o, "type", JsValue::from_str(kind));
                set(&o, key, val);
                JsValue::from(o)
            })
            .collect();
        set(&out, "m", JsValue::from_bool(self.ks.consent().marketing));
        if self.deliver {
            // For delivery: the events made since the last call (Segment spec) and whether
            // `analytics` consent holds (when not, the wrapper erases its queue).
            set(&out, "q", events.iter().map(|e| to_js(&e.to_spec())).collect::<Array>().into());
            set(&out, "a", JsValue::from_bool(self.ks.consent().analytics));
        }
        out
    }
}

/// GrowthBook-compatible `evalCondition(attributes, condition, savedGroups?)`, synchronous.
/// Input that cannot be converted (cycles, BigInt) evaluates to false.
#[wasm_bindgen(js_name = evalCondition)]
pub fn eval_condition(attributes: JsValue, condition: JsValue, saved_groups: JsValue) -> bool {
    let (Ok(obj), Ok(cond), Ok(groups)) = (from_js(&attributes), from_js(&condition), from_js(&saved_groups)) else {
        return false;
    };
    let cx = crate::core::condition::Ctx { groups: groups.as_obj(), host: &BrowserHost };
    crate::core::condition::eval_condition(&obj, &cond, &cx)
}

// Benchmark-only exports (cargo feature `bench`; not in the shipped package).
#[cfg(feature = "bench")]
#[path = "facade_bench.rs"]
mod bench;
