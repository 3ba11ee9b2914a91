"""The PostgreSQL `replica` mirror holds what a logical-replication subscriber
would hold, for the cases PostgreSQL's own documentation describes:

test_composite_enum_domain_range_array_keys: primary keys of composite, enum,
domain, range and array types, on mirror tables that use the same types:
updates, key changes and deletes find their rows (every parameter is typed).

test_truncate_together: one TRUNCATE of tables linked by a foreign key, with
RESTART IDENTITY, and a TRUNCATE … CASCADE (PostgreSQL lists the cascaded
table in the same message): the mirror runs one statement for the tables
truncated together, restarting its identities; the envelope carries the
options and the tables (test_decoding prints the same).

test_keyless_full_identity: a table without a key under REPLICA IDENTITY
FULL, with booleans, timestamptz, floats, json, point and NULLs, duplicate
rows, the mirror database in another time zone: updates and deletes change
exactly one matching row each; a change whose row is not in the mirror is
dead-lettered, never silently dropped.

test_refused_snapshot_row: the mirror refuses one row of the initial
snapshot: it is dead-lettered once and the snapshot completes.

test_dead_letter_scope: a 10,000-row transaction with 3 rows the mirror
refuses: with dead_letter_scope transaction (the default) none of it is
applied and all of it is dead-lettered; with row only the 3 are.
test_dead_letter_scope_survives_kill9: the same under kill -9.

test_key_change_followed / test_key_change_on_foreign_table_stops: the
source's key changes (REPLICA IDENTITY USING INDEX, a new primary key);
mirror tables cdc created follow, others make cdc stop naming the unique
index they lack.

test_schema_changes / test_dropped_columns_kept /
test_schema_change_it_cannot_follow: ADD COLUMN with constant and stable
defaults (existing rows get the source's value), RENAME (also twice, and of
a column renamed since in the catalog), DROP (dropped, or kept with
drop_columns: false), a name dropped and added again, int -> bigint with a
value above 2^31; a volatile default, and a default whose value for older
rows a rewrite erased, stop cdc naming table and column, and a run after
the mirror was fixed by hand goes on.

test_deferrable_key_shift: UPDATE t SET id = id + 1 under a DEFERRABLE
primary key (REPLICA IDENTITY FULL, as PostgreSQL requires: a deferrable
key is no replica identity), also with duplicate keys between statements."""

import os
import random
import time

import harness as h


def _pipeline(ctx, cl, tables, sinks, name, platform=None, **source):
    cdc = ctx.cdc(h.pipeline_config(cl, tables, sinks, pipeline_id=name, slot=name + "_slot",
                                    publication=name + "_pub", **source),
                  platform or h.platform_config(ctx.tmpdir("state")), cluster=cl)
    return cdc


