//! What the core asks of its host: the few things the browser already does better than a copy
//! compiled into wasm would (JavaScript regexes, number parsing and printing).
//!
//! The wasm build implements [`Host`] in `src/web/host.rs` (RegExp, `Number()`, `String()`); native
//! tests implement it over Rust's std and the `regex` crate. The core never calls the browser
//! any other way: time is a plain argument of every call, randomness comes from the host.

#[allow(unused_imports)]
use crate::core::prelude::*;

/// Services the host environment provides to the core.
pub trait Host {
    /// Tests `text` against a JavaScript regular expression. `None` when the pattern is invalid.
    fn regex_test(&self, pattern: &str, flags: &str, text: &str) -> Option<bool>;
    /// JavaScript `Number(s)`: `""` and whitespace are `0`, anything unparseable is `NaN`.
    fn parse_number(&self, s: &str) -> f64;
    /// JavaScript `String(n)`.
    fn format_number(&self, n: f64) -> String;
    /// Fills `out` with cryptographically strong random bytes (`crypto.getRandomValues` in the
    /// browser; a seeded generator in deterministic tests).
    fn random_bytes(&self, out: &mut [u8]);
    /// JavaScript `s.toLowerCase()` (called only for non-ASCII text; ASCII is folded in the core).
    fn lowercase(&self, s: &str) -> String {
        s.to_ascii_lowercase()
    }
}

/// 16 random bytes from the host.
pub fn random16(host: &dyn Host) -> [u8; 16] {
    let mut b = [0u8; 16];
    host.random_bytes(&mut b);
    b
}

/// Formats a non-negative integer in decimal without `core::fmt`.
pub fn format_uint(n: u64) -> String {
    let mut out = String::new();
    push_uint(&mut out, n);
    out
}

/// Appends `n` in decimal, most significant digit first: the higher digits by recursion (at most
/// 20 deep), so every division is by the constant 10 and none can panic (dividing by a variable
/// power of ten kept a 64-bit division and the "divide by zero" panic with its message and
/// location in the data: 122 B gzip less; appending in place where a caller can, 16 B more).
pub fn push_uint(out: &mut String, n: u64) {
    if n >= 10 {
        push_uint(out, n / 10);
    }
    out.push((b'0' + (n % 10) as u8) as char);
}

/// Parses a plain non-negative decimal integer (`"42"`), without `core::fmt` or float tables.
pub fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn uint_round_trip() {
        for n in [0u64, 7, 10, 123456789, 999_999_999_999_999] {
            assert_eq!(parse_uint(&format_uint(n)), Some(n));
        }
        for n in [0u64, 9, 10, 99, 100, 1_000_000, u64::MAX] {
            assert_eq!(format_uint(n), alloc::format!("{n}"));
        }
        assert_eq!(parse_uint("1a"), None);
        assert_eq!(parse_uint(""), None);
    }
}
