// Experiences (DESIGN §13) in Chromium: decide() with priority, frequency caps counted over page
// views and released after their window (Playwright clock), the holdout draw stable across
// reloads and tabs, and declarative rendering from <template data-keystone-variant>.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, streamPage } from "./harness.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const DEFS = {
  version: 1,
  segments: [
    { id: "gold", condition: { "context.utm.source": "vip" } },
    { id: "shoe_fans", condition: { $performed: { event: "Product Viewed", within: "7d", count: { $gte: 2 } } } },
  ],
  experiences: [
    {
      id: "hero",
      holdout: 0,
      variants: [
        { id: "gold_offer", segment: "gold", priority: 10, cap: { count: 3, within: "7d" } },
        { id: "shoes", segment: "shoe_fans", priority: 5 },
        { id: "default" },
      ],
    },
  ],
};

async function openPage(path, ctx) {
  const context = ctx || (await h.browser.newContext());
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  return { page, context, go: async () => {
    await page.goto(h.url(path));
    await page.waitForFunction(() => window.__ksLoaded === true);
  } };
}

const rendered = (page) =>
  page.evaluate(() => {
    const el = document.getElementById("hero");
    // (The authored content stays in the container while a variant shows, hidden.)
    const shown = [...el.children].filter((c) => c.tagName !== "TEMPLATE" && !c.hidden);
    return { variant: el.getAttribute("data-keystone-rendered"), html: shown.map((c) => c.outerHTML.replace(' style=""', "")).join(""), templates: el.querySelectorAll("template").length };
  });

/** The ESM test page, loaded, with `el(tag, attributes, ...children)` making elements as React's
 * and Vue's DOM renderers do (createElement, its attributes, its children appended: a
 * template's too, into the element itself). */
async function builtPage() {
  const { page, context, go } = await openPage("/tests/esm.html");
  await go();
  await page.evaluate(() => {
    window.el = (tag, attrs, ...kids) => {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      e.append(...kids);
      return e;
    };
  });
  return { page, context };
}

const views = (page) => page.evaluate(() => (ks.profile().events["Experience Viewed"] || { count: 0 }).count);

test("declarative experience: the decided template is cloned, exposure once per page view, re-decided on membership change", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const report = await page.evaluate(async (defs) => {
    const errors = [];
    window.ks = await Keystone.init({ segments: defs });
    ks.on("error", (e) => errors.push(e.code));
    window.__errors = errors;
    return ks.loadSegments(defs).then((r) => ({ loaded: r.loaded, rejected: r.rejected.length }));
  }, DEFS);
  assert.deepEqual(report, { loaded: ["gold", "shoe_fans", "hero"], rejected: 0 });
  await page.waitForFunction(() => document.getElementById("hero").getAttribute("data-keystone-rendered") === "default");
  let r = await rendered(page);
  assert.equal(r.html, '<p class="v default">Welcome</p>');
  assert.equal(r.templates, 3, "templates stay for later decisions");
  assert.equal(await views(page), 1);

  // Other calls re-render but do not record the exposure again in this page view.
  await page.evaluate(() => ks.track("Something"));
  await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
  assert.equal(await views(page), 1);

  // Membership changes: re-decided and re-rendered; still one exposure in this page view.
  await page.evaluate(() => {
    ks.track("Product Viewed");
    ks.track("Product Viewed");
  });
  await page.waitForFunction(() => document.getElementById("hero").getAttribute("data-keystone-rendered") === "shoes");
  r = await rendered(page);
  assert.match(r.html, /^<p class="v shoes">&lt;img src=x onerror="window.__xss=1"&gt; 10% off shoes<\/p>$/, "template text stays text");
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await views(page), 1);
  // A new page view records it again.
  await page.evaluate(() => ks.page());
  await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
  assert.equal(await views(page), 2);
  const decision = await page.evaluate(() => ks.decide("hero"));
  assert.deepEqual(decision, { experience: "hero", variant: "shoes", holdout: false });
  assert.equal(await views(page), 2);

  // An unknown experience: decide() answers null with an unknown_id error, reported once.
  const unknown = await page.evaluate(async () => {
    const d = ks.decide("nope");
    await new Promise((r) => setTimeout(r, 0));
    return { d, errors: window.__errors, ghost: document.getElementById("ghost").textContent.trim() };
  });
  assert.equal(unknown.d, null);
  // The markup's unknown id was reported once, at init (delivered to this listener, added right
  // after init resolved), and once more when loadSegments loaded definitions still without it,
  // not on every pass; then once for this decide("nope").
  assert.deepEqual(unknown.errors, ["unknown_id", "unknown_id", "unknown_id"]);
  assert.equal(unknown.ghost, "Stays");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experience defined after the first render (init, then loadSegments): rendered then, and the authored content back when it is removed", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const hero = () => document.getElementById("hero").getAttribute("data-keystone-rendered");
  await page.evaluate(() => Keystone.init({ autoCapture: false }).then((ks) => (window.ks = ks)));
  assert.equal(await page.evaluate(hero), null, "no such experience yet: as authored");
  await page.evaluate((defs) => ks.loadSegments(defs), { version: 1, segments: [{ id: "vip", condition: { "traits.tier": "gold" } }], experiences: [{ id: "hero", variants: [{ id: "gold_offer", segment: "vip" }, { id: "default" }] }] });
  await page.waitForFunction(() => document.getElementById("hero").getAttribute("data-keystone-rendered") === "default", null, { timeout: 3000 });
  await page.evaluate(() => ks.setTraits({ tier: "gold" }));
  await page.waitForFunction(() => document.getElementById("hero").getAttribute("data-keystone-rendered") === "gold_offer");
  assert.match((await rendered(page)).html, /Gold members/);
  // Definitions without it: the authored content again, not the last variant shown.
  await page.evaluate(() => ks.loadSegments({ version: 1, segments: [] }));
  await page.waitForFunction(() => !document.getElementById("hero").hasAttribute("data-keystone-rendered"));
  assert.deepEqual(await rendered(page), { variant: null, html: '<p class="authored">Authored fallback</p>', templates: 3 });
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("definitions given as an object: holdout NaN or priority Infinity (no JSON number) is rejected with its path, not read as left out", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const r = await ks.loadSegments({
      version: 1,
      segments: [{ id: "few", condition: { "traits.n": { $lt: Infinity } } }],
      experiences: [
        { id: "a", holdout: NaN, variants: [{ id: "x" }] },
        { id: "b", variants: [{ id: "top", priority: Infinity }, { id: "y" }] },
        { id: "c", holdout: 0, variants: [{ id: "z" }] },
      ],
    });
    ks.setTraits({ n: 5 });
    return { loaded: r.loaded, rejected: r.rejected.map((e) => [e.code, e.segmentId, e.path]), few: ks.inSegment("few") };
  });
  assert.deepEqual(out.loaded, ["few", "c"]);
  assert.deepEqual(out.rejected, [["invalid_segment", "a", "/experiences/0/holdout"], ["invalid_segment", "b", "/experiences/1/variants/0/priority"]]);
  assert.equal(out.few, true, "a number JSON cannot hold compares as JavaScript compares it (5 < Infinity)");
  await context.close();
});

