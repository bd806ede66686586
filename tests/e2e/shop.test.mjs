// The demo shop (www/): every page runs under the strict CSP without errors, the segment file
// loads whole, the anonymous state is personalized, and the debug panel opens and shows the
// profile, the segments, the event stream and the outbound batches.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./harness.mjs";
import { startServer } from "../../scripts/serve.mjs";

let server, browser;
before(async () => {
  server = await startServer({ strictCsp: true });
  browser = await launch();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

async function shopPage() {
  const ctx = await browser.newContext();
  await ctx.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
  });
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(e.message));
  page.on("console", (m) => (m.type() === "error" || m.type() === "warning") && page.problems.push(m.text()));
  page.go = async (path) => {
    await page.goto(server.url + path);
    await page.waitForFunction(() => document.documentElement.dataset.shopReady);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.shopReady), "1", "Keystone started on " + path);
  };
  return page;
}

test("every shop page runs under the strict CSP with no error, warning or violation", async () => {
  const page = await shopPage();
  for (const path of ["/", "/category.html?c=bags", "/product.html?id=daypack", "/cart.html", "/account.html"]) {
    await page.go(path);
    assert.deepEqual(await page.evaluate(() => window.__violations), [], path);
  }
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("segments.json loads whole: no definition is rejected", async () => {
  const page = await shopPage();
  await page.go("/");
  const report = await page.evaluate(async () => {
    const r = await window.ks.loadSegments("/segments.json");
    return { loaded: r.loaded.length, rejected: r.rejected.map((e) => e.segmentId + " " + e.path + ": " + e.message) };
  });
  assert.deepEqual(report.rejected, []);
  assert.ok(report.loaded >= 13);
  await page.context().close();
});

test("the debug panel opens with ?keystone_debug=1 and toggles with Alt+K", async () => {
  const page = await shopPage();
  await page.go("/product.html?id=tent&keystone_debug=1");
  await page.waitForSelector("#ks-debug .ksd-segs li");
  const segs = await page.$$eval("#ks-debug .ksd-segs li", (l) => l.length);
  assert.ok(segs >= 13, "every segment of segments.json is listed");
  for (const tab of ["Profile", "Events", "Outbound"]) {
    await page.click(`#ks-debug [data-tab="${tab}"]`);
    await page.waitForFunction((t) => document.querySelector("#ks-debug .ksd-tabs .on").textContent.startsWith(t), tab);
  }
  await page.click('#ks-debug [data-tab="Events"]');
  const events = await page.textContent("#ks-debug .ksd-body");
  assert.match(events, /Product Viewed/, "the event stream shows the product view");
  await page.click('#ks-debug [data-tab="Profile"]');
  assert.match(await page.textContent("#ks-debug .ksd-body"), /Product Viewed/);
  await page.keyboard.press("Alt+K");
  // (The shop closes it once its dynamic import of /debug.js resolves: a moment after the key.)
  await page.waitForSelector("#ks-debug", { state: "detached", timeout: 5000 });
  assert.equal(await page.$("#ks-debug"), null, "Alt+K closes it");
  await page.keyboard.press("Alt+K");
  await page.waitForSelector("#ks-debug");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("pages do not jump as they load, and fit a phone's width (layout shift, scroll width)", async () => {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const ctx = await browser.newContext({ viewport });
    await ctx.addInitScript(() => {
      window.__cls = 0;
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
      }).observe({ type: "layout-shift", buffered: true });
    });
    const page = await ctx.newPage();
    for (const path of ["/", "/category.html?c=bags", "/product.html?id=daypack", "/cart.html", "/account.html"]) {
      await page.goto(server.url + path);
      await page.waitForFunction(() => document.documentElement.dataset.shopReady);
      await page.waitForTimeout(200);
      const { cls, width } = await page.evaluate(() => ({ cls: window.__cls, width: document.documentElement.scrollWidth }));
      assert.ok(cls < 0.1, `${viewport.width} px ${path}: layout shift ${cls.toFixed(3)}`);
      assert.ok(width <= viewport.width, `${viewport.width} px ${path}: the page is ${width} px wide`);
    }
    await ctx.close();
  }
});

test("the hero is the experience alone: no leftover segment claims a hero the page does not show", async () => {
  const page = await shopPage();
  await page.go("/product.html?id=trail-runner");
  await page.go("/product.html?id=city-sneaker");
  await page.go("/account.html?return=stay");
  await page.fill("#email", "ada@gold.example");
  await page.click("#login");
  await page.waitForFunction(() => window.ks.userId());
  // The gold offer is capped at 3 views a week: the 4th home page shows the shoes hero.
  for (let i = 0; i < 4; i++) await page.go("/");
  await page.waitForSelector("#hero-shoes");
  await page.go("/?keystone_debug=1");
  await page.waitForSelector("#ks-debug .ksd-segs li");
  const held = await page.$$eval("#ks-debug .ksd-segs li.in > button[data-seg]", (l) => l.map((b) => b.textContent));
  assert.deepEqual(held.filter((t) => /hero/i.test(t)), [], "no segment held names a hero");
  assert.match(await page.textContent("#ks-debug .ksd-body"), /hero → shoes/);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("arriving from a search engine or a campaign lasts the visit, not just the landing page", async () => {
  const page = await shopPage();
  page.go = async (path, referer) => {
    await page.goto(server.url + path, referer ? { referer } : {});
    await page.waitForFunction(() => document.documentElement.dataset.shopReady === "1");
  };
  await page.go("/?utm_source=news&utm_campaign=spring", "https://www.google.com/");
  const held = () => page.evaluate(() => ["from_search", "campaign_visitors"].filter((s) => window.ks.inSegment(s)));
  assert.deepEqual(await held(), ["from_search", "campaign_visitors"], "on the landing page");
  await page.click('nav.main a[href="/category.html?c=bags"]');
  await page.waitForFunction(() => document.documentElement.dataset.shopReady === "1" && location.pathname === "/category.html");
  assert.deepEqual(await held(), ["from_search", "campaign_visitors"], "on the next page of the visit");
  const exits = await page.evaluate(() => window.ks.profile().events["Segment Exited"]?.count ?? 0);
  assert.equal(exits, 0, "no Segment Exited sent for them");
  // A visitor who came in directly is in neither.
  const other = await shopPage();
  await other.go("/");
  assert.deepEqual(await other.evaluate(() => ["from_search", "campaign_visitors"].filter((s) => window.ks.inSegment(s))), []);
  await page.context().close();
  await other.context().close();
});

test("the sign-in form refuses an address Keystone would refuse, with a clear message", async () => {
  const page = await shopPage();
  await page.go("/account.html?return=stay");
  await page.fill("#email", "ada@localhost");
  await page.click("#login");
  await page.waitForTimeout(200);
  const state = await page.evaluate(() => ({
    valid: document.querySelector("#email").checkValidity(),
    message: document.querySelector("#login-error").textContent,
    userId: window.ks.userId(),
    signedIn: !document.querySelector("#signed-in").hidden,
  }));
  assert.equal(state.valid, false, "the form's own validation refuses it");
  assert.match(state.message, /ada@example\.com/, "the message shows a full address");
  assert.doesNotMatch(state.message, /invalid_email/);
  assert.equal(state.userId, null);
  assert.equal(state.signedIn, false);
  await page.fill("#email", "ada@example.com");
  await page.click("#login");
  await page.waitForSelector("#signed-in:not([hidden])");
  assert.equal(await page.textContent("#login-error"), "", "the message goes once the address is accepted");
  await page.context().close();
});

test("the shop keeps no raw email on the device after sign-in, and says so", async () => {
  const page = await shopPage();
  await page.go("/account.html?return=stay");
  await page.fill("#email", "Grace.Hopper@Example.com");
  await page.click("#login");
  await page.waitForSelector("#signed-in:not([hidden])");
  assert.match(await page.textContent("#signed-in"), /Signed in as Grace/);
  await page.go("/");
  assert.equal(await page.textContent("#account-link"), "Account", "still signed in on the next page");
  const stored = await page.evaluate(() => {
    const all = [document.cookie];
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) all.push(s.key(i) + "=" + s.getItem(s.key(i)));
    return all.join("\n");
  });
  assert.doesNotMatch(stored, /grace\.hopper@example\.com/i);
  assert.match(await page.evaluate(() => fetch("/account.html").then((r) => r.text())), /keeps only your first name/, "the privacy line says what the shop keeps");
  await page.context().close();
});

test("the debug panel's Profile tab shows local time, as its Events tab does", async () => {
  const ctx = await browser.newContext({ timezoneId: "Asia/Kolkata" }); // UTC+5:30
  const page = await ctx.newPage();
  await page.goto(server.url + "/product.html?id=tent&keystone_debug=1");
  await page.waitForFunction(() => document.documentElement.dataset.shopReady === "1");
  await page.click('#ks-debug [data-tab="Profile"]');
  await page.waitForFunction(() => /Product Viewed/.test(document.querySelector("#ks-debug .ksd-body").textContent));
  const { shown, local } = await page.evaluate(() => {
    const row = [...document.querySelectorAll("#ks-debug .ksd-kv tr")].find((r) => r.querySelector("th").textContent === "Product Viewed");
    const at = window.ks.profile().events["Product Viewed"].lastAt;
    return { shown: row.querySelector("td").textContent, local: new Date(at).toLocaleTimeString([], { hour12: false }) };
  });
  assert.match(shown, new RegExp("last " + local + "$"));
  await ctx.close();
});

test("node scripts/serve.mjs prints URLs that answer", async () => {
  const { spawn } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const child = spawn(process.execPath, [fileURLToPath(new URL("../../scripts/serve.mjs", import.meta.url)), "--port", "0"]);
  try {
    let out = "";
    await new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => (out += d) && /Ctrl\+C/.test(out) && resolve());
      child.on("exit", () => reject(new Error("server exited: " + out)));
    });
    const urls = out.match(/http:\/\/\S+/g).filter((u) => !u.includes("/v1/batch"));
    assert.ok(urls.some((u) => u.includes("/pkg/")), out);
    for (const u of urls) assert.equal((await fetch(u)).status, 200, u);
  } finally {
    child.kill();
  }
});

