#!/usr/bin/env python3
"""The cdc benchmark driver.  Started by bench/run.sh, which builds cdc and the
C helpers first; see docs/benchmarks.md for what is measured and how.

    bench.py --cdc BIN --helpers DIR --work DIR

DIR (--work) is a fresh directory this script owns: both PostgreSQL clusters,
sink output, logs and state live in it, and it is removed at the end, also
after Ctrl-C or SIGTERM.  Settings come from the environment:

  BENCH_RUNS=N          runs per figure, the median is printed (default 3)
  BENCH_QUICK=1         small backlogs and short latency runs (smoke test)
  BENCH_LAT_SECONDS=S   seconds of load per latency run (default 20, quick 5)
  BENCH_LAT_RATES=a,b   offered loads in rows/s (default 10000,50000)
  BENCH_LAT_TXN_ROWS=N  rows per transaction of the latency load (default: rate / 1000,
                        i.e. 1,000 transactions/s: 10 rows at 10k rows/s, 50 at 50k)
  BENCH_PROFILE=1       also record a CPU profile of cdc during one file drain of the
                        batched and of the single-row backlog
  BENCH_TIMEOUT=S       longest a single measurement may take (default 900)
  BENCH_KEEP=1          keep the work directory (logs, outputs) at the end
  BENCH_JSON=FILE       also write every individual measurement to FILE
  BENCH_ONLY=drain|ud|snapshot|latency|kafka|iceberg|nats   run one part only (default:
                        all but kafka, iceberg and nats; ud: the update/delete backlog of the
                        drains only, bench/bench_ud.py; kafka: capture into the kafka sink
                        next to the file drain, bench/bench_kafka.py; iceberg: a drain into
                        an upsert Iceberg table next to the file drain, bench/bench_iceberg.py;
                        nats: a drain into a nats sink (a real nats-server) next to the file
                        drain, bench/bench_nats.py)
  BENCH_WEBHOOK_BATCH=N the webhook sink's batch_size (default 100: changes per request)
  BENCH_LIMIT_LOWAT=N   bytes the limit client lets arrive before it reads (default 65536)
  BENCH_WEBHOOK=1       measure the webhook sink even if `cdc validate` still refuses it
                        (for work on the sink itself; normally its rows then say n/a)
  BENCH_VS=BIN          (bench/run.sh) every cdc measurement also with the cdc binary BIN,
                        in alternating pairs; a PAIRS table compares them (bench_pairs.py)
"""

import argparse
import calendar
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

import bench_iceberg
import bench_kafka
import bench_nats
import bench_peers
import bench_ud
from bench_settings import (BACKLOGS, CLUSTER_SETTINGS, JSON_OUT, KEEP, LIMIT_LOWAT,
                            ONLY, PASSWORD, PEER_CFG, PGBIN, PROFILE, PUBLICATION, QUICK,
                            ROW_COLUMNS, ROW_VALUES, RUNS, SNAPSHOT_ROWS, TABLES, TIMEOUT)
from bench_procs import (Cluster, Interrupted, LineCounter, Proc, _child_setup, fmt_int, free_port,
                         kv, machine_cpu, on_signal, proc_cpu_seconds, sink_backend_cpu,
                         start_thread, walsender_cpu)
from bench_latency import Latency
from bench_pairs import Pairs
from bench_report import Report
from bench_webhook import Webhook


