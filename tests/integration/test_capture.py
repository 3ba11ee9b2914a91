"""Capture end to end: inserts, updates (including primary-key changes),
deletes, a two-table TRUNCATE and re-inserts, rollbacks and a rolled-back
savepoint, over three tables (one with REPLICA IDENTITY FULL and no key),
delivered by one `cdc run --stop-at-lsn` to a JSONL file, a PostgreSQL
mirror and a PostgreSQL event log.

Expectations come from the database: the oracle slot (test_decoding) for
which changes exist and where, and RETURNING clauses for every row image."""

import collections
import json
import random

import harness as h

TABLES = ["public.customers", "public.order_lines", "public.audit"]
DDL = """
CREATE TABLE public.customers (
    id        int PRIMARY KEY,
    email     text NOT NULL,
    name      text,
    score     numeric(10,2),
    active    boolean,
    signed_up timestamptz
);
CREATE TABLE public.order_lines (
    order_id int,
    line_no  int,
    sku      text,
    qty      int,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE public.audit (id int, action text, detail text);
ALTER TABLE public.audit REPLICA IDENTITY FULL;
"""


def run_workload(rec, rng):
    c = "public.customers"
    ol = "public.order_lines"
    au = "public.audit"

    def email(i):
        return "user%d.%d@example.com" % (i, rng.randrange(10 ** 6))

    # 1: inserts into all three tables, duplicate audit rows
    rec.begin()
    for i in range(1, 9):
        rec.insert(c, "INSERT INTO customers VALUES (%s, %s, %s, %s, %s, now() - %s * interval '1 day')",
                   (i, email(i), "Name %d" % i, "%d.%02d" % (rng.randrange(1000), rng.randrange(100)),
                    i % 2 == 0, i))
    for o in range(1, 4):
        rec.insert(ol, "INSERT INTO order_lines SELECT %s, g, 'SKU-' || g, %s FROM generate_series(1, %s) g",
                   (o, rng.randrange(1, 9), 2 + o % 2))
    rec.insert(au, "INSERT INTO audit VALUES (1, 'login', 'a'), (1, 'login', 'a'), (2, 'logout', 'b'), "
                   "(3, 'x', NULL)")
    rec.commit()
    # 2: interleaved tables; a multi-row update; primary-key changes
    rec.begin()
    rec.update(c, "email = %s", "id = 2", (email(2),))
    rec.insert(ol, "INSERT INTO order_lines VALUES (1, 4, 'SKU-X', 1)")
    rec.update(ol, "qty = qty + 10", "order_id = 2")
    rec.update(c, "id = 103", "id = 3")
    rec.update(ol, "line_no = 20", "order_id = 1 AND line_no = 2")
    rec.insert(au, "INSERT INTO audit VALUES (4, 'pk-change', 'c3->c103')")
    rec.update(c, "name = NULL, score = NULL", "id = 6")
    rec.commit()
    # 3: deletes; an update and a delete hitting duplicate rows of a keyless table
    rec.begin()
    rec.delete(c, "id = 4")
    rec.delete(ol, "order_id = 3")
    rec.update(au, "detail = 'y'", "id = 1")
    rec.delete(au, "id = 2")
    rec.commit()
    # 4: rolled back: must leave no trace
    rec.begin()
    rec.insert(c, "INSERT INTO customers VALUES (999, 'rolled@back', 'x', 1, true, now())")
    rec.update(c, "email = 'never'", "id = 1")
    rec.delete(c, "id = 5")
    rec.rollback()
    # 5: a one-statement transaction
    rec.begin()
    rec.update(c, "score = score * 2", "id = 1")
    rec.commit()
    # 6: a savepoint rolled back inside a committed transaction
    rec.begin()
    rec.execute("SAVEPOINT s1")
    rec.execute("INSERT INTO customers VALUES (50, 'savepoint@x', 'gone', 0, false, now())")
    rec.execute("ROLLBACK TO SAVEPOINT s1")
    rec.pending = []
    rec.insert(c, "INSERT INTO customers VALUES (51, %s, 'kept', 1.5, true, now())", (email(51),))
    rec.commit()
    # 7: two-table TRUNCATE
    rec.begin()
    rec.truncate([c, ol])
    rec.commit()
    # 8: re-insert keys that existed before the truncate
    rec.begin()
    for i in range(1, 6):
        rec.insert(c, "INSERT INTO customers VALUES (%s, %s, %s, %s, %s, now())",
                   (i, email(i), "Again %d" % i, "%d.5" % i, i % 3 == 0))
    rec.insert(ol, "INSERT INTO order_lines SELECT o, l, 'SKU-' || o || '-' || l, o * l "
                   "FROM generate_series(1, 3) o, generate_series(1, 2) l")
    rec.commit()
    # 9: multi-row update, FULL-identity delete with a NULL, a key moved away
    #    and the old key reused in the same transaction
    rec.begin()
    rec.update(c, "active = NOT active", "id <= 3")
    rec.delete(au, "id = 3")
    rec.update(c, "id = 1001", "id = 1")
    rec.insert(c, "INSERT INTO customers VALUES (1, %s, 'reused key', 7, true, now())", (email(1),))
    rec.update(c, "email = %s", "id = 1", (email(1),))
    rec.commit()
    # 10: a bigger transaction
    rec.begin()
    rec.insert(ol, "INSERT INTO order_lines SELECT 100 + g / 10, g % 10, md5(g::text), g "
                   "FROM generate_series(0, 299) g")
    rec.update(ol, "qty = -qty", "order_id BETWEEN 100 AND 114")
    rec.delete(ol, "order_id >= 120")
    rec.insert(au, "INSERT INTO audit SELECT g, 'bulk', NULL FROM generate_series(1, 5) g")
    rec.commit()


