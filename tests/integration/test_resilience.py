"""Failures other than a crash of cdc itself.

test_walsender_terminated_repeatedly: the server ends cdc's replication
connection again and again under load; cdc reconnects by itself, and the
file, the event log and the mirror still hold every change exactly once.
(A reconnect resends the transaction that was cut off; sinks that are behind
may read both copies in one batch.)

test_mirror_refuses_one_row_of_a_group: the mirror table has a CHECK the
source does not; one row of a 300-row transaction violates it.  The mirror
applies rows in multi-row statements, so the first failure cannot say which
row; cdc goes one row at a time over that span and, with dead_letter_scope
row, dead-letters exactly the refused row.  Every other row arrives, the
file has all of them.

test_mirror_database_restarts: the mirror lives in its own cluster, which is
stopped for a while under load and started again on the same port.  The
file keeps growing meanwhile (the failing sink drains the log instead of
holding it), the slot's confirmed position does not pass what the mirror
has, and once the database is back the mirror catches up and equals the
source."""

import random
import subprocess
import time

import harness as h


def _standard(ctx, name, sinks, cl, platform=None, env=None, secrets_=()):
    cdc = ctx.cdc(h.pipeline_config(cl, h.STANDARD_TABLES, sinks, pipeline_id=name,
                                    slot=name + "_slot", publication=name + "_pub"),
                  platform or h.platform_config(ctx.tmpdir("state")), cluster=cl, env=env,
                  secrets_=secrets_)
    cdc.deploy().expect_rc(0)
    return cdc


def _check_exact(ctx, cl, src, mirror_conn, jsonl, txns, name, events=True):
    for t in h.STANDARD_TABLES:
        n = h.compare_tables(src, mirror_conn, t)
        ctx.log("mirror %s: %d rows equal" % (t, n))
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id=name)
    ctx.log("JSONL: all %d changes exactly once, in commit order" % len(records))
    if events:
        rows = h.read_events(mirror_conn)
        n = h.check_events_against_oracle(rows, txns, pipeline_id=name)
        ctx.log("event log: all %d changes exactly once" % n)


def test_walsender_terminated_repeatedly(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    cdc = _standard(ctx, "recon", [h.file_sink(jsonl), h.pg_sink(cl, "replica"),
                                   h.pg_sink(cl, "events")], cl)
    oracle = h.Oracle(cl, "src").create()
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    w = ctx.workload(cl, "src", seed=seed, pause=0.01, bulk_ratio=0.02)
    ctx.log("seed %d" % seed)
    w.start()
    proc = cdc.start()
    terminated = 0
    while terminated < 10:
        time.sleep(rng.uniform(0.5, 1.5))
        if proc.poll() is not None:
            raise AssertionError("cdc exited; %s" % proc.result().describe())
        n = cl.execute("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication "
                                   "WHERE application_name = 'cdc:recon'")[0][0]
        terminated += n > 0
    w.stop()
    stop = cl.current_lsn("src")
    h.wait_for(lambda: h.lsn_to_int((cl.slot("recon_slot") or {}).get("confirmed_flush_lsn") or
                                    "0/0") >= h.lsn_to_int(stop), 180,
               "cdc to confirm the workload's end after the reconnects")
    proc.terminate()
    proc.wait(60).expect_rc(0)
    # A walsender terminated while streaming is a lost connection; one
    # terminated while cdc was still starting it is a failed (re)start.
    err_text = proc.result().stderr
    reconnects = (err_text.count("event=source.connection_lost") +
                  err_text.count("event=source.reconnect"))
    assert reconnects >= terminated, (
        "cdc logged %d lost connections or failed restarts for %d terminations" % (
            reconnects, terminated))
    ctx.log("%d terminations, %d reconnects; workload: %d txns, %d changes"
            % (terminated, reconnects, len(w.committed), w.changes))
    txns = oracle.read(h.STANDARD_TABLES, stop)
    _check_exact(ctx, cl, src, cl.connect("mirror"), jsonl, txns, "recon")


def test_mirror_refuses_one_row_of_a_group(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    mirror = cl.connect("mirror")
    ddl = "CREATE TABLE public.pay (id int PRIMARY KEY, amount bigint%s, note text)"
    with src.cursor() as cur:
        cur.execute(ddl % "")
    with mirror.cursor() as cur:
        cur.execute(ddl % " CHECK (amount < 1000000)")
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    tables = ["public.pay"]
    cdc = ctx.cdc(h.pipeline_config(cl, tables, [h.file_sink(jsonl),
                                                 h.pg_sink(cl, "replica", dead_letter_scope="row")],
                                    pipeline_id="rej", slot="rej_slot", publication="rej_pub"),
                  h.platform_config(ctx.tmpdir("state"),
                                    retry={"max_attempts": 2, "initial_wait_seconds": 0.1,
                                           "max_wait_seconds": 0.5, "multiplier": 2.0,
                                           "jitter": False}),
                  cluster=cl)
    cdc.deploy().expect_rc(0)
    bad = 150
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.pay SELECT g, CASE WHEN g = %s THEN 5000000 ELSE g END, "
                    "'n' || g FROM generate_series(1, 300) g", (bad,))
        cur.execute("UPDATE public.pay SET note = 'later' WHERE id % 7 = 0")
        cur.execute("INSERT INTO public.pay SELECT g, g, 'more' FROM generate_series(301, 400) g")
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=180)
    entries = h.dlq_entries(cdc)
    assert len(entries) == 1, "want exactly the refused row dead-lettered, got %d entries:\n%s" % (
        len(entries), "\n".join(e["line"] for e in entries))
    shown = h.dlq_show(cdc, entries[0]["id"]).stdout
    assert '"id": %d' % bad in shown or '"id":%d' % bad in shown, \
        "the dead-lettered event is not the row with id %d:\n%s" % (bad, shown)
    with src.cursor() as cur:
        cur.execute("SELECT id, amount, note FROM public.pay WHERE id <> %s ORDER BY id", (bad,))
        want = cur.fetchall()
    with mirror.cursor() as cur:
        cur.execute("SELECT id, amount, note FROM public.pay ORDER BY id")
        got = cur.fetchall()
    assert got == want, "mirror differs from the source minus the refused row (%d vs %d rows)" % (
        len(got), len(want))
    records = h.read_jsonl(jsonl)
    ids = sorted(r["after"]["id"] for r in records if r["op"] == "c")
    assert ids == list(range(1, 401)), "the file must have every insert"
    ctx.log("one row dead-lettered (id %d), %d rows in the mirror, %d lines in the file; "
            "cdc took %.1fs" % (bad, len(got), len(records), res.duration))


