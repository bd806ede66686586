// Auto-capture (README "Auto-capture"): page views incl. SPA navigation, clicks on
// [data-keystone-track], scroll depth milestones and engaged time, each switchable through the
// `autoCapture` option. Everything goes through the public API (`page`, `track`), so consent
// and error handling apply as for the site's own calls.

const IDLE_MS = 30000; // without input for this long, the visitor is no longer engaged
const MILESTONES = [25, 50, 75, 100];

// Attribute values: integers/decimals become numbers, "true"/"false" booleans, the rest stays text.
const coerce = (v) => (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(v) ? Number(v) : v === "true" ? true : v === "false" ? false : v);

export function startCapture(ks, options) {
  const ac = options.autoCapture;
  const on = (k) => ac !== false && !(ac && ac[k] === false);
  const hash = !!(ac && ac.hashChange === true);
  const doc = document;
  const now = () => Date.now();

  // ---- engaged time: visible and active (input within IDLE_MS) -------------------------------
  let engaged = 0, since = 0, idle = 0;
  const pause = () => {
    if (since) engaged += now() - since;
    since = 0;
    clearTimeout(idle);
  };
  const active = () => {
    if (doc.visibilityState !== "visible") return;
    if (!since) since = now();
    clearTimeout(idle);
    idle = setTimeout(pause, IDLE_MS);
  };
  const report = () => {
    pause();
    const seconds = Math.round(engaged / 1000);
    engaged = 0;
    if (seconds > 0) ks.track("Page Engagement", { seconds });
  };

  // ---- scroll depth ----------------------------------------------------------------------------
  let reached = 0;
  const scroll = () => {
    const range = doc.documentElement.scrollHeight - innerHeight;
    if (range <= 0) return;
    const pct = ((scrollY + 1) / range) * 100;
    for (const m of MILESTONES) if (pct >= m && m > reached) ks.track("Scroll Depth", { depth: (reached = m) });
  };

  // ---- page views and SPA navigation -----------------------------------------------------------
  const key = () => (hash ? location.href : location.href.split("#")[0]);
  let last = key();
  let lastUrl = location.href;
  const nav = () => {
    const k = key();
    if (k === last) return; // a no-op replaceState, a hash-only change, a repeated popstate
    last = k;
    const referrer = lastUrl;
    lastUrl = location.href;
    if (on("engagement")) {
      report();
      active();
    }
    reached = 0;
    if (on("pageViews")) ks._navigated(referrer);
  };

  if (on("pageViews")) ks.page();
  if (on("pageViews") || on("scroll") || on("engagement")) {
    for (const m of ["pushState", "replaceState"]) {
      const orig = history[m];
      history[m] = function () {
        const r = orig.apply(this, arguments);
        try {
          nav();
        } catch (_) {}
        return r;
      };
    }
    addEventListener("popstate", nav);
    if (hash) addEventListener("hashchange", nav);
  }
  if (on("clicks")) {
    doc.addEventListener(
      "click",
      (e) => {
        const el = e.target && e.target.closest && e.target.closest("[data-keystone-track]");
        if (!el) return;
        const props = {};
        for (const [k, v] of Object.entries(el.dataset)) {
          // data-keystone-prop-product-id → dataset.keystonePropProductId → productId
          if (k.length > 12 && k.startsWith("keystoneProp")) props[k[12].toLowerCase() + k.slice(13)] = coerce(v);
        }
        ks.track(el.dataset.keystoneTrack, props);
      },
      true,
    );
  }
  if (on("scroll")) addEventListener("scroll", scroll, { passive: true });
  if (on("engagement")) {
    for (const t of ["pointerdown", "keydown", "scroll", "mousemove", "touchstart", "focus"]) addEventListener(t, active, { passive: true, capture: true });
    doc.addEventListener("visibilitychange", () => (doc.visibilityState === "visible" ? active() : report()));
    addEventListener("pagehide", report);
    active();
  }
}
