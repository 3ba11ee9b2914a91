"""What PostgreSQL's own logical replication publishes is what cdc delivers,
snapshots included.

test_table_without_columns: a table with no columns (its rows are empty, and
REPLICA IDENTITY FULL lets deletes through) is snapshotted and streamed: one
empty row per row, every insert, delete and truncate, as test_decoding lists
them; the mirror holds as many rows as the source.

test_partitioned_table_under_its_name: a partitioned table listed by its
name is captured under that name (cdc's publication publishes partitions
through the root): the snapshot reads every partition, the stream carries
every change of every partition (a row moving between partitions, a
TRUNCATE of the table), all under the table's name; test_decoding, which
names partitions, mapped to the table, is the reference.

test_partitions_of_a_publication_without_root: an existing publication that
publishes partitions under their own names (publish_via_partition_root =
false): cdc maps them to the captured table, and a TRUNCATE of one
partition alone, which has no form as a change of the table, stops the
pipeline with an error naming the table; the slot is not confirmed past it.

test_row_filter_and_column_list: a publication with a row filter and a
column list: the initial snapshot, the stream and an incremental snapshot
deliver exactly the published rows and columns, and the mirror table has
the published columns only.

test_inheritance_parent_and_child: an inheritance parent and its child, both
listed: the parent's snapshot reads its own rows only (the child's rows
arrive under the child's name, as pgoutput streams them), so no row is
delivered twice."""

import json

import harness as h


def _setup(ctx, name, ddl, tables, mode="initial", platform=None, **source_extra):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute(ddl)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, tables, [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                                    pipeline_id=name, slot=name + "_slot",
                                    publication=name + "_pub", snapshot_mode=mode, **source_extra),
                  platform or h.platform_config(state), cluster=cl)
    return cl, src, cdc, jsonl


def _start(cdc):
    """cdc run until it streams (the initial snapshot is then delivered)."""
    proc = cdc.start()
    h.wait_log_event(proc, "source.streaming", 180)
    return proc


def _finish(cl, proc, slot, stop, timeout=180):
    """Waits until the slot confirms stop, then SIGTERM (exit 0)."""
    h.wait_for(lambda: proc.poll() is not None or
               (h.slot_confirmed_lsn(cl, slot) or 0) >= h.lsn_to_int(stop),
               timeout, "cdc to confirm %s" % stop)
    if proc.poll() is not None:
        raise AssertionError("cdc exited while streaming; " + proc.result().describe())
    proc.terminate()
    res = proc.wait(60).expect_rc(0)
    if res.error_lines:
        raise AssertionError("cdc printed an error line; " + res.describe())
    return res


def _split(records):
    reads = [r for r in records if r["op"] == "r"]
    return reads, [r for r in records if r["op"] != "r"]


def _count(conn, table, only=False):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM %s%s" % ("ONLY " if only else "", h.qtable(table)))
        return cur.fetchone()[0]


def test_table_without_columns(ctx):
    t = "public.nothing"
    cl, src, cdc, jsonl = _setup(ctx, "nocols", "CREATE TABLE public.nothing ();"
                                 "ALTER TABLE public.nothing REPLICA IDENTITY FULL;"
                                 "INSERT INTO public.nothing DEFAULT VALUES;"
                                 "INSERT INTO public.nothing DEFAULT VALUES;"
                                 "INSERT INTO public.nothing DEFAULT VALUES;", [t])
    proc = _start(cdc)
    oracle = h.Oracle(cl, "src").create()
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.nothing SELECT FROM generate_series(1, 4)")
        cur.execute("DELETE FROM public.nothing WHERE ctid = (SELECT min(ctid) FROM public.nothing)")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO public.nothing DEFAULT VALUES")
        cur.execute("TRUNCATE public.nothing")
        cur.execute("INSERT INTO public.nothing SELECT FROM generate_series(1, 2)")
        cur.execute("COMMIT")
        cur.execute("DELETE FROM public.nothing WHERE ctid = (SELECT min(ctid) FROM public.nothing)")
    stop = cl.current_lsn("src")
    _finish(cl, proc, "nocols_slot", stop)
    reads, changes = _split(h.read_jsonl(jsonl))
    assert len(reads) == 3, "want 3 snapshot rows (the rows that existed), got %d" % len(reads)
    for r in reads:
        p = h.snapshot_row_problems(r, "nocols", "src")
        assert not p and r["after"] == {}, "snapshot row %s: %s" % (json.dumps(r), p or "after != {}")
    txns = oracle.read([t], stop)
    n = h.check_jsonl_against_oracle(changes, txns, pipeline_id="nocols")
    for r in changes:
        want = {"c": (None, {}), "d": ({}, None), "t": (None, None)}[r["op"]]
        assert (r["before"], r["after"]) == want, "%s change with before/after %s" % (
            r["op"], json.dumps([r["before"], r["after"]]))
    mirror = cl.connect("mirror")
    assert _count(mirror, t) == _count(src, t), "mirror holds %d rows, source %d" % (
        _count(mirror, t), _count(src, t))
    ctx.log("3 snapshot rows and %d changes (%s) delivered; mirror holds %d empty rows"
            % (n, "".join(sorted({r["op"] for r in changes})), _count(src, t)))


