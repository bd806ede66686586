// How Keystone loads on pages a site owner does not fully control: two copies of Keystone on one
// page (the site's bundle and a tag manager's script tag; one module from two URLs), a page
// that runs Keystone in a Web Worker, and servers that never answer for the wasm or the
// script-tag build.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const SNIPPET = readFileSync(new URL("../../pkg/dist/snippet.js", import.meta.url), "utf8");
const DEFS = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };
const DELIVERY = { endpoint: "/v1/batch", writeKey: "demo-key" };

/** A fresh context and page recording page errors and console warnings. */
async function fresh(path, prepare) {
  const ctx = await h.browser.newContext();
  if (prepare) await prepare(ctx);
  const page = await ctx.newPage();
  page.problems = [];
  page.warnings = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  page.on("console", (m) => m.type() === "warning" && page.warnings.push(m.text()));
  await page.goto(h.url(path));
  return { ctx, page };
}

/** The events the collector received from pages whose URL holds `mark`. */
const sentFrom = (mark) => h.server.collector.events.filter((e) => (e.context?.page?.url || "").includes(mark));

test("a Web Worker: init rejects with unsupported_environment, nothing is thrown into the worker; Keystone.load() and evalCondition work there", async () => {
  const { ctx, page } = await fresh("/tests/blank.html");
  const out = await page.evaluate(async () => {
    const origin = location.origin;
    const run = (source, type) =>
      new Promise((resolve) => {
        const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
        const w = new Worker(url, { type });
        const uncaught = [];
        w.onerror = (e) => (uncaught.push("error " + e.message), e.preventDefault());
        w.onmessage = (e) => resolve({ ...e.data, uncaught });
        setTimeout(() => resolve({ timeout: true, uncaught }), 10000);
      });
    const watch = `const problems = [];
      self.addEventListener("error", (e) => problems.push("error " + e.message));
      self.addEventListener("unhandledrejection", (e) => problems.push("unhandled " + (e.reason && e.reason.code)));
      const settle = (p) => p.then(() => "resolved", (e) => [e.name, e.code, e instanceof Error]);`;
    const esm = await run(
      `import { Keystone, KeystoneError } from "${origin}/pkg/dist/keystone.js";
      ${watch}
      const init = await settle(Keystone.init({ autoCapture: false }));
      const again = await settle(Keystone.init());
      await Keystone.load();
      const evalCondition = Keystone.evalCondition({ a: 2 }, { a: { $gt: 1 } });
      setTimeout(() => postMessage({ init, again, evalCondition, problems }), 100);`,
      "module",
    );
    const global = await run(
      `${watch}
      let loaded = "loaded";
      try { importScripts("${origin}/pkg/dist/keystone.global.js"); } catch (e) { loaded = "threw " + e.message; }
      (async () => {
        const init = self.keystone ? await settle(self.keystone.init({ autoCapture: false })) : "no keystone";
        setTimeout(() => postMessage({ loaded, init, problems }), 100);
      })();`,
      "classic",
    );
    return { esm, global };
  });
  const no = ["KeystoneError", "unsupported_environment", true];
  assert.deepEqual(out, {
    esm: { init: no, again: no, evalCondition: true, problems: [], uncaught: [] },
    global: { loaded: "loaded", init: no, problems: [], uncaught: [] },
  });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
