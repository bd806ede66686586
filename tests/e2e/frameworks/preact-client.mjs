import { h, hydrate, render } from "preact";
import { App } from "./preact-app.mjs";
import { start } from "./start.mjs";

start(() => {
  const root = document.getElementById("root");
  (root.firstChild ? hydrate : render)(h(App), root);
});
