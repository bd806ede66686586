//! Experiences (DESIGN §13): definitions with per-experience validation, and the decision rule.
//!
//! A decision is a pure function of the visitor state: the holdout draw (a stable uniform number
//! in [0, 1) hashed from the identity and the experience id), segment membership, and the
//! exposures counted by frequency caps. Among the eligible variants (segment held, cap not
//! reached; a variant without segment is always eligible) the highest priority wins, ties going to
//! document order; when none is eligible the last variant is the fallback. A visitor in the
//! holdout gets the last variant, flagged.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::activation::Activation;
use crate::core::error::{codes, unknown, Error, UNKNOWN};
use crate::core::segment::{join, join_pointer, LoadReport};
use crate::core::time::parse_duration;
use crate::core::value::{Map, Value};

/// The event that records an exposure (and that caps count).
pub const VIEWED: &str = "Experience Viewed";

/// A frequency cap: at most `count` exposures within `within` ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Cap {
    /// Exposures allowed in the window.
    pub count: u32,
    /// The sliding window (ms).
    pub within: f64,
    /// The window as written (`"7d"`), for explanations.
    pub text: String,
}

/// One variant of an experience.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Variant id.
    pub id: String,
    /// The segment that must hold, if any.
    pub segment: Option<String>,
    /// Higher wins (default 0).
    pub priority: f64,
    /// Frequency cap, if any.
    pub cap: Option<Cap>,
}

/// One experience definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Experience {
    /// Experience id.
    pub id: String,
    /// Fraction of visitors in the holdout group, 0..=1.
    pub holdout: f64,
    /// Variants in document order; the last one is the fallback and the holdout's.
    pub variants: Vec<Variant>,
}

/// What `decide` answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Experience id.
    pub experience: String,
    /// Chosen variant id.
    pub variant: String,
    /// Whether the visitor is in the holdout group.
    pub holdout: bool,
}

impl Decision {
    /// `{experience, variant, holdout}`.
    pub fn to_value(&self) -> Value {
        Value::Obj(
            Map::new()
                .with("experience", self.experience.as_str())
                .with("variant", self.variant.as_str())
                .with("holdout", self.holdout),
        )
    }
}

/// Parses the optional `experiences` array of a definitions document. Each invalid experience
/// is added to `report.rejected` (id, JSON pointer, reason); valid ids to `report.loaded`.
/// `Err` when `experiences` is present but not an array. `segments` are the loaded segment ids.
pub fn parse(doc: &Value, segments: &[&str], retention: f64, report: &mut LoadReport) -> Result<Vec<Experience>, Error> {
    let mut out: Vec<Experience> = Vec::new();
    let list = match doc.get("experiences") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Arr(a)) => a,
        Some(_) => return Err(Error::at(codes::INVALID_DEFINITIONS, None, "/experiences", "experiences must be an array")),
    };
    for (i, x) in list.iter().enumerate() {
        match parse_one(x, segments, retention, &out) {
            Ok(e) => {
                report.loaded.push(e.id.clone());
                out.push(e);
            }
            Err(f) => {
                // The JSON pointer: /experiences/i[/variants/j][/key…]
                let mut path = join_pointer("/experiences", i);
                if let Some(j) = f.variant {
                    path = join_pointer(&join(&path, "variants"), j);
                }
                let mut rest = Some(f.keys);
                while let Some(r) = rest {
                    let (k, next) = crate::core::value::split_first(r, b'/');
                    if !k.is_empty() {
                        path = join(&path, k);
                    }
                    rest = next;
                }
                if let Some(k) = f.field {
                    path = join(&path, k);
                }
                let id = x.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
                report.rejected.push(Error::at(codes::INVALID_SEGMENT, id, path, f.why));
            }
        }
    }
    Ok(out)
}

/// Where and why an experience is invalid: variant index, keys below it, an unknown field
/// after them, reason.
struct Fault<'a> {
    variant: Option<usize>,
    keys: &'static str,
    field: Option<&'a str>,
    why: &'static str,
}

