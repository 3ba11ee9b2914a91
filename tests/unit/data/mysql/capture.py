#!/usr/bin/python3
"""Captures the binlog events tests/unit/test_binlog.c decodes: starts a
throwaway MariaDB (the integration harness's), runs the type matrix, a DDL
sequence and a savepoint rollback, and writes every event binlog_dump
receives, one hex line each, to events.hex beside this script.

    make helpers && tests/unit/data/mysql/capture.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "integration"))

import harness as h  # noqa: E402
import test_mysql_decode as t  # noqa: E402

ctx = h.Ctx("capture", verbose=False)
try:
    db = ctx.mariadb()
    file, start = db.master_status()
    db.sql(t.DDL)
    db.sql(t.ROWS, "mx")
    db.sql(t.UPDATES, "mx")
    db.sql("DELETE FROM m", "mx")
    db.sql("""CREATE DATABASE dd; USE dd;
        CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10));
        INSERT INTO t VALUES (1, 10, 'x');
        ALTER TABLE t ADD COLUMN c INT DEFAULT 5;
        UPDATE t SET a = 11;
        ALTER TABLE t RENAME COLUMN b TO bb;
        CREATE TABLE tm (id INT PRIMARY KEY) ENGINE=MyISAM;
        BEGIN; INSERT INTO t VALUES (3, 3, 'c', 3); SAVEPOINT s1; INSERT INTO t VALUES (4, 4, 'd', 4);
          INSERT INTO tm VALUES (40); ROLLBACK TO SAVEPOINT s1; COMMIT;""")
    out = os.path.join(HERE, "events.hex")
    db.binlog_dump("--file", file, "--pos", 4, "--nonblock", "--capture", out)
    print("wrote", out)
finally:
    ctx.close()
