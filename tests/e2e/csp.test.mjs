// Keystone under a strict Content Security Policy (README "Content Security Policy"):
// `script-src 'self' 'wasm-unsafe-eval'`, no inline script or style. Any violation fails.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup } from "./harness.mjs";
import { STRICT_CSP } from "../../scripts/serve.mjs";

let h;
before(async () => (h = await setup()));
after(async () => h && h.close());

/** Opens a page with the strict CSP, recording violations from the first byte on. */
async function openStrict(path) {
  const ctx = await h.browser.newContext();
  await ctx.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
  });
  const page = await ctx.newPage();
  const problems = [];
  page.on("console", (m) => /Content Security Policy|Refused to/i.test(m.text()) && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  const res = await page.goto(h.url(path + (path.includes("?") ? "&" : "?") + "csp=strict"));
  assert.equal(res.headers()["content-security-policy"], STRICT_CSP);
  page.problems = problems;
  return page;
}

test("the ESM package works under the strict CSP, declarative attributes included", async () => {
  const page = await openStrict("/tests/csp.html");
  await page.waitForFunction(() => window.ks || window.ksError);
  const out = await page.evaluate(async () => {
    const before = document.getElementById("show").hidden;
    ks.track("Product Viewed", { sku: "A1" });
    await new Promise((r) => setTimeout(r, 50));
    return { err: window.ksError || null, before, seg: ks.inSegment("viewers"), show: document.getElementById("show").hidden, hide: document.getElementById("hide").hidden };
  });
  assert.deepEqual(out, { err: null, before: true, seg: true, show: false, hide: true });
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("the script-tag build works under the strict CSP", async () => {
  const page = await openStrict("/tests/csp-global.html");
  const out = await page.evaluate(async () => {
    await window.keystone.init();
    window.keystone.track("Product Viewed");
    await new Promise((r) => setTimeout(r, 50));
    return { seg: window.keystone.inSegment("viewers"), show: document.getElementById("show").hidden };
  });
  assert.deepEqual(out, { seg: true, show: false });
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("the policy is really enforced (an inline script is refused and reported)", async () => {
  const page = await openStrict("/tests/csp.html");
  await page.waitForFunction(() => window.ks || window.ksError);
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inline = 1";
    document.head.appendChild(s);
  });
  await page.waitForFunction(() => window.__violations.length > 0);
  assert.equal(await page.evaluate(() => window.__inline), undefined);
  await page.context().close();
});
