"""`cdc deploy` with transport_mode kafka (the topics) and `cdc dlq` on the
deliver role's dead-letter queue, on librdkafka's mock cluster.

The mock (librdkafka 2.0.2) does not serve CreateTopics: deploy must still
deploy the source, report the topics that exist, and warn naming every
missing topic with the partitions and replication factor to create it with.
"""

import os
import re

import harness as h


def _platform(ctx, k, name, kafka=None, state=None, **extra):
    kc = {"bootstrap_servers": k.bootstrap, "group_id": "deploy-g", "session_timeout_ms": 6000,
          "max_poll_interval_ms": 60000, "commit_interval_seconds": 0.5}
    kc.update(kafka or {})
    return h.platform_config(state or ctx.tmpdir("state-" + name), transport_mode="kafka",
                             kafka=kc, **extra)


def _setup(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", "CREATE SCHEMA sales")
    cl.execute("src", "CREATE TABLE public.items (id int PRIMARY KEY, v text)")
    cl.execute("src", "CREATE TABLE sales.orders (id int PRIMARY KEY, n int)")
    return cl


def _missing(res):
    """{topic: (partitions, replication factor, dead letters)} deploy's
    warning names."""
    out = {}
    for line in res.stderr.splitlines():
        m = re.match(r"^  (\S+)  partitions=(\d+) replication_factor=(\d+)(  \(dead letters\))?$",
                     line)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)), bool(m.group(4)))
    return out


def test_deploy_names_the_topics_the_mock_refuses(ctx):
    """The source is deployed (the slot exists), the topic the cluster has is
    reported as existing, and the warning names every other capture and
    dead-letter topic with kafka.topic_num_partitions and
    kafka.topic_replication_factor; exit 0 (the mock creates topics on first
    use).  Run again: the same answer (idempotent)."""
    cl = _setup(ctx)
    k = ctx.kafka({"cdc.public.items": 2})
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items", "sales.orders"],
                                    [h.file_sink(ctx.tmpdir("out") + "/d.jsonl")],
                                    slot="kd_slot", publication="kd_pub"),
                  _platform(ctx, k, "d", {"topic_num_partitions": 6,
                                          "topic_replication_factor": 3}),
                  name="d", cluster=cl)
    for _ in range(2):
        res = cdc.deploy().expect_rc(0)
        assert "topic cdc.public.items exists" in res.stdout, res.describe()
        assert any(l.startswith("warning: the Kafka cluster did not create the topics")
                   for l in res.stderr.splitlines()), res.describe()
        assert _missing(res) == {
            "cdc.sales.orders": (6, 3, False),
            "cdc.public.items.dlq": (6, 3, True),
            "cdc.sales.orders.dlq": (6, 3, True),
        }, res.describe()
        assert cl.execute("src", "SELECT count(*) FROM pg_replication_slots "
                                 "WHERE slot_name = 'kd_slot'") == [(1,)]


def test_deploy_without_dead_letters_and_unreachable(ctx):
    """With dlq.enabled false no dead-letter topic is named; a cluster that
    does not answer is an error (exit 1) that still names the topics and
    never shows the SASL password (the harness scans every output too)."""
    cl = _setup(ctx)
    k = ctx.kafka({})
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items", "sales.orders"],
                                    [h.file_sink(ctx.tmpdir("out") + "/d.jsonl")],
                                    slot="kd_slot", publication="kd_pub"),
                  _platform(ctx, k, "nodlq", dlq={"enabled": False}), name="nodlq", cluster=cl)
    res = cdc.deploy().expect_rc(0)
    assert _missing(res) == {"cdc.public.items": (1, 1, False),
                             "cdc.sales.orders": (1, 1, False)}, res.describe()
    port = h.free_port()
    pw = "kafka-" + "s3cret-pw"
    down = ctx.cdc(h.pipeline_config(cl, ["public.items"],
                                     [h.file_sink(ctx.tmpdir("out") + "/e.jsonl")],
                                     slot="kd_slot", publication="kd_pub"),
                   h.platform_config(ctx.tmpdir("state-down"), transport_mode="kafka",
                                     kafka={"bootstrap_servers": "127.0.0.1:%d" % port,
                                            "security_protocol": "SASL_PLAINTEXT",
                                            "auth_mechanism": "sasl_plain",
                                            "sasl_username": "cdc",
                                            "sasl_password": "${KPW}"}),
                   env={"KPW": pw}, name="down", cluster=cl, secrets_=[pw])
    res = down.deploy(timeout=120).expect_rc(1)
    assert pw not in res.stdout + res.stderr
    assert any("the Kafka cluster did not create the topics" in l
               for l in res.error_lines), res.describe()
    assert set(_missing(res)) == {"cdc.public.items", "cdc.public.items.dlq"}, res.describe()


