"""The MySQL source's binlog decoder against a real MariaDB.

A table with a column of every type the decoder knows is inserted into,
updated and deleted from; binlog_dump (cdc's decoder) must give, value for
value, what an independent decoder (`mariadb-binlog -vv` over the same
range) and SELECTs of the rows give, and the snapshot reader must give the
same values as the binlog.  Also: DDL mid-stream, rolled-back work, purged
binlogs, resume positions, and the server checks."""

import base64
import datetime
import re
import struct

import harness as h

DB = "mx"
DDL = """
DROP DATABASE IF EXISTS mx; CREATE DATABASE mx; USE mx;
CREATE TABLE m (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
  mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dc DECIMAL(65,30), dn DECIMAL(10,2),
  dt DATE, tm TIME, tm6 TIME(6), tm3 TIME(3), dtt DATETIME, dt6 DATETIME(6),
  ts TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL,
  y YEAR, e ENUM('a','b','ünï'), st SET('x','y','z'), b1 BIT(1), b10 BIT(10), b64 BIT(64),
  j JSON, vc VARCHAR(50) CHARACTER SET utf8mb4, ch CHAR(5) CHARACTER SET utf8mb4,
  vl VARCHAR(300) CHARACTER SET latin1, tx TEXT CHARACTER SET utf8mb4,
  tl TINYTEXT CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(300), bl BLOB, lb LONGBLOB
) ENGINE=InnoDB;
"""
COLS = ["id", "ti", "tu", "si", "su", "mi", "mu", "i", "iu", "bi", "bu", "f", "d", "dc", "dn",
        "dt", "tm", "tm6", "tm3", "dtt", "dt6", "ts", "ts3", "y", "e", "st", "b1", "b10", "b64",
        "j", "vc", "ch", "vl", "tx", "tl", "bn", "vb", "bl", "lb"]
UNSIGNED = {"tu", "su", "mu", "iu", "bu"}
INTS = {"id", "ti", "tu", "si", "su", "mi", "mu", "i", "iu", "bi", "bu"}
ENUM = ["a", "b", "ünï"]
SET = ["x", "y", "z"]
LATIN1 = {"vl", "tl"}
UTF8 = {"j", "vc", "ch", "tx"}
BINARY = {"bn": 4, "vb": 0, "bl": 0, "lb": 0}
FSP = {"tm": 0, "tm6": 6, "tm3": 3, "dtt": 0, "dt6": 6, "ts": 0, "ts3": 3}

ROWS = r"""
SET time_zone = '+00:00';
SET sql_mode = '';
INSERT INTO m VALUES
(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
 18446744073709551615, 3.4028e38, 1.7976931348623157e308,
 '99999999999999999999999999999999999.999999999999999999999999999999', 99999999.99,
 '9999-12-31', '838:59:59', '838:59:59.000000', '-838:59:59.000', '9999-12-31 23:59:59',
 '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999', 2155, 'ünï',
 'x,y,z', b'1', b'1111111111', b'1111111111111111111111111111111111111111111111111111111111111111',
 '{"a": [1, 2.5, "x"], "ü": null}', 'Ελληνικά 😀 \t tab', 'abc', 'café Ü ½ € ‚ ÿ',
 'new\nline "quote" back \'s', 'latin ÿ', x'00FF0A', x'000102FF', x'DEADBEEF00',
 REPEAT(x'AB', 70000)),
(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
 -1.17549e-38, -2.2250738585072014e-308,
 '-99999999999999999999999999999999999.999999999999999999999999999999', -0.01,
 '1000-01-01', '-838:59:59', '-838:59:59.000000', '-00:00:00.001', '1000-01-01 00:00:00',
 '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '1970-01-01 00:00:01.001', 1901, 'a', '',
 b'0', b'0', b'0', '[]', '', '', '', '', '', x'', x'', x'', x''),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0000001, 0.1, 0.000000000000000000000000000001, 0,
 '0000-00-00', '00:00:00', '-00:00:01.5', '12:34:56.789', '0000-00-00 00:00:00',
 '2024-02-29 13:14:15.161718', '0000-00-00 00:00:00', '2024-06-30 23:59:59.123', 0, 'zzz', 'x,z',
 b'1', b'0101010101', b'1000000000000000000000000000000000000000000000000000000000000001',
 'null', ' spaces ', 'a b', 'x', 'y', 'z', x'01', x'00', x'00', x'20');
"""
UPDATES = r"""
SET time_zone = '+00:00';
SET sql_mode = '';
UPDATE m SET vc = CONCAT(IFNULL(vc, '∅'), '!'), bu = IFNULL(bu DIV 3, 7),
  e = IF(e = 'a', 'b', 'a'), ts3 = IFNULL(ts3, '2001-01-01 00:00:00.5'), tu = IFNULL(tu, 200)
  WHERE id IN (2, 3, 4);
UPDATE m SET ti=NULL, tu=NULL, si=NULL, su=NULL, mi=NULL, mu=NULL, i=NULL, iu=NULL, bi=NULL,
  bu=NULL, f=NULL, d=NULL, dc=NULL, dn=NULL, dt=NULL, tm=NULL, tm6=NULL, tm3=NULL, dtt=NULL,
  dt6=NULL, ts=NULL, ts3=NULL, y=NULL, e=NULL, st=NULL, b1=NULL, b10=NULL, b64=NULL, j=NULL,
  vc=NULL, ch=NULL, vl=NULL, tx=NULL, tl=NULL, bn=NULL, vb=NULL, bl=NULL, lb=NULL WHERE id = 1;
"""

