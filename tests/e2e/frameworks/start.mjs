// Starts the framework (hydration, or a client render into an empty #root) at the moment the
// page's URL asks for: `?at=once` at once (the framework first: Keystone's wasm arrives later),
// `?at=late` once Keystone has rendered the page (a bundle slower than Keystone).
export function start(mount) {
  window.__errors = [];
  const go = () => (mount(), (window.__started = true));
  const at = new URLSearchParams(location.search).get("at");
  const wait = () => (document.documentElement.classList.contains("keystone-ready") ? setTimeout(go, 30) : setTimeout(wait, 5));
  at === "late" ? wait() : go();
}
