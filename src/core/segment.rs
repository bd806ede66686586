//! Segment definitions (DESIGN §4): loading with per-definition validation, compilation into a
//! condition tree over the profile document and behavioural nodes, membership, the next time a
//! membership may change by itself, and `explain`.
//!
//! A definitions document is `{version: 1, segments: [...], scores?: [...], savedGroups?: {...}}`.
//! A document of another shape is rejected whole; inside a valid document each invalid segment
//! or score is rejected with its id and a JSON pointer to the fault, and the valid ones load.
//! Plain conditions follow GrowthBook's `evalCondition` ([`crate::core::condition`]);
//! `$performed`, `$sequence` and scores are incremental state ([`crate::core::behaviour`],
//! [`crate::core::score`]) kept in the profile; `$inSegment` reads another segment, evaluated
//! first (cycles are load errors).

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::behaviour::{self, Agg, Fp, Node, Performed, Sequence, Spec};
use crate::core::condition::{eval_value, get_path, Ctx, Groups};
use crate::core::error::{codes, unknown, Error, Ptr, Step, UNKNOWN};
pub use crate::core::error::{join, join_pointer};
use crate::core::host::Host;
use crate::core::profile::Profile;
use crate::core::score::{Rule, ScoreDef};
use crate::core::time::{parse_duration, MUST_BE_DURATION as BAD_DURATION};
use crate::core::value::{split_first, Map, Value};

/// A compiled condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// All of (an object's keys, or `$and`).
    And(Vec<Cond>),
    /// Any of (`$or`; empty is true).
    Or(Vec<Cond>),
    /// None of (`$nor`).
    Nor(Vec<Cond>),
    /// `$not`.
    Not(Box<Cond>),
    /// A plain GrowthBook test of the profile document at a dot path.
    Field(String, Value),
    /// A behavioural node (index into [`Definitions::nodes`]) with, for `$performed`, the tests
    /// of its count and aggregate (nodes are shared by fingerprint; tests are per use).
    Node(usize, Value, Option<Value>),
    /// Membership of another segment, by id.
    InSegment(String),
}

/// One segment definition.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDef {
    /// Stable id (`"shoe_fans"`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The compiled condition.
    pub cond: Cond,
    /// `$inSegment` targets and their JSON pointers (for load errors).
    refs: Vec<(String, String)>,
}

/// Loaded definitions, compiled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Definitions {
    /// Valid segments, in document order.
    pub segments: Vec<SegmentDef>,
    /// Behavioural nodes, deduplicated by fingerprint.
    pub nodes: Vec<Node>,
    /// Valid scores.
    pub scores: Vec<ScoreDef>,
    /// `savedGroups` for `$inGroup` / `$notInGroup`.
    pub groups: Groups,
    /// `(score index, threshold)` compared in conditions: when a decaying score crosses one.
    /// (The index is held as a number: pairs of numbers are a vector type the behavioural
    /// state has already.)
    pub thresholds: Vec<(f64, f64)>,
    /// Whether any segment tests the profile document (else it is never built).
    pub uses_doc: bool,
    /// Indexes of `segments` in id order (memberships are reported sorted).
    pub order: Vec<usize>,
    /// The top-level keys of the profile document that conditions test (only those are built
    /// for an evaluation); empty with `uses_doc` means all of them.
    pub doc_keys: Vec<String>,
}

/// What a load did: ids loaded, and one error per rejected definition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Ids of the definitions loaded (segments, then scores).
    pub loaded: Vec<String>,
    /// One error per rejected definition.
    pub rejected: Vec<Error>,
}

#[inline(never)]
fn err(id: Option<&str>, at: &Ptr, msg: &str) -> Error {
    Error::at(codes::INVALID_SEGMENT, id, at.render(), msg)
}

#[inline(never)]
fn whole(path: &str, msg: &str) -> Error {
    Error::at(codes::INVALID_DEFINITIONS, None, path, msg)
}

