// Assembles the npm package in pkg/ from pkg-template/ and the wasm-bindgen output.
// Expects `make pkg` to have built target/bindgen/{keystone.js,keystone_bg.wasm} (wasm-bindgen
// --target web) and the optimized wasm at target/bindgen/keystone_opt.wasm. Prints sizes.
import { build } from "esbuild";
import { minify } from "terser";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { printSizes } from "./sizes.mjs";
import { minifyExports, minifyImports, renameInGlue } from "./wasm-imports.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tpl = join(root, "pkg-template");
// KS_BINDGEN / KS_OUT: build a test variant (e.g. the trap-test build) from another
// wasm-bindgen output into another folder; the shipped pkg/ is the default.
const out = process.env.KS_OUT ? join(root, process.env.KS_OUT) : join(root, "pkg");
const dist = join(out, "dist");
const bindgen = process.env.KS_BINDGEN ? join(root, process.env.KS_BINDGEN) : join(root, "target", "bindgen");

// The glue plus one export: `__ksReinit()` gives the engine a fresh WebAssembly instance of the
// same module, so the wrapper can recover after a trap (the glue's own init returns early once
// an instance exists).
// The import and export names are shortened in both the wasm and the glue
// (scripts/wasm-imports.mjs).
const glue = join(bindgen, "keystone.glue.js");
const renamed = minifyImports(readFileSync(join(bindgen, "keystone_opt.wasm")));
const { wasm: shipped, exports } = minifyExports(renamed.wasm);
writeFileSync(glue, renameInGlue(smallerGlue(fastStrings(readFileSync(join(bindgen, "keystone.js"), "utf8"))), renamed, exports) +
  "\nexport function __ksReinit() { wasm = undefined; initSync(wasmModule); }\n");

/** The glue copies a string into wasm memory one character at a time while it is ASCII: a JS
 * loop that V8 runs unoptimized at start-up, ≈ 1 ms per 20 KB (init passes the stored profile and
 * the definitions). `TextEncoder.encodeInto` copies long text natively; short text (most calls:
 * an event, its properties, a condition) keeps the loop, which costs less than setting up
 * encodeInto. Every browser that runs this wasm has encodeInto, so the glue's fallback for
 * browsers without it goes too. Also smaller: the
 * string copy reads the allocator exports itself, and `initSync` takes only the form the
 * wrapper passes. */
function fastStrings(text) {
  const swap = (re, to) => (text = swapIn(text, re, to));
  // Every call passes the same two exports: the function reads them itself.
  swap(/, wasm\.__wbindgen_malloc, wasm\.__wbindgen_realloc\)/g, ")");
  swap(/function passStringToWasm0\(arg, malloc, realloc\) \{[^]*?\n\}\n/, `function passStringToWasm0(arg) {
    const malloc = wasm.__wbindgen_malloc, realloc = wasm.__wbindgen_realloc;
    let len = arg.length, ptr = malloc(len, 1) >>> 0, read = 0, written;
    if (len < 512) {
        const mem = getUint8ArrayMemory0();
        for (let c; read < len && (c = arg.charCodeAt(read)) < 128; read++) mem[ptr + read] = c;
        written = read;
    } else ({ read, written } = cachedTextEncoder.encodeInto(arg, getUint8ArrayMemory0().subarray(ptr, ptr + len)));
    if (read < len) {
        arg = arg.slice(read);
        ptr = realloc(ptr, len, len = written + arg.length * 3, 1) >>> 0;
        written += cachedTextEncoder.encodeInto(arg, getUint8ArrayMemory0().subarray(ptr + written, ptr + len)).written;
        ptr = realloc(ptr, len, written, 1) >>> 0;
    }
    WASM_VECTOR_LEN = written;
    return ptr;
}
`);
  swap(/\nif \(!\('encodeInto' in cachedTextEncoder\)\) \{[^]*?\n\}\n/, "\n");
  // The wrapper never passes `initSync` the older form: the branch that warns about it goes,
  // with its message (smallerGlue drops the rest of the argument's unpacking).
  swap(/if \(Object\.getPrototypeOf\(module\) === Object\.prototype\) \{\s*\(\{module\} = module\)\s*\} else \{\s*console\.warn\([^\n]*\)\s*\}/, "({module} = module)");
  return text;
}

