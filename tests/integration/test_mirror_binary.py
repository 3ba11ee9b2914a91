"""The replica mirror's COPY loads go in COPY's binary format where every
column's type has one: cdc turns the source's text of each value into the
binary form of the mirror column's type.  Here edge values of every such
type (extremes, NaN and infinities, subnormal floats, numerics of every
scale, BC dates, the largest timestamps, texts with tabs, newlines and
backslashes) go through a snapshot and through runs of inserts, and must
reach the mirror exactly as a text COPY would leave them; typmods of a
mirror table narrower than the source's (numeric(10,2), timestamp(0)) are
applied as by the type's input function.  A value cdc does not convert
(a date 'infinity') turns that table's loads to text from its row on, with
a log line naming the table and column, and nothing is lost."""

import re

import harness as h

TYPES = """b bool, s smallint, i int, l bigint, f4 real, f8 double precision, n numeric,
           n2 numeric(12,2), t text, v varchar(12), c char(5), j json, jb jsonb, by bytea,
           u uuid, d date, ts timestamp, tz timestamptz, ts3 timestamp(3)"""

# One list of texts per column, in TYPES' order; row k takes the k-th of
# each list, cycling (None is NULL).
EDGES = [
    ["true", "false", None],
    ["-32768", "32767", "0"],
    ["-2147483648", "2147483647", "0", "-1"],
    ["-9223372036854775808", "9223372036854775807", "0"],
    ["NaN", "Infinity", "-Infinity", "-0", "1.17549435e-38", "3.4028235e38", "0.1", "1e-45",
     "-1.5e-40"],
    ["NaN", "Infinity", "-Infinity", "-0", "4.9e-324", "1.7976931348623157e308", "0.1",
     "-1.5e-310", "2.2250738585072014e-308"],
    ["0", "-0.00", "NaN", "Infinity", "-Infinity", "12345678901234567890.123456789", "0.0001",
     "0.00000000000000000001", "9999", "10000", "-100000000", "1.10", "123456.7890",
     "-0.000100", None, "1" + "0" * 120 + ".5", "0." + "0" * 200 + "7"],
    ["0.00", "-1.01", "9999999999.99", "-9999999999.99", "0.50", None],
    ["tab\there", "line\nbreak", "back\\slash", "\\N", "", None, "ünïcödé 😀", "x" * 5000],
    ["abc", "", "exactly12chr", None],
    ["ab", "abcde", "", None],
    ['{"a": [1, 2.50, "x"]}', "[]", "null", None, '"\\u00e9\\t"'],
    ['{"b": {"c": 1}, "a": "\\u00e9"}', "[]", "null", "12.50", None],
    ["\\x00ff", "\\x", None, "\\x" + "ab" * 3000],
    ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000", None],
    ["2000-01-01", "1999-12-31", "0001-01-01", "0044-03-15 BC", "5874897-12-31", "1970-01-01",
     "2024-02-29", "4713-01-01 BC", None],
    ["2000-01-01 00:00:00", "1999-12-31 23:59:59.999999", "1900-02-28 12:00:00.5",
     "0001-01-01 00:00:00", "0044-03-15 12:00:00 BC", "200000-12-31 23:59:59.999999",
     "1970-01-01 00:00:00.000001", None],
    ["2000-01-01 00:00:00+00", "1999-12-31 23:59:59.999999+00", "1969-12-31 23:59:59.5+00",
     "0044-03-15 12:00:00+00 BC", "200000-12-31 23:59:59.999999+00", None,
     "2024-06-30 12:34:56.123456+00"],
    ["2024-01-01 12:34:56.789", "2000-01-01 00:00:00", None],
]


def fill(conn, table, first, rows):
    """Inserts rows first..first+rows-1 of the edge values, in one
    transaction."""
    cols = [c.split()[0] for c in TYPES.replace("\n", " ").split(", ")]
    with conn.cursor() as cur:
        for k in range(first, first + rows):
            vals = [col[k % len(col)] for col in EDGES]
            cur.execute("INSERT INTO %s (id, %s) VALUES (%%s, %s)"
                        % (table, ", ".join(cols), ", ".join(["%s"] * len(cols))), [k] + vals)
    conn.commit()


def copies(log, table):
    """The mirror's COPY statements into table (or its staging table), as
    (binary, direct) pairs, in order."""
    out = []
    for m in re.finditer(r'statement: (SAVEPOINT cdc_load; )?COPY ("public"\."%s"|pg_temp\.\S+) '
                         r'\([^)]*\) FROM STDIN( \(FORMAT binary\))?' % table, log):
        out.append((m.group(3) is not None, m.group(1) is not None))
    return out


