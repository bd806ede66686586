// Trap isolation (DESIGN §2: "a failure inside Keystone leaves the host page working"). The
// test-only package variant in target/trap-pkg/ (`make trap-pkg`, cargo feature `trap-test`)
// panics on `track("__keystone_trap__")`; the wasm build's panic handler traps
// (WebAssembly.RuntimeError: unreachable). The wrapper must catch it, report an "error" event
// with code `internal_trap`, and rebuild the engine on a fresh wasm instance from the persisted
// profile; after repeated traps it degrades to answering the empty state.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { startServer } from "../../scripts/serve.mjs";
import { launch } from "./harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const trapPkg = join(root, "target", "trap-pkg");
let server, browser;

before(async () => {
  if (!existsSync(join(trapPkg, "dist", "keystone.js"))) execFileSync("make", ["--no-print-directory", "trap-pkg"], { cwd: root, stdio: "inherit" });
  server = await startServer({ mounts: [["/trap/", trapPkg]] });
  browser = await launch();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

const DEFS = {
  version: 1,
  segments: [
    { id: "viewer", condition: { $performed: { event: "Product Viewed" } } },
    { id: "buyer", condition: { $performed: { event: "Order Completed" } } },
  ],
};

async function open() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push("pageerror: " + e.message));
  await page.goto(server.url + "/tests/blank.html");
  await page.evaluate(() => {
    window.__bad = [];
    window.onerror = (m) => window.__bad.push("onerror: " + m);
    addEventListener("unhandledrejection", (e) => window.__bad.push("unhandledrejection: " + (e.reason && e.reason.message)));
  });
  return page;
}

test("a trap is reported as internal_trap, the page keeps working, the engine is rebuilt from the persisted profile", async () => {
  const page = await open();
  const out = await page.evaluate(async (DEFS) => {
    const { Keystone } = await import("/trap/dist/keystone.js");
    const ks = await Keystone.init({ segments: DEFS, autoCapture: false });
    const errors = [];
    ks.on("error", (e) => errors.push({ code: e.code, isError: e instanceof Error }));
    ks.track("Product Viewed");
    const before = { id: ks.anonymousId(), viewer: ks.inSegment("viewer") };
    ks.persistNow(); // what the 250 ms timer / pagehide would do
    let threw = null;
    let ret = "unset";
    try {
      ret = ks.track("__keystone_trap__");
    } catch (e) {
      threw = String(e);
    }
    await new Promise((r) => setTimeout(r, 0));
    // The host page still works.
    let clicked = 0;
    const b = document.body.appendChild(document.createElement("button"));
    b.onclick = () => clicked++;
    b.click();
    // The engine answers again, rebuilt from storage with the definitions it had.
    const afterTrap = { id: ks.anonymousId(), viewer: ks.inSegment("viewer"), buyer: ks.inSegment("buyer") };
    ks.track("Order Completed");
    afterTrap.buyerAfterTrack = ks.inSegment("buyer");
    afterTrap.segments = ks.segments();
    const loaded = await ks.loadSegments(DEFS).then((r) => r.loaded, (e) => "rejected " + e.code);
    return { threw, ret, errors, before, afterTrap, clicked, loaded, bad: window.__bad };
  }, DEFS);
  assert.equal(out.threw, null, "no exception escaped");
  assert.equal(out.ret, undefined);
  assert.deepEqual(out.errors, [{ code: "internal_trap", isError: true }]);
  assert.equal(out.clicked, 1);
  assert.equal(out.before.viewer, true);
  assert.equal(out.afterTrap.id, out.before.id, "the persisted anonymous id survived the trap");
  assert.equal(out.afterTrap.viewer, true, "the event persisted before the trap still counts");
  assert.equal(out.afterTrap.buyer, false);
  assert.equal(out.afterTrap.buyerAfterTrack, true, "track then inSegment answers after recovery");
  assert.deepEqual(out.afterTrap.segments, ["buyer", "viewer"]);
  assert.deepEqual(out.loaded, ["viewer", "buyer"]);
  assert.deepEqual(out.bad, []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("repeated traps degrade to a no-op that answers the empty state and never throws", async () => {
  const page = await open();
  const out = await page.evaluate(async (DEFS) => {
    const { Keystone } = await import("/trap/dist/keystone.js");
    const ks = await Keystone.init({ segments: DEFS, autoCapture: false });
    const codes = [];
    ks.on("error", (e) => codes.push(e.code));
    const res = {};
    try {
      for (let i = 0; i < 6; i++) ks.track("__keystone_trap__");
      res.segments = ks.segments();
      res.inSegment = ks.inSegment("viewer");
      res.profile = ks.profile();
      res.anonymousId = ks.anonymousId();
      res.track = ks.track("Product Viewed");
      res.page = ks.page();
      res.load = await ks.loadSegments(DEFS).then(() => "resolved", (e) => e.code);
      ks.persistNow();
    } catch (e) {
      res.threw = String(e);
    }
    await new Promise((r) => setTimeout(r, 300));
    return { res, codes, bad: window.__bad };
  }, DEFS);
  assert.equal(out.res.threw, undefined);
  assert.deepEqual(out.res.segments, []);
  assert.equal(out.res.inSegment, false);
  assert.equal(out.res.profile, null);
  assert.equal(out.res.anonymousId, null);
  assert.equal(out.res.load, "internal_trap");
  assert.ok(out.codes.length >= 3 && out.codes.every((c) => c === "internal_trap"), JSON.stringify(out.codes));
  assert.deepEqual(out.bad, []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