# One benchmark run; its latency runs, its webhook drains, its paired runs
# (BENCH_VS) and its report are the mixins of bench_latency.py,
# bench_webhook.py, bench_pairs.py and bench_report.py.
class Bench(Latency, Pairs, Report, Webhook):
    def __init__(self, args):
        self.cdc = os.path.abspath(args.cdc)
        self.helpers = os.path.abspath(args.helpers)
        self.work = os.path.abspath(args.work)
        self.logs = os.path.join(self.work, "logs")
        self.out = os.path.join(self.work, "out")
        self.state = os.path.join(self.work, "state")
        for d in (self.logs, self.out, self.state):
            os.makedirs(d, exist_ok=True)
        self.procs = set()
        self.clusters = []
        self.results = []  # every individual measurement
        self.n = 0
        self.ncpu = os.cpu_count()
        self.webhook_status = None
        self.prof = []  # (backlog, profile) pairs
        self.pairs_init(args.cdc_vs)

    # ---------------- helpers

    def say(self, msg):
        print(msg, flush=True)

    def uniq(self, prefix):
        self.n += 1
        return "%s_%d" % (prefix, self.n)

    def cleanup(self):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for p in list(self.procs):
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in list(self.procs):
            while p.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            p.kill()
            try:
                p.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for c in self.clusters:
            try:
                c.stop()
            except Exception as e:  # keep cleaning up
                print("cleanup: %s" % e, file=sys.stderr)
        if KEEP:
            print("kept %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def helper(self, name):
        return os.path.join(self.helpers, name)

    def record(self, **kw):
        if self.cdc_vs:
            kw["binary"] = self.binary
        self.results.append(kw)
        return kw

    # ---------------- setup

    def machine_info(self):
        model = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
        pgv = "?"
        if os.path.exists(os.path.join(PGBIN, "postgres")):
            out = subprocess.run([os.path.join(PGBIN, "postgres"), "--version"],
                                 stdout=subprocess.PIPE, text=True).stdout
            m = re.search(r"\(PostgreSQL\) (\S+)", out)
            pgv = m.group(1) if m else out.strip()
        cdcv = subprocess.run([self.cdc, "--version"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True).stdout.strip()
        self.mem = mem
        rev = os.environ.get("BENCH_CDC_REV", "")
        return "%d cores (%s), %.1f GiB RAM, Linux %s, PostgreSQL %s, %s%s" % (
            self.ncpu, model or platform.machine(), mem / 2 ** 30, platform.release(), pgv, cdcv,
            " (%s)" % rev if rev else "")

    def background_load(self, seconds=1.0):
        b0, t0 = machine_cpu()
        time.sleep(seconds)
        b1, t1 = machine_cpu()
        return (b1 - b0) / max(1, t1 - t0) * self.ncpu

    def start_clusters(self):
        gib = self.mem / 2 ** 30
        src = dict(CLUSTER_SETTINGS)
        src["shared_buffers"] = "%dMB" % min(2048, max(128, int(gib * 1024 / 8)))
        snk = dict(CLUSTER_SETTINGS)
        snk["shared_buffers"] = "%dMB" % min(1024, max(128, int(gib * 1024 / 16)))
        self.src = Cluster(self, "pg-source", src)
        self.snk = Cluster(self, "pg-sink", snk)
        for c in (self.src, self.snk):
            self.clusters.append(c)
            c.start()
        self.src.one("postgres", "CREATE DATABASE src")
        conn = self.src.connect("src")
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE bench_rows (id bigint PRIMARY KEY, %s)" % ROW_COLUMNS)
            cur.execute("CREATE TABLE bench_lat (id bigint GENERATED ALWAYS AS IDENTITY "
                        "PRIMARY KEY, %s)" % ROW_COLUMNS)
            cur.execute("CREATE PUBLICATION %s FOR TABLE %s" % (PUBLICATION, ", ".join(TABLES)))
            # The native subscriptions' own: cdc adds its signal table to its
            # publication, which the mirror's schema does not have.
            cur.execute("CREATE PUBLICATION %s FOR TABLE %s"
                        % (PEER_CFG["publication"], ", ".join(TABLES)))
        conn.close()

    def write_backlog(self, name, title, ntx, nrows, first_id, body=None):
        """Writes one backlog while no consumer runs: ntx transactions of
        nrows inserted rows each, or the statement `body` (ntx x nrows
        changes).  A template slot is created just before; every
        measurement streams a copy of it up to the backlog's end LSN, so all
        of them stream exactly the same WAL.  Nothing else is written to the
        source until the backlog's measurements are done, so there is
        nothing after the end either."""
        conn = self.src.connect("src")
        cur = conn.cursor()
        tmpl = "tmpl_" + name
        cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (tmpl,))
        t0 = time.monotonic()
        # Asynchronous commit only makes writing the backlog faster: the WAL
        # it produces is the same.
        cur.execute("SET synchronous_commit = off")
        if body:
            cur.execute(body)
        elif ntx == 1:
            cur.execute("INSERT INTO bench_rows SELECT g, %s FROM generate_series(%%s, %%s) g"
                        % ROW_VALUES, (first_id, first_id + nrows - 1))
        else:
            cur.execute(
                "DO $$ BEGIN FOR t IN 0..%d LOOP "
                "INSERT INTO bench_rows SELECT g, %s FROM generate_series(%d + t * %d, "
                "%d + (t + 1) * %d - 1) g; COMMIT; END LOOP; END $$"
                % (ntx - 1, ROW_VALUES.replace("%%", "%"), first_id, nrows, first_id, nrows))
        # The insert position right after the last commit: the end of its
        # commit record (pg_current_wal_lsn() is the write position, which
        # lags behind under asynchronous commit).
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        end = cur.fetchone()[0]
        cur.execute("SET synchronous_commit = on")
        while True:
            cur.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (end,))
            if cur.fetchone()[0]:
                break
            time.sleep(0.05)
        cur.execute("SELECT pg_size_pretty(pg_wal_lsn_diff(%s, confirmed_flush_lsn)) "
                    "FROM pg_replication_slots WHERE slot_name = %s", (end, tmpl))
        wal = cur.fetchone()[0]
        took = time.monotonic() - t0
        cur.execute("CHECKPOINT")
        conn.close()
        self.say("  written in %.1f s: %s of WAL, ending at %s" % (took, wal, end))
        return dict(name=name, title=title, ntx=ntx, rows=ntx * nrows, tmpl=tmpl, end=end,
                    wal=wal, first_id=first_id)

    # ---------------- slots and configs

    def copy_slot(self, bl):
        name = self.uniq("m_" + bl["name"])
        self.src.one("src", "SELECT pg_copy_logical_replication_slot(%s, %s)", (bl["tmpl"], name))
        return name

    def drop_slot(self, name):
        conn = self.src.connect("src")
        try:
            with conn.cursor() as cur:
                for _ in range(200):
                    cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                (name,))
                    r = cur.fetchone()
                    if r is None:
                        return
                    if not r[0]:
                        cur.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                        return
                    time.sleep(0.05)
        finally:
            conn.close()

    def checkpoint(self):
        for c in (self.src, self.snk):
            c.one("postgres", "CHECKPOINT")

    def pipeline(self, slot, sink, snapshot_mode="never", bl=None):
        """A pipeline config streaming `slot` into `sink`: the tables and
        publication of backlog bl (if it has its own) or the usual ones."""
        bl = bl or {}
        lines = [
            "pipeline_id: bench",
            "source:",
            "  host: 127.0.0.1",
            "  port: %d" % self.src.port,
            "  database: src",
            "  username: postgres",
            "  password: ${BENCH_PW}",
            "  tables: [%s]" % ", ".join(bl.get("tables", TABLES)),
            "  slot_name: %s" % slot,
            "  publication_name: %s" % bl.get("publication", PUBLICATION),
            "  snapshot_mode: %s" % snapshot_mode,
            "sinks:",
        ] + sink
        path = os.path.join(self.work, slot + ".pipeline.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        plat = os.path.join(self.work, slot + ".platform.yaml")
        with open(plat, "w") as f:
            f.write("state_dir: %s\nhealth_enabled: false\n" % os.path.join(self.state, slot))
        return path, plat

    def file_sink(self, path):
        return ["  - sink_id: file", "    sink_type: file", "    file:", "      path: %s" % path]

    def mirror_sink(self):
        return ["  - sink_id: mirror", "    sink_type: postgres", "    postgres:",
                "      host: 127.0.0.1", "      port: %d" % self.snk.port,
                "      database: mirror", "      username: postgres",
                "      password: ${BENCH_PW}", "      mode: replica"]

    # ---------------- measurements

    def cdc_proc(self, pipeline, plat, name, stop_lsn=None, prefix=(), extra=()):
        argv = list(prefix) + [self.cdc, "run", pipeline, "--platform-config", plat]
        if stop_lsn:
            argv += ["--stop-at-lsn", stop_lsn]
        argv += list(extra)
        return Proc(self, argv, name, env={"BENCH_PW": PASSWORD}, sample_rss=not prefix)

    @staticmethod
    def startup_seconds(proc):
        """exec -> `source.streaming` (cdc's log has millisecond timestamps)."""
        for line in proc.stderr().splitlines():
            if "event=source.streaming" in line:
                m = re.search(r"ts=(\S+)Z", line)
                if m:
                    t = calendar.timegm(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S"))
                    t += float("0" + m.group(1)[19:])
                    return max(0.0, t - proc.wall0)
        return None

    def timed(self, bl, kind, slot, spawn, expect_rows, count_fn):
        """Runs one drain measurement: spawn() starts the process; its rows
        are counted with count_fn(proc) once it has exited."""
        ws = walsender_cpu(self.src, slot)
        sb = sink_backend_cpu(self.snk) if kind == "mirror" else None
        b0, t0 = machine_cpu()
        proc = spawn()
        proc.wait(TIMEOUT)
        b1, t1 = machine_cpu()
        wcpu = ws.stop()
        scpu = sb.stop() if sb else None
        res = dict(backlog=bl["name"], kind=kind, rows=expect_rows, seconds=proc.elapsed,
                   rate=expect_rows / proc.elapsed, rc=proc.rc, cpu=proc.cpu,
                   walsender_cpu=wcpu, sinkdb_cpu=scpu,
                   machine=(b1 - b0) / max(1, t1 - t0) * self.ncpu,
                   hwm_kb=proc.hwm_kb or None, error=None)
        if proc.rc != 0:
            res["error"] = "exit %s" % proc.rc
            self.say("    %s failed (exit %s); log:\n%s" % (kind, proc.rc, proc.log_tail()))
        else:
            got = count_fn(proc)
            res["got"] = got
            if got != expect_rows:
                res["error"] = "delivered %s of %s rows" % (got, expect_rows)
                self.say("    %s: delivered %s rows, expected %s" % (kind, got, expect_rows))
        self.record(**res)
        return res, proc

    def show(self, res, extra=""):
        if res.get("error"):
            self.say("    %-11s FAILED (%s)" % (res["kind"], res["error"]))
            return

        def c(v):
            return "%.2f" % (v / res["seconds"]) if v is not None else "-"

        who = "client" if res["kind"] in ("limit", "eager", "recvlogical") else "cdc"
        sink = ", sink db %s" % c(res["sinkdb_cpu"]) if res["kind"] == "mirror" else ""
        self.say("    %-11s %9s rows/s %7.2f s  cpu (cores): %s %s, walsender %s%s, machine %.2f%s"
                 % (res["kind"], fmt_int(res["rate"]), res["seconds"], who, c(res["cpu"]),
                    c(res["walsender_cpu"]), sink, res["machine"], extra))

    def m_limit(self, bl, kind="limit"):
        """The limit: pgo_recv reading in chunks of LIMIT_LOWAT bytes; kind
        "eager": the same client reading every message as it arrives."""
        slot = self.copy_slot(bl)
        self.checkpoint()
        lowat = LIMIT_LOWAT if kind == "limit" else 0

        def spawn():
            return Proc(self, [self.helper("pgo_recv"), self.src.conninfo("src", True), slot,
                               bl.get("publication", PUBLICATION), bl["end"], str(lowat)],
                        slot + "." + kind)

        def count(proc):
            return int(kv(proc.stdout()).get("rows", -1))

        res, p = self.timed(bl, kind, slot, spawn, bl["rows"], count)
        if not res["error"]:
            out = kv(p.stdout())
            res["connect_s"] = float(out.get("connect_s", 0))
        self.show(res)
        self.drop_slot(slot)
        return res

    def m_recvlogical(self, bl):
        """The same limit measured with PostgreSQL's own client (it cannot
        count what it received: its exit status is checked)."""
        slot = self.copy_slot(bl)
        self.checkpoint()
        argv = ["pg_recvlogical", "-d", self.src.conninfo("src"), "-S", slot, "--start",
                "--no-loop", "-E", bl["end"], "-o", "proto_version=2", "-o",
                "publication_names=" + PUBLICATION, "-o", "streaming=on", "-o", "messages=true",
                "-f", "/dev/null"]
        res, _ = self.timed(bl, "recvlogical", slot,
                            lambda: Proc(self, argv, slot + ".recvlogical"),
                            bl["rows"], lambda proc: bl["rows"])
        self.show(res)
        self.drop_slot(slot)
        return res

    @staticmethod
    def count_lines(path):
        return LineCounter(path).count()

    def m_file(self, bl, perf=None):
        slot = self.copy_slot(bl)
        out = os.path.join(self.out, slot + ".jsonl")
        open(out, "wb").close()
        pipe, plat = self.pipeline(slot, self.file_sink(out), bl=bl)
        self.checkpoint()
        res, p = self.timed(bl, "file" if not perf else "profile", slot,
                            lambda: self.cdc_proc(pipe, plat, slot + ".file", bl["end"],
                                                  prefix=perf or ()),
                            bl["rows"], lambda proc: self.count_lines(out))
        res["startup_s"] = self.startup_seconds(p)
        try:
            res["bytes"] = os.path.getsize(out)
            os.unlink(out)
        except OSError:
            pass
        shutil.rmtree(os.path.join(self.state, slot), ignore_errors=True)
        if not perf:
            self.show(res, "  peak RSS %.1f MB  startup %s" % (
                (res["hwm_kb"] or 0) / 1024,
                "%.0f ms" % (res["startup_s"] * 1000) if res["startup_s"] is not None else "?"))
        self.drop_slot(slot)
        return res

    def m_mirror(self, bl):
        """cdc into a mirror database that is empty or, for a backlog with a
        mirror_template, a copy of it; checked by counting the backlog's rows
        or with the backlog's own check."""
        slot = self.copy_slot(bl)
        self.snk.one("postgres", "DROP DATABASE IF EXISTS mirror WITH (FORCE)")
        self.snk.one("postgres", "CREATE DATABASE mirror" + (
            " TEMPLATE " + bl["mirror_template"] if bl.get("mirror_template") else ""))
        pipe, plat = self.pipeline(slot, self.mirror_sink(), bl=bl)
        self.checkpoint()

        def count(proc):
            if bl.get("check"):
                return bl["rows"] if bl["check"](self) else -1
            first, last = bl["first_id"], bl["first_id"] + bl["rows"] - 1
            return self.snk.one("mirror", "SELECT count(*) FROM public.bench_rows "
                                "WHERE id BETWEEN %s AND %s", (first, last))

        res, _ = self.timed(bl, "mirror", slot,
                            lambda: self.cdc_proc(pipe, plat, slot + ".mirror", bl["end"]),
                            bl["rows"], count)
        self.show(res)
        self.drop_slot(slot)
        return res

    def drains(self):
        self.backlogs = []
        first = 1
        for name, title, ntx, nrows in BACKLOGS:
            self.say("\n== drain: %s, %d run(s)" % (title, RUNS))
            bl = self.write_backlog(name, title, ntx, nrows, first)
            first += bl["rows"]
            self.backlogs.append(bl)
            for rep in range(RUNS):
                self.say("  run %d/%d" % (rep + 1, RUNS))
                bl.setdefault("limit", []).append(self.m_limit(bl))
                bl.setdefault("eager", []).append(self.m_limit(bl, "eager"))
                bl.setdefault("recvlogical", []).append(self.m_recvlogical(bl))
                bl.setdefault("file", []).append(
                    self.paired(title, "file", lambda: self.m_file(bl)))
                if name == "bigtxn":
                    continue
                bl.setdefault("mirror", []).append(
                    self.paired(title, "mirror", lambda: self.m_mirror(bl)))
                bl.setdefault("native", []).append(
                    bench_peers.m_native_drain(self, bl, PEER_CFG, start_thread))
                if self.webhook_status is None:
                    bl.setdefault("webhook", []).append(
                        self.paired(title, "webhook", lambda: self.m_webhook(bl)))
            if PROFILE and name in ("batch", "single"):
                self.prof.append((bl, self.profile(bl)))
            # The template pins WAL and catalog rows: not needed any more.
            self.drop_slot(bl["tmpl"])
        bench_ud.drain(self, first)

    # ---------------- initial snapshot

    def fill_for_snapshot(self):
        """bench_rows holds at least SNAPSHOT_ROWS rows (the drains leave
        more); returns the rows the captured tables hold together."""
        conn = self.src.connect("src")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), coalesce(max(id), 0) FROM bench_rows")
            have, last = cur.fetchone()
            if have < SNAPSHOT_ROWS:
                cur.execute("INSERT INTO bench_rows SELECT g, %s FROM generate_series(%%s, %%s) g"
                            % ROW_VALUES, (last + 1, last + SNAPSHOT_ROWS - have))
            cur.execute("VACUUM (ANALYZE) bench_rows")
            rows = 0
            for t in TABLES:
                cur.execute("SELECT count(*) FROM %s" % t)
                rows += cur.fetchone()[0]
        conn.close()
        return rows

    def m_copy(self, rows):
        """The read limit: psql running COPY (SELECT * FROM t) TO STDOUT for
        every captured table, its output into /dev/null (nothing written)."""
        name = self.uniq("copy")
        cmds = " ".join('-c "COPY (SELECT * FROM %s) TO STDOUT"' % t for t in TABLES)
        argv = ["sh", "-c", "exec psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p %d -U postgres "
                "-d src %s > /dev/null" % (self.src.port, cmds)]
        self.checkpoint()
        b0, t0 = machine_cpu()
        p = Proc(self, argv, name, env={"PGPASSWORD": PASSWORD})
        p.wait(TIMEOUT)
        b1, t1 = machine_cpu()
        res = dict(backlog="snapshot", kind="copy", rows=rows, seconds=p.elapsed,
                   rate=rows / p.elapsed, rc=p.rc, cpu=p.cpu,
                   machine=(b1 - b0) / max(1, t1 - t0) * self.ncpu, error=None)
        if p.rc != 0:
            res["error"] = "exit %s" % p.rc
            self.say("    copy failed (exit %s); log:\n%s" % (p.rc, p.log_tail()))
        self.record(**res)
        self.say("    %-13s %9s rows/s  %6.2f s  cpu (cores): psql %s, machine %s" % (
            "copy", fmt_int(res["rate"]), res["seconds"], self._c(res["cpu"] / res["seconds"]),
            self._c(res["machine"])))
        return res

    def m_snapshot(self, rows):
        """cdc run with snapshot_mode initial_only into the file sink: it
        creates its slot, reads every table through the slot's exported
        snapshot and exits once every row is durable."""
        slot = self.uniq("snap")
        out = os.path.join(self.out, slot + ".jsonl")
        open(out, "wb").close()
        pipe, plat = self.pipeline(slot, self.file_sink(out), snapshot_mode="initial_only")
        self.checkpoint()
        srv, _ = bench_peers.samplers(self, start_thread, sink=False)
        b0, t0 = machine_cpu()
        p = self.cdc_proc(pipe, plat, slot + ".snapshot")
        p.wait(TIMEOUT)
        b1, t1 = machine_cpu()
        res = dict(backlog="snapshot", kind="snapshot", rows=rows, seconds=p.elapsed,
                   rate=rows / p.elapsed, rc=p.rc, cpu=p.cpu, hwm_kb=p.hwm_kb or None,
                   machine=(b1 - b0) / max(1, t1 - t0) * self.ncpu, error=None)
        bench_peers.finish(res, srv, None)
        if p.rc != 0:
            res["error"] = "exit %s" % p.rc
            self.say("    snapshot failed (exit %s); log:\n%s" % (p.rc, p.log_tail()))
        else:
            got = self.count_lines(out)
            if got != rows:
                res["error"] = "delivered %s of %s rows" % (got, rows)
                self.say("    snapshot: delivered %s rows, expected %s" % (got, rows))
        try:
            os.unlink(out)
        except OSError:
            pass
        shutil.rmtree(os.path.join(self.state, slot), ignore_errors=True)
        self.record(**res)
        self.say("    %-13s %9s rows/s  %6.2f s  cpu (cores): cdc %s, machine %s  peak RSS %.1f MB"
                 % ("cdc snapshot", fmt_int(res["rate"]), res["seconds"],
                    self._c(res["cpu"] / res["seconds"]), self._c(res["machine"]),
                    (res["hwm_kb"] or 0) / 1024))
        self.drop_slot(slot)
        return res

    def snapshots(self):
        self.say("\n== initial snapshot, %d run(s)" % RUNS)
        rows = self.fill_for_snapshot()
        self.snap = dict(rows=rows, copy=[], snapshot=[], copyfile=[], nativesync=[],
                         snapmirror=[])
        self.say("  %s rows in %s" % (fmt_int(rows), ", ".join(TABLES)))
        for rep in range(RUNS):
            self.say("  run %d/%d" % (rep + 1, RUNS))
            self.snap["copy"].append(self.m_copy(rows))
            self.snap["copyfile"].append(
                bench_peers.m_copy_file(self, rows, PEER_CFG, Proc, start_thread))
            self.snap["snapshot"].append(
                self.paired("snapshot", "file", lambda: self.m_snapshot(rows)))
            self.snap["nativesync"].append(
                bench_peers.m_native_sync(self, rows, PEER_CFG, start_thread))
            self.snap["snapmirror"].append(self.paired(
                "snapshot", "mirror",
                lambda: bench_peers.m_cdc_mirror_snapshot(self, rows, PEER_CFG, start_thread)))

    def snapshot_table(self):
        L = [""]
        w = L.append
        fmt = "  %-34s %9s %13s %8s %8s  %-26s %6s %5s"
        w("SNAPSHOT initial snapshot of %s rows (snapshot_mode initial_only, default "
          "snapshot_parallelism and chunk size, file sink)" % fmt_int(self.snap["rows"]))
        w(fmt % ("", "rows/s", "runs (k/s)", "time", "x COPY", "goal", "client", "mach"))
        copy = self._agg(self.snap["copy"])
        for label, kind in (("COPY (SELECT *) TO STDOUT, psql", "copy"),
                            ("cdc initial snapshot -> file", "snapshot")):
            a = self._agg(self.snap[kind])
            if a is None:
                w("  %-34s %s" % (label, "failed: " + self._errors(self.snap[kind])))
                continue
            ratio = a["rate"] / copy["rate"] if copy else None
            # The goal compares with COPY into a file, fdatasync'd: in PEERS.
            g = "see PEERS" if kind == "snapshot" else ""
            w(fmt % (label, fmt_int(a["rate"]), a["range"], "%.2f s" % a["seconds"],
                     "%.2f" % ratio if ratio else "-", g, self._c(a["cpu"]),
                     self._c(a["machine"])))
            if kind == "snapshot" and a.get("hwm"):
                w("  %-34s %9s" % ("cdc peak RSS (VmHWM), snapshot", "%.1f MB" % (
                    a["hwm"] / 2 ** 20)))
        return L

    # ---------------- profile

    def profile(self, bl):
        perf = shutil.which("perf")
        if not perf:
            self.say("\n(profile skipped: perf not found; apt-get install linux-perf)")
            return None
        data = os.path.join(self.work, "perf.data")
        self.say("\n== profile: perf record during one file drain of %s" % bl["title"])
        res = self.m_file(bl, perf=[perf, "record", "-q", "-e", "cpu-clock", "-F", "1999",
                                    "--call-graph", "dwarf,16384", "-o", data, "--"])
        if res.get("error"):
            self.say("  profile run failed: %s" % res["error"])
            return None
        out = []
        for title, extra, limit in (
            ("self time by function (perf report --no-children --sort symbol)",
             ["--no-children", "--sort", "symbol"], 30),
            ("time including callees (perf report --children --sort symbol)",
             ["--children", "--sort", "symbol"], 40),
            ("by shared object (perf report --sort dso)", ["--no-children", "--sort", "dso"], 10),
            ("by thread (perf report --sort pid; the thread whose id is the process id is the "
             "source thread)", ["--no-children", "--sort", "pid"], 6),
        ):
            r = subprocess.run([perf, "report", "-i", data, "--stdio", "-g", "none", "-q"]
                               + extra, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, cwd=self.work)
            rows = []
            for line in r.stdout.splitlines():
                # drop the IPC columns perf adds when it has no branch data
                line = re.sub(r"(\s+-){2}\s*$", "", line).rstrip()
                if line.strip():
                    rows.append(line)
            out.append((title, rows[:limit]))
        return res, out

    # ---------------- main

    def run(self):
        t_start = time.monotonic()
        header = self.machine_info()
        self.say("cdc benchmark: %s" % header)
        bg = self.background_load()
        self.say("other load before start: %.2f of %d cores busy%s" % (
            bg, self.ncpu, "  (WARNING: the machine is not idle; figures will be disturbed)"
            if bg > 0.15 else ""))
        self.say("\n== starting the source and sink PostgreSQL clusters")
        self.start_clusters()
        self.webhook_status = self.check_webhook()
        if self.webhook_status:
            self.say("  webhook: %s" % self.webhook_status)
        self.backlogs = []
        self.lat = {}
        self.snap = None
        self.kafka_lines = []
        self.nats_lines = []
        self.iceberg_lines = []
        if ONLY == "iceberg":
            self.iceberg_lines = bench_iceberg.run(self, BACKLOGS[0], RUNS, PASSWORD)
        if ONLY == "kafka":
            self.kafka_lines = bench_kafka.run(self, BACKLOGS[0], self.helper("kafka_mock"),
                                               _child_setup, proc_cpu_seconds, RUNS)
        if ONLY == "nats":
            self.nats_lines = bench_nats.run(self, BACKLOGS[0], _child_setup, proc_cpu_seconds,
                                             RUNS, free_port(), self.helper("nats_pub"))
        if ONLY in ("", "drain"):
            self.drains()
        if ONLY == "ud":
            bench_ud.drain(self, 1)
        if ONLY in ("", "snapshot"):
            self.snapshots()
        if ONLY in ("", "latency"):
            self.latencies()
        prof = self.prof
        bg2 = self.background_load()
        lines = self.table(header, prof)
        lines.extend(self.pairs_table())
        lines.append("")
        lines.append("other load: %.2f cores busy before the start, %.2f after the end; "
                     "total bench time %.0f s" % (bg, bg2, time.monotonic() - t_start))
        self.say("\n".join(lines))
        if JSON_OUT:
            with open(JSON_OUT, "w") as f:
                json.dump(dict(header=header, runs=RUNS, quick=QUICK, backlogs=[
                    {k: v for k, v in bl.items()
                     if k not in ("limit", "eager", "recvlogical", "file", "mirror", "webhook",
                                  "native")}
                    for bl in self.backlogs], measurements=self.results), f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cdc", required=True)
    ap.add_argument("--helpers", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cdc-vs", help="a second binary: every cdc measurement in pairs (BENCH_VS)")
    args = ap.parse_args()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    b = None
    rc = 0
    try:
        b = Bench(args)
        b.run()
    except Interrupted as e:
        print("\ninterrupted (%s): stopping processes and clusters" % e, flush=True)
        rc = 130
    except Exception:
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        if b is not None:
            b.cleanup()
        elif not KEEP:
            shutil.rmtree(args.work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

