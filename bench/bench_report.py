"""The benchmark's report: the table of every figure, printed at the end.  A
part of class Bench (bench.py)."""

import bench_peers
from bench_settings import LIMIT_LOWAT, QUICK, RUNS, WEBHOOK_BATCH
from bench_procs import fmt_int, median


class Report:
    def table(self, header, prof):
        L = []
        w = L.append
        w("")
        w("=" * 100)
        w("cdc benchmark: %s" % header)
        w("median of %d run(s) per figure%s; rates in rows/s (runs: slowest-fastest run, in "
          "thousands); x limit = rate / limit rate" % (RUNS, " (BENCH_QUICK: small backlogs)"
                                                      if QUICK else ""))
        w("limit = PostgreSQL streaming the same backlog to a receive-only client "
          "(pgoutput v2, same options as cdc)")
        w("  that reads in chunks of %d bytes (SO_RCVLOWAT); 'reading eagerly' = the same "
          "client reading every message at once" % LIMIT_LOWAT)
        w("cpu columns, in cores (CPU seconds per wall second): client = cdc, or the limit's "
          "client; walsn = the walsender;")
        w("  sink = the mirror's PostgreSQL backend; mach = the whole machine (%d cores, "
          "everything running);" % self.ncpu)
        w("  other = mach minus the three (kernel threads, PostgreSQL's background processes "
          "and anything else running)")
        w("=" * 100)
        for bl in self.backlogs:
            L.extend(self.drain_table(bl))
        if self.snap:
            L.extend(self.snapshot_table())
        L.extend(bench_peers.table(self, median))
        if self.lat:
            L.extend(self.latency_table())
        L.extend(self.kafka_lines)
        L.extend(self.nats_lines)
        L.extend(self.iceberg_lines)
        for bl, p in prof:
            if not p:
                continue
            res, sections = p
            w("")
            w("PROFILE of cdc during one file drain of %s (%.2f s under perf, not a timed run)"
              % (bl["title"], res["seconds"]))
            for title, rows in sections:
                w("  " + title)
                for r in rows:
                    w("    " + r.strip())
        return L

    def drain_table(self, bl):
        L = [""]
        w = L.append
        fmt = "  %-34s %9s %13s %8s %8s  %-26s %6s %5s %5s %5s %5s"
        w("DRAIN %s  (%s of WAL)" % (bl["title"], bl["wal"]))
        w(fmt % ("", "rows/s", "runs (k/s)", "time", "x limit", "goal", "client", "walsn", "sink",
                 "mach", "other"))
        limit = self._agg(bl.get("limit", []))
        rows = [("limit (receive-only client)", "limit", None),
                ("  same client, reading eagerly", "eager", None),
                ("  pg_recvlogical (eager, writes)", "recvlogical", None),
                ("cdc -> file (fsync'd batches)", "file", "ratio")]
        if bl["name"] != "bigtxn":
            rows += [("cdc -> PostgreSQL mirror (replica)", "mirror", "mirror"),
                     ("cdc -> webhook (batch_size %d)" % WEBHOOK_BATCH, "webhook", None)]
        for label, kind, goal in rows:
            if kind in bl.get("skip", ()):
                continue
            if kind == "webhook" and self.webhook_status is not None:
                w("  %-34s %s" % (label, self.webhook_status))
                continue
            a = self._agg(bl.get(kind, []))
            if a is None:
                w("  %-34s %s" % (label, "failed: " + self._errors(bl.get(kind, []))))
                continue
            ratio = a["rate"] / limit["rate"] if limit else None
            g = ""
            if goal == "ratio" and bl["name"] != "bigtxn":
                g = ">= 0.90 x limit: %s" % ("met" if ratio and ratio >= 0.9 else "MISSED")
            elif goal == "mirror":
                g = ">= 100,000 rows/s: %s" % ("met" if a["rate"] >= 100000 else "MISSED")
            w(fmt % (label, fmt_int(a["rate"]), a["range"], "%.2f s" % a["seconds"],
                     "%.2f" % ratio if ratio else "-", g, self._c(a["cpu"]),
                     self._c(a["walsender"]), self._c(a["sinkdb"]), self._c(a["machine"]),
                     self._c(a["other"])))
        f = self._agg(bl.get("file", []))
        sizes = [r["bytes"] / r["rows"] for r in bl.get("file", [])
                 if not r.get("error") and r.get("bytes")]
        if f and sizes:
            w("  %-34s %9s   %.0f bytes of JSON per row" % (
                "cdc -> file, bytes written", "%.1f MB/s" % (f["rate"] * median(sizes) / 1e6),
                median(sizes)))
        if f and f.get("startup") is not None:
            w("  %-34s %9s   (included in the times above)" % (
                "cdc startup (exec -> streaming)", "%.0f ms" % (f["startup"] * 1000)))
        if f and f.get("hwm"):
            g = ""
            if bl["name"] == "bigtxn":
                g = "goal <= 64 MB: %s" % ("met" if f["hwm"] <= 64 * 2 ** 20 else "MISSED")
            w("  %-34s %9s   max of runs %.1f MB  %s" % (
                "cdc peak RSS (VmHWM), file drain", "%.1f MB" % (f["hwm"] / 2 ** 20),
                f["hwm_max"] / 2 ** 20, g))
        return L

    def sink_rows(self, bl, rows, width, sink_kind=None):
        """The rows of a table of one backlog drained into a sink, next to
        the limit and the file: for each (label, kind) of rows its rate,
        runs, time, x limit, x file, cdc's CPU, the destination process's CPU
        (a column only with sink_kind, the kind it is measured for) and the
        machine's.  Returns (lines, the row format, the file's aggregate)."""
        fmt = "  %%-%ds %%9s %%13s %%8s %%8s %%8s %%6s%s %%5s" % (width, " %5s" if sink_kind else "")
        limit, file_ = self._agg(bl["limit"]), self._agg(bl["file"])
        out = []
        for label, kind in rows:
            a = self._agg(bl[kind])
            if a is None:
                out.append("  %-*s failed: %s" % (width, label, self._errors(bl[kind])))
                continue
            cols = [label, "{:,}".format(int(a["rate"])), a["range"], "%.2f s" % a["seconds"],
                    "%.2f" % (a["rate"] / limit["rate"]) if limit else "-",
                    "%.2f" % (a["rate"] / file_["rate"]) if file_ else "-", self._c(a["cpu"])]
            if sink_kind:
                cols.append(self._c(a["sinkdb"]) if kind == sink_kind else "-")
            out.append(fmt % tuple(cols + [self._c(a["machine"])]))
        return out, fmt, file_

    @staticmethod
    def _c(v):
        return "%.2f" % v if v is not None else "-"

    @staticmethod
    def _errors(rs):
        errs = sorted(set(r.get("error") or "?" for r in rs))
        return "; ".join(errs) if errs else "not run"

    @staticmethod
    def _agg(rs):
        ok = [r for r in rs if not r.get("error")]
        if not ok:
            return None
        secs = median([r["seconds"] for r in ok])
        hwm = [r["hwm_kb"] * 1024 for r in ok if r.get("hwm_kb")]
        rates = [r["rate"] for r in ok]
        return dict(
            seconds=secs,
            rate=median(rates),
            range="%.0f-%.0f" % (min(rates) / 1000, max(rates) / 1000),
            cpu=median([r["cpu"] / r["seconds"] for r in ok if r.get("cpu") is not None]),
            walsender=median([r["walsender_cpu"] / r["seconds"] for r in ok
                              if r.get("walsender_cpu") is not None]),
            sinkdb=median([r["sinkdb_cpu"] / r["seconds"] for r in ok
                           if r.get("sinkdb_cpu") is not None]),
            machine=median([r["machine"] for r in ok]),
            other=median([r["machine"] - sum((r.get(k) or 0) / r["seconds"]
                                             for k in ("cpu", "walsender_cpu", "sinkdb_cpu"))
                          for r in ok]),
            startup=median([r.get("startup_s") for r in ok]),
            hwm=median(hwm) if hwm else None,
            hwm_max=max(hwm) if hwm else None,
        )
