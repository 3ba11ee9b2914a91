"""BENCH_ONLY=iceberg: a backlog drained into an upsert Iceberg table next to
the drain into a file.

One backlog (the drain's batched one: 1,000 transactions x 1,000 rows, or
100 x 1,000 with BENCH_QUICK), three measurements per run, all streaming the
same WAL: the limit client, cdc into the file sink, and cdc into an iceberg
sink alone (write_mode upsert, a filesystem catalog on the local disk,
zstd, flush_interval_seconds 1: a table snapshot a second).  What the table
holds is counted from its current snapshot's summary (total-records); the
integration tests read tables back with independent readers.  Bytes per row:
the table's data files next to DuckDB writing the same rows (read from those
files, checked identical) to Parquet with the same codec (tests/js, npm ci
--prefix tests/js first)."""

import glob
import json
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS = os.path.join(REPO, "tests", "js")


def iceberg_sink(warehouse):
    return ["  - sink_id: lake", "    sink_type: iceberg", "    iceberg:",
            "      warehouse: file://%s" % warehouse,
            "      table_namespace: bench",
            "      write_mode: upsert",
            "      compression: zstd",
            "      batch_size: 10000000",
            "      flush_interval_seconds: 1",
            "      maintenance:",
            "        compaction_file_threshold: 2",
            "        compaction_max_rows_per_batch: 1000000000",
            "        target_file_size_mb: 1024"]


def table_state(table_dir):
    """(total-records, snapshots, live data file paths) of the table."""
    with open(os.path.join(table_dir, "metadata", "version-hint.text")) as f:
        n = f.read().strip()
    with open(os.path.join(table_dir, "metadata", "v%s.metadata.json" % n)) as f:
        meta = json.load(f)
    cur = [s for s in meta.get("snapshots", [])
           if s["snapshot-id"] == meta.get("current-snapshot-id")]
    total = int(cur[0]["summary"].get("total-records", 0)) if cur else 0
    return total, len(meta.get("snapshots", [])), sorted(
        glob.glob(os.path.join(table_dir, "data", "*.parquet")))


def m_iceberg(bench, bl, state):
    slot = bench.copy_slot(bl)
    wh = os.path.join(bench.out, slot + ".wh")
    os.makedirs(wh)
    pipe, plat = bench.pipeline(slot, iceberg_sink(wh))
    bench.checkpoint()
    tdir = os.path.join(wh, "bench", "bench_rows")

    def count(proc):
        total, snaps, files = table_state(tdir)
        state.update(snaps=snaps, files=files, wh=wh, pipe=pipe, plat=plat, tdir=tdir)
        return total

    res, p = bench.timed(bl, "iceberg", slot,
                         lambda: bench.cdc_proc(pipe, plat, slot + ".iceberg", bl["end"]),
                         bl["rows"], count)
    res["bytes"] = sum(os.path.getsize(f) for f in state.get("files", []))
    res["snapshots"] = state.get("snaps")
    bench.show(res, "  peak RSS %.1f MB, %s snapshots, %.2f bytes/row" % (
        (res["hwm_kb"] or 0) / 1024, res["snapshots"], res["bytes"] / max(1, bl["rows"])))
    bench.drop_slot(slot)
    return res


