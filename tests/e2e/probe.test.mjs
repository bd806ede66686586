// Checks an outside tester reading only DESIGN.md would make of the built package, where the
// other test files do not already make them the same way.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

test("KeystoneError is named KeystoneError: the exported class, the errors of rejected Promises and error events, on the ESM entry and on window.keystone", async () => {
  const page = await h.open("/tests/esm.html");
  const esm = await page.evaluate(async () => {
    const rejected = await Keystone.init(5).catch((e) => e);
    const ks = await Keystone.init({ autoCapture: false });
    let heard;
    ks.on("error", (e) => (heard = e));
    ks.track("");
    return [K.KeystoneError.name, rejected.constructor.name, rejected instanceof K.KeystoneError, heard.constructor.name, heard.name];
  });
  assert.deepEqual(esm, ["KeystoneError", "KeystoneError", true, "KeystoneError", "KeystoneError"]);

  const global = await h.open("/tests/global.html");
  const tag = await global.evaluate(async () => {
    const rejected = await keystone.init(5).catch((e) => e);
    return [keystone.KeystoneError.name, rejected.constructor.name, rejected instanceof keystone.KeystoneError, rejected.name];
  });
  assert.deepEqual(tag, ["KeystoneError", "KeystoneError", true, "KeystoneError"]);
  assert.deepEqual([...page.problems, ...global.problems], []);
  await page.context().close();
  await global.context().close();
});

test("an endpoint holding credentials (user:password@), which fetch and sendBeacon refuse, rejects init with invalid_argument and one warning; an @ elsewhere in the URL does not", async () => {
  for (const [endpoint, expected] of [
    ["http://demo-key:@HOST/v1/batch", "invalid_argument"],
    ["http://user:secret@HOST/v1/batch", "invalid_argument"],
    ["http://HOST/v1/batch?from=a@b.example", "resolved"],
  ]) {
    const page = await h.open("/tests/esm.html");
    const url = endpoint.replace("HOST", new URL(h.server.url).host);
    const code = await page.evaluate((endpoint) => Keystone.init({ endpoint, writeKey: "demo-key", autoCapture: false }).then(() => "resolved", (e) => e.code), url);
    assert.equal(code, expected, url);
    assert.equal(page.warnings.filter((w) => w.includes("invalid_argument")).length, expected == "resolved" ? 0 : 1, url);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }
});

test("dataLayer: a data layer the page made non-writable (a binding guarded against being replaced) gets Keystone's pushes; an existing one is never assigned again", async () => {
  const page = await h.open("/tests/esm.html");
  const out = await page.evaluate(async () => {
    const guarded = [];
    Object.defineProperty(window, "dataLayer", { value: guarded, writable: false, configurable: false });
    const defs = { version: 1, segments: [{ id: "viewer", condition: { $performed: { event: "V" } } }] };
    const ks = await Keystone.init({ dataLayer: true, autoCapture: false, segments: defs });
    ks.track("V");
    return { guarded: guarded.map((e) => e.event + " " + (e.keystoneSegment || e.keystoneSegments)) };
  });
  assert.deepEqual(out.guarded, ["keystone.ready ", "keystone.segment_enter viewer"]);
  assert.deepEqual(page.problems, []);

  // The same with the array's name (a second page: one Keystone per page).
  const other = await h.open("/tests/esm.html");
  const named = await other.evaluate(async () => {
    const watched = [];
    let assigned = 0;
    Object.defineProperty(window, "watchedLayer", { get: () => watched, set: () => assigned++, configurable: true });
    const ks = await Keystone.init({ dataLayer: "watchedLayer", autoCapture: false, segments: { version: 1, segments: [{ id: "viewer", condition: { $performed: { event: "V" } } }] } });
    ks.track("V");
    return { pushes: watched.length, assigned };
  });
  assert.deepEqual(named, { pushes: 2, assigned: 0 });
  await page.context().close();
  await other.context().close();
});

test("data-keystone-text reads the profile's own fields only: a path through a name that is not a trait (constructor, toString, __proto__) keeps the authored text, as a condition reads it as missing", async () => {
  const page = await h.open("/tests/esm.html");
  const out = await page.evaluate(async () => {
    const paths = ["traits.constructor", "traits.toString", "traits.__proto__", "traits.constructor.name", "traits.tags.map", "traits.tags.0", "traits.constructor_"];
    document.body.insertAdjacentHTML("beforeend", paths.map((p) => `<span data-keystone-text="${p}">authored</span>`).join(""));
    const ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "c", condition: { "traits.constructor": { $exists: true } } }] } });
    ks.setTraits({ tags: ["shoes"], constructor_: "own" });
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)));
    return { texts: [...document.querySelectorAll("[data-keystone-text]")].map((e) => e.textContent), inC: ks.inSegment("c") };
  });
  assert.deepEqual(out, { texts: ["authored", "authored", "authored", "authored", "authored", "shoes", "own"], inC: false });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
