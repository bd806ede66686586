// Model-based random testing of activation and orchestration (DESIGN §13, README "Activation and
// experiences") on the built package in real Chromium, with Playwright's clock: a seeded generator
// loads random experiences (1–3 of them, 2–4 variants, random priorities with ties, segments on
// traits and on events — Experience Viewed included —, frequency caps with windows, holdouts
// 0/0.1/0.5/1), and drives track, page, SPA navigations (history.pushState), setTraits, identify
// and reset, setConsent for analytics, marketing and (rarely) personalization, decide() calls,
// clock jumps across cap windows, reloads and declarative experience containers, under the
// `dataLayer` and `trackSegments` options. After every step it compares with an independent model
// written from DESIGN and the README, not from the sources: decide()'s answer, the exposures
// recorded (profile() counts of Experience Viewed, and what reaches the local collector when
// analytics is granted), the data layer pushes, the Segment Entered / Exited events, and the
// variant rendered in each container.
//
// The holdout draw is a hash the model does not compute: it learns each (identity, experience)
// arm from the first answer and checks it stays the same across calls, page views and reloads;
// a separate test checks the share over many identities and that the holdout gets the last
// variant.
//
// Where the contract is silent the model follows the README and says so in its comments.
//
// Seeds: a fixed list by default; KEYSTONE_ACT_SEED="7" or "1-200" or "3,9" runs others,
// KEYSTONE_ACT_STEPS the steps per sequence. A failure prints the seed, the step and the steps
// that led there; KEYSTONE_ACT_DEBUG=1 logs each observation; KEYSTONE_ACT_HOLDOUT_ONLY=1 runs
// the holdout-share test alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, seeds, prng } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.parse("2026-03-02T10:00:00Z");
// Caps count at minute resolution (README): an exposure within GUARD of leaving its window may be
// counted either way, and the model accepts both answers there.
const GUARD = 90_000;
const DELIVERY = { endpoint: "/v1/batch", writeKey: "demo-key" };

const SEEDS = seeds("KEYSTONE_ACT_SEED", [1, 2, 3, 4]);
const STEPS = Number(process.env.KEYSTONE_ACT_STEPS || 30);

const PEOPLE = [{ email: "ann@example.com", userId: "crm-ann" }, { email: "bob@example.com", userId: "crm-bob" }];

// ---- segments: each with the model's own reading of its condition (m: {prof, now}) ----

const within = (prof, name, ms, now, where = () => true) => prof.events.filter((e) => e.name === name && where(e.props) && (ms == null || now - e.t <= ms));
const SEGMENTS = {
  gold: { condition: { "traits.tier": "gold" }, holds: (m) => m.prof.traits.tier === "gold" },
  silver_up: { condition: { "traits.tier": { $in: ["gold", "silver"] } }, holds: (m) => ["gold", "silver"].includes(m.prof.traits.tier) },
  viewer2: { condition: { $performed: { event: "Product Viewed", count: { $gte: 2 } } }, holds: (m) => within(m.prof, "Product Viewed", null, m.now).length >= 2 },
  buyer_1h: {
    condition: { $performed: { event: "Order Completed", within: "1h" } },
    holds: (m) => (m.prof.events.some((e) => e.name === "Order Completed" && Math.abs(m.now - e.t - HOUR) < GUARD) ? null : within(m.prof, "Order Completed", HOUR, m.now).length >= 1),
  },
  // Experience Viewed is an event like any other (DESIGN §13): segments on the exposures.
  saw_v0: { condition: { $performed: { event: "Experience Viewed", where: { variant: "v0" } } }, holds: (m) => within(m.prof, "Experience Viewed", null, m.now, (p) => p.variant === "v0").length >= 1 },
  control: { condition: { $performed: { event: "Experience Viewed", where: { holdout: true } } }, holds: (m) => within(m.prof, "Experience Viewed", null, m.now, (p) => p.holdout === true).length >= 1 },
};
const SEG_IDS = Object.keys(SEGMENTS);
const EXP_IDS = ["hero", "banner", "promo"];
const WINDOWS = { "30m": 30 * MIN, "2h": 2 * HOUR, "1d": DAY };

