#!/usr/bin/env bash
# One command from a clean checkout to changes flowing: installs what cdc
# needs, builds it, starts a throwaway PostgreSQL on 127.0.0.1, creates a
# small shop schema with some rows, runs a write workload while `cdc run`
# snapshots the existing rows and streams every change to a JSONL file, a
# mirror database and an event-log table, then shows the result.
# Output stays in ./demo-out/; the database is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
make -j"$(nproc)" >/dev/null

out="$root/demo-out"
rm -rf "$out" && mkdir -p "$out"
tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cdc_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ -n "$cdc_pid" ]; then kill "$cdc_pid" 2>/dev/null || true; fi
  scripts/pg-throwaway.sh stop "$tmp/pg" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== starting a throwaway PostgreSQL 15 on 127.0.0.1:$port"
scripts/pg-throwaway.sh start "$tmp/pg" "$port"
export PGPASSWORD=postgres CDC_SOURCE_PASSWORD=postgres CDC_SOURCE_PORT=$port CDC_DEMO_OUT=$out
export CDC_STATE_DIR="$tmp/state"
CDC_HEALTH_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CDC_HEALTH_PORT
sql() { psql -h 127.0.0.1 -p "$port" -U postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE DATABASE shop" -c "CREATE DATABASE mirror"
sql -d shop <<'SQL'
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL, name text,
                        tier text DEFAULT 'basic', created_at timestamptz DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id),
                     total numeric(12,2), status text, items jsonb);
-- rows that exist before cdc starts: its initial snapshot reads them
INSERT INTO customers (email, name)
  SELECT 'early' || g || '@example.com', 'Early customer ' || g FROM generate_series(1, 500) g;
SQL

echo "== cdc validate"
build/release/cdc validate examples/demo-pipeline.yaml --platform-config examples/platform.yaml
echo "== cdc run (in the background; logs in demo-out/cdc.log)"
build/release/cdc run examples/demo-pipeline.yaml --platform-config examples/platform.yaml \
  2>"$out/cdc.log" &
cdc_pid=$!

echo "== workload while cdc snapshots and streams: 2,000 customers, 5,000 orders, updates, deletes"
for batch in $(seq 1 10); do
  sql -d shop <<SQL
BEGIN;
INSERT INTO customers (email, name)
  SELECT 'user' || g || '-$batch@example.com', 'Customer ' || g FROM generate_series(1, 200) g;
INSERT INTO orders (customer_id, total, status, items)
  SELECT (random() * 199 + 1 + ($batch - 1) * 200)::int, round((random() * 500)::numeric, 2), 'new',
         jsonb_build_object('sku', 'SKU-' || g, 'qty', 1 + g % 3)
  FROM generate_series(1, 500) g;
COMMIT;
UPDATE orders SET status = 'paid' WHERE id % 3 = 0 AND status = 'new';
UPDATE customers SET tier = 'gold' WHERE id % 17 = $batch;
DELETE FROM orders WHERE id % 50 = $batch;
SQL
  printf '.'
done
echo
stop_lsn=$(sql -d shop -c "SELECT pg_current_wal_lsn()")

echo "== waiting until every sink has it all and the slot confirms $stop_lsn"
for _ in $(seq 1 600); do
  ok=$(sql -d shop -c "SELECT confirmed_flush_lsn >= '$stop_lsn' FROM pg_replication_slots WHERE slot_name = 'demo_slot'")
  [ "$ok" = "t" ] && break
  sleep 0.1
done
echo "== cdc health (the running pipeline's /status; /metrics has Prometheus figures)"
build/release/cdc health examples/demo-pipeline.yaml --platform-config examples/platform.yaml || true
kill -TERM "$cdc_pid"; wait "$cdc_pid"; cdc_pid=""

echo
echo "== two lines of demo-out/events.jsonl"
head -n 1 "$out/events.jsonl" | /usr/bin/python3 -m json.tool
grep -m 1 '"op":"u"' "$out/events.jsonl" | /usr/bin/python3 -m json.tool
echo "== events by operation"
/usr/bin/python3 - "$out/events.jsonl" <<'PY'
import collections, json, sys
ops = collections.Counter((json.loads(l)["source"]["table"], json.loads(l)["op"]) for l in open(sys.argv[1]))
for (table, op), n in sorted(ops.items()):
    print(f"  {table:10} {op}  {n}")
PY
echo "== source vs mirror (row count and checksum of every row)"
mismatch=0
for t in customers orders; do
  s=$(sql -d shop -c "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(x::text, '|' ORDER BY id), '')) FROM $t x")
  m=$(sql -d mirror -c "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(x::text, '|' ORDER BY id), '')) FROM $t x")
  printf '  %-10s source: %s\n  %-10s mirror: %s  %s\n' "$t" "$s" "" "$m" "$([ "$s" = "$m" ] && echo MATCH || echo DIFFERENT)"
  [ "$s" = "$m" ] || mismatch=1
done
echo "== event-log table: $(sql -d mirror -c 'SELECT count(*) FROM public.cdc_events') rows"
echo "== done: see demo-out/events.jsonl and demo-out/cdc.log"
exit "$mismatch"
