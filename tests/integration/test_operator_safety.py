"""Safety under operators' hands: what ordinary actions and situations around
cdc must not break.

- A second `cdc run` of a running pipeline is refused before it opens
  anything, naming the running one's pid, and the first run's file output
  stays whole under a load of large rows; two runs started together: exactly
  one proceeds; `undeploy` and `deploy` are refused while a run owns the
  pipeline, read-only verbs are not, and `dlq replay` beside a running
  pipeline leaves a file sink's entries pending.
- Webhook Idempotency-Keys identify changes: snapshot rows of two tables
  with the same ids and chunk layout get different keys, and a row keeps its
  key when a resumed snapshot (kill -9 halfway) or a dead-letter replay
  sends it again.
- A full disk under the file sink: the mirror sink keeps up, the file sink
  asks for at most REWIND_BUDGET rewinds in a row and then waits detached;
  once space is back it catches up; both equal the source exactly.
- `cdc validate` and `cdc health` show URLs without their credentials.
- Ctrl-C with a dead webhook: the stop is held at most
  shutdown_timeout_seconds, logged every few seconds naming the sink, exit 1;
  a second Ctrl-C exits 130; an unreachable sink is logged at warn.
- 64 idle or slow clients on the health port do not delay /healthz."""

import collections
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import harness as h

REWIND_BUDGET = 3  # src/pipeline/runner.h


def _lock_refusal(res, holder_pid, command="run"):
    """res (a refused cdc) must exit 1 with one error line naming the holder."""
    res.expect_rc(1)
    want = "is in use by `cdc %s` (pid %d" % (command, holder_pid)
    assert any(want in l for l in res.error_lines), \
        "the refusal does not name the holder (%r); %s" % (want, res.describe())


def _opened_nothing(res):
    """A refused run logs no sink, source or snapshot event: it opened nothing."""
    touched = [d["event"] for d in h.log_events(res.stderr)
               if d.get("event", "").split(".")[0] in ("sink", "source", "snapshot", "http")]
    assert not touched, "the refused run got as far as %s; %s" % (touched, res.describe())


def _wait_active(cl, slot, proc, timeout=60):
    h.wait_for(lambda: (cl.slot(slot) or {}).get("active") or proc.poll() is not None, timeout,
               "cdc run to attach to slot %s" % slot)
    if proc.poll() is not None:
        raise AssertionError("cdc run exited early; " + proc.result().describe())


def _seed_bin():
    path = os.path.join(os.path.dirname(h.cdc_bin()), "tests", "dlq_seed")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise h.CdcNotFound("helper not found: %s (build it with `make helpers`)" % path)
    return path


# --------------------------------------------------------------------------
# item 1: one owner per pipeline


def test_second_run_is_refused_before_touching_anything(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", "CREATE TABLE public.big (id int PRIMARY KEY, payload text)")
    jsonl = os.path.join(ctx.tmpdir("out"), "big.jsonl")
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.big"], [h.file_sink(jsonl)], pipeline_id="one",
                                    slot="one_slot", publication="one_pub"),
                  h.platform_config(state), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    first = cdc.start()
    _wait_active(cl, "one_slot", first)

    # Large rows, one per transaction: the file sink writes each line in
    # several pieces, so a second opener would see a torn tail most of the time.
    nrows = 60
    done = threading.Event()

    def load():
        conn = cl.connect("src")
        with conn.cursor() as cur:
            for i in range(1, nrows + 1):
                cur.execute("INSERT INTO public.big SELECT %s, string_agg(md5(random()::text "
                            "|| g::text), '') FROM generate_series(1, 24000) g", (i,))
        conn.close()
        done.set()

    t = threading.Thread(target=load, daemon=True)
    t.start()
    attempts = 0
    while not done.is_set() or attempts < 3:
        res = cdc.command(["run", cdc.pipeline_path] + cdc.platform_args(), timeout=60)
        _lock_refusal(res, first.pid)
        _opened_nothing(res)
        attempts += 1
        if attempts >= 12:
            break
    t.join(300)
    assert first.poll() is None, "the first run died: " + first.result().describe()
    stop = cl.current_lsn("src")
    first.terminate()
    first.wait(120).expect_rc(0)
    cdc.run_to(stop, 300)
    txns = oracle.read(["public.big"], stop)
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="one")
    sizes = [len(r["after"]["payload"]) for r in records]
    assert len(records) == nrows and min(sizes) == max(sizes) == 24000 * 32, \
        "rows or payloads cut: %d rows, payload sizes %s..%s" % (len(records), min(sizes),
                                                                  max(sizes))
    ctx.log("%d second runs refused while the first wrote %d rows of 768 kB; the file holds "
            "every row once, whole" % (attempts, nrows))


