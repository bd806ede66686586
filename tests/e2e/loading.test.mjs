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
const VERSION = JSON.parse(readFileSync(new URL("../../pkg/package.json", import.meta.url), "utf8")).version;

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

/**
 * A blank page whose requests matching `held` are held (never answered until the test continues
 * them), on Playwright's clock, with the snippet pasted (`keystoneConfig.src` the package's
 * script-tag build) and its `init` and `flush` Promises settling into `window.out`, plus a
 * `track` queued between them when `track` is set.
 */
async function snippetWithHeld(held, track) {
  const routes = [];
  const { ctx, page } = await fresh("/tests/blank.html", async (ctx) => {
    await ctx.route(held, (route) => void routes.push(route));
  });
  await page.clock.install();
  await page.evaluate(
    ([snippet, track]) => {
      window.keystoneConfig = { src: "/pkg/dist/keystone.global.js" };
      const s = document.createElement("script");
      s.textContent = snippet;
      document.body.appendChild(s);
      window.out = {};
      const settle = (name, p) => p.then(() => (window.out[name] = "resolved"), (e) => (window.out[name] = e.code));
      settle("init", keystone.init());
      if (track) keystone.track("queued");
      settle("flush", keystone.flush());
    },
    [SNIPPET, track],
  );
  return { ctx, page, routes };
}

/** Serves the ESM entry at `url` as a copy that says it is Keystone `version`. */
const asVersion = (ctx, url, version) =>
  ctx.route(url, async (route) => {
    const res = await route.fetch();
    await route.fulfill({ response: res, body: (await res.text()).replaceAll(VERSION, version) });
  });

/** The events the collector received from pages whose URL holds `mark`. */
const sentFrom = (mark) => h.server.collector.events.filter((e) => (e.context?.page?.url || "").includes(mark));