/** `text` with `re` replaced by `to`; throws when `re` matches nothing (the wasm-bindgen glue
 * changed: the rewrite must be looked at again). */
function swapIn(text, re, to) {
  const out = text.replace(re, to);
  if (out === text) throw new Error("the wasm-bindgen glue changed: " + re);
  return out;
}

/** Shorter forms of the glue's plumbing, the same operations (every byte of it is shipped). */
function smallerGlue(text) {
  const swap = (re, to) => (text = swapIn(text, re, to));
  // The imports that return a string (`String`, `toLowerCase`, `localStorage.getItem`) each wrote
  // its pointer and length out in full: one function writes them.
  swap(/(?:const|var) ptr1 = (?:isLikeNone\(ret\) \? 0 : )?passStringToWasm0\(ret\);\s*(?:const|var) len1 = WASM_VECTOR_LEN;\s*getDataViewMemory0\(\)\.setInt32\(\(arg0 >>> 0\) \+ 4 \* 1, len1, true\);\s*getDataViewMemory0\(\)\.setInt32\(\(arg0 >>> 0\) \+ 4 \* 0, ptr1, true\);/g, "returnString(arg0, ret);");
  text += `
/** Writes string \`s\` (none: null or undefined) where the wasm caller waits for it at \`at\`. */
function returnString(at, s) {
    const ptr = passStringToWasm0(s), view = new Int32Array(wasm.memory.buffer, at >>> 0, 2);
    view[0] = ptr;
    view[1] = WASM_VECTOR_LEN;
}
`;
  // An optional string (null or undefined: none) is passed as a null pointer by the function
  // that passes strings, not by a test at each of its callers.
  swap(/isLikeNone\((\w+)\) \? 0 : passStringToWasm0\(\1\)/g, "passStringToWasm0($1)");
  swap(/function passStringToWasm0\(arg\) \{\n/, "$&    if (arg == null) return 0; // none (null or undefined): the length is not read then\n");
  // The exports copied each string argument into wasm memory with a try of their own, freeing
  // what was copied when a copy failed: one function does it for all.
  swap(/let (?:ptr\d, len\d(?:, )?)+;\s*try \{\s*((?:ptr\d = passStringToWasm0\(\w+\);\s*len\d = WASM_VECTOR_LEN;\s*)+)\} catch \(e\) \{[^]*?throw e;\s*\}(\s*const ret = wasm\.\w+\()([^)]*)\)/g, (_, copies, call, args) =>
    `const s = passStrings(${[...copies.matchAll(/passStringToWasm0\((\w+)\)/g)].map((m) => m[1]).join(", ")});${call}${args.replace(/(ptr|len)(\d)/g, (_, k, i) => `s[${2 * i + (k == "len")}]`)})`);
  // coreCall frees its result after reading it: only once there is one (wasm-bindgen's form
  // freed an absent result, a no-op, when the call or a copy failed).
  swap(/let (deferred\d+)_0;\s*let \1_1;\s*try \{\s*(const val\d = \+op;\s*const s = passStrings\([^)]*\);\s*const ret = wasm\.\w+\([^)]*\);)\s*\1_0 = ret\[0\];\s*\1_1 = ret\[1\];\s*(return getStringFromWasm0\(ret\[0\], ret\[1\]\);)\s*\} finally \{\s*(wasm\.\w+)\(\1_0, \1_1, 1\);\s*\}/, "$2\n    try {\n        $3\n    } finally {\n        $4(ret[0], ret[1], 1);\n    }");
  text += `
/** Copies each string (or none) into wasm memory: [ptr, len, ptr, len, …]. When one cannot be
 * copied, those copied before it are freed. (Indexes, not Array methods a page may have broken.) */
function passStrings(...args) {
    const out = [];
    let i = 0;
    try {
        for (; i < args.length; i++) {
            out[2 * i] = passStringToWasm0(args[i]);
            out[2 * i + 1] = WASM_VECTOR_LEN;
        }
    } catch (e) {
        while (i--) if (out[2 * i]) wasm.__wbindgen_free(out[2 * i], out[2 * i + 1], 1);
        throw e;
    }
    return out;
}
`;
  // The wrapper always passes `initSync` a compiled WebAssembly.Module
  // (from compileStreaming or WebAssembly.compile, or the one kept for a rebuild).
  // It passes the module itself, not in an object: nothing to take apart.
  swap(/if \(module !== undefined\) \{\s*\(\{module\} = module\)\s*\}/, "");
  swap(/if \(!\(module instanceof WebAssembly\.Module\)\) \{\s*module = new WebAssembly\.Module\(module\);\s*\}/, "");
  // … and calls it once per instance: at the first load (loadWasm keeps its promise) and after a
  // trap, once `__ksReinit` has dropped the instance. The early return for an instance already
  // made never runs.
  swap(/\n\s*if \(wasm !== undefined\) return wasm;\n/, "\n");
  // It makes the instance and keeps what `__wbg_finalize_init` keeps (the module, for a rebuild;
  // the exports; no cached bytes of another instance's memory) in its own body: no second
  // function, and no instance kept that nothing reads. Its result is not read.
  swap(/const instance = new WebAssembly\.Instance\(module, imports\);\s*return __wbg_finalize_init\(instance, module\);/,
    "wasmModule = module;\n    wasm = new WebAssembly.Instance(module, imports).exports;\n    cachedUint8ArrayMemory0 = null;");
  // The cached view of memory is renewed when memory grew (the old buffer is detached, so it is
  // no longer memory's buffer; a new instance resets the cache): one comparison says it.
  swap(/cachedDataViewMemory0 === null \|\| cachedDataViewMemory0\.buffer\.detached === true \|\| \(cachedDataViewMemory0\.buffer\.detached === undefined && cachedDataViewMemory0\.buffer !== wasm\.memory\.buffer\)/, "cachedDataViewMemory0?.buffer !== wasm.memory.buffer");
  // The cached bytes of memory are renewed when there are none or memory grew (a detached
  // buffer's view has no bytes).
  swap(/cachedUint8ArrayMemory0 === null \|\| cachedUint8ArrayMemory0\.byteLength === 0/, "!cachedUint8ArrayMemory0?.byteLength");
  // No JS value is held in wasm (src/facade.rs): the table of JS values wasm-bindgen still
  // declares is never read, by the wasm or by the glue, so the glue neither fills it nor calls
  // the start export that only asks for it to be filled (the import itself must stay).
  swap(/(__wbindgen_init_externref_table: )function\(\) \{\s*const table = wasm\.__wbindgen_externrefs;(?:\s*table\.set\(\d+, \w+\);)+\s*\}/, "$1() => {}");
  swap(/\n\s*wasm\.__wbindgen_start\(\);/, "");
  // The text decoder is made at the first decode, by the renewal that works around Safari's
  // limit on the bytes one decoder decodes (the count starts at the limit), not by a second
  // copy of that code run at import.
  swap(/let cachedTextDecoder = new TextDecoder\([^)]*\);\s*cachedTextDecoder\.decode\(\);\s*const MAX_SAFARI_DECODE_BYTES = (\d+);\s*let numBytesDecoded = 0;/, "let cachedTextDecoder;\nconst MAX_SAFARI_DECODE_BYTES = $1;\nlet numBytesDecoded = MAX_SAFARI_DECODE_BYTES;");
  // The import object and its module are plain objects: the instance reads only their own
  // properties (the module's name and every import's are there), so no prototype is reached.
  swap(/\n\s*__proto__: null,/g, "");
  // A string is decoded from the bytes the function that reads bytes takes, not from a copy
  // of that function.
  swap(/(function getStringFromWasm0\(ptr, len\) \{)\s*ptr = ptr >>> 0;\s*return decodeText\(getUint8ArrayMemory0\(\)\.subarray\(ptr, ptr \+ len\)\);/, "$1\n    return decodeText(getArrayU8FromWasm0(ptr, len));");
  // `String.prototype.toLowerCase.call(text)` on the text just decoded (a string): the same
  // method, called as one.
  swap(/String\.prototype\.toLowerCase\.call\((getStringFromWasm0\(\w+, \w+\))\)/, "$1.toLowerCase()");
  // regexTest reads its case flag as a number already (`+icase`, `icase ? "i" : ""`): the
  // wasm's 0 or 1 as it comes.
  swap(/(regexTest\(getStringFromWasm0\(\w+, \w+\), )(\w+) !== 0,/, "$1$2,");
  // The imports are arrow functions (none reads `this` or `arguments`).
  swap(/(\n {8}\w+: )function ?\(((?:arg\d(?:, )?)*)\) \{/g, "$1($2) => {");
  // An import the wasm calls for no result has its one statement as the arrow's body (the
  // value it then returns is not read).
  swap(/(\n {8}\w+: \((?:arg\d(?:, )?)*\) => )\{\s*const ret = ([^;]*);\s*(returnString\(arg0), ret\);\s*\},/g, "$1$3, $2),");
  swap(/(\n {8}\w+: \((?:arg\d(?:, )?)*\) => )\{\s*(\w+\([^;]*\));\s*\},/g, "$1$2,");
  // Lengths and pointers multiplied or divided by 1 (the size of a u8): numbers already.
  swap(/ [*\/] 1(?=[,;)]| [+-] )/g, "");
  return text;
}

const version = /^version\s*=\s*"([^"]+)"/m.exec(readFileSync(join(root, "Cargo.toml"), "utf8"))[1];

