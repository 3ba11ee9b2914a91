"""The health and metrics endpoints of `cdc run`, the control API's pause and
resume, and `cdc health`.

With health_enabled and a free health_port, a running pipeline answers
/healthz at once and /readyz with 200 once the source is connected; /metrics
is well-formed Prometheus text (parsed strictly by the harness: HELP and
TYPE lines, label syntax, histogram buckets rising to +Inf = count) in which
every sample names the pipeline, whose counters rise by at least the number
of changes the oracle lists, whose commit-to-durable histogram counts every
change, and whose confirmed LSN reaches the workload's final LSN.  The
control API refuses requests without the token (401) or with a wrong one
(403); pausing stops delivery while the workload goes on (the file does not
grow, the received position stays put), resuming catches up, and the file
then holds every oracle change exactly once in commit order.  `cdc health`
prints a summary and exits 0 for a ready pipeline, 1 for one that is not
ready or cannot be reached (with one error line), 2 on usage errors; its
parsing of the status document is also checked against a stub server
serving fixed documents.  The token never appears in any output.  (The
rest of the control API: test_control_api.py.)"""

import http.server
import json
import re
import secrets
import threading
import time

import harness as h

TOKEN_PREFIX = "ctl-"
PIPELINE = "obs"

REQUIRED_METRICS = {
    "cdc_source_events_total": "counter",
    "cdc_source_transactions_total": "counter",
    "cdc_source_bytes_total": "counter",
    "cdc_source_reconnects_total": "counter",
    "cdc_source_received_lsn": "gauge",
    "cdc_source_confirmed_lsn": "gauge",
    "cdc_source_lag_bytes": "gauge",
    "cdc_source_lag_seconds": "gauge",
    "cdc_source_spilled_bytes": "gauge",
    "cdc_source_paused": "gauge",
    "cdc_snapshot_running": "gauge",
    "cdc_buffer_bytes": "gauge",
    "cdc_buffer_events": "gauge",
    "cdc_buffer_full": "gauge",
    "cdc_backpressure_seconds_total": "counter",
    "cdc_pending_transactions": "gauge",
    "cdc_uptime_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
REQUIRED_SINK_METRICS = {
    "cdc_sink_events_total": "counter",
    "cdc_sink_skipped_total": "counter",
    "cdc_sink_flushes_total": "counter",
    "cdc_sink_errors_total": "counter",
    "cdc_sink_reopens_total": "counter",
    "cdc_sink_request_retries_total": "counter",
    "cdc_sink_backlog_events": "gauge",
    "cdc_sink_up": "gauge",
    "cdc_sink_dlq_pending": "gauge",
    "cdc_sink_lag_events": "gauge",
    "cdc_sink_lag_seconds": "gauge",
    "cdc_sink_lag_bytes": "gauge",
}
SINK = {"pipeline": PIPELINE, "sink": "jsonl", "type": "file"}


def value(m, name, **labels):
    """A sample of pipeline obs (every sample carries the pipeline label)."""
    return m.value(name, pipeline=PIPELINE, **labels)


def check_every_sample_names_the_pipeline(m, pipeline):
    bad = [(name, dict(labels)) for name, labels in m.samples
           if dict(labels).get("pipeline") != pipeline]
    assert not bad, "samples without pipeline=%r: %s" % (pipeline, bad[:5])


# --------------------------------------------------------------------------


def _setup(ctx, token=None, pipeline_id="obs"):
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    port = h.free_port()
    extra = {"health_enabled": True, "health_port": port, "health_bind": "127.0.0.1"}
    if token:
        extra["control_token"] = token
    cdc = ctx.cdc(
        h.pipeline_config(cl, h.STANDARD_TABLES, [h.file_sink(jsonl)], pipeline_id=pipeline_id,
                          slot="obs_slot", publication="obs_pub", status_interval_seconds=1),
        h.platform_config(ctx.tmpdir("state"), **extra),
        cluster=cl,
        secrets_=[token] if token else [],
    )
    return cl, src, cdc, jsonl, port


def test_endpoints_metrics_pause_resume(ctx):
    token = TOKEN_PREFIX + secrets.token_hex(16)
    cl, src, cdc, jsonl, port = _setup(ctx, token)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    ep = h.Endpoint(port, token)

    proc = cdc.start()
    h.wait_http(proc, ep, "/healthz", 200, 30, "/healthz to answer 200")
    st, _, body = ep.get("/healthz")
    assert body.strip() == "ok", "/healthz body: %r" % body
    h.wait_http(proc, ep, "/readyz", 200, 60, "/readyz to answer 200 once the source is connected")
    st, hdr, body = ep.get("/readyz")
    doc = json.loads(body)
    assert doc["pipeline_id"] == "obs", doc
    assert doc["source"]["state"] == "RUNNING", doc
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", doc["source"]["confirmed_lsn"]), doc
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", doc["source"]["received_lsn"]), doc
    assert [(s["sink_id"], s["status"]) for s in doc["sinks"]] == [("jsonl", "running")], doc
    assert set(doc["lag"]) >= {"bytes", "seconds"}, doc
    ctx.log("ready on port %d: %s" % (port, body.strip()))

    before = ep.metrics()
    for name, typ in list(REQUIRED_METRICS.items()) + list(REQUIRED_SINK_METRICS.items()):
        assert before.types.get(name) == typ, "/metrics: %s has TYPE %r, want %s" % (
            name, before.types.get(name), typ)
        assert before.helps.get(name), "/metrics: %s has no HELP" % name
    for name in REQUIRED_METRICS:
        value(before, name)
    for name in REQUIRED_SINK_METRICS:
        before.value(name, **SINK)
    for name in ("cdc_sink_commit_to_durable_seconds", "cdc_sink_flush_duration_seconds"):
        assert before.types.get(name) == "histogram", (name, before.types.get(name))
    assert "cdc_sink_retries_total" not in before.types, "the two-meaning retries counter is back"
    check_every_sample_names_the_pipeline(before, PIPELINE)
    build = [dict(l) for n, l in before.samples if n == "cdc_build_info"]
    assert len(build) == 1 and re.fullmatch(r"\d+\.\d+\.\d+.*", build[0].get("version", "")), build
    assert value(before, "cdc_build_info", version=build[0]["version"]) == 1
    assert value(before, "process_resident_memory_bytes") > 0
    assert value(before, "process_open_fds") >= 3
    assert abs(value(before, "process_start_time_seconds") - time.time()) < 3600
    assert before.value("cdc_sink_up", **SINK) == 1
    assert value(before, "cdc_source_paused") == 0
    assert value(before, "cdc_snapshot_running") == 0

    # the control API refuses what lacks the right token
    for tok, want in ((None, 401), ("wrong-" + secrets.token_hex(8), 403), (token[:-1], 403),
                      (token + "x", 403)):
        st, _, body = ep.post("/control/pause", tok)
        assert st == want, "POST /control/pause with token %r answered %d, want %d" % (
            tok and tok.replace(token, "<token>"), st, want)
        assert token not in body
    st, _, _ = ep.get("/control/status")
    assert st == 401, "GET /control/status without a token answered %d" % st

    w = ctx.workload(cl, "src", pause=0.01, bulk_ratio=0.02)
    w.start()
    h.wait_for(lambda: h.count_lines(jsonl) >= 100 or proc.poll() is not None, 60,
               "the first 100 changes in the file")
    assert proc.poll() is None, proc.result().describe()
    assert value(ep.metrics(), "cdc_source_paused") == 0, "paused by a refused request"

    # pause: delivery stops while the workload goes on
    st, _, body = ep.post("/control/pause", token)
    assert st == 200, "pause answered %d: %s" % (st, body)
    h.wait_for(lambda: value(ep.metrics(), "cdc_source_paused") == 1, 10,
               "cdc_source_paused to become 1")
    assert ep.status()["source"]["state"] == "PAUSED", ep.status()
    h.wait_for(lambda: ep.metrics().value("cdc_sink_backlog_events", **SINK) == 0, 30,
               "the sink to drain what was read before the pause")
    time.sleep(0.5)  # the last flush after the backlog emptied
    lines_paused = h.count_lines(jsonl)
    received_paused = value(ep.metrics(), "cdc_source_received_lsn")
    txns_paused = len(w.committed)
    time.sleep(3)  # proving that nothing arrives takes time
    assert len(w.committed) > txns_paused, "the workload did not go on during the pause"
    assert h.count_lines(jsonl) == lines_paused, \
        "the file grew from %d to %d lines while paused" % (lines_paused, h.count_lines(jsonl))
    assert value(ep.metrics(), "cdc_source_received_lsn") == received_paused, \
        "the source kept reading while paused"
    r = cdc.command(["health", "--url", ep.base], timeout=30).expect_rc(0)
    assert "PAUSED" in r.stdout, "cdc health does not show the pause:\n" + r.stdout
    ctx.log("paused at %d lines while the workload committed %d more transactions"
            % (lines_paused, len(w.committed) - txns_paused))

    # resume: catches up
    st, _, body = ep.post("/control/resume", token)
    assert st == 200, "resume answered %d: %s" % (st, body)
    h.wait_for(lambda: h.count_lines(jsonl) > lines_paused, 30, "delivery to resume")
    assert value(ep.metrics(), "cdc_source_paused") == 0
    st, _, body = ep.get("/control/status", token)
    assert st == 200 and json.loads(body)["source"]["state"] == "RUNNING", (st, body)
    w.stop()
    stop = cl.current_lsn("src")
    stop_int = h.lsn_to_int(stop)
    h.wait_for(lambda: value(ep.metrics(), "cdc_source_confirmed_lsn") >= stop_int
               or proc.poll() is not None, 90, "cdc_source_confirmed_lsn to reach %s" % stop)
    assert proc.poll() is None, proc.result().describe()

    txns = oracle.read(h.STANDARD_TABLES, stop)
    changes = sum(len(t.changes) for t in txns)
    h.wait_for(lambda: ep.metrics().value("cdc_sink_events_total", **SINK)
               - before.value("cdc_sink_events_total", **SINK) >= changes,
               30, "cdc_sink_events_total to count every change")
    after = ep.metrics()
    check_every_sample_names_the_pipeline(after, PIPELINE)

    def rose(name, **lb):
        lb = lb or {"pipeline": PIPELINE}
        return after.value(name, **lb) - before.value(name, **lb)
    assert rose("cdc_source_events_total") >= changes, (rose("cdc_source_events_total"), changes)
    assert rose("cdc_source_transactions_total") >= len(txns), \
        (rose("cdc_source_transactions_total"), len(txns))
    assert rose("cdc_source_bytes_total") > 0
    assert rose("cdc_sink_flushes_total", **SINK) > 0
    durable = after.histogram("cdc_sink_commit_to_durable_seconds", **SINK)
    assert durable["count"] - before.histogram("cdc_sink_commit_to_durable_seconds",
                                               **SINK)["count"] >= changes, durable
    assert durable["sum"] > 0, durable
    flushes = after.histogram("cdc_sink_flush_duration_seconds", **SINK)
    assert flushes["count"] == after.value("cdc_sink_flushes_total", **SINK), \
        (flushes["count"], after.value("cdc_sink_flushes_total", **SINK))
    assert after.value("cdc_sink_lag_events", **SINK) >= 0
    assert value(after, "cdc_source_received_lsn") >= value(after, "cdc_source_confirmed_lsn") \
        or value(after, "cdc_source_lag_bytes") == 0
    assert value(after, "cdc_source_lag_bytes") == max(
        0, value(after, "cdc_source_received_lsn") - value(after, "cdc_source_confirmed_lsn"))
    assert after.value("cdc_sink_errors_total", **SINK) == 0
    h.wait_for(lambda: value(ep.metrics(), "cdc_source_lag_seconds") == 0, 30,
               "cdc_source_lag_seconds to return to 0 once caught up")
    caught = ep.metrics()
    assert (caught.value("cdc_sink_lag_events", **SINK), caught.value("cdc_sink_lag_seconds", **SINK),
            caught.value("cdc_sink_lag_bytes", **SINK)) == (0, 0, 0), "the sink is caught up"
    ctx.log("metrics: %d changes, events_total +%d, transactions_total +%d, confirmed %s"
            % (changes, rose("cdc_source_events_total"), rose("cdc_source_transactions_total"),
               h.int_to_lsn(int(value(after, "cdc_source_confirmed_lsn")))))

    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="obs")
    ctx.log("file: all %d changes exactly once, in commit order" % len(records))

    # cdc health: from the configs, from the platform file alone, from --url
    for args in (["health", cdc.pipeline_path] + cdc.platform_args(),
                 ["health"] + cdc.platform_args(),
                 ["health", "--url", ep.base + "/"]):
        r = cdc.command(args, timeout=30).expect_rc(0)
        out = r.stdout
        assert "obs" in out and "ready" in out and "jsonl" in out and "running" in out, \
            "`cdc %s` summary:\n%s" % (" ".join(args), out)
        assert not r.error_lines, r.describe()
    ctx.log("cdc health:\n      " + r.stdout.strip().replace("\n", "\n      "))

    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    assert not res.error_lines, res.describe()
    assert "event=http.listening" in res.stderr and "port=%d" % port in res.stderr, \
        "no http.listening log line naming the port"
    assert ep.get("/healthz")[0] == 0, "the health server still answers after exit"
    r = cdc.command(["health", "--url", ep.base], timeout=30)
    r.expect_rc(1)
    assert len(r.error_lines) == 1, "want one error line; " + r.describe()
    assert "127.0.0.1:%d" % port in r.error_lines[0], r.error_lines[0]


