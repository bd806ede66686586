// GrowthBook's evalCondition cases (tests/cases/growthbook-evalCondition.json) and Keystone's own
// (tests/cases/conditions-extra.json, checked against GrowthBook itself first) through the built
// package in Chromium: the named export and Keystone.evalCondition, with the browser's RegExp.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { evalCondition as gbEvalCondition } from "@growthbook/growthbook";
import { setup } from "./harness.mjs";

const CASES = JSON.parse(readFileSync(new URL("../cases/growthbook-evalCondition.json", import.meta.url), "utf8")).evalCondition;
const EXTRA = JSON.parse(readFileSync(new URL("../cases/conditions-extra.json", import.meta.url), "utf8")).cases;

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

test("evalCondition: not_ready before load, never throws", async () => {
  const page = await h.open();
  const out = await page.evaluate(() => {
    let threw = false;
    let r;
    try {
      r = K.evalCondition({ a: 1 }, { a: 1 });
    } catch (_) {
      threw = true;
    }
    return { r, threw };
  });
  assert.deepEqual(out, { r: false, threw: false });
  assert.ok(page.warnings.some((w) => w.includes("not_ready")), page.warnings.join("\n"));
  await page.context().close();
});

test("all 248 GrowthBook cases pass through the package (after Keystone.load)", async () => {
  const page = await h.open();
  const failures = await page.evaluate(async (cases) => {
    await Keystone.load();
    const bad = [];
    for (const [name, cond, attrs, expected, groups] of cases) {
      const a = K.evalCondition(attrs, cond, groups);
      const b = Keystone.evalCondition(attrs, cond, groups);
      if (a !== expected || b !== expected) bad.push(name);
    }
    return bad;
  }, CASES);
  assert.equal(CASES.length, 248);
  assert.deepEqual(failures, []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("Keystone's extra cases answer as GrowthBook does, natively in GrowthBook and through the package", async () => {
  const gb = EXTRA.filter(([, cond, attrs, expected, groups]) => gbEvalCondition(attrs, cond, groups) !== expected).map((c) => c[0]);
  assert.deepEqual(gb, [], "expectations that GrowthBook does not share");
  const page = await h.open();
  const failures = await page.evaluate(async (cases) => {
    await Keystone.load();
    const bad = [];
    for (const [name, cond, attrs, expected, groups] of cases) {
      if (K.evalCondition(attrs, cond, groups) !== expected || Keystone.evalCondition(attrs, cond, groups) !== expected) bad.push(name);
    }
    return bad;
  }, EXTRA);
  assert.deepEqual(failures, []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("evalCondition works after init and on the instance; hostile input is false", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    const cyc = {};
    cyc.self = cyc;
    return [
      Keystone.evalCondition({ country: "FR" }, { country: { $in: ["FR", "DE"] } }),
      ks.evalCondition({ v: "1.10.0" }, { v: { $vgt: "1.9.9" } }),
      K.evalCondition({ id: 3 }, { id: { $inGroup: "g" } }, { g: [1, 2, 3] }),
      K.evalCondition(cyc, { a: 1 }),
      K.evalCondition({ s: "ÉCOLE" }, { s: { $ini: ["école"] } }),
    ];
  });
  assert.deepEqual(out, [true, true, true, false, true]);
  await page.context().close();
});

test("evalCondition keeps the last arguments parsed in wasm, never a stale copy of them", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    await Keystone.load();
    const r = [];
    const attrs = { tier: "gold", id: "u1", n: 3 };
    const cond = { tier: "gold" };
    const groups = { beta: ["u1"] };
    r.push(K.evalCondition(attrs, cond)); // true
    attrs.tier = "silver"; // the same object, mutated
    r.push(K.evalCondition(attrs, cond)); // false
    cond.tier = "silver"; // the same condition object, mutated
    r.push(K.evalCondition(attrs, cond)); // true
    const inBeta = { id: { $inGroup: "beta" } };
    r.push(K.evalCondition(attrs, inBeta, groups)); // true
    groups.beta = ["u2"]; // saved groups changed in place
    r.push(K.evalCondition(attrs, inBeta, groups)); // false
    r.push(K.evalCondition(attrs, inBeta)); // false: no groups
    r.push(K.evalCondition(attrs, inBeta, { beta: ["u1"] })); // true
    // A condition that cannot be read (a cycle) is false, and the next call is not confused by it.
    const cyclic = { n: 3 };
    cyclic.self = cyclic;
    r.push(K.evalCondition(attrs, cyclic)); // false
    r.push(K.evalCondition(attrs, { n: 3 })); // true
    // Only what the condition reads crosses: a cycle elsewhere in the attributes is no matter
    // (GrowthBook answers true too); one in a field the condition reads cannot cross: false.
    r.push(K.evalCondition(cyclic, { n: 3 })); // true
    r.push(K.evalCondition(cyclic, { "self.n": 3 })); // false
    r.push(K.evalCondition(attrs, { n: 3 })); // true
    // Fields reached through $or / $nor / $and / $not and dot paths cross too.
    const doc = { a: { b: 1 }, c: 2, d: [1, 2], e: "x" };
    r.push(K.evalCondition(doc, { $or: [{ "a.b": 2 }, { $not: { c: 3 } }] })); // true
    r.push(K.evalCondition(doc, { $nor: [{ "d.length": 2 }], e: "x" })); // false
    r.push(K.evalCondition(doc, { $and: [{ "a.b": 1 }, { d: { $size: 2 } }, { e: { $exists: true } }] })); // true
    r.push(K.evalCondition(JSON.parse('{"__proto__":"x"}'), JSON.parse('{"__proto__":"x"}'))); // true: an attribute like any other
    return r;
  });
  assert.deepEqual(out, [true, false, true, true, false, false, true, false, true, true, false, true, true, false, true, true]);
  await page.context().close();
});

test("evalCondition reads decimals of up to 15 digits in wasm, to the same number as JavaScript", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    await Keystone.load();
    // Every number text that wasm hands to the host's Number() (a spy on the global).
    const Num = Number;
    const asked = [];
    globalThis.Number = new Proxy(Num, { apply: (t, self, args) => (asked.push(String(args[0])), Reflect.apply(t, self, args)) });
    let same = 0, total = 0;
    try {
      const prices = [129.99, 0.1, 19.9, -2.5, 1234.5678, 0.000001, 99999999999999.9];
      let seed = 7;
      const rnd = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
      for (let i = 0; i < 2000; i++) prices.push(+(rnd() * 10 ** Math.floor(rnd() * 12)).toFixed(Math.floor(rnd() * 4)));
      for (const p of prices) {
        total++;
        // The attribute and the condition's number both cross as JSON text and are read in wasm.
        if (K.evalCondition({ price: p }, { price: p }) && !K.evalCondition({ price: p }, { price: { $ne: p } })) same++;
      }
    } finally {
      globalThis.Number = Num;
    }
    return { same, total, asked: asked.slice(0, 5), askedCount: asked.length };
  });
  assert.equal(out.same, out.total);
  assert.deepEqual(out.asked, [], "decimal number text crossed to the host's Number()");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
