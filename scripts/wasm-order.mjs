// Lays out the functions of the optimized wasm for gzip (run by `make wasm` after wasm-opt).
//
// gzip finds repeats only within its last 32 KB, so the order of the functions in the code
// section decides how much of each one compresses against code like it. rustc, LLVM and wasm-opt
// leave an order that ignores this. The module's code is therefore reordered:
//   - first the 16 functions called from the most call sites (a call encodes its callee's index
//     as LEB128, one byte below 128, so those get one-byte indices);
//   - then, one at a time, the function whose byte 6-grams are most covered by the 6-grams of
//     the code placed in the last 32 KB (the share of its distinct 6-grams found there, counted
//     as if it had 8 more of them, all found: a function of a few 6-grams is not taken as fully
//     covered by chance; ties go to the lower index), i.e. the function that compresses best
//     against what gzip can still see. (The 8: 63 B gzip less on this build than the plain share,
//     and 36 to 94 B less on four variants of it from other wasm-opt flags; 2 to 12 all gained,
//     8 most.)
//   - then neighbours swapped where gzip -9 itself says the module is smaller ({@link refine}).
// Only indices change: every instruction stays as it is (the traps the wrapper's trap isolation
// relies on included); calls, `ref.func`, exports, the table's elements and the start function are
// renumbered. Deterministic: the same module gives the same bytes (with the same zlib: Node's).
// Measured on the module of the README's "Size" section: 50,894 → 50,263 B gzip -9 (−631 B) and
// 45,073 → 44,557 B brotli (−516 B); raw −918 B.
// Then the data segments that lie within 32 B of each other are merged ({@link mergeData}: 12 → 3
// segments, −43 B gzip), the initial memory checked to be the same byte for byte.
//
//   node scripts/wasm-order.mjs <in.wasm> <out.wasm>
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { uleb, encodeUleb } from "./wasm-imports.mjs";

/** The sections of `wasm`: {id, start, end, hdr} (payload spans [start, end)). */
export function sections(wasm) {
  const out = [];
  let pos = 8;
  while (pos < wasm.length) {
    const [size, start] = uleb(wasm, pos + 1);
    out.push({ id: wasm[pos], start, end: start + size, hdr: pos });
    pos = start + size;
  }
  return out;
}

/** Number of imported functions. */
export function importedFunctions(wasm) {
  const s = sections(wasm).find((s) => s.id === 2);
  if (!s) return 0;
  let [n, p] = uleb(wasm, s.start);
  let fns = 0, len;
  for (let i = 0; i < n; i++) {
    [len, p] = uleb(wasm, p); p += len;
    [len, p] = uleb(wasm, p); p += len;
    const kind = wasm[p++];
    if (kind === 0) { fns++; p = uleb(wasm, p)[1]; }
    else if (kind === 1) { p++; const fl = wasm[p++]; p = uleb(wasm, p)[1]; if (fl & 1) p = uleb(wasm, p)[1]; }
    else if (kind === 2) { const fl = wasm[p++]; p = uleb(wasm, p)[1]; if (fl & 1) p = uleb(wasm, p)[1]; }
    else if (kind === 3) p += 2;
    else throw new Error("import kind " + kind);
  }
  return fns;
}

/** The function bodies (code section entries, without their size prefix). */
export function bodies(wasm) {
  const c = sections(wasm).find((s) => s.id === 10);
  let [n, p] = uleb(wasm, c.start);
  const out = [];
  for (let i = 0; i < n; i++) {
    const [size, q] = uleb(wasm, p);
    out.push(wasm.subarray(q, q + size));
    p = q + size;
  }
  return out;
}

/**
 * Walks the instructions of a function body from `p` to `end`, calling `onFunc(pos, next)` for
 * every function index immediate (call, return_call, ref.func) spanning [pos, next). Throws on an
 * opcode it does not know and when the body's blocks do not close exactly at its last byte (a
 * misread immediate would put the walk out of step).
 */
