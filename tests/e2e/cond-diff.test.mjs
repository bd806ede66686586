// Random differential test of evalCondition: Keystone (the built package in Chromium, after
// `Keystone.load()`: the named export and `Keystone.evalCondition`, thousands of cases per
// page.evaluate) against GrowthBook's own `evalCondition` (the devDependency, in Node), on
// conditions, attributes and saved groups from a seeded generator.
//
// Attributes: 1–5 keys holding numbers (negative, decimal, 0, -0, 1e21, 2^53 + 2, the largest
// and smallest doubles), numeric text (" 12 ", "1e3", "0x10", "-0", "Infinity"…), version text
// ("1.2.3-beta", "v1.2.3", "1.2.3+build.5", "1..2"…), booleans, null, Unicode and empty strings,
// arrays of mixed values and nested objects (keys such as "", "$d", "0", "length", "É").
// Conditions, biased to the paths the attributes have (dot paths into objects and arrays,
// "x.length") and to literals near the values there (the same value, another case, a number
// for numeric text, a neighbour): literal equality (scalars, arrays and objects: JSON
// equality), every operator of GrowthBook's evalCondition ($eq $ne $lt $lte $gt $gte $in $nin
// $ini $nini $all $alli $elemMatch (operators or a condition on the element) $size $exists
// $type $not $regex $regexi (valid and invalid patterns) $veq $vne $vgt $vgte $vlt $vlte
// $inGroup $notInGroup), one or two per object, nested, with arguments of the wrong type now
// and then, unknown operators, mixed objects ($ and plain keys), $and/$or/$nor/$not nested up
// to 3 deep, and malformed ones (numbers, booleans, null or objects where a condition or a
// list is expected). Saved groups: arrays of values (often the attributes' own), GrowthBook's
// {type: "list", values}, and malformed groups (null, a string, an object, a list without
// values, a condition group).
//
// A case diverges when Keystone's two entries disagree or throw, or answer otherwise than
// GrowthBook; where GrowthBook throws (null where a condition or a list of conditions is
// expected), any boolean is accepted: Keystone never throws (null as a condition is false, as a
// list for $and/$or/$nor no list, as a number is). The generator stays out of what README ("Segments, scores and explain")
// documents as departures, and of two GrowthBook bugs Keystone does not copy:
// - departures: an array or a string where a condition is expected (GrowthBook reads it by
//   index, {"$not": ["x"]} as {"$not": {"0": "x"}}; Keystone: false), an object with a "length"
//   as a list of conditions (GrowthBook reads it as an array-like); string order between a
//   character above U+FFFF and one of U+E000..U+FFFF (GrowthBook compares UTF-16 units, Keystone
//   UTF-8 bytes: "😀" < "！" in GrowthBook only), so a case draws its strings from one kind or the
//   other; the operator $savedGroup, which DESIGN does not list (here it only appears as an
//   unknown operator on a field, false in both); JSON nested deeper than 64 levels; lone
//   surrogates (Keystone reads them as U+FFFD), NaN and Infinity (no JSON).
// - GrowthBook bugs: its path walk and group lookup read inherited properties
//   ({"constructor": {"$exists": true}} holds for {}, "$notInGroup": "toString" matches nobody),
//   so no key or group id is a name of Object.prototype or Array.prototype; its regex cache
//   keys the pattern "x" with the flag i as "x/i", the key of the pattern "x/i" without it, and
//   answers a non-string pattern whose String() was cached (null after "null"), so no pattern
//   ends in "/i" and no non-string pattern prints as one. Conditions never share an object
//   with the attributes (GrowthBook's $eq would see the same reference).
//
// Run: a fixed list of seeds by default (5 × 3,000 cases: 7 s on a 2-core machine, ≈ 30 s when
// it is loaded tenfold); KEYSTONE_COND_SEED ("7", "1-200", "3,9") and KEYSTONE_COND_CASES (per seed)
// run others. A failure prints the seed, the count, and for the first KEYSTONE_COND_SHOW (3)
// divergences the case shrunk to a minimal one (keys, items and characters removed while it
// still diverges): condition, attributes, saved groups, GrowthBook's answer and Keystone's
// (both entries). Each seed prints how long each side took.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { evalCondition as gbEvalCondition } from "@growthbook/growthbook";
import { setup, seeds, prng } from "./harness.mjs";

