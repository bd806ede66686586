// The docs keep their promises: the code blocks of README.md and of the package's README run as
// written in Chromium against the built package (the CDN host of the examples is served from
// pkg/, the elided collector is the local one), and do what the text around them says; every
// README block and every `@example` of keystone.d.ts compiles with `tsc --strict`; values the
// running package returns satisfy the types keystone.d.ts declares for them (no property missing,
// none untyped); the README's error-code table lists exactly the codes the sources raise, and
// `KeystoneErrorCode` the same ones.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { setup } from "./harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (...p) => readFileSync(join(root, ...p), "utf8");
const README = read("README.md");
const PKG_README = read("pkg-template", "README.md");
const DTS = read("pkg", "dist", "keystone.d.ts");
const CDN = "https://cdn.example/keystone-cdp/";

/** The fenced code blocks of a Markdown text, each with the `## ` section it is in. */
function blocks(md) {
  const out = [];
  let section = "";
  let open = null;
  for (const line of md.split("\n")) {
    if (open) {
      if (line.startsWith("```")) out.push(open), (open = null);
      else open.code += line + "\n";
    } else if (line.startsWith("```")) open = { section, lang: line.slice(3).trim(), code: "" };
    else if (line.startsWith("## ")) section = line.slice(3).trim();
  }
  return out;
}
/** The one block of `lang` in `section` that holds `marker` (a README edit that moves it fails here, loudly). */
function block(md, section, lang, marker = "") {
  const found = blocks(md).filter((b) => b.section === section && b.lang === lang && b.code.includes(marker));
  assert.equal(found.length, 1, `one ${lang} block holding ${JSON.stringify(marker)} in the section "${section}"`);
  return found[0].code;
}
/** `text` with `from` replaced by `to`; `from` must be there (what the test completes is elided in the docs). */
function complete(text, from, to) {
  assert.ok(text.includes(from), "the example still holds " + from);
  return text.split(from).join(to);
}