# ---------------------------------------------------------------------------
# the independent decoder: mariadb-binlog -vv


_ROW_START = re.compile(r"^### (INSERT INTO|UPDATE|DELETE FROM) `([^`]*)`\.`([^`]*)`")
_VALUE = re.compile(rb"^###   @(\d+)=(.*) /\* ([^*]*) \*/$")


def parse_mariadb_binlog(text, table):
    """[(op, before {index: raw bytes or None}, after {...})] for table."""
    events = []
    cur = None
    image = None
    for line in text.split(b"\n"):
        if line.startswith(b"### ") and not line.startswith(b"###   "):
            s = line.decode("utf-8", "replace")
            m = _ROW_START.match(s)
            if m:
                op = {"INSERT INTO": "c", "UPDATE": "u", "DELETE FROM": "d"}[m.group(1)]
                cur = (op, {}, {}) if (m.group(2), m.group(3)) == table else None
                if cur:
                    events.append(cur)
                image = None
            elif s.startswith("### WHERE") and cur:
                image = cur[1]
            elif s.startswith("### SET") and cur:
                image = cur[2]
            continue
        m = _VALUE.match(line)
        if m and cur is not None and image is not None:
            raw = m.group(2).rstrip(b" ")
            image[int(m.group(1))] = None if raw == b"NULL" else raw
    return events


def unquote(raw):
    assert raw.startswith(b"'") and raw.endswith(b"'"), raw
    body = raw[1:-1]
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), body)


LATIN1_C1 = [0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160,
             0x2039, 0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
             0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178]


def mysql_latin1(b):
    return "".join(chr(LATIN1_C1[c - 0x80]) if 0x80 <= c < 0xA0 else chr(c) for c in b)


def float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def theirs_matches(col, raw, ours):
    """True if mariadb-binlog's text raw for column col is the value ours
    (cdc's JSON value).  mariadb-binlog's own quirks are undone here:
    unsigned values print as "signed (unsigned)", FLOAT with 6 digits,
    DATE with colons, TIMESTAMP as seconds, YEAR 0 as 1900, ENUM as its
    index, SET as a bitmask, BINARY without its padding, control bytes as
    \\xNN."""
    if raw is None or ours is None:
        return raw is None and ours is None
    t = raw.decode("latin-1")
    if col in INTS:
        m = re.match(r"^(-?\d+)(?: \((\d+)\))?$", t)
        v = int(m.group(2)) if (m.group(2) and col in UNSIGNED) else int(m.group(1))
        return v == ours
    if col == "f":
        return "%g" % float32(ours) == t
    if col == "d":
        return float(t) == float(ours)
    if col in ("dc", "dn"):
        return t == ours
    if col == "dt":
        return unquote(raw).decode().replace(":", "-") == ours
    if col in ("tm", "tm6", "tm3", "dtt", "dt6"):
        return unquote(raw).decode() == ours
    if col in ("ts", "ts3"):
        sec, _, frac = t.partition(".")
        if int(sec) == 0 and not frac.strip("0"):
            return ours.startswith("0000-00-00 00:00:00")
        d = datetime.datetime.fromtimestamp(int(sec), datetime.timezone.utc)
        text = d.strftime("%Y-%m-%d %H:%M:%S") + ("." + frac if FSP[col] else "") + "+00"
        return text == ours
    if col == "y":
        return int(t) == (1900 if ours == 0 else ours)
    if col == "e":
        return (ENUM[int(t) - 1] if int(t) else "") == ours
    if col == "st":
        bits = int(t[2:-1], 2)
        return ",".join(SET[i] for i in range(len(SET)) if bits >> i & 1) == ours
    if col in ("b1", "b10", "b64"):
        return t[2:-1] == ours
    body = unquote(raw)
    if col in BINARY:
        return body.ljust(BINARY[col], b"\0") == base64.b64decode(ours)
    if col in LATIN1:
        return mysql_latin1(body) == ours
    return body == ours.encode()


