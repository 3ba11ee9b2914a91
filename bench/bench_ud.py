"""The update/delete backlog of the drain benchmark.  A table of rows written
before the template slot is made, then transactions that each update 500 of
its rows and delete 500 others, by key.  cdc's mirror and PostgreSQL's native
logical replication both start from a mirror database copied from a template
that holds the table as it was when the slot was made, and both are checked
against the source at the end (row count and a hash of every row).  A part
of the drains of bench.py; the limit client and the file drain stream the
same backlog for the x limit column."""

import os
import time

import bench_peers
from bench_procs import start_thread
from bench_settings import PEER_CFG, QUICK, ROW_COLUMNS, ROW_VALUES, RUNS

TABLE = "public.bench_ud"
PUBLICATION = "bench_ud_pub"           # cdc's (it adds its signal table)
NATIVE_PUBLICATION = "bench_ud_native"  # the native subscription's
MIRROR_TEMPLATE = "mirror_ud_tmpl"
HALF = 500                             # rows updated and rows deleted per transaction
NTX = 100 if QUICK else 1000
TITLE = "%s txns x (update %d rows, delete %d rows) of a %s-row table" % (
    "{:,}".format(NTX), HALF, HALF, "{:,}".format(NTX * 2 * HALF))
HASH = "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM %s t" % TABLE


def _prefill(bench, nrows):
    """The table in the source and in the mirror's template, with the same
    nrows rows; both publications name it."""
    ddl = "CREATE TABLE %s (id bigint PRIMARY KEY, %s)" % (TABLE, ROW_COLUMNS)
    src = bench.src.connect("src")
    with src.cursor() as cur:
        cur.execute(ddl)
        cur.execute("INSERT INTO %s SELECT g, %s FROM generate_series(1, %%s) g"
                    % (TABLE, ROW_VALUES), (nrows,))
        cur.execute("VACUUM ANALYZE %s" % TABLE)
        for pub in (PUBLICATION, NATIVE_PUBLICATION):
            cur.execute("CREATE PUBLICATION %s FOR TABLE %s" % (pub, TABLE))
    bench.snk.one("postgres", "DROP DATABASE IF EXISTS %s" % MIRROR_TEMPLATE)
    bench.snk.one("postgres", "CREATE DATABASE %s" % MIRROR_TEMPLATE)
    snk = bench.snk.connect(MIRROR_TEMPLATE)
    path = os.path.join(bench.out, "bench_ud.copy")
    try:
        with open(path, "w+b") as f, src.cursor() as rd, snk.cursor() as wr:
            rd.copy_expert("COPY %s TO STDOUT" % TABLE, f)
            f.seek(0)
            wr.execute(ddl)
            wr.copy_expert("COPY %s FROM STDIN" % TABLE, f)
            wr.execute("VACUUM ANALYZE %s" % TABLE)
    finally:
        src.close()
        snk.close()
        os.unlink(path)


def same_as_source(bench):
    """Whether the mirror's table holds exactly the source's rows."""
    want = _hash(bench.src, "src")
    got = _hash(bench.snk, "mirror")
    if want != got:
        bench.say("    the mirror's %s differs from the source: (rows, hash) %s, source %s"
                  % (TABLE, got, want))
    return want == got


def _hash(cluster, db):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(HASH)
            return cur.fetchone()
    finally:
        c.close()


def drain(bench, first_id):
    """Writes the backlog, measures the limit client, the file drain, cdc's
    mirror and native logical replication RUNS times, and removes the table,
    its publications and the mirror's template again (the snapshot
    measurements that follow read the usual tables only)."""
    bench.say("\n== drain: %s, %d run(s)" % (TITLE, RUNS))
    t0 = time.monotonic()
    _prefill(bench, NTX * 2 * HALF)
    bench.say("  table of %s rows written and copied to the mirror's template in %.1f s"
              % ("{:,}".format(NTX * 2 * HALF), time.monotonic() - t0))
    body = ("DO $$ BEGIN FOR t IN 0..%d LOOP "
            "UPDATE %s SET amount = amount + 1, status = 'paid' "
            "WHERE id BETWEEN t * %d + 1 AND t * %d + %d; "
            "DELETE FROM %s WHERE id BETWEEN t * %d + %d AND (t + 1) * %d; COMMIT; END LOOP; END $$"
            % (NTX - 1, TABLE, 2 * HALF, 2 * HALF, HALF, TABLE, 2 * HALF, HALF + 1, 2 * HALF))
    bl = bench.write_backlog("ud", TITLE, NTX, 2 * HALF, first_id, body=body)
    bl.update(tables=[TABLE], publication=PUBLICATION, native_publication=NATIVE_PUBLICATION,
              mirror_template=MIRROR_TEMPLATE, check=same_as_source,
              skip=("eager", "recvlogical", "webhook"))
    bench.backlogs.append(bl)
    try:
        for rep in range(RUNS):
            bench.say("  run %d/%d" % (rep + 1, RUNS))
            bl.setdefault("limit", []).append(bench.m_limit(bl))
            bl.setdefault("file", []).append(bench.paired(TITLE, "file", lambda: bench.m_file(bl)))
            bl.setdefault("mirror", []).append(
                bench.paired(TITLE, "mirror", lambda: bench.m_mirror(bl)))
            bl.setdefault("native", []).append(
                bench_peers.m_native_drain(bench, bl, PEER_CFG, start_thread))
    finally:
        bench.drop_slot(bl["tmpl"])
        bl.pop("check", None)  # not JSON
    src = bench.src.connect("src")
    with src.cursor() as cur:
        cur.execute("DROP TABLE %s" % TABLE)
        for pub in (PUBLICATION, NATIVE_PUBLICATION):
            cur.execute("DROP PUBLICATION %s" % pub)
    src.close()
    bench.snk.one("postgres", "DROP DATABASE IF EXISTS mirror WITH (FORCE)")
    bench.snk.one("postgres", "DROP DATABASE %s" % MIRROR_TEMPLATE)
