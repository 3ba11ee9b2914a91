"""Value fidelity: one table with a column of (nearly) every common type,
rows with extreme and awkward values, a row of NULLs, and a 1 MB
incompressible TOASTed text left unchanged by an UPDATE of another column.
The mirror must equal the source value for value; the JSONL file must follow
the contract's value mapping and carry the unchanged-TOAST marker.

The source and mirror databases run in different time zones (half-hour and
quarter-hour offsets), so timestamptz values only survive if cdc keeps the
offset."""

import base64
import decimal
import math

import harness as h

TABLE = "public.alltypes"
DDL = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'très content');
CREATE TABLE public.alltypes (
    id          int PRIMARY KEY,
    c_int2      smallint,
    c_int4      int,
    c_int8      bigint,
    c_float4    real,
    c_float8    double precision,
    c_numeric   numeric,
    c_numeric_p numeric(40,20),
    c_bool      boolean,
    c_text      text,
    c_varchar   varchar(20),
    c_char      char(10),
    c_bytea     bytea,
    c_uuid      uuid,
    c_json      json,
    c_jsonb     jsonb,
    c_date      date,
    c_time      time,
    c_timetz    timetz,
    c_ts        timestamp,
    c_tstz      timestamptz,
    c_interval  interval,
    c_int_arr   int[],
    c_text_arr  text[],
    c_mood      public.mood,
    c_note      text,
    c_big       text
);
"""

COLS = ("id, c_int2, c_int4, c_int8, c_float4, c_float8, c_numeric, c_numeric_p, c_bool, "
        "c_text, c_varchar, c_char, c_bytea, c_uuid, c_json, c_jsonb, c_date, c_time, c_timetz, "
        "c_ts, c_tstz, c_interval, c_int_arr, c_text_arr, c_mood, c_note")

AWKWARD = ("Ελληνικά 中文 日本語 한국어 😀🎉👩‍👩‍👧 \"double\" 'single' back\\slash \\\\ "
           "new\nline tab\tend cr\r ctrl\x01\x1f zero\u200bwidth rtl\u202e bom\ufeff end")

ROWS = [
    # ordinary values
    """(1, 12, 345, 6789012345, 1.5, 2.25, 123.456, 1.5, true, 'hello', 'varchar', 'abc',
        decode(md5(random()::text), 'hex'), gen_random_uuid(),
        '{"b": [1, 2, {"c": null}],   "a": "x\\ny"}', '{"z": {"y": [1, "two", null, true]}, "a": 1.50}',
        '2024-02-29', '13:14:15.161718', '12:34:56+05:30', '2024-01-02 03:04:05.678901',
        '2024-06-30 23:59:59.123456+00', '1 year 2 mons 3 days 04:05:06.789',
        '{1,2,3}', '{"a b","c,d","e\\"f",NULL,"ü"}', 'happy', 'note 1')""",
    # minimums, NaN, awkward text, every byte value
    """(2, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', 'NaN', -0.00000000000000000001,
        false, %(awkward)s, 'ñ€😀', 'é',
        (SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), '' ORDER BY g), 'hex')
           FROM generate_series(0, 255) g),
        '00000000-0000-0000-0000-000000000000', '"just a string \\u00e9"', '[]',
        'infinity', '00:00', '23:59:59.999999-12', '-infinity', 'infinity', '-1 days +02:03:00',
        '{{1,2},{3,4}}', '{}', 'très content', 'note 2')""",
    # maximums, huge precision, empties
    """(3, 32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity',
        123456789012345678901234567890.123456789012345678901234567890123,
        12345678901234567890.12345678901234567890, true, '', '', '', '\\x',
        'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '{"nested": {"deeper": {"deepest": [[[]]]}}}',
        '4713-01-01 BC', '24:00:00', '00:00:00+14', '1999-12-31 23:59:59.999999',
        '1970-01-01 00:00:00+00', '0', '{NULL,1}', '{"","NULL","null"}', 'sad', 'note 3')""",
    """(4, 0, 0, 0, '-Infinity', '-Infinity', 'Infinity', 0, false, 'x', 'x', 'x', '\\x00',
        gen_random_uuid(), '1', '"s"', '2000-01-01', '23:59:59', '00:00:00-00:30',
        '2000-01-01 00:00:00', '2038-01-19 03:14:08.5-07', '-1000000 years', '{-1}', '{x}', 'ok',
        'note 4')""",
    """(5, -1, -1, -1, '-0', '-0', '-Infinity', -0.00000000000000000001, true, 'tab	tab', ' lead',
        'trail ', '\\xdeadbeef', gen_random_uuid(), '{}', '{"a": "\\u00e9 ✓"}', '1999-01-08',
        '00:00:00.000001', '01:02:03.456-03:30', '1900-02-28 12:00:00', '1901-12-13 20:45:52+00',
        '1 microsecond', '{2147483647,-2147483648}', '{"\\\\"}', 'ok', 'note 5')""",
    """(6, 1, 1, 1, 3.4028235e38, 1e308, 1e100, 99999999999999999999.99999999999999999999, false,
        'a', 'b', 'c', '\\x0a0d09', gen_random_uuid(), '[1, 2.5e10, -0]', '[1e-7, 123456789012345678901234567890]',
        '0001-01-01', '12:00', '12:00+00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00',
        '-1 mons -2 days -03:04:05', '{0}', '{"{}"}', 'sad', 'note 6')""",
    """(7, 2, 2, 2, 1.4e-45, 5e-324, 0.1, 0.1, true, 'p', 'q', 'r', '\\xff', gen_random_uuid(),
        '0.1', '0.1', '2024-12-31', '07:08:09', '07:08:09+01', '2024-12-31 23:59:59',
        '2024-12-31 23:59:59+01', '1 day', '{7}', '{seven}', 'happy', 'note 7')""",
    """(8, 3, 3, 3, 0.1, 0.1, 3.141592653589793, 2.718281828459045, false, 'pi', 'e', 'phi',
        '\\x00ff00ff', gen_random_uuid(), '{"pi": 3.14159}', '{"e": 2.71828}', '2024-01-01',
        '10:11:12', '10:11:12-05', '2024-01-01 10:11:12', '2024-01-01 10:11:12-05',
        '3 hours', '{3,1,4}', '{"3","1","4"}', 'ok', 'note 8')""",
    # NULL everywhere but the key
    """(9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
]