test("two copies on one page: the site's ESM bundle starts Keystone, then a tag manager loads the snippet and the script-tag build; one Keystone answers both", async () => {
  const { ctx, page } = await fresh("/tests/esm.html?copies=esm-then-tag");
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(
    async ([snippet, defs, delivery]) => {
      const opts = { ...delivery, segments: defs, autoCapture: { scroll: false, engagement: false } };
      const ks = await Keystone.init(opts);
      const heard = [];
      ks.on("segment:enter", (e) => heard.push("bundle " + e.segment));
      // The tag manager's copy, configured with the same options.
      window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", ...opts };
      const s = document.createElement("script");
      s.textContent = snippet;
      document.body.appendChild(s);
      window.keystone.on("segment:enter", (e) => heard.push("tag " + e.segment));
      const viaTag = await window.keystone.init();
      window.keystone.track("Product Viewed"); // through window.keystone
      await new Promise((r) => setTimeout(r, 50));
      const state = {
        same: viaTag === ks,
        ids: ks.anonymousId() === window.keystone.anonymousId(),
        bundleSees: ks.inSegment("viewers"),
        tagSees: window.keystone.inSegment("viewers"),
        count: ks.profile().events["Product Viewed"]?.count,
        heard,
        ready: window.keystone.__keystone === true,
      };
      await ks.flush();
      await new Promise((r) => setTimeout(r, 300)); // a second queue would have sent by now too
      await ks.flush();
      return state;
    },
    [SNIPPET, DEFS, DELIVERY],
  );
  assert.deepEqual(out, { same: true, ids: true, bundleSees: true, tagSees: true, count: 1, heard: ["bundle viewers", "tag viewers"], ready: true });
  const sent = sentFrom("copies=esm-then-tag");
  assert.deepEqual(sent.map((e) => e.type + " " + (e.event || "")), ["page ", "track Product Viewed"], "one page view, each event once");
  assert.equal(new Set(sent.map((e) => e.anonymousId)).size, 1);
  assert.deepEqual(page.warnings.filter((w) => w.includes("already_initialized")), [], "the same options: no warning");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("two copies on one page: the script-tag build starts first, the ESM entry's init resolves to the same instance and warns when its options differ", async () => {
  const { ctx, page } = await fresh("/tests/global.html?copies=tag-then-esm", (ctx) =>
    ctx.addInitScript(([defs, delivery]) => (window.keystoneConfig = { ...delivery, segments: defs }), [DEFS, DELIVERY]),
  );
  const out = await page.evaluate(async () => {
    await window.keystone.init();
    const K = await import("/pkg/dist/keystone.js");
    const ks = await K.Keystone.init({ storagePrefix: "bundle_" }); // other options: not applied, said
    const heard = [];
    ks.on("segment:enter", (e) => heard.push("bundle " + e.segment));
    window.keystone.on("segment:enter", (e) => heard.push("tag " + e.segment));
    ks.track("Product Viewed");
    await new Promise((r) => setTimeout(r, 50));
    await window.keystone.flush();
    await new Promise((r) => setTimeout(r, 300));
    // The running copy's errors are `instanceof` either copy's KeystoneError (a site's guard).
    const rejection = await ks.identify("not an email").catch((e) => e);
    let reported;
    ks.on("error", (e) => (reported = e));
    ks.track("x", 5);
    return {
      errors: [rejection, reported].map((e) => [e.code, e instanceof K.KeystoneError, e instanceof window.keystone.KeystoneError]),
      ids: ks.anonymousId() === window.keystone.anonymousId(),
      count: window.keystone.profile().events["Product Viewed"]?.count,
      heard,
      stored: Object.keys(localStorage).filter((k) => k.startsWith("bundle_")),
      // After init, the bundle's evalCondition answers (through the running copy's engine).
      evalCondition: K.evalCondition({ plan: "pro" }, { plan: { $in: ["pro"] } }),
    };
  });
  const errors = [["invalid_email", true, true], ["invalid_argument", true, true]];
  assert.deepEqual(out, { errors, ids: true, count: 1, heard: ["bundle viewers", "tag viewers"], stored: [], evalCondition: true });
  const sent = sentFrom("copies=tag-then-esm");
  assert.deepEqual(sent.map((e) => e.type + " " + (e.event || "")), ["page ", "track Product Viewed"]);
  assert.equal(page.warnings.filter((w) => w.includes("already_initialized")).length, 1, page.warnings.join("\n"));
  assert.deepEqual(page.warnings.filter((w) => w.includes("not_ready")), []);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("the ESM entry from two URLs (?v=1, ?v=2, the second of another version): one instance, one page view, listeners of both callers fire", async () => {
  const { ctx, page } = await fresh("/tests/blank.html?copies=two-urls", async (ctx) => {
    // The second URL serves a copy that says it is another version of Keystone.
    await asVersion(ctx, "**/pkg/dist/keystone.js?v=2", "9.9.9");
  });
  const out = await page.evaluate(async (delivery) => {
    const A = await import("/pkg/dist/keystone.js?v=1");
    const B = await import("/pkg/dist/keystone.js?v=2");
    const opts = { ...delivery, autoCapture: { scroll: false, engagement: false } };
    // Both start before either is ready (two bundles of one page).
    const [a, b] = await Promise.all([A.Keystone.init(opts), B.Keystone.init(opts)]);
    const heard = [];
    a.on("identify", () => heard.push("a"));
    b.on("identify", () => heard.push("b"));
    await b.identify("ada@example.com");
    await a.flush();
    await new Promise((r) => setTimeout(r, 300));
    await b.flush();
    return { distinctModules: A.Keystone !== B.Keystone, same: a === b, heard };
  }, DELIVERY);
  assert.deepEqual(out, { distinctModules: true, same: true, heard: ["a", "b"] });
  const sent = sentFrom("copies=two-urls");
  assert.deepEqual(sent.map((e) => e.type), ["page", "identify", "alias"], "one page view, the login once");
  assert.equal(page.warnings.filter((w) => w.includes("version_mismatch") && w.includes("9.9.9")).length, 1, page.warnings.join("\n"));
  assert.deepEqual(page.warnings.filter((w) => w.includes("already_initialized")), []);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("two copies on one page: a copy whose start failed leaves the registry, the next copy starts its own and the first answers with it", async () => {
  const { ctx, page } = await fresh("/tests/blank.html?copies=failed-first", async (ctx) => {
    // The second copy says it is another version, which tells which copy runs.
    await asVersion(ctx, "**/pkg/dist/keystone.js?b", "9.9.9");
  });
  const out = await page.evaluate(async (delivery) => {
    const A = await import("/pkg/dist/keystone.js?a");
    const B = await import("/pkg/dist/keystone.js?b");
    const first = await A.Keystone.init({ autoCapture: "no" }).then(() => "resolved", (e) => e.code); // a wrong type
    const b = await B.Keystone.init({ ...delivery, autoCapture: { scroll: false, engagement: false } });
    const a = await A.Keystone.init();
    await b.flush();
    return { first, same: a === b, running: globalThis[Symbol.for("keystone-cdp")].version };
  }, DELIVERY);
  assert.deepEqual(out, { first: "invalid_argument", same: true, running: "9.9.9" });
  assert.deepEqual(sentFrom("copies=failed-first").map((e) => e.type + " " + e.context.library.version), ["page 9.9.9"]);
  assert.equal(page.warnings.filter((w) => w.includes("version_mismatch") && w.includes("keystone-cdp 9.9.9 runs")).length, 1, page.warnings.join("\n"));
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("two copies on one page: a copy whose init is pending when the first copy's start fails starts its own", async () => {
  let wasm = 0;
  const { ctx, page } = await fresh("/tests/blank.html?copies=pending-first-fails", async (ctx) => {
    // The first copy's wasm does not load (its prefetch and its fetch: a bundle whose wasm was
    // not deployed), answered late enough for the second copy to start meanwhile; the wasm
    // answers from then on (the tag manager's copy, served elsewhere).
    await ctx.route("**/keystone_bg.wasm", (route) =>
      wasm++ < 2 ? new Promise((r) => setTimeout(r, 500)).then(() => route.fulfill({ status: 404, body: "" })) : route.continue(),
    );
  });
  const out = await page.evaluate(async (delivery) => {
    const A = await import("/pkg/dist/keystone.js?a");
    const first = A.Keystone.init({ autoCapture: false }).then(() => "resolved", (e) => e.code);
    // The second copy starts while the first still waits for its wasm.
    const B = await import("/pkg/dist/keystone.js?b");
    const second = B.Keystone.init({ ...delivery, autoCapture: false }).then((ks) => (ks.track("Product Viewed"), ks.flush().then(() => "started")), (e) => e.code);
    return { first: await first, second: await second, registered: !!globalThis[Symbol.for("keystone-cdp")] };
  }, DELIVERY);
  assert.deepEqual(out, { first: "wasm_load_failed", second: "started", registered: true });
  assert.deepEqual(sentFrom("copies=pending-first-fails").map((e) => e.type + " " + (e.event || "")), ["track Product Viewed"]);
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("two copies on one page: the tag manager's copy fails its start (a bad keystoneConfig), then the site's bundle starts Keystone: window.keystone forwards to it, its queued calls replayed once", async () => {
  const { ctx, page } = await fresh("/tests/blank.html?copies=failed-tag-then-esm");
  const out = await page.evaluate(
    async ([snippet, defs, delivery]) => {
      window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", autoCapture: "no" }; // a wrong type
      const s = document.createElement("script");
      s.textContent = snippet;
      document.body.appendChild(s);
      window.keystone.track("Queued Before"); // on the snippet's stub
      const failed = await window.keystone.init().then(() => "resolved", (e) => e.code);
      window.keystone.track("Queued After"); // queued: no copy runs yet
      const K = await import("/pkg/dist/keystone.js");
      const ks = await K.Keystone.init({ ...delivery, segments: defs, autoCapture: false });
      // The calls queued on window.keystone reach the running copy with no further call.
      for (let i = 0; i < 40 && !ks.profile().events["Queued After"]; i++) await new Promise((r) => setTimeout(r, 25));
      const replayed = ["Queued Before", "Queued After"].map((e) => ks.profile().events[e]?.count);
      const viaTag = await window.keystone.init().then((x) => x === ks, (e) => e.code);
      window.keystone.track("Product Viewed");
      const direct = window.keystone.inSegment("viewers");
      await ks.flush();
      return { failed, replayed, viaTag, direct, ready: window.keystone.__keystone === true };
    },
    [SNIPPET, DEFS, DELIVERY],
  );
  assert.deepEqual(out, { failed: "invalid_argument", replayed: [1, 1], viaTag: true, direct: true, ready: true });
  assert.deepEqual(
    sentFrom("copies=failed-tag-then-esm").map((e) => e.type + " " + (e.event || "")),
    ["track Queued Before", "track Queued After", "track Product Viewed"],
    "each call once, on the running copy",
  );
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

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

test("a wasm server that never answers: init rejects with wasm_load_failed after 15 s and personalized content shows", async () => {
  const held = [];
  const { ctx, page } = await fresh("/tests/dom.html", async (ctx) => {
    await ctx.route("**/keystone_bg.wasm", (route) => void held.push(route)); // never answered
  });
  await page.clock.install();
  await page.waitForFunction(() => window.__ksLoaded === true);
  await page.evaluate((defs) => {
    // A long anti-flicker wait: what shows the content here is Keystone giving up, not the CSS timeout.
    window.out = null;
    Keystone.init({ segments: defs, antiFlicker: 600000 }).then(() => (window.out = "resolved"), (e) => (window.out = e.code));
  }, DEFS);
  const visible = () => page.evaluate(() => getComputedStyle(document.getElementById("hide")).visibility);
  await page.clock.runFor(14_000);
  const early = [await page.evaluate(() => window.out), await visible()];
  await page.clock.runFor(1_500);
  await page.waitForFunction(() => window.out, null, { timeout: 5000 }).catch(() => {});
  const late = [await page.evaluate(() => window.out), await visible(), await page.evaluate(() => document.documentElement.classList.contains("keystone-ready"))];
  assert.deepEqual(early, [null, "hidden"], "still waiting (and cloaked) before 15 s");
  assert.deepEqual(late, ["wasm_load_failed", "visible", true]);
  // The download was not abandoned: when the wasm finally comes, the next init uses it.
  for (const r of held.splice(0)) await r.continue();
  assert.equal(await page.evaluate((defs) => Keystone.init({ segments: defs }).then((ks) => typeof ks.inSegment("viewers"), (e) => e.code), DEFS), "boolean");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("the snippet's keystone.global.js never arrives: the queued Promises reject with load_failed after 15 s", async () => {
  const { ctx, page, routes: held } = await snippetWithHeld("**/keystone.global.js", true);
  await page.clock.runFor(14_000);
  const early = await page.evaluate(() => ({ ...window.out }));
  await page.clock.runFor(1_500);
  await page.waitForFunction(() => window.out.init && window.out.flush, null, { timeout: 5000 }).catch(() => {});
  // A call made after the failure is settled too.
  await page.evaluate(() => void keystone.identify("ada@example.com").then(() => (window.out.later = "resolved"), (e) => (window.out.later = e.code)));
  await page.waitForFunction(() => window.out.later, null, { timeout: 2000 }).catch(() => {});
  const late = await page.evaluate(() => ({ ...window.out }));
  assert.deepEqual(early, {}, "still waiting before 15 s");
  assert.deepEqual(late, { init: "load_failed", flush: "load_failed", later: "load_failed" });
  // The script arrives after all: it upgrades the stub and starts Keystone from keystoneConfig.
  // (The held request reaches the route in real time, which the page's fake clock does not move:
  // on a loaded machine it may not have been routed yet.)
  for (let i = 0; !held.length && i < 200; i++) await new Promise((r) => setTimeout(r, 50));
  for (const r of held.splice(0)) await r.continue();
  await page.waitForFunction(() => window.keystone.__keystone === true);
  assert.equal(await page.evaluate(() => window.keystone.init().then((ks) => typeof ks.anonymousId(), (e) => e.code)), "string");
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("the snippet's script arrives but its wasm never does: the queued Promises reject with wasm_load_failed after 15 s", async () => {
  const { ctx, page, routes: held } = await snippetWithHeld("**/keystone_bg.wasm", false);
  await page.waitForFunction(() => window.keystone.__keystone === true);
  await page.clock.runFor(14_000);
  const early = await page.evaluate(() => ({ ...window.out }));
  await page.clock.runFor(1_500);
  await page.waitForFunction(() => window.out.init && window.out.flush, null, { timeout: 5000 }).catch(() => {});
  const late = await page.evaluate(() => ({ ...window.out }));
  assert.deepEqual(early, {}, "still waiting before 15 s");
  assert.deepEqual(late, { init: "wasm_load_failed", flush: "wasm_load_failed" });
  assert.deepEqual(page.problems, []);
  for (const r of held) await r.abort().catch(() => {});
  await ctx.close();
});

// The `wasmUrl` option resolves as `fetch` resolves a URL: against the document's base URL (a
// `<base href>`), as the endpoint and a segments URL do. Here the wasm next to the module cannot
// be fetched, so only the one `wasmUrl` names can start Keystone.
test("wasmUrl relative on a page with <base href>: resolved against the base URL, as fetch() would", async () => {
  const { ctx, page } = await fresh("/tests/app/page.html", async (ctx) => {
    await ctx.route("**/tests/app/page.html", (route) =>
      route.fulfill({ contentType: "text/html", body: '<!doctype html><html><head><base href="/pkg/"></head><body></body></html>' }),
    );
    await ctx.route(/keystone_bg\.wasm$/, (route) => route.fulfill({ status: 404 })); // not the default place
  });
  const out = await page.evaluate(async () => {
    const { Keystone } = await import("/pkg/dist/keystone.js");
    const ks = await Keystone.init({ autoCapture: false, wasmUrl: "dist/keystone_bg.wasm?v=1", segments: { version: 1, segments: [{ id: "all", condition: {} }] } }).catch((e) => e.code);
    return { fetched: new URL("dist/keystone_bg.wasm?v=1", document.baseURI).pathname, ready: typeof ks == "string" ? ks : ks.inSegment("all") };
  });
  assert.deepEqual(out, { fetched: "/pkg/dist/keystone_bg.wasm", ready: true });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});

test("a server (Node.js): init rejects with unsupported_environment; Keystone.load() reads the wasm next to the module (a file: URL) or at a wasmUrl, and evalCondition works", async () => {
  const { execFileSync } = await import("node:child_process");
  const entry = new URL("../../pkg/dist/keystone.js", import.meta.url).href;
  const wasm = new URL("../../pkg/dist/keystone_bg.wasm", import.meta.url).href;
  // A fresh process per way in (the module keeps what it loaded).
  const run = (load) =>
    JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", `
        console.warn = () => {};
        const { Keystone, evalCondition } = await import(${JSON.stringify(entry)});
        const init = await Keystone.init({}).then(() => "resolved", (e) => e.code);
        const load = await Keystone.load(${load}).then(() => "resolved", (e) => e.code + ": " + e.message);
        console.log(JSON.stringify({ init, load, cond: evalCondition({ a: 2 }, { a: { $gt: 1 } }) }));`], { encoding: "utf8", timeout: 30000 }),
    );
  for (const load of ["", `{ wasmUrl: ${JSON.stringify(wasm)} }`, `{ wasmUrl: new URL(${JSON.stringify(wasm)}) }`]) {
    assert.deepEqual(run(load), { init: "unsupported_environment", load: "resolved", cond: true }, load || "load()");
  }
});
