"""The kafka sink end to end, against librdkafka's mock cluster (a separate
process speaking the Kafka protocol over TCP) with kcat as the independent
reader.

Every test runs a PostgreSQL source into a kafka sink and a file sink in the
same pipeline, and judges Kafka against the oracle (a test_decoding slot) and
the file: every change on its table's topic, its value byte-equal to the
file's envelope (but processing time), its key the key columns, its
partition Java's murmur2 of the key, per-key commit order, tombstones after
deletes.  The failure tests inject errors through the mock: refused produce
requests (retried by the producer: exactly once), a broker down for a while
(shorter than the message timeout: exactly once; longer: the sink fails,
reopens and replays, so at least once), and cdc killed with SIGKILL under
load (at least once: idempotence does not span producer instances)."""

import base64
import json
import os
import random
import time

import harness as h

KILLS = int(os.environ.get("CDC_TEST_KAFKA_KILLS", "8"))
KEYS = dict(h.STANDARD_KEYS, **{"public.loose": [], "public.typed": ["id"]})
TOPICS = {"cdc.public.accounts": 8, "cdc.public.lines": 6, "cdc.public.history": 8,
          "cdc.public.loose": 3}


def _setup(ctx, kafka_extra=None, more_sinks=None, topics=TOPICS, extra_tables=(), platform=None,
           **source_extra):
    """A source with the standard tables, public.loose and extra_tables
    [(name, ddl)]; a mock cluster with topics; a pipeline into a file sink,
    a kafka sink (kafka_extra: more keys of its block) and more_sinks(mock);
    platform: more platform keys."""
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    with src.cursor() as cur:
        cur.execute(h.LOOSE_DDL)
        for _, ddl in extra_tables:
            cur.execute(ddl)
    k = ctx.kafka(topics)
    out = ctx.tmpdir("out")
    jsonl = out + "/events.jsonl"
    tables = h.STANDARD_TABLES + ["public.loose"] + [t for t, _ in extra_tables]
    sinks = [h.file_sink(jsonl), h.kafka_sink(k.bootstrap, **(kafka_extra or {}))]
    sinks += more_sinks(k) if more_sinks else []
    cdc = ctx.cdc(h.pipeline_config(cl, tables, sinks, slot="k_slot", publication="k_pub",
                                    **source_extra),
                  h.platform_config(ctx.tmpdir("state"), **(platform or {})), cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    return cl, src, k, cdc, oracle, jsonl, tables


def _loose_changes(src):
    """Changes of a table without a key: null keys, never tombstones; a
    truncate: a null key too."""
    with src.cursor() as cur:
        cur.execute("INSERT INTO loose VALUES (1, 'a'), (2, 'b'), (2, 'b')")
        cur.execute("UPDATE loose SET b = 'c' WHERE a = 1")
        cur.execute("DELETE FROM loose WHERE a = 2")
        cur.execute("INSERT INTO loose VALUES (3, 'd')")
        cur.execute("TRUNCATE loose")
        cur.execute("INSERT INTO loose VALUES (4, 'e')")


def _judge(ctx, cl, k, oracle, jsonl, tables, stop, exactly_once=True, tombstones=True,
           topic_of=None, schemas=False, topics=None, strict_order=True):
    txns = oracle.read(tables, stop)
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="t1")
    parts = h.kcat_topics(k.bootstrap)
    names = topics or [topic_of(t) if topic_of else "cdc." + t for t in tables]
    by_topic = h.read_topics(k.bootstrap, names)
    res = h.check_kafka_sink(by_topic, txns, records, KEYS, parts, topic_of=topic_of,
                             exactly_once=exactly_once, tombstones=tombstones, schemas=schemas,
                             strict_order=strict_order)
    ctx.log("kafka: %d records (%d tombstones, %d keys) hold all %d changes, %d duplicates"
            % (res.records, res.tombstones, res.keys, res.changes, res.duplicates))
    return res, txns, by_topic