PART_DDL = """
CREATE TABLE public.meas (id int, region text NOT NULL, v int, note text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE public.meas_eu PARTITION OF public.meas FOR VALUES IN ('eu');
CREATE TABLE public.meas_am PARTITION OF public.meas FOR VALUES IN ('us', 'ca')
    PARTITION BY LIST (region);
CREATE TABLE public.meas_us PARTITION OF public.meas_am FOR VALUES IN ('us');
CREATE TABLE public.meas_ca PARTITION OF public.meas_am FOR VALUES IN ('ca');
INSERT INTO public.meas SELECT g, (ARRAY['eu', 'us', 'ca'])[1 + g % 3], g, 'before'
    FROM generate_series(1, 300) g;
"""
LEAVES = {"public.meas_eu": "public.meas", "public.meas_us": "public.meas",
          "public.meas_ca": "public.meas"}


def _partition_workload(src):
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.meas SELECT g, (ARRAY['eu', 'us', 'ca'])[1 + g % 3], g, "
                    "'streamed' FROM generate_series(301, 420) g")
        cur.execute("UPDATE public.meas SET v = v + 1000 WHERE id % 7 = 0")
        cur.execute("UPDATE public.meas SET region = 'eu' WHERE id IN (2, 5, 8) AND region = 'ca'")
        cur.execute("DELETE FROM public.meas WHERE id % 11 = 0")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO public.meas_us VALUES (1000, 'us', 1, 'into the partition')")
        cur.execute("UPDATE public.meas_eu SET note = 'via the partition' WHERE id < 50")
        cur.execute("COMMIT")


def _check_partitioned(ctx, cl, src, jsonl, oracle, stop, pipeline_id, nread):
    records = h.read_jsonl(jsonl)
    reads, changes = _split(records)
    bad = [r for r in records if h.rec_table(r) != "public.meas"]
    assert not bad, "%d lines not named public.meas, e.g. %s" % (len(bad), h.short(json.dumps(bad[0]), 300))
    assert len(reads) == nread, "want %d snapshot rows (every partition), got %d" % (nread, len(reads))
    txns = h.map_tables(oracle.read(list(LEAVES), stop), LEAVES)
    n = h.check_jsonl_against_oracle(changes, txns, pipeline_id=pipeline_id)
    h.check_replay_with_reads_equals_source(records, src, ["public.meas"])
    rows = h.compare_tables(src, cl.connect("mirror"), "public.meas")
    ctx.log("%d snapshot rows and %d changes of 3 partitions, all under public.meas; "
            "mirror equals the source (%d rows)" % (len(reads), n, rows))


def test_partitioned_table_under_its_name(ctx):
    cl, src, cdc, jsonl = _setup(ctx, "parts", PART_DDL, ["public.meas"])
    proc = _start(cdc)
    oracle = h.Oracle(cl, "src").create()
    _partition_workload(src)
    with src.cursor() as cur:
        cur.execute("TRUNCATE public.meas")
        cur.execute("INSERT INTO public.meas VALUES (1, 'eu', 1, 'after the truncate'), "
                    "(2, 'us', 2, 'after the truncate')")
    stop = cl.current_lsn("src")
    _finish(cl, proc, "parts_slot", stop)
    _check_partitioned(ctx, cl, src, jsonl, oracle, stop, "parts", 300)
    # A partition listed beside its table would deliver its rows twice.
    both = ctx.cdc(h.pipeline_config(cl, ["public.meas", "public.meas_us"], [h.file_sink(jsonl)],
                                     pipeline_id="parts", slot="parts_slot",
                                     publication="parts_pub"),
                   h.platform_config(ctx.tmpdir("state")), cluster=cl, name="both")
    res = both.start().wait(60)
    assert res.rc == 1 and any("public.meas_us" in l and "partition of public.meas" in l
                               for l in res.error_lines), (
        "listing a partition and its table must be refused; " + res.describe())