const SEEDS = seeds("KEYSTONE_COND_SEED", [1, 2, 3, 4, 5]);
const CASES = Number(process.env.KEYSTONE_COND_CASES || 3000);
const BATCH = 5000;

let h, page;
before(async () => {
  h = await setup();
  page = await h.open(); // one page for every seed: the cases do not change it
});
after(async () => h && h.close());

// ---------------------------------------------------------------------------------------------
// The generator.

const KEYS = ["a", "b", "n", "s", "v", "tags", "o", "x", "É", "", "$d", "0", "1", "length"];
const WORDS = ["", "a", "A", "abc", "ABC", "École", "école", "ß", "SS", "İ", "i", "é", "e\u0301", " ", "null", "true", "false", "[object Object]", "a,b", "1,2", "x/y", "\n", "日本", "\u2028"];
// Characters above U+FFFF, or of U+E000..U+FFFF: one kind or the other in a case (see the header).
const ASTRAL = ["😀", "a😀", "𝒜", "😀b"];
const HIGH = ["ﬀ", "\uff01", "\ue000", "！a", "\ufffd"];
const NUMSTR = ["0", "-0", "1", "01", "1.0", "1.5", "-2", " 12 ", "1e3", "0x10", "0b11", "Infinity", "-Infinity", "NaN", "1_000", ".5", "5.", "+3", "12abc", "\t7\n", "9007199254740993"];
const VERSIONS = ["1.2.3", "1.2.3-beta", "1.2.3-beta.2", "1.2.3-rc.1", "v1.2.3", "1.2.3+build.5", "1.2", "1", "1.10.0", "1.9.9", "10.0.0", "2.0.0-alpha", "2.0.0", "1.2.3.4", "0.0.0", "v", "-", "1..2", "1.2.3-", "01.2.3", "1.2.3-10", "1.2.3-9", "1.2.3-beta.10", "1.2.3-beta.9", "1.0.0-ALPHA"];
const NUMS = [0, -0, 1, -1, 2, 3, 10, 0.5, -2.5, 1.1, 0.1 + 0.2, 99.99, 1e21, 1e-7, 123456789012, 2 ** 53 + 2, -(2 ** 31), 1.7976931348623157e308, 5e-324, 12, 100, 7];
// Regexes: valid and invalid ones, slashes (GrowthBook escapes unescaped ones), classes, anchors.
// None ends in "/i": GrowthBook's regex cache keys "x" with the flag i as "x/i", so that the
// pattern "x/i" is answered from the cache entry of {$regexi: "x"} (see the header).
const REGEXES = ["a", "^a", "a$", "^$", "b+", "[0-9]+", "^[0-9]+$", "\\d", "é", "^é", "x/y", "x\\/y", "/", "(", "[", "a{2", "\\", "*", ".", "^.*$", "null", "true", "1", "ab|cd", "(?<n>a)", "\\bA", "[A-Z]", "^\\s*$", "\\u00e9", "ß"];
const TYPES = ["string", "number", "boolean", "array", "object", "null", "undefined", "unknown", 1];
const GROUP_IDS = ["g1", "g2", "g3"];

