/**
 * keystone-cdp — an on-device customer data platform: signals, a private visitor profile,
 * segments and identity, evaluated in the browser with WebAssembly.
 *
 * @packageDocumentation
 */

/** A JSON value as stored in traits, properties and the profile. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A duration: an integer and a unit `m`, `h`, `d` or `w` (`"30m"`, `"7d"`). */
export type Duration = `${bigint}${"m" | "h" | "d" | "w"}`;

/**
 * Event properties and traits: a plain object — an object literal, an `interface` or class
 * instance, a null-prototype object — whose values JSON can hold (nested objects and arrays
 * too; `undefined` fields are left out, a `Date` becomes its ISO text). Anything else (a
 * number, a string, an array, a `Map`, a function) is reported as `invalid_argument` and nothing
 * is recorded.
 */
export type Properties = {
  [key: string]: any;
  [Symbol.iterator]?: never;
  [Symbol.hasInstance]?: never;
  [Symbol.toPrimitive]?: never;
};

/** Consent categories (DESIGN §6). */
export interface Consent {
  /** Sending events to the collector. */
  analytics: boolean;
  /** Persisting the profile and evaluating segments. */
  personalization: boolean;
  /** Activation for ad and marketing tags (data layer). Off under Global Privacy Control. */
  marketing: boolean;
}

/** Which automatic signals are captured (all on by default but `hashChange`). */
export interface AutoCaptureOptions {
  /** The initial page view and every SPA navigation. */
  pageViews?: boolean;
  /** Also treat `hashchange` as a navigation. Default false. */
  hashChange?: boolean;
  /** Clicks on `[data-keystone-track]`. */
  clicks?: boolean;
  /** Scroll depth milestones 25/50/75/100 %. */
  scroll?: boolean;
  /** Engaged time per page (the visitor's input in the last 30 s), reported when the page is hidden or left and at an SPA navigation. */
  engagement?: boolean;
}

/**
 * A JSON value as written in definitions: an object's field may be `undefined` (left out), as
 * TypeScript types the objects of an array literal or a JSON import that have different keys.
 */
export type JsonInput = null | boolean | number | string | readonly JsonInput[] | { [key: string]: JsonInput | undefined };

/** A condition document: MongoDB-style, GrowthBook semantics, plus behavioural operators. */
export type Condition = { [pathOrOperator: string]: JsonInput | undefined };

/**
 * Segment, score and experience definitions (DESIGN §4, §13). Typed loosely enough for a plain
 * object literal held in a variable or a JSON import (`version` a number, durations strings):
 * Keystone checks them when they load (`version` must be 1, durations `"7d"`…) and rejects what
 * is wrong with its JSON path.
 */
export interface Definitions {
  version: number;
  segments: Array<{ id: string; name?: string; condition: Condition }>;
  scores?: Array<{
    id: string;
    halfLife?: string;
    rules: Array<{ event: string; where?: Condition; points: number }>;
  }>;
  /** Unknown fields are rejected (`invalid_segment`), as in segments. */
  experiences?: Array<{
    id: string;
    name?: string;
    description?: string;
    holdout?: number;
    variants: Array<{
      id: string;
      name?: string;
      description?: string;
      segment?: string;
      priority?: number;
      cap?: { count: number; within?: string };
    }>;
  }>;
  savedGroups?: { [groupId: string]: Json[] };
}

/**
 * Options of {@link Keystone.init}. From a tag manager's variables (`window.keystoneConfig`), a
 * boolean option (and a category of `consent`) may also be the text `"true"` or `"false"`, a number option its digits
 * (`"500"`), and `antiFlicker` `""` (the default wait).
 */
