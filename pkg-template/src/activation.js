// Data layer activation (DESIGN §13): with the `dataLayer` option (true = `window.dataLayer`, or
// the name of the array), segment membership is pushed to the page's data layer, the array tag
// managers read: `{event: "keystone.ready", keystoneSegments}` once ready, then
// `{event: "keystone.segment_enter" | "keystone.segment_exit", keystoneSegment}` per change, in
// order — only while `marketing` consent is granted. When marketing is granted later (or again
// after a withdrawal), `keystone.ready` is pushed then, with the segments held at that moment,
// so tags resynchronise; changes made while it was withheld are never pushed.
// Pushes go through the array's own `push`, so a tag manager's wrapped `push` sees them.

/** Returns the after-call hook, or null when the option is off. */
export function dataLayer(option, segments) {
  if (!option) return null;
  const name = option === true ? "dataLayer" : String(option);
  let ready = false;
  const push = (o) => {
    try {
      // (Assigned only when missing: the page's own binding may be read-only, or a setter.)
      (window[name] ||= []).push(o);
    } catch (_) {
      // A failing tag manager must not break Keystone or the page.
    }
  };
  return (notes) => {
    if (!notes.m) return void (ready = false);
    if (!ready) {
      ready = true;
      return push({ event: "keystone.ready", keystoneSegments: segments() });
    }
    for (const n of notes.n) {
      if (n.type.startsWith("segment:")) push({ event: "keystone." + n.type.replace(":", "_"), keystoneSegment: n.segment });
    }
  };
}
