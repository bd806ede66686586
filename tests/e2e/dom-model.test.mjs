// Model-based random test of declarative personalization (DESIGN §7, §13; README "Declarative
// personalization", "Activation and experiences") in real Chromium. A seeded generator drives a
// page through long random sequences of DOM changes and membership changes:
// - markup with data-keystone-show / -hide / -text (trait paths, missing traits, numbers,
//   booleans, objects, empty strings) / -track / -experience with variant templates, nested in
//   each other, inserted at random places by insertAdjacentHTML, innerHTML, appendChild and
//   replaceWith, moved, removed;
// - those attributes set, changed and removed on live elements;
// - the page itself editing the text, the `hidden` attribute and the inline display of managed
//   elements, and replacing an experience container's children or appending a late template;
// - track, setTraits, identify, reset, setConsent({personalization}), loadSegments (two sets of
//   definitions), and clicks on tracked elements (and on their children);
// and after every step, once the render point has passed (the next frame and the task after it),
// checks every managed element of the page against a model written from the contract, not from
// the sources: show/hide per membership (the page's own `hidden`/display kept until the element's
// outcome is rendered again; as authored when the attribute goes), the trait's text or the
// authored content restored (the same nodes), the decided variant's template rendered once (or
// the fallback content, the same nodes), click counts in profile(), the membership itself,
// `keystone-ready` on <html>, no exception reaching the page, and no mutation once settled.
//
// Seeds: a fixed list by default; KEYSTONE_DOM_SEED="7" or "1-200" or "3,9" runs others,
// KEYSTONE_DOM_STEPS the steps per sequence. A failure prints the seed, the step and the steps
// that led there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, seeds, streamPage } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const SEEDS = seeds("KEYSTONE_DOM_SEED", [1, 2, 3, 4]);
const STEPS = Number(process.env.KEYSTONE_DOM_STEPS || 60);

