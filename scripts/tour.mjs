// Walks the demo shop in headless Chromium and saves a screenshot per state in out/tour/.
// Fails (exit 1) when a state's expected personalization is missing.
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./serve.mjs";
import { launch } from "../tests/e2e/harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "out", "tour");
mkdirSync(outDir, { recursive: true });

const server = await startServer();
const browser = await launch();
const failures = [];
try {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
  await page.goto(server.url + "/");
  await page.waitForFunction(() => window.ks);
  const shot = async (name, check, why) => {
    const file = join(outDir, name + ".png");
    await page.screenshot({ path: file, fullPage: true });
    const ok = await page.evaluate(check);
    console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${why} (${file})`);
    if (!ok) failures.push(name);
  };
  await shot("1-anonymous", () => document.getElementById("shoe-banner").hidden, "no shoe banner for a new visitor");
  await page.click("#view-shoes");
  await page.click("#view-shoes");
  await shot("2-shoe-fan", () => !document.getElementById("shoe-banner").hidden, "shoe banner after two shoe views");
} finally {
  await browser.close();
  await server.close();
}
console.log(`tour: ${failures.length ? "FAILED " + failures.join(", ") : "all states personalized"}; screenshots in ${outDir}`);
process.exit(failures.length ? 1 : 0);
