//! Keystone: an on-device customer data platform core compiled to WebAssembly.
//!
//! - [`core`]: pure Rust, no browser imports; tested natively.
//! - `web` (wasm32 only): thin adapters over web-sys (storage, cookies, page context, host services).
//! - `facade` (wasm32 only): the single module carrying every `#[wasm_bindgen]` export.
//!
//! The wasm build is `no_std` with a panic handler that traps without formatting a message:
//! that keeps `core::fmt` and every panic string out of the binary (≈ 9 KB gzip). The JS
//! wrapper catches the trap and keeps the host page working.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod core;

#[cfg(target_arch = "wasm32")]
mod facade;
#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
mod heap;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: heap::Allocator = heap::Allocator::new();

#[cfg(all(target_arch = "wasm32", feature = "lean"))]
#[panic_handler]
fn panic(_: &::core::panic::PanicInfo) -> ! {
    ::core::arch::wasm32::unreachable()
}
