#![cfg(not(target_arch = "wasm32"))]
//! GrowthBook's `evalCondition` conformance cases (tests/cases/growthbook-evalCondition.json)
//! against the core's condition engine, plus property tests of the combinators.
//!
//! Regexes run on the native host's `regex` crate (RE2 syntax: no look-around or
//! back-references). None of the 248 cases needs those, so all run; the browser build uses
//! JavaScript's RegExp and runs the same file in tests/e2e/conformance.test.mjs.
mod common;

use common::{json, NativeHost};
use keystone::core::condition::{eval_condition, Ctx, Groups};
use keystone::core::value::{Map, Value};

fn cases() -> Vec<Value> {
    let doc = json(include_str!("cases/growthbook-evalCondition.json"));
    doc.get("evalCondition").and_then(|v| v.as_arr()).expect("evalCondition array").clone()
}

#[test]
fn all_growthbook_cases_pass() {
    let host = NativeHost::new(1);
    let cases = cases();
    assert_eq!(cases.len(), 248);
    let mut failures = Vec::new();
    for c in &cases {
        let a = c.as_arr().unwrap();
        let groups = Groups::new(a.get(4).and_then(|g| g.as_obj()).cloned().unwrap_or_default());
        let cx = Ctx { groups: Some(&groups), host: &host };
        let got = eval_condition(&a[2], &a[1], &cx);
        if Value::Bool(got) != a[3] {
            failures.push(a[0].as_str().unwrap().to_string());
        }
    }
    assert!(failures.is_empty(), "{} failing cases: {:#?}", failures.len(), failures);
}

/// Keystone's own cases beyond GrowthBook's suite (tests/cases/conditions-extra.json), each
/// answered as GrowthBook 1.8.0 answers it.
#[test]
fn extra_cases_pass() {
    let host = NativeHost::new(1);
    let doc = json(include_str!("cases/conditions-extra.json"));
    let mut failures = Vec::new();
    for c in doc.get("cases").and_then(Value::as_arr).unwrap() {
        let a = c.as_arr().unwrap();
        let groups = Groups::new(a.get(4).and_then(|g| g.as_obj()).cloned().unwrap_or_default());
        let cx = Ctx { groups: Some(&groups), host: &host };
        if Value::Bool(eval_condition(&a[2], &a[1], &cx)) != a[3] {
            failures.push(a[0].as_str().unwrap().to_string());
        }
    }
    assert!(failures.is_empty(), "{} failing cases: {:#?}", failures.len(), failures);
}

/// A small seeded generator of documents and conditions (xorshift).
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
    fn scalar(&mut self) -> Value {
        self.pick(&[Value::Null, Value::Bool(true), Value::Num(0.0), Value::Num(3.0), Value::Num(-2.5), Value::Str("3".into()), Value::Str("a".into()), Value::Str("".into())]).clone()
    }
    fn doc(&mut self) -> Value {
        let mut m = Map::new();
        for k in ["a", "b", "c"] {
            if self.next() % 4 != 0 {
                let v = if self.next() % 5 == 0 { Value::Arr(vec![self.scalar(), self.scalar()]) } else { self.scalar() };
                m.insert(k, v);
            }
        }
        Value::Obj(m)
    }
    fn cond(&mut self, depth: u32) -> Value {
        let key = self.pick(&["a", "b", "c"]).to_string();
        if depth > 0 && self.next() % 3 == 0 {
            let kids: Vec<Value> = (0..1 + self.next() % 3).map(|_| self.cond(depth - 1)).collect();
            let op = self.pick(&["$and", "$or", "$nor"]).to_string();
            return Value::Obj(Map::new().with(op, Value::Arr(kids)));
        }
        let op = self.pick(&["$eq", "$ne", "$gt", "$lte", "$in", "$exists", "$type"]).to_string();
        let arg = match op.as_str() {
            "$in" => Value::Arr(vec![self.scalar(), self.scalar()]),
            "$exists" => Value::Bool(self.next() % 2 == 0),
            "$type" => Value::Str(self.pick(&["string", "number", "null", "array"]).to_string()),
            _ => self.scalar(),
        };
        let test = if self.next() % 4 == 0 { self.scalar() } else { Value::Obj(Map::new().with(op, arg)) };
        Value::Obj(Map::new().with(key, test))
    }
}

#[test]
fn combinators_obey_their_laws_on_random_inputs() {
    let host = NativeHost::new(2);
    let cx = Ctx { groups: None, host: &host };
    let mut g = Gen(0x5EED_1234_ABCD_0001);
    for _ in 0..3000 {
        let doc = g.doc();
        let c = g.cond(2);
        let r = eval_condition(&doc, &c, &cx);
        let not = Value::Obj(Map::new().with("$not", c.clone()));
        assert_eq!(eval_condition(&doc, &not, &cx), !r, "$not inverts {c:?} on {doc:?}");
        for op in ["$and", "$or"] {
            let one = Value::Obj(Map::new().with(op, Value::Arr(vec![c.clone()])));
            assert_eq!(eval_condition(&doc, &one, &cx), r, "{op} of one equals it: {c:?}");
        }
        let nor = Value::Obj(Map::new().with("$nor", Value::Arr(vec![c.clone()])));
        assert_eq!(eval_condition(&doc, &nor, &cx), !r);
        let c2 = g.cond(1);
        let r2 = eval_condition(&doc, &c2, &cx);
        let and = Value::Obj(Map::new().with("$and", Value::Arr(vec![c.clone(), c2.clone()])));
        let or = Value::Obj(Map::new().with("$or", Value::Arr(vec![c.clone(), c2.clone()])));
        assert_eq!(eval_condition(&doc, &and, &cx), r && r2);
        assert_eq!(eval_condition(&doc, &or, &cx), r || r2);
    }
}

