//! Consent state (DESIGN §6): three categories, merged by `setConsent`, GPC turns `marketing` off.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::value::{Map, Value};

/// Consent categories.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Consent {
    /// Sending anything to the collector.
    pub analytics: bool,
    /// Persisting the profile and evaluating segments.
    pub personalization: bool,
    /// Activation for ad and marketing tags (data layer).
    pub marketing: bool,
}

impl Consent {
    /// Everything granted except `marketing` under Global Privacy Control (the default when the
    /// `consent` option is omitted).
    pub fn default_for(gpc: bool) -> Consent {
        Consent { analytics: true, personalization: true, marketing: !gpc }
    }

    /// Nothing granted (opt-in mode before consent, and after `forget()`).
    pub fn none() -> Consent {
        Consent { analytics: false, personalization: false, marketing: false }
    }

    /// Merges the categories named in `v` (booleans) into this state. GPC keeps `marketing` off.
    /// Returns false when `v` is not an object of booleans.
    pub fn merge(&mut self, v: &Value, gpc: bool) -> bool {
        let Some(m) = v.as_obj() else { return false };
        for (_, v) in m.iter() {
            if v.as_bool().is_none() {
                return false;
            }
        }
        if let Some(b) = m.get("analytics").and_then(Value::as_bool) {
            self.analytics = b;
        }
        if let Some(b) = m.get("personalization").and_then(Value::as_bool) {
            self.personalization = b;
        }
        if let Some(b) = m.get("marketing").and_then(Value::as_bool) {
            self.marketing = b && !gpc;
        }
        true
    }

    /// Whether anything at all is granted.
    pub fn any(&self) -> bool {
        self.analytics || self.personalization || self.marketing
    }

    /// As the profile document's `consent` object.
    pub fn to_value(&self) -> Value {
        Value::Obj(
            Map::new()
                .with("analytics", self.analytics)
                .with("personalization", self.personalization)
                .with("marketing", self.marketing),
        )
    }
}
