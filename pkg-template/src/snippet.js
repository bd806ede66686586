// Keystone tag-manager snippet: defines window.keystone as a stub that queues every call
// (Promise-returning calls return Promises that settle once replayed), then loads
// keystone.global.js asynchronously from window.keystoneConfig.src.
(function (w, d) {
  var k = (w.keystone = w.keystone || {});
  if (k.__keystone || k.q) return;
  k.q = [];
  "init page track identify reset setTraits setConsent forget loadSegments segments inSegment explain decide profile anonymousId userId on off flush refresh evalCondition"
    .split(" ")
    .forEach(function (m) {
      k[m] = function () {
        var e = { m: m, a: [].slice.call(arguments) };
        var p = new Promise(function (r, j) {
          e.r = r;
          e.j = j;
        });
        k.q.push(e);
        return p;
      };
    });
  var c = w.keystoneConfig || {};
  var s = d.createElement("script");
  s.async = true;
  s.src = c.src || "/keystone.global.js";
  (d.head || d.documentElement).appendChild(s);
})(window, document);
