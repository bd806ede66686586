#![cfg(all(not(target_arch = "wasm32"), feature = "segments"))]
//! A differential oracle for the behavioural segment engine.
//!
//! Random definitions (`$performed` with `where`/`within`/`count`, every aggregate with `value`,
//! `$sequence` of 2–3 steps with and without `where` and `within`, `$inSegment`, `$and/$or/$not`
//! around them, scores with `halfLife` and `where` rules used as thresholds in conditions) and
//! random event streams (gaps from none to weeks, sometimes a clock set back) drive the engine
//! through `track`, `refresh`, writes of the stored profile, restores from it (`Keystone::new`)
//! and definitions (re)loaded mid-stream. After every step `segments()`, the `loaded` list and
//! the scores are compared with an ORACLE that keeps every event and computes each operator by
//! brute force, written from DESIGN §4/§12 and the README's "Segments, scores and explain" and
//! "Aggregates" paragraphs — not from the engine's code:
//!
//! - Windows (`$performed` without `within`: the retention): a count tested against numbers only
//!   (`count` a number, or `$gte`/`$gt`/`$lt`/`$lte`/`$eq`/`$ne` of numbers; the default `$gte: 1`)
//!   is exact to the millisecond: an event at `t` is inside at `now`
//!   while `now - t < within`. Other counts and the aggregates are per minute: an event is inside
//!   while the end of its minute is less than `within` ago (the README's "up to a minute after").
//!   Events without a numeric value (numeric aggregates) or with none (`distinct`) are ignored
//!   by the aggregate, its count included. The values of distinct are compared as JavaScript's
//!   `String(v)`. An empty window has sum 0, distinct 0, avg/min/max null.
//! - `$sequence`: steps matched in call order, each step within `within` of the first (a step
//!   made after a clock set back, earlier than the first, is within), held while the first step
//!   is inside the retention.
//! - Scores: Σ points·2^(−age/halfLife), read at the later of now and the latest event the score
//!   counted (a clock set back does not undo decay), rounded to 2 decimals where conditions read
//!   them; a score keeps what it counted beyond the retention (it is one number, not a log).
//! - Definitions loaded after the events (a node or score whose fingerprint was not loaded just
//!   before): back-filled from the ring (the last 200 events, FOLLOWED: the streams go well past
//!   200 events) and, for `$performed` counts and score rules without `where`, from the minute
//!   counts of the events before the ring's first minute, each at the start of its minute
//!   (FOLLOWED). What the profile still holds at the load follows "Data older than retention is
//!   dropped on load and on every write" (and `refresh`): the oracle drops ring events older than
//!   the retention and minute counts of minutes before the retention's cutoff minute at each
//!   restore, write and refresh. A node or score loaded before and let go by a load without it
//!   (README, Segments, "Edges": its state kept for the tabs that hold it) is not back-filled when
//!   loaded again: it keeps what it had seen, and gets the events recorded meanwhile that are
//!   still in the ring (FOLLOWED).
//! - Bounds kept by the GENERATOR, not modelled: at most 6 event names (256 kept), short
//!   properties (the ring's 24 KB), under 2,048 distinct minutes per name (no folding into
//!   hours/days), a few distinct values (500 kept), counts under 1,000.
//! - A clock set back: the engine prunes a window when it reads it, so what already left a window
//!   stays out when the clock goes back (documented). The oracle computes each node in two
//!   worlds — nothing forgotten early (A), and each event pruned at every step since it entered
//!   the state (B; a `$sequence` conservatively at the latest step time before its last step) —
//!   and checks a segment only when both agree (scores: the value must match one of the two: B
//!   also leaves out of a back-fill what is older than the retention by the load's clock). It
//!   also skips a segment whose score comparison is within 1e-9 of a rounding step.
//! - The timer: just before the engine's `next_check` (or, without one, two retentions later) the
//!   oracle must hold the same segments as now: a time-based change due earlier would be late.
//!
//! Default: seeds 1–40 of 300 steps (about 10 s in debug). Harder:
//! `KEYSTONE_ORACLE_SEEDS=1-5000 KEYSTONE_ORACLE_STEPS=400 cargo test --release --test
//! segments_oracle -- --nocapture` (seeds as `a-b` or `3,9,12`). A divergence prints the seed, the
//! step, the definitions and the steps that led to it.
mod common;

use common::{from_json, NativeHost, SplitMix};
use keystone::core::condition::{eval_condition, Ctx};
use keystone::core::keystone::{Keystone, Options};
use keystone::core::value::{Map, Value};
use serde_json::{json, Value as J};
use std::collections::{BTreeSet, HashMap};

const T0: f64 = 1_764_403_200_000.0;
const SEC: f64 = 1000.0;
const MIN: f64 = 60_000.0;
const HOUR: f64 = 3_600_000.0;
const DAY: f64 = 86_400_000.0;
const WEEK: f64 = 7.0 * DAY;
const RING: usize = 200;

const EVENTS: [&str; 5] = ["View", "Add", "Buy", "Search", "Share"];
const DURATIONS: [(&str, f64); 11] = [
    ("1m", MIN),
    ("5m", 5.0 * MIN),
    ("30m", 30.0 * MIN),
    ("1h", HOUR),
    ("6h", 6.0 * HOUR),
    ("1d", DAY),
    ("3d", 3.0 * DAY),
    ("1w", WEEK),
    ("14d", 14.0 * DAY),
    ("30d", 30.0 * DAY),
    ("90d", 90.0 * DAY),
];