function gen(r) {
  let astral = false;
  const scalar = () => {
    switch (r.int(7)) {
      case 0: return r.pick(NUMS);
      case 1: return r.pick(NUMSTR);
      case 2: return r.pick(VERSIONS);
      case 3: return r.chance(0.8) ? r.pick(WORDS) : r.pick(astral ? ASTRAL : HIGH);
      case 4: return r.chance(0.5);
      case 5: return null;
      default: return r.int(2) ? r.int(20) - 5 : r.pick(["a", "b", "c", "A"]);
    }
  };
  const value = (d) => {
    const k = r.int(d > 2 ? 6 : 10);
    if (k < 6) return scalar();
    if (k < 8) return Array.from({ length: r.int(5) }, () => value(d + 1));
    const o = {};
    for (let i = r.int(4); i > 0; i--) o[r.pick(KEYS)] = value(d + 1);
    return o;
  };
  const attrs = () => {
    const o = {};
    for (let i = 1 + r.int(5); i > 0; i--) o[r.pick(KEYS)] = value(0);
    return o;
  };
  // The paths into `doc`: its keys and, for nested objects and arrays, "a.b", "a.0", "a.length".
  const paths = (doc) => {
    const out = [];
    const walk = (v, pre, d) => {
      if (d > 3 || !v || typeof v != "object") return;
      const keys = Array.isArray(v) ? [...v.keys()].map(String).concat("length") : Object.keys(v);
      for (const k of keys) {
        const p = pre ? pre + "." + k : k;
        out.push(p);
        if (!p.endsWith("length") || !Array.isArray(v)) walk(v[k], p, d + 1);
      }
    };
    walk(doc, "", 0);
    return out;
  };
  const get = (doc, p) => {
    let c = doc;
    for (const k of p.split(".")) {
      if (c && typeof c == "object" && Object.prototype.hasOwnProperty.call(c, k)) c = c[k];
      else if (Array.isArray(c) && k == "length") c = c.length;
      else return null;
    }
    return c;
  };
  const near = (v) => {
    // A literal related to v: v itself, a coerced form, or a neighbour.
    // (Only JSON values: no NaN or Infinity, no lone surrogate; a condition is JSON.)
    if (typeof v == "number") return r.pick([v, v + 1, v - 1, String(v), -v, v / 2]);
    if (typeof v == "string") return r.pick([v, v.toUpperCase(), v.toLowerCase(), Number.isFinite(Number(v)) ? Number(v) : v, v + "x", [...v].slice(1).join("")]);
    if (Array.isArray(v)) return v.length && r.chance(0.6) ? near(r.pick(v)) : r.pick([v, [...v].reverse(), v.slice(1)]);
    if (v && typeof v == "object") return r.pick([v, {}, { ...v, z: 1 }]);
    return r.pick([v, !v, 0, "", null]);
  };
  // An argument for `op` given the actual value `v` at its path.
  const arg = (op, v, doc, d) => {
    const lit = () => (r.chance(0.6) ? near(v) : scalar());
    const list = () => Array.from({ length: r.int(4) }, () => (r.chance(0.5) ? near(Array.isArray(v) && v.length ? r.pick(v) : v) : scalar()));
    // Not a string, for a regex: GrowthBook caches regexes by pattern text, so a non-string
    // whose String() was a pattern before would be answered from the cache (see the header).
    if (op == "$regex" || op == "$regexi") return r.chance(0.9) ? r.pick(REGEXES) : r.pick([42, -3.5, [7, 8], false]);
    // Anything, malformed arguments included (for $elemMatch, only what is no departure).
    if (r.chance(0.05)) return op == "$elemMatch" ? notObject() : value(2);
    switch (op) {
      case "$in": case "$nin": case "$ini": case "$nini": return list();
      case "$all": case "$alli": return r.chance(0.3) ? Array.from({ length: r.int(3) }, () => opValue(v, doc, d + 1)) : list();
      case "$elemMatch": {
        const el = Array.isArray(v) && v.length ? r.pick(v) : scalar();
        if (r.chance(0.05)) return notObject();
        return r.chance(0.5) ? opValue(el, doc, d + 1, true) : cond(el && typeof el == "object" ? el : doc, d + 1);
      }
      case "$size": return r.chance(0.6) ? (Array.isArray(v) ? r.pick([v.length, v.length + 1, 0]) : r.int(4)) : opValue(Array.isArray(v) ? v.length : 0, doc, d + 1, true);
      case "$exists": return r.pick([true, false, 0, 1, "", "x", null]);
      case "$type": return r.chance(0.8) ? r.pick(TYPES.slice(0, 6)) : r.pick(TYPES);
      case "$not": return opValue(v, doc, d + 1);
      case "$veq": case "$vne": case "$vgt": case "$vgte": case "$vlt": case "$vlte": return r.chance(0.8) ? r.pick(VERSIONS) : lit();
      case "$inGroup": case "$notInGroup": return r.chance(0.9) ? r.pick(GROUP_IDS) : scalar();
      default: return lit();
    }
  };
  const OPS = ["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$ini", "$nini", "$all", "$alli", "$elemMatch", "$size", "$exists", "$type", "$not", "$regex", "$regexi", "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte", "$inGroup", "$notInGroup"];
  // A condition value for actual value v: a literal (equality) or an operator object.
  const opValue = (v, doc, d, opsOnly = false) => {
    if (!opsOnly && r.chance(0.3)) {
      if (r.chance(0.1)) return v && typeof v == "object" ? (r.chance(0.7) ? v : near(v)) : value(1); // literal object/array: JSON equality
      return near(v);
    }
    if (d > 3) return { [r.pick(["$eq", "$exists", "$type"])]: arg("$eq", v, doc, d) };
    const o = {};
    for (let i = 1 + (r.chance(0.2) ? 1 : 0); i > 0; i--) {
      const op = r.chance(0.02) ? r.pick(["$foo", "$", "$EQ", "$savedGroup"]) : r.pick(OPS);
      o[op] = arg(op, v, doc, d);
    }
    if (r.chance(0.03)) o.plain = 1; // a mixed object: not an operator object, JSON equality
    return o;
  };
  const path = (doc) => {
    const ps = paths(doc);
    if (ps.length && r.chance(0.85)) return r.pick(ps);
    return r.pick(["missing", "a.b.c", "o.x", "tags.0", "tags.length", "s.length", "", ".", "a.", "x..y"]);
  };
  // A condition over doc.
  const cond = (doc, d = 0) => {
    const c = {};
    for (let i = 1 + r.int(d ? 2 : 3); i > 0; i--) {
      const k = d < 3 ? r.int(10) : 9;
      if (r.chance(0.03)) c[r.pick(["$and", "$or", "$nor"])] = malformed(doc, d);
      else if (r.chance(0.01)) c.$not = notObject();
      else if (k == 0) c.$and = Array.from({ length: r.int(3) }, () => cond(doc, d + 1));
      else if (k == 1) c.$or = Array.from({ length: r.int(3) }, () => cond(doc, d + 1));
      else if (k == 2 && r.chance(0.5)) c.$nor = Array.from({ length: r.int(3) }, () => cond(doc, d + 1));
      else if (k == 3 && r.chance(0.5)) c.$not = cond(doc, d + 1);
      else {
        const p = path(doc);
        c[p] = opValue(get(doc, p), doc, d);
      }
    }
    return c;
  };
  // What GrowthBook takes for a condition but is no object: numbers and booleans (no entries:
  // the empty condition), null (GrowthBook throws), and for $and/$or/$nor a value that is no
  // array. Not arrays or strings, nor objects with a "length" as a list (see the header).
  const notObject = () => r.pick([0, 1, -2.5, true, false, null, {}, { a: 1 }]);
  const malformed = (doc, d) => (r.chance(0.5) ? notObject() : Array.from({ length: 1 + r.int(2) }, () => (r.chance(0.5) ? notObject() : cond(doc, d + 1))));
  const groups = (doc) => {
    if (r.chance(0.3)) return undefined;
    const vals = () => {
      const out = Array.from({ length: r.int(4) }, scalar);
      for (const p of paths(doc)) if (r.chance(0.3)) out.push(get(doc, p));
      return out.filter((x) => x === null || typeof x != "object");
    };
    const g = {};
    for (const id of GROUP_IDS.slice(0, 1 + r.int(2))) {
      const k = r.int(10);
      g[id] = k < 6 ? vals() : k < 8 ? { type: "list", values: vals() } : r.pick([null, "x", { a: 1 }, { type: "list" }, { type: "condition", condition: {} }, 3]);
    }
    return g;
  };
  return () => {
    astral = r.chance(0.5);
    const a = attrs();
    // Copies: the condition's literals are often taken from the attributes, and a shared object
    // would be `===` in GrowthBook (a condition read from JSON never shares one).
    return [structuredClone(cond(a)), a, structuredClone(groups(a))];
  };
}

