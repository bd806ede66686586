// Declarative personalization (DESIGN §7): elements carrying `data-keystone-show`,
// `data-keystone-hide` or `data-keystone-text` follow the visitor's segments and profile, live.
// - show/hide toggle the `hidden` attribute and an inline `display: none !important` (whatever
//   the site CSS);
// - text fills `textContent` from a profile path (never HTML);
// - anti-flicker: until the first evaluation (`html.keystone-ready`) personalized elements are
//   invisible; a CSS animation reveals them after the timeout even if no script ever runs, so a
//   failure never hides content for good. Sites inline the same rule in <head> (see README).
// Further attributes (e.g. `data-keystone-experience`) plug in through `handlers`.

/** Attributes that mark a personalized element (kept invisible until the first evaluation). */
export const ATTRS = ["show", "hide", "text", "experience"].map((a) => "data-keystone-" + a);
const SEL = ATTRS.map((a) => "[" + a + "]").join();
const READY = "keystone-ready";

/** The anti-flicker style; `ms` is how long content may stay hidden if Keystone never answers. */
export const cloakCss = (ms) =>
  `html:not(.${READY}) :is(${SEL}){visibility:hidden;animation:keystone-reveal 0s ${ms}ms forwards}@keyframes keystone-reveal{to{visibility:visible}}:is(${SEL})[hidden]{display:none!important}`;

/** A value at a dot path of the profile document ("traits.firstName"). */
const at = (doc, path) => path.split(".").reduce((v, k) => (v != null && typeof v == "object" ? v[k] : undefined), doc);

const authored = new WeakMap(); // data-keystone-text elements → their authored text
// Hidden also inline (`display: none !important`): the anti-flicker sheet's rule for [hidden] is
// not there with `antiFlicker: false`, and site CSS such as `.banner{display:flex}` would win.
// An authored inline `display` (even `!important`) is kept aside while hidden, then restored.
const authoredDisplay = new WeakMap();
const hide = (el, hidden) => {
  if (el.hidden != hidden) el.hidden = hidden;
  const s = el.style;
  const important = s.getPropertyPriority("display");
  if (hidden) {
    if (s.display != "none" || !important) {
      // (An authored `display: none` is the author's way of hiding it until Keystone decides.)
      if (!authoredDisplay.has(el)) authoredDisplay.set(el, s.display == "none" ? ["", ""] : [s.display, important]);
      s.setProperty("display", "none", "important");
    }
  } else if (authoredDisplay.has(el)) {
    const [value, priority] = authoredDisplay.get(el);
    authoredDisplay.delete(el);
    value ? s.setProperty("display", value, priority) : s.removeProperty("display");
  } else if (important && s.display == "none") s.removeProperty("display");
};
// Shown when in the `show` segment (if any) and not in the `hide` segment (if any): both
// attributes on one element both apply.
const visibility = (ks, el) => {
  const show = el.getAttribute("data-keystone-show");
  const not = el.getAttribute("data-keystone-hide");
  hide(el, (show != null && !ks.inSegment(show)) || (not != null && ks.inSegment(not)));
};

/**
 * Renderers by attribute: `(ks, element, attributeValue, state) => void`, where `state.profile()`
 * returns the profile document once per pass. Add an entry to make a new attribute declarative.
 */
export const handlers = {
  "data-keystone-show": visibility,
  "data-keystone-hide": visibility,
  "data-keystone-text": (ks, el, path, state) => {
    if (!authored.has(el)) authored.set(el, el.textContent);
    const v = at(state.profile(), path);
    // Missing or structured values show the author's text (again, e.g. after reset()).
    const t = v != null && typeof v != "object" ? String(v) : authored.get(el);
    if (el.textContent !== t) el.textContent = t;
  },
};

/** Injects the anti-flicker style (constructable stylesheet: not subject to CSP style-src). */
export function cloak(ms = 1000) {
  const d = document;
  if (d.documentElement.classList.contains(READY) || d.__ksCloak) return;
  d.__ksCloak = 1;
  try {
    const s = new CSSStyleSheet();
    s.replaceSync(cloakCss(ms));
    d.adoptedStyleSheets = [...d.adoptedStyleSheets, s];
  } catch (_) {
    const s = d.createElement("style");
    s.textContent = cloakCss(ms);
    d.head.appendChild(s);
  }
}

/** Ends the anti-flicker phase (also after a failure: content shows as authored). */
export const release = () => document.documentElement.classList.add(READY);

/** Renders every personalized element now. */
export function render(ks) {
  let doc;
  const state = { profile: () => doc || (doc = ks.profile() || {}) };
  for (const el of document.querySelectorAll(SEL)) {
    for (const a of ATTRS) {
      const v = el.getAttribute(a);
      if (v != null && handlers[a]) {
        try {
          handlers[a](ks, el, v, state);
        } catch (_) {}
      }
    }
  }
}

/**
 * Binds the document to an instance: renders now, then again (once per microtask) when the
 * instance reports a change and when personalized elements are added or their attributes change.
 * Returns the function that schedules a render.
 */
export function bind(ks) {
  let queued = false;
  const schedule = () => {
    if (!queued) {
      queued = true;
      queueMicrotask(() => {
        queued = false;
        render(ks);
      });
    }
  };
  // Observing before the first render: what it inserts (a decided experience's template holding
  // `data-keystone-text`) is rendered too, in a microtask, before the page is painted.
  new MutationObserver((list) => {
    for (const m of list) {
      if (m.type == "attributes") return schedule();
      for (const n of m.addedNodes) if (n.nodeType == 1 && (n.matches(SEL) || n.querySelector(SEL))) return schedule();
    }
  }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ATTRS });
  render(ks);
  release();
  return schedule;
}
