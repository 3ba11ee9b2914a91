"""Comparisons with the source: value mapping, tables as multisets, replays of
cdc's output onto the source's rows, snapshot rows."""

# flake8: noqa: F401,F403,F405
import base64
import collections
import contextlib
import decimal
import hashlib
import hmac
import io
import json
import math
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg2
import psycopg2.extras

from .common import *  # noqa: F401,F403
from .pg import *  # noqa: F401,F403
from .cdc import *  # noqa: F401,F403
from .oracle import *  # noqa: F401,F403
from .oracle import _json_int  # noqa: F401

def expected_json(typname, text):
    """The contract's value mapping applied to PostgreSQL's text output."""
    if text is None:
        return None
    if typname in INT_TYPES:
        return int(text)
    if typname in FLOAT_TYPES:
        if text in ("NaN", "Infinity", "-Infinity"):
            return text
        return float(text)
    if typname == "bool":
        return text == "t"
    if typname == "bytea":
        assert text.startswith("\\x"), "bytea_output must be hex"
        return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")
    return text  # numeric and everything else: the text output


_TSTZ = re.compile(
    r"^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(\.\d+)?([+-]\d\d)(?::?(\d\d))?(?::(\d\d))?( BC)?$"
)


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse_tstz(s):
    """ISO timestamptz text -> microseconds since the epoch (UTC), or None."""
    m = _TSTZ.match(s)
    if not m:
        return None
    y, mo, d, hh, mi, se = (int(m.group(i)) for i in range(1, 7))
    if m.group(11):
        y = 1 - y  # 1 BC is year 0
    frac = m.group(7) or ""
    us = int((frac[1:] + "000000")[:6]) if frac else 0
    sign = -1 if m.group(8)[0] == "-" else 1
    off = int(m.group(8)[1:]) * 3600 + int(m.group(9) or 0) * 60 + int(m.group(10) or 0)
    secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + se - sign * off
    return secs * 1000000 + us


def json_value_ok(typname, actual, text):
    """Does a JSON value from cdc equal the source value whose text output is
    `text`?  Exact, except: float4 compares at single precision, and
    timestamptz compares the instant (its text depends on the session's
    TimeZone, which the contract leaves to cdc)."""
    if text is None:
        return actual is None
    exp = expected_json(typname, text)
    if typname in INT_TYPES:
        return type(actual) is int and actual == exp
    if typname in FLOAT_TYPES:
        if isinstance(exp, str):
            return actual == exp
        if type(actual) not in (int, float):
            return False
        a = float(actual)
        if typname == "float4":
            try:
                return struct.pack("<f", a) == struct.pack("<f", exp)
            except OverflowError:
                return False
        return a == exp and math.copysign(1, a) == math.copysign(1, exp)
    if typname == "bool":
        return actual is exp
    if typname == "timestamptz" and isinstance(actual, str) and actual != exp:
        a, e = _parse_tstz(actual), _parse_tstz(exp)
        return a is not None and a == e
    return actual == exp


def row_mismatches(meta, json_row, text_row, skip=()):
    """Column names where json_row (cdc's) differs from text_row (source)."""
    bad = []
    if not isinstance(json_row, dict):
        return ["<not an object: %s>" % short(json_row)]
    extra = set(json_row) - set(meta.names)
    if extra:
        bad.append("<unexpected columns %s>" % sorted(extra))
    for c in meta.names:
        if c in skip:
            continue
        if c not in json_row:
            bad.append("%s (missing)" % c)
        elif not json_value_ok(meta.types[c], json_row[c], text_row[c]):
            try:
                want = json.dumps(expected_json(meta.types[c], text_row[c]), ensure_ascii=False)
            except ValueError:
                want = "?"
            bad.append("%s: got %s, want %s (%s text %s)" % (
                c, short(json.dumps(json_row[c], ensure_ascii=False), 80), short(want, 80),
                meta.types[c], short(text_row[c], 60)))
    return bad


