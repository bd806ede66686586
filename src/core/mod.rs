//! The pure core of Keystone: events, profile, conditions, segments, identity, storage codec
//! and delivery state. No browser imports: time is an argument of every call, and the few
//! browser services the core needs (regexes, number text, randomness) come through
//! [`host::Host`]. Everything here runs and is tested natively with `cargo test`.
#![deny(missing_docs)]

pub mod activation;
#[cfg(feature = "segments")]
pub mod behaviour;
pub mod buckets;
pub mod codec;
pub mod condition;
pub mod consent;
pub mod error;
pub mod event;
pub mod experience;
pub mod host;
pub mod identity;
pub mod ids;
pub mod journal;
pub mod json;
pub mod keystone;
pub mod merge;
pub mod prelude;
pub mod profile;
#[cfg(feature = "segments")]
pub mod score;
#[cfg(feature = "segments")]
pub mod segment;
/// Builds without the `segments` feature: the basic evaluator, same API.
#[cfg(not(feature = "segments"))]
#[path = "segment_basic.rs"]
pub mod segment;
pub mod sha256;
pub mod sort;
pub mod time;
pub mod value;
