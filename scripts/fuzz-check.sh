#!/usr/bin/env bash
# Runs every fuzz target (or the named ones: fuzz-check.sh json copytext) for
# FUZZ_SECONDS each (15 by default), from its seed corpus in
# tests/fuzz/corpus/NAME, with the sanitizer options the test command uses:
# a UBSan finding stops the target like a crash does.  Builds the targets
# first.  The failing input is kept and named; exits non-zero on the first
# failure.  `make fuzz-check` runs it; scripts/test.sh runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
seconds=${FUZZ_SECONDS:-15}

make -s fuzz >/dev/null
targets=()
if [ $# -eq 0 ]; then
  targets=(build/fuzz/fuzz_*)
else
  for name in "$@"; do
    [ -x "build/fuzz/fuzz_$name" ] || { echo "no fuzz target fuzz_$name" >&2; exit 2; }
    targets+=("build/fuzz/fuzz_$name")
  done
fi
for f in "${targets[@]}"; do
  name=$(basename "$f"); name=${name#fuzz_}
  work=$(mktemp -d)
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
  "$f" -max_total_time="$seconds" -max_len=4096 -print_final_stats=0 \
    -artifact_prefix="$work.crash-" "$work" 2>"$work.log" \
    || { tail -n 40 "$work.log"; echo "the failing input: $(ls "$work".crash-* 2>/dev/null)"; exit 1; }
  echo "  $name: $(grep -o 'Done [0-9]* runs' "$work.log" | head -n 1), no crash"
  rm -rf "$work" "$work.log"
done
