// Checks written while reviewing the declarative rendering (a display the page sets, variants
// rendered while the body streams in) and the behavioural state shared by tabs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, streamPage } from "./harness.mjs";

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
test("a display:none the page set on a shown element stays when Keystone renders it again", async () => {
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
test("a display:none the page set on a shown element stays when its text path changes", async () => {
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

// A variant rendered while the body streams in, whose template had fully arrived: the page's
// scripts that run before the body ends (or the visitor) use its nodes (a listener, a typed
// value). Rendering it again once the body is parsed replaces them with fresh clones.
test("streamed HTML: a complete variant rendered while loading keeps its nodes once the body is parsed", async () => {
  const defs = { version: 1, segments: [], experiences: [{ id: "hero", variants: [{ id: "welcome" }] }] };
  const server = await streamPage(async (res, ready) => {
    res.write(`<!doctype html><html><head><link rel="icon" href="data:,"><script type="module" async>
import { Keystone } from "/pkg/dist/keystone.js";
window.ks = await Keystone.init({ segments: ${JSON.stringify(defs)}, autoCapture: false });
fetch("/go");
</script></head><body><!--${" ".repeat(4096)}--><div id="hero" data-keystone-experience="hero"><p>authored fallback</p><template data-keystone-variant="welcome"><form><input name="email"><button type="button">Join</button></form></template></div><!--${" ".repeat(4096)}-->`);
    await ready;
    await new Promise((r) => setTimeout(r, 100));
    // A script later in the body wires the rendered variant (as a site's own bundle would).
    res.end(`<script>window.rendered = document.querySelector("#hero button"); window.rendered.addEventListener("click", () => (window.clicked = 1)); document.querySelector("#hero input").value = "typed";</script></body></html>`);
  });
  const context = await h.browser.newContext();
  try {
    const page = await context.newPage();
    page.problems = [];
    page.on("pageerror", (e) => page.problems.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`, { waitUntil: "commit" });
    await page.waitForFunction(() => window.ks && document.readyState === "complete");
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
    const out = await page.evaluate(() => {
      const b = document.querySelector("#hero button");
      b?.click();
      return { wired: window.rendered != null, same: b === window.rendered, clicked: window.clicked === 1, value: document.querySelector("#hero input")?.value };
    });
    assert.deepEqual(out, { wired: true, same: true, clicked: true, value: "typed" });
    assert.deepEqual(page.problems, []);
  } finally {
    await context.close();
    server.close();
  }
});

// Tab A's definitions have a `$sequence` the visitor completed, since pushed out of the recent
// ring (200 events) by later events. Tab B, another page of the site, loads definitions without
// behaviour and stores the profile at once. Tab A rebases onto the stored profile: the state of
// its `$sequence` was kept there for it (foreign to B), so the visitor stays in A's segment. (It
// was dropped by B's load, and A's state back-filled from the ring, which no longer holds the
// sequence: the visitor left A's segment with no event or time in A.)
test("tabs: another tab loading definitions without behaviour does not take a completed sequence from this tab", async () => {
  const ctx = await h.browser.newContext();
  const [a, b] = await Promise.all([h.open("/tests/esm.html", { context: ctx }), h.open("/tests/esm.html", { context: ctx })]);
  const seqDefs = { version: 1, segments: [{ id: "funnel", condition: { $sequence: { steps: [{ event: "A" }, { event: "B" }] } } }] };
  const first = await a.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.track("A");
    ks.track("B");
    for (let i = 0; i < 210; i++) ks.track("Tick", { i });
    await new Promise((r) => setTimeout(r, 1500)); // written
    return ks.segments();
  }, seqDefs);
  await b.evaluate(async () => {
    window.ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "pro", condition: { "traits.plan": "pro" } }] }, autoCapture: false });
    await new Promise((r) => setTimeout(r, 1500)); // written
  });
  await a.waitForTimeout(500);
  const after = await a.evaluate(() => ks.segments());
  assert.deepEqual({ first, after }, { first: ["funnel"], after: ["funnel"] });
  for (const p of [a, b]) assert.deepEqual(p.problems, []);
  await ctx.close();
});

// The same with behaviour in the other tab's definitions (different ones) and one event there:
// the stored behavioural state keeps the states of both tabs' definitions (each the other's
// foreign), where it was aligned to the last writer's definitions alone.
test("tabs: another tab with other behavioural definitions does not take a completed sequence from this tab", async () => {
  const ctx = await h.browser.newContext();
  const [a, b] = await Promise.all([h.open("/tests/esm.html", { context: ctx }), h.open("/tests/esm.html", { context: ctx })]);
  const seqDefs = { version: 1, segments: [{ id: "funnel", condition: { $sequence: { steps: [{ event: "A" }, { event: "B" }] } } }] };
  const first = await a.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.track("A");
    ks.track("B");
    for (let i = 0; i < 210; i++) ks.track("Tick", { i });
    await new Promise((r) => setTimeout(r, 1500)); // written
    return ks.segments();
  }, seqDefs);
  await b.evaluate(async () => {
    window.ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Viewed" } } }] }, autoCapture: false });
    ks.track("Other");
    await new Promise((r) => setTimeout(r, 1500)); // written
  });
  await a.waitForTimeout(500);
  const after = await a.evaluate(() => ks.segments());
  assert.deepEqual({ first, after }, { first: ["funnel"], after: ["funnel"] });
  for (const p of [a, b]) assert.deepEqual(p.problems, []);
  await ctx.close();
});

// Scores: page A's definitions have a score the visitor earned points of (a `where` rule, which
// the per-minute counts cannot rebuild), since pushed out of the recent ring by later events.
// Tab B, another page of the site, loads definitions without that score, records a scoring event
// and stores the profile. A adopts B's write: the state of its score was kept there for it
// (foreign to B), with B's event applied once. A page of the site opened later with the score
// (after both closed) has it too. B's document shows the scores B loads. (It was dropped by B's
// load, and A's score back-filled from the ring: 5 of 55.)
test("tabs: another page loading definitions without a score does not take its points from this page", async () => {
  const ctx = await h.browser.newContext();
  const [a, b] = await Promise.all([h.open("/tests/esm.html", { context: ctx }), h.open("/tests/esm.html", { context: ctx })]);
  const scored = { version: 1, segments: [], scores: [{ id: "eng", rules: [{ event: "Buy", where: { ok: true }, points: 5 }] }] };
  const first = await a.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, autoCapture: false });
    for (let i = 0; i < 10; i++) ks.track("Buy", { ok: true });
    ks.track("Buy", { ok: false });
    for (let i = 0; i < 210; i++) ks.track("Tick", { i });
    await new Promise((r) => setTimeout(r, 1500)); // written
    return ks.profile().scores;
  }, scored);
  const inB = await b.evaluate(async () => {
    window.ks = await Keystone.init({ segments: { version: 1, segments: [{ id: "pro", condition: { "traits.plan": "pro" } }], scores: [{ id: "views", rules: [{ event: "View", points: 1 }] }] }, autoCapture: false });
    ks.track("Buy", { ok: true });
    ks.track("View");
    await new Promise((r) => setTimeout(r, 1500)); // written
    return ks.profile().scores;
  });
  await a.waitForTimeout(500);
  const after = await a.evaluate(() => ks.profile().scores);
  for (const p of [a, b]) assert.deepEqual(p.problems, []);
  await Promise.all([a.close(), b.close()]);
  const c = await h.open("/tests/esm.html", { context: ctx });
  const later = await c.evaluate(async (defs) => (await Keystone.init({ segments: defs, autoCapture: false })).profile().scores, scored);
  assert.deepEqual({ first, inB, after, later }, { first: { eng: 50 }, inB: { views: 1 }, after: { eng: 55 }, later: { eng: 55 } });
  assert.deepEqual(c.problems, []);
  await ctx.close();
});
