"""kill -9 at random moments under a continuous random workload.

cdc streams three tables (one with REPLICA IDENTITY FULL, one with TOASTed
values) to a file, a mirror and an event log while it is killed with SIGKILL
every 0.3-3 s and restarted, at least 20 times.  Then the workload stops and
one last `cdc run --stop-at-lsn` finishes.  Afterwards: the mirror equals
the source, and the file and the event log hold every change of the oracle
exactly once (the file in commit order)."""

import os
import random
import time

import harness as h

KILLS = int(os.environ.get("CDC_TEST_KILLS", "20"))


def test_kill9_under_load(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    out = ctx.tmpdir("out")
    jsonl = out + "/events.jsonl"
    slot = "crash_slot"
    cdc = ctx.cdc(
        h.pipeline_config(cl, h.STANDARD_TABLES,
                          [h.file_sink(jsonl), h.pg_sink(cl, "replica"), h.pg_sink(cl, "events")],
                          pipeline_id="crash", slot=slot, publication="crash_pub"),
        h.platform_config(ctx.tmpdir("state")),
        cluster=cl,
    )
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    w = ctx.workload(cl, "src", seed=seed, pause=0.02, bulk_ratio=0.01)
    ctx.log("seed %d" % seed)
    w.start()
    t0 = time.monotonic()
    proc = cdc.start()
    kills = progressed = 0
    lines_before = 0
    while kills < KILLS:
        time.sleep(rng.uniform(0.3, 3.0))
        if w.error is not None:
            w.stop()
        if proc.poll() is not None:
            raise AssertionError("cdc exited on its own during the kill phase (kill %d); %s"
                                 % (kills, proc.result().describe()))
        proc.kill9()
        kills += 1
        lines = h.count_lines(jsonl)
        progressed += lines > lines_before
        lines_before = lines
        cl.wait_slot_inactive(slot)
        proc = cdc.start()
    time.sleep(rng.uniform(0.3, 3.0))
    w.stop()
    if proc.poll() is not None:
        raise AssertionError("cdc exited on its own; %s" % proc.result().describe())
    proc.kill9()
    kills += 1
    ctx.log("%d kills in %.0fs; the file grew between %d of them; workload: %d txns, %d changes, "
            "%d rolled back" % (kills, time.monotonic() - t0, progressed, len(w.committed),
                                w.changes, w.rolled_back))
    stop = cl.current_lsn("src")
    cl.wait_slot_inactive(slot)
    res = cdc.run_to(stop, timeout=300)
    ctx.log("final run to %s took %.1fs" % (stop, res.duration))

    txns = oracle.read(h.STANDARD_TABLES, stop)
    assert {t.xid: len(t.changes) for t in txns} == dict(w.committed), \
        "the oracle disagrees with the workload's own count"
    mirror = cl.connect("mirror")
    for t in h.STANDARD_TABLES:
        n = h.compare_tables(src, mirror, t)
        ctx.log("mirror %s: %d rows equal" % (t, n))
    rows = h.read_events(mirror)
    n = h.check_events_against_oracle(rows, txns, pipeline_id="crash")
    ctx.log("event log: all %d changes exactly once" % n)
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="crash")
    h.check_replay_equals_source(records, src, h.STANDARD_TABLES)
    h.check_events_match_file(rows, records)
    ctx.log("JSONL: all %d changes exactly once, in commit order" % len(records))
    s = cl.slot(slot)
    last = txns[-1].changes[-1].lsn
    assert h.lsn_to_int(s["confirmed_flush_lsn"]) > last, \
        "slot confirmed_flush_lsn %s is not past the last change %s" % (
            s["confirmed_flush_lsn"], h.int_to_lsn(last))


OLD_CHECKPOINT_TABLE = """
    CREATE TABLE public.cdc_checkpoints (
        pipeline_id text NOT NULL,
        sink_id text NOT NULL,
        commit_lsn bigint NOT NULL,
        event_index bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pipeline_id, sink_id))"""