/// Parses and compiles a definitions document. `Err` when the document is not
/// `{version: 1, segments: [...]}` (with `scores` an array and `savedGroups` an object if present).
pub fn parse(doc: &Value, retention_ms: f64) -> Result<(Definitions, LoadReport), Error> {
    let Some(m) = doc.as_obj() else {
        return Err(Error::new(codes::INVALID_DEFINITIONS, "definitions must be an object {version, segments: [...]}"));
    };
    if m.get("version").and_then(Value::as_num) != Some(1.0) {
        return Err(whole("/version", "version must be 1"));
    }
    let Some(list) = m.get("segments").and_then(Value::as_arr) else {
        return Err(whole("/segments", "segments must be an array"));
    };
    let score_list = match m.get("scores") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Arr(a)) => a.as_slice(),
        Some(_) => return Err(whole("/scores", "scores must be an array")),
    };
    let mut defs = Definitions::default();
    match m.get("savedGroups") {
        None | Some(Value::Null) => {}
        Some(Value::Obj(g)) => defs.groups = Groups::new(g.clone()),
        Some(_) => return Err(whole("/savedGroups", "savedGroups must be an object of arrays")),
    }
    let mut report = LoadReport::default();

    // Scores first: segments may read them.
    let root = Ptr(None, Step::Key("scores"));
    for (i, s) in score_list.iter().enumerate() {
        match parse_score(s, &Ptr(Some(&root), Step::Index(i)), &defs.scores, defs.groups.raw()) {
            Ok(d) => defs.scores.push(d),
            Err(e) => report.rejected.push(e),
        }
    }

    // Segments: compile each on its own, then reject those whose `$inSegment` targets are
    // unknown, rejected, or lead back to themselves (reported in document order).
    let mut segs: Vec<SegmentDef> = Vec::new();
    let root = Ptr(None, Step::Key("segments"));
    for (i, s) in list.iter().enumerate() {
        match parse_segment(s, &Ptr(Some(&root), Step::Index(i)), retention_ms, &segs, &mut defs) {
            Ok(c) => segs.push(c),
            Err(e) => report.rejected.push(e),
        }
    }
    let mut state = vec![0u8; segs.len()];
    for i in 0..segs.len() {
        settle(&segs, &mut state, i);
    }
    for seg in &segs {
        // The first target that is unknown or rejected (a cycle's members are all rejected).
        let bad = seg.refs.iter().find(|(t, _)| segs.iter().position(|x| x.id == *t).is_none_or(|j| state.get(j) != Some(&2)));
        if let Some((t, p)) = bad {
            // The reason names the segment named (which one to define, fix or take off the cycle).
            let mut m = String::from("$inSegment names \"");
            m.push_str(t);
            m.push_str("\": an unknown or rejected segment, or a cycle");
            report.rejected.push(Error::at(codes::INVALID_SEGMENT, Some(&seg.id), p.as_str(), m));
        }
    }
    // Moved out in place (a consuming loop linked an `IntoIter` of its own).
    for (seg, &st) in segs.iter_mut().zip(&state) {
        if st == 2 {
            report.loaded.push(seg.id.clone());
            defs.segments.push(::core::mem::replace(seg, SegmentDef { id: String::new(), name: String::new(), cond: Cond::And(Vec::new()), refs: Vec::new() }));
        }
    }
    for d in &defs.scores {
        report.loaded.push(d.id.clone());
    }
    let mut thresholds = Vec::new();
    let mut heads = Vec::new();
    for s in &defs.segments {
        scan(&s.cond, &defs.scores, &mut thresholds, &mut heads);
    }
    defs.uses_doc = !heads.is_empty();
    // Insertion sort: the library's sort would add kilobytes to the wasm.
    let mut order: Vec<usize> = Vec::with_capacity(defs.segments.len());
    for (i, s) in defs.segments.iter().enumerate() {
        // The place is found from the end, where the swaps of the insertion go (ids in order,
        // as they usually come, cost one comparison each): no `partition_point` of its own.
        let mut at = order.len();
        while at > 0 && order.get(at - 1).is_some_and(|&j| defs.segments.get(j).is_some_and(|o| o.id >= s.id)) {
            at -= 1;
        }
        crate::core::sort::insert(&mut order, at, i);
    }
    defs.order = order;
    defs.doc_keys = heads;
    defs.thresholds = thresholds;
    Ok((defs, report))
}

/// Settles segment `i` (`state`: 0 not yet, 1 being settled, 2 valid, 3 rejected): valid when
/// every `$inSegment` target is known and valid; a target still being settled closes a cycle.
/// Each segment is settled once, so the whole graph takes one depth-first walk.
fn settle(segs: &[SegmentDef], state: &mut [u8], i: usize) -> bool {
    match state.get_mut(i) {
        Some(s @ 0) => *s = 1,
        s => return s == Some(&mut 2),
    }
    let ok = segs.get(i).is_some_and(|s| s.refs.iter().all(|(t, _)| segs.iter().position(|x| x.id == *t).is_some_and(|j| settle(segs, state, j))));
    if let Some(s) = state.get_mut(i) {
        *s = if ok { 2 } else { 3 };
    }
    ok
}

/// A non-empty string field.
#[inline(never)]
fn name_of<'a>(m: &'a Map, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

const NEEDS_EVENT: &str = "needs an event name";
const BAD_WHERE: &str = "where must be a condition object on the event's properties (no $performed, $sequence or $inSegment)";

/// Whether `where` is a condition on event properties: an object, with no behavioural operator
/// at any depth (they are about the visitor, not one event, and would never match there).
fn is_where(w: &Value) -> bool {
    fn plain(v: &Value) -> bool {
        match v {
            Value::Obj(m) => {
                for (k, x) in m.iter() {
                    if matches!(k.as_str(), "$performed" | "$sequence" | "$inSegment") || !plain(x) {
                        return false;
                    }
                }
                true
            }
            Value::Arr(a) => a.iter().all(plain),
            _ => true,
        }
    }
    w.as_obj().is_some() && plain(w)
}

