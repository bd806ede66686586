// The browser services the engine imports that must not throw into it: each catches here and
// answers plainly, so no JS value (an exception, a RegExp) is ever held by the wasm side.

/** `localStorage.getItem(key)` + "+", "" when the key is missing, "-" when storage refused (it
 * throws where storage is blocked, and is missing outside a window). */
export function storageGet(key) {
  try {
    const v = localStorage.getItem(key);
    return v == null ? "" : v + "+";
  } catch (_) {
    return "-";
  }
}

/** `localStorage.setItem(key, value)`; false when storage refused (blocked, full). */
export function storageSet(key, value) {
  try {
    localStorage.setItem(key, value);
    return true;
  } catch (_) {
    return false;
  }
}

/** `localStorage.removeItem(key)`, a refusal ignored. */
export function storageRemove(key) {
  try {
    localStorage.removeItem(key);
  } catch (_) {}
}

// Compiled regexes by pattern (null: invalid), case-sensitive and not, each emptied when 64 are
// held: evaluation tests the same few patterns over and over, mostly on the same text (a
// trait's value at every evaluation), so each keeps its last text and answer: a pattern that
// backtracks for seconds on a value (`^(a+)+$`) costs it once, not at every later call.
const regexes = [new Map(), new Map()];

/** Whether JavaScript RegExp `pattern` (flag "i" when `icase`: `test` keeps no state) matches
 * `text`: 1 yes, 0 no, 2 an invalid pattern. `test` throws too: V8 compiles a pattern when it
 * first runs, and a pattern too large to compile ("x" 40,000 times) throws then; nothing may be
 * thrown through wasm (the evaluation would stop half way, with what it had set up left). */
export function regexTest(pattern, icase, text) {
  const cache = regexes[+icase];
  let re = cache.get(pattern);
  try {
    if (re === undefined) {
      if (cache.size >= 64) cache.clear();
      cache.set(pattern, (re = null));
      cache.set(pattern, (re = [new RegExp(pattern, icase ? "i" : "")]));
    }
    if (!re) return 2;
    if (re[1] !== text) {
      re[2] = +re[0].test(text);
      re[1] = text;
    }
    return re[2];
  } catch (_) {
    return 2;
  }
}

/** Fills `bytes` from `crypto.getRandomValues`, or `Math.random` where there is no crypto. */
export function randomFill(bytes) {
  try {
    crypto.getRandomValues(bytes);
  } catch (_) {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
  }
}
