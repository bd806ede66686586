// Auto-capture in real Chromium: page views incl. SPA navigation, tracked clicks, scroll depth
// and engaged time, each switchable through `autoCapture`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

const count = (p, name) => (p.events[name] ? p.events[name].count : 0);

test("one page view per real SPA navigation, none for no-ops", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({});
    const pv = () => (ks.profile().events["Page Viewed"] || { count: 0 }).count;
    const steps = { initial: pv() };
    history.pushState({}, "", "/tests/esm.html/a");
    steps.push = pv();
    history.replaceState({ x: 1 }, "", location.href);
    steps.noopReplace = pv();
    history.pushState({ y: 1 }, "", location.href);
    steps.samePush = pv();
    history.replaceState({}, "", "/tests/esm.html/b");
    steps.replacePath = pv();
    location.hash = "#section";
    await new Promise((r) => setTimeout(r, 50));
    steps.hash = pv();
    history.back();
    await new Promise((r) => addEventListener("popstate", r, { once: true }));
    steps.back = pv();
    const p = ks.profile();
    steps.context = p.context.path;
    steps.referrer = p.context.referrer;
    steps.sessionPageviews = p.session.pageviews;
    return steps;
  });
  assert.deepEqual(
    { ...out, context: undefined, referrer: undefined },
    { initial: 1, push: 2, noopReplace: 2, samePush: 2, replacePath: 3, hash: 3, back: 3, sessionPageviews: 3, context: undefined, referrer: undefined },
  );
  // history.back() from "#section" returns to /b without the hash: same page, no new view.
  assert.equal(out.context, "/tests/esm.html/b");
  assert.match(out.referrer, /\/tests\/esm\.html\/a$/, "an SPA navigation's referrer is the previous URL");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("an SPA navigation's page view carries the title the router sets after pushState; an event made before that is recorded after the view", async () => {
  h.server.collector.reset();
  const page = await h.open();
  const out = await page.evaluate(async () => {
    window.ks = await Keystone.init({ endpoint: "/v1/batch", writeKey: "demo-key", flushAt: 100, flushInterval: 100000 });
    // A router: pushState, then the new page's title (in the same task; in a microtask).
    history.pushState({}, "", "/tests/esm.html/products");
    document.title = "Products";
    await new Promise((r) => setTimeout(r, 50));
    history.pushState({}, "", "/tests/esm.html/cart");
    await Promise.resolve();
    document.title = "Cart";
    await new Promise((r) => setTimeout(r, 50));
    ks.track("Filter Used");
    // An event made right after the navigation, in the same task: after the view, on the new page.
    history.pushState({}, "", "/tests/esm.html/checkout");
    ks.track("Checkout Started");
    document.title = "Checkout";
    const title = ks.profile().context.title;
    await ks.flush();
    return { title, later: ks.profile().context.title };
  });
  const got = h.server.collector.events.map((e) => [e.type == "page" ? "page" : e.event, e.context.page.title, e.context.page.path.replace(/^.*\//, "")]);
  assert.deepEqual(got, [
    ["page", "Keystone ESM test page", "esm.html"],
    ["page", "Products", "products"],
    ["page", "Cart", "cart"],
    ["Filter Used", "Cart", "cart"],
    // (Keystone called before the title was set: the view is recorded then, with the title then.)
    ["page", "Cart", "checkout"],
    ["Checkout Started", "Cart", "checkout"],
  ]);
  assert.equal(h.server.collector.events[1].properties.title, "Products");
  assert.equal(out.title, "Cart");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("popstate to another path is a page view; hashChange counts hash navigations when enabled", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: { hashChange: true } });
    const pv = () => ks.profile().events["Page Viewed"].count;
    history.pushState({}, "", "/tests/esm.html/x");
    const afterPush = pv();
    history.back();
    await new Promise((r) => addEventListener("popstate", r, { once: true }));
    const afterBack = pv();
    location.hash = "#one";
    await new Promise((r) => addEventListener("hashchange", r, { once: true }));
    const afterHash = pv();
    return { afterPush, afterBack, afterHash };
  });
  assert.deepEqual(out, { afterPush: 2, afterBack: 3, afterHash: 4 });
  await page.context().close();
});

