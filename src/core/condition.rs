//! Targeting conditions with the semantics of GrowthBook's `evalCondition`: MongoDB-style
//! query documents over a JSON document, with JavaScript's coercions.
//!
//! Invariants: evaluation never fails — a malformed condition, an unknown operator or an
//! invalid regex is simply `false`; a missing value is `null`. Regexes are the host's
//! (JavaScript `RegExp` in the browser); numeric text goes through [`Host::parse_number`] and
//! number text through [`Host::format_number`], so no float parsing or printing is compiled in.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::host::Host;
use crate::core::value::{Map, Value};
use alloc::borrow::Cow;
use core::cmp::Ordering;

static NULL: Value = Value::Null;

/// What evaluation needs besides the document: saved groups and the host.
pub struct Ctx<'a> {
    /// `savedGroups`: group id → array of values (`$inGroup`, `$notInGroup`).
    pub groups: Option<&'a Groups>,
    /// Host services (regex, number text, lower-casing).
    pub host: &'a dyn Host,
}

/// `evalCondition(obj, condition, savedGroups)`: whether `obj` satisfies `cond`.
///
/// A condition that is no object: a number or a boolean is the empty condition (true), as in
/// GrowthBook, whose `Object.entries` finds no entries in it; anything else is false (GrowthBook
/// throws on null, and reads an array or a string by index: see the README).
pub fn eval_condition(obj: &Value, cond: &Value, cx: &Ctx) -> bool {
    let m = match cond {
        Value::Obj(m) => m,
        Value::Num(_) | Value::Bool(_) => return true,
        _ => return false,
    };
    // Plain loops here and in `eval_value` rather than `all` over the map's entries: 79 B gzip
    // less (each `all` made a `try_fold` holding the evaluator).
    for (k, v) in m.iter() {
        let ok = match k.as_str() {
            "$or" => eval_or(obj, v, cx),
            "$nor" => !eval_or(obj, v, cx),
            "$and" => v.as_arr().map_or(true, |a| a.iter().all(|c| eval_condition(obj, c, cx))),
            "$not" => !eval_condition(obj, v, cx),
            path => eval_value(v, &get_path(obj, path), cx, false),
        };
        if !ok {
            return false;
        }
    }
    true
}

fn eval_or(obj: &Value, v: &Value, cx: &Ctx) -> bool {
    match v.as_arr() {
        Some(a) => a.is_empty() || a.iter().any(|c| eval_condition(obj, c, cx)),
        None => true,
    }
}

/// The value at a dot path (`"a.b.0"`, arrays take canonical indexes), `null` when absent. As in
/// GrowthBook (whose path walk reads any property `in` an object), `"tags.length"` is the length
/// of the array `tags`, and `"length"` that of `obj` when it is an array (an element under
/// `$elemMatch`).
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Cow<'a, Value> {
    if let Some(v) = obj.path(path) {
        return Cow::Borrowed(v);
    }
    let arr = if path == "length" { Some(obj) } else { path.strip_suffix(".length").and_then(|head| obj.path(head)) };
    if let Some(Value::Arr(a)) = arr {
        return Cow::Owned(Value::Num(a.len() as f64));
    }
    Cow::Borrowed(&NULL)
}

/// Whether `value` satisfies the condition value `cond` (a literal or an operator object).
pub fn eval_value(cond: &Value, value: &Value, cx: &Ctx, insensitive: bool) -> bool {
    match cond {
        Value::Str(c) => {
            let s = js_string(value, cx.host);
            if insensitive {
                lower(&s, cx.host) == lower(c, cx.host)
            } else {
                *s == **c
            }
        }
        Value::Num(c) => to_number(value, cx.host) == *c,
        Value::Bool(c) => !value.is_null() && value.truthy() == *c,
        Value::Null => value.is_null(),
        Value::Obj(m) if is_operator_object(m) => {
            for (op, exp) in m.iter() {
                if !eval_operator(op, value, exp, cx) {
                    return false;
                }
            }
            true
        }
        _ => json_eq(value, cond),
    }
}

/// Whether every key of a non-empty object starts with `$`.
pub fn is_operator_object(m: &Map) -> bool {
    !m.is_empty() && m.iter().all(|(k, _)| matches!(k.as_bytes().first(), Some(b'$')))
}