// ---------------------------------------------------------------------------------------------
// Generator

struct Gen {
    r: SplitMix,
    retention: f64,
}

impl Gen {
    fn chance(&mut self, pct: u64) -> bool {
        self.r.below(100) < pct
    }
    fn event(&mut self) -> &'static str {
        // Skewed: the first names are more frequent, so thresholds are reached.
        let i = self.r.index(EVENTS.len()).min(self.r.index(EVENTS.len()));
        EVENTS[i]
    }
    fn window(&mut self) -> Option<&'static str> {
        let fit: Vec<&(&str, f64)> = DURATIONS.iter().filter(|d| d.1 <= self.retention).collect();
        Some(fit[self.r.index(fit.len())].0)
    }
    fn num(&mut self) -> f64 {
        match self.r.below(6) {
            0 => 0.0,
            1 => 2.5,
            _ => self.r.below(12) as f64,
        }
    }
    fn where_clause(&mut self) -> J {
        let n = self.num();
        match self.r.below(9) {
            0 => json!({"n": {"$gte": n}}),
            1 => json!({"n": {"$lt": n}}),
            2 => json!({"cat": "a"}),
            3 => json!({"cat": {"$in": ["a", "b"]}}),
            4 => json!({"ok": true}),
            5 => json!({"n": {"$exists": false}}),
            6 => json!({"cat": {"$ne": "b"}}),
            7 => json!({"n": {"$gt": 2}, "cat": {"$exists": true}}),
            _ => json!({"$or": [{"ok": false}, {"n": 0}]}),
        }
    }
    fn props(&mut self) -> Map {
        let mut m = Map::new();
        match self.r.below(10) {
            0 => {}
            1 => m.insert("n", Value::Str(String::new())),
            2 => m.insert("n", Value::Str(format!("{}", self.r.below(9)))),
            3 => m.insert("n", Value::Str("x".into())),
            4 => m.insert("n", Value::Bool(true)),
            _ => m.insert("n", Value::Num(self.num())),
        }
        match self.r.below(8) {
            0 => {}
            1 => m.insert("cat", Value::Num(1.0)),
            2 => m.insert("cat", Value::Str("1".into())),
            3 => m.insert("cat", Value::Null),
            _ => m.insert("cat", Value::Str(["a", "b", "c", "d"][self.r.index(4)].into())),
        }
        if self.chance(50) {
            m.insert("ok", Value::Bool(self.chance(50)));
        }
        m
    }
    fn count(&mut self) -> Option<J> {
        let k = self.r.below(5) as f64;
        Some(match self.r.below(12) {
            0..=3 => return None,
            4 => json!({"$gte": if k == 0.0 { 1.5 } else { k }}),
            5 => json!({"$gte": k + 1.0}),
            6 => json!({"$gt": if k == 4.0 { 0.5 } else { k }}),
            7 => json!({"$lte": k}),
            8 => json!({"$lt": k + 1.0}),
            9 => json!({"$eq": k}),
            10 => json!(k),
            _ => json!({"$gte": k, "$lte": k + 2.0}),
        })
    }
    fn performed(&mut self) -> J {
        let mut m = serde_json::Map::new();
        m.insert("event".into(), json!(self.event()));
        if self.chance(35) {
            m.insert("where".into(), self.where_clause());
        }
        if self.chance(75) {
            m.insert("within".into(), json!(self.window().unwrap()));
        }
        if self.chance(40) {
            let agg = ["sum", "avg", "min", "max", "distinct"][self.r.index(5)];
            let prop = if agg == "distinct" && self.chance(70) { "cat" } else { "n" };
            m.insert(agg.into(), json!(prop));
            let x = if agg == "distinct" { self.r.below(4) as f64 } else { self.num() * if agg == "sum" { 2.0 } else { 1.0 } };
            let op = ["$gte", "$gt", "$lt", "$lte", "$eq"][self.r.index(5)];
            m.insert("value".into(), json!({ op: x }));
            if self.chance(25) {
                m.insert("count".into(), self.count().unwrap_or(json!({"$gte": 2})));
            }
        } else if let Some(c) = self.count() {
            m.insert("count".into(), c);
        }
        json!({ "$performed": m })
    }
    fn sequence(&mut self) -> J {
        let n = 2 + self.r.below(2);
        let steps: Vec<J> = (0..n)
            .map(|_| {
                let e = self.event();
                if self.chance(25) {
                    json!({"event": e, "where": self.where_clause()})
                } else {
                    json!({ "event": e })
                }
            })
            .collect();
        if self.chance(60) {
            json!({"$sequence": {"steps": steps, "within": self.window().unwrap()}})
        } else {
            json!({"$sequence": {"steps": steps}})
        }
    }
    fn leaf(&mut self, i: usize, nscores: usize) -> J {
        match self.r.below(20) {
            0..=9 => self.performed(),
            10..=13 => self.sequence(),
            14..=16 if i > 0 => json!({"$inSegment": format!("s{}", self.r.index(i))}),
            _ if nscores > 0 => {
                let id = format!("scores.e{}", self.r.index(nscores));
                let th = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 2.5][self.r.index(7)];
                let op = ["$gte", "$gt", "$lt"][self.r.index(3)];
                json!({ id: { op: th } })
            }
            _ => self.performed(),
        }
    }
    fn cond(&mut self, depth: u32, i: usize, nscores: usize) -> J {
        if depth < 2 && self.chance(35) {
            match self.r.below(3) {
                0 => json!({"$and": [self.cond(depth + 1, i, nscores), self.cond(depth + 1, i, nscores)]}),
                1 => json!({"$or": [self.cond(depth + 1, i, nscores), self.cond(depth + 1, i, nscores), self.cond(depth + 1, i, nscores)]}),
                _ => json!({"$not": self.cond(depth + 1, i, nscores)}),
            }
        } else {
            self.leaf(i, nscores)
        }
    }
    fn score(&mut self, id: usize) -> J {
        let rules: Vec<J> = (0..1 + self.r.below(3))
            .map(|_| {
                let p = [1.0, 2.0, 5.0, 0.5, -1.0, 3.0][self.r.index(6)];
                if self.chance(40) {
                    json!({"event": self.event(), "where": self.where_clause(), "points": p})
                } else {
                    json!({"event": self.event(), "points": p})
                }
            })
            .collect();
        let hl = ["1h", "1d", "7d", "30m"][self.r.index(4)];
        if self.chance(30) {
            json!({"id": format!("e{id}"), "rules": rules})
        } else {
            json!({"id": format!("e{id}"), "halfLife": hl, "rules": rules})
        }
    }
    /// A gap before the next step: none, seconds, minutes, hours, days, weeks, back, or a
    /// window's length to the millisecond (give or take one: the bounds of the windows).
    fn gap(&mut self) -> f64 {
        let r = &mut self.r;
        match r.below(106) {
            100.. => DURATIONS[r.index(DURATIONS.len())].1 + [0.0, 1.0, -1.0][r.index(3)],
            0..=5 => 0.0,
            6..=39 => (1 + r.below(59)) as f64 * SEC + r.below(1000) as f64,
            40..=64 => (1 + r.below(59)) as f64 * MIN + r.below(60_000) as f64,
            65..=81 => (1 + r.below(23)) as f64 * HOUR + r.below(3_600_000) as f64,
            82..=92 => (1 + r.below(6)) as f64 * DAY + r.below(86_400_000) as f64,
            93..=96 => (1 + r.below(3)) as f64 * WEEK + r.below(86_400_000) as f64,
            _ => -((1 + r.below(2 * 86_400)) as f64 * SEC),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Oracle

struct Ev {
    name: String,
    t: f64,
    props: Value,
    /// Step at which the event was recorded.
    step: usize,
    /// Dropped from the ring (older than the retention at a prune).
    ring_dropped: bool,
    /// Its minute dropped from the minute counts.
    count_dropped: bool,
}

/// What a node or score was back-filled from, when it was (re)born.
#[derive(Clone)]
struct Birth {
    step: usize,
    time: f64,
    /// Events recorded before the load (`events[..before]`).
    before: usize,
    /// The ring at the load (indices, call order).
    ring: Vec<usize>,
    /// Events counted from the minute counts (before the ring's first minute), at their minute start.
    counted: Vec<usize>,
    /// Let go and adopted again (a foreign slot): the events it missed (recorded meanwhile, no
    /// longer in the ring at the adoption), and those it saw late, with the step it saw them at.
    missed: Vec<usize>,
    late: Vec<(usize, usize)>,
}

#[derive(Clone)]
enum Node {
    Perf { event: String, filter: Option<Value>, within: f64, agg: Option<(String, String)>, exact: bool },
    Seq { steps: Vec<(String, Option<Value>)>, within: Option<f64> },
}

#[derive(Clone)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// A node, with a `$performed`'s count and value tests.
    Node(String, Value, Option<Value>),
    In(String),
    Score(String, Value),
}

struct ScoreDef {
    id: String,
    half_life: Option<f64>,
    rules: Vec<(String, Option<Value>, f64)>,
}

struct Oracle {
    retention: f64,
    events: Vec<Ev>,
    /// Time of each step (every step evaluates).
    times: Vec<f64>,
    ring: Vec<usize>,
    nodes: HashMap<String, (Node, Birth)>,
    scores: Vec<(ScoreDef, String, Birth)>,
    segments: Vec<(String, Cond)>,
    score_keys: HashMap<String, Birth>,
    /// Nodes and scores let go (foreign states): their birth and the number of events recorded
    /// then.
    gone: HashMap<String, (Birth, usize)>,
}

fn dur(s: &str) -> f64 {
    DURATIONS.iter().find(|d| d.0 == s).map(|d| d.1).unwrap_or_else(|| panic!("duration {s}"))
}

fn minute(t: f64) -> f64 {
    (t / MIN).floor()
}

/// JavaScript's `String(v)` for the values the generator makes.
fn js_string(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Num(n) if *n == n.trunc() => format!("{}", *n as i64),
        Value::Num(n) => format!("{n}"),
        Value::Bool(b) => format!("{b}"),
        Value::Null => "null".into(),
        _ => panic!("unexpected value"),
    }
}