@contextlib.contextmanager
def session_settings(conn, **gucs):
    """Sets GUCs on an autocommit connection and restores them afterwards."""
    old = {}
    with conn.cursor() as cur:
        for k, v in gucs.items():
            cur.execute("SELECT current_setting(%s)", (k,))
            old[k] = cur.fetchone()[0]
            cur.execute("SELECT set_config(%s, %s, false)", (k, v))
    try:
        yield
    finally:
        with conn.cursor() as cur:
            for k, v in old.items():
                cur.execute("SELECT set_config(%s, %s, false)", (k, v))


# --------------------------------------------------------------------------
# mirror comparison


class _HashingWriter:
    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.h.update(data)
        self.n += data.count(b"\n")
        self.f.write(data)


def _dump(conn, table, cols, path, only=False, where=None):
    collist = ", ".join(qident(c) for c in cols)
    order = ", ".join('%s::text COLLATE "C"' % qident(c) for c in cols)
    sql = "COPY (SELECT %s FROM %s%s%s ORDER BY %s) TO STDOUT" % (
        collist, "ONLY " if only else "", qtable(table), " WHERE " + where if where else "", order)
    with session_settings(
        conn, TimeZone="UTC", DateStyle="ISO, YMD", IntervalStyle="postgres",
        extra_float_digits="1", bytea_output="hex",
    ):
        with open(path, "wb") as f, conn.cursor() as cur:
            w = _HashingWriter(f)
            cur.copy_expert(sql, w)
    return w.h.hexdigest(), w.n


def _fmt_copy_row(cols, line):
    fields = line.split("\t")
    return ", ".join("%s=%s" % (c, short(v, 60)) for c, v in zip(cols, fields))


def compare_tables(src_conn, dst_conn, table, dst_table=None, show=10, only=False, where=None,
                   columns=None):
    """Proves dst_table (default: same name) in dst_conn holds exactly the rows
    of table in src_conn, as multisets of text forms of the source's columns.
    only: the source table's own rows (SELECT FROM ONLY: not its inheritance
    children); where: only the source rows this SQL condition selects;
    columns: only these source columns.  Returns the row count; raises
    AssertionError with a readable diff."""
    dst_table = dst_table or table
    src_cols = table_columns(src_conn, table)
    if columns is not None:
        src_cols = [(c, t) for c, t in src_cols if c in columns]
    with dst_conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (qtable(dst_table),))
        if cur.fetchone()[0] is None:
            raise AssertionError("mirror table %s does not exist" % dst_table)
    dst_cols = dict(table_columns(dst_conn, dst_table))
    cols = [c for c, _ in src_cols]
    missing = [c for c in cols if c not in dst_cols]
    if missing:
        raise AssertionError("mirror table %s lacks columns %s" % (dst_table, missing))
    with tempfile.TemporaryDirectory(prefix="cdc-compare-") as d:
        hs, ns = _dump(src_conn, table, cols, os.path.join(d, "src"), only, where)
        hd, nd = _dump(dst_conn, dst_table, cols, os.path.join(d, "dst"))
        if hs == hd:
            return ns
        with open(os.path.join(d, "src"), encoding="utf-8") as f:
            a = collections.Counter(f.read().splitlines())
        with open(os.path.join(d, "dst"), encoding="utf-8") as f:
            b = collections.Counter(f.read().splitlines())
    only_src = list((a - b).elements())
    only_dst = list((b - a).elements())
    msg = ["mirror %s differs from source %s: source %d rows, mirror %d rows; "
           "%d rows only in source, %d only in mirror"
           % (dst_table, table, ns, nd, len(only_src), len(only_dst))]
    typediff = [
        "%s %s->%s" % (c, t, dst_cols[c]) for c, t in src_cols if dst_cols.get(c) != t
    ]
    if typediff:
        msg.append("  column types differ: " + ", ".join(typediff))
    # pair rows by their first column to show which columns differ
    by_first = collections.defaultdict(list)
    for line in only_dst:
        by_first[line.split("\t", 1)[0]].append(line)
    shown = 0
    for line in only_src[:show]:
        first = line.split("\t", 1)[0]
        if len(by_first.get(first, [])) == 1:
            other = by_first.pop(first)[0]
            fa, fb = line.split("\t"), other.split("\t")
            diffs = ["%s: source %s, mirror %s" % (c, short(x, 60), short(y, 60))
                     for c, x, y in zip(cols, fa, fb) if x != y]
            msg.append("  row %s=%s differs: %s" % (cols[0], short(first, 40), "; ".join(diffs)))
            only_dst.remove(other)
        else:
            msg.append("  only in source: " + _fmt_copy_row(cols, line))
        shown += 1
    for line in only_dst[: max(0, show - shown) or 3]:
        msg.append("  only in mirror: " + _fmt_copy_row(cols, line))
    raise AssertionError("\n".join(msg))


