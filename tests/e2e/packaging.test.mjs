// Packaging (DESIGN §1): the built package is packed with `npm pack`, installed from the tarball
// into a fresh app (offline), bundled by Vite 7 and by esbuild (IIFE and ESM, the wasm copied and
// named with `wasmUrl`) and run in Chromium; the installed files are also
// loaded by a plain <script type="module"> and by keystone.global.js from a script tag.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { build as esbuild } from "esbuild";
import { startServer } from "../../scripts/serve.mjs";
import { launch } from "./harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEFS = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };
let tmp, app, tarball, packedFiles, server, browser;

const npm = (args, cwd) => execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "keystone-pack-"));
  const packed = JSON.parse(npm(["pack", join(root, "pkg"), "--pack-destination", tmp, "--json", "--ignore-scripts"], tmp));
  tarball = join(tmp, packed[0].filename);
  packedFiles = packed[0].files.map((f) => f.path).sort();
  app = join(tmp, "app");
  mkdirSync(join(app, "src"), { recursive: true });
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "vite-app", private: true, type: "module" }));
  npm(["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], app);
  writeFileSync(
    join(app, "index.html"),
    `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>vite app</title></head>
<body><p id="show" data-keystone-show="viewers" hidden>for viewers</p><script type="module" src="/src/main.js"></script></body></html>`,
  );
  writeFileSync(
    join(app, "src", "main.js"),
    `import { Keystone, KeystoneError } from "keystone-cdp";
const defs = ${JSON.stringify(DEFS)};
Keystone.init({ segments: defs }).then((ks) => {
  const before = ks.inSegment("viewers");
  ks.track("Product Viewed", { sku: "A1" });
  window.result = { before, after: ks.inSegment("viewers"), segments: ks.segments(), error: typeof KeystoneError };
}, (e) => (window.result = { failed: e.code }));
`,
  );
  await build({ root: app, base: "/vite/", logLevel: "silent", configFile: false, build: { outDir: join(app, "dist"), emptyOutDir: true } });
  // esbuild emits no wasm: the app copies it and says where with `wasmUrl`. Its default output
  // format (IIFE) has no import.meta.url: the package must still not break the bundle.
  const esb = join(app, "esb");
  mkdirSync(join(esb, "wasm"), { recursive: true });
  const wasm = readFileSync(join(app, "node_modules", "keystone-cdp", "dist", "keystone_bg.wasm"));
  writeFileSync(join(esb, "wasm", "keystone_bg.wasm"), wasm); // named by wasmUrl (IIFE page)
  writeFileSync(join(esb, "keystone_bg.wasm"), wasm); // next to the ESM bundle: found by default
  writeFileSync(
    join(app, "src", "esb.js"),
    `import { Keystone } from "keystone-cdp";
window.alive = true; // the site's own code after the import runs
Keystone.init({ segments: ${JSON.stringify(DEFS)}, wasmUrl: window.WASM_URL }).then((ks) => {
  ks.track("Product Viewed");
  window.result = { segments: ks.segments() };
}, (e) => (window.result = { failed: e.code + " " + e.message }));
`,
  );
  for (const format of ["iife", "esm"]) {
    await esbuild({ entryPoints: [join(app, "src", "esb.js")], bundle: true, platform: "browser", format: format === "esm" ? "esm" : undefined, outfile: join(esb, format + ".js"), logLevel: "silent", absWorkingDir: app });
    const pre = format === "esm" ? "" : '<script>window.WASM_URL = "/esb/wasm/keystone_bg.wasm"</script>';
    writeFileSync(join(esb, format + ".html"), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">${pre}<script ${format === "esm" ? 'type="module" ' : ""}src="/esb/${format}.js"></script>`);
  }
  server = await startServer({ mounts: [["/vite/", join(app, "dist")], ["/esb/", esb], ["/installed/", join(app, "node_modules", "keystone-cdp")]] });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function open(path, init) {
  const ctx = await browser.newContext();
  if (init) await ctx.addInitScript(init.fn, init.arg);
  const page = await ctx.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => (m.type() === "error" || /wasm|MIME/i.test(m.text())) && problems.push(m.text()));
  await page.goto(server.url + path);
  page.problems = problems;
  return page;
}

test("the tarball holds exactly the public files, and package.json points at them", () => {
  assert.deepEqual(packedFiles, ["LICENSE", "README.md", "dist/keystone.d.ts", "dist/keystone.global.js", "dist/keystone.js", "dist/keystone_bg.wasm", "dist/snippet.js", "package.json"]);
  const pkg = JSON.parse(readFileSync(join(app, "node_modules", "keystone-cdp", "package.json"), "utf8"));
  assert.equal(pkg.name, "keystone-cdp");
  assert.equal(pkg.exports["."].import, "./dist/keystone.js");
  assert.equal(pkg.exports["."].types, "./dist/keystone.d.ts");
  for (const f of [pkg.main, pkg.types, pkg.exports["./global"], pkg.exports["./snippet"]]) assert.ok(existsSync(join(app, "node_modules", "keystone-cdp", f)), f);
});

test("keystone.d.ts type-checks an application using every method (tsc --strict)", () => {
  mkdirSync(join(app, "types"), { recursive: true });
  for (const f of ["usage.ts", "segments.json"]) writeFileSync(join(app, "types", f), readFileSync(join(root, "tests", "types", f)));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom", "--skipLibCheck", "false", "--resolveJsonModule", "types/usage.ts"];
  try {
    execFileSync(process.execPath, [tsc, ...args], { cwd: app, encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    assert.fail("tsc reported:\n" + e.stdout + e.stderr);
  }
});

test("every method in keystone.d.ts has TSDoc with an @example", () => {
  const dts = readFileSync(join(app, "node_modules", "keystone-cdp", "dist", "keystone.d.ts"), "utf8");
  const methods = ["page", "track", "identify", "reset", "setTraits", "setConsent", "forget", "loadSegments", "segments", "inSegment", "explain", "decide", "profile", "anonymousId", "userId", "on", "off", "flush", "refresh", "init", "load", "evalCondition"];
  const undocumented = [];
  for (const m of methods) {
    // Each declaration `  name(` or `  name<` must follow a /** … @example … */ block.
    const re = new RegExp("/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*" + m + "[<(]", "g");
    const docs = [...dts.matchAll(re)];
    if (!docs.length || docs.some((d) => !d[1].includes("@example"))) undocumented.push(m);
  }
  assert.deepEqual(undocumented, []);
});

test("a Vite 7 app importing keystone-cdp builds and runs in Chromium", async () => {
  const assets = readdirSync(join(app, "dist", "assets"));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), "Vite emitted the wasm as an asset: " + assets.join(", "));
  const page = await open("/vite/index.html");
  await page.waitForFunction(() => window.result, null, { timeout: 10000 });
  const result = await page.evaluate(() => window.result);
  assert.deepEqual(result, { before: false, after: true, segments: ["viewers"], error: "function" });
  await page.waitForFunction(() => !document.getElementById("show").hidden);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

for (const format of ["iife", "esm"]) {
  test(`esbuild (${format === "iife" ? "its default format, IIFE: the wasm named by the wasmUrl option" : "ESM: the wasm copied next to the bundle"}): the bundle runs`, async () => {
    const page = await open(`/esb/${format}.html`);
    await page.waitForFunction(() => window.result, null, { timeout: 10000 });
    assert.deepEqual(await page.evaluate(() => ({ alive: window.alive, result: window.result })), { alive: true, result: { segments: ["viewers"] } });
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
}

test("the installed package works from a plain <script type=module>", async () => {
  const page = await open("/tests/blank.html");
  const out = await page.evaluate(async (defs) => {
    const { Keystone } = await import("/installed/dist/keystone.js");
    const ks = await Keystone.init({ segments: defs });
    ks.track("Product Viewed");
    return ks.segments();
  }, DEFS);
  assert.deepEqual(out, ["viewers"]);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("the installed package works from keystone.global.js in a script tag", async () => {
  const page = await open("/tests/blank.html", { fn: (defs) => (window.keystoneConfig = { segments: defs }), arg: DEFS });
  const out = await page.evaluate(async () => {
    const s = document.createElement("script");
    s.src = "/installed/dist/keystone.global.js";
    document.head.appendChild(s);
    await new Promise((r) => (s.onload = r));
    await window.keystone.init();
    window.keystone.track("Product Viewed");
    return window.keystone.inSegment("viewers");
  });
  assert.equal(out, true);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