def test_edge_values_binary(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.vals (id int PRIMARY KEY, %s)" % TYPES)
    cl.execute("src", "CREATE TABLE public.narrow (id int PRIMARY KEY, n numeric, ts timestamp)")
    cl.execute("mirror", "CREATE TABLE public.narrow (id int PRIMARY KEY, n numeric(10,2), "
                         "ts timestamp(0))")
    src = cl.connect("src")
    fill(src, "public.vals", 1, 300)
    narrow = "INSERT INTO public.narrow SELECT g, g / 1000.0 - 1.005, " \
             "timestamp '2024-01-01' + g * interval '0.25 s' FROM generate_series(%d, %d) g"
    cl.execute("src", narrow % (1, 200))
    cl.execute("postgres", "ALTER DATABASE mirror SET log_statement = 'all'")
    tables = ["public.vals", "public.narrow"]
    cdc = ctx.cdc(h.pipeline_config(cl, tables, [h.pg_sink(cl, "replica")],
                                    snapshot_mode="initial"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    mark = len(cl.server_log())
    # the snapshot, then runs of inserts streamed
    res = cdc.run_to(cl.current_lsn("src"), timeout=120)
    fill(src, "public.vals", 301, 300)
    cl.execute("src", narrow % (201, 400))
    res2 = cdc.run_to(cl.current_lsn("src"), timeout=120)
    log = cl.server_log()[mark:]
    for t in ("vals", "narrow"):
        c = copies(log, t)
        ctx.log("%s: %d COPY loads, %d binary" % (t, len(c), sum(b for b, _ in c)))
        assert c and all(b for b, _ in c), "%s: a load was not binary: %s" % (t, c)
    assert not h.log_events(res.stderr + res2.stderr, "sink.postgres.copy_text")
    mirror = cl.connect("mirror")
    n = h.compare_tables(src, mirror, "public.vals")
    ctx.log("public.vals: %d rows equal" % n)
    # the narrower mirror holds what a text COPY would have made of them
    with src.cursor() as cur:
        cur.execute("SELECT id, n::numeric(10,2)::text, ts::timestamp(0)::text "
                    "FROM public.narrow ORDER BY id")
        want = cur.fetchall()
    with mirror.cursor() as cur:
        cur.execute("SELECT id, n::text, ts::text FROM public.narrow ORDER BY id")
        got = cur.fetchall()
    assert got == want, [(a, b) for a, b in zip(got, want) if a != b][:5]
    assert got[5] == (6, "-1.00", "2024-01-01 00:00:02"), got[5]
    ctx.log("public.narrow: %d rows, rounded to the mirror's typmods" % len(got))


def test_value_not_converted_loads_as_text(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.days (id int PRIMARY KEY, d date, note text)")
    # one reader reads the table in key order, in writes of up to 1,024
    # rows: the first go out binary, the row with 'infinity' (which cdc
    # does not convert) and those after it as text
    cl.execute("src", "INSERT INTO public.days SELECT g, CASE WHEN g = 2500 THEN 'infinity' "
                      "ELSE date '2000-01-01' + g END, 'row ' || g FROM generate_series(1, 3000) g")
    cl.execute("postgres", "ALTER DATABASE mirror SET log_statement = 'all'")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.days"], [h.pg_sink(cl, "replica")],
                                    snapshot_mode="initial"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    mark = len(cl.server_log())
    res = cdc.run_to(cl.current_lsn("src"), timeout=120)
    cl.execute("src", "INSERT INTO public.days SELECT g, CASE WHEN g = 3100 THEN '-infinity'::date "
                      "ELSE date '1990-01-01' + g END, NULL FROM generate_series(3001, 3200) g")
    res2 = cdc.run_to(cl.current_lsn("src"), timeout=120)
    c = copies(cl.server_log()[mark:], "days")
    ctx.log("public.days: COPY loads (binary, straight into the table): %s" % c)
    assert c[0][0], "the first load was not binary: %s" % c
    assert not c[-1][0], "the last load was not text: %s" % c
    for r in (res, res2):
        ev = h.log_events(r.stderr, "sink.postgres.copy_text")
        assert len(ev) == 1 and ev[0]["column"] == "d" and "days" in ev[0]["table"], ev
    src, mirror = cl.connect("src"), cl.connect("mirror")
    assert h.compare_tables(src, mirror, "public.days") == 3200
