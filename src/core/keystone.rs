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
use crate::core::ids::uuid_v4;
use crate::core::profile::Profile;
use crate::core::segment::{self, Definitions, LoadReport};
use crate::core::time::{parse_duration, DAY, MINUTE};
use crate::core::value::{Map, Value};

/// The library name and version reported in every event's `context.library`.
pub const LIBRARY: &str = "keystone-cdp";
/// This build's version (from Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

fn duration_option(v: &Value, name: &str) -> Result<f64, Error> {
    match v {
        Value::Str(s) => parse_duration(s),
        Value::Num(n) if *n > 0.0 && n.is_finite() => Some(*n),
        _ => None,
    }
    .ok_or_else(|| {
        let mut msg = String::from(name);
        msg.push_str(" must be a duration such as \"30m\" or \"90d\"");
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
    notices: Vec<Notice>,
    outbox: Vec<Event>,
    dirty: bool,
    exp: Orchestrator,
    /// Time of the last evaluation (epoch ms).
    clock: f64,
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
            notices: Vec::new(),
            outbox: Vec::new(),
            dirty: false,
            exp: Orchestrator::default(),
            clock: now,
        };
        let restored = stored.and_then(|v| {
            let (p, errors) = codec::decode(v);
            ks.notices.extend(errors.into_iter().map(Notice::Error));
            p
        });
        match restored {
            Some(p) => ks.profile = p,
            None => {
                ks.profile = Profile::new(uuid_v4(random16(ks.host.as_ref())), now);
                ks.dirty = true;
            }
        }
        ks.evaluate(now, false);
        ks
    }

    /// The anonymous id.
    pub fn anonymous_id(&self) -> &str {
        &self.profile.anonymous_id
    }

    /// The known user id, if identified.
    pub fn user_id(&self) -> Option<&str> {
        self.profile.user_id.as_deref()
    }

    /// The current consent.
    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// Replaces the page context (captured by the browser layer at init and on navigation).
    pub fn set_context(&mut self, context: Value) {
        if context.as_obj().is_some() {
            self.profile.context = context;
        }
    }

    /// A page view.
    pub fn page(&mut self, now: f64, properties: Map) {
        self.touch_session(now);
        self.profile.session.pageviews += 1;
        self.exp.new_page_view();
        self.record(now, Kind::Page, "Page Viewed", properties);
    }

    /// A named event.
    pub fn track(&mut self, now: f64, name: &str, properties: Map) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::new(codes::INVALID_ARGUMENT, "track needs a non-empty event name"));
        }
        self.touch_session(now);
        self.record(now, Kind::Track, name, properties);
        Ok(())
    }

    fn touch_session(&mut self, now: f64) {
        let s = &mut self.profile.session;
        if s.id.is_empty() || now - s.last_activity > self.opts.session_timeout {
            s.id = uuid_v4(random16(self.host.as_ref()));
            s.count += 1;
            s.pageviews = 0;
            s.started_at = now;
        }
        s.last_activity = s.last_activity.max(now);
    }

    fn record(&mut self, now: f64, kind: Kind, name: &str, properties: Map) {
        let props = Value::Obj(properties);
        segment::on_event(&self.defs, &mut self.profile, name, now, &props, self.host.as_ref());
        let Value::Obj(properties) = props else { return };
        self.profile.record(name, now, &properties);
        let event = self.event(now, kind, name, properties);
        if self.consent.analytics {
            self.outbox.push(event);
        }
        self.dirty = true;
        self.evaluate(now, true);
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
            context: self.spec_context(),
        }
    }

    /// The Segment spec `context` of an event made now.
    fn spec_context(&self) -> Value {
        let c = &self.profile.context;
        let s = |k: &str| c.path(k).cloned().unwrap_or(Value::Str(String::new()));
        let mut campaign = Map::new();
        for (from, to) in [("campaign", "name"), ("source", "source"), ("medium", "medium"), ("term", "term"), ("content", "content")] {
            if let Some(Value::Str(v)) = c.path("utm").and_then(|u| u.get(from)) {
                if !v.is_empty() {
                    campaign.insert(to, v.as_str().into());
                }
            }
        }
        let mut m = Map::new()
            .with(
                "page",
                Value::Obj(
                    Map::new()
                        .with("path", s("path"))
                        .with("referrer", s("referrer"))
                        .with("search", s("search"))
                        .with("title", s("title"))
                        .with("url", s("url")),
                ),
            )
            .with("locale", s("language"))
            .with("timezone", s("timezone"))
            .with("userAgent", s("userAgent"))
            .with("library", Value::Obj(Map::new().with("name", LIBRARY).with("version", VERSION)));
        if !campaign.is_empty() {
            m.insert("campaign", Value::Obj(campaign));
        }
        Value::Obj(m)
    }

    /// Loads new definitions. `Err` (and nothing changes) when the document is not valid as a
    /// whole; otherwise the valid definitions replace the previous ones.
    pub fn load_definitions(&mut self, doc: &Value, now: f64) -> Result<LoadReport, Error> {
        let (defs, mut report) = segment::parse(doc, self.opts.retention)?;
        let ids: Vec<&str> = defs.segments.iter().map(|d| d.id.as_str()).collect();
        let experiences = experience::parse(doc, &ids, self.opts.retention, &mut report)?;
        self.defs = defs;
        self.exp.set(experiences);
        self.evaluate(now, true);
        Ok(report)
    }

    /// Re-evaluates time-windowed segments at `now`.
    pub fn refresh(&mut self, now: f64) {
        self.evaluate(now, true);
    }

    /// Recomputes membership; with `notify`, queues enter/exit notices for the changes.
    fn evaluate(&mut self, now: f64, notify: bool) {
        self.clock = now;
        let mut next: Vec<String> = Vec::new();
        if self.consent.personalization {
            let doc = if self.defs.uses_doc { Some(self.document_at(now)) } else { None };
            next = segment::evaluate(&self.defs, &mut self.profile, doc.as_ref(), now, self.host.as_ref());
        }
        if notify {
            for id in &self.members {
                if next.binary_search(id).is_err() {
                    self.notices.push(Notice::Exit(id.clone()));
                }
            }
            for id in &next {
                if self.members.binary_search(id).is_err() {
                    self.notices.push(Notice::Enter(id.clone()));
                }
            }
        }
        self.members = next;
        self.report_segments(now);
    }

    /// With `trackSegments`, queues `Segment Entered` / `Segment Exited` for each change since
    /// what this profile last reported (so a reload does not repeat them).
    fn report_segments(&mut self, now: f64) {
        if !self.opts.track_segments || !self.exp.loaded || !self.consent.personalization || !self.consent.analytics {
            return;
        }
        for (id, entered) in self.profile.activation.report(&self.members) {
            let name = if entered { "Segment Entered" } else { "Segment Exited" };
            let e = self.event(now, Kind::Track, name, Map::new().with("segment", id));
            self.outbox.push(e);
            self.dirty = true;
        }
    }

    /// Which variant of experience `id` to show (DESIGN §13). Records `Experience Viewed` once
    /// per experience per page view; sticky within the page view unless membership or identity
    /// changes. `Err(unknown_id)` for an unknown experience.
    pub fn decide(&mut self, id: &str, now: f64) -> Result<Decision, Error> {
        let identity = String::from(self.user_id().unwrap_or(&self.profile.anonymous_id));
        let Some(x) = self.exp.get(id) else {
            return Err(Error::new(codes::UNKNOWN_ID, "no experience with that id"));
        };
        if let Some(d) = self.exp.remembered(id, &self.members, &identity) {
            return Ok(d);
        }
        let exposed = self.exp.exposed(id);
        let o = experience::evaluate(x, &self.members, &self.profile.activation, &identity, now, exposed);
        let variant = x.variants.get(o.chosen).map_or(String::new(), |v| v.id.clone());
        let d = Decision { experience: id.into(), variant, holdout: o.holdout };
        if exposed.is_none() {
            self.exp.mark_exposed(&d);
            self.profile.activation.expose(id, &d.variant, now, self.opts.retention);
            self.touch_session(now);
            let props = Map::new().with("experience", id).with("variant", d.variant.as_str()).with("holdout", d.holdout);
            self.record(now, Kind::Track, experience::VIEWED, props);
        }
        self.exp.remember(d.clone(), &self.members, &identity);
        Ok(d)
    }

    /// Explains what `decide(id)` would answer now, or None for an unknown experience.
    pub fn explain_experience(&self, id: &str, now: f64) -> Option<Value> {
        let x = self.exp.get(id)?;
        let identity = self.user_id().unwrap_or(&self.profile.anonymous_id);
        let o = experience::evaluate(x, &self.members, &self.profile.activation, identity, now, self.exp.exposed(id));
        Some(experience::explain(x, &o))
    }

    /// Why the visitor is or is not in `id` (DESIGN §2 `explain`). `unknown_id` for an id that
    /// names no loaded definition.
    pub fn explain(&mut self, id: &str, now: f64) -> Result<Value, Error> {
        if self.defs.segments.iter().any(|s| s.id == id) {
            let doc = self.document_at(now);
            let out = segment::explain(&self.defs, &mut self.profile, Some(&doc), id, now, self.host.as_ref());
            if let Some(v) = out {
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
        segment::next_change(&self.defs, &self.profile, now)
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
        m.insert("scores", Value::Obj(segment::scores_doc(&self.defs, &self.profile.behaviour, now)));
        m.insert("segments", Value::Arr(self.members.iter().map(|s| Value::Str(s.clone())).collect()));
        m.insert("consent", self.consent.to_value());
        Value::Obj(m)
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
