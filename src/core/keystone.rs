//! The core state machine behind the public API: one visitor's profile, consent, loaded
//! definitions, membership, and the events waiting to be delivered.
//!
//! Every method takes `now` (epoch ms) from the caller and never calls out except through the
//! [`Host`]. Listener notifications (segment enter/exit, identify, reset, errors) are queued in
//! [`Keystone::take_notices`] and delivered by the caller after the API call returns, never
//! re-entrantly.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::codec;
use crate::core::consent::Consent;
use crate::core::error::{codes, Error};
use crate::core::event::{Event, Kind};
use crate::core::experience::{self, Decision, Orchestrator};
use crate::core::host::{random16, Host};
use crate::core::identity::{self, Aside, Change, ASIDE_MAX};
use crate::core::ids::{hex, is_uuid, uuid_v4};
use crate::core::journal::{Entry, Journal, Op, KEEP_MS};
use crate::core::profile::Profile;
use crate::core::segment::{self, Definitions, LoadReport};
use crate::core::time::{parse_duration, DAY, MINUTE, MUST_BE_DURATION};
use crate::core::value::{Map, Value};


/// An event's channel: queued for delivery (with `analytics` consent).
pub const WIRE: u8 = 1;
/// An event's channel: recorded in the profile (with `personalization` consent).
pub const PROFILE: u8 = 2;
/// The library name and version reported in every event's `context.library`.
pub const LIBRARY: &str = "keystone-cdp";
/// This build's version (from Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest event name `track` accepts (bytes).
pub const MAX_EVENT_NAME_BYTES: usize = 512;

/// `trackSegments`: the changes of membership kept between two reports, each sent as it was made;
/// past these, a segment's further changes send the net one.
const CHANGES_MAX: usize = 256;

/// The error of a `track` without a name (an empty one, or, at the facade, none at all).
pub const NEEDS_EVENT_NAME: &str = "track needs a non-empty event name string";
/// The largest properties object `track` accepts (approximate JSON bytes; Segment's own limit
/// for one call is 32 KB).
pub const MAX_PROPERTIES_BYTES: usize = 32 * 1024;
/// The largest the traits of a profile may grow (approximate JSON bytes), all traits together.
pub const MAX_TRAITS_BYTES: usize = 32 * 1024;

/// `invalid_argument` for properties (of `track` or `page`) over [`MAX_PROPERTIES_BYTES`].
pub fn check_properties(properties: &Map) -> Result<(), Error> {
    if properties.approx_size() > MAX_PROPERTIES_BYTES {
        return Err(Error::new(codes::INVALID_ARGUMENT, "event properties are limited to 32 KB"));
    }
    Ok(())
}

/// Options the core needs (the browser layer handles the rest).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Inactivity after which a new session starts (ms).
    pub session_timeout: f64,
    /// How long behaviour is kept (ms).
    pub retention: f64,
    /// The browser's Global Privacy Control signal.
    pub gpc: bool,
    /// Initial consent.
    pub consent: Consent,
    /// Send `Segment Entered` / `Segment Exited` track events (option `trackSegments`).
    pub track_segments: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { session_timeout: 30.0 * MINUTE, retention: 90.0 * DAY, gpc: false, consent: Consent::default_for(false), track_segments: false }
    }
}

impl Options {
    /// Reads the core's options from the `Keystone.init` options object.
    pub fn from_value(v: &Value, gpc: bool) -> Result<Options, Error> {
        let mut o = Options { gpc, consent: Consent::default_for(gpc), ..Options::default() };
        let Some(m) = v.as_obj() else { return Ok(o) };
        if let Some(d) = m.get("sessionTimeout").filter(|v| !v.is_null()) {
            o.session_timeout = duration_option(d, "sessionTimeout")?;
        }
        if let Some(d) = m.get("retention").filter(|v| !v.is_null()) {
            o.retention = duration_option(d, "retention")?;
        }
        o.track_segments = m.get("trackSegments").is_some_and(Value::truthy);
        match m.get("consent") {
            None | Some(Value::Null) => {}
            Some(Value::Str(s)) if s == "opt-in" => o.consent = Consent::none(),
            Some(Value::Str(s)) if s == "opt-out" => {}
            Some(c) => {
                if !o.consent.merge(c, gpc) {
                    return Err(Error::new(codes::INVALID_ARGUMENT, "consent must be \"opt-in\", \"opt-out\" or an object of booleans"));
                }
            }
        }
        Ok(o)
    }
}

/// A duration option: text only (`"30m"`, `"90d"`): a bare number is refused, since `90` meant as
/// days would silently be 90 ms.
fn duration_option(v: &Value, name: &str) -> Result<f64, Error> {
    v.as_str().and_then(parse_duration).ok_or_else(|| {
        let mut msg = String::from(name);
        msg.push_str(" ");
        msg.push_str(MUST_BE_DURATION);
        Error::new(codes::INVALID_ARGUMENT, msg)
    })
}

/// A notification for page listeners, delivered after the API call returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// `segment:enter` with the segment id.
    Enter(String),
    /// `segment:exit` with the segment id.
    Exit(String),
    /// `identify` with the user id.
    Identify(String),
    /// `reset` with the new anonymous id.
    Reset(String),
    /// `error`.
    Error(Error),
}