def test_slow_sink_is_named(ctx):
    """A file sink keeps up, a webhook sink whose receiver answers slowly does
    not: once the event log is full because of it, a log line names it (and
    not the file sink), again every 10 seconds while it lasts."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", "CREATE TABLE public.bulk (id int PRIMARY KEY, v text)")
    recv = h.Receiver(ctx).start()
    recv.control(delay=0.2, keep_raw=False, strip=["v"])
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.bulk"],
                                    [h.file_sink(jsonl),
                                     h.webhook_sink(recv.url(), "hook", max_in_flight=1,
                                                    batch_size=10)],
                                    pipeline_id="slow", slot="slow_slot", publication="slow_pub"),
                  h.platform_config(ctx.tmpdir("state"), max_buffered_bytes=1 << 20), cluster=cl)
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    h.wait_for(lambda: (cl.slot("slow_slot") or {}).get("active") or proc.poll() is not None,
               60, "cdc run to attach to its slot")
    cl.execute("src", "INSERT INTO public.bulk SELECT g, repeat('x', 200) FROM generate_series(1, 30000) g")
    first = h.wait_log_event(proc, "pipeline.slow_sink", 120)
    assert first["sink"] == "hook", first
    assert int(first["backlog_events"]) > int(first["others_max_backlog"]), first
    h.wait_log_event(proc, "pipeline.slow_sink", 60,
                     pred=lambda d: float(d.get("held_seconds", 0)) >= 9,
                     what="a second pipeline.slow_sink line")
    named = {d["sink"] for d in h.log_events(h.proc_stderr(proc), "pipeline.slow_sink")}
    assert named == {"hook"}, "named: %s" % named
    recv.control(normal=True)
    proc.terminate()
    proc.wait(120).expect_rc(0)


# --------------------------------------------------------------------------
# `cdc health` against a stub server with fixed answers


class _Stub(http.server.BaseHTTPRequestHandler):
    answers = {}

    def do_GET(self):  # noqa: N802
        status, body = self.answers.get(self.path, (404, "no"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _doc(ready, sink_status, reason=None, last_error=None):
    d = {
        "pipeline_id": "stubbed", "ready": ready,
        "source": {"state": "RUNNING" if ready else "CONNECTING", "confirmed_lsn": "0/16B3748",
                   "received_lsn": "0/16B3800", "events": 12, "transactions": 3, "reconnects": 0},
        "sinks": [{"sink_id": "lake", "type": "file", "status": sink_status, "backlog": 7,
                   "last_error": last_error, "events": 12, "errors": 2, "retries": 1,
                   "dlq_pending": 4}],
        "lag": {"bytes": 184, "seconds": 0.25},
    }
    if reason:
        d["reason"] = reason
    return json.dumps(d)


def test_health_command_exit_codes(ctx):
    answers = {
        "/ok/status": (200, _doc(True, "running")),
        "/bad/status": (200, _doc(False, "retrying", "sink lake is retrying", "connection refused")),
        "/err/status": (500, "oops"),
        "/junk/status": (200, "{not json"),
    }
    _Stub.answers = answers
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ctx.defer(srv.shutdown)
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    cdc = ctx.cdc("pipeline_id: x\n")

    r = cdc.command(["health", "--url", base + "/ok"], timeout=30).expect_rc(0)
    for word in ("stubbed", "ready", "RUNNING", "0/16B3748", "lake", "running", "backlog 7",
                 "dlq 4"):
        assert word in r.stdout, "summary lacks %r:\n%s" % (word, r.stdout)
    assert not r.error_lines, r.describe()

    r = cdc.command(["health", "--url", base + "/bad/status"], timeout=30).expect_rc(1)
    assert "retrying" in r.stdout and "connection refused" in r.stdout, r.stdout
    assert len(r.error_lines) == 1 and "not ready" in r.error_lines[0], r.describe()

    for path in ("/err", "/junk", "/missing"):
        r = cdc.command(["health", "--url", base + path], timeout=30).expect_rc(1)
        assert len(r.error_lines) == 1, "`cdc health --url %s`: want one error line; %s" % (
            path, r.describe())

    dead = h.free_port()
    r = cdc.command(["health", "--url", "http://127.0.0.1:%d" % dead], timeout=30).expect_rc(1)
    assert len(r.error_lines) == 1 and str(dead) in r.error_lines[0], r.describe()

    # usage and configuration errors
    cdc.command(["health", "a.yaml", "b.yaml"], timeout=30).expect_rc(2)
    cdc.command(["health", "--bogus"], timeout=30).expect_rc(2)
    plat = ctx.tmpdir("plat") + "/platform.yaml"
    with open(plat, "w") as f:
        f.write("health_port: 0\n")
    r = cdc.command(["health", "--platform-config", plat], timeout=30).expect_rc(2)
    assert len(r.error_lines) == 1 and "--url" in r.error_lines[0], r.describe()
    with open(plat, "w") as f:
        f.write("health_prot: 8080\n")
    r = cdc.command(["health", "--platform-config", plat], timeout=30).expect_rc(2)
    assert any("health_prot" in l for l in r.error_lines), r.describe()
    with open(plat, "w") as f:
        f.write("health_port: %d\n" % dead)
    r = cdc.command(["health", "--platform-config", plat], timeout=30).expect_rc(1)
    assert len(r.error_lines) == 1 and str(dead) in r.error_lines[0], r.describe()
    cdc.command(["health", "--help"], timeout=30).expect_rc(0)
