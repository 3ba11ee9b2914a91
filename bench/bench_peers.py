"""Peer contenders, measured in the same run on the same data as cdc.

- Snapshot into a file: psql running `COPY (SELECT * FROM t) TO STDOUT` for
  every captured table with its output in a file, then `fdatasync` of that
  file (cdc's file sink makes its rows durable too).
- Snapshot into a mirror: PostgreSQL's own initial table synchronisation,
  `CREATE SUBSCRIPTION ... WITH (copy_data = true)` in a fresh database of
  the sink cluster, timed until every table is `ready`; next to cdc's
  `snapshot_mode: initial_only` into a `postgres` sink (replica) on a fresh
  database of the same cluster.
- Drain into a mirror: PostgreSQL's native logical replication,
  `CREATE SUBSCRIPTION ... WITH (create_slot = false, slot_name = <a copy of
  the backlog's template slot>, copy_data = false)`, timed from the CREATE
  until the subscription's replication origin has applied the backlog's end
  LSN (the end of its last commit record).

Server processes are found through pg_stat_activity and sampled from /proc
every 20 ms: CPU seconds, and peak private memory (RssAnon + RssFile: a
backend's shared buffers are shared memory and left out).  CPU seconds per
contender are client + source server + sink server."""

import os
import threading
import time

STATUS_KEYS = ("RssAnon:", "RssFile:")


def _proc_cpu(pid, clk):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / clk
    except (OSError, ValueError, IndexError):
        return None


def _proc_private_kb(pid):
    kb = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(STATUS_KEYS):
                    kb += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return kb


class ServerSampler:
    """CPU seconds and peak private RSS of the server processes `query`
    returns (re-run every 200 ms for new ones); for each process its last
    sample counts.  The sampler's own connection is never counted."""

    def __init__(self, bench, cluster, db, query, start_thread):
        self.conn = cluster.connect(db)
        self.query = query
        self.cpu = {}
        self.cpu0 = {}
        self.peak_kb = 0
        self.clk = os.sysconf("SC_CLK_TCK")
        self._stop = threading.Event()
        self._t = start_thread(self._run)

    def _run(self):
        tick = 0
        try:
            with self.conn.cursor() as cur:
                while not self._stop.is_set():
                    if tick % 10 == 0:
                        cur.execute(self.query)
                        for (pid,) in cur.fetchall():
                            if pid and pid not in self.cpu:
                                self.cpu[pid] = self.cpu0[pid] = _proc_cpu(pid, self.clk) or 0.0
                    for pid in self.cpu:
                        v = _proc_cpu(pid, self.clk)
                        if v is not None:
                            self.cpu[pid] = v
                        kb = _proc_private_kb(pid)
                        if kb:
                            self.peak_kb = max(self.peak_kb, kb)
                    tick += 1
                    self._stop.wait(0.02)
        except Exception:  # the cluster went away: keep what was sampled
            pass

    def stop(self):
        self._stop.set()
        self._t.join(5)
        try:
            self.conn.close()
        except Exception:
            pass
        return sum(self.cpu[p] - self.cpu0[p] for p in self.cpu)


# Every server process working for a contender: the bench's own connections
# are named cdc-bench.
SRC_QUERY = ("SELECT pid FROM pg_stat_activity WHERE datname = 'src' "
             "AND application_name <> 'cdc-bench' AND pid <> pg_backend_pid()")
SINK_QUERY = ("SELECT pid FROM pg_stat_activity WHERE (datname = 'mirror' "
              "OR backend_type = 'logical replication worker') "
              "AND application_name <> 'cdc-bench' AND pid <> pg_backend_pid()")


def samplers(bench, st, sink=True):
    return (ServerSampler(bench, bench.src, "src", SRC_QUERY, st),
            ServerSampler(bench, bench.snk, "postgres", SINK_QUERY, st) if sink else None)


def finish(res, src, snk):
    res["src_cpu"] = src.stop()
    res["src_peak_kb"] = src.peak_kb
    if snk is not None:
        res["sinkdb_cpu"] = snk.stop()
        res["sink_peak_kb"] = snk.peak_kb


# ---------------------------------------------------------------- snapshot