test("autoCapture: false captures nothing; each part can be switched off", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false });
    history.pushState({}, "", "/tests/esm.html/z");
    document.body.insertAdjacentHTML("beforeend", '<button id="b" data-keystone-track="Clicked">x</button>');
    document.getElementById("b").click();
    scrollTo(0, document.documentElement.scrollHeight);
    await new Promise((r) => setTimeout(r, 100));
    return Object.keys(ks.profile().events);
  });
  assert.deepEqual(out, []);
  await page.context().close();

  const page2 = await h.open();
  const out2 = await page2.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: { pageViews: false, clicks: false } });
    history.pushState({}, "", "/tests/esm.html/z");
    document.body.insertAdjacentHTML("beforeend", '<button id="b" data-keystone-track="Clicked">x</button>');
    document.getElementById("b").click();
    return Object.keys(ks.profile().events);
  });
  assert.deepEqual(out2, []);
  await page2.context().close();
});

test("page views not captured, the rest of auto-capture on: membership follows the context at an SPA navigation, with its segment:enter", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const defs = { version: 1, segments: [{ id: "on_b", condition: { "context.path": "/tests/esm.html/b" } }] };
    const ks = await Keystone.init({ autoCapture: { pageViews: false }, segments: defs });
    const heard = [];
    ks.on("segment:enter", (e) => heard.push(e.segment));
    history.pushState({}, "", "/tests/esm.html/b");
    await new Promise((r) => setTimeout(r, 500));
    // Heard without a call of the page's own; then the reads agree.
    return { heard, in: ks.inSegment("on_b"), segments: ks.segments(), explain: ks.explain("on_b").result, views: ks.profile().events["Page Viewed"] ? 1 : 0 };
  });
  assert.deepEqual(out, { heard: ["on_b"], in: true, segments: ["on_b"], explain: true, views: 0 });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("page views not captured: after an SPA navigation, reads and the next event see the new URL's context", async () => {
  const page = await h.open();
  const out = await page.evaluate(async () => {
    const ks = await Keystone.init({ autoCapture: false, segments: { version: 1, segments: [{ id: "from_b", condition: { "context.utm.source": "b" } }] } });
    const first = location.href;
    location.hash = "#reviews"; // an anchor: no navigation, the referrer stays
    ks.track("Anchor");
    const anchored = ks.profile().context.referrer;
    history.pushState({}, "", "/tests/esm.html/shoes?utm_source=b");
    // Reads right after the navigation, before any call that records, see the new page.
    const read = { in: ks.inSegment("from_b"), path: ks.profile().context.path };
    ks.track("Product Viewed");
    const p = ks.profile();
    return { first, anchored, read, initialReferrer: document.referrer, path: p.context.path, utm: p.context.utm.source, referrer: p.context.referrer, segs: ks.segments(), pages: p.events["Page Viewed"] ? 1 : 0 };
  });
  assert.deepEqual(out.read, { in: true, path: "/tests/esm.html/shoes" });
  assert.equal(out.anchored, out.initialReferrer, "a hash change keeps the page's referrer");
  assert.equal(out.path, "/tests/esm.html/shoes");
  assert.equal(out.utm, "b");
  assert.equal(out.referrer, out.first, "the previous URL is the referrer");
  assert.deepEqual(out.segs, ["from_b"]);
  assert.equal(out.pages, 0, "no page view is made up");
  await page.context().close();
});

test("context.device from the user agent: phones, tablets (iPadOS presenting as a Mac included), desktops", async () => {
  const cases = [
    ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", 5, "mobile"],
    ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36", 5, "mobile"],
    ["Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 Chrome/120 Safari/537.36", 5, "tablet"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15", 5, "tablet"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15", 0, "desktop"],
    ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36", 0, "desktop"],
  ];
  for (const [userAgent, touch, device] of cases) {
    const context = await h.browser.newContext({ userAgent });
    await context.addInitScript((n) => Object.defineProperty(Navigator.prototype, "maxTouchPoints", { get: () => n }), touch);
    const page = await h.open("/tests/esm.html", { context });
    const got = await page.evaluate(async () => (await Keystone.init({ autoCapture: false })).profile().context.device);
    assert.equal(got, device, userAgent + " touch " + touch);
    await context.close();
  }
});

