"""User-defined and extension types into the `replica` mirror, value for
value: composite types (also nested, as keys and inside arrays), enums,
domains, built-in and user-defined ranges and a multirange, hstore (from
contrib), arrays of every one of them, and NULL in every position a value
can be NULL (the column, a composite's field, an array element, an hstore
value).

Two mirrors of the same tables: one whose tables cdc creates (the types are
unknown there, so those columns hold the source's text), and one created
beforehand with the same types and extension, in another time zone (every
parameter is sent with its column's type, so keys of these types find their
rows).  Each is compared with the source (compare_tables) and with what
test_decoding reports for every change, replayed (Oracle.final_rows)."""

import harness as h

TYPES = """
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'très "content"');
CREATE TYPE public.pt AS (x int, y float8);
CREATE TYPE public.addr AS (street text, no int, tags text[], at public.pt, m public.mood);
CREATE DOMAIN public.posint AS int CHECK (VALUE > 0);
CREATE DOMAIN public.code AS text CHECK (VALUE ~ '^[A-Z]*$');
CREATE TYPE public.floatrange AS RANGE (subtype = float8);
"""

MATRIX = """
CREATE TABLE public.matrix (
    id      int PRIMARY KEY,
    c_addr  public.addr,     c_addrs  public.addr[],
    c_pt    public.pt,       c_pts    public.pt[],
    c_mood  public.mood,     c_moods  public.mood[],
    c_pos   public.posint,   c_poss   public.posint[],
    c_code  public.code,     c_codes  public.code[],
    c_ir    int4range,       c_irs    int4range[],
    c_nr    numrange,        c_dr     daterange,
    c_tr    tstzrange,       c_trs    tstzrange[],
    c_fr    public.floatrange, c_frs  public.floatrange[],
    c_mr    int4multirange,
    c_hs    hstore,          c_hss    hstore[]
);
CREATE TABLE public.by_addr (k public.addr PRIMARY KEY, v text);
CREATE TABLE public.by_mood_range (m public.mood, r int4range, v public.mood[],
                                   PRIMARY KEY (m, r));
"""
TABLES = {"public.matrix": ["id"], "public.by_addr": ["k"], "public.by_mood_range": ["m", "r"]}

COLS = ("id, c_addr, c_addrs, c_pt, c_pts, c_mood, c_moods, c_pos, c_poss, c_code, c_codes, "
        "c_ir, c_irs, c_nr, c_dr, c_tr, c_trs, c_fr, c_frs, c_mr, c_hs, c_hss")

ROWS = [
    # ordinary values
    """(1, ROW('Main St', 1, '{a,b}', ROW(1, 1.5), 'ok'),
        ARRAY[ROW('x', 2, '{}', ROW(0, 0), 'sad')::addr],
        ROW(3, -2.25), ARRAY[ROW(1, 2)::pt, ROW(3, 4)::pt], 'happy', '{sad,ok}', 7, '{1,2,3}',
        'ABC', '{A,B}', '[1,10)', '{"[1,2)","[3,4)"}', '[1.5,2.5]', '[2024-01-01,2024-02-01)',
        '[2024-01-01 10:00+00,2024-01-02 11:30+05:30)', ARRAY['[2024-01-01 00:00+00,)'::tstzrange],
        '[0.5,1.5)', ARRAY['(,3)'::floatrange], '{[1,3),[5,8)}', 'a=>1, b=>2',
        ARRAY['k=>v'::hstore, 'x=>"y z"'::hstore])""",
    # NULL in every inner position
    """(2, ROW(NULL, NULL, '{NULL,"b c",""}', ROW(NULL, NULL), NULL),
        ARRAY[NULL::addr, ROW(NULL, NULL, NULL, NULL, NULL)::addr],
        ROW(NULL, 'NaN'), ARRAY[NULL::pt, ROW(NULL, '-0')::pt], 'très "content"',
        ARRAY[NULL, 'très "content"']::mood[], 1, ARRAY[NULL, 5]::posint[],
        '', ARRAY[NULL, '']::code[], 'empty', ARRAY['empty'::int4range, NULL], '(,)',
        '(,2024-01-01]', '(-infinity,infinity)', ARRAY[NULL::tstzrange], 'empty',
        ARRAY[NULL::floatrange, 'empty'], '{}', 'a=>NULL, "" => "", "q\\"uote"=>"back\\\\slash"',
        ARRAY[NULL::hstore, ''::hstore])""",
    # awkward text inside composites and arrays
    """(3, ROW('quote " comma , paren ) brace { backslash \\ newline
 tab	end', 2147483647, ARRAY['NULL', 'null', ' lead', 'trail '], ROW(-1, 1e308), 'sad'),
        '{}', ROW(0, '-Infinity'), '{}', 'sad', '{}', 2147483647, '{}', 'Z', '{}', '[-5,-5]',
        '{}', '[-0.0,0.000001]', 'empty', '[,)', '{}', '[1e-300,1e300]', '{}',
        '{[1,2),[2,3)}', '', '{}')""",
    # NULL everywhere but the key
    "(4" + ", NULL" * 21 + ")",
]