def m_copy_file(bench, rows, cfg, proc_cls, st):
    """psql COPY ... TO STDOUT of every table into one file, then fdatasync."""
    name = bench.uniq("copyfile")
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
            str(bench.src.port), "-U", "postgres", "-d", "src"]
    for t in cfg["tables"]:
        argv += ["-c", "COPY (SELECT * FROM %s) TO STDOUT" % t]
    bench.checkpoint()
    src, _ = samplers(bench, st, sink=False)
    p = proc_cls(bench, argv, name, env={"PGPASSWORD": cfg["password"]}, sample_rss=True)
    p.wait(cfg["timeout"])
    t0 = time.monotonic()
    fd = os.open(p.out_path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
    seconds = p.elapsed + (time.monotonic() - t0)
    res = dict(backlog="snapshot", kind="copyfile", rows=rows, seconds=seconds,
               rate=rows / seconds, rc=p.rc, cpu=p.cpu, hwm_kb=p.hwm_kb or None, error=None)
    finish(res, src, None)
    if p.rc != 0:
        res["error"] = "exit %s" % p.rc
        bench.say("    copyfile failed (exit %s); log:\n%s" % (p.rc, p.log_tail()))
    else:
        got = bench.count_lines(p.out_path)
        res["bytes"] = os.path.getsize(p.out_path)
        if got != rows:
            res["error"] = "wrote %s of %s rows" % (got, rows)
    try:
        os.unlink(p.out_path)
    except OSError:
        pass
    bench.record(**res)
    say(bench, res, "psql")
    return res


def fresh_mirror(bench, row_columns, with_tables, template=None):
    bench.snk.one("postgres", "DROP DATABASE IF EXISTS mirror WITH (FORCE)")
    bench.snk.one("postgres", "CREATE DATABASE mirror" + (" TEMPLATE " + template if template else ""))
    if with_tables and not template:
        c = bench.snk.connect("mirror")
        with c.cursor() as cur:
            cur.execute("CREATE TABLE bench_rows (id bigint PRIMARY KEY, %s)" % row_columns)
            cur.execute("CREATE TABLE bench_lat (id bigint PRIMARY KEY, %s)" % row_columns)
        c.close()


def mirror_rows(bench, tables, where=""):
    """Rows in the mirror's copies of `tables` (cdc creates a table only once
    it has rows for it)."""
    return sum(bench.snk.one("mirror", "SELECT count(*) FROM %s %s" % (t, where))
               for t in tables
               if bench.snk.one("mirror", "SELECT to_regclass(%s) IS NOT NULL", (t,)))


def drop_subscription(bench, name):
    c = bench.snk.connect("mirror")
    with c.cursor() as cur:
        cur.execute("ALTER SUBSCRIPTION %s DISABLE" % name)
        cur.execute("ALTER SUBSCRIPTION %s SET (slot_name = NONE)" % name)
        cur.execute("DROP SUBSCRIPTION %s" % name)
    c.close()


def wait_until(bench, cur, sql, args, deadline):
    while time.monotonic() < deadline:
        cur.execute(sql, args)
        if cur.fetchone()[0]:
            return True
        time.sleep(0.01)
    return False


def m_native_sync(bench, rows, cfg, st):
    """CREATE SUBSCRIPTION with copy_data = true: the tablesync workers COPY
    every table, timed until every table of the subscription is ready."""
    name = bench.uniq("nsync")
    fresh_mirror(bench, cfg["row_columns"], True)
    bench.checkpoint()
    src, snk = samplers(bench, st)
    c = bench.snk.connect("mirror")
    cur = c.cursor()
    t0 = time.monotonic()
    cur.execute("CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION %s "
                "WITH (slot_name = '%s', copy_data = true)"
                % (name, bench.src.conninfo("src"), cfg["publication"], name))
    ok = wait_until(bench, cur,
                    "SELECT count(*) = %s AND bool_and(r.srsubstate = 'r') FROM pg_subscription_rel r "
                    "JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = %s",
                    (len(cfg["tables"]), name), t0 + cfg["timeout"])
    seconds = time.monotonic() - t0
    res = dict(backlog="snapshot", kind="nativesync", rows=rows, seconds=seconds,
               rate=rows / seconds, cpu=None, error=None if ok else "timed out")
    finish(res, src, snk)
    c.close()
    drop_subscription(bench, name)
    bench.drop_slot(name)
    if ok:
        got = mirror_rows(bench, cfg["tables"])
        if got != rows:
            res["error"] = "copied %s of %s rows" % (got, rows)
    bench.record(**res)
    say(bench, res, "-")
    return res


def m_cdc_mirror_snapshot(bench, rows, cfg, st):
    """cdc run, snapshot_mode initial_only, into a postgres sink (replica)."""
    slot = bench.uniq("snapm")
    fresh_mirror(bench, cfg["row_columns"], False)
    pipe, plat = bench.pipeline(slot, bench.mirror_sink(), snapshot_mode="initial_only")
    bench.checkpoint()
    src, snk = samplers(bench, st)
    p = bench.cdc_proc(pipe, plat, slot + ".snapmirror")
    p.wait(cfg["timeout"])
    res = dict(backlog="snapshot", kind="snapmirror", rows=rows, seconds=p.elapsed,
               rate=rows / p.elapsed, rc=p.rc, cpu=p.cpu, hwm_kb=p.hwm_kb or None, error=None)
    finish(res, src, snk)
    if p.rc != 0:
        res["error"] = "exit %s" % p.rc
        bench.say("    cdc snapshot -> mirror failed (exit %s); log:\n%s" % (p.rc, p.log_tail()))
    else:
        got = mirror_rows(bench, cfg["tables"])
        if got != rows:
            res["error"] = "delivered %s of %s rows" % (got, rows)
    bench.record(**res)
    say(bench, res, "cdc")
    bench.drop_slot(slot)
    return res


# ---------------------------------------------------------------- drain

def m_native_drain(bench, bl, cfg, st):
    """Native logical replication of the backlog: a subscription on a copy of
    the template slot, timed until its origin has applied the end LSN.  A
    backlog may bring its own publication, mirror template and check."""
    slot = bench.copy_slot(bl)
    fresh_mirror(bench, cfg["row_columns"], True, bl.get("mirror_template"))
    bench.checkpoint()
    src, snk = samplers(bench, st)
    c = bench.snk.connect("mirror")
    cur = c.cursor()
    t0 = time.monotonic()
    cur.execute("CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION %s WITH (create_slot = false, "
                "slot_name = '%s', copy_data = false, streaming = on)"
                % (slot, bench.src.conninfo("src"), bl.get("native_publication", cfg["publication"]),
                   slot))
    ok = wait_until(bench, cur,
                    "SELECT coalesce(max(o.remote_lsn) >= %s::pg_lsn, false) "
                    "FROM pg_replication_origin_status o JOIN pg_replication_origin r "
                    "ON r.roident = o.local_id JOIN pg_subscription s "
                    "ON r.roname = 'pg_' || s.oid WHERE s.subname = %s",
                    (bl["end"], slot), t0 + cfg["timeout"])
    seconds = time.monotonic() - t0
    res = dict(backlog=bl["name"], kind="native", rows=bl["rows"], seconds=seconds,
               rate=bl["rows"] / seconds, cpu=None, error=None if ok else "timed out")
    finish(res, src, snk)
    res["walsender_cpu"] = res["src_cpu"]
    c.close()
    drop_subscription(bench, slot)
    if ok and bl.get("check"):
        if not bl["check"](bench):
            res["error"] = "the mirror differs from the source"
    elif ok:
        first, last = bl["first_id"], bl["first_id"] + bl["rows"] - 1
        got = mirror_rows(bench, ["public.bench_rows"],
                          "WHERE id BETWEEN %d AND %d" % (first, last))
        if got != bl["rows"]:
            res["error"] = "applied %s of %s rows" % (got, bl["rows"])
    bench.record(**res)
    say(bench, res, "-")
    bench.drop_slot(slot)
    return res


# ---------------------------------------------------------------- output

def say(bench, res, who):
    if res.get("error"):
        bench.say("    %-11s FAILED (%s)" % (res["kind"], res["error"]))
        return
    bench.say("    %-11s %9s rows/s %7.2f s  cpu s: %s %s, source server %.2f, sink server %s"
              "  peak RSS %.1f MB" % (
                  res["kind"], "{:,}".format(int(res["rate"])), res["seconds"], who,
                  "%.2f" % res["cpu"] if res.get("cpu") is not None else "-",
                  res.get("src_cpu") or 0.0,
                  "%.2f" % res["sinkdb_cpu"] if res.get("sinkdb_cpu") is not None else "-",
                  max(res.get("hwm_kb") or 0, res.get("sink_peak_kb") or 0) / 1024))


def _agg(rs, median):
    ok = [r for r in rs if not r.get("error")]
    if not ok:
        return None

    def m(key):
        v = [r.get(key) for r in ok if r.get(key) is not None]
        return median(v) if v else None

    rates = [r["rate"] for r in ok]
    return dict(rate=median(rates), seconds=m("seconds"),
                range="%.0f-%.0f" % (min(rates) / 1000, max(rates) / 1000),
                cpu=m("cpu"), src=m("src_cpu") if any("src_cpu" in r for r in ok)
                else m("walsender_cpu"), sink=m("sinkdb_cpu"),
                rss=max([(r.get("hwm_kb") or 0) for r in ok]) / 1024,
                srss=max([(r.get("sink_peak_kb") or 0) for r in ok]) / 1024)


FMT = "  %-36s %9s %11s %8s %7s  %7s %7s %7s %7s  %8s %8s"


def _line(w, label, a, base, median):
    if a is None:
        w("  %-36s failed or not run" % label)
        return
    total = sum(v or 0 for v in (a["cpu"], a["src"], a["sink"]))
    w(FMT % (label, "{:,}".format(int(a["rate"])), a["range"], "%.2f s" % a["seconds"],
             "%.2f" % (a["rate"] / base["rate"]) if base else "-",
             "%.2f" % a["cpu"] if a["cpu"] is not None else "-",
             "%.2f" % a["src"] if a["src"] is not None else "-",
             "%.2f" % a["sink"] if a["sink"] is not None else "-", "%.2f" % total,
             "%.1f MB" % a["rss"] if a["rss"] else "-",
             "%.1f MB" % a["srss"] if a["srss"] else "-"))


def table(bench, median):
    """Lines of the peer table: each group's first row is the peer the
    others are divided by."""
    L = [""]
    w = L.append
    w("PEERS (same run, same data; x peer = rate / the group's first row; cpu in CPU seconds; "
      "RSS: client = VmHWM of cdc or psql, server = peak private RSS of a sink backend/worker)")
    w(FMT % ("", "rows/s", "runs (k/s)", "time", "x peer", "client", "src srv", "snk srv",
             "total", "RSS cli", "RSS srv"))
    for bl in bench.backlogs:
        if not bl.get("native"):
            continue
        w("  drain into a mirror, %s" % bl["title"])
        base = _agg(bl["native"], median)
        _line(w, "  native logical replication", base, base, median)
        _line(w, "  cdc -> PostgreSQL mirror", _agg(bl.get("mirror", []), median), base, median)
        g = _agg(bl.get("mirror", []), median)
        if g and base:
            cpu = [sum(v or 0 for v in (a["cpu"], a["src"], a["sink"])) for a in (g, base)]
            w("    goal >= 1.00 x native with no more CPU seconds: %s" % (
                "met" if g["rate"] >= base["rate"] and cpu[0] <= cpu[1] else "MISSED"))
    snap = bench.snap
    if snap and snap.get("copyfile"):
        w("  initial snapshot into a file, %s rows" % "{:,}".format(snap["rows"]))
        base = _agg(snap["copyfile"], median)
        _line(w, "  COPY TO STDOUT > file, fdatasync", base, base, median)
        a = _agg(snap["snapshot"], median)
        _line(w, "  cdc initial snapshot -> file", a, base, median)
        if a and base:
            w("    goal >= 0.90 x COPY into a file: %s" % (
                "met" if a["rate"] >= 0.9 * base["rate"] else "MISSED"))
    if snap and snap.get("nativesync"):
        w("  initial snapshot into a mirror, %s rows" % "{:,}".format(snap["rows"]))
        base = _agg(snap["nativesync"], median)
        _line(w, "  native initial sync (copy_data)", base, base, median)
        a = _agg(snap["snapmirror"], median)
        _line(w, "  cdc initial snapshot -> mirror", a, base, median)
        if a and base:
            w("    goal >= 1.00 x native initial sync: %s" % (
                "met" if a["rate"] >= base["rate"] else "MISSED"))
    return L
