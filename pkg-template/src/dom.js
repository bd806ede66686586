// Declarative personalization (DESIGN §7): elements carrying `data-keystone-show`,
// `data-keystone-hide` or `data-keystone-text` follow the visitor's segments and profile, live.
// - show/hide toggle the `hidden` attribute and an inline `display: none !important` (whatever
//   the site CSS);
// - text fills `textContent` from a profile path (never HTML);
// - anti-flicker: until the first evaluation (`html.keystone-ready`) personalized elements are
//   invisible; a CSS animation reveals them after the timeout even if no script ever runs, so a
//   failure never hides content for good. Sites inline the same rule in <head> (see README).
// Further attributes (e.g. `data-keystone-experience`) plug in through `handlers`.
import { micro } from "./sync.js";

/** Attributes that mark a personalized element (kept invisible until the first evaluation). */
export const ATTRS = ["show", "hide", "text", "experience"].map((a) => "data-keystone-" + a);
const SEL = ATTRS.map((a) => "[" + a + "]").join();
const READY = "keystone-ready";

/** The anti-flicker style; `ms` is how long content may stay hidden if Keystone never answers. */
export const cloakCss = (ms) =>
  `html:not(.${READY}) :is(${SEL}){visibility:hidden;animation:keystone-reveal 0s ${ms}ms forwards}@keyframes keystone-reveal{to{visibility:visible}}:is(${SEL})[hidden]{display:none!important}`;

/** A value at a dot path of the profile document ("traits.firstName"): own fields only, as
 * conditions read paths (an unset `traits.toString` is missing, not Object's method). */
const at = (doc, path) => path.split(".").reduce((v, k) => (v != null && typeof v == "object" && Object.hasOwn(v, k) ? v[k] : undefined), doc);

// Hidden also inline (`display: none !important`): the anti-flicker sheet's rule for [hidden] is
// not there with `antiFlicker: false`, and site CSS such as `.banner{display:flex}` would win.
// Keystone only ever puts back what it overwrote: `authored` holds, per show/hide element, its
// inline display, its priority and its `hidden` as authored, then what Keystone last wrote (4th);
// a value the page set since (it differs from what Keystone wrote) is the authored one from then
// on. Shown: the authored display (even `!important`), but for a `display: none` in the markup
// at the first render, which is the author's way of hiding it until Keystone decides (5th: the
// display was set by the page since, e.g. Vue's `v-show` or jQuery's `.hide()`: kept). The same
// for `hidden`: authored in the markup, it is removed when shown; set by the page since (a
// dismissed banner), kept (6th).
const authored = new WeakMap();
const now = (el, s = el.style) => [s.display, s.getPropertyPriority("display"), el.hidden];
const put = (el, [v, p, h]) => ((el.hidden = h), v ? el.style.setProperty("display", v, p) : el.style.removeProperty("display"));
const hide = (el, hidden) => {
  const cur = now(el);
  let d = authored.get(el);
  if (d) for (const i of [0, 1, 2]) cur[i] !== d[3][i] && ((d[i] = cur[i]), (d[4 + i / 2] = 1));
  else authored.set(el, (d = cur));
  const want = hidden ? ["none", "important", true] : d[0] == "none" && !d[4] ? ["", "", !!d[5] && d[2]] : [d[0], d[1], !!d[5] && d[2]];
  if (want + "" != cur + "") put(el, want);
  d[3] = want;
};
// Shown when in the `show` segment (if any) and not in the `hide` segment (if any): both
// attributes on one element both apply.
const visibility = (ks, el, _, state) => {
  if (covers.has(el)) return; // hidden by its experience container (below)
  const show = el.getAttribute(ATTRS[0]);
  const not = el.getAttribute(ATTRS[1]);
  hide(el, (show != null && !state.in(show)) || (not != null && state.in(not)));
};

// The authored children of an experience container (any but the variants' templates and
// Keystone's clone) are hidden while a variant shows, never taken out: a framework keeps its
// nodes, and throws on one no longer in the container (React removing a conditional fallback,
// Vue inserting before it). An element is hidden as show/hide hide one, whatever its own
// show/hide says meanwhile, and shown again as it was (then as its show/hide says); a text node
// is emptied, and its text put back (unless the page wrote some since).
const covers = new WeakMap(); // element → [hidden, display, priority] before it was hidden; text node → its text
export const cover = (ks, c, on, p = covers.get(c)) => {
  if (c.nodeType == 1) {
    if (on) {
      p || covers.set(c, [c.style.display, c.style.getPropertyPriority("display"), c.hidden]);
      put(c, ["none", "important", true]);
    } else if (p) {
      covers.delete(c);
      // (What the page set since Keystone hid it, a framework's `hidden` or `v-show`, stays.)
      put(c, now(c).map((v, i) => (v === ["none", "important", true][i] ? p[i] : v)));
      (c.hasAttribute(ATTRS[0]) || c.hasAttribute(ATTRS[1])) && visibility(ks, c, 0, { in: (id) => ks.inSegment(id) });
    }
  } else if (c.nodeType == 3)
    if (on) c.data && (covers.set(c, c.data), (c.data = ""));
    else if (p != null) (c.data ||= p), covers.delete(c);
};

