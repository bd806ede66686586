// Shared set-up for the end-to-end tests: one local server (package, pages, collector) and
// Debian's Chromium driven by playwright-core. Pages under /tests/ come from tests/e2e/pages/.
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve.mjs";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

export const CHROMIUM_ARGS = [
  "--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
];

/** Debian's Chromium, headless, with `args` added to the usual ones and `options` (Playwright's
 * launch options) over them. */
export async function launch(args = [], options = {}) {
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: [...CHROMIUM_ARGS, ...args], headless: true, ...options });
}

/** A browser with the back/forward cache on (Playwright turns it off by default). */
export function launchWithBfcache() {
  return launch([], { ignoreDefaultArgs: ["--disable-back-forward-cache"] });
}

/** A browser that resolves every host under site.test to this machine, for the tests of
 * `cookieDomain` across real subdomains (each its own origin, with its own storage). */
export function launchSubdomains() {
  return launch(["--host-resolver-rules=MAP *.site.test 127.0.0.1"]);
}

/** `open(sub)` of a browser from `launchSubdomains()`: a new page of `ctx` on the test page of
 * `sub`.site.test, served by `server`, once the package has loaded. */
export function subdomainOpener(ctx, server) {
  return async (sub) => {
    const p = await ctx.newPage();
    await p.goto(`http://${sub}.site.test:${server.port}/tests/esm.html`);
    await p.waitForFunction(() => window.__ksLoaded === true);
    return p;
  };
}

/**
 * Starts a server and a browser for a test file. Returns helpers; call `close()` in `after`.
 * `open(path)` opens a page in a fresh context (or `ctx`), recording console warnings/errors
 * and page errors in `page.problems`.
 */
export async function setup() {
  const server = await startServer();
  const browser = await launch();
  async function open(path = "/tests/esm.html", { context } = {}) {
    const ctx = context || (await browser.newContext());
    const page = await ctx.newPage();
    page.problems = [];
    page.warnings = [];
    page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
    page.on("console", (m) => {
      if (m.type() === "error") page.problems.push("console.error: " + m.text());
      if (m.type() === "warning") page.warnings.push(m.text());
    });
    await page.goto(server.url + path);
    if (path.startsWith("/tests/esm.html")) await page.waitForFunction(() => window.__ksLoaded === true);
    return page;
  }
  return {
    server,
    browser,
    open,
    url: (p) => server.url + p,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/** Answers `route` after `ms` with a definitions document holding one segment, `id`, that every
 * visitor is in: a slow segments URL, for the tests of loads in flight. */
export function fulfillDefinitions(route, id, ms) {
  setTimeout(() => route.fulfill({ contentType: "application/json", body: JSON.stringify({ version: 1, segments: [{ id, condition: {} }] }) }), ms);
}

/** The seeds of a seeded random test: the environment variable `name` ("7", "1-200", "3,9"),
 * else `defaults`. */
export function seeds(name, defaults) {
  const s = process.env[name];
  if (!s) return defaults;
  const out = [];
  for (const part of s.split(",")) {
    const [a, b] = part.split("-").map(Number);
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)], chance: (p) => next() < p };
}

/** A local server for a page whose body streams in parts: it serves `pkg/dist/`, answers `/go`
 * (the page asks it once Keystone has started: the Promise given to `write` resolves) and writes
 * the page at `/` with `write(res, started)`. Resolves with the server, listening on 127.0.0.1. */
export async function streamPage(write) {
  const dist = new URL("../../pkg/dist/", import.meta.url);
  let go;
  const started = new Promise((r) => (go = r));
  const server = createServer(async (req, res) => {
    if (req.url.startsWith("/pkg/dist/")) {
      const file = req.url.slice(10);
      res.writeHead(200, { "content-type": file.endsWith(".wasm") ? "application/wasm" : "text/javascript" });
      return res.end(readFileSync(new URL(file, dist)));
    }
    if (req.url === "/go") return go(), res.end();
    if (req.url !== "/") return res.writeHead(404), res.end();
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    await write(res, started);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return server;
}