/// A number, or text JavaScript's `Number` reads as a finite one that is not blank.
fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Num(n) if n.is_finite() => Some(*n),
        Value::Str(s) if !s.trim().is_empty() => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Half away from zero to 2 decimals, as conditions read a score.
fn read(v: f64) -> f64 {
    let x = v * 100.0;
    (if x < 0.0 { x - 0.5 } else { x + 0.5 }).trunc() / 100.0
}

fn tri_and(xs: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut all = Some(true);
    for x in xs {
        match x {
            Some(false) => return Some(false),
            None => all = None,
            _ => {}
        }
    }
    all
}

impl Oracle {
    fn holds(&self, test: &Value, v: &Value, host: &NativeHost) -> bool {
        let cx = Ctx { groups: None, host };
        eval_condition(&Value::Obj(Map::new().with("x", v.clone())), &Value::Obj(Map::new().with("x", test.clone())), &cx)
    }
    fn passes(filter: &Option<Value>, props: &Value, host: &NativeHost) -> bool {
        let cx = Ctx { groups: None, host };
        filter.as_ref().is_none_or(|f| eval_condition(props, f, &cx))
    }

    /// The latest step time before step `s`.
    fn hw_before(&self, s: usize) -> f64 {
        self.times[..s].iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    fn birth(&self, step: usize, time: f64) -> Birth {
        let ring = self.ring.clone();
        let first = ring.iter().map(|&i| minute(self.events[i].t)).fold(f64::INFINITY, f64::min);
        let counted = (0..self.events.len())
            .filter(|i| !ring.contains(i) && !self.events[*i].count_dropped && minute(self.events[*i].t) <= first)
            .collect();
        Birth { step, time, before: self.events.len(), ring, counted, missed: Vec::new(), late: Vec::new() }
    }

    /// The events a definition born at `b` sees: (time, props, entry step), in the order it saw them.
    fn seen<'a>(&'a self, b: &Birth, from_counts: bool) -> Vec<(f64, &'a Value, usize, usize)> {
        let mut out = Vec::new();
        if from_counts {
            for &i in &b.counted {
                out.push((minute(self.events[i].t) * MIN, &Value::Null, b.step, i));
            }
        }
        for &i in &b.ring {
            out.push((self.events[i].t, &self.events[i].props, b.step, i));
        }
        for (i, e) in self.events.iter().enumerate().skip(b.before) {
            if !b.missed.contains(&i) {
                out.push((e.t, &e.props, b.late.iter().find(|l| l.0 == i).map_or(e.step, |l| l.1), i));
            }
        }
        out
    }