function walk(code, p, end, onFunc) {
  const skip = (q) => uleb(code, q)[1];
  const blockType = (q) => {
    const b = code[q];
    if (b === 0x40 || (b >= 0x6f && b <= 0x7f) || b === 0x63 || b === 0x64) return typeEnd(code, q);
    return uleb(code, q, true)[1]; // a type index
  };
  let depth = 0;
  while (p < end) {
    const op = code[p++];
    if (op === 0x0b && depth-- === 0) {
      if (p !== end) throw new Error("function body ends before its last byte");
      return;
    }
    if (op === 0x02 || op === 0x03 || op === 0x04) { p = blockType(p); depth++; }
    else if (op === 0x0c || op === 0x0d) p = skip(p);
    else if (op === 0x0e) { let n; [n, p] = uleb(code, p); for (let i = 0; i <= n; i++) p = skip(p); }
    else if (op === 0x10 || op === 0x12 || op === 0xd2) { const q = skip(p); onFunc(p, q); p = q; }
    else if (op === 0x11 || op === 0x13) p = skip(skip(p));
    else if (op === 0x1c) { let n; [n, p] = uleb(code, p); p += n; }
    else if (op >= 0x20 && op <= 0x26) p = skip(p);
    else if (op >= 0x28 && op <= 0x3e) { let a; [a, p] = uleb(code, p); if (a & 0x40) p = skip(p); p = skip(p); }
    else if (op === 0x3f || op === 0x40) p = skip(p);
    else if (op === 0x41 || op === 0x42) p = uleb(code, p, true)[1];
    else if (op === 0x43) p += 4;
    else if (op === 0x44) p += 8;
    else if (op === 0xd0) p = blockType(p);
    else if (op === 0xfc) {
      let sub; [sub, p] = uleb(code, p);
      if (sub <= 7) {}
      else if (sub === 8 || sub === 10 || sub === 12 || sub === 14) p = skip(skip(p));
      else if (sub <= 17) p = skip(p);
      else throw new Error("unknown 0xfc " + sub);
    }
    else if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b || op === 0xd1 || (op >= 0x45 && op <= 0xc4)) {}
    else throw new Error("unknown opcode 0x" + op.toString(16) + " at " + (p - 1));
  }
  throw new Error("function body without its final end");
}

/** The callees of each body: array (per defined function) of arrays of function indices. */
export function calls(wasm) {
  return bodies(wasm).map((b) => {
    const out = [];
    let [groups, p] = uleb(b, 0);
    for (let i = 0; i < groups; i++) { p = uleb(b, p)[1]; p = typeEnd(b, p); }
    walk(b, p, b.length, (q) => out.push(uleb(b, q)[0]));
    return out;
  });
}

function typeEnd(b, p) {
  const t = b[p];
  if (t === 0x63 || t === 0x64) return uleb(b, p + 1, true)[1];
  return p + 1;
}

/** Bytes appended one run at a time (no spread: a body may be larger than an argument list). */
class Bytes {
  constructor() { this.a = []; }
  put(bytes) { for (const b of bytes) this.a.push(b); return this; }
  uleb(v) { return this.put(encodeUleb(v)); }
}

/** `wasm` with its defined functions in `order` (order[k] = the old defined index placed k-th):
 * every call, ref.func, export, element and start renumbered; a name section is dropped. */