def test_dlq_reads_the_deliver_role_queue(ctx):
    """A change the mirror refuses is dead-lettered by the deliver role into
    {state_dir}/{pipeline_id}.deliver; `cdc dlq list` finds it there (with
    transport_mode kafka, the default role is deliver), show prints it,
    replay delivers it once the mirror takes it, purge deletes it;
    --role capture reads the capture role's queue ({state_dir}/{pipeline_id}),
    whose pending entries `list` of the deliver queue mentions."""
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.items (id int PRIMARY KEY, v text)")
    cl.execute("mirror", "CREATE TABLE public.items (id int PRIMARY KEY, v text, "
                         "CONSTRAINT no_bad CHECK (v <> 'bad'))")
    k = ctx.kafka({"cdc.public.items": 2})
    state = ctx.tmpdir("state-dq")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [h.pg_sink(cl, "replica")],
                                    slot="dq_slot", publication="dq_pub"),
                  _platform(ctx, k, "dq", state=state), name="dq", cluster=cl)
    cdc.deploy().expect_rc(0)
    proc = cdc.start()
    h.wait_log_event(proc, "kafka.assigned", 60)
    cl.execute("src", "INSERT INTO items VALUES (1, 'ok'), (2, 'bad'), (3, 'ok')")
    h.wait_for(lambda: cl.execute("mirror", "SELECT id FROM items ORDER BY id") == [(1,), (3,)],
               120, "the mirror to hold rows 1 and 3")
    h.wait_for(lambda: h.kcat_read(k.bootstrap, "cdc.public.items.dlq"), 120,
               "the dead letter on its topic")
    proc.terminate()
    proc.wait(90).expect_rc(0)

    def dlq(*args, rc=0):
        return cdc.command(["dlq", args[0], cdc.pipeline_path] + cdc.platform_args() +
                           list(args[1:])).expect_rc(rc)

    res = dlq("list")
    lines = [l.split() for l in res.stdout.splitlines() if re.match(r"^\d+ ", l)]
    assert len(lines) == 1 and lines[0][1] == "mirror", res.describe()
    assert "entries: 1 pending" in res.stdout, res.describe()
    entry = lines[0][0]
    assert "no_bad" in dlq("show", entry).stdout
    assert "no pending dead-letter entries" in dlq("list", "--role", "capture").stdout
    assert "capture role" not in res.stderr, res.describe()
    # a record the capture role could not publish, in its own queue
    h.dlq_seed(os.path.join(state, "t1", "state.db"), "kafka-capture", 1,
               "--pipeline", "t1", "--db", "src")
    res = dlq("list")
    assert "entries: 1 pending" in res.stdout and "mirror" in res.stdout, res.describe()
    assert ("note: the capture role's queue holds 1 pending entry too (cdc dlq list --role "
            "capture)") in res.stderr, res.describe()
    res = dlq("list", "--role", "capture")
    assert "kafka-capture" in res.stdout and "entries: 1 pending" in res.stdout, res.describe()
    assert "entries: 1 pending" in dlq("list", "--role", "deliver", "--sink", "mirror").stdout
    res = dlq("list", "--role", "bogus", rc=2)
    assert any('--role: expected capture or deliver, got "bogus"' in l
               for l in res.error_lines), res.describe()

    cl.execute("mirror", "ALTER TABLE items DROP CONSTRAINT no_bad")
    res = dlq("replay")
    assert "replayed id %s to mirror" % entry in res.stdout, res.describe()
    assert cl.execute("mirror", "SELECT id, v FROM items ORDER BY id") == [
        (1, "ok"), (2, "bad"), (3, "ok")]
    assert "no pending dead-letter entries" in dlq("list").stdout
    assert "(0 pending, 1 resolved)" in dlq("list", "--all").stdout
    assert "deleted 1 resolved entry" in dlq("purge", "--yes").stdout
    assert "no dead-letter entries" in dlq("list", "--all").stdout


def test_dlq_role_needs_the_kafka_transport(ctx):
    """--role is refused plainly (exit 2) for an embedded pipeline."""
    pipeline = ("pipeline_id: t1\nsource:\n  database: src\n  tables: [public.t]\n"
                "sinks:\n  - sink_id: f\n    sink_type: file\n    file: {path: out.jsonl}\n")
    cdc = ctx.cdc(pipeline, h.platform_config(ctx.tmpdir("state")), name="embedded")
    res = cdc.command(["dlq", "list", cdc.pipeline_path] + cdc.platform_args() +
                      ["--role", "deliver"]).expect_rc(2)
    assert any("--role: only with transport_mode kafka" in l
               for l in res.error_lines), res.describe()