/// One visitor's Keystone state.
pub struct Keystone {
    opts: Options,
    host: Box<dyn Host>,
    profile: Profile,
    consent: Consent,
    defs: Definitions,
    members: Vec<String>,
    /// Which segments of `defs` held at the last evaluation, by index (None: not since `defs`
    /// changed).
    hits: Option<Vec<bool>>,
    notices: Vec<Notice>,
    outbox: Vec<Event>,
    dirty: bool,
    exp: Orchestrator,
    /// Time of the last evaluation (epoch ms).
    clock: f64,
    /// This tab's operations not yet known to be in storage (cross-tab sync, `journal.rs`).
    journal: Journal,
    /// The identity changed here since the last write: the next write replaces the stored
    /// profile instead of rebasing onto it.
    identity_changed: bool,
    /// A known profile set aside by a quiet follow of the shared id, not reported yet.
    quiet: bool,
    /// The profile was read from storage (not created fresh).
    restored: bool,
    /// The anonymous id was made here and was never in storage: on a tie with the identity
    /// another tab stored (two tabs starting at once, or one just given consent), the stored wins.
    unshared: bool,
    /// The Segment spec `context` of events made now (see `set_context`).
    spec: Value,
    aside: Aside,
    aside_dirty: bool,
    /// This tab's operations in the profiles it set aside or must set aside: (user, when, the
    /// operations, the stored form to set aside when that user has none). Set aside here, or
    /// left unwritten by another tab's logout or switch (orphans), or a known profile this tab's
    /// write replaced unheard (two logins at once: the stored form). Kept [`KEEP_MS`] and filed
    /// again when the set-aside profiles lack them: each tab reads, changes and writes those
    /// without a lock, so another tab's write from an older read can drop them
    /// ([`Keystone::file_orphans`]).
    filed: Vec<(String, f64, Vec<Entry>, Value)>,
    /// `trackSegments`: the segments whose membership changed in this tab since the last report
    /// (sorted). Only those are reported: membership that depends on a tab's own page (context)
    /// differs between open tabs, and must not be reported back and forth between them.
    unreported: Vec<String>,
    /// A login made before any consent, not sent yet (the profile's anonymous id is the one it
    /// took).
    unsent: bool,
    /// `trackSegments`: each change of membership since the report, in order (a segment once per
    /// change; at most [`CHANGES_MAX`]): one that changed more often than the report's comparison
    /// shows (entered and left again…) is reported change by change.
    changes: Vec<String>,
    /// `trackSegments`: the next report compares all of the membership with what the profile
    /// last reported (at load, with new definitions, after an identity change).
    report_all: bool,
    /// `trackSegments` reports are made only by [`Keystone::report_now`] (the page's tabs reach
    /// a change at the same moment: the wrapper makes them one tab at a time, each after reading
    /// what the one before stored). Off: each evaluation reports.
    pub deferred: bool,
}

impl Keystone {
    /// Starts from the stored profile (if any), creating a fresh anonymous one when there is none
    /// or it is unreadable (each problem becomes an `error` notice).
    pub fn new(opts: Options, host: Box<dyn Host>, stored: Option<&Value>, now: f64) -> Keystone {
        let consent = opts.consent;
        let mut ks = Keystone {
            opts,
            host,
            profile: Profile::default(),
            consent,
            defs: Definitions::default(),
            members: Vec::new(),
            hits: None,
            notices: Vec::new(),
            outbox: Vec::new(),
            dirty: false,
            exp: Orchestrator::default(),
            clock: now,
            journal: Journal::new(String::new()),
            identity_changed: false,
            quiet: false,
            restored: false,
            unshared: false,
            spec: Value::Null,
            aside: Aside::default(),
            aside_dirty: false,
            filed: Vec::new(),
            unreported: Vec::new(),
            unsent: false,
            changes: Vec::new(),
            report_all: true,
            deferred: false,
        };
        // The first 8 characters of a UUID v4 of 16 random bytes: the hex of the first 4 (made
        // directly: `String::truncate` kept a char-boundary assertion and its message: 19 B gzip less).
        ks.journal.tab = hex(&random16(ks.host.as_ref())[..4]);
        let restored = stored.and_then(|v| {
            let (p, errors) = codec::decode(v);
            ks.report_all(errors);
            p
        });
        match restored {
            Some(mut p) => {
                if p.first_seen == 0.0 {
                    p.first_seen = now;
                    p.last_seen = now;
                }
                p.prune(now - ks.opts.retention);
                // Without a readable id, the id cookie's (if any) is the visitor's.
                ks.restored = !p.anonymous_id.is_empty();
                ks.profile = p;
            }
            None => ks.profile = Profile::new(String::new(), now),
        }
        ks.ensure_id();
        ks.evaluate(now, false);
        ks
    }

    /// Creates the anonymous id once some consent needs one (none is created before consent).
    fn ensure_id(&mut self) {
        if self.profile.anonymous_id.is_empty() && (self.consent.analytics || self.consent.personalization) {
            self.first_id(uuid_v4(random16(self.host.as_ref())));
        }
    }

    /// A grant heard from another tab, before it applies here, with the ids of the profile that
    /// tab stored: its anonymous id `id` is this tab's first when that profile is anonymous or
    /// this tab's person's (the tabs share one; one made here would be left behind, aliased to
    /// nobody), and this tab's login, when it is that profile's too, was sent there. Another
    /// person's id is never taken: nothing links two people.
    pub fn grant_of(&mut self, id: &str, user: Option<&str>) {
        if user.is_none() || user == self.user_id() {
            if is_uuid(id) {
                self.first_id(id.into());
            }
            self.unsent &= user.is_none();
        }
    }

    /// The anonymous id `id` for a profile that has none yet.
    fn first_id(&mut self, id: String) {
        if self.profile.anonymous_id.is_empty() {
            self.profile.anonymous_id = id.clone();
            // A login made before consent: the id made now is the known person's.
            if self.profile.user_id.is_some() {
                crate::core::merge::link(&mut self.profile.linked, &id);
            }
            self.dirty = true;
            self.unshared = true;
        }
    }

    /// Adopts the anonymous id kept in the first-party cookie: always when `authoritative` (the
    /// `cookieDomain` option: the cookie is the source of truth across subdomains), otherwise
    /// only when no profile was restored from storage.
    ///
    /// A restored known profile whose ids the cookie contradicts (another subdomain logged out
    /// or switched users since, or the cookie was made again) is set aside, and a fresh anonymous
    /// profile starts under the cookie's id, as after `reset()`: a known person's identity never
    /// goes out under an id that may be someone else's (their profile comes back at their next
    /// login). An anonymous profile takes the cookie's id (a re-made cookie is the common case).
    /// Load the set-aside profiles first ([`Keystone::load_aside`]).
    pub fn adopt_anonymous_id(&mut self, id: &str, authoritative: bool) {
        if is_uuid(id) && self.profile.anonymous_id != id && (authoritative || !self.restored) {
            self.take_id(id, self.clock, self.restored, Some(false));
        }
    }

