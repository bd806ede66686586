//! Events in the Segment spec shape (DESIGN §8): what is recorded into the profile and what
//! leaves the device in batches.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::time::iso;
use crate::core::value::{Map, Value};

/// The Segment spec call types Keystone emits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A page view.
    Page,
    /// A named event.
    Track,
    /// Traits of the (known or anonymous) user.
    Identify,
    /// Links a previous id to the current one.
    Alias,
}

impl Kind {
    /// The spec's `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Page => "page",
            Kind::Track => "track",
            Kind::Identify => "identify",
            Kind::Alias => "alias",
        }
    }
}

/// One event, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Call type.
    pub kind: Kind,
    /// `event` for track (empty otherwise).
    pub name: String,
    /// Properties (track, page).
    pub properties: Map,
    /// Traits (identify).
    pub traits: Map,
    /// Epoch milliseconds when the call was made.
    pub timestamp: f64,
    /// Unique id, kept across retries so collectors can drop duplicates.
    pub message_id: String,
    /// Anonymous id at the time of the call.
    pub anonymous_id: String,
    /// Known user id at the time of the call.
    pub user_id: Option<String>,
    /// For alias: the previous id.
    pub previous_id: Option<String>,
    /// The Segment spec `context` object current when the call was made.
    pub context: Value,
}

impl Event {
    /// The Segment spec JSON of this event (without `sentAt`, which the batch carries).
    pub fn to_spec(&self) -> Value {
        let mut m = Map::new();
        m.insert("type", self.kind.as_str().into());
        match self.kind {
            Kind::Track => m.insert("event", self.name.as_str().into()),
            // As analytics.js: a page's string `name` and `category` properties are top-level too.
            Kind::Page => {
                // Over a borrowed array (here and in the other loops over a fixed list of
                // keys): a loop over the array by value links an array iterator per length
                // (201 B gzip more over five loops).
                for &k in &["name", "category"] {
                    if let Some(v @ Value::Str(_)) = self.properties.get(k) {
                        m.insert(k, v.clone());
                    }
                }
            }
            _ => {}
        }
        if matches!(self.kind, Kind::Track | Kind::Page) {
            m.insert("properties", Value::Obj(self.properties.clone()));
        }
        if self.kind == Kind::Identify {
            m.insert("traits", Value::Obj(self.traits.clone()));
        }
        if let Some(p) = &self.previous_id {
            m.insert("previousId", p.as_str().into());
        }
        m.insert("anonymousId", self.anonymous_id.as_str().into());
        m.insert("userId", self.user_id.as_deref().into());
        m.insert("messageId", self.message_id.as_str().into());
        // When the call was made; `originalTimestamp` and `channel` too, as RudderStack's SDK
        // sends them (its server takes the time of receipt for a missing `originalTimestamp`).
        let t: Value = iso(self.timestamp).into();
        m.insert("timestamp", t.clone());
        m.insert("originalTimestamp", t);
        m.insert("channel", "web".into());
        let mut context = self.context.clone();
        // As analytics.js: a page event's own url, path, referrer, search and title (a virtual
        // page view) are its `context.page` too.
        if let (Kind::Page, Value::Obj(c)) = (self.kind, &mut context) {
            if let Some(Value::Obj(page)) = c.get_mut("page") {
                for &k in &["path", "referrer", "search", "title", "url"] {
                    if let Some(v @ Value::Str(_)) = self.properties.get(k) {
                        page.insert(k, v.clone());
                    }
                }
            }
        }
        m.insert("context", context);
        Value::Obj(m)
    }
}
