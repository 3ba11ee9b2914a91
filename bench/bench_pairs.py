"""Paired runs: BENCH_VS=/path/to/another/cdc measures every cdc figure of the
run with both binaries, in alternating order (A then B, then B then A, ...),
on the same backlogs in the same machine state, so a change is measured
against its base by one command.  A is the run's own binary (CDC_BIN, or
the tree's build), B the other.  The usual tables show A; the PAIRS table
puts each measurement of A next to its partner of B: the median of the
pairs' ratios A/B of wall time and of cdc's CPU seconds, with their range
(with B the base of a change, below 1 means the change made it faster).  On a
noisy machine the ratio of each pair is steadier than single figures.  The
peers (COPY, native replication, the limit client) are measured once per
run, as without it.  A part of class Bench (bench.py)."""

import os

from bench_procs import median


class Pairs:
    def pairs_init(self, cdc_vs):
        self.cdc_a = self.cdc
        self.cdc_vs = os.path.abspath(cdc_vs) if cdc_vs else None
        self.pair_turn = 0
        self.pairs = {}  # (backlog title, kind) -> [(result of A, result of B)]
        self.binary = "A"  # the binary being measured, recorded with each result

    def paired(self, backlog, kind, measure):
        """measure() with A and, under BENCH_VS, with B too; returns A's
        result (what the usual tables show)."""
        if not self.cdc_vs:
            return measure()
        order = ("B", "A") if self.pair_turn % 2 else ("A", "B")
        self.pair_turn += 1
        got = {}
        for tag in order:
            self.cdc, self.binary = (self.cdc_vs if tag == "B" else self.cdc_a), tag
            if tag == "B":
                self.say("    (B: %s)" % os.path.basename(self.cdc_vs))
            try:
                got[tag] = measure()
            finally:
                self.cdc, self.binary = self.cdc_a, "A"
        self.pairs.setdefault((backlog, kind), []).append((got["A"], got["B"]))
        return got["A"]

    @staticmethod
    def _ratios(pairs, key):
        return [a[key] / b[key] for a, b in pairs if a.get(key) and b.get(key)]

    def pairs_table(self):
        if not self.cdc_vs:
            return []
        L = [""]
        w = L.append
        w("PAIRS  A = %s, B = %s (BENCH_VS): every cdc measurement made with both, "
          "alternating which goes first" % (os.environ.get("BENCH_CDC_REV") or "CDC_BIN",
                                            os.path.basename(self.cdc_vs)))
        w("  A/B: the median of the pairs' ratios (lowest-highest pair); below 1: A takes "
          "less; A, B: the medians in seconds")
        fmt = "  %-34s %5s %8s %8s %19s %8s %8s %19s"
        w(fmt % ("", "pairs", "time A", "time B", "time A/B", "cpu A", "cpu B", "cdc cpu A/B"))
        for (backlog, kind), prs in self.pairs.items():
            label = "%s, %s" % (kind, backlog)
            ok = [(a, b) for a, b in prs if not a.get("error") and not b.get("error")]
            if not ok:
                errs = [r.get("error") for p in prs for r in p if r.get("error")]
                w("  %-34s failed: %s" % (label, errs[0] if errs else "?"))
                continue

            def ratio(key):
                rs = self._ratios(ok, key)
                return ("%.3f (%.2f-%.2f)" % (median(rs), min(rs), max(rs))) if rs else "-"

            def med(side, key):
                v = median([p[side].get(key) for p in ok])
                return "%.2f" % v if v is not None else "-"

            w(fmt % (label[:34], len(ok), med(0, "seconds"), med(1, "seconds"),
                     ratio("seconds"), med(0, "cpu"), med(1, "cpu"), ratio("cpu")))
            if len(ok) < len(prs):
                w("  %-34s %d pair(s) left out: a side failed" % ("", len(prs) - len(ok)))
        return L
