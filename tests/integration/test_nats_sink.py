"""The nats sink end to end, against a real nats-server with JetStream
(Debian's package, started here), read back by harness.nats's client, which
speaks the NATS protocol itself.

Every test runs a PostgreSQL source into a nats sink and a file sink in the
same pipeline; the file is judged against the oracle (a test_decoding
slot), the stream against the file: every change once, in commit order, its
envelope equal to the file's but for processing time, on its table's
subject, with Nats-Msg-Id, Cdc-Op and Cdc-Key.  cdc killed with SIGKILL
under load and the server killed and restarted still give every change
exactly once: the stream drops what a replay sends again (its duplicate
window is 10 minutes here).  A subject no stream takes stops the pipeline
with nothing confirmed; a message the stream refuses as too large is
dead-lettered alone."""

import os
import random
import time

import harness as h

KILLS = int(os.environ.get("CDC_TEST_NATS_KILLS", "6"))
KEYS = dict(h.STANDARD_KEYS, **{"public.loose": []})


def _setup(ctx, nats_extra=None, stream=True, auth=None, **stream_extra):
    """A source with the standard tables and public.loose; a nats-server
    (auth: its (user, password)) with stream CDC on cdc.> (unless stream is
    False); a pipeline into a file sink and a nats sink (nats_extra: more
    keys of its block)."""
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    with src.cursor() as cur:
        cur.execute(h.LOOSE_DDL)
    ns = h.NatsServer(ctx, user=auth and auth[0], password=auth and auth[1]).start()
    if stream:
        ns.client().add_stream("CDC", ["cdc.>"], **stream_extra)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    tables = h.STANDARD_TABLES + ["public.loose"]
    sinks = [h.file_sink(jsonl), h.nats_sink(ns.url, **(nats_extra or {}))]
    cdc = ctx.cdc(h.pipeline_config(cl, tables, sinks, slot="n_slot", publication="n_pub"),
                  h.platform_config(ctx.tmpdir("state"),
                                    retry={"initial_wait_seconds": 0.1, "max_wait_seconds": 1}),
                  cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    return cl, src, ns, cdc, oracle, jsonl, tables


def _loose_changes(src):
    with src.cursor() as cur:
        cur.execute("INSERT INTO loose VALUES (1, 'a'), (2, 'b'), (2, 'b')")
        cur.execute("UPDATE loose SET b = 'c' WHERE a = 1")
        cur.execute("DELETE FROM loose WHERE a = 2")
        cur.execute("TRUNCATE loose")
        cur.execute("INSERT INTO loose VALUES (4, 'e')")


def _judge(ctx, ns, oracle, jsonl, tables, stop, exactly_once=True):
    txns = oracle.read(tables, stop)
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="t1")
    msgs = ns.client().messages("CDC")
    res = h.check_nats_stream(msgs, records, KEYS, exactly_once=exactly_once)
    ctx.log("nats: %d messages hold all %d changes, %d duplicates"
            % (res.messages, res.changes, res.duplicates))
    return res, txns


def test_messages_subjects_headers(ctx):
    """A workload's changes and a keyless table's (a truncate too): each
    once on its subject, in commit order, with its headers, into a server
    that wants a user and password; `cdc validate` shows the server, never
    the password; a wrong password is refused plainly."""
    cl, src, ns, cdc, oracle, jsonl, tables = _setup(
        ctx, nats_extra={"user": "cdc", "password": "s3cret-nats-pw"},
        auth=("cdc", "s3cret-nats-pw"))

    def config(password):
        return h.pipeline_config(cl, tables, [h.file_sink(jsonl), h.nats_sink(
            ns.url, user="cdc", password=password)], slot="n_slot", publication="n_pub")
    cdc.write_pipeline(config("wrong-pw"))
    res = cdc.start(cl.current_lsn("src")).wait(60)
    assert res.rc != 0 and "cannot connect: Authentication Violation" in res.stderr, \
        res.describe()
    assert "wrong-pw" not in res.stdout + res.stderr
    cdc.write_pipeline(config("s3cret-nats-pw"))
    res = cdc.validate()
    res.expect_rc(0)
    assert "nats" in res.stdout and ns.url in res.stdout, res.stdout
    assert "s3cret-nats-pw" not in res.stdout + res.stderr
    w = ctx.workload(cl, "src", seed=7, max_txns=150, pause=0, big_note_ratio=0.05)
    w.start()
    w.join(120)
    w.stop()
    _loose_changes(src)
    stop = cl.current_lsn("src")
    run = cdc.run_to(stop, timeout=120)
    assert "s3cret-nats-pw" not in run.stdout + run.stderr
    res, txns = _judge(ctx, ns, oracle, jsonl, tables, stop)
    assert res.changes == sum(len(t.changes) for t in txns)
    subjects = {m.subject for m in ns.client().messages("CDC")}
    assert "cdc.public.loose" in subjects and "cdc.public.accounts" in subjects, subjects


