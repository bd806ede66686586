// The public Keystone API over the wasm engine. Every method is guarded: nothing throws into
// the host page. Bad input becomes a KeystoneError (a real Error with a stable `code`), reported
// through a rejected Promise where the method returns one, an "error" event and one console
// warning. Listeners hear a call's changes before it returns (`segment:enter` right after `track`).
import { initSync, coreCall, evalCondition as evalConditionWasm, __ksReinit } from "#wasm";
import { readContext } from "./context.js";
import { checkDelivery, transport } from "./transport.js";
import { bind, cloak, release, handlers, ATTRS } from "./dom.js";
import { dataLayer } from "./activation.js";
import { experience, redecide } from "./experience-dom.js";

handlers[ATTRS[3]] = experience;
import { startCapture } from "./capture.js";
import { withLock, readCookie, writeCookie, eraseAll, stringify, stored, store, sleep, Prom } from "./sync.js";

/** A real Error carrying a stable `code` (and `segmentId`/`path` for definition errors). The
 * class keeps its name (`KeystoneError.name`, an error's `constructor.name`) although the
 * minifier renames it. */
export class KeystoneError extends Error {
  static name = "KeystoneError";
  // Also an error of another copy of Keystone on the page (a tag manager's beside the site's
  // bundle share one instance): `instanceof` holds with either copy's class. (A subclass of the
  // site's answers as usual; whatever is thrown at it, it throws nothing.)
  static [Symbol.hasInstance](e) {
    try {
      return this == KeystoneError ? Error.prototype.isPrototypeOf(e) && e.name == "KeystoneError" && typeof e.code == "string" : super[Symbol.hasInstance](e);
    } catch (_) {}
  }
  constructor(code, message, extra) {
    super(message || code);
    this.name = "KeystoneError";
    this.code = code;
    for (const k of ["segmentId", "path"]) if (extra?.[k] != null) this[k] = extra[k];
  }
}

/** Turns anything thrown by the engine (or a JS failure) into a KeystoneError. */
export function toKeystoneError(e) {
  if (e instanceof KeystoneError) return e;
  // The engine's errors (thrown by `newEngine`, parsed from their JSON text) and delivery's are
  // plain `{code, message, …}` objects.
  if (e && typeof e === "object" && typeof e.code === "string" && !(e instanceof Error)) {
    return new KeystoneError(e.code, e.message, e);
  }
  if (isTrap(e)) {
    return new KeystoneError("internal_trap", "the Keystone engine stopped: " + e.message);
  }
  let message = "unexpected failure";
  try {
    message = String(e?.message || e);
  } catch (_) {}
  return new KeystoneError("internal", message);
}

const PERSIST_DELAY_MS = 250;
let wasmReady = null;
let wasmLoaded = false;
// Trap isolation: a trap (WebAssembly.RuntimeError, e.g. a Rust panic) leaves the wasm instance
// unusable. `retrap` gives the engine a fresh instance of the same module; `epoch` counts them,
// and an Instance whose engine belongs to an older epoch rebuilds it from the persisted profile.
// After MAX_TRAPS the engine stays off and every method answers the empty state.
let epoch = 0;
const MAX_TRAPS = 3;
const isTrap = (e) => typeof WebAssembly != "undefined" && e instanceof WebAssembly.RuntimeError;
function retrap() {
  last = NONE; // the fresh instance holds none
  if (++epoch > MAX_TRAPS) return;
  try {
    __ksReinit();
  } catch (_) {
    epoch = MAX_TRAPS + 1;
  }
}

// One Keystone per page. A page may hold two copies of this module: the site's bundle and a tag
// manager's keystone.global.js, or the ESM entry from two URLs (two bundles, `?v=1` and `?v=2`);
// each would record its own page view and keep its own queue, DOM passes and id writer. The copy
// whose `init` runs first enters itself here, on `globalThis` under `Symbol.for("keystone-cdp")`,
// as `{version, init(options), evalCondition(...)}` (these names are kept in every version), and
// the `init` of any later copy answers with that copy's instance.
const REGISTRY = Symbol.for("keystone-cdp");
let mine = null; // this copy's entry, while its start runs or holds
let mismatch = 0;

/** The entry of another copy running on this page, if any. (Whatever else a page put there
 * fails in the `try` that calls it, and this copy starts its own.) */
const other = () => {
  const r = globalThis[REGISTRY];
  return r !== mine && r;
};

/** Loads the wasm engine once (no profile, no instance); resolves when it is ready. */
let compiled = null;
let made; // instantiated by `warm`

/**
 * Starts fetching and compiling the engine (the ESM entry calls it when it is imported), so that
 * `init()` only has to instantiate it. A failure here is silent: `loadWasm` then fetches again and
 * reports.
 */
export function prefetchWasm(url) {
  try {
    // (Not when another copy runs Keystone on this page: this copy's init will answer with it.)
    if (!compiled && !other() && typeof WebAssembly == "object" && WebAssembly.compileStreaming && typeof fetch == "function") {
      compiled = WebAssembly.compileStreaming(fetch(url)).catch(() => null);
      // (Not where there is no requestIdleCallback, or a page's replacement of it throws.)
      compiled.then((m) => m && idle(m, 40)).catch(() => {});
    }
  } catch (_) {}
}

/**
 * V8 compiles a wasm function on its first call, on the main thread: the ≈ 280 that `init` runs
 * cost it several ms. A page that is idle before it calls `init` (after a consent banner, its
 * hydration, its own start) has them compiled then, in one idle callback: an engine is made
 * (reading the stored profile under the default prefix, as `init` will, unless it is larger than
 * a heavy visitor's; writing nothing, sending nothing), given built-in definitions, a page view
 * and an event, and dropped when `init` makes the page's own. Only in an idle period of 40 ms or
 * more, so that no frame or input waits for it: a page drawing frames offers shorter ones, and
 * is asked again a quarter of a second later, 40 times (10 s: an intro animation, a page still
 * loading, a script polling each frame, then idle). Not when `init` or `load()` has started (a
 * start never waits for this) or the page is prerendered.
 */
const idle = (m, n) => requestIdleCallback((d) => (d.timeRemaining() < 40 ? n && setTimeout(idle, 250, m, n - 1) : warm(m)));

function warm(m) {
  if (wasmReady || current || other() || document.prerendering) return;
  try {
    initSync(m);
    made = 1; // (`init` uses this instance; `evalCondition` still waits for `init` or `load()`)
    // (A `ks_profile` over 64 K characters is no heavy visitor's: a site's own key, say, where
    // Keystone runs under another `storagePrefix`. It is not read: a prefix `init` refuses.)
    // (`__w`: the engine writes nothing, not even the set-aside profiles' repair at its start.)
    const e = newEngine(stored("ks_profile").length >> 16 ? { storagePrefix: "ks_ " } : {}, readCookie("ks_aid"), 1);
    e.setContext(toJSON(readContext()));
    e.loadSegments(WARM);
    e.page("{}");
    e.track("e", '{"c":"x","v":1}');
    e.segments();
    e.drain("1");
  } catch (e) {
    if (isTrap(e)) retrap();
  }
}

/** The definitions `warm` runs: the operators' families, the way a site's definitions use them. */
const WARM = '{"segments":[{"id":"a","condition":{"$or":[{"$performed":{"event":"e","where":{"c":"x"},"within":"7d","count":{"$gte":2}}},{"$performed":{"event":"e","within":"1h","distinct":"c","value":{"$gte":2}}},{"$sequence":{"steps":[{"event":"e"},{"event":"f"}],"within":"1d"}},{"t":{"$in":["x"]}},{"$not":{"$inSegment":"b"}}]}},{"id":"b","condition":{"scores.s":{"$gte":1}}}],"scores":[{"id":"s","halfLife":"7d","rules":[{"event":"e","points":1}]}]}';

/** How long `init` waits for the wasm: a server that never answers must not leave `init` (and
 * the snippet's Promises) pending for as long as the browser waits, minutes. 15 s lets a slow
 * phone connection download it (≈ 52 KB gzip); the download goes on after, and the next `init`
 * (or `load()`) uses what it brings. */
const WASM_WAIT_MS = 15000;

