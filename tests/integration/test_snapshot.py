"""Initial snapshots: the load of the rows tables already hold, under
concurrent writes, and its resumption after kill -9 (chunks recorded done are
not read again; a keyless table is rebuilt).

What the rows of an initial snapshot must be is taken from the database
itself: a reference copy of every table (`CREATE TABLE ref_x AS TABLE x`, not
captured) made before cdc creates its slot, while nothing writes, holds
exactly the rows as of the slot's consistent point, because every concurrent
writer starts only after the slot exists.  The changes after that point come
from an oracle slot (test_decoding) created right after cdc's.  Which chunks
a snapshot finished is read from cdc's state store, and the chunk
predicates stored there are evaluated by the database to tell which rows a
chunk holds.

The helpers of this module (the random writer, reference copies, checks of
snapshot rows) serve the other snapshot modules too: test_snapshot_modes,
test_snapshot_incremental and test_snapshot_status import them."""

import collections
import json
import random
import threading
import time

import psycopg2
import psycopg2.extras

import harness as h


# --------------------------------------------------------------------------
# a random writer over rows that already exist


class Writer(threading.Thread):
    """Random transactions on its own connection.  Each transaction runs 1 to
    max_ops operations drawn from ops, a list of (weight, fn) where
    fn(cur, rng) executes statements; about 5% of the transactions are
    rolled back.  The operations themselves note which keys they may change
    (in sets the test owns) before changing them, so a key counts as touched
    even if its transaction rolled back."""

    def __init__(self, cluster, dbname, ops, seed, pause=0.0, max_ops=4, rollback_ratio=0.05):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.dbname = dbname
        self.ops = ops
        self.total = float(sum(w for w, _ in ops))
        self.rng = random.Random(seed)
        self.pause = pause
        self.max_ops = max_ops
        self.rollback_ratio = rollback_ratio
        self.commits = 0
        self.rollbacks = 0
        self.error = None
        self._halt = threading.Event()

    def pick(self):
        x = self.rng.uniform(0, self.total)
        for w, fn in self.ops:
            x -= w
            if x <= 0:
                return fn
        return self.ops[-1][1]

    def run(self):
        conn = None
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=self.cluster.port, user=h.SUPERUSER,
                                    password=h.SUPERUSER_PASSWORD, dbname=self.dbname,
                                    connect_timeout=10, application_name="cdc-test-writer")
            while not self._halt.is_set():
                with conn.cursor() as cur:
                    for _ in range(self.rng.randint(1, self.max_ops)):
                        self.pick()(cur, self.rng)
                if self.rng.random() < self.rollback_ratio:
                    conn.rollback()
                    self.rollbacks += 1
                else:
                    conn.commit()
                    self.commits += 1
                if self.pause:
                    time.sleep(self.rng.uniform(0, self.pause))
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            if conn is not None:
                conn.close()

    def stop(self, timeout=60):
        self._halt.set()
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("writer thread did not stop")
        if self.error is not None:
            raise AssertionError("writer failed: %r" % (self.error,))
        return self


def start_writer(ctx, cluster, dbname, ops, seed, **kw):
    w = Writer(cluster, dbname, ops, seed, **kw)
    ctx.defer(lambda: w.is_alive() and (w._halt.set() or w.join(30)))
    w.start()
    return w


def int_table_ops(table, nrows, touched, counter, cols="k = k + 1, v = md5(v)"):
    """Operations on a table (id int PRIMARY KEY, k int, v text) whose rows
    had ids 1..nrows: updates, deletes, multi-row updates, key moves to new
    ids and inserts of new ids (from counter, a one-item list)."""
    q = h.qtable(table)

    def fresh():
        counter[0] += 1
        return counter[0]

    def upd(cur, rng):
        i = rng.randint(1, nrows)
        touched.add(i)
        cur.execute("UPDATE %s SET %s WHERE id = %%s" % (q, cols), (i,))

    def dele(cur, rng):
        i = rng.randint(1, nrows)
        touched.add(i)
        cur.execute("DELETE FROM %s WHERE id = %%s" % q, (i,))

    def ins(cur, rng):
        i = fresh()
        touched.add(i)
        cur.execute("INSERT INTO %s VALUES (%%s, %%s, md5(%%s::text))" % q, (i, rng.randrange(1000), i))

    def move(cur, rng):
        i, n = rng.randint(1, nrows), fresh()
        touched.update((i, n))
        cur.execute("UPDATE %s SET id = %%s WHERE id = %%s" % q, (n, i))

    def multi(cur, rng):
        i = rng.randint(1, nrows)
        touched.update(range(i, i + 21))
        cur.execute("UPDATE %s SET k = -k WHERE id BETWEEN %%s AND %%s" % q, (i, i + 20))

    return [(30, upd), (12, dele), (12, ins), (4, move), (3, multi)]



