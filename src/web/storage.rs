//! Key-value persistence over `localStorage`, failing soft: when storage is blocked (throws on
//! access), full (`QuotaExceededError`) or absent, values live in memory for this page and the
//! failure is reported once as `storage_unavailable`.

#[allow(unused_imports)]
use crate::core::prelude::*;

use crate::web::host::{JsString, Slot};

/// Values storage refused, kept for this page (a [`Slot`]: no RefCell panic paths).
static MEMORY: Slot<Vec<(String, String)>> = Slot::new(Vec::new());

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/web/host.js")]
extern "C" {
    // `localStorage` itself throws where storage is blocked (and is missing outside a window):
    // these catch in JS (`host.js`), so either reads as "unavailable".
    /// The value and `+`, `""` when the key is missing, `-` when storage refused.
    #[wasm_bindgen(js_name = storageGet)]
    fn get_item(key: &str) -> JsString;
    /// False when storage refused.
    #[wasm_bindgen(js_name = storageSet)]
    fn set_item(key: &str, value: &str) -> bool;
    #[wasm_bindgen(js_name = storageRemove)]
    fn remove_item(key: &str);
}

/// Reads `key`: the in-memory copy of a write that storage refused, else storage.
pub fn get(key: &str) -> Option<String> {
    read(key).ok().flatten()
}

/// Reads `key` like [`get`], telling a missing key (`Ok(None)`) from storage that refused the
/// read (`Err`).
pub fn read(key: &str) -> Result<Option<String>, ()> {
    if let Some(v) = MEMORY.with(|m| m.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())) {
        return Ok(Some(v));
    }
    let mut v = get_item(key).0;
    // The marker is one ASCII byte: read as a byte (`String::pop` decoded a UTF-8 character
    // backwards), and cut at a boundary the compiler sees (no panicking path).
    match v.as_bytes().last() {
        None => Ok(None),
        Some(b'+') => {
            v.truncate(v.len() - 1);
            Ok(Some(v))
        }
        _ => Err(()),
    }
}

/// Writes `key`. Returns false when storage refused (the value is then kept in memory).
pub fn set(key: &str, value: &str) -> bool {
    let ok = set_item(key, value);
    forget(key, false);
    if !ok {
        MEMORY.with_mut(|m| m.push((key.into(), value.into())));
    }
    ok
}

/// Removes `key` from storage and memory.
pub fn remove(key: &str) {
    remove_item(key);
    forget(key, false);
}

/// Forgets the in-memory copy of `key`, or with `prefix` of every key starting with it (one
/// `retain` for `set`, `remove` and `forget_memory`: each closure was a `retain` of its own).
fn forget(key: &str, prefix: bool) {
    MEMORY.with_mut(|m| crate::core::sort::retain(m, |(k, _)| if prefix { !k.starts_with(key) } else { k != key }));
}

/// Forgets the in-memory copies of keys starting with `prefix` (the JS wrapper erases the
/// browser's storages and cookies).
pub fn forget_memory(prefix: &str) {
    forget(prefix, true);
}
