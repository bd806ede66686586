//! The wasm-bindgen facade: the only module with `#[wasm_bindgen]` exports. Structured arguments
//! and results cross as JSON text (the wrapper's `JSON.stringify` / `JSON.parse` on the JS side,
//! [`crate::core::json`] here): one crossing per argument instead of several per key. Errors
//! leave as the JSON text of plain `{code, message, segmentId?, path?}` objects, returned in place
//! of a result (see [`fail`]), that the JS wrapper turns into `KeystoneError`s. No JS value is
//! made or held on this side (errors, RegExps and storage failures stay in JS: `src/web/host.js`),
//! so wasm-bindgen links no table of JS values and no exception plumbing.
//! The hand-written wrapper in `pkg-template/src/` is the public API; these exports are internal.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::condition::Groups;
use crate::core::error::{codes, Error};
use crate::core::codec;
use crate::core::json;
use crate::core::keystone::{Keystone, Notice, Options};
use crate::core::value::{str_array, Map, Value};
use crate::web::host::{BrowserHost, JsString, Slot};
use crate::web::storage;
use wasm_bindgen::prelude::wasm_bindgen;

/// A call failed: its error waits in [`FAILED`] (a unit, so results stay as small as they are;
/// a `String` error made the wasm 0.3 KB gzip larger).
type Failure = ();
type JsResult = Result<(), Failure>;

/// The error of the call that failed: `!` and the JSON text of `{code, message, segmentId?,
/// path?}`, returned by [`core_call`] in place of a result, which the wrapper throws and
/// `toKeystoneError` turns into a `KeystoneError`. Returned, not thrown: no JS value crosses out
/// of wasm (no result is text starting with `!`).
static FAILED: Slot<String> = Slot::new(String::new());

fn fail(e: Error) -> Failure {
    let mut s = String::from("!");
    json::write_into(&mut s, &error_value(&e), &BrowserHost);
    FAILED.set(s);
}

/// The time of the call being made: the clock, unless the wrapper set the time of a call that
/// was queued before the engine was ready (op `at`), whose events carry the time it was made.
fn now() -> f64 {
    let t = CLOCK.with(|t| *t);
    if t > 0.0 { t } else { crate::web::host::date_now() }
}

static CLOCK: Slot<f64> = Slot::new(0.0);


/// The engine behind the page's `Keystone` instance (there is one per page: `init` is a
/// singleton). It lives in [`ENGINE`], reached through the one export [`core_call`]
/// (op [`NEW`] makes it): no exported class, so no handle, no `RefCell` guard and no finalizer in the
/// glue. After a trap the wrapper starts a fresh wasm instance, whose slot is empty again.
pub struct Core {
    ks: Keystone,
    key_profile: String,
    prefix: String,
    /// `storage_unavailable` was already reported (it is reported once).
    storage_warned: bool,
    /// The stored text this tab last wrote or rebased onto: while storage still holds it, a
    /// write needs no rebase (no other tab wrote since).
    seen: Option<String>,
    /// Whether an `endpoint` is set: only then do events go to the wrapper's delivery queue.
    deliver: bool,
    /// The stored profile is left alone (this page keeps its own in memory): storage refused to
    /// read it, so a write could replace what it holds, or a newer version of Keystone wrote it.
    keep_out: bool,
}

/// Stored text as a value: parsed JSON, or the raw text when it is not JSON (the codec salvages
/// what it can from it).
fn parse_stored(s: &str) -> Value {
    json::parse(s, &BrowserHost, STORED_DEPTH).unwrap_or_else(|_| Value::Str(s.into()))
}

/// Nesting accepted in stored text: the profile's own levels over values the boundary bounded.
const STORED_DEPTH: usize = json::MAX_DEPTH + 16;

/// Nesting read in a definitions document: a segment nested deeper than the engine takes is
/// rejected on its own (with its id and path), the others load.
const DEFINITIONS_DEPTH: usize = 256;

/// JSON text from the wrapper (`JSON.stringify` of an argument) as a value.
fn parse_arg(s: &str) -> Result<Value, Failure> {
    json::parse(s, &BrowserHost, json::MAX_DEPTH).map_err(fail)
}