    fn compile(&mut self, c: &J, step: usize, time: f64, prev: &HashMap<String, (Node, Birth)>, keep: &mut HashMap<String, (Node, Birth)>) -> Cond {
        let o = c.as_object().unwrap();
        let (k, v) = o.iter().next().unwrap();
        match k.as_str() {
            "$and" | "$or" => {
                let kids = v.as_array().unwrap().iter().map(|x| self.compile(x, step, time, prev, keep)).collect();
                if k == "$and" { Cond::And(kids) } else { Cond::Or(kids) }
            }
            "$not" => Cond::Not(Box::new(self.compile(v, step, time, prev, keep))),
            "$inSegment" => Cond::In(v.as_str().unwrap().into()),
            "$performed" | "$sequence" => {
                let mut tests = (Value::Null, None);
                let node = if k == "$performed" {
                    let agg = ["sum", "avg", "min", "max", "distinct"].iter().find_map(|a| v.get(*a).map(|p| (a.to_string(), p.as_str().unwrap().to_string())));
                    let count = v.get("count").map(from_json).unwrap_or_else(|| from_json(&json!({"$gte": 1})));
                    // A count tested against numbers only: the latest timestamps (exact windows);
                    // else per minute.
                    let ops = ["$gte", "$gt", "$lt", "$lte", "$eq", "$ne"];
                    let exact = agg.is_none() && match &count {
                        Value::Num(_) => true,
                        Value::Obj(m) => m.iter().all(|(op, v)| ops.contains(&op.as_str()) && matches!(v, Value::Num(_))),
                        _ => false,
                    };
                    tests = (count, v.get("value").map(from_json));
                    Node::Perf {
                        event: v["event"].as_str().unwrap().into(),
                        filter: v.get("where").map(from_json),
                        within: v.get("within").map_or(self.retention, |w| dur(w.as_str().unwrap())),
                        agg,
                        exact,
                    }
                } else {
                    Node::Seq {
                        steps: v["steps"].as_array().unwrap().iter().map(|s| (s["event"].as_str().unwrap().to_string(), s.get("where").map(from_json))).collect(),
                        within: v.get("within").map(|w| dur(w.as_str().unwrap())),
                    }
                };
                // The state's identity: what the state depends on (not the count or value tests,
                // except whether the count is a threshold and which).
                let key = match &node {
                    Node::Perf { exact, .. } => {
                        let count = &tests.0;
                        let mut x = v.clone();
                        let o = x.as_object_mut().unwrap();
                        o.remove("value");
                        o.remove("count");
                        if o.get("within").is_none() {
                            o.insert("within".into(), json!(self.retention));
                        } else {
                            o.insert("within".into(), json!(dur(o["within"].as_str().unwrap())));
                        }
                        // How many latest timestamps tell every count the test can tell apart:
                        // `n` for `$gte: n`, else the largest number + 1.
                        let need = |op: &str, n: f64| if op == "$gte" { n.ceil() } else { n.floor() + 1.0 };
                        let k = match (exact, count) {
                            (false, _) => 0.0,
                            (true, Value::Num(n)) => need("", *n),
                            (true, c) => c.as_obj().unwrap().iter().map(|(op, v)| need(op, v.as_num().unwrap())).fold(0.0, f64::max),
                        };
                        let k = if (1.0..=1000.0).contains(&k) { k } else { 0.0 };
                        format!("P{}|{k}", serde_json::to_string(&x).unwrap())
                    }
                    Node::Seq { .. } => format!("S{}", serde_json::to_string(v).unwrap()),
                };
                let node = match &node {
                    // A count needing none, or more than 1,000, is kept per minute.
                    Node::Perf { exact: true, .. } if key.ends_with("|0") => {
                        let Node::Perf { event, filter, within, agg, .. } = node.clone() else { unreachable!() };
                        Node::Perf { event, filter, within, agg, exact: false }
                    }
                    _ => node,
                };
                let birth = keep.get(&key).or_else(|| prev.get(&key)).map(|x| x.1.clone()).or_else(|| self.adopt(&key, step)).unwrap_or_else(|| self.birth(step, time));
                keep.insert(key.clone(), (node, birth));
                Cond::Node(key, tests.0, tests.1)
            }
            path => Cond::Score(path.strip_prefix("scores.").unwrap().into(), from_json(v)),
        }
    }

