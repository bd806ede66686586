// Strict-CSP test page (ESM): init with definitions, then expose the instance.
import { Keystone } from "/pkg/dist/keystone.js";

const defs = { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] };
Keystone.init({ segments: defs, endpoint: "/v1/batch", writeKey: "demo-key" }).then(
  (ks) => (window.ks = ks),
  (e) => (window.ksError = e.code),
);