test("an SPA navigation starts a new page view for exposures, also with page views not captured (an anchor does not)", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const out = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ autoCapture: false, segments: defs });
    const views = () => (ks.profile().events["Experience Viewed"] || { count: 0 }).count;
    const n = [];
    ks.decide("hero");
    n.push(views());
    ks.decide("hero");
    n.push(views());
    history.pushState({}, "", "/tests/experiences.html/next");
    ks.decide("hero");
    n.push(views());
    location.hash = "#reviews";
    ks.decide("hero");
    n.push(views());
    return n;
  }, DEFS);
  assert.deepEqual(out, [1, 1, 2, 2]);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experience: a variant without a template shows the authored content, not the previous variant", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const defs = {
    version: 1,
    segments: [{ id: "vip", condition: { "traits.tier": "gold" } }],
    experiences: [{ id: "hero", variants: [{ id: "gold_offer", segment: "vip" }, { id: "plain" }] }],
  };
  await page.evaluate(async (defs) => (window.ks = await Keystone.init({ segments: defs, autoCapture: false })), defs);
  const html = async (variant) => {
    await page.waitForFunction((v) => document.getElementById("hero").getAttribute("data-keystone-rendered") === v, variant);
    return (await rendered(page)).html;
  };
  assert.equal(await html("plain"), '<p class="authored">Authored fallback</p>');
  await page.evaluate(() => ks.setTraits({ tier: "gold" }));
  assert.equal(await html("gold_offer"), '<p class="v gold">Gold members: <b>free shipping</b></p>');
  await page.evaluate(() => ks.setTraits({ tier: "silver" }));
  assert.equal(await html("plain"), '<p class="authored">Authored fallback</p>');
  assert.equal((await rendered(page)).templates, 3);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experience built as React and Vue build it (createElement(\"template\"), children appended to the template itself): the variant's markup shows", async () => {
  const { page, context } = await builtPage();
  const defs = {
    version: 1,
    segments: [{ id: "vip", condition: { "traits.tier": "gold" } }],
    experiences: [{ id: "hero", variants: [{ id: "gold_offer", segment: "vip" }, { id: "welcome" }] }],
  };
  const out = await page.evaluate(async (defs) => {
    const box = el("div", { id: "hero", "data-keystone-experience": "hero" },
      el("p", {}, "Fallback"),
      el("template", { "data-keystone-variant": "welcome" }, el("p", { class: "w" }, "Welcome")),
      el("template", { "data-keystone-variant": "gold_offer" }, el("p", { class: "g" }, "Gold offer")));
    document.body.append(box);
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    const shown = () => [...box.childNodes].filter((c) => c.nodeName !== "TEMPLATE" && !c.hidden).map((c) => c.outerHTML).join("");
    const settle = () => new Promise((r) => setTimeout(r, 50));
    await settle();
    const first = [box.getAttribute("data-keystone-rendered"), shown()];
    ks.setTraits({ tier: "gold" });
    await settle();
    return [first, [box.getAttribute("data-keystone-rendered"), shown()]];
  }, defs);
  assert.deepEqual(out, [
    ["welcome", '<p class="w">Welcome</p>'],
    ["gold_offer", '<p class="g">Gold offer</p>'],
  ]);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experience under a framework that owns the container: its fallback nodes stay (hidden), so it can remove or insert around them; a variant's template whose children it changes is shown again", async () => {
  const { page, context } = await builtPage();
  const defs = { version: 1, segments: [], experiences: [{ id: "hero", variants: [{ id: "prod" }] }] };
  const out = await page.evaluate(async (defs) => {
    // As React renders {loading && <p>Loading…</p>} beside <template data-keystone-variant="prod">.
    const box = document.createElement("div");
    box.setAttribute("data-keystone-experience", "hero");
    const loading = document.createElement("p");
    loading.textContent = "Loading…";
    const text = document.createTextNode("plain fallback text");
    const tpl = document.createElement("template");
    tpl.setAttribute("data-keystone-variant", "prod");
    const offer = document.createElement("p");
    offer.textContent = "Product 1 offer";
    tpl.append(offer);
    box.append(loading, text, tpl);
    document.body.append(box);
    await Keystone.init({ segments: defs, autoCapture: false });
    const settle = () => new Promise((r) => setTimeout(r, 50));
    await settle();
    const visible = () => box.innerText.trim();
    const first = visible();
    // The framework's own DOM operations on its nodes: none throws.
    const errors = [];
    const op = (f) => {
      try {
        f();
      } catch (e) {
        errors.push(e.name);
      }
    };
    op(() => box.removeChild(loading)); // React: loading is over
    const error = document.createElement("p");
    error.textContent = "Error!";
    op(() => box.insertBefore(error, text)); // Vue: a v-if before the fallback
    await settle();
    const shownNode = [...box.children].find((c) => c.textContent == "Product 1 offer");
    text.data = "fallback text again"; // the framework updates its fallback text
    await settle();
    const sameNode = shownNode.isConnected; // the variant's nodes were not made again for it
    const middle = visible();
    offer.textContent = "Product 2 offer"; // the template's child, re-rendered with new props
    await settle();
    return { first, errors, middle, sameNode, after: visible(), kept: text.isConnected };
  }, defs);
  assert.deepEqual(out, { first: "Product 1 offer", errors: [], middle: "Product 1 offer", sameNode: true, after: "Product 2 offer", kept: true });
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experiences built by React and Vue (a template's children in the element): what is inside a template is not rendered (an experience in a variant not shown records no exposure), a form typed in keeps its text when a path it shows changes; Preact's (in the template's content) is followed at the next change", async () => {
  const { page, context } = await builtPage();
  const defs = {
    version: 1,
    segments: [{ id: "vip", condition: { "traits.tier": "gold" } }],
    experiences: [
      { id: "hero", variants: [{ id: "gold_offer", segment: "vip" }, { id: "welcome" }] },
      { id: "inner", variants: [{ id: "a" }] },
      { id: "pre", variants: [{ id: "p" }] },
    ],
  };
  const out = await page.evaluate(async (defs) => {
    // React/Vue: children appended to the template element itself.
    const box = el("div", { id: "hero", "data-keystone-experience": "hero" },
      el("template", { "data-keystone-variant": "welcome" }, el("form", {}, el("input", { name: "q" }), el("span", { "data-keystone-text": "traits.firstName" }, "friend"))),
      el("template", { "data-keystone-variant": "gold_offer" }, el("div", { "data-keystone-experience": "inner" }, el("template", { "data-keystone-variant": "a" }, el("p", {}, "inner a")))));
    // Preact: children rendered into the template's content.
    const preTpl = el("template", { "data-keystone-variant": "p" });
    preTpl.content.append(el("p", {}, "GOLD-1"));
    const pre = el("div", { id: "pre", "data-keystone-experience": "pre" }, preTpl);
    document.body.append(box, pre);
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    const settle = () => new Promise((r) => setTimeout(r, 50));
    await settle();
    const input = box.querySelector(":scope > form input");
    input.value = "typed";
    ks.setTraits({ firstName: "Ada" });
    await settle();
    const form = [box.querySelector(":scope > form input") === input, input.value, box.querySelector(":scope > form span").textContent];
    preTpl.content.firstChild.textContent = "GOLD-2"; // Preact re-renders the template with new props
    ks.track("Anything");
    await settle();
    return { form, inner: ks.profile().events["Experience Viewed"]?.count, innerRendered: document.querySelector('[data-keystone-experience="inner"]').getAttribute("data-keystone-rendered"), pre: pre.innerText.trim() };
  }, defs);
  assert.deepEqual(out, { form: [true, "typed", "Ada"], inner: 2, innerRendered: null, pre: "GOLD-2" });
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experience: a fallback the page shows or hides itself while a variant shows (React's hidden={!ready}, Vue's v-show) comes back as the page set it", async () => {
  const { page, context } = await builtPage();
  const out = await page.evaluate(async () => {
    document.body.insertAdjacentHTML("beforeend", '<div id="hero" data-keystone-experience="hero"><p id="a" hidden>Ready A</p><p id="b" style="display: none">Ready B</p><template data-keystone-variant="v"><p>Variant</p></template></div>');
    const ks = await Keystone.init({ segments: { version: 1, segments: [], experiences: [{ id: "hero", variants: [{ id: "v" }] }] }, autoCapture: false });
    await new Promise((r) => setTimeout(r, 50));
    const box = document.getElementById("hero");
    const during = box.innerText.trim();
    // The app is ready: it shows its fallback's elements (props it sets on them).
    document.getElementById("a").hidden = false;
    document.getElementById("b").style.display = "block";
    await ks.loadSegments({ version: 1, segments: [] }); // the experience is no longer defined: the authored content
    await new Promise((r) => setTimeout(r, 50));
    return { during, after: box.innerText.trim().split("\n").filter(Boolean) };
  });
  assert.deepEqual(out, { during: "Variant", after: ["Ready A", "Ready B"] });
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("declarative experience: a template's data-keystone-text is filled on the first render", async () => {
  const context = await h.browser.newContext();
  const defs = { version: 1, segments: [], experiences: [{ id: "greet", variants: [{ id: "hi" }] }] };
  const markup = '<div data-keystone-experience="greet"><template data-keystone-variant="hi"><p id="greeting">Hello, <span data-keystone-text="traits.firstName">friend</span></p></template></div>';
  const { page, go } = await openPage("/tests/experiences.html", context);
  await go();
  await page.evaluate(async (defs) => {
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.setTraits({ firstName: "Ada" });
    ks.persistNow();
  }, defs);
  // The next page: the trait is there from the start; the first render inserts the template.
  await go();
  const text = await page.evaluate(async ([defs, markup]) => {
    document.body.insertAdjacentHTML("beforeend", markup);
    await Keystone.init({ segments: defs, autoCapture: false });
    await new Promise((r) => setTimeout(r, 0));
    return document.getElementById("greeting").textContent;
  }, [defs, markup]);
  assert.equal(text, "Hello, Ada");
  await context.close();
});

test("declarative experience: a container seen before its templates, or whose children are replaced, shows the decided template", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const defs = {
    version: 1,
    segments: [{ id: "vip", condition: { "traits.tier": "gold" } }],
    experiences: [{ id: "hero", variants: [{ id: "gold_offer", segment: "vip" }, { id: "plain" }] }],
  };
  const out = await page.evaluate(async (defs) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const ks = (window.ks = await Keystone.init({ segments: defs, autoCapture: false }));
    ks.setTraits({ tier: "gold" });
    document.body.insertAdjacentHTML("beforeend", '<div id="late" data-keystone-experience="hero"><p>late fallback</p></div>');
    await frame();
    const late = document.getElementById("late");
    const rows = { first: [late.innerText, late.getAttribute("data-keystone-rendered")] };
    // A template appended later.
    const t = document.createElement("template");
    t.setAttribute("data-keystone-variant", "gold_offer");
    t.innerHTML = "<b>late gold</b>";
    late.appendChild(t);
    await frame();
    rows.appended = late.innerText;
    // A framework replaces the children (new fallback, new templates), twice.
    const hero = document.getElementById("hero");
    let writes = 0;
    new MutationObserver((l) => (writes += l.length)).observe(hero, { childList: true });
    for (const v of ["v2", "v3"]) {
      hero.innerHTML = `<p class="authored">fallback ${v}</p><template data-keystone-variant="gold_offer"><p>gold ${v}</p></template><template data-keystone-variant="plain"><p>plain ${v}</p></template>`;
      await frame();
      rows[v] = hero.innerText;
    }
    const settled = writes;
    await frame();
    await frame();
    rows.loop = writes - settled; // Keystone's own render does not render again
    ks.setTraits({ tier: "silver" });
    await frame();
    rows.silver = hero.innerText;
    // Replaced by fallback only: the decided variant has no template any more.
    hero.innerHTML = '<p class="authored">fallback v4</p>';
    await frame();
    rows.v4 = hero.innerText;
    return rows;
  }, defs);
  assert.deepEqual(out.first, ["late fallback", "gold_offer"]);
  assert.equal(out.appended, "late gold");
  assert.equal(out.v2, "gold v2");
  assert.equal(out.v3, "gold v3");
  assert.equal(out.silver, "plain v3");
  assert.equal(out.v4, "fallback v4");
  assert.equal(out.loop, 0);
  assert.deepEqual(page.problems, []);
  await context.close();
});

for (const [known, split] of [[false, false], [true, false], [true, true]])
test(`streamed HTML: Keystone ready before the body is parsed renders the experience, text and show once their markup arrives${known ? " (the trait known already: the text arriving after Keystone's is the authored one" + (split ? ", a chunk ending inside it)" : ")") : ""}`, async () => {
  // A page streamed in chunks; the second half waits until Keystone has initialized (it asks /go).
  const defs = { version: 1, segments: [{ id: "everyone", condition: {} }], experiences: [{ id: "hero", variants: [{ id: "welcome", segment: "everyone" }, { id: "default" }] }] };
  const server = await streamPage(async (res, ready) => {
    res.write(`<!doctype html><html><head><link rel="icon" href="data:,"><script type="module" async>
import { Keystone } from "/pkg/dist/keystone.js";
window.ks = await Keystone.init({ segments: ${JSON.stringify(defs)}, autoCapture: false });
${known ? 'ks.setTraits({ firstName: "Ada" });' : ""}
fetch("/go");
</script></head><body><div id="hero" data-keystone-experience="hero"><p>authored fallback</p>` + " ".repeat(4096));
    await ready;
    await sleep(100);
    res.write('<template data-keystone-variant="welcome"><p>Welcome</p></template><template data-keystone-variant="default"><p>Default</p></template></div>');
    res.write('<p>Hi <span id="name" data-keystone-text="traits.firstName">' + (split ? "the" : ""));
    await sleep(100);
    res.end((split ? "re <b>you</b>" : "there") + '</span></p><p id="show" data-keystone-show="everyone" hidden>shown</p></body></html>');
  });
  const context = await h.browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`http://localhost:${server.address().port}/`, { waitUntil: "commit" });
    await page.waitForFunction(() => window.ks && document.readyState === "complete");
    await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
    // Rendered as the markup arrives (a busy machine may take a few more tasks: up to 2 s).
    await page.waitForFunction(() => document.getElementById("hero").innerText == "Welcome", null, { timeout: 2000 }).catch(() => {});
    const state = () => page.evaluate(() => ({
      hero: document.getElementById("hero").innerText,
      name: document.getElementById("name").textContent,
      show: getComputedStyle(document.getElementById("show")).display,
    }));
    assert.deepEqual(await state(), { hero: "Welcome", name: known ? "Ada" : "there", show: "block" });
    await page.evaluate(() => ks.setTraits({ firstName: "Ada" }));
    assert.equal((await state()).name, "Ada");
    await page.evaluate(() => ks.setTraits({ firstName: null }));
    // What comes back is the authored content, markup included (streamed after Keystone's text,
    // into its text node, when a chunk ends inside it).
    assert.equal((await state()).name, split ? "there you" : "there");
    if (split) assert.equal(await page.evaluate(() => document.getElementById("name").innerHTML), "there <b>you</b>");
    // After load, the page's own text that starts with Keystone's is the page's, whole.
    await page.evaluate(() => ks.setTraits({ firstName: "Ada" }));
    await page.evaluate(() => (document.getElementById("name").textContent = "Ada Lovelace"));
    await page.evaluate(() => ks.setTraits({ firstName: "Grace" }));
    assert.equal((await state()).name, "Grace");
    await page.evaluate(() => ks.setTraits({ firstName: null }));
    assert.equal((await state()).name, "Ada Lovelace");
  } finally {
    await context.close();
    server.close();
  }
});

test("invalid experiences are rejected with id, path and reason; the valid ones load", async () => {
  const { page, context, go } = await openPage("/tests/esm.html");
  await go();
  const out = await page.evaluate(async (defs) => {
    const ks = await Keystone.init({});
    const events = [];
    ks.on("error", (e) => events.push(e.segmentId));
    const doc = { ...defs, experiences: [...defs.experiences, { id: "broken", variants: [{ id: "a", cap: { count: 3, within: "a week" } }] }] };
    const r = await ks.loadSegments(doc);
    await new Promise((r) => setTimeout(r, 0));
    const e = r.rejected[0];
    return { loaded: r.loaded, rejected: r.rejected.map((e) => [e instanceof Error, e.code, e.segmentId, e.path, !!e.message]), events, hero: ks.decide("hero") };
  }, DEFS);
  assert.deepEqual(out.loaded, ["gold", "shoe_fans", "hero"]);
  assert.deepEqual(out.rejected, [[true, "invalid_segment", "broken", "/experiences/1/variants/0/cap/within", true]]);
  assert.deepEqual(out.events, ["broken"]);
  assert.deepEqual(out.hero, { experience: "hero", variant: "default", holdout: false });
  await context.close();
});

test("declarative experience: a variant with its own <template>, or whose nodes replace themselves, renders without looping", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const out = await page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    // A custom element that replaces itself when connected (as some widgets do).
    customElements.define("self-replacing", class extends HTMLElement {
      connectedCallback() {
        const s = document.createElement("span");
        s.textContent = "widget";
        this.replaceWith(s);
      }
    });
    document.body.insertAdjacentHTML(
      "beforeend",
      '<div id="nested" data-keystone-experience="x1"><p>fallback</p><template data-keystone-variant="a"><p>Variant A</p><template x-if="open"><span>more</span></template></template></div>' +
        '<div id="widget" data-keystone-experience="x2"><p>fallback</p><template data-keystone-variant="b"><self-replacing></self-replacing></template></div>',
    );
    let writes = 0;
    const mo = new MutationObserver((l) => (writes += l.length));
    for (const id of ["nested", "widget"]) mo.observe(document.getElementById(id), { childList: true });
    const defs = { version: 1, segments: [], experiences: [{ id: "x1", variants: [{ id: "a" }] }, { id: "x2", variants: [{ id: "b" }] }] };
    await Keystone.init({ segments: defs, autoCapture: false });
    for (let i = 0; i < 5; i++) await frame();
    const settled = writes;
    for (let i = 0; i < 5; i++) await frame();
    return { nested: document.getElementById("nested").innerText.trim(), widget: document.getElementById("widget").innerText.trim(), more: writes - settled, writes };
  });
  assert.equal(out.nested, "Variant A");
  assert.equal(out.widget, "widget");
  assert.equal(out.more, 0, "no render after it settled");
  // At most 3 renders within a task, tried again in 3 later tasks: 12 renders of a few records.
  assert.ok(out.writes < 80, `bounded renders (${out.writes} mutation records)`);
  await context.close();
});