    /// The shared id `id` for this profile: a known person's profile (`established`: not one
    /// this start has just made) that `id` is not linked to is set aside and a fresh anonymous
    /// one starts under `id`; any other takes the id. `notify`: evaluated with (`Some(true)`: a
    /// `reset` notice and membership changes, as a logout) or without notices, or not at all
    /// (`None`: the caller's own identity change follows and reports the net change).
    fn take_id(&mut self, id: &str, now: f64, established: bool, notify: Option<bool>) {
        if established && self.profile.user_id.is_some() && !self.profile.linked.iter().any(|l| l == id) {
            self.report_due(now);
            self.file_here(now, false);
            identity::reset(&mut self.profile, &mut self.aside, id.into(), now, self.opts.retention);
            self.aside_dirty = true;
            self.journal.clear();
            if notify == Some(true) {
                self.notices.push(Notice::Reset(id.into()));
            }
            self.exp.identity_changed(id, false);
            match notify {
                Some(n) => self.evaluate(now, n),
                None => self.quiet = true,
            }
        } else {
            self.profile.anonymous_id = id.into();
        }
        self.mark_identity_changed();
    }

    /// [`Keystone::adopt_anonymous_id`] while the page is open: the profile is an established one
    /// (a known person's is set aside, whether restored or logged in on this page, with the
    /// notices of a logout when `heard`; without, right before the page's own login or logout,
    /// which reports the net change).
    pub fn follow_cookie_id(&mut self, id: &str, now: f64, heard: bool) {
        if is_uuid(id) && self.profile.anonymous_id != id {
            self.take_id(id, now, true, heard.then_some(true));
        }
    }

    /// Reports a quiet follow of the shared id that no login or logout followed (one that failed):
    /// a `reset` notice and the membership changes, as a logout. Returns whether there was one.
    pub fn settle_follow(&mut self, now: f64) -> bool {
        let q = core::mem::take(&mut self.quiet);
        if q {
            self.notices.push(Notice::Reset(self.profile.anonymous_id.clone()));
            self.evaluate(now, true);
        }
        q
    }

    /// Marks an identity change made in this tab (identify, reset): the next write replaces the
    /// stored profile rather than rebasing onto it. Callers persist at once afterwards.
    pub fn mark_identity_changed(&mut self) {
        self.identity_changed = true;
        self.dirty = true;
    }

    /// The anonymous id (empty before any consent needs one).
    pub fn anonymous_id(&self) -> &str {
        &self.profile.anonymous_id
    }

    /// The known user id, if identified.
    pub fn user_id(&self) -> Option<&str> {
        self.profile.user_id.as_deref()
    }

    /// Login (DESIGN §5): validates first (a malformed email is `invalid_email` and changes
    /// nothing), then applies the transition at once: same user → traits only; anonymous → the
    /// anonymous profile merges into the known one (its set-aside copy, if any); another user →
    /// the current one is set aside and the new one starts under a new anonymous id. Queues the
    /// Segment `identify` event (and `alias` with `previousId` = the anonymous id on a change of
    /// identity) and the `identify` notice. The caller persists at once ([`Keystone::take_aside`]).
    pub fn identify(&mut self, now: f64, email: &str, traits: Map, options: &Value) -> Result<(), Error> {
        let login = identity::login(email, traits, options, self.host.as_ref())?;
        // Checked against the profile they go into: another user's is not this one.
        let none = Map::new();
        let same = self.user_id() == Some(&login.user_id);
        traits_fit(if !same && self.user_id().is_some() { &none } else { &self.profile.traits }, &login.traits)?;
        self.quiet = false;
        if !same {
            self.report_due(now);
            self.file_here(now, false);
        }
        let aid = self.new_id();
        let change = identity::identify(&mut self.profile, &mut self.aside, &login, aid, now, self.opts.retention, &self.defs, self.host.as_ref());
        let switched = change != Change::Traits;
        let merged = matches!(change, Change::Merged(_));
        self.aside_dirty |= switched;
        self.check_aside();
        let traits = login.traits.clone();
        // Before any consent (not sent here): sent at the grant (see `set_consent`).
        self.unsent |= switched && !self.consent.analytics && !self.consent.personalization;
        self.emit(now, Kind::Identify, login.traits, None);
        if let Change::Merged(prev) | Change::Switched(prev) = change {
            self.emit(now, Kind::Alias, Map::new(), Some(prev));
        }
        self.notices.push(Notice::Identify(login.user_id));
        self.dirty = true;
        if switched {
            // The profile replaced here is written as is, never rebased onto another tab's write.
            // The anonymous visitor's login is the same person: this tab's operations stay
            // journaled, the login's traits with them, so when another tab logged them in at
            // once and wrote over this write, this tab replays onto that what it lacks.
            if merged {
                self.journal.push(Op::Traits { traits, ts: now }, now);
            } else {
                self.journal.clear();
            }
            self.identity_changed = true;
            self.follow_identity(merged);
        }
        if merged {
            segment::rejoin(&self.defs, &mut self.profile, self.host.as_ref());
        }
        self.evaluate(now, true);
        Ok(())
    }

    /// Logout: the known profile is set aside; a new anonymous id and an empty profile start.
    pub fn reset(&mut self, now: f64) {
        self.report_due(now);
        let aid = self.new_id();
        self.file_here(now, false);
        identity::reset(&mut self.profile, &mut self.aside, aid.clone(), now, self.opts.retention);
        self.unsent = false;
        self.quiet = false;
        self.aside_dirty = true;
        self.dirty = true;
        self.journal.clear();
        self.identity_changed = true;
        self.notices.push(Notice::Reset(aid));
        self.follow_identity(false);
        self.evaluate(now, true);
    }

    /// The anonymous id a logout or a switch of users starts; none without a consent that needs
    /// one (opt-in before consent, after forget(), analytics and personalization withdrawn).
    fn new_id(&self) -> String {
        if self.consent.analytics || self.consent.personalization { uuid_v4(random16(self.host.as_ref())) } else { String::new() }
    }

    /// Experience decisions follow an identity change made within the page view (see
    /// [`experience::Experiences::identity_changed`]).
    fn follow_identity(&mut self, same_person: bool) {
        self.report_all = true;
        // Borrowed from the profile (a field apart from `exp`), not copied.
        let identity = self.profile.user_id.as_deref().unwrap_or(&self.profile.anonymous_id);
        self.exp.identity_changed(identity, same_person);
    }

    /// Whether there are operations of this tab to file into the set-aside profiles, or to check
    /// there (the caller loads the set-aside profiles, calls [`Keystone::file_orphans`] and
    /// writes them).
    pub fn has_orphans(&self) -> bool {
        !self.filed.is_empty()
    }

