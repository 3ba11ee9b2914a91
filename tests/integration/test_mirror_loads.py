"""Runs of inserts into a replica mirror go in with COPY, as snapshot rows
do: straight into the mirror table while none of the rows' keys is there,
else through a staging table and one upsert (the mirror ends up as the
multi-row upserts would leave it), in the database transaction that stores
the checkpoint; runs of deletes by key go out as one statement per run.
Here a writer commits runs of inserts with awkward values (tabs, newlines,
backslashes, `\\N`, NULL next to '', bytea, arrays, jsonb, text keys with
control characters) between updates, single-row inserts and deletes of one
row or of runs of rows, the mirror already holds stale rows under keys the
source inserts later, and cdc is killed with SIGKILL again and again: the
mirror must equal the source at the end, with COPY seen for the inserts,
the staging table for the keys that were there, and deletes of several rows
in one statement.  A load large enough to stream its COPY while cdc still
gathers its rows, meeting a key the mirror holds deep into the rows, is
loaded again, whole, through the staging table."""

import random
import re
import time

import harness as h
from test_snapshot import start_writer
from test_snapshot_copy import ARRAY, BYTEA, JSON, KEY, TEXT

AWK = "CREATE TABLE public.awk (id int PRIMARY KEY, t text, b bytea, a text[], j jsonb, n int)"
AWK_KEYS = "CREATE TABLE public.awk_keys (k text PRIMARY KEY, t text, b bytea)"
STALE = 300  # keys the mirror holds before the source inserts them
KILLS = 6


def insert_ops(counter, inserted):
    """Transactions of the writer: runs of inserts of new ids (most of them
    long enough for a load of their own), single-row inserts, updates and
    deletes of ids inserted before."""

    def run(cur, lo, hi):
        cur.execute("INSERT INTO public.awk SELECT g, %s, %s, %s, %s, NULLIF(g %% 3, 0) "
                    "FROM generate_series(%d, %d) g" % (TEXT, BYTEA, ARRAY, JSON, lo, hi))
        cur.execute("INSERT INTO public.awk_keys SELECT %s, %s, %s FROM generate_series(%d, %d) g"
                    % (KEY, TEXT, BYTEA, lo, hi))

    def bulk(cur, rng):
        n = rng.randint(64, 1500)
        lo = counter[0] + 1
        counter[0] += n
        run(cur, lo, counter[0])
        inserted.append((lo, counter[0]))

    def one(cur, rng):
        counter[0] += 1
        run(cur, counter[0], counter[0])
        inserted.append((counter[0], counter[0]))

    def some_id(rng):
        lo, hi = rng.choice(inserted) if inserted else (1, 1)
        return rng.randint(lo, hi)

    def upd(cur, rng):
        cur.execute("UPDATE public.awk SET t = %s, a = %s WHERE id = %s",
                    (rng.choice(["", None, "x\ty\\z\n"]), rng.choice([[], None, ["a\tb", None]]),
                     some_id(rng)))

    def dele(cur, rng):
        cur.execute("DELETE FROM public.awk WHERE id = %s", (some_id(rng),))

    def bulk_dele(cur, rng):
        a = some_id(rng)
        b = a + rng.randint(2, 300)
        cur.execute("DELETE FROM public.awk WHERE id BETWEEN %s AND %s", (a, b))
        cur.execute("DELETE FROM public.awk_keys WHERE k IN (SELECT %s FROM generate_series(%d, %d) g)"
                    % (KEY, a, b))

    return run, [(4, bulk), (1, one), (2, upd), (1, dele), (1, bulk_dele)]