test("clicks on [data-keystone-track] with data-keystone-prop-* properties", async () => {
  const page = await h.open();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({});
    document.body.insertAdjacentHTML(
      "afterbegin",
      '<a id="buy" href="#" data-keystone-track="Buy Clicked" data-keystone-prop-product-id="sku-42" data-keystone-prop-price="89.5" data-keystone-prop-in-stock="true" data-keystone-prop-zip="007" data-keystone-prop-order-id="12345678901234567890" data-keystone-prop-big="9007199254740993" data-keystone-prop-safe="9007199254740991" data-keystone-prop-delta="-2.50"><span id="inner">Buy</span></a>',
    );
  });
  await page.click("#inner");
  assert.equal(await page.evaluate(() => ks.profile().events["Buy Clicked"].count), 1);
  // The properties reach the stored ring of recent events (written within 500 ms).
  await page.waitForTimeout(600);
  const props = await page.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")).recent.find((r) => r[0] === "Buy Clicked")[2]);
  // Number-like text a number cannot hold exactly (a long id) stays text.
  assert.deepEqual(props, { productId: "sku-42", price: 89.5, inStock: true, zip: "007", orderId: "12345678901234567890", big: "9007199254740993", safe: 9007199254740991, delta: -2.5 });
  await page.context().close();
});

test("scroll depth milestones once each per page view", async () => {
  const page = await h.open();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({});
  });
  const depth = () => page.evaluate(() => (ks.profile().events["Scroll Depth"] || { count: 0 }).count);
  const scrollTo = async (f) => {
    await page.evaluate((f) => window.scrollTo(0, (document.documentElement.scrollHeight - innerHeight) * f), f);
    await page.waitForTimeout(80);
  };
  await scrollTo(0.3);
  assert.equal(await depth(), 1, "25 %");
  await scrollTo(0.1);
  await scrollTo(0.3);
  assert.equal(await depth(), 1, "25 % only once");
  await scrollTo(1);
  assert.equal(await depth(), 4, "50, 75 and 100 % on reaching the bottom");
  await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/next"));
  await scrollTo(0);
  await scrollTo(0.6);
  assert.equal(await depth(), 6, "a new page view starts the milestones again");
  await page.waitForTimeout(600);
  const ring = await page.evaluate(() => JSON.parse(localStorage.getItem("ks_profile")).recent.filter((r) => r[0] === "Scroll Depth").map((r) => r[2].depth));
  assert.deepEqual(ring, [25, 50, 75, 100, 25, 50]);
  await page.context().close();
});

/** A fresh context with Playwright's fake clock, on the ESM test page once its module loaded. */
async function clockPage() {
  const ctx = await h.browser.newContext();
  const page = await ctx.newPage();
  await page.clock.install();
  await page.goto(h.url("/tests/esm.html"));
  await page.waitForFunction(() => window.__ksLoaded === true);
  return { ctx, page };
}

/** The stored Page Engagement seconds, once `n` are written: the coalesced write runs under a
 * Web Lock, granted in real time, so the fake clock is advanced in rounds (a busy machine may take
 * a few). */
async function storedEngagement(page, n) {
  let ring = [];
  for (let i = 0; i < 40 && ring.length < n; i++) {
    await page.clock.runFor(100);
    ring = await page.evaluate(() => (JSON.parse(localStorage.getItem("ks_profile") || "{}").recent || []).filter((r) => r[0] === "Page Engagement").map((r) => r[2].seconds));
  }
  return ring;
}

