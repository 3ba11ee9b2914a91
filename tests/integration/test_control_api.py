"""The control API of `cdc run` (/v1/...) and the verbs that use it.

With control_token set, every control endpoint refuses a request without the
token (401) or with a wrong one (403), and does its job with it: the status
document, pause and resume (also under the deprecated /control/ names, which
say so in a Deprecation header), per-sink lag that returns to zero once
caught up, the schema history, an incremental snapshot queued over HTTP whose rows arrive, the
dead-letter listing with each entry's table and key, and a replay in the
background that delivers the entries to a real webhook receiver and resolves
them.  The webhook sink's HTTP figures appear in /metrics (status counts, a
request-duration histogram, delivered batches as flushes).  Without a token
the control API answers on loopback (and `cdc status`, `cdc pause`, `cdc
resume` drive it), and `cdc validate` and `cdc run` refuse a non-loopback
health_bind without one, naming both keys, before anything is created on the
source.  `cdc status`, `cdc pause`, `cdc resume`, `cdc health` and `cdc dlq
list` work with the database password's variable unset; a missing token
variable is named.  The token never appears in any output."""

import json
import os
import secrets
import time

import harness as h

TOKEN_PREFIX = "ctl-"

ITEMS_DDL = """
CREATE TABLE public.items (id int PRIMARY KEY, name text, price numeric(10,2),
                           active boolean, created_at timestamptz, tags text[]);
INSERT INTO public.items SELECT g, 'item ' || g, g * 1.5, g % 2 = 0, now(), ARRAY['a']
  FROM generate_series(1, 40) g;
"""

# Every control endpoint, with the method it takes.
CONTROL = [("GET", "/v1/status"), ("POST", "/v1/pause"), ("POST", "/v1/resume"),
           ("GET", "/v1/lag"), ("GET", "/v1/snapshots"), ("POST", "/v1/snapshots?tables=public.items"),
           ("GET", "/v1/dlq"), ("POST", "/v1/dlq/replay"), ("GET", "/v1/dlq/replay"),
           ("GET", "/v1/schema"),
           ("POST", "/control/pause"), ("POST", "/control/resume"), ("GET", "/control/status")]