// Everything below runs in the page: the generator, the model and the checks, which hold the DOM
// nodes they compare (the authored nodes a text element must give back are compared by identity).
function runtime() {
  const prng = (seed) => {
    let a = seed >>> 0;
    const next = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)], chance: (p) => next() < p };
  };
  const cnt = (p, e) => p.events[e] || 0;
  // Segments: [id, condition, the model's reading of it].
  const SEGS = {
    A: [
      ["gold", { "traits.tier": "gold" }, (p) => p.traits.tier === "gold"],
      ["viewer", { $performed: { event: "Product Viewed" } }, (p) => cnt(p, "Product Viewed") >= 1],
      ["clicker", { $performed: { event: "Promo Clicked", count: { $gte: 2 } } }, (p) => cnt(p, "Promo Clicked") >= 2],
      ["not_gold", { $not: { $inSegment: "gold" } }, (p, m) => !m.gold],
    ],
    B: [
      ["gold", { "traits.tier": { $in: ["gold", "silver"] } }, (p) => ["gold", "silver"].includes(p.traits.tier)],
      ["viewer", { $performed: { event: "Product Viewed", count: { $gte: 2 } } }, (p) => cnt(p, "Product Viewed") >= 2],
      ["fan", { $performed: { event: "Fan Clicked" } }, (p) => cnt(p, "Fan Clicked") >= 1],
    ],
  };
  const EXPS = {
    A: [
      { id: "hero", holdout: 0, variants: [{ id: "gold_offer", segment: "gold", priority: 10 }, { id: "viewer_offer", segment: "viewer", priority: 5 }, { id: "default" }] },
      { id: "side", variants: [{ id: "clicky", segment: "clicker", priority: 1 }, { id: "plain" }] },
    ],
    B: [
      // A tie in priority goes to document order.
      { id: "hero", variants: [{ id: "viewer_offer", segment: "viewer", priority: 5 }, { id: "gold_offer", segment: "gold", priority: 5 }, { id: "default" }] },
      { id: "promo", variants: [{ id: "gold_promo", segment: "gold" }, { id: "base" }] },
    ],
  };
  const defs = (set) => ({ version: 1, segments: SEGS[set].map(([id, condition]) => ({ id, condition })), experiences: EXPS[set] });
  const SEG_NAMES = ["gold", "viewer", "clicker", "not_gold", "fan", "ghost"];
  const PATHS = ["traits.firstName", "traits.age", "traits.vip", "traits.address", "traits.address.city", "traits.missing", "traits.tier"];
  const EXP_IDS = ["hero", "hero", "side", "promo", "nope"];
  const VARIANTS = ["gold_offer", "viewer_offer", "default", "clicky", "plain", "gold_promo", "base"];
  const EVENTS = ["Promo Clicked", "Product Viewed", "Fan Clicked", "Other Clicked"];
  const COUNTED = ["Promo Clicked", "Product Viewed", "Fan Clicked", "Other Clicked"];
  const PEOPLE = ["u-ann", "u-bob", "u-cy"];
  const DISPLAYS = ["", "", "flex", "block", "none"];

  // ---- the visitor, as the contract describes it (DESIGN §3–§6, §12; README) ----
  const fresh = () => ({ events: {}, traits: {} });
  const V = { consent: true, uid: null, prof: fresh(), aside: new Map(), set: "A" };
  const record = (e) => V.consent && (V.prof.events[e] = cnt(V.prof, e) + 1); // nothing recorded without personalization
  const membership = () => {
    const m = {};
    // Without personalization consent no segment is evaluated (§6): the markup is as authored.
    if (V.consent) for (const [id, , holds] of SEGS[V.set]) m[id] = holds(V.prof, m);
    return m;
  };
  const at = (doc, path) => path.split(".").reduce((v, k) => (v != null && typeof v == "object" ? v[k] : undefined), doc);
  // README: a missing or empty value keeps the authored content, as does every value while
  // personalization is refused. (Objects: the README is silent; the model keeps the authored
  // content, as for a missing value.) Numbers and booleans show as text.
  const textOf = (path) => {
    if (!V.consent) return null;
    const v = at({ traits: V.prof.traits }, path);
    return v == null || v === "" || typeof v == "object" ? null : String(v);
  };
  // decide(): the eligible variant of highest priority (ties: document order); else the last.
  const decide = (id, m) => {
    const x = EXPS[V.set].find((e) => e.id === id);
    if (!x) return null;
    const sorted = x.variants.map((v, i) => [v, i]).sort((a, b) => (b[0].priority || 0) - (a[0].priority || 0) || a[1] - b[1]);
    return (sorted.find(([v]) => !v.segment || m[v.segment]) || [x.variants[x.variants.length - 1]])[0].id;
  };

  // ---- the page's markup: one record per generated element (data-m) ----
  const E = new Map(); // id → record
  let nextId = 1;
  let r; // the PRNG
  const own0 = (hidden, display) => ({ hidden, display, prio: "" });
  const NESTED = "[data-keystone-text],[data-keystone-experience]";
  const nodesText = (nodes, x) => (nodes ? nodes.map((n) => n.textContent).join("") : x.authText);
  const rec = (o) => {
    const x = { id: nextId++, el: null, show: null, hide: null, text: null, track: null, exp: null, tpl: false, own: own0(false, ""), kw: null, mode: "authored", authored: null, replaced: null, textEver: false, templates: [], fallback: null, snap: null, ...o };
    E.set(x.id, x);
    return x;
  };
  const attrs = (x) =>
    (x.show != null ? ` data-keystone-show="${x.show}"` : "") + (x.hide != null ? ` data-keystone-hide="${x.hide}"` : "") +
    (x.text != null ? ` data-keystone-text="${x.text}"` : "") + (x.track != null ? ` data-keystone-track="${x.track}"` : "") +
    (x.exp != null ? ` data-keystone-experience="${x.exp}"` : "") + (x.own.hidden ? " hidden" : "") + (x.own.display ? ` style="display: ${x.own.display}"` : "");
  const visAttrs = (o) => {
    const k = r.next();
    if (k < 0.4) o.show = r.pick(SEG_NAMES);
    else if (k < 0.75) o.hide = r.pick(SEG_NAMES);
    else (o.show = r.pick(SEG_NAMES)), (o.hide = r.pick(SEG_NAMES));
    o.own = own0(r.chance(0.25), r.pick(DISPLAYS));
  };

  /** Markup for one element and what it holds; `tpl` inside a variant's template. */
  function gen(depth, tpl) {
    const k = r.next();
    const o = { tpl };
    const kids = (n) => (depth < 3 ? Array.from({ length: r.int(n + 1) }, () => gen(depth + 1, tpl)).join("") : "");
    if (k < 0.3) {
      visAttrs(o);
      if (r.chance(0.2)) o.text = r.pick(PATHS), (o.textEver = true);
      const x = rec(o);
      return `<div data-m="${x.id}"${attrs(x)}>${o.text ? r.pick(["there", ""]) : "block " + x.id + kids(2)}</div>`;
    }
    if (k < 0.55) {
      o.text = r.pick(PATHS);
      o.textEver = true;
      if (r.chance(0.15)) visAttrs(o);
      const x = rec(o);
      let inner = r.pick(["there", "", "there <b>friend</b>", "<i>dear</i> guest", "NEST"]);
      if (inner == "NEST") {
        if (tpl) inner = "nested";
        else {
          const n = { tpl };
          visAttrs(n);
          const y = rec(n);
          inner = `dear <b data-m="${y.id}"${attrs(y)}>you</b>`;
        }
      }
      return `<span data-m="${x.id}"${attrs(x)}>${inner}</span>`;
    }
    if (k < 0.7) {
      o.track = r.pick(EVENTS);
      if (r.chance(0.3)) visAttrs(o);
      const x = rec(o);
      const y = rec({ tpl });
      return `<button data-m="${x.id}"${attrs(x)}>go <span data-m="${y.id}">${x.id}</span></button>`;
    }
    if (k < 0.82 && depth < 2 && !tpl) return container();
    const x = rec(o);
    return `<div data-m="${x.id}">plain ${x.id}${kids(3)}</div>`;
  }
  const template = (variant) => {
    const t = rec({ tpl: true, variant });
    return [t, `<template data-m="${t.id}" data-keystone-variant="${variant}">${variant} ${gen(2, true)}${r.chance(0.5) ? gen(2, true) : ""}</template>`];
  };
  const fallbackHtml = () => {
    const f = rec({});
    if (r.chance(0.3)) visAttrs(f);
    return `<p data-m="${f.id}"${attrs(f)}>fallback ${f.id}</p>`;
  };
  function container() {
    const x = rec({ exp: r.pick(EXP_IDS) });
    let html = `<div data-m="${x.id}"${attrs(x)}>${fallbackHtml()}`;
    const n = r.int(4);
    for (let i = 0; i < n; i++) {
      const [t, s] = template(r.pick(VARIANTS));
      x.templates.push(t);
      html += s;
    }
    return html + "</div>";
  }

  // After markup is in the document: bind the new records to their elements and take what the
  // page authored (the text element's nodes, the container's fallback nodes, hidden/display).
  // `streamed`: the markup arrived with the page, Keystone already running: what it replaced while
  // the body streamed in is known by its text only (from the markup), not by its nodes.
  const bindNew = (from, streamed) => {
    const src = document.createElement("template");
    if (streamed) src.innerHTML = streamed;
    for (const [id, x] of E)
      if (id >= from && (!x.tpl || x.variant)) {
        x.el = document.querySelector(`[data-m="${id}"]`);
        if (!x.el) continue; // nested in a template, aside or dropped by the parser: bound when seen
        const a = streamed && src.content.querySelector(`[data-m="${id}"]`);
        if (x.text != null) (x.authored = a ? null : [...x.el.childNodes]), (x.authText = a && a.textContent);
        if (x.exp != null) (x.fallback = a ? null : [...x.el.childNodes].filter((c) => c.nodeName != "TEMPLATE")), (x.fallText = a && kidsText(a));
        if (x.exp != null && a) x.templates.forEach((t) => (t.el = x.el.querySelector(`:scope > [data-m="${t.id}"]`)));
      }
  };
  const kidsText = (el) => [...el.childNodes].filter((c) => c.nodeName != "TEMPLATE").map((c) => c.textContent).join("");

  // ---- the checks ----
  const fails = [];
  const fail = (x, what, got, want) => fails.push(`#${x.id} ${descr(x)}: ${what}: Keystone ${JSON.stringify(got)}, model ${JSON.stringify(want)}`);
  const descr = (x) => `<${x.el?.nodeName?.toLowerCase() || "?"}${x.tpl ? " (clone)" : ""}${x.show != null ? " show=" + x.show : ""}${x.hide != null ? " hide=" + x.hide : ""}${x.text != null ? " text=" + x.text : ""}${x.exp != null ? " exp=" + x.exp : ""}${x.track != null ? " track" : ""}>`;
  const outHidden = (x, m) => (x.show != null && !m[x.show]) || (x.hide != null && !!m[x.hide]);
  const managed = (x) => x.show != null || x.hide != null;
  // Keystone's rendering: hidden, or shown with the authored display (a display:none in the
  // markup at the first render is the author's way of hiding it until Keystone decides: removed;
  // one the page set since Keystone wrote, `x.late`, as Vue's v-show does: kept). The same for
  // `hidden`: authored, removed when shown; set by the page since (`x.lateHidden`), kept.
  const rendering = (x, m) =>
    outHidden(x, m) ? { hidden: true, display: "none", prio: "important" } : x.own.display && (x.own.display != "none" || x.late) ? { hidden: !!x.lateHidden && x.own.hidden, display: x.own.display, prio: x.own.prio } : { hidden: !!x.lateHidden && x.own.hidden, display: "", prio: "" };
  const vis = (el) => ({ hidden: el.hidden, display: el.style.display, prio: el.style.getPropertyPriority("display") });

  function checkEl(el, x, m) {
    // show/hide: what Keystone last wrote, or what the page set since (or as authored).
    const got = vis(el);
    // An authored child of an experience container showing a variant's template is hidden by it.
    const box = el.parentNode?.getAttribute?.("data-m") != null && E.get(+el.parentNode.getAttribute("data-m"));
    const shownId = box && box.exp != null ? decide(box.exp, m) : null;
    const covered = !x.tpl && shownId != null && box.templates.some((t) => t.variant === shownId);
    const want = covered ? { hidden: true, display: "none", prio: "important" } : x.tpl ? (managed(x) ? rendering(x, m) : x.own) : x.snap || (managed(x) ? x.kw : x.own);
    if (JSON.stringify(got) != JSON.stringify(want)) fail(x, "hidden/display", got, want);
    // text
    if (x.textEver) {
      const v = x.text != null ? textOf(x.text) : null;
      if (x.tpl) {
        if (v != null && el.textContent !== v) fail(x, "text", el.textContent, v);
      } else if (x.mode == "value") {
        if (el.textContent !== v || el.childNodes.length != 1) fail(x, "text", el.innerHTML, v);
      } else if (!x.authored) {
        if (el.textContent !== x.authText) fail(x, "authored content (streamed)", el.innerHTML, x.authText);
      } else if (![x.authored, x.alt].some((a) => (a == "streamed" ? el.textContent === x.authText : a && el.childNodes.length == a.length && a.every((n, i) => el.childNodes[i] === n))))
        fail(x, "authored content (the same nodes)", el.innerHTML, nodesText(x.authored));
    }
    // experience container
    if (x.exp != null) {
      const id = decide(x.exp, m);
      const kids = [...el.childNodes].filter((c) => c.nodeName != "TEMPLATE");
      const tplEls = [...el.children].filter((c) => c.nodeName == "TEMPLATE");
      if (tplEls.length != x.templates.length || x.templates.some((t, i) => tplEls[i] !== t.el)) fail(x, "templates kept", tplEls.length, x.templates.length);
      const t = id != null && x.templates.find((t) => t.variant === id);
      if (t) {
        // The variant's clone last; the authored content before it stays, hidden (an element)
        // or emptied (a text node).
        const want = [...t.el.content.childNodes];
        const shown = kids.slice(kids.length - want.length);
        const covered = kids.slice(0, kids.length - want.length).every((c) => (c.nodeType == 1 ? c.hidden : c.nodeType != 3 || !c.data));
        const same = covered && kids.length >= want.length && want.every((n, i) => shown[i].nodeName == n.nodeName && (n.nodeType != 1 || shown[i].getAttribute("data-m") === n.getAttribute("data-m")) && (n.nodeType != 3 || shown[i].data === n.data));
        if (!same) fail(x, `variant ${id} rendered once`, el.innerHTML.replace(/<template[\s\S]*?<\/template>/g, ""), t.el.innerHTML);
      } else if (!x.fallback) {
        if (kidsText(el) !== x.fallText) fail(x, `fallback content (streamed; variant ${id})`, kidsText(el), x.fallText);
      } else if (kids.length != x.fallback.length || x.fallback.some((n, i) => kids[i] !== n))
        fail(x, `fallback content (the same nodes; variant ${id})`, el.innerHTML.replace(/<template[\s\S]*?<\/template>/g, ""), nodesText(x.fallback));
    }
  }

  // ---- the steps ----
  const live = () => [...E.values()].filter((x) => !x.tpl && x.el && x.el.isConnected);
  // Where the page inserts, moves and removes: elements outside text elements and containers.
  const free = (x) => {
    for (let p = x.el.parentElement; p && p != document.body; p = p.parentElement) {
      const y = E.get(+p.getAttribute("data-m"));
      if (!y || y.tpl || y.textEver || y.exp != null || p.nodeName == "BUTTON") return false;
    }
    return x.el.parentElement != null;
  };
  const parents = () => [document.body, ...live().filter((x) => free(x) && !x.textEver && x.exp == null && x.el.nodeName == "DIV").map((x) => x.el)];
  const markup = () => Array.from({ length: 1 + r.int(2) }, () => gen(0, false)).join("");
  /** Elements of `root`'s subtree (itself included) that carry a record. */
  const inside = (root) => live().filter((x) => root === x.el || root.contains(x.el));

  let mo = 0;
  new MutationObserver((l) => (mo += l.length)).observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
  const frame = () => new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));

  let trace = [];
  const M = {
    /** The page's first markup for `seed`, and the definitions (for a page that streams it). */
    first(seed) {
      r = prng(seed);
      return { html: markup() + markup(), defs: defs("A") };
    },
    /** Starts the sequence: the first markup inserted, then Keystone started; or (`streamed`)
     * the page streamed that markup in while Keystone was running already. */
    async start(seed, streamed) {
      r = prng(seed);
      const from = nextId;
      const html = markup() + markup();
      if (streamed) {
        // (What the streaming page did once Keystone was ready.)
        Object.assign(V.prof.traits, streamed);
        record("Product Viewed");
        bindNew(from, html);
      }
      else {
        document.body.replaceChildren();
        document.body.insertAdjacentHTML("beforeend", html);
        bindNew(from);
        window.ks = await Keystone.init({ segments: defs("A"), autoCapture: { scroll: false, engagement: false } });
      }
      await frame();
      const m = membership();
      for (const x of live()) rerender(x);
      return this.check(m, "start");
    },
    check(m, what) {
      fails.length = 0;
      const segs = ks.segments();
      const want = Object.keys(m).filter((k) => m[k]).sort();
      if (JSON.stringify(segs) != JSON.stringify(want)) fails.push(`segments(): Keystone ${JSON.stringify(segs)}, model ${JSON.stringify(want)}`);
      const p = ks.profile();
      for (const e of COUNTED) if ((p.events[e]?.count || 0) !== cnt(V.prof, e)) fails.push(`profile().events["${e}"].count: Keystone ${p.events[e]?.count || 0}, model ${cnt(V.prof, e)}`);
      if (!document.documentElement.classList.contains("keystone-ready")) fails.push("<html> lost keystone-ready");
      for (const el of document.querySelectorAll("[data-m]")) {
        const x = E.get(+el.getAttribute("data-m"));
        if (!x) continue;
        if (!x.tpl && !x.el) (x.el = el), rerender(x); // (streamed, kept aside until now: added markup)
        if (x.el && x.el !== el) fails.push(`#${x.id} found twice in the page`);
        else if (el.nodeName != "TEMPLATE") checkEl(el, x, m);
      }
      return fails.slice(0, 8);
    },
    async step() {
      const m0 = membership();
      const t0 = Object.fromEntries(PATHS.map((p) => [p, textOf(p)]));
      const before = new Set(live());
      const touched = new Set(); // records whose data-keystone-* attributes changed
      const roots = []; // inserted or moved subtrees
      const desc = await this.act(touched, roots);
      const n0 = mo;
      await frame();
      const m = membership();
      const t1 = Object.fromEntries(PATHS.map((p) => [p, textOf(p)]));
      const changed = SEG_NAMES.filter((s) => !!m0[s] != !!m[s]);
      const paths = PATHS.filter((p) => t0[p] !== t1[p]);
      // What Keystone renders again (README): the elements naming a segment entered or left, those
      // showing a path whose text changed, the added markup, the elements whose attributes changed.
      const again = new Set(touched);
      for (const x of live()) {
        if (changed.includes(x.show) || changed.includes(x.hide) || (x.text != null && paths.includes(x.text))) again.add(x);
        if (!before.has(x) || roots.some((root) => root === x.el || root.contains(x.el))) again.add(x);
      }
      for (const x of again) if (x.el.isConnected) rerender(x);
      // Settled: nothing more happens in the next frame (no render loop).
      const during = mo - n0;
      await frame();
      const fs = this.check(m);
      if (mo - n0 != during) fs.push(`mutations after the render point: ${mo - n0 - during} (a render loop?)`);
      if (during > 5000) fs.push(`${during} mutations in one step`);
      return { desc, fails: fs };
    },
    async act(touched, roots) {
      const k = r.next();
      const L = live();
      const pickOf = (f) => {
        const xs = L.filter(f);
        return xs.length ? r.pick(xs) : null;
      };
      if (k < 0.1) {
        // Insert markup somewhere.
        const from = nextId;
        const parent = r.pick(parents());
        const html = markup();
        const how = r.pick(["adjacent", "append", "innerHTML", "fragment"]);
        const mark = [...parent.childNodes];
        if (how == "adjacent") parent.insertAdjacentHTML(r.pick(["afterbegin", "beforeend"]), html);
        else if (how == "innerHTML" && parent != document.body) parent.innerHTML = html;
        else {
          const d = document.createElement("div");
          d.innerHTML = html;
          if (how == "fragment") {
            const f = document.createDocumentFragment();
            f.append(...d.childNodes);
            parent.insertBefore(f, r.pick([...parent.childNodes, null]));
          } else for (const c of [...d.childNodes]) parent.appendChild(c);
        }
        bindNew(from);
        for (const c of parent.childNodes) if (!mark.includes(c)) roots.push(c);
        return `insert (${how}) into ${parent.getAttribute("data-m") || "body"}: ${html}`;
      }
      if (k < 0.15) {
        const x = pickOf(free);
        if (!x) return "nothing to replace";
        const from = nextId;
        const html = markup();
        const d = document.createElement("div");
        d.innerHTML = html;
        const nodes = [...d.childNodes];
        x.el.replaceWith(...nodes);
        bindNew(from);
        roots.push(...nodes);
        return `#${x.id} replaceWith ${html}`;
      }
      if (k < 0.2) {
        const x = pickOf(free);
        if (!x) return "nothing to move";
        const to = r.pick(parents().filter((p) => !x.el.contains(p)));
        to.insertBefore(x.el, r.pick([...to.childNodes, null]));
        roots.push(x.el);
        return `move #${x.id} into ${to.getAttribute("data-m") || "body"}`;
      }
      if (k < 0.24) {
        const x = pickOf(free);
        if (!x) return "nothing to remove";
        x.el.remove();
        return `remove #${x.id}`;
      }
      if (k < 0.34) {
        // Attributes changed on a live element.
        const x = pickOf((x) => free(x) && x.el.nodeName != "BUTTON" && x.exp == null);
        if (!x) return "no attribute to change";
        const a = r.pick(["show", "hide", "text", "show", "hide"]);
        const v = r.chance(0.35) ? null : a == "text" ? r.pick(PATHS) : r.pick(SEG_NAMES);
        if (a == "text" && v != null && !x.textEver) {
          if (x.el.querySelector("[data-keystone-experience]")) return "no text on a container's parent";
          x.authored = [...x.el.childNodes];
          x.textEver = true;
        }
        if (a == "text" && v == null && x.text == null) return "no text attribute to remove";
        const name = "data-keystone-" + a;
        // (Removing an attribute the element does not have is no mutation: nothing to render.)
        if (v != null || x.el.hasAttribute(name)) touched.add(x);
        v == null ? x.el.removeAttribute(name) : x.el.setAttribute(name, v);
        x[a] = v;
        return `#${x.id} ${name}=${v}`;
      }
      if (k < 0.42) {
        // The page edits hidden / inline display itself.
        const x = pickOf((x) => !x.tpl);
        if (!x) return "nothing to edit";
        const el = x.el;
        let d;
        if (r.chance(0.4)) (el.hidden = !el.hidden), (d = "hidden=" + el.hidden);
        else (el.style.display = r.pick(["", "block", "flex", "none"])), (d = "style.display=" + el.style.display);
        // What the page leaves stays until Keystone renders the element again; before Keystone
        // wrote anything, it is the authored state.
        if (x.kw) x.snap = vis(el);
        else x.own = vis(el);
        return `page sets #${x.id} ${d}`;
      }
      if (k < 0.5) {
        // The page edits a text element's content.
        const x = pickOf((x) => x.textEver);
        if (!x) return "no text to edit";
        const el = x.el;
        const how = r.pick(["textContent", "textContent", "append", "data"]);
        // (Not the text Keystone replaced when that content holds personalized text of its own:
        // Keystone takes the text as the element shows it when it writes, and one pass may write
        // the element before or after the elements inside it; the model reads the replaced nodes
        // afterwards, as the pass left them. The README names no order.)
        const back = x.authored?.some((n) => n.nodeType == 1 && (n.matches(NESTED) || n.querySelector(NESTED))) ? null : x.replaced;
        const s = r.pick(["Hola", "there", back ?? "there", back ?? "", "Ada"]);
        if (how == "append") el.append(" more");
        else if (how == "data" && el.firstChild?.nodeType == 3) el.firstChild.data = s;
        else el.textContent = s;
        // The page's text equal to the one Keystone shows: Keystone cannot tell it from its own,
        // and may later put back the content it replaced before (README silent: either is taken).
        x.alt = x.mode != "authored" && x.text != null && el.textContent === textOf(x.text) ? x.authored || "streamed" : null;
        x.authored = [...el.childNodes];
        if (x.mode != "authored") {
          // The very text Keystone replaced, put back (a framework rendering its own markup again):
          // Keystone fills the element again. Any other text the page sets stays.
          if (el.textContent === x.replaced) rerender(x);
          else x.mode = "page";
        }
        return `page sets #${x.id} text (${how}) → ${JSON.stringify(el.textContent)}`;
      }
      if (k < 0.54) {
        // The page re-renders an experience container (new fallback, same templates) or appends a late template.
        const x = pickOf((x) => x.exp != null);
        if (!x) return "no container";
        const from = nextId;
        if (r.chance(0.5)) {
          const d = document.createElement("div");
          d.innerHTML = fallbackHtml() + (r.chance(0.3) ? fallbackHtml() : "");
          const nodes = [...d.childNodes];
          x.el.replaceChildren(...nodes, ...x.templates.map((t) => t.el));
          x.fallback = nodes;
          bindNew(from);
          roots.push(...nodes);
          return `page replaces #${x.id}'s children`;
        }
        const [t, s] = template(r.pick(VARIANTS));
        x.el.insertAdjacentHTML("beforeend", s);
        t.el = x.el.lastElementChild;
        x.templates.push(t);
        return `page appends a template to #${x.id}: ${s}`;
      }
      if (k < 0.64) {
        // A click on a tracked element (or inside one), clones of templates included.
        const els = [...document.querySelectorAll("[data-keystone-track], [data-keystone-track] span")];
        if (!els.length) return "nothing to click";
        const el = r.pick(els);
        const t = el.closest("[data-keystone-track]");
        el.click();
        record(t.getAttribute("data-keystone-track"));
        return `click ${el.nodeName} in #${t.getAttribute("data-m")} (${t.getAttribute("data-keystone-track")})`;
      }
      // Membership and profile changes through the API.
      const j = r.next();
      if (j < 0.25) {
        const e = r.pick(["Product Viewed", "Promo Clicked", "Fan Clicked", "Product Viewed"]);
        ks.track(e);
        record(e);
        return `track ${e}`;
      }
      if (j < 0.55) {
        const t = {};
        if (r.chance(0.5)) t.tier = r.pick(["gold", "silver", "bronze", null]);
        if (r.chance(0.5)) t.firstName = r.pick(["Ada", "Bo", "", "<b>x</b>", null, "there"]);
        if (r.chance(0.3)) t.age = r.pick([0, 35, null]);
        if (r.chance(0.3)) t.vip = r.pick([true, false]);
        if (r.chance(0.3)) t.address = r.pick([{ city: "Oslo" }, { city: "" }, null, "Main St"]);
        ks.setTraits(t);
        if (V.consent) Object.assign(V.prof.traits, t);
        return `setTraits ${JSON.stringify(t)}`;
      }
      if (j < 0.7 && V.consent) {
        const uid = r.pick(PEOPLE);
        const t = r.chance(0.5) ? { tier: r.pick(["gold", "bronze"]), firstName: r.pick(["Ann", "Cy"]) } : undefined;
        await ks.identify(uid.slice(2) + "@example.com", t, { userId: uid });
        if (V.uid === uid) {
        } else if (V.uid == null) {
          const e = V.aside.get(uid) || fresh();
          V.aside.delete(uid);
          const events = { ...e.events };
          for (const [k, n] of Object.entries(V.prof.events)) events[k] = (events[k] || 0) + n;
          V.prof = { events, traits: { ...e.traits, ...V.prof.traits } };
        } else {
          V.aside.set(V.uid, V.prof);
          V.prof = V.aside.get(uid) || fresh();
          V.aside.delete(uid);
        }
        V.uid = uid;
        Object.assign(V.prof.traits, t || {});
        return `identify ${uid} ${JSON.stringify(t)}`;
      }
      if (j < 0.78 && V.consent) {
        ks.reset();
        if (V.uid != null) V.aside.set(V.uid, V.prof);
        V.uid = null;
        V.prof = fresh();
        return "reset";
      }
      if (j < 0.9) {
        const c = !V.consent;
        await ks.setConsent({ personalization: c });
        if (!c) V.aside.clear();
        V.consent = c;
        return `setConsent personalization ${c}`;
      }
      V.set = V.set == "A" ? "B" : "A";
      await ks.loadSegments(defs(V.set));
      return `loadSegments ${V.set}`;
    },
  };
  // Keystone renders an element again: its show/hide and its text follow the model afresh.
  function rerender(x, m = membership()) {
    // README: Keystone only ever puts back what it overwrote; what the page set since it wrote
    // (each of hidden, display and its priority that differs from what Keystone wrote) is the
    // authored state from then on. An element that lost its show/hide is as authored again.
    if (x.kw && x.snap) for (const k of ["hidden", "display", "prio"]) if (x.snap[k] !== x.kw[k]) (x.own[k] = x.snap[k]), k == "display" && (x.late = true), k == "hidden" && (x.lateHidden = true);
    x.snap = null;
    x.kw = managed(x) ? rendering(x, m) : null;
    if (x.text == null) return void (x.mode = "authored");
    const v = textOf(x.text);
    if (v == null) x.mode = "authored";
    else {
      if (x.mode != "value") x.replaced = nodesText(x.authored, x);
      x.mode = "value";
    }
  }
  window.M = M;
}

