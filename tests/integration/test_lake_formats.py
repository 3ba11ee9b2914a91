"""The lakehouse formats cdc writes (src/lake), checked by independent
readers: every Parquet file by hyparquet AND DuckDB (values, logical and
converted types, field ids, statistics, codecs, encodings), every manifest
and manifest list by avsc (header keys and exact field values), whole tables
by icebird (equality and position deletes, time travel), through the
filesystem, SQLite and REST catalogs and on S3 (s3rver behind a proxy that
verifies every SigV4 signature).  The expected values are computed here with
Python's own date, decimal and uuid types, never read back from cdc.

The writers are driven by the lake_write helper (tests/helpers); the readers
are the pinned npm packages in tests/js (installed by scripts/install-deps.sh).
If they are missing, the tests fail with a message saying so."""

import datetime
import decimal
import json
import os
import random
import sqlite3
import struct
import uuid

import harness as h

# ---------------------------------------------------------------------------
# expected values, computed independently of cdc

EPOCH = datetime.datetime(1970, 1, 1)


def micros(td):
    return td.days * 86400 * 10**6 + td.seconds * 10**6 + td.microseconds


def days_of(text):
    if text.endswith(" BC"):
        # Python's date has no year 0; 0001-01-01 BC is the year before
        # 0001-01-01 AD, a leap year (proleptic Gregorian, astronomical 0).
        assert text == "0001-01-01 BC", text
        return (datetime.date(1, 1, 1) - datetime.date(1970, 1, 1)).days - 366
    return (datetime.date.fromisoformat(text) - datetime.date(1970, 1, 1)).days


def ts_micros(text):
    t = text.replace(" ", "T", 1)
    if t[-3:-2] in "+-" and t[-3:].lstrip("+-").isdigit() and ":" not in t[-3:]:
        t += ":00"  # "+05" -> "+05:00"
    d = datetime.datetime.fromisoformat(t)
    if d.tzinfo:
        return micros(d.astimezone(datetime.timezone.utc).replace(tzinfo=None) - EPOCH)
    return micros(d - EPOCH)


def time_micros(text):
    hms, _, frac = text.partition(".")
    hh, mm, ss = (int(x) for x in hms.split(":"))
    return ((hh * 60 + mm) * 60 + ss) * 10**6 + int((frac + "000000")[:6])


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


# type -> (to a comparable Python value from the PG text; from a reader's text)
CONV = {
    "long": (int, int), "int": (int, int),
    "float": (lambda t: f32(float(t)), lambda t: f32(float(t))),
    "double": (float, float),
    "boolean": (lambda t: t == "t", lambda t: t == "t"),
    "string": (str, str),
    "binary": (lambda t: t[2:].lower(), lambda t: t.lower()),
    "date": (days_of, int), "time": (time_micros, int),
    "timestamp": (ts_micros, int), "timestamptz": (ts_micros, int),
    "uuid": (lambda t: str(uuid.UUID(t)), lambda t: str(uuid.UUID(t))),
}


def conv(ftype, reader=False):
    if ftype.startswith("decimal"):
        return decimal.Decimal
    return CONV[ftype][1 if reader else 0]


def same(ftype, want, got, approx=False):
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, float) and want != want:
        return got != got
    if approx and ftype.startswith("decimal"):  # hyparquet decodes decimals to doubles
        return abs(float(got) - float(want)) <= abs(float(want)) * 1e-12 + 1e-9
    return want == got


ALL_TYPES = h.schema(("id", "long", True), ("i", "int", False), ("f", "float", False),
                   ("d", "double", False), ("b", "boolean", False), ("s", "string", False),
                   ("bin", "binary", False), ("dec1", "decimal(9,2)", False),
                   ("dec2", "decimal(18,4)", False), ("dec3", "decimal(38,10)", False),
                   ("dt", "date", False), ("tm", "time", False), ("ts", "timestamp", False),
                   ("tstz", "timestamptz", False), ("u", "uuid", False),
                   ("nul", "string", False), ident=(1,))

