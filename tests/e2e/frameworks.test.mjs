// Declarative personalization under front-end frameworks that own their DOM: React 19 (server
// rendering + hydration, a client root, a root that owns <html> as a Next.js root layout), Vue 3
// (createSSRApp + hydration, a client app) and Preact 10, each with Keystone loaded in <head> as
// the ESM entry and as the tag-manager snippet. What a site expects: no framework error or
// warning caused by Keystone, the server HTML kept, personalization painted once (never the
// authored state of an element the visitor's profile changes, never a blink) and kept through
// re-renders, a re-keyed list and a client-side route change. The apps are in frameworks/; the
// pages are built (renderToString of each framework, esbuild bundles) into a temporary directory.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../../scripts/serve.mjs";
import { launch } from "./harness.mjs";
import { buildPages, FRAMEWORKS } from "./frameworks/build.mjs";

let server, browser, ctx, dir;

// Runs in every page before its scripts: at each frame, before it is painted, notes what a
// visitor who is in "gold" and named Ada must never see: the element hidden for gold members, a
// name other than Ada's, a gold element that was shown disappearing again (a blink).
function watchPaint() {
  window.__painted = [];
  const shown = {};
  const vis = (el) => !!el && el.isConnected && getComputedStyle(el).display != "none" && getComputedStyle(el).visibility == "visible";
  const frame = () => {
    const $ = (id) => document.getElementById(id);
    const note = (what) => window.__painted.includes(what) || window.__painted.push(what);
    if (vis($("hide"))) note("#hide painted");
    for (const id of ["name", "name2"]) if (vis($(id)) && $(id).textContent != "Ada") note(`#${id} painted as ${JSON.stringify($(id).textContent)}`);
    for (const id of ["show", "show2"]) {
      const el = $(id);
      if (vis(el)) shown[id] = el;
      else if (shown[id] && shown[id] === el) note(`#${id} blinked`);
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  document.addEventListener("DOMContentLoaded", () => (window.__server = document.getElementById("app")));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "keystone-frameworks-"));
  await buildPages(dir);
  server = await startServer({ mounts: [["/fw/", dir]] });
  browser = await launch();
  ctx = await browser.newContext();
  await ctx.addInitScript(watchPaint);
  // The visitor: a gold customer named Ada, as an earlier page of the site stored her.
  const page = await ctx.newPage();
  await page.goto(server.url + "/fw/preact-esm-client.html");
  await page.waitForFunction(() => window.ks);
  await page.evaluate(() => ks.setTraits({ tier: "gold", firstName: "Ada" }));
  await page.waitForFunction(() => (localStorage.getItem("ks_profile") || "").includes("Ada"));
  await page.close();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens a page of the context (the stored visitor), recording errors and warnings of every kind. */
async function open(path, { slowWasm = false } = {}) {
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  page.on("console", (m) => ["error", "warning"].includes(m.type()) && page.problems.push(`console.${m.type()}: ${m.text().slice(0, 600)}`));
  // The framework first: Keystone's wasm arrives 300 ms after the page asked for it.
  if (slowWasm) await page.route("**/keystone_bg.wasm", (r) => setTimeout(() => r.continue().catch(() => {}), 300));
  await page.goto(server.url + path);
  await page.waitForFunction(() => window.__started && document.documentElement.classList.contains("keystone-ready") && (window.ks || window.keystone)?.inSegment?.("gold"));
  await settle(page);
  return page;
}
/** Two frames and a task: Keystone's microtask renders and the framework's effects have run. */
const settle = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 20)))));

/** What is rendered (display not none and visibility visible) and the texts that matter. */
const state = (page) =>
  page.evaluate(() => {
    const vis = (el) => !!el && getComputedStyle(el).display != "none" && getComputedStyle(el).visibility == "visible";
    const $ = (id) => document.getElementById(id);
    const out = {};
    for (const id of ["show", "hide", "show2"]) if ($(id)) out[id] = vis($(id));
    for (const id of ["name", "name2", "count"]) if ($(id)) out[id] = $(id).textContent;
    const items = [...document.querySelectorAll(".item")];
    if (items.length) out.items = items.map((li) => li.textContent + (vis(li) ? "" : " (hidden)"));
    return out;
  });

/** Everything that went wrong on the page: errors, warnings, the framework's own reports, paints. */
const problems = (page) => page.evaluate(() => [...window.__errors, ...window.__painted]).then((own) => [...page.problems, ...own]);