// What the streaming page does once Keystone is ready, before the rest of its body arrives (the
// model is told the same at start): text to fill, a segment and an experience variant to show.
const STREAM_TRAITS = { firstName: "Ada", age: 35, tier: "gold" };
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/** A server for a page that streams `html` into its body in chunks cut at random places (inside
 * tags and text too), the rest once Keystone has started (the page asks /go). */
async function streamingServer(html, defs, cuts) {
  const server = await streamPage(async (res, started) => {
    res.write(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" async>
import { Keystone } from "/pkg/dist/keystone.js";
window.Keystone = Keystone;
window.__ksLoaded = true;
window.ks = await Keystone.init({ segments: ${JSON.stringify(defs)}, autoCapture: { scroll: false, engagement: false } });
ks.setTraits(${JSON.stringify(STREAM_TRAITS)});
ks.track("Product Viewed");
window.__atReady = document.readyState;
fetch("/go");
</script></head><body><!--${" ".repeat(4096)}-->`);
    let at = 0;
    for (const [i, c] of cuts.entries()) {
      res.write(html.slice(at, c));
      at = c;
      if (i == 0) await started;
      await sleep(40);
    }
    res.end(html.slice(at) + "</body></html>");
  });
  return server;
}

async function runSequence(seed, steps) {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Odd seeds: the first markup is in the page before Keystone starts. Even seeds: the page
  // streams it in while Keystone is running already.
  const streamed = seed % 2 == 0;
  let server = null;
  await page.goto(h.url("/tests/dom.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  if (streamed) {
    await page.evaluate(`(${runtime})()`);
    const { html, defs } = await page.evaluate((seed) => M.first(seed), seed);
    // Four cuts at seeded places (an LCG: the page's own PRNG is the generator's).
    let x = seed * 2654435761;
    const cuts = [0, 1, 2, 3].map(() => ((x = (x * 1103515245 + 12345) % 2147483648), Math.floor((x / 2147483648) * html.length))).sort((a, b) => a - b);
    server = await streamingServer(html, defs, cuts);
    await page.goto(`http://127.0.0.1:${server.address().port}/`, { waitUntil: "commit" });
    await page.waitForFunction(() => window.ks && document.readyState === "complete", null, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => window.__atReady), "loading", "Keystone ready while the body streams in");
  }
  await page.evaluate(`(${runtime})()`);
  const trace = [];
  const fail = (msg) => {
    throw new assert.AssertionError({ message: `seed ${seed} (KEYSTONE_DOM_SEED=${seed}), step ${trace.length - 1}: ${msg}\nsteps:\n  ${trace.slice(-20).join("\n  ")}` });
  };
  try {
    let fs = await page.evaluate(([seed, streamed]) => M.start(seed, streamed), [seed, streamed && STREAM_TRAITS]);
    trace.push(streamed ? "start (streamed)" : "start");
    for (let i = 0; ; i++) {
      if (errors.length) fail("exception in the page: " + errors.join("; "));
      if (fs.length) fail(fs.join("\n"));
      if (i == steps) break;
      const out = await page.evaluate(() => M.step());
      trace.push(out.desc.length > 400 ? out.desc.slice(0, 400) + "…" : out.desc);
      fs = out.fails;
    }
  } finally {
    await ctx.close();
    server?.close();
  }
}

for (const seed of SEEDS)
  test(`declarative personalization follows the model over ${STEPS} random steps (seed ${seed})`, async () => {
    await runSequence(seed, STEPS);
  });