fn parse_segment(s: &Value, base: &Ptr, retention: f64, before: &[SegmentDef], defs: &mut Definitions) -> Result<SegmentDef, Error> {
    let Some(m) = s.as_obj() else { return Err(err(None, base, "a segment must be an object")) };
    let fail = |id: Option<&str>, k: &str, msg: &str| err(id, &Ptr(Some(base), Step::Key(k)), msg);
    let Some(id) = name_of(m, "id") else { return Err(fail(None, "id", "id must be a non-empty string")) };
    let fail = |k: &str, msg: &str| fail(Some(id), k, msg);
    if before.iter().any(|c| c.id == id) {
        return Err(fail("id", "duplicate id"));
    }
    if let Some(k) = unknown(m, &["id", "name", "condition", "description"]) {
        return Err(fail(k, UNKNOWN));
    }
    let Some(condition) = m.get("condition").filter(|c| c.as_obj().is_some()) else { return Err(fail("condition", "condition must be an object")) };
    let name = match m.get("name") {
        None => id,
        Some(Value::Str(n)) => n,
        Some(_) => return Err(fail("name", "name must be a string")),
    };
    let mark = defs.nodes.len();
    let mut c = Compiler { id, retention, nodes: &mut defs.nodes, refs: Vec::new(), groups: defs.groups.raw() };
    let out = c.compile(condition, &Ptr(Some(base), Step::Key("condition")));
    let refs = c.refs;
    match out {
        Ok(cond) => Ok(SegmentDef { id: id.into(), name: name.into(), cond, refs }),
        Err(e) => {
            defs.nodes.truncate(mark);
            Err(e)
        }
    }
}

struct Compiler<'a> {
    id: &'a str,
    retention: f64,
    nodes: &'a mut Vec<Node>,
    refs: Vec<(String, String)>,
    groups: &'a Map,
}