// Text: Keystone only ever puts back what it overwrote. `wrote` holds, while Keystone's text is
// shown, [the text it replaced, the text it wrote, whether the body was streaming, the child
// nodes it replaced]; the page's own text (arriving later while the body streams, or changed by
// the page since, e.g. by an i18n script) is never replaced by an older one. What comes back is
// the authored nodes themselves, kept aside (`there <b>friend</b>` keeps its `<b>`): no markup is
// ever made from a string.
const wrote = new WeakMap();
const text = (el, t) => {
  const cur = el.textContent;
  let w = wrote.get(el);
  // Written while the body streamed (w[2]), the parser then appended the rest of the authored
  // content after Keystone's text (its first characters into Keystone's own text node, split
  // off here): it belongs to the authored content.
  if (w && cur !== w[1])
    if (w[2] && cur.startsWith(w[1])) el.firstChild.splitText?.(w[1].length), (w[0] += cur.slice(w[1].length)), w[3].push(...[...el.childNodes].slice(1));
    else w = 0; // changed by the page since Keystone wrote: the authored content now
  if (t == null) {
    wrote.delete(el);
    // (Compared by node, not text: Keystone's last text may equal the authored text.)
    if (w && el.firstChild !== w[3][0]) el.replaceChildren(...w[3]);
  } else {
    wrote.set(el, [w ? w[0] : cur, t, document.readyState == "loading", w ? w[3] : [...el.childNodes]]);
    if (cur !== t) el.textContent = t;
  }
};

/** An element that lost its attributes is as authored again (called for attribute changes). */
const lost = (el) => {
  const d = authored.get(el);
  // (What the page set since Keystone last wrote stays.)
  if (d && !el.hasAttribute(ATTRS[0]) && !el.hasAttribute(ATTRS[1])) authored.delete(el), put(el, now(el).map((v, i) => (v === d[3][i] ? d[i] : v)));
  if (!el.hasAttribute(ATTRS[2])) text(el, null);
};

/**
 * Renderers by attribute: `(ks, element, attributeValue, state) => void`, where `state.profile()`
 * returns the profile document and `state.in(id)` the membership, read once per pass, and
 * `state.text(path)` the text a path shows. Add an entry to make a new attribute declarative
 * (a pass after a change renders the elements of the segments and paths that changed, and the
 * experiences).
 */
export const handlers = {
  [ATTRS[0]]: visibility,
  [ATTRS[1]]: visibility,
  [ATTRS[2]]: (ks, el, path, state) => text(el, state.text(path)),
};

// What a path shows: missing, empty or structured values show the authored text (again, e.g.
// after reset()), as does every value while personalization consent is refused (§6).
const textOf = (d, path, v = at(d, path)) =>
  v != null && v !== "" && typeof v != "object" && !(d.consent?.personalization === false) ? String(v) : null;

/** Injects the anti-flicker style for `ms` at most (constructable stylesheet: not subject to CSP
 * style-src). */
