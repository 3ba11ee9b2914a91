"""Kafka: the mock cluster process (tests/helpers/kafka_mock.c on librdkafka's
mock cluster), kcat as the independent reader, Java-compatible murmur2, and
checks of what a kafka sink wrote against the oracle and the file sink."""

# flake8: noqa: F401,F403,F405
import collections
import json
import os
import select
import subprocess
import time

from .common import *  # noqa: F401,F403
from .cdc import *  # noqa: F401,F403
from .oracle import *  # noqa: F401,F403
from .oracle import _json_int

KCAT = "kcat"


def kafka_mock_bin():
    """The kafka_mock helper next to the cdc binary under test (build/<variant>/
    tests/kafka_mock), else the release build's."""
    here = os.path.join(os.path.dirname(cdc_bin()), "tests", "kafka_mock")
    if os.path.isfile(here):
        return here
    return require_bin(os.path.join(REPO_ROOT, "build", "release", "tests", "kafka_mock"),
                       "the kafka_mock helper (make helpers)")


# --------------------------------------------------------------------------
# Java's murmur2, written from its description (Kafka's Utils.murmur2: seed
# 0x9747b28c, m 0x5bd1e995, r 24, little-endian 4-byte words, the 1-3 byte
# tail folded in from its last byte down); a key's partition is
# (murmur2(key) & 0x7fffffff) % partitions.


def murmur2(data):
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    n = len(data)
    h = (0x9747B28C ^ n) & mask
    i = 0
    while n - i >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key_bytes, partitions):
    return (murmur2(key_bytes) & 0x7FFFFFFF) % partitions


# --------------------------------------------------------------------------
# the mock cluster


class KafkaMock:
    """kafka_mock in its own process: start(topics={name: partitions}) brings
    up the brokers; command("down 1") steers it (see the helper's header for
    the commands); stop() when the test ends."""

    def __init__(self, ctx, brokers=3, name="kafka"):
        self.ctx = ctx
        self.dir = ctx.tmpdir(name)
        self.brokers = brokers
        self.proc = None
        self.bootstrap = None

    def start(self, topics=None, timeout=20):
        argv = [kafka_mock_bin(), "--brokers", str(self.brokers)]
        for name, parts in (topics or {}).items():
            argv += ["--topic", "%s:%d" % (name, parts)]
        self.stderr_path = os.path.join(self.dir, "stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, cwd=self.dir)
        self.ctx.defer(self.stop)
        info = json.loads(self._line(timeout) or "null")
        if not info:
            raise AssertionError("kafka_mock did not start:\n" + self.stderr())
        self.bootstrap = info["bootstrap"]
        self.partitions = dict(topics or {})
        return self

    def _line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode() if r else ""

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return tail(f.read(), 30)
        except OSError:
            return ""

    def command(self, line, timeout=10):
        """Sends one command; returns the text after "ok" (raises on "error")."""
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        answer = self._line(timeout).strip()
        if not answer.startswith("ok"):
            raise AssertionError("kafka_mock %r: %s" % (line, answer or "no answer"))
        return answer[2:].strip()

    def create_topic(self, name, partitions):
        self.command("topic %s %d" % (name, partitions))
        self.partitions[name] = partitions

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)


# --------------------------------------------------------------------------
# kcat: the independent reader


class KRecord:
    """One record as kcat -J shows it; key and value are the raw text (None
    for null), doc the value parsed (None for a tombstone)."""
    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "doc", "keydoc")

    def __init__(self, d):
        self.topic = d["topic"]
        self.partition = d["partition"]
        self.offset = d["offset"]
        self.key = d.get("key")
        self.value = d.get("payload")
        h = d.get("headers") or []
        self.headers = dict(zip(h[0::2], h[1::2]))
        self.doc = json.loads(self.value, parse_int=_json_int) if self.value is not None else None
        self.keydoc = json.loads(self.key, parse_int=_json_int) if self.key is not None else None

    def __repr__(self):
        return "<%s[%d]@%d key=%s %s>" % (self.topic, self.partition, self.offset,
                                          short(self.key or "null", 60),
                                          "tombstone" if self.value is None else
                                          (self.doc or {}).get("op", (self.doc or {}).get("payload", {}).get("op")))


