#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target (fuzz/fuzz_targets/) for FUZZ_SECONDS (default 30).
# Installs cargo-fuzz when missing. Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets rustc
# accept the -Z flags cargo-fuzz passes. FUZZ_SANITIZER=address|none (default: address, falling
# back to none when the sanitizer cannot be built). AddressSanitizer builds on stable Rust 1.95
# with RUSTC_BOOTSTRAP=1 (x86_64 Linux: the prebuilt standard library links with it; the first
# build takes a few minutes), so `none` is only the fallback for other hosts.
# New corpus entries stay in fuzz/corpus/<target>/ (minimise with `cargo fuzz cmin` before
# committing); every crash input is copied to fuzz/regressions/<target>/, where
# tests/fuzz_regressions.rs replays it in `make test`. Each target's libFuzzer output is kept in
# fuzz/<target>.log (ignored by git); its final line (executions, coverage, corpus, exec/s) is
# printed. Exits non-zero when a target found a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-30}
TARGETS=${FUZZ_TARGETS:-"segments profile_decoder event_sequence merge json"}
SAN=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1
# cargo-fuzz builds into fuzz/target; never the main target dir.
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { echo "[fuzz] cargo-fuzz could not be installed"; exit 1; }
fi

if ! cargo fuzz build --sanitizer "$SAN" >/dev/null 2>&1; then
  echo "[fuzz] the $SAN sanitizer does not build here; using --sanitizer none"
  SAN=none
  cargo fuzz build --sanitizer none || exit 1
fi

status=0
for t in $TARGETS; do
  # A crash input of an earlier run (already kept in regressions/) is not this run's.
  rm -rf "fuzz/artifacts/$t"
  mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
  echo "=== fuzz $t: ${SECS}s, sanitizer $SAN"
  cargo fuzz run --sanitizer "$SAN" "$t" "fuzz/corpus/$t" -- -max_total_time="$SECS" -max_len=4096 -timeout=10 >"fuzz/$t.log" 2>&1
  # libFuzzer separates the run count from the status with a tab.
  grep -aE "^#[0-9]+[[:space:]]+(INITED|DONE)|SUMMARY|panicked at|Test unit written" "fuzz/$t.log" | awk '!seen[$0]++' | head -20
  echo "[fuzz] $t: $(ls "fuzz/corpus/$t" | wc -l) corpus files"
  for f in fuzz/artifacts/"$t"/*; do
    [ -f "$f" ] || continue
    cp "$f" "fuzz/regressions/$t/"
    echo "[fuzz] $t: crash input kept as fuzz/regressions/$t/$(basename "$f")"
    status=1
  done
done
exit $status
