// Adversarial checks of recent changes. Tests marked `todo` expose a known defect: they fail
// (reported as todo, not failing the run) until it is fixed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

async function openDom() {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  await page.addInitScript(() => (window.frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))));
  await page.goto(h.url("/tests/dom.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  return page;
}

// A framework hiding a shown element the way Vue's v-show does (inline `display: none`, no
// `!important`) after Keystone rendered it: the page's display is its own, set since Keystone
// last wrote, and must stay when Keystone renders that element again.
test("a display:none the page set on a shown element stays when Keystone renders it again", { todo: "known defect since deb6595: a shown element loses any inline display:none at every render" }, async () => {
  const page = await openDom();
  const out = await page.evaluate(async () => {
    const defs = { version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }, { id: "any", condition: {} }] };
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.setTraits({ tier: "gold" });
    const s = document.createElement("section");
    s.innerHTML = '<p id="offer" data-keystone-show="gold">gold offer</p>';
    document.body.appendChild(s);
    await frame();
    const el = document.getElementById("offer");
    const first = getComputedStyle(el).display;
    el.style.display = "none"; // the page (v-show="false") hides it
    await frame();
    // A re-render of that element alone: its attribute set again (a framework patching it).
    el.setAttribute("data-keystone-show", "gold");
    await frame();
    return { first, after: [el.style.cssText, getComputedStyle(el).display] };
  });
  assert.deepEqual(out, { first: "block", after: ["display: none;", "none"] });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

// The same through a profile change alone: an element naming a segment and a text path is
// rendered again when the text changes, with its membership unchanged (jQuery's `.hide()` also
// writes an inline `display: none`).
test("a display:none the page set on a shown element stays when its text path changes", { todo: "known defect since deb6595: a shown element loses any inline display:none at every render" }, async () => {
  const page = await openDom();
  const out = await page.evaluate(async () => {
    const defs = { version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }] };
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.setTraits({ tier: "gold", firstName: "Ada" });
    const s = document.createElement("section");
    s.innerHTML = '<p id="hi" data-keystone-show="gold" data-keystone-text="traits.firstName">there</p>';
    document.body.appendChild(s);
    await frame();
    const el = document.getElementById("hi");
    const first = [el.textContent, getComputedStyle(el).display];
    el.style.display = "none"; // the page hides it
    await frame();
    ks.setTraits({ firstName: "Bo" });
    await frame();
    return { first, after: [el.textContent, el.style.cssText, getComputedStyle(el).display] };
  });
  assert.deepEqual(out, { first: ["Ada", "block"], after: ["Bo", "display: none;", "none"] });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
