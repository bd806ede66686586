// Declarative experiences (DESIGN §13): `<div data-keystone-experience="hero">` with children
// `<template data-keystone-variant="id">` shows a clone of the decided variant's template (DOM
// cloned from the template, never HTML strings), or the authored content when it has none.
// Plugged into the declarative renderer, which runs after every change, on page views and when
// such markup appears: `decide()` records the exposure once per page view and re-decides when
// membership changes.

const DONE = "data-keystone-rendered";
const failed = new WeakMap();
const authored = new WeakMap(); // container → its authored (non-template) children

/** The renderer of `data-keystone-experience` (see `handlers` in dom.js). */
export const experience = (ks, el, id) => {
  if (failed.get(el) === id) return; // an unknown experience is reported once, not on every pass
  const d = ks.decide(id);
  if (!d) return void failed.set(el, id);
  if (el.getAttribute(DONE) === d.variant) return;
  const tpl = [...el.children].find((c) => c.tagName === "TEMPLATE" && c.getAttribute("data-keystone-variant") === d.variant);
  const kids = [...el.childNodes].filter((c) => c.nodeName !== "TEMPLATE");
  if (!authored.has(el)) authored.set(el, kids);
  for (const c of kids) c.remove();
  // A variant without a template shows the authored content (never a previous variant's).
  el.append(...(tpl ? [tpl.content.cloneNode(true)] : authored.get(el)));
  el.setAttribute(DONE, d.variant);
};