def test_kill9_under_load_exactly_once(ctx):
    """cdc is killed with SIGKILL at random moments under load (with a
    backlog of 1,000-row transactions to drain, in batches of 500) and
    restarted; a last run finishes.  The stream holds every change exactly
    once, in commit order: what a restart sends again carries the
    Nats-Msg-Id the stream already holds, and the stream drops it."""
    cl, src, ns, cdc, oracle, jsonl, tables = _setup(ctx, nats_extra={"batch_size": 500})
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ctx.log("seed %d" % seed)
    backlog = h.HistoryBacklog(src)
    backlog.add(20)
    w = ctx.workload(cl, "src", seed=seed, pause=0.02, big_note_ratio=0.01, bulk_ratio=0.01)
    w.start()

    def count(text):
        return sum(int(e.get("dropped_by_stream", 0))
                   for e in h.log_events(text, "sink.nats.duplicates"))
    killed = []
    stop, run = h.kill_under_load(cdc, cl, "n_slot", rng, KILLS, w, backlog,
                                  on_kill=lambda p: killed.append(count(h.proc_stderr(p))))
    dropped = sum(killed) + count(run.stderr)
    res, txns = _judge(ctx, ns, oracle, jsonl, tables, stop)
    backlog.check(txns, w)
    ctx.log("%d kills: %d changes once each; the stream dropped %d repeats (as logged)"
            % (KILLS, res.changes, dropped))


def test_server_killed_and_restarted(ctx):
    """nats-server is killed with SIGKILL under load and started again on its
    store a few seconds later, twice: the sink fails (a connection never
    reconnects by itself, whose lost messages a reconnect would overtake),
    reopens once the server is back and replays; every change arrives
    exactly once, in commit order."""
    cl, src, ns, cdc, oracle, jsonl, tables = _setup(ctx)
    w = ctx.workload(cl, "src", seed=11, pause=0.01)
    w.start()
    proc = cdc.start()
    for _ in range(2):
        time.sleep(1.5)
        ns.kill9()
        time.sleep(2)
        ns.start()
    time.sleep(1.5)
    w.stop(60)
    stop = cl.current_lsn("src")
    h.wait_for(lambda: (h.slot_confirmed_lsn(cl, "n_slot") or 0) >= h.lsn_to_int(stop) or
               proc.poll() is not None, 120, "cdc to confirm everything", interval=0.2)
    assert proc.poll() is None, proc.result().describe()
    fails = h.log_events(h.proc_stderr(proc), "sink.failed")
    assert fails, "the sink never failed while the server was down"
    proc.terminate()
    proc.wait(60)
    _judge(ctx, ns, oracle, jsonl, tables, stop)
    ctx.log("%d sink failures while the server was down, e.g. %s"
            % (len(fails), h.short(fails[0].get("error", ""), 160)))