    /// A node or score let go earlier (kept as a foreign state) and loaded again at `step`: the ring's
    /// events since complete it (those that left the ring meanwhile are missed).
    fn adopt(&mut self, key: &str, step: usize) -> Option<Birth> {
        let (mut b, rel) = self.gone.remove(key)?;
        b.missed.extend((rel..self.events.len()).filter(|i| !self.ring.contains(i)));
        b.late.extend((rel..self.events.len()).map(|i| (i, step)));
        Some(b)
    }

    /// Loads definitions; returns the ids expected in `loaded`.
    fn load(&mut self, doc: &J, step: usize, time: f64) -> Vec<String> {
        let prev = std::mem::take(&mut self.nodes);
        let mut keep = HashMap::new();
        let mut loaded = Vec::new();
        self.segments.clear();
        for s in doc["segments"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap().to_string();
            // `$inSegment` of a segment not loaded rejects the segment.
            let text = serde_json::to_string(&s["condition"]).unwrap();
            let ok = (0..10).all(|j| !text.contains(&format!("\"$inSegment\":\"s{j}\"")) || loaded.contains(&format!("s{j}")));
            // A segment rejected for its `$inSegment` still keeps its operators' state up to
            // date (loaded later, it is not back-filled).
            let c = self.compile(&s["condition"], step, time, &prev, &mut keep);
            if !ok {
                continue;
            }
            loaded.push(id.clone());
            self.segments.push((id, c));
        }
        // What is no longer held is kept (foreign) with the number of events it saw.
        for (k, (_, b)) in prev {
            if !keep.contains_key(&k) {
                self.gone.insert(k, (b, self.events.len()));
            }
        }
        self.nodes = keep;
        let prev_scores = std::mem::take(&mut self.score_keys);
        self.scores.clear();
        for s in doc["scores"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap().to_string();
            let key = serde_json::to_string(&json!([s.get("halfLife"), s["rules"]])).unwrap();
            let birth = prev_scores.get(&key).cloned().or_else(|| self.adopt(&key, step)).unwrap_or_else(|| self.birth(step, time));
            self.score_keys.insert(key.clone(), birth.clone());
            let def = ScoreDef {
                id: id.clone(),
                half_life: s.get("halfLife").map(|h| dur_any(h.as_str().unwrap())),
                rules: s["rules"].as_array().unwrap().iter().map(|r| (r["event"].as_str().unwrap().into(), r.get("where").map(from_json), r["points"].as_f64().unwrap())).collect(),
            };
            self.scores.push((def, key, birth));
            loaded.push(id);
        }
        for (k, b) in prev_scores {
            if !self.score_keys.contains_key(&k) {
                self.gone.insert(k, (b, self.events.len()));
            }
        }
        loaded
    }

    /// What the profile drops at `now` (restore, write, refresh).
    fn prune(&mut self, now: f64) {
        let cut = now - self.retention;
        for e in self.events.iter_mut() {
            if e.t < cut {
                e.ring_dropped = true;
            }
            if minute(e.t) < minute(cut) {
                e.count_dropped = true;
            }
        }
        let events = &self.events;
        self.ring.retain(|&i| !events[i].ring_dropped);
    }

    fn track(&mut self, name: &str, t: f64, props: &Map, step: usize) {
        self.events.push(Ev { name: name.into(), t, props: Value::Obj(props.clone()), step, ring_dropped: false, count_dropped: false });
        self.ring.push(self.events.len() - 1);
        if self.ring.len() > RING {
            self.ring.remove(0);
        }
    }

