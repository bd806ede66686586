// Injection: traits, properties, titles, event names and segment ids that carry HTML or script
// are data everywhere — never markup (declarative text, experiences, the demo's debug panel) —
// and `__proto__` / `constructor` keys (as JSON.parse makes them) never reach a prototype.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const XSS = `"><img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=1</script>`;

test("HTML in titles, properties, event names and segment ids never becomes markup", async () => {
  const page = await h.open("/tests/dom.html");
  await page.waitForFunction(() => window.__ksLoaded === true);
  const out = await page.evaluate(async (XSS) => {
    document.title = XSS;
    const el = document.body.appendChild(document.createElement("p"));
    el.setAttribute("data-keystone-show", XSS);
    el.textContent = "shown for the odd segment";
    const ks = await Keystone.init({
      autoCapture: false,
      segments: { version: 1, segments: [{ id: XSS, condition: { $performed: { event: XSS } } }] },
    });
    ks.page({ title: XSS, [XSS]: XSS });
    ks.track(XSS, { html: XSS, [XSS]: 1 });
    if (typeof ks.setTraits === "function") ks.setTraits({ name: XSS });
    await new Promise((r) => setTimeout(r, 50));
    return {
      inSegment: ks.inSegment(XSS),
      segments: ks.segments(),
      shown: !el.hidden,
      title: document.getElementById("title").textContent,
      imgs: document.querySelectorAll("img").length,
      scripts: [...document.scripts].filter((s) => s.textContent.includes("__xss")).length,
      xss: window.__xss,
    };
  }, XSS);
  assert.equal(out.inSegment, true, "the segment id and event name are plain data");
  assert.deepEqual(out.segments, [XSS]);
  assert.equal(out.shown, true);
  assert.equal(out.title, XSS, "data-keystone-text writes text, not HTML");
  assert.equal(out.imgs, 0);
  assert.equal(out.scripts, 0);
  assert.equal(out.xss, undefined);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("the demo's debug panel shows hostile ids, names and values as text", async () => {
  const page = await h.open("/?keystone_debug=1");
  await page.waitForSelector("#ks-debug");
  await page.waitForFunction(() => window.ks && typeof window.ks.track === "function");
  const out = await page.evaluate(async (XSS) => {
    const ks = window.ks;
    await ks.loadSegments({ version: 1, segments: [{ id: XSS, name: XSS, condition: { $performed: { event: XSS } } }] }).catch(() => {});
    ks.track(XSS, { [XSS]: XSS });
    if (typeof ks.setTraits === "function") ks.setTraits({ [XSS]: XSS });
    const panel = document.getElementById("ks-debug");
    const seen = [];
    for (const tab of ["Profile", "Segments", "Events", "Outbound"]) {
      panel.querySelector(`[data-tab="${tab}"]`).click();
      await new Promise((r) => setTimeout(r, 20));
      seen.push(panel.querySelectorAll("img, script, iframe, [onerror]").length);
    }
    return { seen, xss: window.__xss, text: panel.textContent.includes("<img src=x") || seen };
  }, XSS);
  assert.deepEqual(out.seen, [0, 0, 0, 0]);
  assert.equal(out.xss, undefined);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("__proto__ and constructor keys from JSON.parse are data: no prototype is polluted", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const evil = () => JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}, "toString": "x", "a": {"__proto__": {"polluted": 1}}}');
    const ks = await Keystone.init({
      autoCapture: false,
      segments: { version: 1, segments: [{ id: "__proto__", condition: { $performed: { event: "__proto__" } } }, { id: "constructor", condition: { "traits.__proto__.polluted": 1 } }] },
    });
    ks.page(evil());
    ks.track("__proto__", evil());
    ks.track("constructor", evil());
    if (typeof ks.setTraits === "function") ks.setTraits(evil());
    if (typeof ks.identify === "function") await ks.identify("a@b.example", evil()).catch(() => {});
    await ks.loadSegments(evil()).catch(() => {});
    Keystone.evalCondition(evil(), evil());
    Keystone.evalCondition({ a: 1 }, JSON.parse('{"__proto__": {"$exists": true}}'));
    const p = ks.profile();
    ks.persistNow();
    const stored = Object.keys(localStorage).map((k) => localStorage.getItem(k)).join("");
    return {
      polluted: [({}).polluted, Object.prototype.polluted, [].polluted, Object.polluted, (function () {}).polluted],
      profileProto: Object.getPrototypeOf(p) === Object.prototype,
      traitsProto: p.traits ? Object.getPrototypeOf(p.traits) === Object.prototype : null,
      traitsPolluted: p.traits ? p.traits.polluted : undefined,
      inProto: ks.inSegment("__proto__"),
      inCtor: ks.inSegment("constructor"),
      segments: ks.segments(),
      storedOk: stored.length > 0,
      toStringType: typeof ({}).toString,
    };
  });
  assert.deepEqual(out.polluted, [undefined, undefined, undefined, undefined, undefined]);
  assert.equal(out.profileProto, true);
  assert.equal(out.traitsProto, true, "profile().traits keeps Object.prototype");
  assert.equal(out.traitsPolluted, undefined);
  assert.equal(out.inProto, true, "a segment named __proto__ is a plain id");
  assert.equal(out.toStringType, "function");
  assert.ok(out.segments.includes("__proto__"));
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