def copy_table(src_conn, dst_conn, table, dst_table=None):
    """Copies all rows by COPY TO/FROM (used to build a mirror by hand)."""
    buf = io.BytesIO()
    with src_conn.cursor() as cur:
        cur.copy_expert("COPY %s TO STDOUT" % qtable(table), buf)
    buf.seek(0)
    with dst_conn.cursor() as cur:
        cur.copy_expert("COPY %s FROM STDIN" % qtable(dst_table or table), buf)


# --------------------------------------------------------------------------
# the oracle: a test_decoding slot




class Recorder:
    """Runs the workload's statements and records, for committed
    transactions, every row image the database reports (RETURNING)."""

    def __init__(self, conn, metas):
        self.conn = conn
        self.metas = metas
        self.expect = collections.defaultdict(list)  # (xid, table, op) -> [(before, after)]
        self.pending = []
        self.xid = None
        self.cur = None

    def begin(self):
        self.cur = self.conn.cursor()
        self.cur.execute("SELECT txid_current()")
        self.xid = self.cur.fetchone()[0] & 0xFFFFFFFF
        self.pending = []
        return self

    def _rows(self, table):
        names = self.metas[table].names
        return [dict(zip(names, r)) for r in self.cur.fetchall()]

    def insert(self, table, sql, params=None):
        """sql: an INSERT without RETURNING."""
        self.cur.execute(sql + " RETURNING " + self.metas[table].text_select(), params)
        for r in self._rows(table):
            self.pending.append((table, "c", None, r))

    def delete(self, table, where, params=None):
        self.cur.execute("DELETE FROM %s WHERE %s RETURNING %s"
                         % (table, where, self.metas[table].text_select()), params)
        for r in self._rows(table):
            self.pending.append((table, "d", r, None))

    def update(self, table, set_sql, where, params=None):
        m = self.metas[table]
        old = ", ".join('%s AS "o%d"' % (text_expr(qident(c)), i) for i, c in enumerate(m.names))
        sql = ("UPDATE %s t SET %s FROM (SELECT ctid AS octid, %s FROM %s WHERE %s) o "
               "WHERE t.ctid = o.octid RETURNING %s, %s" % (
                   table, set_sql, old, table, where,
                   ", ".join('o."o%d"' % i for i in range(len(m.names))), m.text_select("t.")))
        self.cur.execute(sql, params)
        n = len(m.names)
        for r in self.cur.fetchall():
            self.pending.append((table, "u", dict(zip(m.names, r[:n])), dict(zip(m.names, r[n:]))))

    def truncate(self, tables):
        self.cur.execute("TRUNCATE " + ", ".join(tables))
        for t in tables:
            self.pending.append((t, "t", None, None))

    def execute(self, sql, params=None):
        self.cur.execute(sql, params)

    def commit(self):
        self.conn.commit()
        for table, op, before, after in self.pending:
            self.expect[(self.xid, table, op)].append((before, after))
        self.cur.close()

    def rollback(self):
        self.conn.rollback()
        self.cur.close()


