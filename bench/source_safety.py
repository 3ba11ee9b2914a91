#!/usr/bin/env python3
"""Figures about the source when things go wrong around cdc (docs/delivery.md):

  restart   how long `pg_ctl restart -m fast` of the source takes while a sink
            (a PostgreSQL mirror) is down and holds the slot back
  retained  how far the slot's retained WAL grows while that sink is down for
            60 s under a steady load, and how long cdc takes to catch up after
  rss       cdc's peak RSS (VmHWM) delivering one row of a 50 MB text and a
            50 MB bytea to a file (and to a mirror)

    CDC_BIN=build/release/cdc /usr/bin/python3 bench/source_safety.py [restart] [retained] [rss]

Everything runs against throwaway PostgreSQL 15 clusters started by the
integration test harness in temporary directories, removed at the end.  The
binary measured is $CDC_BIN (relative to the repository; default
build/release/cdc)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness as h  # noqa: E402

MB = 1 << 20


def _pipeline(cl, dst, name, tables, mirror=True):
    sinks = [h.file_sink(name + ".jsonl")]
    if mirror:
        sinks.append(h.pg_sink(dst, "replica", password="${PGPW_MIRROR}"))
    return h.pipeline_config(cl, tables, sinks, pipeline_id=name, slot=name + "_slot",
                             publication=name + "_pub")


def _platform(ctx):
    return h.platform_config(ctx.tmpdir("state"),
                             retry={"max_attempts": 3, "initial_wait_seconds": 0.2,
                                    "max_wait_seconds": 1.0, "multiplier": 2.0, "jitter": True})


def _two_clusters(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    dst = ctx.cluster()
    dst.createdb("mirror")
    return cl, dst


def retained(cl, slot):
    """(bytes of WAL the slot retains, bytes between WAL end and the slot's
    confirmed position)."""
    r = cl.execute("postgres", "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), "
                               "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                               "FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    return int(r[0][0]), int(r[0][1])


def measure_restart(ctx):
    cl, dst = _two_clusters(ctx)
    h.Workload.create_tables(cl.connect("src"))
    cdc = ctx.cdc(_pipeline(cl, dst, "rst", h.STANDARD_TABLES), _platform(ctx), cluster=cl,
                  env={"PGPW_MIRROR": dst.role_password})
    cdc.deploy().expect_rc(0)
    w = ctx.workload(cl, "src", pause=0.01)
    w.start()
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)
    time.sleep(3)
    dst.stop()
    time.sleep(5)
    w.stop()
    held, lag = retained(cl, "rst_slot")
    rc, out, secs = cl.pg_ctl(["restart", "-m", "fast", "-w", "-t", "120",
                               "-l", cl.dir + "/server.log"], timeout=200)
    print("restart: pg_ctl restart -m fast with the mirror down: %s after %.1f s "
          "(the slot was %.1f MB behind)" % ("done" if rc == 0 else "NOT DONE (pg_ctl gave up)",
                                             secs, lag / MB), flush=True)
    proc.kill9()


def measure_retained(ctx, down_seconds=60):
    cl, dst = _two_clusters(ctx)
    h.Workload.create_tables(cl.connect("src"))
    cdc = ctx.cdc(_pipeline(cl, dst, "ret", h.STANDARD_TABLES), _platform(ctx), cluster=cl,
                  env={"PGPW_MIRROR": dst.role_password})
    cdc.deploy().expect_rc(0)
    w = ctx.workload(cl, "src", pause=0.01, bulk_ratio=0.02)
    w.start()
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 60)

    def sample(seconds):
        top = (0, 0)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            r = retained(cl, "ret_slot")
            top = (max(top[0], r[0]), max(top[1], r[1]))
            time.sleep(1)
        return top

    wal0 = h.lsn_to_int(cl.current_lsn("src"))
    healthy = sample(20)
    wal1 = h.lsn_to_int(cl.current_lsn("src"))
    dst.stop()
    down = sample(down_seconds)
    wal2 = h.lsn_to_int(cl.current_lsn("src"))
    dst.start_again()
    t0 = time.monotonic()
    end = h.lsn_to_int(cl.current_lsn("src"))
    h.wait_for(lambda: (h.slot_confirmed_lsn(cl, "ret_slot") or 0) >= end, 600, "catch-up")
    catchup = time.monotonic() - t0
    w.stop()
    print("retained: steady load writes %.2f MB/s of WAL; healthy: the slot retains at most "
          "%.1f MB (confirmed lags %.1f MB); mirror down %d s: at most %.1f MB retained "
          "(confirmed lags %.1f MB, WAL written meanwhile %.1f MB); caught up %.1f s after the "
          "mirror came back" % ((wal1 - wal0) / MB / 20, healthy[0] / MB, healthy[1] / MB,
                                down_seconds, down[0] / MB, down[1] / MB, (wal2 - wal1) / MB,
                                catchup), flush=True)
    proc.terminate()
    proc.wait(120)


def measure_rss(ctx):
    cl, dst = _two_clusters(ctx)
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute("CREATE TABLE public.huge (id int PRIMARY KEY, t text, b bytea)")
    for mirror in (False, True):
        name = "rss%d" % mirror
        cdc = ctx.cdc(_pipeline(cl, dst, name, ["public.huge"], mirror),
                      h.platform_config(ctx.tmpdir("state")), cluster=cl,
                      env={"PGPW_MIRROR": dst.role_password}, name=name)
        cdc.deploy().expect_rc(0)
        with src.cursor() as cur:
            cur.execute("DELETE FROM public.huge")
            cur.execute("INSERT INTO public.huge VALUES (1, 'small', '\\x00')")
        small = cdc.run_to(cl.current_lsn("src"), 300)
        with src.cursor() as cur:
            cur.execute("INSERT INTO public.huge VALUES (2, repeat('x', 50 * 1024 * 1024), "
                        "decode(repeat('ab', 50 * 1024 * 1024), 'hex'))")
        res = cdc.run_to(cl.current_lsn("src"), 600)
        print("rss: one row of a 50 MB text and a 50 MB bytea to a file%s: peak RSS %.0f MB "
              "(a run delivering a small row: %.0f MB)"
              % (" and a mirror" if mirror else "", res.peak_rss_kb / 1024, small.peak_rss_kb / 1024),
              flush=True)


def main():
    what = sys.argv[1:] or ["restart", "retained", "rss"]
    os.environ.setdefault("CDC_BIN", "build/release/cdc")
    for w in what:
        fn = {"restart": measure_restart, "retained": measure_retained, "rss": measure_rss}.get(w)
        if fn is None:
            sys.exit("unknown figure %r: restart, retained or rss" % w)
        ctx = h.Ctx(w, verbose=False)
        try:
            fn(ctx)
        finally:
            ctx.close()


if __name__ == "__main__":
    main()
