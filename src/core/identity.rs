//! Identity (DESIGN §5, §10, §12): login by an email hashed on the device, the transitions
//! between anonymous and known visitors, and the profiles set aside on a shared device.
//!
//! Invariants:
//! - the raw email never leaves this module unless the site opted in (`storeEmail: true`, which
//!   adds the normalized address as the `email` trait); only its SHA-256 is kept;
//! - nothing of one known identity reaches another: switching from A to B sets A aside whole
//!   and starts B (loaded from its own set-aside copy or fresh) under a new anonymous id;
//! - every identity change raises the profile's `epoch`, so a tab still holding the previous
//!   identity adopts the stored one instead of writing it back ([`stamp_order`]); the epoch
//!   saturates at `u32::MAX` (only a tampered stored profile gets there: it never wraps to 0);
//! - at most [`ASIDE_MAX`] profiles are set aside, least recently used dropped first, and none
//!   older than the retention.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::core::codec;
use crate::core::error::{codes, Error};
use crate::core::host::Host;
use crate::core::merge::{link, merge};
use crate::core::profile::Profile;
use crate::core::sha256::sha256_hex;
use crate::core::value::{Map, Value};
use ::core::cmp::Ordering;
use ::core::mem::take;

/// The most profiles kept set aside on one device.
pub const ASIDE_MAX: usize = 5;

/// The error of an `identify` without a valid email address (or, at the facade, without a string).
pub const NEEDS_EMAIL: &str = "identify needs an email address such as \"ada@example.com\"";

/// Trims and lower-cases (JavaScript `toLowerCase`, through the host) an email address and
/// checks its shape: `local@domain.tld`, one `@`, no spaces, controls or display-name
/// punctuation, no empty domain label. Errors carry the stable code `invalid_email`. (The JS
/// wrapper has already applied `String.prototype.trim`, which also strips Unicode spaces.)
pub fn normalize_email(raw: &str, host: &dyn Host) -> Result<String, Error> {
    // Trimmed of characters up to ' ', all one byte: by bytes, the cut falls on character
    // boundaries (`str::trim_matches` with a closure cost 156 B gzip more).
    let r = raw.as_bytes();
    let start = r.iter().position(|&c| c > b' ').unwrap_or(r.len());
    let end = r.iter().rposition(|&c| c > b' ').map_or(start, |i| i + 1);
    let email = host.lowercase(raw.get(start..end).unwrap_or(""));
    let b = email.as_bytes();
    let at = b.iter().position(|&c| c == b'@').unwrap_or(0);
    let domain = b.get(at + 1..).unwrap_or(&[]);
    let ok = at > 0
        && b.len() <= 320
        && !b.iter().any(|&c| c <= b' ' || c == 0x7f || b"<>()[]\\,;:\"".iter().any(|&x| x == c))
        && !domain.iter().any(|&c| c == b'@')
        && domain.iter().any(|&c| c == b'.')
        && !domain.windows(2).any(|w| w == b"..")
        && !matches!(domain.first(), Some(b'.' | b'-'))
        && !matches!(domain.last(), Some(b'.' | b'-'));
    if ok {
        Ok(email)
    } else {
        Err(Error::new(codes::INVALID_EMAIL, NEEDS_EMAIL))
    }
}

/// A validated `identify` call.
#[derive(Clone, Debug, PartialEq)]
pub struct Login {
    /// The user id: the site's own, or the SHA-256 hex of the normalized email.
    pub user_id: String,
    /// Traits to merge (with `email` only when the site passed `storeEmail: true`).
    pub traits: Map,
}

