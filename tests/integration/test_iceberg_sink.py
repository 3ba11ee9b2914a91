"""The iceberg sink, from a real PostgreSQL source to Iceberg tables read
back by readers that share no code with cdc: icebird (whole tables,
deletes and time travel), DuckDB with extensions off (every data and delete
file; merge-on-read applied here by the spec, harness/iceberg.py) and avsc
(every manifest list and manifest).

upsert mode must equal the source after inserts, repeated updates (also of
rows whose TOASTed values the changes do not carry), key changes, deletes,
re-inserts and TRUNCATE; append mode must hold exactly one row per change
of the oracle; a kill -9 loop under load must leave neither duplicates nor
gaps, with cdc.position never decreasing; files of an interrupted commit
are removed; columns added at the source are added to the table; an
initial snapshot resumed after kill -9 applies idempotently.  The SQL
catalog (PyIceberg SqlCatalog's tables) and the filesystem catalog are used
here; S3, the REST catalog, maintenance and `cdc lakehouse` in
test_iceberg_tables.py."""

import json
import os
import random
import re
import sqlite3
import time

import harness as h

def test_upsert_mirrors_source(ctx):
    """Two runs of changes into an upsert table (filesystem catalog): the
    table equals the source after each, read three ways; snapshots of the
    first run read by time travel equal the source as it was then;
    identifier fields are the primary key and equality deletes name it."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    wh = ctx.tmpdir("wh")
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    sink = h.iceberg_sink("lake", "file://" + wh, table_namespace="db", write_mode="upsert",
                          batch_size=100000, flush_interval_seconds=1)
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items", "public.parts"],
                                    [sink, h.file_sink(jsonl)]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    rng = random.Random(7)
    cur = src.cursor()

    def item(i, note=None):
        return (i, "n%d" % i, i % 17, "%d.%02d" % (i, i % 100),
                "2024-03-%02d 10:%02d:%02d+00" % (1 + i % 28, i % 60, i % 60), i % 3 == 0,
                json.dumps({"i": i, "tags": ["a", "b"][: i % 3]}), note)

    # run 1: inserts (some TOASTed), updates of one key again and again, in
    # one transaction and across them, deletes, re-inserts, a key change
    for i in range(1, 201):
        cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    item(i, h.big(rng) if i % 20 == 0 else "short %d" % i))
    cur.execute("BEGIN")
    for k in range(5):
        cur.execute("UPDATE items SET qty = qty + 1, name = %s WHERE id = 7", ("x%d" % k,))
    cur.execute("COMMIT")
    for k in range(3):
        cur.execute("UPDATE items SET price = price + 1 WHERE id BETWEEN 10 AND 30")
    cur.execute("DELETE FROM items WHERE id IN (11, 12, 13)")
    cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", item(12, "back"))
    cur.execute("UPDATE items SET id = id + 1000 WHERE id = 14")
    # a TOASTed row updated in the same batch it was written: the new row
    # takes the note from the batch's own file
    cur.execute("UPDATE items SET qty = -1 WHERE id = 40")
    cur.execute("INSERT INTO parts SELECT g, 'b' || (g % 3), 'v' FROM generate_series(1, 30) g")
    cur.execute("UPDATE parts SET v = 'w' WHERE a < 10")
    stop1 = cl.current_lsn("src")
    cdc.run_to(stop1, timeout=180)
    items_dir = os.path.join(wh, "db", "items")
    meta_path = h.fs_metadata(items_dir)
    meta1, smeta, state1 = h.check_table(meta_path, src, "public.items", "items after run 1")
    h.check_table(h.fs_metadata(os.path.join(wh, "db", "parts")), src, "public.parts",
                "parts after run 1")
    snap1 = meta1["current-snapshot-id"]
    sc = meta1["schemas"][-1]
    ids = {f["name"]: f["id"] for f in sc["fields"]}
    assert sc["identifier-field-ids"] == [ids["id"]], sc
    assert [f for f in sc["fields"] if f["name"] == "id"][0]["required"] is True
    types = {f["name"]: f["type"] for f in sc["fields"]}
    assert types == {"id": "long", "name": "string", "qty": "int", "price": "decimal(12,2)",
                     "at": "timestamptz", "flag": "boolean", "doc": "string",
                     "note": "string"}, types

    # run 2: updates of committed TOASTed rows (the note comes from the
    # table as of the last snapshot), one of them twice in a batch (from the
    # deferred row before it), deletes of committed rows (equality deletes),
    # TRUNCATE of parts and rows after it
    cur.execute("UPDATE items SET qty = 99 WHERE id IN (20, 60, 80)")
    cur.execute("UPDATE items SET name = 'twice' WHERE id = 60")
    cur.execute("UPDATE items SET id = 2000 WHERE id = 100")
    cur.execute("DELETE FROM items WHERE id BETWEEN 150 AND 160")
    cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", item(155, None))
    cur.execute("UPDATE items SET note = 'replaced' WHERE id = 120")
    cur.execute("TRUNCATE parts")
    cur.execute("INSERT INTO parts VALUES (1, 'x', 'after'), (2, 'y', 'after')")
    cur.execute("UPDATE parts SET b = 'z' WHERE a = 2")
    stop2 = cl.current_lsn("src")
    cdc.run_to(stop2, timeout=180)
    meta_path = h.fs_metadata(items_dir)
    meta2, _, state2 = h.check_table(meta_path, src, "public.items", "items after run 2")
    h.check_table(h.fs_metadata(os.path.join(wh, "db", "parts")), src, "public.parts",
                "parts after run 2")
    assert state2[(20,)]["note"] == state1[(20,)]["note"] and len(state2[(20,)]["note"]) == 9000
    # cdc's own reader, current and as of run 1
    h.assert_same(h.canon_rows(h.query_rows(cdc, meta2["current-snapshot-id"], "items"),
                             smeta.types, smeta.key), state2, "items by `cdc lakehouse query`")
    # time travel: icebird and cdc read the table as it was after run 1
    h.assert_same(h.canon_rows(h.icebird_rows(meta_path, snap1), smeta.types, smeta.key, True),
                state1,
                "items as of run 1 read by icebird")
    h.assert_same(h.canon_rows(h.spec_rows(meta2, snap1), smeta.types, smeta.key), state1,
                "items as of run 1 by the spec's rules")
    h.assert_same(h.canon_rows(h.query_rows(cdc, snap1, "public.items"), smeta.types, smeta.key),
                state1, "items as of run 1 by `cdc lakehouse query`")
    # equality deletes carry the identifier field; positions never decrease
    eq = [e for e in h.live_entries(meta2) if e["data_file"]["content"] == 2]
    assert eq and all(e["data_file"]["equality_ids"] == [ids["id"]] for e in eq), eq[:2]
    pos = [p for p in h.positions(meta2) if p is not None]
    assert pos and pos == sorted(pos), pos
    assert h.lsn_to_int(stop1) <= pos[-1][0] <= h.lsn_to_int(stop2), (pos[-1], stop1, stop2)
    # the file sink beside it got the same changes
    assert h.count_lines(jsonl) > 0
    ctx.log("%d snapshots; %d rows; time travel to %d ok" % (
        len(meta2["snapshots"]), len(state2), snap1))


def rows_positions(rows):
    """(commit LSN, index, op, topic) of each append-mode row."""
    out = []
    for r in rows:
        lsn, idx = r["_cdc_position"].rsplit(":", 1)
        out.append((h.lsn_to_int(lsn), int(idx), r["_cdc_op"], r["_cdc_topic"]))
    return out


def check_one_row_per_change(rows, txns, topic_prefix="cdc"):
    """Every change of the oracle exactly once among append-mode rows: the
    rows grouped by commit LSN are the oracle's transactions, change by
    change (index, op, table)."""
    by_commit = {}
    for lsn, idx, op, topic in rows_positions(rows):
        by_commit.setdefault(lsn, []).append((idx, op, topic))
    assert len(by_commit) == len(txns), "%d transactions in the table, %d in the oracle" % (
        len(by_commit), len(txns))
    n = 0
    for (lsn, got), t in zip(sorted(by_commit.items()), txns):
        assert t.commit_ok(lsn), "transaction %d: commit LSN %s" % (t.xid, h.int_to_lsn(lsn))
        want = sorted((c.index, c.op, "%s.%s" % (topic_prefix, c.table)) for c in t.changes)
        assert sorted(got) == want, "transaction %d: rows %s, oracle %s" % (
            t.xid, sorted(got)[:8], want[:8])
        n += len(got)
    return n


def test_append_one_row_per_change(ctx):
    """The random workload into an append table per source table in a SQLite
    catalog laid out as PyIceberg's SqlCatalog: exactly one row per change
    of the oracle, each with the image the file sink's envelope has (the old
    image for deletes), _cdc_unchanged naming unchanged TOASTed columns."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    wh = ctx.tmpdir("wh")
    db = os.path.join(ctx.tmpdir("catalog"), "catalog.db")
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    sink = h.iceberg_sink("history", "file://" + wh, catalog_uri="sqlite:///" + db,
                          catalog_name="shop", table_namespace="raw",
                          table_name="{schema}_{table}_changes", write_mode="append",
                          batch_size=2000, flush_interval_seconds=0.5)
    cdc = ctx.cdc(h.pipeline_config(cl, h.STANDARD_TABLES, [sink, h.file_sink(jsonl)]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    w = ctx.workload(cl, "src", seed=11, max_txns=250, pause=0.002)
    w.start()
    w.join(300)
    w.stop()
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=300)
    txns = oracle.read(h.STANDARD_TABLES, stop)
    records = {}
    for rec in h.read_jsonl(jsonl):
        commit = int(json.loads(rec["source"]["sequence"])[0])
        records[(commit, rec["transaction"]["total_order"] - 1)] = rec
    rows = []
    conn = sqlite3.connect(db)
    tables = conn.execute("SELECT catalog_name, table_namespace, table_name, iceberg_type "
                          "FROM iceberg_tables ORDER BY table_name").fetchall()
    nsprops = conn.execute("SELECT catalog_name, namespace, property_key "
                           "FROM iceberg_namespace_properties").fetchall()
    conn.close()
    assert tables == [("shop", "raw", "public_%s_changes" % t, "TABLE")
                      for t in ("accounts", "history", "lines")], tables
    assert ("shop", "raw", "exists") in nsprops, nsprops
    unchanged = 0
    for t in h.STANDARD_TABLES:
        meta_path = h.sql_metadata(db, "raw", "public_%s_changes" % t.split(".")[1], "shop")
        got = h.icebird_rows(meta_path)
        assert len(h.spec_rows(h.load_json(meta_path))) == len(got)
        smeta = h.TableMeta(src, t)
        for r, (lsn, idx, op, _) in zip(got, rows_positions(got)):
            rec = records[(lsn, idx)]
            img = rec["before"] if op == "d" else rec["after"]
            assert rec["op"] == op, (r, rec)
            names = set()
            for c in smeta.names:
                v = img.get(c) if img else None
                if v == h.UNCHANGED:
                    names.add(c)
                    assert r[c] is None, (c, r)
                    continue
                if smeta.types[c] == "numeric" and v is not None:
                    v = float(v)
                assert h.canon(smeta.types[c], r[c], True) == h.canon(smeta.types[c], v, True), \
                    (t, c, r[c], v)
            assert set((r["_cdc_unchanged"] or "").split(",")) - {""} == names, (r, names)
            unchanged += bool(names)
        rows += got
    n = check_one_row_per_change(rows, txns)
    ctx.log("%d changes, each once; %d rows without their unchanged TOAST value" % (
        n, unchanged))
    assert n == sum(c for _, c in w.committed)


def test_kill9_exactly_once(ctx):
    """kill -9 at random moments under the random workload, into an upsert
    table per source table (filesystem catalog) and an append table per
    source table (SQLite catalog): the upsert tables equal the source, the
    append tables hold each change of the oracle once, cdc.position never
    decreases from one snapshot to the next, and no file the tables do not
    reference is left (interrupted commits' files are removed at start)."""
    h.require_js()
    kills_wanted = int(os.environ.get("CDC_TEST_KILLS", "12"))
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    wh = ctx.tmpdir("wh")
    db = os.path.join(ctx.tmpdir("catalog"), "catalog.db")
    maint = {"orphan_file_grace_seconds": 0}
    sinks = [h.iceberg_sink("mirror", "file://" + wh, table_namespace="m", write_mode="upsert",
                            batch_size=300, flush_interval_seconds=0.3, maintenance=maint),
             h.iceberg_sink("log", "file://" + wh, table_namespace="a", write_mode="append",
                            catalog_uri="sqlite:///" + db, batch_size=500,
                            flush_interval_seconds=0.5, maintenance=maint)]
    slot = "ice_crash"
    cdc = ctx.cdc(h.pipeline_config(cl, h.STANDARD_TABLES, sinks, pipeline_id="icecrash",
                                    slot=slot, publication="ice_pub"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ctx.log("seed %d" % seed)
    w = ctx.workload(cl, "src", seed=seed, pause=0.02, bulk_ratio=0.02)
    w.start()
    proc = cdc.start()
    kills = 0
    while kills < kills_wanted:
        time.sleep(rng.uniform(0.3, 2.5))
        if proc.poll() is not None:
            raise AssertionError("cdc exited on its own (kill %d); %s" % (
                kills, proc.result().describe()))
        proc.kill9()
        kills += 1
        cl.wait_slot_inactive(slot)
        proc = cdc.start()
    time.sleep(1)
    w.stop()
    proc.kill9()
    stop = cl.current_lsn("src")
    cl.wait_slot_inactive(slot)
    res = cdc.run_to(stop, timeout=300)
    ctx.log("final run to %s took %.1fs" % (stop, res.duration))
    removed = sum(int(d.get("files", 0)) for d in h.log_events(res.stderr,
                                                               "sink.iceberg.orphans_removed"))
    txns = oracle.read(h.STANDARD_TABLES, stop)
    rows = []
    for t in h.STANDARD_TABLES:
        name = t.split(".")[1]
        mdir = os.path.join(wh, "m", name)
        meta, _, want = h.check_table(h.fs_metadata(mdir), src, t, "upsert table %s" % name)
        ppos = [p for p in h.positions(meta) if p is not None]
        assert ppos == sorted(ppos), "%s: cdc.position decreased: %s" % (name, ppos)
        apath = h.sql_metadata(db, "a", name)
        ameta = h.load_json(apath)
        apos = [p for p in h.positions(ameta) if p is not None]
        assert apos == sorted(apos), "%s (append): cdc.position decreased: %s" % (name, apos)
        rows += h.icebird_rows(apath)
        for d, mp in ((mdir, h.fs_metadata(mdir)), (os.path.dirname(os.path.dirname(apath)),
                                                    apath)):
            m = h.load_json(mp)
            left = {f for f in h.files_on_disk(d) if f.endswith((".avro", ".parquet"))} - \
                h.referenced_files(m, mp)
            assert not left, "files no metadata references: %s" % sorted(left)[:5]
    n = check_one_row_per_change(rows, txns)
    assert n == sum(c for _, c in w.committed)
    ctx.log("%d kills; %d changes once each in the append tables; upsert tables equal the "
            "source; %d orphan files removed at the last start" % (kills + 1, n, removed))


def test_schema_changes(ctx):
    """A column added at the source is added to the Iceberg table (a new
    schema version with a new field id, made current), in upsert and append
    mode: rows written before it read NULL for it, by icebird and by DuckDB
    matching columns by field id.  A change the table cannot follow (a
    column's type changed) stops the pipeline with an error naming the table
    and the column, and the table keeps what it had."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    wh = ctx.tmpdir("wh")
    sinks = [h.iceberg_sink("up", "file://" + wh, table_namespace="up", write_mode="upsert",
                            flush_interval_seconds=1),
             h.iceberg_sink("log", "file://" + wh, table_namespace="log", write_mode="append",
                            flush_interval_seconds=1)]
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], sinks),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    cur = src.cursor()
    cur.execute("INSERT INTO items (id, name, qty) SELECT g, 'n' || g, g FROM "
                "generate_series(1, 20) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    cur.execute("ALTER TABLE items ADD COLUMN extra int, ADD COLUMN label varchar(10)")
    cur.execute("INSERT INTO items (id, name, qty, extra, label) VALUES (21, 'n21', 21, 7, 'x')")
    cur.execute("UPDATE items SET extra = id * 10 WHERE id <= 5")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    up = h.fs_metadata(os.path.join(wh, "up", "items"))
    meta, smeta, want = h.check_table(up, src, "public.items", "upsert table after ADD COLUMN")
    assert want[(3,)]["extra"] == 30 and want[(9,)]["extra"] is None
    for m in (meta, h.load_json(h.fs_metadata(os.path.join(wh, "log", "items")))):
        assert len(m["schemas"]) == 2 and m["current-schema-id"] == 1, m["schemas"]
        old = {f["name"]: f["id"] for f in m["schemas"][0]["fields"]}
        new = {f["name"]: f for f in m["schemas"][1]["fields"]}
        assert new["extra"]["id"] == max(old.values()) + 1 and \
            new["label"]["id"] == new["extra"]["id"] + 1, new
        assert new["extra"]["type"] == "int" and not new["extra"]["required"], new["extra"]
        assert m["last-column-id"] == new["label"]["id"]
    log = h.icebird_rows(h.fs_metadata(os.path.join(wh, "log", "items")))
    assert len(log) == 26, len(log)
    by = {(r["id"], r["_cdc_op"]): r for r in log}
    assert by[("1", "c")]["extra"] is None and by[("21", "c")]["extra"] == "7" and \
        by[("3", "u")]["extra"] == "30", by[("3", "u")]
    # DuckDB by field id: an old file lacks the column, a new one has it
    files = [h.file_path(e["data_file"]["file_path"]) for e in h.live_entries(meta)
             if e["data_file"]["content"] == 0]
    cols = {f: set(rows[0]) for f, rows in h.node("read_rows.mjs", *files).items() if rows}
    assert any("extra" not in c for c in cols.values()) and \
        any("extra" in c for c in cols.values()), cols
    # a type the table cannot follow: stop, naming table and column
    snaps = len(meta["snapshots"])
    cur.execute("ALTER TABLE items ALTER COLUMN qty TYPE bigint")
    cur.execute("UPDATE items SET qty = 5000000000 WHERE id = 1")
    err = h.run_failing(cdc)
    assert re.search(r"table (up|log)\.items, column qty: ", err) and "long" in err, err
    meta = h.load_json(h.fs_metadata(os.path.join(wh, "up", "items")))
    assert len(meta["snapshots"]) == snaps and meta["current-schema-id"] == 1
    ctx.log("stopped with: %s" % err)


def test_upsert_refuses_keyless_table(ctx):
    """upsert finds rows by key: a source table without a primary key stops
    the pipeline at its first change, naming the table."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", "CREATE TABLE public.nokey (a int, b text); "
               "ALTER TABLE public.nokey REPLICA IDENTITY FULL")
    wh = ctx.tmpdir("wh")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.nokey"], [
        h.iceberg_sink("lake", "file://" + wh, write_mode="upsert", flush_interval_seconds=1)]),
        h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    cl.execute("src", "INSERT INTO nokey VALUES (1, 'a')")
    err = h.run_failing(cdc)
    assert "table public.nokey has no primary key" in err and "write_mode append" in err, err
    assert not os.path.exists(os.path.join(wh, "default", "nokey"))