EDGE_ROWS = [
    ["1", "-5", "1.5", "-2.25", "t", "h\u00e9llo \U0001F600", "\\x00ff", "-1234567.89",
     "12345678901234.5678", "-1234567890123456789012345678.0123456789", "2024-02-29",
     "13:45:01.123456", "2024-02-29 13:45:01.5", "2024-02-29 13:45:01.5+05:30",
     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None],
    ["2", "-2147483648", "NaN", "-0", "f", "", "\\x", "0.01", "-0.0001", "1", "0001-01-01 BC",
     "00:00:00", "1970-01-01 00:00:00", "1969-12-31 23:59:59.999999+00",
     "00000000-0000-0000-0000-000000000000", None],
    ["3", "2147483647", "-Infinity", "1e300", None, "zz", "\\xdeadbeef", None, None, None, None,
     "24:00:00", None, None, None, None],
    ["-9223372036854775808", "0", "0.1", "1e-300", "t", "x" * 300, "\\x" + "ab" * 200,
     "9999999.99", "99999999999999.9999", "9999999999999999999999999999.9999999999",
     "9999-12-31", "23:59:59.999999", "2262-04-11 23:47:16.854775", "1677-09-22 00:12:43-08",
     "ffffffff-ffff-ffff-ffff-ffffffffffff", None],
]


def random_rows(n, seed):
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "\u00fcber", "z"]
    rows = []
    for k in range(n):
        nul = lambda v: None if rnd.random() < 0.15 else v  # noqa: E731
        d = datetime.date(2000, 1, 1) + datetime.timedelta(days=rnd.randrange(20000))
        ts = datetime.datetime(2020, 1, 1) + datetime.timedelta(microseconds=rnd.randrange(10**14))
        rows.append([
            str(1000 + k), nul(str(rnd.randrange(-2**31, 2**31))),
            nul(repr(rnd.uniform(-1e6, 1e6))), nul(repr(rnd.uniform(-1e12, 1e12))),
            nul(rnd.choice("tf")), nul(rnd.choice(words)),
            nul("\\x" + os.urandom(rnd.randrange(0, 9)).hex()),
            nul("%d.%02d" % (rnd.randrange(-9999999, 9999999), rnd.randrange(100))),
            nul("%d.%04d" % (rnd.randrange(-10**13, 10**13), rnd.randrange(10000))),
            nul("%d.%010d" % (rnd.randrange(-10**27, 10**27), rnd.randrange(10**10))),
            nul(d.isoformat()), nul("%02d:%02d:%02d.%06d" % (rnd.randrange(24), rnd.randrange(60),
                                                             rnd.randrange(60), rnd.randrange(10**6))),
            nul(ts.isoformat(" ")), nul(ts.isoformat(" ") + rnd.choice(["+00", "-07", "+05:30"])),
            nul(str(uuid.UUID(int=rnd.getrandbits(128)))), None,
        ])
    return rows


# ---------------------------------------------------------------------------
# Parquet checks


