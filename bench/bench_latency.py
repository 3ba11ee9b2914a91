"""The latency runs of the benchmark: pgbench offers a steady load and each
row's commit time is compared with its arrival in the sink (file or
webhook).  A part of class Bench (bench.py)."""

import os
import re
import signal
import time

from bench_settings import (LAT_RATES, LAT_SECONDS, PASSWORD, ROW_VALUES, RUNS, WEBHOOK_BATCH,
                            txn_rows)
from bench_procs import LineCounter, Proc, fmt_int, kv, machine_cpu, median, proc_cpu_seconds


class Latency:
    def latency_run(self, rate, sink):
        slot = self.uniq("lat_%s_%d" % (sink, rate))
        self.src.one("src", "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        base = self.src.one("src", "SELECT coalesce(max(id), 0) FROM bench_lat")
        rx = tail = None
        if sink == "file":
            out = os.path.join(self.out, slot + ".jsonl")
            open(out, "wb").close()
            tail = Proc(self, [self.helper("tail_lat"), out], slot + ".tail")
            pipe, plat = self.pipeline(slot, self.file_sink(out))
        else:
            rx, port = self.start_receiver(slot + ".rx")
            pipe, plat = self.pipeline(slot, self.webhook_sink(port))
        self.checkpoint()
        cdc = self.cdc_proc(pipe, plat, slot + ".cdc")
        res = dict(kind="latency", sink=sink, rate=rate, error=None)
        try:
            deadline = time.monotonic() + 60
            while "event=source.streaming" not in cdc.stderr():
                if not cdc.alive() or time.monotonic() > deadline:
                    raise RuntimeError("cdc did not start streaming:\n" + cdc.log_tail())
                time.sleep(0.05)
            time.sleep(1.0)
            nrows = txn_rows(rate)
            tps = rate / nrows
            script = os.path.join(self.work, "latency.sql")
            with open(script, "w") as f:
                f.write("INSERT INTO bench_lat (account, amount, status, note, created_at) "
                        "SELECT %s FROM generate_series(1, :rows) g;\n"
                        % ROW_VALUES.replace("%%", "%").replace("\n", " "))
            clients = max(4, min(32, int(tps // 250) or 4))
            wpid = self.src.one("src", "SELECT active_pid FROM pg_replication_slots "
                                "WHERE slot_name = %s", (slot,))
            cpu0 = [proc_cpu_seconds(p) if p else None for p in (cdc.pid, wpid)]
            b0, t0 = machine_cpu()
            pgb = Proc(self, ["pgbench", "-h", "127.0.0.1", "-p", str(self.src.port), "-U",
                              "postgres", "-n", "-c", str(clients), "-j", str(min(2, self.ncpu)),
                              "-R", "%.3f" % tps, "-T", str(LAT_SECONDS), "-D",
                              "rows=%d" % nrows, "-f", script, "src"],
                       slot + ".pgbench", env={"PGPASSWORD": PASSWORD})
            pgb.wait(LAT_SECONDS + 120)
            b1, t1 = machine_cpu()
            cpu1 = [proc_cpu_seconds(p) if p else None for p in (cdc.pid, wpid)]
            cores = [(b - a) / pgb.elapsed if a is not None and b is not None else None
                     for a, b in zip(cpu0, cpu1)]
            res["cdc_cores"], res["walsender_cores"] = cores
            res["machine"] = (b1 - b0) / max(1, t1 - t0) * self.ncpu
            text = pgb.stdout()
            if pgb.rc != 0:
                raise RuntimeError("pgbench failed:\n" + pgb.stdout()[-1500:] +
                                   pgb.stderr()[-1500:])
            m = re.search(r"^tps = ([\d.]+)", text, re.M)
            res["achieved"] = float(m.group(1)) * nrows if m else None
            res["txn_rows"] = nrows
            m = re.search(r"rate limit schedule lag: avg ([\d.]+) \(max ([\d.]+)\)", text)
            if m:
                res["pgbench_lag_avg_ms"] = float(m.group(1))
                res["pgbench_lag_max_ms"] = float(m.group(2))
            expect = self.src.one("src", "SELECT count(*) FROM bench_lat WHERE id > %s", (base,))
            res["committed"] = expect
            deadline = time.monotonic() + 300
            lines = LineCounter(out) if sink == "file" else None
            while True:
                got = lines.count() if sink == "file" else self.receiver_events(port)
                if got >= expect or not cdc.alive() or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if sink == "file":
                tail.signal(signal.SIGTERM)
                tail.wait(30)
                s = kv(tail.stdout().strip().splitlines()[-1]) if tail.stdout().strip() else {}
            else:
                s = self.stop_receiver(rx)
            for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"):
                res[k] = float(s[k]) if k in s else None
            res["events"] = int(s.get("events", -1))
            if res["events"] != expect:
                res["error"] = "sink got %s of %s rows" % (res["events"], expect)
        except RuntimeError as e:
            res["error"] = str(e).splitlines()[0]
            self.say("    %s" % e)
        finally:
            cdc.signal(signal.SIGTERM)
            cdc.wait(60)
            for p in (tail, rx):
                if p is not None and p.alive():
                    p.signal(signal.SIGTERM)
                    p.wait(30)
        if sink == "file":
            try:
                os.unlink(out)
            except OSError:
                pass
        self.drop_slot(slot)
        self.record(**res)
        if res["error"]:
            self.say("    %s %d rows/s: FAILED (%s)" % (sink, rate, res["error"]))
        else:
            self.say("    %-7s offered %s rows/s in %d-row txns, achieved %s rows/s (pgbench lag "
                     "avg %.1f ms): p50 %.1f ms  p99 %.1f ms  p99.9 %.1f ms  max %.1f ms  (%s rows;"
                     " cpu: cdc %s, walsender %s, machine %s)"
                     % (sink, fmt_int(rate), res.get("txn_rows") or 0,
                        fmt_int(res["achieved"] or 0), res.get("pgbench_lag_avg_ms") or 0,
                        res["p50_ms"], res["p99_ms"], res["p999_ms"], res["max_ms"],
                        fmt_int(res["events"]), self._c(res.get("cdc_cores")),
                        self._c(res.get("walsender_cores")), self._c(res.get("machine"))))
        return res

    def latencies(self):
        self.lat = {}
        sinks = ["file"] + (["webhook"] if self.webhook_status is None else [])
        self.say("\n== latency: %d s of load per run, %d run(s)" % (LAT_SECONDS, RUNS))
        for rate in LAT_RATES:
            for rep in range(RUNS):
                self.say("  %s rows/s, run %d/%d" % (fmt_int(rate), rep + 1, RUNS))
                for sink in sinks:
                    self.lat.setdefault((sink, rate), []).append(self.latency_run(rate, sink))

    def latency_table(self):
        L = [""]
        w = L.append
        w("LATENCY commit -> sink (source.ts_us -> arrival), %d s of pgbench load per run"
          % LAT_SECONDS)
        w("  file: arrival = the line can be read from the file (inotify tailer, microsecond "
          "clock); lag = pgbench's schedule lag")
        w("  webhook: arrival = the receiver has read the whole request carrying the row "
          "(batch_size %d)" % WEBHOOK_BATCH)
        w("  cpu in cores while the load ran: cdc, the walsender, the whole machine")
        fmt = "  %-8s %8s %8s %9s %7s %7s %7s %7s %7s  %-20s %5s %5s %5s"
        w(fmt % ("sink", "offered", "rows/txn", "achieved", "p50 ms", "p99 ms", "p99.9", "max ms",
                 "lag ms", "goal", "cdc", "walsn", "mach"))
        for rate in LAT_RATES:
            goal_ms = 20 if rate <= 10000 else 100 if rate <= 50000 else None
            for sink in ("file", "webhook"):
                if sink == "webhook" and self.webhook_status is not None:
                    w("  %-8s %8s  %s" % (sink, fmt_int(rate), self.webhook_status))
                    continue
                rs = self.lat.get((sink, rate), [])
                ok = [r for r in rs if not r.get("error")]
                if not ok:
                    w("  %-8s %8s  failed: %s" % (sink, fmt_int(rate), self._errors(rs)))
                    continue
                m = {k: median([r.get(k) for r in ok]) for k in
                     ("achieved", "p50_ms", "p99_ms", "p999_ms", "max_ms", "pgbench_lag_avg_ms",
                      "cdc_cores", "walsender_cores", "machine")}
                g = ""
                if goal_ms:
                    g = "p99 <= %d ms: %s" % (goal_ms,
                                              "met" if m["p99_ms"] <= goal_ms else "MISSED")
                w(fmt % (sink, fmt_int(rate), txn_rows(rate), fmt_int(m["achieved"] or 0),
                         "%.1f" % m["p50_ms"], "%.1f" % m["p99_ms"], "%.1f" % m["p999_ms"],
                         "%.1f" % m["max_ms"], "%.1f" % (m["pgbench_lag_avg_ms"] or 0), g,
                         self._c(m["cdc_cores"]), self._c(m["walsender_cores"]),
                         self._c(m["machine"])))
        return L