#[test]
fn regex_and_unknown_operators_are_false_not_errors() {
    let host = NativeHost::new(3);
    let cx = Ctx { groups: None, host: &host };
    let doc = json(r#"{"name":"Ünïcode","n":5}"#);
    assert!(!eval_condition(&doc, &json(r#"{"name":{"$regex":"("}}"#), &cx));
    assert!(!eval_condition(&doc, &json(r#"{"n":{"$bogus":1}}"#), &cx));
    assert!(eval_condition(&doc, &json(r#"{"name":{"$ini":["üNÏCODE"]}}"#), &cx));
    assert!(!eval_condition(&Value::Null, &Value::Str("x".into()), &cx));
}

/// `$inGroup` answers strings from the sorted index and everything else by SameValueZero over
/// the group as given: both must agree with a plain scan.
#[test]
fn saved_group_index_agrees_with_a_scan() {
    let host = NativeHost::new(1);
    let members: Vec<Value> = (0..500).rev().map(|i| Value::Str(format!("u{i}"))).chain([Value::Num(7.0), Value::Bool(true), Value::Null]).collect();
    let raw = Map::new().with("big", Value::Arr(members.clone())).with("empty", Value::Arr(vec![])).with("odd", Value::Str("not an array".into()));
    let groups = Groups::new(raw);
    let cx = Ctx { groups: Some(&groups), host: &host };
    let probes = [
        Value::Str("u0".into()), Value::Str("u499".into()), Value::Str("u250".into()), Value::Str("u500".into()), Value::Str("".into()),
        Value::Num(7.0), Value::Str("7".into()), Value::Bool(true), Value::Null,
        Value::Arr(vec![Value::Str("x".into()), Value::Str("u3".into())]), Value::Arr(vec![Value::Str("x".into())]),
    ];
    for p in &probes {
        let scan = match p {
            Value::Arr(a) => a.iter().any(|x| members.contains(x)),
            x => members.contains(x),
        };
        let doc = Value::Obj(Map::new().with("id", p.clone()));
        // A group that is not an array matches nobody, either way (GrowthBook).
        for (group, expect, not_expect) in [("big", scan, !scan), ("empty", false, true), ("odd", false, false), ("missing", false, true)] {
            let cond = Value::Obj(Map::new().with("id", Value::Obj(Map::new().with("$inGroup", group))));
            assert_eq!(eval_condition(&doc, &cond, &cx), expect, "{p:?} in {group}");
            let not = Value::Obj(Map::new().with("id", Value::Obj(Map::new().with("$notInGroup", group))));
            assert_eq!(eval_condition(&doc, &not, &cx), not_expect, "{p:?} not in {group}");
        }
    }
}

/// Two GrowthBook behaviours beyond its case file, in `evalCondition` and in segments alike:
/// `$nor: []` is false (`!$or`, and an empty `$or` holds), and `"tags.length"` reads an array's
/// length (GrowthBook's path walk reads any property `in` an object).
#[test]
fn empty_nor_is_false_and_array_length_reads_through_a_path_in_conditions_and_segments() {
    let host = NativeHost::new(1);
    let cx = Ctx { groups: None, host: &host };
    let doc = json(r#"{"traits":{"tags":["a","b","c"],"name":"abc"}}"#);
    for (cond, want) in [
        (r#"{"$nor":[]}"#, false),
        (r#"{"$or":[]}"#, true),
        (r#"{"$and":[]}"#, true),
        (r#"{"traits.tags.length":3}"#, true),
        (r#"{"traits.tags.length":{"$gt":2}}"#, true),
        (r#"{"traits.tags.length":2}"#, false),
        (r#"{"traits.name.length":3}"#, false),
        (r#"{"traits.none.length":{"$exists":false}}"#, true),
    ] {
        assert_eq!(eval_condition(&doc, &json(cond), &cx), want, "evalCondition {cond}");
        let mut ks = keystone::core::keystone::Keystone::new(Default::default(), NativeHost::boxed(1), None, 1.7e12);
        ks.set_traits(1.7e12, Map::new().with("tags", json(r#"["a","b","c"]"#)).with("name", "abc"));
        let defs = json(&format!(r#"{{"version":1,"segments":[{{"id":"s","condition":{cond}}}]}}"#));
        assert_eq!(ks.load_definitions(&defs, 1.7e12).unwrap().loaded, vec!["s".to_string()]);
        assert_eq!(ks.in_segment("s"), want, "segment {cond}");
    }
}
