// Deterministic inputs of the benchmark: attribute documents and marketing conditions for the
// evaluation comparison, segment definitions for start-up and per-event figures, and the event
// mix a heavy visitor is made of. Everything comes from a seeded generator, so every run (and
// every machine) measures the same work.

/** mulberry32: a small seeded PRNG. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (r, list) => list[Math.floor(r() * list.length)];
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));

const COUNTRIES = ["FR", "DE", "ES", "IT", "US", "CA", "GB", "NL", "BE", "JP"];
const LANGS = ["fr-FR", "de-DE", "es-ES", "it-IT", "en-US", "en-GB", "FR-ca", "nl-NL", "ja-JP"];
const DEVICES = ["mobile", "tablet", "desktop"];
const BROWSERS = ["chrome", "firefox", "safari", "edge"];
const TIERS = ["none", "none", "bronze", "silver", "gold", "platinum"];
const TAGS = ["newsletter", "vip", "deal-hunter", "returning", "b2b", "app-user", "churn-risk"];
const SOURCES = ["google", "newsletter", "facebook", "instagram", "partner", ""];
const MEDIUMS = ["cpc", "email", "sms", "social", "referral", ""];
const DOMAINS = ["gmail.com", "yahoo.com", "example.org", "corp.example", "outlook.com"];
const PATHS = ["/", "/shoes/running", "/shoes/trail", "/bags", "/sale", "/account", "/checkout"];
export const CATEGORIES = ["shoes", "bags", "shirts", "jackets", "socks", "hats", "watches", "belts"];

/** `n` attribute documents (the shape a site passes to GrowthBook's `evalCondition`). */
export function profiles(n, seed = 42) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < n; i++) {
    const tags = TAGS.filter(() => r() < 0.3);
    const doc = {
      id: "u" + i,
      country: pick(r, COUNTRIES),
      language: pick(r, LANGS),
      device: pick(r, DEVICES),
      browser: pick(r, BROWSERS),
      browserVersion: `${int(r, 90, 130)}.${int(r, 0, 9)}.${int(r, 0, 99)}`,
      loggedIn: r() < 0.4,
      tier: pick(r, TIERS),
      age: int(r, 16, 80),
      visits: int(r, 0, 120),
      cartValue: Math.round(r() * 50000) / 100,
      tags,
      utm: { source: pick(r, SOURCES), medium: pick(r, MEDIUMS), campaign: r() < 0.5 ? "spring_sale" : null },
      email: `user${i}@${pick(r, DOMAINS)}`,
      plan: { name: pick(r, ["free", "team", "business"]), seats: int(r, 1, 20) },
      path: pick(r, PATHS),
    };
    if (r() < 0.6) doc.lastOrderDays = int(r, 0, 365);
    out.push(doc);
  }
  return out;
}

/** Saved groups used by the conditions (`$inGroup`). */
export function savedGroups() {
  const ids = [];
  for (let i = 0; i < 10000; i += 7) ids.push("u" + i);
  return { beta_testers: ids, staff: ["u1", "u2", "u3"] };
}

/** The 20 marketing conditions (GrowthBook targeting syntax). */
export const CONDITIONS = [
  { country: { $in: ["FR", "DE", "ES", "IT"] } },
  { device: "mobile", visits: { $gte: 5 } },
  { "utm.source": "newsletter", "utm.medium": { $in: ["email", "sms"] } },
  { tier: { $in: ["gold", "platinum"] }, cartValue: { $gt: 100 } },
  { $or: [{ lastOrderDays: { $lte: 30 } }, { visits: { $gt: 50 } }] },
  { age: { $gte: 18, $lt: 35 } },
  { email: { $regex: "@(gmail|yahoo)\\.com$" } },
  { tags: { $elemMatch: { $eq: "vip" } } },
  { tags: { $all: ["newsletter", "deal-hunter"] } },
  { browser: "chrome", browserVersion: { $vgte: "110.0.0" } },
  { path: { $regex: "^/shoes/" } },
  { $not: { country: "US" } },
  { lastOrderDays: { $exists: false } },
  { $and: [{ loggedIn: true }, { "plan.seats": { $gte: 5 } }] },
  { tags: { $size: { $gt: 2 } } },
  { language: { $regexi: "^fr" } },
  { country: { $nin: ["US", "CA"] }, cartValue: { $gte: 50 } },
  { id: { $inGroup: "beta_testers" } },
  { $nor: [{ device: "desktop" }, { tier: "none" }] },
  { "utm.campaign": { $type: "string" }, visits: { $lte: 3 } },
];

/** The event mix of a visitor: [name, properties] pairs (null name = a page view). */
export function eventMix(n = 64, seed = 7) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    const category = pick(r, CATEGORIES);
    if (x < 0.2) out.push([null, { path: pick(r, PATHS) }]);
    else if (x < 0.65) out.push(["Product Viewed", { category, sku: "sku-" + int(r, 1, 500), price: int(r, 5, 300) }]);
    else if (x < 0.8) out.push(["Products Searched", { query: category }]);
    else if (x < 0.92) out.push(["Product Added", { category, price: int(r, 5, 300), quantity: int(r, 1, 3) }]);
    else out.push(["Order Completed", { revenue: int(r, 20, 600), items: int(r, 1, 5), currency: "EUR" }]);
  }
  return out;
}

/**
 * `n` segment definitions (a prefix of one list of 100, so 10 is the first 10): profile-field
 * conditions, `$performed` counts and aggregates, `$sequence`, `$inSegment` and scores, in the
 * syntax of DESIGN §4.
 */
export function definitions(n) {
  const segs = [];
  const within = ["1h", "24h", "7d", "30d", "90d"];
  for (let i = 0; segs.length < 100; i++) {
    const k = i % 10;
    const c = CATEGORIES[i % CATEGORIES.length];
    const w = within[i % within.length];
    let condition;
    switch (k) {
      case 0: condition = { $performed: { event: "Product Viewed", where: { category: c }, within: w, count: { $gte: 1 + (i % 5) } } }; break;
      case 1: condition = { "context.device": DEVICES[i % 3], "session.count": { $gte: 1 + (i % 4) } }; break;
      case 2: condition = { $performed: { event: "Order Completed", within: "30d", sum: "revenue", value: { $gte: 100 + i * 10 } } }; break;
      case 3: condition = { $performed: { event: "Product Added", within: w } }; break;
      case 4: condition = { $or: [{ "traits.tier": { $in: ["gold", "platinum"] } }, { "context.utm.source": SOURCES[i % 5] }] }; break;
      case 5: condition = { $sequence: { steps: [{ event: "Product Viewed", where: { category: c } }, { event: "Product Added" }], within: "24h" } }; break;
      case 6: condition = { $performed: { event: "Product Viewed", within: "30d", distinct: "category", value: { $gte: 2 + (i % 4) } } }; break;
      case 7: condition = { "scores.engagement": { $gte: 5 + i } }; break;
      case 8: condition = { $and: [{ $performed: { event: "Products Searched", within: w } }, { $not: { $performed: { event: "Order Completed", within: "7d" } } }] }; break;
      default: condition = { $inSegment: segs[segs.length - 1 - (i % 8)]?.id ?? "s0" }; break;
    }
    segs.push({ id: "s" + segs.length, name: "Segment " + segs.length, condition });
  }
  return {
    version: 1,
    segments: segs.slice(0, n),
    scores: [
      { id: "engagement", halfLife: "7d", rules: [{ event: "Product Viewed", points: 1 }, { event: "Order Completed", where: { revenue: { $gte: 100 } }, points: 20 }] },
    ],
  };
}
