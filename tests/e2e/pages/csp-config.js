// Strict-CSP test page (script tag): settings for keystone.global.js's auto-init.
window.keystoneConfig = { segments: { version: 1, segments: [{ id: "viewers", condition: { $performed: { event: "Product Viewed" } } }] } };
