"""`cdc run` with a MySQL / MariaDB source against a real MariaDB: the
type matrix into the file sink and a PostgreSQL mirror, value for value
(against mariadb-binlog as the independent decoder and the server's own
SELECTs); DDL mid-stream; the server checks at run and deploy; stored
positions across restarts and kill -9; purged binlogs; initial snapshots."""

import base64
import os
import re

import harness as h
from harness.mysql import (change_script, grant_cdc_user, mysql_cdc, mysql_jsonl,
                           mysql_pipeline, purge_binlogs_before, start_script, stop_pos)

import test_mysql_decode as md


def setup(ctx, mirror=False, tables=("mx.m",), **source):
    """MariaDB with the cdc user, an optional PostgreSQL mirror, a file sink:
    (db, cluster, cdc, jsonl path, state dir)."""
    db = ctx.mariadb()
    grant_cdc_user(db)
    cluster = ctx.cluster() if mirror else None
    if cluster:
        cluster.createdb("mirror")
    out = os.path.join(ctx.tmpdir("out"), "events.jsonl")
    sinks = [h.file_sink(out)]
    if cluster:
        sinks.append(h.pg_sink(cluster, "replica"))
    state = ctx.tmpdir("state")
    pipe = mysql_pipeline(db, list(tables), sinks, **source)
    cdc = mysql_cdc(ctx, db, pipe, h.platform_config(state), cluster=cluster)
    return db, cluster, cdc, out, state


def changes(path):
    return [e for e in mysql_jsonl(path) if e.get("op") in ("c", "u", "d", "r")]


def test_type_matrix_to_file(ctx):
    db, _, cdc, out, state = setup(ctx)
    db.sql(md.DDL)
    cdc.validate().expect_rc(0)
    # A first run (snapshot_mode never) starts at the binlog's end and
    # stores that position; the next run resumes from it.
    cdc.run_to(stop_pos(db), 120)
    assert changes(out) == []
    kv = h.state_kv(state, "my1", "mysql.")
    file, start = db.master_status()
    assert kv["mysql.position"].split()[1:3] == [file, str(start)], kv
    db.sql(md.ROWS, "mx")
    after_insert = md.select_rows(db)
    db.sql(md.UPDATES, "mx")
    after_update = md.select_rows(db)
    db.sql("DELETE FROM m", "mx")
    _, end = db.master_status()
    cdc.run_to(stop_pos(db), 120)
    evs = changes(out)
    assert [e["op"] for e in evs] == ["c"] * 4 + ["u"] * 3 + ["u"] + ["d"] * 4
    theirs = md.parse_mariadb_binlog(db.mariadb_binlog(file, start, end), ("mx", "m"))
    n = md.compare_with_mariadb_binlog(evs, theirs)
    ctx.log("%d values equal to mariadb-binlog's" % n)
    md.compare_with_select({e["after"]["id"]: e["after"] for e in evs[:4]}, after_insert,
                           "inserts")
    md.compare_with_select({e["after"]["id"]: e["after"] for e in evs[4:8]}, after_update,
                           "update after-images")
    md.compare_with_select({e["before"]["id"]: e["before"] for e in evs[8:]}, after_update,
                           "delete before-images")
    s = evs[0]["source"]
    assert s["connector"] == "mysql" and s["db"] == "mx" and s["table"] == "m", s
    assert s["file"] == file and s["name"] == "my1" and s["snapshot"] == "false", s
    assert s["schema_version"] == 1, s  # the table's first version in the schema history
    # the stored position is the binlog's end
    kv = h.state_kv(state, "my1", "mysql.")
    assert kv["mysql.position"].split()[1:3] == [file, str(end)], kv
    assert kv["mysql.position"].split()[3] == db.gtid_pos(), kv


