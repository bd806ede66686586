// Script-tag build: defines `window.keystone`. Calls made before the engine is ready are queued
// and replayed in order (including those queued on the tag-manager snippet's stub); once ready,
// `window.keystone` answers every call directly. The wasm is loaded from next to this script.
// Settings: `window.keystoneConfig` (auto-init when present) merged with the options of an
// `init` call queued on the stub. A queued call records what it would have recorded when it was
// made: its time and page are noted with it (`c`) and its arguments copied, as the snippet does;
// the page view auto-capture records at start is that of the page the snippet (else this script)
// ran on (`l`).
import { init, amend, evalCondition, KeystoneError, toKeystoneError, warn, badOptions, isPlain, Instance, checkOptions } from "./instance.js";
import { METHODS, PROMISE_METHODS, QUERIES } from "./methods.js";
import { Prom, stringify } from "./sync.js";

(function () {
  // `self`, not `window`: loaded into a Web Worker (`importScripts`), this script defines
  // `self.keystone` too, whose `init` rejects with `unsupported_environment`, instead of throwing.
  const w = self;
  const d = w.document;
  // Next to this script: `currentScript`, or, where there is none (a `<script type="module">`,
  // a script in a shadow root), the URL of the code running now, the first of the stack's (from
  // its scheme: a path may hold `@` or `(`, as a CDN's /pkg@1.2/). The page's URL when neither
  // gives a base (a blob: script).
  let own;
  try {
    own = new URL("keystone_bg.wasm", d.currentScript?.src || new Error().stack.match(/\w+:\/\/\S*?(?=:\d+:\d)/)[0]);
  } catch (_) {}
  const wasmUrl = d && (own || new URL("keystone_bg.wasm", location.href));
  const prior = w.keystone;
  if (prior && prior.__keystone) return; // already loaded
  const queue = prior && Array.isArray(prior.q) ? prior.q.slice() : [];
  const at = () => [Date.now(), location.href, d?.title];
  const landing = prior?.l || at();
  const isAsync = (m) => PROMISE_METHODS.includes(m);
  const R = Symbol.for("keystone-cdp"); // the registry of the copy that runs Keystone (instance.js)
  let instance = null;
  let starting = null;
  let failed = null; // the error of a start that failed, until init is called again

  /** A start failed: the queued Promise calls reject (no caller waits for ever), the others
   * stay queued for the next start, or for another copy of Keystone on the page (a site's
   * bundle): once one runs (now, or when it enters itself in the registry: a setter left there
   * hears it), `window.keystone` answers with it as if it had started first. */
  const fail = (err) => {
    failed = err;
    for (const e of queue.splice(0)) isAsync(e.m) ? e.j(err) : queue.push(e);
    try {
      w[R] ? join() : Object.defineProperty(w, R, { configurable: true, set: (v) => (delete w[R], (w[R] = v), join()) });
    } catch (_) {}
  };
  // (A moment later: the copy entering itself has not finished its init call yet.)
  const join = () => Prom.resolve().then(() => failed && !starting && start(null, failed).catch(() => {}));

  // The snippet's stub is upgraded in place: a reference a page kept to it goes on working.
  const api = prior && typeof prior == "object" && Array.isArray(prior.q) ? prior : {};
  delete api.q;
  delete api.l;
  api.__keystone = true;
  api.KeystoneError = KeystoneError;

  function start(options, join) {
    // After a failed start, `init()` answers with its error; `init(options)` starts afresh.
    if (failed && options == null && !join) return Prom.reject(failed);
    // Started already (from `keystoneConfig`): the options of an `init` made before the engine
    // starts are added to the config's; later, `init` answers with the same instance and warns
    // when the options differ.
    if (starting && options != null) {
      if (!isPlain(options)) return init(options, wasmUrl); // rejects
      try {
        if (!amend(options)) init(options, wasmUrl).catch(() => {});
      } catch (e) {
        return Prom.reject(warn(badOptions(e)));
      }
    }
    if (!starting) {
      // A bad option rejects this init alone: the next one starts (two tags, the first one's
      // option mistyped).
      try {
        isPlain(options) && checkOptions({ ...options });
      } catch (e) {
        fail((e = warn(badOptions(e))));
        return Prom.reject(e);
      }
      failed = null;
      starting = init(options, wasmUrl, landing, join).then(
        (ks) => {
          instance = ks;
          // Replay in order, each call as made when and where it was; a call made while
          // replaying goes straight to the instance. Then the context is the page's as it is now.
          // The instance of another copy of Keystone already running on the page (a site's
          // bundle) recorded its own start and renders the page: the calls are made on it as
          // they come.
          const own = ks instanceof Instance;
          // (The inits queued on the stub were made at the start: below.)
          for (const e of queue.splice(0)) settle(e, () => (own ? ks._at(e.c, () => ks[e.m](...e.a)) : ks[e.m](...e.a)));
          if (own) ks._at(), ks._bind();
          return ks;
        },
        (err) => {
          starting = null;
          fail(err);
          throw err;
        },
      );
    }
    return starting;
  }

  function settle(e, fn) {
    let out;
    try {
      out = fn();
    } catch (_) {}
    Prom.resolve(out).then(e.r, (err) => (isAsync(e.m) ? e.j(err) : e.r(undefined)));
  }

  for (const m of METHODS) {
    api[m] = function (...args) {
      if (m === "init") return start(args[0]);
      if (m === "evalCondition") return evalCondition(...args);
      if (instance) {
        try {
          const out = instance[m](...args);
          return out === instance ? api : out; // on/off chain on window.keystone, before and after ready
        } catch (e) {
          // Never into the page (e.g. a method this build's instance lacks).
          const err = toKeystoneError(e);
          return isAsync(m) ? Prom.reject(err) : undefined;
        }
      }
      // Queries before ready answer the empty state (and are not replayed: a decide() the page
      // could not act on records no exposure).
      if (QUERIES.includes(m)) return m === "segments" ? [] : m === "inSegment" ? false : null;
      // After a failed start, a Promise call rejects with its error; the others are queued.
      if (failed && isAsync(m)) return Prom.reject(failed);
      // Object literals as they are now (their JSON, what the call would record): the page may
      // change an object it passed before the replay (one without prototype too). Anything
      // else is kept as given. (`stringify`: without a Prototype.js `Array.prototype.toJSON`,
      // which would turn the arrays into strings.)
      for (let n = 0, o; n < args.length; n++)
        try {
          o = Object.getPrototypeOf(args[n]);
          if (!o || o == Object.prototype) args[n] = JSON.parse(stringify(args[n]));
        } catch (_) {}
      const entry = { m, a: args, c: at() };
      const p = new Prom((r, j) => {
        entry.r = r;
        entry.j = j;
      });
      queue.push(entry);
      return isAsync(m) ? p : m === "on" || m === "off" ? api : undefined;
    };
  }
  w.keystone = api;

  const cfg = w.keystoneConfig && typeof w.keystoneConfig === "object" ? w.keystoneConfig : null;
  // The start's own init: the first one queued with options (or none) that pass the check with
  // the config's; one given no object, or a bad option, before it rejects alone, below (else the
  // start failed with it, and every init after it: the order two tags fire in decided). When
  // none passes, the first, which rejects with its error.
  const merge = (e) => {
    const o = Object.assign({}, cfg, e?.a[0]);
    delete o.src;
    return o;
  };
  const inits = queue.filter((e) => e.m === "init" && (e.a[0] == null || isPlain(e.a[0])));
  const queued =
    inits.find((e) => {
      try {
        return checkOptions(merge(e)), true;
      } catch (_) {}
    }) || inits[0];
  if (queued) queue.splice(queue.indexOf(queued), 1);
  if (queued || cfg) {
    let p;
    try {
      p = start(merge(queued));
    } catch (e) {
      // Options that throw when read (a getter, a Proxy): the queued init rejects, the page goes on.
      fail(warn(badOptions(e)));
      p = Prom.reject(failed);
    }
    if (queued) p.then(queued.r, queued.j);
    else p.catch(() => {});
  }
  // The other inits queued on the stub, made now as they would be once this script runs: each
  // adds its options to the start's (`amend`, checked alone: a bad option rejects that init
  // only), or rejects when given no object.
  for (let j = 0, e; (e = queue[j]); ) e.m === "init" ? (queue.splice(j, 1), settle(e, () => start(e.a[0]))) : j++;
})();
