"""The Kafka transport (transport_mode: kafka) end to end, on librdkafka's
mock cluster with kcat as the independent reader.

The capture role publishes the source's changes to {topic_prefix}.{schema}.
{table}; deliver processes in one consumer group read them back into a
PostgreSQL mirror and a file sink each.  Judged: the topics (kcat, against
the oracle), the mirror (equal to the source), the files (every change at
least once across the deliver processes, duplicates counted, every line a
valid envelope showing the change's source position).  Failures: kill -9 of
a deliver process and of the capture process under load, and the mock's
request errors and a broker down on fetch and offset commit."""

import collections
import os
import random
import time

import harness as h

TABLES = h.STANDARD_TABLES
KEYS = h.STANDARD_KEYS
TOPICS = {"cdc.public.accounts": 4, "cdc.public.lines": 3, "cdc.public.history": 4}
KILLS = int(os.environ.get("CDC_TEST_KAFKA_ROLE_KILLS", "4"))


def _platform(ctx, k, name, **kafka):
    kc = {"bootstrap_servers": k.bootstrap, "group_id": "deliver-g", "session_timeout_ms": 6000,
          "max_poll_interval_ms": 60000, "commit_interval_seconds": 0.5}
    kc.update(kafka)
    return h.platform_config(ctx.tmpdir("state-" + name), transport_mode="kafka", kafka=kc)


def _setup(ctx, mirror=True):
    cl = ctx.cluster()
    cl.createdb("src")
    if mirror:
        cl.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    k = ctx.kafka(TOPICS)
    oracle = h.Oracle(cl, "src").create()
    return cl, src, k, oracle


def _cdc(ctx, cl, k, name, sinks, **kafka):
    """A cdc work directory of its own (state, platform) for one process."""
    return ctx.cdc(h.pipeline_config(cl, TABLES, sinks, slot="kr_slot", publication="kr_pub"),
                   _platform(ctx, k, name, **kafka), name=name, cluster=cl)


def _files_hold(paths, txns):
    """(missing, duplicates, lines) of the deliver files against the oracle:
    every change at least once with its operation; nothing that is not a
    change of it.  An update that moved its row to another key also comes
    as a delete of the old key (same position, op d): not a duplicate."""
    want = {c.key(): c.op for c in h.Oracle.flatten(txns)}
    seen = collections.Counter()
    lines = 0
    for p in paths:
        if not os.path.exists(p):
            continue
        for rec in h.read_jsonl(p):
            lines += 1
            probs = h.envelope_problems(rec, "t1", "src")
            if probs:
                raise AssertionError("%s: not a valid envelope: %s" % (p, probs))
            key = h.rec_key(rec)
            op = want.get(key)
            if op is None:
                raise AssertionError("%s: a change not in the oracle: %s" % (p, h.short(str(rec), 300)))
            if op == "u" and rec["op"] == "d":
                continue  # the old key's side of a key move
            if rec["op"] != op:
                raise AssertionError("%s: change %s is %s in the oracle, %s here"
                                     % (p, key, op, rec["op"]))
            seen[key] += 1
    missing = [x for x in want if not seen[x]]
    return missing, sum(n - 1 for n in seen.values() if n > 1), lines


def _wait_delivered(ctx, cl, src, oracle, stop, paths, timeout=240):
    """Waits until the files hold every change up to stop and the mirror
    equals the source; returns (txns, duplicates)."""
    txns = oracle.read(TABLES, stop)

    class State(dict):
        def __str__(self):
            return "the deliver role to hold every change (%s)" % dict(self)
    state = State()

    def done():
        missing, dups, lines = _files_hold(paths, txns)
        state.update(missing=len(missing), dups=dups, lines=lines)
        if missing:
            return False
        mirror = cl.connect("mirror")
        try:
            for t in TABLES:
                h.compare_tables(src, mirror, t)
        except AssertionError as e:
            state["mirror"] = h.short(str(e), 600)
            return False
        finally:
            mirror.close()
        return True
    h.wait_for(done, timeout, state, interval=1.0)
    return txns, state["dups"]


