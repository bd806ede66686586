// The same app in Preact.
import { h } from "preact";
import { useState, useEffect } from "preact/hooks";

export function App() {
  const [n, setN] = useState(0);
  const [route, setRoute] = useState("/");
  const [keys, setKeys] = useState(["a", "b"]);
  useEffect(() => {
    window.__app = { bump: () => setN((x) => x + 1), go: (r) => (history.pushState(null, "", r), setRoute(r)), rekey: () => setKeys((k) => k.map((x) => x + "2").reverse()) };
  }, []);
  return h(
    "div",
    { id: "app" },
    h("p", { id: "count" }, "renders ", n),
    route === "/"
      ? h(
          "main",
          { id: "home" },
          h("section", { id: "show", class: "banner", "data-keystone-show": "gold" }, "Gold offer ", n),
          h("section", { id: "hide", class: "banner", "data-keystone-hide": "gold" }, "Join the programme"),
          h("p", null, "Hello, ", h("span", { id: "name", "data-keystone-text": "traits.firstName" }, "there"), "!"),
          h("ul", null, keys.map((k) => h("li", { key: k, class: "item", "data-keystone-show": "gold" }, "item " + k))),
        )
      : h("main", { id: "two" }, h("section", { id: "show2", "data-keystone-show": "gold" }, "Gold on page two"), h("span", { id: "name2", "data-keystone-text": "traits.firstName" }, "guest")),
  );
}