def match_records(records, expect, metas):
    """Pairs every c/u/d line with one recorded row image of the same
    (xid, table, op); all images must be used exactly once."""
    pool = {k: list(v) for k, v in expect.items()}
    problems = []

    def before_ok(m, got, want, op, after):
        if m.key and m.identity != "f":  # DEFAULT: only key columns set, others null
            # PostgreSQL sends no old row for an update that keeps the key, and
            # Debezium writes before = null then; cdc does the same.
            if op == "u" and all(want[k] == after[k] for k in m.key):
                return [] if got is None else [
                    "before is %s; an update that keeps the key under REPLICA IDENTITY "
                    "DEFAULT has before = null" % short(json.dumps(got))]
            if not isinstance(got, dict):
                return ["before is %s; under REPLICA IDENTITY DEFAULT it must be an object "
                        "with the key columns set and the others null" % short(json.dumps(got))]
            bad = ["before.%s: got %s, want %s" % (k, short(got.get(k)), short(want[k]))
                   for k in m.key if not json_value_ok(m.types[k], got.get(k), want[k])]
            bad += ["before.%s should be null" % c for c in m.names
                    if c not in m.key and got.get(c) is not None]
            return bad
        return ["before." + x for x in row_mismatches(m, got, want)]

    for i, rec in enumerate(records, 1):
        op = rec["op"]
        table = rec_table(rec)
        if op == "t":
            cands = pool.get((rec["source"]["txId"], table, op))
            if cands:
                cands.pop()
            else:
                problems.append("line %d: truncate of %s in xid %s was not done" % (
                    i, table, rec["source"]["txId"]))
            continue
        m = metas[table]
        key = (rec["source"]["txId"], table, op)
        cands = pool.get(key, [])
        best = None
        for j, (before, after) in enumerate(cands):
            bad = []
            if op in ("c", "u"):
                # a large value the update left alone may be the unchanged-TOAST marker
                skip = [c for c in m.names if op == "u" and isinstance(rec["after"], dict)
                        and rec["after"].get(c) == UNCHANGED and before[c] is not None
                        and before[c] == after[c] and len(after[c]) >= 1000]
                bad += ["after." + x for x in row_mismatches(m, rec["after"], after, skip)]
            if op == "c" and rec["before"] is not None:
                bad.append("before should be null")
            if op in ("u", "d"):
                bad += before_ok(m, rec["before"], before, op, after)
            if not bad:
                cands.pop(j)
                best = None
                break
            if best is None or len(bad) < len(best):
                best = bad
        else:
            problems.append("line %d (%s %s xid=%s): %s" % (
                i, op, table, key[0],
                "no such change recorded" if best is None else
                "no recorded row matches; closest differs in: " + "; ".join(best[:6])))
        if len(problems) >= 10:
            break
    left = sum(len(v) for v in pool.values())
    if left and not problems:
        problems.append("%d recorded row changes have no line in the file, e.g. %s" % (
            left, [k for k, v in pool.items() if v][:3]))
    if problems:
        raise AssertionError("JSONL values differ from the database's rows:\n  " + "\n  ".join(problems))



# --------------------------------------------------------------------------
# replaying the file against the source