// ---------------------------------------------------------------------------------------------
// Running both.

/** GrowthBook's answer: true, false or "throws" (its console.error on unknown operators muted). */
function gb(cond, attrs, groups) {
  const err = console.error;
  console.error = () => {};
  try {
    return gbEvalCondition(attrs, cond, groups);
  } catch (_) {
    return "throws";
  } finally {
    console.error = err;
  }
}

/** Keystone's answers in the page: [named export, Keystone.evalCondition] per case. The cases
 * cross as JSON text (half the time of Playwright's own serialization of nested values), with -0
 * as a marker string turned back into -0 in the page. */
const MINUS_ZERO = "\u0000-0";
async function ks(page, cases) {
  const out = [];
  for (let i = 0; i < cases.length; i += BATCH) {
    const text = JSON.stringify(cases.slice(i, i + BATCH), (_, v) => (Object.is(v, -0) ? MINUS_ZERO : v));
    out.push(
      ...(await page.evaluate(async ([text, mz]) => {
        await Keystone.load();
        return JSON.parse(text, (_, v) => (v === mz ? -0 : v)).map(([c, a, g]) => {
          g = g ?? undefined;
          let x, y;
          try {
            x = K.evalCondition(a, c, g);
          } catch (e) {
            x = "throws";
          }
          try {
            y = Keystone.evalCondition(a, c, g);
          } catch (e) {
            y = "throws";
          }
          return [x, y];
        });
      }, [text, MINUS_ZERO])),
    );
  }
  return out;
}