def _exec(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)


def _text_rows(conn, table, cols):
    """{key tuple: {column: text or None}}: each value's output text, in a
    session with the settings the oracle read test_decoding with."""
    with h.session_settings(conn, TimeZone="UTC", DateStyle="ISO, YMD", IntervalStyle="postgres",
                            extra_float_digits="1"):
        with conn.cursor() as cur:
            cur.execute("SELECT %s FROM %s" % (", ".join(h.text_expr(h.qident(c)) for c in cols),
                                               h.qtable(table)))
            return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_type_matrix(ctx):
    cl = ctx.cluster()
    for db in ("src", "mirror_auto", "mirror_typed"):
        cl.createdb(db)
    cl.execute("postgres", "ALTER DATABASE mirror_typed SET timezone TO 'Asia/Kathmandu'")
    src, auto, typed = cl.connect("src"), cl.connect("mirror_auto"), cl.connect("mirror_typed")
    _exec(src, TYPES + MATRIX)
    _exec(typed, TYPES + MATRIX)
    tables = list(TABLES)
    cdc = ctx.cdc(
        h.pipeline_config(cl, tables, [h.pg_sink(cl, "replica", database="mirror_auto",
                                                 sink_id="auto"),
                                       h.pg_sink(cl, "replica", database="mirror_typed",
                                                 sink_id="typed")],
                          pipeline_id="matrix", slot="matrix_slot", publication="matrix_pub"),
        h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()

    _exec(src, "INSERT INTO matrix (%s) VALUES %s" % (COLS, ", ".join(ROWS)))
    _exec(src, "INSERT INTO by_addr SELECT c_addr, 'v' || id FROM matrix WHERE c_addr IS DISTINCT FROM NULL")
    _exec(src, "INSERT INTO by_mood_range VALUES ('ok', '[1,2)', '{ok}'), ('ok', 'empty', NULL), "
               "('très \"content\"', '(,)', '{NULL}'), ('sad', '[5,9)', '{}')")
    with src.cursor() as cur:
        # every column rewritten from another row, then keys moved and rows deleted
        cur.execute("UPDATE matrix m SET (%s) = (SELECT %s FROM matrix o WHERE o.id = 5 - m.id) "
                    "WHERE m.id IN (1, 2)" % (COLS.split(", ", 1)[1], COLS.split(", ", 1)[1]))
        cur.execute("UPDATE matrix SET c_hs = c_hs || 'new=>NULL', c_moods = c_moods || 'ok'::mood "
                    "WHERE id = 3")
        cur.execute("UPDATE by_addr SET v = v || '!' WHERE (k).no = 1")
        cur.execute("UPDATE by_addr SET k = ROW('moved', 9, '{}', NULL, 'ok') WHERE (k).street IS NULL")
        cur.execute("DELETE FROM by_addr WHERE (k).no = 2147483647")
        cur.execute("UPDATE by_mood_range SET r = '[7,8)' WHERE m = 'ok' AND r = 'empty'")
        cur.execute("DELETE FROM by_mood_range WHERE m = 'sad'")
        cur.execute("UPDATE by_mood_range SET v = v || NULL::mood WHERE r = '(,)'")
        cur.execute("DELETE FROM matrix WHERE id = 4")
        cur.execute("INSERT INTO matrix (%s) VALUES %s" % (COLS, ROWS[3].replace("(4", "(40", 1)))
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=180)
    entries = h.dlq_entries(cdc)
    assert not entries, "nothing may be dead-lettered:\n%s" % "\n".join(e["line"] for e in entries)

    for t, key in TABLES.items():
        cols = [c for c, _ in h.table_columns(src, t)]
        decoded = oracle.final_rows(t, key, stop, TimeZone="UTC", DateStyle="ISO, YMD",
                                    IntervalStyle="postgres", extra_float_digits="1")
        source = {tuple(r[k] for k in key): r for r in _text_rows(src, t, cols)}
        assert decoded == source, "%s: replaying test_decoding's changes does not give the " \
                                  "source's rows" % t
        for name, conn in (("cdc-created", auto), ("typed", typed)):
            n = h.compare_tables(src, conn, t)
            mirrored = {tuple(r[k] for k in key): r for r in _text_rows(conn, t, cols)}
            for k, row in decoded.items():
                assert mirrored.get(k) == row, "%s mirror, %s key %s: %s, test_decoding: %s" % (
                    name, t, k, mirrored.get(k), row)
            assert len(mirrored) == len(decoded)
            ctx.log("%s, %s mirror: %d rows, every value as test_decoding reports it" % (
                t, name, n))
