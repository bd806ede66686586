// The page context (DESIGN §3 `context`, plus `search` and `userAgent` for the Segment spec
// context), read with the browser's own URL, URLSearchParams and Intl.
// `referrer` overrides document.referrer (an SPA navigation's referrer is the previous URL).
export function readContext(referrer) {
  const loc = location;
  const q = new URLSearchParams(loc.search);
  const ref = referrer != null ? referrer : document.referrer || "";
  let referrerHost = "";
  try {
    referrerHost = ref ? new URL(ref).host : "";
  } catch (_) {}
  const ua = navigator.userAgent || "";
  let timezone = "";
  try {
    timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (_) {}
  const utm = {};
  for (const k of ["source", "medium", "campaign", "term", "content"]) utm[k] = q.get("utm_" + k) || "";
  return {
    url: loc.href,
    path: loc.pathname,
    host: loc.host,
    title: document.title || "",
    referrer: ref,
    referrerHost,
    utm,
    language: navigator.language || "",
    timezone,
    device: /iPad|Tablet/.test(ua) || (/Android/.test(ua) && !/Mobile/.test(ua)) ? "tablet" : /Mobi|iPhone|Android/.test(ua) ? "mobile" : "desktop",
    search: loc.search,
    userAgent: ua,
  };
}
