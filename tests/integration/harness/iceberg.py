"""The iceberg sink's tests' tools: sink blocks, where a table's metadata is
(filesystem or SQLite catalog), the table read by icebird, and a second
opinion on the same table that shares no code with cdc or icebird: avsc
decodes every manifest list and manifest, DuckDB (extensions not loaded)
reads every data and delete file, and the spec's merge-on-read rules are
applied here in Python.  Values are compared with the source's through
canon(), which maps each reader's rendering of a PostgreSQL type to one
Python value.  Also the steps the sink's test modules share."""

# flake8: noqa: F401,F403,F405
import datetime
import decimal
import json
import os
import sqlite3
import urllib.parse
import urllib.request

from .common import *  # noqa: F401,F403
from .compare import _parse_tstz
from .pg import TableMeta
from .lake import avro, check_avro_fields, file_path, node


def iceberg_sink(sink_id, warehouse, **block):
    b = {"warehouse": warehouse}
    b.update(block)
    return {"sink_id": sink_id, "sink_type": "iceberg", "iceberg": b}


def fs_metadata(table_dir):
    """The current metadata file of a filesystem-catalog table."""
    with open(os.path.join(table_dir, "metadata", "version-hint.text")) as f:
        n = f.read().strip()
    return os.path.join(table_dir, "metadata", "v%s.metadata.json" % n)


def sql_metadata(db_path, namespace, table, catalog="default"):
    """The current metadata file a SQL catalog (PyIceberg SqlCatalog's
    iceberg_tables) points at."""
    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=30)
    try:
        row = conn.execute("SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? "
                           "AND table_namespace = ? AND table_name = ?",
                           (catalog, namespace, table)).fetchone()
    finally:
        conn.close()
    assert row, "no table %s.%s in catalog %s of %s" % (namespace, table, catalog, db_path)
    return file_path(row[0])


def load_json(path):
    with open(path) as f:
        return json.load(f)


def icebird_rows(metadata_path, snapshot=None):
    """The table as icebird reads it: deletes applied; with snapshot, as of
    that snapshot (time travel).  Values normalized by read_iceberg.mjs."""
    table_dir = os.path.dirname(os.path.dirname(metadata_path))
    name = os.path.basename(metadata_path)[:-len(".metadata.json")]
    args = ["file://" + table_dir, "--metadata", name]
    if snapshot is not None:
        args += ["--snapshot", snapshot]
    return node("read_iceberg.mjs", *args)["rows"]


def manifests_of(meta, snapshot_id=None):
    """[(manifest list record, manifest)] of a snapshot, decoded by avsc,
    with every header and field id checked."""
    sid = meta.get("current-snapshot-id") if snapshot_id is None else snapshot_id
    snap = [s for s in meta["snapshots"] if s["snapshot-id"] == sid]
    if not snap:
        return []
    lpath = file_path(snap[0]["manifest-list"])
    ml = avro(lpath)[lpath]
    assert ml["meta"]["format-version"] == "2" and ml["meta"]["snapshot-id"] == str(sid), ml["meta"]
    check_avro_fields(json.loads(ml["meta"]["avro.schema"]))
    paths = [file_path(m["manifest_path"]) for m in ml["records"]]
    decoded = avro(*paths) if paths else {}
    out = []
    for m, p in zip(ml["records"], paths):
        mf = decoded[p]
        assert mf["meta"]["format-version"] == "2", mf["meta"]
        assert mf["meta"]["content"] == ("deletes" if m["content"] == 1 else "data"), mf["meta"]
        assert m["manifest_length"] == os.path.getsize(p), m
        check_avro_fields(json.loads(mf["meta"]["avro.schema"]))
        out.append((m, mf))
    return out


def live_entries(meta, snapshot_id=None):
    """The live data and delete file entries of a snapshot, each with its
    data sequence number as the spec's inheritance rules give it."""
    out = []
    for m, mf in manifests_of(meta, snapshot_id):
        for e in mf["records"]:
            if e["status"] == 2:
                continue
            seq = e["sequence_number"] if e["sequence_number"] is not None else \
                m["sequence_number"]
            out.append(dict(e, seq=seq))
    return out