def _items_cluster(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", ITEMS_DDL)
    return cl


def _sink_labels(pipeline, sink, typ):
    return {"pipeline": pipeline, "sink": sink, "type": typ}


def test_every_control_endpoint_with_a_token(ctx):
    cl = _items_cluster(ctx)
    recv = h.Receiver(ctx).start()
    token = TOKEN_PREFIX + secrets.token_hex(16)
    state = ctx.tmpdir("state")
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    port = h.free_port()
    pid = "ctl"
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"],
                                    [h.file_sink(jsonl), h.webhook_sink(recv.url(), "hook")],
                                    pipeline_id=pid, slot="ctl_slot", publication="ctl_pub"),
                  h.platform_config(state, health_enabled=True, health_port=port,
                                    control_token=token),
                  cluster=cl, secrets_=[token])
    ep = h.Endpoint(port, token)
    proc = cdc.start()
    h.wait_http(proc, ep, "/readyz", 200, 60, "/readyz to answer 200")

    # without the token: 401 (with a challenge), with a wrong one: 403
    for method, path in CONTROL:
        for tok, want in ((None, 401), ("wrong-" + secrets.token_hex(4), 403), (token + "x", 403)):
            st, hdr, body = h.request(method, ep.base + path, tok)
            assert st == want, "%s %s with token %s answered %d, want %d: %s" % (
                method, path, "none" if tok is None else "wrong", st, want, body[:200])
            assert token not in body
            if want == 401:
                assert hdr.get("www-authenticate", "").startswith("Bearer"), (path, hdr)
    assert ep.status()["source"]["state"] == "RUNNING", "a refused request paused the pipeline"
    st, _, _ = h.request("GET", ep.base + "/v1/nothing", token)
    assert st == 404
    st, hdr, _ = h.request("GET", ep.base + "/v1/pause", token)
    assert st == 405 and hdr.get("allow") == "POST", (st, hdr)

    # status: the same document as /status
    doc = ep.control("GET", "/v1/status")
    assert doc["pipeline_id"] == pid and doc["ready"] is True, doc
    assert [s["sink_id"] for s in doc["sinks"]] == ["jsonl", "hook"], doc

    # changes flow; lag returns to zero
    cl.execute("src", "UPDATE public.items SET name = name || '!' WHERE id <= 10")
    h.wait_for(lambda: h.count_lines(jsonl) >= 10, 60, "10 updates in the file")
    # the schema history: the table's first version
    hist = ep.control("GET", "/v1/schema")
    assert [(v["table"], v["version"]) for v in hist["versions"]] == [("public.items", 1)], hist
    assert ep.control("GET", "/v1/schema?table=public.nope") == {"count": 0, "versions": []}
    h.wait_for(lambda: len(h.webhook_deliveries(recv.records())) >= 10, 60, "10 webhook deliveries")

    def caught_up():
        lag = ep.control("GET", "/v1/lag")
        return all(s["lag"] == {"events": 0, "seconds": 0, "bytes": 0} and s["backlog"] == 0
                   for s in lag["sinks"])
    h.wait_for(caught_up, 30, "every sink's lag to return to 0")
    lag = ep.control("GET", "/v1/lag")
    assert lag["pipeline_id"] == pid and [s["sink_id"] for s in lag["sinks"]] == ["jsonl", "hook"], lag

    # pause and resume, under /v1 and the deprecated names
    ans = ep.control("POST", "/v1/pause")
    assert ans["paused"] is True and ans["changed"] is True, ans
    h.wait_for(lambda: ep.status()["source"]["state"] == "PAUSED", 10, "the source to pause")
    st, hdr, body = h.request("GET", ep.base + "/control/status", token)
    assert st == 200 and json.loads(body)["source"]["state"] == "PAUSED", body
    assert hdr.get("deprecation") == "true" and "/v1/status" in hdr.get("link", ""), hdr
    assert ep.control("POST", "/control/pause")["changed"] is False
    lines = h.count_lines(jsonl)
    cl.execute("src", "UPDATE public.items SET name = name || '?' WHERE id = 1")
    time.sleep(2)  # nothing may arrive while paused
    assert h.count_lines(jsonl) == lines, "delivery went on while paused"
    ans = ep.control("POST", "/v1/resume")
    assert ans["paused"] is False and ans["changed"] is True, ans
    h.wait_for(lambda: h.count_lines(jsonl) > lines, 30, "delivery to resume")

    # an incremental snapshot queued over HTTP
    st, _, body = h.request("POST", ep.base + "/v1/snapshots?tables=public.nope", token)
    assert st == 400 and "public.nope" in body, (st, body)
    st, _, body = h.request("POST", ep.base + "/v1/snapshots", token)
    assert st == 400, (st, body)
    ans = ep.control("POST", "/v1/snapshots?tables=public.items", want=202)
    assert ans == {"queued": ["public.items"]}, ans

    def snapshot_rows():
        return {r["after"]["id"] for r in h.read_jsonl(jsonl) if r["op"] == "r"}
    h.wait_for(lambda: snapshot_rows() == set(range(1, 41)), 90,
               "the 40 rows of public.items as snapshot rows")
    h.wait_for(lambda: not ep.control("GET", "/v1/snapshots")["snapshot"]["running"], 30,
               "the incremental snapshot to finish")
    snap = ep.control("GET", "/v1/snapshots")
    assert snap["can_queue"] is True, snap
    s = snap["snapshot"]
    assert (s["kind"], s["tables_done"], s["tables_total"], s["rows_read"]) == \
        ("incremental", 1, 1, 40), snap
    # the same with a JSON body
    ans = ep.control("POST", "/v1/snapshots", want=400)  # no tables
    st, _, body = ep.post("/v1/snapshots", token, body=b'{"tables": ["public.items"]}',
                          headers={"Content-Type": "application/json"})
    assert st == 202 and json.loads(body) == {"queued": ["public.items"]}, (st, body)

    # dead letters: listed with table and key, replayed in the background
    db = h.state_db_path(state, pid)
    seeded = h.dlq_seed(db, "hook", 3, "--pipeline", pid, "--db", "src", "--first-id", 500)
    listing = ep.control("GET", "/v1/dlq")
    assert listing["count"] == 3 and listing["truncated"] is False, listing
    for got, want in zip(listing["entries"], seeded):
        assert (got["id"], got["sink_id"], got["table"], got["key"], got["status"]) == \
            (want["id"], "hook", "public.items", want["key"], "pending"), (got, want)
    assert ep.control("GET", "/v1/dlq?sink=hook&limit=2")["truncated"] is True
    assert ep.control("GET", "/v1/dlq?sink=jsonl")["count"] == 0
    st, _, _ = h.request("POST", ep.base + "/v1/dlq/replay?sink=nope", token)
    assert st == 400
    before = len(recv.records())
    ans = ep.control("POST", "/v1/dlq/replay?sink=hook", want=202)
    assert ans["replay"]["entries"] == 3, ans
    h.wait_for(lambda: not ep.control("GET", "/v1/dlq/replay")["replay"]["running"], 60,
               "the replay to finish")
    done = ep.control("GET", "/v1/dlq/replay")["replay"]
    assert (done["done"], done["delivered"], done["pending"], done["errors"]) == (3, 3, 0, []), done
    replayed = [env for _, env in h.webhook_deliveries(recv.records()[before:])]
    for e in seeded:
        assert e["envelope"] in replayed, "entry %d was not delivered to the receiver" % e["id"]
    assert ep.control("GET", "/v1/dlq")["count"] == 0
    resolved = ep.control("GET", "/v1/dlq?all=true")
    assert [e["status"] for e in resolved["entries"]] == ["resolved"] * 3, resolved

    # the webhook's HTTP figures
    m = ep.metrics()
    hook = _sink_labels(pid, "hook", "webhook")
    assert m.value("cdc_sink_http_responses_total", code="200", **hook) > 0
    assert m.histogram("cdc_sink_http_request_duration_seconds", **hook)["count"] > 0
    assert m.value("cdc_sink_flushes_total", **hook) > 0, "delivered batches are the webhook's flushes"
    assert m.histogram("cdc_sink_commit_to_durable_seconds", **hook)["count"] > 0
    assert "cdc_sink_http_request_duration_seconds" not in {
        n for n, l in m.samples if dict(l).get("sink") == "jsonl"}, "a file sink has no HTTP requests"

    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    assert not res.error_lines, res.describe()
    assert "control=token" in res.stderr, "http.listening does not say the token is needed"