let h;
let tmp;
before(async () => {
  h = await setup();
  tmp = mkdtempSync(join(tmpdir(), "keystone-readme-"));
});
after(async () => {
  if (h) await h.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A page at `path` on the test server with `html` as its document; the examples' CDN serves
 * pkg/ (cross-origin, with `Access-Control-Allow-Origin` as the README asks for the wasm). */
async function page(path, html) {
  const ctx = await h.browser.newContext();
  await ctx.route(CDN + "**", (route) => {
    const file = new URL(route.request().url()).pathname.replace("/keystone-cdp/", "");
    let body;
    try {
      body = readFileSync(join(root, "pkg", file));
    } catch {
      return route.fulfill({ status: 404, body: "not found" });
    }
    route.fulfill({ body, headers: { "content-type": file.endsWith(".wasm") ? "application/wasm" : "text/javascript", "access-control-allow-origin": "*" } });
  });
  await ctx.route(h.url(path), (route) => route.fulfill({ contentType: "text/html; charset=utf-8", body: html }));
  const p = await ctx.newPage();
  p.problems = [];
  p.logs = [];
  p.on("pageerror", (e) => p.problems.push("pageerror: " + e.message));
  p.on("console", (m) => (m.type() === "error" ? p.problems.push(m.text()) : p.logs.push(m.text())));
  await p.goto(h.url(path));
  return p;
}
/** Waits for the example to have run (`window[name]` set), or fails with the page's errors. */
async function ran(p, name) {
  await p.waitForFunction((name) => window[name], name, { timeout: 10000 }).catch(() => assert.fail(`the example did not run: ${p.problems.join(" | ") || "no page error"}`));
}
const HEAD = '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>README example</title>';
const IMPORT_MAP = '<script type="importmap">{"imports": {"keystone-cdp": "/pkg/dist/keystone.js"}}</script>';

for (const [name, md, section] of [["README.md", README, "Quick start: npm"], ["the package's README", PKG_README, ""]]) {
  test(`${name}: the npm quick start runs as written (a shoe view tracked, the banner only for a shoe fan, its segment:enter listener heard)`, async () => {
    let code = block(md, section, "js", 'from "keystone-cdp"');
    if (code.includes("collector.example")) {
      code = complete(code, '"https://collector.example/v1/batch"', '"/v1/batch"');
      code = complete(code, 'writeKey: "…"', 'writeKey: "demo-key"');
    }
    const p = await page(
      "/readme/quick-start.html",
      `${HEAD}${IMPORT_MAP}<script>window.banners = 0; function showShoeBanner() { window.banners++; }</script>
<script type="module">${code}
window.ks = ks;</script></head><body></body></html>`,
    );
    await ran(p, "ks");
    const out = await p.evaluate(async () => {
      const first = { banners: window.banners, segments: ks.segments() };
      // The example's visitor views a second pair of shoes: a shoe fan now (/segments.json: two
      // views in 7 days), heard by the example's listener.
      ks.track("Product Viewed", { category: "shoes", price: 89 });
      return { first, shoeFan: ks.inSegment("shoe_fans"), anonymousId: ks.anonymousId(), flushed: await ks.flush().then(() => "resolved", (e) => e.code) };
    });
    assert.deepEqual(out.first, { banners: 0, segments: [] }, "one view makes no shoe fan");
    assert.equal(out.shoeFan, true);
    if (code.includes('ks.on("segment:enter"')) assert.ok(p.logs.includes("entered shoe_fans"), "the listener logged the entry: " + p.logs.join(" | "));
    assert.equal(out.flushed, "resolved");
    if (md === README) {
      const sent = h.server.collector.events.filter((e) => e.anonymousId === out.anonymousId && e.event === "Product Viewed");
      assert.deepEqual(sent.map((e) => e.properties), [{ category: "shoes", price: 89 }, { category: "shoes", price: 89 }], "delivered with the example's write key");
    }
    assert.deepEqual(p.problems, []);
    await p.context().close();
  });
}

test("README: the tag-manager snippet as pasted: the stub queues calls and answers the empty state, on() chains, the loaded script replays in order and answers directly", async () => {
  const code = block(README, "Quick start: tag manager", "html", "snippet.js");
  const p = await page(
    "/readme/tag-manager.html",
    `${HEAD}${code}<script>
  const k = window.keystone;
  window.stub = { stub: Array.isArray(k.q), segments: k.segments(), inSegment: k.inSegment("shoe_fans"), profile: k.profile(), decide: k.decide("hero"), anonymousId: k.anonymousId() };
  window.entered = [];
  window.stub.chains = k.on("segment:enter", ({ segment }) => window.entered.push(segment)) === k;
  k.track("Product Viewed", { category: "shoes" });
  k.track("Product Viewed", { category: "shoes" });
  window.ready = k.init().then((ks) => ({ segments: ks.segments() }));
</script></head><body></body></html>`,
  );
  const out = await p.evaluate(async () => ({ stub: window.stub, ready: await window.ready, direct: window.keystone.inSegment("shoe_fans"), entered: window.entered, same: window.keystone === k, chains: window.keystone.on("reset", () => {}) === k }));
  assert.deepEqual(out.stub, { stub: true, segments: [], inSegment: false, profile: null, decide: null, anonymousId: null, chains: true });
  assert.ok(out.ready.segments.includes("shoe_fans"), "the queued views were replayed: " + out.ready.segments);
  assert.equal(out.direct, true, "once loaded, window.keystone answers directly");
  assert.ok(out.entered.includes("shoe_fans"), "the queued listener heard the queued views");
  assert.equal(out.same, true, "the loaded script upgraded the same object");
  assert.equal(out.chains, true, "on() still returns window.keystone once loaded (as KeystoneGlobal declares)");
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

/** The README's declarative page: its anti-flicker style in <head>, the least a page needs, then
 * the markup and the experience container. */
const declarative = () =>
  `${HEAD}${block(README, "Declarative personalization", "html", "<style>")}${block(README, "Declarative personalization", "html", "keystone.global.js")}</head><body>
${block(README, "Declarative personalization", "html", "<section")}
${block(README, "Activation and experiences", "html", "data-keystone-experience")}</body></html>`;

test("README: the declarative page as written: show/hide by segment, text from traits (authored text kept until then), click tracking, the experience's template", async () => {
  const p = await page("/readme/declarative.html", declarative());
  await p.waitForFunction(() => document.documentElement.classList.contains("keystone-ready"), null, { timeout: 10000 });
  const state = () =>
    p.evaluate(() => {
      const shown = (el) => !el.hidden && getComputedStyle(el).display != "none" && getComputedStyle(el).visibility == "visible";
      return {
        shoes: shown(document.querySelector('[data-keystone-show="shoe_fans"]')),
        join: shown(document.querySelector('[data-keystone-hide="gold"]')),
        hello: document.querySelector("p").textContent,
        hero: document.querySelector('[data-keystone-experience="hero"]').innerText.trim(),
      };
    });
  assert.deepEqual(await state(), { shoes: false, join: true, hello: "Hello, there!", hero: "Welcome" }, "a new visitor");
  await p.evaluate(() => {
    keystone.setTraits({ firstName: "Ada" });
    keystone.track("Product Viewed", { category: "shoes" });
    keystone.track("Product Viewed", { category: "shoes" });
  });
  // A shoe fan: the hero's "shoes" variant has no template here, so the authored fallback shows.
  assert.deepEqual(await state(), { shoes: true, join: true, hello: "Hello, Ada!", hero: "Authored fallback" }, "a shoe fan named Ada");
  await p.evaluate(() => keystone.setTraits({ tier: "gold" }));
  assert.deepEqual(await state(), { shoes: true, join: false, hello: "Hello, Ada!", hero: "Gold members: free shipping" }, "a gold customer");
  await p.click("button");
  assert.equal(await p.evaluate(() => keystone.profile().events["Newsletter Clicked"]?.count), 1);
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test("README: the anti-flicker rule to inline is the one Keystone injects, and reveals content after 1 s when Keystone never loads", async () => {
  const style = block(README, "Declarative personalization", "html", "<style>");
  const css = style.replace(/^\s*<style>|<\/style>\s*$/g, "");
  const p = await page("/readme/declarative.html", declarative());
  await p.waitForFunction(() => document.documentElement.classList.contains("keystone-ready"), null, { timeout: 10000 });
  const rules = await p.evaluate((css) => {
    const mine = new CSSStyleSheet();
    mine.replaceSync(css);
    const injected = document.adoptedStyleSheets.find((s) => [...s.cssRules].some((r) => r.cssText.includes("keystone-reveal")));
    return { readme: [...mine.cssRules].map((r) => r.cssText), injected: injected ? [...injected.cssRules].map((r) => r.cssText) : [] };
  }, css);
  assert.ok(rules.readme.length > 0);
  assert.deepEqual(rules.injected.slice(0, rules.readme.length), rules.readme, "the README's rule is the injected one");
  await p.context().close();
  // Keystone blocked: the authored content appears after the 1 s of the inlined rule.
  const q = await page("/readme/blocked.html", `${HEAD}${style}</head><body>${block(README, "Declarative personalization", "html", "<section")}</body></html>`);
  const probe = await q.evaluate(() => {
    const el = document.querySelector('[data-keystone-hide="gold"]');
    const reveal = el.getAnimations().find((a) => a.animationName === "keystone-reveal");
    return { visibility: getComputedStyle(el).visibility, delay: reveal?.effect.getTiming().delay, at: reveal?.currentTime };
  });
  assert.equal(probe.delay, 1000, "revealed by the rule's animation after 1000 ms");
  if (probe.at < 900) assert.equal(probe.visibility, "hidden", "invisible while Keystone may still come"); // (unless the machine was that slow)
  await q.waitForFunction(() => getComputedStyle(document.querySelector('[data-keystone-hide="gold"]')).visibility === "visible", null, { timeout: 5000 });
  await q.context().close();
});

test("README: the experience example answers what its comments say (decide's result, explain's fields)", async () => {
  const code = block(README, "Activation and experiences", "js", "decide(");
  const p = await page(
    "/readme/experience.html",
    `${HEAD}${IMPORT_MAP}<script type="module">import { Keystone } from "keystone-cdp";
const ks = await Keystone.init({ segments: "/segments.json", autoCapture: false });
ks.track("Product Viewed", { category: "shoes" });
ks.track("Product Viewed", { category: "shoes" });
${code}
window.out = { decision, variant, explained: ks.explain("hero"), unknown: ks.decide("no_such_experience") };</script></head><body></body></html>`,
  );
  await ran(p, "out");
  const out = await p.evaluate(() => window.out);
  const said = code.match(/decide\("hero"\); \/\/ (\{[^}]*\})/);
  assert.ok(said, "decide()'s comment shows its answer");
  assert.deepEqual(out.decision, Function("return (" + said[1] + ")")());
  assert.equal(out.variant, out.decision.variant);
  const keys = code.match(/explain\("hero"\); \/\/ (\{.*\})/);
  assert.ok(keys, "explain()'s comment shows its fields");
  assert.deepEqual(Object.keys(out.explained).sort(), [...keys[1].matchAll(/[{,]\s*(\w+)/g)].map((m) => m[1]).sort());
  assert.equal(out.unknown, null, "an experience not defined: null, as the example's comment says");
  await p.context().close();
});

/** Runs `tsc --strict` over `files` ({name: source}) in a fresh app that has the built package
 * installed as `keystone-cdp`; fails with what tsc reported. */
function tsc(dir, files) {
  const app = join(tmp, dir);
  mkdirSync(join(app, "node_modules"), { recursive: true });
  symlinkSync(join(root, "pkg"), join(app, "node_modules", "keystone-cdp"), "dir");
  for (const [f, text] of Object.entries(files)) writeFileSync(join(app, f), text);
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom", "--skipLibCheck", "false", ...Object.keys(files)];
  try {
    execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), ...args], { cwd: app, encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    const shown = (e.stdout + e.stderr).replace(/^(\w+\.ts)\((\d+)/gm, (m, f, line) => `${f}(${line}) [${(files[f] || "").split("\n")[line - 1]?.trim()}]`);
    assert.fail("tsc --strict reported:\n" + shown);
  }
}

/** The `@example`s of keystone.d.ts, as code. */
function examples(dts) {
  const out = [];
  for (const [, doc] of dts.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
    const lines = doc.split("\n").map((l) => l.replace(/^\s*\* ?/, ""));
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i].startsWith("@example")) continue;
      const code = [lines[i].slice("@example".length)];
      while (i + 1 < lines.length && !lines[i + 1].startsWith("@")) code.push(lines[++i]);
      out.push(code.join("\n").trim());
    }
  }
  return out;
}

test("every JavaScript block of the READMEs and every @example of keystone.d.ts compiles with tsc --strict", () => {
  const files = {
    "globals.d.ts": `import type { KeystoneInstance } from "keystone-cdp";
declare global {
  const ks: KeystoneInstance; // the instance the examples call
  function showShoeBanner(): void;
  function showShoes(): void;
  function handler(payload: { segment: string }): void;
}
export {};
`,
  };
  const add = (name, code) => {
    // Each block is a module of its own; one without its own import gets the package's names.
    files[name + ".ts"] = (/^import /m.test(code) ? "" : 'import { Keystone, KeystoneError, evalCondition } from "keystone-cdp";\n') + code + "\nexport {};\n";
  };
  const js = (md) => blocks(md).filter((b) => b.lang === "js");
  js(README).forEach((b, i) => add("readme" + i, b.code));
  js(PKG_README).forEach((b, i) => add("package-readme" + i, b.code));
  const ex = examples(DTS);
  assert.ok(ex.length >= 25, "keystone.d.ts has its examples: " + ex.length);
  ex.forEach((code, i) => add("example" + i, code));
  assert.ok(Object.keys(files).length > 28);
  tsc("examples", files);
});

test("what the running package returns satisfies keystone.d.ts: results, listener payloads and errors (no declared property missing, none untyped)", async () => {
  const p = await page("/readme/shapes.html", `${HEAD}${IMPORT_MAP}<script type="module">import * as K from "keystone-cdp"; window.K = K;</script></head><body></body></html>`);
  await p.waitForFunction(() => window.K);
  const got = await p.evaluate(async () => {
    const { Keystone } = window.K;
    const defs = {
      version: 1,
      segments: [
        { id: "shoe_fans", name: "Shoe fans", condition: { $performed: { event: "Product Viewed", where: { category: "shoes" }, within: "7d", count: { $gte: 2 } } } },
        { id: "spenders", condition: { $and: [{ $performed: { event: "Order Completed", sum: "revenue", value: { $gte: 100 } } }, { $or: [{ "traits.tier": "gold" }, { $inSegment: "shoe_fans" }] }] } },
        { id: "engaged", condition: { "scores.engagement": { $gte: 1 } } },
        { id: "broken", condition: { $performed: { event: "X", within: "7 days" } } },
      ],
      scores: [{ id: "engagement", halfLife: "7d", rules: [{ event: "Product Viewed", points: 1 }] }],
      experiences: [{ id: "hero", holdout: 0.1, variants: [{ id: "gold", segment: "spenders", priority: 10, cap: { count: 3, within: "7d" } }, { id: "shoes", segment: "shoe_fans", priority: 5 }, { id: "default" }] }],
    };
    const heard = {};
    const ks = await Keystone.init({ segments: defs, autoCapture: false });
    for (const name of ["segment:enter", "segment:exit", "identify", "reset", "error"]) ks.on(name, (x) => (heard[name] ??= x));
    await new Promise((r) => setTimeout(r)); // the errors found while starting
    ks.track("Product Viewed", { category: "shoes" });
    ks.track("Product Viewed", { category: "shoes" });
    ks.track("Order Completed", { revenue: 120 });
    const loaded = await ks.loadSegments(defs);
    await ks.identify("ada@example.com", { tier: "gold" });
    const out = {
      profile: ks.profile(),
      explained: ["shoe_fans", "spenders", "engaged", "hero"].map((id) => ks.explain(id)),
      decision: ks.decide("hero"),
      loaded,
    };
    ks.reset();
    await ks.setConsent({ personalization: false });
    out.explained.push(ks.explain("shoe_fans")); // with its `reason`
    out.optOut = ks.profile();
    await ks.forget();
    out.forgotten = ks.profile(); // anonymousId null
    out.heard = heard;
    // Errors as plain objects: their own properties, with the Error's name and message.
    const plain = (e) => ({ name: e.name, message: e.message, ...e });
    out.loaded = { loaded: loaded.loaded, rejected: loaded.rejected.map(plain) };
    out.errorIsKeystoneError = heard.error instanceof window.K.KeystoneError && heard.error instanceof Error;
    out.heard.error = plain(heard.error);
    return out;
  });
  assert.equal(got.errorIsKeystoneError, true);
  for (const name of ["segment:enter", "segment:exit", "identify", "reset", "error"]) assert.ok(got.heard[name], name + " was heard");
  assert.ok(got.loaded.rejected.length === 1 && got.explained.every(Boolean) && got.decision);
  const v = (x) => JSON.stringify(x, null, 1);
  tsc("shapes", {
    "shapes.ts": `import type { Profile, Explanation, Decision, KeystoneEvents, KeystoneError, KeystoneInstance } from "keystone-cdp";
type Loaded = Awaited<ReturnType<KeystoneInstance["loadSegments"]>>;
// The declared properties only: an index signature (kept for fields of later versions) would
// let an undeclared one through.
type Known<T> = { [K in keyof T as string extends K ? never : K]: T[K] };
export const profile: Known<Profile> = ${v(got.profile)};
export const optOut: Known<Profile> = ${v(got.optOut)};
export const forgotten: Known<Profile> = ${v(got.forgotten)};
export const explained: Known<Explanation>[] = ${v(got.explained)};
export const decision: Known<Decision> = ${v(got.decision)};
export const loaded: Known<Loaded> = ${v(got.loaded)};
export const enter: Known<KeystoneEvents["segment:enter"]> = ${v(got.heard["segment:enter"])};
export const exit: Known<KeystoneEvents["segment:exit"]> = ${v(got.heard["segment:exit"])};
export const identify: Known<KeystoneEvents["identify"]> = ${v(got.heard.identify)};
export const reset: Known<KeystoneEvents["reset"]> = ${v(got.heard.reset)};
export const error: Known<KeystoneError> = ${v(got.heard.error)};
`,
  });
  await p.context().close();
});

test("README's error-code table lists exactly the codes the sources raise, and KeystoneErrorCode the same", () => {
  // Raised in the JS (the wrapper, delivery, the snippet): `new KeystoneError("code"`,
  // `report("code"`, `fail("code"`, `code = "code"`.
  const raised = new Set();
  const js = join(root, "pkg-template", "src");
  for (const f of readdirSync(js).filter((f) => f.endsWith(".js"))) {
    for (const m of readFileSync(join(js, f), "utf8").matchAll(/(?:new KeystoneError|\breport|\bfail)\(\s*"([a-z_]+)"|\bcode\s*=\s*"([a-z_]+)"/g)) raised.add(m[1] || m[2]);
  }
  // Raised in the engine: the constants of src/core/error.rs that the code uses.
  const consts = Object.fromEntries([...read("src", "core", "error.rs").matchAll(/pub const (\w+): &str = "([a-z_]+)"/g)].map((m) => [m[1], m[2]]));
  const rs = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? rs(join(dir, d.name)) : d.name.endsWith(".rs") && d.name != "error.rs" ? [join(dir, d.name)] : []));
  for (const f of rs(join(root, "src"))) for (const m of readFileSync(f, "utf8").matchAll(/codes::([A-Z_]+)/g)) raised.add(consts[m[1]]);
  assert.ok(!raised.has(undefined), "every codes:: constant used is defined");

  const section = README.split("\n## Error codes\n")[1]?.split("\n## ")[0];
  assert.ok(section, "README has an Error codes section");
  const table = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  const warnings = [...(section.split("Console warnings only")[1] || "").split("\n\n")[0].matchAll(/`([a-z]+(?:_[a-z]+)+)`/g)].map((m) => m[1]);
  const union = [...(DTS.split("export type KeystoneErrorCode =")[1] || "").split(";")[0].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
  const sorted = (a) => [...new Set(a)].sort();
  assert.equal(table.length, new Set(table).size, "each code once in the table");
  assert.deepEqual(sorted([...table, ...warnings]), sorted(raised), "the README's codes (table and warnings) are the raised ones");
  assert.deepEqual(sorted(union), sorted(table), "KeystoneErrorCode is the table's codes");
  assert.deepEqual(warnings.filter((w) => table.includes(w)), [], "a warning-only code is not in the table");
});