/** Random definitions: all the segments (a random subset), 1–3 experiences. */
function genDefs(r) {
  const segs = SEG_IDS.filter(() => r.chance(0.8));
  const exps = [];
  const n = 1 + r.int(3);
  for (const id of EXP_IDS.slice(0, 3).sort(() => r.next() - 0.5).slice(0, n)) {
    const e = { id, variants: [] };
    if (r.chance(0.85)) e.holdout = r.pick([0, 0.1, 0.5, 1]);
    const nv = 2 + r.int(3);
    for (let i = 0; i < nv; i++) {
      const v = { id: "v" + i };
      if (segs.length && r.chance(i === nv - 1 ? 0.2 : 0.7)) v.segment = r.pick(segs);
      if (r.chance(0.75)) v.priority = r.pick([0, 1, 1, 5, 10, -2]);
      if (r.chance(0.45)) {
        v.cap = { count: 1 + r.int(3) };
        // cap.within defaults to the retention (README).
        if (r.chance(0.85)) v.cap.within = r.pick(Object.keys(WINDOWS));
      }
      e.variants.push(v);
    }
    exps.push(e);
  }
  return { version: 1, segments: segs.map((id) => ({ id, condition: SEGMENTS[id].condition })), experiences: exps };
}

// ---- the model ----

// `exposures`: what caps count (recorded with analytics or personalization, README); `events`:
// the profile's events (recorded with personalization only).
const fresh = () => ({ events: [], traits: {}, exposures: [] });
const merge = (a, b) => ({ events: [...a.events, ...b.events].sort((x, y) => x.t - y.t), traits: { ...a.traits, ...b.traits }, exposures: [...a.exposures, ...b.exposures] });

class Model {
  constructor(defs, consent) {
    this.now = T0;
    this.defs = defs;
    this.consent = { ...consent };
    this.cur = { userId: null, prof: fresh() };
    this.aside = new Map();
    this.pv = 0; // page view counter
    this.pvOf = new Map(); // exposure event → the page view it was recorded in
    this.sticky = new Map(); // experience id → {variant, holdout, segs, pv} decided in this page view
    this.exposed = new Set(); // experiences with an exposure recorded in this page view
    this.pvKey = null; // the identity whose holdout draw applies in this page view
    this.sent = []; // exposures expected at the collector
  }
  segs() {
    const out = {};
    const ids = this.defs.segments.map((s) => s.id);
    for (const id of ids) out[id] = this.consent.personalization ? SEGMENTS[id].holds({ prof: this.cur.prof, now: this.now }) : false;
    return out;
  }
  record(name, props) {
    // Without personalization nothing is recorded in the profile (as in the core model test).
    if (this.consent.personalization) this.cur.prof.events.push({ t: this.now, name, props: props || {} });
  }
  newPageView() {
    this.pv++;
    this.sticky.clear();
    this.exposed.clear();
    this.pvKey = undefined;
  }
  /** Exposures of experience `e`, variant `v`, that count for a cap at `now`: those of earlier
   * page views (DESIGN: the cap counts the exposures of earlier page views), in the window.
   * Returns {n, edge} where edge says an exposure is within GUARD of the window's end. */
  capCount(e, v) {
    const w = v.cap.within ? WINDOWS[v.cap.within] : 90 * DAY;
    let n = 0;
    let edge = false;
    for (const ev of this.cur.prof.exposures) {
      if (ev.props.experience !== e || ev.props.variant !== v.id) continue;
      if (ev.pv === this.pv) continue;
      const age = this.now - ev.t;
      if (Math.abs(age - w) < GUARD) edge = true;
      if (age <= w) n++;
    }
    return { n, edge };
  }
  /** The variants a fresh decision may give when not in the holdout (several when a cap sits on
   * its window's edge). */
  candidates(exp) {
    const segs = this.segs();
    const vs = exp.variants.map((v, i) => ({ v, i, p: v.priority ?? 0 }));
    // Highest priority first, ties in document order (README). A variant without priority: 0
    // (not said by the contract; the README's example gives none to its fallback).
    vs.sort((a, b) => b.p - a.p || a.i - b.i);
    const out = [];
    for (const { v } of vs) {
      let el = v.segment == null ? true : segs[v.segment];
      if (el !== false && v.cap) {
        const { n, edge } = this.capCount(exp.id, v);
        const capped = n >= v.cap.count;
        if (edge) el = null;
        else if (capped) el = false;
      }
      if (el === true) return out.push(v.id), out;
      if (el == null) out.push(v.id);
    }
    // When none is eligible, the last variant (README).
    out.push(exp.variants[exp.variants.length - 1].id);
    return out;
  }
}

// ---- the page side ----

