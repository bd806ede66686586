// Persistence across tabs and the first-party cookie. The engine keeps this tab's profile as
// "the stored profile + this tab's operations storage does not hold yet" and rebases on every
// write and every `storage` event (src/core/journal.rs). Here: writes run one tab at a time under
// a Web Lock (where the browser has them), other tabs' writes are fed to the engine as they
// arrive, and the anonymous id is mirrored into a cookie. Every access fails soft.

/** Runs `fn` holding the exclusive lock `name` (or at once where Web Locks are missing). */
export function withLock(name, fn) {
  const locks = typeof navigator !== "undefined" && navigator.locks;
  if (!locks) return Promise.resolve().then(fn);
  return locks.request(name, () => fn());
}

/** Calls `onStored(key, newValue)` for every change another tab makes to localStorage. */
export function watchStorage(onStored) {
  const h = (e) => onStored(e.key, e.newValue);
  addEventListener("storage", h);
  return () => removeEventListener("storage", h);
}

function jar() {
  try {
    return document.cookie.split(/;\s*/).map((c) => c.split("="));
  } catch (_) {
    return [];
  }
}

/** The value of cookie `name`, or undefined. */
export function readCookie(name) {
  const c = jar().find((c) => c[0] === name);
  return c && c[1];
}

/** Sets (value) or deletes (null) a first-party cookie: SameSite=Lax, Secure on https. */
export function writeCookie(name, value, domain) {
  const attrs = "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  try {
    if (value) document.cookie = name + "=" + value + "; Max-Age=31536000" + (domain ? "; Domain=" + domain : "") + attrs;
    else for (const d of domain ? ["", "; Domain=" + domain] : [""]) document.cookie = name + "=; Max-Age=0" + d + attrs;
  } catch (_) {}
}

/** Erases every localStorage/sessionStorage key and cookie whose name starts with `prefix`. */
export function eraseAll(prefix, domain) {
  for (const get of [() => localStorage, () => sessionStorage]) {
    try {
      const s = get();
      for (const k of Object.keys(s)) if (k.startsWith(prefix)) s.removeItem(k);
    } catch (_) {}
  }
  for (const [k] of jar()) if (k.startsWith(prefix)) writeCookie(k, null, domain);
}