def compare_with_mariadb_binlog(ours, theirs):
    assert len(ours) == len(theirs), "cdc decoded %d changes, mariadb-binlog %d" % (
        len(ours), len(theirs))
    checked = 0
    for k, (ev, (op, tb, ta)) in enumerate(zip(ours, theirs)):
        assert ev["op"] == op, "change %d: op %s vs %s" % (k, ev["op"], op)
        for image, theirs_img in ((ev["before"], tb), (ev["after"], ta)):
            if image is None:
                assert not theirs_img, "change %d: image missing" % k
                continue
            assert list(image) == COLS, list(image)
            for i, col in enumerate(COLS):
                raw = theirs_img.get(i + 1)
                assert theirs_matches(col, raw, image[col]), (
                    "change %d (%s) column %s: cdc %s, mariadb-binlog %s" % (
                        k, op, col, h.short(image[col]), h.short(raw)))
                checked += 1
    return checked


# ---------------------------------------------------------------------------
# SELECTs of the rows


def select_rows(db):
    """{id: {column: canonical value as cdc's JSON would carry it}} from
    SELECTs whose text is converted here, independently of cdc."""
    exprs = []
    for c in COLS:
        if c == "f":
            exprs.append("CAST(f AS DOUBLE)")
        elif c in ("b1", "b10", "b64"):
            n = {"b1": 1, "b10": 10, "b64": 64}[c]
            exprs.append("LPAD(BIN(%s), %d, '0')" % (c, n))
        elif c in BINARY or c in LATIN1 or c in UTF8 or c in ("e", "st"):
            exprs.append("HEX(%s)" % c)
        else:
            exprs.append(c)
    rows = db.sql("SET time_zone = '+00:00'; SELECT %s FROM m ORDER BY id" % ", ".join(exprs),
                  "mx")
    out = {}
    for r in rows:
        row = {}
        for c, v in zip(COLS, r):
            if v is None:
                row[c] = None
            elif c in INTS:
                row[c] = int(v)
            elif c == "f":
                row[c] = float32(float(v))
            elif c == "d":
                row[c] = float(v)
            elif c == "y":
                row[c] = int(v)
            elif c in ("ts", "ts3"):
                row[c] = v if v.startswith("0000-00-00") else v + "+00"
            elif c in BINARY:
                row[c] = base64.b64encode(bytes.fromhex(v)).decode()
            elif c in LATIN1 or c in ("e", "st"):  # the table's default charset is latin1
                row[c] = mysql_latin1(bytes.fromhex(v))
            elif c in UTF8:
                row[c] = bytes.fromhex(v).decode("utf-8")
            else:
                row[c] = v
        out[row["id"]] = row
    return out


def same_value(col, ours, theirs):
    if col == "f" and ours is not None and theirs is not None:
        return float32(ours) == theirs
    if col == "d" and ours is not None and theirs is not None:
        return float(ours) == theirs
    return ours == theirs


def compare_with_select(images, selected, what):
    assert sorted(images) == sorted(selected), "%s: rows %s vs %s" % (what, sorted(images),
                                                                      sorted(selected))
    for rid, img in images.items():
        for c in COLS:
            assert same_value(c, img[c], selected[rid][c]), "%s: row %d column %s: cdc %s, SELECT %s" % (
                what, rid, c, h.short(img[c]), h.short(selected[rid][c]))


# ---------------------------------------------------------------------------


