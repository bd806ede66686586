// Declarative experiences (DESIGN §13): `<div data-keystone-experience="hero">` with children
// `<template data-keystone-variant="id">` shows a clone of the decided variant's template (DOM
// cloned from the template, never HTML strings), or the authored content when it has none.
// Plugged into the declarative renderer, which runs after every change, on page views, when
// such markup appears and when a container's children change: `decide()` records the exposure
// once per page view and re-decides when membership changes.

import { cover } from "./dom.js";

const DONE = "data-keystone-rendered";
let failed = new WeakMap();
/** New definitions: every container is decided again (an experience unknown before may exist). */
export const redecide = () => (failed = new WeakMap());
const shown = new WeakMap(); // container → [variant, its template, the nodes shown, renders of it, task, tries, the template's HTML when rendered while loading, a copy of the template]
// The variants' templates; any other child (a `<template x-if>` of the variant's own markup
// included) is content.
const variant = (c) => (c.nodeName === "TEMPLATE" ? c.getAttribute("data-keystone-variant") : null); // (null: not a variant)
// Tasks, counted: renders of one variant within one task are a loop (code replacing the nodes as
// they are inserted); renders in later tasks (a framework re-rendering) are not.
let task = 0;
let tick = 0;

// (The authored content while a variant shows: see `cover`.)
const covered = (c) => (c.nodeType == 1 ? c.hidden : c.nodeType != 3 || !c.data);

/** The renderer of `data-keystone-experience` (see `handlers` in dom.js). */
export const experience = (ks, el, id) => {
  if (failed.get(el) === id) return; // an unknown experience is reported once, not on every pass
  const d = ks.decide(id);
  let [v, t, nodes = [], n = 0, at, tries = 0, streaming, copy] = shown.get(el) || [];
  const kids = [...el.childNodes].filter((c) => variant(c) == null && !nodes.includes(c));
  if (!d) {
    // No such experience (any longer): the authored content, in place of a variant shown before.
    nodes.forEach((c) => c.remove());
    kids.forEach((c) => cover(ks, c, 0));
    shown.delete(el);
    el.removeAttribute(DONE);
    return void failed.set(el, id);
  }
  const tpl = [...el.children].find((c) => variant(c) === d.variant);
  if (at !== task) n = 0;
  const there = nodes.every((c) => c.parentNode === el);
  // (A template a framework renders again with other children, a product's id: its copy differs.
  // React and Vue render them into the element, Preact and the parser into its `content`.)
  const src = tpl && (tpl.content.firstChild ? tpl.content : tpl);
  const same = v === d.variant && t === tpl && (!tpl || copy.isEqualNode(src));
  // Done: the same variant from the same template, its nodes in place, the authored content
  // hidden (or shown, for a variant without a template). Else (a template that arrived later,
  // children streamed in, added or replaced by a framework) rendered again, which leaves it
  // done: its own mutations do not loop. Code that keeps replacing the variant's nodes as they
  // are inserted (a custom element replacing itself) is let be after 3 renders of the same
  // variant within one task.
  // (Rendered while the body streamed in, the template may have been cut short: rendered again
  // once the body is parsed if more of it arrived since; else its nodes, which the page's
  // scripts or the visitor may use by now, stay.)
  // (Authored content the page added or changed meanwhile, a framework's fallback re-rendered,
  // is hidden without rendering the variant's nodes again: a form the visitor fills stays.)
  if (same && there && (streaming == null || document.readyState == "loading" || streaming == t.innerHTML)) return void (tpl && kids.forEach((c) => covered(c) || cover(ks, c, 1)));
  if (same && n > 2) {
    // Tried again in a later task, once the page may have stopped (3 times at most).
    if (tries < 3) shown.get(el)[5] = tries + 1, setTimeout(() => experience(ks, el, id));
    return;
  }
  // A variant without a template shows the authored content (never a previous variant's).
  // (A template made by React or Vue, `createElement("template")` and children appended, holds
  // them as its own children: its `content` is empty.)
  nodes.forEach((c) => c.remove());
  kids.forEach((c) => cover(ks, c, !!tpl));
  const next = tpl ? [...src.cloneNode(true).childNodes] : [];
  // (While the body streams in, an empty comment last: authored text the parser appends after
  // the template goes into a node of its own, not into the clone's last text.)
  const loading = document.readyState == "loading";
  if (loading && tpl) next.push(document.createComment(""));
  el.append(...next);
  shown.set(el, [d.variant, tpl, next, same ? n + 1 : 0, task, same ? tries : 0, loading && tpl ? tpl.innerHTML : null, src?.cloneNode(true)]);
  tick ||= setTimeout(() => (task++, (tick = 0)));
  el.setAttribute(DONE, d.variant);
};
