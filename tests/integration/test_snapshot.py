"""Snapshots: the initial load of the rows tables already hold, its resumption
after kill -9, incremental snapshots while streaming, the snapshot modes,
tables added to the configuration later, and `cdc snapshot` errors.

What the rows of an initial snapshot must be is taken from the database
itself: a reference copy of every table (`CREATE TABLE ref_x AS TABLE x`, not
captured) made before cdc creates its slot, while nothing writes, holds
exactly the rows as of the slot's consistent point, because every concurrent
writer starts only after the slot exists.  The changes after that point come
from an oracle slot (test_decoding) created right after cdc's.  Which chunks
a snapshot finished is read from cdc's state store, and the chunk
predicates stored there are evaluated by the database to tell which rows a
chunk holds."""

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


def stale_reads(records, table, key="id", show=5):
    """An incremental snapshot row must not be older than the changes to its
    row that the file holds before it: it must equal the last image a change
    line gave that key, and must not follow a delete of it.  Returns a
    description of the violations ("" if none)."""
    last = {}
    bad = []
    for i, rec in records:
        if h.rec_table(rec) != table:
            continue
        op = rec["op"]
        if op == "r":
            k = rec["after"][key]
            if k in last:
                j, img, change = last[k]
                if img is None or img != rec["after"]:
                    bad.append("id %s: snapshot row at line %d (emitted at commit %s) holds %s, but line %d "
                               "(%s, commit %s) already %s" % (
                                   k, i, _commit_of(rec), h.short(json.dumps(rec["after"]), 100), j,
                                   change["op"], _commit_of(change),
                                   "deleted the row" if img is None else "made it %s" % h.short(json.dumps(img), 100)))
            continue
        if op in ("u", "d") and rec["before"] and rec["before"].get(key) is not None:
            last[rec["before"][key]] = (i, None, rec)
        if op in ("c", "u"):
            last[rec["after"][key]] = (i, rec["after"], rec)
    if not bad:
        return ""
    return "%d snapshot rows older than changes delivered before them (a change that committed before " \
        "the chunk's low watermark but was not visible to the chunk's read?):\n  %s" % (
            len(bad), "\n  ".join(bad[:show]))


def _commit_of(rec):
    try:
        return h.int_to_lsn(int(json.loads(rec["source"]["sequence"])[0]))
    except (KeyError, TypeError, ValueError, IndexError):
        return "?"


