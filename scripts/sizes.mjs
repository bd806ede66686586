// Raw, gzip -9 and brotli sizes of the package files, and the total a page loads with the ESM
// entry (wasm + keystone.js, which bundles the glue). Used by the build and by the size test.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

/** DESIGN §9 budget for wasm + JS a page loads. Not met yet: see CEILING_PAGE_GZIP. */
export const BUDGET_PAGE_GZIP = 45 * 1024;
/**
 * What the size test enforces today: the full build (all features on) measures ≈ 66.3 KB gzip
 * (67,910 B, ESM page; the script-tag page 68,640 B), over the 45 KB budget. The ceilings stop
 * unnoticed growth while the size work goes on; lower them as the package shrinks, and set them
 * back to BUDGET_PAGE_GZIP once the budget is met. (Raised by 512 B each from 64 KB and 65 KB
 * for two engine fixes of +322 B that left no room, then by 1 KB each for the stored profile's
 * packed buckets and saved groups in `where` (+625 B of wasm), then by 512 B each for a round of
 * fixes from outside testers (+470 B), then by 512 B each for two more fixes (+153 B: tabs of a
first visit agreeing on one id when storage lags the lock, a login before opt-in consent sent at
the grant) with 83 B of room left: docs/size.md.)
 */
export const CEILING_PAGE_GZIP = 66.5 * 1024;
/**
 * The script-tag page's own ceiling: its build carries ≈ 0.7 KB more than the ESM entry (the
 * snippet's queue replayed, its own URL found from any path, a failed start handed to a copy
 * that runs), so under the one 64 KB ceiling it had ≈ 0.7 KB less room, and any fix to the
 * shared engine failed there first (28 B of room left before fixes of ≈ 140 B). 1 KB above the
 * ESM page's, to give it the same room.
 */
export const CEILING_GLOBAL_PAGE_GZIP = 67.5 * 1024;
export const BUDGET_SNIPPET_GZIP = 1024;

export function sizeOf(path) {
  const buf = readFileSync(path);
  return {
    raw: buf.length,
    gzip: gzipSync(buf, { level: 9 }).length,
    brotli: brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

export function measure(dist) {
  const files = {};
  for (const f of readdirSync(dist).sort()) if (!f.endsWith(".d.ts")) files[f] = sizeOf(join(dist, f));
  const page = ["keystone_bg.wasm", "keystone.js"].reduce(
    (a, f) => ({ raw: a.raw + files[f].raw, gzip: a.gzip + files[f].gzip, brotli: a.brotli + files[f].brotli }),
    { raw: 0, gzip: 0, brotli: 0 },
  );
  const globalPage = ["keystone_bg.wasm", "keystone.global.js"].reduce(
    (a, f) => ({ raw: a.raw + files[f].raw, gzip: a.gzip + files[f].gzip, brotli: a.brotli + files[f].brotli }),
    { raw: 0, gzip: 0, brotli: 0 },
  );
  return { files, page, globalPage };
}

export function printSizes(dist) {
  const { files, page, globalPage } = measure(dist);
  const row = (name, s) => console.log(name.padEnd(34) + String(s.raw).padStart(9) + String(s.gzip).padStart(9) + String(s.brotli).padStart(9));
  console.log("file".padEnd(34) + "raw".padStart(9) + "gzip-9".padStart(9) + "brotli".padStart(9));
  for (const [f, s] of Object.entries(files)) row(f, s);
  row("total (ESM page: wasm + js)", page);
  row("total (script tag: wasm + global)", globalPage);
  console.log(`budget: page ${page.gzip} / ${BUDGET_PAGE_GZIP} B gzip (DESIGN budget; ${page.gzip > BUDGET_PAGE_GZIP ? "OVER by " + (page.gzip - BUDGET_PAGE_GZIP) : "met"}; enforced ceilings ${CEILING_PAGE_GZIP}, script tag ${CEILING_GLOBAL_PAGE_GZIP}); snippet ${files["snippet.js"].gzip} / ${BUDGET_SNIPPET_GZIP} B gzip`);
  return { files, page, globalPage };
}
