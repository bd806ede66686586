import { createSSRApp, createApp } from "vue";
import { App } from "./vue-app.mjs";
import { start } from "./start.mjs";

start(() => {
  const app = (document.querySelector("#root > *") ? createSSRApp : createApp)(App);
  app.config.errorHandler = (e) => window.__errors.push("error: " + e.message);
  app.config.warnHandler = (m) => window.__errors.push("warn: " + m);
  app.mount("#root");
});