def check_parquet(path, sch, rows, codec=None, dictionary=None, info=None):
    """Reads path with hyparquet and DuckDB and checks everything against
    the schema and the rows it was written from."""
    got = h.node("read_parquet.mjs", path)
    hy, dk = got["hyparquet"], got["duckdb"]
    fields = sch["fields"]
    names = [f["name"] for f in fields]
    assert len(hy["rows"]) == len(rows), "hyparquet read %d rows, wrote %d" % (
        len(hy["rows"]), len(rows))
    assert len(dk["rows"]) == len(rows), "DuckDB read %d rows, wrote %d" % (len(dk["rows"]), len(rows))
    for r, (row, hrow, drow) in enumerate(zip(rows, hy["rows"], dk["rows"])):
        for c, f in enumerate(fields):
            t = f["type"]
            want = None if row[c] is None else conv(t)(row[c])
            hv, dv = hrow[f["name"]], drow[f["name"]]
            hv = None if hv is None else conv(t, True)(hv)
            dv = None if dv is None else conv(t, True)(dv)
            assert same(t, want, hv, approx=True), "hyparquet row %d %s: %r, wrote %r" % (
                r, f["name"], hv, row[c])
            assert same(t, want, dv), "DuckDB row %d %s: %r, wrote %r" % (r, f["name"], dv, row[c])
    # schema: field ids, annotations, repetition (DuckDB's view and hyparquet's)
    logical = {"long": "IntType", "int": "IntType", "string": "StringType", "date": "DateType",
               "time": "TimeType(isAdjustedToUTC=0", "timestamp": "TimestampType(isAdjustedToUTC=0",
               "timestamptz": "TimestampType(isAdjustedToUTC=1", "uuid": "UUIDType"}
    converted = {"long": "INT_64", "int": "INT_32", "string": "UTF8", "date": "DATE",
                 "time": "TIME_MICROS", "timestamp": "TIMESTAMP_MICROS",
                 "timestamptz": "TIMESTAMP_MICROS"}
    for f, ds, hs in zip(fields, dk["schema"][1:], hy["schema"]):
        t = f["type"]
        assert ds["name"] == f["name"] and hs["name"] == f["name"]
        assert int(ds["field_id"]) == f["id"] and hs["field_id"] == f["id"], (f, ds, hs)
        assert ds["repetition_type"] == ("REQUIRED" if f["required"] else "OPTIONAL"), ds
        if t.startswith("decimal"):
            p, s = (int(x) for x in t[8:-1].split(","))
            assert ds["converted_type"] == "DECIMAL" and int(ds["precision"]) == p and \
                int(ds["scale"]) == s, ds
            assert "DecimalType(scale=%d, precision=%d)" % (s, p) == ds["logical_type"], ds
            assert ds["type"] == ("INT32" if p <= 9 else "INT64" if p <= 18
                                  else "FIXED_LEN_BYTE_ARRAY"), ds
        else:
            assert (ds["converted_type"] or None) == converted.get(t), ds
            assert logical.get(t, "~") in (ds["logical_type"] or "~"), ds
    ice = json.loads(dk["kv"][0]["value"]) if dk["kv"] else None
    assert dk["kv"][0]["key"] == "iceberg.schema", dk["kv"]
    assert [(x["id"], x["name"], x["type"], x["required"]) for x in ice["fields"]] == \
        [(x["id"], x["name"], x["type"], x["required"]) for x in fields], ice
    assert hy["kv"]["iceberg.schema"] == dk["kv"][0]["value"]
    ncols = len(fields)
    assert hy["column_orders"] == ["TYPE_DEFINED_ORDER"] * ncols, hy["column_orders"]
    # statistics: null counts everywhere; min/max of orderable columns,
    # computed here per row group from the rows themselves
    start = 0
    for g, rg in enumerate(hy["row_groups"]):
        n = int(rg["num_rows"])
        part = rows[start:start + n]
        start += n
        for c, f in enumerate(fields):
            col = rg["columns"][c]
            vals = [conv(f["type"])(x[c]) for x in part if x[c] is not None]
            assert int(col["stats"]["null_count"]) == n - len(vals), (g, f, col)
            if codec:
                assert col["codec"] == codec, col
            if dictionary is False:
                assert col["encodings"] == ["PLAIN", "RLE"], col
            if f["type"] in ("long", "int", "string", "date") or f["type"].startswith("decimal"):
                dm = [m for m in dk["metadata"] if int(m["row_group_id"]) == g and
                      int(m["column_id"]) == c][0]
                if not vals:
                    assert dm["stats_min_value"] is None and dm["stats_max_value"] is None, dm
                    continue
                cv = {"date": lambda s: (datetime.date.fromisoformat(s) - datetime.date(1970, 1, 1)).days
                      if "(BC)" not in s else days_of(s.replace(" (BC)", " BC"))}.get(
                          f["type"], conv(f["type"], True))
                if f["type"] == "string":
                    # bytewise unsigned order = code point order for UTF-8
                    assert dm["stats_min_value"] == min(vals) and dm["stats_max_value"] == max(vals)
                else:
                    assert cv(dm["stats_min_value"]) == min(vals), (f, dm, min(vals))
                    assert cv(dm["stats_max_value"]) == max(vals), (f, dm, max(vals))
    if dictionary:
        low = [c for c, f in enumerate(fields) if f["name"] == "s"]
        for rg in hy["row_groups"]:
            for c in low:
                assert "RLE_DICTIONARY" in rg["columns"][c]["encodings"], rg["columns"][c]
    if info is not None:
        assert info["rows"] == len(rows) and info["size"] == os.path.getsize(path)
        for c, (f, m) in enumerate(zip(fields, info["columns"])):
            assert m["id"] == f["id"] and m["values"] == len(rows)
            assert m["nulls"] == sum(1 for x in rows if x[c] is None), (f, m)
    return got


