"""Iceberg table maintenance and storage, checked by independent readers
(icebird for rows, avsc for manifests, the file system or S3 for what is
left): compaction (replace) and snapshot expiry that deletes exactly what
nothing references any more, orphan cleanup after an interrupted commit,
rollback, partitioned tables (bucket, day and identity transforms, values
recomputed here), an S3 warehouse on s3rver behind a proxy that verifies
every SigV4 signature and the payload hash, and the size of cdc's Parquet
next to DuckDB's for the same rows and codec.  See test_lake_formats.py for
the formats themselves."""

import datetime
import json
import os
import random
import struct
import urllib.error
import urllib.request

import harness as h


def parquet_files(root):
    out = set()
    for d, _, files in os.walk(root):
        out |= {os.path.join(d, f) for f in files if f.endswith(".parquet")}
    return out


def test_compaction_expiry_orphans_rollback(ctx):
    h.require_js()
    wh = ctx.tmpdir("wh")
    out = h.lake_write(ctx, ["table"], {
        "warehouse": "file://" + wh, "catalog": {"type": "fs"}, "namespace": "db", "table": "t",
        "schema": h.KV,
        "ops": [
            {"op": "append", "rows": [["1", "a"], ["2", "b"]], "props": {"cdc.position": "0/A:1"}},
            {"op": "append", "rows": [["3", "c"]], "props": {"cdc.position": "0/B:1"}},
            {"op": "row_delta", "eq_ids": [1], "eq_deletes": [["1"]],
             "props": {"cdc.position": "0/C:1"}},
            # compaction: the live rows in one new file, deletes folded away;
            # the position moves along, as the sink copies it
            {"op": "replace", "rows": [["2", "b"], ["3", "c"]], "props": {"cdc.position": "0/C:1"}},
            {"op": "expire", "min_keep": 1},
            {"op": "reload"},
            {"op": "half_commit", "rows": [["9", "z"]]},
            {"op": "clean_orphans", "grace_ms": 3600000},  # too young: kept
            {"op": "clean_orphans"},
            {"op": "append", "rows": [["4", "d"]], "props": {"cdc.position": "0/D:1"}},
            {"op": "rollback", "to_op": 3},
        ]})
    ops = out["ops"]
    root = os.path.join(wh, "db", "t")
    url = "file://" + root
    assert h.read_table(url) == [(2, "b"), (3, "c")]
    assert h.read_table(url, "--snapshot", ops[9]["snapshot_id"]) == [(2, "b"), (3, "c"), (4, "d")]
    # expiry removed the 3 old snapshots, their 3 manifest lists, the 3
    # manifests only they listed and the 3 files only those held live (two
    # data files and the equality delete file)
    assert ops[4]["expired"] == {"snapshots": 3, "manifest_lists": 3, "manifests": 3,
                                 "files": 3}, ops[4]
    assert ops[5]["cdc_position"] == "0/C:1", ops[5]
    # the orphans of the interrupted commit are gone (after their grace
    # period), nothing else
    assert ops[7]["removed"] == 0, ops[7]
    assert ops[8]["removed"] == 3 and not any(os.path.exists(h.file_path(p))
                                              for p in ops[6]["orphans"]), ops[8]
    want = {h.file_path(p) for p in ops[3]["data_files"] + ops[9]["data_files"]}
    assert parquet_files(root) == want, parquet_files(root) ^ want
    with open(h.file_path(out["metadata_location"])) as f:
        meta = json.load(f)
    snaps = meta["snapshots"]
    assert [s["snapshot-id"] for s in snaps] == [ops[3]["snapshot_id"], ops[9]["snapshot_id"]]
    assert meta["current-snapshot-id"] == ops[3]["snapshot_id"]  # rolled back
    assert meta["snapshot-log"][-1]["snapshot-id"] == ops[3]["snapshot_id"]
    assert all(e["snapshot-id"] in (ops[3]["snapshot_id"], ops[9]["snapshot_id"])
               for e in meta["snapshot-log"])
    rs = snaps[0]["summary"]
    assert (rs["operation"], rs["removed-data-files"], rs["removed-delete-files"],
            rs["deleted-records"], rs["added-records"], rs["total-records"],
            rs["total-data-files"], rs["total-delete-files"]) == (
                "replace", "2", "1", "3", "2", "2", "1", "0"), rs
    # metadata files on disk: only manifest lists and manifests still listed
    listed = {h.file_path(s["manifest-list"]) for s in snaps}
    for s in snaps:
        lpath = h.file_path(s["manifest-list"])
        listed |= {h.file_path(m["manifest_path"]) for m in h.avro(lpath)[lpath]["records"]}
    on_disk = {os.path.join(root, "metadata", f) for f in os.listdir(os.path.join(root, "metadata"))
               if f.endswith(".avro")}
    assert on_disk == listed, on_disk ^ listed
    # the compacted file keeps the data sequence number of the snapshot the
    # compaction read (3), so deletes committed meanwhile would still apply
    meta_cur = dict(meta, snapshots=[snaps[0]], **{"current-snapshot-id": snaps[0]["snapshot-id"]})
    live = h.check_table_files(meta_cur, [4])
    assert [e["sequence_number"] for e in live.values()] == [3], live
    h.check_live_parquet(live)


