// The demo's instrumentation for the debug panel (not part of Keystone): a live stream of what
// the shop asks of Keystone and what Keystone reports back, and every batch that leaves for the
// collector (fetch and sendBeacon to /v1/batch, with the collector's answer).
const MAX = 200;

export function recorder() {
  const stream = []; // {at, kind: "call" | "notice", name, detail}
  const outbound = []; // {at, via, events, status}
  const listeners = new Set();
  const notify = () => {
    for (const fn of listeners) fn();
  };
  const push = (list, item) => {
    list.push(item);
    if (list.length > MAX) list.shift();
    notify();
  };
  const batchOf = (body) => {
    try {
      return JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body)).batch || [];
    } catch (_) {
      return [];
    }
  };
  const isBatch = (url) => /\/v1\/batch$/.test(new URL(String(url), location.href).pathname);

  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = input instanceof Request ? input.url : input;
    const p = fetch0.apply(this, arguments);
    if (isBatch(url) && init && init.body) {
      const item = { at: Date.now(), via: "fetch", events: batchOf(init.body), status: "pending" };
      push(outbound, item);
      p.then(
        (r) => ((item.status = r.status), notify()),
        () => ((item.status = "failed"), notify()),
      );
    }
    return p;
  };
  if (navigator.sendBeacon) {
    const beacon0 = navigator.sendBeacon.bind(navigator);
    navigator.sendBeacon = (url, data) => {
      const ok = beacon0(url, data);
      if (isBatch(url) && typeof data === "string") push(outbound, { at: Date.now(), via: "beacon", events: batchOf(data), status: ok ? "queued by browser" : "refused" });
      return ok;
    };
  }

  return {
    stream,
    outbound,
    onChange: (fn) => (listeners.add(fn), () => listeners.delete(fn)),
    /** Wraps the instance's calls and listens to its notifications. */
    attach(ks) {
      for (const m of ["page", "track", "identify", "reset", "setTraits", "setConsent", "forget", "loadSegments", "flush", "refresh", "decide"]) {
        const fn = ks[m];
        if (typeof fn !== "function") continue;
        ks[m] = function (...args) {
          push(stream, { at: Date.now(), kind: "call", name: m, detail: args });
          return fn.apply(ks, args);
        };
      }
      for (const n of ["segment:enter", "segment:exit", "identify", "reset", "error"]) {
        ks.on(n, (payload) => push(stream, { at: Date.now(), kind: "notice", name: n, detail: n === "error" ? { code: payload.code, message: payload.message } : payload }));
      }
    },
  };
}
