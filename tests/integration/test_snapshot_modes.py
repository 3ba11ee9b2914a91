"""The snapshot modes (`never`, `no_data`, also followed by a start with
`initial`, and `initial_only`) and `cdc snapshot` for a table that is not
captured.  The rows a snapshot must deliver are those of a reference copy
made before cdc creates its slot (see test_snapshot, whose helpers these
tests use); the changes after it come from an oracle slot."""

import collections
import json

import harness as h
from test_snapshot import (check_r_lines, counter_diff, fill_int_table, make_refs, rows_counter,
                           stop_and_finish)


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