    /// Files this tab's operations into the set-aside profile of the user they belong to (those
    /// it does not hold yet, by this tab's writer mark). Without one, the stored form kept with
    /// them (if any: another tab replaced the profile without setting it aside, two logins at
    /// once) is set aside, once, so the person finds it at their next login. A profile taken back
    /// by a login, or erased, is left alone; nothing is written when nothing lacks (so two tabs
    /// never answer each other's writes for ever). Filings older than [`KEEP_MS`] are dropped.
    pub fn file_orphans(&mut self, now: f64) {
        let mut filed = ::core::mem::take(&mut self.filed);
        // Dropped together KEEP_MS after the last, or past ASIDE_MAX filings (a page changing
        // identity many times a second).
        if filed.len() > ASIDE_MAX || filed.last().is_some_and(|f| f.1 < now - KEEP_MS) {
            filed.clear();
        }
        for (u, _, ops, copy) in &mut filed {
            let copy = ::core::mem::take(copy);
            let q = self.aside.take(u, now, self.opts.retention);
            self.check_aside();
            let set = q.is_some();
            let (Some(mut q), true) = (q.or_else(|| codec::decode(&copy).0), self.consent.personalization) else { continue };
            let held = q.writer_seq(&self.journal.tab);
            if set && !ops.iter().any(|e| e.seq > held) {
                // Nothing lacks: put back, not written.
                self.aside.put(&q, now, self.opts.retention);
                continue;
            }
            let mut last = held;
            for e in ops.iter() {
                if e.seq > held {
                    apply_op(&self.defs, &mut q, &e.op, self.opts.session_timeout, self.host.as_ref());
                    last = last.max(e.seq);
                }
            }
            q.set_writer(&self.journal.tab, last);
            self.aside.put(&q, now, self.opts.retention);
            self.aside_dirty = true;
        }
        self.filed = filed;
    }

    /// The known profile leaves this tab (set aside here, or another tab's logout or switch): it
    /// is marked as holding all of this tab's operations, which are kept to be filed
    /// ([`Keystone::file_orphans`]) with its stored form when `copy`.
    fn file_here(&mut self, now: f64, copy: bool) {
        if let Some(u) = self.profile.user_id.clone() {
            self.profile.set_writer(&self.journal.tab, self.journal.seq());
            let c = if copy { codec::encode(&self.profile) } else { Value::Null };
            self.filed.push((u, now, self.journal.take_all(), c));
        }
    }

    /// Replaces the set-aside profiles with their stored form (read fresh before each identity
    /// change, since another tab may have changed them).
    pub fn load_aside(&mut self, stored: &Value) {
        self.aside = Aside::from_value(stored);
        self.check_aside();
    }

    /// Drops the set-aside profiles unused for longer than the retention (then written again).
    pub fn prune_aside(&mut self, now: f64) {
        if self.aside.prune(now, self.opts.retention) {
            self.aside_dirty = true;
        }
    }

    /// Reports damage found in the set-aside profiles (`storage_corrupt`); they are written
    /// back without it.
    fn check_aside(&mut self) {
        if ::core::mem::take(&mut self.aside.faults) {
            self.aside_dirty = true;
            self.report(Error::new(codes::STORAGE_CORRUPT, "a set-aside profile was damaged"));
        }
    }

    /// The stored form of the set-aside profiles when they changed (None otherwise, and always
    /// None without `personalization` consent).
    pub fn take_aside(&mut self) -> Option<Value> {
        if !self.aside_dirty || !self.consent.personalization {
            return None;
        }
        self.aside_dirty = false;
        Some(self.aside.to_value())
    }

    /// Queues each of `errors` as an `error` notice.
    fn report_all(&mut self, mut errors: Vec<Error>) {
        // Moved out in place (a consuming loop linked an `IntoIter` of errors and its drop).
        for e in errors.iter_mut() {
            let e = ::core::mem::replace(e, Error { code: "", message: String::new(), segment_id: None, path: None });
            self.notices.push(Notice::Error(e));
        }
    }

    /// Queues an `identify` (with traits) or `alias` (with the previous id) event for delivery.
    fn emit(&mut self, now: f64, kind: Kind, traits: Map, previous_id: Option<String>) {
        if self.consent.analytics {
            let mut e = self.event(now, kind, "", Map::new());
            e.traits = traits;
            e.previous_id = previous_id;
            self.outbox.push(e);
        }
    }

    /// The current consent.
    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// Replaces the page context (captured by the browser layer at init and on navigation).
    /// Its `spec` member (the Segment spec `context` of events: page, campaign, locale,
    /// timezone, userAgent, library — shaped by the wrapper) is kept apart from the profile's.
    pub fn set_context(&mut self, context: Value) {
        if let Value::Obj(mut m) = context {
            if let Some(spec) = m.remove("spec") {
                self.spec = spec;
            }
            // Another page (an SPA navigation, whether or not it is captured as a page view; not
            // an anchor): a new page view for the experiences (DESIGN §13).
            let next = Value::Obj(m);
            if page_of(&next) != page_of(&self.profile.context) {
                self.exp.new_page_view();
            }
            self.profile.context = next;
        }
    }

    /// A page view.
    pub fn page(&mut self, now: f64, properties: Map) -> u8 {
        self.exp.new_page_view();
        self.page_seen(now, properties, WIRE | PROFILE)
    }

    /// The view of the page being viewed, recorded in the `channels` ([`WIRE`], [`PROFILE`]) it
    /// was not recorded in yet, once consent allows it (the view when no consent allowed it, or
    /// allowed only one channel): the same page view, whose experience decisions stay. Returns the
    /// channels it was recorded in.
    pub fn page_seen(&mut self, now: f64, mut properties: Map, channels: u8) -> u8 {
        // The Segment spec's page properties, from the current context, unless given.
        for &k in &["path", "referrer", "search", "title", "url"] {
            if !properties.contains_key(k) {
                if let Some(v) = self.profile.context.get(k) {
                    properties.insert(k, v.clone());
                }
            }
        }
        self.record_in(now, Kind::Page, "Page Viewed", properties, channels)
    }

