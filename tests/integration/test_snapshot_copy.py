"""Initial snapshots into a replica mirror load runs of rows with COPY, in
the transaction that stores the checkpoint: straight into the mirror table
while none of the rows' keys is there, else into a staging table and then
one upsert from it.  Here such a load is killed with SIGKILL several times while
rows with awkward values arrive (tabs, newlines, carriage returns,
backslashes, the texts `\\N` and `\\.`, NULL next to the empty string, bytea,
arrays with quotes and NULLs, jsonb, unicode, awkward text keys) and a
writer changes the table (its changes bring rows into the mirror before
their chunks are read, so some direct loads meet keys already there and go
through the staging table): the mirror must equal the source at the end."""

import random
import re
import threading

import harness as h
from test_snapshot import kill_mid_snapshot, log_lines, start_writer, stop_and_finish

NROWS = 300000

# value expressions of row g, cycling through the awkward cases
TEXT = ("CASE g % 9 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'tab\\there\\t' "
        "WHEN 3 THEN E'line\\nbreak\\r\\n' WHEN 4 THEN E'back\\\\slash \\\\N \\\\. \\\\\\\\' "
        "WHEN 5 THEN 'ünïcødé ✓ 🐘 ' || g WHEN 6 THEN E'\\\\N' WHEN 7 THEN E'\\\\.' "
        "ELSE 'plain ' || g END")
BYTEA = ("CASE g % 5 WHEN 0 THEN NULL WHEN 1 THEN ''::bytea "
         "WHEN 2 THEN '\\x00ff5c090a0d5c4e'::bytea ELSE int4send(g) END")
ARRAY = ("CASE g % 6 WHEN 0 THEN NULL WHEN 1 THEN '{}'::text[] "
         "WHEN 2 THEN ARRAY[E'a\\tb', NULL, '', E'c\\\\d', 'e\"f', E'g\\nh', 'NULL'] "
         "ELSE ARRAY['x' || g, 'ü'] END")
JSON = ("CASE g % 4 WHEN 0 THEN NULL "
        "ELSE jsonb_build_object('k', E'v\\t\\n\\\\', 'g', g, 'u', 'ü🐘') END")
# text keys: every awkward character, each key distinct (key_upd builds the same)
KEY = ("CASE g % 5 WHEN 0 THEN E'k\\t' WHEN 1 THEN E'k\\n' WHEN 2 THEN E'k\\\\' "
       "WHEN 3 THEN 'kü ' ELSE 'k' END || g")


