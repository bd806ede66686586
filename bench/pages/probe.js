// Benchmark probe, loaded before the package: records every WebAssembly instance the page
// creates (to read its linear memory size) and the time spent fetching + compiling +
// instantiating wasm. Observes only; the package itself is the shipped one, unchanged.
(function () {
  var W = window.WebAssembly;
  var b = (window.__bench = { memories: [], wasmMs: 0, wasmCalls: 0, compileMs: 0, compileStart: null, compileEnd: null });
  // Compilation started ahead of init (the ESM entry compiles the engine when it is imported):
  // recorded separately, so the table can show how much of it init did not have to wait for.
  ["compileStreaming", "compile"].forEach(function (name) {
    var orig = W && W[name];
    if (typeof orig !== "function") return;
    W[name] = function () {
      var t0 = performance.now();
      if (b.compileStart == null) b.compileStart = t0;
      return orig.apply(this, arguments).then(function (m) {
        b.compileEnd = performance.now();
        b.compileMs += b.compileEnd - t0;
        return m;
      });
    };
  });
  // The package instantiates synchronously (`new WebAssembly.Instance` on the module compiled at
  // import); older builds and other loaders use the Promise forms below.
  if (W && typeof W.Instance === "function") {
    var OrigInstance = W.Instance;
    var Probed = function (module, imports) {
      var t0 = performance.now();
      var inst = new OrigInstance(module, imports);
      for (var k in inst.exports) if (inst.exports[k] instanceof W.Memory) b.memories.push(inst.exports[k]);
      b.wasmMs += performance.now() - t0;
      b.wasmCalls++;
      return inst;
    };
    Probed.prototype = OrigInstance.prototype;
    W.Instance = Probed;
  }
  ["instantiateStreaming", "instantiate"].forEach(function (name) {
    var orig = W && W[name];
    if (typeof orig !== "function") return;
    W[name] = function () {
      var t0 = performance.now();
      return orig.apply(this, arguments).then(function (r) {
        var inst = (r && r.instance) || r;
        if (inst && inst.exports) {
          for (var k in inst.exports) if (inst.exports[k] instanceof W.Memory) b.memories.push(inst.exports[k]);
        }
        b.wasmMs += performance.now() - t0;
        b.wasmCalls++;
        return r;
      });
    };
  });
})();
