// Persistence across tabs and the first-party cookie. The engine keeps this tab's profile as
// "the stored profile + this tab's operations storage does not hold yet" and rebases on every
// write and every `storage` event (src/core/journal.rs). Here: writes run one tab at a time under
// a Web Lock (where the browser has them), and the anonymous id is mirrored into a cookie.
// Every access fails soft.

/** `Promise` as it was when Keystone loaded: a host page may replace the global later. */
export const Prom = Promise;

/**
 * Runs `fn` holding the exclusive lock `name`. Where Web Locks are missing (pages served over
 * plain http), at once, or with `lease` under a lease in localStorage: written, confirmed after
 * a pause (another tab may have written at the same moment), removed after `fn`.
 */
export const withLock = (name, fn, lease) =>
  navigator.locks ? locked(navigator.locks, name, fn) : lease ? withLease(name + ".lease", fn) : Prom.resolve().then(fn);

/** `locks.request(name, fn)`; where the browser refuses the lock (a sandboxed or third-party
 * frame), `fn` runs without it, as where Web Locks are missing. */
export function locked(locks, name, fn) {
  let ran = 0;
  const go = () => ((ran = 1), fn());
  return Prom.resolve()
    .then(() => locks.request(name, go))
    .catch((e) => {
      if (ran) throw e;
      return go();
    });
}

/** `queueMicrotask` (where the browser lacks it: a resolved Promise). */
export const micro = typeof queueMicrotask == "function" ? queueMicrotask : (f) => Prom.resolve().then(f);

/** `JSON.stringify`, also on a page whose `Array.prototype.toJSON` (Prototype.js) would turn
 * every array into a string: it is set aside while printing. */
export function stringify(v, replacer) {
  const A = Array.prototype;
  const d = Object.getOwnPropertyDescriptor(A, "toJSON");
  try {
    if (d) delete A.toJSON;
  } catch (_) {}
  try {
    return JSON.stringify(v, replacer);
  } finally {
    try {
      if (d) Object.defineProperty(A, "toJSON", d);
    } catch (_) {}
  }
}

/** `localStorage.getItem(key)`, "" when there is none or storage throws. */
export const stored = (key) => {
  try {
    return localStorage.getItem(key) || "";
  } catch (_) {
    return "";
  }
};

/** `localStorage.setItem(key, value)`, or with no `value` `removeItem(key)`: 1 when storage
 * took it, undefined when it threw. */
export const store = (key, value) => {
  try {
    value ? localStorage.setItem(key, value) : localStorage.removeItem(key);
    return 1;
  } catch (_) {}
};

/** A Promise that resolves after `ms`. */
export const sleep = (ms) => new Prom((r) => setTimeout(r, ms));

async function withLease(key, fn) {
  const me = Math.random().toString(36).slice(2) + " ";
  let mine = false;
  try {
    for (let i = 0; i < 40 && !mine; i++) {
      // (One ending later than a tab sets it, written before the clock was set back or damaged,
      // has ended.)
      const left = (localStorage.getItem(key) || "").split(" ")[1] - Date.now();
      if (!(left > 0 && left <= 2000)) {
        localStorage.setItem(key, me + (Date.now() + 2000));
        await sleep(30);
        mine = (localStorage.getItem(key) || "").startsWith(me);
      }
      if (!mine) await sleep(20 + Math.random() * 40);
    }
  } catch (_) {} // storage unusable: nothing to agree through
  // `fn` runs once, lease or not (a stuck lease expires; 40 tries bound the wait).
  try {
    return fn();
  } finally {
    try {
      if (mine) localStorage.removeItem(key);
    } catch (_) {}
  }
}

const jar = () => {
  try {
    return document.cookie.split(/; */).map((c) => c.split("="));
  } catch (_) {
    return [];
  }
};

const tail = () => "; Path=/; SameSite=Lax" + (location.protocol == "https:" ? "; Secure" : "");

/** The value of cookie `name`, or undefined. With `domain` (`cookieDomain`), where this host
 * also holds a host-only cookie of that name (written before the site set `cookieDomain`), that
 * one is deleted first: `document.cookie` lists the older first, and it would hide the shared
 * one, the source of truth for the id. */
export function readCookie(name, domain) {
  try {
    if (domain && jar().filter((c) => c[0] == name)[1]) document.cookie = name + "=; Max-Age=0" + tail();
  } catch (_) {}
  return (jar().find((c) => c[0] == name) || [])[1];
}

/** Sets (value) or deletes (no value) a first-party cookie: SameSite=Lax, Secure on https; kept
 * a year, or `age` seconds. */
export function writeCookie(name, value, domain, age = 31536000) {
  const d = domain ? "; Domain=" + domain : "";
  try {
    if (value) document.cookie = name + "=" + value + "; Max-Age=" + age + d + tail();
    else for (const at of ["", d]) document.cookie = name + "=; Max-Age=0" + at + tail(); // (with and without the domain)
  } catch (_) {}
}

/** Erases Keystone's localStorage/sessionStorage keys and (unless `kept`) cookies under `prefix`:
 * its own names only (`profile`, `aside`, `aid`, the report stamp `rs`, the forget() record
 * `fg`, the queues `q.<tab>`, heartbeats `hb.<tab>`, leases), not another instance's whose
 * prefix starts with this one (`ks_shop_` under `ks_`). */
export function eraseAll(prefix, domain, kept) {
  let left = 0;
  const is = (k) => k.startsWith(prefix) && /^(profile(\.lease)?|aside|aid|rs|fg|lease|(q|hb)\.[a-z0-9]+)$/.test(k.slice(prefix.length));
  const ours = (store) => Object.keys(store).filter(is);
  for (const s of ["localStorage", "sessionStorage"]) {
    try {
      for (const k of ours(window[s])) {
        try {
          window[s].removeItem(k);
        } catch (_) {}
      }
      left += ours(window[s]).length;
    } catch (_) {} // storage blocked: nothing of it can be read or erased here
  }
  if (kept) return;
  for (const [k] of jar()) if (is(k)) writeCookie(k, "", domain);
  return left + jar().filter(([k]) => is(k)).length;
}