def test_records_keys_partitions_tombstones(ctx):
    """A random workload: every change once, keys, Java partitions, per-key
    order, tombstones after deletes and after key moves, headers, values
    equal to the file's envelopes; the topics are the pre-created ones."""
    cl, src, k, cdc, oracle, jsonl, tables = _setup(ctx)
    w = ctx.workload(cl, "src", seed=1234, max_txns=300, pause=0, big_note_ratio=0.02,
                     bulk_ratio=0.02)
    w.start()
    w.join(300)
    w.stop()
    _loose_changes(src)
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=300)
    res, txns, by_topic = _judge(ctx, cl, k, oracle, jsonl, tables, stop)
    assert res.duplicates == 0

    def moved(doc):
        cols, b = KEYS[h.rec_table(doc)], doc["before"]
        return doc["op"] == "u" and cols and b and any(b[c] != doc["after"][c] for c in cols)
    docs = [r.doc for recs in by_topic.values() for r in recs if r.doc]
    moves = sum(1 for d in docs if moved(d))
    deletes = sum(1 for d in docs if d["op"] == "d" and KEYS[h.rec_table(d)])
    assert res.tombstones == deletes + moves, (res.tombstones, deletes, moves)
    assert deletes > 10 and moves > 5, (deletes, moves)
    loose = by_topic["cdc.public.loose"]
    assert all(r.key is None and r.doc for r in loose)
    assert sorted(r.doc["op"] for r in loose) == sorted("cccuddctc"), [r.doc["op"] for r in loose]
    assert h.kcat_topics(k.bootstrap)["cdc.public.accounts"] == 8
    slot = cl.slot("k_slot")
    assert h.lsn_to_int(slot["confirmed_flush_lsn"]) >= h.lsn_to_int(stop)


DDL_TYPES = """
CREATE TABLE public.typed (
    id bigint PRIMARY KEY, s smallint, i integer, r real, d double precision, b boolean,
    by bytea, u uuid, j jsonb, n numeric(10,2), ts timestamptz, dt date, iv interval,
    arr integer[], t text);
"""
CONNECT_TYPES = {"int2": ("int16", None), "int4": ("int32", None), "int8": ("int64", None),
                 "float4": ("float32", None), "float8": ("float64", None),
                 "bool": ("boolean", None), "bytea": ("bytes", None),
                 "uuid": ("string", "io.debezium.data.Uuid"),
                 "jsonb": ("string", "io.debezium.data.Json")}


def _payload_fits(ftype, v):
    if v is None or v == h.UNCHANGED:
        return True
    if ftype in ("int16", "int32", "int64"):
        return type(v) is int
    if ftype in ("float32", "float64"):
        return isinstance(v, (int, float)) or v in ("NaN", "Infinity", "-Infinity")
    if ftype == "boolean":
        return isinstance(v, bool)
    if ftype == "bytes":
        base64.b64decode(v, validate=True)
        return True
    return isinstance(v, str)


