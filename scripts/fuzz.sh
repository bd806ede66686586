#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target (fuzz/fuzz_targets/) for FUZZ_SECONDS (default 30).
# Installs cargo-fuzz when missing. Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets rustc
# accept the -Z flags cargo-fuzz passes. FUZZ_SANITIZER=address|none (default: address, falling
# back to none when the sanitizer cannot be built). New corpus entries stay in fuzz/corpus/<target>/;
# every crash input is copied to fuzz/regressions/<target>/, where tests/fuzz_regressions.rs
# replays it in `make test`. Exits non-zero when a target found a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-30}
TARGETS=${FUZZ_TARGETS:-"segments profile_decoder event_sequence merge"}
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
  mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
  echo "=== fuzz $t: ${SECS}s, sanitizer $SAN"
  cargo fuzz run --sanitizer "$SAN" "$t" "fuzz/corpus/$t" -- -max_total_time="$SECS" -max_len=4096 -timeout=10 2>&1 | tee "fuzz/$t.log" | grep -E "^#[0-9]+ *(DONE|INITED)|SUMMARY|panicked|Test unit written" || true
  for f in fuzz/artifacts/"$t"/*; do
    [ -f "$f" ] || continue
    cp "$f" "fuzz/regressions/$t/"
    echo "[fuzz] $t: crash input kept as fuzz/regressions/$t/$(basename "$f")"
    status=1
  done
  rm -f "fuzz/$t.log"
done
exit $status