def murmur3_32(data):
    """Murmur3 x86 32-bit, seed 0: Iceberg's bucket hash, written here from
    the algorithm's description."""
    c1, c2, hsh = 0xcc9e2d51, 0x1b873593, 0
    n = len(data) - len(data) % 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & 0xffffffff
        k = ((k << 15) | (k >> 17)) & 0xffffffff
        hsh ^= (k * c2) & 0xffffffff
        hsh = ((hsh << 13) | (hsh >> 19)) & 0xffffffff
        hsh = (hsh * 5 + 0xe6546b64) & 0xffffffff
    k = int.from_bytes(data[n:], "little") if len(data) % 4 else 0
    if len(data) % 4:
        k = (k * c1) & 0xffffffff
        k = ((k << 15) | (k >> 17)) & 0xffffffff
        hsh ^= (k * c2) & 0xffffffff
    hsh ^= len(data)
    hsh ^= hsh >> 16
    hsh = (hsh * 0x85ebca6b) & 0xffffffff
    hsh ^= hsh >> 13
    hsh = (hsh * 0xc2b2ae35) & 0xffffffff
    return hsh ^ (hsh >> 16)


def test_partitioned_table(ctx):
    """bucket[4](id), day(ts) and identity(region): icebird reads every row,
    each data file holds one partition, and the partition values in the
    manifests are the ones recomputed here."""
    h.require_js()
    # the spec's example: hash(34L) = 2017239379
    assert murmur3_32(struct.pack("<q", 34)) == 2017239379
    sch = h.schema(("id", "long", True), ("ts", "timestamptz", False), ("region", "string", False))
    rnd = random.Random(3)
    base = datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc)
    rows = [[str(k), (base + datetime.timedelta(hours=rnd.randrange(72))).strftime(
        "%Y-%m-%d %H:%M:%S+00"), rnd.choice(["eu", "us", None])] for k in range(60)]
    wh = ctx.tmpdir("wh")
    out = h.lake_write(ctx, ["table"], {
        "warehouse": "file://" + wh, "catalog": {"type": "fs"}, "namespace": "db", "table": "p",
        "schema": sch, "partition_by": "bucket(4, id), day(ts), region",
        "ops": [{"op": "append", "rows": rows[:30]}, {"op": "append", "rows": rows[30:]}]})
    url = "file://" + os.path.join(wh, "db", "p")
    got = h.node("read_iceberg.mjs", url)["rows"]
    assert sorted(int(r["id"]) for r in got) == list(range(60))

    def part(row):
        ts = datetime.datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S+00")
        return (murmur3_32(struct.pack("<q", int(row[0]))) & 0x7fffffff) % 4, \
            (ts - datetime.datetime(1970, 1, 1)).days, row[2]
    with open(h.file_path(out["metadata_location"])) as f:
        meta = json.load(f)
    spec = meta["partition-specs"][0]
    assert [(x["name"], x["transform"], x["source-id"], x["field-id"]) for x in spec["fields"]] == [
        ("id_bucket", "bucket[4]", 1, 1000), ("ts_day", "day", 2, 1001),
        ("region", "identity", 3, 1002)], spec
    assert meta["last-partition-id"] == 1002
    by_id = {int(r[0]): r for r in rows}
    seen = 0
    for s in meta["snapshots"]:
        lpath = h.file_path(s["manifest-list"])
        ml = h.avro(lpath)[lpath]
        for m in ml["records"]:
            if m["added_snapshot_id"] != s["snapshot-id"]:
                continue
            mpath = h.file_path(m["manifest_path"])
            mf = h.avro(mpath)[mpath]
            pschema = [f for f in json.loads(mf["meta"]["avro.schema"])["fields"]
                       if f["name"] == "data_file"][0]["type"]["fields"]
            precord = [f for f in pschema if f["name"] == "partition"][0]["type"]
            assert [(f["name"], f["field-id"]) for f in precord["fields"]] == [
                ("id_bucket", 1000), ("ts_day", 1001), ("region", 1002)], precord
            vals = []
            paths = [h.file_path(e["data_file"]["file_path"]) for e in mf["records"]]
            contents = h.node("read_rows.mjs", *paths)
            for e, path in zip(mf["records"], paths):
                p = e["data_file"]["partition"]
                p = (p["id_bucket"], p["ts_day"], p["region"])
                ids = [int(r["id"]) for r in contents[path]]
                assert {part(by_id[i]) for i in ids} == {p}, (p, ids)
                assert len(ids) == e["data_file"]["record_count"]
                seen += len(ids)
                vals.append(p)
            # manifest list summaries: contains_null and bounds per field
            for k, summ in enumerate(m["partitions"]):
                col = [v[k] for v in vals]
                nonnull = [v for v in col if v is not None]
                assert summ["contains_null"] == (None in col), summ
                enc = (lambda v: v.encode().hex()) if k == 2 else (
                    lambda v: struct.pack("<i", v).hex())
                assert summ["lower_bound"]["hex"] == enc(min(nonnull)), (k, summ)
                assert summ["upper_bound"]["hex"] == enc(max(nonnull)), (k, summ)
    assert seen == 60