def test_no_stream_stops_the_pipeline(ctx):
    """Subjects no stream takes: `cdc run` stops with an error naming the
    subject and confirms nothing; `stream` naming a stream that does not
    exist, or one that does not take the subjects, and a server without
    JetStream stop it too.  Once the stream exists, the same changes arrive,
    each once."""
    cl, src, ns, cdc, oracle, jsonl, tables = _setup(ctx, stream=False)
    with src.cursor() as cur:
        cur.execute("INSERT INTO accounts VALUES (1, 'a', 1, 'x'), (2, 'b', 2, 'y')")
    stop = cl.current_lsn("src")
    before = h.slot_confirmed_lsn(cl, "n_slot")
    res = cdc.start(stop).wait(60)
    assert res.rc != 0, res.describe()
    assert "no JetStream stream takes subject cdc.public.accounts" in res.stderr, res.describe()
    assert h.slot_confirmed_lsn(cl, "n_slot") == before, "a position was confirmed past the failure"

    cfg = h.pipeline_config(cl, tables, [h.file_sink(jsonl), h.nats_sink(ns.url, stream="ORDERS")],
                            slot="n_slot", publication="n_pub")
    cdc.write_pipeline(cfg)
    res = cdc.start(stop).wait(60)
    assert res.rc != 0 and "JetStream stream ORDERS does not exist" in res.stderr, res.describe()

    ns.client().add_stream("ORDERS", ["other.>"])
    res = cdc.start(stop).wait(60)
    assert res.rc != 0 and "cdc.public.accounts" in res.stderr, res.describe()
    ctx.log("a stream that does not take the subjects: %s"
            % h.short(res.error_lines[-1] if res.error_lines else res.stderr, 200))

    plain = h.NatsServer(ctx, "nats-plain", jetstream=False).start()
    cfg["sinks"][1] = h.nats_sink(plain.url)
    cdc.write_pipeline(cfg)
    res = cdc.start(stop).wait(60)
    assert res.rc != 0 and "does not run JetStream" in res.stderr, res.describe()

    ns.client().add_stream("CDC", ["cdc.>"])
    cfg["sinks"][1] = h.nats_sink(ns.url)
    cdc.write_pipeline(cfg)
    cdc.run_to(stop, timeout=120)
    _judge(ctx, ns, oracle, jsonl, tables, stop)


def test_oversized_message_is_dead_lettered(ctx):
    """A change larger than the stream's max_msg_size is refused by the
    stream: it goes to the dead-letter queue alone, every other change
    arrives once, and the run completes."""
    cl, src, ns, cdc, oracle, jsonl, tables = _setup(ctx, max_msg_size=4000)
    with src.cursor() as cur:
        cur.execute("INSERT INTO accounts VALUES (1, 'small', 1, 'x'), (2, 'huge', 2, %s), "
                    "(3, 'small', 3, 'y')", ("z" * 6000,))
        cur.execute("UPDATE accounts SET note = 'fits now' WHERE id = 2")
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=120)
    assert h.log_events(res.stderr, "sink.failed"), res.describe()
    entries = h.dlq_entries(cdc)
    assert [e["sink"] for e in entries] == ["nats"], entries
    shown = h.dlq_show(cdc, entries[0]["id"]).stdout
    assert "huge" in shown and "refused" in shown, h.short(shown, 500)
    got = [(m.doc["op"], m.doc["after"]["id"]) for m in ns.client().messages("CDC")]
    assert got == [("c", 1), ("c", 3), ("u", 2)], got
    assert len(h.read_jsonl(jsonl)) == 4


def test_config_errors(ctx):
    """Bad blocks are refused with file, line and key: a user without a
    password, a token besides them, TLS (not in this version), a subject
    template with a wildcard or an empty token, a stream name with a dot.
    A 700-character password in the URL is masked by `cdc validate`."""
    cl = ctx.cluster()
    cases = [
        ({"url": "nats://127.0.0.1:4222", "user": "u"}, "user and password go together"),
        ({"url": "nats://127.0.0.1:4222", "user": "u", "password": "p", "token": "t"},
         "not both"),
        ({"url": "tls://127.0.0.1:4222"}, "TLS (tls://) is not implemented"),
        ({"url": "http://127.0.0.1:4222"}, "nats://host:port"),
        ({"url": "nats://127.0.0.1:4222", "subject": "cdc.*.{table}"}, "subject template"),
        ({"url": "nats://127.0.0.1:4222", "subject": "cdc..{table}"}, "subject template"),
        ({"url": "nats://127.0.0.1:4222", "stream": "a.b"}, "a stream name without"),
    ]
    for block, want in cases:
        cdc = ctx.cdc(h.pipeline_config(cl, ["public.t"], [
            {"sink_id": "n", "sink_type": "nats", "nats": block}]),
            h.platform_config(ctx.tmpdir("state")), cluster=cl)
        res = cdc.validate()
        assert res.rc != 0 and want in res.stderr, (block, res.describe())
        assert "pipeline.yaml:" in res.stderr, res.stderr
    # a password in the URL, longer than any buffer a URL is shown through
    pw = "p" * 700
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.t"], [h.nats_sink(
        "nats://cdc:%s@127.0.0.1:4222,nats://127.0.0.1:4223" % pw)]),
        h.platform_config(ctx.tmpdir("state")), cluster=cl)
    res = cdc.validate()
    res.expect_rc(0)
    assert "nats://***@127.0.0.1:4222,nats://127.0.0.1:4223" in res.stdout, res.stdout
    assert "ppppp" not in res.stdout + res.stderr