test("declarative experience: a page rewriting the container several times within one task gets the variant back once it stops", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const shown = await page.evaluate(async () => {
    document.body.insertAdjacentHTML("beforeend", '<div id="burst" data-keystone-experience="x4"><p>fallback</p><template data-keystone-variant="a"><p>Variant A</p></template></div>');
    await Keystone.init({ segments: { version: 1, segments: [], experiences: [{ id: "x4", variants: [{ id: "a" }] }] }, autoCapture: false });
    const el = document.getElementById("burst");
    for (let i = 0; i < 4; i++) {
      for (const c of [...el.childNodes]) if (c.nodeName !== "TEMPLATE") c.remove();
      el.insertAdjacentHTML("afterbegin", `<p>framework ${i}</p>`);
      await Promise.resolve();
      await Promise.resolve();
    }
    await new Promise((r) => setTimeout(r, 200));
    return el.innerText.trim();
  });
  assert.equal(shown, "Variant A");
  await context.close();
});

test("declarative experience: a page re-rendering the container's content again and again gets the variant back each time", async () => {
  const { page, context, go } = await openPage("/tests/experiences.html");
  await go();
  const shown = await page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    document.body.insertAdjacentHTML("beforeend", '<div id="rr" data-keystone-experience="x3"><p>fallback</p><template data-keystone-variant="a"><p>Variant A</p></template></div>');
    await Keystone.init({ segments: { version: 1, segments: [], experiences: [{ id: "x3", variants: [{ id: "a" }] }] }, autoCapture: false });
    const el = document.getElementById("rr");
    const out = [];
    for (let i = 0; i < 6; i++) {
      for (const c of [...el.childNodes]) if (c.nodeName !== "TEMPLATE") c.remove();
      el.insertAdjacentHTML("afterbegin", `<p>fallback ${i}</p>`);
      await frame();
      out.push(el.innerText.trim());
    }
    return out;
  });
  assert.deepEqual(shown, Array(6).fill("Variant A"));
  await context.close();
});