def check_per_key_order(records, metas):
    last = {}
    for i, rec in enumerate(records, 1):
        table = h.rec_table(rec)
        m = metas[table]
        if rec["op"] == "t" or not m.key:
            continue
        pos = (h.rec_commit_lsn(rec), rec["source"]["lsn"])
        keys = set()
        for img in (rec["before"], rec["after"]):
            if img and all(img.get(k) is not None for k in m.key):
                keys.add((table, tuple(json.dumps(img[k]) for k in m.key)))
        for k in keys:
            if k in last and last[k] >= pos:
                raise AssertionError("line %d: key %s delivered out of commit order" % (i, k))
            last[k] = pos


def check_event_keys(rows, metas):
    for topic, part, offset, key, value in rows:
        m = metas["%s.%s" % (value["source"]["schema"], value["source"]["table"])]
        if value["op"] == "t" or not m.key:
            continue
        images = [value["after"]] if value["op"] == "c" else [value["before"]] if value["op"] == "d" \
            else [value["after"], value["before"]]
        wants = [{k: img.get(k) for k in m.key} for img in images if img]
        if key not in wants:
            raise AssertionError("event (%s,%s,%s): event_key %s, want %s"
                                 % (topic, part, offset, key, wants[0]))


def check_events_table_shape(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "WHERE a.attrelid = 'public.cdc_events'::regclass AND a.attnum > 0 "
                    "AND NOT a.attisdropped")
        cols = dict(cur.fetchall())
        want = {"event_key": "jsonb", "event_value": "jsonb", "source_topic": "text",
                "source_partition": "integer", "source_offset": "bigint"}
        for c, t in want.items():
            assert cols.get(c) == t, "cdc_events.%s is %s, want %s" % (c, cols.get(c), t)
        cur.execute("SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
                    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = 'public.cdc_events'::regclass AND i.indisunique "
                    "GROUP BY i.indexrelid")
        uniques = [sorted(r[0]) for r in cur.fetchall()]
        assert sorted(["source_offset", "source_partition", "source_topic"]) in uniques, \
            "cdc_events lacks UNIQUE(source_topic, source_partition, source_offset): %s" % uniques


def test_capture_all_sinks(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute(DDL)
    out = ctx.tmpdir("out")
    jsonl = out + "/events.jsonl"
    cdc = ctx.cdc(
        h.pipeline_config(cl, TABLES, [h.file_sink(jsonl), h.pg_sink(cl, "replica"),
                                       h.pg_sink(cl, "events")]),
        h.platform_config(ctx.tmpdir("state")),
        cluster=cl,
    )
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()

    metas = {t: h.TableMeta(src, t) for t in TABLES}
    rec = h.Recorder(cl.connect("src", autocommit=False), metas)
    seed = random.randrange(1 << 30)
    ctx.log("workload seed %d" % seed)
    run_workload(rec, random.Random(seed))
    stop = cl.current_lsn("src")
    txns = oracle.read(TABLES, stop)

    # the oracle must agree with what the workload did (checks the test itself)
    recorded = collections.Counter({k: len(v) for k, v in rec.expect.items()})
    seen = collections.Counter((c.xid, c.table, c.op) for c in h.Oracle.flatten(txns))
    assert recorded == seen, "oracle and workload disagree: %s" % (
        list(((recorded - seen) + (seen - recorded)).items())[:5])

    res = cdc.run_to(stop, timeout=120)
    ctx.log("cdc run took %.1fs" % res.duration)

    mirror = cl.connect("mirror")
    for t in TABLES:
        n = h.compare_tables(src, mirror, t)
        ctx.log("mirror %s: %d rows equal" % (t, n))
    with mirror.cursor() as cur:
        cur.execute("SELECT to_regclass('public.cdc_checkpoints')")
        assert cur.fetchone()[0] is not None, "mirror has no public.cdc_checkpoints"

    records = h.read_jsonl(jsonl)
    n = h.check_jsonl_against_oracle(records, txns)
    assert len(records) == n
    trunc = [r for r in records if r["op"] == "t"]
    assert sorted(h.rec_table(r) for r in trunc) == ["public.customers", "public.order_lines"], \
        "truncate lines: %s" % [h.rec_table(r) for r in trunc]
    assert len({r["source"]["txId"] for r in trunc}) == 1
    h.match_records(records, rec.expect, metas)
    check_per_key_order(records, metas)
    h.check_replay_equals_source(records, src, TABLES)
    ctx.log("JSONL: %d lines in %d transactions, all as the oracle says" % (n, len(txns)))

    rows = h.read_events(mirror)
    h.check_events_against_oracle(rows, txns)
    h.check_events_match_file(rows, records)
    check_event_keys(rows, metas)
    check_events_table_shape(mirror)
    ctx.log("event log: %d rows, all as the oracle says" % len(rows))

    slot = cl.slot("t1_slot")
    assert slot is not None and slot["plugin"] == "pgoutput", slot
    last = max(r["source"]["lsn"] for r in records)
    assert h.lsn_to_int(slot["confirmed_flush_lsn"]) > last, \
        "slot confirmed_flush_lsn %s not past the last change %s" % (
            slot["confirmed_flush_lsn"], h.int_to_lsn(last))