def test_parquet_all_types_three_codecs(ctx):
    """Every type (edge values and 400 random rows with NULLs) under each
    codec, with and without dictionaries, read by hyparquet and DuckDB."""
    h.require_js()
    rows = EDGE_ROWS + random_rows(400, 11)
    for codec, dictionary in (("none", False), ("snappy", True), ("zstd", True), ("zstd", False)):
        out = os.path.join(ctx.tmpdir("pq"), "t.parquet")
        info = h.lake_write(ctx, ["parquet", out], {"codec": codec, "dictionary": dictionary,
                                                    "table": "public.t", "schema": ALL_TYPES,
                                                    "rows": rows})
        name = {"none": "UNCOMPRESSED", "snappy": "SNAPPY", "zstd": "ZSTD"}[codec]
        check_parquet(out, ALL_TYPES, rows, codec=name, dictionary=dictionary, info=info)
        ctx.log("%s dictionary=%s: %d rows, %d bytes" % (codec, dictionary, len(rows),
                                                          info["size"]))
    # Iceberg bounds of the long key: little-endian, as the spec's App. D says
    ids = [int(r[0]) for r in rows]
    assert info["columns"][0]["lower"] == struct.pack("<q", min(ids)).hex()
    assert info["columns"][0]["upper"] == struct.pack("<q", max(ids)).hex()
    # the decimal(9,2) bounds are minimal big-endian two's complement
    dec = [int(decimal.Decimal(r[7]) * 100) for r in rows if r[7] is not None]
    lo = min(dec)
    n = (lo.bit_length() + 8) // 8
    assert info["columns"][7]["lower"] == lo.to_bytes(n, "big", signed=True).hex()


def test_parquet_row_groups_pages_dictionary_fallback(ctx):
    """60,000 rows in row groups bounded to 256 KiB with 16 KiB pages: many
    row groups and pages, a low-cardinality column dictionary-encoded, a
    high-cardinality one falling back to PLAIN, and every value back."""
    h.require_js()
    sch = h.schema(("id", "long", True), ("s", "string", False), ("high", "string", False),
                 ("nul", "int", False))
    rows = [[str(k), None if k % 10 == 7 else ("odd" if k % 2 else "even"),
             "distinct-%010d" % (k * 7919), None] for k in range(60000)]
    # small pages, and the default 1 MiB pages (thousands of definition
    # levels per page, where a padded bit-packed group would shift values)
    for page in (16 << 10, 0):
        out = os.path.join(ctx.tmpdir("pq"), "big.parquet")
        info = h.lake_write(ctx, ["parquet", out], {"codec": "zstd", "row_group_bytes": 256 << 10,
                                                    "page_bytes": page,
                                                    "dict_max_bytes": 64 << 10, "schema": sch,
                                                    "rows": rows})
        got = check_parquet(out, sch, rows, codec="ZSTD", dictionary=True, info=info)
        rgs = got["hyparquet"]["row_groups"]
        assert len(rgs) > 3 and info["row_groups"] == len(rgs), len(rgs)
        for rg in rgs:
            assert "RLE_DICTIONARY" not in rg["columns"][2]["encodings"], rg["columns"][2]
        ctx.log("page_bytes %d: %d row groups; high-cardinality column PLAIN in all of them" % (
            page, len(rgs)))


