// `make tour` keeps working: the headless walk through the demo shop (anonymous → shoe fan →
// logged-in gold customer → logged out → second person) must find every state's personalization.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("the demo shop tour finds every state personalized", { timeout: 170000 }, () => {
  const r = spawnSync(process.execPath, [join(root, "scripts", "tour.mjs")], { cwd: root, encoding: "utf8", timeout: 160000 });
  console.log(r.stdout);
  assert.equal(r.status, 0, `tour failed:\n${r.stdout}\n${r.stderr}`);
  for (const state of ["1-anonymous", "2-shoe-fan", "3-gold-customer", "4-logged-out", "5-second-person"]) {
    assert.match(r.stdout, new RegExp("^ok\\s+" + state, "m"));
  }
});
