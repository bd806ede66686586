//! The browser layer: thin adapters over the browser's APIs (wasm-bindgen imports) that the
//! facade wires to the core. What the
//! browser parses better (URLs, query strings, Intl), the JS wrapper reads and passes in: the
//! page context arrives as a plain object (`Core.setContext`). Each one
//! fails soft: a blocked or full storage, disabled cookies or a missing API degrade to memory
//! or to a default, never to an exception in the host page.

#[allow(unused_imports)]
use crate::core::prelude::*;

// Value conversion over `Reflect`: only the benchmark variant and the wasm tests use it.
#[cfg(feature = "convert")]
pub mod convert;
pub mod host;
pub mod storage;