fn eval_operator(op: &str, actual: &Value, exp: &Value, cx: &Ctx) -> bool {
    let h = cx.host;
    if let Some(vop) = op.strip_prefix("$v") {
        let o = utf16_cmp(&padded_version(actual, h), &padded_version(exp, h));
        return match vop {
            "eq" => o == Ordering::Equal,
            "ne" => o != Ordering::Equal,
            "gt" => o == Ordering::Greater,
            "gte" => o != Ordering::Less,
            "lt" => o == Ordering::Less,
            "lte" => o != Ordering::Greater,
            _ => false,
        };
    }
    match op {
        "$eq" => strict_eq(actual, exp),
        "$ne" => !strict_eq(actual, exp),
        "$lt" => js_less(actual, exp, false, h),
        "$lte" => js_less(actual, exp, true, h),
        "$gt" => js_less(exp, actual, false, h),
        "$gte" => js_less(exp, actual, true, h),
        "$exists" => exp.truthy() != actual.is_null(),
        "$in" | "$ini" | "$nin" | "$nini" => {
            let Some(list) = exp.as_arr() else { return false };
            is_in(actual, list, matches!(op.as_bytes().last(), Some(b'i')), h) != op.starts_with("$n")
        }
        "$inGroup" | "$notInGroup" => {
            let found = cx.groups.map_or(Some(false), |g| g.contains(&js_string(exp, h), actual, h));
            found.is_some_and(|f| f == (op == "$inGroup"))
        }
        "$not" => !eval_value(exp, actual, cx, false),
        "$size" => match actual {
            Value::Arr(a) => eval_value(exp, &Value::Num(a.len() as f64), cx, false),
            _ => false,
        },
        "$elemMatch" => {
            let Value::Arr(items) = actual else { return false };
            let op_obj = exp.as_obj().is_some_and(is_operator_object);
            // As GrowthBook: only null elements are skipped (0, "" and false are tested).
            items.iter().any(|el| !el.is_null() && if op_obj { eval_value(exp, el, cx, false) } else { eval_condition(el, exp, cx) })
        }
        "$all" | "$alli" => {
            let (Value::Arr(have), Some(want)) = (actual, exp.as_arr()) else { return false };
            want.iter().all(|w| have.iter().any(|a| eval_value(w, a, cx, op == "$alli")))
        }
        "$regex" | "$regexi" => match exp {
            Value::Str(p) => h.regex_test(p, if op == "$regexi" { "i" } else { "" }, &js_string(actual, h)) == Some(true),
            _ => false,
        },
        "$type" => exp.as_str() == Some(actual.type_name()),
        _ => false,
    }
}

/// `savedGroups` (group id → array of values, or GrowthBook's `{type: "list", values: [...]}`),
/// with each group's string members also sorted, so that `$inGroup` on a string (the usual case:
/// an id among thousands) is a binary search.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Groups {
    raw: Map,
    /// Per group of `raw`, in the same order: its string members, sorted.
    sorted: Vec<Vec<String>>,
}

impl Groups {
    /// Indexes `raw`.
    pub fn new(raw: Map) -> Groups {
        let mut sorted = Vec::new();
        for (_, v) in raw.iter() {
            let mut strs = Vec::new();
            for x in group_values(v).unwrap_or_default() {
                if let Value::Str(s) = x {
                    strs.push(s.clone());
                }
            }
            crate::core::sort::sort_by(&mut strs, |a, b| a < b);
            sorted.push(strs);
        }
        Groups { raw, sorted }
    }

    /// The groups as given.
    pub fn raw(&self) -> &Map {
        &self.raw
    }

    /// Whether `actual` (or, for an array, one of its elements) is a member of group `id`: an
    /// unknown group is empty; None for a group that is not a list of values (as in GrowthBook,
    /// it matches nobody, with `$inGroup` or `$notInGroup`).
    pub fn contains(&self, id: &str, actual: &Value, h: &dyn Host) -> Option<bool> {
        for ((k, v), sorted) in self.raw.iter().zip(&self.sorted) {
            if k == id {
                let list = group_values(v)?;
                return Some(match actual {
                    // A string equals only a string (SameValueZero): the sorted members answer.
                    Value::Str(s) => sorted.binary_search_by(|m| m.as_str().cmp(s)).is_ok(),
                    _ => is_in(actual, list, false, h),
                });
            }
        }
        Some(false)
    }
}

/// The values of a saved group: an array, or the `values` array of `{type: "list"}` (GrowthBook's
/// `getSavedGroupArrayValues`); None for anything else.
fn group_values(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Arr(a) => Some(a),
        Value::Obj(m) if m.get("type").and_then(Value::as_str) == Some("list") => m.get("values").and_then(Value::as_arr).map(Vec::as_slice),
        _ => None,
    }
}