def test_checks_at_run_and_deploy(ctx):
    """Each required setting and privilege, wrong, is refused by `cdc
    deploy` and `cdc run` with an error naming it; right, deploy says what
    it checked and undeploy forgets the stored position."""
    db, _, cdc, out, state = setup(ctx, tables=("c.t",))
    db.sql("CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY);")
    for var, bad, good in (("binlog_format", "MIXED", "ROW"),
                           ("binlog_row_image", "MINIMAL", "FULL"),
                           ("binlog_row_metadata", "MINIMAL", "FULL")):
        db.sql("SET GLOBAL %s = '%s'" % (var, bad))
        for res in (cdc.deploy(), cdc.start().wait(60)):
            res.expect_rc(1)
            assert var in res.stderr, (var, res.describe())
        db.sql("SET GLOBAL %s = '%s'" % (var, good))
    db.sql("REVOKE REPLICATION SLAVE ON *.* FROM 'cdc'@'%'")
    res = cdc.deploy()
    res.expect_rc(1)
    assert "lacks the REPLICATION SLAVE privilege" in res.stderr, res.describe()
    db.sql("GRANT REPLICATION SLAVE ON *.* TO 'cdc'@'%'")
    res = cdc.deploy()
    res.expect_rc(0)
    assert "binlog_row_metadata FULL: ok" in res.stdout, res.describe()
    # an incremental snapshot needs a signal table the user may write to
    res = cdc.command(["snapshot", cdc.pipeline_path, "--table", "c.t"] + cdc.platform_args())
    res.expect_rc(1)
    assert "cannot write to c.cdc_signal" in res.stderr, res.describe()
    # undeploy: refused without --yes, then forgets the position
    cdc.run_to(stop_pos(db), 60)
    assert "mysql.position" in h.state_kv(state, "my1", "mysql.")
    res = cdc.undeploy(False)
    res.expect_rc(2)
    assert "forgets" in res.stderr, res.describe()
    res = cdc.undeploy(True)
    res.expect_rc(0)
    assert "binlog position: forgotten" in res.stdout, res.describe()
    assert h.state_kv(state, "my1", "mysql.") == {}
    nolog = ctx.mariadb(log_bin=False)
    grant_cdc_user(nolog)
    nolog.sql("CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY);")
    cdc2 = mysql_cdc(ctx, nolog, mysql_pipeline(nolog, ["c.t"], [h.file_sink(out)]),
                     h.platform_config(ctx.tmpdir("state2")), name="cdc2")
    res = cdc2.deploy()
    res.expect_rc(1)
    assert "log_bin" in res.stderr, res.describe()
    assert "cdc-secret-pw" not in res.stderr + res.stdout


def test_server_id_derived_or_refused(ctx):
    """Without source.mysql_server_id, cdc reads as a replica id derived from
    pipeline_id: `cdc deploy` prints it, it is the same on every run and
    another pipeline_id gives another, and a run streams under it. A server
    whose own server_id is that id refuses it, naming it as derived; an
    explicit id equal to the server's own is refused by deploy and run."""
    db = ctx.mariadb()
    grant_cdc_user(db)
    db.sql("CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY);")
    out = os.path.join(ctx.tmpdir("out"), "events.jsonl")
    derived_re = re.compile(r"cdc reads as replica server_id (\d+) \(derived from pipeline_id\)")

    def cdc_for(server, pipeline_id, name, **source):
        pipe = mysql_pipeline(server, ["c.t"], [h.file_sink(out)], pipeline_id=pipeline_id,
                              **source)
        if "mysql_server_id" not in source:
            del pipe["source"]["mysql_server_id"]
        return mysql_cdc(ctx, server, pipe, h.platform_config(ctx.tmpdir("state")), name=name)

    def deployed_id(cdc):
        res = cdc.deploy()
        res.expect_rc(0)
        m = derived_re.search(res.stdout)
        assert m, res.describe()
        return int(m.group(1))

    cdc = cdc_for(db, "my1", "cdc")
    derived = deployed_id(cdc)
    assert 2 ** 30 <= derived < 2 ** 31 and derived != db.server_id, derived
    assert deployed_id(cdc) == derived
    assert deployed_id(cdc_for(db, "my2", "other")) != derived
    cdc.run_to(stop_pos(db), 60)
    db.sql("INSERT INTO c.t VALUES (7)")
    cdc.run_to(stop_pos(db), 60)
    assert [e["after"]["id"] for e in changes(out)] == [7]

    same = ctx.mariadb(server_id=derived)
    grant_cdc_user(same)
    same.sql("CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY);")
    want = "source.mysql_server_id %d (derived from pipeline_id) is the server's own" % derived
    res = cdc_for(same, "my1", "clash").deploy()
    res.expect_rc(1)
    assert want in res.stderr, res.describe()

    explicit = cdc_for(db, "my1", "explicit", mysql_server_id=db.server_id)
    want = "source.mysql_server_id %d is the server's own server_id" % db.server_id
    for res in (explicit.deploy(), explicit.start().wait(60)):
        res.expect_rc(1)
        assert want in res.stderr, res.describe()