test("a cap is reached after three exposures and released after its window (Playwright clock)", async () => {
  const { page, context, go } = await openPage("/tests/esm.html?utm_source=vip");
  await page.clock.install({ time: new Date("2026-03-02T10:00:00Z") });
  await go();
  const first = await page.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, autoCapture: false });
    const out = [];
    for (let i = 0; i < 4; i++) {
      ks.page();
      out.push(ks.decide("hero").variant, ks.decide("hero").variant); // sticky within the view
    }
    return { out, segs: ks.segments(), explain: ks.explain ? ks.explain("hero") : null };
  }, DEFS);
  assert.deepEqual(first.segs, ["gold"]);
  assert.deepEqual(first.out, ["gold_offer", "gold_offer", "gold_offer", "gold_offer", "gold_offer", "gold_offer", "default", "default"]);

  // Still capped after a reload and six days later (the exposures are stored).
  await page.clock.fastForward(6 * 24 * 3600 * 1000);
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const later = await page.evaluate(async (defs) => {
    window.ks = await Keystone.init({ segments: defs, autoCapture: false });
    ks.page();
    return ks.decide("hero").variant;
  }, DEFS);
  assert.equal(later, "default");

  // Seven days after the first exposures: released.
  await page.clock.fastForward(24 * 3600 * 1000 + 5 * 60 * 1000);
  const released = await page.evaluate(() => {
    ks.page();
    return ks.decide("hero").variant;
  });
  assert.equal(released, "gold_offer");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("the holdout draw is stable across calls, reloads and tabs", async () => {
  const defs = { ...DEFS, experiences: [{ ...DEFS.experiences[0], holdout: 0.5 }, { id: "all_out", holdout: 1, variants: [{ id: "a" }, { id: "control" }] }] };
  const context = await h.browser.newContext();
  const draws = [];
  for (let tab = 0; tab < 2; tab++) {
    const { page, go } = await openPage("/tests/esm.html", context);
    await go();
    for (let reload = 0; reload < 2; reload++) {
      if (reload) {
        await page.reload();
        await page.waitForFunction(() => window.__ksLoaded === true);
      }
      draws.push(
        await page.evaluate(async (defs) => {
          const ks = await Keystone.init({ segments: defs });
          const a = ks.decide("hero");
          ks.page();
          const b = ks.decide("hero");
          return { id: ks.anonymousId(), a: a.holdout, b: b.holdout, all: ks.decide("all_out") };
        }, defs),
      );
    }
  }
  assert.equal(new Set(draws.map((d) => d.id)).size, 1, "one visitor");
  assert.equal(new Set(draws.flatMap((d) => [d.a, d.b])).size, 1, "one draw: " + JSON.stringify(draws));
  assert.deepEqual(draws[0].all, { experience: "all_out", variant: "control", holdout: true });
  await context.close();
});