/// Validates `identify(email, traits, options)` without changing anything. Options:
/// `userId` (a non-empty string or a finite number replacing the hash) and `storeEmail`
/// (boolean, default false).
pub fn login(email: &str, mut traits: Map, options: &Value, host: &dyn Host) -> Result<Login, Error> {
    let email = normalize_email(email, host)?;
    let bad = |m: &str| Error::new(codes::INVALID_ARGUMENT, m);
    let none = Map::new();
    let opts = match options {
        Value::Null => &none,
        Value::Obj(m) => m,
        _ => return Err(bad("identify options must be an object")),
    };
    let user_id = match opts.get("userId") {
        None | Some(Value::Null) => sha256_hex(&email),
        Some(Value::Str(s)) if !s.is_empty() => s.clone(),
        // A number (a CRM's numeric key, as analytics.js takes it): its decimal text, as
        // JavaScript's `String(n)` prints it. (JSON has no NaN or Infinity: the wrapper refuses them.)
        Some(n @ Value::Num(_)) => crate::core::json::write(n, host),
        _ => return Err(bad("identify option userId must be a non-empty string or a finite number")),
    };
    match opts.get("storeEmail") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => traits.insert("email", Value::Str(email)),
        _ => return Err(bad("identify option storeEmail must be a boolean")),
    }
    Ok(Login { user_id, traits })
}

/// What an `identify` changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Same user: traits updated only.
    Traits,
    /// Anonymous → known: the anonymous profile (this anonymous id) merged into the known one.
    Merged(String),
    /// Known A → known B: A set aside, B started under this new anonymous id.
    Switched(String),
}

/// Profiles set aside on this device (after a logout or a switch of user), keyed by user id,
/// least recently used first. Held in their stored form.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Aside {
    entries: Vec<(String, f64, Value)>,
    /// Stored entries were found unreadable (skipped) or damaged (repaired) since last asked.
    pub faults: bool,
}

impl Aside {
    /// Reads the stored form (`[[userId, usedAt, profile], …]`, least recently used first, as
    /// [`Aside::to_value`] writes it); unreadable entries are skipped.
    pub fn from_value(v: &Value) -> Aside {
        let mut a = Aside::default();
        a.faults = v.as_arr().is_none() && !v.is_null();
        for e in v.as_arr().map_or(&[][..], Vec::as_slice) {
            if let Some([Value::Str(u), Value::Num(t), p @ Value::Obj(_)]) = e.as_arr().map(Vec::as_slice) {
                a.entries.push((u.clone(), *t, p.clone()));
            } else {
                a.faults = true;
            }
        }
        a
    }

    /// The stored form.
    pub fn to_value(&self) -> Value {
        let mut out = Vec::with_capacity(self.entries.len());
        for (u, t, p) in &self.entries {
            out.push(Value::Arr(vec![u.as_str().into(), Value::Num(*t), p.clone()]));
        }
        Value::Arr(out)
    }

    /// The user ids held, least recently used first.
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.0.as_str())
    }

    /// Sets `p` aside under its user id (no-op while anonymous), as the most recently used.
    pub fn put(&mut self, p: &Profile, now: f64, retention: f64) {
        let Some(u) = p.user_id.as_deref() else { return };
        self.drop_entries(Some(u), 0.0);
        // Without its page context (a profile taken back gets the page's): the entry is smaller
        // than the stored profile it replaces, so full storage makes room for it (the facade).
        let mut v = codec::encode(p);
        if let Value::Obj(m) = &mut v {
            m.remove("ctx");
        }
        self.entries.push((u.into(), now, v));
        self.prune(now, retention);
    }

    /// Takes the profile set aside for `user_id`, if any (it leaves the store).
    pub fn take(&mut self, user_id: &str, now: f64, retention: f64) -> Option<Profile> {
        self.prune(now, retention);
        let v = take(&mut self.entries.iter_mut().find(|x| x.0 == user_id)?.2);
        self.drop_entries(Some(user_id), 0.0);
        // A person set aside before consent (opt-in) had no anonymous id yet: `""` is no damage.
        let blank = v.get("aid").and_then(Value::as_str) == Some("");
        let (p, errors) = codec::decode(&v);
        self.faults |= errors.len() > blank as usize;
        p
    }

    /// Drops the entry of `user`, or without one the entries last used before `cutoff` (one
    /// `retain` for the three callers: each closure was a `retain` of its own).
    fn drop_entries(&mut self, user: Option<&str>, cutoff: f64) {
        crate::core::sort::retain(&mut self.entries, |x| match user {
            Some(u) => x.0 != u,
            None => x.1 >= cutoff,
        });
    }

    /// Drops entries unused for longer than `retention`, then the least recently used beyond
    /// [`ASIDE_MAX`].
    /// Returns whether any was dropped.
    pub fn prune(&mut self, now: f64, retention: f64) -> bool {
        let n = self.entries.len();
        self.drop_entries(None, now - retention);
        while self.entries.len() > ASIDE_MAX {
            crate::core::sort::remove(&mut self.entries, 0);
        }
        self.entries.len() != n
    }
}