# --------------------------------------------------------------------------
# reference copies, and checks of snapshot rows against them


def fill_int_table(cur, table, nrows):
    cur.execute("CREATE TABLE %s (id int PRIMARY KEY, k int NOT NULL, v text NOT NULL)" % h.qtable(table))
    cur.execute("INSERT INTO " + h.qtable(table) +
                " SELECT g, g %% 977, md5(g::text) FROM generate_series(1, %s) g", (nrows,))


def ref_name(table):
    schema, _, name = table.partition(".")
    return "%s.ref_%s" % (schema, name)


def make_refs(conn, tables):
    """Reference copies ref_<table> (not captured) of the tables as they are
    now; ANALYZE so that planners and cdc's size estimates see them."""
    with conn.cursor() as cur:
        for t in tables:
            cur.execute("CREATE TABLE %s AS TABLE %s" % (h.qtable(ref_name(t)), h.qtable(t)))
        cur.execute("ANALYZE")


def log_lines(proc, event):
    return h.log_events(h.proc_stderr(proc), event)


def stop_and_finish(cl, cdc, proc, timeout=240):
    """SIGTERM a running cdc (it must exit 0), then finish with `cdc run
    --stop-at-lsn` at the WAL position of now.  Returns (that LSN, the
    final run's Result)."""
    stop = cl.current_lsn("src")
    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    if res.error_lines:
        raise AssertionError("cdc exited 0 after SIGTERM but printed an error line; " + res.describe())
    return stop, cdc.run_to(stop, timeout)


def chunk_of_rows(conn, table, preds, key="id"):
    """{key value: chunk number} for every row of table (evaluated by the
    database); every row must satisfy exactly one predicate."""
    case = " ".join("WHEN %s THEN %d" % (p, i) for i, p in enumerate(preds))
    hits = " + ".join("(%s)::int" % p for p in preds)
    with conn.cursor() as cur:
        cur.execute("SELECT %s, CASE %s END, %s FROM %s" % (h.qident(key), case, hits, h.qtable(table)))
        out = {}
        bad = []
        for k, c, n in cur:
            if n != 1:
                bad.append((k, n))
            out[k] = c
    if bad:
        raise AssertionError("the snapshot plan's chunks do not partition %s: %d rows are in "
                             "0 or several chunks, e.g. %s" % (table, len(bad), bad[:5]))
    return out


def check_r_lines(records, pipeline_id, markers=h.SNAPSHOT_MARKERS, db="src"):
    for i, rec in records:
        p = h.snapshot_row_problems(rec, pipeline_id, db, markers)
        if p:
            raise AssertionError("JSONL line %d is not a valid snapshot row: %s\n  %s"
                                 % (i, "; ".join(p), h.short(json.dumps(rec), 400)))


def counter_diff(want, got, what, show=5):
    """Raises unless two Counters are equal, naming what differs."""
    if want == got:
        return
    missing = list((want - got).items())
    extra = list((got - want).items())
    raise AssertionError(
        "%s: %d expected items missing or short, %d unexpected or repeated; "
        "missing e.g. %s; unexpected e.g. %s" % (
            what, len(missing), len(extra),
            [(h.short(k, 150), n) for k, n in missing[:show]],
            [(h.short(k, 150), n) for k, n in extra[:show]]))


def rows_counter(conn, table, meta):
    """Counter of canonical rows (the contract's value mapping) of table,
    read with meta's columns."""
    return collections.Counter(h.text_row_canon(meta, r) for r in h.iter_rows_text(conn, meta, table))


# --------------------------------------------------------------------------
# kill -9 during the initial snapshot