def test_runs_started_together_exactly_one_proceeds(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    nrows = 20000
    cl.execute("src", "CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t "
                      "SELECT g, md5(g::text) FROM generate_series(1, %d) g" % nrows)
    jsonl = os.path.join(ctx.tmpdir("out"), "t.jsonl")
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.t"], [h.file_sink(jsonl)], pipeline_id="race",
                                    slot="race_slot", publication="race_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=2000),
                  h.platform_config(state), cluster=cl)
    a, b = cdc.start(), cdc.start()  # back to back: both race for the pipeline
    h.wait_for(lambda: a.poll() is not None or b.poll() is not None, 120,
               "one of the two runs to give up")
    loser, winner = (a, b) if a.poll() is not None else (b, a)
    res = loser.result()
    _lock_refusal(res, winner.pid)
    _opened_nothing(res)
    h.wait_log_event(winner, "snapshot.done", 240)
    winner.terminate()
    winner.wait(120).expect_rc(0)
    ids = collections.Counter(r["after"]["id"] for r in h.read_jsonl(jsonl) if r["op"] == "r")
    twice = [k for k, n in ids.items() if n > 1]
    assert not twice, "%d rows snapshotted more than once, e.g. %s" % (len(twice), twice[:5])
    assert set(ids) == set(range(1, nrows + 1)), "snapshot rows missing: %d of %d" % (
        len(ids), nrows)
    ctx.log("two runs started together: pid %d refused, pid %d snapshotted %d rows once each"
            % (loser.pid, winner.pid, nrows))


