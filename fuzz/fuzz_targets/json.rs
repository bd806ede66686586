#![no_main]
//! Fuzz target `json`: the body is `fuzzing::json` in tests/fuzzing/mod.rs.
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/fuzzing/mod.rs"]
mod fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::json(data));
