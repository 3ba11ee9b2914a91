"""What an operator sees of a running snapshot, and how it obeys the control
API.

During an initial snapshot, /readyz, /status and `cdc status` report the
source as SNAPSHOTTING (not CONNECTING) with the snapshot's progress (rows
read of those expected, chunks and tables done, rate, ETA) and /metrics has
the cdc_snapshot_* figures; `cdc pause` stops the snapshot's readers (the
rows read stop growing while the sink drains) and `cdc resume` lets them go
on, and every row still arrives.  The snapshot is paced by a slow webhook
receiver and a small event log, so it is still running when paused.

During a snapshot resumed after kill -9, the source's event counter never
shows fewer events than the sink delivered and equals it at the end.

On a terminal, the snapshot's progress is a status line that log lines never
break (each log line starts at the beginning of a cleared line and the status
line is drawn again below it) and whose figures move; without a terminal
nothing of it is written."""

import json
import os
import pty
import re
import select
import subprocess
import time

import harness as h
from test_snapshot import fill_int_table, kill_mid_snapshot, log_lines, make_refs

TOKEN = "snap-ctl-token-5e1f"


def _paced_pipeline(ctx, cl, recv, table, pid, nrows, **platform):
    """A pipeline that snapshots table into a slow webhook (one request of
    50 rows in flight, answered after the receiver's delay) through a small
    event log, so the snapshot's readers go at the receiver's pace."""
    state = ctx.tmpdir("state")
    port = h.free_port()
    hook = h.webhook_sink(recv.url(), "hook", max_in_flight=1, batch_size=50)
    extra = {"health_enabled": True, "health_port": port, "control_token": TOKEN,
             "max_buffered_bytes": 1 << 20}
    extra.update(platform)
    cdc = ctx.cdc(h.pipeline_config(cl, [table], [hook], pipeline_id=pid, slot=pid + "_slot",
                                    publication=pid + "_pub", snapshot_mode="initial",
                                    snapshot_chunk_rows=2000, snapshot_parallelism=1),
                  h.platform_config(state, **extra), cluster=cl, secrets_=[TOKEN])
    return cdc, h.Endpoint(port, TOKEN), state


def _snapshot(ep):
    return ep.status().get("snapshot") or {}


def _rows(ep):
    return _snapshot(ep).get("rows_read", 0)


def _steady(ep, what, seconds=3.0):
    """Waits until rows_read has not moved for `seconds`; returns it."""
    last, since = _rows(ep), time.monotonic()

    def still():
        nonlocal last, since
        now = _rows(ep)
        if now != last:
            last, since = now, time.monotonic()
        return time.monotonic() - since >= seconds
    h.wait_for(still, 60, what, interval=0.25)
    return last


