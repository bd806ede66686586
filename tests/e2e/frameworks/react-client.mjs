import { createElement } from "react";
import { createRoot, hydrateRoot } from "react-dom/client";
import { App, Doc } from "./react-app.mjs";
import { start } from "./start.mjs";

start(() => {
  const opts = { onRecoverableError: (e) => window.__errors.push("recoverable: " + e.message) };
  const root = document.getElementById("root");
  if (!root) return hydrateRoot(document, createElement(Doc), opts);
  const app = createElement(App, { plain: root.hasAttribute("data-plain") });
  root.firstChild ? hydrateRoot(root, app, opts) : createRoot(root, opts).render(app);
});