export function cloak(ms) {
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

/** Ends the anti-flicker phase (also after a failure: content shows as authored), for good: a
 * framework that sets `<html>`'s className (a React root layout's theme) would take the class
 * away, and every personalized element would be invisible again until the cloak's timeout. */
// (`toggle(READY, 1)`, forced on, writes nothing when the class is there: the observer does not
// wake itself. Called twice, by a failure after the first render, it leaves two observers: harmless.)
export const release = (h = document.documentElement, on = () => h.classList.toggle(READY, 1)) =>
  new MutationObserver(on).observe(h, { attributes: on() });

/**
 * Binds the document to an instance: renders now, then again (once per microtask) when the
 * instance reports a change and when personalized elements are added or their attributes change.
 * Returns the function that schedules a render after a change.
 *
 * A pass touches only what may have changed (a busy page re-rendering a list, or a track() with
 * thousands of personalized elements, costs no walk of the whole document): after a change, the
 * elements naming a segment entered or left, those showing a profile path whose text changed and
 * the experiences; after mutations, the added subtrees and the elements whose attributes changed.
 */
export function bind(ks) {
  let queued = false,
    n = 0,
    changed = 1,
    last = [];
  const html = document.documentElement,
    paths = new Map(), // data-keystone-text path → its text at the last pass
    roots = new Set([html]); // subtrees to render, and [element] for an element alone
  const run = () => {
    queued = false;
    let doc, segs, w;
    const seen = new Set();
    const get = () => (segs ||= ks.segments());
    const state = {
      profile: () => (doc ||= ks.profile() || {}),
      in: (id) => get().includes(id),
      text: (p, v = textOf(state.profile(), p)) => (paths.has(p) || paths.set(p, v), v),
    };
    const visit = (el) => {
      // (Not inside a template: React and Vue render a template's children into the element,
      // where the page's queries find them; a variant not shown is inert, as the parser's is.)
      if (seen.has(el) || el.closest("template")) return;
      seen.add(el);
      for (const a of ATTRS) {
        const v = el.getAttribute(a);
        if (v != null && handlers[a]) {
          try {
            handlers[a](ks, el, v, state);
          } catch (_) {}
        }
      }
    };
    const each = (sel, root = document, f = visit) => root.querySelectorAll(sel).forEach(f);
    if (changed)
      try {
        changed = 0;
        const gone = new Set(),
          texts = new Set();
        get();
        for (const id of [...last, ...segs]) last.includes(id) != segs.includes(id) && gone.add(id);
        last = segs;
        // A path no element shows any longer is forgotten, looked for when there are many (a
        // list whose paths hold an index or an id had every past path read at each pass).
        if (paths.size > 64) {
          const shown = new Set();
          each("[" + ATTRS[2] + "]", document, (el) => shown.add(el.getAttribute(ATTRS[2])));
          for (const p of paths.keys()) shown.has(p) || paths.delete(p);
        }
        // (The new text is kept here, not when an element shows it: the segments' elements, just
        // rendered, may be all that show it, and are not rendered twice in a pass.)
        for (const [p, v] of paths) (w = textOf(state.profile(), p)) !== v && (paths.set(p, w), texts.add(p));
        // One query of the personalized elements, those to render picked by their values (a
        // query by value per segment entered or left and per path changed walked the whole
        // document each time: 49 segments flipped by one `setTraits` on a page of 35,000 nodes
        // took up to 390 ms); the experiences alone when no segment or text changed.
        const els = document.querySelectorAll(gone.size || texts.size ? SEL : "[" + ATTRS[3] + "]");
        for (const el of els) (gone.has(el.getAttribute(ATTRS[0])) || gone.has(el.getAttribute(ATTRS[1])) || texts.has(el.getAttribute(ATTRS[2]))) && visit(el);
        // The experiences last.
        for (const el of els) el.hasAttribute(ATTRS[3]) && visit(el);
      } catch (_) {
        roots.add(html);
      }
    for (const r of roots) r.pop ? r[0].isConnected && visit(r[0]) : r.isConnected && (r.matches(SEL) && visit(r), each(SEL, r));
    roots.clear();
  };
  const schedule = () => {
    if (!queued) {
      queued = true;
      // A page script that undoes each render by re-rendering the element (which Keystone then
      // renders again) would loop in microtasks and freeze the page: past 20 renders in one
      // task, the next waits 100 ms, so the page's own tasks run and the tug of war is slowed.
      // The count is reset by a timer (the next task) set at the 8th render since the last
      // reset, not at each: a timer per render cost each call that changes the profile in a
      // task of its own (a click, a navigation) ≈ 15 µs. (A task may then start with up to 7
      // renders counted: a loop is slowed from its 14th to 21st render.)
      // A change made while the page handles a click (on a tracked button in a variant) renders
      // a task later: the click's default action (a form's submission) comes first, on the
      // elements it was dispatched to, which the render may replace. (Not for any event: a
      // framework's scheduler runs its renders in `message` events, and must not see a frame
      // painted in between.)
      ++n == 8 && setTimeout(() => (n = 0));
      (n > 20 || self.event?.type == "click" ? setTimeout : micro)(run, n > 20 && 100);
    }
  };
  // Observing before the first render: what it inserts (a decided experience's template holding
  // `data-keystone-text`) is rendered too, in a microtask, before the page is painted.
  // An experience container's own children changing (a template streamed in or appended, children
  // replaced by a framework) re-renders it; its renderer leaves a container it is done with alone.
  // A data-keystone-text element whose text the page puts back to the very text Keystone replaced
  // (a framework hydrating or re-rendering its own markup: Vue and Preact rewrite the server's
  // text) is filled again; other text the page sets stays (see `text`).
  new MutationObserver((list) => {
    for (const { type, target, addedNodes } of list) {
      const el = type == "characterData" ? target.parentNode : target;
      // (An element whose attributes changed is rendered alone: what the page changed since in
      // the personalized elements inside it stays, as their outcome did not change.)
      // (A container, or a text element filled again, is rendered alone too; with what was added.)
      if (type == "attributes") lost(el), roots.add([el]);
      else {
        el && (el.hasAttribute(ATTRS[3]) || (el.hasAttribute(ATTRS[2]) && el.textContent === wrote.get(el)?.[0])) && roots.add([el]);
        // A variant's template whose children a framework changed (React, Vue: they are the
        // element's own): its container renders the variant again.
        const c = el?.closest?.("template[data-keystone-variant]")?.parentNode;
        c?.hasAttribute(ATTRS[3]) && roots.add([c]);
        for (const n of addedNodes) if (n.nodeType == 1 && (n.matches(SEL) || n.querySelector(SEL))) roots.add(n);
      }
    }
    roots.size && schedule();
  }).observe(html, { childList: true, subtree: true, characterData: true, attributeFilter: ATTRS }); // (a filter implies attributes)
  run();
  release();
  // Once the body is parsed, a pass over the document settles text the parser appended after
  // Keystone's.
  if (document.readyState == "loading") document.addEventListener("DOMContentLoaded", () => (roots.add(html), schedule()));
  return () => ((changed = 1), schedule());
}