def nokey_ops(table, ngroups):
    """Operations on a table (grp int, label text, amount numeric) with no
    key and duplicate rows: duplicate a row, change or delete one row of a
    group, insert a new row."""
    q = h.qtable(table)

    def dup(cur, rng):
        cur.execute("INSERT INTO %s SELECT * FROM %s WHERE grp = %%s LIMIT 1" % (q, q), (rng.randrange(ngroups),))

    def upd(cur, rng):
        cur.execute("UPDATE %s SET amount = amount + 1 WHERE ctid = (SELECT ctid FROM %s WHERE grp = %%s "
                    "LIMIT 1)" % (q, q), (rng.randrange(ngroups),))

    def dele(cur, rng):
        cur.execute("DELETE FROM %s WHERE ctid = (SELECT ctid FROM %s WHERE grp = %%s LIMIT 1)" % (q, q),
                    (rng.randrange(ngroups),))

    def ins(cur, rng):
        cur.execute("INSERT INTO %s VALUES (%%s, 'new', 1.5)" % q, (rng.randrange(ngroups),))

    return [(10, dup), (10, upd), (8, dele), (6, ins)]


def fill_nokey_table(cur, table, nrows, ngroups):
    q = h.qtable(table)
    cur.execute("CREATE TABLE %s (grp int, label text, amount numeric)" % q)
    cur.execute("ALTER TABLE %s REPLICA IDENTITY FULL" % q)
    cur.execute("INSERT INTO " + q + " SELECT g %% %s, 'L' || (g %% %s), (g %% %s) * 0.25 "
                "FROM generate_series(1, %s) g", (ngroups, ngroups, ngroups, nrows))


def kill_mid_snapshot(proc, state, pipeline_id, snap_id, table, nchunks, min_done):
    """Waits until at least min_done chunks of table are recorded as done,
    then kill -9; returns the set of chunk numbers recorded done (read after
    the process is dead)."""
    def ready():
        if log_lines(proc, "snapshot.done"):
            raise AssertionError("the snapshot finished before it could be killed (%d chunks): make "
                                 "the table bigger" % nchunks)
        if proc.poll() is not None:
            raise AssertionError("cdc exited during the snapshot; " + proc.result().describe())
        return len(h.snapshot_done_chunks(state, pipeline_id, snap_id, table)) >= min_done

    h.wait_for(ready, 180, "%d chunks of %s recorded as done" % (min_done, table), interval=0.02)
    proc.kill9()
    done = set(h.snapshot_done_chunks(state, pipeline_id, snap_id, table))
    assert not log_lines(proc, "snapshot.done"), "the snapshot finished just before the kill: make the table bigger"
    assert 0 < len(done) < nchunks, "%d of %d chunks done at the kill" % (len(done), nchunks)
    return done