impl Compiler<'_> {
    #[inline(never)]
    fn fail(&self, path: &Ptr, key: &str, msg: &str) -> Error {
        err(Some(self.id), &if key.is_empty() { *path } else { Ptr(Some(path), Step::Key(key)) }, msg)
    }

    fn compile(&mut self, v: &Value, path: &Ptr) -> Result<Cond, Error> {
        // (Definitions are read up to 256 levels deep: a segment nested past 64 is rejected on its
        // own, DESIGN §4, instead of the reader refusing the whole document.)
        let (mut depth, mut up) = (0, path.0);
        while let Some(p) = up {
            (depth, up) = (depth + 1, p.0);
        }
        if depth > 64 {
            return Err(self.fail(path, "", "nested too deeply (at most 64 levels from the document)"));
        }
        let Some(m) = v.as_obj() else { return Err(self.fail(path, "", "a condition must be an object")) };
        let mut all = Vec::with_capacity(m.len());
        for (k, x) in m.iter() {
            let p = Ptr(Some(path), Step::Key(k));
            let c = match k.as_str() {
                "$and" | "$or" | "$nor" => {
                    let Some(items) = x.as_arr() else { return Err(self.fail(&p, "", "expects an array of conditions")) };
                    let mut kids = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        kids.push(self.compile(item, &Ptr(Some(&p), Step::Index(i)))?);
                    }
                    match k.as_str() {
                        "$and" => Cond::And(kids),
                        "$or" => Cond::Or(kids),
                        _ => Cond::Nor(kids),
                    }
                }
                "$not" => Cond::Not(Box::new(self.compile(x, &p)?)),
                "$performed" => self.performed(x, &p)?,
                "$sequence" => self.sequence(x, &p)?,
                "$inSegment" => {
                    let Some(t) = x.as_str() else { return Err(self.fail(&p, "", "$inSegment takes a segment id")) };
                    self.refs.push((t.into(), p.render()));
                    Cond::InSegment(t.into())
                }
                // The membership being computed: a condition on it would read the last
                // evaluation's (and `{segments: {$size: 0}}` would flip at every event).
                _ if split_first(k, b'.').0 == "segments" => return Err(self.fail(&p, "", "membership is read with $inSegment, not the segments field")),
                _ => Cond::Field(k.clone(), x.clone()),
            };
            all.push(c);
        }
        Ok(if all.len() == 1 { all.pop().unwrap_or(Cond::And(Vec::new())) } else { Cond::And(all) })
    }

    fn node(&mut self, spec: Spec, fp: Fp, count: Value, value: Option<Value>) -> Cond {
        let key = fp.finish();
        let i = self.nodes.iter().position(|n| n.key == key).unwrap_or_else(|| {
            self.nodes.push(Node { key, spec });
            self.nodes.len() - 1
        });
        Cond::Node(i, count, value)
    }

    /// `within` (ms), checked against the retention.
    #[inline(never)]
    fn window(&self, m: &Map, path: &Ptr) -> Result<Option<f64>, Error> {
        let Some(w) = m.get("within") else { return Ok(None) };
        match w.as_str().and_then(parse_duration) {
            Some(ms) if ms <= self.retention => Ok(Some(ms)),
            Some(_) => Err(self.fail(path, "within", "window longer than the retention")),
            None => Err(self.fail(path, "within", BAD_DURATION)),
        }
    }

    /// `{event, where?}` of a `$performed` or a step.
    #[inline(never)]
    fn event(&self, m: &Map, path: &Ptr) -> Result<(String, Option<Value>), Error> {
        let Some(e) = name_of(m, "event") else { return Err(self.fail(path, "event", NEEDS_EVENT)) };
        match m.get("where") {
            None => Ok((e.into(), None)),
            Some(w) if is_where(w) => Ok((e.into(), Some(w.clone()))),
            Some(_) => Err(self.fail(path, "where", BAD_WHERE)),
        }
    }

    fn performed(&mut self, v: &Value, path: &Ptr) -> Result<Cond, Error> {
        const AGGS: [&str; 5] = ["sum", "avg", "min", "max", "distinct"];
        let Some(m) = v.as_obj() else { return Err(self.fail(path, "", "$performed takes an object")) };
        if let Some(k) = unknown(m, &["event", "where", "within", "count", "value", "sum", "avg", "min", "max", "distinct"]) {
            return Err(self.fail(path, k, UNKNOWN));
        }
        let mut agg = Agg::Count;
        let mut prop = "";
        for (i, a) in AGGS.iter().enumerate() {
            let Some(x) = m.get(a) else { continue };
            if agg != Agg::Count {
                return Err(self.fail(path, a, "only one of sum, avg, min, max, distinct"));
            }
            prop = x.as_str().filter(|p| !p.is_empty()).ok_or_else(|| self.fail(path, a, "names a property"))?;
            agg = [Agg::Sum, Agg::Avg, Agg::Min, Agg::Max, Agg::Distinct].get(i).copied().unwrap_or(Agg::Sum);
        }
        let (event, filter) = self.event(m, path)?;
        let within = self.window(m, path)?.unwrap_or(self.retention);
        let count = match m.get("count") {
            None => Value::Obj(Map::new().with("$gte", 1.0)),
            Some(c @ (Value::Num(_) | Value::Obj(_))) => c.clone(),
            Some(_) => return Err(self.fail(path, "count", "count is a number or a condition")),
        };
        // `value`: only with an aggregate, and then a number (equality) or a condition on one.
        let value = m.get("value").cloned();
        if value.is_some() == (agg == Agg::Count) || !matches!(value, None | Some(Value::Num(_) | Value::Obj(_))) {
            return Err(if agg == Agg::Count { self.fail(path, "value", "value needs sum, avg, min, max or distinct") } else { self.fail(path, "", "an aggregate needs a value condition") });
        }
        // A count tested against numbers only (`count: 3`, or `$gte`, `$gt`, `$lt`, `$lte`, `$eq`,
        // `$ne` of numbers) gets the same answer for every count from the largest number + 1 up
        // (from `n` for `$gte: n`): only that many latest timestamps are kept, and its windows are
        // exact to the millisecond. Tests of anything else keep minute buckets.
        let mut k = 0.0;
        if agg == Agg::Count {
            let floor = crate::core::time::floor;
            match &count {
                Value::Num(n) => k = floor(*n) + 1.0,
                Value::Obj(cm) => {
                    for (op, v) in cm.iter() {
                        // (A negative number answers the same for every count; another
                        // operator, or anything else than a number, keeps the count per minute:
                        // `$inGroup: 3` reads the count as text, a saved group's id.)
                        let n = v.as_num().unwrap_or(1e9);
                        k = k.max(match op.as_str() {
                            "$gte" => -floor(-n),
                            "$gt" | "$lt" | "$lte" | "$eq" | "$ne" => floor(n) + 1.0,
                            _ => 1e9,
                        });
                    }
                }
                _ => {}
            }
            if !(1.0..=1000.0).contains(&k) {
                k = 0.0;
            }
        }
        let f = filter.as_ref().unwrap_or(&Value::Null);
        let fp = groups(Fp::new().bytes(b"P").bytes(event.as_bytes()).value(f), f, self.groups).num(within).num(agg as u8 as f64).bytes(prop.as_bytes()).num(k);
        let spec = Spec::Performed(Performed { event, filter, within, agg, prop: prop.into(), k: k as u32 });
        Ok(self.node(spec, fp, count, value))
    }

    fn sequence(&mut self, v: &Value, path: &Ptr) -> Result<Cond, Error> {
        let Some(m) = v.as_obj() else { return Err(self.fail(path, "", "$sequence takes an object")) };
        if let Some(k) = unknown(m, &["steps", "within"]) {
            return Err(self.fail(path, k, UNKNOWN));
        }
        let sp = Ptr(Some(path), Step::Key("steps"));
        let Some(list) = m.get("steps").and_then(Value::as_arr).filter(|l| !l.is_empty()) else {
            return Err(self.fail(&sp, "", "steps must be a non-empty array"));
        };
        let within = self.window(m, path)?;
        let mut fp = Fp::new().bytes(b"S").num(within.unwrap_or(-1.0));
        let mut steps = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let p = Ptr(Some(&sp), Step::Index(i));
            let Some(sm) = s.as_obj() else { return Err(self.fail(&p, "", "a step is an object {event, where?}")) };
            if let Some(k) = unknown(sm, &["event", "where"]) {
                return Err(self.fail(&p, k, UNKNOWN));
            }
            let (e, w) = self.event(sm, &p)?;
            let w = w.unwrap_or(Value::Null);
            fp = groups(fp.bytes(e.as_bytes()).value(&w), &w, self.groups);
            steps.push((e, w));
        }
        Ok(self.node(Spec::Sequence(Sequence { steps, within, retention: self.retention }), fp, Value::Null, None))
    }
}

