//! Errors with stable codes. Every fallible core operation returns [`Error`]; the facade turns it
//! into a JavaScript `KeystoneError` (a real `Error` with an enumerable `code`, and for bad
//! definitions `segmentId` and `path`).

#[allow(unused_imports)]
use crate::core::prelude::*;

/// A core error: a stable machine-readable code, a human message, and for definition errors the
/// id of the offending definition and a JSON pointer to the fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// Stable code, e.g. `"invalid_argument"`, `"invalid_definitions"`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Id of the segment / score / experience concerned, if any.
    pub segment_id: Option<String>,
    /// JSON pointer into the definitions document, if any.
    pub path: Option<String>,
}

impl Error {
    /// An error with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), segment_id: None, path: None }
    }

    /// A definition error, located by id and JSON pointer.
    pub fn at(code: &'static str, segment_id: Option<&str>, path: impl Into<String>, message: impl Into<String>) -> Error {
        Error::located(code, segment_id, path.into(), message.into())
    }

    // One non-generic body for every pair of path and message types the callers pass (size: the
    // generic wrapper above stays two conversions and a call).
    #[inline(never)]
    fn located(code: &'static str, segment_id: Option<&str>, path: String, message: String) -> Error {
        Error { code, message, segment_id: segment_id.map(String::from), path: Some(path) }
    }
}

/// Stable error codes (the public contract: the README's "Error codes" table and the
/// `KeystoneErrorCode` type of keystone.d.ts). The core raises all but the four delivery codes,
/// which the JS delivery layer raises (pkg-template/src/queue.js, transport.js): they are listed
/// here for reference.
pub mod codes {
    /// An API argument has the wrong type or shape.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// A malformed email passed to `identify`.
    pub const INVALID_EMAIL: &str = "invalid_email";
    /// A definitions document that is not `{version, segments: [...]}`.
    pub const INVALID_DEFINITIONS: &str = "invalid_definitions";
    /// One segment, score or experience definition is invalid.
    pub const INVALID_SEGMENT: &str = "invalid_segment";
    /// Stored data could not be decoded (corrupted, truncated, foreign or future version).
    pub const STORAGE_CORRUPT: &str = "storage_corrupt";
    /// Storage is blocked or full; Keystone keeps working in memory.
    pub const STORAGE_UNAVAILABLE: &str = "storage_unavailable";
    /// The delivery queue was full: its oldest events were dropped (reported at the 1st, 2nd,
    /// 4th, 8th… drop).
    pub const QUEUE_OVERFLOW: &str = "queue_overflow";
    /// An event larger than a batch can carry (64 KB) was dropped.
    pub const EVENT_TOO_LARGE: &str = "event_too_large";
    /// The collector refused a batch for good (a 4xx other than 429); its events were dropped.
    pub const DELIVERY_REJECTED: &str = "delivery_rejected";
    /// A delivery attempt failed (network, 429, 5xx); `flush()` rejects, retries go on.
    pub const DELIVERY_FAILED: &str = "delivery_failed";
    /// No segment or experience with that id.
    pub const UNKNOWN_ID: &str = "unknown_id";
}

/// Appends a key to a JSON pointer (the `path` of an error), escaping `~` and `/` (RFC 6901).
#[inline(never)]
pub fn join(base: &str, key: &str) -> String {
    let mut s = String::with_capacity(base.len() + key.len() + 1);
    s.push_str(base);
    push_key(&mut s, key);
    s
}

/// Pushes `/` and `key`, escaped.
fn push_key(s: &mut String, key: &str) {
    s.push('/');
    // Byte by byte: '~' and '/' are ASCII, so the runs between them are whole characters,
    // copied as slices (no `Chars` decoder).
    let (bytes, mut from, mut i) = (key.as_bytes(), 0, 0);
    while let Some(&c) = bytes.get(i) {
        if c == b'~' || c == b'/' {
            s.push_str(key.get(from..i).unwrap_or(""));
            s.push_str(if c == b'~' { "~0" } else { "~1" });
            from = i + 1;
        }
        i += 1;
    }
    s.push_str(key.get(from..i).unwrap_or(""));
}

/// One step of a JSON pointer: an object key or an array index.
#[derive(Clone, Copy)]
pub enum Step<'a> {
    /// An object key.
    Key(&'a str),
    /// An array index.
    Index(usize),
}

/// A JSON pointer as a chain of steps borrowed from the walk of a document: a walk that finds
/// no fault allocates nothing, and the text is made only for an error ([`Ptr::render`]).
#[derive(Clone, Copy)]
pub struct Ptr<'a>(pub Option<&'a Ptr<'a>>, pub Step<'a>);

impl Ptr<'_> {
    /// The pointer as text (`/segments/3/condition`).
    #[inline(never)]
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, s: &mut String) {
        if let Some(up) = self.0 {
            up.write(s);
        }
        match self.1 {
            Step::Key(k) => push_key(s, k),
            Step::Index(i) => {
                s.push('/');
                crate::core::host::push_uint(s, i as u64);
            }
        }
    }
}

/// Appends an array index to a JSON pointer.
pub fn join_pointer(base: &str, i: usize) -> String {
    join(base, &crate::core::host::format_uint(i as u64))
}

/// The reason given for a key a definition does not know.
pub const UNKNOWN: &str = "unknown field";

/// The first key of `m` not in `allowed`.
#[inline(never)]
pub fn unknown<'a>(m: &'a crate::core::value::Map, allowed: &[&str]) -> Option<&'a String> {
    m.iter().find(|(k, _)| !allowed.contains(&k.as_str())).map(|(k, _)| k)
}