test("privacy choices: marketing pushes to the data layer; forget() erases the device and nothing is stored on the next page until a choice grants it again", async () => {
  const page = await shopPage();
  await page.go("/");
  const checked = () => page.$$eval("#privacy input", (xs) => xs.map((x) => x.checked));
  await page.click("#privacy-open");
  assert.deepEqual(await checked(), [true, true, true], "the default (opt-out): every category");
  await page.uncheck("#privacy [name=marketing]");
  await page.click("#privacy button[value=save]");
  await page.waitForFunction(() => ks.profile().consent.marketing === false);
  await page.go("/");
  assert.equal(await page.evaluate(() => (window.dataLayer || []).some((e) => /^keystone\./.test(e?.event))), false, "no push without marketing");
  await page.click("#privacy-open");
  assert.deepEqual(await checked(), [true, true, false], "the choice kept across pages");
  await page.check("#privacy [name=marketing]");
  await page.click("#privacy button[value=save]");
  await page.waitForFunction(() => (window.dataLayer || []).some((e) => e?.event === "keystone.ready"));
  // Forget me: Keystone's keys and cookies go, and the next page stores nothing.
  await page.click("#privacy-open");
  await page.evaluate(() => (window.__before = 1)); // (the shop goes to "/", the page it is on)
  await page.click("#privacy button[value=forget]");
  await page.waitForFunction(() => !window.__before && document.documentElement.dataset.shopReady);
  const after = await page.evaluate(() => ({ keys: Object.keys(localStorage).filter((k) => k.startsWith("ks_")), cookies: document.cookie, segments: ks.segments() }));
  assert.deepEqual(after, { keys: [], cookies: "", segments: [] });
  await page.click("#privacy-open");
  assert.deepEqual(await checked(), [false, false, false]);
  await page.check("#privacy [name=personalization]");
  await page.click("#privacy button[value=save]");
  await page.waitForFunction(() => Object.keys(localStorage).includes("ks_profile"));
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("a signed-in customer who turns personalization off, browses on, and turns it on again is signed in to Keystone again (the shop's session)", async () => {
  const page = await shopPage();
  await page.go("/account.html");
  await page.fill("#email", "ada@example.com");
  await Promise.all([page.waitForURL(server.url + "/"), page.click("#login")]);
  await page.waitForFunction(() => document.documentElement.dataset.shopReady && ks.inSegment("gold"));
  const privacy = async (on) => {
    await page.click("#privacy-open");
    await page.setChecked("#privacy [name=personalization]", on);
    await page.click("#privacy button[value=save]");
  };
  await privacy(false);
  await page.waitForFunction(() => !ks.profile().consent.personalization);
  await page.go("/category.html?c=bags"); // Keystone keeps nothing: this page starts anonymous
  assert.equal(await page.evaluate(() => ks.userId()), null);
  await privacy(true);
  await page.waitForFunction(() => ks.userId() && ks.inSegment("gold"), null, { timeout: 5000 });
  await page.go("/");
  const state = await page.evaluate(() => ({
    signedIn: !!ks.userId(),
    greeting: document.getElementById("greeting-name").textContent,
    gold: getComputedStyle(document.getElementById("gold-badge")).display !== "none",
    link: document.getElementById("account-link").textContent,
  }));
  assert.deepEqual(state, { signedIn: true, greeting: "Ada", gold: true, link: "Account" });
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