def replay_jsonl(records, metas):
    """Applies the file's envelopes in order to an empty state per table
    (TableMeta by name); unchanged-TOAST markers take the previous value.
    Returns ({table: state}, problems) where state is {key tuple: row} for
    tables with a primary key, else a Counter of canonical rows."""
    state = {t: ({} if m.key else collections.Counter()) for t, m in metas.items()}
    problems = []

    def prob(msg):
        if len(problems) < 20:
            problems.append(msg)

    def canon(row):
        return json.dumps(row, sort_keys=True)

    for i, rec in enumerate(records, 1):
        t = rec_table(rec)
        if t not in metas:
            prob("line %d: table %s not captured" % (i, t))
            continue
        m, st, op = metas[t], state[t], rec["op"]
        if op == "t":
            st.clear()
            continue
        before, after = rec.get("before"), rec.get("after")
        if m.key:
            def key(row):
                return tuple(json.dumps(row.get(k)) for k in m.key)
            if op == "c":
                k = key(after)
                if k in st:
                    prob("line %d: insert of existing key %s in %s" % (i, k, t))
                st[k] = dict(after)
            elif op == "u":
                ok = key(before) if before and all(before.get(c) is not None for c in m.key) else key(after)
                old = st.pop(ok, None)
                if old is None:
                    prob("line %d: update of unknown key %s in %s" % (i, ok, t))
                    old = {}
                new = {c: (old.get(c, v) if v == UNCHANGED else v) for c, v in after.items()}
                if key(new) in st:
                    prob("line %d: update onto existing key %s in %s" % (i, key(new), t))
                st[key(new)] = new
            elif op == "d":
                k = key(before)
                if st.pop(k, None) is None:
                    prob("line %d: delete of unknown key %s in %s" % (i, k, t))
        else:
            if op in ("u", "d"):
                b = canon(before)
                if st[b] <= 0:
                    prob("line %d: %s of a row %s not present in %s" % (i, op, short(b, 150), t))
                else:
                    st[b] -= 1
                    if st[b] == 0:
                        del st[b]
            if op in ("c", "u"):
                new = {c: ((before or {}).get(c, v) if v == UNCHANGED else v) for c, v in after.items()}
                st[canon(new)] += 1
    return state, problems


def check_replay_equals_source(records, src_conn, tables):
    """The file, replayed in order, must reproduce the source tables exactly
    (values compared with the contract's mapping)."""
    metas = {t: TableMeta(src_conn, t) for t in tables}
    state, problems = replay_jsonl(records, metas)
    if problems:
        raise AssertionError("replaying the JSONL file failed:\n  " + "\n  ".join(problems))
    diffs = []
    for t, m in metas.items():
        rows = m.rows_text(src_conn)
        st = state[t]
        if m.key:
            seen = set()
            for r in rows:
                k = tuple(json.dumps(expected_json(m.types[c], r[c])) for c in m.key)
                seen.add(k)
                got = st.get(k)
                if got is None:
                    diffs.append("%s key %s: in source, not in replayed file" % (t, k))
                    continue
                bad = row_mismatches(m, got, r)
                if bad:
                    diffs.append("%s key %s: %s" % (t, k, "; ".join(bad)))
            for k in st:
                if k not in seen:
                    diffs.append("%s key %s: in replayed file, not in source" % (t, k))
        else:
            want = collections.Counter(
                json.dumps({c: expected_json(m.types[c], r[c]) for c in m.names}, sort_keys=True)
                for r in rows)
            for row, n in (want - st).items():
                diffs.append("%s: %d x %s in source, not in replayed file" % (t, n, short(row, 200)))
            for row, n in (st - want).items():
                diffs.append("%s: %d x %s in replayed file, not in source" % (t, n, short(row, 200)))
        if len(diffs) > 20:
            break
    if diffs:
        raise AssertionError("replayed JSONL differs from the source:\n  " + "\n  ".join(diffs[:20]))


# --------------------------------------------------------------------------
# random workload


STANDARD_DDL = """
CREATE TABLE public.accounts (
    id      int PRIMARY KEY,
    owner   text NOT NULL,
    balance bigint NOT NULL,
    note    text
);
CREATE TABLE public.lines (
    order_id int,
    line_no  int,
    sku      text NOT NULL,
    qty      int NOT NULL,
    price    numeric(12,2),
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE public.history (
    id      bigint PRIMARY KEY,
    kind    text NOT NULL,
    amount  numeric,
    payload text
);
ALTER TABLE public.history REPLICA IDENTITY FULL;
"""
STANDARD_TABLES = ["public.accounts", "public.lines", "public.history"]
# their key columns
STANDARD_KEYS = {"public.accounts": ["id"], "public.lines": ["order_id", "line_no"],
                 "public.history": ["id"]}