export interface KeystoneOptions {
  /** Segment definitions, or the URL of a JSON document holding them. */
  segments?: Definitions | string | URL;
  /**
   * Initial consent: `"opt-in"` (nothing before consent), `"opt-out"` (the default: every
   * category granted, `marketing` off under Global Privacy Control), or categories (those left
   * out as with `"opt-out"`).
   */
  consent?: "opt-in" | "opt-out" | Partial<Consent>;
  /** Collector URL for Segment-spec batches (http or https without `user:password@`, absolute or relative to the document's base URL as `fetch` resolves it, a string or a `URL`; anything else rejects `init` with `invalid_argument`); without it nothing leaves the device. */
  endpoint?: string | URL;
  /** Write key sent as HTTP Basic auth user (and in the body, for beacons); without one no `Authorization` header is sent. */
  writeKey?: string;
  /** Delivery: send a batch once this many events are queued (default 20). */
  flushAt?: number;
  /** Delivery: send queued events at the latest this many ms after the oldest was queued (default 5000). */
  flushInterval?: number;
  /** Delivery: the most events the persisted queue holds; the oldest are dropped first, drops counted and reported as a `queue_overflow` error at the 1st, 2nd, 4th, 8th… drop (default 1000; `0` or `Infinity` is the default: the queue is always bounded). */
  maxQueueEvents?: number;
  /** Delivery: the most bytes (UTF-8 JSON) the persisted queue holds (default 524288). */
  maxQueueBytes?: number;
  /** Delivery: the largest request body in bytes; never above 65536, the beacon limit (default 65536). An event larger than this (up to 64 KB) goes alone in its batch. */
  maxBatchBytes?: number;
  /** Delivery: the first retry delay in ms, doubled per failure with jitter (default 1000). */
  retryBase?: number;
  /** Delivery: the longest retry delay in ms when the collector gives no `Retry-After` (default 60000). */
  retryMax?: number;
  /** Delivery: how long (ms) `flush()` waits for the collector before rejecting with `delivery_failed` (default 10000). The request itself is not aborted and re-sent then: its batch stays owned until the collector answers or the network fails, up to 6 × `requestTimeout`, after which it is retried. */
  requestTimeout?: number;
  /** Automatic signals (on by default but `hashChange`); `false` turns all off, an object switches parts. */
  autoCapture?: boolean | AutoCaptureOptions;
  /**
   * Prefix of every storage key and cookie (default `"ks_"`). It is part of a cookie name: an
   * empty prefix, or one with a space, a control character or one of `;=,"\`, rejects `init`
   * with `invalid_argument`.
   */
  storagePrefix?: string;
  /** Cookie domain (e.g. `".example.com"`): the cookie becomes the source of truth for ids. */
  cookieDomain?: string;
  /** Inactivity that ends a session (default `"30m"`). */
  sessionTimeout?: Duration;
  /** How long behaviour is kept (default `"90d"`). */
  retention?: Duration;
  /**
   * Push to the tag manager's data layer (`true` = `window.dataLayer`, or the array's name):
   * `{event: "keystone.ready", keystoneSegments}` once ready, then
   * `{event: "keystone.segment_enter" | "keystone.segment_exit", keystoneSegment}` per change —
   * only while `marketing` consent is granted (`keystone.ready` again when it is granted later).
   */
  dataLayer?: boolean | string;
  /** Send `Segment Entered` / `Segment Exited` track events `{segment}` to the collector. */
  trackSegments?: boolean;
  /** Log each recording call, membership change and error to the console (`console.debug`). */
  debug?: boolean;
  /**
   * URL of `keystone_bg.wasm` (a relative one resolved against the document's base URL, as `fetch` would) when it is not next to the ESM entry, e.g.
   * a bundler that does not emit it (esbuild): copy the file and say where it is served.
   * Ignored by the script-tag build, which finds it next to its own script.
   */
  wasmUrl?: string | URL;
  /**
   * Anti-flicker for declarative personalization: how long (ms) elements carrying
   * `data-keystone-*` attributes may stay invisible while Keystone starts (default 1000);
   * `0` reveals them at once; `false` injects no anti-flicker style; `true` is the default wait.
   */
  antiFlicker?: number | boolean;
}