/// Collects the score thresholds of `c` (for the next-change timer); whether it reads the
/// profile document.
/// Collects the score thresholds conditions compare against, and the top-level document keys
/// they read (`heads`).
fn scan(c: &Cond, scores: &[ScoreDef], out: &mut Vec<(f64, f64)>, heads: &mut Vec<String>) {
    match c {
        Cond::And(v) | Cond::Or(v) | Cond::Nor(v) => v.iter().for_each(|c| scan(c, scores, out, heads)),
        Cond::Not(b) => scan(b, scores, out, heads),
        Cond::Field(path, test) => {
            let head = crate::core::value::split_first(path, b'.').0;
            if !heads.iter().any(|h| h == head) {
                heads.push(head.into());
            }
            if let Some(i) = path.strip_prefix("scores.").and_then(|id| scores.iter().position(|s| s.id == id)) {
                numbers(test, i as f64, out);
            }
        }
        _ => {}
    }
}

/// Every number in a score's test, at any depth (`$gte: 5`, `$not: {$lt: 5}`, `$in: [5, 10]`):
/// the values the decaying score may cross.
fn numbers(v: &Value, i: f64, out: &mut Vec<(f64, f64)>) {
    match v {
        Value::Num(n) => out.push((i, *n)),
        Value::Arr(a) => a.iter().for_each(|v| numbers(v, i, out)),
        Value::Obj(m) => m.iter().for_each(|(_, v)| numbers(v, i, out)),
        _ => {}
    }
}

fn parse_score(s: &Value, base: &Ptr, before: &[ScoreDef], g: &Map) -> Result<ScoreDef, Error> {
    let Some(m) = s.as_obj() else { return Err(err(None, base, "a score must be an object")) };
    let Some(id) = name_of(m, "id").filter(|id| !id.as_bytes().iter().any(|&b| b == b'.')) else {
        return Err(err(name_of(m, "id"), &Ptr(Some(base), Step::Key("id")), "id must be a non-empty string without dots"));
    };
    let fail = |p: &Ptr, k: &str, msg: &str| err(Some(id), &Ptr(Some(p), Step::Key(k)), msg);
    if before.iter().any(|d| d.id == id) {
        return Err(fail(base, "id", "duplicate id"));
    }
    if let Some(k) = unknown(m, &["id", "name", "halfLife", "rules", "description"]) {
        return Err(fail(base, k, UNKNOWN));
    }
    let half_life = match m.get("halfLife") {
        None => None,
        Some(h) => Some(h.as_str().and_then(parse_duration).ok_or_else(|| fail(base, "halfLife", BAD_DURATION))?),
    };
    let rp = Ptr(Some(base), Step::Key("rules"));
    let Some(list) = m.get("rules").and_then(Value::as_arr) else { return Err(fail(base, "rules", "rules must be an array")) };
    let mut rules = Vec::with_capacity(list.len());
    let mut fp = Fp::new().bytes(b"score").num(half_life.unwrap_or(-1.0));
    for (i, r) in list.iter().enumerate() {
        let p = Ptr(Some(&rp), Step::Index(i));
        let Some(rm) = r.as_obj() else { return Err(err(Some(id), &p, "a rule is an object {event, where?, points}")) };
        if let Some(k) = unknown(rm, &["event", "where", "points"]) {
            return Err(fail(&p, k, UNKNOWN));
        }
        let Some(event) = name_of(rm, "event") else { return Err(fail(&p, "event", NEEDS_EVENT)) };
        let filter = match rm.get("where") {
            None => None,
            Some(w) if is_where(w) => Some(w.clone()),
            Some(_) => return Err(fail(&p, "where", BAD_WHERE)),
        };
        let Some(points) = rm.get("points").and_then(Value::as_num) else { return Err(fail(&p, "points", "points must be a number")) };
        let f = filter.as_ref().unwrap_or(&Value::Null);
        fp = groups(fp.bytes(event.as_bytes()).value(f), f, g).num(points);
        rules.push(Rule { event: event.into(), filter, points });
    }
    Ok(ScoreDef { id: id.into(), key: fp.finish(), half_life, rules })
}