# a table without a key, whose changes carry their whole old rows
LOOSE_DDL = ("CREATE TABLE public.loose (a int, b text); "
             "ALTER TABLE public.loose REPLICA IDENTITY FULL;")




def iter_jsonl(path, start_line=1):
    """Yields (line number, parsed record) for every line of a file sink's
    output from start_line on, without holding the file in memory; every
    line must be a whole JSON object and the file must end with a newline."""
    if not os.path.exists(path):
        raise AssertionError("file sink output %s does not exist" % path)
    with open(path, "rb") as f:
        for i, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                raise AssertionError("%s does not end with a newline (torn last line %d: %s)"
                                     % (path, i, short(line[-200:].decode("utf-8", "replace"))))
            if i < start_line:
                continue
            try:
                rec = json.loads(line, parse_int=_json_int)
            except (UnicodeDecodeError, ValueError) as e:
                raise AssertionError("%s line %d is not valid JSON (%s): %s"
                                     % (path, i, e, short(line.decode("utf-8", "replace"), 300)))
            if not isinstance(rec, dict):
                raise AssertionError("%s line %d is not a JSON object" % (path, i))
            yield i, rec


SNAPSHOT_MARKERS = ("true",)


def snapshot_row_problems(rec, pipeline_id, db, markers=SNAPSHOT_MARKERS):
    """Shape of one snapshot-row envelope: op "r", before null, after an
    object, source.snapshot one of markers, transaction null, source naming
    the pipeline, database and table."""
    p = []
    for k in ("before", "after", "source", "op", "ts_ms", "transaction"):
        if k not in rec:
            p.append("missing %s" % k)
    if p:
        return p
    if rec["op"] != "r":
        p.append("op %r, want \"r\"" % (rec["op"],))
    if rec["before"] is not None:
        p.append("before must be null")
    if not isinstance(rec["after"], dict):
        p.append("after must be an object")
    if rec["transaction"] is not None:
        p.append("transaction must be null, got %s" % short(json.dumps(rec["transaction"]), 80))
    if type(rec["ts_ms"]) is not int:
        p.append("ts_ms not an integer")
    src = rec["source"]
    if not isinstance(src, dict):
        return p + ["source is not an object"]
    if src.get("snapshot") not in markers:
        p.append("source.snapshot=%r, want one of %s" % (src.get("snapshot"), list(markers)))
    for k, v in (("connector", "postgresql"), ("name", pipeline_id), ("db", db)):
        if src.get(k) != v:
            p.append("source.%s=%r, want %r" % (k, src.get(k), v))
    for k in ("schema", "table"):
        if not isinstance(src.get(k), str):
            p.append("source.%s not a string" % k)
    return p


def json_row_canon(meta, row):
    """Canonical text of a JSON row image (sorted keys), comparable with
    text_row_canon of the same row's database text."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def text_row_canon(meta, text_row):
    """Canonical text of a row given as {column: PostgreSQL text output}:
    the contract's value mapping, then sorted-key JSON."""
    return json.dumps({c: expected_json(meta.types[c], text_row[c]) for c in meta.names},
                      sort_keys=True, ensure_ascii=False)


def json_key_of(meta, row):
    """The primary-key values of a JSON row image, as a hashable tuple."""
    return tuple(json.dumps(row.get(k), sort_keys=True) for k in meta.key)


def text_key_of(meta, text_row):
    return tuple(json.dumps(expected_json(meta.types[k], text_row[k]), sort_keys=True)
                 for k in meta.key)


def replay_with_reads(records, metas, lenient=False):
    """Like replay_jsonl, but snapshot rows (op "r") are applied too, in file
    order: as an upsert of the row for tables with a primary key, as one more
    copy of the row for tables without one.  lenient: the file may start in
    the middle of a row's history (changes to rows it never showed, as when
    streaming began before a row's snapshot): an insert of an existing key
    replaces it, an update of an unknown key inserts its new image, a delete
    of an unknown key or row does nothing.  Returns (state, problems)."""
    return _replay_mixed(records, metas, lenient)