async function start(page, cfg, defs, consent) {
  await page.evaluate(
    async ([cfg, defs, consent, delivery]) => {
      window.ks = await Keystone.init({ autoCapture: cfg.autoCapture, segments: defs, consent, dataLayer: cfg.dataLayer, trackSegments: cfg.trackSegments, ...delivery });
      window.log = [];
      window.errs = [];
      ks.on("segment:enter", (p) => log.push(["enter", p.segment]));
      ks.on("segment:exit", (p) => log.push(["exit", p.segment]));
      ks.on("error", (e) => errs.push(e.code + ": " + e.message));
    },
    [cfg, defs, consent, DELIVERY],
  );
}

const observe = (page, layerName) =>
  page.evaluate((layerName) => {
    const p = ks.profile();
    const layer = window[layerName] || [];
    return {
      segs: ks.segments(),
      views: p.events["Experience Viewed"]?.count ?? 0,
      log: log.splice(0),
      errs: errs.splice(0),
      layer: JSON.parse(JSON.stringify(layer.splice ? layer.splice(0) : [])),
      aid: ks.anonymousId(),
      uid: ks.userId(),
    };
  }, layerName);

const NAMES = ["Product Viewed", "Order Completed", "Signup"];

function genStep(r, model) {
  const x = r.next();
  if (x < 0.28) return { op: "decide", exp: r.chance(0.93) ? r.pick(EXP_IDS) : "nope" };
  if (x < 0.4) return { op: "track", name: r.pick(NAMES) };
  if (x < 0.46) return { op: "page" };
  if (x < 0.52) return { op: "spa" };
  if (x < 0.58) return { op: "setTraits", traits: { tier: r.pick(["gold", "silver", "bronze"]) } };
  if (x < 0.63) return { op: "identify", who: r.int(2) };
  if (x < 0.66) return { op: "reset" };
  if (x < 0.73) {
    const cat = r.chance(0.15) ? "personalization" : r.pick(["analytics", "marketing"]);
    return { op: "consent", consent: { [cat]: !model.consent[cat] } };
  }
  if (x < 0.77) return { op: "defs", defs: genDefs(r) };
  if (x < 0.81) return { op: "reload" };
  if (x < 0.91) return { op: "jump", min: r.chance(0.2) ? 60 * (20 + r.int(10)) : 7 * (1 + r.int(20)) };
  return { op: "container", exp: r.chance(0.9) ? r.pick(EXP_IDS) : "nope", missing: r.chance(0.2) ? "v" + r.int(4) : null };
}

