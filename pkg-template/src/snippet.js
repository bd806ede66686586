// Keystone tag-manager snippet: defines window.keystone as a stub that queues every call (each
// returns a Promise that settles once the call is replayed), then loads keystone.global.js
// asynchronously from window.keystoneConfig.src (default: next to this file when loaded as a
// file). If the script cannot load, the queued Promise-returning calls reject with code
// "load_failed" (the others resolve with undefined).
(function (w, d) {
  var k = (w.keystone = w.keystone || {});
  if (k.__keystone || k.q) return;
  var q = (k.q = []);
  "init page track identify reset setTraits setConsent forget loadSegments segments inSegment explain decide profile anonymousId userId on off flush refresh evalCondition"
    .split(" ")
    .forEach(function (m) {
      k[m] = function () {
        var e = { m: m, a: [].slice.call(arguments) };
        var p = new Promise(function (r, j) {
          e.r = r;
          e.j = j;
        });
        q.push(e);
        return p;
      };
    });
  var c = w.keystoneConfig || {};
  var me = d.currentScript;
  var s = d.createElement("script");
  s.async = true;
  s.src = c.src || (me && me.src ? me.src.replace(/[^/]*$/, "keystone.global.js") : "/keystone.global.js");
  s.onerror = function () {
    var e = new Error("could not load " + s.src);
    e.name = "KeystoneError";
    e.code = "load_failed";
    q.splice(0).forEach(function (x) {
      / (init|identify|loadSegments|setConsent|forget|flush) /.test(" " + x.m + " ") ? x.j(e) : x.r();
    });
  };
  (d.head || d.documentElement).appendChild(s);
})(window, document);
