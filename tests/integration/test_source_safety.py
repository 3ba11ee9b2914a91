"""Safe around the source: nothing left behind by a run that fails, no
changes lost to a slot or publication someone else changed, a source that
can restart while a sink is down, a ceiling for one huge row, a clean stop
while the source is away.

test_failed_run_leaves_nothing_behind: a run whose sink cannot open, or
whose health port is taken, exits 1 and leaves no slot, no publication and
no signal table on the source (they would pin WAL).

test_slot_dropped_while_stopped: the slot is dropped while cdc is stopped
and rows change meanwhile.  With snapshot_mode never the next start stops
with an error naming the slot (and creates none); with when_needed it reads
the tables again, and the destinations equal the source.

test_slot_dropped_while_running: the slot is dropped under a running cdc
(its connection ended first): cdc stops with an error naming the slot.

test_publication_altered_while_running: a captured table is taken out of the
publication while cdc runs: cdc stops with an error naming the table, and
refuses to start until the table is published again (`cdc deploy`); the
publication dropped while cdc runs stops it naming the publication.

test_source_restarts_while_a_sink_is_down: the mirror's database is down
and the slot's confirmed position waits for it; `pg_ctl restart -m fast` of
the source completes all the same (cdc answers the server's shutdown
without confirming anything), cdc reconnects, and once the mirror is back
every destination equals the source, every change exactly once.

test_row_over_max_event_bytes: a row larger than max_event_bytes stops the
pipeline with an error naming the table and the size, and nothing after it
is confirmed; with the limit raised it is delivered, exactly once.

test_sigterm_while_reconnecting: SIGTERM while cdc waits to reconnect to a
source that went away exits 0 with no error line."""

import socket
import time

import harness as h


def _one_table(ctx, name, mode="never", sinks=None, platform=None, tables=("public.t",),
               mirror=True):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        for t in tables:
            cur.execute("CREATE TABLE %s (id int PRIMARY KEY, v text)" % h.qtable(t))
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    state = ctx.tmpdir("state")
    if sinks is None:
        sinks = [h.file_sink(jsonl)] + ([h.pg_sink(cl, "replica")] if mirror else [])
    pipeline = h.pipeline_config(cl, list(tables), sinks, pipeline_id=name, slot=name + "_slot",
                                 publication=name + "_pub", snapshot_mode=mode)
    cdc = ctx.cdc(pipeline, platform or h.platform_config(state), cluster=cl)
    return cl, src, cdc, jsonl, state, pipeline


def _nothing_created(cl, name):
    slot = cl.slot(name + "_slot")
    pub = cl.execute("src", "SELECT count(*) FROM pg_publication WHERE pubname = %s",
                     (name + "_pub",))[0][0]
    sig = cl.execute("src", "SELECT to_regclass('public.cdc_signal') IS NOT NULL")[0][0]
    left = [what for what, there in (("slot", slot is not None), ("publication", pub > 0),
                                     ("signal table", sig)) if there]
    assert not left, "the failed run left a %s behind on the source" % ", a ".join(left)


def test_failed_run_leaves_nothing_behind(ctx):
    dead = h.free_port()
    cl, src, cdc, jsonl, state, _ = _one_table(
        ctx, "fail1", sinks=[{"sink_id": "mirror", "sink_type": "postgres",
                              "postgres": {"host": "127.0.0.1", "port": dead, "database": "mirror",
                                           "username": "x", "password": "y", "mode": "replica"}}])
    res = cdc.start().wait(120)
    assert res.rc == 1 and res.error_lines, "a sink that cannot open must fail the run; " + res.describe()
    _nothing_created(cl, "fail1")
    ctx.log("unreachable sink: %s; nothing created" % h.short(res.error_lines[0], 120))

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        platform = h.platform_config(state, health_enabled=True, health_port=port)
        cdc2 = ctx.cdc(h.pipeline_config(cl, ["public.t"], [h.file_sink(jsonl)], pipeline_id="fail1",
                                         slot="fail1_slot", publication="fail1_pub"),
                       platform, cluster=cl, name="cdc2")
        res = cdc2.start().wait(120)
    assert res.rc == 1 and res.error_lines, "a taken health port must fail the run; " + res.describe()
    _nothing_created(cl, "fail1")
    ctx.log("health port taken: %s; nothing created" % h.short(res.error_lines[0], 120))


def _insert(src, first, n, v="row"):
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.t SELECT g, %s || g FROM generate_series(%s, %s) g",
                    (v, first, first + n - 1))


