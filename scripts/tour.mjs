// Walks the demo shop in headless Chromium like a visitor would, through the states
// anonymous → shoe fan → logged-in gold customer → logged out → a second person on the same
// device, saving a screenshot per state in out/tour/ and checking that each state shows the
// personalization it should (and nothing it should not). Exit code 1 when a check fails.
// `node scripts/tour.mjs [--csp]` (with --csp the shop is served under the strict CSP).
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./serve.mjs";
import { launch } from "../tests/e2e/harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "out", "tour");

/** What each state must show (true) or must not show (false), by element id; and the greeting. */
const STATES = [
  ["1-anonymous", "a first-time visitor sees the default hero and bestsellers", { "hero-default": true, "hero-shoes": false, "hero-gold": false, "gold-offer": false, "cart-reminder": false, "rec-default": true, "rec-shoes": false, "gold-badge": false }, "there"],
  ["2-shoe-fan", "after viewing two shoes and adding one to the cart: shoe hero, shoe picks, cart reminder", { "hero-default": false, "hero-shoes": true, "hero-gold": false, "gold-offer": false, "cart-reminder": true, "rec-shoes": true, "rec-default": false }, "there"],
  ["3-gold-customer", "signed in as a gold CRM customer: gold hero and offer, greeting by name, the anonymous browsing merged in", { "hero-default": false, "hero-shoes": false, "hero-gold": true, "gold-offer": true, "gold-badge": true, "rec-shoes": true, "cart-reminder": true }, "Ada"],
  ["4-logged-out", "after signing out: a fresh anonymous profile, nothing personal left on screen", { "hero-default": true, "hero-shoes": false, "hero-gold": false, "gold-offer": false, "gold-badge": false, "rec-shoes": false, "rec-default": true, "cart-reminder": false }, "there"],
  ["5-second-person", "a second person signs in on the same device: their own (standard) profile, nothing of the first", { "hero-default": true, "hero-shoes": false, "hero-gold": false, "gold-offer": false, "gold-badge": false, "rec-shoes": false, "rec-default": true, "cart-reminder": false }, "Bob"],
];

export async function tour({ log = console.log, csp = false } = {}) {
  mkdirSync(outDir, { recursive: true });
  const server = await startServer({ strictCsp: csp });
  const browser = await launch();
  const failures = [];
  const problems = [];
  try {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(5000);
    page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
    page.on("console", (m) => m.type() === "error" && problems.push("console.error: " + m.text()));
    await ctx.addInitScript(() => {
      window.__violations = [];
      document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
    });
    const go = async (path) => {
      await page.goto(server.url + path);
      await page.waitForFunction(() => document.documentElement.dataset.shopReady);
      if ((await page.evaluate(() => document.documentElement.dataset.shopReady)) !== "1") problems.push("Keystone did not start on " + path);
    };
    const settle = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 30))));
    // Every click() leads to another page: wait for its Keystone to be ready, as a visitor reading
    // the page would, so a loaded machine cannot leave a page before its view was recorded.
    const click = async (sel) => {
      await page.click(sel);
      await page.waitForLoadState("load");
      await page.waitForFunction(() => document.documentElement.dataset.shopReady);
    };
    const signIn = async () => {
      await page.click("#login");
      // The shop goes home after a successful sign-in; a failed one stays (and the state fails).
      await page.waitForURL(server.url + "/", { timeout: 5000 }).catch(() => problems.push("sign-in did not complete: " + page.url()));
      await page.waitForFunction(() => document.documentElement.dataset.shopReady);
    };
    let i = 0;
    const state = async () => {
      const [name, why, expect, greeting] = STATES[i++];
      await settle();
      const file = join(outDir, name + ".png");
      await page.screenshot({ path: file, fullPage: true });
      const seen = await page.evaluate((ids) => {
        const out = {};
        for (const id of ids) {
          const el = document.getElementById(id);
          const cs = el && getComputedStyle(el);
          out[id] = !!el && cs.display !== "none" && cs.visibility === "visible" && el.getClientRects().length > 0;
        }
        out.greeting = document.getElementById("greeting-name")?.textContent;
        out.violations = window.__violations;
        return out;
      }, Object.keys(expect));
      const wrong = Object.entries(expect)
        .filter(([id, want]) => seen[id] !== want)
        .map(([id, want]) => `#${id} should be ${want ? "shown" : "hidden"}`);
      if (seen.greeting !== greeting) wrong.push(`greeting should read "${greeting}", reads "${seen.greeting}"`);
      if (seen.violations.length) wrong.push("CSP violations: " + seen.violations.join(", "));
      log(`${wrong.length ? "FAIL" : "ok  "} ${name}: ${why}${wrong.length ? "\n       " + wrong.join("\n       ") : ""}`);
      if (wrong.length) failures.push(name);
    };

    // 1. A first visit.
    await go("/");
    await state();

    // 2. Browse shoes: two product views and an add-to-cart, then back home.
    await click('nav.main a[href="/category.html?c=shoes"]');
    await click('#category-grid a[href="/product.html?id=trail-runner"]');
    await click("#crumb-category");
    await click('#category-grid a[href="/product.html?id=city-sneaker"]');
    await page.click("#add-to-cart");
    await click("a.brand");
    await state();

    // 3. Sign in with an email the CRM knows as gold; the shop sends the visitor home.
    await click("#account-link");
    await page.fill("#email", "ada@gold.example");
    await signIn();
    await state();
    // The marketer's view of that state: the debug panel.
    await page.keyboard.press("Alt+K");
    await page.waitForSelector("#ks-debug .ksd-segs");
    await page.click('#ks-debug [data-seg="gold"]').catch(() => {});
    await settle();
    await page.screenshot({ path: join(outDir, "3b-debug-panel.png") });
    await page.keyboard.press("Alt+K");

    // 4. Sign out, back to the home page.
    await click("#account-link");
    await page.click("#logout");
    await click("a.brand");
    await state();

    // 5. Someone else signs in on the same device.
    await click("#account-link");
    await page.fill("#email", "bob@example.com");
    await signIn();
    await state();
  } catch (e) {
    // A step that cannot be done (a missing element, a page that never became ready) fails the tour.
    failures.push("walk stopped: " + String(e.message).split("\n")[0]);
  } finally {
    await browser.close();
    await server.close();
  }
  for (const p of problems) log("problem: " + p);
  log(`tour: ${failures.length || problems.length ? "FAILED " + failures.join(", ") : "every state personalized as expected"}; screenshots in out/tour/`);
  return { failures, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { failures, problems } = await tour({ csp: process.argv.includes("--csp") });
  process.exit(failures.length || problems.length ? 1 : 0);
}
