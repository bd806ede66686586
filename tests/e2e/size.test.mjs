// Size budgets (DESIGN §9): bytes are deterministic, so this is a test, not a benchmark.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { measure, BUDGET_PAGE_GZIP, BUDGET_SNIPPET_GZIP } from "../../scripts/sizes.mjs";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "pkg", "dist");

test("wasm + JS a page loads stays within 45 KB gzip -9", () => {
  const { page, globalPage, files } = measure(dist);
  console.log(`ESM page: ${page.gzip} B gzip (wasm ${files["keystone_bg.wasm"].gzip} + js ${files["keystone.js"].gzip}); script tag: ${globalPage.gzip} B`);
  assert.ok(page.gzip <= BUDGET_PAGE_GZIP, `ESM page is ${page.gzip} B gzip, budget ${BUDGET_PAGE_GZIP}`);
  assert.ok(globalPage.gzip <= BUDGET_PAGE_GZIP, `script-tag page is ${globalPage.gzip} B gzip, budget ${BUDGET_PAGE_GZIP}`);
});

test("the tag-manager snippet stays within 1 KB gzip -9", () => {
  const { files } = measure(dist);
  assert.ok(files["snippet.js"].gzip <= BUDGET_SNIPPET_GZIP, `snippet is ${files["snippet.js"].gzip} B gzip`);
});
