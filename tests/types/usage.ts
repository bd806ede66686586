// Type-checks the published keystone.d.ts the way an application uses it (tsc --strict, run by
// tests/e2e/packaging.test.mjs against the installed tarball). Every API call appears once;
// the @ts-expect-error lines must stay errors.
import { Keystone, KeystoneError, type KeystoneInstance, type Definitions, type Profile, type KeystoneErrorCode } from "keystone-cdp";
import imported from "./segments.json"; // resolveJsonModule

const defs: Definitions = {
  version: 1,
  segments: [{ id: "shoe_fans", name: "Shoe fans", condition: { $performed: { event: "Product Viewed", within: "7d", count: { $gte: 2 } } } }],
  scores: [{ id: "engagement", halfLife: "7d", rules: [{ event: "Product Viewed", points: 1 }] }],
  experiences: [{ id: "hero", holdout: 0.1, variants: [{ id: "shoes", segment: "shoe_fans", priority: 5 }, { id: "default" }] }],
};

export async function main(): Promise<void> {
  const ks: KeystoneInstance = await Keystone.init({
    segments: defs,
    endpoint: "https://collector.example/v1/batch",
    writeKey: "key",
    consent: { analytics: true, personalization: true, marketing: false },
    autoCapture: { scroll: false },
    sessionTimeout: "30m",
    retention: "90d",
    dataLayer: true,
    trackSegments: true,
    antiFlicker: 500,
    debug: true,
    wasmUrl: "/assets/keystone_bg.wasm",
  });
  // The other options of DESIGN §2 and the delivery tuning ones.
  await Keystone.init({ consent: "opt-in", storagePrefix: "acme_", cookieDomain: ".example.com", autoCapture: false, dataLayer: "tagLayer", antiFlicker: false });
  await Keystone.init({ consent: "opt-out", flushAt: 20, flushInterval: 5000, maxQueueEvents: 1000, maxQueueBytes: 524288, maxBatchBytes: 65536, retryBase: 1000, retryMax: 60000, requestTimeout: 10000, segments: new URL("/segments.json", location.href) });
  ks.page({ section: "home" });
  ks.track("Product Viewed", { category: "shoes", price: 89 });
  await ks.identify("ada@example.com", { tier: "gold" }, { userId: "u-1" });
  ks.reset();
  ks.setTraits({ firstName: "Ada" });
  await ks.setConsent({ marketing: true });
  await ks.forget();
  const { loaded, rejected } = await ks.loadSegments("/segments.json");
  const firstRejected: string | undefined = rejected[0]?.code;
  const ids: string[] = ks.segments();
  const member: boolean = ks.inSegment("shoe_fans");
  const why = ks.explain("shoe_fans");
  const decision = ks.decide("hero");
  const variant: string | undefined = decision?.variant; // a decision always names a variant
  const profile: Profile | null = ks.profile();
  if (!profile) return;
  const tier = profile.traits.tier;
  const anon: string | null = ks.anonymousId();
  const user: string | null = ks.userId();
  const onEnter = ({ segment }: { segment: string }) => console.log(segment);
  ks.on("segment:enter", onEnter).on("segment:exit", onEnter);
  ks.on("identify", ({ userId }) => console.log(userId));
  ks.on("reset", ({ anonymousId }) => console.log(anonymousId));
  ks.on("error", (e) => console.log(e.code, e.segmentId, e.path, e instanceof KeystoneError));
  ks.off("segment:enter", onEnter);
  await ks.flush();
  ks.refresh();
  await Keystone.load();
  await Keystone.load({ wasmUrl: "/assets/keystone_bg.wasm" });
  ks.persistNow();
  const search: string = profile.context.search;
  const maybeId: string | null = profile.anonymousId;
  const viaInstance: boolean = ks.evalCondition({ a: 1 }, { a: 1 });
  void [search, maybeId, viaInstance];
  const ok: boolean = Keystone.evalCondition({ country: "FR" }, { country: { $in: ["FR", "DE"] } });
  void [loaded, firstRejected, ids, member, why, variant, tier, anon, user, ok];

  // The script-tag build and the snippet.
  window.keystoneConfig = { src: "/keystone.global.js", segments: "/segments.json" };
  const g = await window.keystone?.init();
  const direct: boolean | undefined = window.keystone?.inSegment("shoe_fans");
  const K = window.keystone?.KeystoneError;
  const isError = (e: unknown) => !!K && e instanceof K;
  // @ts-expect-error: persistNow is the module instance's, not window.keystone's
  window.keystone?.persistNow();
  // on/off chain on window.keystone itself (which has init, and no persistNow).
  const chained = window.keystone?.on("reset", () => {}).off("reset", () => {});
  void chained?.init;
  // @ts-expect-error: what on() returns is window.keystone, not the module instance
  window.keystone?.on("reset", () => {}).persistNow();
  void [g, direct, isError];

  // @ts-expect-error: listener payloads are typed by event name
  ks.on("segment:enter", ({ userId }: { userId: string }) => userId);
  // @ts-expect-error: durations are an integer and a unit
  await Keystone.init({ sessionTimeout: "30 minutes" });
  // @ts-expect-error: an integer, as the engine reads it ("1.5d" rejects init)
  await Keystone.init({ retention: "1.5d" });
  // @ts-expect-error: track needs an event name
  ks.track();

  // Payloads the runtime accepts: an application's interfaces and classes (no index signature),
  // optional fields, nested objects, null for none.
  interface Product { sku: string; price: number; coupon?: string; dims: { w: number } }
  class Cart { items = 2; total = 120; }
  const product: Product = { sku: "A1", price: 89, dims: { w: 3 } };
  ks.track("Product Viewed", product);
  ks.track("Order Completed", { revenue: 120, coupon: product.coupon, product });
  ks.track("Cart Viewed", new Cart());
  ks.page(null);
  ks.setTraits({ plan: undefined as "free" | "pro" | undefined, address: { city: "Lyon" } });
  await ks.identify("ada@example.com", product, null);
  // Definitions held in a variable (no `as const`), a URL object.
  const loose = { version: 1, segments: [{ id: "f", condition: { $performed: { event: "X", within: "7d" } } }], experiences: [{ id: "e", variants: [{ id: "a", cap: { count: 3, within: "7d" } }, { id: "default" }] }] };
  await ks.loadSegments(loose);
  await ks.loadSegments(new URL("/segments.json", location.href));
  // Conditions with different keys in one array (TypeScript types each key another has as an
  // optional `undefined`), in a variable and from a JSON import.
  const two = { version: 1, segments: [{ id: "fr", condition: { "context.language": "fr" } }, { id: "gold", condition: { "traits.tier": { $in: ["gold", 1, null] } } }] };
  const typed: Definitions = two;
  await Keystone.init({ segments: two });
  await ks.loadSegments(imported);
  const fromJson: Definitions = imported;
  void [typed, fromJson];
  // @ts-expect-error: a condition holds JSON, not a function
  const notJson: Definitions = { version: 1, segments: [{ id: "x", condition: { a: () => 1 } }] };
  void notJson;
  // explain() of an experience, the profile's per-event aggregates, load() with a URL object.
  const hero = ks.explain("hero");
  const why2: [string | undefined, number | undefined, string[] | undefined, boolean | undefined] = [hero?.variant, hero?.draw, hero?.eligible, hero?.variants?.[0]?.chosen];
  const views: number | undefined = profile.events["Product Viewed"]?.count;
  await Keystone.load({ wasmUrl: new URL("/assets/keystone_bg.wasm", location.href) });
  ks.on("error", (e) => {
    const code: KeystoneErrorCode = e.code;
    // @ts-expect-error: error codes are a closed list (a typo is caught)
    if (e.code === "invalid_segmnt") void code;
  });
  void [why2, views];
  // KeystoneError's constructor is (code, message?, extra?).
  const made: KeystoneError = new KeystoneError("invalid_argument", "bad input", { path: "/segments/0" });
  void made;
  // @ts-expect-error: the code is required
  new KeystoneError();
  // @ts-expect-error: properties are an object, not an array
  ks.track("X", [1, 2]);
  // @ts-expect-error: nor a Map
  ks.page(new Map());
  // @ts-expect-error: nor a string
  ks.setTraits("gold");
}
