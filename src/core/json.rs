//! JSON text to and from [`Value`], so large documents cross the JS↔wasm boundary as one string
//! (the browser's `JSON.stringify` / `JSON.parse` on the other side) instead of one call per key.
//!
//! Integers up to 2^53 are printed here, and numbers of up to 15 digits without exponent
//! (integers, and decimals such as prices) are read here; any other number goes through the host
//! (`Number(text)` and `String(n)` in the browser), so no float parsing or printing tables are
//! compiled into wasm. Output matches `JSON.stringify` for the values the core holds: non-finite
//! numbers print as `null`, `-0` as `0`. Input is strict JSON; lone surrogate escapes (which
//! `JSON.stringify` emits for lone surrogates) become U+FFFD, as the old boundary did.
//! No indexing that can panic: a panic path would pull `core::fmt` into the wasm binary.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::error::{codes, Error};
use crate::core::host::{push_uint, Host};
use crate::core::value::{Map, Value};

/// Largest integer printed and read without the host: every integer up to it is exact in f64.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// The deepest nesting accepted in a value that crosses from JavaScript.
pub const MAX_DEPTH: usize = 64;

/// Parses JSON `text`; nesting deeper than `max_depth` is an error.
pub fn parse(text: &str, host: &dyn Host, max_depth: usize) -> Result<Value, Error> {
    let mut p = Parser { t: text, s: text.as_bytes(), i: 0, host, max_depth };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err());
    }
    Ok(v)
}

/// Prints `v` as JSON text (like `JSON.stringify(v)`).
pub fn write(v: &Value, host: &dyn Host) -> String {
    let mut out = String::new();
    write_into(&mut out, v, host);
    out
}

/// Appends `v` as JSON text to `out`.
pub fn write_into(out: &mut String, v: &Value, host: &dyn Host) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(n) => write_num(out, *n, host),
        Value::Str(s) => write_str(out, s),
        Value::Arr(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_into(out, item, host);
            }
            out.push(']');
        }
        Value::Obj(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_into(out, item, host);
            }
            out.push('}');
        }
    }
}

fn write_num(out: &mut String, n: f64, host: &dyn Host) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n == (n as i64) as f64 && n.abs() <= EXACT {
        if n < 0.0 {
            out.push('-');
        }
        push_uint(out, n.abs() as u64);
    } else {
        out.push_str(&host.format_number(n));
    }
}

fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

struct Parser<'a> {
    t: &'a str,
    s: &'a [u8],
    i: usize,
    host: &'a dyn Host,
    max_depth: usize,
}

impl Parser<'_> {
    fn err(&self) -> Error {
        Error::new(codes::INVALID_ARGUMENT, "malformed JSON")
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        let ok = self.s.get(self.i..self.i + lit.len()) == Some(lit);
        if ok {
            self.i += lit.len();
        }
        ok
    }

    /// `eat` for one byte (the punctuation; no slice compare).
    fn eat1(&mut self, b: u8) -> bool {
        let ok = self.s.get(self.i).is_some_and(|&c| c == b);
        self.i += ok as usize;
        ok
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > self.max_depth {
            return Err(Error::new(codes::INVALID_ARGUMENT, "value nested too deeply (or cyclic)"));
        }
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                self.ws();
                if self.eat1(b'}') {
                    return Ok(Value::Obj(m));
                }
                loop {
                    self.ws();
                    if !matches!(self.s.get(self.i), Some(b'"')) {
                        return Err(self.err());
                    }
                    let k = self.string()?;
                    self.ws();
                    if !self.eat1(b':') {
                        return Err(self.err());
                    }
                    self.ws();
                    let v = self.value(depth + 1)?;
                    m.push(k, v);
                    self.ws();
                    if self.eat1(b'}') {
                        return Ok(Value::Obj(m));
                    }
                    if !self.eat1(b',') {
                        return Err(self.err());
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat1(b']') {
                    return Ok(Value::Arr(a));
                }
                loop {
                    self.ws();
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat1(b']') {
                        return Ok(Value::Arr(a));
                    }
                    if !self.eat1(b',') {
                        return Err(self.err());
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat(b"null") => Ok(Value::Null),
            _ if self.eat(b"true") => Ok(Value::Bool(true)),
            _ if self.eat(b"false") => Ok(Value::Bool(false)),
            _ => Err(self.err()),
        }
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - from
        };
        self.eat1(b'-');
        let int_start = self.i;
        let n_int = digits(self);
        if n_int == 0 || (n_int > 1 && matches!(self.s.get(int_start), Some(b'0'))) {
            return Err(self.err());
        }
        // Digits after the point (`plain`: no exponent).
        let mut frac = 0;
        if self.eat1(b'.') {
            frac = digits(self);
            if frac == 0 {
                return Err(self.err());
            }
        }
        let mut plain = true;
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            plain = false;
            self.i += 1;
            if !self.eat1(b'+') {
                self.eat1(b'-');
            }
            if digits(self) == 0 {
                return Err(self.err());
            }
        }
        // Only ASCII was consumed: the cut is on char boundaries.
        let text = self.t.get(start..self.i).unwrap_or_default();
        let bytes = text.as_bytes();
        // At most 15 digits in all, no exponent (`12`, `123.45`): the digits make an integer m
        // below 10^15 and the value is m / 10^frac. Both are exact doubles (10^k is, up to
        // k = 22), and IEEE division rounds correctly, so this is the double nearest the text, as
        // JavaScript's `Number()` reads it, without crossing to the host: prices and amounts
        // (`"revenue": 129.99`) are read here, in every event and every `evalCondition` call.
        if plain && n_int + frac <= 15 {
            let mut n: u64 = 0;
            for &b in bytes.iter().filter(|b| b.is_ascii_digit()) {
                n = n * 10 + (b - b'0') as u64;
            }
            let mut scale = 1.0;
            for _ in 0..frac {
                scale *= 10.0;
            }
            let n = n as f64 / scale;
            // `-0` reads as 0, as the boundary always gave it; `-0.0` as -0, as `Number()` does.
            return Ok(Value::Num(if start != int_start && (frac > 0 || n != 0.0) { -n } else { n }));
        }
        Ok(Value::Num(self.host.parse_number(text)))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = match self.s.get(self.i) {
                Some(&b @ b'0'..=b'9') => b - b'0',
                Some(&b @ b'a'..=b'f') => b - b'a' + 10,
                Some(&b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.err()),
            };
            n = n * 16 + d as u32;
            self.i += 1;
        }
        Ok(n)
    }

    /// A string literal (the cursor is on its opening quote).
    fn string(&mut self) -> Result<String, Error> {
        self.i += 1;
        let mut out = String::new();
        let mut start = self.i;
        loop {
            let Some(&b) = self.s.get(self.i) else { return Err(self.err()) };
            match b {
                b'"' | b'\\' => {
                    // The input is a &str and the cut is at an ASCII byte: a char boundary.
                    out.push_str(self.t.get(start..self.i).unwrap_or_default());
                    self.i += 1;
                    if b == b'"' {
                        return Ok(out);
                    }
                    let Some(&e) = self.s.get(self.i) else { return Err(self.err()) };
                    self.i += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    self.i = save;
                                    0xfffd
                                }
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(self.err()),
                    });
                    start = self.i;
                }
                0..=0x1f => return Err(self.err()),
                _ => self.i += 1,
            }
        }
    }
}
