"""The sink conformance suite: every sink type the registry lists as
available passes the same scenarios.  tests/helpers/sink_conform runs the
type's real sink behind the real engine and driver, fed by a scripted source
with two streams numbered alike (stream 1 lagging, one change per record as
a Kafka consumer's); each destination is judged with a reader of its own
(the file's lines, SQL, the webhook receiver's log, kcat, a NATS
protocol client).  Per type, on a
fresh destination:

1. partial durability (serial sinks): given a transaction and the next
   one's change without its commit, flush reports durable no more than the
   sink holds: the helper
   is killed right after, and every change it reported durable is there;
   an exactly-once type then reports holding at least the last of them.
2. durable after flush: a run killed with SIGKILL the moment every stream is
   confirmed (durable in the sink, as the commit tracker says): every change
   is at the destination, each once (nothing of step 1 is doubled).
3. reports what it has after reopen, per stream: an exactly-once type
   reports each stream's last transaction whole; an at-least-once type
   (`at_least_once` in its sink_type) reports nothing.
4. idempotent replay: a run whose source starts both streams from the
   beginning (committed positions older than what the sink holds): an
   exactly-once type still holds every change once; an at-least-once type
   holds every change at least once (the webhook: every copy of a change
   under the same Idempotency-Key).

test_every_available_type_is_covered fails for a sink type the registry
lists as available that has no destination reader here: a new sink type
joins the suite by adding one."""

import collections
import json
import os
import subprocess

import harness as h

TXNS = 12
STREAM_CHANGES = {0: 1, 1: 1}  # changes per transaction (a record) of each stream


def all_ids():
    return sorted(s * 100000 + k * 10 + j for s, n in STREAM_CHANGES.items()
                  for k in range(1, TXNS + 1) for j in range(n))


def helper_bin():
    path = os.path.join(os.path.dirname(h.cdc_bin()), "tests", "sink_conform")
    if not os.access(path, os.X_OK):
        raise AssertionError("%s is missing: run `make helpers`" % path)
    return path