test("the demo shop's hero and offers are experiences", async () => {
  const { page, context } = await openPage("/");
  await page.goto(h.url("/"));
  await page.waitForFunction(() => document.documentElement.dataset.shopReady === "1");
  await page.waitForFunction(() => document.getElementById("hero").getAttribute("data-keystone-rendered") === "default");
  const out = await page.evaluate(() => ({
    hero: document.querySelectorAll("#hero > .hero-slide:not([hidden])").length,
    defaultShown: !!document.querySelector("#hero > #hero-default .ico, #hero > #hero-default svg"),
    offers: document.querySelector('[data-keystone-experience="offers"]').getAttribute("data-keystone-rendered"),
    goldOffer: !!document.getElementById("gold-offer"),
    views: ks.profile().events["Experience Viewed"].count,
  }));
  assert.deepEqual(out, { hero: 1, defaultShown: true, offers: "none", goldOffer: false, views: 2 });
  await context.close();
});

/** The documented draw (FNV-1a 64 over identity, 0xff, experience id; MurmurHash3 finalizer). */
function draw(identity, experience) {
  const M = (1n << 64n) - 1n;
  const enc = new TextEncoder();
  let h = 0xcbf29ce484222325n;
  for (const b of [...enc.encode(identity), 0xff, ...enc.encode(experience)]) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M;
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & M;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & M;
  h ^= h >> 33n;
  return Number(h >> 11n) / 2 ** 53;
}