def _check_topics(k, txns):
    """kcat reads every change from the topics, keyed and partitioned as Java
    would, with the cdc.event header on every value."""
    by_topic = h.read_topics(k.bootstrap, list(TOPICS))
    want = {c.key() for c in h.Oracle.flatten(txns)}
    seen = set()
    for topic, recs in by_topic.items():
        for r in recs:
            if r.key is not None:
                assert h.java_partition(r.key.encode(), TOPICS[topic]) == r.partition, r
            if r.doc is None:
                continue
            assert "cdc.event" in r.headers, "%r has no cdc.event header" % r
            assert topic == "cdc." + h.rec_table(r.doc), r
            seen.add(h.rec_key(r.doc))
    missing = want - seen
    assert not missing, "%d changes are not in the topics, e.g. %s" % (len(missing), list(missing)[:5])
    return sum(len(v) for v in by_topic.values())


def test_both_roles_one_process(ctx):
    """`cdc run` with transport_mode kafka runs capture and deliver in one
    process: the topics hold every change (kcat), the mirror equals the
    source, the file holds every change; a stop exits 0 and a restart
    delivers nothing twice into the mirror."""
    cl, src, k, oracle = _setup(ctx)
    out = ctx.tmpdir("out")
    jsonl = out + "/d.jsonl"
    cdc = _cdc(ctx, cl, k, "both", [h.file_sink(jsonl), h.pg_sink(cl, "replica")])
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    w = ctx.workload(cl, "src", seed=21, max_txns=200, pause=0, big_note_ratio=0.0,
                     bulk_ratio=0.01)
    w.start()
    w.join(300)
    w.stop()
    stop = cl.current_lsn("src")
    txns, dups = _wait_delivered(ctx, cl, src, oracle, stop, [jsonl])
    n = _check_topics(k, txns)
    proc.terminate()
    proc.wait(90).expect_rc(0)
    assert not proc.result().error_lines, proc.result().describe()
    h.wait_for(lambda: h.slot_confirmed_lsn(cl, "kr_slot") >= h.lsn_to_int(stop), 60,
               "the slot to be confirmed up to the workload's end")
    assert dups == 0, dups
    ctx.log("%d records in the topics; mirror equal; file: every change once" % n)


def test_roles_split_two_deliver_processes_kill9(ctx):
    """A capture process and two deliver processes in one group (each its
    own file; one shared mirror).  Under load, one deliver process and the
    capture process are killed with SIGKILL and restarted, several times.
    Afterwards the mirror equals the source and every change is in the
    files at least once (duplicates counted); both deliver processes had
    partitions."""
    cl, src, k, oracle = _setup(ctx)
    out = ctx.tmpdir("out")
    files = [out + "/d1.jsonl", out + "/d2.jsonl"]
    cap = _cdc(ctx, cl, k, "cap", [h.file_sink(out + "/unused.jsonl")])
    d = [_cdc(ctx, cl, k, "d%d" % (i + 1), [h.file_sink(files[i]), h.pg_sink(cl, "replica")])
         for i in range(2)]
    cap.deploy().expect_rc(0)
    pc = cap.start(extra=["--role", "capture"])
    pd = [x.start(extra=["--role", "deliver"]) for x in d]
    for p in pd:
        h.wait_log_event(p, "kafka.assigned", 60)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ctx.log("seed %d" % seed)
    w = ctx.workload(cl, "src", seed=seed, pause=0.02, big_note_ratio=0.0, bulk_ratio=0.01)
    w.start()
    for i in range(KILLS):
        time.sleep(rng.uniform(1.0, 3.0))
        for p in [pc] + pd:
            if p.poll() is not None:
                raise AssertionError("cdc exited on its own; %s" % p.result().describe())
        if i % 2 == 0:
            pd[0].kill9()
            pd[0] = d[0].start(extra=["--role", "deliver"])
        else:
            pc.kill9()
            cl.wait_slot_inactive("kr_slot")
            pc = cap.start(extra=["--role", "capture"])
    time.sleep(rng.uniform(0.5, 2.0))
    w.stop(60)
    stop = cl.current_lsn("src")
    txns, dups = _wait_delivered(ctx, cl, src, oracle, stop, files, timeout=300)
    assert {t.xid: len(t.changes) for t in txns} == dict(w.committed)
    _check_topics(k, txns)
    for p in [pc] + pd:
        p.terminate()
    for p in [pc] + pd:
        p.wait(90).expect_rc(0)
    owners = [sum(len(h.log_events(x.result().stderr, "kafka.assigned")) for x in dd.processes)
              for dd in d]
    assert all(owners), "a deliver process never owned a partition: %s" % owners
    ctx.log("%d kills; mirror equal; files: every change, %d duplicates" % (KILLS, dups))


PERMANENT_COMMIT_ERRORS = 5