def _restart_same_port(cluster):
    subprocess.run(["bash", h.PG_SCRIPT, "start", cluster.dir, str(cluster.port)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=240)
    cluster.running = True


def test_mirror_database_restarts(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    dst = ctx.cluster()
    dst.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    mirror_sink = h.pg_sink(dst, "replica", password="${PGPW_MIRROR}")
    cdc = _standard(ctx, "mdown", [h.file_sink(jsonl), mirror_sink], cl,
                    platform=h.platform_config(
                        ctx.tmpdir("state"),
                        retry={"max_attempts": 3, "initial_wait_seconds": 0.2,
                               "max_wait_seconds": 1.0, "multiplier": 2.0, "jitter": True}),
                    env={"PGPW_MIRROR": dst.role_password}, secrets_=(dst.role_password,))
    oracle = h.Oracle(cl, "src").create()
    seed = random.randrange(1 << 30)
    w = ctx.workload(cl, "src", seed=seed, pause=0.01, bulk_ratio=0.01)
    ctx.log("seed %d" % seed)
    w.start()
    proc = cdc.start()
    time.sleep(3)
    mconn = dst.connect("mirror")
    mconn.close()
    dst.stop()
    down_at = time.monotonic()
    lines_down = h.count_lines(jsonl)
    confirmed_down = h.lsn_to_int(cl.slot("mdown_slot")["confirmed_flush_lsn"])
    time.sleep(8)
    lines_later = h.count_lines(jsonl)
    confirmed_later = h.lsn_to_int(cl.slot("mdown_slot")["confirmed_flush_lsn"])
    ckpt_down = None
    if proc.poll() is not None:
        raise AssertionError("cdc exited while the mirror was down; %s" % proc.result().describe())
    _restart_same_port(dst)
    ctx.log("mirror down %.0fs: the file grew %d -> %d lines; the slot stayed at %s (was %s)"
            % (time.monotonic() - down_at, lines_down, lines_later,
               h.int_to_lsn(confirmed_later), h.int_to_lsn(confirmed_down)))
    assert lines_later > lines_down, "the file sink stopped while the mirror was down"
    time.sleep(2)
    w.stop()
    stop = cl.current_lsn("src")
    h.wait_for(lambda: h.lsn_to_int(cl.slot("mdown_slot")["confirmed_flush_lsn"]) >=
               h.lsn_to_int(stop), 180, "cdc to catch up after the mirror came back")
    proc.terminate()
    proc.wait(60).expect_rc(0)
    txns = oracle.read(h.STANDARD_TABLES, stop)
    # While the mirror was down nothing may be confirmed that it did not hold
    # before going down: at most the end of a transaction committed before
    # the outage began (the file went on meanwhile, the slot did not).
    done_before = [t.end_lsn for t in txns if t.end_lsn <= confirmed_down]
    later = [t for t in txns if t.end_lsn > confirmed_down]
    assert not later or confirmed_later < later[0].end_lsn, (
        "the slot confirmed %s while the mirror was down, past transaction %s it did not have"
        % (h.int_to_lsn(confirmed_later), later[0].xid))
    ctx.log("%d transactions confirmed before the outage, none during it" % len(done_before))
    _check_exact(ctx, cl, src, dst.connect("mirror"), jsonl, txns, "mdown", events=False)
