// ESM entry of keystone-cdp: `import { Keystone } from "keystone-cdp"`.
// The wasm file is found next to this module (bundlers follow `new URL(…, import.meta.url)`), or
// where the `wasmUrl` option says.
import { init, loadWasm, prefetchWasm, evalCondition, KeystoneError } from "./instance.js";

// Guarded: a bundle in a non-module format has no `import.meta.url` (esbuild's IIFE output
// leaves `{}`), and this module must never throw into the page: the `wasmUrl` option says then
// where the wasm is.
let WASM_URL;
try {
  WASM_URL = new URL("keystone_bg.wasm", import.meta.url);
  // The engine is fetched and compiled as soon as this module is imported; `init` instantiates it.
  prefetchWasm(WASM_URL);
} catch (_) {}

/** The wasm's URL: the `wasmUrl` option (resolved as `fetch` would: against the document's base
 * URL, a worker's own URL), else next to this module. */
const where = (o) => {
  try {
    // (`globalThis`: a server has no `self` nor `location`; an absolute URL needs no base.)
    return o?.wasmUrl ? new URL(o.wasmUrl, globalThis.document?.baseURI || globalThis.location?.href) : WASM_URL || new URL("keystone_bg.wasm", location.href);
  } catch (_) {
    return WASM_URL;
  }
};

/** The Keystone entry point. */
export const Keystone = {
  /** Loads the engine, restores the profile, evaluates segments. Safe to call twice. */
  init(options) {
    return init(options, where(options));
  },
  /** Loads the wasm engine only (for `evalCondition` without a visitor profile). */
  load(options) {
    return loadWasm(where(options)).then(() => undefined);
  },
  evalCondition,
};

export { KeystoneError, evalCondition, Keystone as default };