def test_schemas_enable_and_templates(ctx):
    """Two kafka sinks in one pipeline: the default one, and one with
    schemas_enable, no tombstones and its own topic template.  The wrapped
    records hold the same payloads, and their Connect schemas give every
    column the type its PostgreSQL type maps to (docs/kafka.md)."""
    topics = dict(TOPICS, **{"cdc.public.typed": 2})
    topics.update({"w.src." + t[len("cdc."):]: 3 for t in list(topics)})

    def wrapped(k):
        return [h.kafka_sink(k.bootstrap, sink_id="wrapped", topic="w.{db}.{schema}.{table}",
                             schemas_enable=True, tombstones_on_delete=False)]
    cl, src, k, cdc, oracle, jsonl, tables = _setup(
        ctx, more_sinks=wrapped, topics=topics, extra_tables=[("public.typed", DDL_TYPES)])
    with src.cursor() as cur:
        cur.execute("""INSERT INTO typed VALUES
          (1, 1, 2, 1.5, 2.25, true, '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1]}',
           12.5, '2024-06-12 10:15:30+02', '2024-06-12', '1 day 2 hours', '{1,2}', 'x'),
          (2, -32768, -2147483648, 'NaN', '-Infinity', false, '', NULL, 'null', NULL, NULL, NULL,
           NULL, NULL, NULL),
          (9223372036854775807, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, 'big')""")
        cur.execute("UPDATE typed SET id = 3, t = 'moved' WHERE id = 2")
        cur.execute("DELETE FROM typed WHERE id = 1")
    w = ctx.workload(cl, "src", seed=99, max_txns=60, pause=0, big_note_ratio=0.02)
    w.start()
    w.join(120)
    w.stop()
    _loose_changes(src)
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=300)

    plain, _, _ = _judge(ctx, cl, k, oracle, jsonl, tables, stop)
    res, txns, by_topic = _judge(ctx, cl, k, oracle, jsonl, tables, stop, tombstones=False,
                                 topic_of=lambda t: "w.src." + t, schemas=True)
    assert res.tombstones == 0 and plain.tombstones > 0

    metas = {t: h.TableMeta(src, t) for t in tables}
    checked = 0
    for recs in by_topic.values():
        for r in recs:
            schema, payload = r.doc["schema"], r.doc["payload"]
            table = h.rec_table(payload)
            meta = metas[table]
            assert schema["type"] == "struct" and schema["name"] == "cdc.%s.Envelope" % table
            fields = {f["field"]: f for f in schema["fields"]}
            assert list(fields) == ["before", "after", "source", "op", "ts_ms", "ts_us", "ts_ns",
                                    "truncate", "transaction"], list(fields)
            # the truncate block is in truncates only
            assert set(payload) == set(fields) - ({"truncate"} if payload["op"] != "t" else set()), \
                (set(payload), set(fields))
            row = fields["after"]
            assert row["name"] == "cdc.%s.Value" % table and row["optional"] is True
            assert [f["field"] for f in row["fields"]] == meta.names
            for f in row["fields"]:
                typname = meta.types[f["field"]]
                ctype, cname = CONNECT_TYPES.get(typname, ("string", None))
                assert (f["type"], f.get("name")) == (ctype, cname), (table, f, typname)
                assert f["optional"] is (f["field"] not in meta.key), (table, f)
                for side in ("before", "after"):
                    v = (payload[side] or {}).get(f["field"])
                    assert _payload_fits(ctype, v), (table, f["field"], v)
            src_fields = {f["field"]: f["type"] for f in fields["source"]["fields"]}
            for name, v in payload["source"].items():
                assert name in src_fields, name
                want = {"string": str, "int64": int}[src_fields[name]]
                assert v is None or isinstance(v, want), (name, v)
            if r.key is None:
                assert not meta.key or payload["op"] == "t", (table, payload["op"])
            else:
                key = json.loads(r.key)
                assert set(key) == {"schema", "payload"}
                assert key["schema"]["name"] == "cdc.%s.Key" % table
                assert [f["field"] for f in key["schema"]["fields"]] == meta.key
                assert list(key["payload"]) == meta.key
            checked += 1
    ctx.log("%d wrapped records: schemas match the columns' types and the payloads" % checked)
    first = [r.doc["payload"] for r in by_topic["w.src.public.typed"]
             if r.doc["payload"]["op"] == "c" and r.doc["payload"]["after"]["id"] == 1]
    assert first and first[0]["after"]["by"] == "AP8=", first


def test_produce_errors_are_retried(ctx):
    """Every broker refuses produce requests for a while (not leader, timed
    out, not enough replicas, dropped connections) and then the leaders of a
    topic's partitions move: the producer retries, the log shows the
    retries, nothing is lost and, the producer being idempotent, nothing is
    written twice.  The resent messages are counted in
    cdc_sink_request_retries_total, not in cdc_sink_reopens_total."""
    port = h.free_port()
    cl, src, k, cdc, oracle, jsonl, tables = _setup(
        ctx, platform={"health_enabled": True, "health_port": port})
    errs = ("NOT_LEADER_FOR_PARTITION*3 REQUEST_TIMED_OUT@200*2 NOT_ENOUGH_REPLICAS*2 "
            "_TRANSPORT*2 NOT_ENOUGH_REPLICAS_AFTER_APPEND")
    proc = cdc.start()
    w = ctx.workload(cl, "src", seed=7, max_txns=100000, pause=0.01, big_note_ratio=0.02)
    w.start()
    time.sleep(1.0)
    for b in (1, 2, 3):
        k.command("broker_errors %d Produce %s" % (b, errs))
    time.sleep(1.0)
    # every leader of a topic moves to the next broker: NOT_LEADER, new metadata
    before = h.kcat_leaders(k.bootstrap, "cdc.public.accounts")
    for p, b in before.items():
        k.command("leader cdc.public.accounts %d %d" % (p, b % 3 + 1))
    after = h.kcat_leaders(k.bootstrap, "cdc.public.accounts")
    assert all(after[p] != before[p] for p in before), (before, after)
    # The load goes on until the errors are used up and the retries logged:
    # cdc learns of resent messages from librdkafka's statistics, which come
    # every second, and logs them at its next flush.
    h.wait_for(lambda: all(k.command("pending %d Produce" % b) == "0" for b in (1, 2, 3)), 120,
               "the injected produce errors to be used up")
    h.wait_for(lambda: h.log_events(h.proc_stderr(proc), "sink.kafka.retries"), 60,
               "the retries to be logged", interval=0.5)
    w.stop(60)
    _loose_changes(src)
    stop = cl.current_lsn("src")
    logged = h.log_events(h.proc_stderr(proc), "sink.kafka.retries")
    m = h.Endpoint(port).metrics()
    labels = {"pipeline": "t1", "sink": "kafka", "type": "kafka"}
    assert logged and m.value("cdc_sink_request_retries_total", **labels) >= \
        int(logged[-1]["resent"]), (logged[-1:], m.value("cdc_sink_request_retries_total", **labels))
    assert m.value("cdc_sink_reopens_total", **labels) == 0
    proc.terminate()
    proc.wait(60).expect_rc(0)
    cdc.run_to(stop, timeout=300)
    res, _, _ = _judge(ctx, cl, k, oracle, jsonl, tables, stop)
    assert res.duplicates == 0
    logged = h.log_events(proc.result().stderr, "sink.kafka.retries")
    assert logged and int(logged[-1]["resent"]) >= 10, logged[-1:]
    failed = h.log_events(proc.result().stderr, "sink.failed")
    assert not failed, failed
    ctx.log("messages resent by the producer (from the log): %s" % logged[-1]["resent"])