def test_checkpoint_table_from_before_streams(ctx):
    """A mirror whose checkpoint table an earlier cdc created (no stream
    column, one row per sink), holding positions ahead of the slot (cdc was
    killed before it confirmed them): the next run migrates the table in
    place, reads the rows as stream 0's and skips exactly what the sinks
    hold: the event log has every change once, the mirror equals the
    source."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    slot = "ckpt_slot"
    cdc = ctx.cdc(
        h.pipeline_config(cl, h.STANDARD_TABLES, [h.pg_sink(cl, "replica"), h.pg_sink(cl, "events")],
                          pipeline_id="ckpt", slot=slot, publication="ckpt_pub"),
        h.platform_config(ctx.tmpdir("state")),
        cluster=cl,
    )
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    # the table as the earlier cdc created it, before cdc first opens the mirror
    cl.execute("mirror", OLD_CHECKPOINT_TABLE)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    w = ctx.workload(cl, "src", seed=seed, pause=0.01, bulk_ratio=0.01)
    ctx.log("seed %d" % seed)
    w.start()
    mirror = cl.connect("mirror")
    ahead = None
    for attempt in range(15):
        proc = cdc.start()
        time.sleep(rng.uniform(0.5, 2.0))
        if proc.poll() is not None:
            raise AssertionError("cdc exited on its own; %s" % proc.result().describe())
        proc.kill9()
        cl.wait_slot_inactive(slot)
        if attempt == 0:
            # the first run migrated the table; put it back as it was, rows kept
            cols = [r[0] for r in cl.execute("mirror", "SELECT attname FROM pg_attribute WHERE "
                                             "attrelid = 'public.cdc_checkpoints'::regclass "
                                             "AND attnum > 0 AND NOT attisdropped")]
            assert "stream" in cols, "the first run did not migrate the table: %s" % cols
        confirmed = h.lsn_to_int(cl.slot(slot)["confirmed_flush_lsn"])
        held = h.sink_checkpoint(mirror, "ckpt", "eventlog")
        with mirror.cursor() as cur:
            cur.execute("ALTER TABLE public.cdc_checkpoints DROP CONSTRAINT cdc_checkpoints_pkey")
            cur.execute("DELETE FROM public.cdc_checkpoints WHERE stream <> 0")
            cur.execute("ALTER TABLE public.cdc_checkpoints DROP COLUMN stream")
            cur.execute("ALTER TABLE public.cdc_checkpoints ADD PRIMARY KEY (pipeline_id, sink_id)")
        if held and held[0] > confirmed:
            ahead = (held, confirmed)
            break
    w.stop()
    assert ahead, "the event log's checkpoint never got ahead of the slot in 15 kills"
    ctx.log("killed with the event log at %s, the slot at %s; checkpoint table back to the old "
            "layout" % (h.int_to_lsn(ahead[0][0]), h.int_to_lsn(ahead[1])))
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=300)
    assert "sink.postgres.checkpoint_migrated" in res.stderr, res.describe()
    key = cl.execute("mirror", "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                               "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE "
                               "i.indrelid = 'public.cdc_checkpoints'::regclass AND i.indisprimary "
                               "ORDER BY a.attname")
    assert [r[0] for r in key] == ["pipeline_id", "sink_id", "stream"], key
    rows = cl.execute("mirror", "SELECT sink_id, stream FROM public.cdc_checkpoints ORDER BY 1")
    assert rows == [("eventlog", 0), ("mirror", 0)], rows
    txns = oracle.read(h.STANDARD_TABLES, stop)
    for t in h.STANDARD_TABLES:
        h.compare_tables(src, mirror, t)
    n = h.check_events_against_oracle(h.read_events(mirror), txns, pipeline_id="ckpt")
    ctx.log("migrated in place; event log: all %d changes exactly once; mirror equal" % n)