def test_partitions_of_a_publication_without_root(ctx):
    cl, src, cdc, jsonl = _setup(
        ctx, "leafpub", PART_DDL + "CREATE TABLE public.cdc_signal (id text PRIMARY KEY, type text "
        "NOT NULL, data text);"
        "CREATE PUBLICATION leafpub_pub FOR TABLE public.meas, public.cdc_signal;", ["public.meas"])
    proc = _start(cdc)
    oracle = h.Oracle(cl, "src").create()
    _partition_workload(src)
    with src.cursor() as cur:
        cur.execute("TRUNCATE public.meas")
        cur.execute("INSERT INTO public.meas VALUES (1, 'eu', 1, 'after'), (2, 'us', 2, 'after')")
    stop = cl.current_lsn("src")
    _finish(cl, proc, "leafpub_slot", stop)
    _check_partitioned(ctx, cl, src, jsonl, oracle, stop, "leafpub", 300)
    # One partition alone emptied: no change of public.meas says that.
    confirmed = h.slot_confirmed_lsn(cl, "leafpub_slot")
    with src.cursor() as cur:
        cur.execute("TRUNCATE public.meas_us")
        cur.execute("INSERT INTO public.meas VALUES (3, 'eu', 3, 'later')")
    stop2 = cl.current_lsn("src")
    res = cdc.start(stop2).wait(120)
    assert res.rc == 1 and any("public.meas" in l and "partition" in l for l in res.error_lines), (
        "a TRUNCATE of one partition must stop cdc with an error naming the table; "
        + res.describe())
    after = h.slot_confirmed_lsn(cl, "leafpub_slot")
    trunc = [t for t in oracle.read(list(LEAVES), stop2) if t.end_lsn > h.lsn_to_int(stop)][0]
    assert after < trunc.end_lsn, "the slot was confirmed to %s, past the truncate (ends %s)" % (
        h.int_to_lsn(after), h.int_to_lsn(trunc.end_lsn))
    ctx.log("the truncate of one partition stopped cdc: %s; the slot stayed at %s (was %s)"
            % (h.short(res.error_lines[0], 160), h.int_to_lsn(after), h.int_to_lsn(confirmed)))


FILTER_DDL = """
CREATE TABLE public.orders (id int, region text NOT NULL, amount int,
                            secret text DEFAULT 'hidden', PRIMARY KEY (id, region));
INSERT INTO public.orders SELECT g, (ARRAY['eu', 'us'])[1 + g % 2], g * 10
    FROM generate_series(1, 200) g;
CREATE TABLE public.cdc_signal (id text PRIMARY KEY, type text NOT NULL, data text);
CREATE PUBLICATION filt_pub FOR TABLE public.orders (id, region, amount) WHERE (region = 'eu'),
    public.cdc_signal;
"""
PUBLISHED = ["id", "region", "amount"]


