#!/usr/bin/env bash
# The cdc benchmark: one command, about 10-20 minutes on a 2-core machine.
#
#   bench/run.sh                    # full run, each figure the median of 3 runs
#   BENCH_RUNS=5 bench/run.sh       # more runs per figure
#   BENCH_QUICK=1 bench/run.sh      # smaller backlogs, short latency runs (~2 minutes)
#   BENCH_PROFILE=1 bench/run.sh    # also profile cdc (perf) during a file drain
#   BENCH_ONLY=ud bench/run.sh      # the update/delete backlog: cdc -> mirror next to native replication
#   BENCH_ONLY=kafka bench/run.sh   # capture into Kafka (mock cluster) next to the file drain
#   BENCH_ONLY=iceberg bench/run.sh # drain into an upsert Iceberg table next to the file drain
#   BENCH_ONLY=nats bench/run.sh    # drain into a nats sink (nats-server) next to the file drain
#   BENCH_ONLY=mysql bench/run.sh   # the MySQL source next to mariadb-binlog (bench/bench_mysql.py)
#   CDC_BIN=/path/to/cdc bench/run.sh   # measure that binary instead of building one
#   BENCH_VS=/path/to/base/cdc bench/run.sh   # every cdc figure in pairs against that
#                                   # binary, alternating; a PAIRS table gives the ratios
#
# It builds cdc in release mode (`make`), builds the helpers in bench/ with cc,
# starts two throwaway PostgreSQL 15 clusters in a temporary directory on
# 127.0.0.1 (source and sink), writes the backlogs, measures, prints a table
# and removes everything it started, also on Ctrl-C.  Method and figures:
# docs/benchmarks.md.  Other settings: see the top of bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CDC_BIN:-}" ]; then
  echo "== building cdc (make, release)"
  if ! make -j"$(nproc)" >/dev/null; then
    echo "bench: the cdc build failed" >&2
    exit 1
  fi
  CDC_BIN=build/release/cdc
  # printed with the results: which source tree was measured
  BENCH_CDC_REV="git $(git describe --always --dirty 2>/dev/null || echo unknown)"
  export BENCH_CDC_REV
fi
[ -x "$CDC_BIN" ] || { echo "bench: $CDC_BIN is not an executable" >&2; exit 1; }
for tool in cc pkg-config pgbench /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cdc-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
echo "== building the helpers (bench/*.c)"
CFLAGS="-O2 -g -std=gnu11 -Wall -Wextra -Werror"
cc $CFLAGS -o "$work/bin/tail_lat" bench/tail_lat.c bench/latency.c
cc $CFLAGS -o "$work/bin/webhook_rx" bench/webhook_rx.c bench/latency.c
# shellcheck disable=SC2046
cc $CFLAGS $(pkg-config --cflags libpq) -o "$work/bin/pgo_recv" bench/pgo_recv.c \
  $(pkg-config --libs libpq)

if [ "${BENCH_ONLY:-}" = kafka ]; then
  command -v kcat >/dev/null || { echo "bench: kcat is required for BENCH_ONLY=kafka" >&2; exit 1; }
  # shellcheck disable=SC2046
  cc $CFLAGS -o "$work/bin/kafka_mock" tests/helpers/kafka_mock.c $(pkg-config --libs rdkafka)
fi

if [ "${BENCH_ONLY:-}" = nats ]; then
  command -v nats-server >/dev/null || { echo "bench: nats-server is required for BENCH_ONLY=nats" >&2; exit 1; }
  # shellcheck disable=SC2046
  cc $CFLAGS -o "$work/bin/nats_pub" bench/nats_pub.c $(pkg-config --libs libnats)
fi

if [ "${BENCH_ONLY:-}" = iceberg ]; then
  [ -d tests/js/node_modules/@duckdb/node-api ] ||
    { echo "bench: BENCH_ONLY=iceberg needs the readers in tests/js (npm ci --prefix tests/js)" >&2; exit 1; }
fi

# Measure a copy: the binary in the tree may be rebuilt while the bench runs.
cp "$CDC_BIN" "$work/bin/cdc"
"$work/bin/cdc" --version >/dev/null || { echo "bench: $CDC_BIN does not run" >&2; exit 1; }
vs=()
if [ -n "${BENCH_VS:-}" ]; then
  if ! cp "$BENCH_VS" "$work/bin/cdc-vs" 2>/dev/null || ! "$work/bin/cdc-vs" --version >/dev/null; then
    echo "bench: BENCH_VS=$BENCH_VS is not a cdc binary that runs" >&2
    exit 1
  fi
  vs=(--cdc-vs "$work/bin/cdc-vs")
fi

if [ "${BENCH_ONLY:-}" = mysql ]; then
  trap - EXIT
  exec /usr/bin/python3 bench/bench_mysql.py --cdc "$work/bin/cdc" --work "$work"
fi

# From here on bench.py owns $work: it removes it (and stops every cluster
# and process it started) when it ends, however it ends.
trap - EXIT
exec /usr/bin/python3 bench/bench.py --cdc "$work/bin/cdc" --helpers "$work/bin" --work "$work" "${vs[@]}"