def _no_token_setup(ctx, bind="127.0.0.1", token_var=None):
    cl = _items_cluster(ctx)
    state = ctx.tmpdir("state")
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    port = h.free_port()
    extra = {"health_enabled": True, "health_port": port, "health_bind": bind}
    if token_var:
        extra["control_token"] = "${%s}" % token_var
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [h.file_sink(jsonl)], pipeline_id="open",
                                    slot="open_slot", publication="open_pub"),
                  h.platform_config(state, **extra), cluster=cl)
    return cl, cdc, port, state, jsonl


def test_control_api_on_loopback_without_a_token(ctx):
    cl, cdc, port, _, jsonl = _no_token_setup(ctx)
    ep = h.Endpoint(port)
    proc = cdc.start()
    h.wait_http(proc, ep, "/readyz", 200, 60, "/readyz to answer 200")
    args = [cdc.pipeline_path] + cdc.platform_args()
    r = cdc.command(["pause"] + args, timeout=30).expect_rc(0)
    assert "pipeline open paused" in r.stdout, r.describe()
    # the driver takes the pause at its next poll
    h.wait_for(lambda: ep.status()["source"]["state"] == "PAUSED", 10, "/v1/status to say PAUSED")
    r = cdc.command(["pause"] + args, timeout=30).expect_rc(0)
    assert "already paused" in r.stdout, r.describe()
    r = cdc.command(["status"] + args, timeout=30).expect_rc(0)
    assert "pipeline open: ready, source PAUSED" in r.stdout, r.describe()
    r = cdc.command(["resume"] + args, timeout=30).expect_rc(0)
    assert "pipeline open resumed" in r.stdout, r.describe()
    assert ep.control("POST", "/v1/pause")["paused"] is True
    assert ep.control("POST", "/v1/resume")["paused"] is False

    # the driver takes the resume at its next poll, as it took the pause
    def running():
        r = cdc.command(["status", "--url", ep.base, "--json"], timeout=30).expect_rc(0)
        return json.loads(r.stdout)["source"]["state"] == "RUNNING"

    h.wait_for(running, 10, "`cdc status --url … --json` to say RUNNING")
    r = cdc.command(["status", "--url", "http://127.0.0.1:%d" % h.free_port()] + args, timeout=30)
    r.expect_rc(1)
    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    assert "control=loopback" in res.stderr, res.describe()
    # nothing runs now: status says so and shows the local state
    r = cdc.command(["status"] + args, timeout=30).expect_rc(1)
    assert "pipeline open: not running" in r.stdout and "jsonl" in r.stdout, r.describe()
    assert len(r.error_lines) == 1 and str(port) in r.error_lines[0], r.describe()