export function loadWasm(url) {
  if (!wasmReady) {
    // The module compiled at import, else fetched and compiled now (also when the server sends the
    // wasm without its MIME type, which compileStreaming refuses); then instantiated. The glue's
    // own loader (URL, Response or module, with its fallbacks) is not used, so it is not bundled.
    wasmReady = new Prom((r, j) => {
      setTimeout(j, WASM_WAIT_MS, new Error("no answer within 15 s"));
      Prom.resolve(compiled)
        .then((m) => m || (!__SCRIPT_TAG__ && url.protocol == "file:" && globalThis.process?.getBuiltinModule
          ? // A server (Node.js), whose `fetch` reads no file: the file itself.
            process.getBuiltinModule("fs").promises.readFile(url)
          : fetch(url).then((res) => {
              if (!res.ok) throw new Error(res.status + " " + res.statusText);
              return res.arrayBuffer();
            })).then((bytes) => WebAssembly.compile(bytes)))
        .then(r, j);
    })
      .then((module) => {
        made || initSync(module);
        wasmLoaded = true;
      }, (e) => {
        wasmReady = null;
        throw new KeystoneError("wasm_load_failed", "could not load keystone_bg.wasm: " + (e?.message || e));
      });
  }
  return wasmReady;
}

async function fetchDefinitions(src) {
  // A segments URL that never answers must not leave loadSegments pending for ever: the request
  // is aborted after 10 s, and the answer is not awaited longer (a page's fetch wrapper may drop
  // the signal). A wrapper that throws at once is an unreachable URL too.
  const res = await new Prom((r, j) => {
    setTimeout(j, 10000);
    fetch(src, { credentials: "same-origin", signal: AbortSignal.timeout?.(10000) }).then(r, j);
  }).catch(() => ({ status: "unreachable" }));
  if (!res.ok) throw new KeystoneError("definitions_fetch_failed", "segments URL answered " + res.status);
  try {
    return await res.json();
  } catch (e) {
    throw new KeystoneError("invalid_definitions", "segments URL did not return JSON");
  }
}

export function warn(err) {
  try {
    // A rejected definition says which and where: `[keystone] invalid_segment (shoe_fans at /segments/2/…): …`.
    console.warn("[keystone] " + err.code + (err.path ? " (" + (err.segmentId ? err.segmentId + " at " : "at ") + err.path + ")" : "") + ": " + err.message);
  } catch (_) {}
  return err;
}

/**
 * GrowthBook-compatible `evalCondition(attributes, condition, savedGroups?)`, synchronous, in
 * wasm. Before the wasm is loaded (`Keystone.load()` or `init()`) it answers false and warns
 * `not_ready`; it never throws.
 */
export function evalCondition(attributes, condition, savedGroups) {
  if (!wasmLoaded) {
    // Another copy runs Keystone on this page (this copy's init answered with it): its engine.
    const o = other();
    if (o)
      try {
        return o.evalCondition(attributes, condition, savedGroups);
      } catch (_) {}
    warn(new KeystoneError("not_ready", "evalCondition needs the engine: await Keystone.load() or Keystone.init() first"));
    return false;
  }
  try {
    // Each argument crosses into wasm as one JSON string, and only when it differs from the
    // previous call's (wasm keeps the last ones parsed): a page evaluates many conditions for
    // one visitor. Saved groups are sent only when the condition names a group.
    const cond = toJSON(condition, "condition");
    const attrs = toJSON(only(attributes, condition), "attributes");
    let groups;
    if (last === NONE) last = { ...NONE };
    if (cond.includes('Group"')) {
      const text = savedGroups == null ? "null" : toJSON(savedGroups, "savedGroups");
      if (text !== last.g) groups = last.g = text;
    }
    const a = attrs === last.a ? undefined : (last.a = attrs);
    const c = cond === last.c ? undefined : (last.c = cond);
    return evalConditionWasm(a, c, groups);
  } catch (e) {
    last = NONE; // wasm may not hold what `last` says
    if (isTrap(e)) retrap();
    warn(toKeystoneError(e));
    return false;
  }
}

/**
 * The part of `attributes` a condition can read: its own enumerable properties named by the
 * first segment of each field path (through `$and`/`$or`/`$nor`/`$not`), which is all a
 * condition looks at. Only that crosses into wasm, not the whole document.
 */
function only(attributes, condition) {
  if (!attributes || typeof attributes != "object" || Array.isArray(attributes)) return attributes;
  const out = Object.create(null); // `__proto__` is an attribute like any other
  const own = Object.prototype.propertyIsEnumerable;
  const walk = (c, depth) => {
    if (!c || typeof c != "object" || Array.isArray(c) || depth > 64) return;
    for (const k of Object.keys(c)) {
      const v = c[k];
      if (k == "$and" || k == "$or" || k == "$nor") Array.isArray(v) && v.forEach((x) => walk(x, depth + 1));
      else if (k == "$not") walk(v, depth + 1);
      else {
        const top = k.split(".")[0];
        if (own.call(attributes, top)) out[top] = attributes[top];
      }
    }
  };
  // A getter that throws: the whole object goes to `toJSON`, which reports it (invalid_argument).
  try {
    walk(condition, 0);
  } catch (_) {
    return attributes;
  }
  return out;
}

// The argument texts wasm holds from the last evalCondition call (see there); "" is no JSON
// text, so it means "nothing held".
const NONE = { a: "", c: "", g: "" };
let last = NONE;

/**
 * `JSON.stringify(value)` for the engine (`undefined` as `null`); a value it cannot print (a
 * cycle, a BigInt, a throwing getter or Proxy) is an `invalid_argument` error; one the page's
 * broken `JSON.stringify` cannot print, an `internal` one.
 */
export function toJSON(value, what, replacer, code = "invalid_argument") {
  try {
    return stringify(value, replacer) ?? "null";
  } catch (e) {
    let why = "";
    try {
      why = ": " + String(e && e.message);
    } catch (_) {}
    try {
      stringify([{}]);
    } catch (_) {
      code = "internal"; // the page broke JSON.stringify itself: no fault of the value
    }
    throw new KeystoneError(code, what + " cannot be read as JSON" + why);
  }
}

const tag = (v) => Object.prototype.toString.call(v);

/** A plain object: any object (a literal, a class or module namespace, a null-prototype object)
 * but an array, a function or a built-in such as a Map, a Date, a boxed primitive or a typed
 * array, told by tag so that one from another frame is told too. */
export const isPlain = (v) => {
  try {
    return !!v && typeof v == "object" && !Array.isArray(v) && !/^\[object (Arguments|(Weak)?(Map|Set)|Date|RegExp|Promise|Error|Boolean|Number|String|Symbol|BigInt|(Shared)?ArrayBuffer|DataView|\w+Array)]$/.test(tag(v));
  } catch (_) {
    return false; // a Proxy that throws
  }
};

/** A URL object (also one from another frame). */
const isURL = (v) => tag(v) == "[object URL]";

/** Bad input: an `invalid_argument` error. */
const bad = (message) => new KeystoneError("invalid_argument", message);

/**
 * `value` as JSON text for the engine when it is a plain object, or with `none` null/undefined
 * (no properties); anything else (a number, a string, an array, a Map, a function…) is an
 * `invalid_argument` error naming `what`.
 */
const arg = (value, what, none) => {
  if (value == null ? !none : !isPlain(value)) throw bad(what + " must be a plain object");
  return toJSON(value, what);
};

/** A segment or experience id: a string, else an `invalid_argument` error. */
const id = (v) => {
  if (typeof v != "string") throw bad("an id must be a string");
  return v;
};

/** Warns once (`unknown_option`) about the keys of `o` that are not in `known` (a typo is
 * said, not ignored; an option of a later version does not break the page). */
const said = new Set();
const unknown = (o, known, what) => {
  const k = Object.keys(o).filter((k) => !known.includes(k));
  const m = what + " unknown: " + k.join(", ");
  // (Once per page: a call made again with the same typo is not said again.)
  if (k.length && !said.has(m)) said.add(m), warn(new KeystoneError("unknown_option", m));
};

const CATEGORIES = "analytics personalization marketing".split(" ");
/** Warns `unknown_option` (once) for a definitions document's unknown top-level fields (a typo,
 * `socres`, would leave the scores out without a word); returns the document. */
