// Auto-capture (README "Signals and the visitor profile"): page views incl. SPA navigation,
// clicks on [data-keystone-track], scroll depth milestones and engaged time, each switchable
// through the `autoCapture` option. Everything goes through the public API (`page`, `track`),
// so consent and error handling apply as for the site's own calls.

const IDLE_MS = 30000; // without input for this long, the visitor is no longer engaged

// Attribute values: integers/decimals become numbers when a number holds them exactly (not a long
// id), "true"/"false" booleans, the rest stays text.
const coerce = (v) => (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(v) && "" + +v == (v.includes(".") ? v.replace(/\.?0+$/, "") : v) ? +v : v == "true" ? true : v == "false" ? false : v);

// `start`: the URL of the page the view at start is recorded for (the snippet's landing page);
// returns the navigation check, run again once the calls queued before ready are replayed.
export function startCapture(ks, options, start) {
  const ac = options.autoCapture;
  const on = (k) => ac !== false && !(ac && ac[k] === false);
  const hash = ac?.hashChange === true;
  const doc = document;
  const listen = (t, f, target = window) => target.addEventListener(t, f, { passive: true, capture: true });

  // ---- engaged time: visible and active (input within IDLE_MS) -------------------------------
  // Engaged until IDLE_MS after the last input (`at`), also when the idle timer runs late (a
  // device asleep).
  let engaged = 0, since = 0, idle = 0, at = 0;
  const pause = () => {
    if (since) engaged += Math.min(Date.now(), at + IDLE_MS) - since;
    since = 0;
    clearTimeout(idle);
  };
  const active = () => {
    if (doc.visibilityState != "visible") return;
    if (Date.now() - at > IDLE_MS) pause();
    clearTimeout(idle);
    since ||= Date.now();
    at = Date.now();
    idle = setTimeout(pause, IDLE_MS);
  };
  const seconds = () => {
    pause();
    const s = Math.round(engaged / 1000);
    engaged = 0;
    return s;
  };
  const report = (s) => (s = seconds()) && ks.track("Page Engagement", { seconds: s });

  // ---- scroll depth: 25/50/75/100 % of the scrollable height, once each per page view --------
  let reached = 0;
  const scroll = () => {
    const range = doc.documentElement.scrollHeight - innerHeight;
    const pct = range > 0 ? ((scrollY + 1) / range) * 100 : 0;
    while (reached < 100 && pct >= reached + 25) ks.track("Scroll Depth", { depth: (reached += 25) });
  };

  // ---- page views and SPA navigation -----------------------------------------------------------
  const key = (u = location.href) => (hash ? u : u.split("#")[0]);
  let last = key(start), lastUrl = start, pending;
  // A navigation is recorded a task later, when the router has set the new page's title
  // (`pushState`, then `document.title`), or at once when Keystone is called before (by the
  // site, the page being hidden, another navigation), so nothing made on the new page comes
  // before its view.
  const flush = () => {
    const p = pending;
    pending = 0;
    p && p();
  };
  Object.defineProperty(ks, "_nav", { value: flush }); // (not one of the instance's own keys)
  const nav = () => {
    if (key() == last) return; // a no-op replaceState, a hash-only change, a repeated popstate
    flush();
    last = key();
    const referrer = lastUrl;
    lastUrl = location.href;
    // The page left's engaged time (with its context), then the new page's context and view.
    const e = on("engagement"), s = e && seconds();
    // (Or at the next frame, if that comes first: before it is painted, so that what the page
    // keeps across routes, a banner on `context.path`, never shows the last route's state.)
    if (e || on("pageViews")) {
      pending = () => ks._navigated(referrer, s, on("pageViews"));
      setTimeout(flush);
      try {
        requestAnimationFrame(flush);
      } catch (_) {}
    }
    if (e) active();
    reached = 0;
  };

  if (on("pageViews")) ks._navigated(undefined, 0, 1);
  // (A page that froze `history` keeps its own: navigations are then seen on popstate only, and
  // the rest of auto-capture below still starts.)
  for (const m of ["pushState", "replaceState"]) {
    const orig = history[m];
    try {
      history[m] = function () {
        flush(); // (read on the page it was made on)
        const r = orig.apply(this, arguments);
        try {
          nav();
        } catch (_) {}
        return r;
      };
    } catch (_) {}
  }
  listen("popstate", nav);
  if (hash) listen("hashchange", nav);
  // A click on a label is also dispatched to its control: one click, one event.
  let skip = null;
  if (on("clicks"))
    listen(
      "click",
      (e) => {
        const t = e.target, el = t.closest?.("[data-keystone-track]");
        if (t == skip || !el) return;
        const c = (t.closest("label") || 0).control;
        if (c && !c.contains(t)) (skip = c), setTimeout(() => (skip = null));
        const props = {};
        // data-keystone-prop-product-id → dataset.keystonePropProductId → productId
        for (const k in el.dataset) if (k.length > 12 && k.startsWith("keystoneProp")) props[k[12].toLowerCase() + k.slice(13)] = coerce(el.dataset[k]);
        ks.track(el.dataset.keystoneTrack, props);
      },
      doc,
    );
  if (on("scroll")) listen("scroll", scroll);
  if (on("engagement")) {
    // The visitor's input only: not the page's own scrolling or focusing (a carousel).
    for (const t of "pointerdown keydown wheel mousemove touchstart".split(" ")) listen(t, active);
    listen("visibilitychange", () => (doc.visibilityState == "visible" ? active() : report()), doc);
    listen("pagehide", report);
    active();
  }
  // (The script-tag build, once the queued calls are replayed: `from`, the page those calls
  // last left, is the referrer of a navigation made meanwhile, not the landing page.)
  return __SCRIPT_TAG__
    ? (from) => {
        if (from) lastUrl = from;
        nav();
      }
    : nav;
}