export function permute(wasm, order) {
  const imported = importedFunctions(wasm);
  const newIndex = new Array(imported + order.length);
  for (let i = 0; i < imported; i++) newIndex[i] = i;
  order.forEach((old, k) => (newIndex[imported + old] = imported + k));
  if (order.length !== bodies(wasm).length || newIndex.some((v) => v === undefined)) throw new Error("not a permutation");
  const fn = (old) => encodeUleb(newIndex[old]);
  const parts = [wasm.subarray(0, 8)];
  const section = (id, out) => parts.push(Buffer.from([id, ...encodeUleb(out.a.length)]), Buffer.from(out.a));
  for (const s of sections(wasm)) {
    const src = wasm.subarray(s.start, s.end);
    const out = new Bytes();
    if (s.id === 3) { // functions: the type index of each
      let [n, p] = uleb(src, 0);
      const types = [];
      for (let i = 0; i < n; i++) { const q = uleb(src, p)[1]; types.push(src.subarray(p, q)); p = q; }
      out.uleb(n);
      for (const o of order) out.put(types[o]);
      section(3, out);
    } else if (s.id === 10) { // code: the bodies, their function indices renumbered
      const code = bodies(wasm);
      out.uleb(code.length);
      for (const o of order) {
        const b = code[o], body = new Bytes();
        let [groups, p] = uleb(b, 0);
        for (let i = 0; i < groups; i++) p = typeEnd(b, uleb(b, p)[1]);
        let last = 0;
        walk(b, p, b.length, (q, next) => {
          body.put(b.subarray(last, q)).put(fn(uleb(b, q)[0]));
          last = next;
        });
        body.put(b.subarray(last));
        out.uleb(body.a.length).put(body.a);
      }
      section(10, out);
    } else if (s.id === 7) { // exports: (name, kind, index)
      let [n, p] = uleb(src, 0);
      out.uleb(n);
      for (let i = 0; i < n; i++) {
        const [len, q] = uleb(src, p);
        const kind = src[q + len];
        const [idx, r] = uleb(src, q + len + 1);
        out.put(src.subarray(p, q + len + 1)).put(kind === 0 ? fn(idx) : encodeUleb(idx));
        p = r;
      }
      section(7, out);
    } else if (s.id === 8) { // start
      section(8, out.put(fn(uleb(src, 0)[0])));
    } else if (s.id === 9) { // elements: the forms that list function indices
      let [n, p] = uleb(src, 0);
      out.uleb(n);
      for (let i = 0; i < n; i++) {
        const [flags, q] = uleb(src, p);
        out.uleb(flags);
        p = q;
        if (flags === 0 || flags === 2) {
          if (flags === 2) { const r = uleb(src, p)[1]; out.put(src.subarray(p, r)); p = r; } // table
          const start = p; // offset: i32.const N end
          if (src[p] !== 0x41) throw new Error("element offset");
          p = uleb(src, p + 1, true)[1];
          if (src[p++] !== 0x0b) throw new Error("element offset");
          out.put(src.subarray(start, p));
          if (flags === 2) out.put([src[p++]]); // elemkind
        } else if (flags === 1 || flags === 3) out.put([src[p++]]); // elemkind
        else throw new Error("element segment form " + flags);
        let m;
        [m, p] = uleb(src, p);
        out.uleb(m);
        for (let j = 0; j < m; j++) { let f; [f, p] = uleb(src, p); out.put(fn(f)); }
      }
      section(9, out);
    } else if (s.id === 0 && customName(src) === "name") {
      continue; // its indices would be stale
    } else if (s.id === 6) { // globals: (type, mutability, constant initialiser)
      let [n, p] = uleb(src, 0);
      out.uleb(n);
      for (let i = 0; i < n; i++) {
        const q = typeEnd(src, p) + 1;
        out.put(src.subarray(p, q));
        p = q;
        for (let op; (op = src[p++]) !== 0x0b; ) {
          const start = p;
          if (op === 0x41 || op === 0x42) p = uleb(src, p, true)[1];
          else if (op === 0x43 || op === 0x44) p += op === 0x43 ? 4 : 8;
          else if (op === 0x23) p = uleb(src, p)[1];
          else if (op === 0xd0) p = typeEnd(src, p);
          else if (op === 0xd2) { const [f, r] = uleb(src, p); out.put([op]).put(fn(f)); p = r; continue; }
          else throw new Error("global initialiser opcode 0x" + op.toString(16));
          out.put([op]).put(src.subarray(start, p));
        }
        out.put([0x0b]);
      }
      section(6, out);
    } else parts.push(wasm.subarray(s.hdr, s.end));
  }
  return Buffer.concat(parts);
}

function customName(src) {
  const [len, q] = uleb(src, 0);
  return src.subarray(q, q + len).toString();
}

/** How many call sites name each defined function, and the body of each. */
function useCounts(wasm) {
  const imported = importedFunctions(wasm);
  const uses = new Array(bodies(wasm).length).fill(0);
  for (const callees of calls(wasm)) for (const f of callees) if (f >= imported) uses[f - imported]++;
  return uses;
}