/// An argument that must be an object; `null` (and `undefined`) is an empty one.
fn object_arg(s: &str, what: &str) -> Result<Map, Failure> {
    match parse_arg(s)? {
        Value::Obj(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => {
            let mut msg = String::from(what);
            msg.push_str(" must be a plain object");
            Err(fail(Error::new(codes::INVALID_ARGUMENT, msg)))
        }
    }
}

/// A value as JSON text for the wrapper.
fn text(v: &Value) -> String {
    json::write(v, &BrowserHost)
}

/// An error as the value the wrapper turns into a `KeystoneError`.
fn error_value(e: &Error) -> Value {
    let mut m = Map::new().with("code", e.code).with("message", e.message.as_str());
    if let Some(id) = &e.segment_id {
        m.insert("segmentId", Value::from(id.as_str()));
    }
    if let Some(p) = &e.path {
        m.insert("path", Value::from(p.as_str()));
    }
    Value::Obj(m)
}

static ENGINE: Slot<Option<Core>> = Slot::new(None);

/// A string argument of an export, or none (`null`/`undefined`): wasm-bindgen's `Option<String>`
/// as it crosses (the same description, so the same glue), taken as its raw pointer and length and
/// made a string by one function ([`Text::string`], [`JsString::take`]). wasm-bindgen converts each argument with a
/// fallible `try_from_abi` and throws what it returns: for `Option<String>`, whose conversion
/// cannot fail but whose result LLVM could not see through, each export held that error path,
/// with its `throw_str` import.
pub struct Text(wasm_bindgen::convert::WasmSlice);

impl Text {
    #[inline(never)]
    fn string(self) -> Option<String> {
        // SAFETY: the glue passes an `Option<String>` as a null pointer or as a string's pointer
        // and length (the description below), which is taken over once.
        (!self.0.ptr.is_zero()).then(|| unsafe { JsString::take(self.0) })
    }
}

impl wasm_bindgen::describe::WasmDescribe for Text {
    fn describe() {
        <Option<String> as wasm_bindgen::describe::WasmDescribe>::describe()
    }
}

impl wasm_bindgen::convert::FromWasmAbi for Text {
    type Abi = wasm_bindgen::convert::WasmSlice;

    unsafe fn from_abi(js: Self::Abi) -> Text {
        Text(js)
    }
}

/// The op of [`core_call`] that makes the page's engine (`a` the `init` options, `b` the id
/// cookie's anonymous id), replacing any earlier one: one export less than a `coreNew` of its own.
const NEW: u32 = 23;

/// `call` as an export, on the page's engine (none yet: no result), or op [`NEW`] making it.
/// Returns the result, or the failure (see [`fail`]).
#[wasm_bindgen(js_name = coreCall)]
pub fn core_call(op: u32, a: Text, b: Text, c: Text) -> JsString {
    let (a, b, c) = (a.string(), b.string(), c.string());
    // The engine never calls back into these exports, so the slot is not re-entered.
    let r = if op == NEW {
        Core::new(a.as_deref().unwrap_or("null"), b).map(|core| {
            ENGINE.set(Some(core));
            String::new()
        })
    } else {
        ENGINE.with_mut(|e| match e {
            Some(core) => core.call(op, a, b, c),
            None => Ok(String::new()),
        })
    };
    JsString(r.unwrap_or_else(|()| FAILED.with_mut(::core::mem::take)))
}

impl Core {
    /// Creates the engine from the `init` options, restoring the stored profile. `cookieId` is
    /// the anonymous id of the first-party cookie (read by the wrapper), if any.
    pub fn new(options: &str, cookie_id: Option<String>) -> Result<Core, Failure> {
        let opts_value = parse_arg(options)?;
        // Global Privacy Control, read by the wrapper from `navigator.globalPrivacyControl`.
        let gpc = opts_value.get("__gpc").is_some_and(Value::truthy);
        let opts = Options::from_value(&opts_value, gpc).map_err(fail)?;
        let prefix = String::from(opts_value.get("storagePrefix").and_then(Value::as_str).unwrap_or("ks_"));
        let mut key_profile = prefix.clone();
        key_profile.push_str("profile");
        let read = storage::read(&key_profile);
        let unreadable = read.is_err();
        let seen = read.unwrap_or_default();
        let stored = seen.as_deref().map(parse_stored);
        let newer = stored.as_ref().and_then(|v| v.get("v")).and_then(Value::as_num).is_some_and(|v| v > codec::VERSION);
        let mut ks = Keystone::new(opts, Box::new(BrowserHost), stored.as_ref(), now());
        ks.deferred = true;
        if unreadable {
            ks.report(Error::new(codes::STORAGE_UNAVAILABLE, "storage refused the read; keeping the profile in memory, the stored one untouched"));
        }
        let deliver = opts_value.get("endpoint").is_some_and(|v| !v.is_null());
        // `__w`: the engine the ESM entry runs while the page idles, to have its code compiled
        // before `init`: it writes nothing (the set-aside profiles' repair and retention below are
        // `init`'s to make, with the site's options, and their damage `init`'s to report).
        let warm = opts_value.get("__w").is_some();
        let mut core = Core { ks, key_profile, prefix, storage_warned: unreadable, seen, deliver, keep_out: unreadable || newer || warm };
        // Set-aside profiles unused past the retention leave storage (a shared computer's earlier
        // person who never logs in again), read only where there are some.
        if storage::get(&core.key_aside()).is_some() {
            core.load_aside();
            core.ks.prune_aside(now());
            if let Some(v) = core.ks.take_aside() {
                core.write_aside(&v);
            }
        }
        if let Some(id) = cookie_id {
            // With `cookieDomain` the cookie is the source of truth for the id (a known profile
            // it contradicts is set aside: the set-aside profiles are read first, written after;
            // an anonymous one takes the id).
            let authoritative = opts_value.get("cookieDomain").and_then(Value::as_str).is_some_and(|d| !d.is_empty());
            if authoritative {
                core.load_aside();
            }
            core.ks.adopt_anonymous_id(&id, authoritative);
            if let Some(v) = core.ks.take_aside() {
                core.write_aside(&v);
            }
        }
        Ok(core)
    }

    /// Every other call, through one export (one wrapper in the glue and in wasm instead of one
    /// per method): `op` is the method's index in the wrapper's list (`OPS` in
    /// `pkg-template/src/instance.js`, in the order of the match below), `a`/`b`/`c` its
    /// arguments — JSON text or plain strings, None for anything else. The result is JSON text,
    /// or `""` for none; a failure is `!` and the error's JSON text (see [`fail`]).
    pub fn call(&mut self, op: u32, a: Option<String>, b: Option<String>, c: Option<String>) -> Result<String, Failure> {
        // Borrowed, not copied (three allocations per call, and their code).
        let (ta, tb, tc) = (a.as_deref().unwrap_or("null"), b.as_deref().unwrap_or("null"), c.as_deref().unwrap_or("null"));
        let done = |r: Result<(), Failure>| r.map(|_| String::new());
        let opt = |v: Option<String>| text(&v.into());
        let flag = |b: bool| String::from(if b { "true" } else { "false" });
        match op {
            0 => done(self.set_traits(ta)),
            1 => done(self.set_consent(ta, b.as_deref(), c.as_deref())),
            2 => done(Ok(self.forget())),
            3 => Ok(flag(self.sync(a, b))),
            4 => done(self.identify(a, tb, tc)),
            5 => done(Ok(self.reset())),
            6 => done(self.set_context(ta)),
            // The channels the view was recorded in (1 delivery, 2 profile); `b`: the channels
            // of the page's view still to record, once consent allows them.
            7 => self.page(ta, b).map(|c| String::from(char::from(b'0' + c))),
            8 => done(self.track(a, tb)),
            9 => self.load_segments(ta),
            10 => self.decide(a),
            11 => Ok(self.segments()),
            12 => Ok(flag(self.in_segment(a))),
            13 => Ok(self.profile()),
            14 => self.explain(a),
            15 => Ok(text(&Value::Num(self.next_check()))),
            16 => Ok(opt(self.anonymous_id())),
            17 => Ok(opt(self.user_id())),
            // With `a`: the `trackSegments` reports made (see `Keystone::deferred`).
            18 => done(Ok(self.refresh(a.is_some()))),
            19 => Ok(opt(self.persist())),
            20 => Ok(self.drain(a.is_some())),
            21 => done(Ok(self.follow_cookie(a, b.is_some()))),
            // The time of the calls that follow (epoch ms), until called without one.
            22 => {
                CLOCK.set(parse_arg(ta).ok().and_then(|v| v.as_num()).unwrap_or(0.0));
                Ok(String::new())
            }
            _ => Ok(String::new()),
        }
    }
}

impl Core {

    /// Merges traits into the profile; emits a Segment `identify` event.
    fn set_traits(&mut self, traits: &str) -> Result<(), Failure> {
        if traits == "null" {
            return Err(fail(Error::new(codes::INVALID_ARGUMENT, "setTraits needs an object of traits")));
        }
        let t = object_arg(traits, "traits")?;
        self.ks.check_traits(&t).map_err(fail)?;
        self.ks.set_traits(now(), t);
        Ok(())
    }

    /// Merges consent categories. Withdrawing `personalization` erases the stored profile (the
    /// wrapper erases the id cookie).
    /// `id`/`user`: a grant heard from another tab, with the anonymous id and user id of the
    /// profile that tab stored with it (see [`Keystone::grant_of`]).
    fn set_consent(&mut self, consent: &str, id: Option<&str>, user: Option<&str>) -> Result<(), Failure> {
        let v = parse_arg(consent)?;
        if let Some(id) = id {
            self.ks.grant_of(id, user);
        }
        self.ks.set_consent(&v, now()).map_err(fail)?;
        if !self.ks.consent().personalization {
            storage::remove(&self.key_profile);
            storage::remove(&self.key_aside());
        } else if let Some(v) = self.ks.take_aside() {
            // A person set aside while nothing could be stored (a logout or a switch of users
            // before the choice of an opt-in page): kept now, before the profile replacing theirs.
            self.write_aside(&v);
        }
        Ok(())
    }

    /// `forget()`: withdraws all consent and starts a fresh anonymous state (the wrapper
    /// erases the browser's storages and cookies).
    fn forget(&mut self) {
        storage::forget_memory(&self.prefix);
        self.ks.forget(now());
        // What was left alone is erased now (by the wrapper): once consent is granted again,
        // this page's profile is the one to store.
        self.keep_out = false;
    }

    /// A `storage` event from another tab: rebases onto the profile it wrote. Returns whether
    /// it concerned the profile.
    fn sync(&mut self, key: Option<String>, value: Option<String>) -> bool {
        if key.as_deref() != Some(self.key_profile.as_str()) {
            // The set-aside profiles, written by another tab (from an older read, maybe): what
            // this tab set aside lately and they lack is filed again.
            if key == Some(self.key_aside()) {
                self.file_orphans();
            }
            return false;
        }
        let Some(text) = value else { return false };
        let ok = self.ks.rebase(&parse_stored(&text), now());
        if ok {
            self.seen = Some(text);
        }
        self.file_orphans();
        ok
    }

    /// Login: hashes the email, reconciles the profiles, and writes the identity at once. A
    /// refused login after a quiet follow of the shared id reports (and writes) that follow.
    fn identify(&mut self, email: Option<String>, traits: &str, options: &str) -> JsResult {
        let r = self.login(email, traits, options);
        if r.is_err() && self.ks.settle_follow(now()) {
            self.write_identity();
        }
        r
    }

    fn login(&mut self, email: Option<String>, traits: &str, options: &str) -> JsResult {
        let Some(email) = email else {
            return Err(fail(Error::new(codes::INVALID_EMAIL, crate::core::identity::NEEDS_EMAIL)));
        };
        let traits = object_arg(traits, "identify traits")?;
        let opts = parse_arg(options)?;
        self.load_aside();
        self.ks.identify(now(), &email, traits, &opts).map_err(fail)?;
        self.write_identity();
        Ok(())
    }

    /// Logout: sets the known profile aside, starts a new anonymous one, writes at once.
    fn reset(&mut self) {
        self.load_aside();
        self.ks.reset(now());
        self.write_identity();
    }

    /// Another tab's logout or switch left this tab's unwritten operations of the previous
    /// identity, or this tab set a profile aside lately: they go into that identity's set-aside
    /// profile (again, when another tab's write dropped them), read and written at once.
    fn file_orphans(&mut self) {
        if self.ks.has_orphans() {
            self.load_aside();
            self.ks.file_orphans(now());
            if let Some(v) = self.ks.take_aside() {
                self.write_aside(&v);
            }
        }
    }

    /// Writes the set-aside profiles; false when storage refused them.
    fn write_aside(&self, v: &Value) -> bool {
        self.keep_out || storage::set(&self.key_aside(), &json::write(v, &BrowserHost))
    }

    fn key_aside(&self) -> String {
        let mut k = self.prefix.clone();
        k.push_str("aside");
        k
    }

    fn load_aside(&mut self) {
        let v = storage::get(&self.key_aside()).map(|t| parse_stored(&t)).unwrap_or(Value::Null);
        self.ks.load_aside(&v);
    }

    /// `cookieDomain`: the shared cookie holds another id while the page is open (another
    /// subdomain logged out or switched users): the rules of a start apply ([`Core::new`]), a
    /// known profile here being set aside. Written at once when `heard` (the page shown again);
    /// otherwise the login or logout that follows writes the outcome.
    fn follow_cookie(&mut self, id: Option<String>, heard: bool) {
        let keep = self.ks.consent().personalization && !self.ks.anonymous_id().is_empty();
        if let Some(id) = id.filter(|id| keep && id != self.ks.anonymous_id()) {
            self.load_aside();
            self.ks.follow_cookie_id(&id, now(), heard);
            // Quiet (before a login or logout here, which writes at once): the other tabs see
            // only the outcome.
            if heard {
                self.write_identity();
            }
        }
    }

    /// Identity changes are written at once (not coalesced): the set-aside profiles, then the profile.
    /// With storage full, the stored profile about to be written over makes room first: the
    /// profile set aside is not lost to the one replacing it.
    fn write_identity(&mut self) {
        if let Some(v) = self.ks.take_aside() {
            if !self.write_aside(&v) {
                storage::remove(&self.key_profile);
                let ok = self.write_aside(&v);
                self.refused(ok);
            }
        }
        self.persist();
    }

    /// Replaces the page context (read by the wrapper at init and on every navigation).
    fn set_context(&mut self, context: &str) -> JsResult {
        let ctx = parse_arg(context)?;
        self.ks.set_context(ctx);
        Ok(())
    }

    /// A page view; `seen`: the view of the page being viewed, recorded late (once consent
    /// allows it).
    fn page(&mut self, properties: &str, late: Option<String>) -> Result<u8, Failure> {
        let props = object_arg(properties, "page properties")?;
        crate::core::keystone::check_properties(&props).map_err(fail)?;
        Ok(match late {
            // "1", "2" or "3" (no number parsing linked for one digit).
            Some(c) => self.ks.page_seen(now(), props, c.bytes().next().map_or(0, |d| d & 3)),
            None => self.ks.page(now(), props),
        })
    }

    /// A named event.
    fn track(&mut self, event: Option<String>, properties: &str) -> JsResult {
        let Some(name) = event else {
            return Err(fail(Error::new(codes::INVALID_ARGUMENT, crate::core::keystone::NEEDS_EVENT_NAME)));
        };
        // Test-only (cargo feature `trap-test`, never in pkg/): this event name panics, and the
        // wasm build's panic handler traps, so the wrapper's trap isolation can be tested.
        #[cfg(feature = "trap-test")]
        if name == "__keystone_trap__" {
            panic!();
        }
        let props = object_arg(properties, "track properties")?;
        self.ks.track(now(), &name, props).map_err(fail)?;
        Ok(())
    }

    /// Loads definitions (their JSON text); returns `{loaded, rejected}` as JSON text.
    fn load_segments(&mut self, definitions: &str) -> Result<String, Failure> {
        // A document that cannot be read (nested past 256 levels) is rejected whole, as definitions.
        let doc = json::parse(definitions, &BrowserHost, DEFINITIONS_DEPTH).map_err(|mut e| {
            e.code = codes::INVALID_DEFINITIONS;
            fail(e)
        })?;
        let report = self.ks.load_definitions(&doc, now()).map_err(fail)?;
        let mut rejected = Vec::with_capacity(report.rejected.len());
        for e in &report.rejected {
            rejected.push(error_value(e));
        }
        Ok(text(&Value::Obj(Map::new().with("loaded", str_array(&report.loaded)).with("rejected", Value::Arr(rejected)))))
    }

    /// Which variant of an experience to show: `{experience, variant, holdout}`; records the
    /// exposure once per page view. Errors with `unknown_id` for an unknown experience.
    fn decide(&mut self, id: Option<String>) -> Result<String, Failure> {
        let id = id.unwrap_or_default();
        self.ks.decide(&id, now()).map(|d| text(&d.to_value())).map_err(fail)
    }

    /// Ids of the segments the visitor is in, sorted.
    fn segments(&self) -> String {
        text(&str_array(self.ks.segments()))
    }

    /// Whether the visitor is in segment `id`.
    fn in_segment(&self, id: Option<String>) -> bool {
        id.is_some_and(|id| self.ks.in_segment(&id))
    }

    /// The profile document, as JSON text.
    fn profile(&self) -> String {
        text(&self.ks.document_at(now()))
    }

    /// Why the visitor is or is not in segment `id`; throws `unknown_id` for an unknown id.
    fn explain(&mut self, id: Option<String>) -> Result<String, Failure> {
        let id = id.unwrap_or_default();
        self.ks.explain(&id, now()).map(|v| text(&v)).map_err(fail)
    }

    /// Epoch ms of the next time-based membership change, or -1 when none is due.
    fn next_check(&self) -> f64 {
        self.ks.next_check(now()).unwrap_or(-1.0)
    }

    /// The anonymous id, or null before any consent needs one.
    fn anonymous_id(&self) -> Option<String> {
        Some(self.ks.anonymous_id()).filter(|s| !s.is_empty()).map(String::from)
    }

    /// The known user id, or null.
    fn user_id(&self) -> Option<String> {
        self.ks.user_id().map(String::from)
    }

    /// Re-evaluates time-windowed segments now.
    fn refresh(&mut self, report: bool) {
        if report {
            self.ks.report_now(now())
        } else {
            self.ks.refresh(now())
        }
    }

    /// Writes the profile to storage if it changed, rebased onto what storage holds now (other
    /// tabs' writes). The first refusal of storage becomes a `storage_unavailable` notice (the
    /// profile lives on in memory). Returns the anonymous id the wrapper keeps in the
    /// first-party cookie: None when nothing may be kept (no `personalization`) or no id yet.
    /// Reports (once) that storage refused a write (`ok` false).
    fn refused(&mut self, ok: bool) {
        if !ok && !self.storage_warned {
            self.storage_warned = true;
            self.ks.report(Error::new(codes::STORAGE_UNAVAILABLE, "storage refused the write; keeping the profile in memory"));
        }
    }

    fn persist(&mut self) -> Option<String> {
        if self.keep_out {
            let _ = self.ks.write(None, now());
        } else if self.ks.dirty() {
            let text = storage::get(&self.key_profile);
            let stored = text.as_deref().filter(|t| Some(*t) != self.seen.as_deref()).map(parse_stored);
            if let Some(v) = self.ks.write(stored.as_ref(), now()) {
                let s = json::write(&v, &BrowserHost);
                let ok = !s.is_empty() && storage::set(&self.key_profile, &s);
                self.seen = Some(s);
                self.refused(ok);
            }
            self.file_orphans();
        }
        let id = self.ks.anonymous_id();
        (self.ks.consent().personalization && !id.is_empty()).then(|| id.into())
    }

    /// Notifications since the last call, as JSON text `{n, m, q?, a?}`: `n` the notices
    /// (`[{type: "segment:enter", segment}, …]`), `m` whether `marketing` consent is granted now
    /// (data layer activation); with an endpoint, `q` the events made since the last call
    /// (Segment spec, each as its JSON text), `a` whether `analytics` consent holds (when not, the wrapper erases its
    /// queue) and `p` whether `personalization` does (when not, the queue is kept in memory only).
    fn drain(&mut self, changed: bool) -> String {
        let events = self.ks.take_outbox();
        let mut notices = Vec::new();
        // Moved out in place (a consuming loop linked an `IntoIter` of its own).
        let mut taken = self.ks.take_notices();
        for n in taken.iter_mut() {
            let (kind, key, val) = match n {
                Notice::Enter(s) => ("segment:enter", "segment", Value::Str(::core::mem::take(s))),
                Notice::Exit(s) => ("segment:exit", "segment", Value::Str(::core::mem::take(s))),
                Notice::Identify(u) => ("identify", "userId", Value::Str(::core::mem::take(u))),
                Notice::Reset(a) => ("reset", "anonymousId", if a.is_empty() { Value::Null } else { Value::Str(::core::mem::take(a)) }),
                Notice::Error(e) => ("error", "error", error_value(e)),
            };
            notices.push(Value::Obj(Map::new().with("type", kind).with(key, val)));
        }
        let mut out = Map::new().with("n", Value::Arr(notices)).with("m", self.ks.consent().marketing);
        // `trackSegments` reports to make (one tab at a time: see `Keystone::deferred`).
        if self.ks.reports_pending() {
            out.insert("r", Value::Bool(true));
        }
        // After a change (`changed`): `x`, the next time-based change (as `nextCheck`), saving the
        // wrapper a call per change.
        if changed {
            out.insert("x", Value::Num(self.next_check()));
        }
        if self.deliver {
            // Each event as its JSON text, which the queue stores and sends as it is (parsed into
            // objects and printed again by the wrapper, it cost a `track()` with delivery ≈ 5 µs).
            let mut q = Vec::with_capacity(events.len());
            for e in &events {
                q.push(Value::Str(text(&e.to_spec())));
            }
            out.insert("q", Value::Arr(q));
            out.insert("a", Value::Bool(self.ks.consent().analytics));
            out.insert("p", Value::Bool(self.ks.consent().personalization));
        }
        text(&Value::Obj(out))
    }
}

/// What the last `evalCondition` calls passed, parsed once: the saved groups (callers pass the
/// same, often large, object on every call), the attributes (a page evaluates many conditions
/// for the same visitor) and the condition (or one condition over many documents).
static GROUPS: Slot<Option<Groups>> = Slot::new(None);
static ATTRIBUTES: Slot<Option<Value>> = Slot::new(None);
static CONDITION: Slot<Option<Value>> = Slot::new(None);

/// GrowthBook-compatible `evalCondition(attributes, condition, savedGroups?)`, synchronous, over
/// the JSON text of its arguments (the wrapper stringifies them: one crossing each). An argument
/// left out (None) is the same text as in the previous call, already parsed. Text that is not
/// JSON (or nested too deeply) evaluates to false.
#[wasm_bindgen(js_name = evalCondition)]
pub fn eval_condition(attributes: Text, condition: Text, groups: Text) -> bool {
    let (attributes, condition, groups) = (attributes.string(), condition.string(), groups.string());
    if let Some(t) = groups {
        GROUPS.set(parse_arg(&t).ok().map(|v| Groups::new(if let Value::Obj(m) = v { m } else { Map::new() })));
    }
    // A call per argument (a loop over an array of the two linked the array iterator and its
    // partial drop: 110 B gzip more).
    fn keep(slot: &Slot<Option<Value>>, text: Option<String>) {
        if let Some(t) = text {
            slot.set(parse_arg(&t).ok());
        }
    }
    keep(&ATTRIBUTES, attributes);
    keep(&CONDITION, condition);
    GROUPS.with(|g| {
        ATTRIBUTES.with(|obj| {
            CONDITION.with(|cond| {
                let (Some(obj), Some(cond)) = (obj, cond) else { return false };
                let cx = crate::core::condition::Ctx { groups: g.as_ref(), host: &BrowserHost };
                crate::core::condition::eval_condition(obj, cond, &cx)
            })
        })
    })
}

// Benchmark-only exports (cargo feature `bench`; not in the shipped package).
#[cfg(feature = "bench")]
#[path = "facade_bench.rs"]
mod bench;