def test_purged_binlog_stops_or_snapshots(ctx):
    """A stored position whose binlog was purged stops the pipeline with an
    error saying so; with snapshot_mode when_needed the next run reads the
    tables again and streams on."""
    db, _, cdc, out, state = setup(ctx, tables=("p.t",))
    db.sql("CREATE DATABASE p; CREATE TABLE p.t (id INT PRIMARY KEY, v INT);"
           "INSERT INTO p.t VALUES (1, 1);")
    cdc.run_to(stop_pos(db), 60)
    db.sql("INSERT INTO p.t VALUES (2, 2); FLUSH BINARY LOGS; INSERT INTO p.t VALUES (3, 3);")
    file, _ = db.master_status()
    purge_binlogs_before(db, file)
    res = cdc.start().wait(60)
    res.expect_rc(1)
    assert "purged" in res.stderr and "when_needed" in res.stderr, res.describe()
    assert changes(out) == []
    pipe = mysql_pipeline(db, ["p.t"], [h.file_sink(out)], snapshot_mode="when_needed")
    cdc.write_pipeline(pipe)
    db.sql("INSERT INTO p.t VALUES (4, 4)")
    cdc.run_to(stop_pos(db), 60)
    evs = changes(out)
    assert sorted((e["op"], e["after"]["id"]) for e in evs) == [("r", 1), ("r", 2), ("r", 3),
                                                                ("r", 4)], evs
    db.sql("UPDATE p.t SET v = 40 WHERE id = 4")
    cdc.run_to(stop_pos(db), 60)
    evs = changes(out)
    assert evs[-1]["op"] == "u" and evs[-1]["after"] == {"id": 4, "v": 40}, evs[-1]


