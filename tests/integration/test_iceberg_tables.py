"""The iceberg sink's tables over time and places: an S3 warehouse on
s3rver (every request's signature verified), a REST catalog (the test fake:
schema evolution as add-schema, a commit whose answer was lost), background
maintenance (compaction and expiry while changes stream, the tables still
equal to the source), and the `cdc lakehouse` verbs.  Tables are read back
as in test_iceberg_sink.py (harness/iceberg.py)."""

import os
import random
import re
import time
import urllib.request

import harness as h


def test_s3_warehouse(ctx):
    """An upsert table on S3 (s3rver behind the SigV4-checking proxy),
    filesystem catalog on S3 too: every request signed and verified, and
    icebird reads the table from the server equal to the source."""
    h.require_js()
    proxy, endpoint = h.start_s3(ctx)
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    sink = h.iceberg_sink("lake", "s3://lake/wh", table_namespace="db", write_mode="upsert",
                          s3_endpoint=endpoint, s3_access_key_id="S3RVER",
                          s3_secret_access_key="S3RVER", flush_interval_seconds=1)
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [sink]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    cur = src.cursor()
    cur.execute("INSERT INTO items (id, name, qty, price) SELECT g, 'n' || g, g, g * 1.25 "
                "FROM generate_series(1, 300) g")
    cur.execute("UPDATE items SET qty = 0 WHERE id % 7 = 0")
    cdc.run_to(cl.current_lsn("src"), timeout=180)
    cur.execute("DELETE FROM items WHERE id % 5 = 0")
    cur.execute("UPDATE items SET name = 'again' WHERE id % 3 = 0")
    cdc.run_to(cl.current_lsn("src"), timeout=180)
    bad = [x for x in proxy.log if x[4]]
    signed = [x for x in proxy.log if x[3]]
    assert signed and not bad, bad[:3]
    smeta, want = h.source_state(src, "public.items")
    rows = h.node("read_iceberg.mjs", "s3://lake/wh/db/items",
                  env={"S3_ENDPOINT": endpoint})["rows"]
    h.assert_same(h.canon_rows(rows, smeta.types, smeta.key, True), want, "the S3 table")
    r = h.lakehouse(cdc, "snapshots", "--table", "items")
    assert "s3://lake/wh/db/items" in r.stdout and r.stdout.count("\n* ") == 1, r.stdout
    ctx.log("%d signed S3 requests verified" % len(signed))


