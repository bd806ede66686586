// A small React app (no JSX, so Node renders it with renderToString and esbuild bundles the same
// file for the browser): personalized elements as the README recommends writing them under React
// (`suppressHydrationWarning` on each element carrying a data-keystone-* attribute), a counter
// that re-renders them, a list that can be re-keyed and a client-side route. `plain` leaves the
// recommendation out, to show what happens without it.
import { createElement as h, useState, useEffect } from "react";

export function App({ plain = false }) {
  const [n, setN] = useState(0);
  const [route, setRoute] = useState("/");
  const [keys, setKeys] = useState(["a", "b"]);
  useEffect(() => {
    window.__app = { bump: () => setN((x) => x + 1), go: (r) => (history.pushState(null, "", r), setRoute(r)), rekey: () => setKeys((k) => k.map((x) => x + "2").reverse()) };
  }, []);
  const ks = (attrs) => (plain ? attrs : { ...attrs, suppressHydrationWarning: true });
  return h(
    "div",
    { id: "app" },
    h("p", { id: "count" }, "renders ", n),
    route === "/"
      ? h(
          "main",
          { id: "home" },
          h("section", ks({ id: "show", className: "banner", "data-keystone-show": "gold" }), "Gold offer ", n),
          h("section", ks({ id: "hide", className: "banner", "data-keystone-hide": "gold" }), "Join the programme"),
          h("p", null, "Hello, ", h("span", ks({ id: "name", "data-keystone-text": "traits.firstName" }), "there"), "!"),
          h("ul", null, keys.map((k) => h("li", ks({ key: k, className: "item", "data-keystone-show": "gold" }), "item " + k))),
        )
      : h("main", { id: "two" }, h("section", { id: "show2", "data-keystone-show": "gold" }, "Gold on page two"), h("span", { id: "name2", "data-keystone-text": "traits.firstName" }, "guest")),
  );
}

/** A React root that owns the whole document, as a Next.js root layout does; its theme is state. */
export function Doc() {
  const [theme, setTheme] = useState("light");
  useEffect(() => void (window.__app = { theme: setTheme }), []);
  return h(
    "html",
    { lang: "en", className: theme, suppressHydrationWarning: true },
    h("head", null, h("title", null, "React document")),
    h("body", null, h("section", { id: "show", "data-keystone-show": "gold", suppressHydrationWarning: true }, "Gold offer"), h("section", { id: "hide", "data-keystone-hide": "gold", suppressHydrationWarning: true }, "Join the programme")),
  );
}