    /// A node's (count, value) in world A (`strict` false) or B (`strict`: pruned at the latest
    /// time seen), or for a sequence (held, 0).
    fn node_value(&self, node: &Node, b: &Birth, now: f64, step: usize, strict: bool, host: &NativeHost) -> (f64, Value, bool) {
        let hw = self.hw_before(step + 1);
        match node {
            Node::Perf { event, filter, within, agg, exact, .. } => {
                // B: each event was pruned at every step since it entered the state.
                let mut since = vec![f64::NEG_INFINITY; step + 2];
                for s in (0..=step).rev() {
                    since[s] = since[s + 1].max(self.times[s]);
                }
                let inside = |te: f64, entry: usize| {
                    let at = if strict { since[entry.min(step)] } else { now };
                    if *exact { at - te < *within } else { at - (minute(te) + 1.0) * MIN < *within }
                };
                let from_counts = agg.is_none() && filter.is_none();
                let mut count = 0.0;
                let mut xs = Vec::new();
                let mut ds = BTreeSet::new();
                for (te, props, entry, i) in self.seen(b, from_counts) {
                    if self.events[i].name != *event || !inside(te, entry) {
                        continue;
                    }
                    // Events from the minute counts carry no properties (only counts read them).
                    if !props.is_null() && !Self::passes(filter, props, host) {
                        continue;
                    }
                    match agg {
                        None => count += 1.0,
                        Some((a, p)) => {
                            let v = props.path(p).cloned().unwrap_or(Value::Null);
                            if a == "distinct" {
                                if !v.is_null() {
                                    count += 1.0;
                                    ds.insert(js_string(&v));
                                }
                            } else if let Some(x) = numeric(&v) {
                                count += 1.0;
                                xs.push(x);
                            }
                        }
                    }
                }
                let value = match agg.as_ref().map(|a| a.0.as_str()) {
                    None => Value::Null,
                    Some("sum") => Value::Num(xs.iter().sum()),
                    Some("avg") if !xs.is_empty() => Value::Num(xs.iter().sum::<f64>() / xs.len() as f64),
                    Some("min") if !xs.is_empty() => Value::Num(xs.iter().copied().fold(f64::INFINITY, f64::min)),
                    Some("max") if !xs.is_empty() => Value::Num(xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                    Some("distinct") => Value::Num(ds.len() as f64),
                    _ => Value::Null,
                };
                (count, value, false)
            }
            Node::Seq { steps, within } => {
                let k = steps.len();
                // The latest step time before each step.
                let mut before = vec![f64::NEG_INFINITY; step + 2];
                for s in 0..=step {
                    before[s + 1] = before[s].max(self.times[s]);
                }
                let mut partial = vec![f64::NEG_INFINITY; k];
                let mut done = f64::NEG_INFINITY;
                for (t, props, entry, i) in self.seen(b, false) {
                    let hb = before[entry.min(step + 1)];
                    for j in (0..k).rev() {
                        let (ev, filter) = &steps[j];
                        if self.events[i].name != *ev || !Self::passes(filter, props, host) {
                            continue;
                        }
                        let start = if j == 0 { t } else { partial[j - 1] };
                        if start == f64::NEG_INFINITY {
                            continue;
                        }
                        if let Some(w) = within {
                            if t - start >= *w || (strict && j > 0 && hb - start >= *w) {
                                continue;
                            }
                        }
                        if j == k - 1 {
                            done = done.max(start);
                        } else {
                            partial[j] = partial[j].max(start);
                        }
                    }
                }
                let at = if strict { hw } else { now };
                (0.0, Value::Null, done > f64::NEG_INFINITY && at - done < self.retention)
            }
        }
    }

    fn node_result(&self, key: &str, count: &Value, value: &Option<Value>, vals: &[(f64, Value, bool); 2], host: &NativeHost) -> Option<bool> {
        // The engine's events lie between the two worlds' (B's are a subset of A's): when the
        // counts differ, a count or value test that is not monotonic (`$eq`, a range, `max`
        // below) may hold in neither world and in between.
        if vals[0].0 != vals[1].0 {
            return None;
        }
        let r: Vec<bool> = vals
            .iter()
            .map(|(c, v, held)| match &self.nodes[key].0 {
                Node::Perf { .. } => self.holds(count, &Value::Num(*c), host) && value.as_ref().is_none_or(|t| self.holds(t, v, host)),
                Node::Seq { .. } => *held,
            })
            .collect();
        (r[0] == r[1]).then_some(r[0])
    }

    /// Score `i` at `now`: world A (what the profile held at the back-fill) and world B (also
    /// nothing older than the retention at the back-fill).
    fn score_values(&self, i: usize, now: f64, host: &NativeHost) -> [f64; 2] {
        let (d, _, b) = &self.scores[i];
        let mut out = [0.0; 2];
        for (w, strict) in [false, true].iter().enumerate() {
            let mut pts = Vec::new();
            for (te, props, entry, ix) in self.seen(b, true) {
                if *strict && entry == b.step && ix < b.before && b.time - self.events[ix].t >= self.retention {
                    continue;
                }
                for (ev, filter, p) in &d.rules {
                    if self.events[ix].name != *ev {
                        continue;
                    }
                    if props.is_null() {
                        // From the minute counts: rules without `where` only.
                        if filter.is_none() {
                            pts.push((te, *p));
                        }
                    } else if Self::passes(filter, props, host) {
                        pts.push((te, *p));
                    }
                }
            }
            let latest = pts.iter().map(|x| x.0).fold(0.0, f64::max);
            let at = now.max(latest);
            out[w] = pts.iter().map(|(t, p)| d.half_life.map_or(*p, |h| p * (-(at - t) / h).exp2())).sum();
        }
        out
    }

    /// Each loaded segment's membership at step `step` (None: the oracle cannot tell).
    fn evaluate(&self, now: f64, step: usize, host: &NativeHost) -> Vec<(String, Option<bool>)> {
        let mut nodes: HashMap<&str, [(f64, Value, bool); 2]> = HashMap::new();
        for (k, (node, b)) in &self.nodes {
            nodes.insert(k, [self.node_value(node, b, now, step, false, host), self.node_value(node, b, now, step, true, host)]);
        }
        let scores: Vec<(String, [f64; 2])> = (0..self.scores.len()).map(|i| (self.scores[i].0.id.clone(), self.score_values(i, now, host))).collect();
        let mut out: Vec<(String, Option<bool>)> = Vec::new();
        for (id, c) in &self.segments {
            let r = self.cond(c, &nodes, &scores, &out, host);
            out.push((id.clone(), r));
        }
        out
    }

    fn cond(&self, c: &Cond, nodes: &HashMap<&str, [(f64, Value, bool); 2]>, scores: &[(String, [f64; 2])], segs: &[(String, Option<bool>)], host: &NativeHost) -> Option<bool> {
        match c {
            Cond::And(v) => tri_and(v.iter().map(|x| self.cond(x, nodes, scores, segs, host))),
            Cond::Or(v) => tri_and(v.iter().map(|x| self.cond(x, nodes, scores, segs, host).map(|b| !b))).map(|b| !b),
            Cond::Not(x) => self.cond(x, nodes, scores, segs, host).map(|b| !b),
            Cond::Node(k, count, value) => self.node_result(k, count, value, &nodes[k.as_str()], host),
            Cond::In(id) => segs.iter().find(|s| s.0 == *id).and_then(|s| s.1),
            Cond::Score(id, test) => {
                let vals: Vec<Value> = match scores.iter().find(|s| s.0 == *id) {
                    None => vec![Value::Null],
                    Some((_, v)) => v.iter().flat_map(|x| [read(x - 1e-9 * x.abs().max(1.0)), read(x + 1e-9 * x.abs().max(1.0))]).map(Value::Num).collect(),
                };
                let r: Vec<bool> = vals.iter().map(|v| self.holds(test, v, host)).collect();
                r.iter().all(|x| *x == r[0]).then_some(r[0])
            }
        }
    }
}

fn dur_any(s: &str) -> f64 {
    let (n, u) = s.split_at(s.len() - 1);
    let n: f64 = n.parse().unwrap();
    n * match u {
        "m" => MIN,
        "h" => HOUR,
        "d" => DAY,
        "w" => WEEK,
        _ => panic!("unit {u}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Driver

/// Outcome of one sequence: the number of segment checks made and skipped, or a divergence.
fn run(seed: u64, steps: usize) -> Result<(u64, u64), String> {
    let mut g = Gen { r: SplitMix(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED), retention: 0.0 };
    let (ret_text, retention) = [("90d", 90.0 * DAY), ("30d", 30.0 * DAY), ("7d", 7.0 * DAY)][[0, 0, 1, 2][g.r.index(4)]];
    g.retention = retention;
    let mut opts = Options::default();
    opts.retention = retention;
    // A pool of definitions; each load takes a random part of it (unchanged ones keep their state).
    let nscores = g.r.index(3);
    let nsegs = 3 + g.r.index(6);
    let scores: Vec<J> = (0..nscores).map(|i| g.score(i)).collect();
    let segs: Vec<J> = (0..nsegs).map(|i| json!({"id": format!("s{i}"), "condition": g.cond(0, i, nscores)})).collect();
    let pick = |g: &mut Gen| -> J {
        let s: Vec<J> = segs.iter().filter(|_| g.chance(80)).cloned().collect();
        let c: Vec<J> = scores.iter().filter(|_| g.chance(80)).cloned().collect();
        json!({"version": 1, "segments": s, "scores": c})
    };
    let host = NativeHost::new(1);
    let mut log: Vec<String> = vec![format!("seed {seed}, retention {ret_text}")];
    let mut now = T0 + g.r.below(HOUR as u64) as f64;
    let mut ks = Keystone::new(opts.clone(), NativeHost::boxed(seed), None, now);
    let mut o = Oracle { retention, events: Vec::new(), times: Vec::new(), ring: Vec::new(), nodes: HashMap::new(), scores: Vec::new(), segments: Vec::new(), score_keys: HashMap::new(), gone: HashMap::new() };
    let mut defs = pick(&mut g);
    let mut stored: Option<Value> = None;
    let (mut checked, mut skipped) = (0u64, 0u64);
    // Definitions are loaded after a few events, sometimes (back-fill from history).
    let first_load = if g.chance(50) { 0 } else { g.r.index(steps.max(1) / 2) };
    for step in 0..steps {
        now += g.gap();
        o.times.push(now);
        let what: String;
        let mut want_loaded = None;
        let roll = g.r.below(100);
        if step == first_load || (step > first_load && roll < 3) {
            if step != first_load {
                defs = pick(&mut g);
            }
            let r = ks.load_definitions(&from_json(&defs), now).map_err(|e| format!("load refused: {e:?}"))?;
            let want = o.load(&defs, step, now);
            want_loaded = Some((r.loaded.clone(), want));
            what = format!("load {}", serde_json::to_string(&defs).unwrap());
        } else if roll < 6 {
            ks.refresh(now);
            o.prune(now);
            what = "refresh".into();
        } else if roll < 9 {
            if let Some(v) = ks.write(None, now) {
                stored = Some(v);
                o.prune(now);
            }
            ks = Keystone::new(opts.clone(), NativeHost::boxed(seed + step as u64), stored.as_ref(), now);
            o.prune(now);
            if step > first_load {
                ks.load_definitions(&from_json(&defs), now).map_err(|e| format!("reload refused: {e:?}"))?;
            }
            what = "restore".into();
        } else {
            let name = g.event();
            let props = g.props();
            ks.track(now, name, props.clone()).map_err(|e| format!("track refused: {e:?}"))?;
            o.track(name, now, &props, step);
            what = format!("track {name} {}", serde_json::to_string(&common::to_json(&Value::Obj(props))).unwrap());
        }
        log.push(format!("step {step} at T0+{}ms ({:+.3}d): {what}", now - T0, (now - T0) / DAY));
        let fail = |msg: String, log: &[String]| -> String {
            let tail: Vec<&String> = log.iter().skip(log.len().saturating_sub(std::env::var("KEYSTONE_ORACLE_LOG").ok().and_then(|s| s.parse().ok()).unwrap_or(40))).collect();
            format!("seed {seed} step {step}: {msg}\n  pool: {}\n  scores: {}\n  {}", serde_json::to_string(&segs).unwrap(), serde_json::to_string(&scores).unwrap(), tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "))
        };
        if let Some((got, want)) = want_loaded {
            if got != want {
                return Err(fail(format!("loaded {got:?}, oracle {want:?}"), &log));
            }
        }
        if step >= first_load {
            let want = o.evaluate(now, step, &host);
            let got = ks.segments().to_vec();
            for (id, w) in &want {
                match w {
                    None => skipped += 1,
                    Some(w) => {
                        checked += 1;
                        if got.contains(id) != *w {
                            let cond = segs.iter().find(|s| s["id"] == json!(id)).map(|s| s["condition"].to_string()).unwrap_or_default();
                            let x = ks.explain(id, now).map(|x| serde_json::to_string(&common::to_json(&x)).unwrap()).unwrap_or_default();
                            let nodes: Vec<String> = o.nodes.iter().map(|(k, (n, b))| format!("{k} born@{} → A {:?} B {:?}", b.step, o.node_value(n, b, now, step, false, &host), o.node_value(n, b, now, step, true, &host))).collect();
                            return Err(fail(format!("segment {id}: engine {}, oracle {w}\n  condition {cond}\n  engine explain {x}\n  oracle nodes:\n    {}", !w, nodes.join("\n    ")), &log));
                        }
                    }
                }
            }
            if let Some(extra) = got.iter().find(|id| !want.iter().any(|w| w.0 == **id)) {
                return Err(fail(format!("segment {extra} held but not loaded"), &log));
            }
            // The next time-based change the engine announces (its timer): nothing the oracle
            // holds changes before it without an event.
            let next = ks.next_check(now);
            let probe = next.map_or(now + 2.0 * retention, |t| t - 1.0);
            if probe > now {
                o.times.push(probe);
                let later = o.evaluate(probe, step + 1, &host);
                o.times.pop();
                for ((id, a), (_, b)) in want.iter().zip(&later) {
                    if let (Some(a), Some(b)) = (a, b) {
                        if a != b {
                            return Err(fail(format!("segment {id}: next_check {next:?} (in {:?} ms), but the oracle has it change from {a} to {b} by {probe}", next.map(|t| t - now)), &log));
                        }
                    }
                }
            }
            let doc = ks.document_at(now);
            for i in 0..o.scores.len() {
                let id = &o.scores[i].0.id;
                let v = doc.path(&format!("scores.{id}")).and_then(Value::as_num).unwrap_or(f64::NAN);
                let want = o.score_values(i, now, &host);
                if !want.iter().any(|w| (v - w).abs() <= 0.005 + 1e-6 * w.abs().max(1.0)) {
                    let b = &o.scores[i].2;
                    let ring: Vec<String> = b.ring.iter().map(|&i| format!("{}@{}", o.events[i].name, o.events[i].t - T0)).collect();
                    let counted: Vec<String> = b.counted.iter().map(|&i| format!("{}@{}", o.events[i].name, o.events[i].t - T0)).collect();
                    let stored = if std::env::var("KEYSTONE_ORACLE_DUMP").is_ok() { ks.write(None, now).map(|v| serde_json::to_string(&common::to_json(&v)).unwrap()).unwrap_or_default() } else { String::new() };
                    return Err(fail(format!("score {id}: engine {v}, oracle {want:?}\n  born at step {} (before {}), ring {ring:?}\n  from counts {counted:?}\n  {stored}", b.step, b.before), &log));
                }
            }
        }
        if g.chance(80) {
            if let Some(v) = ks.write(None, now) {
                stored = Some(v);
                o.prune(now);
            }
        }
    }
    Ok((checked, skipped))
}

fn seeds() -> Vec<u64> {
    let Ok(s) = std::env::var("KEYSTONE_ORACLE_SEEDS") else { return (1..=40).collect() };
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<u64>().unwrap()..=b.trim().parse::<u64>().unwrap()),
            None => out.push(part.trim().parse().unwrap()),
        }
    }
    out
}

#[test]
fn segments_agree_with_a_brute_force_oracle() {
    let steps: usize = std::env::var("KEYSTONE_ORACLE_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let seeds = seeds();
    let (mut checked, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for &seed in &seeds {
        match run(seed, steps) {
            Ok((c, s)) => {
                checked += c;
                skipped += s;
            }
            Err(e) => failures.push(e),
        }
    }
    println!("{} sequences of {steps} steps: {checked} segment checks, {skipped} skipped (clock set back, score on a rounding step), {} diverged", seeds.len(), failures.len());
    for f in failures.iter().take(3) {
        println!("{f}\n");
    }
    if !failures.is_empty() {
        let firsts: Vec<&str> = failures.iter().map(|f| f.lines().next().unwrap()).collect();
        panic!("{} of {} sequences diverged:\n{}", failures.len(), seeds.len(), firsts.join("\n"));
    }
}