def test_s3_warehouse_sigv4_multipart(ctx):
    """A table on s3rver: every request cdc makes is SigV4-signed with the
    payload's SHA-256 (verified by the proxy's own implementation), large
    files go up in parts, the filesystem catalog's no-replace commit holds
    (the proxy answers 412 as S3 does), orphans are listed and deleted, and
    icebird reads the table from the server."""
    h.require_js()
    proxy, endpoint = h.start_s3(ctx)
    rnd = random.Random(9)
    big = [[str(k), "%032x" % rnd.getrandbits(128) * 4] for k in range(4000)]
    out = h.lake_write(ctx, ["table"], {
        "warehouse": "s3://lake/wh", "catalog": {"type": "fs"}, "namespace": "db", "table": "t",
        "s3": {"endpoint": endpoint, "region": "us-east-1", "access_key_id": "S3RVER",
               "secret_access_key": "S3RVER", "part_bytes": 65536},
        "schema": h.KV,
        "ops": [
            {"op": "append", "rows": big},
            {"op": "row_delta", "rows": [["5000", "x"], ["5001", "y"]], "eq_ids": [1],
             "eq_deletes": [["1"], ["2"]], "pos_deletes": [{"op": 1, "file": 0, "pos": 0}]},
            {"op": "conflict", "rows": [["6000", "z"]]},
            {"op": "half_commit", "rows": [["7000", "o"]]},
            {"op": "clean_orphans", "grace_ms": 3600000},  # too young: kept
            {"op": "clean_orphans"},
            {"op": "reload"},
        ]})
    signed = [x for x in proxy.log if x[3]]
    bad = [x for x in proxy.log if x[4]]
    assert signed and not bad, bad[:3]
    assert len(signed) == len(proxy.log), [x for x in proxy.log if not x[3]][:3]
    assert any(x[0] == "POST" and x[2].startswith("uploads") for x in signed), "no multipart"
    parts = [x for x in signed if x[0] == "PUT" and "partNumber=" in x[2]]
    assert len(parts) >= 2, parts
    assert any(x[0] == "GET" and "list-type=2" in x[2] for x in signed), "no LIST"
    assert out["ops"][2]["stale_commit"] == -5  # the 412 of a no-replace PUT
    assert out["ops"][4]["removed"] == 0 and out["ops"][5]["removed"] == 3
    for uri in out["ops"][3]["orphans"]:
        key = uri[len("s3://"):]
        try:
            urllib.request.urlopen("%s/%s" % (endpoint, key), timeout=10)
            raise AssertionError("orphan %s still on the server" % uri)
        except urllib.error.HTTPError as e:
            assert e.code == 404, e
    meta_key = out["metadata_location"][len("s3://"):]
    with urllib.request.urlopen("%s/%s" % (endpoint, meta_key), timeout=10) as r:
        assert out["ops"][6]["metadata_size"] == len(r.read())  # HEAD's size
    n = len(proxy.log)
    rows = h.node("read_iceberg.mjs", "s3://lake/wh/db/t", env={"S3_ENDPOINT": endpoint})["rows"]
    # equality deletes of 1 and 2; the position delete of 5000
    want = sorted([0] + [int(r[0]) for r in big[3:]] + [5001, 6000, 6000])
    assert sorted(int(r["id"]) for r in rows) == want
    assert all(not x[3] for x in proxy.log[n:])  # the reader's GETs are anonymous
    ctx.log("%d signed requests verified, %d multipart parts" % (len(signed), len(parts)))


def test_parquet_size_next_to_duckdb(ctx):
    """The same 200,000 rows written by cdc and by DuckDB with the same
    codec: DuckDB finds the rows identical, and cdc's file is at most 1.2
    times DuckDB's (bytes, not time: deterministic)."""
    h.require_js()
    d = ctx.tmpdir("bench")
    for codec in ("zstd", "snappy"):
        ours = os.path.join(d, "cdc-%s.parquet" % codec)
        h.lake_write(ctx, ["gen", "200000", codec, ours])
        r = h.node("bench_duckdb.mjs", 200000, codec, os.path.join(d, "duck-%s.parquet" % codec),
                   ours)
        assert r["same_rows"], r
        ratio = r["cdc_bytes"] / r["duckdb_bytes"]
        ctx.log("%s: cdc %.2f bytes/row, DuckDB %.2f bytes/row (%.3fx)" % (
            codec, r["cdc_bytes"] / 2e5, r["duckdb_bytes"] / 2e5, ratio))
        assert ratio <= 1.2, r
