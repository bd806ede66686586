# Keystone's entry points (README: `make demo` runs the demo shop, `make test` runs every test).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO_TARGET_DIR ?= target
export CARGO_TARGET_DIR
WASM := $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/release/keystone.wasm
BINDGEN := target/bindgen
PORT ?= 8080
# -Oz to convergence, then the control flow flattened and rebuilt (--flatten --rereloop) and
# -Oz once more, twice: ≈ 0.3 KB gzip less than -Oz alone for the first round, for ≈ 15 s more
# build time each. Functions with one caller are inlined only when small (-ocimfs 30, default:
# all): ≈ 0.9 KB gzip less, although 2 KB more raw (the functions kept apart compress better than
# one dispatcher holding them all); functions of up to 4 bytes are always inlined (-aimfs 4,
# default 2), and the passes know which functions have no side effects
# (--generate-global-effects): with the second round, 130 B gzip less. --type-ssa and a last -Oz
# take ≈ 0.1 KB more, and one -Oz more after them 30 B (23 and 2 B on two other builds: the raw
# size stays, locals are renumbered; two more took 43, 7 and −2 B off the three builds), and a
# third 9 B on a later build (a fourth and fifth gave those bytes back).
# scripts/wasm-order.mjs then lays the functions out for gzip's 32 KB window (≈ 0.6 KB gzip
# less) and merges data segments within 32 B of each other (43 B).
WASM_OPT_FLAGS := -ocimfs 30 -aimfs 4 --generate-global-effects -Oz --converge --low-memory-unused --zero-filled-memory --strip-target-features --strip-debug --strip-producers --flatten --rereloop -Oz --flatten --rereloop -Oz --type-ssa -Oz -Oz -Oz
CARGO_FEATURES ?=

.PHONY: setup pkg wasm test test-native test-wasm test-e2e demo tour bench bench-pkg trap-pkg fuzz clean

setup:
	@bash scripts/setup.sh

wasm: setup
	cargo build --release --target wasm32-unknown-unknown $(if $(CARGO_FEATURES),--features $(CARGO_FEATURES),)
	mkdir -p $(BINDGEN)
	wasm-bindgen --target web --out-dir $(BINDGEN) --out-name keystone --no-typescript $(WASM)
	node scripts/panic-data.mjs zero $(BINDGEN)/keystone_bg.wasm
	node_modules/.bin/wasm-opt $(WASM_OPT_FLAGS) $(BINDGEN)/keystone_bg.wasm -o $(BINDGEN)/keystone_oz.wasm
	node scripts/wasm-order.mjs $(BINDGEN)/keystone_oz.wasm $(BINDGEN)/keystone_opt.wasm
	node scripts/panic-data.mjs check $(BINDGEN)/keystone_bg.wasm $(BINDGEN)/keystone_opt.wasm

## Builds the npm package into pkg/ and prints its sizes.
pkg: wasm
	node scripts/build-pkg.mjs

## Every test: native core, wasm in headless Chromium, end-to-end with Playwright.
test: setup
	@bash scripts/test.sh

test-native: setup
	cargo test

test-wasm: setup
	cargo test --target wasm32-unknown-unknown --no-default-features --features convert

test-e2e: pkg
	node --test --test-concurrency=1 tests/e2e/

## The main job: builds the package, serves the demo shop, the package and the local collector.
demo: pkg
	node scripts/serve.mjs --port $(PORT)

## Walks the demo shop in headless Chromium, one screenshot per state (in out/tour/).
tour: pkg
	node scripts/tour.mjs

## The benchmark table (DESIGN §9) against the peers, printed and written to out/bench.json.
## BENCH_QUICK=1 for a fast smoke run; see bench/README.md for the other knobs.
bench: pkg bench-pkg
	node bench/run.mjs

## The bench-only package variant (cargo feature `bench`: ConditionBench) into target/bench-bindgen/,
## built in its own target dir so the shipped pkg/ is never built with it.
BENCH_TARGET := target/bench-build
BENCH_BINDGEN := target/bench-bindgen
bench-pkg: setup
	CARGO_TARGET_DIR=$(BENCH_TARGET) cargo build --release --target wasm32-unknown-unknown --features bench
	mkdir -p $(BENCH_BINDGEN)
	wasm-bindgen --target web --out-dir $(BENCH_BINDGEN) --out-name keystone --no-typescript $(BENCH_TARGET)/wasm32-unknown-unknown/release/keystone.wasm
	node_modules/.bin/wasm-opt $(WASM_OPT_FLAGS) $(BENCH_BINDGEN)/keystone_bg.wasm -o $(BENCH_BINDGEN)/keystone_opt.wasm

## The test-only package variant (cargo feature `trap-test`: `track("__keystone_trap__")` traps)
## into target/trap-pkg/, built in its own target dir; tests/e2e/trap.test.mjs serves it.
TRAP_TARGET := target/trap-build
TRAP_BINDGEN := target/trap-bindgen
trap-pkg: setup
	CARGO_TARGET_DIR=$(TRAP_TARGET) cargo build --release --target wasm32-unknown-unknown --features trap-test
	mkdir -p $(TRAP_BINDGEN)
	wasm-bindgen --target web --out-dir $(TRAP_BINDGEN) --out-name keystone --no-typescript $(TRAP_TARGET)/wasm32-unknown-unknown/release/keystone.wasm
	cp $(TRAP_BINDGEN)/keystone_bg.wasm $(TRAP_BINDGEN)/keystone_opt.wasm
	KS_BINDGEN=$(TRAP_BINDGEN) KS_OUT=target/trap-pkg node scripts/build-pkg.mjs

fuzz: setup
	bash scripts/fuzz.sh

clean:
	rm -rf target pkg out