test("engaged time is reported per page when the page is hidden", async () => {
  const { ctx, page } = await clockPage();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({});
  });
  await page.clock.runFor(12_000); // visible and active (input within 30 s) for 12 s
  await page.mouse.move(10, 10);
  await page.clock.runFor(8_000);
  await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/second")); // page 1: 20 s
  await page.clock.runFor(50_000); // 30 s active, then idle
  // Leaving the page fires pagehide: page 2's engaged time is recorded and written at once.
  await page.goto(h.url("/tests/esm.html?next"));
  const seconds = await page.evaluate(() =>
    JSON.parse(localStorage.getItem("ks_profile")).recent.filter((r) => r[0] === "Page Engagement").map((r) => r[2].seconds),
  );
  assert.deepEqual(seconds, [20, 30]);
  await ctx.close();
});

test("an SPA navigation records the page left's engaged time with that page's context, before the next page view", async () => {
  const strip = (u) => u.replace(/^.*\/tests\//, "/");
  for (const pageViews of [true, false]) {
    h.server.collector.reset();
    const { ctx, page } = await clockPage();
    await page.evaluate(async (pageViews) => {
      window.ks = await Keystone.init({ endpoint: "/v1/batch", writeKey: "demo-key", flushAt: 100, flushInterval: 100000, autoCapture: { pageViews } });
    }, pageViews);
    await page.clock.runFor(5_000);
    await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/b"));
    await page.clock.runFor(3_000);
    await page.evaluate(() => new Promise((r) => (addEventListener("popstate", r, { once: true }), history.back())));
    await page.evaluate(() => ks.flush());
    const got = h.server.collector.events
      .filter((e) => e.type == "page" || e.event == "Page Engagement")
      .map((e) => [e.type == "page" ? "page" : e.properties.seconds, strip(e.context.page.url), strip(e.context.page.path), strip(e.context.page.referrer)]);
    const engagement = [
      [5, "/esm.html", "/esm.html", ""],
      [3, "/esm.html/b", "/esm.html/b", "/esm.html"],
    ];
    assert.deepEqual(
      got,
      pageViews
        ? [["page", "/esm.html", "/esm.html", ""], engagement[0], ["page", "/esm.html/b", "/esm.html/b", "/esm.html"], engagement[1], ["page", "/esm.html", "/esm.html", "/esm.html/b"]]
        : engagement,
      "pageViews: " + pageViews,
    );
    await ctx.close();
  }
});

test("engaged time leaves out time the device was asleep (the page never hidden)", async () => {
  const { ctx, page } = await clockPage();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({});
  });
  await page.mouse.move(10, 10);
  await page.clock.runFor(5_000);
  await page.clock.fastForward("02:00:00"); // asleep: the idle timer runs 2 h late
  await page.clock.runFor(1_000);
  await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/b")); // page 1: 30 s
  await page.clock.runFor(5_000);
  // Asleep again; this time input on waking comes before the late timer.
  const now = await page.evaluate(() => Date.now());
  await page.clock.setSystemTime(now + 2 * 3600_000);
  await page.mouse.move(20, 20);
  await page.clock.runFor(2_000);
  await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/c")); // page 2: 30 s + 2 s
  const seconds = await page.evaluate(() => ks.profile().events["Page Engagement"].count);
  assert.equal(seconds, 2);
  assert.deepEqual(await storedEngagement(page, 2), [30, 32]);
  await ctx.close();
});

test("engaged time counts only the visitor's input, not the page scrolling or focusing itself", async () => {
  const { ctx, page } = await clockPage();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({});
    // An auto-advancing carousel: an inner scroller moved (and its slide focused) by a timer.
    document.body.insertAdjacentHTML("afterbegin", '<div id="car" style="width:300px;overflow-x:auto;white-space:nowrap"><div style="display:inline-block;width:3000px;height:50px"></div><input id="slide"></div>');
    let x = 0;
    setInterval(() => {
      document.getElementById("car").scrollLeft = x = (x + 300) % 2700;
      document.getElementById("slide").focus();
      scrollTo(0, x);
    }, 3000);
  });
  for (let i = 0; i < 14; i++) {
    await page.clock.runFor(5_000);
    await page.waitForTimeout(40); // the browser dispatches the scroll events
  }
  await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/b"));
  await page.mouse.move(10, 10); // the visitor's input counts
  await page.clock.runFor(4_000);
  await page.keyboard.press("ArrowDown");
  await page.clock.runFor(31_000);
  await page.evaluate(() => history.pushState({}, "", "/tests/esm.html/c"));
  assert.deepEqual(await storedEngagement(page, 2), [30, 34]);
  await ctx.close();
});