/** The distinct byte `k`-grams of `bytes`, as numbers (k ≤ 6 keeps them exact). */
function grams(bytes, k) {
  const out = new Set();
  for (let i = 0; i + k <= bytes.length; i++) {
    let h = 0;
    for (let j = 0; j < k; j++) h = h * 256 + bytes[i + j];
    out.add(h);
  }
  return [...out];
}

export const HOT = 16, GRAM = 6, WINDOW = 32768, PRIOR = 8;

/** The order (old defined indices) the file's comment describes. */
export function layout(wasm) {
  const code = bodies(wasm);
  const n = code.length;
  const uses = useCounts(wasm);
  const g = code.map((b) => grams(b, GRAM));
  const placed = new Uint8Array(n), order = [];
  // The 6-grams of the functions in the last WINDOW bytes, with how many of them hold each.
  const seen = new Map(), recent = [];
  let recentBytes = 0;
  const place = (f) => {
    placed[f] = 1;
    order.push(f);
    recent.push(f);
    recentBytes += code[f].length;
    for (const h of g[f]) seen.set(h, (seen.get(h) || 0) + 1);
    while (recentBytes > WINDOW && recent.length > 1) {
      const old = recent.shift();
      recentBytes -= code[old].length;
      for (const h of g[old]) {
        const c = seen.get(h) - 1;
        if (c) seen.set(h, c);
        else seen.delete(h);
      }
    }
  };
  const hot = [...Array(n).keys()].sort((a, b) => uses[b] - uses[a] || a - b).slice(0, HOT);
  for (const f of hot) place(f);
  while (order.length < n) {
    let best = -1, bestShare = -1;
    for (let f = 0; f < n; f++) {
      if (placed[f]) continue;
      let hits = 0;
      for (const h of g[f]) if (seen.has(h)) hits++;
      const share = (hits + PRIOR) / (g[f].length + PRIOR);
      if (share > bestShare) { bestShare = share; best = f; }
    }
    place(best);
  }
  return order;
}

/**
 * `order` with neighbours swapped where gzip -9 then compresses the module (data segments merged,
 * as shipped) smaller: one pass over the functions after the hot ones, each swap measured and
 * kept only when it saves bytes. The 6-gram measure above is a guess at what gzip will find;
 * this asks gzip. One pass: ≈ 6 s, 169 B gzip -9 less on the shipped module it was measured on
 * (a second and third pass took 39 and 18 B more, for 6 s each: all three are made). Brotli moved by +92 B on the
 * shipped module but −16 B on the same one before its import and export names are shortened:
 * brotli swings by that much with any layout. (Swaps kept only where brotli gains too: 4 of 136,
 * −9 B gzip, for 31 s of brotli runs.) The size the budget counts is gzip -9.
 */
export function refine(wasm, order) {
  const size = (o) => gzipSync(mergeData(permute(wasm, o)), { level: 9 }).length;
  let best = size(order);
  for (let i = HOT; i < order.length - 1; i++) {
    const o = order.slice();
    [o[i], o[i + 1]] = [o[i + 1], o[i]];
    const s = size(o);
    if (s < best) [best, order] = [s, o];
  }
  return order;
}

/** The active data segments of `wasm`: [{addr, bytes}] in section order. */
export function dataSegments(wasm) {
  const s = sections(wasm).find((s) => s.id === 11);
  if (!s) return [];
  let [n, p] = uleb(wasm, s.start);
  const out = [];
  for (let i = 0; i < n; i++) {
    let flags, addr, len;
    [flags, p] = uleb(wasm, p);
    if (flags !== 0 || wasm[p] !== 0x41) throw new Error("a data segment that is not active at an i32.const");
    [addr, p] = uleb(wasm, p + 1, true);
    if (wasm[p++] !== 0x0b) throw new Error("a data segment offset that is not a constant");
    [len, p] = uleb(wasm, p);
    out.push({ addr, bytes: wasm.subarray(p, p + len) });
    p += len;
  }
  return out;
}

