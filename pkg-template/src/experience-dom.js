// Declarative experiences (DESIGN §13): `<div data-keystone-experience="hero">` with children
// `<template data-keystone-variant="id">` shows a clone of the decided variant's template (DOM
// cloned from the template, never HTML strings). `decide()` records the exposure once per page
// view; the container is re-decided when membership or identity changes, on each page view, and
// when matching markup appears in the document.

const ATTR = "data-keystone-experience";
const DONE = "data-keystone-rendered";

/** Starts rendering; returns a function that schedules a new pass. */
export function experiences(ks) {
  if (typeof document === "undefined") return () => {};
  const failed = new WeakMap();
  let queued = false;
  const render = () => {
    queued = false;
    for (const el of document.querySelectorAll("[" + ATTR + "]")) {
      const id = el.getAttribute(ATTR);
      if (failed.get(el) === id) continue;
      const d = ks.decide(id);
      if (!d) {
        failed.set(el, id); // unknown experience: reported once, not on every pass
        continue;
      }
      if (el.getAttribute(DONE) === d.variant) continue;
      const tpl = [...el.children].find((c) => c.tagName === "TEMPLATE" && c.getAttribute("data-keystone-variant") === d.variant);
      if (!tpl) continue; // its template may not be parsed yet
      for (const c of [...el.childNodes]) if (c.nodeName !== "TEMPLATE") c.remove();
      el.append(tpl.content.cloneNode(true));
      el.setAttribute(DONE, d.variant);
    }
  };
  const schedule = () => {
    if (!queued) {
      queued = true;
      queueMicrotask(render);
    }
  };
  for (const e of ["segment:enter", "segment:exit", "identify", "reset"]) ks.on(e, schedule);
  new MutationObserver(schedule).observe(document.documentElement, { childList: true, subtree: true });
  render();
  return schedule;
}