def test_slot_dropped_while_stopped(ctx):
    cl, src, cdc, jsonl, state, pipeline = _one_table(ctx, "gone")
    cdc.deploy().expect_rc(0)
    _insert(src, 1, 100)
    cdc.run_to(cl.current_lsn("src"), 120)
    cl.execute("src", "SELECT pg_drop_replication_slot('gone_slot')")
    _insert(src, 101, 50, "in between ")
    with src.cursor() as cur:
        cur.execute("UPDATE public.t SET v = 'changed in between' WHERE id <= 10")
    res = cdc.start(cl.current_lsn("src")).wait(120)
    assert res.rc == 1 and any("gone_slot" in l for l in res.error_lines), (
        "a restart after the slot was dropped must stop with an error naming the slot; "
        + res.describe())
    assert cl.slot("gone_slot") is None, "cdc created a new slot after refusing to start"
    ctx.log("snapshot_mode never: %s" % h.short(res.error_lines[0], 200))

    pipeline["source"]["snapshot_mode"] = "when_needed"
    cdc.write_pipeline(pipeline)
    _insert(src, 151, 20, "later ")
    res = cdc.run_to(cl.current_lsn("src"), 180)
    assert h.log_events(res.stderr, "source.slot_missing"), "the re-read was not logged; " + res.describe()
    records = h.read_jsonl(jsonl)
    h.check_replay_with_reads_equals_source(records, src, ["public.t"])
    n = h.compare_tables(src, cl.connect("mirror"), "public.t")
    ctx.log("snapshot_mode when_needed: %d rows read again; file and mirror equal the source (%d rows)"
            % (sum(1 for r in records if r["op"] == "r"), n))


def _walsender_pids(cl, name):
    return [r[0] for r in cl.execute("postgres", "SELECT pid FROM pg_stat_replication "
                                                 "WHERE application_name = %s", ("cdc:" + name,))]


def test_slot_dropped_while_running(ctx):
    cl, src, cdc, jsonl, state, _ = _one_table(ctx, "gonerun")
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    _insert(src, 1, 100)

    def dropped():
        for pid in _walsender_pids(cl, "gonerun"):
            cl.execute("postgres", "SELECT pg_terminate_backend(%s)", (pid,))
        try:
            cl.execute("postgres", "SELECT pg_drop_replication_slot('gonerun_slot')")
            return True
        except Exception:  # still active: cdc reconnected first
            return proc.poll() is not None
    h.wait_for(dropped, 60, "the slot to be dropped", interval=0.05)
    _insert(src, 101, 10)
    res = proc.wait(90)
    assert res.rc == 1 and any("gonerun_slot" in l for l in res.error_lines), (
        "cdc must stop with an error naming the dropped slot; " + res.describe())
    assert cl.slot("gonerun_slot") is None, "cdc created a new slot"
    ctx.log(h.short(res.error_lines[0], 200))


def test_publication_altered_while_running(ctx):
    tables = ("public.t", "public.t2")
    cl, src, cdc, jsonl, state, _ = _one_table(ctx, "pubalt", tables=tables)
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    _insert(src, 1, 10)
    cl.execute("src", "ALTER PUBLICATION pubalt_pub DROP TABLE public.t2")
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.t2 VALUES (1, 'not published any more')")
    res = proc.wait(90)
    assert res.rc == 1 and any("public.t2" in l for l in res.error_lines), (
        "cdc must stop naming the table taken out of the publication; " + res.describe())
    ctx.log("running: %s" % h.short(res.error_lines[0], 200))
    res = cdc.start(cl.current_lsn("src")).wait(120)
    assert res.rc == 1 and any("public.t2" in l for l in res.error_lines), (
        "a start must refuse while the table is not published; " + res.describe())
    ctx.log("restart: %s" % h.short(res.error_lines[0], 200))
    cdc.deploy().expect_rc(0)
    _insert(src, 11, 10)
    cdc.run_to(cl.current_lsn("src"), 120)
    ctx.log("after cdc deploy published it again, cdc runs")

    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    cl.execute("src", "DROP PUBLICATION pubalt_pub")
    _insert(src, 21, 10)
    res = proc.wait(90)
    assert res.rc == 1 and any("pubalt_pub" in l for l in res.error_lines), (
        "cdc must stop naming the dropped publication; " + res.describe())
    ctx.log("dropped: %s" % h.short(res.error_lines[0], 200))


def _history_rows(src, first, n):
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.history SELECT g, 'late', g * 1.5, md5(g::text) "
                    "FROM generate_series(%s, %s) g", (first, first + n - 1))