def _replay_mixed(records, metas, lenient=False):
    """replay_with_reads' worker: one pass in file order."""
    state = {t: ({} if m.key else collections.Counter()) for t, m in metas.items()}
    problems = []

    def prob(msg):
        if len(problems) < 20:
            problems.append(msg)

    for i, rec in enumerate(records, 1):
        t = rec_table(rec)
        if t not in metas:
            prob("line %d: table %s not captured" % (i, t))
            continue
        m, st, op = metas[t], state[t], rec["op"]
        before, after = rec.get("before"), rec.get("after")
        if op == "t":
            st.clear()
        elif op == "r":
            if m.key:
                st[json_key_of(m, after)] = dict(after)
            else:
                st[json_row_canon(m, after)] += 1
        elif m.key:
            if op == "c":
                k = json_key_of(m, after)
                if k in st and not lenient:
                    prob("line %d: insert of existing key %s in %s" % (i, k, t))
                st[k] = dict(after)
            elif op == "u":
                usable = before and all(before.get(c) is not None for c in m.key)
                ok = json_key_of(m, before) if usable else json_key_of(m, after)
                old = st.pop(ok, None)
                if old is None:
                    if not lenient:
                        prob("line %d: update of unknown key %s in %s" % (i, ok, t))
                    old = {}
                new = {c: (old.get(c, v) if v == UNCHANGED else v) for c, v in after.items()}
                st[json_key_of(m, new)] = new
            elif op == "d":
                k = json_key_of(m, before)
                if st.pop(k, None) is None and not lenient:
                    prob("line %d: delete of unknown key %s in %s" % (i, k, t))
            else:
                prob("line %d: unknown op %r" % (i, op))
        else:
            if op in ("u", "d"):
                b = json_row_canon(m, before)
                if st[b] <= 0:
                    if not lenient:
                        prob("line %d: %s of a row %s not present in %s" % (i, op, short(b, 150), t))
                    st.pop(b, None)
                else:
                    st[b] -= 1
                    if st[b] == 0:
                        del st[b]
            if op in ("c", "u"):
                new = {c: ((before or {}).get(c, v) if v == UNCHANGED else v) for c, v in after.items()}
                st[json_row_canon(m, new)] += 1
    return state, problems


def check_replay_with_reads_equals_source(records, src_conn, tables, lenient=False):
    """The file (snapshot rows and changes), replayed in order (see
    replay_with_reads), must reproduce the source tables exactly."""
    metas = {t: TableMeta(src_conn, t) for t in tables}
    state, problems = replay_with_reads(records, metas, lenient)
    if problems:
        raise AssertionError("replaying the JSONL file failed:\n  " + "\n  ".join(problems))
    diffs = []
    for t, m in metas.items():
        st = state[t]
        rows = m.rows_text(src_conn)
        if m.key:
            seen = set()
            for r in rows:
                k = text_key_of(m, r)
                seen.add(k)
                got = st.get(k)
                if got is None:
                    diffs.append("%s key %s: in source, not in replayed file" % (t, k))
                    continue
                bad = row_mismatches(m, got, r)
                if bad:
                    diffs.append("%s key %s: %s" % (t, k, "; ".join(bad)))
            for k in st:
                if k not in seen:
                    diffs.append("%s key %s: in replayed file, not in source" % (t, k))
        else:
            want = collections.Counter(text_row_canon(m, r) for r in rows)
            for row, n in (want - st).items():
                diffs.append("%s: %d x %s in source, not in replayed file" % (t, n, short(row, 200)))
            for row, n in (st - want).items():
                diffs.append("%s: %d x %s in replayed file, not in source" % (t, n, short(row, 200)))
        if len(diffs) > 20:
            break
    if diffs:
        raise AssertionError("replayed JSONL differs from the source:\n  " + "\n  ".join(diffs[:20]))