def test_type_matrix(ctx):
    db = ctx.mariadb()
    db.sql(DDL)
    file, start = db.master_status()
    db.sql(ROWS, "mx")
    after_insert = select_rows(db)
    _, mid = db.master_status()
    db.sql(UPDATES, "mx")
    after_update = select_rows(db)
    db.sql("DELETE FROM m", "mx")
    _, end = db.master_status()

    rc, out, err = db.binlog_dump("--file", file, "--pos", start, "--nonblock", "--tables",
                                  "mx.m", "--commits")
    changes = [e for e in out if "op" in e]
    commits = [e["commit"] for e in out if "commit" in e]
    ops = [e["op"] for e in changes]
    assert ops == ["c"] * 4 + ["u"] * 3 + ["u"] + ["d"] * 4, ops
    assert [c["changes"] for c in commits] == [4, 3, 1, 4], commits
    assert commits[-1]["end_pos"] == end, (commits[-1], end)
    assert "end file=%s pos=%d" % (file, end) in err, err

    # value for value against mariadb-binlog over the same range
    theirs = parse_mariadb_binlog(db.mariadb_binlog(file, start, end), ("mx", "m"))
    n = compare_with_mariadb_binlog(changes, theirs)
    ctx.log("%d values equal to mariadb-binlog's" % n)

    # against SELECTs: inserted rows, updated rows, deleted rows
    ins = {e["after"]["id"]: e["after"] for e in changes[:4]}
    compare_with_select(ins, after_insert, "after the inserts")
    upd_before = {e["before"]["id"]: e["before"] for e in changes[4:8]}
    compare_with_select(upd_before, after_insert, "update before-images")
    upd_after = {e["after"]["id"]: e["after"] for e in changes[4:8]}
    compare_with_select(upd_after, after_update, "update after-images")
    dels = {e["before"]["id"]: e["before"] for e in changes[8:]}
    compare_with_select(dels, after_update, "delete before-images")

    # every column NULL at least once in a before and an after image
    assert all(changes[7]["after"][c] is None for c in COLS if c != "id")
    assert all(changes[8]["before"][c] is None for c in COLS if c != "id")

    # the source block
    s = changes[0]["source"]
    assert s["connector"] == "mysql" and s["db"] == "mx" and s["table"] == "m"
    assert s["file"] == file and s["server_id"] == 1 and s["row"] == 0
    assert re.match(r"^0-1-\d+$", s["gtid"])
    # (pos, row) orders the changes: rows events of about 8 kB, rows within
    pr = [(e["source"]["pos"], e["source"]["row"]) for e in changes]
    assert pr == sorted(set(pr)), pr
    assert changes[0]["transaction"]["id"] == s["gtid"]
    assert [e["transaction"]["total_order"] for e in changes[:4]] == [1, 2, 3, 4]
    assert mid > start


def test_snapshot_equals_binlog(ctx):
    db = ctx.mariadb()
    db.sql(DDL)
    file, start = db.master_status()
    db.sql(ROWS, "mx")
    _, out, err = db.binlog_dump("--file", file, "--pos", start, "--nonblock", "--tables", "mx.m")
    streamed = {e["after"]["id"]: e["after"] for e in out}
    _, snap, serr = db.binlog_dump("--snapshot", "mx.m", "--chunk", "3")
    assert [e["op"] for e in snap] == ["r"] * 4
    snapped = {e["after"]["id"]: e["after"] for e in snap}
    assert snapped == streamed, "snapshot and binlog differ"
    # the snapshot's position is the binlog's end, and its GTID state
    f2, p2 = db.master_status()
    assert "snapshot file=%s pos=%d gtid_state=%s" % (f2, p2, db.gtid_pos()) in serr, serr
    assert snap[0]["source"]["snapshot"] == "true" and snap[0]["source"]["pos"] == p2


