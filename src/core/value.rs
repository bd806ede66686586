//! A JSON-like value, the one data model of the core.
//!
//! Event properties, traits, the profile document, segment definitions and the stored profile
//! are all [`Value`]s. Objects keep insertion order (GrowthBook compares objects the way
//! `JSON.stringify` prints them, so key order is observable). Numbers are `f64`, as in
//! JavaScript; the core never parses or prints floats itself (the host does, see
//! [`crate::core::host::Host`]), which keeps float tables out of the wasm binary.

#[allow(unused_imports)]
use crate::core::prelude::*;

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// `null` (and `undefined`, which the boundary maps to it).
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (IEEE double, as in JavaScript).
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Value>),
    /// An object, in insertion order.
    Obj(Map),
}

/// An insertion-ordered string-keyed map. Small and linear: objects in this domain have few keys.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Map {
        Map { entries: Vec::new() }
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value at `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Sets `key` (replacing in place, or appending).
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.put(key.into(), value, usize::MAX)
    }

    // One non-generic body for every key and value type the callers pass (size: the generic
    // wrappers above and in `with` stay a conversion and a call).
    #[inline(never)]
    fn put(&mut self, key: String, value: Value, scan: usize) {
        match self.entries.iter_mut().take(scan).find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Inserts for the JSON parser: the key is looked for among the object's first 64 keys only.
    /// Looking for each key among all made an object of n keys cost n² / 2 comparisons (100,000
    /// keys froze the page for seconds before the properties' 32 KB bound could refuse them).
    /// The text comes from `JSON.stringify` or this crate's writer, which write no key twice;
    /// only a key written twice after the 64th of a hand-made text is kept twice (read: the first).
    pub(crate) fn push(&mut self, key: String, value: Value) {
        self.put(key, value, 64)
    }

    /// Keeps the entries `f` accepts, in order.
    pub fn retain(&mut self, mut f: impl FnMut(&String, &Value) -> bool) {
        crate::core::sort::retain(&mut self.entries, |(k, v)| f(k, v))
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        crate::core::sort::remove(&mut self.entries, i).map(|e| e.1)
    }

    /// Removes the first entry (the oldest inserted), if any: no copy of its key to find it by.
    pub fn remove_first(&mut self) {
        crate::core::sort::remove(&mut self.entries, 0);
    }

    /// Entries in insertion order, as `&(key, value)` (a pattern `(k, v)` binds both by
    /// reference). The slice's own iterator: mapped to a pair of references, every `any`, `all`
    /// or `find` over it was an adapter of its own (46 B gzip more).
    pub fn iter(&self) -> ::core::slice::Iter<'_, (String, Value)> {
        self.entries.iter()
    }

    /// Entries in insertion order, mutable (for moving them out in place: a consuming loop links
    /// an `IntoIter` of its own).
    pub fn iter_mut(&mut self) -> ::core::slice::IterMut<'_, (String, Value)> {
        self.entries.iter_mut()
    }

    /// Keys in insertion order. (The shipped code reads keys through [`Map::iter`]: each
    /// adapter over this mapped iterator was code of its own, 61 B gzip more over three uses.)
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An approximate byte size of the map as JSON.
    pub fn approx_size(&self) -> usize {
        // Summed by plain loops (here, for arrays, and for the profile's event bound): each
        // `map(…).sum()` was a `fold` of its own (44 B gzip more over the three).
        // `{"k":v,…}`: a comma between entries, not after the last.
        let mut n = 1;
        for (k, v) in &self.entries {
            n += k.len() + 4 + v.approx_size();
        }
        n.max(2)
    }

    /// Builder-style insert.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Map {
        self.put(key.into(), value.into(), usize::MAX);
        self
    }
}

/// An array of strings (one loop shared by every list of ids the core hands out, instead of an
/// iterator chain per call site).
pub fn str_array(xs: &[String]) -> Value {
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        out.push(Value::Str(x.clone()));
    }
    Value::Arr(out)
}

/// `s` up to the first ASCII byte `sep`, and what follows it (None when there is no `sep`): a
/// plain byte scan, smaller in wasm than `str::split`'s searcher.
pub fn split_first(s: &str, sep: u8) -> (&str, Option<&str>) {
    // Searched over the byte slice's own iterator (here and in a few byte tests elsewhere):
    // `str::bytes()` is a `Copied` adapter, each `position`/`any`/`all` over it a `try_fold` of
    // its own (157 B gzip more over four; `<[u8]>::contains` costs more still).
    match s.as_bytes().iter().position(|&b| b == sep) {
        // `sep` is ASCII, so both sides of it are char boundaries.
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..)),
        None => (s, None),
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Map {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = alloc::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Num(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Num(n as f64)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Obj(m)
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Arr(a)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        match o {
            Some(v) => v.into(),
            None => Value::Null,
        }
    }
}

impl Value {
    /// The object map, if this is an object.
    pub fn as_obj(&self) -> Option<&Map> {
        match self {
            Value::Obj(m) => Some(m),
            _ => None,
        }
    }
    /// The array, if this is an array.
    pub fn as_arr(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Arr(a) => Some(a),
            _ => None,
        }
    }
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The number, if this is a number.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }
    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Field `key` of an object (None for non-objects and missing keys).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_obj().and_then(|m| m.get(key))
    }

    /// Follows a dot path (`"traits.tier"`, `"a.0.b"` indexes arrays too, as GrowthBook does).
    pub fn path(&self, path: &str) -> Option<&Value> {
        let (mut cur, mut rest) = (self, Some(path));
        while let Some(r) = rest {
            let (part, next) = split_first(r, b'.');
            cur = match cur {
                Value::Obj(m) => m.get(part)?,
                Value::Arr(a) => a.get(parse_index(part)?)?,
                _ => return None,
            };
            rest = next;
        }
        Some(cur)
    }

    /// The JavaScript `typeof`-like type name used by `$type`: `string number boolean array object null`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Arr(_) => "array",
            Value::Obj(_) => "object",
        }
    }

    /// JavaScript truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Str(s) => !s.is_empty(),
            Value::Arr(_) | Value::Obj(_) => true,
        }
    }

    /// An approximate byte size of the value as JSON (for bounding rings and queues).
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Null => 4,
            Value::Bool(_) => 5,
            // An integer's digits (a property holding many small numbers is not counted 12
            // bytes a number); a fraction about 12.
            Value::Num(x) => {
                let (mut d, y) = (1 + (*x < 0.0) as usize, x.abs());
                let mut v = y as u64;
                if y >= 1e15 || v as f64 != y {
                    return 12;
                }
                while v >= 10 {
                    v /= 10;
                    d += 1;
                }
                d
            }
            Value::Str(s) => s.len() + 2,
            Value::Arr(a) => {
                let mut n = 1;
                for v in a {
                    n += v.approx_size() + 1;
                }
                n.max(2)
            }
            Value::Obj(m) => m.approx_size(),
        }
    }
}

/// A canonical array index (`"0"`, `"12"`; not `"01"` or `"-1"`).
fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 9 || (s.len() > 1 && matches!(s.as_bytes().first(), Some(b'0'))) {
        return None;
    }
    let mut n = 0usize;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

/// Builds an object value from `(key, value)` pairs.
#[macro_export]
macro_rules! obj {
    ($($k:expr => $v:expr),* $(,)?) => {{
        let mut m = $crate::core::value::Map::new();
        $( m.insert($k, $crate::core::value::Value::from($v)); )*
        $crate::core::value::Value::Obj(m)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_follows_objects_and_arrays() {
        let v = obj! {"a" => obj!{"b" => Value::Arr(vec![Value::Num(1.0), obj!{"c" => "x"}])}};
        assert_eq!(v.path("a.b.1.c"), Some(&Value::Str("x".into())));
        assert_eq!(v.path("a.b.0"), Some(&Value::Num(1.0)));
        assert_eq!(v.path("a.b.01"), None);
        assert_eq!(v.path("a.z"), None);
    }

    #[test]
    fn map_keeps_insertion_order_and_replaces_in_place() {
        let mut m = Map::new();
        m.insert("b", Value::Num(1.0));
        m.insert("a", Value::Num(2.0));
        m.insert("b", Value::Num(3.0));
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, vec!["b", "a"]);
        assert_eq!(m.get("b"), Some(&Value::Num(3.0)));
    }
}