def mirror_rows(cluster, table, cols, key="id"):
    """{key: {column: text or None}} of the mirror's table, every value as
    PostgreSQL prints it (timestamps with time zone in UTC)."""
    conn = cluster.connect("mirror")
    try:
        cur = conn.cursor()
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute("SELECT %s FROM %s ORDER BY %s" % (
            ", ".join('"%s"::text' % c for c in cols), table, key))
        return {int(r[0]): dict(zip(cols, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def mirror_matches(col, text, want):
    """The mirror's text of a column equals the value a SELECT gave."""
    if text is None or want is None:
        return text is None and want is None
    if col in md.INTS or col == "y":
        return int(text) == want
    if col == "f":
        return md.float32(float(text)) == want
    if col == "d":
        return float(text) == want
    if col in md.BINARY:
        return bytes.fromhex(text[2:]) == base64.b64decode(want)
    if col in ("tm", "tm6", "tm3"):
        return duration_us(text) == duration_us(want)
    return text == str(want)


def duration_us(text):
    neg = text.startswith("-")
    hh, mm, ss = text.lstrip("-").split(":")
    us = (int(hh) * 3600 + int(mm) * 60) * 1000000 + round(float(ss) * 1000000)
    return -us if neg else us


# The mirror's column types (docs/mysql.md, "PostgreSQL mirror type").
MIRROR_TYPES = {
    "id": "integer", "ti": "smallint", "tu": "smallint", "si": "smallint", "su": "integer",
    "mi": "integer", "mu": "integer", "i": "integer", "iu": "bigint", "bi": "bigint",
    "bu": "numeric(20,0)", "f": "real", "d": "double precision", "dc": "numeric(65,30)",
    "dn": "numeric(10,2)", "dt": "date", "tm": "interval", "tm6": "interval",
    "dtt": "timestamp(0) without time zone", "dt6": "timestamp(6) without time zone",
    "ts": "timestamp(0) with time zone", "ts3": "timestamp(3) with time zone", "y": "smallint",
    "e": "text", "st": "text", "b1": "bit(1)", "b10": "bit(10)", "b64": "bit(64)", "j": "text",
    "vc": "text", "tx": "text", "bn": "bytea", "vb": "bytea", "bl": "bytea", "lb": "bytea",
}


# The matrix without zero dates, which PostgreSQL refuses (docs/mysql.md).
MIRROR_ROWS = md.ROWS.replace("'0000-00-00', ", "'2000-01-01', ").replace(
    "'0000-00-00 00:00:00',", "'2000-01-01 00:00:00',")


def test_type_matrix_to_postgres_mirror(ctx):
    """Every type, inserted, updated and deleted, lands in the mirror as the
    server's own SELECT shows it, with the types docs/mysql.md lists."""
    db, cluster, cdc, out, state = setup(ctx, mirror=True)
    db.sql(md.DDL)
    cdc.run_to(stop_pos(db), 120)
    db.sql(MIRROR_ROWS, "mx")
    db.sql(md.UPDATES, "mx")
    db.sql("DELETE FROM m WHERE id = 3", "mx")
    want = md.select_rows(db)
    cdc.run_to(stop_pos(db), 120)
    got = mirror_rows(cluster, "mx.m", md.COLS)
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    n = 0
    for rid, row in want.items():
        for c in md.COLS:
            assert mirror_matches(c, got[rid][c], row[c]), "row %d column %s: mirror %s, SELECT %s" % (
                rid, c, h.short(got[rid][c]), h.short(row[c]))
            n += 1
    ctx.log("%d values in the mirror equal to SELECT's" % n)
    # the column types docs/mysql.md lists
    conn = cluster.connect("mirror")
    cur = conn.cursor()
    cur.execute("SELECT column_name, format_type(atttypid, atttypmod) FROM "
                "information_schema.columns c JOIN pg_attribute a ON a.attname = c.column_name "
                "AND a.attrelid = 'mx.m'::regclass WHERE table_schema = 'mx' AND table_name = 'm'")
    types = dict(cur.fetchall())
    conn.close()
    for col, t in MIRROR_TYPES.items():
        assert types[col] == t, "column %s: %s, documented %s" % (col, types[col], t)


def test_ddl_mid_stream_file_and_mirror(ctx):
    """ADD, DROP and RENAME COLUMN between changes: before and after images
    carry the columns as of each change, in the file and in the mirror."""
    db, cluster, cdc, out, state = setup(ctx, mirror=True, tables=("dd.t",))
    db.sql("CREATE DATABASE dd; CREATE TABLE dd.t (id INT PRIMARY KEY, a INT, b VARCHAR(10));")
    cdc.run_to(stop_pos(db), 60)
    db.sql("""USE dd;
        INSERT INTO t VALUES (1, 10, 'x'), (2, 20, 'z');
        ALTER TABLE t ADD COLUMN c INT DEFAULT 5;
        UPDATE t SET a = 11 WHERE id = 1;
        ALTER TABLE t DROP COLUMN a;
        UPDATE t SET b = 'y' WHERE id = 1;
        ALTER TABLE t RENAME COLUMN b TO bb;
        UPDATE t SET c = 6 WHERE id = 1;
        INSERT INTO t VALUES (3, 'w', 7);
        DELETE FROM t WHERE id = 2;""")
    cdc.run_to(stop_pos(db), 60)
    evs = changes(out)
    assert [(e["op"], e["before"], e["after"]) for e in evs] == [
        ("c", None, {"id": 1, "a": 10, "b": "x"}),
        ("c", None, {"id": 2, "a": 20, "b": "z"}),
        ("u", {"id": 1, "a": 10, "b": "x", "c": 5}, {"id": 1, "a": 11, "b": "x", "c": 5}),
        ("u", {"id": 1, "b": "x", "c": 5}, {"id": 1, "b": "y", "c": 5}),
        ("u", {"id": 1, "bb": "y", "c": 5}, {"id": 1, "bb": "y", "c": 6}),
        ("c", None, {"id": 3, "bb": "w", "c": 7}),
        ("d", {"id": 2, "bb": "z", "c": 5}, None),
    ], evs
    want = {int(r[0]): {"id": r[0], "bb": r[1], "c": r[2]}
            for r in db.sql("SELECT id, bb, c FROM dd.t ORDER BY id")}
    got = mirror_rows(cluster, "dd.t", ["id", "bb", "c"])
    assert got == want, (got, want)


def event_key(e):
    """(op, id, v) of a change as change_script lists it."""
    if e["op"] == "d":
        return ("d", e["before"]["id"], None)
    return (e["op"], e["after"]["id"], e["after"]["v"])


def test_kill9_loop_exactly_once(ctx):
    """kill -9 over and over while a workload commits: the file sink holds
    every change exactly once, in commit order, and the mirror equals the
    source."""
    import random
    import time
    db, cluster, cdc, out, state = setup(ctx, mirror=True, tables=("k.t",))
    db.sql("CREATE DATABASE k; CREATE TABLE k.t (id INT PRIMARY KEY, v INT);")
    cdc.run_to(stop_pos(db), 60)
    sql, want = change_script(8000, seed=7, pause_every=10)
    work = start_script(db, sql)
    rnd = random.Random(11)
    kills = 0
    while work.poll() is None or kills < 4:
        p = cdc.start()
        time.sleep(rnd.uniform(0.5, 2.0))
        if p.poll() is not None:
            raise AssertionError("cdc exited early: " + p.result().describe())
        p.kill9()
        kills += 1
    assert work.wait(300) == 0, work.stderr.read()
    cdc.run_to(stop_pos(db), 300)
    got = [event_key(e) for e in changes(out)]
    ctx.log("%d kills, %d changes" % (kills, len(got)))
    assert len(got) == len(want), (len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, "change %d: file %s, workload %s" % (i, g, w)
    src = {int(r[0]): {"id": r[0], "v": r[1]} for r in db.sql("SELECT id, v FROM k.t")}
    assert mirror_rows(cluster, "k.t", ["id", "v"]) == src


def replay(evs):
    """The rows a sequence of change events leaves, by id."""
    rows = {}
    for e in evs:
        if e["op"] == "d":
            rows.pop(e["before"]["id"], None)
        else:
            rows[e["after"]["id"]] = e["after"]
    return rows


def snapshot_workload(db, seed, n_txn, max_id):
    """Inserts, updates of old and new rows and deletes on s.t, spread over
    a few seconds."""
    import random
    rnd = random.Random(seed)
    sql, next_id = [], max_id + 1
    for i in range(n_txn):
        sql.append("BEGIN;")
        for _ in range(rnd.randint(1, 3)):
            r = rnd.random()
            if r < 0.4:
                sql.append("INSERT INTO s.t VALUES (%d, %d, 'new');" % (next_id, i))
                next_id += 1
            elif r < 0.8:
                sql.append("UPDATE s.t SET v = v + 1, w = 'upd' WHERE id = %d;"
                           % rnd.randint(1, next_id - 1))
            else:
                sql.append("DELETE FROM s.t WHERE id = %d;" % rnd.randint(1, next_id - 1))
        sql.append("COMMIT;")
        if i % 10 == 0:
            sql.append("DO SLEEP(0.05);")
    return start_script(db, "\n".join(sql) + "\n")


def source_rows(db):
    return {int(r[0]): {"id": int(r[0]), "v": int(r[1]), "w": r[2]}
            for r in db.sql("SELECT id, v, w FROM s.t")}


def test_initial_snapshot_with_writes_and_kill9(ctx):
    """An initial snapshot in chunks while a workload writes, killed -9 twice
    mid-snapshot: it resumes at the chunks not done, then streams; the file's
    events replayed and the mirror both equal the source.  Chunks of 500
    rows (120 of them) leave the kills, after 4 and 7 chunks done, a margin
    of more than 100 chunks however fast the snapshot reads."""
    db, cluster, cdc, out, state = setup(ctx, mirror=True, tables=("s.t",),
                                         snapshot_mode="initial", snapshot_chunk_rows=500)
    db.sql("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v INT, w VARCHAR(20));"
           "INSERT INTO s.t SELECT seq, seq, REPEAT('x', 20) FROM s.seq_1_to_60000;")
    work = snapshot_workload(db, 3, 1500, 60000)
    kills = 0
    while kills < 2:
        p = cdc.start()
        h.wait_log_event(p, "snapshot.started", 120)
        snap = h.state_kv(state, "my1", "snapshot.initial")["snapshot.initial"]
        snap_id = snap.split()[1]
        h.wait_for(lambda: len(h.snapshot_done_chunks(state, "my1", snap_id, "s.t")) > 3 * (kills + 1),
                   120, "chunks done")
        p.kill9()
        kills += 1
        snap = h.state_kv(state, "my1", "snapshot.initial")["snapshot.initial"]
        assert snap.startswith("running "), "the snapshot finished before the kill: " + snap
    assert work.wait(300) == 0, work.stderr.read()
    cdc.run_to(stop_pos(db), 300)
    assert h.state_kv(state, "my1", "snapshot.initial")["snapshot.initial"].startswith("done ")
    want = source_rows(db)
    evs = changes(out)
    ctx.log("%d events, %d snapshot rows, %d rows in the source" % (
        len(evs), sum(e["op"] == "r" for e in evs), len(want)))
    got = {k: {"id": v["id"], "v": v["v"], "w": v["w"]} for k, v in replay(evs).items()}
    assert got == want, "file replay differs from the source"
    mirror = {k: {"id": int(r["id"]), "v": int(r["v"]), "w": r["w"]}
              for k, r in mirror_rows(cluster, "s.t", ["id", "v", "w"]).items()}
    assert mirror == want, "mirror differs from the source"
    s = evs[0]["source"]
    assert s["snapshot"] == "true" and s["file"].startswith("mysql-bin.") and s["pos"] > 0, s
    assert s["gtid"] and s["server_id"] == 1 and s["table"] == "t", s


def test_snapshot_modes(ctx):
    """initial_only reads the rows and stops; no_data reads none and streams;
    never streams from the binlog's end."""
    db = ctx.mariadb()
    grant_cdc_user(db)
    db.sql("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v INT, w VARCHAR(20));"
           "INSERT INTO s.t VALUES (1, 1, 'a'), (2, 2, 'b');")
    for mode, want_ops in (("initial_only", ["r", "r"]), ("no_data", ["c"]), ("never", ["c"])):
        out = os.path.join(ctx.tmpdir("out-" + mode), "events.jsonl")
        state = ctx.tmpdir("state-" + mode)
        pipe = mysql_pipeline(db, ["s.t"], [h.file_sink(out)], snapshot_mode=mode)
        cdc = mysql_cdc(ctx, db, pipe, h.platform_config(state), name="cdc-" + mode)
        if mode == "initial_only":
            res = cdc.start().wait(120)
            res.expect_rc(0)
        else:
            cdc.run_to(stop_pos(db), 60)
            db.sql("INSERT INTO s.t VALUES (%d, 0, 'n')" % (10 + len(mode)))
            cdc.run_to(stop_pos(db), 60)
        evs = changes(out)
        ops = [e["op"] for e in evs]
        assert ops == want_ops, (mode, ops)
        if mode == "initial_only":
            # the snapshot's binlog place, as Debezium shows it
            file, pos = db.master_status()
            s = evs[0]["source"]
            assert (s["snapshot"], s["file"], s["pos"], s["gtid"]) == (
                "true", file, pos, db.gtid_pos()), s


def test_status_and_metrics(ctx):
    """/status shows the confirmed binlog position as file:offset and, once
    the server is idle, no seconds behind it; /metrics carries the source's
    own figure."""
    db = ctx.mariadb()
    grant_cdc_user(db)
    db.sql("CREATE DATABASE st; CREATE TABLE st.t (id INT PRIMARY KEY);")
    out = os.path.join(ctx.tmpdir("out"), "events.jsonl")
    port = h.free_port()
    plat = h.platform_config(ctx.tmpdir("state"), health_enabled=True, health_port=port,
                             health_bind="127.0.0.1")
    cdc = mysql_cdc(ctx, db, mysql_pipeline(db, ["st.t"], [h.file_sink(out)]), plat)
    proc = cdc.start()
    ep = h.Endpoint(port)
    h.wait_http(proc, ep, "/readyz", 200, 60, "/readyz to answer 200")
    db.sql("INSERT INTO st.t VALUES (1), (2)")
    file, pos = db.master_status()
    want = "%d:%d" % (int(file.rsplit(".", 1)[1]), pos)

    def caught_up():
        doc = ep.status()
        return doc["source"]["confirmed_lsn"] == want and doc["lag"]["seconds"] == 0
    h.wait_for(caught_up, 60, "the confirmed position %s" % want)
    m = ep.metrics()
    assert m.types.get("cdc_source_seconds_behind_source") == "gauge"
    assert m.value("cdc_source_seconds_behind_source", pipeline="my1") == 0
    proc.terminate()
    proc.wait(60).expect_rc(0)
    assert len(changes(out)) == 2


def test_incremental_snapshot_while_streaming(ctx):
    """`cdc snapshot --table` while a workload writes, killed -9 once
    mid-snapshot: the table's rows are read in chunks between watermarks
    without stopping the stream, resumed after the chunks every sink holds;
    the file's events replayed and the mirror equal the source."""
    db, cluster, cdc, out, state = setup(ctx, mirror=True, tables=("s.t",),
                                         snapshot_chunk_rows=3000)
    db.sql("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v INT, w VARCHAR(20));"
           "INSERT INTO s.t SELECT seq, seq, REPEAT('x', 20) FROM s.seq_1_to_30000;"
           "GRANT CREATE, INSERT ON s.* TO 'cdc'@'%';")
    p = cdc.start()
    h.wait_log_event(p, "source.streaming", 60)
    work = snapshot_workload(db, 5, 1500, 30000)
    res = cdc.command(["snapshot", cdc.pipeline_path, "--table", "s.t"] + cdc.platform_args())
    res.expect_rc(0)
    # killed once some chunks are durable: the next run resumes after them
    h.wait_for(lambda: h.state_kv(state, "my1", "isnap.key."), 120, "a durable chunk")
    p.kill9()
    assert h.state_kv(state, "my1", "isnap.queue"), "the snapshot finished before the kill"
    p = cdc.start()
    h.wait_log_event(p, "snapshot.incremental_done", 300)
    assert work.wait(300) == 0, work.stderr.read()
    p.terminate()
    p.wait(60).expect_rc(0)
    cdc.run_to(stop_pos(db), 120)
    want = source_rows(db)
    evs = changes(out)
    reads = sum(e["op"] == "r" for e in evs)
    ctx.log("%d events, %d snapshot rows, %d rows in the source" % (len(evs), reads, len(want)))
    assert reads >= 20000, reads
    assert all(e["source"]["snapshot"] == "true" for e in evs if e["op"] == "r")
    got = {k: {"id": v["id"], "v": v["v"], "w": v["w"]} for k, v in replay(evs).items()}
    # rows the workload never touched arrive only through the snapshot
    assert got == want, "file replay differs from the source"
    mirror = {k: {"id": int(r["id"]), "v": int(r["v"]), "w": r["w"]}
              for k, r in mirror_rows(cluster, "s.t", ["id", "v", "w"]).items()}
    assert mirror == want, "mirror differs from the source"


def test_lost_connection_resumes(ctx):
    """The server ends cdc's binlog dump (KILL of its connection) again and
    again under a workload: cdc reconnects after the newest transaction it
    emitted, and the file still holds every change exactly once."""
    import time
    db, _, cdc, out, state = setup(ctx, tables=("k.t",))
    db.sql("CREATE DATABASE k; CREATE TABLE k.t (id INT PRIMARY KEY, v INT);")
    cdc.run_to(stop_pos(db), 60)
    sql, want = change_script(4000, seed=9, pause_every=10)
    p = cdc.start()
    work = start_script(db, sql)
    kills = 0
    while work.poll() is None:
        time.sleep(0.7)
        ids = [r[0] for r in db.sql("SELECT ID FROM information_schema.PROCESSLIST "
                                    "WHERE COMMAND = 'Binlog Dump' AND USER = 'cdc'")]
        for i in ids:
            db.sql("KILL CONNECTION %s" % i, check=False)
        kills += len(ids)
    assert work.wait(60) == 0, work.stderr.read()
    assert kills >= 3, kills
    h.wait_for(lambda: len(changes(out)) >= len(want), 120, "every change in the file")
    p.terminate()
    res = p.wait(60)
    res.expect_rc(0)
    assert "source.connection_lost" in res.stderr, res.describe()
    got = [event_key(e) for e in changes(out)]
    ctx.log("%d dumps killed, %d changes" % (kills, len(got)))
    assert got == want