    /// A named event.
    pub fn track(&mut self, now: f64, name: &str, properties: Map) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::new(codes::INVALID_ARGUMENT, NEEDS_EVENT_NAME));
        }
        // Bounds: a runaway name or payload must not fill the profile, storage and the queue.
        if name.len() > MAX_EVENT_NAME_BYTES {
            return Err(Error::new(codes::INVALID_ARGUMENT, "event names are limited to 512 bytes"));
        }
        check_properties(&properties)?;
        self.record(now, Kind::Track, name, properties);
        Ok(())
    }

    /// `invalid_argument` when merging `traits` would grow the profile's traits over
    /// [`MAX_TRAITS_BYTES`] (a runaway value must not fill storage). A change that does not grow
    /// them is always accepted (traits over the bound can still shrink).
    pub fn check_traits(&self, traits: &Map) -> Result<(), Error> {
        traits_fit(&self.profile.traits, traits)
    }

    /// `setTraits`: merges traits into the profile and emits a Segment `identify` event.
    pub fn set_traits(&mut self, now: f64, traits: Map) {
        self.apply(Op::Traits { traits: traits.clone(), ts: now }, now);
        if self.consent.analytics {
            let mut e = self.event(now, Kind::Identify, "", Map::new());
            e.traits = traits;
            self.outbox.push(e);
        }
        self.evaluate(now, true);
    }

    /// Applies an operation to the profile and journals it (only with `personalization`:
    /// without it nothing is kept).
    fn apply(&mut self, op: Op, now: f64) {
        if !self.consent.personalization {
            return;
        }
        apply_op(&self.defs, &mut self.profile, &op, self.opts.session_timeout, self.host.as_ref());
        self.journal.push(op, now);
        self.dirty = true;
    }

    fn record(&mut self, now: f64, kind: Kind, name: &str, properties: Map) {
        self.record_in(now, kind, name, properties, WIRE | PROFILE);
    }

    /// Records an event in the `channels` consent allows; returns those it was recorded in.
    fn record_in(&mut self, now: f64, kind: Kind, name: &str, properties: Map, channels: u8) -> u8 {
        let event = self.event(now, kind, name, properties.clone());
        let op = Op::Event { page: kind == Kind::Page, name: name.into(), ts: now, props: properties, id: event.message_id.clone() };
        let mut done = 0;
        if channels & PROFILE != 0 && self.consent.personalization {
            self.apply(op, now);
            done |= PROFILE;
        }
        if channels & WIRE != 0 && self.consent.analytics {
            self.outbox.push(event);
            done |= WIRE;
        }
        self.evaluate(now, true);
        done
    }

    /// A Segment-spec event made now by the current identity.
    fn event(&self, now: f64, kind: Kind, name: &str, properties: Map) -> Event {
        Event {
            kind,
            name: if kind == Kind::Page { String::new() } else { name.into() },
            properties,
            traits: Map::new(),
            timestamp: now,
            message_id: uuid_v4(random16(self.host.as_ref())),
            anonymous_id: self.profile.anonymous_id.clone(),
            user_id: self.profile.user_id.clone(),
            previous_id: None,
            context: self.spec.clone(),
        }
    }

    /// `setConsent`: merges the categories named. Granting creates the anonymous id if needed
    /// (the caller then persists at once); withdrawing `personalization` keeps the profile in
    /// memory only (the caller erases what was stored).
    pub fn set_consent(&mut self, v: &Value, now: f64) -> Result<(), Error> {
        let before = self.consent.personalization;
        if !self.consent.merge(v, self.opts.gpc) {
            return Err(Error::new(codes::INVALID_ARGUMENT, "setConsent needs an object of booleans"));
        }
        // Personalization withdrawn, analytics kept: the changes made until now are reported now
        // (no membership is evaluated after). Not when analytics goes: its queue is erased.
        if before && !self.consent.personalization {
            self.consent.personalization = true;
            self.report_due(now);
            self.consent.personalization = false;
            // What was stored is erased: this tab's profile is no longer the shared one, and its
            // journal of changes already stored must not be replayed onto another profile. When
            // another tab grants consent again and writes its profile, this tab adopts it (as a
            // tab whose id was never stored does) instead of writing its own back over it.
            self.unshared = true;
            self.journal.clear();
        }
        self.ensure_id();
        // A login made before any consent (opt-in) is sent with the first grant of `analytics`:
        // its `identify` with the profile's traits, and its `alias` of the anonymous id it took
        // (the one made now on a first visit, or at a switch of users) (DESIGN §5).
        if self.consent.analytics {
            if ::core::mem::take(&mut self.unsent) {
                self.emit(now, Kind::Identify, self.profile.traits.clone(), None);
                self.emit(now, Kind::Alias, Map::new(), Some(self.profile.anonymous_id.clone()));
            }
        }
        if self.consent.personalization && !before {
            self.dirty = true;
        }
        self.evaluate(now, true);
        Ok(())
    }

    /// `forget()`: withdraws all consent and starts a fresh anonymous state (no id until
    /// consent is granted again). The caller erases storage and cookies.
    pub fn forget(&mut self, now: f64) {
        self.consent = Consent::none();
        let context = ::core::mem::take(&mut self.profile.context);
        self.profile = Profile::new(String::new(), now);
        self.profile.context = context;
        self.exp.draw.clear(); // the next visitor's decisions are not drawn from this one's id
        self.unsent = false;
        self.journal.clear();
        self.filed.clear();
        self.outbox.clear();
        self.dirty = false;
        self.identity_changed = false;
        self.evaluate(now, true);
        // Nothing of before is reported, not even as a change made and undone (a bounce).
        self.unreported.clear();
        self.changes.clear();
    }

    /// Rebases onto the stored profile another tab wrote: the stored profile plus this tab's
    /// operations it does not hold yet. Keeps this tab's page context. Returns false (and
    /// changes nothing) when the stored value is unusable or this tab must not adopt it.
    pub fn rebase(&mut self, stored: &Value, now: f64) -> bool {
        if !self.consent.personalization || self.identity_changed {
            return false;
        }
        let (Some(mut p), _) = codec::decode(stored) else { return false };
        // Unusable: nothing restorable, or no valid id (this tab keeps its own).
        if p.first_seen == 0.0 || p.anonymous_id.is_empty() {
            return false;
        }
        // An identity older than this tab's (written by a tab that had not yet heard this tab's
        // login or logout), or as new but losing the tie (two tabs changed it at once) unless
        // this tab's id was never stored: not adopted; this tab writes its own back, and the
        // other tab follows that.
        if !self.unshared && identity::stamp_order(&p, &self.profile).is_lt() {
            self.dirty = true;
            return false;
        }
        p.prune(now - self.opts.retention);
        let held = p.writer_seq(&self.journal.tab);
        let mut replayed = false;
        // Another tab changed the identity (login as someone else, or logout): this tab's pending
        // operations belonged to the previous identity and must not leak into the new one.
        // (An anonymous visitor who logs in elsewhere is the same person: those operations replay.)
        let left = self.profile.user_id.is_some() && p.user_id != self.profile.user_id;
        let reset = p.user_id.is_none() && p.anonymous_id != self.profile.anonymous_id && p.epoch > self.profile.epoch;
        if left || reset {
            if left {
                // With the copy to set aside if the other tab did not: with all of this tab's work.
                self.file_here(now, true);
            }
            self.journal.clear();
        }
        for op in self.journal.after(held) {
            apply_op(&self.defs, &mut p, op, self.opts.session_timeout, self.host.as_ref());
            replayed = true;
        }
        p.context = ::core::mem::take(&mut self.profile.context);
        // Another tab changed the identity: this tab follows, and its page hears about it.
        if p.user_id != self.profile.user_id {
            match &p.user_id {
                Some(u) => self.notices.push(Notice::Identify(u.clone())),
                None => self.notices.push(Notice::Reset(p.anonymous_id.clone())),
            }
        } else if p.user_id.is_none() && p.anonymous_id != self.profile.anonymous_id && !self.profile.anonymous_id.is_empty() && p.epoch > self.profile.epoch {
            self.notices.push(Notice::Reset(p.anonymous_id.clone()));
        }
        let same_person = !(left || reset);
        let followed = p.user_id != self.profile.user_id || p.anonymous_id != self.profile.anonymous_id;
        self.profile = p;
        self.unshared = false;
        if followed {
            self.follow_identity(same_person);
        }
        if replayed {
            self.dirty = true;
        }
        self.evaluate(now, true);
        true
    }

    /// Whether the profile changed since the last write (and may be persisted).
    pub fn dirty(&self) -> bool {
        self.dirty && self.consent.personalization
    }

    /// The stored form to write when the profile changed (None otherwise, and always None
    /// without `personalization`). `stored` is what storage holds now: unless the identity
    /// changed here, this tab rebases onto it first, so no other tab's changes are lost.
    pub fn write(&mut self, stored: Option<&Value>, now: f64) -> Option<Value> {
        if !self.dirty || !self.consent.personalization {
            return None;
        }
        if let Some(v) = stored {
            // Not adopted: this write replaces it. A known profile this tab has not set aside
            // itself (another tab's login, unheard: two logins at once) is set aside, not lost.
            if !self.rebase(v, now) {
                if let Some(u) = v.get("uid").and_then(Value::as_str) {
                    if Some(u) != self.user_id() && !self.aside.user_ids().any(|x| x == u) {
                        self.filed.push((u.into(), now, Vec::new(), v.clone()));
                    }
                }
            }
        }
        self.identity_changed = false;
        self.unshared = false;
        self.dirty = false;
        self.profile.prune(now - self.opts.retention);
        self.profile.set_writer(&self.journal.tab, self.journal.seq());
        self.journal.trim(self.journal.seq(), now);
        Some(codec::encode(&self.profile))
    }


    /// Loads new definitions. `Err` (and nothing changes) when the document is not valid as a
    /// whole; otherwise the valid definitions replace the previous ones.
    pub fn load_definitions(&mut self, doc: &Value, now: f64) -> Result<LoadReport, Error> {
        let (defs, mut report) = segment::parse(doc, self.opts.retention)?;
        let mut ids = Vec::with_capacity(defs.segments.len());
        for d in &defs.segments {
            ids.push(d.id.as_str());
        }
        let experiences = experience::parse(doc, &ids, self.opts.retention, &mut report)?;
        // Definitions without behaviour do not align the state (`segment::prepare` leaves it for
        // the first load): let it go here (operator and score states kept as foreign), or a
        // definition loaded again later would resume from a state that missed the events in between.
        #[cfg(feature = "segments")]
        if defs.nodes.is_empty() && defs.scores.is_empty() {
            crate::core::behaviour::align(&mut self.profile.behaviour, &[], &[], &[], &[], &crate::core::condition::Ctx { groups: None, host: self.host.as_ref() });
        }
        self.defs = defs;
        self.hits = None;
        // New definitions are back-filled now: that state is stored even if no event follows
        // (a reload would back-fill again, without what left the ring or the retention since).
        self.dirty = true;
        self.report_all = true;
        self.exp.set(experiences);
        self.evaluate(now, true);
        Ok(report)
    }

    /// Re-evaluates time-windowed segments at `now`.
    pub fn refresh(&mut self, now: f64) {
        // What left the retention while the page stayed open leaves the profile too, and storage.
        if self.profile.next_drop(self.opts.retention) <= now {
            self.dirty = true;
        }
        self.profile.prune(now - self.opts.retention);
        self.evaluate(now, true);
    }

    /// Refreshes and makes the `trackSegments` reports due (see `deferred`).
    pub fn report_now(&mut self, now: f64) {
        let d = ::core::mem::replace(&mut self.deferred, false);
        self.refresh(now);
        self.deferred = d;
    }

    /// Makes the deferred `trackSegments` reports now: before a change of identity or consent,
    /// after which they would be lost, or made under the next identity.
    fn report_due(&mut self, now: f64) {
        if self.reports_pending() {
            self.report_now(now);
        }
    }

    /// Whether `trackSegments` reports wait for [`Keystone::report_now`].
    pub fn reports_pending(&self) -> bool {
        self.reportable() && (self.report_all || !self.unreported.is_empty())
    }

    fn reportable(&self) -> bool {
        self.opts.track_segments && self.exp.loaded && self.consent.personalization && self.consent.analytics
    }

    /// Recomputes membership; with `notify`, queues enter/exit notices for the changes.
    fn evaluate(&mut self, now: f64, notify: bool) {
        self.clock = now;
        let mut hits = Vec::new();
        if self.consent.personalization {
            // New or changed scores are back-filled before the document reads them.
            segment::prepare(&self.defs, &mut self.profile, self.host.as_ref());
            let doc = if self.defs.uses_doc { Some(self.document_for_segments(now)) } else { None };
            hits = segment::evaluate(&self.defs, &mut self.profile, doc.as_ref(), now, self.host.as_ref());
        }
        // Most events change no membership: then the ids are neither rebuilt nor compared.
        if self.hits.as_ref() != Some(&hits) {
            let next = segment::members(&self.defs, &hits);
            self.membership(next, notify);
            self.hits = Some(hits);
        }
        self.report_segments(now);
    }

    /// Replaces the membership; with `notify`, queues enter/exit notices for the changes.
    fn membership(&mut self, next: Vec<String>, notify: bool) {
        if next != self.members {
            mark(&mut self.unreported, &self.members, &next);
            mark(&mut self.unreported, &next, &self.members);
            // Each change (the exits first): logged for the report, bounded, and with `notify` a
            // notice.
            for (entered, a, b) in [(false, &self.members, &next), (true, &next, &self.members)] {
                for id in a {
                    if b.binary_search(id).is_err() {
                        if self.changes.len() < CHANGES_MAX {
                            self.changes.push(id.clone());
                        }
                        if notify {
                            self.notices.push(if entered { Notice::Enter(id.clone()) } else { Notice::Exit(id.clone()) });
                        }
                    }
                }
            }
        }
        self.members = next;
    }

    /// With `trackSegments`, queues `Segment Entered` / `Segment Exited` for each change since
    /// what this profile last reported (so a reload does not repeat them).
    fn report_segments(&mut self, now: f64) {
        if !self.reportable() {
            // Personalization withdrawn empties the membership: no change to report. (Those made
            // while analytics is withdrawn are reported once it is granted again.)
            if !self.consent.personalization {
                self.changes.clear();
            }
            return;
        }
        if self.deferred {
            return;
        }
        let mut only = ::core::mem::take(&mut self.unreported);
        let changes = ::core::mem::take(&mut self.changes);
        if ::core::mem::take(&mut self.report_all) {
            mark(&mut only, &self.profile.activation.reported, &[]);
            mark(&mut only, &self.members, &[]);
        }
        // Each segment's membership as last sent (what the profile last reported), and whether
        // its first logged change is skipped: the changes sent are the net one (the comparison
        // with what was reported) and pairs away from it and back, as many as this tab made; an
        // odd one left over was another tab's, reported there meanwhile.
        let mut st = Vec::with_capacity(only.len());
        for id in &only {
            let was = self.profile.activation.reported.binary_search(id).is_ok();
            let net = (self.members.binary_search(id).is_ok() != was) as usize;
            st.push((was, changes.iter().filter(|c| *c == id).count().saturating_sub(net) % 2 == 1));
        }
        self.profile.activation.report(&self.members, &only);
        // Sent in the order they were made, as the listeners heard them; then a net change that
        // no logged change stands for (past the log's bound, or comparing all of the membership).
        for c in &changes {
            if let Ok(i) = only.binary_search(c) {
                let s = &mut st[i];
                if s.1 {
                    s.1 = false;
                } else {
                    s.0 = !s.0;
                    self.report_one(now, s.0, c);
                }
            }
        }
        for (id, s) in only.iter().zip(&st) {
            if s.0 != self.members.binary_search(id).is_ok() {
                self.report_one(now, !s.0, id);
            }
        }
    }

    /// Queues `Segment Entered` (or `Segment Exited`) for segment `id`.
    fn report_one(&mut self, now: f64, entered: bool, id: &str) {
        let name = if entered { "Segment Entered" } else { "Segment Exited" };
        let e = self.event(now, Kind::Track, name, Map::new().with("segment", id));
        self.outbox.push(e);
        self.dirty = true;
    }

    /// Which variant of experience `id` to show (DESIGN §13). Records `Experience Viewed` once
    /// per experience per page view; sticky within the page view unless membership or identity
    /// changes. The holdout draw is that of the page view's first decision's identity (a login
    /// of the same person changes it from the next page view). An exposure made without consent to record it (neither `analytics` nor
    /// `personalization`) is not counted for caps nor the page view's exposure: the first
    /// decision once consent allows records it. `Err(unknown_id)` for an unknown experience.
    pub fn decide(&mut self, id: &str, now: f64) -> Result<Decision, Error> {
        let identity = String::from(self.user_id().unwrap_or(&self.profile.anonymous_id));
        let Some(x) = self.exp.get(id) else {
            return Err(Error::new(codes::UNKNOWN_ID, "no experience with that id"));
        };
        let can_record = self.consent.analytics || self.consent.personalization;
        let prior = self.exp.exposed(id);
        let d = match self.exp.remembered(id, &self.members, &identity) {
            Some(d) => d,
            None => {
                let draw = if self.exp.draw.is_empty() { &identity } else { &self.exp.draw };
                // Only a recorded exposure of this page view is discounted from its cap (one made
                // without consent was never counted).
                let o = experience::evaluate(x, &self.members, &self.profile.activation, draw, now, prior.filter(|p| p.1).map(|p| p.0));
                let variant = x.variants.get(o.chosen).map_or(String::new(), |v| v.id.clone());
                Decision { experience: id.into(), variant, holdout: o.holdout }
            }
        };
        // An exposure without consent to record it is shown but neither sent nor counted for caps.
        if prior.is_none_or(|p| !p.1 && can_record) {
            self.exp.mark_exposed(&d, can_record);
            if can_record {
                let op = Op::Expose { experience: id.into(), variant: d.variant.clone(), ts: now, retention: self.opts.retention };
                if self.consent.personalization {
                    self.apply(op, now); // journaled: survives a rebase onto another tab's write
                } else {
                    self.profile.apply(&op, self.opts.session_timeout);
                }
                let props = Map::new().with("experience", id).with("variant", d.variant.as_str()).with("holdout", d.holdout);
                self.record(now, Kind::Track, experience::VIEWED, props);
            }
        }
        self.exp.remember(d.clone(), &self.members, &identity);
        Ok(d)
    }

    /// Explains what `decide(id)` answers now (the page view's decision, when it holds one), or
    /// None for an unknown experience.
    pub fn explain_experience(&self, id: &str, now: f64) -> Option<Value> {
        let x = self.exp.get(id)?;
        let drawn = &self.exp.draw;
        let identity = if drawn.is_empty() { self.user_id().unwrap_or(&self.profile.anonymous_id) } else { drawn };
        let mut o = experience::evaluate(x, &self.members, &self.profile.activation, identity, now, self.exp.exposed(id).filter(|e| e.1).map(|e| e.0));
        // The decision this page view holds is `decide()`'s answer (sticky: caps counted since, by
        // another tab, or released by time, change the next page view's), the counts are now's.
        if let Some(d) = self.exp.remembered(id, &self.members, self.user_id().unwrap_or(&self.profile.anonymous_id)) {
            o.holdout = d.holdout;
            o.chosen = x.variants.iter().position(|v| v.id == d.variant).unwrap_or(o.chosen);
        }
        Some(experience::explain(x, &o))
    }

    /// Why the visitor is or is not in `id` (DESIGN §2 `explain`). `unknown_id` for an id that
    /// names no loaded definition.
    pub fn explain(&mut self, id: &str, now: f64) -> Result<Value, Error> {
        if self.defs.segments.iter().any(|s| s.id == id) {
            segment::prepare(&self.defs, &mut self.profile, self.host.as_ref());
            let doc = self.document_at(now);
            let out = segment::explain(&self.defs, &mut self.profile, Some(&doc), id, now, self.host.as_ref());
            if let Some(mut v) = out {
                // Without personalization no segment is evaluated (inSegment() is false): the
                // tree shows what the condition would give, the answer is no.
                if let (false, Value::Obj(m)) = (self.consent.personalization, &mut v) {
                    m.insert("result", Value::Bool(false));
                    m.insert("reason", "no personalization consent".into());
                }
                return Ok(v);
            }
        }
        if let Some(v) = self.explain_experience(id, now) {
            return Ok(v);
        }
        Err(Error::new(codes::UNKNOWN_ID, "no segment or experience with that id"))
    }

    /// The next time (epoch ms) a time-based membership change is due, if any: the wrapper sets
    /// one timer to it and calls `refresh`.
    pub fn next_check(&self, now: f64) -> Option<f64> {
        if !self.consent.personalization {
            return None;
        }
        // Also when the retention drops a minute of events: it leaves the open page's profile and
        // storage then (and a condition on the document's `events` may change).
        segment::next_change(&self.defs, &self.profile, now, self.profile.next_drop(self.opts.retention))
    }

    /// Ids of the segments the visitor is in, sorted.
    pub fn segments(&self) -> &[String] {
        &self.members
    }

    /// Whether the visitor is in segment `id`.
    pub fn in_segment(&self, id: &str) -> bool {
        self.members.binary_search_by(|x| x.as_str().cmp(id)).is_ok()
    }

    /// The profile document (DESIGN §3), scores as of the last event or evaluation.
    pub fn profile_document(&self) -> Value {
        self.document_at(self.clock)
    }

    /// The profile document (DESIGN §3) at `now` (scores decay with time).
    pub fn document_at(&self, now: f64) -> Value {
        let mut m = self.profile.document();
        for &k in &["scores", "linkedAnonymousIds", "segments", "consent"] {
            m.insert(k, self.field(k, now));
        }
        Value::Obj(m)
    }

    /// The part of the document that segment conditions read (all of it when unknown).
    fn document_for_segments(&self, now: f64) -> Value {
        if self.defs.doc_keys.is_empty() {
            return self.document_at(now);
        }
        let mut m = Map::new();
        for k in &self.defs.doc_keys {
            m.insert(k.as_str(), self.field(k, now));
        }
        Value::Obj(m)
    }

    /// One top-level field of the profile document.
    fn field(&self, key: &str, now: f64) -> Value {
        match key {
            "scores" => Value::Obj(segment::scores_doc(&self.defs, &self.profile.behaviour, now)),
            "linkedAnonymousIds" => crate::core::value::str_array(&self.profile.linked),
            "segments" => crate::core::value::str_array(&self.members),
            "consent" => self.consent.to_value(),
            k => self.profile.field(k),
        }
    }

    /// Queues an error notice (problems the browser layer finds, e.g. storage refusing writes).
    pub fn report(&mut self, e: Error) {
        self.notices.push(Notice::Error(e));
    }

    /// Notifications queued since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        ::core::mem::take(&mut self.notices)
    }

    /// Events waiting for delivery.
    pub fn take_outbox(&mut self) -> Vec<Event> {
        ::core::mem::take(&mut self.outbox)
    }

    /// The stored form of the profile when it changed since the last call (None otherwise, and
    /// always None without `personalization` consent: nothing is persisted then).
    pub fn take_dirty(&mut self) -> Option<Value> {
        if !self.dirty || !self.consent.personalization {
            return None;
        }
        self.dirty = false;
        Some(codec::encode(&self.profile))
    }
}

