#!/usr/bin/env bash
# Runs every test in order: native core (cargo test), browser layer in headless Chromium
# (wasm-bindgen-test), then the package end to end with Playwright. Ends with one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
declare -A passed failed
status=0

count() { # $1 = suite, $2 = log, $3 = kind
  local p=0 f=0
  case "$3" in
    cargo)
      p=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$2" | awk '{s+=$4} END {print s+0}')
      f=$(grep -Eo '[0-9]+ failed' "$2" | awk '{s+=$1} END {print s+0}') ;;
    node)
      p=$(grep -E '^# pass ' "$2" | awk '{s+=$3} END {print s+0}')
      f=$(grep -E '^# fail ' "$2" | awk '{s+=$3} END {print s+0}') ;;
  esac
  passed[$1]=$p; failed[$1]=$f
}

run() { # $1 = suite, $2 = kind, rest = command
  local suite=$1 kind=$2; shift 2
  echo "=== $suite: $*"
  "$@" 2>&1 | tee "out/test-$suite.log"
  local rc=${PIPESTATUS[0]}
  count "$suite" "out/test-$suite.log" "$kind"
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "${failed[$suite]}" -eq 0 ] && failed[$suite]=1
  fi
}

run native cargo cargo test --features segments
run wasm cargo cargo test --target wasm32-unknown-unknown --no-default-features --features convert
# The package, then its test-only trap variant (target/trap-pkg/, for tests/e2e/trap.test.mjs).
if make --no-print-directory pkg 2>&1 | tee out/test-pkg.log && make --no-print-directory trap-pkg >>out/test-pkg.log 2>&1; then
  run e2e node node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=tap tests/e2e/
else
  echo "package build failed"; status=1; passed[e2e]=0; failed[e2e]=1
fi

tp=0; tf=0
echo
echo "suite      passed  failed"
for s in native wasm e2e; do
  printf '%-10s %6s %7s\n' "$s" "${passed[$s]:-0}" "${failed[$s]:-0}"
  tp=$((tp + ${passed[$s]:-0})); tf=$((tf + ${failed[$s]:-0}))
done
echo "$tp passed, $tf failed"
exit $status