/// Applies a login to the current profile (see [`Change`]). `new_anonymous_id` is used only
/// when switching from one known user to another.
pub fn identify(
    p: &mut Profile,
    aside: &mut Aside,
    login: &Login,
    new_anonymous_id: String,
    now: f64,
    retention: f64,
    defs: &crate::core::segment::Definitions,
    host: &dyn Host,
) -> Change {
    let change = match p.user_id.as_deref() {
        Some(u) if u == login.user_id => Change::Traits,
        Some(_) => {
            aside.put(p, now, retention);
            let mut next = aside.take(&login.user_id, now, retention).unwrap_or_else(|| Profile::new(String::new(), now));
            next.context = take(&mut p.context);
            next.epoch = p.epoch.max(next.epoch).saturating_add(1);
            next.anonymous_id = new_anonymous_id.clone();
            link(&mut next.linked, &new_anonymous_id);
            *p = next;
            Change::Switched(new_anonymous_id)
        }
        None => {
            let aid = p.anonymous_id.clone();
            if let Some(mut known) = aside.take(&login.user_id, now, retention) {
                // Set aside under other definitions, the known profile first back-fills the
                // current ones from its own history: merged as it was, the anonymous side's
                // state of a new definition would stand for both, and the known person's earlier
                // events would never count for it.
                crate::core::segment::prepare(defs, &mut known, host);
                let ctx = take(&mut p.context);
                let mut mine = take(p);
                // The behavioural segment state merges too (it needs the definitions: score
                // half-lives); the profile merge itself keeps the known profile's.
                let state = take(&mut mine.behaviour);
                // Which operations of each tab the merge holds: those of both records, each
                // tab's the higher mark. The known profile's record alone is as old as its
                // logout (another tab would replay onto the merge the events it already wrote
                // into the live profile); the live profile's alone lacks the tabs that wrote the
                // known one and since left it (a tab still keeping what it filed there would
                // file it again when the person is set aside anew: counted twice). The live
                // profile's tabs go last, most recent, so the bound forgets the known's first.
                let writers = take(&mut mine.writers);
                *p = merge(known, mine);
                for (tab, s) in writers.iter() {
                    p.set_writer(tab, p.writer_seq(tab).max(s.as_num().map_or(0, |n| n as u32)));
                }
                crate::core::segment::merge_state(&mut p.behaviour, state, defs);
                p.bound_events(defs);
                p.anonymous_id = aid.clone();
                p.context = ctx;
            }
            p.epoch = p.epoch.saturating_add(1);
            link(&mut p.linked, &aid);
            Change::Merged(aid)
        }
    };
    p.user_id = Some(login.user_id.clone());
    p.set_traits(&login.traits, now);
    // Two profiles' traits may together pass their bound: the most recently set are kept (the
    // login's own first).
    p.bound_traits();
    change
}

/// Logout: a known profile is set aside; a fresh anonymous profile starts under
/// `new_anonymous_id` (keeping only the page context).
pub fn reset(p: &mut Profile, aside: &mut Aside, new_anonymous_id: String, now: f64, retention: f64) {
    aside.put(p, now, retention);
    let mut next = Profile::new(new_anonymous_id, now);
    next.context = take(&mut p.context);
    next.epoch = p.epoch.saturating_add(1);
    *p = next;
}

/// How the identity of a stored profile compares with this tab's `p`: `Greater` when the stored
/// one is newer (adopt it), `Less` when it is older (write ours back), `Equal` for the same
/// identity. Ties of epoch (two tabs changing identity at once) are broken by the anonymous id,
/// then the user id (two logins from one anonymous visitor keep its id), so tabs converge.
pub fn stamp_order(stored: &Profile, p: &Profile) -> Ordering {
    stored.epoch.cmp(&p.epoch).then_with(|| stored.anonymous_id.cmp(&p.anonymous_id)).then_with(|| stored.user_id.cmp(&p.user_id))
}
