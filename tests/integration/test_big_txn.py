"""One transaction of 1,000,000 inserted rows (~100 bytes each) must stream
through cdc (the optimized build, $CDC_BIN_RELEASE) to a file and a mirror
without holding the transaction in memory: peak RSS below 100 MiB."""

import json

import harness as h

ROWS = 1_000_000
RSS_LIMIT_KB = 100 * 1024  # 100 MiB


def test_one_million_row_transaction(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute("CREATE TABLE public.big (id int PRIMARY KEY, payload text NOT NULL, n bigint NOT NULL)")
    out = ctx.tmpdir("out")
    jsonl = out + "/events.jsonl"
    cdc = ctx.cdc(
        h.pipeline_config(cl, ["public.big"], [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                          pipeline_id="big", slot="big_slot", publication="big_pub"),
        h.platform_config(ctx.tmpdir("state")),
        cluster=cl,
    )
    cdc.deploy().expect_rc(0)
    with src.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO big SELECT g, md5(g::text) || md5((g + 1)::text), g * 7 "
                    "FROM generate_series(1, %s) g", (ROWS,))
        cur.execute("SELECT txid_current()")
        xid = cur.fetchone()[0] & 0xFFFFFFFF
        cur.execute("COMMIT")
        cur.execute("SELECT avg(pg_column_size(big.*))::int FROM big")
        ctx.log("inserted %d rows of ~%d bytes in xid %d" % (ROWS, cur.fetchone()[0], xid))
    stop = cl.current_lsn("src")

    res = cdc.run_to(stop, timeout=300, release=True)
    ctx.log("cdc streamed it in %.1fs, peak RSS %.1f MiB (limit %d MiB)"
            % (res.duration, res.peak_rss_kb / 1024.0, RSS_LIMIT_KB // 1024))
    assert res.peak_rss_kb > 0, "could not sample cdc's RSS"

    n = h.count_lines(jsonl)
    assert n == ROWS, "file has %d lines, want %d" % (n, ROWS)
    with src.cursor() as cur:
        cur.execute("SELECT count(*) FROM big")
        assert cur.fetchone()[0] == ROWS
    ids = bytearray(ROWS + 1)
    orders = bytearray(ROWS + 1)
    last_lsn = -1
    with open(jsonl, "rb") as f:
        for i, line in enumerate(f, 1):
            rec = json.loads(line)
            s, t = rec["source"], rec["transaction"]
            if rec["op"] != "c" or s["table"] != "big" or s["txId"] != xid:
                raise AssertionError("line %d: not an insert into big in xid %d: %s" % (i, xid, h.short(line, 300)))
            rid, order = rec["after"]["id"], t["total_order"]
            if not (1 <= rid <= ROWS) or ids[rid]:
                raise AssertionError("line %d: id %s out of range or repeated" % (i, rid))
            if not (1 <= order <= ROWS) or orders[order]:
                raise AssertionError("line %d: total_order %s out of range or repeated" % (i, order))
            if s["lsn"] <= last_lsn:
                raise AssertionError("line %d: lsn not ascending" % i)
            ids[rid] = orders[order] = 1
            last_lsn = s["lsn"]
    mirror = cl.connect("mirror")
    h.compare_tables(src, mirror, "public.big")
    ctx.log("file: %d lines, mirror: %d rows, both equal to the source" % (n, ROWS))
    assert res.peak_rss_kb < RSS_LIMIT_KB, "peak RSS %.1f MiB >= %d MiB" % (
        res.peak_rss_kb / 1024.0, RSS_LIMIT_KB // 1024)