def fill(cur):
    cur.execute("CREATE TABLE public.awk (id int PRIMARY KEY, t text, b bytea, a text[], "
                "j jsonb, n int)")
    cur.execute("INSERT INTO public.awk SELECT g, %s, %s, %s, %s, NULLIF(g %% 3, 0) "
                "FROM generate_series(1, %d) g" % (TEXT, BYTEA, ARRAY, JSON, NROWS))
    cur.execute("CREATE TABLE public.awk_keys (k text PRIMARY KEY, t text, b bytea)")
    cur.execute("INSERT INTO public.awk_keys SELECT %s, %s, %s FROM generate_series(1, %d) g"
                % (KEY, TEXT, BYTEA, NROWS // 3))


def awk_ops(nrows, counter):
    def upd(cur, rng):
        g = rng.randint(1, nrows)
        cur.execute("UPDATE public.awk SET t = %s, b = %s, a = %s WHERE id = %s",
                    (rng.choice(["", None, "x\ty\\z\n", "ü"]), rng.choice([b"", None, b"\\\t\x00"]),
                     rng.choice([[], None, ["a\tb", None, "\\"]]), g))

    def dele(cur, rng):
        cur.execute("DELETE FROM public.awk WHERE id = %s", (rng.randint(1, nrows),))

    def ins(cur, rng):
        counter[0] += 1
        cur.execute("INSERT INTO public.awk VALUES (%s, %s, NULL, %s, NULL, NULL)",
                    (counter[0], "new\t\\N\n", ["", None]))

    def key_upd(cur, rng):
        g = rng.randint(1, nrows // 3)
        key = ["k\t", "k\n", "k\\", "kü ", "k"][g % 5] + str(g)
        cur.execute("UPDATE public.awk_keys SET t = %s WHERE k = %s",
                    ("w\r\n\\." if rng.random() < 0.5 else None, key))

    return [(5, upd), (2, dele), (2, ins), (2, key_upd)]


class Watcher(threading.Thread):
    """Notes what the mirror's sessions are seen doing: a COPY running, a
    staging table (created at the first load that met a key)."""

    def __init__(self, cl):
        super().__init__(daemon=True)
        self.cl = cl
        self.copies = self.staging = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(0.01):
            self.copies += copying(self.cl)
            self.staging = max(self.staging, staging_tables(self.cl))

    def stop(self):
        self.halt.set()
        self.join(30)


def copying(cl):
    return cl.execute("mirror", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'mirror' "
                                "AND query LIKE 'COPY %' AND state = 'active'")[0][0]


def staging_tables(cl):
    return cl.execute("mirror", "SELECT count(*) FROM pg_class WHERE relname LIKE 'cdc_stage_%' "
                                "AND relpersistence = 't'")[0][0]


def test_snapshot_copy_kill9_loop(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        fill(cur)
    tables = ["public.awk", "public.awk_keys"]
    state = ctx.tmpdir("state")
    pid, slot = "copyload", "copyload_slot"
    cdc = ctx.cdc(h.pipeline_config(cl, tables, [h.pg_sink(cl, "replica")], pipeline_id=pid,
                                    slot=slot, publication="copyload_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=5000),
                  h.platform_config(state), cluster=cl)
    proc = cdc.start()
    snap_id = h.wait_log_event(proc, "snapshot.started", 120)["id"]
    _, preds = h.snapshot_plan(state, pid, snap_id, "public.awk")
    M = len(preds)
    assert M >= 20, "plan of public.awk has only %d chunks" % M
    watch = Watcher(cl)
    ctx.defer(watch.stop)
    watch.start()
    seed = random.randrange(1 << 30)
    ctx.log("snapshot %s: %d chunks of public.awk; writer seed %d" % (snap_id, M, seed))
    w = start_writer(ctx, cl, "src", awk_ops(NROWS, [10 * NROWS]), seed, pause=0.01)

    done, kills = set(), 0
    for target in (2, 5, 9, 14):
        if target >= M:
            break
        if kills:
            proc = cdc.start()
            h.wait_log_event(proc, "snapshot.started", 120)
        done = kill_mid_snapshot(proc, state, pid, snap_id, "public.awk", M,
                                 max(target, len(done) + 1))
        kills += 1
        cl.wait_slot_inactive(slot)
        ctx.log("kill %d: %d of %d chunks of public.awk recorded done" % (kills, len(done), M))
    assert kills >= 3, "only %d kills" % kills

    proc = cdc.start()
    h.wait_log_event(proc, "snapshot.done", 300)
    w.stop()
    watch.stop()
    # the rows went in with COPY, and some loads met keys the writer's
    # changes had brought in (upserted from a staging table)
    assert watch.copies > 0, "no COPY was seen in the mirror's sessions"
    assert watch.staging > 0, "no load went through a staging table"
    stop_and_finish(cl, cdc, proc, 300)
    assert not log_lines(proc, "snapshot.rebuild"), "a keyed table was rebuilt"
    mirror = cl.connect("mirror")
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("mirror %s: %d rows equal after %d kills (writer: %d commits; COPY seen %d "
                "times, staging tables seen)" % (t, n, kills, w.commits, watch.copies))


def test_mirror_session_ended_mid_load(ctx):
    """The mirror's session is ended in the middle of a load (an
    administrator's pg_terminate_backend while the load waits for a lock):
    cdc reconnects and loads the rest with COPY again.  The failure was the
    connection's, not a row's, so it must not fall back to one statement per
    row, which would last until the snapshot ends.  The mirror equals the
    source."""
    rows = 40000
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    ddl = "CREATE TABLE public.big (id int PRIMARY KEY, v text)"
    cl.execute("src", ddl)
    cl.execute("src", "INSERT INTO public.big SELECT g, 'row ' || g FROM generate_series(1, %d) g"
               % rows)
    cl.execute("mirror", ddl)
    cl.execute("postgres", "ALTER DATABASE mirror SET log_statement = 'all'")
    # the mirror table is locked before cdc starts: its first load waits
    # (SHARE: a lock that takes no transaction id, which the source's slot
    # creation on the same server would wait for)
    locker = cl.connect("mirror", autocommit=False)
    with locker.cursor() as cur:
        cur.execute("LOCK TABLE public.big IN SHARE MODE")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.big"], [h.pg_sink(cl, "replica")],
                                    pipeline_id="ended", slot="ended_slot",
                                    publication="ended_pub", snapshot_mode="initial_only",
                                    snapshot_chunk_rows=5000),
                  h.platform_config(ctx.tmpdir("state"),
                                    retry={"initial_wait_seconds": 0.1, "max_wait_seconds": 0.5,
                                           "jitter": False}),
                  cluster=cl)
    proc = cdc.start()
    waiting = "SELECT pid FROM pg_stat_activity WHERE datname = 'mirror' AND wait_event_type = " \
              "'Lock' AND pid <> %d" % locker.info.backend_pid
    h.wait_for(lambda: cl.execute("mirror", waiting), 120, "cdc's load to wait for the lock")
    mark = len(cl.server_log())
    pid = cl.execute("mirror", waiting)[0][0]
    assert cl.execute("postgres", "SELECT pg_terminate_backend(%d)" % pid)[0][0]
    locker.commit()
    proc.wait(300).expect_rc(0)
    after = cl.server_log()[mark:]
    one_by_one = len(re.findall(r'execute cdc_\d+: INSERT INTO "public"\."big"', after))
    loads = len(re.findall(r'COPY "public"\."big"', after))
    ctx.log("after the session ended: %d COPY loads, %d single-row statements" % (loads,
                                                                                 one_by_one))
    assert loads >= 1, "no COPY into the mirror after the session ended"
    assert one_by_one == 0, "%d rows went one statement each after the session ended" % one_by_one
    n = h.compare_tables(cl.connect("src"), cl.connect("mirror"), "public.big")
    assert n == rows, "mirror: %d rows, want %d" % (n, rows)
