"""BENCH_ONLY=kafka: capture into Kafka next to the drain into a file, and
delivery out of Kafka next to kcat.

One backlog (the drain's batched one: 1,000 transactions x 1,000 rows, or
100 x 1,000 with BENCH_QUICK), three measurements per run, all streaming the
same WAL: the limit client, cdc into the file sink, and cdc into a kafka
sink alone.  Kafka is librdkafka's mock cluster (tests/helpers/kafka_mock.c,
3 brokers on 127.0.0.1, in memory) with the topic pre-created at 8
partitions, a fresh topic per run.  What Kafka holds is counted from the
partitions' end offsets (kcat -Q); the mock keeps only the newest 5 MiB of
each partition, so the records themselves are not read back here (the
integration tests read every record).  The mock is a single process doing a
broker's work in memory; a real cluster's disks and replication are not in
the figure.

Delivery (the Kafka transport's deliver role): the capture role fills a
fresh 8-partition topic from the same backlog, then, in the same run, kcat
reads every record the mock still holds into /dev/null (`kcat -C -e`), and
`cdc run --role deliver` reads the same records into a file sink in a fresh
consumer group.  The deliver figure counts from the group's first partition
assignment (the join is the coordinator's, a few seconds on the mock) to the
file holding every record."""

import calendar
import json
import os
import re
import select
import signal
import subprocess
import time

PARTITIONS = 8
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "900"))