def test_broker_down_then_up(ctx):
    """A broker is down for several seconds under load.  Messages never time
    out by default: its partitions wait, nothing fails, everything arrives
    once and in order when it is back."""
    cl, src, k, cdc, oracle, jsonl, tables = _setup(ctx, status_interval_seconds=0.5)
    proc = cdc.start()
    w = ctx.workload(cl, "src", seed=11, max_txns=500, pause=0.02, big_note_ratio=0.01,
                     bulk_ratio=0.005)
    w.start()
    time.sleep(1.0)
    k.command("down 2")
    time.sleep(8.0)
    k.command("up 2")
    w.join(300)
    w.stop()
    stop = cl.current_lsn("src")
    # everything confirmed by the run that lived through the outage
    h.wait_for(lambda: h.slot_confirmed_lsn(cl, "k_slot") >= h.lsn_to_int(stop), 120,
               "cdc to confirm everything after the broker came back")
    proc.terminate()
    proc.wait(90).expect_rc(0)
    cdc.run_to(stop, timeout=300)
    res, _, _ = _judge(ctx, cl, k, oracle, jsonl, tables, stop)
    assert res.duplicates == 0
    assert not h.log_events(proc.result().stderr, "sink.failed")


def test_delivery_timeouts_fail_the_sink(ctx):
    """With a finite message.timeout.ms (3 s) a broker down longer makes
    deliveries fail: the sink fails, reopens and replays from the confirmed
    position until the broker is back.  Nothing is lost.  Order is only
    counted: a message that timed out while a later one of its partition got
    through leaves a gap the replay fills after it (why cdc's default never
    times out); so are the duplicates the replays bring."""
    cl, src, k, cdc, oracle, jsonl, tables = _setup(
        ctx, kafka_extra={"properties": {"message.timeout.ms": "3000"}})
    proc = cdc.start()
    w = ctx.workload(cl, "src", seed=13, max_txns=600, pause=0.03, big_note_ratio=0.01,
                     bulk_ratio=0.005)
    w.start()
    time.sleep(1.0)
    k.command("down 2")
    h.wait_log_event(proc, "sink.failed", 60)
    time.sleep(4.0)
    k.command("up 2")
    w.join(300)
    w.stop()
    stop = cl.current_lsn("src")
    proc.terminate()
    proc.wait(120).expect_rc(0)
    cdc.run_to(stop, timeout=300)
    res, _, _ = _judge(ctx, cl, k, oracle, jsonl, tables, stop, exactly_once=False,
                       strict_order=False)
    fails = h.log_events(proc.result().stderr, "sink.failed")
    assert fails and "timed out" in fails[0]["error"], fails[:1]
    ctx.log("%d sink failures while the broker was down; %d duplicates, %d records out of "
            "per-key order after the replays" % (len(fails), res.duplicates, res.out_of_order))