/** Options of {@link KeystoneInstance.identify}. */
export interface IdentifyOptions {
  /**
   * The site's own user id, used instead of the email's SHA-256: a non-empty string, or a finite
   * number (a CRM's numeric key), which becomes its decimal text as `String(n)` gives it
   * (`12345` → `"12345"`; `userId()` is always a string). `NaN`, `±Infinity` and other types
   * reject with `invalid_argument`.
   */
  userId?: string | number;
  /** Opt-in: keep the normalized email as the `email` trait (stored and sent). Default false. */
  storeEmail?: boolean;
}

/** The profile document that conditions see (DESIGN §3). */
export interface Profile {
  /** `null` while no consent needs one and none is stored (a first visit in opt-in before
   * consent, after `forget()`); a returning visitor's stored id is read before consent, never
   * written or sent. */
  anonymousId: string | null;
  userId: string | null;
  identified: boolean;
  traits: { [key: string]: Json };
  context: {
    url: string; path: string; host: string; title: string; referrer: string; referrerHost: string;
    utm: { source: string; medium: string; campaign: string; term: string; content: string };
    language: string; timezone: string; device: "mobile" | "tablet" | "desktop";
    /** The URL's query string (`"?utm_source=…"`, or `""`). */
    search: string;
  };
  /** The current session; `id` and `startedAt` (ISO) are `""` before the first event. */
  session: { id: string; count: number; pageviews: number; startedAt: string; durationSec: number };
  firstSeen: string;
  lastSeen: string;
  /** Decaying scores as read by conditions: rounded to 2 decimals. */
  scores: { [scoreId: string]: number };
  segments: string[];
  consent: Consent;
  /** Anonymous ids linked to the known identity on this device (oldest first); empty while anonymous. */
  linkedAnonymousIds: string[];
  /** Per event name kept (at most 256): its count within the retention, its first and last time (ISO). */
  events: { [eventName: string]: { count: number; firstAt: string; lastAt: string } };
  /** Fields a later version may add. */
  [key: string]: unknown;
}

/** A node of {@link KeystoneInstance.explain}'s tree. */
export interface ExplainNode {
  /** The operator or path of this node. */
  op: string;
  /** Whether the node held. */
  result: boolean;
  /** The observed value (count, sum, score, attribute). */
  value?: Json;
  /** The expected value or condition. */
  expected?: Json;
  /** `$performed` with an aggregate (`sum`…): the count in the window, which must also hold. */
  count?: number;
  /** `$performed` with an aggregate: the count condition (`{"$gte": 1}` by default). */
  countExpected?: Json;
  /** Sub-conditions. */
  children?: ExplainNode[];
}

/** A variant as {@link KeystoneInstance.explain} shows it for an experience. */
export interface ExplainedVariant {
  id: string;
  /** The segment the variant needs, or null (every visitor is eligible). */
  segment: string | null;
  /** Whether the visitor holds that segment (true for a variant without one). */
  inSegment: boolean;
  priority: number;
  /** Its frequency cap, when it has one, as written (`within` is `""` when it defaults to the retention). */
  cap?: { count: number; within: string };
  /** With a cap: the exposures counted in its window. */
  seen?: number;
  /** With a cap: whether it is reached. */
  capped?: boolean;
  /** Segment held and cap not reached. */
  eligible: boolean;
  /** The variant decided. */
  chosen: boolean;
}

/**
 * The answer of {@link KeystoneInstance.explain}: for a segment `{id, kind: "segment", name,
 * result, tree}`, for an experience `{id, kind: "experience", result, variant, holdout, draw,
 * holdoutFraction, eligible, capped, variants}`.
 */
