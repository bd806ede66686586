// Keystone tag-manager snippet: defines window.keystone as a stub that queues every call with
// an effect (those that return Promises get one that settles once the call is replayed; on/off
// return the stub), answers the queries with the empty state (segments() [], inSegment() false,
// the others null), then loads keystone.global.js asynchronously from window.keystoneConfig.src
// (default: next to this file when loaded as a file), which upgrades this same object in place.
// If the script cannot load, or has not arrived within 15 s, the queued Promises, and those of
// later calls, reject with code "load_failed".
// The time, URL and title of the page are noted when the snippet runs (`l`: the page view
// auto-capture records is this one) and with each queued call (`c`): what a call records carries
// the time and page it was made on, not those of its replay, and its arguments as they were.
(function (w, d) {
  var k = (w.keystone = w.keystone || {});
  if (k.__keystone || k.q) return;
  var q = (k.q = []);
  var Q = w.Promise; // as it is now: the page may replace it before Keystone is loaded
  var at = function () {
    return [Date.now(), d.URL, d.title];
  };
  k.l = at();
  var P = / (init|identify|loadSegments|setConsent|forget|flush) /;
  var x; // the load failure
  "init page track identify reset setTraits setConsent forget loadSegments segments inSegment explain decide profile anonymousId userId on off flush refresh evalCondition"
    .split(" ")
    .forEach(function (m, i) {
      k[m] = function () {
        if (i > 8 && i < 16) return m == "segments" ? [] : m == "inSegment" ? !1 : null;
        if (m == "evalCondition") return !1;
        // After a load failure: Promises reject, nothing more is queued (a long-lived page).
        if (x) return P.test(" " + m + " ") ? Q.reject(x) : m == "on" || m == "off" ? k : void 0;
        var a = [].slice.call(arguments);
        // Object literals as they are now (their JSON, what the call would record): the page
        // may change the object it passed before the replay (one object reused for several
        // calls); also one without prototype (Object.create(null), as query-string parsers
        // make). Anything else (a function, a class instance, a Map) is kept as given.
        // (Arrays as arrays where a Prototype.js `Array.prototype.toJSON` makes them strings:
        // the replacer is given what `toJSON` returned, and its holder the array.)
        for (var n = 0, o; n < a.length; n++)
          try {
            o = Object.getPrototypeOf(a[n]);
            if (!o || o == Object.prototype)
              a[n] = JSON.parse(
                JSON.stringify(a[n], function (k, v) {
                  return Array.isArray(this[k]) ? this[k] : v;
                })
              );
          } catch (_) {}
        var e = { m: m, a: a, c: at() };
        var p = new Q(function (r, j) {
          e.r = r;
          e.j = j;
        });
        q.push(e);
        return P.test(" " + m + " ") ? p : m == "on" || m == "off" ? k : void 0;
      };
    });
  var c = w.keystoneConfig || {};
  var me = d.currentScript;
  var s = d.createElement("script");
  s.async = true;
  s.onerror = function () {
    var e = (x = new Error("could not load " + s.src));
    e.name = "KeystoneError";
    e.code = "load_failed";
    q.splice(0).forEach(function (x) {
      P.test(" " + x.m + " ") ? x.j(e) : x.r();
    });
  };
  // A server that never answers: the load counts as failed after 15 s (if the script comes
  // later, it still starts Keystone).
  setTimeout(function () {
    k.__keystone || x || s.onerror();
  }, 15e3);
  // A page that enforces Trusted Types without a default policy refuses a plain URL here: the
  // load fails as above instead of throwing into the page.
  try {
    s.src = c.src || (me && me.src ? me.src.replace(/[^/]*$/, "keystone.global.js") : "/keystone.global.js");
    (d.head || d.documentElement).appendChild(s);
  } catch (e) {
    s.onerror();
  }
})(window, document);