def test_kill9_under_load(ctx):
    """cdc is killed with SIGKILL at random moments under load and restarted;
    a last run finishes.  Every change is in Kafka at least once, in per-key
    order, the newest change of each key last; the file holds every change
    exactly once.  Duplicates in Kafka are counted: a new producer cannot
    know what the killed one delivered beyond the confirmed position.

    While cdc is down, a backlog of 1,000-row transactions is written (20
    before the first start, 2 before each restart), and each kill comes
    while it may still drain, in batches of 500: the sink then flushes
    behind (a flush waits only for the batch before it, so two are on
    their way).  Every broker answers 50 ms late, so that records are on
    their way when a kill comes."""
    cl, src, k, cdc, oracle, jsonl, tables = _setup(ctx, kafka_extra={"batch_size": 500})
    for b in range(1, k.brokers + 1):
        k.command("rtt %d 50" % b)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ctx.log("seed %d" % seed)
    backlog = h.HistoryBacklog(src)
    backlog.add(20)
    w = ctx.workload(cl, "src", seed=seed, pause=0.02, big_note_ratio=0.01, bulk_ratio=0.01)
    w.start()
    stop, _ = h.kill_under_load(cdc, cl, "k_slot", rng, KILLS, w, backlog)
    res, txns, _ = _judge(ctx, cl, k, oracle, jsonl, tables, stop, exactly_once=False)
    backlog.check(txns, w)
    ctx.log("%d kills: %d changes, %d records in Kafka, %d of them duplicates (%.1f%%)"
            % (KILLS, res.changes, res.records - res.tombstones, res.duplicates,
               100.0 * res.duplicates / max(1, res.changes)))


def _consume(cdc, *args, timeout=60):
    res = cdc.command(["consume", cdc.pipeline_path] + cdc.platform_args() + list(args), timeout)
    res.expect_rc(0)
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_consume(ctx):
    """`cdc consume` prints what kcat reads (key, value, partition, offset,
    headers), from the beginning or from the committed offsets (none: then
    kafka.auto_offset_reset), and commits nothing: a second run prints the
    same.  With auto_offset_reset latest it prints only what arrives."""
    cl, src, k, cdc, oracle, jsonl, tables = _setup(ctx)
    w = ctx.workload(cl, "src", seed=5, max_txns=40, pause=0, big_note_ratio=0.0)
    w.start()
    w.join(60)
    w.stop()
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    topic = "cdc.public.accounts"
    kc = h.kcat_read(k.bootstrap, topic)
    assert len(kc) > 10
    n = len(kc)
    got = _consume(cdc, "--from-beginning", "--topic", topic, "--max-events", str(n))
    again = _consume(cdc, "--topic", topic, "--max-events", str(n))
    order = lambda g: (g["partition"], g["offset"])  # noqa: E731
    assert sorted(again, key=order) == sorted(got, key=order), \
        "a second consume without --from-beginning printed something else"
    mine = sorted((g["partition"], g["offset"], json.dumps(g["key"]), json.dumps(g["value"]),
                   json.dumps(g["headers"], sort_keys=True)) for g in got)
    theirs = sorted((r.partition, r.offset, json.dumps(r.keydoc), json.dumps(r.doc),
                     json.dumps(r.headers, sort_keys=True)) for r in kc)
    assert mine == theirs
    assert all(g["topic"] == topic for g in got)
    # the pipeline's own topics by default
    every = _consume(cdc, "--from-beginning", "--max-events", "5")
    assert len(every) == 5
    # latest: nothing of the past, only what arrives after it starts
    cdc2 = ctx.cdc(open(cdc.pipeline_path).read(),
                   h.platform_config(ctx.tmpdir("state2"), kafka={"auto_offset_reset": "latest",
                                                                  "group_id": "fresh"}),
                   name="cdc2", cluster=cl)
    p = cdc2.spawn(["consume", cdc2.pipeline_path] + cdc2.platform_args() +
                   ["--topic", "cdc.public.history", "--max-events", "3"])
    h.wait_log_event(p, "consume.started", 60)
    with src.cursor() as cur:
        cur.execute("INSERT INTO history VALUES (900001, 'late', 1, 'x'), (900002, 'late', 2, 'y'),"
                    " (900003, 'late', 3, 'z')")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    res = p.wait(60).expect_rc(0)
    late = [json.loads(line) for line in res.stdout.splitlines()]
    assert sorted(g["key"]["id"] for g in late) == [900001, 900002, 900003], late