export interface Explanation {
  id: string;
  kind: "segment" | "experience";
  /** Segment: whether the visitor is in it. Experience: false in the holdout. */
  result: boolean;
  /** Segment: its name (its id when it has none). */
  name?: string;
  /** Segment: the condition tree with each node's result. */
  tree?: ExplainNode;
  /** Segment, without personalization consent: `result` is false (no segment is evaluated) and
   * `tree` shows what the condition would give. */
  reason?: string;
  /** Experience: the variant decided. */
  variant?: string;
  /** Experience: in the holdout group (then `variant` is the last one). */
  holdout?: boolean;
  /** Experience: the visitor's stable draw in [0, 1); in the holdout when below `holdoutFraction`. */
  draw?: number;
  /** Experience: its `holdout` fraction. */
  holdoutFraction?: number;
  /** Experience: ids of the eligible variants. */
  eligible?: string[];
  /** Experience: ids of the variants whose cap is reached. */
  capped?: string[];
  /** Experience: every variant, in document order. */
  variants?: ExplainedVariant[];
}

/** The answer of {@link KeystoneInstance.decide}. */
export interface Decision {
  /** The experience id. */
  experience: string;
  /** The variant to show: the eligible one of highest priority, else the last one. */
  variant: string;
  /** In the holdout group (stable per identity and experience): `variant` is the last one. */
  holdout: boolean;
}

/**
 * The stable codes of {@link KeystoneError} (README "Error codes"): what an `error` listener or a
 * rejected Promise can carry.
 */
export type KeystoneErrorCode =
  | "invalid_argument"
  | "invalid_email"
  | "invalid_definitions"
  | "invalid_segment"
  | "unknown_id"
  | "definitions_fetch_failed"
  | "wasm_load_failed"
  | "load_failed"
  | "unsupported_environment"
  | "storage_unavailable"
  | "storage_corrupt"
  | "queue_overflow"
  | "event_too_large"
  | "delivery_failed"
  | "delivery_rejected"
  | "internal"
  | "internal_trap";

/** Errors reported by Keystone: a real `Error` with a stable `code`. */
export declare class KeystoneError extends Error {
  /** `message` defaults to the code. */
  constructor(code: KeystoneErrorCode, message?: string, extra?: { segmentId?: string; path?: string });
  /** Stable code, e.g. `"invalid_argument"`, `"invalid_segment"`, `"storage_unavailable"`. */
  readonly code: KeystoneErrorCode;
  /** For definition errors: the id of the rejected segment, score or experience. */
  readonly segmentId?: string;
  /** For definition errors (and `invalid_definitions`): a JSON pointer to the fault in the definitions document. */
  readonly path?: string;
}

/** Listener payloads by event name. */
export interface KeystoneEvents {
  "segment:enter": { segment: string };
  "segment:exit": { segment: string };
  identify: { userId: string };
  /** `anonymousId` is `null` when no consent needs an id (opt-in before consent, after `forget()`). */
  reset: { anonymousId: string | null };
  error: KeystoneError;
}

