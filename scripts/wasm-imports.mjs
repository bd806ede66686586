// Shortens the import names of the wasm-bindgen output. wasm-bindgen names each import
// `__wbg_<name>_<16 hex hash>` under the module "./keystone_bg.js"; the names appear once in the
// wasm and once in the JS glue, and their hashes do not compress. Renaming them to "a", "b", …
// (and the module to "k") in both files saves ~0.5 KB gzip for every visitor.
// The export names go the same way: the glue reads each as a property of the instance's exports
// (`wasm.__wbindgen_malloc`, a dozen times), which no minifier may shorten.

/** Reads a LEB128 at `pos` (unsigned; signed when `signed`): [value, next position]. */
export function uleb(buf, pos, signed = false) {
  let v = 0, shift = 0, b;
  do {
    b = buf[pos++];
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  if (signed && b & 0x40) v -= 2 ** shift;
  return [v, pos];
}

export function encodeUleb(v) {
  const out = [];
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

const shortName = (i) => {
  const abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let s = "";
  do {
    s += abc[i % abc.length];
    i = Math.floor(i / abc.length) - 1;
  } while (i >= 0);
  return s;
};

/**
 * `wasm` (a Buffer) with the payload of each section `id` replaced by what
 * `rewrite(start, end)` returns for it (the payload spans wasm[start, end)).
 */
function rewriteSection(wasm, id, rewrite) {
  if (wasm.readUInt32LE(0) !== 0x6d736100) throw new Error("not a wasm module");
  const parts = [wasm.subarray(0, 8)];
  let pos = 8;
  while (pos < wasm.length) {
    const [size, start] = uleb(wasm, pos + 1);
    const end = start + size;
    if (wasm[pos] === id) {
      const payload = rewrite(start, end);
      parts.push(Buffer.from([id]), encodeUleb(payload.length), payload);
    } else parts.push(wasm.subarray(pos, end));
    pos = end;
  }
  return Buffer.concat(parts);
}

/**
 * Renames the imports of module `from` in `wasm` (a Buffer). Returns the new wasm and the
 * renaming ({module: [old, new], names: Map old → new}).
 */
export function minifyImports(wasm, from = "./keystone_bg.js", to = "k") {
  const names = new Map();
  // The import section: vec of (module, name, kind, description).
  const out = rewriteSection(wasm, 2, (start, end) => {
    let p = start;
    const [count, p0] = uleb(wasm, p);
    p = p0;
    const body = [encodeUleb(count)];
    const str = () => {
      const [len, q] = uleb(wasm, p);
      p = q + len;
      return wasm.subarray(q, q + len).toString("utf8");
    };
    const put = (s) => body.push(encodeUleb(Buffer.byteLength(s)), Buffer.from(s));
    for (let i = 0; i < count; i++) {
      const mod = str();
      const name = str();
      const descStart = p;
      const kind = wasm[p++];
      if (kind === 0) p = uleb(wasm, p)[1]; // function: type index
      else if (kind === 1 || kind === 2) {
        if (kind === 1) p++; // table: reference type
        const [flags, q] = uleb(wasm, p);
        p = uleb(wasm, q)[1];
        if (flags & 1) p = uleb(wasm, p)[1];
      } else if (kind === 3) p += 2; // global: value type, mutability
      else throw new Error("unexpected import kind " + kind);
      if (mod === from) {
        if (!names.has(name)) names.set(name, shortName(names.size));
        put(to);
        put(names.get(name));
      } else {
        put(mod);
        put(name);
      }
      body.push(wasm.subarray(descStart, p));
    }
    if (p !== end) throw new Error("import section not fully read");
    return Buffer.concat(body);
  });
  return { wasm: out, module: [from, to], names };
}

/**
 * Renames every export of `wasm` (a Buffer) to "a", "b", …. Returns the new wasm and the renaming
 * (`exports`: Map old → new).
 */
export function minifyExports(wasm) {
  const exports = new Map();
  // The export section: vec of (name, kind, index).
  const out = rewriteSection(wasm, 7, (start, end) => {
    let [count, p] = uleb(wasm, start);
    const body = [encodeUleb(count)];
    for (let i = 0; i < count; i++) {
      const [len, q] = uleb(wasm, p);
      const name = wasm.subarray(q, q + len).toString("utf8");
      const descStart = q + len;
      p = uleb(wasm, descStart + 1)[1]; // kind byte, then the index
      const short = shortName(i);
      exports.set(name, short);
      body.push(encodeUleb(short.length), Buffer.from(short), wasm.subarray(descStart, p));
    }
    if (p !== end) throw new Error("export section not fully read");
    return Buffer.concat(body);
  });
  return { wasm: out, exports };
}

/** Applies the renamings to the wasm-bindgen JS glue. */
export function renameInGlue(glue, { module: [from, to], names }, exports = new Map()) {
  let out = glue.split(JSON.stringify(from)).join(JSON.stringify(to));
  for (const [old, short] of names) {
    const re = new RegExp("\\b" + old + "\\b", "g");
    const before = out;
    out = out.replace(re, short);
    if (out === before) throw new Error("import " + old + " not found in the glue");
  }
  // The glue reaches the exports only as `wasm.<name>` (`wasm` is the instance's exports); an
  // export it does not read is renamed all the same.
  out = out.replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (m, name) => {
    if (!exports.size) return m;
    if (!exports.has(name)) throw new Error("the glue reads an export the wasm lacks: " + name);
    return "wasm." + exports.get(name);
  });
  if (exports.size && /\bwasm\[/.test(out)) throw new Error("the glue reads an export by a computed name");
  return out;
}
