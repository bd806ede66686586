#![no_main]
//! Fuzz target `segments`: the body is `fuzzing::segments` in tests/fuzzing/mod.rs.
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/fuzzing/mod.rs"]
mod fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::segments(data));