def test_maintenance(ctx):
    """Background maintenance while changes stream in small snapshots:
    compaction rewrites small files with their deletes applied and drops
    the delete files, expiry removes old snapshots with every manifest list,
    manifest and file only they reached; the table stays equal to the
    source and cdc.position survives both (the current snapshot has it)."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    wh = ctx.tmpdir("wh")
    maint = {"enabled": True, "compaction_interval_seconds": 1.5,
             "compaction_file_threshold": 4, "expire_snapshots_interval_seconds": 2,
             "expire_snapshots_older_than_seconds": 0, "min_snapshots_to_keep": 2,
             "target_file_size_mb": 1}
    sink = h.iceberg_sink("lake", "file://" + wh, table_namespace="db", write_mode="upsert",
                          batch_size=200, flush_interval_seconds=0.3, maintenance=maint)
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [sink]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    cur = src.cursor()
    rng = random.Random(5)
    n = 0

    def churn(rounds):
        nonlocal n
        for _ in range(rounds):
            cur.execute("INSERT INTO items (id, name, qty) SELECT g, 'n', 0 FROM "
                        "generate_series(%s, %s) g", (n + 1, n + 20))
            n += 20
            cur.execute("UPDATE items SET qty = qty + 1 WHERE id %% 7 = %s", (rng.randrange(7),))
            cur.execute("DELETE FROM items WHERE id = %s", (rng.randrange(1, n),))
            time.sleep(0.1)

    churn(40)
    compacted = h.wait_log_event(proc, "sink.iceberg.compacted", 60,
                                 pred=lambda d: int(d["delete_files"]) > 0)
    h.wait_log_event(proc, "sink.iceberg.expired", 60)
    churn(10)
    time.sleep(1)
    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    expired = h.log_events(res.stderr, "sink.iceberg.expired")
    tdir = os.path.join(wh, "db", "items")
    meta_path = h.fs_metadata(tdir)
    meta, _, want = h.check_table(meta_path, src, "public.items", "items after maintenance")
    cur_snap = [s for s in meta["snapshots"] if s["snapshot-id"] == meta["current-snapshot-id"]]
    assert cur_snap and "cdc.position" in cur_snap[0]["summary"], cur_snap
    pos = [p for p in h.positions(meta) if p is not None]
    assert pos == sorted(pos), pos
    left = {f for f in h.files_on_disk(tdir) if f.endswith((".avro", ".parquet"))} - \
        h.referenced_files(meta, meta_path)
    assert not left, "expiry left %d files nothing references, e.g. %s" % (
        len(left), sorted(left)[:3])
    gone = sum(int(d["files"]) for d in expired)
    ctx.log("compaction: %s files and %s delete files into %s; expiry: %d passes removed %d "
            "files; %d snapshots left, %d rows" % (
                compacted["files"], compacted["delete_files"], compacted["new_files"],
                len(expired), gone, len(meta["snapshots"]), len(want)))
    assert gone > 0


def test_lakehouse_cli(ctx):
    """cdc lakehouse: snapshots lists each snapshot with its position;
    query reads a table as of a snapshot like icebird's time travel; rollback
    needs --yes, makes an earlier snapshot current, and is refused while a
    `cdc run` owns the pipeline; maintain compacts; unknown tables and
    snapshots are usage errors."""
    h.require_js()
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    wh = ctx.tmpdir("wh")
    sink = h.iceberg_sink("lake", "file://" + wh, table_namespace="db", write_mode="upsert",
                          flush_interval_seconds=0.5,
                          maintenance={"compaction_file_threshold": 2})
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items", "public.parts"], [sink]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    cur = src.cursor()
    cur.execute("INSERT INTO items (id, name, price) SELECT g, 'a' || g, g / 4.0 FROM "
                "generate_series(1, 30) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    smeta, first_state = h.source_state(src, "public.items")
    cur.execute("UPDATE items SET name = 'b' WHERE id <= 10")
    cur.execute("DELETE FROM items WHERE id > 25")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    tdir = os.path.join(wh, "db", "items")
    meta = h.load_json(h.fs_metadata(tdir))
    first, last = meta["snapshots"][0], meta["snapshots"][-1]

    out = h.lakehouse(cdc, "snapshots").stdout
    assert "sink lake, table db.items" in out and "sink lake, table db.parts: not created yet" \
        in out, out
    for s in meta["snapshots"]:
        line = [l for l in out.splitlines() if str(s["snapshot-id"]) in l]
        assert len(line) == 1 and s["summary"]["cdc.position"] in line[0], (s, out)
    assert re.search(r"^\* %d " % last["snapshot-id"], out, re.M), out
    # time travel
    got = h.canon_rows(h.query_rows(cdc, first["snapshot-id"], "items"), smeta.types, smeta.key)
    h.assert_same(got, first_state, "`cdc lakehouse query` of the first snapshot")
    ice = h.canon_rows(h.icebird_rows(h.fs_metadata(tdir), first["snapshot-id"]), smeta.types,
                       smeta.key, True)
    h.assert_same(ice, first_state, "icebird's time travel to the first snapshot")
    lim = h.lakehouse(cdc, "query", "--snapshot-id", str(last["snapshot-id"]), "--limit", "3")
    assert len(lim.stdout.splitlines()) == 3
    h.lakehouse(cdc, "query", "--snapshot-id", "1", rc=2)
    h.lakehouse(cdc, "snapshots", "--table", "nosuch", rc=2)
    h.lakehouse(cdc, "snapshots", "--sink-id", "nosuch", rc=2)
    # rollback: --yes, the lock, then the old state current
    r = h.lakehouse(cdc, "rollback", "--snapshot-id", str(first["snapshot-id"]), rc=2)
    assert "--yes" in r.stderr
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    r = h.lakehouse(cdc, "rollback", "--snapshot-id", str(first["snapshot-id"]), "--yes", rc=1)
    assert "pid %d" % proc.pid in r.stderr, r.stderr
    proc.terminate()
    proc.wait(60).expect_rc(0)
    r = h.lakehouse(cdc, "rollback", "--snapshot-id", str(first["snapshot-id"]), "--yes")
    assert "is current again" in r.stdout and first["summary"]["cdc.position"] in r.stdout
    meta2 = h.load_json(h.fs_metadata(tdir))
    assert meta2["current-snapshot-id"] == first["snapshot-id"]
    ice = h.canon_rows(h.icebird_rows(h.fs_metadata(tdir)), smeta.types, smeta.key, True)
    h.assert_same(ice, first_state, "the rolled-back table read by icebird")
    # maintain: two small data files of the current snapshot? compaction
    # needs them; the rolled-back table has one, so roll forward again
    h.lakehouse(cdc, "rollback", "--snapshot-id", str(last["snapshot-id"]), "--yes")
    r = h.lakehouse(cdc, "maintain", "--table", "public.items")
    assert re.search(r"table db\.items: compacted \d+ data files and \d+ delete files", r.stdout), \
        r.stdout
    h.check_table(h.fs_metadata(tdir), src, "public.items", "items after `cdc lakehouse maintain`")


def test_rest_catalog(ctx):
    """An upsert table through a REST catalog (the test fake: requirements
    checked, metadata written by the server): a column added at the source
    becomes add-schema and set-current-schema with their requirements; a
    commit answered 503 after the server applied it is recognized by its
    commit id, not made twice; the table equals the source."""
    h.require_js()
    wh = ctx.tmpdir("wh")
    url = h.start_rest_catalog(ctx, "file://" + wh)
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    cl.execute("src", h.ITEMS_DDL)
    sink = h.iceberg_sink("lake", "file://" + wh, catalog_uri="rest+" + url,
                          table_namespace="db", write_mode="upsert", flush_interval_seconds=0.5)
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [sink]),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    cur = src.cursor()
    cur.execute("INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 50) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    cur.execute("ALTER TABLE items ADD COLUMN extra text")
    cur.execute("UPDATE items SET extra = 'e' || id WHERE id <= 10")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    meta_path = h.rest_metadata(url, "db", "items")
    meta, _, _ = h.check_table(meta_path, src, "public.items", "the REST catalog's table")
    assert meta["current-schema-id"] == 1 and len(meta["schemas"]) == 2, meta["schemas"]
    assert [f["name"] for f in meta["schemas"][1]["fields"]][-1] == "extra"
    # the next snapshot commit is applied, then answered 503
    nsnap = len(meta["snapshots"])
    cur.execute("DELETE FROM items WHERE id > 40")
    req = urllib.request.Request(url + "/test/fail-next-commit", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    res = cdc.run_to(cl.current_lsn("src"), timeout=120)
    retries = h.log_events(res.stderr, "sink.iceberg.commit_retry")
    assert [(d["reason"], d["committed"]) for d in retries] == [("outcome_unknown", "true")], \
        retries
    meta_path = h.rest_metadata(url, "db", "items")
    meta, _, want = h.check_table(meta_path, src, "public.items", "the REST catalog's table")
    assert len(meta["snapshots"]) == nsnap + 1, (nsnap, meta["snapshots"])
    ids = [s["summary"]["cdc.commit-id"] for s in meta["snapshots"]]
    assert len(ids) == len(set(ids)), ids
    assert want[(3,)]["extra"] == "e3" and (45,) not in want