test("one click on a label of a tracked element is one event (not two with the click on its control)", async () => {
  const page = await h.open();
  await page.evaluate(async () => {
    window.ks = await Keystone.init({});
    document.body.insertAdjacentHTML(
      "afterbegin",
      '<label id="lab" data-keystone-track="Opt In"><input type="checkbox" id="cb"> <span id="labtext">Subscribe</span></label>' +
        '<div data-keystone-track="Size Picked"><input type="radio" name="s" id="r1"><label for="r1" id="l1">S</label></div>',
    );
  });
  const counts = () => page.evaluate(() => [ks.profile().events["Opt In"], ks.profile().events["Size Picked"]].map((e) => (e ? e.count : 0)));
  await page.click("#labtext");
  await page.click("#l1");
  assert.deepEqual(await counts(), [1, 1], "a click on a label");
  await page.click("#cb");
  await page.click("#r1");
  assert.deepEqual(await counts(), [2, 2], "a click on the control itself");
  await page.click("#labtext");
  await page.click("#labtext");
  await page.click("#l1");
  assert.deepEqual(await counts(), [4, 3], "two clicks are two");
  assert.equal(await page.evaluate(() => document.getElementById("cb").checked), false, "the label still works");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("after an SPA navigation the page's later context refreshes keep the in-app referrer", async () => {
  for (const autoCapture of [undefined, false]) {
    const page = await h.browser.newPage();
    await page.goto(h.url("/tests/esm.html"), { referer: "https://search.example/q" });
    await page.waitForFunction(() => window.__ksLoaded === true);
    const out = await page.evaluate(async (autoCapture) => {
      const ks = await Keystone.init({ autoCapture });
      const ref = () => [ks.profile().context.referrer, ks.profile().context.referrerHost];
      const steps = { first: ref() };
      ks.page();
      steps.firstPage = ref();
      const a = location.href;
      history.pushState({}, "", "/tests/esm.html/b");
      ks.page({ title: "B" });
      steps.b = ref();
      location.hash = "#more"; // an anchor: the same page
      ks.page();
      steps.anchor = ref();
      return { a, steps };
    }, autoCapture);
    const host = new URL(out.a).host;
    assert.deepEqual(
      out.steps,
      { first: ["https://search.example/q", "search.example"], firstPage: ["https://search.example/q", "search.example"], b: [out.a, host], anchor: [out.a, host] },
      "autoCapture: " + autoCapture,
    );
    await page.context().close();
  }
});

test("a page that froze history: clicks, scroll depth and popstate navigations are still captured, and no error is reported", async () => {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() => Object.freeze(history)); // pushState/replaceState cannot be hooked
  const page = await h.open("/tests/esm.html", { context: ctx });
  await page.evaluate(async () => {
    window.errors = [];
    window.ks = await Keystone.init({});
    ks.on("error", (e) => errors.push(e.code));
    document.body.insertAdjacentHTML("afterbegin", '<button id="buy" data-keystone-track="Buy Clicked">Buy</button><div style="height: 5000px"></div>');
    await new Promise((r) => setTimeout(r, 0));
  });
  await page.click("#buy");
  const out = await page.evaluate(async () => {
    scrollTo(0, document.documentElement.scrollHeight);
    await new Promise((r) => setTimeout(r, 100));
    // The site's own router: its pushState is not seen here, the popstate back to /x is.
    history.pushState({}, "", "/tests/esm.html/x");
    history.pushState({}, "", "/tests/esm.html/y");
    history.back();
    await new Promise((r) => addEventListener("popstate", r, { once: true }));
    const ev = ks.profile().events;
    const n = (k) => (ev[k] ? ev[k].count : 0);
    return { clicks: n("Buy Clicked"), scroll: n("Scroll Depth"), views: n("Page Viewed"), errors };
  });
  assert.deepEqual(out, { clicks: 1, scroll: 4, views: 2, errors: [] });
  assert.deepEqual(page.problems, []);
  await ctx.close();
});