/// Feeds the saved groups a `where` names (`$inGroup`/`$notInGroup` at any depth; all of them
/// for an id that is not a string) into a node's or a score's fingerprint: the state counted
/// under a group restarts from the recent events when the group changes, as it would for a
/// changed `where`.
fn groups(mut fp: Fp, v: &Value, g: &Map) -> Fp {
    match v {
        Value::Arr(a) => {
            for x in a {
                fp = groups(fp, x, g);
            }
        }
        Value::Obj(m) => {
            for (k, x) in m.iter() {
                // `$inGroup`, `$notInGroup`
                if k.ends_with("nGroup") {
                    match x {
                        Value::Str(id) => fp = fp.value(g.get(id).unwrap_or(&Value::Null)),
                        _ => {
                            for (k, v) in g.iter() {
                                fp = fp.bytes(k.as_bytes()).value(v);
                            }
                        }
                    }
                }
                fp = groups(fp, x, g);
            }
        }
        _ => {}
    }
    fp
}

fn ctx<'a>(defs: &'a Definitions, host: &'a dyn Host) -> Ctx<'a> {
    Ctx { groups: Some(&defs.groups), host }
}

/// Aligns the profile's behavioural state with the definitions (adopting foreign node states,
/// back-filling new nodes and scores from the recent ring).
/// Without definitions (before the first load) the stored state is left as it is.
pub fn prepare(defs: &Definitions, profile: &mut Profile, host: &dyn Host) {
    if (defs.nodes.is_empty() && defs.scores.is_empty()) || behaviour::is_aligned(&profile.behaviour, &defs.nodes, &defs.scores) {
        return;
    }
    behaviour::align(&mut profile.behaviour, &defs.nodes, &defs.scores, &profile.recent, &profile.events, &ctx(defs, host));
}

/// Whether a loaded definition reads events named `name` (`$performed`, `$sequence`, scores).
pub fn reads(defs: &Definitions, name: &str) -> bool {
    defs.nodes.iter().any(|n| n.listens(name)) || defs.scores.iter().any(|s| s.rules.iter().any(|r| r.event == name))
}

/// After an identity merge: each `$sequence` also replays the merged ring of recent events, so
/// steps split across the two profiles complete (the matches each side had are kept).
pub fn rejoin(defs: &Definitions, profile: &mut Profile, host: &dyn Host) {
    prepare(defs, profile, host);
    let cx = ctx(defs, host);
    for (n, slot) in defs.nodes.iter().zip(profile.behaviour.nodes.iter_mut()) {
        if matches!(n.spec, Spec::Sequence(_)) {
            let mut st = n.fresh();
            for r in &profile.recent {
                n.update(&mut st, &r.name, r.ts, &Value::Obj(r.props.clone()), &cx);
            }
            behaviour::merge_node(&mut slot.st, &st);
        }
    }
}

/// Applies one event to the behavioural state. Call it before the event enters the ring.
pub fn on_event(defs: &Definitions, profile: &mut Profile, name: &str, ts: f64, props: &Value, host: &dyn Host) {
    prepare(defs, profile, host);
    let cx = ctx(defs, host);
    let state = &mut profile.behaviour;
    // The event enters the ring next, as its `n`-th.
    state.n += 1.0;
    for (n, slot) in defs.nodes.iter().zip(state.nodes.iter_mut()) {
        if n.listens(name) {
            n.update(&mut slot.st, name, ts, props, &cx);
            // Pruned as events come, not only when read: a node no loaded segment reads (its
            // segment rejected for its `$inSegment`) would keep every event.
            n.observe(&mut slot.st, ts, false);
        }
    }
    for (d, slot) in defs.scores.iter().zip(state.scores.iter_mut()) {
        d.update(slot, name, ts, props, &cx);
    }
}

/// The `scores` object of the profile document at `now` (every defined score, 0 when unseen),
/// read to 2 decimals.
pub fn scores_doc(defs: &Definitions, state: &State, now: f64) -> Map {
    let mut m = Map::new();
    for d in &defs.scores {
        let v = state.scores.iter().find(|s| s.key == d.key).map_or(0.0, |s| d.value_at(s, now));
        m.insert(d.id.as_str(), Value::Num(v));
    }
    m
}

struct Eval<'a> {
    defs: &'a Definitions,
    state: &'a mut State,
    doc: &'a Value,
    now: f64,
    cx: Ctx<'a>,
    /// Per segment: 0 not yet evaluated, 1 being evaluated, 2 out, 3 in.
    member: Vec<u8>,
    /// Per node: 1 when it was observed (pruned to `now`) already (bytes, as `member`: a vector
    /// of bools was a `vec!` of its own).
    seen: Vec<u8>,
}