def _exec(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        if cur.description is not None:
            return cur.fetchall()
    return None


def _fast_retry(state_dir, **extra):
    return h.platform_config(state_dir, retry={"max_attempts": 2, "initial_wait_seconds": 0.1,
                                               "max_wait_seconds": 0.5, "multiplier": 2.0,
                                               "jitter": False}, **extra)


def _no_dead_letters(cdc):
    entries = h.dlq_entries(cdc)
    assert not entries, "nothing may be dead-lettered, got %d entries:\n%s" % (
        len(entries), "\n".join(e["line"] for e in entries[:10]))


# --------------------------------------------------------------------------
# composite, enum, domain, range and array keys

KEY_TYPES = """
CREATE TYPE public.pt AS (x int, y text);
CREATE TYPE public.colour AS ENUM ('red', 'green', 'blue');
CREATE DOMAIN public.posint AS int CHECK (VALUE > 0);
"""
KEY_TABLES = {
    "public.k_comp": ("k public.pt PRIMARY KEY, v text",
                      ["(ROW(1, 'a'), 'one')", "(ROW(2, 'b c'), 'two')", "(ROW(3, NULL), 'three')",
                       "(ROW(4, 'q\"uote'), 'four')"]),
    "public.k_enum": ("k public.colour PRIMARY KEY, v text",
                      ["('red', 'r')", "('green', 'g')", "('blue', 'b')"]),
    "public.k_dom": ("k public.posint PRIMARY KEY, v text", ["(1, 'a')", "(2, 'b')", "(3, 'c')"]),
    "public.k_range": ("k int4range PRIMARY KEY, v text",
                       ["('[1,5)', 'a')", "('[5,10)', 'b')", "('empty', 'e')"]),
    "public.k_arr": ("k int[] PRIMARY KEY, v text",
                     ["('{1,2}', 'a')", "('{3}', 'b')", "('{}', 'e')", "('{NULL,4}', 'n')"]),
    "public.k_mixed": ("a public.pt, b public.colour, c text, PRIMARY KEY (a, b)",
                       ["(ROW(1, 'x'), 'red', 'p')", "(ROW(1, 'x'), 'blue', 'q')"]),
}


def test_composite_enum_domain_range_array_keys(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    for conn in (src, mirror):  # the mirror tables use the same types
        _exec(conn, KEY_TYPES)
        for t, (cols, _) in KEY_TABLES.items():
            _exec(conn, "CREATE TABLE %s (%s)" % (t, cols))
    tables = list(KEY_TABLES)
    cdc = _pipeline(ctx, cl, tables, [h.pg_sink(cl, "replica")], "keys")
    cdc.deploy().expect_rc(0)
    for t, (_, rows) in KEY_TABLES.items():
        _exec(src, "INSERT INTO %s VALUES %s" % (t, ", ".join(rows)))
    with src.cursor() as cur:
        cur.execute("UPDATE k_comp SET v = v || '!' WHERE k = ROW(1, 'a')::pt")
        cur.execute("UPDATE k_comp SET k = ROW(9, 'moved') WHERE k = ROW(2, 'b c')::pt")
        cur.execute("DELETE FROM k_comp WHERE k = ROW(3, NULL)::pt")
        cur.execute("DELETE FROM k_comp WHERE k = ROW(4, 'q\"uote')::pt")
        cur.execute("UPDATE k_enum SET v = 'R' WHERE k = 'red'")
        cur.execute("UPDATE k_enum SET k = 'red' WHERE k = 'green' AND false")
        cur.execute("DELETE FROM k_enum WHERE k = 'blue'")
        cur.execute("UPDATE k_dom SET k = 7 WHERE k = 2")
        cur.execute("DELETE FROM k_dom WHERE k = 3")
        cur.execute("UPDATE k_range SET v = 'A' WHERE k = '[1,5)'")
        cur.execute("UPDATE k_range SET k = '[20,30]' WHERE k = '[5,10)'")
        cur.execute("DELETE FROM k_range WHERE k = 'empty'")
        cur.execute("UPDATE k_arr SET v = 'A' WHERE k = '{1,2}'")
        cur.execute("UPDATE k_arr SET k = '{3,3}' WHERE k = '{3}'")
        cur.execute("DELETE FROM k_arr WHERE k = '{}'")
        cur.execute("DELETE FROM k_arr WHERE k = '{NULL,4}'")
        cur.execute("UPDATE k_mixed SET c = 'P' WHERE b = 'red'")
        cur.execute("DELETE FROM k_mixed WHERE b = 'blue'")
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    _no_dead_letters(cdc)
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("%s: %d rows equal" % (t, n))


# --------------------------------------------------------------------------
# TRUNCATE of several tables, with options

TRUNC_DDL = """
CREATE TABLE public.parent (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);
CREATE TABLE public.child (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                           parent_id int NOT NULL REFERENCES public.parent, note text);
CREATE TABLE public.solo (id int PRIMARY KEY);
"""


def _fill_parent_child(conn, n):
    _exec(conn, "INSERT INTO parent (name) SELECT 'p' || g FROM generate_series(1, %s) g", (n,))
    _exec(conn, "INSERT INTO child (parent_id, note) SELECT id, 'c' FROM parent")


def test_truncate_together(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    _exec(src, TRUNC_DDL)
    _exec(mirror, TRUNC_DDL)  # the mirror keeps the foreign key and the identities
    tables = ["public.parent", "public.child", "public.solo"]
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    cdc = _pipeline(ctx, cl, tables, [h.file_sink(jsonl), h.pg_sink(cl, "replica")], "trunc")
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    _fill_parent_child(src, 5)
    _exec(src, "INSERT INTO solo SELECT generate_series(1, 3)")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    # The mirror's identities moved on (rows it generated itself).
    _exec(mirror, "SELECT setval(pg_get_serial_sequence('public.parent', 'id'), 500), "
                  "setval(pg_get_serial_sequence('public.child', 'id'), 700)")
    _exec(src, "TRUNCATE parent, child RESTART IDENTITY")
    _fill_parent_child(src, 3)  # ids start at 1 again
    mid = cl.current_lsn("src")
    cdc.run_to(mid, timeout=120)
    seqs = _exec(mirror, "SELECT last_value, is_called FROM public.parent_id_seq "
                         "UNION ALL SELECT last_value, is_called FROM public.child_id_seq")
    assert seqs == [(1, False), (1, False)], \
        "RESTART IDENTITY must restart the mirror's sequences: %s" % (seqs,)
    _exec(src, "TRUNCATE parent CASCADE")  # child goes with it
    _fill_parent_child(src, 2)
    _exec(src, "BEGIN; TRUNCATE solo; INSERT INTO solo VALUES (42); COMMIT")
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    _no_dead_letters(cdc)
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("%s: %d rows equal" % (t, n))
    # The envelope: one line per table, each naming the statement's tables
    # and options, as test_decoding reports them.
    want = [(sorted(t), o) for t, o in oracle.truncates(stop)]
    got = []  # statements in stream order: [(sequence, names, [(table, options)])]
    for r in h.read_jsonl(jsonl):
        if r["op"] != "t":
            continue
        tr = r["truncate"]
        names = sorted("%s.%s" % (x["schema"], x["table"]) for x in tr["tables"])
        opts = {o for o, on in (("cascade", tr["cascade"]), ("restart_seqs", tr["restart_identity"]))
                if on}
        line = ("%s.%s" % (r["source"]["schema"], r["source"]["table"]), opts)
        if got and got[-1][0] == r["source"]["sequence"].split(",")[0] and got[-1][1] == names:
            got[-1][2].append(line)
        else:
            got.append((r["source"]["sequence"].split(",")[0], names, [line]))
    assert len(got) == len(want), "%d truncate statements in the file, test_decoding saw %d" % (
        len(got), len(want))
    for (_, names, lines), (tabs, opts) in zip(got, want):
        assert names == tabs, "the file names %s, test_decoding %s" % (names, tabs)
        assert sorted(t for t, _ in lines) == tabs, "one line per table: %s" % lines
        assert all(o == opts for _, o in lines), "options %s, test_decoding says %s" % (lines, opts)
    ctx.log("%d truncate statements, options and tables as test_decoding reports" % len(want))


# --------------------------------------------------------------------------
# keyless tables, REPLICA IDENTITY FULL

KEYLESS_DDL = """
CREATE TABLE public.kl (flag boolean, at timestamptz, f float8, n numeric, doc json, p point,
                        note text);
ALTER TABLE public.kl REPLICA IDENTITY FULL;
"""


def test_keyless_full_identity(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("postgres", "ALTER DATABASE src SET timezone TO 'America/St_Johns'")
    cl.execute("postgres", "ALTER DATABASE mirror SET timezone TO 'Asia/Kathmandu'")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    _exec(src, KEYLESS_DDL)
    t = "public.kl"
    cdc = _pipeline(ctx, cl, [t], [h.pg_sink(cl, "replica")], "kl",
                    platform=_fast_retry(ctx.tmpdir("state")))
    cdc.deploy().expect_rc(0)
    _exec(src, """INSERT INTO kl VALUES
        (false, '2024-03-10 01:30:00+00', 0.1, 1.50, '{"a": [1, 2]}', '(1,2)', 'a'),
        (false, '2024-03-10 01:30:00+00', 0.1, 1.50, '{"a": [1, 2]}', '(1,2)', 'a'),
        (true, '1999-12-31 23:59:59.999999+14', -0.0, 'NaN', '"x"', '(0.5,-3)', NULL),
        (NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (true, 'infinity', 1e308, 0, '[]', '(1e-300,7)', 'b')""")
    _exec(src, "UPDATE kl SET note = 'changed' WHERE flag = false AND note = 'a' "
               "AND ctid = (SELECT min(ctid) FROM kl WHERE note = 'a')")
    _exec(src, "UPDATE kl SET note = 'was null' WHERE flag IS NULL")
    _exec(src, "UPDATE kl SET f = 2.5 WHERE p[0] = 0.5")
    _exec(src, "DELETE FROM kl WHERE at = 'infinity'")
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    _no_dead_letters(cdc)
    n = h.compare_tables(src, mirror, t)
    ctx.log("mirror equals source (%d rows) across time zones" % n)

    # A row missing from the mirror: the change to it must not vanish.
    _exec(mirror, "DELETE FROM kl WHERE note = 'was null'")
    _exec(src, "UPDATE kl SET note = 'again' WHERE note = 'was null'")
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    entries = h.dlq_entries(cdc)
    assert len(entries) == 1, "the update of a row the mirror lacks must be dead-lettered: %s" % (
        [e["line"] for e in entries],)
    shown = h.dlq_show(cdc, entries[0]["id"]).stdout
    assert "found no row" in shown, "the entry must say the row was not found:\n%s" % shown
    ctx.log("an update of a row the mirror lacks was dead-lettered")


# --------------------------------------------------------------------------
# a snapshot row the mirror refuses


def test_refused_snapshot_row(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    ddl = "CREATE TABLE public.snap (id int PRIMARY KEY, amount int%s)"
    _exec(src, ddl % "")
    _exec(mirror, ddl % " CHECK (amount <> 13)")
    _exec(src, "INSERT INTO snap SELECT g, g FROM generate_series(1, 2000) g")
    t = "public.snap"
    cdc = _pipeline(ctx, cl, [t], [h.pg_sink(cl, "replica")], "snaprej",
                    platform=_fast_retry(ctx.tmpdir("state")), snapshot_mode="initial",
                    snapshot_chunk_rows=500)
    proc = cdc.start()
    h.wait_log_event(proc, "snapshot.done", 90, what="the snapshot to complete")
    _exec(src, "INSERT INTO snap VALUES (5000, 5000)")
    stop = cl.current_lsn("src")
    h.wait_for(lambda: (h.slot_confirmed_lsn(cl, "snaprej_slot") or 0) >= h.lsn_to_int(stop), 90,
               "cdc to confirm the change after the snapshot")
    proc.terminate()
    proc.wait(60).expect_rc(0)
    entries = h.dlq_entries(cdc)
    assert len(entries) == 1, "the refused row must be dead-lettered once, got %d entries" % len(
        entries)
    want = _exec(src, "SELECT id, amount FROM snap WHERE amount <> 13 ORDER BY id")
    got = _exec(mirror, "SELECT id, amount FROM snap ORDER BY id")
    assert got == want, "mirror: %d rows, want the source's %d minus the refused one" % (
        len(got), len(want))
    ctx.log("one snapshot row dead-lettered, %d rows mirrored" % len(got))


# --------------------------------------------------------------------------
# dead-letter scope: transaction (default) or row

PAY_DDL = "CREATE TABLE public.pay (id int PRIMARY KEY, amount bigint%s, note text)"
REFUSED = (1234, 5678, 9012)


def _scope_setup(ctx, cl, name, platform=None):
    cl.createdb("src")
    src = cl.connect("src")
    _exec(src, PAY_DDL % "")
    mirrors = {}
    for db in ("mirror_t", "mirror_r"):
        cl.createdb(db)
        mirrors[db] = cl.connect(db)
        _exec(mirrors[db], PAY_DDL % " CHECK (amount >= 0)")
    sinks = [h.pg_sink(cl, "replica", database="mirror_t", sink_id="whole"),
             h.pg_sink(cl, "replica", database="mirror_r", sink_id="rows", dead_letter_scope="row")]
    cdc = _pipeline(ctx, cl, ["public.pay"], sinks, name,
                    platform=platform or _fast_retry(ctx.tmpdir("state")))
    cdc.deploy().expect_rc(0)
    return src, mirrors, cdc


def _big_txn(src, first, n, refused):
    _exec(src, "INSERT INTO pay SELECT g, CASE WHEN g = ANY(%s) THEN -g ELSE g END, 'big' "
               "FROM generate_series(%s, %s) g", (list(refused), first, first + n - 1))


def _ids(conn, where="true"):
    return [r[0] for r in _exec(conn, "SELECT id FROM pay WHERE %s ORDER BY id" % where)]


def test_dead_letter_scope(ctx):
    cl = ctx.cluster()
    src, mirrors, cdc = _scope_setup(ctx, cl, "scope")
    _exec(src, "INSERT INTO pay VALUES (0, 0, 'before')")
    _big_txn(src, 1, 10000, REFUSED)
    _exec(src, "INSERT INTO pay VALUES (20000, 1, 'after')")
    _exec(src, "UPDATE pay SET note = 'later' WHERE id IN (0, 20000)")
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=300)
    whole = h.dlq_entries(cdc, sink="whole")
    rows = h.dlq_entries(cdc, sink="rows")
    all_ids = _ids(src)
    # transaction scope: nothing of the big transaction, all of it dead-lettered
    assert _ids(mirrors["mirror_t"]) == [0, 20000], \
        "transaction scope: the mirror must hold none of the refused transaction's rows, " \
        "it holds %d rows" % len(_ids(mirrors["mirror_t"]))
    assert len(whole) == 10000, "transaction scope: want all 10000 changes dead-lettered, got %d" % (
        len(whole))
    # row scope: exactly the refused rows
    assert _ids(mirrors["mirror_r"]) == [i for i in all_ids if i not in REFUSED], \
        "row scope: the mirror must hold everything but the refused rows"
    assert len(rows) == 3, "row scope: want the 3 refused rows dead-lettered, got %d" % len(rows)
    for m in mirrors.values():
        got = _exec(m, "SELECT note FROM pay WHERE id IN (0, 20000) ORDER BY id")
        assert got == [("later",), ("later",)], "the transactions around it must be applied"
    ctx.log("transaction scope: 0 of 10000 applied, %d dead-lettered; row scope: 9997 applied, "
            "3 dead-lettered; cdc took %.1fs" % (len(whole), res.duration))
    # Once the mirror takes them, a replay completes the row-scope mirror.
    _exec(mirrors["mirror_r"], "ALTER TABLE pay DROP CONSTRAINT pay_amount_check")
    h.dlq_replay(cdc, sink="rows").expect_rc(0)
    n = h.compare_tables(src, mirrors["mirror_r"], "public.pay")
    ctx.log("after replaying its 3 entries the row-scope mirror equals the source (%d rows)" % n)


def test_dead_letter_scope_survives_kill9(ctx):
    """Transactions with a refused row, cdc killed (SIGKILL) again and again
    while it dead-letters them: in the end every refused transaction is
    wholly absent from the transaction-scope mirror and wholly in its
    dead-letter queue, once; the row-scope mirror lacks exactly the refused
    rows, each dead-lettered once."""
    cl = ctx.cluster()
    src, mirrors, cdc = _scope_setup(ctx, cl, "scopek")
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    ctx.log("seed %d" % seed)
    txns = []  # (first id, size, refused ids)
    next_id = 1
    kills = 0
    for _ in range(int(os.environ.get("CDC_TEST_KILLS", "20")) // 2 or 1):
        proc = cdc.start()
        for _ in range(rng.randrange(3, 8)):
            n = rng.randrange(50, 3000)
            refused = ()
            if rng.random() < 0.4:
                refused = tuple(sorted(rng.sample(range(next_id, next_id + n), rng.randrange(1, 4))))
            _big_txn(src, next_id, n, refused)
            txns.append((next_id, n, refused))
            next_id += n
            time.sleep(rng.uniform(0, 0.2))
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is not None:
            raise AssertionError("cdc exited; %s" % proc.result().describe())
        proc.kill9()
        kills += 1
        cl.wait_slot_inactive("scopek_slot")
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=300)
    bad = [t for t in txns if t[2]]
    good_ids = [i for first, n, refused in txns if not refused for i in range(first, first + n)]
    assert _ids(mirrors["mirror_t"]) == good_ids, \
        "transaction scope: the mirror must hold exactly the transactions without a refused row"
    all_refused = sorted(i for t in bad for i in t[2])
    assert _ids(mirrors["mirror_r"]) == [i for i in range(1, next_id) if i not in set(all_refused)], \
        "row scope: the mirror must hold every row but the refused ones"
    for sink, want in (("whole", sum(n for _, n, _ in bad)), ("rows", len(all_refused))):
        entries = h.dlq_entries(cdc, sink=sink)
        positions = [e["line"].split()[2] for e in entries]
        assert len(set(positions)) == len(positions), "%s: a change was dead-lettered twice" % sink
        assert len(entries) == want, "%s: want %d dead-lettered changes, got %d" % (
            sink, want, len(entries))
    ctx.log("%d kills, %d transactions (%d with refused rows): transaction scope kept them whole, "
            "row scope dead-lettered exactly the %d refused rows" % (
                kills, len(txns), len(bad), len(all_refused)))


def test_dead_letter_scope_resumes_after_a_crash(ctx):
    """The state a kill -9 leaves right after the refused change of a
    transaction was dead-lettered, and before the rest of it was: the next
    run must dead-letter the rest too, not apply it."""
    cl = ctx.cluster()
    state = ctx.tmpdir("state")
    src, mirrors, cdc = _scope_setup(ctx, cl, "scopec", platform=_fast_retry(state))
    oracle = h.Oracle(cl, "src").create()
    _exec(src, "INSERT INTO pay VALUES (0, 0, 'before')")
    _big_txn(src, 1, 1000, (1,))  # the refused row is the transaction's first change
    _exec(src, "INSERT INTO pay VALUES (5000, 1, 'after')")
    stop = cl.current_lsn("src")
    txn = [t for t in oracle.read(["public.pay"], stop) if len(t.changes) == 1000][0]
    assert txn.commit_lsn is not None, "the commit LSN must be read from the WAL"
    # As the crashed run left it: the refused change (position commit:0) is in
    # the transaction-scope sink's dead-letter queue.
    h.dlq_seed(h.state_db_path(state, "scopec"), "whole", 1, "--pipeline", "scopec",
               "--lsn", h.int_to_lsn(txn.commit_lsn))
    cdc.run_to(stop, timeout=180)
    assert _ids(mirrors["mirror_t"]) == [0, 5000], \
        "transaction scope: the rest of the transaction must be dead-lettered after a restart, " \
        "the mirror holds %d rows" % len(_ids(mirrors["mirror_t"]))
    whole = h.dlq_entries(cdc, sink="whole")
    assert len(whole) == 1000, "want the 1000 changes dead-lettered once each, got %d" % len(whole)
    assert _ids(mirrors["mirror_r"]) == [0] + list(range(2, 1001)) + [5000], \
        "row scope: everything but the refused row"
    ctx.log("after the restart the other 999 changes followed the seeded one into the queue")


# --------------------------------------------------------------------------
# the source's key changes


def _mirror_key(conn, table):
    """The mirror's primary-key columns, sorted."""
    return sorted(h.primary_key(conn, table))


def test_key_change_followed(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    _exec(src, """
        CREATE TABLE public.acct (id int PRIMARY KEY, code text NOT NULL, bal int);
        CREATE UNIQUE INDEX acct_code ON public.acct (code);
        CREATE TABLE public.line (a int NOT NULL, b int NOT NULL, id int PRIMARY KEY, v text);""")
    tables = ["public.acct", "public.line"]
    cdc = _pipeline(ctx, cl, tables, [h.pg_sink(cl, "replica")], "keych")
    cdc.deploy().expect_rc(0)
    _exec(src, "INSERT INTO acct SELECT g, 'c' || g, g FROM generate_series(1, 20) g")
    _exec(src, "INSERT INTO line SELECT g % 5, g / 5, g, 'v' FROM generate_series(1, 20) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    assert _mirror_key(mirror, "public.acct") == ["id"]
    # The replica identity becomes another unique index; the other table
    # gets a new primary key.
    _exec(src, "ALTER TABLE acct REPLICA IDENTITY USING INDEX acct_code")
    _exec(src, "ALTER TABLE line DROP CONSTRAINT line_pkey, ADD PRIMARY KEY (a, b)")
    with src.cursor() as cur:
        cur.execute("UPDATE acct SET bal = bal * 10 WHERE id <= 5")
        cur.execute("UPDATE acct SET code = 'moved' || id WHERE id BETWEEN 6 AND 8")
        cur.execute("DELETE FROM acct WHERE id > 15")
        cur.execute("INSERT INTO acct VALUES (100, 'new', 1)")
        cur.execute("UPDATE line SET v = 'w' WHERE a = 1")
        cur.execute("UPDATE line SET b = b + 100 WHERE a = 2")
        cur.execute("DELETE FROM line WHERE a = 3")
        cur.execute("INSERT INTO line VALUES (9, 9, 99, 'x')")
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    _no_dead_letters(cdc)
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("%s: %d rows equal" % (t, n))
    assert _mirror_key(mirror, "public.acct") == ["code"], \
        "the mirror's key must follow the replica identity index: %s" % _mirror_key(mirror, "public.acct")
    assert _mirror_key(mirror, "public.line") == ["a", "b"], "the mirror's key must be the new one"


def test_key_change_on_foreign_table_stops(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    ddl = "CREATE TABLE public.acct (id int PRIMARY KEY, code text NOT NULL, bal int)"
    _exec(src, ddl + "; CREATE UNIQUE INDEX acct_code ON public.acct (code)")
    _exec(mirror, ddl)  # made by someone else, without the unique index on code
    cdc = _pipeline(ctx, cl, ["public.acct"], [h.pg_sink(cl, "replica")], "keyst")
    cdc.deploy().expect_rc(0)
    _exec(src, "INSERT INTO acct SELECT g, 'c' || g, g FROM generate_series(1, 10) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    _exec(src, "ALTER TABLE acct REPLICA IDENTITY USING INDEX acct_code")
    _exec(src, "UPDATE acct SET bal = 0 WHERE id <= 5")
    stop = cl.current_lsn("src")
    res = cdc.start(stop).wait(120)
    assert res.rc == 1, "cdc must stop with an error; %s" % res.describe()
    errs = res.error_lines
    assert len(errs) == 1 and "unique index" in errs[0] and '"code"' in errs[0] \
        and "acct" in errs[0], "the error must name the table and the missing index: %s" % errs
    assert not h.dlq_entries(cdc), "nothing may be dead-lettered"
    confirmed = h.slot_confirmed_lsn(cl, "keyst_slot")
    assert confirmed < h.lsn_to_int(stop), "nothing past the stop may be confirmed"
    ctx.log("cdc stopped: %s" % errs[0])
    # With the index, the next run goes on.
    _exec(mirror, "CREATE UNIQUE INDEX ON public.acct (code)")
    cdc.run_to(stop, timeout=120)
    h.compare_tables(src, mirror, "public.acct")
    ctx.log("after creating the index the mirror caught up")


# --------------------------------------------------------------------------
# schema changes


def _mirror_columns(conn, table):
    return [c for c, _ in h.table_columns(conn, table)]


def _evolve(src, cdc, cl):
    """The evolution both schema tests apply, in three runs."""
    _exec(src, "INSERT INTO evo SELECT g, g, 'b' || g, g * 10, g FROM generate_series(1, 10) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    with src.cursor() as cur:
        cur.execute("ALTER TABLE evo ADD COLUMN k int DEFAULT 42")
        cur.execute("ALTER TABLE evo ADD COLUMN at timestamptz DEFAULT now()")
        cur.execute("ALTER TABLE evo RENAME COLUMN b TO b2")
        cur.execute("ALTER TABLE evo DROP COLUMN c")
        cur.execute("UPDATE evo SET b2 = b2 || '.' WHERE id = 4")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    with src.cursor() as cur:
        cur.execute("ALTER TABLE evo ALTER COLUMN a TYPE bigint")
        cur.execute("UPDATE evo SET a = 3000000000 WHERE id = 1")
        cur.execute("INSERT INTO evo (id, a, b2, d) VALUES (11, 4000000000, 'new', 11)")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    with src.cursor() as cur:
        # drop a column and add one of the same name: existing rows get the
        # new column's default, not the old values
        cur.execute("ALTER TABLE evo DROP COLUMN d, ADD COLUMN d text DEFAULT 'fresh'")
        cur.execute("ALTER TABLE evo RENAME COLUMN k TO k2")
        cur.execute("UPDATE evo SET b2 = 'changed' WHERE id = 2")
        cur.execute("ALTER TABLE evo RENAME COLUMN b2 TO b3")
        cur.execute("DELETE FROM evo WHERE id = 3")
    cdc.run_to(cl.current_lsn("src"), timeout=120)


EVO_DDL = "CREATE TABLE public.evo (id int PRIMARY KEY, a int, b text, c int, d int)"


def test_schema_changes(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    t = "public.evo"
    _exec(src, EVO_DDL)
    cdc = _pipeline(ctx, cl, [t], [h.pg_sink(cl, "replica")], "evo")
    cdc.deploy().expect_rc(0)
    _evolve(src, cdc, cl)
    _no_dead_letters(cdc)
    n = h.compare_tables(src, mirror, t)
    ctx.log("mirror: %d rows equal the source" % n)
    assert _mirror_columns(mirror, t) == _mirror_columns(src, t), \
        "the mirror's columns %s must be the source's %s" % (_mirror_columns(mirror, t),
                                                           _mirror_columns(src, t))
    types = dict(h.table_columns(mirror, t))
    assert types["a"] == "int8", "a must have become bigint in the mirror, it is %s" % types["a"]


def test_dropped_columns_kept(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, keep = cl.connect("src"), cl.connect("mirror")
    t = "public.evo"
    _exec(src, EVO_DDL)
    cdc = _pipeline(ctx, cl, [t], [h.pg_sink(cl, "replica", drop_columns=False)], "evokeep")
    cdc.deploy().expect_rc(0)
    _evolve(src, cdc, cl)
    _no_dead_letters(cdc)
    n = h.compare_tables(src, keep, t)
    ctx.log("mirror keeping dropped columns: %d rows equal the source" % n)
    kept = _exec(keep, "SELECT id, c FROM evo ORDER BY id")
    assert kept[:2] == [(1, 10), (2, 20)] and kept[-1] == (11, None), \
        "drop_columns false keeps the dropped column's old values: %s" % kept
    assert "b" not in _mirror_columns(keep, t), "a renamed column is renamed, not kept"


def test_schema_change_it_cannot_follow(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    t = "public.evo"
    _exec(src, "CREATE TABLE public.evo (id int PRIMARY KEY, a int)")
    cdc = _pipeline(ctx, cl, [t], [h.pg_sink(cl, "replica")], "evostop")
    cdc.deploy().expect_rc(0)
    _exec(src, "INSERT INTO evo SELECT g, g FROM generate_series(1, 10) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    # A volatile default: PostgreSQL rewrites the table, giving each existing
    # row its own value, which the log does not carry.
    _exec(src, "ALTER TABLE evo ADD COLUMN r float8 DEFAULT random()")
    _exec(src, "INSERT INTO evo (id, a) VALUES (11, 11)")
    stop = cl.current_lsn("src")
    res = cdc.start(stop).wait(120)
    assert res.rc == 1, "cdc must stop; %s" % res.describe()
    errs = res.error_lines
    assert len(errs) == 1 and "public.evo" in errs[0] and "column r" in errs[0], \
        "the error must name the table and the column: %s" % errs
    assert h.slot_confirmed_lsn(cl, "evostop_slot") < h.lsn_to_int(stop)
    assert not h.dlq_entries(cdc), "nothing may be dead-lettered"
    ctx.log("cdc stopped: %s" % errs[0])
    # Once the mirror has the column with the source's values, cdc goes on.
    _exec(mirror, "ALTER TABLE evo ADD COLUMN r float8")
    for i, r in _exec(src, "SELECT id, r FROM evo WHERE id <= 10"):
        _exec(mirror, "UPDATE evo SET r = %s WHERE id = %s", (r, i))
    cdc.run_to(stop, timeout=120)
    h.compare_tables(src, mirror, t)
    ctx.log("after the column was added by hand the mirror caught up")

    # A constant default, but the table is rewritten before cdc reads the
    # change: PostgreSQL no longer records the value older rows got.
    _exec(src, "ALTER TABLE evo ADD COLUMN k int DEFAULT 7")
    _exec(src, "ALTER TABLE evo ALTER COLUMN a TYPE bigint")
    _exec(src, "UPDATE evo SET a = 5000000000 WHERE id = 1")
    stop = cl.current_lsn("src")
    res = cdc.start(stop).wait(120)
    errs = res.error_lines
    assert res.rc == 1 and len(errs) == 1 and "column k" in errs[0] and "public.evo" in errs[0], \
        "cdc must stop naming table and column; %s" % res.describe()
    ctx.log("cdc stopped: %s" % errs[0])
    _exec(mirror, "ALTER TABLE evo ADD COLUMN k int DEFAULT 7")
    cdc.run_to(stop, timeout=120)
    h.compare_tables(src, mirror, t)
    ctx.log("after the column was added by hand the mirror caught up again")


# --------------------------------------------------------------------------
# a key shift under a DEFERRABLE primary key


def test_deferrable_key_shift(ctx):
    """A DEFERRABLE primary key is no replica identity, so the table runs
    under REPLICA IDENTITY FULL: test_decoding shows each row's UPDATE with
    the whole old row, in the order the rows were changed, with keys that
    collide until the transaction (or statement) ends."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src, mirror = cl.connect("src"), cl.connect("mirror")
    _exec(src, """
        CREATE TABLE public.shift (id int PRIMARY KEY DEFERRABLE INITIALLY IMMEDIATE, v text);
        ALTER TABLE public.shift REPLICA IDENTITY FULL;
        CREATE TABLE public.shift2 (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
        ALTER TABLE public.shift2 REPLICA IDENTITY FULL;""")
    tables = ["public.shift", "public.shift2"]
    cdc = _pipeline(ctx, cl, tables, [h.pg_sink(cl, "replica")], "shift")
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    _exec(src, "INSERT INTO shift SELECT g, 'v' || g FROM generate_series(1, 10) g")
    _exec(src, "INSERT INTO shift2 SELECT g, 'w' || g FROM generate_series(1, 10) g")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    _exec(src, "UPDATE shift SET id = id + 1")
    # Two statements; between them two rows share a key (deferred check).
    _exec(src, "BEGIN; UPDATE shift2 SET id = id + 1 WHERE id <= 5; "
               "UPDATE shift2 SET id = id + 1 WHERE id > 5 AND v <> 'w5'; COMMIT")
    _exec(src, "UPDATE shift SET id = id - 1")
    _exec(src, "INSERT INTO shift VALUES (100, 'x'); DELETE FROM shift WHERE id = 3")
    stop = cl.current_lsn("src")
    txns = oracle.read(tables, stop)
    ups = [c for t in txns for c in t.changes if c.op == "u" and c.table == "public.shift"]
    assert len(ups) == 20, "test_decoding must show one UPDATE per row and shift, got %d" % len(ups)
    cdc.run_to(stop, timeout=120)
    _no_dead_letters(cdc)
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("%s: %d rows equal" % (t, n))