def test_status_and_pause_during_initial_snapshot(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    T, nrows = "public.paced", 12000
    with src.cursor() as cur:
        fill_int_table(cur, T, nrows)
    make_refs(src, [T])
    recv = h.Receiver(ctx).start()
    recv.control(delay=0.05, keep_raw=False, strip=["v"])
    cdc, ep, _ = _paced_pipeline(ctx, cl, recv, T, "paced", nrows)
    proc = cdc.start()
    h.wait_http(proc, ep, "/healthz", 200, 60, "/healthz")

    h.wait_for(lambda: _rows(ep) >= 2000, 120, "the snapshot to read its first chunk")
    st, _, body = ep.get("/readyz")
    ready = json.loads(body)
    assert st == 200 and ready["source"]["state"] == "SNAPSHOTTING", (st, body)
    assert ready["snapshot"]["kind"] == "initial" and ready["snapshot"]["running"], body
    snap = _snapshot(ep)
    assert snap["rows_estimated"] >= nrows * 0.8 and snap["chunks_total"] >= 5, snap
    assert snap["tables_total"] == 1 and snap["rows_read"] <= nrows, snap
    m = ep.metrics()
    assert m.value("cdc_snapshot_running", pipeline="paced") == 1
    assert m.value("cdc_snapshot_chunks_total", pipeline="paced") == snap["chunks_total"]
    assert m.value("cdc_snapshot_rows_read", pipeline="paced") > 0
    args = [cdc.pipeline_path] + cdc.platform_args()
    r = cdc.command(["status"] + args, timeout=30).expect_rc(0)
    got = re.search(r"snapshot initial running: (\d+)/(\d+) rows, (\d+)/(\d+) chunks, (\d+)/1 tables",
                    r.stdout)
    assert got and int(got.group(1)) > 0 and int(got.group(4)) == snap["chunks_total"], r.stdout
    assert "source SNAPSHOTTING" in r.stdout, r.stdout
    ctx.log("cdc status during the snapshot:\n      " + r.stdout.strip().replace("\n", "\n      "))

    # pause: the readers stop; the rows read stop growing
    r = cdc.command(["pause"] + args, timeout=30).expect_rc(0)
    assert "paused" in r.stdout, r.describe()
    held = _steady(ep, "the rows read to stop growing after the pause")
    assert held < nrows, "the snapshot finished before the pause took effect: slow it down"
    time.sleep(2)
    assert _rows(ep) == held, "rows kept being read while paused"
    snap = _snapshot(ep)
    assert snap["paused"] is True and snap["running"] is True, snap
    assert ep.status()["source"]["state"] == "PAUSED"
    assert ep.metrics().value("cdc_source_paused", pipeline="paced") == 1
    r = cdc.command(["status"] + args, timeout=30).expect_rc(0)
    assert "PAUSED" in r.stdout, r.stdout
    ctx.log("paused at %d of %d rows" % (held, nrows))

    # resume: it goes on, and every row arrives
    cdc.command(["resume"] + args, timeout=30).expect_rc(0)
    h.wait_for(lambda: _rows(ep) > held, 60, "the snapshot to read on after the resume")
    h.wait_log_event(proc, "snapshot.done", 300)
    ids = {env["after"]["id"] for _, env in h.webhook_deliveries(recv.records())
           if env.get("op") == "r"}
    missing = set(range(1, nrows + 1)) - ids
    assert not missing, "%d rows never arrived, e.g. %s" % (len(missing), sorted(missing)[:5])
    h.wait_for(lambda: ep.status()["source"]["state"] == "RUNNING", 30, "streaming after the snapshot")
    done = _snapshot(ep)
    assert (done["running"], done["chunks_done"], done["tables_done"], done["rows_read"]) == \
        (False, done["chunks_total"], 1, nrows), done
    proc.terminate()
    proc.wait(60).expect_rc(0)


def _sample(m, name, **labels):
    """The value of the one sample of name whose labels include these, or
    None."""
    if m is None:
        return None
    got = [v for (n, lb), v in m.samples.items() if n == name and labels.items() <= dict(lb).items()]
    assert len(got) <= 1, "several samples of %s%s" % (name, labels)
    return got[0] if got else None


def test_counters_agree_during_a_resumed_snapshot(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    T, nrows = "public.again", 400000
    with src.cursor() as cur:
        fill_int_table(cur, T, nrows)
    make_refs(src, [T])
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    state = ctx.tmpdir("state")
    port = h.free_port()
    pid = "again"
    cdc = ctx.cdc(h.pipeline_config(cl, [T], [h.file_sink(jsonl)], pipeline_id=pid,
                                    slot="again_slot", publication="again_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=4000),
                  h.platform_config(state, health_enabled=True, health_port=port), cluster=cl)
    proc = cdc.start()
    started = h.wait_log_event(proc, "snapshot.started", 120)
    _, preds = h.snapshot_plan(state, pid, started["id"], T)
    done_before = kill_mid_snapshot(proc, state, pid, started["id"], T, len(preds), 6)
    cl.wait_slot_inactive("again_slot")

    ep = h.Endpoint(port)
    proc2 = cdc.start()
    sink = {"pipeline": pid, "sink": "jsonl", "type": "file"}
    samples = 0
    while not log_lines(proc2, "snapshot.done"):
        assert proc2.poll() is None, proc2.result().describe()
        st, _, body = ep.get("/metrics")
        m = h.parse_prometheus(body) if st == 200 else None
        src_events = _sample(m, "cdc_source_events_total")
        if src_events is not None and _sample(m, "cdc_sink_events_total", sink="jsonl"):
            delivered = _sample(m, "cdc_sink_events_total", sink="jsonl") + \
                _sample(m, "cdc_sink_skipped_total", sink="jsonl")
            assert src_events >= delivered, \
                "the source counts %d events, its sink delivered %d" % (src_events, delivered)
            if not log_lines(proc2, "snapshot.done"):
                state = ep.status()["source"]["state"]
                if state == "SNAPSHOTTING":
                    samples += 1
                else:
                    # the snapshot ended between the two looks (the source
                    # then connects to stream, then runs): its end is in
                    # the log at once
                    assert state in ("CONNECTING", "RUNNING"), state
                    h.wait_for(lambda: log_lines(proc2, "snapshot.done"), 10,
                               "snapshot.done once the source is %s" % state)
        time.sleep(0.02)
    assert samples >= 3, "only %d samples during the resumed snapshot: make it longer" % samples
    remaining = len(preds) - len(done_before)

    def settled():
        m = ep.metrics()
        return m.value("cdc_source_events_total", pipeline=pid) == \
            m.value("cdc_sink_events_total", **sink) + m.value("cdc_sink_skipped_total", **sink)
    h.wait_for(settled, 30, "the source's and the sink's counters to agree")
    snap = _snapshot(ep)
    assert snap["chunks_done"] == len(preds) and snap["rows_estimated"] < nrows, snap
    ctx.log("%d samples during the resumed snapshot (%d of %d chunks left); counters agree at %d"
            % (samples, remaining, len(preds), ep.metrics().value("cdc_source_events_total",
                                                                  pipeline=pid)))
    proc2.terminate()
    proc2.wait(60).expect_rc(0)


def _run_on_a_terminal(cdc, timeout):
    """`cdc run` with stderr on a pseudo-terminal: (exit status, what the
    terminal received).  Stopped with SIGTERM once `snapshot.done` shows."""
    master, slave = pty.openpty()
    argv = [h.cdc_bin(), "run", cdc.pipeline_path] + cdc.platform_args()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                         env=cdc.env, cwd=cdc.dir)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    stopping = False
    try:
        while True:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            if not stopping and b"event=snapshot.done" in out:
                p.terminate()
                stopping = True
            if time.monotonic() > deadline:
                p.kill()
                raise AssertionError("cdc on a terminal did not finish:\n" + out[-3000:].decode(errors="replace"))
    finally:
        os.close(master)
        rc = p.wait(60)
    return rc, out.decode(errors="replace")


CLEAR = "\r\x1b[K"


def test_progress_line_on_a_terminal_and_not_elsewhere(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    T, nrows = "public.shown", 8000
    with src.cursor() as cur:
        fill_int_table(cur, T, nrows)
    make_refs(src, [T])
    recv = h.Receiver(ctx).start()
    # slow, and now and then refusing: retries log lines while the status line shows
    recv.control(delay=0.03, keep_raw=False, strip=["v"],
                 fail=[{"status": 503, "count": 2}, {"status": 200, "seconds": 1.5},
                       {"status": 503, "count": 2}, {"status": 200, "seconds": 1.5},
                       {"status": 503, "count": 2}])
    cdc, _, _ = _paced_pipeline(ctx, cl, recv, T, "shown", nrows, health_enabled=False,
                                retry={"initial_wait_seconds": 0.1, "max_wait_seconds": 0.2,
                                       "max_attempts": 100})
    rc, tty = _run_on_a_terminal(cdc, 300)
    assert rc == 0, "cdc on a terminal exited %d:\n%s" % (rc, h.tail(tty))
    assert cl.role_password not in tty and "AddressSanitizer" not in tty, h.tail(tty)
    # the status line: drawn in place, again and again, its figures rising
    draws = re.findall(re.escape(CLEAR) + r"snapshot: (\d+)/(\d+) rows, (\d+)/(\d+) chunks", tty)
    rows = [int(d[0]) for d in draws]
    assert len(set(rows)) >= 5, "the status line moved only through %s" % sorted(set(rows))
    assert rows == sorted(rows), "the rows on the status line went down: %s" % rows
    # every log line starts on a cleared line of its own, never after status text
    logs = 0
    for line in tty.split("\n"):
        at = line.find("ts=")
        if at < 0:
            continue
        logs += 1
        before = line[:at]
        assert before == "" or before.endswith(CLEAR), "a log line was written after other text: %r" % line[:160]
        assert "snapshot:" not in before.split(CLEAR)[-1], "a log line broke the status line: %r" % line[:160]
    retries = tty.count("event=sink.retry")
    assert retries >= 2 and logs > retries, "want log lines while the status line shows (%d retries)" % retries
    # the status line is cleared once the snapshot is done
    last = tty.rfind(CLEAR + "snapshot: ")
    assert CLEAR in tty[last + len(CLEAR):], "the status line was left on the terminal: %r" % tty[-200:]
    ctx.log("terminal: %d draws of the status line, %d log lines among them (%d retries)"
            % (len(draws), logs, retries))

    # without a terminal: no status line, no carriage returns
    cdc2, _, _ = _paced_pipeline(ctx, cl, recv, T, "plain", nrows, health_enabled=False)
    recv.control(normal=True, delay=0.01)
    proc = cdc2.start()
    h.wait_log_event(proc, "snapshot.done", 300)
    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    assert "\r" not in res.stderr and "snapshot: " not in res.stderr, \
        "a status line was written to a file:\n" + h.tail(res.stderr)
