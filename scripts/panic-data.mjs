// The standard library's panic data, zeroed before wasm-opt so that its memory packing drops it.
//
// The shipped build's panic handler traps without formatting a message (src/lib.rs), but the
// precompiled `alloc` still links the data its panics would format: "capacity overflow", "Tried to
// shrink to a larger capacity" (wasm-bindgen's string returns go through `into_boxed_slice`), the
// allocation-failure template, the `/rustc/…` source paths with the `Location`s that point at them,
// and the two-digit table of integer formatting (the allocation-failure message's only use of it).
// Their code only hands pointers to a panic that traps, so nothing ever reads these bytes; wasm-opt
// cannot know that for data, so they stay in `.rodata` (≈ 0.5 KB raw, ≈ 0.35 KB gzip).
//
//   node scripts/panic-data.mjs zero  <wasm>   zeroes them in place (before wasm-opt), writes
//                                              <wasm>.panic-data.json with the ranges
//   node scripts/panic-data.mjs check <wasm> <optimized wasm>
//                                              fails if the optimized code still loads from one
//                                              of those ranges or takes an address inside the
//                                              digit table (binaryen's wasm-dis)
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { uleb } from "./wasm-imports.mjs";

/** The active data segments of `wasm`: {addr (memory address), start (file offset), len}. */
function segments(wasm) {
  const out = [];
  let pos = 8;
  while (pos < wasm.length) {
    const [size, start] = uleb(wasm, pos + 1);
    if (wasm[pos] === 11) {
      let [count, p] = uleb(wasm, start);
      for (let i = 0; i < count; i++) {
        let flags;
        [flags, p] = uleb(wasm, p);
        if (flags === 1) { // passive: no address
          let len;
          [len, p] = uleb(wasm, p);
          p += len;
          continue;
        }
        if (flags === 2) p = uleb(wasm, p)[1]; // memory index
        if (wasm[p] !== 0x41) throw new Error("data segment offset is not an i32.const");
        let addr, len;
        [addr, p] = uleb(wasm, p + 1, true);
        if (wasm[p++] !== 0x0b) throw new Error("data segment offset is not a constant");
        [len, p] = uleb(wasm, p);
        out.push({ addr, start: p, len });
        p += len;
      }
    }
    pos = start + size;
  }
  return out;
}

const DIGITS = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0")).join(""));
const ALLOC_FAILED = "memory allocation of ";

/** Zeroes the panic data of `wasm` (a Buffer, changed in place). Returns the zeroed ranges
 * ({addr, len, what}). */
export function zeroPanicData(wasm) {
  const ranges = [];
  for (const seg of segments(wasm)) {
    const bytes = wasm.subarray(seg.start, seg.start + seg.len);
    const text = bytes.toString("latin1");
    const found = [];
    const add = (at, len, what) => found.push({ at, len, what });
    for (const msg of ["capacity overflow", "Tried to shrink to a larger capacity"]) {
      for (let at = text.indexOf(msg); at >= 0; at = text.indexOf(msg, at + 1)) add(at, msg.length, msg);
    }
    const paths = [];
    for (const m of text.matchAll(/\/rustc\/[0-9a-f]{40}\/library\/[A-Za-z0-9_/]+\.rs/g)) {
      add(m.index, m[0].length, "std source path");
      paths.push({ addr: seg.addr + m.index, len: m[0].length });
    }
    // A `Location` (file: &str, line, column) pointing at one of those paths.
    for (let at = 0; at + 16 <= bytes.length; at += 4) {
      const ptr = bytes.readUInt32LE(at), len = bytes.readUInt32LE(at + 4);
      if (paths.some((p) => p.addr === ptr && p.len === len)) add(at, 16, "std panic location");
    }
    // The allocation-failure template: its length-prefixed text, the argument, " bytes failed".
    for (let at = text.indexOf(ALLOC_FAILED); at >= 0; at = text.indexOf(ALLOC_FAILED, at + 1)) {
      const end = text.indexOf(" bytes failed", at);
      if (end < 0 || end - at > ALLOC_FAILED.length + 4) continue;
      const from = bytes[at - 1] === ALLOC_FAILED.length ? at - 1 : at;
      add(from, end + " bytes failed".length - from, "allocation-failure template");
    }
    for (let at = bytes.indexOf(DIGITS); at >= 0; at = bytes.indexOf(DIGITS, at + 1)) {
      add(at, DIGITS.length, "integer formatting digits");
    }
    for (const f of found) {
      bytes.fill(0, f.at, f.at + f.len);
      ranges.push({ addr: seg.addr + f.at, len: f.len, what: f.what });
    }
  }
  return ranges;
}

/** Throws if the optimized module `wat` (text) loads from a zeroed range or takes an address
 * inside the digit table (what integer formatting would index). */
export function checkUnread(wat, ranges) {
  const inside = (n, r) => n >= r.addr && n < r.addr + r.len;
  for (const m of wat.matchAll(/\.(?:load|store)\S*\s+offset=(\d+)/g)) {
    const r = ranges.find((r) => inside(Number(m[1]), r));
    if (r) throw new Error(`the optimized code reads the zeroed ${r.what} at ${m[1]}`);
  }
  for (const m of wat.matchAll(/i32\.const (\d+)/g)) {
    const r = ranges.find((r) => r.what === "integer formatting digits" && inside(Number(m[1]), r));
    if (r) throw new Error(`the optimized code takes the address of the zeroed ${r.what} (${m[1]})`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [cmd, file, optimized] = process.argv.slice(2);
  if (cmd === "zero") {
    const wasm = readFileSync(file);
    const ranges = zeroPanicData(wasm);
    writeFileSync(file, wasm);
    writeFileSync(file + ".panic-data.json", JSON.stringify(ranges));
    const bytes = ranges.reduce((n, r) => n + r.len, 0);
    console.log(`panic data: ${ranges.length} items, ${bytes} B zeroed`);
  } else if (cmd === "check") {
    const ranges = JSON.parse(readFileSync(file + ".panic-data.json", "utf8"));
    const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", ".bin", "wasm-dis");
    checkUnread(execFileSync(bin, [optimized], { maxBuffer: 1 << 28 }).toString(), ranges);
  } else {
    throw new Error("usage: panic-data.mjs zero <wasm> | check <wasm> <optimized wasm>");
  }
}
