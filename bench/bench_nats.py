"""BENCH_ONLY=nats: a drain into a nats sink next to the drain into a file
and next to a plain NATS publisher.

One backlog (the drain's batched one: 1,000 transactions x 1,000 rows, or
100 x 1,000 with BENCH_QUICK), four measurements per run: the limit client,
cdc into the file sink, and cdc into a nats sink alone, all streaming the
same WAL; and the peer, bench/nats_pub.c: libnats publishing as many
messages of the envelopes' size (read back from the stream cdc filled) with
the same headers, asynchronously with the same max_pending, into a stream
of its own: what this server and client library take on this machine, with
no database behind.  The server is a real nats-server with JetStream on 127.0.0.1, a
fresh file-storage stream per run (the default sync: the server syncs its
files every 2 minutes, as the file sink's fdatasync is not matched here:
say so next to the figure).  What the stream holds is counted from its
state (the integration tests read every message).  The `nats` column is the
server's CPU in cores."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness.nats import NatsClient  # noqa: E402  (the harness's own protocol client)


class NatsServer:
    """nats-server in the bench's work directory; looks enough like
    bench.Proc for cleanup."""

    def __init__(self, bench, port, preexec):
        self.name = "nats-server"
        self.port = port
        store = os.path.join(bench.work, "nats")
        self.p = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port),
                                   "-sd", store], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, preexec_fn=preexec,
                                  start_new_session=True)
        self.pid = self.p.pid
        bench.procs.add(self)
        deadline = time.monotonic() + 20
        while True:
            try:
                NatsClient(port).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.p.poll() is not None:
                    raise RuntimeError("nats-server did not start")
                time.sleep(0.05)

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)


def nats_sink(port, prefix):
    return ["  - sink_id: nats", "    sink_type: nats", "    nats:",
            "      url: nats://127.0.0.1:%d" % port,
            "      subject: \"%s.{schema}.{table}\"" % prefix]


def m_nats(bench, bl, server, proc_cpu_seconds, run, sizes):
    slot = bench.copy_slot(bl)
    prefix = slot.replace("_", "-")
    stream = "BENCH%d" % run
    client = NatsClient(server.port)
    client.add_stream(stream, [prefix + ".>"])
    pipe, plat = bench.pipeline(slot, nats_sink(server.port, prefix))
    bench.checkpoint()
    cpu0 = proc_cpu_seconds(server.pid)
    res, p = bench.timed(bl, "nats", slot,
                         lambda: bench.cdc_proc(pipe, plat, slot + ".nats", bl["end"]),
                         bl["rows"],
                         lambda proc: client.stream_info(stream)["state"]["messages"])
    cpu1 = proc_cpu_seconds(server.pid)
    if cpu0 is not None and cpu1 is not None:
        res["sinkdb_cpu"] = cpu1 - cpu0  # the server's CPU
    bench.show(res, "  (sink = nats-server)  peak RSS %.1f MB" % ((res["hwm_kb"] or 0) / 1024))
    if not res.get("error"):
        sizes.append(len(client.message(stream, 1).data))  # an envelope's size
    client.js("STREAM.DELETE." + stream)
    client.close()
    bench.drop_slot(slot)
    return res


def m_peer(bench, bl, server, binary, run, size, proc_cpu_seconds):
    """nats_pub: the same number of messages of `size` bytes."""
    stream = "PEER%d" % run
    client = NatsClient(server.port)
    client.add_stream(stream, ["peer%d.>" % run])
    cpu0 = proc_cpu_seconds(server.pid)
    r = subprocess.run([binary, "nats://127.0.0.1:%d" % server.port, "peer%d.public.t" % run,
                        str(bl["rows"]), str(size), "4096"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=900)
    cpu1 = proc_cpu_seconds(server.pid)
    held = client.stream_info(stream)["state"]["messages"]
    client.js("STREAM.DELETE." + stream)
    client.close()
    if r.returncode != 0 or held != bl["rows"]:
        bench.say("    peer failed: %s (%d messages held)" % (r.stderr.strip()[-300:], held))
        return {"error": "peer failed"}
    secs = json.loads(r.stdout)["seconds"]
    res = {"rate": bl["rows"] / secs, "seconds": secs,
           "nats_cpu": (cpu1 - cpu0) / secs if cpu0 is not None and cpu1 is not None else None}
    bench.say("    peer      %9s msg/s %7.2f s  (libnats, %d-byte messages)"
              % ("{:,}".format(int(res["rate"])), secs, size))
    return res


def run(bench, backlog, preexec, proc_cpu_seconds, runs, port, peer_bin):
    """Writes the backlog and measures limit, file and nats `runs` times;
    returns the lines of the result table."""
    if not shutil.which("nats-server"):
        return ["", "NATS: nats-server is not installed (scripts/install-deps.sh)"]
    server = NatsServer(bench, port, preexec)
    sizes = []
    name, title, ntx, nrows = backlog
    bench.say("\n== nats: %s, %d run(s); nats-server on port %d" % (title, runs, port))
    bl = bench.write_backlog(name, title, ntx, nrows, 1)
    for rep in range(runs):
        bench.say("  run %d/%d" % (rep + 1, runs))
        bl.setdefault("limit", []).append(bench.m_limit(bl))
        bl.setdefault("file", []).append(bench.m_file(bl))
        bl.setdefault("nats", []).append(
            bench.paired(title, "nats",
                         lambda: m_nats(bench, bl, server, proc_cpu_seconds, rep, sizes)))
        bl.setdefault("peer", []).append(
            m_peer(bench, bl, server, peer_bin, rep, sizes[-1] if sizes else 600,
                   proc_cpu_seconds))
    bench.drop_slot(bl["tmpl"])
    server.signal(signal.SIGTERM)
    L = [""]
    w = L.append
    rows, fmt, _ = bench.sink_rows(bl, (("limit (receive-only client)", "limit"),
                                        ("cdc -> file (fsync'd batches)", "file"),
                                        ("cdc -> nats (acknowledged)", "nats")), 34, "nats")
    w("NATS drain of %s (%s of WAL) into a nats sink alone: nats-server with JetStream, one "
      "file-storage stream" % (title, bl["wal"]))
    w(fmt % ("", "rows/s", "runs (k/s)", "time", "x limit", "x file", "cdc", "nats", "mach"))
    L.extend(rows)
    peers = sorted((p for p in bl["peer"] if not p.get("error")), key=lambda p: p["rate"])
    if peers:
        mid = peers[len(peers) // 2]
        w(fmt % ("peer: libnats publisher (no db)", "{:,}".format(int(mid["rate"])),
                 "%d-%d" % (peers[0]["rate"] / 1000, peers[-1]["rate"] / 1000),
                 "%.2f s" % mid["seconds"], "-", "-", "-",
                 bench._c(mid["nats_cpu"]) if mid["nats_cpu"] is not None else "-", "-"))
        a = bench._agg(bl["nats"])
        if a:
            w("  cdc -> nats / peer = %.2f (median of %d)" % (a["rate"] / mid["rate"], len(peers)))
    else:
        w("  peer: libnats publisher failed")
    w("  the stream's files are synced by the server on its own schedule (2 min), the file "
      "sink's by fdatasync before each confirmation")
    return L
