// Builds the framework test pages into a directory (served under a prefix by the test server):
// server-rendered HTML (each framework's own renderToString) with Keystone loaded in <head> (ESM
// or the tag-manager snippet), pages with an empty root for a client render, and the client
// bundles (esbuild, development builds: the frameworks' hydration checks are on) that hydrate or
// render them. The React hook of the README's "Front-end frameworks" section is bundled as the
// README gives it.
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { createSSRApp } from "vue";
import { renderToString as vueToString } from "vue/server-renderer";
import { h as preactH } from "preact";
import { renderToString as preactToString } from "preact-render-to-string";
import { App as ReactApp, Doc } from "./react-app.mjs";
import { App as VueApp } from "./vue-app.mjs";
import { App as PreactApp } from "./preact-app.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..", "..", "..");
export const DEFS = { version: 1, segments: [{ id: "gold", condition: { "traits.tier": "gold" } }] };
export const FRAMEWORKS = ["react", "vue", "preact"];

// The anti-flicker rule inlined in <head>, as the README asks, with a 10 s timeout instead of
// 1 s (and the same `antiFlicker` option): on a loaded machine Keystone can take more than a
// second to start, and the content then shows as authored by design, which the tests' paint
// watcher would report as a wrong paint.
const CLOAK = `<style>html:not(.keystone-ready) :is([data-keystone-show],[data-keystone-hide],[data-keystone-text],[data-keystone-experience]){visibility:hidden;animation:keystone-reveal 0s 10000ms forwards}@keyframes keystone-reveal{to{visibility:visible}}</style>`;
const OPTIONS = JSON.stringify({ segments: DEFS, antiFlicker: 10000 }).slice(1, -1);
const KEYSTONE = {
  esm: `<script type="module">import { Keystone } from "/pkg/dist/keystone.js"; Keystone.init({ ${OPTIONS} }).then((ks) => (window.ks = ks));</script>`,
  snippet: `<script>window.keystoneConfig = { src: "/pkg/dist/keystone.global.js", ${OPTIONS} };</script><script src="/pkg/dist/snippet.js"></script>`,
};
const HEAD = `<meta charset="utf-8"><link rel="icon" href="data:,">${CLOAK}<style>.banner{display:flex}</style>`;
const page = (head, body) => `<!doctype html><html lang="en"><head>${HEAD}${head}</head><body>${body}</body></html>`;

/** The one ```jsx block of the README that holds `marker`. */
export function readmeBlock(marker) {
  const found = [...readFileSync(join(root, "README.md"), "utf8").matchAll(/```jsx\n([\s\S]*?)```/g)].map((m) => m[1]).filter((c) => c.includes(marker));
  if (found.length !== 1) throw new Error(`one jsx block of README.md holding ${marker}: ${found.length}`);
  return found[0];
}

export async function buildPages(out) {
  mkdirSync(out, { recursive: true });
  const define = { "process.env.NODE_ENV": '"development"', __VUE_OPTIONS_API__: "false", __VUE_PROD_DEVTOOLS__: "false", __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "true" };
  const common = { bundle: true, format: "esm", logLevel: "warning", absWorkingDir: root, nodePaths: [join(root, "node_modules")] };
  // The README's hook, as written: a module of its own, with a page component that uses it.
  writeFileSync(join(out, "hook.jsx"), readmeBlock("useSegment"));
  writeFileSync(join(out, "hook-page.jsx"), `import { GoldOffer } from "./hook.jsx";\nexport const Page = () => <main id="hooked"><h1>Shop</h1><GoldOffer /></main>;\n`);
  writeFileSync(join(out, "hook-client.jsx"), `import { hydrateRoot } from "react-dom/client";\nimport { Page } from "./hook-page.jsx";\nwindow.__errors = [];\nhydrateRoot(document.getElementById("root"), <Page />, { onRecoverableError: (e) => window.__errors.push("recoverable: " + e.message) });\nwindow.__started = true;\n`);
  writeFileSync(join(out, "hook-server.jsx"), `import { renderToString } from "react-dom/server";\nimport { Page } from "./hook-page.jsx";\nexport const render = () => renderToString(<Page />);\n`);
  await Promise.all([
    build({ ...common, entryPoints: Object.fromEntries(FRAMEWORKS.map((f) => [f + "-client", join(here, f + "-client.mjs")])), outdir: out, define }),
    build({ ...common, entryPoints: [join(out, "hook-client.jsx")], outfile: join(out, "hook-client.js"), jsx: "automatic", external: ["keystone-cdp"], define }),
    // The server's build of the same component: the package is imported there too (init is not called).
    build({ ...common, entryPoints: [join(out, "hook-server.jsx")], outfile: join(out, "hook-server.cjs"), format: "cjs", jsx: "automatic", platform: "node", alias: { "keystone-cdp": join(root, "pkg", "dist", "keystone.js") }, define: { "process.env.NODE_ENV": '"production"' } }),
  ]);
  const ssr = { react: renderToString(createElement(ReactApp)), vue: await vueToString(createSSRApp(VueApp)), preact: preactToString(preactH(PreactApp)) };
  for (const fw of FRAMEWORKS)
    for (const form of ["esm", "snippet"]) {
      const client = `<script type="module" src="${fw}-client.js"></script>`;
      writeFileSync(join(out, `${fw}-${form}.html`), page(KEYSTONE[form], `<div id="root">${ssr[fw]}</div>${client}`));
      writeFileSync(join(out, `${fw}-${form}-client.html`), page(KEYSTONE[form], `<div id="root"></div>${client}`));
    }
  writeFileSync(join(out, "react-plain.html"), page(KEYSTONE.esm, `<div id="root" data-plain>${renderToString(createElement(ReactApp, { plain: true }))}</div><script type="module" src="react-client.js"></script>`));
  // A root that owns the whole document (a Next.js root layout): Keystone's tags go in its <head>.
  const doc = "<!doctype html>" + renderToString(createElement(Doc));
  writeFileSync(join(out, "react-document.html"), doc.replace("</head>", `${HEAD}${KEYSTONE.esm}</head>`).replace("</body>", `<script type="module" src="react-client.js"></script></body>`));
  const { render } = createRequire(import.meta.url)(join(out, "hook-server.cjs"));
  const importMap = `<script type="importmap">{"imports": {"keystone-cdp": "/pkg/dist/keystone.js"}}</script>`;
  writeFileSync(join(out, "react-hook.html"), page(importMap, `<div id="root">${render()}</div><script type="module" src="hook-client.js"></script>`));
}