def test_initial_snapshot_resumes_after_kill9(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    T, nrows = "public.big2", 300000
    with src.cursor() as cur:
        fill_int_table(cur, T, nrows)
    make_refs(src, [T])
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    state = ctx.tmpdir("state")
    pid, slot = "resume", "resume_slot"
    cdc = ctx.cdc(h.pipeline_config(cl, [T], [h.file_sink(jsonl), h.pg_sink(cl, "replica"),
                                              h.pg_sink(cl, "events")],
                                    pipeline_id=pid, slot=slot, publication="resume_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=4000),
                  h.platform_config(state), cluster=cl)
    proc = cdc.start()
    started = h.wait_log_event(proc, "snapshot.started", 120)
    snap_id = started["id"]
    base, preds = h.snapshot_plan(state, pid, snap_id, T)
    M = len(preds)
    assert M >= 10, "plan of %s has only %d chunks" % (T, M)
    touched, counter = set(), [10 * nrows]
    seed = random.randrange(1 << 30)
    ctx.log("snapshot %s: %d chunks; writer seed %d" % (snap_id, M, seed))
    w = start_writer(ctx, cl, "src", int_table_ops(T, nrows, touched, counter), seed, pause=0.01)

    done_before = kill_mid_snapshot(proc, state, pid, snap_id, T, M, 6)
    cl.wait_slot_inactive(slot)
    lines_before = h.count_lines(jsonl)
    ctx.log("killed with %d of %d chunks recorded done; the file had %d whole lines"
            % (len(done_before), M, lines_before))

    # while cdc is down: changes at the start of the first unfinished chunks
    chunk_of = chunk_of_rows(src, ref_name(T), preds)
    members = collections.defaultdict(list)
    for k, c in chunk_of.items():
        members[c].append(k)
    not_done = [c for c in range(M) if c not in done_before]
    with src.cursor() as cur:
        for c in not_done[:4]:
            ids = sorted(members[c])[:4]
            touched.update(ids)
            cur.execute("DELETE FROM %s WHERE id = ANY(%%s)" % h.qtable(T), (ids[0::2],))
            cur.execute("UPDATE %s SET v = 'while down' WHERE id = ANY(%%s)" % h.qtable(T), (ids[1::2],))

    proc2 = cdc.start()
    st2 = h.wait_log_event(proc2, "snapshot.started", 120)
    resumed = [d for d in log_lines(proc2, "snapshot.resume") if d.get("table") == T]
    assert resumed, "no event=snapshot.resume table=%s after the restart:\n%s" % (T, h.tail(h.proc_stderr(proc2)))
    assert (int(resumed[0]["chunks_done"]), int(resumed[0]["of"])) == (len(done_before), M), \
        "restart logged chunks_done=%s of=%s; the state store had %d of %d done at the kill" % (
            resumed[0]["chunks_done"], resumed[0]["of"], len(done_before), M)
    assert st2.get("id") == snap_id, "the restart started snapshot %s, not %s" % (st2.get("id"), snap_id)
    assert int(st2["remaining"]) == M - len(done_before), \
        "restart logged remaining=%s; %d of %d chunks were done" % (st2["remaining"], len(done_before), M)
    h.wait_log_event(proc2, "snapshot.done", 240)
    w.stop()
    stop_and_finish(cl, cdc, proc2, 240)
    ctx.log("restart resumed %d remaining chunks; writer: %d commits" % (M - len(done_before), w.commits))

    mirror = cl.connect("mirror")
    n = h.compare_tables(src, mirror, T)
    ctx.log("mirror %s: %d rows equal" % (T, n))

    # snapshot rows before and after the kill, per key
    run1, run2 = collections.Counter(), collections.Counter()
    for i, rec in h.iter_jsonl(jsonl):
        if rec["op"] == "r":
            check_r_lines([(i, rec)], pid)
            (run1 if i <= lines_before else run2)[rec["after"]["id"]] += 1
    # no row read after the restart belongs to a chunk that was done before the kill
    with src.cursor() as cur:
        cur.execute("CREATE TEMP TABLE reread (id int)")
        psycopg2.extras.execute_values(cur, "INSERT INTO reread VALUES %s", [(k,) for k in run2], page_size=5000)
        case = " ".join("WHEN %s THEN %d" % (p, i) for i, p in enumerate(preds))
        cur.execute("SELECT id, CASE %s END FROM reread" % case)
        again = sorted((c, k) for k, c in cur.fetchall() if c in done_before)
    assert not again, ("%d rows of chunks recorded done before the kill were read again after it, "
                       "e.g. (chunk, id) %s" % (len(again), again[:10]))
    problems = []
    for k, c in chunk_of.items():
        if c in done_before:
            if run1[k] != 1 or run2[k] != 0:
                problems.append("id %d (done chunk %d): %d snapshot rows before the kill, %d after"
                                % (k, c, run1[k], run2[k]))
        elif k not in touched and run2[k] != 1:
            problems.append("id %d (unfinished chunk %d, never written): %d snapshot rows after the "
                            "restart, want 1" % (k, c, run2[k]))
        if len(problems) >= 10:
            break
    assert not problems, "snapshot rows per chunk are wrong:\n  " + "\n  ".join(problems)
    ctx.log("file: rows of the %d done chunks once, before the kill only; rows of the %d others "
            "read again after it (%d snapshot rows before, %d after)"
            % (len(done_before), M - len(done_before), sum(run1.values()), sum(run2.values())))

    # the event log: snapshot rows at (-1, chunk sequence << 32 | row number)
    rows = h.read_events(mirror)
    snap = [(off, val) for topic, part, off, key, val in rows if part == -1]
    assert all(val["op"] == "r" for _, val in snap), "event log rows at partition -1 that are not snapshot rows"
    nonsnap = [(part, val["op"]) for topic, part, off, key, val in rows if part != -1 and val["op"] == "r"]
    assert not nonsnap, "snapshot rows at a partition other than -1: %s" % nonsnap[:5]
    # every read of a chunk has its own sequence number (so a re-read after the
    # restart never collides with a partial read before the kill): group the
    # rows by read, and each read must be one chunk's rows numbered 0..n-1
    by_read = collections.defaultdict(list)
    for off, val in snap:
        by_read[off >> 32].append((off & 0xFFFFFFFF, int(val["after"]["id"])))
    reads_of = collections.defaultdict(list)
    for seq, got in by_read.items():
        # (a read after the restart also sees rows the writer inserted since)
        chunks = {chunk_of[k] for _, k in got if k in chunk_of}
        assert len(chunks) <= 1, "event log: read %d holds rows of chunks %s" % (seq, sorted(chunks)[:5])
        if chunks:
            reads_of[chunks.pop()].append(sorted(got))
    for c in sorted(done_before):
        reads = reads_of.get(c, [])
        want = sorted(members[c])
        assert len(reads) == 1, "event log, done chunk %d: %d reads of it, want 1" % (c, len(reads))
        got = reads[0]
        assert [r for r, _ in got] == list(range(len(want))), \
            "event log, done chunk %d: row numbers %s..., want 0..%d" % (c, [r for r, _ in got][:8], len(want) - 1)
        assert sorted(k for _, k in got) == want, \
            "event log, done chunk %d: its snapshot rows are not exactly the chunk's %d rows" % (c, len(want))
    present = collections.Counter(int(val["after"]["id"]) for _, val in snap)
    lost = [k for k, c in chunk_of.items() if c not in done_before and k not in touched and not present[k]]
    assert not lost, ("event log: %d rows of the unfinished chunks, never written by anyone, have no "
                      "snapshot row (positions taken by rows of the partial read before the kill?), "
                      "e.g. ids %s" % (len(lost), sorted(lost)[:10]))
    ctx.log("event log: %d snapshot rows at partition -1 in %d reads; each done chunk read once, "
            "numbered 0..n-1; every untouched row present" % (len(snap), len(by_read)))


def test_initial_snapshot_resume_keyless_table(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    T, nrows, ngroups = "public.loose", 150000, 60000
    with src.cursor() as cur:
        fill_nokey_table(cur, T, nrows, ngroups)
    make_refs(src, [T])
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    state = ctx.tmpdir("state")
    pid, slot = "loose", "loose_slot"
    cdc = ctx.cdc(h.pipeline_config(cl, [T], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id=pid, slot=slot, publication="loose_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=3000),
                  h.platform_config(state), cluster=cl)
    proc = cdc.start()
    snap_id = h.wait_log_event(proc, "snapshot.started", 120)["id"]
    _, preds = h.snapshot_plan(state, pid, snap_id, T)
    M = len(preds)
    assert M >= 10 and all("ctid" in p for p in preds), "plan of the keyless %s: %s" % (T, preds[:3])
    seed = random.randrange(1 << 30)
    w = start_writer(ctx, cl, "src", nokey_ops(T, ngroups), seed, pause=0.01)
    done_before = kill_mid_snapshot(proc, state, pid, snap_id, T, M, 3)
    cl.wait_slot_inactive(slot)
    ctx.log("killed with %d of %d page-range chunks done; writer seed %d" % (len(done_before), M, seed))
    proc2 = cdc.start()
    # without a unique key a resumed table cannot be patched chunk by chunk:
    # it is rebuilt (a truncate event, then every chunk read again)
    h.wait_log_event(proc2, "snapshot.rebuild", 120)
    st2 = h.wait_log_event(proc2, "snapshot.started", 120)
    assert int(st2["remaining"]) == M, "restart logged remaining=%s, want all %d chunks" % (
        st2["remaining"], M)
    h.wait_log_event(proc2, "snapshot.done", 240)
    w.stop()
    stop_and_finish(cl, cdc, proc2, 240)
    mirror = cl.connect("mirror")
    n = h.compare_tables(src, mirror, T)
    ctx.log("mirror %s: %d rows equal (writer: %d commits)" % (T, n, w.commits))


# --------------------------------------------------------------------------
# initial snapshot of 2,000,000 rows under concurrent writes

BIG_ROWS = 2_000_000


def combo_ops(table, nrows, counter):
    q = h.qtable(table)

    def key(rng):
        g = rng.randint(1, nrows)
        return ("region-%03d" % (g % 37), g)

    def upd(cur, rng):
        cur.execute("UPDATE %s SET qty = qty + 1, note = 'u' WHERE region = %%s AND seq = %%s" % q, key(rng))

    def dele(cur, rng):
        cur.execute("DELETE FROM %s WHERE region = %%s AND seq = %%s" % q, key(rng))

    def ins(cur, rng):
        counter[0] += 1
        cur.execute("INSERT INTO %s VALUES ('region-new', %%s, 1, 'i')" % q, (counter[0],))

    def move(cur, rng):
        counter[0] += 1
        cur.execute("UPDATE %s SET seq = %%s WHERE region = %%s AND seq = %%s" % q, (counter[0],) + key(rng))

    return [(6, upd), (3, dele), (3, ins), (1, move)]


def test_initial_snapshot_under_concurrent_writes(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    BIG, COMBO, NOKEY, QUIET = "public.big", "public.combo", "public.nokey", "public.quiet"
    tables = [BIG, COMBO, NOKEY, QUIET]
    t0 = time.monotonic()
    with src.cursor() as cur:
        fill_int_table(cur, BIG, BIG_ROWS)
        cur.execute("CREATE TABLE public.combo (region text, seq int, qty int NOT NULL, note text, "
                    "PRIMARY KEY (region, seq))")
        cur.execute("INSERT INTO public.combo SELECT 'region-' || lpad((g % 37)::text, 3, '0'), g, g % 11, "
                    "md5(g::text) FROM generate_series(1, 50000) g")
        fill_nokey_table(cur, NOKEY, 50000, 20000)
        cur.execute("CREATE TABLE public.quiet (id int PRIMARY KEY, payload text NOT NULL)")
        cur.execute("INSERT INTO public.quiet SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 30000) g")
    make_refs(src, tables)
    ctx.log("loaded %d + 50000 + 50000 + 30000 rows and their reference copies in %.1fs"
            % (BIG_ROWS, time.monotonic() - t0))
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    state = ctx.tmpdir("state")
    pid = "initial"
    cdc = ctx.cdc(h.pipeline_config(cl, tables, [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id=pid, snapshot_mode="initial", snapshot_chunk_rows=20000),
                  h.platform_config(state), cluster=cl)
    t0 = time.monotonic()
    proc = cdc.start()
    started = h.wait_log_event(proc, "snapshot.started", 120)
    created = log_lines(proc, "source.slot_created")
    assert created, "no event=source.slot_created before the snapshot"
    consistent = h.lsn_to_int(created[0]["lsn"])
    oracle = h.Oracle(cl, "src").create()
    snap_id = started["id"]
    nchunks = {t: len(h.snapshot_plan(state, pid, snap_id, t)[1]) for t in tables}
    assert nchunks[COMBO] > 1 and nchunks[NOKEY] > 1 and nchunks[BIG] > 1, \
        "the test needs several chunks per table (boundaries, page ranges): %s" % nchunks
    assert int(started["chunks"]) == sum(nchunks.values()), \
        "snapshot.started chunks=%s, the stored plans have %s" % (started["chunks"], nchunks)

    touched, counter = set(), [10 * BIG_ROWS]
    ops = int_table_ops(BIG, BIG_ROWS, touched, counter) + combo_ops(COMBO, 50000, [10 ** 6]) \
        + nokey_ops(NOKEY, 20000)
    seed = random.randrange(1 << 30)
    ctx.log("snapshot %s, chunks %s; writer seed %d" % (snap_id, nchunks, seed))
    w = start_writer(ctx, cl, "src", ops, seed, pause=0.005)
    done = h.wait_log_event(proc, "snapshot.done", 300)
    during = w.commits
    ctx.log("snapshot done in %.1fs (cdc: rows=%s seconds=%s rows_per_second=%s); %d writer "
            "transactions committed meanwhile" % (time.monotonic() - t0, done.get("rows"), done.get("seconds"),
                                                   done.get("rows_per_second"), during))
    assert during > 0, "nothing was written during the snapshot: the test proves nothing"
    time.sleep(2.0)   # changes while streaming
    w.stop()
    stop, res = stop_and_finish(cl, cdc, proc, 240)
    assert not h.log_events(res.stderr, "snapshot.started"), "the snapshot ran again after a restart; " + res.describe()

    mirror = cl.connect("mirror")
    for t in tables:
        n = h.compare_tables(src, mirror, t)
        ctx.log("mirror %s: %d rows equal" % (t, n))

    # the file: every row of the consistent point exactly once as op r, then the changes
    metas = {t: h.TableMeta(src, t) for t in tables}
    names = metas[BIG].names
    cnt = bytearray(BIG_ROWS + 1)
    digest = [0] * (BIG_ROWS + 1)
    stray, changes, others = [], [], {t: collections.Counter() for t in tables if t != BIG}
    first_change = None
    late = []
    for i, rec in h.iter_jsonl(jsonl):
        if rec["op"] != "r":
            if first_change is None:
                first_change = i
            changes.append(rec)
            continue
        if first_change is not None and len(late) < 5:
            late.append(i)
        p = h.snapshot_row_problems(rec, pid, "src")
        if p:
            raise AssertionError("JSONL line %d is not a valid snapshot row: %s\n  %s"
                                 % (i, "; ".join(p), h.short(json.dumps(rec), 400)))
        t, after = h.rec_table(rec), rec["after"]
        if t == BIG:
            k = after.get("id")
            if isinstance(k, int) and 1 <= k <= BIG_ROWS:
                cnt[k] = min(cnt[k] + 1, 255)
                digest[k] = hash(tuple(after.get(c) for c in names))
            elif len(stray) < 10:
                stray.append((i, k))
        elif t in others:
            others[t][h.json_row_canon(metas[t], after)] += 1
        else:
            raise AssertionError("line %d: snapshot row of table %s" % (i, t))
    assert not late, "snapshot rows after the first streamed change (line %d): lines %s" % (first_change, late)
    assert not stray, "snapshot rows of %s for ids that did not exist at the slot's point: %s" % (BIG, stray)
    meta = metas[BIG]
    bad, seen = [], bytearray(BIG_ROWS + 1)
    nref = 0
    for r in h.iter_rows_text(src, meta, ref_name(BIG)):
        k = int(r["id"])
        nref += 1
        seen[k] = 1
        want = hash(tuple(h.expected_json(meta.types[c], r[c]) for c in names))
        if (cnt[k] != 1 or digest[k] != want) and len(bad) < 10:
            bad.append("id %d: %d snapshot rows%s; at the slot's point %s" % (
                k, cnt[k], ", different values" if cnt[k] and digest[k] != want else "", r))
    extra = [k for k in range(1, BIG_ROWS + 1) if cnt[k] and not seen[k]]
    assert not bad and not extra, "%s: snapshot rows differ from the table at the slot's point:\n  %s%s" % (
        BIG, "\n  ".join(bad), "\n  rows that did not exist then: %s" % extra[:10] if extra else "")
    for t, got in others.items():
        counter_diff(rows_counter(src, ref_name(t), metas[t]), got,
                     "%s: snapshot rows vs the table at the slot's point" % t)
    ctx.log("file: %d snapshot rows, each row of the slot's point exactly once (%s: %d)"
            % (nref + sum(sum(c.values()) for c in others.values()), QUIET, sum(others[QUIET].values())))

    txns = oracle.read(tables, stop)
    assert txns, "the oracle saw no change after the snapshot's point"
    assert min(t.begin_lsn for t in txns) >= consistent, "the oracle holds changes from before the slot's point"
    n = h.check_jsonl_against_oracle(changes, txns, pipeline_id=pid)
    on_big = sum(1 for t in txns for c in t.changes if c.table == BIG)
    ctx.log("file: the %d changes after the slot's point (%d to %s) exactly once, in commit order"
            % (n, on_big, BIG))
