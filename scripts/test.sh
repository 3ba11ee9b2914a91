#!/usr/bin/env bash
# Installs what is needed, builds with warnings as errors, and runs every
# test: unit tests (optimized, AddressSanitizer+UBSan, and ThreadSanitizer for
# the concurrent pipeline), the format check, a short fuzzing pass over every
# decoder and parser, and the integration tests against real PostgreSQL
# servers started in temporary directories (cdc under ASan+UBSan, and the
# optimized build where memory is measured).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
jobs=$(nproc)

step "install dependencies"
scripts/install-deps.sh

step "build (release, asan, tsan)"
make -j"$jobs" WERROR=1 all helpers >/dev/null
make -j"$jobs" WERROR=1 VARIANT=asan all helpers >/dev/null
# The unit suites of the concurrent pipeline, also run under ThreadSanitizer.
tsan_units=(test_pipeline test_store test_sink_registry test_driver test_driver_stop
  test_snapshot_core test_api test_streams test_streams_file test_file_sink test_event_alloc)
make -j"$jobs" WERROR=1 VARIANT=tsan "${tsan_units[@]/#/build/tsan/tests/}" >/dev/null

step "format"
make -s format-check

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Runs unit test binaries, printing one line each; shows the log of a failure.
run_units() {
  local label=$1; shift
  for t in "$@"; do
    if CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$t.log" 2>&1; then
      echo "  $label $(basename "$t"): $(grep -o 'PASSED.*' "$t.log" | tail -n 1 | tr -s ' ]' ' ')"
    else
      cat "$t.log"; echo "FAILED: $t"; exit 1
    fi
  done
}
step "unit tests (release, asan+ubsan, tsan)"
units=()
for src in tests/unit/test_*.c; do
  name=${src##*/}
  units+=("${name%.c}")
done
make -s WERROR=1 "${units[@]/#/build/release/tests/}"
make -s WERROR=1 VARIANT=asan "${units[@]/#/build/asan/tests/}"
run_units release "${units[@]/#/build/release/tests/}"
run_units asan "${units[@]/#/build/asan/tests/}"
TSAN_OPTIONS=halt_on_error=1 run_units tsan "${tsan_units[@]/#/build/tsan/tests/}"

step "fuzz (${FUZZ_SECONDS:=15}s per target)"
FUZZ_SECONDS=$FUZZ_SECONDS scripts/fuzz-check.sh

step "integration tests"
CDC_BIN=build/asan/cdc CDC_BIN_RELEASE=build/release/cdc /usr/bin/python3 tests/integration/run.py "$@"