def test_source_restarts_while_a_sink_is_down(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    dst = ctx.cluster()
    dst.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    name = "srcrst"
    cdc = ctx.cdc(h.pipeline_config(cl, h.STANDARD_TABLES,
                                    [h.file_sink(jsonl),
                                     h.pg_sink(dst, "replica", password="${PGPW_MIRROR}")],
                                    pipeline_id=name, slot=name + "_slot", publication=name + "_pub"),
                  h.platform_config(ctx.tmpdir("state"),
                                    retry={"max_attempts": 3, "initial_wait_seconds": 0.2,
                                           "max_wait_seconds": 1.0, "multiplier": 2.0,
                                           "jitter": True}),
                  cluster=cl, env={"PGPW_MIRROR": dst.role_password},
                  secrets_=(dst.role_password,))
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    w = ctx.workload(cl, "src", pause=0.01, bulk_ratio=0.02)
    w.start()
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    time.sleep(2)
    dst.stop()
    time.sleep(4)
    w.stop()
    confirmed = h.slot_confirmed_lsn(cl, name + "_slot")
    end = h.lsn_to_int(cl.current_lsn("src"))
    assert confirmed < end, "the slot should wait for the mirror that is down"
    rc, out, secs = cl.pg_ctl(["restart", "-m", "fast", "-w", "-t", "60",
                               "-l", cl.dir + "/server.log"], timeout=120)
    assert rc == 0, ("pg_ctl restart -m fast of the source did not complete (%.0fs) while a sink "
                     "was down:\n%s" % (secs, out))
    ctx.log("pg_ctl restart -m fast took %.1fs with the mirror down (the slot waited at %s, "
            "WAL at %s)" % (secs, h.int_to_lsn(confirmed), h.int_to_lsn(end)))
    # (It may go back: PostgreSQL 15 does not save a logical slot's confirmed
    # position at shutdown when nothing else about the slot changed.)
    after = h.slot_confirmed_lsn(cl, name + "_slot")
    assert after <= confirmed, "the slot moved on while the mirror was down: %s -> %s" % (
        h.int_to_lsn(confirmed), h.int_to_lsn(after))
    src = cl.connect("src")
    h.wait_for(lambda: proc.poll() is not None or
               len(h.log_events(h.proc_stderr(proc), "source.streaming")) > 1, 90,
               "cdc to stream again after the restart")
    if proc.poll() is not None:
        raise AssertionError("cdc exited after the source restarted; " + proc.result().describe())
    _history_rows(src, 50_000_000, 300)
    dst.start_again()
    stop = cl.current_lsn("src")
    h.wait_for(lambda: (h.slot_confirmed_lsn(cl, name + "_slot") or 0) >= h.lsn_to_int(stop), 180,
               "cdc to confirm everything once the mirror is back")
    proc.terminate()
    proc.wait(60).expect_rc(0)
    txns = oracle.read(h.STANDARD_TABLES, stop)
    records = h.read_jsonl(jsonl)
    n = h.check_jsonl_against_oracle(records, txns, pipeline_id=name)
    mirror = dst.connect("mirror")
    for t in h.STANDARD_TABLES:
        h.compare_tables(src, mirror, t)
    ctx.log("after the restart: %d changes exactly once in the file, the mirror equals the source"
            % n)


def test_row_over_max_event_bytes(ctx):
    state = ctx.tmpdir("state")
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute("CREATE TABLE public.big (id int PRIMARY KEY, t text, b bytea)")
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    limit = 4 << 20
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.big"], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id="huge", slot="huge_slot", publication="huge_pub"),
                  h.platform_config(state, max_event_bytes=limit), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.big SELECT g, 'small', '\\x00ff' FROM generate_series(1, 20) g")
        cur.execute("INSERT INTO public.big VALUES (21, repeat('x', 3000000), "
                    "decode(repeat('ab', 1500000), 'hex'))")
        cur.execute("INSERT INTO public.big SELECT g, 'after', NULL FROM generate_series(22, 30) g")
    stop = cl.current_lsn("src")
    res = cdc.start(stop).wait(120)
    assert res.rc == 1, "a row over max_event_bytes must stop cdc (exit 1); " + res.describe()
    line = next((l for l in res.error_lines if "max_event_bytes" in l), "")
    assert "public.big" in line and any(w.isdigit() and int(w) > limit for w in line.replace("(", " ").split()), (
        "the error must name the table and the row's size; " + res.describe())
    txns = oracle.read(["public.big"], stop)
    assert len(txns) == 3
    confirmed = h.slot_confirmed_lsn(cl, "huge_slot")
    assert confirmed < txns[1].end_lsn, "the slot was confirmed past the refused row"
    ids = [r["after"]["id"] for r in h.read_jsonl(jsonl)]
    assert ids == list(range(1, 21)), "the file must hold the rows before the refused one, got %s" % ids
    ctx.log("refused: %s" % h.short(line, 200))
    cdc2 = ctx.cdc(h.pipeline_config(cl, ["public.big"], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                     pipeline_id="huge", slot="huge_slot", publication="huge_pub"),
                   h.platform_config(state, max_event_bytes=64 << 20), cluster=cl, name="cdc2")
    cdc2.run_to(stop, 180)
    h.check_jsonl_against_oracle(h.read_jsonl(jsonl), txns, pipeline_id="huge")
    h.compare_tables(src, cl.connect("mirror"), "public.big")
    ctx.log("with max_event_bytes raised: every row exactly once, the mirror equals the source")


def test_sigterm_while_reconnecting(ctx):
    cl, src, cdc, jsonl, state, _ = _one_table(ctx, "sigrc", mirror=False)
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    _insert(src, 1, 10)
    src.close()
    cl.stop()
    h.wait_log_event(proc, "source.reconnect", 60)
    proc.terminate()
    res = proc.wait(60)
    assert res.rc == 0 and not res.error_lines, (
        "SIGTERM while reconnecting must exit 0 without an error line; " + res.describe())
    ctx.log("exit 0 after %s" % h.short(h.log_events(res.stderr, "source.reconnect")[0].get("error", ""), 100))