test("the holdout is the documented draw of the identity; after a login it follows the known identity from the next page view", async () => {
  // Nineteen experiences with holdout 5 %, 10 % … 95 %: the flags pin the draw to a 5 % band.
  const fractions = Array.from({ length: 19 }, (_, i) => (i + 1) / 20);
  const defs = { version: 1, segments: [], experiences: fractions.map((f, i) => ({ id: "x" + i, holdout: f, variants: [{ id: "a" }, { id: "control" }] })) };
  const { page, context, go } = await openPage("/tests/esm.html");
  await go();
  const decideAll = () => page.evaluate((n) => Array.from({ length: n }, (_, i) => ks.decide("x" + i).holdout), fractions.length);
  const aid = await page.evaluate(async (defs) => (window.ks = await Keystone.init({ segments: defs })).anonymousId(), defs);
  assert.deepEqual(await decideAll(), fractions.map((f, i) => draw(aid, "x" + i) < f));
  if (await page.evaluate(() => typeof ks.identify === "function")) {
    const uid = await page.evaluate(async () => {
      await ks.identify("ada@example.com");
      return ks.userId();
    });
    assert.ok(uid);
    // The same person logged in: this page view keeps what it decided (DESIGN §13: sticky
    // within a page view unless membership changes).
    assert.deepEqual(await decideAll(), fractions.map((f, i) => draw(aid, "x" + i) < f));
    await page.evaluate(() => ks.page());
    assert.deepEqual(await decideAll(), fractions.map((f, i) => draw(uid, "x" + i) < f));
  }
  await context.close();
});