def spec_rows(meta, snapshot_id=None):
    """The table as of a snapshot by the spec's merge-on-read rules, from
    avsc's manifests and DuckDB's reading of every file: rows as DuckDB
    renders them.  Also checks each file's row count against its manifest
    entry."""
    entries = live_entries(meta, snapshot_id)
    paths = [file_path(e["data_file"]["file_path"]) for e in entries]
    files = node("read_rows.mjs", *paths) if paths else {}
    schema = {f["id"]: f["name"] for s in meta["schemas"] for f in s["fields"]}
    pos_del, eq_del = {}, []
    for e, p in zip(entries, paths):
        df = e["data_file"]
        assert len(files[p]) == df["record_count"], (p, len(files[p]), df["record_count"])
        if df["content"] == 1:
            for r in files[p]:
                pos_del.setdefault(r["file_path"], []).append((int(r["pos"]), e["seq"]))
        elif df["content"] == 2:
            names = [schema[i] for i in df["equality_ids"]]
            keys = {tuple(str(r[n]) for n in names) for r in files[p]}
            eq_del.append((names, keys, e["seq"]))
    rows = []
    for e, p in zip(entries, paths):
        df = e["data_file"]
        if df["content"] != 0:
            continue
        dels = {pos for pos, seq in pos_del.get(df["file_path"], []) if seq >= e["seq"]}
        for i, r in enumerate(files[p]):
            if i in dels:
                continue
            if any(seq > e["seq"] and tuple(str(r.get(n)) for n in names) in keys
                   for names, keys, seq in eq_del):
                continue
            rows.append(r)
    return rows


def avro_many(paths, chunk=400):
    """avro() over many files, a few node processes at most."""
    out = {}
    paths = sorted(set(paths))
    for i in range(0, len(paths), chunk):
        out.update(avro(*paths[i:i + chunk]))
    return out


def referenced_files(meta, meta_path):
    """Every file the table's metadata reaches: metadata files (current and
    logged), manifest lists, manifests and the files they list."""
    out = {meta_path} | {file_path(m["metadata-file"]) for m in meta.get("metadata-log", [])}
    lists = avro_many(file_path(s["manifest-list"]) for s in meta["snapshots"])
    out |= set(lists)
    mpaths = {file_path(m["manifest_path"]) for ml in lists.values() for m in ml["records"]}
    out |= mpaths
    for mf in avro_many(mpaths).values():
        out |= {file_path(e["data_file"]["file_path"]) for e in mf["records"]}
    return out


def files_on_disk(table_dir):
    out = set()
    for d, _, names in os.walk(table_dir):
        out |= {os.path.join(d, n) for n in names if n != "version-hint.text"}
    return out


def positions(meta):
    """cdc.position of each snapshot in commit (sequence) order, as
    (lsn, idx) with idx None for a whole transaction ("…:end")."""
    out = []
    for s in sorted(meta["snapshots"], key=lambda s: s["sequence-number"]):
        p = s["summary"].get("cdc.position")
        if p is None:
            out.append(None)
            continue
        lsn, idx = p.rsplit(":", 1)
        out.append((lsn_to_int(lsn), None if idx == "end" else int(idx)))
    return out


def canon(typname, v, floats=False):
    """One comparable value for a PostgreSQL type, whatever reader rendered
    it: the source's text, cdc's JSON, icebird's or DuckDB's.  floats: the
    reader gives decimals as doubles (icebird): compared to 9 places."""
    if v is None:
        return None
    if typname in ("int2", "int4", "int8"):
        return int(v)
    if typname == "numeric":
        if floats:
            return decimal.Decimal(repr(round(float(v), 9))).normalize()
        return decimal.Decimal(str(v)).normalize()
    if typname == "bool":
        return v in (True, "t", "true")
    if typname in ("float4", "float8"):
        return float(v)
    if typname == "timestamptz":
        s = str(v)
        if s.endswith("Z") and "T" in s:  # icebird: a JS Date, milliseconds
            d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
            return int((d - datetime.datetime(1970, 1, 1)).total_seconds() * 1000)
        us = _parse_tstz(s)
        assert us is not None, "not a timestamptz: %r" % s
        return us // 1000
    return str(v)


