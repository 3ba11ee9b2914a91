"""Incremental snapshots while streaming: a table added to source.tables
later is snapshotted alone (the tables captured before are not read again),
and a table snapshotted under heavy updates and deletes, many of them on the
rows of the chunk about to be read, ends equal in the mirror while the slot
keeps advancing, with no snapshot row older than a change delivered before
it.  The changes come from an oracle slot (test_decoding); the random writer
and the checks of snapshot rows are test_snapshot's."""

import collections
import json
import random
import time

import harness as h
from test_snapshot import (check_r_lines, counter_diff, fill_int_table, int_table_ops, log_lines,
                           make_refs, ref_name, rows_counter, start_writer, stop_and_finish)


# --------------------------------------------------------------------------
# checks and writers of the incremental snapshot tests


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


def r_lines_by_key(records, table, key="id"):
    """Counter of key values of the snapshot rows of table among records."""
    c = collections.Counter()
    for rec in records:
        if rec.get("op") == "r" and h.rec_table(rec) == table:
            c[rec["after"][key]] += 1
    return c


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