def test_undeploy_and_deploy_refused_while_running(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    nrows = 300000
    cl.execute("src", "CREATE TABLE public.items (id int PRIMARY KEY, name text, price "
                      "numeric(10,2), active boolean, created_at timestamptz, tags text[]); "
                      "INSERT INTO public.items SELECT g, md5(g::text), g / 100.0, g %% 2 = 0, "
                      "now(), '{a,b}' FROM generate_series(1, %d) g" % nrows)
    out = ctx.tmpdir("out")
    jsonl = os.path.join(out, "items.jsonl")
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [h.file_sink(jsonl)],
                                    pipeline_id="own", slot="own_slot", publication="own_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=5000),
                  h.platform_config(state), cluster=cl)
    proc = cdc.start()
    pl = cdc.platform_args()

    # during the initial snapshot (the slot is not streaming yet)
    h.wait_log_event(proc, "snapshot.started", 120)
    _lock_refusal(cdc.undeploy(yes=True), proc.pid)
    assert not h.log_events(h.proc_stderr(proc), "snapshot.done"), \
        "the snapshot finished before undeploy was tried: make the table bigger"
    assert cl.slot("own_slot") is not None, "undeploy dropped the slot under a running snapshot"
    _lock_refusal(cdc.deploy(), proc.pid)
    h.wait_log_event(proc, "snapshot.done", 300)
    _wait_active(cl, "own_slot", proc)
    _lock_refusal(cdc.undeploy(yes=True), proc.pid)
    # read-only verbs need no lock
    cdc.validate().expect_rc(0)
    cdc.command(["dlq", "list", cdc.pipeline_path] + pl).expect_rc(0)

    # a dead-lettered change for the file sink: not replayed beside the run
    db_path = h.state_db_path(state, "own")
    seeded = subprocess.run([_seed_bin(), db_path, "jsonl", "1", "--pipeline", "own", "--db",
                             "src", "--first-id", "501", "--ops", "insert"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    before = h.count_lines(jsonl)
    r = cdc.command(["dlq", "replay", cdc.pipeline_path] + pl, timeout=120)
    r.expect_rc(1)
    assert "(pid %d" % proc.pid in r.stderr and "stays" in r.stderr, r.describe()
    assert h.count_lines(jsonl) == before, "replay wrote into the running pipeline's file"
    assert [e["status"] for e in h.dlq_entries(cdc)] == ["pending"]
    assert before == nrows, "the snapshot wrote %d lines for %d rows" % (before, nrows)
    # a snapshot request needs no lock (the running pipeline serves it) and
    # says who holds the pipeline
    r = cdc.command(["snapshot", cdc.pipeline_path, "--table", "public.items"] + pl)
    r.expect_rc(0)
    assert "`cdc run` (pid %d" % proc.pid in r.stdout, r.describe()

    proc.terminate()
    proc.wait(60).expect_rc(0)
    h.dlq_replay(cdc).expect_rc(0)
    inserts = [rec for rec in h.read_jsonl(jsonl) if rec["op"] == "c"]
    assert [rec["after"]["id"] for rec in inserts] == [501], \
        "the replay after the stop delivered %s" % [rec["after"]["id"] for rec in inserts]
    cdc.undeploy(yes=True).expect_rc(0)
    assert cl.slot("own_slot") is None, "slot still there after undeploy of a stopped pipeline"
    ctx.log("undeploy, deploy and a file replay refused while pid %d ran; all fine once stopped"
            % proc.pid)


# --------------------------------------------------------------------------
# item 2: idempotency keys


def test_webhook_keys_unique_and_stable_across_resume_and_replay(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    nrows = 3000
    for t in ("a", "b"):
        cl.execute("src", "CREATE TABLE public.%s (id int PRIMARY KEY, v text); INSERT INTO "
                          "public.%s SELECT g, md5(g::text) FROM generate_series(1, %d) g"
                   % (t, t, nrows))
    recv = h.Receiver(ctx).start()
    recv.control(delay=0.01, reject={"key": 7, "table": "public.a"})
    state = ctx.tmpdir("state")
    pid = "keys"
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.a", "public.b"],
                                    [h.webhook_sink(recv.url("/hook"), sink_id="hook")],
                                    pipeline_id=pid, slot="keys_slot", publication="keys_pub",
                                    snapshot_mode="initial", snapshot_chunk_rows=150,
                                    snapshot_parallelism=2),
                  h.platform_config(state), cluster=cl)
    proc = cdc.start()
    snap_id = h.wait_log_event(proc, "snapshot.started", 120)["id"]
    h.wait_for(lambda: len(h.snapshot_done_chunks(state, pid, snap_id, "public.a")) >= 3
               or proc.poll() is not None, 180, "3 chunks of public.a done", interval=0.02)
    assert not h.log_events(h.proc_stderr(proc), "snapshot.done"), \
        "the snapshot finished before the kill: make the tables bigger"
    proc.kill9()
    cl.wait_slot_inactive("keys_slot")
    first_run = len(recv.records())
    proc = cdc.start()
    h.wait_log_event(proc, "snapshot.done", 300)
    proc.terminate()
    proc.wait(120).expect_rc(0)

    # the refused row, dead-lettered (once per read of its chunk), replayed
    # once the receiver takes it
    pending = h.dlq_entries(cdc, sink="hook")
    assert pending, "public.a id 7 was refused but not dead-lettered"
    recv.control(normal=True)
    before = len(recv.records())
    h.dlq_replay(cdc, sink="hook").expect_rc(0)
    recs = recv.records()
    assert len(recs) == before + len(pending), "the replay of %d entries sent %d requests" % (
        len(pending), len(recs) - before)

    keys_of = collections.defaultdict(set)  # (table, id) -> keys it was sent under
    delivered = collections.Counter()
    for rec in recs:
        env = rec["body"]
        assert isinstance(env, dict) and env["op"] == "r", "request %d: %s" % (
            rec["seq"], h.short(rec.get("raw"), 200))
        row = (h.rec_table(env), env["after"]["id"])
        keys_of[row].add(rec["headers"]["idempotency-key"])
        if rec["status"] is not None and 200 <= rec["status"] < 300:
            delivered[row] += 1
    several = {r: k for r, k in keys_of.items() if len(k) > 1}
    assert not several, "%d rows were sent under several keys, e.g. %s" % (
        len(several), list(several.items())[:3])
    owner = {}
    for row, ks in keys_of.items():
        k = next(iter(ks))
        assert k not in owner, "rows %s and %s share the key %s" % (owner[k], row, k)
        owner[k] = row
    want = {(t, i) for t in ("public.a", "public.b") for i in range(1, nrows + 1)}
    assert set(delivered) == want, "%d rows never delivered, e.g. %s" % (
        len(want - set(delivered)), sorted(want - set(delivered))[:5])
    again = [r for r, n in delivered.items() if n > 1]
    assert again, ("no row was sent twice: the kill came at a chunk boundary, so the resume "
                   "proved nothing (%d requests before the kill)" % first_run)
    refused = [r for r in recs if r["status"] == 400]
    assert refused and all(r["headers"]["idempotency-key"] ==
                           recs[-1]["headers"]["idempotency-key"] for r in refused), \
        "the replay of public.a id 7 carries another key than its refused attempts"
    ctx.log("%d rows of 2 tables: %d distinct keys, one per row; %d rows re-sent after the "
            "resume under their first key; the replayed row kept its key"
            % (len(want), len(owner), len(again)))


# --------------------------------------------------------------------------
# item 8: a full disk under the file sink


def _rewinds(text):
    return [d for d in h.log_events(text, "sink.rewind_requested") if d.get("sink") == "jsonl"]


def test_disk_full_file_sink_does_not_stall_the_mirror(ctx):
    small = ctx.tmpdir("small")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", small],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, "cannot mount a small tmpfs (the test needs root): " + r.stdout
    ctx.defer(lambda: subprocess.run(["umount", "-l", small]))
    filler = os.path.join(small, "filler")
    st = os.statvfs(small)
    with open(filler, "wb") as f:
        f.write(b"\0" * (st.f_bavail * st.f_frsize - (2 << 20)))  # 2 MiB left

    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.items (id int PRIMARY KEY, payload text)")
    jsonl = os.path.join(small, "items.jsonl")
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"],
                                    [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id="full", slot="full_slot", publication="full_pub"),
                  h.platform_config(state, retry={"initial_wait_seconds": 0.2,
                                                  "max_wait_seconds": 2, "multiplier": 2,
                                                  "jitter": False}),
                  cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    src = cl.connect("src")
    nrows = 20000
    with src.cursor() as cur:
        for lo in range(1, nrows + 1, 1000):
            cur.execute("INSERT INTO public.items SELECT g, repeat(md5(g::text), 5) FROM "
                        "generate_series(%s, %s) g", (lo, lo + 999))
    stop = cl.current_lsn("src")
    proc = cdc.start(stop_at_lsn=stop)
    mirror = cl.connect("mirror")

    def mirror_rows():
        with mirror.cursor() as cur:
            cur.execute("SELECT to_regclass('public.items') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT count(*) FROM public.items")
            return cur.fetchone()[0]

    t0 = time.monotonic()
    h.wait_log_event(proc, "sink.detached", 180, lambda d: d.get("sink") == "jsonl")
    h.wait_for(lambda: mirror_rows() == nrows or proc.poll() is not None, 300,
               "the mirror to receive all %d rows while the file sink is stuck" % nrows)
    caught_up = time.monotonic() - t0
    text = h.proc_stderr(proc)
    while_full = _rewinds(text)
    failures = [d for d in h.log_events(text, "sink.failed") if d.get("sink") == "jsonl"]
    assert failures and "No space left" in failures[0].get("error", ""), \
        "the file sink never failed with a full disk:\n" + h.tail(text)
    assert len(while_full) <= REWIND_BUDGET, \
        "%d rewinds while the disk was full (budget %d)" % (len(while_full), REWIND_BUDGET)
    assert proc.poll() is None, "cdc exited while the disk was full; " + proc.result().describe()
    ctx.log("disk full: mirror had all %d rows %.1f s after start; file sink failed %d times, "
            "asked for %d rewinds, then waited detached" % (nrows, caught_up, len(failures),
                                                            len(while_full)))

    os.unlink(filler)
    res = proc.wait(300)
    res.expect_rc(0)
    total = _rewinds(res.stderr)
    assert len(total) <= REWIND_BUDGET + 2, "%d rewinds in all (budget %d, then one when ready)" % (
        len(total), REWIND_BUDGET)
    txns = oracle.read(["public.items"], stop)
    h.check_jsonl_against_oracle(h.read_jsonl(jsonl), txns, pipeline_id="full")
    h.compare_tables(src, mirror, "public.items")
    ctx.log("space back: the file caught up; %d rewinds in all; file and mirror equal the "
            "source" % len(total))


# --------------------------------------------------------------------------
# item 11: credentials never printed


def test_validate_and_health_redact_credentials(ctx):
    pw, token = "Hook-Pa55word", "T0ken-in-query"
    state = ctx.tmpdir("state")
    url = "https://alice:%s@hooks.example.com:8443/in?token=%s&team=data" % (pw, token)
    pipeline = {
        "pipeline_id": "red",
        "source": {"host": "127.0.0.1", "port": 1, "database": "shop", "username": "cdc",
                   "password": "Src-pw-9", "tables": ["public.items"]},
        "sinks": [h.webhook_sink(url, sink_id="hook")],
    }
    cdc = ctx.cdc(pipeline, h.platform_config(state), secrets_=[pw, token, "alice", "Src-pw-9"])
    res = cdc.validate().expect_rc(0)  # the harness fails the test if a secret is printed
    assert "https://***@hooks.example.com:8443/in?token=***&team=***" in res.stdout, res.stdout
    bad = "http://alice:%s@127.0.0.1:%d/status?token=%s" % (pw, h.free_port(), token)
    r = cdc.command(["health", "--url", bad])
    r.expect_rc(1)
    assert "http://***@127.0.0.1" in r.stderr, r.describe()
    ctx.log("validate: %s" % [l for l in res.stdout.splitlines() if "hook" in l][0].strip())


# --------------------------------------------------------------------------
# item 12: stopping with a dead sink, unreachable sinks, the health port


def _dead_hook_cdc(ctx, cl, name, timeout_s):
    jsonl = os.path.join(ctx.tmpdir("out"), "x.jsonl")
    pw = "Dead-hook-pw"
    dead = "http://u:%s@127.0.0.1:%d/hook" % (pw, h.free_port())  # nobody listens
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.t"], [h.file_sink(jsonl),
                                                       h.webhook_sink(dead, sink_id="hook")],
                                    pipeline_id=name, slot=name + "_slot",
                                    publication=name + "_pub"),
                  h.platform_config(ctx.tmpdir("state"), shutdown_timeout_seconds=timeout_s,
                                    retry={"initial_wait_seconds": 0.2, "max_wait_seconds": 1}),
                  cluster=cl, secrets_=[pw])
    cdc.deploy().expect_rc(0)
    return cdc