def test_insert_runs_copy_kill9(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    for ddl in (AWK, AWK_KEYS):
        cl.execute("src", ddl)
        cl.execute("mirror", ddl)
    cl.execute("mirror", "INSERT INTO public.awk SELECT g, 'stale', NULL, NULL, NULL, -1 "
                         "FROM generate_series(1, %d) g" % STALE)
    cl.execute("postgres", "ALTER DATABASE mirror SET log_statement = 'all'")
    tables = ["public.awk", "public.awk_keys"]
    slot = "loads_slot"
    cdc = ctx.cdc(h.pipeline_config(cl, tables, [h.pg_sink(cl, "replica")], pipeline_id="loads",
                                    slot=slot, publication="loads_pub", snapshot_mode="never"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    mark = len(cl.server_log())

    # the source inserts the keys the mirror holds stale rows under (in a
    # committed transaction, unlike some of the writer's)
    counter, inserted = [STALE], [(1, STALE)]
    run, ops = insert_ops(counter, inserted)
    src = cl.connect("src")
    with src.cursor() as cur:
        run(cur, 1, STALE)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ctx.log("writer seed %d" % seed)
    w = start_writer(ctx, cl, "src", ops, seed, pause=0.02)
    proc = cdc.start()
    for kill in range(KILLS):
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is not None:
            raise AssertionError("cdc exited on its own (kill %d); %s"
                                 % (kill, proc.result().describe()))
        proc.kill9()
        cl.wait_slot_inactive(slot)
        proc = cdc.start()
    time.sleep(1)
    w.stop()
    proc.kill9()
    cl.wait_slot_inactive(slot)
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=300)
    ctx.log("writer: %d commits, %d rolled back; final run to %s took %.1fs"
            % (w.commits, w.rollbacks, stop, res.duration))

    log = cl.server_log()[mark:]
    direct = len(re.findall(r'COPY "public"\."awk(?:_keys)?"', log))
    staged = len(re.findall(r"COPY pg_temp\.cdc_stage_\d+", log))
    ctx.log("mirror: %d COPY loads straight into the tables, %d through a staging table"
            % (direct, staged))
    deletes = len(re.findall(r'DELETE FROM "public"\."awk(?:_keys)?" WHERE \("(?:id|k)"\) IN \(VALUES',
                             log))
    ctx.log("mirror: %d statements deleting several rows" % deletes)
    # awk_keys' types all have a binary COPY format, awk's text[] has none
    binary = {t: len(re.findall(r'COPY "public"\."%s" \([^)]*\) FROM STDIN \(FORMAT binary\)' % t,
                                log)) for t in ("awk", "awk_keys")}
    ctx.log("mirror: binary COPY loads %s" % binary)
    assert binary["awk_keys"] > 0 and binary["awk"] == 0, binary
    assert direct > 0, "no run of inserts was loaded with COPY"
    assert deletes > 0, "no run of deletes went out as one statement"
    assert staged > 0, "the keys the mirror held did not go through a staging table"
    mirror = cl.connect("mirror")
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("mirror %s: %d rows equal after %d kills" % (t, n, KILLS + 1))


def test_streamed_load_meets_held_key(ctx):
    """A load large enough to stream (its COPY started straight into the
    mirror table while cdc still gathers its rows) meets, 40,000 rows in, a
    key the mirror holds: it is rolled back and loaded again, all of it,
    through the staging table; the mirror equals the source."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    ddl = "CREATE TABLE public.big (id int PRIMARY KEY, t text)"
    cl.execute("src", ddl)
    cl.execute("mirror", ddl)
    cl.execute("mirror", "INSERT INTO public.big SELECT g, 'stale' FROM generate_series(40000, 40004) g")
    cl.execute("postgres", "ALTER DATABASE mirror SET log_statement = 'all'")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.big"], [h.pg_sink(cl, "replica")],
                                    snapshot_mode="never"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    mark = len(cl.server_log())
    # one source transaction of about 12 MB of COPY text: one load
    cl.execute("src", "INSERT INTO public.big SELECT g, repeat(md5(g::text), 6) "
                      "FROM generate_series(1, 60000) g")
    res = cdc.run_to(cl.current_lsn("src"), timeout=300)
    log = cl.server_log()[mark:]
    direct = len(re.findall(r'statement: SAVEPOINT cdc_load; COPY "public"\."big"', log))
    staged = len(re.findall(r"statement: COPY pg_temp\.cdc_stage_\d+", log))
    ctx.log("mirror: %d COPY straight into the table, %d through a staging table; run took %.1fs"
            % (direct, staged, res.duration))
    assert (direct, staged) == (1, 1), (direct, staged)
    # both in the binary format: the staging load sends the header again
    binary = len(re.findall(r"statement: (?:SAVEPOINT cdc_load; )?COPY \S+ \([^)]*\) FROM STDIN "
                            r"\(FORMAT binary\)", log))
    assert binary == 2, binary
    src, mirror = cl.connect("src"), cl.connect("mirror")
    assert h.compare_tables(src, mirror, "public.big") == 60000