/** Whether a case diverges: Keystone's two entries disagree, throw, answer a non-boolean, or
 * answer otherwise than GrowthBook (when GrowthBook throws, any boolean is accepted). */
function diverges(g, [x, y]) {
  if (typeof x != "boolean" || x !== y) return true;
  return g !== "throws" && g !== x;
}

// Shrinking: simpler variants of a case (a key removed, an array element removed, a subtree
// replaced by null / {} / a scalar), kept while the case still diverges.
function* simpler(v) {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) yield [...v.slice(0, i), ...v.slice(i + 1)];
    for (let i = 0; i < v.length; i++) for (const s of simpler(v[i])) yield v.map((x, j) => (j == i ? s : x));
  } else if (v && typeof v == "object") {
    const ks = Object.keys(v);
    for (const k of ks) {
      const o = { ...v };
      delete o[k];
      yield o;
    }
    for (const k of ks) for (const s of simpler(v[k])) yield { ...v, [k]: s };
  } else if (typeof v == "string" && [...v].length > 1) {
    yield [...v][0];
  }
}

async function shrink(page, c) {
  let cur = c;
  for (let round = 0; round < 200; round++) {
    const cands = [];
    for (let part = 0; part < 3; part++) {
      if (cur[part] === undefined) continue;
      if (part == 2) cands.push([cur[0], cur[1], undefined]);
      for (const s of simpler(cur[part])) {
        const n = [...cur];
        n[part] = s;
        cands.push(n);
        if (cands.length > 400) break;
      }
    }
    const answers = await ks(page, cands);
    const i = cands.findIndex((n, j) => diverges(gb(...n), answers[j]));
    if (i < 0) break;
    cur = cands[i];
  }
  const [k] = await ks(page, [cur]);
  return { condition: cur[0], attributes: cur[1], savedGroups: cur[2], growthbook: gb(...cur), keystone: k[0], keystoneStatic: k[1] };
}

const show = (x) => JSON.stringify(x, (_, v) => (Object.is(v, -0) ? "-0 (number)" : v));

for (const seed of SEEDS) {
  test(`evalCondition agrees with GrowthBook on ${CASES} random cases (seed ${seed})`, async () => {
    const next = gen(prng(seed));
    const cases = Array.from({ length: CASES }, next);
    const t0 = Date.now();
    const answers = await ks(page, cases);
    const t1 = Date.now();
    const bad = [];
    let thrown = 0;
    for (let i = 0; i < cases.length; i++) {
      const g = gb(...cases[i]);
      if (g === "throws") thrown++;
      if (diverges(g, answers[i])) bad.push(i);
    }
    const report = [];
    for (const i of bad.slice(0, Number(process.env.KEYSTONE_COND_SHOW || 3))) report.push(`case ${i}: ` + show(await shrink(page, cases[i])));
    console.log(`seed ${seed}: ${CASES} cases, Keystone ${t1 - t0} ms, GrowthBook and the comparison ${Date.now() - t1} ms`);
    assert.deepEqual(page.problems, []);
    assert.equal(bad.length, 0, `seed ${seed}: ${bad.length} of ${CASES} cases diverge (GrowthBook threw on ${thrown}); minimal forms of the first ones (KEYSTONE_COND_SEED=${seed} KEYSTONE_COND_CASES=${CASES}):\n${report.join("\n")}`);
  });
}