test("script-tag build: a declarative experience is decided once the calls queued before ready are replayed: one exposure, of the variant shown", async () => {
  const page = await h.open("/tests/experience-queued.html");
  const out = await page.evaluate(async () => {
    await keystone.init();
    await new Promise((r) => setTimeout(r, 50));
    const r = { shown, now: document.getElementById("hero").innerText.trim(), decide: keystone.decide("hero").variant, id: keystone.anonymousId() };
    await keystone.flush();
    return r;
  });
  assert.deepEqual([out.shown, out.now, out.decide], [["SHOES"], "SHOES", "shoes"]);
  const sent = h.server.collector.events.filter((e) => e.anonymousId === out.id);
  assert.deepEqual(sent.map((e) => [e.event, e.properties.variant]), [["Product Viewed", undefined], ["Product Viewed", undefined], ["Experience Viewed", "shoes"]]);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("a page view's exposure made without consent is not taken off its cap: a capped fallback stays capped when the decision is made again once consent is granted", async () => {
  const { page, context, go } = await openPage("/tests/esm.html");
  await go();
  const out = await page.evaluate(async () => {
    const defs = {
      version: 1,
      segments: [{ id: "gold", condition: { "traits.tier": "gold" } }],
      experiences: [{ id: "x", variants: [{ id: "gold_offer", segment: "gold", priority: 1 }, { id: "last", priority: 5, cap: { count: 1 } }] }],
    };
    const ks = await Keystone.init({ autoCapture: false, segments: defs });
    const r = {};
    r.first = ks.decide("x").variant; // "last" (priority 5, not capped yet): recorded
    await ks.setConsent({ analytics: false, personalization: false });
    ks.page(); // a new page view, nothing granted
    r.none = ks.decide("x").variant; // nothing eligible: the last variant, shown but not recorded
    const ex = ks.explain("x");
    r.capped = ex.capped;
    r.seen = ex.variants[1].seen;
    await ks.setConsent({ analytics: true, personalization: true });
    ks.setTraits({ tier: "gold" }); // membership changes: decided again, now recorded
    r.granted = ks.decide("x").variant;
    r.views = ks.profile().events["Experience Viewed"].count;
    return r;
  });
  // The cap counts the exposures of earlier page views: one, so "last" is capped in this page view
  // (before: its unrecorded exposure of this page view was taken off, making it eligible again).
  assert.deepEqual(out, { first: "last", none: "last", capped: ["last"], seen: 1, granted: "gold_offer", views: 2 });
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("a tracked button inside a variant, whose click changes the decision: the form still submits (to the page's listener and natively), then the new variant shows", async () => {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>CTA</title><link rel="icon" href="data:,">
<script type="module">import * as K from "/pkg/dist/keystone.js"; window.Keystone = K.Keystone; window.__ksLoaded = true;</script>
</head><body><div id="cta" data-keystone-experience="cta"><p>fallback</p>
<template data-keystone-variant="ask"><form id="f" action="/tests/esm.html" method="get"><input name="email" value="a@b.c"><button id="go" data-keystone-track="Signup Clicked">Sign up</button></form></template>
<template data-keystone-variant="thanks"><p id="thanks">Thanks for signing up</p></template></div></body></html>`;
  const defs = {
    version: 1,
    segments: [{ id: "clicked", condition: { $performed: { event: "Signup Clicked" } } }],
    experiences: [{ id: "cta", variants: [{ id: "thanks", segment: "clicked", priority: 10 }, { id: "ask" }] }],
  };
  for (const native of [false, true]) {
    const ctx = await h.browser.newContext();
    await ctx.route("**/cta-form.html", (r) => r.fulfill({ contentType: "text/html; charset=utf-8", body: html }));
    const page = await ctx.newPage();
    await page.goto(h.url("/cta-form.html"));
    await page.waitForFunction(() => window.__ksLoaded === true);
    await page.evaluate(
      async ([defs, native]) => {
        window.ks = await Keystone.init({ segments: defs, autoCapture: { pageViews: false } });
        window.submits = 0;
        // An SPA handles the submission itself; else the browser submits the form.
        document.addEventListener("submit", (e) => (submits++, native || e.preventDefault()));
      },
      [defs, native],
    );
    assert.ok(await page.$("#go"));
    await Promise.all([native ? page.waitForURL(/esm\.html\?email=a%40b\.c$/) : null, page.click("#go")]);
    if (native) assert.match(page.url(), /esm\.html\?email=a%40b\.c$/, "submitted natively");
    else {
      await page.waitForSelector("#thanks");
      assert.deepEqual(await page.evaluate(() => [submits, ks.inSegment("clicked"), !!document.getElementById("f")]), [1, true, false]);
    }
    await ctx.close();
  }
});