class MockKafka:
    """The mock cluster process; looks enough like bench.Proc for cleanup."""

    def __init__(self, bench, binary, preexec):
        self.name = "kafka_mock"
        self.err_path = os.path.join(bench.logs, "kafka_mock.err")
        with open(self.err_path, "wb") as err:
            self.p = subprocess.Popen([binary, "--brokers", "3"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=err, cwd=bench.work,
                                      preexec_fn=preexec, start_new_session=True)
        self.pid = self.p.pid
        bench.procs.add(self)
        r, _, _ = select.select([self.p.stdout], [], [], 20)
        line = self.p.stdout.readline() if r else b""
        if not line:
            raise RuntimeError("kafka_mock did not start")
        self.bootstrap = json.loads(line)["bootstrap"]

    def command(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        r, _, _ = select.select([self.p.stdout], [], [], 10)
        answer = self.p.stdout.readline().decode().strip() if r else ""
        if not answer.startswith("ok"):
            raise RuntimeError("kafka_mock %r: %s" % (line, answer or "no answer"))

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)


def end_offsets(bootstrap, topic):
    """Sum of the partitions' end offsets: the records Kafka holds."""
    argv = ["kcat", "-b", bootstrap, "-Q", "-J"]
    for p in range(PARTITIONS):
        argv += ["-t", "%s:%d:-1" % (topic, p)]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    if r.returncode != 0:
        return -1
    parts = json.loads(r.stdout).get(topic, {})
    return sum(v["offset"] for k, v in parts.items() if k != "topic")


def kafka_sink(bootstrap, prefix):
    return ["  - sink_id: kafka", "    sink_type: kafka", "    kafka:",
            "      bootstrap_servers: %s" % bootstrap,
            "      topic: \"%s.{schema}.{table}\"" % prefix]


def m_kafka(bench, bl, mock, proc_cpu_seconds):
    slot = bench.copy_slot(bl)
    prefix = slot.replace("_", "-")
    topic = "%s.public.bench_rows" % prefix
    mock.command("topic %s %d" % (topic, PARTITIONS))
    pipe, plat = bench.pipeline(slot, kafka_sink(mock.bootstrap, prefix))
    bench.checkpoint()
    mock_cpu0 = proc_cpu_seconds(mock.pid)
    res, p = bench.timed(bl, "kafka", slot,
                         lambda: bench.cdc_proc(pipe, plat, slot + ".kafka", bl["end"]),
                         bl["rows"], lambda proc: end_offsets(mock.bootstrap, topic))
    mock_cpu1 = proc_cpu_seconds(mock.pid)
    if mock_cpu0 is not None and mock_cpu1 is not None:
        res["sinkdb_cpu"] = mock_cpu1 - mock_cpu0  # the mock cluster's CPU
    res["startup_s"] = bench.startup_seconds(p)
    bench.show(res, "  (sink = the mock cluster)  peak RSS %.1f MB" % ((res["hwm_kb"] or 0) / 1024))
    bench.drop_slot(slot)
    return res


def partition_offsets(bootstrap, topic, which):
    """{partition: offset}: which -1 = the ends, -2 = the beginnings."""
    argv = ["kcat", "-b", bootstrap, "-Q", "-J"]
    for p in range(PARTITIONS):
        argv += ["-t", "%s:%d:%d" % (topic, p, which)]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("kcat -Q: %s" % r.stderr[-300:])
    parts = json.loads(r.stdout).get(topic, {})
    return {int(k): v["offset"] for k, v in parts.items() if k != "topic"}


def _transport(bench, slot, prefix, mock, group):
    """The pipeline (its topic prefix made unique) and a platform with
    transport_mode kafka."""
    out = os.path.join(bench.work, slot + ".deliver.jsonl")
    pipe, plat = bench.pipeline(slot, bench.file_sink(out))
    with open(pipe) as f:
        text = f.read()
    with open(pipe, "w") as f:
        f.write("topic_prefix: %s\n" % prefix + text)
    with open(plat, "a") as f:
        f.write("transport_mode: kafka\nkafka:\n  bootstrap_servers: %s\n  group_id: %s\n"
                "  commit_interval_seconds: 1\n" % (mock.bootstrap, group))
    return pipe, plat, out


def _count_lines(path, state):
    """Lines in path, reading only what was appended since the last call."""
    try:
        with open(path, "rb") as f:
            f.seek(state.get("pos", 0))
            data = f.read()
    except OSError:
        return state.get("lines", 0)
    state["pos"] = state.get("pos", 0) + len(data)
    state["lines"] = state.get("lines", 0) + data.count(b"\n")
    return state["lines"]


def _log_time(text, event):
    """The unix time of the first `event` line of a cdc log, or None."""
    for line in text.splitlines():
        if "event=" + event in line:
            m = re.search(r"ts=(\S+)Z", line)
            if m:
                t = calendar.timegm(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S"))
                return t + float("0" + m.group(1)[19:])
    return None


def m_deliver(bench, bl, mock):
    """kcat and the deliver role reading the same pre-filled topic; returns
    {"kcat": rate, "deliver": rate, "records": n} or {"error": why}."""
    slot = bench.copy_slot(bl)
    prefix = slot.replace("_", "-")
    topic = "%s.public.bench_rows" % prefix
    mock.command("topic %s %d" % (topic, PARTITIONS))
    pipe, plat, out = _transport(bench, slot, prefix, mock, prefix + "-group")
    fill = bench.cdc_proc(pipe, plat, slot + ".capture", bl["end"], extra=["--role", "capture"])
    fill.wait(TIMEOUT)
    bench.drop_slot(slot)
    if fill.rc != 0:
        return {"error": "capture exited %s:\n%s" % (fill.rc, fill.log_tail())}
    lo = partition_offsets(mock.bootstrap, topic, -2)
    hi = partition_offsets(mock.bootstrap, topic, -1)
    records = sum(hi[p] - lo.get(p, 0) for p in hi)
    t0 = time.monotonic()
    r = subprocess.run(["kcat", "-b", mock.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                        "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT)
    kcat_s = time.monotonic() - t0
    if r.returncode != 0:
        return {"error": "kcat -C: %s" % r.stderr[-300:]}
    proc = bench.cdc_proc(pipe, plat, slot + ".deliver", extra=["--role", "deliver"])
    state = {}
    deadline = time.monotonic() + TIMEOUT
    while _count_lines(out, state) < records and proc.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    done = time.time()
    got = state.get("lines", 0)
    proc.signal(signal.SIGTERM)
    proc.wait(120)
    start = _log_time(proc.stderr(), "kafka.assigned")
    if got < records or start is None:
        return {"error": "the deliver role wrote %d of %d records:\n%s"
                % (got, records, proc.log_tail())}
    deliver_s = max(1e-6, done - start)
    res = {"records": records, "kcat": records / kcat_s, "deliver": records / deliver_s,
           "kcat_s": kcat_s, "deliver_s": deliver_s, "join_s": start - proc.wall0}
    bench.say("    deliver   %9s rec/s %7.2f s (after %.1f s to join the group); kcat -C -e "
              "%s rec/s %.2f s; %d records" % ("{:,}".format(int(res["deliver"])), deliver_s,
                                               res["join_s"], "{:,}".format(int(res["kcat"])),
                                               kcat_s, records))
    return res


def run(bench, backlog, binary, preexec, proc_cpu_seconds, runs):
    """Writes the backlog and measures limit, file and kafka `runs` times;
    returns the lines of the result table."""
    mock = MockKafka(bench, binary, preexec)
    name, title, ntx, nrows = backlog
    bench.say("\n== kafka: %s, %d run(s); mock cluster at %s" % (title, runs, mock.bootstrap))
    bl = bench.write_backlog(name, title, ntx, nrows, 1)
    for rep in range(runs):
        bench.say("  run %d/%d" % (rep + 1, runs))
        bl.setdefault("limit", []).append(bench.m_limit(bl))
        bl.setdefault("file", []).append(bench.m_file(bl))
        bl.setdefault("kafka", []).append(
            bench.paired(title, "kafka", lambda: m_kafka(bench, bl, mock, proc_cpu_seconds)))
        bl.setdefault("deliver", []).append(m_deliver(bench, bl, mock))
    bench.drop_slot(bl["tmpl"])
    mock.command("quit")
    L = [""]
    w = L.append
    rows, fmt, file_ = bench.sink_rows(bl, (("limit (receive-only client)", "limit"),
                                            ("cdc -> file (fsync'd batches)", "file"),
                                            ("cdc -> kafka (acks=all, idempotent)", "kafka")),
                                       34, "kafka")
    w("KAFKA capture of %s (%s of WAL) into a kafka sink alone: the mock cluster, one topic "
      "of %d partitions" % (title, bl["wal"], PARTITIONS))
    w(fmt % ("", "rows/s", "runs (k/s)", "time", "x limit", "x file", "cdc", "sink", "mach"))
    L.extend(rows)
    k = bench._agg(bl["kafka"])
    if k and file_:
        w("  kafka / file = %.2f (goal >= 0.80: %s); sink = the mock cluster's CPU in cores"
          % (k["rate"] / file_["rate"], "met" if k["rate"] >= 0.8 * file_["rate"] else "MISSED"))
    ok = [d for d in bl["deliver"] if not d.get("error")]
    w("")
    w("KAFKA delivery: the deliver role (consumer group -> file sink) next to kcat -C -e "
      "(-> /dev/null), the same %d-partition topic in the same run" % PARTITIONS)
    if not ok:
        w("  failed: %s" % "; ".join(d["error"].splitlines()[0] for d in bl["deliver"]))
        return L
    ok.sort(key=lambda d: d["deliver"] / d["kcat"])
    mid = ok[len(ok) // 2]
    w("  %-34s %9s rec/s %7.2f s  (%d records)" % ("kcat -C -e > /dev/null",
                                                   "{:,}".format(int(mid["kcat"])),
                                                   mid["kcat_s"], mid["records"]))
    w("  %-34s %9s rec/s %7.2f s  (+%.1f s to join the group)"
      % ("cdc deliver -> file (fsync'd)", "{:,}".format(int(mid["deliver"])), mid["deliver_s"],
         mid["join_s"]))
    ratio = mid["deliver"] / mid["kcat"]
    w("  deliver / kcat = %.2f (median of %d; goal >= 0.80: %s)"
      % (ratio, len(ok), "met" if ratio >= 0.8 else "MISSED"))
    return L