def next_chunk_start(conn, table, chunk_rows, signal="public.cdc_signal"):
    """Where an incremental snapshot reads next, estimated from the database:
    every chunk writes two watermark rows into the signal table, so after c
    chunks started the next one begins at about the (c * chunk_rows)-th
    smallest id.  0 before the first chunk."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM %s WHERE type <> 'execute-snapshot'" % h.qtable(signal))
        started = (cur.fetchone()[0] + 1) // 2
        if not started:
            return 0
        cur.execute("SELECT id FROM %s ORDER BY id OFFSET %%s LIMIT 1" % h.qtable(table),
                    (started * chunk_rows,))
        row = cur.fetchone()
        return row[0] if row else 0


def front_ops(table, nrows, touched, front, width):
    """Updates and deletes of rows with ids just above front[0] (random ids
    while it is 0)."""
    q = h.qtable(table)

    def pick(rng):
        i = front[0] + rng.randint(1, width) if front[0] else rng.randint(1, nrows)
        touched.add(i)
        return i

    def front_upd(cur, rng):
        cur.execute("UPDATE %s SET k = k + 1, v = md5(v || 'f') WHERE id = %%s" % q, (pick(rng),))

    def front_del(cur, rng):
        cur.execute("DELETE FROM %s WHERE id = %%s" % q, (pick(rng),))

    return [(60, front_upd), (10, front_del)]


def hot_key_ops(table, hot, touched):
    """Operations concentrated on a few keys spread over the whole table, so
    that every chunk of a snapshot holds rows that change very often:
    updates, deletes, and re-inserts of the deleted keys."""
    q = h.qtable(table)
    touched.update(hot)

    def hot_upd(cur, rng):
        cur.execute("UPDATE %s SET k = k + 1, v = md5(v || 'h') WHERE id = %%s" % q, (rng.choice(hot),))

    def hot_del(cur, rng):
        cur.execute("DELETE FROM %s WHERE id = %%s" % q, (rng.choice(hot),))

    def hot_ins(cur, rng):
        cur.execute("INSERT INTO %s VALUES (%%s, 0, 'back') ON CONFLICT (id) DO NOTHING" % q,
                    (rng.choice(hot),))

    return [(60, hot_upd), (12, hot_del), (12, hot_ins)]


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


def r_lines_by_key(records, table, key="id"):
    """Counter of key values of the snapshot rows of table among records."""
    c = collections.Counter()
    for rec in records:
        if rec.get("op") == "r" and h.rec_table(rec) == table:
            c[rec["after"][key]] += 1
    return c


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
# `cdc snapshot` for a table that is not captured


def test_snapshot_command_rejects_unknown_table(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute("CREATE TABLE public.a (id int PRIMARY KEY, v text)")
        cur.execute("CREATE TABLE public.other (id int PRIMARY KEY, v text)")
        cur.execute("INSERT INTO public.other VALUES (1, 'x')")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.a"], [h.file_sink(ctx.tmpdir("out") + "/e.jsonl")],
                                    pipeline_id="cmd"),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    sig = "public.cdc_signal"

    def signal_rows():
        with src.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (sig,))
            if cur.fetchone()[0] is None:
                return []
            cur.execute("SELECT id, type, data FROM public.cdc_signal ORDER BY id")
            return cur.fetchall()

    before = signal_rows()
    for arg in ("public.other", "public.a,public.other", "public.nosuch"):
        res = cdc.command(["snapshot", cdc.pipeline_path, "--table", arg])
        res.expect_rc(2)
        bad = arg.split(",")[-1]
        errs = res.error_lines
        assert len(errs) == 1, "want exactly one error: line for --table %s; %s" % (arg, res.describe())
        assert bad in errs[0], "the error line does not name %s: %r" % (bad, errs[0])
        assert signal_rows() == before, "`cdc snapshot --table %s` wrote to the signal table: %s" % (
            arg, signal_rows())
    ctx.log("unknown tables: exit 2, one error: line naming the table, no signal written")

    # the same command with a captured table works (so the refusals above are about the table)
    res = cdc.command(["snapshot", cdc.pipeline_path, "--table", "public.a"]).expect_rc(0)
    assert not res.error_lines, res.describe()
    rows = signal_rows()
    new = [r for r in rows if r not in before]
    assert len(new) == 1 and new[0][1] == "execute-snapshot", "signal rows: %s" % rows
    data = json.loads(new[0][2])
    assert data.get("data-collections") == ["public.a"], "signal data %r" % new[0][2]
    ctx.log("a captured table: exit 0, one execute-snapshot signal for it")


# --------------------------------------------------------------------------
# snapshot modes


MODE_ROWS = 3000


def _mode_setup(ctx, mode, pipeline_id, nrows=MODE_ROWS, chunk_rows=None):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        fill_int_table(cur, "public.items", nrows)
    make_refs(src, ["public.items"])
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    extra = {"snapshot_mode": mode}
    if chunk_rows:
        extra["snapshot_chunk_rows"] = chunk_rows
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id=pipeline_id, **extra),
                  h.platform_config(state), cluster=cl)
    return cl, src, cdc, jsonl, state


def _changes(src):
    """A few changes to rows that existed and one new row; returns the ids."""
    with src.cursor() as cur:
        cur.execute("SELECT max(id) FROM public.items")
        top = cur.fetchone()[0]
        cur.execute("BEGIN")
        cur.execute("INSERT INTO public.items VALUES (%s, 1, 'new') RETURNING id", (top + 1,))
        new = cur.fetchone()[0]
        cur.execute("UPDATE public.items SET v = 'changed' WHERE id = (SELECT min(id) FROM public.items) "
                    "RETURNING id")
        upd = cur.fetchone()[0]
        cur.execute("DELETE FROM public.items WHERE id = (SELECT min(id) + 1 FROM public.items) RETURNING id")
        dele = cur.fetchone()[0]
        cur.execute("COMMIT")
    return new, upd, dele


def _check_stream_only(ctx, cl, src, jsonl, txns, pipeline_id, new, upd, dele):
    """No snapshot row; exactly the oracle's changes; the mirror holds only
    what the changes wrote: none of the rows that existed untouched."""
    records = h.read_jsonl(jsonl)
    reads = [r for r in records if r.get("op") == "r"]
    assert not reads, "%d snapshot rows were delivered, e.g. %s" % (len(reads), h.short(json.dumps(reads[0]), 300))
    h.check_jsonl_against_oracle(records, txns, pipeline_id=pipeline_id)
    mirror = cl.connect("mirror")
    with mirror.cursor() as cur:
        cur.execute("SELECT to_regclass('public.items')")
        if cur.fetchone()[0] is None:
            ids = set()
        else:
            cur.execute("SELECT id FROM public.items")
            ids = {r[0] for r in cur.fetchall()}
    with src.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.ref_items")
        existing = cur.fetchone()[0]
    assert new in ids, "the row inserted while streaming (id %d) is not in the mirror" % new
    assert dele not in ids, "the deleted row %d is in the mirror" % dele
    assert ids <= {new, upd}, "the mirror holds %d rows that existed before and were not changed, e.g. %s" % (
        len(ids - {new, upd}), sorted(ids - {new, upd})[:5])
    ctx.log("%d rows existed: none delivered; %d changes delivered exactly once" % (existing, len(records)))


def test_snapshot_mode_never(ctx):
    cl, src, cdc, jsonl, _ = _mode_setup(ctx, "never", "mnever")
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    new, upd, dele = _changes(src)
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, 120)
    assert not h.log_events(res.stderr, "snapshot.started"), "snapshot_mode never started a snapshot; " + res.describe()
    txns = oracle.read(["public.items"], stop)
    _check_stream_only(ctx, cl, src, jsonl, txns, "mnever", new, upd, dele)


def test_snapshot_mode_no_data(ctx):
    cl, src, cdc, jsonl, state = _mode_setup(ctx, "no_data", "mnodata")
    proc = cdc.start()   # creates the slot itself
    h.wait_log_event(proc, "source.streaming", 60)
    oracle = h.Oracle(cl, "src").create()
    new, upd, dele = _changes(src)
    stop, res = stop_and_finish(cl, cdc, proc, 120)
    both = h.proc_stderr(proc) + res.stderr
    assert not h.log_events(both, "snapshot.started"), "snapshot_mode no_data read rows:\n" + h.tail(both)
    kv = h.state_kv(state, "mnodata")
    assert kv.get("snapshot.initial", "").startswith("done "), \
        "no_data must record the snapshot as done; state store has snapshot.initial=%r" % kv.get("snapshot.initial")
    txns = oracle.read(["public.items"], stop)
    _check_stream_only(ctx, cl, src, jsonl, txns, "mnodata", new, upd, dele)
    ctx.log("state store: snapshot.initial=%s" % kv["snapshot.initial"].split()[0])


def test_snapshot_mode_no_data_then_initial(ctx):
    """After a no_data start the snapshot counts as done: a later start with
    snapshot_mode initial reads none of the rows that existed then (neither
    an initial nor an incremental snapshot)."""
    cl, src, cdc, jsonl, state = _mode_setup(ctx, "no_data", "mnd2")
    cdc.deploy().expect_rc(0)
    cdc.run_to(cl.current_lsn("src"), 120)
    assert h.state_kv(state, "mnd2").get("snapshot.initial", "").startswith("done "), \
        "no_data did not record the snapshot as done"
    assert h.count_lines(jsonl) == 0, "the no_data run delivered lines"
    cdc.write_pipeline(h.pipeline_config(cl, ["public.items"], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                         pipeline_id="mnd2", snapshot_mode="initial"))
    _, upd, _ = _changes(src)
    res = cdc.run_to(cl.current_lsn("src"), 120)
    for ev in ("snapshot.started", "snapshot.incremental_queued"):
        found = h.log_events(res.stderr, ev)
        assert not found, "after no_data, a start with snapshot_mode initial logged %s %s; %s" % (
            ev, {k: v for k, v in found[0].items() if not k.startswith("_") and k != "ts"}, res.describe())
    records = h.read_jsonl(jsonl)
    reads = [r for r in records if r["op"] == "r"]
    assert not reads, "after no_data, a start with snapshot_mode initial delivered %d snapshot rows" % len(reads)
    assert sorted(r["op"] for r in records) == ["c", "d", "u"], \
        "want exactly the 3 changes, got ops %s" % [r["op"] for r in records]
    ctx.log("the start with initial after no_data snapshotted nothing and delivered the 3 changes "
            "(update of existing id %d)" % upd)


def test_snapshot_mode_initial_only(ctx):
    nrows = 150000
    cl, src, cdc, jsonl, _ = _mode_setup(ctx, "initial_only", "monly", nrows=nrows, chunk_rows=10000)
    meta = h.TableMeta(src, "public.items")
    proc = cdc.start()
    h.wait_log_event(proc, "source.slot_created", 60)
    # a change right after the slot exists: after the snapshot's point, so
    # only streaming could deliver it, and this run must not stream
    new, upd, dele = _changes(src)
    still_running = proc.poll() is None
    res = proc.wait(180)
    res.expect_rc(0)
    assert not res.error_lines, res.describe()
    ctx.log("initial_only run exited 0 by itself after %.1fs (the change was made %s it finished)"
            % (res.duration, "before" if still_running else "after"))
    assert h.log_events(res.stderr, "snapshot.done"), "no snapshot.done logged; " + res.describe()
    assert not h.log_events(res.stderr, "source.streaming"), "initial_only started streaming; " + res.describe()

    records = list(h.iter_jsonl(jsonl))
    check_r_lines(records, "monly")
    others = [(i, r) for i, r in records if r.get("op") != "r"]
    assert not others, "initial_only delivered %d change lines, e.g. line %d: %s" % (
        len(others), others[0][0], h.short(json.dumps(others[0][1]), 300))
    got = collections.Counter(h.json_row_canon(meta, r["after"]) for _, r in records)
    counter_diff(rows_counter(src, "public.ref_items", meta), got,
                 "initial_only snapshot rows vs the table at the slot's consistent point")
    mirror = cl.connect("mirror")
    h.compare_tables(src, mirror, "public.ref_items", dst_table="public.items")
    ctx.log("%d rows, each once as op r; the mirror equals the table as of the slot; the change "
            "(insert %d, update %d, delete %d) was not delivered" % (len(records), new, upd, dele))

    # the slot stayed where the snapshot was taken: a streaming run delivers exactly that change
    oracle_stop = cl.current_lsn("src")
    cdc.write_pipeline(h.pipeline_config(cl, ["public.items"], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                         pipeline_id="monly", snapshot_mode="initial"))
    res = cdc.run_to(oracle_stop, 120)
    assert not h.log_events(res.stderr, "snapshot.started"), "the snapshot was taken again; " + res.describe()
    after = h.read_jsonl(jsonl)[len(records):]
    ops = sorted((r["op"], (r["after"] or r["before"])["id"]) for r in after)
    assert ops == sorted([("c", new), ("u", upd), ("d", dele)]), \
        "the streaming run after initial_only delivered %s, want exactly the change" % ops
    h.compare_tables(src, mirror, "public.items")
    ctx.log("a later streaming run delivered exactly the 3 changes; the mirror equals the source")


# --------------------------------------------------------------------------
# a table added to source.tables later


def test_table_added_later_is_snapshotted_incrementally(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    A, B = "public.alpha", "public.beta"
    with src.cursor() as cur:
        fill_int_table(cur, A, 20000)
        cur.execute("CREATE TABLE public.beta (region text, id int, qty int NOT NULL, note text, "
                    "PRIMARY KEY (region, id))")
        cur.execute("INSERT INTO public.beta SELECT 'r' || (g %% 7), g, g %% 13, md5(g::text) "
                    "FROM generate_series(1, %s) g", (15000,))
    make_refs(src, [A])
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    state = ctx.tmpdir("state")
    sinks = [h.file_sink(jsonl), h.pg_sink(cl, "replica")]

    def config(tables):
        return h.pipeline_config(cl, tables, sinks, pipeline_id="later", snapshot_mode="initial",
                                 snapshot_chunk_rows=3000)

    cdc = ctx.cdc(config([A]), h.platform_config(state), cluster=cl)
    metaA = h.TableMeta(src, A)
    proc = cdc.start()
    h.wait_log_event(proc, "snapshot.done", 120)
    h.wait_for(lambda: h.state_kv(state, "later", "snapshot.initial").get("snapshot.initial", "").startswith("done"),
               30, "the state store to record the initial snapshot as done")
    proc.terminate()
    proc.wait(60).expect_rc(0)
    first = list(h.iter_jsonl(jsonl))
    check_r_lines(first, "later")
    counter_diff(rows_counter(src, ref_name(A), metaA),
                 collections.Counter(h.json_row_canon(metaA, r["after"]) for _, r in first if r["op"] == "r"),
                 "first run: snapshot rows of %s" % A)
    assert all(h.rec_table(r) == A for _, r in first), "the first run delivered rows of other tables"
    ctx.log("first run (tables [%s]): %d snapshot rows" % (A, len(first)))

    # meanwhile: changes to both tables, beta not captured yet
    with src.cursor() as cur:
        cur.execute("UPDATE public.alpha SET v = 'between runs' WHERE id % 1000 = 0")
        cur.execute("UPDATE public.beta SET qty = -qty WHERE id % 500 = 0")
        cur.execute("DELETE FROM public.beta WHERE id % 777 = 0")
    make_refs(src, [B])   # beta as its incremental snapshot must find it
    metaB = h.TableMeta(src, B)

    cdc.write_pipeline(config([A, B]))
    proc = cdc.start()
    h.wait_log_event(proc, "snapshot.incremental_done", 150, pred=lambda d: d.get("table") == B)
    # changes to both tables after beta's snapshot: streamed
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.beta VALUES ('new', 1, 1, 'x'), ('new', 2, 2, 'y')")
        cur.execute("UPDATE public.beta SET note = 'after' WHERE id % 1000 = 1")
        cur.execute("DELETE FROM public.alpha WHERE id % 999 = 0")
        cur.execute("INSERT INTO public.alpha VALUES (100001, 1, 'late')")
    _, res = stop_and_finish(cl, cdc, proc, 120)
    log2 = h.proc_stderr(proc) + res.stderr
    assert not h.log_events(log2, "snapshot.started"), \
        "adding a table started a new initial snapshot:\n" + h.tail(log2)
    queued = [d.get("table") for d in h.log_events(log2, "snapshot.incremental_queued")]
    assert queued == [B], "incremental snapshots queued: %s, want only %s" % (queued, B)

    second = list(h.iter_jsonl(jsonl, start_line=len(first) + 1))
    check_r_lines([(i, r) for i, r in second if r["op"] == "r"], "later", markers=("true", "incremental"))
    readsA = [i for i, r in second if r["op"] == "r" and h.rec_table(r) == A]
    assert not readsA, "%s was snapshotted again: %d new snapshot rows (first at line %d)" % (
        A, len(readsA), readsA[0])
    counter_diff(rows_counter(src, ref_name(B), metaB),
                 collections.Counter(h.json_row_canon(metaB, r["after"]) for _, r in second
                                     if r["op"] == "r" and h.rec_table(r) == B),
                 "snapshot rows of the added table %s" % B)
    kv = h.state_kv(state, "later", "snapshot.table.")
    assert "snapshot.table.%s" % B in kv, "the state store does not record %s as snapshotted: %s" % (B, kv)
    mirror = cl.connect("mirror")
    for t in (A, B):
        n = h.compare_tables(src, mirror, t)
        ctx.log("mirror %s: %d rows equal" % (t, n))
    h.check_replay_with_reads_equals_source([r for _, r in first + second], src, [A, B])
    ctx.log("second run: %s snapshotted incrementally (%d rows), %s not again; the file replays "
            "to the source" % (B, sum(1 for _, r in second if r["op"] == "r"), A))


# --------------------------------------------------------------------------
# incremental snapshot under heavy updates and deletes


def test_incremental_snapshot_under_load(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    T, nrows, chunk_rows = "public.hot", 200000, 1000
    with src.cursor() as cur:
        fill_int_table(cur, T, nrows)
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    slot = "inc_slot"
    cdc = ctx.cdc(h.pipeline_config(cl, [T], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id="inc", slot=slot, publication="inc_pub",
                                    snapshot_mode="never", snapshot_chunk_rows=chunk_rows,
                                    status_interval_seconds=1),
                  h.platform_config(ctx.tmpdir("state")), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)

    touched, counter = set(), [10 * nrows]
    ops = int_table_ops(T, nrows, touched, counter)
    # heavy on updates and deletes
    ops = [(w * (3 if fn.__name__ in ("upd", "dele", "multi") else 1), fn) for w, fn in ops]
    ops += hot_key_ops(T, list(range(25, nrows + 1, 50)), touched)
    # and on the rows of the chunks the snapshot is about to read
    front = [0]
    ops += front_ops(T, nrows, touched, front, 2 * chunk_rows)
    seed = random.randrange(1 << 30)
    ctx.log("writer seed %d" % seed)
    # more writing backends than cores: a committing transaction is now and
    # then preempted between writing its commit record and becoming visible
    writers = [start_writer(ctx, cl, "src", ops, seed + i, pause=0.001) for i in range(6)]
    time.sleep(1.0)
    res = cdc.command(["snapshot", cdc.pipeline_path, "--table", T]).expect_rc(0)
    assert not res.error_lines, res.describe()

    h.wait_log_event(proc, "snapshot.incremental_table", 60, pred=lambda d: d.get("table") == T)
    commits0 = sum(w.commits for w in writers)
    samples = []
    t0 = time.monotonic()

    def finished():
        return any(d.get("table") == T for d in log_lines(proc, "snapshot.incremental_done"))

    while True:
        # a sample counts only if the snapshot was still running before and after it
        if finished():
            break
        sample = (time.monotonic() - t0, h.slot_confirmed_lsn(cl, slot))
        if finished():
            break
        samples.append(sample)
        front[0] = next_chunk_start(src, T, chunk_rows)
        if proc.poll() is not None:
            raise AssertionError("cdc exited during the incremental snapshot; " + proc.result().describe())
        if time.monotonic() - t0 > 170:
            raise AssertionError("the incremental snapshot did not finish within 170s under load; "
                                 "confirmed LSN samples %s; log tail:\n%s" % (
                                     [(round(t, 1), h.int_to_lsn(l) if l else None) for t, l in samples[-5:]],
                                     h.tail(h.proc_stderr(proc))))
        time.sleep(0.05)
    during = sum(w.commits for w in writers) - commits0
    for w in writers:
        w.stop()
    assert samples, "the incremental snapshot finished before the slot could be sampled"
    secs = samples[-1][0]
    lsns = [l for _, l in samples if l is not None]
    assert lsns, "the slot had no confirmed_flush_lsn while the snapshot ran"
    ctx.log("incremental snapshot sampled for %.1fs while the writers committed %d transactions; %d slot "
            "samples from %s to %s" % (secs, during, len(samples), h.int_to_lsn(lsns[0]), h.int_to_lsn(lsns[-1])))
    assert during > 0, "no write committed during the incremental snapshot: the test proves nothing"
    distinct = sorted(set(lsns))
    assert len(distinct) >= 2 and lsns[-1] > lsns[0], \
        "confirmed_flush_lsn did not advance while the incremental snapshot ran (%.1fs): %s" % (
            secs, [h.int_to_lsn(l) for l in distinct])

    stop, res = stop_and_finish(cl, cdc, proc, 240)
    records = list(h.iter_jsonl(jsonl))
    mirror = cl.connect("mirror")
    try:
        n = h.compare_tables(src, mirror, T)
    except AssertionError as e:
        # say which snapshot rows brought the old values back, if the file shows it
        raise AssertionError("%s\n%s" % (e, stale_reads(records, T) or "(the file shows no stale snapshot row)"))
    ctx.log("mirror %s: %d rows equal (final run %.1fs)" % (T, n, res.duration))
    stale = stale_reads(records, T)
    assert not stale, stale

    reads = [(i, r) for i, r in records if r["op"] == "r"]
    check_r_lines(reads, "inc", markers=("true", "incremental"))
    changes = [r for _, r in records if r["op"] != "r"]
    txns = oracle.read([T], stop)
    h.check_jsonl_against_oracle(changes, txns, pipeline_id="inc")
    per_key = r_lines_by_key([r for _, r in reads], T)
    untouched = [i for i in range(1, nrows + 1) if i not in touched]
    wrong = [(i, per_key[i]) for i in untouched if per_key[i] != 1]
    assert not wrong, "%d rows no writer touched do not have exactly one snapshot row, e.g. %s" % (
        len(wrong), wrong[:10])
    twice = [(k, n) for k, n in per_key.items() if n > 1]
    assert not twice, "rows with more than one snapshot row: %s" % twice[:10]
    # streaming began before the snapshot: early changes touch rows the file shows later
    h.check_replay_with_reads_equals_source([r for _, r in records], src, [T], lenient=True)
    orig_touched = [i for i in range(1, nrows + 1) if i in touched]
    ctx.log("file: %d snapshot rows: each of the %d untouched rows once, %d of the %d touched rows; "
            "%d changes exactly as the oracle; replays to the source"
            % (len(reads), len(untouched), sum(1 for i in orig_touched if per_key[i]), len(orig_touched),
               len(changes)))


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