impl Eval<'_> {
    /// Membership of segment `i`, evaluated on demand (`$inSegment` reads others first).
    fn segment(&mut self, i: usize) -> bool {
        match self.member.get(i) {
            Some(0) => {}
            m => return m == Some(&3),
        }
        if let Some(m) = self.member.get_mut(i) {
            *m = 1;
        }
        let r = self.defs.segments.get(i).is_some_and(|s| self.run(&s.cond, None));
        if let Some(m) = self.member.get_mut(i) {
            *m = if r { 3 } else { 2 };
        }
        r
    }

    /// Whether `c` holds; with `out`, also pushes its explain node
    /// `{op, result, value?, expected?, children?}` (then every child is evaluated).
    fn run(&mut self, c: &Cond, out: Option<&mut Vec<Value>>) -> bool {
        let trace = out.is_some();
        let mut kids = Vec::new();
        let mut value = Value::Null;
        let mut expected = Value::Null;
        let mut counted: Option<(Value, Value)> = None;
        let (op, res) = match c {
            Cond::And(v) | Cond::Or(v) | Cond::Nor(v) => {
                let and = matches!(c, Cond::And(_));
                let (mut any, mut all) = (false, true);
                for x in v {
                    let r = self.run(x, if trace { Some(&mut kids) } else { None });
                    any |= r;
                    all &= r;
                    if !trace && r != and {
                        break;
                    }
                }
                match c {
                    Cond::And(_) => ("$and", all),
                    Cond::Or(_) => ("$or", v.is_empty() || any),
                    // As GrowthBook: `$nor` is `!$or`, and an empty `$or` holds.
                    _ => ("$nor", !(v.is_empty() || any)),
                }
            }
            Cond::Not(b) => ("$not", !self.run(b, if trace { Some(&mut kids) } else { None })),
            Cond::Field(path, test) => {
                let v = get_path(self.doc, path);
                if trace {
                    value = v.clone().into_owned();
                    expected = test.clone();
                }
                (path.as_str(), holds(test, &v, &self.cx))
            }
            Cond::Node(i, count, test) => {
                let (Some(n), Some(slot), Some(seen)) = (self.defs.nodes.get(*i), self.state.nodes.get_mut(*i), self.seen.get_mut(*i)) else { return false };
                // Nodes are shared: each is pruned to `now` once per evaluation.
                let (done, c, v) = n.observe(&mut slot.st, self.now, ::core::mem::replace(seen, 1) == 1);
                let c = Value::Num(c);
                match &n.spec {
                    Spec::Sequence(q) => {
                        value = c;
                        expected = Value::Num(q.steps.len() as f64);
                        ("$sequence", done)
                    }
                    Spec::Performed(_) => {
                        let ok = holds(count, &c, &self.cx) && test.as_ref().map_or(true, |t| holds(t, &v, &self.cx));
                        if trace {
                            expected = test.clone().unwrap_or_else(|| count.clone());
                            // An aggregate's node also shows the count it requires (both apply).
                            if test.is_some() {
                                counted = Some((c.clone(), count.clone()));
                            }
                        }
                        value = if test.is_some() { v } else { c };
                        ("$performed", ok)
                    }
                }
            }
            Cond::InSegment(id) => {
                // `order` lists the segments sorted by id: a binary search, not a scan.
                let (segs, order) = (&self.defs.segments, &self.defs.order);
                let at = order.binary_search_by(|&j| segs.get(j).map_or("", |s| s.id.as_str()).cmp(id.as_str()));
                let r = at.ok().and_then(|k| order.get(k).copied()).is_some_and(|i| self.segment(i));
                value = Value::Bool(r);
                expected = Value::Str(id.clone());
                ("$inSegment", r)
            }
        };
        if let Some(out) = out {
            let mut node = explain_node(op, res, if kids.is_empty() && !matches!(c, Cond::And(_) | Cond::Or(_) | Cond::Nor(_) | Cond::Not(_)) { Some((value, expected)) } else { None }, kids);
            if let (Some((n, want)), Value::Obj(m)) = (counted, &mut node) {
                m.insert("count", n);
                m.insert("countExpected", want);
            }
            out.push(node);
        }
        res
    }
}

/// Whether `value` passes `test` ([`eval_value`]). `{$gte: k}` on a number, the usual count
/// and threshold test, is compared directly (JavaScript's `k <= value` on two numbers).
fn holds(test: &Value, value: &Value, cx: &Ctx) -> bool {
    if let (Value::Obj(m), Value::Num(x)) = (test, value) {
        if let (1, Some(Value::Num(k))) = (m.len(), m.get("$gte")) {
            return *k <= *x;
        }
    }
    eval_value(test, value, cx, false)
}

/// `{op, result, value, expected}` for a leaf, `{op, result, children}` for a combinator.
#[inline(never)]
fn explain_node(op: &str, res: bool, leaf: Option<(Value, Value)>, kids: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("op", Value::Str(op.into()));
    m.insert("result", Value::Bool(res));
    match leaf {
        Some((v, e)) => {
            m.insert("value", v);
            m.insert("expected", e);
        }
        None => m.insert("children", Value::Arr(kids)),
    }
    Value::Obj(m)
}

fn eval<'a>(defs: &'a Definitions, profile: &'a mut Profile, doc: Option<&'a Value>, now: f64, host: &'a dyn Host) -> Eval<'a> {
    prepare(defs, profile, host);
    Eval { defs, state: &mut profile.behaviour, doc: doc.unwrap_or(&Value::Null), now, cx: ctx(defs, host), member: vec![0; defs.segments.len()], seen: vec![0; defs.nodes.len()] }
}