def helper(args, env=None, timeout=120, killed=False):
    """Runs sink_conform; returns the JSON lines it printed."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    e.update(env or {})
    r = subprocess.run([helper_bin()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=e)
    if killed:
        if r.returncode != -9:
            raise AssertionError("sink_conform %s: expected to be killed, exited %d: %s"
                                 % (args[0], r.returncode, r.stderr[-2000:]))
    elif r.returncode != 0:
        raise AssertionError("sink_conform %s exited %d: %s" % (args[0], r.returncode,
                                                                r.stderr[-2000:]))
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def registered_types():
    return {t["type"]: t for t in helper(["types"])}


# --------------------------------------------------------------------------
# destinations: a sink block, and the ids of the changes the destination holds


class FileDest:
    type = "file"

    def __init__(self, ctx):
        self.path = ctx.tmpdir("out") + "/conform.jsonl"
        self.env = {}

    def sink(self):
        return h.file_sink(self.path, sink_id="out")

    def ids(self):
        if not os.path.exists(self.path):
            return []
        return [r["after"]["id"] for r in h.read_jsonl(self.path)]


class PgDest:
    type = "postgres"

    def __init__(self, ctx, mode):
        self.mode = mode
        self.cl = ctx.cluster()
        self.cl.createdb("mirror")
        self.env = {"PGPW": self.cl.role_password}

    def sink(self):
        return h.pg_sink(self.cl, self.mode, sink_id="out")

    def ids(self):
        table = "public.conform" if self.mode == "replica" else "public.cdc_events"
        if not self.cl.execute("mirror", "SELECT to_regclass(%s)", (table,))[0][0]:
            return []
        if self.mode == "replica":  # the mirror: one row per key, whatever came twice
            rows = self.cl.execute("mirror", "SELECT id FROM public.conform")
        else:  # the event log: one row per delivery
            rows = self.cl.execute("mirror", "SELECT (event_value->'after'->>'id')::int FROM "
                                             "public.cdc_events")
        return [r[0] for r in rows]


class WebhookDest:
    type = "webhook"

    def __init__(self, ctx):
        self.recv = h.Receiver(ctx).start()
        self.env = {}

    def sink(self):
        return h.webhook_sink(self.recv.url(), sink_id="out", batch_size=1)

    def deliveries(self):
        return [(rec["headers"].get("idempotency-key"), env["after"]["id"])
                for rec, env in h.webhook_deliveries(self.recv.records())]

    def ids(self):
        return [i for _, i in self.deliveries()]

    def check_keys(self):
        """Every copy of a change came under one Idempotency-Key, and no two
        changes share one."""
        by_id = collections.defaultdict(set)
        for key, i in self.deliveries():
            by_id[i].add(key)
        for i, keys in by_id.items():
            assert len(keys) == 1 and None not in keys, "change %d: keys %s" % (i, keys)
        keys = [next(iter(k)) for k in by_id.values()]
        assert len(set(keys)) == len(keys), "two changes share an Idempotency-Key"


class KafkaDest:
    type = "kafka"

    def __init__(self, ctx):
        self.k = ctx.kafka({"cdc.public.conform": 3})
        self.env = {}

    def sink(self):
        return h.kafka_sink(self.k.bootstrap, sink_id="out")

    def ids(self):
        out = []
        for r in h.kcat_read(self.k.bootstrap, "cdc.public.conform"):
            doc = r.doc or {}
            doc = doc.get("payload", doc)
            out.append(int(doc["after"]["id"]))
        return out


class NatsDest:
    """A JetStream stream on the pipeline's subjects, read message by message:
    a change held twice would show (the stream drops repeats by Nats-Msg-Id,
    within its duplicate window)."""
    type = "nats"

    def __init__(self, ctx):
        self.ns = ctx.nats()
        self.ns.client().add_stream("CONFORM", ["cdc.>"])
        self.env = {}

    def sink(self):
        return h.nats_sink(self.ns.url, sink_id="out")

    def ids(self):
        return [int(m.doc["after"]["id"]) for m in self.ns.client().messages("CONFORM")]


class IcebergDest:
    """An append table in a filesystem catalog, read by icebird: one row per
    change, so a change held twice shows."""
    type = "iceberg"

    def __init__(self, ctx):
        h.require_js()
        self.wh = ctx.tmpdir("lake")
        self.env = {}

    def sink(self):
        return h.iceberg_sink("out", "file://" + self.wh, table_namespace="db",
                              write_mode="append")

    def ids(self):
        tdir = os.path.join(self.wh, "db", "conform")
        if not os.path.exists(os.path.join(tdir, "metadata", "version-hint.text")):
            return []
        meta = h.fs_metadata(tdir)
        if h.load_json(meta).get("current-snapshot-id", -1) in (None, -1):
            return []  # created, nothing committed yet
        return [int(r["id"]) for r in h.icebird_rows(meta)]


# the destination readers, by sink type (postgres in both its modes)
ADAPTERS = {
    "file": [lambda ctx: FileDest(ctx)],
    "postgres": [lambda ctx: PgDest(ctx, "events"), lambda ctx: PgDest(ctx, "replica")],
    "webhook": [lambda ctx: WebhookDest(ctx)],
    "kafka": [lambda ctx: KafkaDest(ctx)],
    "iceberg": [lambda ctx: IcebergDest(ctx)],
    "nats": [lambda ctx: NatsDest(ctx)],
}


# --------------------------------------------------------------------------
# the scenarios


def check_ids(dest, want, exactly_once, what):
    got = collections.Counter(dest.ids())
    missing = [i for i in want if got[i] == 0]
    assert not missing, "%s %s: missing changes %s" % (dest.type, what, missing[:20])
    extra = sorted(set(got) - set(want))
    assert not extra, "%s %s: changes never sent %s" % (dest.type, what, extra[:20])
    if exactly_once:
        doubled = sorted(i for i, n in got.items() if n > 1)
        assert not doubled, "%s %s: changes held twice %s" % (dest.type, what, doubled[:20])
    return sum(got.values())


def conform(ctx, dest, info):
    exactly_once = not info["at_least_once"]
    cfg_dir = ctx.tmpdir("conform")
    pipeline = os.path.join(cfg_dir, "pipeline.yaml")
    platform = os.path.join(cfg_dir, "platform.yaml")
    with open(pipeline, "w") as f:
        f.write(h.to_yaml({
            "pipeline_id": "conform",
            "topic_prefix": "cdc",
            "source": {"database": "src", "tables": ["public.conform"]},
            "sinks": [dest.sink()],
        }))
    with open(platform, "w") as f:
        f.write(h.to_yaml({"state_dir": ctx.tmpdir("state"), "health_enabled": False,
                           "retry": {"initial_wait_seconds": 0.05, "max_wait_seconds": 0.5}}))
    files = [pipeline, platform]
    txns = ["--txns", str(TXNS)]

    if info["serial"]:
        # 1. partial durability
        (p,) = helper(["partial"] + files, dest.env, killed=True)
        assert p["durable"] <= p["given"], p
        held = collections.Counter(dest.ids())
        lost = [i for i in p["durable_ids"] if held[i] == 0]
        assert not lost, "%s: reported durable, gone after a kill: %s" % (dest.type, lost)
        if exactly_once and p["durable_ids"]:
            (hv,) = helper(["have"] + files, dest.env)
            last = max(p["durable_ids"])  # 10 (transaction 1) or 20 (transaction 2)
            got = hv["have"].get("0")
            assert got and (got[0] > last // 10 * 1000 or
                            (got[0] == last // 10 * 1000 and (got[1] == -1 or got[1] >= last % 10))), \
                "%s: holds %s durable, reports having %s" % (dest.type, p["durable_ids"], hv)
        ctx.log("%s: flush given 3 events reported %d durable, all of them there after a kill"
                % (dest.type, p["durable"]))

    # 2. durable once confirmed
    (c,) = helper(["run"] + files + txns + ["--kill-when-confirmed"], dest.env, killed=True)
    end = TXNS * 1000 + 500
    assert min(c["confirmed"].values()) >= end and len(c["confirmed"]) == 2, c
    n = check_ids(dest, all_ids(), exactly_once, "after a kill once everything was confirmed")
    ctx.log("%s: killed once confirmed: %d changes of 2 streams there" % (dest.type, n))

    # 3. what it reports holding, per stream
    (hv,) = helper(["have"] + files, dest.env)
    if exactly_once:
        want = {"0": [TXNS * 1000, -1], "1": [TXNS * 1000, -1]}
        assert hv["have"] == want, "%s reports %s, holds %s" % (dest.type, hv["have"], want)
    else:
        assert hv["have"] == {}, "%s is at least once but reports %s" % (dest.type, hv["have"])

    # 4. replay from the beginning
    (r,) = helper(["run"] + files + txns + ["--from-zero"], dest.env)
    assert min(r["confirmed"].values()) >= end and r["dead_lettered"] == 0, r
    n = check_ids(dest, all_ids(), exactly_once, "after a replay from the beginning")
    if isinstance(dest, WebhookDest):
        dest.check_keys()
    ctx.log("%s: replayed from the beginning: %d deliveries, %s" % (
        dest.type, n, "each change once" if exactly_once else "every change at least once"))


def run_type(ctx, name):
    types = registered_types()
    info = types.get(name)
    assert info is not None, "sink type %s is not registered" % name
    if not info["available"]:
        ctx.log("%s: not available in this build" % name)
        return
    for make in ADAPTERS[name]:
        conform(ctx, make(ctx), info)


def test_every_available_type_is_covered(ctx):
    types = registered_types()
    missing = [t for t, info in types.items() if info["available"] and t not in ADAPTERS]
    assert not missing, ("sink types without a destination reader in the conformance suite "
                         "(tests/integration/test_sink_conformance.py ADAPTERS): %s" % missing)
    ctx.log("covered: %s" % ", ".join(t for t, i in types.items() if i["available"]))


def test_file(ctx):
    run_type(ctx, "file")


def test_postgres(ctx):
    run_type(ctx, "postgres")


def test_webhook(ctx):
    run_type(ctx, "webhook")


def test_kafka(ctx):
    run_type(ctx, "kafka")


def test_iceberg(ctx):
    run_type(ctx, "iceberg")


def test_nats(ctx):
    run_type(ctx, "nats")