def test_open_bind_without_a_token_is_refused(ctx):
    cl, cdc, port, state, _ = _no_token_setup(ctx, bind="0.0.0.0")
    for verb in ("validate", "run"):
        r = cdc.command([verb, cdc.pipeline_path] + cdc.platform_args(), timeout=60).expect_rc(2)
        errs = [l for l in r.error_lines if "health_bind" in l]
        assert len(errs) == 1, "`cdc %s`: %s" % (verb, r.describe())
        assert cdc.platform_path in errs[0] and "0.0.0.0" in errs[0] and "control_token" in errs[0], errs
    with cl.connect("src").cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_replication_slots")
        assert cur.fetchone()[0] == 0, "cdc run created a slot before refusing"
    # with a token it validates
    with open(cdc.platform_path, "a") as f:
        f.write("control_token: t0k3n-%s\n" % secrets.token_hex(4))
    cdc.validate().expect_rc(0)


def _command_env(cdc, args, unset=(), timeout=60):
    """`cdc ARGS` with some variables missing from its environment."""
    saved = cdc.env
    cdc.env = {k: v for k, v in saved.items() if k not in unset}
    try:
        return cdc.command(args, timeout)
    finally:
        cdc.env = saved


def test_operator_verbs_need_no_passwords(ctx):
    token = TOKEN_PREFIX + secrets.token_hex(16)
    cl, cdc, port, state, _ = _no_token_setup(ctx, token_var="CDC_TEST_TOKEN")
    cdc.env["CDC_TEST_TOKEN"] = token
    cdc.secrets.append(token)
    ep = h.Endpoint(port, token)
    proc = cdc.start()
    h.wait_http(proc, ep, "/readyz", 200, 60, "/readyz to answer 200")
    h.dlq_seed(h.state_db_path(state, "open"), "jsonl", 2, "--pipeline", "open", "--db", "src")
    args = [cdc.pipeline_path] + cdc.platform_args()
    # the database password's variable is unset: these never connect to it
    for verb in (["status"], ["pause"], ["resume"], ["health"], ["dlq", "list"]):
        r = _command_env(cdc, verb + args, unset=("PGPW",)).expect_rc(0)
        assert not r.error_lines, r.describe()
    r = _command_env(cdc, ["dlq", "list"] + args + ["--json"], unset=("PGPW",)).expect_rc(0)
    assert len(r.stdout.splitlines()) == 2, r.stdout
    # replay delivers: it loads the configuration strictly
    r = _command_env(cdc, ["dlq", "replay"] + args, unset=("PGPW",)).expect_rc(2)
    assert any("PGPW" in l for l in r.error_lines), r.describe()
    # without the token's variable: status reads the open /status, pause is
    # refused, naming the variable
    r = _command_env(cdc, ["status"] + args, unset=("PGPW", "CDC_TEST_TOKEN")).expect_rc(0)
    assert "pipeline open: ready" in r.stdout, r.describe()
    r = _command_env(cdc, ["pause"] + args, unset=("PGPW", "CDC_TEST_TOKEN")).expect_rc(1)
    assert len(r.error_lines) == 1 and "CDC_TEST_TOKEN" in r.error_lines[0] \
        and "401" in r.error_lines[0], r.describe()
    assert ep.status()["source"]["state"] == "RUNNING"
    proc.terminate()
    proc.wait(60).expect_rc(0)
    assert os.path.exists(h.state_db_path(state, "open"))