/** A running Keystone (what {@link Keystone.init} resolves with). */
export interface KeystoneInstance {
  /**
   * Records a page view; the context (url, referrer, UTM…) is captured. String `name` and
   * `category` properties are also sent top-level (Segment spec); string `url`, `path`, `title`
   * and `referrer` properties make a virtual page view: they are the context from then on.
   * @example ks.page({ name: "Shoes", category: "Catalog" });
   */
  page(properties?: Properties | null): void;
  /**
   * Records a named event. Segments see it before this returns.
   * @example ks.track("Product Viewed", { category: "shoes", price: 89 });
   */
  track(event: string, properties?: Properties | null): void;
  /**
   * Login: the email is trimmed, lower-cased and hashed with SHA-256 on the device; `userId()`
   * becomes that hash (or `options.userId`, a number as its decimal text). From anonymous, the anonymous profile merges into
   * the known one (and its copy set aside on this device); from another known user, that
   * profile is set aside and a new anonymous id starts. Applied and stored before the call
   * returns; rejects with `invalid_email` (changing nothing) on a malformed address. The raw
   * email is never stored or sent unless `options.storeEmail` is true.
   * @example await ks.identify("ada@example.com", { tier: "gold" });
   * @example await ks.identify("ada@example.com", {}, { userId: 12345 }); // userId() === "12345"
   */
  identify(email: string, traits?: Properties | null, options?: IdentifyOptions | null): Promise<void>;
  /**
   * Logout: the current profile is set aside; a new anonymous id and an empty profile start.
   * @example ks.reset();
   */
  reset(): void;
  /**
   * Merges traits into the current profile.
   * @example ks.setTraits({ firstName: "Ada" });
   */
  setTraits(traits?: Properties | null): void;
  /**
   * Merges the named consent categories into the current state; the site's other open tabs
   * apply the same categories at once. Auto-capture's view of the current page, if no consent
   * allowed to record it, is recorded once consent allows it. An unknown category is ignored
   * with a console warning `unknown_option`.
   * @example await ks.setConsent({ analytics: true, marketing: false });
   */
  setConsent(consent: Partial<Consent>): Promise<void>;
  /**
   * Erases every key and cookie Keystone stored on this device and withdraws all consent; the
   * site's other open tabs forget too. While another tab of the site is open (or where Web
   * Locks are missing), leaves one cookie for 2 s, `{storagePrefix}fg`, holding the time of the
   * forget() only: a tab that has not heard of it yet reads it before it writes. In the only tab,
   * nothing is left once the Promise resolves.
   * With `cookieDomain` that cookie is set on the domain and kept a year: every subdomain erases
   * what it stored before the forget() when it reads it.
   * @example await ks.forget();
   */
  forget(): Promise<void>;
  /**
   * Replaces segment, score and experience definitions (object or URL). Invalid definitions are
   * rejected one by one; the valid ones load. A URL that fails rejects with
   * `definitions_fetch_failed` (the previous definitions stay).
   * @example const { loaded, rejected } = await ks.loadSegments("/segments.json");
   */
  loadSegments(definitions: Definitions | string | URL): Promise<{ loaded: string[]; rejected: KeystoneError[] }>;
  /**
   * Ids of the segments the visitor is in now, sorted as `[...ids].sort()` sorts (UTF-16 code units).
   * @example ks.segments(); // ["shoe_fans"]
   */
  segments(): string[];
  /**
   * Whether the visitor is in a segment now.
   * @example if (ks.inSegment("shoe_fans")) showShoes();
   */
  inSegment(id: string): boolean;
  /**
   * Why the visitor is or is not in a segment (or what an experience decided).
   * Unknown ids answer null (and an `unknown_id` error).
   * @example console.log(ks.explain("shoe_fans")?.tree);
   */
  explain(id: string): Explanation | null;
  /**
   * Which variant of an experience to show (priority, caps, holdout); records the exposure once
   * per page view (the first call with `analytics` or `personalization` consent). An unknown id
   * (an experience not defined, or definitions that failed to load) answers null, with an
   * `unknown_id` error.
   * @example const variant = ks.decide("hero")?.variant ?? "default";
   */
  decide(experienceId: string): Decision | null;
  /**
   * The profile document, a plain object copy; null only when there is no engine to ask
   * (`window.keystone` before it is ready, or an engine switched off after repeated failures).
   * @example ks.profile()?.traits.tier;
   */
  profile(): Profile | null;
  /**
   * The anonymous id (UUID v4); null while no consent allows one and none is stored (a first
   * visit in opt-in before consent, after `forget()`). A returning visitor's stored id (and
   * profile) is read before consent, never written or sent; no segment is evaluated without
   * `personalization`.
   * @example ks.anonymousId();
   */
  anonymousId(): string | null;
  /**
   * The known user id (the email's SHA-256 unless the site passed its own), null while anonymous.
   * @example ks.userId();
   */
  userId(): string | null;
  /**
   * Subscribes to a Keystone event. Listeners run before the call that caused them returns, once
   * Keystone is done with it, in the order the changes happened (a listener may call Keystone
   * again: that call's changes are heard after the ones before them); a listener that throws
   * does not stop the others. A read (`segments()`, `inSegment()`, `profile()`, `explain()`,
   * `decide()`) that first records a pending SPA navigation's view or a passed window calls
   * those listeners a microtask after it returns (a read in a component's render runs none).
   * @example ks.on("segment:enter", ({ segment }) => console.log("entered", segment));
   */
  on<K extends keyof KeystoneEvents>(eventName: K, callback: (payload: KeystoneEvents[K]) => void): KeystoneInstance;
  /**
   * Removes a listener.
   * @example ks.off("segment:enter", handler);
   */
  off<K extends keyof KeystoneEvents>(eventName: K, callback: (payload: KeystoneEvents[K]) => void): KeystoneInstance;
  /**
   * Delivers queued events now; resolves once the collector accepted them (at once without an
   * `endpoint`). Rejects with `delivery_failed` (network, `408`, `429`, `5xx`, no answer within
   * `requestTimeout`) or `delivery_rejected` (another `4xx`) when that attempt failed; retries go
   * on in the background.
   * @example await ks.flush();
   */
  flush(): Promise<void>;
  /**
   * Re-evaluates time-windowed segments now.
   * @example ks.refresh();
   */
  refresh(): void;
  /**
   * Writes pending profile changes to storage now (they are otherwise written within 500 ms,
   * and at once when the page is hidden or left).
   * @example ks.persistNow();
   */
  persistNow(): void;
  /**
   * The module's {@link Keystone.evalCondition}, for convenience.
   * @example ks.evalCondition({ plan: "pro" }, { plan: { $in: ["pro", "team"] } }); // true
   */
  evalCondition(attributes: { [key: string]: Json }, condition: Condition, savedGroups?: { [id: string]: Json[] }): boolean;
}