async function runSequence(seed, steps) {
  const r = prng(seed);
  // Auto-capture on in half the sequences (page views of SPA navigations seen at once), off in
  // the others (seen at the next call).
  const cfg = { dataLayer: r.chance(0.5) ? true : "tagLayer", trackSegments: r.chance(0.7), autoCapture: r.chance(0.5) };
  const layerName = cfg.dataLayer === true ? "dataLayer" : cfg.dataLayer;
  // One sequence in eight starts with nothing granted (an opt-in site before the banner).
  const none = r.chance(0.125);
  const consent = { analytics: !none && r.chance(0.85), personalization: !none, marketing: !none && r.chance(0.5) };
  const model = new Model(genDefs(r), consent);
  h.server.collector.reset();
  const ctx = await h.browser.newContext();
  await ctx.clock.install({ time: T0 });
  await ctx.clock.pauseAt(T0);
  const page = await h.open("/tests/esm.html", { context: ctx });
  const trace = [`config ${JSON.stringify(cfg)} consent ${JSON.stringify(consent)} defs ${JSON.stringify(model.defs.experiences)} segs ${model.defs.segments.map((s) => s.id)}`];
  const fail = (msg) => {
    throw new assert.AssertionError({ message: `seed ${seed} (KEYSTONE_ACT_SEED=${seed}), step ${trace.length - 1}: ${msg}\nsteps:\n  ${(trace.length > 31 ? [trace[0], "…", ...trace.slice(-30)] : trace).join("\n  ")}` });
  };
  const eq = (a, b, what) => {
    try {
      assert.deepEqual(a, b);
    } catch {
      fail(`${what}: Keystone ${JSON.stringify(a)}, model ${JSON.stringify(b)}`);
    }
  };
  let containers = []; // experience ids of the containers on the page
  let prevSegs = null; // what Keystone held at the last observation
  let sentSeen = 0; // collector events already compared
  const reported = new Map(); // "identity|segment" → "in" | "out" | "?" (what the collector was told last)
  let layerReady = false; // whether keystone.ready has been pushed since marketing was last granted

  const exposure = (e, d) => {
    // decide() records the exposure once per experience per page view, and only with analytics or
    // personalization (README: a decision made before consent records nothing).
    if (model.exposed.has(e) || !(model.consent.analytics || model.consent.personalization)) return;
    model.exposed.add(e);
    const props = { experience: e, variant: d.variant, holdout: d.holdout };
    model.record("Experience Viewed", props);
    model.cur.prof.exposures.push({ t: model.now, props, pv: model.pv });
    if (model.consent.analytics) model.sent.push({ ...props, userId: model.cur.userId });
  };

  /** The model's side of a decide() for `e`; `got` is Keystone's answer (the model checks it and
   * learns the holdout arm and, where it allows several answers, which one was taken). */
  function decideModel(e, got, who, key, pick = false) {
    const exp = model.defs.experiences.find((x) => x.id === e);
    if (!exp) {
      if (got !== null) fail(`${who}(${e}): ${JSON.stringify(got)} for an experience not defined`);
      return;
    }
    if (!got || got.experience !== e) fail(`${who}(${e}): ${JSON.stringify(got)}`);
    const segs = JSON.stringify(model.segs());
    let st = model.sticky.get(e);
    // A decision made with no identity at all (neither analytics nor personalization: no
    // anonymous id) is made afresh, with the visitor's own draw, once consent brings the id
    // (README).
    if (st && st.key == null && key != null) st = undefined;
    // The holdout draw of a page view is that of the identity of its first decision (README:
    // after a login of the anonymous visitor the known identity's draw applies from the next page
    // view; an experience first decided after the login in that page view is drawn from the
    // anonymous id when another experience was decided before it, the same page view's draw).
    // (With no identity at all — neither analytics nor personalization — nothing fixes it: the
    // first decision with an id does.)
    if (model.pvKey == null) model.pvKey = key;
    const drawKey = model.pvKey ?? key;
    const last = exp.variants[exp.variants.length - 1].id;
    let allowed;
    if (st && st.segs === segs && st.defs === model.defs) {
      // Sticky within the page view while membership stays as it was.
      allowed = [{ variant: st.variant, holdout: st.holdout }];
    } else {
      // A fresh decision. A decision made again in this page view (membership changed) keeps its
      // holdout arm (README); else the arm of the page view's identity. New definitions decide
      // afresh, the arm drawn again at their fraction (README).
      const h0 = exp.holdout ?? 0;
      const drawn = h0 === 0 ? false : h0 === 1 ? true : predictArm(drawKey, e, h0);
      let arm = st && st.defs === model.defs ? st.holdout : drawn;
      const cands = model.candidates(exp);
      allowed = [];
      if (arm !== true) for (const v of cands) allowed.push({ variant: v, holdout: false });
      if (arm !== false) allowed.push({ variant: last, holdout: true });
      if (!st && h0 > 0 && h0 < 1 && got && !pick) learnArm(drawKey, e, h0, got.holdout);
    }
    let g = { variant: got.variant, holdout: got.holdout };
    // `pick`: a decision the renderer made before the check; the model takes its own answer (the
    // one Keystone gave last where it is allowed, for what the model cannot tell).
    if (pick) g = allowed.find((a) => a.variant === g.variant && a.holdout === g.holdout) || allowed.find((a) => a.holdout === g.holdout) || allowed[0];
    if (!allowed.some((a) => a.variant === g.variant && a.holdout === g.holdout)) fail(`${who}(${e}): Keystone ${JSON.stringify(got)}, model allows ${JSON.stringify(allowed)}`);
    // The membership the answer sticks to is the one after its own exposure: a segment on
    // Experience Viewed that the exposure makes enter does not make the next call decide again
    // (README; else a variant would replace itself as soon as it is shown).
    exposure(e, g);
    model.sticky.set(e, { ...g, segs: JSON.stringify(model.segs()), defs: model.defs, key });
  }

  /** The holdout draw of (identity, experience) is a fixed number in [0, 1): the model keeps the
   * bounds the answers give it (in the holdout at fraction f: draw < f; else draw >= f) and
   * predicts the arm where they decide it, across page views, reloads and definitions. */
  const draws = new Map();
  const exactDraw = new Map();
  function predictArm(key, e, f) {
    const b = draws.get(`${key}|${e}`);
    if (!b) return null;
    return b.hi <= f ? true : b.lo >= f ? false : null;
  }
  function learnArm(key, e, f, held) {
    const b = draws.get(`${key}|${e}`) || { lo: 0, hi: 1 };
    if (held) b.hi = Math.min(b.hi, f);
    else b.lo = Math.max(b.lo, f);
    if (b.lo >= b.hi) fail(`holdout of ${key} for ${e}: ${held} at ${f} contradicts earlier answers (draw in [${b.lo}, ${b.hi}))`);
    draws.set(`${key}|${e}`, b);
  }

  async function settle() {
    await ctx.clock.runFor(1100);
    model.now += 1100;
    if (model.consent.analytics) await page.evaluate(() => ks.flush().catch(() => {}));
    await new Promise((res) => setTimeout(res, 30));
  }

  async function check(step) {
    // Containers first: each is rendered with the decision decide() gives (the renderer decides
    // like decide()). With auto-capture off Keystone sees an SPA navigation at its next call
    // (README: the context follows at the next call), so decide() is called first and the
    // container read once the renderer has run after it.
    // With auto-capture on, the renderer has already decided on its own for the page view the
    // navigation started: the variant shown before decide() is called is checked too.
    const readDom = () =>
      page.evaluate(() =>
        [...document.querySelectorAll("[data-keystone-experience]")].map((el) => ({
          id: el.getAttribute("data-keystone-experience"),
          rendered: el.getAttribute("data-keystone-rendered"),
          // (The authored content stays while a variant shows, hidden.)
          html: [...el.children].filter((c) => c.tagName !== "TEMPLATE" && !c.hidden).map((c) => c.outerHTML.replace(' style=""', "")).join(""),
        })),
      );
    const before = cfg.autoCapture ? await readDom() : null;
    const ds = await page.evaluate(() => [...document.querySelectorAll("[data-keystone-experience]")].map((el) => [ks.decide(el.getAttribute("data-keystone-experience")), ks.userId() ?? ks.anonymousId()]));
    if (before) before.forEach((c, n) => c.rendered !== (ds[n][0]?.variant ?? null) && fail(`container ${n} (${c.id}): shows ${c.rendered} before decide() is called, decide() then says ${JSON.stringify(ds[n][0])}`));
    await ctx.clock.runFor(50);
    model.now += 50;
    const cs = (
      await readDom()
    ).map((c, n) => ({ ...c, d: ds[n][0], key: ds[n][1] }));
    // The renderer decides the containers in document order, and again while the exposures it
    // records change membership (a segment on Experience Viewed): the model makes the same passes
    // first, then checks what Keystone answers now.
    for (let pass = 0; pass < 3; pass++) {
      const before = JSON.stringify(model.segs());
      cs.forEach((c) => model.defs.experiences.some((x) => x.id === c.id) && c.d && decideModel(c.id, c.d, "renderer", c.key, true));
      if (JSON.stringify(model.segs()) === before) break;
    }
    cs.forEach((c, n) => {
      const exp = model.defs.experiences.find((x) => x.id === c.id);
      const authored = `<p class="authored">fallback ${c.id}</p>`;
      if (!exp) {
        if (c.rendered != null || c.html !== authored) fail(`container ${n} (${c.id}): rendered ${c.rendered} ${c.html} for an experience not defined`);
        return;
      }
      decideModel(c.id, c.d, `container ${n}: decide`, c.key);
      if (c.rendered !== c.d.variant) fail(`container ${n} (${c.id}): renders ${c.rendered}, decide() says ${JSON.stringify(c.d)}`);
      // The decided variant's template, or the authored content when it has none (README).
      const want = containers[n].templates.includes(c.d.variant) ? `<p class="v">${c.id} ${c.d.variant}</p>` : authored;
      if (c.html !== want) fail(`container ${n} (${c.id}): shows ${c.html}, want ${want}`);
    });
    if (cs.length && model.consent.analytics) await page.evaluate(() => ks.flush().catch(() => {}));
    const o = await observe(page, layerName);
    if (process.env.KEYSTONE_ACT_DEBUG) console.log(`#${trace.length - 1} ${trace[trace.length - 1]}\n  `, JSON.stringify(o));
    if (o.errs.some((x) => !x.startsWith("unknown_id"))) fail(`error events ${JSON.stringify(o.errs)}`);
    if (page.problems.length) fail(`page problems: ${page.problems.join("; ")}`);
    // Membership.
    const want = model.segs();
    const sure = Object.keys(want).filter((id) => want[id] != null);
    eq(o.segs.filter((id) => sure.includes(id)), sure.filter((id) => want[id]).sort(), "segments()");
    // enter/exit heard since the last observation lead from there to now.
    if (prevSegs) {
      const held = new Set(prevSegs);
      for (const [k, id] of o.log) k === "enter" ? held.add(id) : held.delete(id);
      eq([...held].sort(), o.segs, `membership after the enter/exit heard ${JSON.stringify(o.log)} from ${JSON.stringify(prevSegs)}`);
    }
    // The data layer: while marketing is granted, keystone.ready once (at init or at the grant)
    // with the segments then held, then one push per change heard, in order; nothing otherwise.
    const wantLayer = [];
    if (model.consent.marketing) {
      if (!layerReady) {
        const o0 = o.layer[0];
        if (!o0 || o0.event !== "keystone.ready") fail(`data layer: no keystone.ready at the grant, got ${JSON.stringify(o.layer)}`);
        wantLayer.push(o0);
        // The ready push carries what was held when it was pushed: the membership before this
        // step's later changes.
        const held = new Set(o0.keystoneSegments);
        for (const [k, id] of o.log) k === "enter" ? held.add(id) : held.delete(id);
        eq([...held].sort(), o.segs, `keystone.ready ${JSON.stringify(o0.keystoneSegments)} then ${JSON.stringify(o.log)}`);
        layerReady = true;
        // Only changes after the ready push are pushed; the ready push comes first.
        const tail = o.layer.slice(1);
        const logs = o.log.map(([k, id]) => ({ event: k === "enter" ? "keystone.segment_enter" : "keystone.segment_exit", keystoneSegment: id }));
        eq(tail, logs.slice(logs.length - tail.length), "data layer pushes after keystone.ready");
      } else {
        for (const [k, id] of o.log) wantLayer.push({ event: k === "enter" ? "keystone.segment_enter" : "keystone.segment_exit", keystoneSegment: id });
        eq(o.layer, wantLayer, `data layer pushes (marketing granted)`);
      }
    } else {
      eq(o.layer, [], "data layer pushes without marketing");
      layerReady = false;
    }
    prevSegs = o.segs;
    // explain(experience): the caps as the model counts them (exposures of earlier page views in
    // the window), and the holdout flag as the draw against the fraction.
    const exps = model.defs.experiences;
    const ex = await page.evaluate((ids) => ids.map((e) => ks.explain(e)), exps.map((e) => e.id));
    if (process.env.KEYSTONE_ACT_DEBUG) console.log("   explain", JSON.stringify(ex.map((x) => [x.id, x.variant, x.holdout, x.variants.map((v) => [v.id, v.seen])])), "model exposures", JSON.stringify(model.cur.prof.exposures.map((e) => [e.props.experience, e.props.variant, e.pv, (e.t - T0) / MIN])), "pv", model.pv);
    exps.forEach((exp, k) => {
      const x = ex[k];
      if (!x || x.kind !== "experience") return fail(`explain(${exp.id}): ${JSON.stringify(x)}`);
      if (x.holdout !== x.draw < (exp.holdout ?? 0)) fail(`explain(${exp.id}): holdout ${x.holdout} with draw ${x.draw} and fraction ${exp.holdout ?? 0}`);
      const key = `${model.pvKey ?? o.uid ?? o.aid}|${exp.id}`;
      if (exactDraw.has(key) && exactDraw.get(key) !== x.draw) fail(`explain(${exp.id}): draw ${x.draw} for ${key}, ${exactDraw.get(key)} before`);
      exactDraw.set(key, x.draw);
      if (process.env.KEYSTONE_ACT_DEBUG) console.log("   draw", key, x.draw);
      exp.variants.forEach((v, i) => {
        if (!v.cap) return;
        const { n, edge } = model.capCount(exp.id, v);
        const row = x.variants[i];
        if (!edge && (row.seen !== n || row.capped !== n >= v.cap.count)) fail(`explain(${exp.id}) variant ${v.id} (cap ${JSON.stringify(v.cap)}): seen ${row.seen}, capped ${row.capped}; model ${n} exposures of earlier page views in the window`);
      });
    });
    // Exposures in the profile.
    eq(o.views, model.cur.prof.events.filter((e) => e.name === "Experience Viewed").length, "profile() Experience Viewed count");
    // The collector.
    if (model.consent.analytics) {
      const got = h.server.collector.events;
      const seen = new Set();
      const evs = got.filter((e) => (seen.has(e.messageId) ? false : (seen.add(e.messageId), true)));
      const views = evs.filter((e) => e.event === "Experience Viewed").map((e) => ({ ...e.properties, userId: e.userId ?? null }));
      eq(views, model.sent, "Experience Viewed at the collector");
      // Segment Entered / Exited: per identity and segment they alternate, and once reported,
      // the last report per segment of the current identity is the membership now.
      const segEvs = evs.filter((e) => e.event === "Segment Entered" || e.event === "Segment Exited");
      if (!cfg.trackSegments && segEvs.length) fail(`Segment events without trackSegments: ${JSON.stringify(segEvs.map((e) => e.event))}`);
      for (const e of segEvs.slice(sentSeen)) {
        const key = `${e.userId ?? e.anonymousId}|${e.properties.segment}`;
        const st = reported.get(key) ?? "out";
        const now = e.event === "Segment Entered" ? "in" : "out";
        if (st === now) fail(`${e.event} ${e.properties.segment} for ${e.userId ?? e.anonymousId} twice in a row (${segEvs.slice(sentSeen).map((x) => x.event + " " + x.properties.segment)})`);
        reported.set(key, now);
      }
      sentSeen = segEvs.length;
      if (cfg.trackSegments && model.consent.personalization) {
        const key = o.uid ?? o.aid;
        for (const id of sure) {
          const st = reported.get(`${key}|${id}`) ?? "out";
          if (st === "?") continue;
          if ((st === "in") !== want[id]) fail(`collector: last report of ${id} for ${key} is ${st}, membership ${want[id]}`);
        }
      }
    }
  }

  await start(page, cfg, model.defs, model.consent);
  model.newPageView();
  await check({ op: "init" });
  for (let i = 0; i < steps; i++) {
    const s = genStep(r, model);
    trace.push(JSON.stringify(s) + ` @${(model.now - T0) / MIN} min`);
    switch (s.op) {
      case "decide": {
        const [d, key] = await page.evaluate((e) => [ks.decide(e), ks.userId() ?? ks.anonymousId()], s.exp);
        decideModel(s.exp, d, "decide", key);
        break;
      }
      case "track":
        await page.evaluate((n) => ks.track(n), s.name);
        model.record(s.name);
        break;
      case "page":
        await page.evaluate(() => ks.page());
        model.record("Page Viewed");
        model.newPageView();
        break;
      case "spa":
        // An SPA navigation starts a new page view for exposures, also with page views not
        // captured (README); nothing is recorded with autoCapture off.
        await page.evaluate((n) => history.pushState({}, "", "/tests/esm.html?p=" + n), i);
        model.newPageView();
        break;
      case "setTraits":
        await page.evaluate((t) => ks.setTraits(t), s.traits);
        if (model.consent.personalization) Object.assign(model.cur.prof.traits, s.traits);
        break;
      case "identify": {
        const p = PEOPLE[s.who];
        await page.evaluate(([e, u]) => ks.identify(e, {}, { userId: u }), [p.email, p.userId]);
        const uid = p.userId;
        if (model.cur.userId === uid) break;
        if (model.cur.userId == null) {
          // anonymous → A: merged into A's profile; the same person, so the page view's
          // decisions and exposures stay, and its holdout identity stays until the next page
          // view (README: "it follows the known identity from the page view after identify").
          const earlier = model.aside.get(uid) || fresh();
          model.aside.delete(uid);
          model.cur = { userId: uid, prof: merge(earlier, model.cur.prof) };
          // What was reported to the collector for the merged profile: not said; the model
          // accepts either for the next report.
          for (const k of reported.keys()) if (k.startsWith(uid + "|")) reported.set(k, "?");
          for (const id of SEG_IDS) reported.set(`${uid}|${id}`, "?");
        } else {
          // another person: decided afresh, with an exposure of their own.
          if (model.consent.personalization) model.aside.set(model.cur.userId, model.cur.prof);
          const b = model.aside.get(uid) || fresh();
          model.aside.delete(uid);
          model.cur = { userId: uid, prof: b };
          model.newPageView();
        }
        break;
      }
      case "reset":
        await page.evaluate(() => ks.reset());
        if (model.cur.userId != null && model.consent.personalization) model.aside.set(model.cur.userId, model.cur.prof);
        model.cur = { userId: null, prof: fresh() };
        model.newPageView();
        break;
      case "consent":
        await page.evaluate((c) => ks.setConsent(c), s.consent);
        if (s.consent.personalization === false) model.aside.clear();
        // What the collector was told before a withdrawal of personalization, once it is granted
        // again: not said (no segment is evaluated meanwhile); the model accepts either next report.
        if (s.consent.personalization === true) for (const k of reported.keys()) reported.set(k, "?");
        Object.assign(model.consent, s.consent);
        break;
      case "defs":
        model.defs = s.defs;
        trace[trace.length - 1] = JSON.stringify({ op: "defs", exps: s.defs.experiences, segs: s.defs.segments.map((x) => x.id) });
        await page.evaluate((d) => ks.loadSegments(d), s.defs);
        break;
      case "reload":
        await settle();
        await page.reload();
        await page.waitForFunction(() => window.__ksLoaded === true);
        containers = [];
        if (!model.consent.personalization) {
          // Nothing of an earlier page is read without personalization.
          model.cur = { userId: null, prof: fresh() };
          model.aside.clear();
        }
        await start(page, cfg, model.defs, model.consent);
        model.newPageView();
        prevSegs = null;
        layerReady = false;
        break;
      case "jump":
        await ctx.clock.fastForward(s.min * MIN);
        model.now += s.min * MIN;
        break;
      case "container": {
        const exp = model.defs.experiences.find((x) => x.id === s.exp);
        const ids = exp ? exp.variants.map((v) => v.id) : ["v0", "v1"];
        const n = containers.length;
        const tpl = ids.filter((v) => v !== s.missing).map((v) => `<template data-keystone-variant="${v}"><p class="v">${s.exp} ${v}</p></template>`).join("");
        await page.evaluate(([n, e, tpl]) => document.body.insertAdjacentHTML("beforeend", `<div id="c${n}" data-keystone-experience="${e}"><p class="authored">fallback ${e}</p>${tpl}</div>`), [n, s.exp, tpl]);
        containers.push({ exp: s.exp, templates: ids.filter((v) => v !== s.missing) });
        break;
      }
    }
    const dt = 20 + r.int(800);
    await ctx.clock.runFor(dt);
    model.now += dt;
    await settle();
    await check(s);
  }
  await ctx.close();
}

