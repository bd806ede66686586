// Script-tag build: defines `window.keystone`. Calls made before the engine is ready are queued
// and replayed in order (including those queued on the tag-manager snippet's stub); once ready,
// `window.keystone` answers every call directly. The wasm is loaded from next to this script.
import { init, evalCondition, KeystoneError } from "./instance.js";
import { METHODS, PROMISE_METHODS } from "./methods.js";

(function () {
  const w = window;
  const script = document.currentScript;
  const base = (script && script.src) || location.href;
  const wasmUrl = new URL("keystone_bg.wasm", base);
  const prior = w.keystone;
  if (prior && prior.__keystone) return; // already loaded
  const queue = prior && Array.isArray(prior.q) ? prior.q.slice() : [];
  let instance = null;
  let starting = null;

  const api = { __keystone: true, KeystoneError };

  function start(options) {
    if (!starting) {
      starting = init(options, wasmUrl).then(
        (ks) => {
          instance = ks;
          replay();
          return ks;
        },
        (e) => {
          starting = null;
          // Settle what was queued so no caller waits forever.
          const pending = queue.splice(0);
          for (const e2 of pending) if (e2.j && PROMISE_METHODS.includes(e2.m)) e2.j(e);
          throw e;
        },
      );
    }
    return starting;
  }

  function replay() {
    while (queue.length) {
      const e = queue.shift();
      settle(e, () => (e.m === "init" ? instance : instance[e.m](...e.a)));
    }
  }

  function settle(e, fn) {
    let out;
    try {
      out = fn();
    } catch (err) {
      out = undefined;
    }
    Promise.resolve(out).then(
      (v) => e.r && e.r(v),
      (err) => (e.j && PROMISE_METHODS.includes(e.m) ? e.j(err) : e.r && e.r(undefined)),
    );
  }

  for (const m of METHODS) {
    api[m] = function () {
      const args = Array.prototype.slice.call(arguments);
      if (m === "init") return start(args[0]);
      if (m === "evalCondition") return evalCondition.apply(null, args);
      if (instance) return instance[m].apply(instance, args);
      const entry = { m, a: args };
      const p = new Promise((r, j) => {
        entry.r = r;
        entry.j = j;
      });
      queue.push(entry);
      if (PROMISE_METHODS.includes(m)) return p;
      p.catch(() => {});
      // Synchronous answers before ready: the empty state.
      return m === "segments" ? [] : m === "inSegment" ? false : m === "on" || m === "off" ? api : m === "track" || m === "page" ? undefined : null;
    };
  }
  w.keystone = api;

  // Settings: window.keystoneConfig (the snippet's), or an init queued on the stub.
  const queuedInit = queue.findIndex((e) => e.m === "init");
  const cfg = w.keystoneConfig;
  if (queuedInit >= 0) {
    const e = queue.splice(queuedInit, 1)[0];
    start(e.a[0]).then(e.r, e.j);
  } else if (cfg && typeof cfg === "object") {
    const opts = Object.assign({}, cfg);
    delete opts.src;
    start(opts).catch(() => {});
  }
})();