def test_validate_and_unreachable_cluster(ctx):
    """`cdc validate` summarises the kafka settings without secrets and
    names a property librdkafka refuses with its file and line; `cdc run`
    with transport_mode kafka and no cluster to reach fails plainly, without
    the password."""
    cl = ctx.cluster()
    cl.createdb("src")
    pw = "kafka-" + "s3cret-pw"
    platform = ("transport_mode: kafka\nkafka:\n  bootstrap_servers: b1:9092,b2:9092\n"
                "  auth_mechanism: sasl_scram_512\n  sasl_username: cdc\n"
                "  sasl_password: ${KPW}\n  group_id: g1\n  session_timeout_ms: 6000\n"
                "  properties:\n    linger.ms: \"20\"\n")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.t"], [h.file_sink("x.jsonl")]), platform,
                  env={"KPW": pw}, cluster=cl, secrets_=[pw])
    res = cdc.validate()
    assert res.rc == 0 and not res.error_lines, res.describe()
    assert "kafka      b1:9092,b2:9092 SASL_SSL sasl_scram_512 as cdc (password set)" in res.stdout
    assert "group g1" in res.stdout and "session 6000 ms" in res.stdout
    assert "properties linger.ms" in res.stdout
    run = cdc.start().wait(120)
    assert run.rc == 1 and any("kafka" in l for l in run.error_lines), run.describe()

    bad = platform.replace('linger.ms: "20"', 'linger.ms: "soon"')
    cdc2 = ctx.cdc(h.pipeline_config(cl, ["public.t"], [h.file_sink("x.jsonl")]), bad,
                   env={"KPW": pw}, name="cdc2", cluster=cl, secrets_=[pw])
    res = cdc2.validate()
    assert res.rc == 2
    assert any(l.startswith("error: %s:10: kafka.properties.linger.ms: librdkafka: "
                            % cdc2.platform_path) for l in res.error_lines), res.describe()

    sink = h.pipeline_config(cl, ["public.t"], [h.kafka_sink("k:9092", topic="x.{table}",
                                                             properties={"acks": "1"})])
    cdc3 = ctx.cdc(sink, None, name="cdc3", cluster=cl)
    res = cdc3.validate()
    assert res.rc == 2 and any("sinks[0].kafka.properties.acks: a kafka sink always produces "
                               "with acks=all" in l for l in res.error_lines), res.describe()
    sink["sinks"][0]["kafka"]["properties"] = {"compression.type": "lz4"}
    cdc3.write_pipeline(sink)
    res = cdc3.validate().expect_rc(0)
    assert "kafka     x.{table} -> k:9092 PLAINTEXT, properties compression.type" in res.stdout
    assert "config ok" in res.stdout


def test_oversized_record_is_dead_lettered(ctx):
    """A change whose record is larger than the producer may send
    (message.max.bytes) can never be delivered: it is dead-lettered alone,
    every other change arrives (some twice: the failure makes the sink
    replay), and the run completes."""
    cl, src, k, cdc, oracle, jsonl, tables = _setup(
        ctx, kafka_extra={"properties": {"message.max.bytes": "4000"}})
    with src.cursor() as cur:  # accounts: REPLICA IDENTITY DEFAULT, no old row in updates
        cur.execute("INSERT INTO accounts VALUES (1, 'small', 1, 'x'), (2, 'huge', 2, %s), "
                    "(3, 'small', 3, 'y')", ("z" * 6000,))
        cur.execute("UPDATE accounts SET note = 'fits now' WHERE id = 2")
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=120)
    assert h.log_events(res.stderr, "sink.failed"), res.describe()
    entries = h.dlq_entries(cdc)
    assert [e["sink"] for e in entries] == ["kafka"], entries
    shown = h.dlq_show(cdc, entries[0]["id"]).stdout
    assert "huge" in shown and "too large" in shown.lower(), h.short(shown, 500)
    recs = [r for r in h.kcat_read(k.bootstrap, "cdc.public.accounts") if r.doc]
    # the failure makes the sink replay what it had sent: at least once
    got = sorted(set((r.doc["op"], r.doc["after"]["id"]) for r in recs))
    assert got == [("c", 1), ("c", 3), ("u", 2)], got
    assert len(h.read_jsonl(jsonl)) == 4