/** The entry point. */
export declare const Keystone: {
  /**
   * Loads the engine, restores the stored profile and evaluates segments. Safe to call twice
   * (the second call resolves with the same instance; options that differ from the first
   * call's are not applied, and a console warning `already_initialized` says so). Options that
   * are not a plain object, or an option of the wrong type, reject with `invalid_argument`; an
   * unknown option or consent category (a typo) is kept out with a console warning
   * `unknown_option`. Rejects with `wasm_load_failed` when the wasm cannot be loaded or has not
   * arrived within 15 s (a server that never answers); a
   * `segments` URL that fails does not reject: `definitions_fetch_failed` comes as an `error`
   * event. Where there is no web page (a Web Worker, a server) it rejects with
   * `unsupported_environment`; {@link Keystone.load} and `evalCondition` work there. One
   * Keystone per page: when another copy of Keystone started first on the page (the script-tag
   * build of a tag manager, another bundle, this module from another URL), resolves with that
   * copy's instance (`already_initialized` when the options differ; a copy of another version
   * warns `version_mismatch` once).
   * @example
   * import { Keystone } from "keystone-cdp";
   * const ks = await Keystone.init({ segments: "/segments.json" });
   */
  init(options?: KeystoneOptions): Promise<KeystoneInstance>;
  /**
   * Loads the wasm engine only (no profile, no storage), so {@link Keystone.evalCondition} can be
   * used without `init`. `init` loads it too. Rejects with `wasm_load_failed` when the wasm
   * cannot be fetched or compiled.
   * @example await Keystone.load(); Keystone.evalCondition({ plan: "pro" }, { plan: "pro" });
   */
  load(options?: { wasmUrl?: string | URL }): Promise<void>;
  /**
   * GrowthBook-compatible condition evaluation (same argument order as GrowthBook's
   * `evalCondition`), synchronous, run in wasm. Needs the engine: after `Keystone.load()` or
   * `Keystone.init()` resolved; before that it returns false and warns `not_ready` (never throws).
   * @example Keystone.evalCondition({ country: "FR" }, { country: { $in: ["FR", "DE"] } }); // true
   */
  evalCondition(attributes: { [key: string]: Json }, condition: Condition, savedGroups?: { [id: string]: Json[] }): boolean;
};