def compacted_bytes(bench, state, password):
    """Bytes of the table's live data files after `cdc lakehouse maintain`
    compacted them (one pass, every file small)."""
    r = subprocess.run([bench.cdc, "lakehouse", "maintain", state["pipe"], "--platform-config",
                        state["plat"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, cwd=bench.work, timeout=900,
                       env=dict(os.environ, BENCH_PW=password))
    if r.returncode != 0:
        bench.say("    cdc lakehouse maintain failed: %s" % r.stdout[-400:])
        return None
    with open(os.path.join(state["tdir"], "metadata", "version-hint.text")) as f:
        n = f.read().strip()
    with open(os.path.join(state["tdir"], "metadata", "v%s.metadata.json" % n)) as f:
        meta = json.load(f)
    cur = [s for s in meta["snapshots"] if s["snapshot-id"] == meta["current-snapshot-id"]][0]
    return int(cur["summary"]["total-files-size"]), cur["summary"].get("total-data-files")


def duckdb_bytes(bench, files):
    out = os.path.join(bench.out, "duckdb.parquet")
    r = subprocess.run(["node", os.path.join(JS, "rewrite_parquet.mjs"), "zstd", out] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=JS,
                       timeout=900)
    if r.returncode != 0:
        bench.say("    DuckDB rewrite failed: %s" % r.stderr[-400:])
        return None
    return json.loads(r.stdout)


def run(bench, backlog, runs, password):
    """Writes the backlog and measures limit, file and iceberg `runs` times;
    returns the lines of the result table."""
    name, title, ntx, nrows = backlog
    bench.say("\n== iceberg: %s, %d run(s)" % (title, runs))
    bl = bench.write_backlog(name, title, ntx, nrows, 1)
    duck = compacted = None
    for rep in range(runs):
        bench.say("  run %d/%d" % (rep + 1, runs))
        bl.setdefault("limit", []).append(bench.m_limit(bl))
        bl.setdefault("file", []).append(bench.m_file(bl))
        states = []  # one per measurement: two with BENCH_VS

        def measure():
            states.append({})
            return m_iceberg(bench, bl, states[-1])
        bl.setdefault("iceberg", []).append(bench.paired(title, "iceberg", measure))
        for state in states:
            if duck is None and state.get("files"):
                duck = duckdb_bytes(bench, state["files"])
                compacted = compacted_bytes(bench, state, password)
            if state.get("wh"):
                shutil.rmtree(state["wh"], ignore_errors=True)
    bench.drop_slot(bl["tmpl"])
    L = [""]
    w = L.append
    rows, fmt, file_ = bench.sink_rows(bl, (("limit (receive-only client)", "limit"),
                                            ("cdc -> file (fsync'd batches)", "file"),
                                            ("cdc -> iceberg (upsert, a snapshot/s)", "iceberg")),
                                       36)
    w("ICEBERG drain of %s (%s of WAL) into an upsert table (filesystem catalog, local disk, "
      "zstd, flush_interval_seconds 1)" % (title, bl["wal"]))
    w(fmt % ("", "rows/s", "runs (k/s)", "time", "x limit", "x file", "cdc", "mach"))
    L.extend(rows)
    ice = bench._agg(bl["iceberg"])
    if ice and file_:
        w("  iceberg / file = %.2f (goal >= 0.50: %s)" % (
            ice["rate"] / file_["rate"], "met" if ice["rate"] >= 0.5 * file_["rate"] else
            "MISSED"))
    ok = [r for r in bl["iceberg"] if not r.get("error") and r.get("bytes")]
    if ok and duck and duck.get("rows") == bl["rows"]:
        sizes = sorted(r["bytes"] for r in ok)
        ours = sizes[len(sizes) // 2] / bl["rows"]
        snaps = sorted(r["snapshots"] for r in ok)
        theirs = duck["duckdb_bytes"] / bl["rows"]
        w("  bytes/row: cdc %.2f (median of the runs' tables, %s-%s snapshots, a data file "
          "each), DuckDB %.2f writing the same rows into one file with zstd (%s) = %.2fx "
          "(goal <= 1.20: %s)" % (ours, snaps[0], snaps[-1], theirs,
                                  "same rows" if duck["same_rows"] else "ROWS DIFFER",
                                  ours / theirs, "met" if ours <= 1.2 * theirs else "MISSED"))
        if compacted:
            w("  bytes/row after `cdc lakehouse maintain` compacted the table into %s file(s): "
              "%.2f = %.2fx DuckDB's" % (compacted[1], compacted[0] / bl["rows"],
                                         compacted[0] / bl["rows"] / theirs))
    elif ok:
        w("  bytes/row: cdc %.2f; DuckDB comparison unavailable (%s)" % (
            ok[0]["bytes"] / bl["rows"], duck))
    return L