/// Applies one journaled operation to a profile: the behavioural segment state sees events
/// first, then the profile's own aggregates (the same path for local calls and for rebasing
/// this tab's operations onto another tab's write).
fn apply_op(defs: &Definitions, p: &mut Profile, op: &Op, timeout: f64, host: &dyn Host) {
    if let Op::Event { name, ts, props, .. } = op {
        segment::on_event(defs, p, name, *ts, &Value::Obj(props.clone()), host);
    }
    p.apply(op, timeout);
    p.bound_events(defs);
}

/// `invalid_argument` when merging `traits` into `into` would grow it over [`MAX_TRAITS_BYTES`]
/// (a change that does not grow it is accepted: traits over the bound can still shrink).
fn traits_fit(into: &Map, traits: &Map) -> Result<(), Error> {
    // The merged size without merging: the new values replace the old ones of their keys.
    let now = into.approx_size();
    // One pair of braces, not two, and a comma between the two sets' entries.
    let mut merged = now + traits.approx_size() - 1 - (into.is_empty() || traits.is_empty()) as usize;
    for (k, _) in traits.iter() {
        if let Some(old) = into.get(k) {
            merged -= k.len() + 4 + old.approx_size();
        }
    }
    if merged > MAX_TRAITS_BYTES && merged > now {
        return Err(Error::new(codes::INVALID_ARGUMENT, "traits are limited to 32 KB in all"));
    }
    Ok(())
}

/// The page of a context: its URL without the fragment.
fn page_of(c: &Value) -> &[u8] {
    let u = c.get("url").and_then(Value::as_str).unwrap_or("").as_bytes();
    u.split(|b| *b == b'#').next().unwrap_or(u)
}

/// Adds to the sorted set `to` the ids of `a` that are not in `b` (both sorted).
fn mark(to: &mut Vec<String>, a: &[String], b: &[String]) {
    for id in a {
        if b.binary_search(id).is_err() {
            if let Err(i) = to.binary_search(id) {
                crate::core::sort::insert(to, i, id.clone());
            }
        }
    }
}