def test_ddl_mid_stream(ctx):
    db = ctx.mariadb()
    file, start = db.master_status()
    db.sql("""CREATE DATABASE dd; USE dd;
        CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10));
        INSERT INTO t VALUES (1, 10, 'x');
        ALTER TABLE t ADD COLUMN c INT DEFAULT 5;
        UPDATE t SET a = 11;
        ALTER TABLE t DROP COLUMN a;
        UPDATE t SET b = 'y';
        ALTER TABLE t RENAME COLUMN b TO bb;
        UPDATE t SET c = 6;
        DELETE FROM t;""")
    _, out, _ = db.binlog_dump("--file", file, "--pos", start, "--nonblock", "--commits")
    changes = [e for e in out if "op" in e]
    assert [(e["op"], e["before"], e["after"]) for e in changes] == [
        ("c", None, {"id": 1, "a": 10, "b": "x"}),
        ("u", {"id": 1, "a": 10, "b": "x", "c": 5}, {"id": 1, "a": 11, "b": "x", "c": 5}),
        ("u", {"id": 1, "b": "x", "c": 5}, {"id": 1, "b": "y", "c": 5}),
        ("u", {"id": 1, "bb": "y", "c": 5}, {"id": 1, "bb": "y", "c": 6}),
        ("d", {"id": 1, "bb": "y", "c": 6}, None),
    ], changes
    ddl = [c["commit"] for c in out if "commit" in c and c["commit"]["ddl"]]
    assert len(ddl) == 5, ddl  # CREATE DATABASE, CREATE TABLE, three ALTERs
    # mariadb-binlog sees the same images (by position)
    theirs = parse_mariadb_binlog(db.mariadb_binlog(file, start), ("dd", "t"))
    assert [(op, [v for _, v in sorted(b.items())], [v for _, v in sorted(a.items())])
            for op, b, a in theirs] == [
        ("c", [], [b"1", b"10", b"'x'"]),
        ("u", [b"1", b"10", b"'x'", b"5"], [b"1", b"11", b"'x'", b"5"]),
        ("u", [b"1", b"'x'", b"5"], [b"1", b"'y'", b"5"]),
        ("u", [b"1", b"'y'", b"5"], [b"1", b"'y'", b"6"]),
        ("d", [b"1", b"'y'", b"6"], []),
    ]


def test_rolled_back_work_emits_nothing(ctx):
    db = ctx.mariadb()
    file, start = db.master_status()
    db.sql("""CREATE DATABASE rb; USE rb;
        CREATE TABLE ti (id INT PRIMARY KEY) ENGINE=InnoDB;
        CREATE TABLE tm (id INT PRIMARY KEY) ENGINE=MyISAM;
        BEGIN; INSERT INTO ti VALUES (1); INSERT INTO ti VALUES (2); ROLLBACK;
        BEGIN; INSERT INTO ti VALUES (3); SAVEPOINT s1; INSERT INTO ti VALUES (4);
          INSERT INTO tm VALUES (40); ROLLBACK TO SAVEPOINT s1; INSERT INTO ti VALUES (5); COMMIT;
        BEGIN; INSERT INTO ti VALUES (6); SAVEPOINT s2; INSERT INTO tm VALUES (60);
          INSERT INTO ti VALUES (7); RELEASE SAVEPOINT s2; COMMIT;""")
    text = db.mariadb_binlog(file, start)
    assert b"ROLLBACK TO" in text  # the binlog does hold rolled-back rows
    _, out, _ = db.binlog_dump("--file", file, "--pos", start, "--nonblock")
    got = [(e["source"]["table"], e["after"]["id"]) for e in out]
    assert sorted(got) == sorted([("ti", 3), ("tm", 40), ("ti", 5), ("ti", 6), ("tm", 60),
                                  ("ti", 7)]), got
    assert ("ti", 4) not in got and ("ti", 1) not in got and ("ti", 2) not in got
    rows = {int(r[0]) for r in db.sql("SELECT id FROM ti", "rb")}
    assert rows == {3, 5, 6, 7}


def test_resume_by_gtid_and_position(ctx):
    db = ctx.mariadb()
    db.sql("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY, v TEXT);")
    file, start = db.master_status()
    for i in range(5):
        db.sql("INSERT INTO r.t VALUES (%d, 'v%d')" % (i, i))
    _, out, err = db.binlog_dump("--file", file, "--pos", start, "--nonblock", "--commits")
    commits = [e["commit"] for e in out if "commit" in e]
    third = commits[2]
    # stop deterministically at a GTID
    _, part, perr = db.binlog_dump("--file", file, "--pos", start, "--stop-at-gtid", third["gtid"])
    assert [e["after"]["id"] for e in part] == [0, 1, 2]
    assert "pos=%d gtid_state=%s" % (third["end_pos"], third["gtid_state"]) in perr
    # resume from the GTID state, and from file + end position: the rest, once
    _, rest, _ = db.binlog_dump("--gtid", third["gtid_state"], "--nonblock")
    assert [e["after"]["id"] for e in rest] == [3, 4]
    _, rest2, _ = db.binlog_dump("--file", third["file"], "--pos", third["end_pos"], "--nonblock")
    assert [e["after"]["id"] for e in rest2] == [3, 4]
    # positions are monotonic scalars: file sequence << 32 | offset
    assert all(a["end"] < b["begin"] + 1 for a, b in zip(commits, commits[1:]))
    assert commits[0]["end"] == (int(file.rsplit(".", 1)[1]) << 32) | commits[0]["end_pos"]