/// Evaluates every segment at `now`; returns whether each is held, by index. `doc` is the
/// profile document (needed only when [`Definitions::uses_doc`]).
pub fn evaluate(defs: &Definitions, profile: &mut Profile, doc: Option<&Value>, now: f64, host: &dyn Host) -> Vec<bool> {
    let mut ev = eval(defs, profile, doc, now, host);
    let mut hits = Vec::with_capacity(defs.segments.len());
    for i in 0..defs.segments.len() {
        hits.push(ev.segment(i));
    }
    hits
}

/// The ids of the segments held (`hits` as [`evaluate`] returns them), sorted.
pub fn members(defs: &Definitions, hits: &[bool]) -> Vec<String> {
    let mut out = Vec::new();
    for &i in &defs.order {
        if let (Some(true), Some(s)) = (hits.get(i), defs.segments.get(i)) {
            out.push(s.id.clone());
        }
    }
    out
}

/// Why the visitor is or is not in segment `id`: `{id, kind: "segment", name, result, tree}`;
/// None for an unknown id.
pub fn explain(defs: &Definitions, profile: &mut Profile, doc: Option<&Value>, id: &str, now: f64, host: &dyn Host) -> Option<Value> {
    let seg = defs.segments.iter().find(|s| s.id == id)?;
    let mut ev = eval(defs, profile, doc, now, host);
    let mut out = Vec::new();
    let result = ev.run(&seg.cond, Some(&mut out));
    Some(Value::Obj(
        Map::new()
            .with("id", seg.id.as_str())
            .with("kind", "segment")
            .with("name", seg.name.as_str())
            .with("result", result)
            .with("tree", out.pop().unwrap_or_default()),
    ))
}

/// The next time after `now` when a membership may change without an event (a window
/// passing, a decaying score crossing a threshold), if any; or `other` when it is sooner (the
/// retention dropping a minute of the document's `events`: then also when it is past).
pub fn next_change(defs: &Definitions, profile: &Profile, now: f64, other: f64) -> Option<f64> {
    let state = &profile.behaviour;
    let mut best: Option<f64> = Some(other).filter(|t| t.is_finite());
    let mut consider = |t: Option<f64>| {
        if let Some(t) = t.filter(|t| *t > now) {
            if best.map_or(true, |b| t < b) {
                best = Some(t);
            }
        }
    };
    if behaviour::is_aligned(state, &defs.nodes, &defs.scores) {
        for (n, slot) in defs.nodes.iter().zip(&state.nodes) {
            consider(n.next_change(&slot.st, now));
        }
        for &(i, threshold) in &defs.thresholds {
            if let (Some(d), Some(s)) = (defs.scores.get(i as usize), state.scores.get(i as usize)) {
                consider(d.crossing(s, threshold, now));
            }
        }
    }
    best
}

/// The behavioural state kept in the profile.
pub use crate::core::behaviour::State;

/// The stored form of the behavioural state (called by the profile codec).
pub fn encode_state(s: &State) -> Value {
    behaviour::encode(s)
}

/// Reads the stored behavioural state (anything unreadable is rebuilt from the ring).
pub fn decode_state(v: Option<&Value>) -> State {
    behaviour::decode(v)
}

/// Merges the behavioural state of two profiles of one person (identity merge): counts add,
/// windows keep the union, scores add after decaying to a common time (once aligned to the
/// definitions: see [`behaviour::merge`]).
pub fn merge_state(into: &mut State, other: State, _: &Definitions) {
    behaviour::merge(into, other);
}


#[cfg(test)]
mod tests {
    use super::*;

    struct NoHost;
    impl Host for NoHost {
        fn regex_test(&self, _: &str, _: &str, _: &str) -> Option<bool> {
            None
        }
        fn parse_number(&self, s: &str) -> f64 {
            s.parse().unwrap_or(f64::NAN)
        }
        fn format_number(&self, n: f64) -> String {
            format!("{n}")
        }
        fn random_bytes(&self, _: &mut [u8]) {}
    }

    /// The direct `{$gte: k}` comparison answers as the general evaluator.
    #[test]
    fn gte_on_a_number_answers_as_eval_value() {
        let cx = Ctx { groups: None, host: &NoHost };
        let nums = [-1.0, -0.0, 0.0, 1.0, 2.5, 3.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        let mut tests = Vec::new();
        for k in nums {
            tests.push(Value::Obj(Map::new().with("$gte", k)));
            tests.push(Value::Obj(Map::new().with("$gt", k)));
            tests.push(Value::Obj(Map::new().with("$gte", k).with("$lt", 3.0)));
            tests.push(Value::Num(k));
        }
        tests.push(Value::Obj(Map::new().with("$gte", "2")));
        tests.push(Value::Obj(Map::new().with("$gte", Value::Null)));
        let mut values: Vec<Value> = nums.iter().map(|&x| Value::Num(x)).collect();
        values.extend([Value::Null, Value::Str("2".into()), Value::Bool(true), Value::Arr(vec![Value::Num(2.0)])]);
        for t in &tests {
            for v in &values {
                assert_eq!(holds(t, v, &cx), eval_value(t, v, &cx, false), "{t:?} {v:?}");
            }
        }
    }
}
