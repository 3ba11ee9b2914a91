"""`cdc run` with a MySQL / MariaDB source against a real MariaDB: the
type matrix into the file sink and a PostgreSQL mirror, value for value
(against mariadb-binlog as the independent decoder and the server's own
SELECTs); DDL mid-stream; the server checks at run and deploy; stored
positions across restarts and kill -9; purged binlogs; initial snapshots."""

import os

import harness as h
from harness.mysql import (grant_cdc_user, mysql_cdc, mysql_pipeline, purge_binlogs_before,
                           read_jsonl, stop_pos)

import test_mysql_decode as md


def setup(ctx, mirror=False, tables=("mx.m",), **source):
    db = ctx.mariadb()
    grant_cdc_user(db)
    cluster = ctx.cluster() if mirror else None
    if cluster:
        cluster.create_database("mirror")
    out = os.path.join(ctx.tmpdir("out"), "events.jsonl")
    sinks = [h.file_sink(out)]
    if cluster:
        sinks.append(h.pg_sink(cluster, "replica"))
    state = ctx.tmpdir("state")
    pipe = mysql_pipeline(db, list(tables), sinks, **source)
    cdc = mysql_cdc(ctx, db, pipe, h.platform_config(state), cluster=cluster)
    return db, cluster, cdc, out, state


def changes(path):
    return [e for e in read_jsonl(path) if e.get("op") in ("c", "u", "d", "r")]


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
    return [e for e in read_jsonl(path) if e.get("op") in ("c", "u", "d", "r")]


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
    # what the source type does not have says so, exit 2
    res = cdc.command(["snapshot", cdc.pipeline_path, "--table", "c.t"] + cdc.platform_args())
    res.expect_rc(2)
    assert "has no incremental snapshots" in res.stderr, res.describe()
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
