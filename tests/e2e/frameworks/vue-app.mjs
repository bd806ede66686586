// The same app in Vue 3, written with render functions (no template compiler needed), as the
// README recommends under Vue: `data-allow-mismatch="text"` on data-keystone-text elements.
import { h, ref, onMounted } from "vue";

export const App = {
  setup() {
    const n = ref(0), route = ref("/"), keys = ref(["a", "b"]);
    onMounted(() => {
      window.__app = { bump: () => n.value++, go: (r) => (history.pushState(null, "", r), (route.value = r)), rekey: () => (keys.value = keys.value.map((x) => x + "2").reverse()) };
    });
    return () =>
      h("div", { id: "app" }, [
        h("p", { id: "count" }, "renders " + n.value),
        route.value === "/"
          ? h("main", { id: "home" }, [
              h("section", { id: "show", class: "banner", "data-keystone-show": "gold" }, "Gold offer " + n.value),
              h("section", { id: "hide", class: "banner", "data-keystone-hide": "gold" }, "Join the programme"),
              h("p", null, ["Hello, ", h("span", { id: "name", "data-keystone-text": "traits.firstName", "data-allow-mismatch": "text" }, "there"), "!"]),
              h("ul", null, keys.value.map((k) => h("li", { key: k, class: "item", "data-keystone-show": "gold" }, "item " + k))),
            ])
          : h("main", { id: "two" }, [h("section", { id: "show2", "data-keystone-show": "gold" }, "Gold on page two"), h("span", { id: "name2", "data-keystone-text": "traits.firstName" }, "guest")]),
      ]);
  },
};