/// `Array.prototype.includes`-style membership; an array `actual` intersects. Case-insensitive
/// variants fold strings with `toLowerCase` and compare strictly.
fn is_in(actual: &Value, list: &[Value], insensitive: bool, h: &dyn Host) -> bool {
    let eq = |a: &Value, b: &Value| {
        if insensitive {
            match (a, b) {
                (Value::Str(x), Value::Str(y)) => lower(x, h) == lower(y, h),
                _ => strict_eq(a, b),
            }
        } else {
            same_value_zero(a, b)
        }
    };
    match actual {
        Value::Arr(items) => items.iter().any(|el| list.iter().any(|x| eq(el, x))),
        _ => list.iter().any(|x| eq(actual, x)),
    }
}

fn lower(s: &str, h: &dyn Host) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        h.lowercase(s)
    }
}

/// JavaScript `===` (objects and arrays are never equal: they are distinct references).
pub fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => false,
    }
}

fn same_value_zero(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => strict_eq(a, b),
    }
}

/// `JSON.stringify(a) === JSON.stringify(b)` for JSON values (objects compare in key order).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    a == b
}

/// JavaScript `String(v)`.
pub fn js_string<'a>(v: &'a Value, h: &dyn Host) -> Cow<'a, str> {
    match v {
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Num(n) => Cow::Owned(h.format_number(*n)),
        Value::Str(s) => Cow::Borrowed(s),
        Value::Arr(a) => {
            let mut out = String::new();
            for (i, el) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !el.is_null() {
                    out.push_str(&js_string(el, h));
                }
            }
            Cow::Owned(out)
        }
        Value::Obj(_) => Cow::Borrowed("[object Object]"),
    }
}

/// JavaScript `Number(v)` (`v * 1`).
pub fn to_number(v: &Value, h: &dyn Host) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => *b as u8 as f64,
        Value::Num(n) => *n,
        Value::Str(s) => h.parse_number(s),
        Value::Arr(_) => h.parse_number(&js_string(v, h)),
        Value::Obj(_) => f64::NAN,
    }
}

/// JavaScript `a < b` (or `a <= b` with `or_equal`): strings compare by UTF-16 code units when
/// both sides are strings after `ToPrimitive`, otherwise as numbers (NaN is never comparable).
fn js_less(a: &Value, b: &Value, or_equal: bool, h: &dyn Host) -> bool {
    let prim_str = |v: &Value| matches!(v, Value::Str(_) | Value::Arr(_) | Value::Obj(_));
    if prim_str(a) && prim_str(b) {
        let o = utf16_cmp(&js_string(a, h), &js_string(b, h));
        return o == Ordering::Less || (or_equal && o == Ordering::Equal);
    }
    let (x, y) = (to_number(a, h), to_number(b, h));
    if or_equal { x <= y } else { x < y }
}

/// String order. JavaScript compares UTF-16 code units; UTF-8 byte order is the same except
/// between characters above U+FFFF and U+E000..U+FFFF, which no targeting value mixes: a
/// documented departure (README "Segments, scores and explain"), since the fix-up of the lead
/// bytes costs ≈ 80 B gzip of wasm (comparing `encode_utf16` iterators ≈ 180 B).
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.cmp(b)
}

/// GrowthBook's `paddedVersionString`: `"v1.2.3-rc.1+build"` → parts split on `-`/`.`, numeric
/// parts left-padded to 5, `~` appended to plain `x.y.z` so releases sort after pre-releases.
pub fn padded_version(v: &Value, h: &dyn Host) -> String {
    let text: Cow<str> = match v {
        Value::Num(n) => Cow::Owned(h.format_number(*n)),
        Value::Str(s) if !s.is_empty() => Cow::Borrowed(s),
        _ => Cow::Borrowed("0"),
    };
    let mut out = String::with_capacity(text.len() + 16);
    let flush = |out: &mut String, part: &str| {
        if !part.is_empty() && part.as_bytes().iter().all(u8::is_ascii_digit) {
            for _ in part.len()..5 {
                out.push(' ');
            }
        }
        out.push_str(part);
    };
    // Byte by byte: the separators are ASCII, so each part between them is whole characters,
    // taken as a slice of the text (no `Chars` decoder, no per-part String).
    let bytes = text.as_bytes();
    let (mut parts, mut start, mut i) = (1, 0, 0);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'v' if i == 0 => start = 1,
            b'+' => break,
            b'-' | b'.' => {
                flush(&mut out, text.get(start..i).unwrap_or(""));
                out.push('-');
                parts += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    flush(&mut out, text.get(start..i).unwrap_or(""));
    if parts == 3 {
        out.push_str("-~");
    }
    out
}