def test_row_filter_and_column_list(ctx):
    cl, src, cdc, jsonl = _setup(ctx, "filt", FILTER_DDL, ["public.orders"])
    proc = _start(cdc)
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.orders SELECT g, (ARRAY['eu', 'us'])[1 + g % 2], g "
                    "FROM generate_series(201, 260) g")
        cur.execute("UPDATE public.orders SET region = 'eu' WHERE id IN (1, 3, 5)")   # us -> eu
        cur.execute("UPDATE public.orders SET region = 'us' WHERE id IN (2, 4)")      # eu -> us
        cur.execute("UPDATE public.orders SET amount = -amount, secret = 'changed' WHERE id % 9 = 0")
        cur.execute("DELETE FROM public.orders WHERE id % 13 = 0")
    r = cdc.command(["snapshot", cdc.pipeline_path, "--table", "public.orders"] + cdc.platform_args())
    r.expect_rc(0)
    h.wait_log_event(proc, "snapshot.incremental_done", 180)
    stop = cl.current_lsn("src")
    _finish(cl, proc, "filt_slot", stop)
    records = h.read_jsonl(jsonl)
    reads, changes = _split(records)
    for rec in records:
        for img in (rec["before"], rec["after"]):
            if img is not None and sorted(img) != sorted(PUBLISHED):
                raise AssertionError("a row image has columns %s, the publication publishes %s: %s"
                                     % (sorted(img), PUBLISHED, h.short(json.dumps(rec), 300)))
        if rec["op"] in ("r", "c", "u") and rec["after"]["region"] != "eu":
            raise AssertionError("a row the row filter excludes was delivered: %s"
                                 % h.short(json.dumps(rec), 300))
    # The initial snapshot (the lines before the first change) read the 100
    # 'eu' rows that existed; the incremental one every 'eu' row there was.
    first = next(i for i, r in enumerate(records) if r["op"] != "r")
    initial = sorted(r["after"]["id"] for r in records[:first])
    assert initial == list(range(2, 201, 2)), (
        "the initial snapshot must read the 100 published rows (even ids 2..200), got %d: %s..."
        % (len(initial), initial[:10]))
    with src.cursor() as cur:
        cur.execute("SELECT id FROM public.orders WHERE region = 'eu' ORDER BY id")
        eu = [r[0] for r in cur.fetchall()]
    later = sorted(r["after"]["id"] for r in records[first:] if r["op"] == "r")
    assert later == eu, "the incremental snapshot must read the %d published rows, got %d" % (
        len(eu), len(later))
    mirror = cl.connect("mirror")
    cols = [c for c, _ in h.table_columns(mirror, "public.orders")]
    assert cols == PUBLISHED, "the mirror table has columns %s, want the published ones %s" % (
        cols, PUBLISHED)
    n = h.compare_tables(src, mirror, "public.orders", where="region = 'eu'", columns=PUBLISHED)
    ctx.log("%d initial and %d incremental snapshot rows, %d changes: only 'eu' rows, only %s; "
            "mirror equals the published rows (%d)" % (len(initial), len(later), len(changes),
                                                       PUBLISHED, n))


INH_DDL = """
CREATE TABLE public.animals (id int PRIMARY KEY, name text);
CREATE TABLE public.dogs (breed text, PRIMARY KEY (id)) INHERITS (public.animals);
INSERT INTO public.animals SELECT g, 'animal ' || g FROM generate_series(1, 50) g;
INSERT INTO public.dogs SELECT g, 'dog ' || g, 'breed ' || g % 5 FROM generate_series(1001, 1040) g;
"""


def test_inheritance_parent_and_child(ctx):
    tables = ["public.animals", "public.dogs"]
    cl, src, cdc, jsonl = _setup(ctx, "inh", INH_DDL, tables)
    proc = _start(cdc)
    oracle = h.Oracle(cl, "src").create()
    with src.cursor() as cur:
        cur.execute("INSERT INTO public.animals VALUES (51, 'cat')")
        cur.execute("INSERT INTO public.dogs VALUES (1041, 'rex', 'collie')")
        cur.execute("UPDATE public.dogs SET breed = 'mixed' WHERE id % 3 = 0")
        cur.execute("UPDATE public.animals SET name = name || '!' WHERE id < 1010")
        cur.execute("DELETE FROM public.animals WHERE id IN (7, 1007)")
    stop = cl.current_lsn("src")
    _finish(cl, proc, "inh_slot", stop)
    records = h.read_jsonl(jsonl)
    reads, changes = _split(records)
    by_table = {t: sorted(r["after"]["id"] for r in reads if h.rec_table(r) == t) for t in tables}
    assert by_table["public.animals"] == list(range(1, 51)), (
        "the parent's snapshot must hold its own 50 rows, not its child's: got %d rows, e.g. %s"
        % (len(by_table["public.animals"]), by_table["public.animals"][-5:]))
    assert by_table["public.dogs"] == list(range(1001, 1041)), "the child's snapshot: %s" % (
        by_table["public.dogs"][:5],)
    n = h.check_jsonl_against_oracle(changes, oracle.read(tables, stop), pipeline_id="inh")
    mirror = cl.connect("mirror")
    a = h.compare_tables(src, mirror, "public.animals", only=True)
    d = h.compare_tables(src, mirror, "public.dogs")
    ctx.log("snapshot: 50 parent rows, 40 child rows, none twice; %d changes; mirror animals "
            "(%d) = ONLY source animals, dogs (%d) = source dogs" % (n, a, d))