def _wait_unreachable_warning(proc):
    return h.wait_log_event(proc, "sink.retry", 120,
                            lambda d: d.get("sink") == "hook" and d.get("class") == "unreachable",
                            "the dead webhook's retry to be logged")


def test_ctrl_c_with_a_dead_sink(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", "CREATE TABLE public.t (id int PRIMARY KEY)")
    timeout_s = 8
    cdc = _dead_hook_cdc(ctx, cl, "dead", timeout_s)
    cl.execute("src", "INSERT INTO public.t SELECT generate_series(1, 50)")
    proc = cdc.start()
    d = _wait_unreachable_warning(proc)
    assert d.get("level") == "warn", "an unreachable sink is logged at %s: %s" % (
        d.get("level"), d)
    t0 = time.monotonic()
    proc.send(signal.SIGINT)
    res = proc.wait(120)
    took = time.monotonic() - t0
    res.expect_rc(1)
    assert any("shutdown_timeout_seconds" in l for l in res.error_lines), res.describe()
    waiting = h.log_events(res.stderr, "run.stop_waiting")
    assert len(waiting) >= 2 and all(w.get("sink") == "hook" and w.get("waiting_for")
                                     for w in waiting), \
        "the stop did not say every few seconds which sink holds it: %s\n%s" % (
            waiting, h.tail(res.stderr))
    ctx.log("Ctrl-C with a dead webhook: exit 1 after %.1f s (shutdown_timeout_seconds %d), "
            "%d stop_waiting lines naming sink=hook" % (took, timeout_s, len(waiting)))

    proc = cdc.start()
    _wait_unreachable_warning(proc)
    proc.send(signal.SIGINT)
    h.wait_log_event(proc, "run.stopping", 30)
    t0 = time.monotonic()
    proc.send(signal.SIGINT)
    res = proc.wait(30)
    res.expect_rc(130)
    ctx.log("a second Ctrl-C: exit 130 after %.2f s" % (time.monotonic() - t0))


def test_health_port_with_64_slow_clients(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", "CREATE TABLE public.t (id int PRIMARY KEY)")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.t"],
                                    [h.file_sink(os.path.join(ctx.tmpdir("out"), "t.jsonl"))],
                                    pipeline_id="hp", slot="hp_slot", publication="hp_pub"),
                  h.platform_config(ctx.tmpdir("state"), health_enabled=True, health_port=0),
                  cluster=cl)
    proc = cdc.start()
    port = int(h.wait_log_event(proc, "http.listening", 60)["port"])
    slow = []
    for i in range(64):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost")  # never finished
        slow.append(s)
    ctx.defer(lambda: [s.close() for s in slow])
    time.sleep(0.5)  # let the server take them all
    worst = 0.0
    for _ in range(10):
        t0 = time.monotonic()
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=60) as resp:
            assert resp.status == 200
        worst = max(worst, time.monotonic() - t0)
    # generous: before, a probe waited for a slot to time out (10 s)
    assert worst < 5, "/healthz took %.1f s with 64 slow clients" % worst
    proc.terminate()
    proc.wait(60).expect_rc(0)
    ctx.log("64 slow clients open: slowest of 10 /healthz probes took %.1f ms" % (worst * 1000))
