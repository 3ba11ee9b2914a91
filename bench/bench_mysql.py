#!/usr/bin/env python3
"""BENCH_ONLY=mysql: the MySQL source drains a binlog backlog into the file
sink, next to `mariadb-binlog --read-from-remote-server -vv` over the same
range into /dev/null, in the same run.

    bench_mysql.py --cdc BIN --work DIR

A throwaway MariaDB (the integration harness's, tests/integration/harness/
mysql.py) gets a backlog of 1,000,000 rows (1,000 transactions of 1,000
rows; BENCH_QUICK=1: 100,000) in a table of an INT key, a BIGINT, a
VARCHAR(40) and a DATETIME(6).  Each run measures, from the backlog's first
byte to its last, the wall time of:

  mariadb-binlog  the server's own text dumper, reading the binlog over the
                  replication protocol and decoding every row (-vv), output
                  to /dev/null: what a C client of the same protocol does
                  with no sink at all;
  cdc -> file     `cdc run --stop-at-lsn <end>` from a position stored before
                  the backlog was written, every change fsync'd as JSON.

Printed: rows/s of both, the ratio (goal >= 1.0) and cdc's peak RSS
(VmHWM).  BENCH_RUNS=N runs (default 3), medians printed."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from harness.mysql import MARIADB_BINLOG, MariaDB, grant_cdc_user  # noqa: E402
from harness.mysql import CDC_PASSWORD, CDC_USER  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
TXNS = 100 if QUICK else 1000
ROWS_PER_TXN = 1000
KEEP = os.environ.get("BENCH_KEEP") == "1"


def write_backlog(db):
    stmts = []
    for i in range(TXNS):
        lo = i * ROWS_PER_TXN
        stmts.append("INSERT INTO b.rows SELECT seq, seq * 7, CONCAT('row-', seq), "
                     "'2024-01-01 00:00:00' + INTERVAL seq SECOND FROM b.seq_%d_to_%d;"
                     % (lo + 1, lo + ROWS_PER_TXN))
    db.sql("\n".join(stmts))


def pipeline(db, out, pid):
    return "\n".join([
        "pipeline_id: %s" % pid, "topic_prefix: bench", "source:", "  source_type: mysql",
        "  host: 127.0.0.1", "  port: %d" % db.port, "  database: b",
        "  username: %s" % CDC_USER, "  password: %s" % CDC_PASSWORD,
        "  tables: [b.rows]", "  mysql_server_id: 4343", "  snapshot_mode: never",
        "sinks:", "  - sink_id: file", "    sink_type: file", "    file:",
        "      path: %s" % out, ""])


def run_cdc(cdc, pipe_path, plat_path, stop):
    """Wall seconds and peak RSS (kB) of one `cdc run`."""
    t0 = time.monotonic()
    p = subprocess.Popen([cdc, "run", pipe_path, "--platform-config", plat_path,
                          "--stop-at-lsn", stop], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    hwm = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError("cdc run failed (%d):\n%s" % (p.returncode, err[-2000:]))
    return wall, hwm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cdc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    db = MariaDB(args.work, server_id=1)
    try:
        db.start()
        grant_cdc_user(db)
        db.sql("CREATE DATABASE b; CREATE TABLE b.rows (id INT PRIMARY KEY, n BIGINT, "
               "s VARCHAR(40), t DATETIME(6)) ENGINE=InnoDB;")
        # One pipeline per run, each storing the binlog's end as its start.
        runs = []
        for r in range(RUNS):
            d = os.path.join(args.work, "run%d" % r)
            os.makedirs(d)
            pipe, plat, out = (os.path.join(d, n) for n in ("pipeline.yaml", "platform.yaml",
                                                            "events.jsonl"))
            with open(pipe, "w") as f:
                f.write(pipeline(db, out, "bench%d" % r))
            with open(plat, "w") as f:
                f.write("state_dir: %s\nhealth_enabled: false\n" % os.path.join(d, "state"))
            runs.append((pipe, plat, out))
        file, start = db.master_status()
        for pipe, plat, _ in runs:
            run_cdc(args.cdc, pipe, plat, "%s:%d" % (file, start))
        print("== mysql: writing %d transactions x %d rows" % (TXNS, ROWS_PER_TXN), flush=True)
        write_backlog(db)
        end_file, end = db.master_status()
        assert end_file == file, "the backlog spans binlog files: %s .. %s" % (file, end_file)
        nrows = TXNS * ROWS_PER_TXN
        mb = (end - start) / 1e6
        print("== backlog: %d rows, %.1f MB of binlog (%s %d..%d)" % (nrows, mb, file, start, end))
        theirs, ours, rss = [], [], []
        for r, (pipe, plat, out) in enumerate(runs):
            t0 = time.monotonic()
            with open(os.devnull, "wb") as null:
                subprocess.run([MARIADB_BINLOG, "--no-defaults", "--read-from-remote-server",
                                "-h127.0.0.1", "-P%d" % db.port, "-u" + CDC_USER,
                                "-p" + CDC_PASSWORD, "-vv", "--base64-output=DECODE-ROWS",
                                "--start-position=%d" % start, "--stop-position=%d" % end, file],
                               stdout=null, check=True)
            theirs.append(time.monotonic() - t0)
            wall, hwm = run_cdc(args.cdc, pipe, plat, "%s:%d" % (file, end))
            with open(out) as f:
                n = sum(1 for _ in f)
            if n != nrows:
                raise RuntimeError("cdc wrote %d changes, want %d" % (n, nrows))
            ours.append(wall)
            rss.append(hwm)
            print("  run %d: mariadb-binlog %.2f s, cdc -> file %.2f s, peak RSS %.1f MB"
                  % (r + 1, theirs[-1], wall, hwm / 1024), flush=True)
            os.remove(out)
        t, o = statistics.median(theirs), statistics.median(ours)
        print("")
        print("MYSQL drain of %d rows (%.1f MB of binlog), median of %d run(s)" % (nrows, mb, RUNS))
        print("  %-44s %12s %9s" % ("", "rows/s", "time"))
        print("  %-44s %12s %8.2fs" % ("mariadb-binlog -vv (remote) > /dev/null",
                                        "{:,}".format(int(nrows / t)), t))
        print("  %-44s %12s %8.2fs" % ("cdc -> file (JSON, fsync'd)", "{:,}".format(int(nrows / o)),
                                        o))
        print("  cdc / mariadb-binlog = %.2f (goal >= 1.0: %s); cdc peak RSS %.1f MB"
              % (t / o, "met" if o <= t else "MISSED", max(rss) / 1024))
        return 0
    finally:
        db.stop()
        if not KEEP:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