/** The initial memory `segments` make (address → byte, non-zero bytes only: memory starts zeroed). */
function image(segments) {
  const out = new Map();
  for (const { addr, bytes } of segments) bytes.forEach((b, i) => (b ? out.set(addr + i, b) : out.delete(addr + i)));
  return out;
}

/** Largest run of zero bytes between two data segments that {@link mergeData} fills in. */
export const DATA_GAP = 32;

/**
 * `wasm` with its active data segments that lie within {@link DATA_GAP} bytes of each other merged
 * into one, the gap written as zeros. wasm-opt's memory packing splits a segment at every run of
 * a dozen zero bytes (memory starts zeroed), but each segment costs a header (flags, `i32.const`
 * address, `end`, length: ≈ 7 B) that compresses worse than the zeros it saves; the small statics
 * whose initial value is not zero (empty `Vec`s, `None` niches) each had one. The memory the module
 * starts with is the same byte for byte.
 */
export function mergeData(wasm) {
  const segs = dataSegments(wasm);
  const merged = [];
  for (const s of segs) {
    const last = merged[merged.length - 1];
    const gap = last ? s.addr - (last.addr + last.bytes.length) : -1;
    if (last && gap >= 0 && gap <= DATA_GAP) {
      const bytes = Buffer.alloc(s.addr + s.bytes.length - last.addr);
      last.bytes.copy(bytes, 0);
      s.bytes.copy(bytes, s.addr - last.addr);
      last.bytes = bytes;
    } else merged.push({ addr: s.addr, bytes: s.bytes });
  }
  if (merged.length === segs.length) return wasm;
  const parts = [wasm.subarray(0, 8)];
  const section = (id, ...payload) => {
    const b = Buffer.concat(payload);
    parts.push(Buffer.from([id]), encodeUleb(b.length), b);
  };
  const sleb = (v) => {
    const out = [];
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) return Buffer.from([...out, b]);
      out.push(b | 0x80);
    }
  };
  for (const s of sections(wasm)) {
    if (s.id === 11) section(11, encodeUleb(merged.length), ...merged.flatMap((m) => [Buffer.from([0, 0x41]), sleb(m.addr), Buffer.from([0x0b]), encodeUleb(m.bytes.length), m.bytes]));
    else if (s.id === 12) section(12, encodeUleb(merged.length)); // the data count
    else parts.push(wasm.subarray(s.hdr, s.end));
  }
  const out = Buffer.concat(parts);
  const [a, b] = [image(segs), image(dataSegments(out))];
  if (a.size !== b.size || [...a].some(([k, v]) => b.get(k) !== v)) throw new Error("wasm-order: merging the data segments changed the initial memory");
  return out;
}

/** `order`'s inverse permutation. */
function inverse(order) {
  const out = new Array(order.length);
  order.forEach((old, k) => (out[old] = k));
  return out;
}

if (process.argv[1] && import.meta.url === new URL(process.argv[1], "file://").href) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) throw new Error("usage: node scripts/wasm-order.mjs <in.wasm> <out.wasm>");
  const wasm = readFileSync(input);
  // Three passes of swaps (each ≈ 6 s): the later ones find what the earlier swaps made possible.
  let order = layout(wasm);
  for (let k = 0; k < 3; k++) order = refine(wasm, order);
  const out = permute(wasm, order);
  // The renumbering must be exact: undone, it gives the input back byte for byte; and the
  // engine must accept the result.
  if (!permute(out, inverse(order)).equals(wasm)) throw new Error("wasm-order: the reordering does not undo to its input");
  if (!WebAssembly.validate(out)) throw new Error("wasm-order: the reordered module does not validate");
  const merged = mergeData(out);
  if (!WebAssembly.validate(merged)) throw new Error("wasm-order: the module with merged data segments does not validate");
  writeFileSync(output, merged);
  console.log(`wasm-order: ${order.length} functions laid out for gzip (${wasm.length} → ${out.length} B raw); ${dataSegments(out).length} → ${dataSegments(merged).length} data segments (${merged.length} B raw)`);
}
