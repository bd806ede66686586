// ESM entry of keystone-cdp: `import { Keystone } from "keystone-cdp"`.
// The wasm file is found next to this module (bundlers follow `new URL(…, import.meta.url)`).
import { init, loadWasm, prefetchWasm, evalCondition, KeystoneError } from "./instance.js";

const WASM_URL = new URL("keystone_bg.wasm", import.meta.url);
// The engine is fetched and compiled as soon as this module is imported; `init` instantiates it.
prefetchWasm(WASM_URL);

/** The Keystone entry point. */
export const Keystone = {
  /** Loads the engine, restores the profile, evaluates segments. Safe to call twice. */
  init(options) {
    return init(options, WASM_URL);
  },
  /** Loads the wasm engine only (for `evalCondition` without a visitor profile). */
  load() {
    return loadWasm(WASM_URL).then(() => undefined);
  },
  evalCondition,
};

export { KeystoneError, evalCondition };
export default Keystone;