def test_fetch_and_commit_failures(ctx):
    """Fetch and offset commit requests refused by the brokers, then a broker
    down for a while, under load: the deliver role retries, nothing is lost,
    and the commit failures show in its log and in /metrics."""
    cl, src, k, oracle = _setup(ctx)
    out = ctx.tmpdir("out")
    jsonl = out + "/d.jsonl"
    cap = _cdc(ctx, cl, k, "cap", [h.file_sink(out + "/unused.jsonl")])
    port = h.free_port()
    dl = ctx.cdc(h.pipeline_config(cl, TABLES, [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                   slot="kr_slot", publication="kr_pub"),
                 dict(_platform(ctx, k, "dl"), health_enabled=True, health_port=port),
                 name="dl", cluster=cl)
    cap.deploy().expect_rc(0)
    pc = cap.start(extra=["--role", "capture"])
    pd = dl.start(extra=["--role", "deliver"])
    h.wait_log_event(pd, "kafka.assigned", 60)
    w = ctx.workload(cl, "src", seed=31, max_txns=100000, pause=0.02, big_note_ratio=0.0,
                     bulk_ratio=0.005)
    w.start()
    time.sleep(1.0)
    k.command("errors Fetch " + " ".join(["NOT_LEADER_FOR_PARTITION"] * 20))
    # librdkafka retries a commit refused with COORDINATOR_NOT_AVAILABLE by
    # itself, so those may never reach cdc; it gives up at once on
    # OFFSET_METADATA_TOO_LARGE, so each of those fails one commit.  The
    # errors answer the next commits, whenever they come: the load goes on
    # until cdc has seen them.
    k.command("errors OffsetCommit OFFSET_METADATA_TOO_LARGE*%d COORDINATOR_NOT_AVAILABLE*10"
              % PERMANENT_COMMIT_ERRORS)
    time.sleep(3.0)
    k.command("down 2")
    time.sleep(6.0)
    k.command("up 2")

    def commit_failures():
        return len(h.log_events(h.proc_stderr(pd), "kafka.commit_failed"))
    h.wait_for(lambda: commit_failures() >= PERMANENT_COMMIT_ERRORS, 120,
               "%d offset commits to fail" % PERMANENT_COMMIT_ERRORS, interval=0.5)
    w.stop(60)
    stop = cl.current_lsn("src")
    txns, dups = _wait_delivered(ctx, cl, src, oracle, stop, [jsonl], timeout=300)
    fails = h.log_events(h.proc_stderr(pd), "kafka.commit_failed")
    m = h.Endpoint(port).metrics()
    committed = m.value("cdc_source_kafka_offset_commits_total", pipeline="t1")
    failed = m.value("cdc_source_kafka_offset_commit_failures_total", pipeline="t1")
    lags = {dict(k[1])["topic"] + ":" + dict(k[1])["partition"]: v
            for k, v in m.samples.items() if k[0] == "cdc_source_partition_lag"}
    pc.terminate()
    pd.terminate()
    pc.wait(90).expect_rc(0)
    pd.wait(90).expect_rc(0)
    assert len(fails) >= PERMANENT_COMMIT_ERRORS, \
        "%d offset commits failed, %d refused" % (len(fails), PERMANENT_COMMIT_ERRORS)
    assert failed >= PERMANENT_COMMIT_ERRORS and committed >= 1, (committed, failed)
    # the only deliver process owns every partition: a lag series for each
    assert sorted(lags) == sorted("%s:%d" % (t, p) for t, n in TOPICS.items()
                                  for p in range(n)), sorted(lags)
    ctx.log("%d commit failures logged (metrics: %s failed, %s accepted); %d duplicates"
            % (len(fails), failed, committed, dups))


def test_role_usage_errors(ctx):
    """--role is refused plainly (exit 2) without transport_mode kafka, with
    a value other than capture or deliver, and --stop-at-lsn with the
    deliver role alone (it reads topics, not the source's log)."""
    pipeline = ("pipeline_id: t1\nsource:\n  database: src\n  tables: [public.t]\n"
                "sinks:\n  - sink_id: f\n    sink_type: file\n    file: {path: out.jsonl}\n")
    state = ctx.tmpdir("state")
    embedded = ctx.cdc(pipeline, h.platform_config(state), name="embedded")
    res = embedded.start(extra=["--role", "deliver"]).wait(60)
    assert res.rc == 2 and any("--role: only with transport_mode kafka" in l
                               for l in res.error_lines), res.describe()
    kafka = ctx.cdc(pipeline, h.platform_config(state, transport_mode="kafka"), name="kafka")
    res = kafka.start(extra=["--role", "both"]).wait(60)
    assert res.rc == 2 and any('expected capture or deliver, got "both"' in l
                               for l in res.error_lines), res.describe()
    res = kafka.start("0/16B3748", extra=["--role", "deliver"]).wait(60)
    assert res.rc == 2 and any("--stop-at-lsn: the deliver role reads topics" in l
                               for l in res.error_lines), res.describe()


def test_dead_letters_to_topic(ctx):
    """A change the mirror refuses (a CHECK constraint the source does not
    have) is dead-lettered by the deliver role: published to
    {topic}.{dlq.topic_suffix} with the dlq.* headers naming where it was
    read and why; every other change arrives."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.items (id int PRIMARY KEY, v text)")
    cl.execute("mirror", "CREATE TABLE public.items (id int PRIMARY KEY, v text CHECK (v <> 'bad'))")
    k = ctx.kafka({"cdc.public.items": 2})
    jsonl = ctx.tmpdir("out") + "/d.jsonl"
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"],
                                    [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    slot="dl_slot", publication="dl_pub"),
                  _platform(ctx, k, "dl"), name="dl", cluster=cl)
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    h.wait_log_event(proc, "kafka.assigned", 60)
    cl.execute("src", "INSERT INTO items VALUES (1, 'ok'), (2, 'bad'), (3, 'ok')")
    cl.execute("src", "UPDATE items SET v = 'fine' WHERE id = 3")
    h.wait_for(lambda: cl.execute("mirror", "SELECT id, v FROM items ORDER BY id")
               == [(1, "ok"), (3, "fine")], 120, "the mirror to hold rows 1 and 3")
    dlq = h.wait_for(lambda: h.kcat_read(k.bootstrap, "cdc.public.items.dlq"), 120,
                     "a record on cdc.public.items.dlq")
    assert len(dlq) == 1, dlq
    r = dlq[0]
    assert r.keydoc == {"id": 2} and r.doc["after"] == {"id": 2, "v": "bad"}, r
    src_part = int(r.headers["dlq.source.partition"])
    assert r.headers["dlq.source.topic"] == "cdc.public.items"
    assert src_part == h.java_partition(b'{"id":2}', 2)
    recs = [x for x in h.kcat_read(k.bootstrap, "cdc.public.items")
            if x.partition == src_part and x.keydoc == {"id": 2}]
    assert [x.offset for x in recs] == [int(r.headers["dlq.source.offset"])], (recs, r.headers)
    assert r.headers["dlq.sink_id"] == "mirror" and r.headers["dlq.error.type"] == "permanent"
    assert "check" in r.headers["dlq.error.message"].lower(), r.headers
    assert abs(int(r.headers["dlq.timestamp"]) / 1000 - time.time()) < 300
    proc.terminate()
    proc.wait(90).expect_rc(0)


def test_initial_snapshot_through_kafka(ctx):
    """The capture role's initial snapshot (snapshot_mode initial) and the
    stream after it reach the mirror through Kafka: the mirror equals the
    source."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    w = ctx.workload(cl, "src", seed=41, max_txns=150, pause=0, big_note_ratio=0.0,
                     bulk_ratio=0.02)
    w.start()
    w.join(300)
    w.stop()
    k = ctx.kafka(TOPICS)
    cdc = ctx.cdc(h.pipeline_config(cl, TABLES, [h.pg_sink(cl, "replica")], slot="ks_slot",
                                    publication="ks_pub", snapshot_mode="initial"),
                  _platform(ctx, k, "snap"), name="snap", cluster=cl)
    proc = cdc.start()
    w2 = ctx.workload(cl, "src", seed=42, max_txns=100, pause=0.01, big_note_ratio=0.0,
                      bulk_ratio=0.0)
    w2.next_id = 10_000_000  # keys the first workload never used
    w2.start()
    w2.join(300)
    w2.stop()
    mirror = cl.connect("mirror")
    state = {}

    def equal():
        try:
            for t in TABLES:
                h.compare_tables(src, mirror, t)
            return True
        except AssertionError as e:
            state["last"] = h.short(str(e), 300)
            return False
    h.wait_for(equal, 240, "the mirror to equal the source")
    proc.terminate()
    proc.wait(90).expect_rc(0)
    rows = sum(cl.execute("src", "SELECT count(*) FROM %s" % t)[0][0] for t in TABLES)
    ctx.log("snapshot and stream through Kafka: mirror equal (%d rows)" % rows)