fn fault<T>(variant: Option<usize>, keys: &'static str, why: &'static str) -> Result<T, Fault<'static>> {
    Err(Fault { variant, keys, field: None, why })
}

/// `Err` naming the first key of `m` not in `allowed` (a typo must not load as a default).
#[inline(never)]
fn known<'a>(m: &'a Map, allowed: &[&str], variant: Option<usize>, keys: &'static str) -> Result<(), Fault<'a>> {
    match unknown(m, allowed) {
        Some(k) => Err(Fault { variant, keys, field: Some(k), why: UNKNOWN }),
        None => Ok(()),
    }
}

fn parse_one<'a>(x: &'a Value, segments: &[&str], retention: f64, loaded: &[Experience]) -> Result<Experience, Fault<'a>> {
    let Some(m) = x.as_obj() else { return fault(None, "", "an experience must be an object") };
    let id = match m.get("id") {
        Some(Value::Str(id)) if !id.is_empty() => id,
        _ => return fault(None, "id", "id must be a non-empty string"),
    };
    if loaded.iter().any(|e| &e.id == id) {
        return fault(None, "id", "duplicate experience id");
    }
    // explain(id) answers for a segment or an experience: one id names one of them.
    if segments.contains(&id.as_str()) {
        return fault(None, "id", "an experience id must differ from the segment ids");
    }
    known(m, &["id", "name", "description", "holdout", "variants"], None, "")?;
    let holdout = match m.get("holdout") {
        None | Some(Value::Null) => 0.0,
        Some(Value::Num(h)) if (0.0..=1.0).contains(h) => *h,
        _ => return fault(None, "holdout", "holdout must be a number from 0 to 1"),
    };
    let list = match m.get("variants") {
        Some(Value::Arr(a)) if !a.is_empty() => a,
        _ => return fault(None, "variants", "variants must be a non-empty array"),
    };
    let mut variants: Vec<Variant> = Vec::with_capacity(list.len());
    for (j, v) in list.iter().enumerate() {
        let at = Some(j);
        let Some(vm) = v.as_obj() else { return fault(at, "", "a variant must be an object") };
        let vid = match vm.get("id") {
            Some(Value::Str(s)) if !s.is_empty() => s,
            _ => return fault(at, "id", "variant id must be a non-empty string"),
        };
        if variants.iter().any(|w| &w.id == vid) {
            return fault(at, "id", "duplicate variant id");
        }
        known(vm, &["id", "name", "description", "segment", "priority", "cap"], at, "")?;
        let segment = match vm.get("segment") {
            None | Some(Value::Null) => None,
            Some(Value::Str(s)) if segments.contains(&s.as_str()) => Some(s.clone()),
            _ => return fault(at, "segment", "segment must be the id of a loaded segment"),
        };
        let priority = match vm.get("priority") {
            None | Some(Value::Null) => 0.0,
            Some(Value::Num(n)) if n.is_finite() => *n,
            _ => return fault(at, "priority", "priority must be a number"),
        };
        let cap = match vm.get("cap") {
            None | Some(Value::Null) => None,
            Some(Value::Obj(c)) => {
                known(c, &["count", "within"], at, "cap")?;
                let count = match c.get("count") {
                    Some(Value::Num(n)) if *n >= 1.0 && *n < 1e9 && *n == crate::core::time::floor(*n) => *n as u32,
                    _ => return fault(at, "cap/count", "cap count must be a positive integer"),
                };
                let text = match c.get("within") {
                    None | Some(Value::Null) => "",
                    Some(Value::Str(s)) => s,
                    _ => "?",
                };
                let within = if text.is_empty() { Some(retention) } else { parse_duration(text) };
                match within {
                    Some(ms) if ms <= retention => Some(Cap { count, within: ms, text: text.into() }),
                    _ => return fault(at, "cap/within", "cap window must be a duration no longer than the retention"),
                }
            }
            _ => return fault(at, "cap", "cap must be an object {count, within}"),
        };
        variants.push(Variant { id: vid.clone(), segment, priority, cap });
    }
    Ok(Experience { id: id.clone(), holdout, variants })
}