/**
 * GrowthBook-compatible `evalCondition(attributes, condition, savedGroups?)` — the same function as
 * {@link Keystone.evalCondition}, as a named export (a drop-in for GrowthBook's).
 * @example import { Keystone, evalCondition } from "keystone-cdp"; await Keystone.load(); evalCondition({ a: 1 }, { a: { $gt: 0 } });
 */
export declare function evalCondition(attributes: { [key: string]: Json }, condition: Condition, savedGroups?: { [id: string]: Json[] }): boolean;

/** `window.keystoneConfig`: the settings of the tag-manager snippet and the script-tag build. */
export interface KeystoneConfig extends KeystoneOptions {
  /** URL of `keystone.global.js` (the snippet loads it; default: next to `snippet.js`, or `/keystone.global.js` when the snippet is inlined). */
  src?: string;
}

/**
 * `window.keystone` as defined by `keystone.global.js` (or the snippet's stub before it loads):
 * the instance methods plus `init`. Calls made before it is ready are queued and replayed in
 * order, their events carrying the time and page of the call (Promise-returning calls settle
 * once replayed; `on`/`off` return `window.keystone`);
 * queries made before it is ready answer the empty state (`segments()` `[]`, `inSegment()`
 * `false`, `profile()`, `explain()`, `decide()`, `anonymousId()`, `userId()` `null`). Once
 * ready every call is answered directly, on the same object.
 */
export interface KeystoneGlobal extends Omit<KeystoneInstance, "persistNow" | "on" | "off"> {
  /**
   * Subscribes to a Keystone event, as {@link KeystoneInstance.on}; returns `window.keystone`
   * (also on the snippet's stub), so calls chain.
   * @example window.keystone?.on("segment:enter", ({ segment }) => console.log(segment)).on("segment:exit", console.log);
   */
  on<K extends keyof KeystoneEvents>(eventName: K, callback: (payload: KeystoneEvents[K]) => void): KeystoneGlobal;
  /**
   * Removes a listener; returns `window.keystone`.
   * @example window.keystone?.off("segment:enter", handler);
   */
  off<K extends keyof KeystoneEvents>(eventName: K, callback: (payload: KeystoneEvents[K]) => void): KeystoneGlobal;
  /**
   * The error class (for `instanceof` checks in pages without a module import); absent on the
   * snippet's stub until the script has loaded (its `load_failed` error — the script could
   * not load, or has not arrived within 15 s — is a plain `Error` named "KeystoneError" with a
   * `code`).
   */
  KeystoneError?: typeof KeystoneError;
  /**
   * Starts Keystone (runs by itself when `window.keystoneConfig` is set); resolves with the
   * instance. Later calls resolve with the same instance.
   * @example await window.keystone?.init({ segments: "/segments.json" });
   */
  init(options?: KeystoneOptions): Promise<KeystoneInstance>;
  /**
   * GrowthBook-compatible condition evaluation; see {@link Keystone.evalCondition}. On the
   * snippet's stub, before the script has loaded, it answers false.
   * @example window.keystone?.evalCondition({ plan: "pro" }, { plan: { $in: ["pro", "team"] } });
   */
  evalCondition(attributes: { [key: string]: Json }, condition: Condition, savedGroups?: { [id: string]: Json[] }): boolean;
}

declare global {
  interface Window {
    /** Keystone from the script-tag build or the tag-manager snippet. */
    keystone?: KeystoneGlobal;
    /** Settings read by the snippet and the script-tag build. */
    keystoneConfig?: KeystoneConfig;
  }
}

export default Keystone;