def kcat_read(bootstrap, topic, timeout=120):
    """Every record of a topic, from the beginning of each partition to its
    end, in partition then offset order."""
    r = subprocess.run([KCAT, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                        "-J", "-X", "topic.metadata.refresh.interval.ms=1000"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("kcat -C -t %s failed (%d): %s"
                             % (topic, r.returncode, r.stderr[-500:].decode(errors="replace")))
    # kcat escapes control characters but passes other bytes through: the
    # binary cdc.event header of the capture role is not UTF-8
    out = r.stdout.decode("utf-8", errors="replace")
    recs = [KRecord(json.loads(line)) for line in out.split("\n") if line.strip()]
    recs.sort(key=lambda x: (x.partition, x.offset))
    return recs


def kcat_topics(bootstrap, timeout=60):
    """{topic: number of partitions} the cluster lists."""
    r = subprocess.run([KCAT, "-b", bootstrap, "-L", "-J"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("kcat -L failed: %s" % r.stderr[-500:])
    md = json.loads(r.stdout)
    return {t["topic"]: len(t["partitions"]) for t in md["topics"]}


def kcat_leaders(bootstrap, topic, timeout=60):
    """{partition: leader broker id} of a topic, as the cluster says."""
    r = subprocess.run([KCAT, "-b", bootstrap, "-L", "-J", "-t", topic], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("kcat -L failed: %s" % r.stderr[-500:])
    md = json.loads(r.stdout)
    return {p["partition"]: p["leader"] for t in md["topics"] if t["topic"] == topic
            for p in t["partitions"]}


def kafka_sink(bootstrap, sink_id="kafka", **extra):
    k = {"bootstrap_servers": bootstrap}
    k.update(extra)
    return {"sink_id": sink_id, "sink_type": "kafka", "kafka": k}


def check_log_starts(records, topic):
    """The mock drops the oldest batches of a partition beyond 5 MiB or 100k
    messages: a read that does not start at offset 0 cannot prove anything."""
    first = {}
    for r in records:
        first.setdefault(r.partition, r.offset)
    late = {p: o for p, o in first.items() if o != 0}
    if late:
        raise AssertionError("%s: partitions %s do not start at offset 0 (the mock dropped old "
                             "batches; make the test's data smaller)" % (topic, late))


# --------------------------------------------------------------------------
# judging a kafka sink's output


def _position(doc):
    """(commit LSN, index) of an envelope, or None for snapshot rows."""
    t = doc.get("transaction")
    if not t:
        return None
    return (int(t["id"].split(":")[1]), t["total_order"] - 1)


def _strip_times(doc):
    return {k: v for k, v in doc.items() if k not in ("ts_ms", "ts_us", "ts_ns")}


class KafkaCheck:
    """What check_kafka_sink found: counts for the test's log."""

    def __init__(self):
        self.records = 0
        self.changes = 0
        self.duplicates = 0
        self.tombstones = 0
        self.keys = 0
        self.out_of_order = 0


def check_kafka_sink(by_topic, txns, file_records, keys, partitions, topic_of=None,
                     exactly_once=True, tombstones=True, schemas=False, strict_order=True):
    """by_topic: {topic: [KRecord]} as kcat read them; txns: the oracle;
    file_records: the file sink's envelopes of the same run; keys: {table:
    [key columns]}; partitions: {topic: count}; topic_of(table) names a
    table's topic (default cdc.<schema>.<table>).

    Proves: every oracle change is in Kafka (exactly once, or at least once
    when exactly_once is false: duplicates are counted), nothing else is;
    each record's value equals the file's envelope for that change (but the
    processing time), on topic prefix.schema.table; its key is the JSON of
    the key columns and its partition Java's murmur2 of that key; its
    cdc.position header names its position; per key, first occurrences come
    in commit order and the key's last data record is its newest change
    (without strict_order these are only counted, in res.out_of_order);
    with tombstones, each delete is followed (in its partition) by a
    tombstone of its key and every tombstone follows a delete or an update
    that moved the key."""
    flat = Oracle.flatten(txns)
    want = {c.key(): c for c in flat}
    partitions = partitions or {}
    by_change = {rec_key(r): r for r in file_records}
    seen = collections.Counter()
    problems = []
    res = KafkaCheck()

    def prob(msg):
        if len(problems) < 20:
            problems.append(msg)

    moved = set()  # positions of updates, whose old key may get a tombstone
    for recs in by_topic.values():
        for r in recs:
            d = r.doc
            if d is not None and schemas and "payload" in d:
                d = d["payload"]
            if d is not None and d.get("op") == "u" and _position(d):
                moved.add("%d:%d" % _position(d))

    for topic, recs in by_topic.items():
        nparts = partitions[topic]
        check_log_starts(recs, topic)
        per_key = collections.defaultdict(list)  # (partition, key) -> [(offset, rec)]
        for r in recs:
            res.records += 1
            label = "%s[%d]@%d" % (topic, r.partition, r.offset)
            doc = r.doc
            if doc is not None and schemas:
                if set(doc) != {"schema", "payload"}:
                    prob("%s: with schemas_enable the value is not {schema, payload}" % label)
                    continue
                doc = doc["payload"]
            keydoc = r.keydoc
            if keydoc is not None and schemas:
                if set(keydoc) != {"schema", "payload"}:
                    prob("%s: with schemas_enable the key is not {schema, payload}" % label)
                    continue
                keydoc = keydoc["payload"]
            if r.key is not None:
                p = java_partition(r.key.encode(), nparts)
                if p != r.partition:
                    prob("%s: key %s belongs in partition %d (Java murmur2), not %d"
                         % (label, short(r.key, 80), p, r.partition))
            if doc is None:
                res.tombstones += 1
                if r.key is None:
                    prob("%s: a tombstone without a key" % label)
                per_key[(r.partition, r.key)].append((r.offset, r, None))
                continue
            table = rec_table(doc)
            if topic != (topic_of(table) if topic_of else "cdc." + table):
                prob("%s: a change of %s on this topic" % (label, table))
            k = rec_key(doc)
            c = want.get(k)
            if c is None:
                prob("%s: a change not in the oracle: %s" % (label, short(r.value, 200)))
                continue
            seen[k] += 1
            f = by_change.get(k)
            if f is None:
                prob("%s: change %s is not in the file sink's output" % (label, k))
            elif _strip_times(f) != _strip_times(doc):
                prob("%s: value differs from the file's envelope:\n    kafka: %s\n    file:  %s"
                     % (label, short(json.dumps(doc), 400), short(json.dumps(f), 400)))
            pos = _position(doc)
            if pos and r.headers.get("cdc.position") != "%d:%d" % pos:
                prob("%s: header cdc.position %r, the envelope says %d:%d"
                     % (label, r.headers.get("cdc.position"), pos[0], pos[1]))
            cols = keys.get(table)
            if doc["op"] == "t" or not cols:
                if r.key is not None:
                    prob("%s: %s of %s has key %s, want null" % (label, doc["op"], table, r.key))
            else:
                row = doc["after"] if doc["op"] in ("c", "u", "r") else doc["before"]
                expect = {col: row[col] for col in cols}
                if keydoc != expect:
                    prob("%s: key %s, want %s" % (label, short(r.key or "null", 100), expect))
            per_key[(r.partition, r.key)].append((r.offset, r, doc))

        for (part, key), items in per_key.items():
            if key is None:
                continue
            res.keys += 1
            items.sort(key=lambda x: x[0])
            last_pos = None
            first = set()
            data = [(o, rr, d) for o, rr, d in items if d is not None]
            for o, rr, d in data:
                pos = _position(d)
                if pos is None or pos in first:
                    continue
                first.add(pos)
                if last_pos is not None and pos <= last_pos:
                    res.out_of_order += 1
                    if strict_order:
                        prob("%s[%d]: key %s: change %s comes after %s"
                             % (topic, part, short(key, 60), pos, last_pos))
                last_pos = max(pos, last_pos) if last_pos else pos
            if data and last_pos is not None:
                newest = max(_position(d) for _, _, d in data if _position(d))
                if _position(data[-1][2]) != newest:
                    res.out_of_order += 1
                    if strict_order:
                        prob("%s[%d]: key %s: the last record is %s, not the newest change %s"
                             % (topic, part, short(key, 60), _position(data[-1][2]), newest))
            if not tombstones:
                if any(d is None for _, _, d in items):
                    prob("%s[%d]: key %s has a tombstone though tombstones_on_delete is off"
                         % (topic, part, short(key, 60)))
                continue
            for i, (o, rr, d) in enumerate(items):
                if d is not None and d["op"] == "d":
                    # exactly once: the very next record of the key; after
                    # restarts a replayed delete may come between
                    later = [x for _, _, x in items[i + 1:(i + 2 if exactly_once else None)]]
                    if None not in later:
                        prob("%s[%d]@%d: delete of key %s is not followed by a tombstone"
                             % (topic, part, o, short(key, 60)))
                if d is None:
                    prev = items[i - 1][2] if i else None
                    if not ((prev is not None and prev["op"] == "d") or
                            rr.headers.get("cdc.position") in moved):
                        prob("%s[%d]@%d: tombstone of key %s follows no delete and no key change"
                             % (topic, part, o, short(key, 60)))
    missing = [c for c in flat if seen[c.key()] == 0]
    res.changes = len(flat)
    res.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    if missing:
        prob("%d of %d oracle changes are not in Kafka, e.g. %s" % (len(missing), len(flat),
                                                                  missing[:5]))
    if exactly_once and res.duplicates:
        prob("%d changes are in Kafka more than once, e.g. %s"
             % (res.duplicates, [k for k, n in seen.items() if n > 1][:5]))
    if problems:
        raise AssertionError("\n".join(problems))
    return res


def read_topics(bootstrap, topics, timeout=120):
    return {t: kcat_read(bootstrap, t, timeout) for t in topics}