def test_parquet_empty_file_and_bad_values(ctx):
    h.require_js()
    out = os.path.join(ctx.tmpdir("pq"), "empty.parquet")
    info = h.lake_write(ctx, ["parquet", out], {"codec": "snappy", "schema": ALL_TYPES,
                                                "rows": []})
    assert info["rows"] == 0 and info["row_groups"] == 0
    check_parquet(out, ALL_TYPES, [])
    for bad, col in (("2024-02-30", "dt"), ("12:61:00", "tm"), ("1.234", "dec1"),
                     ("not-a-uuid", "u"), ("\\x0g", "bin"), ("2147483648", "i"), ("yes", "b")):
        row = list(EDGE_ROWS[0])
        row[[f["name"] for f in ALL_TYPES["fields"]].index(col)] = bad
        r = h.lake_write(ctx, ["parquet", out], {"table": "public.orders", "schema": ALL_TYPES,
                                                 "rows": [row]}, expect_rc=1)
        assert "table public.orders, column %s:" % col in r.stderr and bad in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# Iceberg tables

def table_roundtrip(ctx, catalog):
    """Append, a row delta with equality and position deletes, two writers
    racing (the second gets a conflict and retries), reload; icebird reads
    the table now and at both older snapshots."""
    h.require_js()
    wh = ctx.tmpdir("wh")
    cat = {"type": "fs"}
    if catalog == "sql":
        cat = {"type": "sql", "uri": "sqlite:///" + os.path.join(wh, "catalog.db"), "name": "cdc"}
    elif catalog == "rest":
        cat = {"type": "rest", "uri": h.start_rest_catalog(ctx, "file://" + wh)}
    out = h.lake_write(ctx, ["table"], {
        "warehouse": "file://" + wh, "catalog": cat, "namespace": "shop", "table": "orders",
        "codec": "zstd", "schema": h.KV,
        "ops": [
            {"op": "append", "rows": [["1", "a"], ["2", "b"], ["3", "c"]],
             "props": {"cdc.position": "0/16B3748:2"}},
            {"op": "row_delta", "rows": [["2", "b2"], ["4", "d"], ["4", "d2"]], "eq_ids": [1],
             "eq_deletes": [["2"], ["3"]], "pos_deletes": [{"op": 1, "file": 0, "pos": 1}],
             "props": {"cdc.position": "0/16B37F0:5"}},
            {"op": "conflict", "rows": [["5", "e"]]},
            {"op": "reload"},
        ]})
    ops = out["ops"]
    url = "file://" + os.path.join(wh, "shop", "orders")
    # SQL and REST tables have no version-hint.text: name the metadata file
    cur = [] if catalog == "fs" else [
        "--metadata", os.path.basename(out["metadata_location"])[:-len(".metadata.json")]]
    # equality deletes drop 2:b and 3:c (older data) but not 2:b2 (same
    # snapshot); the position delete drops 4:d; both racing appends of 5:e count
    want = [(1, "a"), (2, "b2"), (4, "d2"), (5, "e"), (5, "e")]
    assert h.read_table(url, *cur) == want, h.read_table(url, *cur)
    assert h.read_table(url, *cur, "--snapshot", ops[0]["snapshot_id"]) == [(1, "a"), (2, "b"),
                                                                          (3, "c")]
    assert h.read_table(url, *cur, "--snapshot", ops[1]["snapshot_id"]) == [(1, "a"), (2, "b2"),
                                                                          (4, "d2")]
    assert ops[2]["stale_commit"] == -5, ops[2]  # CDC_EAGAIN, then the retry committed
    assert ops[3]["cdc_position"] == "0/16B37F0:5" and ops[3]["last_seq"] == 4, ops[3]

    mpath = h.file_path(out["metadata_location"])
    with open(mpath) as f:
        meta = json.load(f)
    assert meta["format-version"] == 2 and meta["last-sequence-number"] == 4
    snaps = meta["snapshots"]
    assert [s["snapshot-id"] for s in snaps] == [ops[0]["snapshot_id"], ops[1]["snapshot_id"],
                                                 ops[2]["snapshot_id"],
                                                 ops[2]["retried_snapshot_id"]]
    assert all(0 < s["snapshot-id"] < 2**53 for s in snaps)
    assert meta["current-snapshot-id"] == meta["refs"]["main"]["snapshot-id"] == snaps[-1]["snapshot-id"]
    for prev, s in zip(snaps, snaps[1:]):
        assert s["parent-snapshot-id"] == prev["snapshot-id"]
    sm = [s["summary"] for s in snaps]
    assert [x["operation"] for x in sm] == ["append", "overwrite", "append", "append"], sm
    assert sm[0]["added-data-files"] == "1" and sm[0]["added-records"] == "3"
    assert (sm[1]["added-delete-files"], sm[1]["added-equality-delete-files"],
            sm[1]["added-position-delete-files"], sm[1]["added-equality-deletes"],
            sm[1]["added-position-deletes"]) == ("2", "1", "1", "2", "1"), sm[1]
    assert [x["total-records"] for x in sm] == ["3", "6", "7", "8"], sm
    assert [x["total-data-files"] for x in sm] == ["1", "2", "3", "4"], sm
    assert sm[1]["total-delete-files"] == "2" and sm[0]["cdc.position"] == "0/16B3748:2"
    assert [e["snapshot-id"] for e in meta["snapshot-log"]] == [s["snapshot-id"] for s in snaps]
    assert len(meta["metadata-log"]) == 4 and all(
        os.path.exists(h.file_path(e["metadata-file"])) for e in meta["metadata-log"])
    live = h.check_table_files(meta, [1, 2, 3, 4])
    assert sorted(e["data_file"]["content"] for e in live.values()) == [0, 0, 0, 0, 1, 2]
    h.check_live_parquet(live)
    if catalog == "fs":
        assert mpath.endswith("/v5.metadata.json"), mpath
        with open(os.path.join(os.path.dirname(mpath), "version-hint.text")) as f:
            assert f.read() == "5"
        assert h.read_table(url, "--metadata", "v2") == [(1, "a"), (2, "b"), (3, "c")]
    if catalog == "sql":
        db = sqlite3.connect(os.path.join(wh, "catalog.db"))
        row = db.execute("SELECT catalog_name, table_namespace, table_name, metadata_location, "
                         "previous_metadata_location, iceberg_type FROM iceberg_tables").fetchall()
        assert row == [("cdc", "shop", "orders", out["metadata_location"],
                        meta["metadata-log"][-1]["metadata-file"], "TABLE")], row
        ns = db.execute("SELECT * FROM iceberg_namespace_properties").fetchall()
        assert ns == [("cdc", "shop", "exists", "true")], ns
        assert os.path.basename(mpath).startswith("00004-")
    ctx.log("%s catalog: %d snapshots, %d live files, metadata %s" % (
        catalog, len(snaps), len(live), os.path.basename(mpath)))


def test_iceberg_table_filesystem_catalog(ctx):
    table_roundtrip(ctx, "fs")


def test_iceberg_table_sql_catalog(ctx):
    table_roundtrip(ctx, "sql")


def test_iceberg_table_rest_catalog(ctx):
    """Against the REST catalog test fake (tests/helpers/rest_catalog.py)."""
    table_roundtrip(ctx, "rest")