/// The stable holdout draw of `identity` for `experience`: uniform in [0, 1).
/// FNV-1a 64 over both strings (with a separator), then the MurmurHash3 finalizer so every input
/// bit reaches the high bits used for the draw.
pub fn draw(identity: &str, experience: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.bytes().chain([0xff]).chain(experience.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// How one variant fared.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantState {
    /// Its segment holds (true without a segment).
    pub segment_held: bool,
    /// Exposures counted by its cap in the window (0 without a cap).
    pub seen: u32,
    /// Its cap is reached.
    pub capped: bool,
}

impl VariantState {
    /// Segment held and cap not reached.
    pub fn eligible(&self) -> bool {
        self.segment_held && !self.capped
    }
}

/// The full outcome of the rule, for `decide` and `explain`.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The holdout draw.
    pub draw: f64,
    /// Whether the draw falls in the holdout.
    pub holdout: bool,
    /// Index of the chosen variant.
    pub chosen: usize,
    /// Per variant, in document order.
    pub variants: Vec<VariantState>,
}

/// Applies the rule. `members` is sorted; `discount` is the variant already exposed in this page
/// view (its own exposure does not count against its cap when re-deciding in the same view).
pub fn evaluate(x: &Experience, members: &[String], memory: &Activation, identity: &str, now: f64, discount: Option<&str>) -> Outcome {
    let d = draw(identity, &x.id);
    let holdout = d < x.holdout;
    let last = x.variants.len().saturating_sub(1);
    let mut variants = Vec::with_capacity(x.variants.len());
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in x.variants.iter().enumerate() {
        let segment_held = v.segment.as_ref().is_none_or(|s| members.binary_search(s).is_ok());
        let (seen, capped) = match &v.cap {
            Some(c) => {
                let mut n = memory.seen(&x.id, &v.id, now, c.within);
                if discount == Some(v.id.as_str()) {
                    n = n.saturating_sub(1);
                }
                (n, n >= c.count)
            }
            None => (0, false),
        };
        let st = VariantState { segment_held, seen, capped };
        if st.eligible() && best.is_none_or(|(_, p)| v.priority > p) {
            best = Some((i, v.priority));
        }
        variants.push(st);
    }
    let chosen = if holdout { last } else { best.map_or(last, |b| b.0) };
    Outcome { draw: d, holdout, chosen, variants }
}

/// The explanation of an outcome: `{id, kind: "experience", result, variant, holdout, draw,
/// holdoutFraction, eligible: [ids], capped: [ids], variants: [{id, segment, inSegment, priority,
/// cap, seen, capped, eligible, chosen}]}`.
pub fn explain(x: &Experience, o: &Outcome) -> Value {
    let mut rows = Vec::new();
    let mut eligible = Vec::new();
    let mut capped = Vec::new();
    for (i, (v, st)) in x.variants.iter().zip(&o.variants).enumerate() {
        if st.eligible() {
            eligible.push(Value::Str(v.id.clone()));
        }
        if st.capped {
            capped.push(Value::Str(v.id.clone()));
        }
        let mut r = Map::new()
            .with("id", v.id.as_str())
            .with("segment", v.segment.as_deref())
            .with("inSegment", st.segment_held)
            .with("priority", v.priority);
        if let Some(c) = &v.cap {
            r.insert("cap", Value::Obj(Map::new().with("count", c.count).with("within", c.text.as_str())));
            r.insert("seen", Value::Num(st.seen as f64));
            r.insert("capped", Value::Bool(st.capped));
        }
        r.insert("eligible", Value::Bool(st.eligible()));
        r.insert("chosen", Value::Bool(i == o.chosen));
        rows.push(Value::Obj(r));
    }
    let variant = x.variants.get(o.chosen).map(|v| v.id.as_str());
    Value::Obj(
        Map::new()
            .with("id", x.id.as_str())
            .with("kind", "experience")
            .with("result", !o.holdout)
            .with("variant", variant)
            .with("holdout", o.holdout)
            .with("draw", o.draw)
            .with("holdoutFraction", x.holdout)
            .with("eligible", Value::Arr(eligible))
            .with("capped", Value::Arr(capped))
            .with("variants", Value::Arr(rows)),
    )
}

