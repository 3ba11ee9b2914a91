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
