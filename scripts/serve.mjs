// The local web server: the demo shop (www/), the built package (/pkg/), the test pages
// (/tests/), and a real Segment-spec collector at /v1/batch (see scripts/collector.mjs).
// `node scripts/serve.mjs [--port N]` serves until stopped; tests import startServer().
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { Collector } from "./collector.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ts": "text/plain; charset=utf-8",
};
/** The strictest policy Keystone is tested under (README "Content Security Policy"). */
export const STRICT_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; style-src 'self'; img-src 'self' data:";
const MOUNTS = [
  ["/pkg/", join(root, "pkg")],
  ["/tests/", join(root, "tests", "e2e", "pages")],
  ["/", join(root, "www")],
];

async function serveFile(req, res, url, mounts, strictCsp, cacheablePages) {
  for (const [prefix, dir] of mounts) {
    if (!url.pathname.startsWith(prefix)) continue;
    let rel = decodeURIComponent(url.pathname.slice(prefix.length));
    let file = normalize(join(dir, rel));
    if (!file.startsWith(dir)) break;
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      const headers = { "content-type": TYPES[extname(file)] || "application/octet-stream" };
      // no-store alone keeps a page out of the back/forward cache: pages go without it where
      // they must be able to enter it (as a site's pages would), every other file keeps it.
      if (!cacheablePages || extname(file) != ".html") headers["cache-control"] = "no-store";
      // Pages can ask for a strict CSP: /tests/csp.html?csp=strict is served with it. No inline
      // script, no eval, no inline style: only same-origin files and wasm compilation.
      if (strictCsp || url.searchParams.get("csp") === "strict") headers["content-security-policy"] = STRICT_CSP;
      res.writeHead(200, headers);
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    } catch {
      break;
    }
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found");
}

/**
 * The demo shop's sign-in session, as a shop's backend keeps it: the email stays on the server,
 * the browser holds a random id in an HttpOnly cookie. POST (the email as the body) signs in,
 * GET answers the email (204 when signed out), DELETE signs out.
 */
function shopSession(req, res, sessions) {
  const sid = /(?:^|; )shop_sid=(\w+)/.exec(req.headers.cookie || "")?.[1];
  if (req.method === "POST") {
    let body = "";
    req.on("data", (c) => (body += c).length > 1024 && req.destroy());
    req.on("end", () => {
      const id = randomBytes(16).toString("hex");
      sessions.set(id, body.trim());
      res.writeHead(204, { "set-cookie": `shop_sid=${id}; Path=/; HttpOnly; SameSite=Lax`, "cache-control": "no-store" });
      res.end();
    });
    return;
  }
  if (req.method === "DELETE") sessions.delete(sid);
  const email = req.method === "GET" && sessions.get(sid);
  res.writeHead(email ? 200 : 204, { "content-type": "text/plain", "cache-control": "no-store" });
  res.end(email || undefined);
}

/**
 * Starts the server; resolves with {url, port, collector, close}. Port 0 picks a free one.
 * `mounts`: extra `[urlPrefix, directory]` pairs, looked up before the standard ones;
 * `strictCsp`: serve every file with the strict CSP (as `?csp=strict` does for one);
 * `cacheablePages`: HTML pages without `cache-control: no-store`, so they can enter the
 * back/forward cache (with no request interception by the test driver to take the header off:
 * Playwright's holds some keepalive requests of a page being left for good, see README
 * "Reliability").
 */
export function startServer({ port = 0, host = "127.0.0.1", collectorLog, mounts = [], strictCsp = false, cacheablePages = false } = {}) {
  const all = [...mounts, ...MOUNTS];
  const collector = new Collector({ log: collectorLog });
  const sessions = new Map();
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (collector.handles(url)) return collector.handle(req, res, url);
    if (url.pathname === "/shop/session") return shopSession(req, res, sessions);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405);
      return res.end();
    }
    serveFile(req, res, url, all, strictCsp, cacheablePages).catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const p = server.address().port;
      resolve({
        url: `http://localhost:${p}`,
        port: p,
        collector,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--port");
  const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
  const s = await startServer({ port, collectorLog: join(root, "out", "collector.jsonl") });
  console.log(`Keystone demo shop:   ${s.url}/`);
  console.log(`  debug panel:        ${s.url}/?keystone_debug=1`);
  console.log(`  package:            ${s.url}/pkg/dist/keystone.js (keystone.global.js and snippet.js beside it)`);
  console.log(`  collector:          ${s.url}/v1/batch (write key "demo-key"; events in out/collector.jsonl)`);
  console.log("Press Ctrl+C to stop.");
}