def test_types_round_trip(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("postgres", "ALTER DATABASE src SET timezone TO 'America/St_Johns'")
    cl.execute("postgres", "ALTER DATABASE mirror SET timezone TO 'Asia/Kathmandu'")
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute(DDL)
    mirror = cl.connect("mirror")
    with mirror.cursor() as cur:  # the enum type itself is not part of the data
        cur.execute("CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'très content')")
    out = ctx.tmpdir("out")
    jsonl = out + "/events.jsonl"
    cdc = ctx.cdc(
        h.pipeline_config(cl, [TABLE], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                          pipeline_id="types", slot="types_slot", publication="types_pub"),
        h.platform_config(ctx.tmpdir("state")),
        cluster=cl,
    )
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()

    meta = h.TableMeta(src, TABLE)
    rec = h.Recorder(cl.connect("src", autocommit=False), {TABLE: meta})
    rec.begin()
    for row in ROWS:
        rec.insert(TABLE, "INSERT INTO alltypes (%s) VALUES %s" % (COLS, row),
                   {"awkward": AWKWARD} if "%(awkward)s" in row else None)
    rec.commit()
    # 1 MB that does not compress: stored out of line
    rec.begin()
    rec.insert(TABLE, "INSERT INTO alltypes (id, c_note, c_big) SELECT 100, 'before', "
                      "string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 32768) g")
    rec.commit()
    rec.begin()
    rec.update(TABLE, "c_note = 'after', c_int4 = 42", "id = 100")
    rec.update(TABLE, "c_text = c_text || ' (updated)', c_float8 = c_float8 / 3, c_jsonb = "
                      "c_jsonb || '{\"new\": true}', c_int_arr = c_int_arr || 99", "id = 1")
    rec.delete(TABLE, "id = 7")
    rec.commit()
    with src.cursor() as cur:
        cur.execute("SELECT pg_column_size(c_big), octet_length(c_big) FROM alltypes WHERE id = 100")
        stored, raw = cur.fetchone()
    assert raw == 1 << 20 and stored > raw * 0.9, "big value compressed: %s of %s" % (stored, raw)
    stop = cl.current_lsn("src")
    txns = oracle.read([TABLE], stop)

    cdc.run_to(stop, timeout=120)

    n = h.compare_tables(src, mirror, TABLE)
    ctx.log("mirror equals source (%d rows, compared as text)" % n)

    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="types")
    h.match_records(records, rec.expect, {TABLE: meta})
    ups = [r for r in records if r["op"] == "u" and r["after"]["id"] == 100]
    assert len(ups) == 1, "expected one update line for id 100, got %d" % len(ups)
    assert ups[0]["after"]["c_big"] == h.UNCHANGED, \
        "unchanged TOAST column c_big should be %r, got %s" % (h.UNCHANGED, h.short(ups[0]["after"]["c_big"]))
    assert ups[0]["after"]["c_note"] == "after"
    ins = {r["after"]["id"]: r["after"] for r in records if r["op"] == "c"}
    with src.cursor() as cur:
        cur.execute("SELECT c_big FROM alltypes WHERE id = 100")
        big = cur.fetchone()[0]
        cur.execute("SELECT c_text FROM alltypes WHERE id = 2")
        awkward = cur.fetchone()[0]
    assert ins[100]["c_big"] == big, "the 1 MB value differs in the insert line"
    assert ins[2]["c_text"] == awkward, "awkward text: %r" % ins[2]["c_text"]

    # explicit decoding of a few mappings, against the database's own values
    with src.cursor() as cur:
        cur.execute("SELECT id, c_bytea, c_numeric, c_numeric_p, c_float8, c_int8 FROM alltypes "
                    "WHERE id IN (2, 3, 4, 5, 6, 8, 9)")  # rows never updated
        db = {r[0]: r[1:] for r in cur.fetchall()}
    for i, (b, num, nump, f8, i8) in db.items():
        a = ins[i]
        if b is None:
            assert a["c_bytea"] is None
        else:
            assert base64.b64decode(a["c_bytea"], validate=True) == bytes(b), "bytea of row %d" % i
        for col, v in (("c_numeric", num), ("c_numeric_p", nump)):
            if v is None or v.is_nan():
                continue
            assert isinstance(a[col], str) and decimal.Decimal(a[col]) == v, \
                "%s of row %d: %r vs %s" % (col, i, a[col], v)
        if i8 is not None:
            assert a["c_int8"] == i8 and type(a["c_int8"]) is int, "c_int8 of row %d" % i
        if f8 is not None and not math.isnan(f8) and not math.isinf(f8):
            assert a["c_float8"] == f8 and math.copysign(1, a["c_float8"]) == math.copysign(1, f8), \
                "c_float8 of row %d: %r vs %r" % (i, a["c_float8"], f8)
    assert ins[2]["c_float8"] == "NaN" and ins[3]["c_float4"] == "Infinity" \
        and ins[4]["c_float8"] == "-Infinity", "NaN/Infinity must be strings"
    assert all(v is None for k, v in ins[9].items() if k != "id"), "row 9 must be all null"
    dels = [r for r in records if r["op"] == "d"]
    assert len(dels) == 1 and dels[0]["before"]["id"] == 7
    ctx.log("JSONL: %d lines follow the value mapping" % len(records))