/** Calls the app, waits until the framework has committed (`done` holds), then a settle. */
async function act(page, call, done) {
  await page.evaluate(call);
  await page.waitForFunction(done);
  await settle(page);
}

/** The app's life after it started: a re-render, a re-keyed list, a client-side route. */
async function exercise(page, what) {
  assert.deepEqual(await state(page), { show: true, hide: false, name: "Ada", count: "renders 0", items: ["item a", "item b"] }, what + ": personalized at start");
  await act(page, () => __app.bump(), () => document.getElementById("count").textContent == "renders 1");
  assert.deepEqual(await state(page), { show: true, hide: false, name: "Ada", count: "renders 1", items: ["item a", "item b"] }, what + ": after a re-render");
  await act(page, () => __app.rekey(), () => document.querySelector(".item").textContent == "item b2");
  assert.deepEqual((await state(page)).items, ["item b2", "item a2"], what + ": a re-keyed list's new elements are personalized");
  await act(page, () => __app.go("/two"), () => document.getElementById("two"));
  assert.deepEqual(await state(page), { show2: true, name2: "Ada", count: "renders 1" }, what + ": after a client-side route change");
  assert.deepEqual(await problems(page), [], what + ": no error, no warning, nothing painted wrong");
}

for (const fw of FRAMEWORKS)
  for (const form of ["esm", "snippet"])
    test(`${fw}, Keystone as ${form === "esm" ? "the ESM entry" : "the snippet"}: hydration (Keystone first, or the framework first) and a client render keep the server HTML and the personalization`, async () => {
      for (const [what, path, opts] of [
        ["hydrated after Keystone rendered", `/fw/${fw}-${form}.html?at=late`, {}],
        ["hydrated before Keystone started", `/fw/${fw}-${form}.html?at=once`, { slowWasm: true }],
        ["rendered on the client", `/fw/${fw}-${form}-client.html?at=once`, {}],
      ]) {
        const page = await open(path, opts);
        if (!path.includes("-client")) assert.ok(await page.evaluate(() => window.__server && document.getElementById("app") === window.__server), `${what}: the server-rendered elements are the ones on the page`);
        await exercise(page, `${fw} ${form} ${what}`);
        await page.close();
      }
    });

test("React without suppressHydrationWarning: filled text is a hydration error and React renders the root again, yet the page stays personalized", async () => {
  const page = await open("/fw/react-plain.html?at=late");
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0], /^recoverable: Hydration failed because the server rendered text didn't match the client/);
  assert.equal(await page.evaluate(() => document.getElementById("app") === window.__server), false, "the server HTML was thrown away");
  assert.deepEqual(await state(page), { show: true, hide: false, name: "Ada", count: "renders 0", items: ["item a", "item b"] });
  assert.deepEqual(await page.evaluate(() => window.__painted), []);
  await page.close();
});

test("a React root that owns <html> (a Next.js root layout): no hydration warning, and a className it sets later (a theme) does not make personalized content blink", async () => {
  const page = await open("/fw/react-document.html?at=late");
  await act(page, () => __app.theme("dark"), () => document.documentElement.classList.contains("dark"));
  const after = await page.evaluate(() => ({ cls: document.documentElement.className, show: getComputedStyle(document.getElementById("show")).visibility }));
  assert.deepEqual(after, { cls: "dark keystone-ready", show: "visible" });
  assert.deepEqual(await problems(page), []);
  await page.close();
});

test("README: the React hook useSegment, as written, renders the gold offer once Keystone has started, with no hydration error", async () => {
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  page.on("console", (m) => ["error", "warning"].includes(m.type()) && page.problems.push(`console.${m.type()}: ${m.text().slice(0, 600)}`));
  await page.goto(server.url + "/fw/react-hook.html");
  assert.equal(await page.locator("#hooked").count(), 1);
  await page.waitForSelector("#hooked .offer");
  assert.equal(await page.textContent("#hooked .offer"), "Gold members: free shipping");
  // Leaving the segment takes the offer away, live.
  await page.evaluate(async () => {
    const { Keystone } = await import("keystone-cdp");
    (await Keystone.init()).setTraits({ tier: "silver" });
  });
  await page.waitForSelector("#hooked .offer", { state: "detached" });
  assert.deepEqual([...page.problems, ...(await page.evaluate(() => window.__errors))], []);
  await page.close();
});