def test_half_written_commit_removed(ctx):
    """Files of a commit that never reached the catalog (written data,
    manifest and manifest list: a crash before the swap) are ignored by
    readers and removed when the sink next opens the table, once older than
    maintenance.orphan_file_grace_seconds; the table is intact."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    wh = ctx.tmpdir("wh")
    grace = 8
    sink = h.iceberg_sink("lake", "file://" + wh, table_namespace="db", write_mode="upsert",
                          flush_interval_seconds=0.5,
                          maintenance={"orphan_file_grace_seconds": grace})
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [sink]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    cl.execute("src", "INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 10) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    tdir = os.path.join(wh, "db", "items")
    out = h.lake_write(ctx, ["table"], {
        "warehouse": "file://" + wh, "catalog": {"type": "fs"}, "namespace": "db",
        "table": "items",
        "ops": [{"op": "half_commit", "rows": [["99", "ghost"] + [None] * 6]}]})
    written = time.monotonic()
    orphans = [h.file_path(p) for p in out["ops"][0]["orphans"]]
    assert len(orphans) == 3 and all(os.path.exists(p) for p in orphans), orphans
    # too young: kept by the next start
    cl.execute("src", "UPDATE items SET name = 'm' WHERE id = 1")
    res = cdc.run_to(cl.current_lsn("src"), timeout=120)
    if time.monotonic() - written < grace - 1:
        assert all(os.path.exists(p) for p in orphans), "removed within the grace period"
    # ignored by readers meanwhile
    meta_path = h.fs_metadata(tdir)
    h.check_table(meta_path, src, "public.items", "items with a half-written commit beside it")
    # older than the grace: removed
    time.sleep(max(0.0, grace + 0.5 - (time.monotonic() - written)))
    cl.execute("src", "UPDATE items SET name = 'o' WHERE id = 2")
    res = cdc.run_to(cl.current_lsn("src"), timeout=120)
    assert not any(os.path.exists(p) for p in orphans), [p for p in orphans if os.path.exists(p)]
    ev = h.log_events(res.stderr, "sink.iceberg.orphans_removed")
    assert ev and ev[0]["files"] == "3", ev
    meta_path = h.fs_metadata(tdir)
    h.check_table(meta_path, src, "public.items", "items after the cleanup")
    left = {f for f in h.files_on_disk(tdir) if f.endswith((".avro", ".parquet"))} - \
        h.referenced_files(h.load_json(meta_path), meta_path)
    assert not left, left


def test_initial_snapshot_resumed(ctx):
    """An initial snapshot (op r rows) into an upsert and an append table,
    killed once while it reads: the snapshot resumes, the upsert table
    replaces what re-read rows' keys had and equals the source, and the
    append table holds every source row, some twice at most (as the file
    sink: rows of the chunk being read when killed)."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    cl.execute("src", "INSERT INTO items (id, name, qty, note) SELECT g, 'n' || g, g % 10, "
               "repeat('x', 50) FROM generate_series(1, 80000) g")
    wh = ctx.tmpdir("wh")
    sinks = [h.iceberg_sink("up", "file://" + wh, table_namespace="up", write_mode="upsert",
                            batch_size=5000, flush_interval_seconds=0.2),
             h.iceberg_sink("log", "file://" + wh, table_namespace="log", write_mode="append",
                            batch_size=5000, flush_interval_seconds=0.2)]
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], sinks, snapshot_mode="initial",
                                    snapshot_chunk_rows=1000, snapshot_parallelism=1),
                  h.platform_config(state), cluster=cl)
    proc = cdc.start()
    snap_id = h.wait_log_event(proc, "snapshot.started", 120)["id"]

    # The kill follows the snapshot's own progress (chunks recorded done in
    # the state store, i.e. durable in both tables), not the first table
    # commit, which may come only once every chunk is read.
    def some_chunks_done():
        if h.log_events(h.proc_stderr(proc), "snapshot.done"):
            raise AssertionError("the snapshot finished before it could be killed")
        return len(h.snapshot_done_chunks(state, "t1", snap_id, "public.items")) >= 2
    h.wait_for(some_chunks_done, 120, "2 snapshot chunks recorded done", interval=0.02)
    proc.kill9()
    done = h.snapshot_done_chunks(state, "t1", snap_id, "public.items")
    nchunks = len(h.snapshot_plan(state, "t1", snap_id, "public.items")[1])
    assert 0 < len(done) < nchunks, "%d of %d chunks done at the kill" % (len(done), nchunks)
    cl.wait_slot_inactive("t1_slot")
    cl.execute("src", "UPDATE items SET qty = -1 WHERE id % 1000 = 0")
    res = cdc.run_to(cl.current_lsn("src"), timeout=300)
    resumed = h.log_events(res.stderr, "snapshot.resume")
    assert resumed and (int(resumed[0]["chunks_done"]), int(resumed[0]["of"])) == (len(done), nchunks), \
        "the state store had %d of %d chunks done at the kill; the restart logged %s" % (
            len(done), nchunks, resumed)
    h.check_table(h.fs_metadata(os.path.join(wh, "up", "items")), src, "public.items",
                "upsert table after a resumed snapshot")
    log = h.icebird_rows(h.fs_metadata(os.path.join(wh, "log", "items")))
    reads = {}
    for r in log:
        if r["_cdc_op"] == "r":
            reads[int(r["id"])] = reads.get(int(r["id"]), 0) + 1
    assert set(reads) == set(range(1, 80001)), len(reads)
    assert max(reads.values()) <= 2
    updates = sorted(int(r["id"]) for r in log if r["_cdc_op"] == "u")
    assert updates == list(range(1000, 80001, 1000)), updates[:5]
    ctx.log("%d snapshot rows read twice after the kill" % sum(1 for n in reads.values()
                                                               if n > 1))
