// The page context (DESIGN §3 `context`, plus `search` and `userAgent` for the Segment spec
// context), read with the browser's own URL, URLSearchParams and Intl.
// `referrer` overrides document.referrer (an SPA navigation's referrer is the previous URL);
// `at`, the [time, url, title] noted with a call made before the engine was ready, the page then;
// `v`, the properties of a virtual page view (`page({path: "/checkout/2"})`): its url, path, title
// and referrer are the page's.
let zone = null;

export function readContext(referrer, at, v) {
  if (!__SCRIPT_TAG__) at = null; // only the script-tag build replays calls made earlier
  const s = (k) => (typeof v?.[k] == "string" ? v[k] : null);
  let loc = at ? new URL(at[1]) : location;
  try {
    if (s("url")) loc = new URL(s("url"), loc.href);
  } catch (_) {}
  const title = s("title") ?? ((at ? at[2] : document.title) || "");
  const path = s("path") ?? loc.pathname;
  const q = new URLSearchParams(loc.search);
  const ref = s("referrer") ?? (referrer != null ? referrer : document.referrer || "");
  let referrerHost = "";
  try {
    referrerHost = ref ? new URL(ref).host : "";
  } catch (_) {}
  const ua = navigator.userAgent || "";
  // The time zone once per page. Temporal answers at once; a first Intl.DateTimeFormat loads
  // the ICU formatting data (30–60 ms in a fresh Chromium renderer), so it is only the fallback.
  if (zone == null) {
    zone = "";
    try {
      zone = (typeof Temporal == "object" && Temporal.Now.timeZoneId()) || Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (_) {}
  }
  const utm = {};
  for (const k of ["source", "medium", "campaign", "term", "content"]) utm[k] = q.get("utm_" + k) || "";
  const page = { path, referrer: ref, search: loc.search, title, url: loc.href };
  const campaign = {};
  for (const k of "campaign source medium term content".split(" ")) if (utm[k]) campaign[k == "campaign" ? "name" : k] = utm[k];
  const language = navigator.language || "";
  return {
    url: loc.href,
    path,
    host: loc.host,
    title,
    referrer: ref,
    referrerHost,
    utm,
    language,
    timezone: zone,
    // iPadOS 13+ presents itself as a Mac: a "Macintosh" with a touch screen is an iPad.
    device: /iPad|Tablet/.test(ua) || (/Android/.test(ua) && !/Mobile/.test(ua)) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1) ? "tablet" : /Mobi|iPhone|Android/.test(ua) ? "mobile" : "desktop",
    search: loc.search,
    // The Segment spec `context` of events made on this page.
    spec: {
      page,
      ...(Object.keys(campaign).length ? { campaign } : {}),
      locale: language,
      timezone: zone,
      userAgent: ua,
      library: { name: "keystone-cdp", version: __KEYSTONE_VERSION__ },
    },
  };
}