const fields = (d) => {
  try {
    isPlain(d) && unknown(d, ["version", "segments", "scores", "savedGroups", "experiences"], "definitions fields");
  } catch (_) {} // (a page that broke `Array.prototype.filter`: the document's own check says so)
  return d;
};
const CAPTURE = Object.fromEntries("pageViews hashChange clicks scroll engagement".split(" ").map((k) => [k, "b"]));
// The `init` options and the types they take: b boolean (or "true"/"false", a tag manager's
// variable), s string, o plain object, n a number >= 0 (or its digits), e "", u a URL
// object, p a storage prefix (also a cookie name: no space, control, `;=,"\`); none: checked
// where the option is read (the engine, delivery, definitions).
const OPTIONS = Object.fromEntries("segments consent endpoint:su writeKey sessionTimeout retention autoCapture:bo storagePrefix:p cookieDomain:s dataLayer:bs trackSegments:b debug:b wasmUrl:su antiFlicker:nbe flushAt:n flushInterval:n maxQueueEvents:n maxQueueBytes:n maxBatchBytes:n retryBase:n retryMax:n requestTimeout:n".split(" ").map((o) => o.split(":")));
const TYPES = {
  b: (v) => v === !!v,
  s: (v) => typeof v == "string",
  o: isPlain,
  n: (v) => (typeof v == "number" || (typeof v == "string" && !!v.trim())) && +v >= 0,
  e: (v) => v === "",
  u: isURL,
  p: (v) => typeof v == "string" && /^[^\s\0-\x1f\x7f;=,"\\]+$/.test(v),
};

/** Checks options `o` against `table` (name → types), in place: "true"/"false" of a boolean
 * option made a boolean, the digits of a number option a number; a wrong type throws, an
 * unknown name warns. */
const check = (o, table, what) => {
  unknown(o, Object.keys(table), what + "s");
  for (const k of Object.keys(table)) {
    const t = table[k] || "";
    if (t.includes("b") && (o[k] === "true" || o[k] === "false")) o[k] = o[k] == "true";
    if (o[k] != null && t && ![...t].some((t) => TYPES[t](o[k]))) throw bad("the " + what + " " + k + " has a wrong type or value");
    // (A number option's text would be added, not summed: `Date.now() + "5000"`.)
    if (t[0] == "n" && typeof o[k] == "string" && o[k]) o[k] = +o[k];
  }
};

/** Checks the `init` options (a plain copy, changed in place as `check` does): a wrong type
 * rejects init, an unknown name warns. */
export function checkOptions(o) {
  check(o, OPTIONS, "init option");
  // `autoCapture`'s switches are booleans too ("false" from a tag manager turns one off).
  if (isPlain(o.autoCapture)) check((o.autoCapture = { ...o.autoCapture }), CAPTURE, "autoCapture option");
  // So are the consent categories (a consent manager's variables).
  if (isPlain(o.consent)) {
    unknown((o.consent = { ...o.consent }), CATEGORIES, "consent categories");
    for (const k of CATEGORIES) if (o.consent[k] === "true" || o.consent[k] === "false") o.consent[k] = o.consent[k] == "true";
  }
  // The collector's URL also as a URL object, as `fetch` and `sendBeacon` take it.
  if (isURL(o.endpoint)) o.endpoint += "";
}

/** The `init` options the engine reads, as JSON text (definitions and the rest stay in JS). */
function optionsText(o, warm) {
  const picked = warm ? { __w: 1 } : {};
  for (const k of "sessionTimeout retention trackSegments consent storagePrefix cookieDomain endpoint".split(" ")) if (o[k] !== undefined) picked[k] = o[k];
  try {
    picked.__gpc = navigator.globalPrivacyControl === true; // Global Privacy Control
  } catch (_) {}
  return toJSON(picked, "init options");
}

// The engine's methods, by their index in the one exported entry point `coreCall(op, a, b, c)`
// (the order of the match in src/facade.rs).
/** `cookieDomain`: a forget() on any subdomain of the site left its marker `t` (a cookie of the
 * domain): this origin erases what it stored before it, unless it stored since (its record `fg`,
 * written with the profile, holds `t`). */
const stale = (prefix, domain, t) => domain && t && stored(prefix + "fg") != t && eraseAll(prefix, 0, 1);

const OPS = "setTraits setConsent forget sync identify reset setContext page track loadSegments decide segments inSegment profile explain nextCheck anonymousId userId refresh persist drain followCookie at new".split(" ");

/** The [time, url, title] noted with a call made before the engine was ready, if usable. */
// (The script-tag build) when a prerendered page was shown: a call queued before is made then,
// after the page view, not at a time the visitor had not seen the page.
let shown = 0;
const when = (c) => {
  try {
    // A title noted before the page's <title> was parsed (a snippet at the top of <head>) is
    // the page's title now, while the page is still at that URL.
    if (Array.isArray(c) && c[0] > 0 && c[0] <= Date.now() && new URL(c[1])) return [c[0] < shown ? shown : c[0], c[1], c[2] || (c[1] == document.URL ? document.title : "")];
  } catch (_) {}
  return null;
};

/**
 * The page's engine for the `init` options (created in the wasm instance, replacing any earlier
 * one), as an object with one method per engine call: string arguments pass as they are
 * (anything else as none), results come back parsed from JSON.
 */
function newEngine(options, cookieId, warm) {
  // A failure comes back as "!" and the error's JSON text (no JS value leaves wasm): thrown here
  // as the object it holds, which toKeystoneError reads.
  const out = (r) => {
    if (r[0] == "!") throw JSON.parse(r.slice(1));
    return r ? JSON.parse(r) : undefined;
  };
  const str = (v) => (typeof v == "string" ? v : undefined);
  const e = {};
  OPS.forEach((name, op) => {
    e[name] = (a, b, c) => out(coreCall(op, str(a), str(b), str(c)));
  });
  // Segment ids sorted as JavaScript sorts strings (UTF-16 code units, what `[...ids].sort()`
  // gives), not in the engine's code point order: the two differ for ids mixing U+E000–U+FFFF
  // with characters beyond U+FFFF. For `segments()`, the data layer's `keystoneSegments` and
  // the profile document's `segments`. (11 and 13: `segments` and `profile` in OPS.)
  e.segments = () => out(coreCall(11)).sort();
  e.profile = (d = out(coreCall(13))) => (d.segments.sort(), d);
  e.new(optionsText(options, warm), cookieId);
  return e;
}

/** One Keystone instance (per page). */
export class Instance {
  #core;
  #listeners = new Map();
  #persistTimer = 0;
  #expiryTimer = 0;
  #expiryAt = -1;
  #fireAt = 0; // when the expiry timer fires, on performance.now()'s clock (0: none set)
  #options;
  #channel = null;
  #onChange = null;
  #activate = null;
  #layer = null; // the data layer's hook until the replay is over (script-tag build)
  #early = [];
  #heard = []; // notifications not yet delivered (see #deliver)
  #delivering = 0;
  #quiet = 0; // a read is running (see #read)
  #away = 0; // the page went into the back/forward cache (see #back)
  #later = null; // the microtask delivering what a read recorded
  #cookieId;
  #held; // releases the lock that names a first visit's new id (see the constructor)
  // A consent choice is known (not opt-in still waiting for one): until then a shared id cookie
  // found (another subdomain's, written with consent) is left alone, not erased.
  #choice;
  #tx = null;
  #epoch = epoch;
  #defs = null;
  #loading = null; // the last load queued behind a URL, while one is in flight
  #queued = 0; // loads in flight or queued behind one
  #href; // the URL of the context the engine holds
  #begun; // (the script-tag build) `_start` has run
  #ref; // its referrer: the previous URL after an SPA navigation (else document.referrer)
  #virtual; // the properties of the page() call that set the context (a virtual page view)
  #reporting = 0; // a trackSegments report pass is waiting for the lock
  #told; // the last report pass (flush waits for it)
  #call = null; // while a call made before the engine was ready is replayed: its [time, url, title]
  #urls = []; // the replayed calls' last two pages, told apart by URL: [the one before, the last]
  #unseen = 0; // the channels auto-capture's view of this page was not recorded in (no consent)
  #pend; // (script-tag build) that view's referrer, replayed call and URL
  #nav = null; // auto-capture's navigation check
  #views = 0; // auto-capture records page views
  #given = []; // consent applied since init (null: forget()), again on an engine rebuilt after a trap
  #stale = 0;
  #followCookie = () => {};
  #fg; // the forget() marker (see #forgot) this tab has applied or made

  /** `locked`: made under the profile's lock, which writes it at once (a first visit); else
   * (a returning visitor) with the next coalesced write. */
  constructor(core, options, at, locked) {
    this.#core = core;
    this.#options = options;
    this.#href = __SCRIPT_TAG__ && at ? at[1] : location.href; // (only the script-tag build replays calls)
    this.#choice = options.consent !== "opt-in";
    this.#fg = readCookie(this.#prefix() + "fg"); // (a forget() made before this start is not this tab's to apply)
    if (options.endpoint) this.#tx = transport(options, (code, message) => this.#report(new KeystoneError(code, message)), () => this.#forgot());
    // Methods work detached from the instance: `const { track } = ks`,
    // `addEventListener("click", ks.refresh)`, `.then(ks.flush)`.
    // (Not enumerable, as on the prototype.)
    for (const k of Object.getOwnPropertyNames(Instance.prototype)) if (k != "constructor" && k[0] != "_") Object.defineProperty(this, k, { value: this[k].bind(this), writable: true, configurable: true });
    // forget() in another tab of the site: this tab withdraws all consent and drops its state too.
    // Heard from here on, not from `_start`: the start may wait seconds for a definitions URL,
    // and a forget() made meanwhile would go unheard (the profile read above then written back).
    // Held while this page lives, shared with the site's other tabs: forget() counts them.
    Prom.resolve()
      .then(() => navigator.locks.request(this.#prefix() + "tab", { mode: "shared" }, () => new Prom(() => {})))
      .catch(() => {});
    try {
      const channel = (this.#channel = new BroadcastChannel("keystone:" + this.#prefix()));
      // setConsent() in another tab: the same categories apply here (never echoed back).
      channel.onmessage = (e) => (e.data === "forget" ? this.#forgot(1) : e.data?.consent && this.#consent(e.data));
      // A refusal of personalization passed at init (the visitor's choice) reaches the site's
      // other open tabs as setConsent() would: none of them stores anything after it.
      const c = options.consent;
      if (c && typeof c == "object" && c.personalization === false) channel.postMessage({ consent: toJSON(c) });
    } catch (_) {}
    locked ? this.persistNow() : this.#schedulePersist();
    // A first visit's new id, for the tabs starting in the same moment (see `init`): for two
    // seconds, or until this tab's id changes (also before the lock is granted: not held then).
    const id = locked && this.#cookieId;
    if (id)
      try {
        navigator.locks.request(this.#prefix() + "aid" + id, () => this.anonymousId() == id && new Prom((r) => setTimeout((this.#held = r), 2e3))).catch(() => {});
      } catch (_) {}
  }

  /** Answers reflect the present: the timer for the next time-based change may not have run
   * (a device asleep, a background tab's throttled timers), so a read past it refreshes first. */
  #now() {
    this._nav?.(); // an SPA navigation's view not recorded yet (capture.js)
    // Also after an SPA navigation not captured as a page view: the context follows it first.
    if (!this.#stale && ((this.#expiryAt >= 0 && Date.now() >= this.#expiryAt) || this.#moved())) {
      this.#stale = 1; // not again from a listener of this refresh
      try {
        this.refresh();
      } finally {
        this.#stale = 0;
      }
    }
  }

  /** A read (`fn`, its answer `out` when the engine is off), after what `#now` records first
   * (an SPA navigation's view, a window passed): the listeners of those changes are called a
   * microtask later, so that a read made while a framework renders (`inSegment()` in a
   * component after a router's `pushState`) runs none, as a listener updating a component's
   * state then would be an update during another component's render. (The read's own notices,
   * an error, follow them; heard at once when there are none.) */
  #read(fn, out) {
    this.#quiet = 1;
    try {
      this.#now();
      this.#quiet = !!this.#later;
      return this.#run(fn, 0, out);
    } finally {
      this.#quiet = 0;
    }
  }

  /** `trackSegments`: the engine has membership changes to report (`r`). The visitor's open tabs
   * often reach one at the same moment (a window passing, tabs starting together, each other's
   * writes): reported one tab at a time, under the profile's lock (a lease in storage where Web
   * Locks are missing), each after reading what the one before stored, so a change goes out once. */
  #tell() {
    if (this.#reporting) return;
    this.#reporting = 1;
    const key = this.#lockName();
    const S = this.#prefix() + "rs";
    const pass = async () => {
      // The tab that reported before this one stamped its write: in storage after it, and in a
      // cookie, which every tab reads as the browser holds it (localStorage reaches other tabs a
      // moment later, on another channel than the lock). This tab's view of storage holds that
      // write once it holds the stamp: waited for, a second at most.
      for (let i = 0, s = readCookie(S); s && stored(S) != s && i++ < 50; ) await sleep(20);
      const v = stored(key);
      if (v) this.#run(() => this.#core.sync(key, v), true);
      this.#reporting = 0; // (what this refresh reports, the sync's changes included, needs no other pass)
      this.#run(() => this.#core.refresh("report"), 2);
      this.persistNow();
      // Stamped only where the profile is stored (personalization consent); the cookie only
      // once storage took the stamp.
      const s = Math.random().toString(36).slice(2, 8);
      if (stored(key) && store(S, s)) writeCookie(S, s);
    };
    this.#told = withLock(key, pass, true).catch(pass);
  }

  /** The engine, rebuilt on a fresh wasm instance after a trap; null once degraded. */
  #engine() {
    this._nav?.();
    if (this.#epoch !== epoch) {
      this.#core = null;
      this.#epoch = epoch;
      if (epoch > MAX_TRAPS) return null;
      try {
        const core = newEngine(this.#options, readCookie(this.#prefix() + "aid", this.#options.cookieDomain));
        for (const g of this.#given) g ? core.setConsent(g) : core.forget();
        core.setContext(toJSON(readContext(this.#ref)));
        this.#href = location.href;
        if (this.#defs) core.loadSegments(this.#defs);
        core.drain(); // rebuilding is not a change the page should hear about
        this.#core = core;
      } catch (e) {
        if (isTrap(e)) retrap();
      }
    }
    return this.#core;
  }

  // ---- plumbing -------------------------------------------------------------------------

  /** Runs an engine call; on failure reports and returns `out` (the fallback, replaced by the
   * call's result when it returns). (`mutates` before `out`: most calls pass only `mutates`, and
   * the minified calls are shorter.) */
  #run(fn, mutates, out) {
    if (!this.#engine()) return out;
    // (What follows the call, `#after`, runs whether it threw or not; a page that broke a timer
    // or `performance.now` makes it throw too: reported, never thrown into the page.)
    try {
      try {
        this.#back();
        if (mutates == 1) this.#follow(); // (2: a change that sets the context itself)
        out = fn();
      } catch (e) {
        this.#report(e);
      }
      this.#after(mutates);
    } catch (e) {
      this.#report(e);
    }
    return out;
  }

  /** Runs an engine call for a Promise-returning method. */
  #runAsync(fn, mutates) {
    try {
      if (!this.#engine()) throw new KeystoneError("internal_trap", "the Keystone engine is off after repeated failures");
      try {
        this.#back();
        if (mutates) this.#follow();
        return Prom.resolve(fn());
      } finally {
        this.#after(mutates);
      }
    } catch (e) {
      return Prom.reject(this.#report(e));
    }
  }

  /** Back from the back/forward cache (`#away`, until Keystone's own `pageshow`): what other
   * pages stored meanwhile, first. (Also for the calls made while the page is being hidden: then
   * nothing new.) */
  #back() {
    if (this.#away) {
      this.#forgot();
      this.#core.sync(this.#lockName(), stored(this.#lockName()));
    }
  }

  /** The URL changed without a page view (an SPA navigation with page views not captured): the
   * context follows, with the previous URL as referrer, so events carry the current one. */
  #follow() {
    // (The script-tag build's start is the landing page's, the URL the snippet ran on: a router
    // that changed it before the script arrived makes a navigation once started, not before, or
    // definitions loaded at the start took the landing URL for the landing view's referrer.)
    if ((!__SCRIPT_TAG__ || this.#begun) && this.#moved()) this.#setContext(this.#href);
  }

  /** Whether the page's URL is no longer the context's (a hash-only change, an anchor, is no
   * navigation: the referrer stays the page's). */
  #moved() {
    const h = this.#url();
    return h !== this.#href && h.split("#")[0] !== this.#href.split("#")[0];
  }

  #setContext(referrer = this.#ref, v) {
    this.#ref = referrer;
    if (__SCRIPT_TAG__) this.#virtual = v; // (read only by the script-tag build, after its replay)
    this.#href = this.#url();
    this.#core.setContext(toJSON(readContext(referrer, __SCRIPT_TAG__ ? this.#call : null, v)));
  }

  /** The URL of the page the call is made on. */
  #url() {
    return __SCRIPT_TAG__ && this.#call ? this.#call[1] : location.href; // (only the script-tag build replays calls)
  }

  /** @internal Runs `fn`, a call made before the engine was ready, as made at `c`, the
   * [time, url, title] noted with it: what it records carries that time and page. Without `fn`:
   * the context follows the page as it is now. */
  _at(c, fn) {
    if (!__SCRIPT_TAG__) return fn(); // the ESM build queues no calls: each runs as it is made
    // Once replayed: a navigation made meanwhile is one (its page view), and the context is the
    // page's as it is now (its title too: the landing page's may have been read before <title>).
    if (!fn) {
      // (Calls left on another page than this one: the navigation is from it; else from the one
      // before it, a router's page view made on arrival.)
      const [p, l] = this.#urls;
      this.#nav?.(l == document.URL ? p : l);
      this.#activate = this.#layer;
      return void this.#run(() => {
        const h = this.#href;
        this.#follow();
        if (h == this.#href) this.#setContext(undefined, this.#virtual); // (a virtual page view stays)
        this.#core.refresh(); // membership in that context
      }, 2);
    }
    this.#call = when(c);
    const u = this.#call?.[1];
    if (u && u != this.#urls[1]) this.#urls = [this.#urls[1], u];
    this.#clock(this.#call && String(this.#call[0]));
    try {
      return fn();
    } finally {
      this.#call = null;
      this.#clock();
    }
  }

  #clock(t) {
    // (Empty in the ESM build, which never runs it: only the script-tag build replays calls.)
    if (__SCRIPT_TAG__)
      try {
        this.#engine()?.at(t);
      } catch (_) {}
  }

  /** With the `debug` option: one console line per call and per notice (never the email);
   * absent arguments are left out. */
  #log(...a) {
    if (this.#options.debug) {
      try {
        console.debug("[keystone]", ...a.filter((x) => x !== undefined));
      } catch (_) {}
    }
  }

  #report(e) {
    if (isTrap(e)) retrap();
    const err = warn(toKeystoneError(e));
    this.#deliver([["error", err]]);
    return err;
  }

  /** After every call: deliver notifications (after return), schedule persistence. `notes`: what
   * the engine drained (`n` the notices, `m` marketing consent, `r` reports to make, `x` the next
   * time-based change; with an endpoint `q` the events made, `a`/`p` analytics/personalization
   * consent), or no notice when there is no engine. */
  #after(mutates, start) {
    let notes = { n: [] };
    try {
      if (this.#engine()) notes = this.#core.drain(mutates ? "1" : 0) || notes;
    } catch (e) {
      if (isTrap(e)) retrap();
    }
    if (notes.r) this.#tell();
    if (this.#activate && "m" in notes) this.#activate(notes);
    if (this.#options.debug) for (const n of notes.n) this.#log(n.type, n.segment || n.userId || n.anonymousId || n.error?.code || "");
    if (mutates) {
      this.#schedulePersist();
      this.#scheduleExpiry(notes.x);
    }
    // Also with nothing new when analytics or personalization consent is off: a refusal erases
    // what was queued (analytics) or stored of it (personalization).
    if (this.#tx && (start || mutates || notes.q?.length || notes.a === false || notes.p === false)) this.#tx.take(notes);
    if ((mutates || notes.n.length) && this.#onChange) this.#onChange();
    // Listeners hear the call's changes before it returns, once Keystone is done with them (a
    // listener may call Keystone again).
    this.#deliver(notes.n);
  }

  /** Delivers notifications (the engine's notices, or `[type, payload]`) in the order they
   * happened: those of a call made from a listener are heard once the ones before them have been.
   * Never throws (a page that broke Array methods included). */
  #deliver(list) {
    const q = this.#heard;
    try {
      for (const n of list) {
        // An engine notice is its type and one field (`segment`, `userId`, `anonymousId` or
        // `error`): the listeners' payload is the notice without its type.
        const { type, ...payload } = n;
        q[q.length] = type ? [type, type === "error" ? warn(toKeystoneError(n.error)) : payload] : n;
      }
      if (this.#delivering) return;
      // (During a read, `#read`: kept for a microtask, or for the next call that delivers.)
      if (this.#quiet) return void (this.#later ||= Prom.resolve().then(() => ((this.#later = null), this.#deliver([]))));
      this.#delivering = 1;
      // (Bounded: listeners that keep answering each other's changes must not hang the page.)
      for (let i = 0; i < q.length && i < 1e4; i++) this.#emit(q[i][0], q[i][1]);
    } catch (_) {}
    q.length = this.#delivering = 0;
  }

  /** One timer, set to the next time-based membership change (a window passing, a score decaying). */
  #scheduleExpiry(at, again) {
    // The drained notices carry it (`x`); asked for otherwise.
    if (at === undefined)
      try {
        at = this.#core.nextCheck();
      } catch (_) {
        at = -1;
      }
    if (at === this.#expiryAt && !again) return;
    this.#expiryAt = at;
    // A timer set to fire by then stays: it reads the time it is for when it fires. (Most events
    // move the next change a little later; setting the timer again cost each such `track()` a
    // `clearTimeout` and a `setTimeout`, and made it 5× as likely to be one of the slow calls.)
    // When it fires is told on the timers' clock (`performance.now()`): after a sleep the wall
    // clock is ahead of it, and a change due sooner than the timer fires must not wait for it.
    if (!again && this.#fireAt && at - Date.now() >= this.#fireAt - performance.now()) return;
    clearTimeout(this.#expiryTimer);
    // At most a minute at a time: timers stand still while the device sleeps, the wall clock
    // does not, so a window that passed meanwhile is caught up within a minute of waking.
    // (Also keeps the delay within setTimeout's 32-bit range; one already past is 0.)
    const wait = Math.min(at - Date.now(), 6e4);
    this.#fireAt = at >= 0 && performance.now() + wait;
    this.#expiryTimer = at >= 0 && setTimeout(() => ((this.#fireAt = 0), Date.now() < this.#expiryAt ? this.#scheduleExpiry(this.#expiryAt, 1) : ((this.#expiryAt = -1), this.refresh())), wait);
  }

  #emit(type, payload) {
    // Errors found while starting (storage_corrupt, a rejected segment of the `segments` option,
    // definitions_fetch_failed…) reach listeners added right after init resolves.
    if (this.#early && type === "error") return void this.#early.push(payload);
    const set = this.#listeners.get(type);
    if (!set) return;
    // (Those added meanwhile wait for the next event; one removed meanwhile is not called, as
    // with the DOM's listeners: a component unmounted by another listener hears nothing more.)
    for (const cb of [...set]) {
      try {
        if (set.has(cb)) cb(payload);
      } catch (e) {
        // A throwing listener must not break Keystone or the other listeners.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  #schedulePersist() {
    if (this.#persistTimer) return;
    // One tab writes at a time; the write re-reads storage and re-applies this tab's changes.
    this.#persistTimer = setTimeout(() => withLock(this.#lockName(), () => this.persistNow()).catch(() => this.persistNow()), PERSIST_DELAY_MS);
  }

  /** The stored profile's key, also the name of its lock. */
  #lockName() {
    return this.#prefix() + "profile";
  }

  /** Writes pending profile changes to storage now (also run on pagehide / hidden), and keeps
   * the anonymous id cookie in step (removed when nothing may be kept). */
  persistNow() {
    this.#forgot();
    clearTimeout(this.#persistTimer);
    this.#persistTimer = 0;
    this.#run(() => {
      const id = this.#core.persist() || null;
      // (`cookieDomain`: what this origin stores now is not from before the last forget().)
      if (id && this.#options.cookieDomain && this.#fg) store(this.#prefix() + "fg", this.#fg);
      if (id !== this.#cookieId && (id || this.#choice)) {
        this.#held?.();
        writeCookie(this.#prefix() + "aid", (this.#cookieId = id), this.#options.cookieDomain);
        // Nothing kept: the report stamp (#tell) goes too.
        if (!id) {
          writeCookie(this.#prefix() + "rs");
          store(this.#prefix() + "rs");
        }
      }
    });
  }

  #prefix() {
    return this.#options.storagePrefix || "ks_";
  }

  /** @internal Declarative personalization (§7, §13) starts: the page's markup is rendered, and
   * again after every call that changed the profile or membership. */
  _bind() {
    if (typeof document != "undefined") this.#onChange = bind(this);
  }

  /** @internal Called by init once the instance is wired. */
  _start(at) {
    this.#begun = 1;
    // Another tab wrote the profile: rebase onto it now (profile() sees it in this turn). A
    // forget() this tab has not heard of yet first (#forgot): what follows it (a grant, a login)
    // must not be taken for another tab's logout or switch of users, which sets the known
    // profile of before aside again.
    addEventListener("storage", (e) => (this.#forgot(), this.#run(() => this.#core.sync(e.key, e.newValue), true)));
    // A page restored from the back/forward cache has not heard what other pages stored while it
    // was there (a logout): read at its first call, or when it is shown, whichever comes first
    // (a `pageshow` listener of the page's own, added before Keystone's, records an event: not as
    // the person who left).
    addEventListener("pageshow", (e) => e.persisted && (this.#run(() => 0, true), (this.#away = 0)));
    // And what another tab wrote while this one was starting (a definitions URL may take
    // seconds): a logout or a switch of users made there meanwhile is followed before this page
    // records anything or init resolves.
    const v = stored(this.#lockName());
    if (v) this.#run(() => this.#core.sync(this.#lockName(), v), 2); // (the context is the start's)
    // Auto-capture before the write on hide below (its engaged-time report must be in that
    // write). Its initial page view is part of starting: `keystone.ready` carries the segments
    // held after it, as `segments()` does when init resolves, and no enter/exit for it follows.
    try {
      // (The script-tag build keeps its navigation check, run again after the replay.)
      if (__SCRIPT_TAG__) this.#nav = this._at(at, () => startCapture(this, this.#options, this.#url()));
      else startCapture(this, this.#options, this.#url());
    } catch (e) {
      this.#report(e);
    }
    const layer = dataLayer(this.#options.dataLayer, () => {
      try {
        return this.#core.segments();
      } catch (_) {
        return [];
      }
    });
    // The script-tag build tells the data layer once the calls queued before ready are replayed
    // (`_at()`): a consent choice queued there (a consent manager answering before Keystone
    // loaded) holds before anything is pushed.
    if (__SCRIPT_TAG__) this.#layer = layer;
    else this.#activate = layer;
    // `cookieDomain`: the shared cookie is the source of truth for the id, also while the page is
    // open: another subdomain's logout or switch of users is followed when this page is shown.
    if (this.#options.cookieDomain) {
      const follow = (e) => {
        const key = this.#lockName();
        const id = readCookie(this.#prefix() + "aid", this.#options.cookieDomain);
        if ((e && document.visibilityState != "visible") || !id || id === this.anonymousId()) return;
        this.#forgot(); // (what follows writes at once)
        // Another tab of this origin may have made the change: its stored profile (which holds
        // the new id) first.
        const text = stored(key);
        if (text.includes(id)) this.#run(() => this.#core.sync(key, text), true);
        if (id !== this.anonymousId()) {
          // Heard as a logout when the page is shown; before a login or logout here, that call
          // reports the net change.
          this.#run(() => this.#core.followCookie(id, e ? "1" : 0), true);
          if (e) this.persistNow();
        }
      };
      document.addEventListener("visibilitychange", follow);
      addEventListener("focus", follow);
      addEventListener("pageshow", follow);
      this.#followCookie = follow; // and before a login or logout here, which then apply to it
    }
    this.#after(false, true); // delivery learns the starting consent
    // (Then, going into the back/forward cache, the page is `#away`.)
    addEventListener("pagehide", (e) => (this.persistNow(), e.persisted && (this.#away = 1)));
    // Shown again (after a sleep, say): a time-based change that came meanwhile, at once.
    document.addEventListener("visibilitychange", () => (document.visibilityState === "hidden" ? this.persistNow() : this.#now()));
    this.#scheduleExpiry();
  }

  /** @internal Called as init resolves: errors from then on reach listeners at once; those found
   * while starting reach listeners added right after init resolves (a task later). */
  _ready() {
    const early = this.#early;
    this.#early = null;
    setTimeout(() => {
      for (const e of early) this.#emit("error", e);
    });
  }

  /** @internal A page of auto-capture: the page shown at start (no `referrer`) or an SPA
   * navigation (the previous URL as referrer). First the engaged `seconds` of the page left (with
   * its context), then the new context and, with `view`, a page view. A view no consent allowed
   * to record is recorded once consent allows it (`late`), if the visitor is still on that page. */
  _navigated(referrer, seconds, view, late) {
    this.#run(() => {
      if (seconds) this.#core.track("Page Engagement", toJSON({ seconds }));
      // A late view is of the page it was deferred on: while the calls queued on the snippet
      // before ready replay, a call made after the URL changed (a site removing the utm) moves
      // the context, yet the view is the landing page's, utm included. The context then returns
      // to where the calls left it (the URL changed meanwhile is a navigation of its own,
      // recorded after them).
      let back;
      if (!late) {
        this.#setContext(referrer);
        if (__SCRIPT_TAG__) this.#pend = [this.#ref, this.#call, this.#href];
      } else if (__SCRIPT_TAG__ && this.#pend && this.#pend[2] !== this.#href) {
        back = [this.#ref, this.#call, this.#virtual];
        this.#ref = this.#pend[0];
        this.#call = this.#pend[1];
        this.#setContext();
      }
      // The channels (1 delivery, 2 profile) no consent allowed the view into yet.
      if (view) (this.#views = 1), (this.#unseen = late ? this.#unseen & ~this.#core.page("null", "" + this.#unseen) : 3 & ~this.#core.page("null"));
      // No page view to record: membership follows the new context all the same.
      else if (!late) this.#core.refresh();
      if (back) {
        this.#ref = back[0];
        this.#call = back[1];
        this.#setContext(undefined, back[2]);
      }
    }, 2);
  }

  // ---- public API -----------------------------------------------------------------------

  /** Records a page view. */
  page(properties) {
    this.#log("page", properties);
    this.#run(() => {
      const p = arg(properties, "page properties", 1);
      this.#setContext(undefined, properties);
      this.#core.page(p);
    }, true);
  }

  /** Merges traits into the profile; emits a Segment `identify` event. */
  setTraits(traits) {
    this.#log("setTraits", traits);
    // (Nothing, `setTraits(user?.traits)`, is no traits: as `{}`.)
    this.#run(() => this.#core.setTraits(arg(traits ?? {}, "traits")), true);
  }

  /** Merges consent categories; granting starts collection, withdrawing stops it. */
  setConsent(consent) {
    this.#log("setConsent", consent);
    this.#forgot();
    return this.#runAsync(() => {
      // Only an object of categories is valid (forget() is the way to withdraw everything).
      const text = arg(consent, "consent");
      this.#core.setConsent(text);
      this.#given.push(text);
      unknown(consent, CATEGORIES, "consent categories");
      this.#choice = true;
      this.#late();
      this.persistNow();
      // The site's other open tabs follow (a withdrawal must not wait for their next page), with
      // the profile just written: they may not see that write yet, and a tab granted consent
      // must adopt this tab's anonymous id, not make its own.
      try {
        this.#channel?.postMessage({ consent: text, profile: stored(this.#lockName()) });
      } catch (_) {}
    });
  }

  /** Applies consent set in another tab (`consent`: JSON text validated there; `profile`: the
   * profile it stored then, rebased onto first). */
  #consent(m) {
    this.#runAsync(() => {
      // (With the ids of the profile that tab stored: see the engine's `grant_of`.)
      let p;
      try {
        p = JSON.parse(m.profile);
      } catch (_) {}
      this.#core.setConsent(m.consent, p?.aid, p?.uid);
      this.#given.push(m.consent);
      this.#choice = true;
      if (m.profile) this.#core.sync(this.#lockName(), m.profile);
      this.#late();
      // Written under the lock like any change (not at once): the granting tab's trackSegments
      // report may be stored after the profile this message carries, and must not be written over.
    }, 1).catch(() => {});
  }

  /** Consent changed: auto-capture's view of the page the visitor is on, which no consent
   * allowed to record, is recorded now if consent allows it; the page's markup follows. */
  #late() {
    if (this.#unseen) this._navigated(undefined, 0, 1, true);
    this.#onChange && this.#onChange();
  }

  /** Erases every key and cookie Keystone stored, withdraws all consent, starts afresh. */
  forget() {
    clearTimeout(this.#persistTimer);
    this.#persistTimer = 0;
    return this.#runAsync(() => {
      this.#forgetHere();
      const d = this.#options.cookieDomain;
      const left = eraseAll(this.#prefix(), d);
      // The site's other tabs forget too: a message, and a marker for the tab that writes before
      // it hears the message (#forgot): a cookie holding the time, kept 2 s. With `cookieDomain`,
      // on the domain and kept a year: the site's other subdomains, whose storage this page
      // cannot reach, erase theirs when they read it (`stale`).
      const fg = this.#prefix() + "fg";
      writeCookie(fg, (this.#fg = Date.now()), d, d ? undefined : 2);
      try {
        this.#channel?.postMessage("forget");
      } catch (_) {}
      if (left) throw new KeystoneError("storage_unavailable", "forget() could not erase " + left + " stored key(s): the browser refused");
      // No other tab of the site holds its share of the lock taken at start: none can write
      // before hearing the message, and the marker goes before forget() resolves. (Where Web
      // Locks are missing or refused, it stays its 2 s.)
      return (
        d ||
        Prom.resolve()
          .then(() => navigator.locks.query())
          .then((s) => s.held.filter((l) => l.name == this.#prefix() + "tab")[1] || writeCookie(fg))
          .catch(() => {})
      );
    });
  }

  /** forget() in another tab of the site: this tab forgets too, once per forget(). Heard as a
   * message (`m`), or read from the marker that forget() left before this tab writes or changes
   * identity or consent: a tab may run its pending write before the message reaches it, and
   * that write would store the profile again. */
  #forgot(m) {
    const t = readCookie(this.#prefix() + "fg");
    if (t ? t != this.#fg : m) (this.#fg = t), stale(this.#prefix(), this.#options.cookieDomain, t), this.#run(() => this.#forgetHere(), true);
  }

  #forgetHere() {
    this.#held?.();
    clearTimeout(this.#persistTimer);
    this.#persistTimer = 0;
    this.#core.forget();
    this.#given = [null];
    // The fresh identity has not seen this page: its view waits for consent, as at the start.
    if (this.#views) this.#unseen = 3;
    this.#cookieId = null;
    this.#onChange && this.#onChange();
  }

  /** Records a named event. */
  track(event, properties) {
    this.#log("track", event, properties);
    this.#run(() => this.#core.track(event, arg(properties, "track properties", 1)), true);
  }

  /** Login: hashes the email on the device and reconciles the profiles; written at once. */
  identify(email, traits, options) {
    this.#log("identify", traits);
    this.#forgot();
    const out = this.#runAsync(() => {
      const t = arg(traits, "identify traits", 1);
      let o = arg(options, "identify options", 1);
      // A numeric userId reaches the engine as JSON prints it, its String(n); NaN and ±Infinity,
      // which JSON prints as null (no userId: the email's hash), are refused as an empty one is.
      const u = options?.userId;
      if (typeof u == "number" && !isFinite(u)) o = '{"userId":""}';
      // (A misspelt option, `userID`, would identify by the email's hash without a word.)
      if (options) unknown(options, ["userId", "storeEmail"], "identify options");
      this.#followCookie();
      this.#core.identify(typeof email == "string" ? email.trim() : email, t, o);
    }, true);
    this.persistNow(); // the id cookie too, at once (the engine wrote the profile)
    return out;
  }

  /** Logout: sets the known profile aside; a new anonymous id and an empty profile start. */
  reset() {
    this.#log("reset");
    this.#forgot();
    this.#run(() => (this.#followCookie(), this.#core.reset()), true);
    this.persistNow(); // the id cookie too, at once: no later write can bring the old id back
  }

  /** Loads segment definitions (object or URL); resolves with `{loaded, rejected}`. */
  loadSegments(definitions) {
    // In call order: a slow URL never lands over the definitions of a later call. With no URL
    // in flight (one that has settled is none, even before its awaiter runs), an object applies
    // at once (inSegment() right after the call sees it). An object is read at the call: what
    // the page does with it afterwards is not loaded (a URL object: its address then).
    let url, text;
    try {
      url = typeof definitions === "string" || isURL(definitions);
      // A number JSON cannot hold (NaN, ±Infinity: JSON's null, a field left out) as its text,
      // so that `holdout: NaN` is rejected where a number is required, not read as absent.
      text = url ? definitions + "" : (fields(definitions), toJSON(definitions, "segment definitions", (k, v) => (typeof v == "number" && !isFinite(v) ? v + "" : v), "invalid_definitions"));
    } catch (e) {
      return Prom.reject(this.#report(e instanceof KeystoneError ? e : bad("segment definitions cannot be read"))); // a hostile Proxy
    }
    const wait = this.#loading;
    const queued = url || wait;
    if (queued) this.#queued++;
    const run = wait ? wait.then(() => this.#load(text, url, queued)) : this.#load(text, url, queued);
    if (queued) this.#loading = run.catch(() => {});
    return run;
  }

  async #load(text, url, queued) {
    try {
      try {
        if (url) text = toJSON(fields(await fetchDefinitions(text)), "segment definitions", 0, "invalid_definitions");
      } catch (e) {
        throw this.#report(e);
      }
      const report = await this.#runAsync(() => (redecide(), this.#core.loadSegments(text)), true);
      this.#defs = text; // replayed into a rebuilt engine after a trap
      // Each rejected definition is also an "error" event (and a warning).
      try {
        return { loaded: report.loaded, rejected: report.rejected.map((r) => this.#report(r)) };
      } catch (e) {
        throw this.#report(e); // the page broke Array.prototype.map
      }
    } finally {
      if (queued && !--this.#queued) this.#loading = null;
    }
  }

  /** Which variant of an experience to show: `{experience, variant, holdout}`, or null. */
  decide(experienceId) {
    // Not a "change" for the declarative renderer (which calls it): only an exposure to persist.
    const d = this.#read(() => this.#core.decide(id(experienceId)), null);
    this.#schedulePersist();
    return d;
  }

  /** Ids of the segments the visitor is in now, sorted. */
  segments() {
    return this.#read(() => this.#core.segments(), []);
  }

  /** Whether the visitor is in segment `id`. */
  inSegment(segmentId) {
    return this.#read(() => this.#core.inSegment(id(segmentId)), false);
  }

  /** The profile document (a plain object copy). */
  profile() {
    return this.#read(() => this.#core.profile(), null);
  }

  /** The anonymous id (null before consent in opt-in mode and after forget()). */
  anonymousId() {
    return this.#run(() => this.#core.anonymousId() ?? null, 0, null);
  }

  /** The known user id, or null while anonymous. */
  userId() {
    return this.#run(() => this.#core.userId() ?? null, 0, null);
  }

  /** Why the visitor is or is not in a segment: the condition tree with each node's result. */
  explain(segmentId) {
    return this.#read(() => this.#core.explain(id(segmentId)), null);
  }

  /** GrowthBook-compatible condition evaluation (see the module function). */
  evalCondition(attributes, condition, savedGroups) {
    return evalCondition(attributes, condition, savedGroups);
  }

  /**
   * Delivers the queued events now: resolves once the collector accepted them (at once when
   * there is no endpoint), rejects when this attempt failed; retries go on in the background.
   */
  flush() {
    // With the trackSegments reports of the changes made so far (they are made a moment later).
    return Prom.resolve(this.#told).then(() => this.#tx?.flush().catch((e) => Prom.reject(toKeystoneError(e))));
  }

  /** Re-evaluates time-windowed segments now. */
  refresh() {
    this.#run(() => this.#core.refresh(), true);
  }

  /** Subscribes to "segment:enter", "segment:exit", "identify", "reset" or "error". */
  on(eventName, callback) {
    if (this.#bad(eventName, callback, "on")) return this;
    let set = this.#listeners.get(eventName);
    if (!set) {
      // A name no event has (a typo such as "segment_enter") is said once, as bad input is (a
      // warning and an `error` event), not ignored silently; the listener is kept.
      if (!/^(segment:enter|segment:exit|identify|reset|error)$/.test(eventName)) this.#report(bad('on(): no event is named "' + eventName + '"'));
      this.#listeners.set(eventName, (set = new Set()));
    }
    set.add(callback);
    return this;
  }

  /** Removes a listener added with `on`. */
  off(eventName, callback) {
    const set = !this.#bad(eventName, callback, "off") && this.#listeners.get(eventName);
    if (set) set.delete(callback);
    return this;
  }

  #bad(eventName, callback, m) {
    return (typeof eventName != "string" || typeof callback != "function") && !!this.#report(bad(m + "(eventName, callback) needs a string and a function"));
  }
}

let current = null;
let firstOptions;
let late = null; // the options of the init in progress until it starts the engine

/** @internal The script-tag build: the options of an `init` made while the first (from
 * `keystoneConfig`) still loads the engine are added to its options. False once too late. */
export const amend = (options) => !!late && (delete (options = { ...options }).src, checkOptions(options), Object.assign(late, options), true);

/** The error for init options that throw when read (a getter, a Proxy). */
export const badOptions = (e) => (e instanceof KeystoneError ? e : bad("the init options could not be read: " + (e?.message || e)));

/** `Keystone.init`: loads the engine once; a second call returns the same instance. `join`
 * (the script-tag build, after its own start failed: the error it failed with): only another
 * copy running on the page may answer, with its instance; else `join` rejects it. */
export function init(options, wasmUrl, landing, join) {
  // A Web Worker (or a server) has no page to personalize and no localStorage or cookies to keep
  // the profile in: said with a stable code instead of whatever fails first. (`Keystone.load()`
  // and `evalCondition` need neither, and work there.)
  if (typeof document == "undefined") return Prom.reject(warn(new KeystoneError("unsupported_environment", "init needs a page (a document, storage); evalCondition works here after load()")));
  // Another copy started first: its instance (a copy of another version warns once, and the
  // running copy's version answers). If that start fails (it left the registry), this copy
  // starts its own, with its own options.
  const o = other();
  if (o)
    try {
      if (o.version !== __KEYSTONE_VERSION__ && !mismatch++) warn(new KeystoneError("version_mismatch", "keystone-cdp " + o.version + " runs on this page: this copy (" + __KEYSTONE_VERSION__ + ") uses it"));
      return Prom.resolve(o.init(options)).catch((e) => ((__SCRIPT_TAG__ && join) || other() === o ? Prom.reject(e) : init(options, wasmUrl, landing)));
    } catch (_) {}
  if (__SCRIPT_TAG__ && join) return Prom.reject(join);
  // (Content a site's inlined anti-flicker rule hides shows at once, unless a start is under way.)
  if (options != null && !isPlain(options)) return current || release(), Prom.reject(warn(bad("the init options must be a plain object")));
  if (current) {
    // Safe to call again (the same instance), but options that differ from the first call's
    // are not applied: said once per call, so a second configuration is not lost silently.
    if (options != null && options !== firstOptions) {
      let same = false;
      try {
        same = JSON.stringify(options) === JSON.stringify(firstOptions || {});
      } catch (_) {}
      if (!same) warn(new KeystoneError("already_initialized", "the options of a later init call are not applied"));
    }
    return current;
  }
  let opts;
  try {
    // A plain copy, read once: options that throw when read (a getter, a Proxy) are bad input.
    // Checked before anything starts: an init with a bad option rejects alone, and the next one
    // (another tag's, made in the same tick) starts Keystone.
    opts = { ...options };
    checkOptions(opts);
  } catch (e) {
    return release(), Prom.reject(warn(badOptions(e)));
  }
  firstOptions = options;
  globalThis[REGISTRY] = mine = { version: __KEYSTONE_VERSION__, init: (o) => init(o, wasmUrl), evalCondition };
  current = (async () => {
    // The script-tag build: the time and page the snippet (or that script) ran on, those of the
    // page view auto-capture records at start.
    let at = __SCRIPT_TAG__ ? when(landing) : null;
    const af = opts.antiFlicker; // ms (a number, or digits from a tag manager's variable); true, "": 1000; false: none
    const show = () => af !== false && cloak(TYPES.n(af) ? +af : 1000);
    if (__SCRIPT_TAG__) late = opts; // (amend)
    try {
      // A page the browser prerenders (Speculation Rules) may never be opened: the engine loads,
      // but nothing is read, recorded, stored or sent before the visitor opens it; its page view
      // is then timed at the activation, and the anti-flicker phase starts then (a timeout run
      // out unseen would let the page show as authored, then change).
      await Prom.all([loadWasm(wasmUrl), document.prerendering ? new Prom((r) => document.addEventListener("prerenderingchange", r, { once: true })).then(() => show((at = __SCRIPT_TAG__ ? [(shown = Date.now()), location.href, document.title] : null))) : show()]);
    } finally {
      if (__SCRIPT_TAG__) late = null;
    }
    let ks;
    try {
      checkDelivery(opts);
      const prefix = opts.storagePrefix || "ks_"; // null too, as in the engine
      // Personalization refused outright (the visitor's choice, passed at init as the README
      // asks): what an earlier page stored is erased before anything is read, as setConsent()
      // would. "opt-in" is no refusal: the choice is still to come and may keep the profile.
      const c = opts.consent;
      const refused = c && typeof c == "object" && c.personalization === false;
      if (refused) for (const k of ["profile", "aside"]) store(prefix + k);
      stale(prefix, opts.cookieDomain, readCookie(prefix + "fg"));
      const make = async (locked) => {
        const k = prefix + "aid";
        let id = refused ? undefined : readCookie(k, opts.cookieDomain);
        // A first visit: the tab that started a moment before this one holds its new id in the
        // name of a lock, which this tab sees as soon as it holds the profile's lock (that tab's
        // write to storage and to the cookie may reach this tab later, on other channels).
        // (A page without Web Locks, or whose `locks` is not the browser's: none to read.)
        if (locked && !refused && !id)
          try {
            for (const { name } of (await navigator.locks.query()).held) if (name.startsWith(k)) id = name.slice(k.length);
          } catch (_) {}
        const core = newEngine(opts, id);
        core.setContext(toJSON(readContext(undefined, at)));
        return new Instance(core, opts, at, locked);
      };
      // A returning visitor's id is already stored: no lock to wait for (a round trip to the
      // browser), and the changes of this start are written with the next coalesced write. A
      // first visit creates the id under the lock, so tabs starting together agree on one: the
      // first creates and writes it, the others read it. With `cookieDomain` the cookie may
      // replace the stored id, which is an identity change: always under the lock.
      // Without Web Locks (plain http), a lease in storage stands in, unless personalization
      // is not granted from the start (opt-in, or refused): nothing may be stored then.
      ks = !opts.cookieDomain && stored(prefix + "profile") ? await make(false) : await withLock(prefix + "profile", () => make(true), c !== "opt-in" && !refused);
    } catch (e) {
      throw toKeystoneError(e);
    }
    if (opts.segments != null) {
      try {
        await ks.loadSegments(opts.segments);
      } catch (_) {
        // Reported through the error event; init still resolves with a working instance.
      }
    }
    ks._start(at);
    // The script-tag build renders once the calls queued before ready are replayed: an
    // experience is decided (its exposure recorded) in the state and page view they make.
    if (!__SCRIPT_TAG__ || !landing) ks._bind();
    ks._ready();
    return ks;
  })();
  current = current.catch((e) => {
    current = null;
    firstOptions = undefined;
    // A start that failed is no page's Keystone: a later copy starts its own.
    if (globalThis[REGISTRY] === mine) delete globalThis[REGISTRY];
    mine = null;
    release(); // personalized content shows as authored
    throw warn(toKeystoneError(e));
  });
  return current;
}
