#!/usr/bin/env bash
# Regenerates frames.txt: real pgoutput messages (protocol 2, streaming on,
# messages on) captured from a throwaway PostgreSQL through
# pg_logical_slot_get_binary_changes, one message per line as
# "<scenario> <hex>".  The decoder unit test replays them.
#   tests/unit/data/pgoutput/capture.sh > tests/unit/data/pgoutput/frames.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
trap '"$root/scripts/pg-throwaway.sh" stop "$dir/pg"; rm -rf "$dir"' EXIT
"$root/scripts/pg-throwaway.sh" start "$dir/pg" "$port" >/dev/null
export PGPASSWORD=postgres
psql_() { psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_ -c "ALTER SYSTEM SET logical_decoding_work_mem = '64kB'" -c "SELECT pg_reload_conf()" >/dev/null
psql_ <<'SQL' >/dev/null
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE t1 (id int PRIMARY KEY, name text, price numeric(10,2), data bytea, m mood);
CREATE TABLE t2 (a int, b int, note text, PRIMARY KEY (a, b));
CREATE TABLE t3 (x int, y text);
ALTER TABLE t3 REPLICA IDENTITY FULL;
CREATE TABLE toasty (id int PRIMARY KEY, big text, n int);
ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE PUBLICATION pub FOR TABLE t1, t2, t3, toasty;
SELECT pg_create_logical_replication_slot('s', 'pgoutput');
SQL
opts="'proto_version', '2', 'publication_names', 'pub', 'streaming', 'on', 'messages', 'true'"
dump() { # scenario label
  # A committed transaction flushes WAL, so aborts and non-transactional
  # messages written just before are decodable now.
  psql_ -c "SELECT txid_current()" >/dev/null
  psql_ -c "SELECT '$1 ' || encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, $opts)"
}
psql_ -c "INSERT INTO t1 VALUES (1, 'café ☕', 12.50, '\\xdeadbeef', 'happy'), (2, NULL, NULL, NULL, NULL)" >/dev/null
dump insert
psql_ -c "UPDATE t1 SET name = 'renamed' WHERE id = 1" -c "UPDATE t1 SET id = 3 WHERE id = 2" -c "DELETE FROM t1 WHERE id = 3" >/dev/null
dump update_delete
psql_ -c "INSERT INTO t2 VALUES (1, 1, 'a'), (1, 2, 'b')" -c "INSERT INTO t3 VALUES (7, 'full'), (7, 'full')" \
      -c "UPDATE t3 SET y = 'fuller' WHERE x = 7" -c "DELETE FROM t3" >/dev/null
dump full_identity
psql_ -c "INSERT INTO toasty SELECT 1, string_agg(md5(g::text), '') , 0 FROM generate_series(1, 200) g" \
      -c "UPDATE toasty SET n = 1 WHERE id = 1" >/dev/null
dump toast
psql_ -c "TRUNCATE t1, t2 RESTART IDENTITY" -c "SELECT pg_logical_emit_message(true, 'app', 'in txn')" \
      -c "SELECT pg_logical_emit_message(false, 'app', E'\\\\x00ff'::bytea)" >/dev/null
dump truncate_message
psql_ -c "INSERT INTO t2 SELECT g, g, repeat('x', 20) FROM generate_series(1, 1500) g" >/dev/null
dump stream_commit
psql_ <<'SQL' >/dev/null
BEGIN;
INSERT INTO t2 SELECT g, -g, repeat('y', 20) FROM generate_series(1, 1000) g;
SAVEPOINT sp;
INSERT INTO t2 SELECT g, -g - 5000, repeat('z', 20) FROM generate_series(1, 1000) g;
ROLLBACK TO SAVEPOINT sp;
INSERT INTO t2 VALUES (-1, -1, 'after savepoint');
COMMIT;
SQL
dump stream_abort
