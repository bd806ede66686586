//! What one profile was shown and told (DESIGN §13): the exposures of experience variants that
//! frequency caps count, and the segments last reported to the collector (`trackSegments`), so
//! `Segment Entered` / `Segment Exited` are sent once per real change, across page loads.
//!
//! Invariants: one [`Exposure`] per (experience, variant) with minute counts no older than the
//! retention; `reported` is sorted and unique.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::buckets::{minute_of, window_start_minute, Counts};
use crate::core::value::Value;

/// Exposures of one variant of one experience.
#[derive(Clone, Debug, PartialEq)]
pub struct Exposure {
    /// Experience id.
    pub experience: String,
    /// Variant id.
    pub variant: String,
    /// `Experience Viewed` counts per minute.
    pub counts: Counts,
}

/// The activation memory of a profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Activation {
    /// Exposures per (experience, variant).
    pub exposures: Vec<Exposure>,
    /// Segments the collector was last told the visitor is in, sorted.
    pub reported: Vec<String>,
}

impl Activation {
    /// Records one exposure at `now`, dropping counts older than `retention` ms.
    pub fn expose(&mut self, experience: &str, variant: &str, now: f64, retention: f64) {
        let from = minute_of(now - retention);
        for e in self.exposures.iter_mut() {
            e.counts.prune(from);
        }
        let i = match self.exposures.iter().position(|e| e.experience == experience && e.variant == variant) {
            Some(i) => i,
            None => {
                self.exposures.push(Exposure { experience: experience.into(), variant: variant.into(), counts: Counts::new() });
                self.exposures.len() - 1
            }
        };
        if let Some(e) = self.exposures.get_mut(i) {
            e.counts.add(minute_of(now), 1);
        }
    }

    /// Exposures of a variant within `window` ms before `now`.
    pub fn seen(&self, experience: &str, variant: &str, now: f64, window: f64) -> u32 {
        self.exposures
            .iter()
            .find(|e| e.experience == experience && e.variant == variant)
            .map_or(0, |e| e.counts.count_since(window_start_minute(now, window)))
    }

    /// Adds another profile's memory into this one (identity merge: exposures add, the set of
    /// reported segments is the union, so nothing already sent is sent again).
    /// `other` is moved in: its exposures and ids are taken in place, not cloned.
    pub fn merge(&mut self, mut other: Activation) {
        for o in other.exposures.iter_mut() {
            match self.exposures.iter_mut().find(|e| e.experience == o.experience && e.variant == o.variant) {
                Some(e) => e.counts.merge(&o.counts),
                None => self.exposures.push(::core::mem::replace(o, Exposure { experience: String::new(), variant: String::new(), counts: Counts::new() })),
            }
        }
        for s in other.reported.iter_mut() {
            if let Err(i) = self.reported.binary_search(s) {
                crate::core::sort::insert(&mut self.reported, i, ::core::mem::take(s));
            }
        }
    }

    /// Records the membership `now_in` of the segments `only` as reported.
    pub fn report(&mut self, now_in: &[String], only: &[String]) {
        for s in only {
            match (self.reported.binary_search(s), now_in.binary_search(s).is_ok()) {
                (Ok(i), false) => drop(crate::core::sort::remove(&mut self.reported, i)),
                (Err(i), true) => crate::core::sort::insert(&mut self.reported, i, s.clone()),
                _ => {}
            }
        }
    }

    /// The stored form: `[[experience, variant, [minute, count, …]], …]` and the reported ids.
    pub fn encode(&self) -> Value {
        let mut xp = Vec::with_capacity(self.exposures.len());
        for e in &self.exposures {
            let mut flat = Vec::with_capacity(e.counts.entries().len() * 2);
            for &(m, n) in e.counts.entries() {
                flat.push(Value::Num(m as f64));
                flat.push(Value::Num(n as f64));
            }
            xp.push(Value::Arr(vec![e.experience.as_str().into(), e.variant.as_str().into(), Value::Arr(flat)]));
        }
        Value::Arr(vec![Value::Arr(xp), crate::core::value::str_array(&self.reported)])
    }

    /// Reads the stored form; unreadable parts are dropped (never fails).
    pub fn decode(v: Option<&Value>) -> Activation {
        let mut a = Activation::default();
        let Some([Value::Arr(xp), Value::Arr(seg)]) = v.and_then(Value::as_arr).map(|x| x.as_slice()) else { return a };
        for e in xp {
            let Some([Value::Str(x), Value::Str(var), Value::Arr(flat)]) = e.as_arr().map(|x| x.as_slice()) else { continue };
            let mut counts = Counts::new();
            // The valid numbers in pairs (minute, count), an odd one out dropped; a plain loop,
            // not a filter chain (its own iterator instances).
            let mut minute = None;
            for v in flat {
                let Some(n) = v.as_num() else { continue };
                if !(n >= 0.0 && n < u32::MAX as f64) {
                    continue;
                }
                match minute.take() {
                    None => minute = Some(n),
                    Some(m) => counts.add(m as u32, n as u32),
                }
            }
            a.exposures.push(Exposure { experience: x.clone(), variant: var.clone(), counts });
        }
        for s in seg.iter().filter_map(Value::as_str) {
            if let Err(i) = a.reported.binary_search_by(|r| r.as_str().cmp(s)) {
                crate::core::sort::insert(&mut a.reported, i, s.into());
            }
        }
        a
    }
}