def test_purged_binlog_is_a_distinct_error(ctx):
    db = ctx.mariadb()
    db.sql("CREATE DATABASE p; CREATE TABLE p.t (id INT PRIMARY KEY); INSERT INTO p.t VALUES (1)")
    old_file, _ = db.master_status()
    old_gtid = db.gtid_pos()
    db.sql("FLUSH BINARY LOGS; INSERT INTO p.t VALUES (2); FLUSH BINARY LOGS")
    new_file, _ = db.master_status()

    def purged():
        # the server keeps files its binlog checkpoint still needs: retry
        db.sql("FLUSH LOGS; PURGE BINARY LOGS TO '%s'" % new_file)
        return db.sql("SHOW BINARY LOGS")[0][0] >= new_file

    h.wait_for(purged, 30, "PURGE BINARY LOGS to remove the old files", interval=0.5)
    rc, _, err = db.binlog_dump("--file", old_file, "--pos", 4, "--nonblock", check=False)
    assert rc == 2, (rc, err)
    assert "cannot send the binlog from the requested position" in err and "1236" in err, err
    # a GTID state older than every binlog left
    domain, server, seq = old_gtid.split("-")
    rc, _, err = db.binlog_dump("--gtid", "%s-%s-%d" % (domain, server, int(seq) - 1),
                                "--nonblock", check=False)
    assert rc == 2 and "1236" in err, (rc, err)


def test_server_checks_refuse_bad_settings(ctx):
    db = ctx.mariadb()
    db.sql("CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY);")
    rc, out, err = db.binlog_dump("--check", "--tables", "c.t")
    assert rc == 0 and out[0]["checksum"] is True
    for var, bad, good in (("binlog_format", "MIXED", "ROW"), ("binlog_row_image", "MINIMAL", "FULL"),
                           ("binlog_row_metadata", "MINIMAL", "FULL"),
                           ("log_bin_compress", "ON", "OFF")):
        db.sql("SET GLOBAL %s = '%s'" % (var, bad))
        rc, _, err = db.binlog_dump("--check", "--tables", "c.t", check=False)
        db.sql("SET GLOBAL %s = '%s'" % (var, good))
        assert rc == 3 and var in err, (var, rc, err)
        ctx.log("refused: " + err.strip().splitlines()[-1][:120])
    pw = "pw-secret-1"
    db.sql("""CREATE USER nocli@'%%' IDENTIFIED BY '%s';
        GRANT REPLICATION SLAVE, SELECT ON *.* TO nocli@'%%';
        CREATE USER noslave@'%%' IDENTIFIED BY '%s';
        GRANT REPLICATION CLIENT, SELECT ON *.* TO noslave@'%%';
        CREATE USER nosel@'%%' IDENTIFIED BY '%s';
        GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO nosel@'%%';
        CREATE USER good@'%%' IDENTIFIED BY '%s';
        GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO good@'%%';
        GRANT SELECT ON c.* TO good@'%%';""" % (pw, pw, pw, pw))
    for user, priv in (("nocli", "REPLICATION CLIENT"), ("noslave", "REPLICATION SLAVE"),
                       ("nosel", "SELECT")):
        rc, _, err = db.binlog_dump("--check", "--tables", "c.t", user=user, password=pw,
                                    check=False)
        assert rc == 3 and ("lacks the %s privilege" % priv) in err, (user, rc, err)
        assert pw not in err
    rc, _, err = db.binlog_dump("--check", "--tables", "c.t", user="good", password=pw)
    assert rc == 0, err
    nolog = ctx.mariadb(log_bin=False)
    rc, _, err = nolog.binlog_dump("--check", check=False)
    assert rc == 3 and "log_bin" in err, (rc, err)


def test_heartbeat_and_stop(ctx):
    """A blocking stream with heartbeats ends cleanly on SIGTERM while idle."""
    import signal
    import subprocess
    import time
    db = ctx.mariadb()
    file, pos = db.master_status()
    p = subprocess.Popen([h.binlog_dump_bin(), "--port", str(db.port), "--file", file, "--pos",
                          str(pos), "--heartbeat-ms", "200"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    db.sql("CREATE DATABASE hb; CREATE TABLE hb.t (id INT PRIMARY KEY); INSERT INTO hb.t VALUES (1)")
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    lines = [line for line in out.decode().splitlines() if line]
    assert len(lines) == 1 and '"id":1' in lines[0]
    _, end = db.master_status()
    assert ("pos=%d" % end) in err.decode(), err
