"""The source's sessions pin the output formats cdc parses and passes on.

PostgreSQL formats dates, times, intervals, byte strings and floats by
session settings that a role or database can change (ALTER ROLE/DATABASE
... SET): DateStyle, IntervalStyle, TimeZone, bytea_output,
extra_float_digits.  pgoutput and COPY send values as the walsender's and
the snapshot session's settings format them, so cdc must not inherit odd
ones: here cdc's role has all five set to awkward values, and every value
in the file (snapshot rows and streamed changes) and the mirror must still
be what the contract says (ISO dates, hex byte strings, floats exact)."""

import harness as h

TABLE = "public.fmt"
DDL = """CREATE TABLE fmt (
    id int PRIMARY KEY, d date, ts timestamp, tstz timestamptz, t time, ttz timetz,
    iv interval, b bytea, f8 float8, f4 float4, n numeric, ds date[], note text)"""
COLS = "id, d, ts, tstz, t, ttz, iv, b, f8, f4, n, ds, note"
VALUES = ("(%d, '2026-12-05', '2026-12-05 13:14:15.123456', '2026-12-05 13:14:15.5+02', "
          "'13:14:15', '13:14:15+05:30', '1 year 2 mons 3 days 04:05:06.5', '\\x00ff10', "
          "0.1, 0.1, 12.5, '{2026-01-02,1999-12-31}', 'r%d')")

# cdc's own role; the tests' superuser connections keep the defaults
AWKWARD = {"DateStyle": "SQL, DMY", "IntervalStyle": "sql_standard", "bytea_output": "escape",
           "TimeZone": "Asia/Kolkata", "extra_float_digits": "-3"}


def test_awkward_role_settings(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    for k, v in AWKWARD.items():
        cl.execute("postgres", "ALTER ROLE %s SET %s = '%s'" % (h.qident(cl.role), k, v))
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute(DDL)
        for i in range(1, 4):  # read by the initial snapshot
            cur.execute("INSERT INTO fmt (%s) VALUES %s" % (COLS, VALUES % (i, i)))
    jsonl = ctx.tmpdir("out") + "/fmt.jsonl"
    cdc = ctx.cdc(h.pipeline_config(cl, [TABLE], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    snapshot_mode="initial"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.run_to(cl.current_lsn("src"), timeout=120)  # the initial snapshot
    meta = h.TableMeta(src, TABLE)
    rec = h.Recorder(cl.connect("src", autocommit=False), {TABLE: meta})
    rec.begin()
    for i in range(4, 7):  # streamed
        rec.insert(TABLE, "INSERT INTO fmt (%s) VALUES %s" % (COLS, VALUES % (i, i)))
    rec.update(TABLE, "f8 = f8 * 3, iv = iv * 2, note = 'u'", "id = 5")
    rec.commit()
    cdc.run_to(cl.current_lsn("src"), timeout=120)

    n = h.compare_tables(src, cl.connect("mirror"), TABLE)
    records = h.read_jsonl(jsonl)
    snap = [r for r in records if r["op"] == "r"]
    assert len(snap) == 3, "snapshot rows: %d" % len(snap)
    text = {r["id"]: r for r in meta.rows_text(src)}
    bad = {}
    for r in snap:
        m = h.row_mismatches(meta, r["after"], text[str(r["after"]["id"])])
        if m:
            bad[r["after"]["id"]] = m
    assert not bad, "snapshot rows formatted by the role's settings: %s" % bad
    h.match_records([r for r in records if r["op"] != "r"], rec.expect, {TABLE: meta})
    ctx.log("with %s on cdc's role: %d snapshot rows and %d changes as the contract says, "
            "mirror equal (%d rows)" % (", ".join(AWKWARD), len(snap), len(records) - len(snap), n))