def canon_rows(rows, types, key=None, floats=False):
    """{key tuple: {column: canon value}} (key: the primary key columns), or
    a sorted list of row tuples without a key."""
    if key:
        out = {}
        for r in rows:
            k = tuple(canon(types[c], r.get(c), floats) for c in key)
            assert k not in out, "key %s twice" % (k,)
            out[k] = {c: canon(types[c], r.get(c), floats) for c in types}
        return out
    return sorted(tuple(canon(types[c], r.get(c), floats) for c in sorted(types)) for r in rows)


# --------------------------------------------------------------------------
# the sink's tests' shared steps

# Two tables of the sink's tests: many types, and a composite key.
ITEMS_DDL = """
CREATE TABLE public.items (
    id    bigint PRIMARY KEY,
    name  text,
    qty   int,
    price numeric(12,2),
    at    timestamptz,
    flag  boolean,
    doc   jsonb,
    note  text
);
CREATE TABLE public.parts (
    a int,
    b text,
    v text,
    PRIMARY KEY (a, b)
);
"""


def big(rng):
    """An incompressible text stored out of line (TOAST)."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(9000))


def source_state(conn, table):
    """(TableMeta, the source's rows by canon_rows)."""
    meta = TableMeta(conn, table)
    return meta, canon_rows(meta.rows_text(conn), meta.types, meta.key)


def assert_same(got, want, what):
    """Two canon_rows() dicts are equal, or an error saying how they differ."""
    if got == want:
        return
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    differ = [(k, {c: (got[k][c], want[k][c]) for c in want[k] if got[k][c] != want[k][c]})
              for k in want if k in got and got[k] != want[k]]
    raise AssertionError("%s differs from the source: %d missing (%s), %d extra (%s), %d differ "
                         "(%s)" % (what, len(missing), missing[:5], len(extra), extra[:5],
                                   len(differ), str(differ[:3])[:1500]))


def lakehouse(cdc, *args, rc=0, timeout=120):
    """`cdc lakehouse VERB PIPELINE ARGS…`, expecting exit rc."""
    r = cdc.command(["lakehouse"] + list(args[:1]) + [cdc.pipeline_path] + list(args[1:]) +
                    cdc.platform_args(), timeout)
    r.expect_rc(rc)
    return r


def query_rows(cdc, snapshot, table):
    """The rows `cdc lakehouse query` prints for a snapshot of a table."""
    r = lakehouse(cdc, "query", "--snapshot-id", str(snapshot), "--table", table, "--limit", "0")
    return [json.loads(l) for l in r.stdout.splitlines()]


def check_table(meta_path, conn, table, what):
    """The table equals the source: icebird, the spec's rules over DuckDB's
    reading of every file, and cdc's own reader (`cdc lakehouse query`) are
    each compared with the source's rows."""
    meta = load_json(meta_path)
    smeta, want = source_state(conn, table)
    assert_same(canon_rows(icebird_rows(meta_path), smeta.types, smeta.key, True), want,
                "%s read by icebird" % what)
    assert_same(canon_rows(spec_rows(meta), smeta.types, smeta.key), want,
                "%s by the spec's rules over DuckDB" % what)
    return meta, smeta, want


def run_failing(cdc, timeout=120):
    """`cdc run` that must stop by itself with exit 1; its one error line."""
    res = cdc.start().wait(timeout)
    assert res.rc == 1 and res.error_lines, "expected exit 1 with an error; %s" % res.describe()
    return res.error_lines[-1]


def rest_metadata(url, ns, table):
    """The metadata file the REST catalog fake names for a table."""
    with urllib.request.urlopen("%s/v1/cat/namespaces/%s/tables/%s" % (url, ns, table),
                                timeout=10) as r:
        return file_path(json.loads(r.read())["metadata-location"])