rmSync(out, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  legalComments: "none",
  target: ["es2022"],
  alias: { "#wasm": glue },
  // __SCRIPT_TAG__: code only the script-tag build runs (replaying calls queued before the engine
  // was ready, as made when and where they were) is left out of the ESM entry.
  define: { __KEYSTONE_VERSION__: JSON.stringify(version), __SCRIPT_TAG__: "false" },
  logLevel: "warning",
};

await build({ ...common, entryPoints: [join(tpl, "src", "keystone.js")], format: "esm", outfile: join(dist, "keystone.js") });
await build({
  ...common,
  entryPoints: [join(tpl, "src", "global.js")],
  format: "iife",
  outfile: join(dist, "keystone.global.js"),
  // The glue's default wasm URL uses import.meta.url; the global build always passes its own.
  define: { ...common.define, __SCRIPT_TAG__: "true", "import.meta.url": "location.href" },
});
await build({ ...common, entryPoints: [join(tpl, "src", "snippet.js")], format: "iife", outfile: join(dist, "snippet.js") });

// A second minifier pass: esbuild bundles and minifies in one go; terser's compressor (two
// passes, no unsafe transforms) then takes ≈ 4% more off what every visitor downloads.
for (const [file, module] of [["keystone.js", true], ["keystone.global.js", false], ["snippet.js", false]]) {
  const path = join(dist, file);
  const { code } = await minify(readFileSync(path, "utf8"), { module, ecma: 2020, compress: { passes: 2, ecma: 2020 }, format: { comments: false } });
  // V8's explicit compile hint (Chrome 136+; a plain comment elsewhere): every function of the
  // file is compiled with the script, not lazily on its first call. Nearly all of the wrapper
  // runs within `init`, where lazy compilation cost several ms of main-thread time.
  writeFileSync(path, (file == "snippet.js" ? "" : "//# allFunctionsCalledOnLoad\n") + code);
}

writeFileSync(join(dist, "keystone_bg.wasm"), shipped);
cpSync(join(tpl, "keystone.d.ts"), join(dist, "keystone.d.ts"));
cpSync(join(tpl, "README.md"), join(out, "README.md"));
if (existsSync(join(root, "LICENSE"))) cpSync(join(root, "LICENSE"), join(out, "LICENSE"));
const pkg = JSON.parse(readFileSync(join(tpl, "package.json"), "utf8"));
pkg.version = version;
writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");

if (!process.env.KS_OUT) printSizes(dist);
