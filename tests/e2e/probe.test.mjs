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
});