for (const seed of process.env.KEYSTONE_ACT_HOLDOUT_ONLY ? [] : SEEDS)
  test(`act-model: seed ${seed}, ${STEPS} random steps of activation and experiences agree with the model`, async () => {
    await runSequence(seed, STEPS);
  });

test("act-model: the holdout draw over 400 known and 400 anonymous identities: near the fraction, the last variant flagged holdout, the same arm on every call and after a reload", async () => {
  const defs = {
    version: 1,
    segments: [{ id: "all", condition: {} }],
    experiences: [
      { id: "h10", holdout: 0.1, variants: [{ id: "a", priority: 2 }, { id: "b" }, { id: "ctl" }] },
      { id: "h50", holdout: 0.5, variants: [{ id: "a" }, { id: "ctl" }] },
    ],
  };
  const N = 400;
  // Personalization refused: nothing of the 400 people is stored (the draw needs no storage).
  const run = (page, from, n) =>
    page.evaluate(
      async ([defs, from, n]) => {
        window.ks = window.ks || (await Keystone.init({ autoCapture: false, segments: defs, consent: { analytics: true, personalization: false, marketing: false } }));
        const out = { known: [], anon: [], bad: [] };
        const both = () => ["h10", "h50"].map((e) => {
          const d = ks.decide(e);
          const again = ks.decide(e);
          if (JSON.stringify(d) !== JSON.stringify(again)) out.bad.push(["not sticky", d, again]);
          if (d.holdout ? d.variant !== "ctl" : d.variant !== "a") out.bad.push(["variant", d]);
          return d.holdout;
        });
        for (let i = from; i < from + n; i++) {
          ks.reset();
          out.anon.push(both());
          await ks.identify(`p${i}@example.com`, {}, { userId: "u" + i });
          ks.page(); // the known identity's draw from the next page view
          out.known.push(both());
        }
        return out;
      },
      [defs, from, n],
    );
  const ctx = await h.browser.newContext();
  const page = await h.open("/tests/esm.html", { context: ctx });
  const first = await run(page, 0, N);
  assert.deepEqual(first.bad, []);
  for (const [k, f, tol] of [[0, 0.1, 0.06], [1, 0.5, 0.1]]) {
    for (const who of ["known", "anon"]) {
      const share = first[who].filter((x) => x[k]).length / N;
      // 4 standard deviations of a binomial share over 400 draws: 0.06 at 0.1, 0.1 at 0.5.
      assert.ok(Math.abs(share - f) < tol, `holdout ${f}, ${who} identities: share ${share}`);
    }
  }
  // The two experiences draw independently: the arms are not the same for every identity.
  assert.ok(first.known.some(([a, b]) => a !== b));
  // After a reload, the same people get the same arms.
  await page.reload();
  await page.waitForFunction(() => window.__ksLoaded === true);
  const second = await run(page, 0, 100);
  assert.deepEqual(second.bad, []);
  assert.deepEqual(second.known, first.known.slice(0, 100));
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