/// A decision remembered for the rest of the page view.
#[derive(Clone, Debug, PartialEq)]
struct Sticky {
    decision: Decision,
    members: Vec<String>,
    identity: String,
}

/// Loaded experiences and the decisions of the current page view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Orchestrator {
    /// Valid experiences, in document order.
    pub experiences: Vec<Experience>,
    sticky: Vec<Sticky>,
    /// Experiences exposed in this page view: experience id → `[variant, recorded]`, whether
    /// the exposure was recorded (consent allowed it). (A map: (id, variant, recorded) triples
    /// were a vector type of their own.)
    exposed: Map,
    /// Whether definitions were ever loaded (segment reports wait for them).
    pub loaded: bool,
    /// The identity whose holdout draw this page view's decisions use: the one of its first
    /// decision. A login of the same person keeps it until the next page view, so a decision
    /// made again after the login (membership changed) stays in the group already shown and sent.
    /// Empty until the page view's first decision.
    pub draw: String,
}

impl Orchestrator {
    /// A new page view: decisions are made afresh and exposures recorded again.
    pub fn new_page_view(&mut self) {
        self.sticky.clear();
        self.exposed = Map::new();
        self.draw.clear();
    }


    /// The identity changed within the page view. The same person (an anonymous visitor who
    /// logged in, their profile merged): the decisions stay for the rest of the page view, now
    /// under `identity`. Another person (a switch of user, a logout): nothing decided or exposed
    /// for the previous one counts for them.
    pub fn identity_changed(&mut self, identity: &str, same_person: bool) {
        if same_person {
            for s in &mut self.sticky {
                s.identity = identity.into();
            }
        } else {
            self.new_page_view();
        }
    }

    /// Replaces the definitions.
    pub fn set(&mut self, experiences: Vec<Experience>) {
        self.experiences = experiences;
        self.sticky.clear();
        self.loaded = true;
    }

    /// The experience `id`.
    pub fn get(&self, id: &str) -> Option<&Experience> {
        self.experiences.iter().find(|x| x.id == id)
    }

    /// The remembered decision, if membership and identity are unchanged since.
    pub fn remembered(&self, id: &str, members: &[String], identity: &str) -> Option<Decision> {
        self.sticky
            .iter()
            .find(|s| s.decision.experience == id && s.members == members && s.identity == identity)
            .map(|s| s.decision.clone())
    }

    /// The variant already exposed in this page view for `id`, and whether it was recorded.
    pub fn exposed(&self, id: &str) -> Option<(&str, bool)> {
        match self.exposed.get(id).and_then(Value::as_arr).map(Vec::as_slice) {
            Some([Value::Str(v), Value::Bool(recorded)]) => Some((v, *recorded)),
            _ => None,
        }
    }

    /// Marks `id` exposed in this page view (replacing an unrecorded exposure).
    pub fn mark_exposed(&mut self, d: &Decision, recorded: bool) {
        self.exposed.insert(d.experience.as_str(), Value::Arr(vec![d.variant.as_str().into(), Value::Bool(recorded)]));
    }

    /// Remembers a decision for the rest of the page view.
    /// The page view's first decision fixes its holdout draw's identity ([`Orchestrator::draw`]).
    pub fn remember(&mut self, decision: Decision, members: &[String], identity: &str) {
        if self.draw.is_empty() {
            self.draw = identity.into();
        }
        // One per experience, replaced in place (a `retain` was an instance of its own).
        let s = Sticky { decision, members: members.to_vec(), identity: identity.into() };
        match self.sticky.iter_mut().find(|x| x.decision.experience == s.decision.experience) {
            Some(x) => *x = s,
            None => self.sticky.push(s),
        }
    }
}
