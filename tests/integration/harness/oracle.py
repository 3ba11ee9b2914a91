"""The independent truth: a test_decoding slot listing every change per
transaction, and checks of cdc's output (JSONL, event-log table) against it."""

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

class OracleChange:
    __slots__ = ("txn", "index", "lsn", "table", "op", "dco")

    def __init__(self, txn, index, lsn, table, op, dco):
        self.txn, self.index, self.lsn, self.table, self.op, self.dco = (
            txn, index, lsn, table, op, dco)

    @property
    def xid(self):
        return self.txn.xid

    def key(self):
        """Identity of a change: (xid, index); the tables of one multi-table
        TRUNCATE share an LSN and may be numbered in either order, so those
        are identified by (xid, lsn, table) instead."""
        if self.op == "t":
            return (self.txn.xid, "T", self.lsn, self.table)
        return (self.txn.xid, self.index)

    def __repr__(self):
        return "<%s %s xid=%d #%d lsn=%s>" % (
            self.op, self.table, self.txn.xid, self.index, int_to_lsn(self.lsn))


class OracleTxn:
    def __init__(self, xid, begin_lsn):
        self.xid = xid
        self.begin_lsn = begin_lsn
        self.end_lsn = None  # end of the commit record
        self.commit_lsn = None  # start of the commit record (from the WAL), or None
        self.changes = []

    def commit_ok(self, lsn):
        """Is lsn this transaction's commit LSN?  Exact when the WAL could be
        read, else it must lie between the last change and the commit end."""
        if self.commit_lsn is not None:
            return lsn == self.commit_lsn
        return self.changes[-1].lsn < lsn < self.end_lsn


_CHANGE = re.compile(r"^table (.+?): (INSERT|UPDATE|DELETE|TRUNCATE):")


def _norm_table(name):
    parts = re.findall(r'"((?:[^"]|"")*)"|([^.]+)', name.strip())
    return ".".join(q.replace('""', '"') if q else p for q, p in parts)


class Oracle:
    """A second logical slot with the test_decoding plugin.  Create it right
    after cdc's slot and before the workload, so both see the same
    transactions.  read() peeks (does not consume) and returns, in commit
    order, every transaction with at least one change to the given tables."""

    def __init__(self, cluster, dbname, slot="oracle_slot"):
        self.cluster = cluster
        self.dbname = dbname
        self.slot = slot

    def create(self):
        self.cluster.execute(
            self.dbname,
            "SELECT pg_create_logical_replication_slot(%s, 'test_decoding')",
            (self.slot,),
        )
        return self

    def read(self, tables, upto_lsn=None):
        tables = set(tables)
        conn = self.cluster.connect(self.dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_changes("
                    "%s, %s::pg_lsn, NULL, 'include-xids', '1', 'skip-empty-xacts', '1')",
                    (self.slot, upto_lsn),
                )
                rows = cur.fetchall()
        finally:
            conn.close()
        txns = parse_test_decoding(rows, tables)
        self._add_commit_lsns(txns)
        return txns

    def _add_commit_lsns(self, txns):
        """Exact commit-record LSNs from pg_waldump, when the WAL is readable."""
        if not txns:
            return
        wal = os.path.join(self.cluster.dir, "data", "pg_wal")
        start = min(t.begin_lsn for t in txns)
        end = max(t.end_lsn for t in txns)
        try:
            r = subprocess.run(
                [os.path.join(PGBIN, "pg_waldump"), "-p", wal, "-r", "Transaction",
                 "-s", int_to_lsn(start), "-e", int_to_lsn(end)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired):
            return
        commits = {}
        for m in re.finditer(r"tx:\s+(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*desc: COMMIT", r.stdout):
            commits[int(m.group(1))] = lsn_to_int(m.group(2))
        for t in txns:
            c = commits.get(t.xid)
            if c is not None and t.changes[-1].lsn < c < t.end_lsn:
                t.commit_lsn = c

    def truncates(self, upto_lsn=None):
        """Every TRUNCATE the slot saw, in order: (tables, options), tables
        as test_decoding names them (normalized, in the statement's order),
        options a set of test_decoding's words ("restart_seqs", "cascade")."""
        rows = self.cluster.execute(
            self.dbname, "SELECT data FROM pg_logical_slot_peek_changes(%s, %s::pg_lsn, NULL)",
            (self.slot, upto_lsn))
        out = []
        for (data,) in rows:
            m = re.match(r"^table (.+): TRUNCATE: ?(.*)$", data)
            if m:
                out.append(([_norm_table(t) for t in m.group(1).split(", ")],
                            set(m.group(2).split()) - {"(no-flags)"}))
        return out

    def final_rows(self, table, key, upto_lsn=None, **settings):
        """The rows of table as test_decoding's changes leave them, replayed
        from the slot's start: {key tuple: {column: text or None}}.  Values
        are test_decoding's (the type's output function, run in a session
        with the given settings, e.g. TimeZone="UTC"), booleans as t/f.
        The table must have been empty when the slot was created, and its
        updates must carry whole rows (no unchanged TOAST)."""
        conn = self.cluster.connect(self.dbname)
        try:
            with conn.cursor() as cur:
                for k, v in settings.items():
                    cur.execute("SELECT set_config(%s, %s, false)", (k, v))
                cur.execute("SELECT data FROM pg_logical_slot_peek_changes(%s, %s::pg_lsn, NULL)",
                            (self.slot, upto_lsn))
                rows = [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
        want = "table %s: " % table
        out = {}
        for data in rows:
            if not data.startswith(want):
                continue
            kind, _, rest = data[len(want):].partition(": ")
            if kind == "TRUNCATE":
                out.clear()
                continue
            if kind == "INSERT":
                new = parse_decoded_tuple(rest)
                out[tuple(new[k] for k in key)] = new
            elif kind == "UPDATE":
                old = None
                if rest.startswith("old-key: "):
                    old_text, _, rest = rest[len("old-key: "):].partition(" new-tuple: ")
                    old = parse_decoded_tuple(old_text)
                new = parse_decoded_tuple(rest)
                if old is not None:
                    out.pop(tuple(old[k] for k in key), None)
                out[tuple(new[k] for k in key)] = new
            elif kind == "DELETE":
                old = parse_decoded_tuple(rest)
                out.pop(tuple(old[k] for k in key), None)
        return out

    @staticmethod
    def flatten(txns):
        return [c for t in txns for c in t.changes]


def parse_decoded_tuple(text):
    """test_decoding's tuple text ("name[type]:value ...") -> {column: text
    or None}.  Values are quoted ('it''s'), bare (numbers), true/false, B'…'
    or null; names may be double-quoted."""
    out = {}
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        if text[i] == '"':
            j = i + 1
            name = []
            while True:
                if text[j] == '"' and text[j + 1:j + 2] == '"':
                    name.append('"')
                    j += 2
                elif text[j] == '"':
                    break
                else:
                    name.append(text[j])
                    j += 1
            name = "".join(name)
            i = j + 1
        else:
            j = text.index("[", i)
            name = text[i:j]
            i = j
        # the type, in brackets that may nest (integer[])
        depth = 0
        while True:
            if text[i] == "[":
                depth += 1
            elif text[i] == "]":
                depth -= 1
                if depth == 0 and text[i + 1] == ":":
                    break
            i += 1
        i += 2
        if text.startswith("null", i):
            value, i = None, i + 4
        elif text[i] == "'" or text.startswith("B'", i):
            if text[i] == "B":
                i += 1
            j = i + 1
            buf = []
            while True:
                if text[j] == "'" and text[j + 1:j + 2] == "'":
                    buf.append("'")
                    j += 2
                elif text[j] == "'":
                    break
                else:
                    buf.append(text[j])
                    j += 1
            value, i = "".join(buf), j + 1
        else:
            j = text.find(" ", i)
            j = n if j < 0 else j
            value, i = text[i:j], j
            value = {"true": "t", "false": "f"}.get(value, value)
        out[name] = value
    return out


def map_tables(txns, mapping):
    """The oracle's transactions with tables renamed by mapping ({partition:
    partitioned table}), as a stream that names partitions by their root
    shows them: one TRUNCATE per table however many of its partitions one
    statement truncated, positions and per-table orders counted anew."""
    out = []
    for t in txns:
        nt = OracleTxn(t.xid, t.begin_lsn)
        nt.end_lsn, nt.commit_lsn = t.end_lsn, t.commit_lsn
        for c in t.changes:
            table = mapping.get(c.table, c.table)
            if c.op == "t" and any(o.op == "t" and o.lsn == c.lsn and o.table == table
                                   for o in nt.changes):
                continue
            dco = 1 + sum(1 for o in nt.changes if o.table == table)
            nt.changes.append(OracleChange(nt, len(nt.changes), c.lsn, table, c.op, dco))
        if nt.changes:
            out.append(nt)
    return out



def parse_test_decoding(rows, tables):
    """rows: (lsn text, xid text, data) from pg_logical_slot_*_changes with
    include-xids.  A multi-table TRUNCATE becomes one change per captured
    table, sharing its LSN."""
    txns, cur = [], None
    for lsn, _xid, data in rows:
        if data.startswith("BEGIN "):
            cur = OracleTxn(int(data.split()[1]), lsn_to_int(lsn))
        elif data.startswith("COMMIT "):
            if cur is None:
                raise AssertionError("oracle: COMMIT without BEGIN: %r" % data)
            cur.end_lsn = lsn_to_int(lsn)
            if cur.changes:
                txns.append(cur)
            cur = None
        elif data.startswith("table "):
            m = _CHANGE.match(data)
            if not m or cur is None:
                raise AssertionError("oracle: cannot parse %r" % short(data, 200))
            kind = m.group(2)
            names = m.group(1).split(", ") if kind == "TRUNCATE" else [m.group(1)]
            for name in names:
                name = _norm_table(name)
                if name not in tables:
                    continue
                dco = 1 + sum(1 for c in cur.changes if c.table == name)
                cur.changes.append(
                    OracleChange(cur, len(cur.changes), lsn_to_int(lsn), name, OPS[kind], dco))
        # other rows (logical messages) are not changes
    return txns


# --------------------------------------------------------------------------
# reading and checking what cdc wrote


def _json_int(s):
    # "-0" is how a float -0 may be written; Python would make it the integer 0
    return -0.0 if s == "-0" else int(s)


def read_jsonl(path):
    """Every line of cdc's file sink, parsed; the file must end with a newline
    and every line must be one JSON object (no torn or partial lines)."""
    if not os.path.exists(path):
        raise AssertionError("file sink output %s does not exist" % path)
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise AssertionError("%s does not end with a newline (torn last line: %s)"
                             % (path, short(data[-200:].decode("utf-8", "replace"))))
    out = []
    for i, line in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        try:
            rec = json.loads(line.decode("utf-8"), parse_int=_json_int)
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("%s line %d is not valid JSON (%s): %s"
                                 % (path, i, e, short(line.decode("utf-8", "replace"), 300)))
        if not isinstance(rec, dict):
            raise AssertionError("%s line %d is not a JSON object" % (path, i))
        out.append(rec)
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def envelope_problems(rec, pipeline_id, db):
    """Shape of one Debezium-style envelope per the contract; returns a list
    of problems (empty when fine)."""
    p = []
    for k in ("before", "after", "source", "op", "ts_ms", "transaction"):
        if k not in rec:
            p.append("missing %s" % k)
    if p:
        return p
    op, src, tx = rec["op"], rec["source"], rec["transaction"]
    if op not in ("c", "u", "d", "t"):
        p.append("op %r" % op)
    if op == "c" and not (rec["before"] is None and isinstance(rec["after"], dict)):
        p.append("insert needs before=null, after=object")
    if op == "u" and not isinstance(rec["after"], dict):
        p.append("update needs after=object")
    if op == "d" and not (isinstance(rec["before"], dict) and rec["after"] is None):
        p.append("delete needs before=object, after=null")
    if op == "t" and not (rec["before"] is None and rec["after"] is None):
        p.append("truncate needs before=after=null")
    if type(rec["ts_ms"]) is not int:
        p.append("ts_ms not an integer")
    if not isinstance(src, dict) or not isinstance(tx, dict):
        return p + ["source/transaction not objects"]
    want = {"connector": "postgresql", "name": pipeline_id, "snapshot": "false", "db": db}
    for k, v in want.items():
        if src.get(k) != v:
            p.append("source.%s=%r, want %r" % (k, src.get(k), v))
    for k in ("version", "schema", "table"):
        if not isinstance(src.get(k), str):
            p.append("source.%s not a string" % k)
    for k in ("txId", "lsn", "ts_ms"):
        if type(src.get(k)) is not int:
            p.append("source.%s not an integer" % k)
    if "xmin" not in src or src["xmin"] is not None:
        p.append("source.xmin must be null")
    try:
        seq = json.loads(src.get("sequence"))
        assert isinstance(seq, list) and len(seq) == 2 and all(
            isinstance(s, str) and s.isdigit() for s in seq)
        if int(seq[1]) != src.get("lsn"):
            p.append("source.sequence[1] != source.lsn")
    except (TypeError, ValueError, AssertionError):
        p.append("source.sequence %r is not [\"<commit_lsn>\",\"<lsn>\"]" % (src.get("sequence"),))
        seq = None
    tid = tx.get("id")
    if not (isinstance(tid, str) and re.match(r"^\d+:\d+$", tid)):
        p.append("transaction.id %r" % (tid,))
    else:
        x, c = tid.split(":")
        if int(x) != src.get("txId"):
            p.append("transaction.id xid != source.txId")
        if seq and c != seq[0]:
            p.append("transaction.id commit lsn != source.sequence[0]")
    for k in ("total_order", "data_collection_order"):
        if type(tx.get(k)) is not int or tx.get(k) < 1:
            p.append("transaction.%s=%r" % (k, tx.get(k)))
    return p


def rec_table(rec):
    return "%s.%s" % (rec["source"]["schema"], rec["source"]["table"])


def rec_commit_lsn(rec):
    return int(rec["transaction"]["id"].split(":")[1])


def rec_key(rec):
    """The oracle identity (see OracleChange.key) of an envelope."""
    s = rec["source"]
    if rec["op"] == "t":
        return (s["txId"], "T", s["lsn"], rec_table(rec))
    return (s["txId"], rec["transaction"]["total_order"] - 1)


def check_against_oracle(items, txns, what, ordered):
    """items: [(key, commit_lsn, lsn, table, op, total_order, dco, label)] in
    the order the sink holds them.  Proves every oracle change is present
    exactly once with the right position, and (ordered) in commit order.
    Returns the number of changes."""
    flat = Oracle.flatten(txns)
    index = {c.key(): (i, c) for i, c in enumerate(flat)}
    problems = []
    seen = collections.Counter()
    positions = []
    for key, commit, lsn, table, op, total, dco, label in items:
        seen[key] += 1
        hit = index.get(key)
        if hit is None:
            if len(problems) < 15:
                problems.append("%s: change not in the oracle: %s" % (what, label))
            continue
        pos, c = hit
        errs = []
        if c.table != table:
            errs.append("table %s, oracle %s" % (table, c.table))
        if c.op != op:
            errs.append("op %s, oracle %s" % (op, c.op))
        if c.lsn != lsn:
            errs.append("lsn %d, oracle %d" % (lsn, c.lsn))
        if not c.txn.commit_ok(commit):
            errs.append("commit lsn %s, oracle %s" % (
                int_to_lsn(commit),
                int_to_lsn(c.txn.commit_lsn) if c.txn.commit_lsn is not None else
                "between %s and %s" % (int_to_lsn(c.txn.changes[-1].lsn), int_to_lsn(c.txn.end_lsn))))
        if c.op == "t":
            group = [o for o in c.txn.changes if o.op == "t" and o.lsn == c.lsn]
            if total - 1 not in {o.index for o in group}:
                errs.append("total_order %d outside its truncate's positions" % total)
            if dco != c.dco:
                errs.append("data_collection_order %d, oracle %d" % (dco, c.dco))
        else:
            if total != c.index + 1:
                errs.append("total_order %d, oracle %d" % (total, c.index + 1))
            if dco is not None and dco != c.dco:
                errs.append("data_collection_order %d, oracle %d" % (dco, c.dco))
        if errs and len(problems) < 15:
            problems.append("%s: %s: %s" % (what, label, "; ".join(errs)))
        if c.op == "t":
            pos = min(i for i, o in enumerate(flat) if o.txn is c.txn and o.op == "t" and o.lsn == c.lsn)
        positions.append((pos, label))
    dups = [k for k, n in seen.items() if n > 1]
    missing = [c for c in flat if seen[c.key()] == 0]
    if dups:
        problems.append("%s: %d changes present more than once, e.g. %s"
                        % (what, len(dups), dups[:5]))
    if missing:
        problems.append("%s: %d of %d oracle changes missing, e.g. %s"
                        % (what, len(missing), len(flat), missing[:5]))
    if ordered and not dups:
        for (p1, l1), (p2, l2) in zip(positions, positions[1:]):
            if p2 < p1:
                problems.append("%s: not in commit order: %s comes after %s" % (what, l2, l1))
                break
    if problems:
        raise AssertionError("\n".join(problems))
    return len(flat)


def check_jsonl_against_oracle(records, txns, pipeline_id="t1", db="src"):
    """Every oracle change exactly once, in commit order, at the right
    position; every line a well-formed envelope."""
    items = []
    for i, rec in enumerate(records, 1):
        p = envelope_problems(rec, pipeline_id, db)
        if p:
            raise AssertionError("JSONL line %d is not a valid envelope: %s\n  %s"
                                 % (i, "; ".join(p), short(json.dumps(rec), 400)))
        s, t = rec["source"], rec["transaction"]
        items.append((rec_key(rec), rec_commit_lsn(rec), s["lsn"], rec_table(rec), rec["op"],
                      t["total_order"], t["data_collection_order"],
                      "line %d (%s %s xid=%d #%d)" % (i, rec["op"], rec_table(rec), s["txId"],
                                                    t["total_order"])))
    return check_against_oracle(items, txns, "JSONL", ordered=True)


def read_events(conn, table="public.cdc_events"):
    """Rows of the event-log table; JSON numbers parsed as Decimal so that
    they compare exactly with the file's."""
    loads = lambda s: json.loads(s, parse_float=decimal.Decimal)  # noqa: E731
    psycopg2.extras.register_default_jsonb(conn, loads=loads)
    psycopg2.extras.register_default_json(conn, loads=loads)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT source_topic, source_partition, source_offset, event_key, event_value "
            "FROM %s" % qtable(table))
        return cur.fetchall()


def check_events_against_oracle(rows, txns, topic_prefix="cdc", pipeline_id="t1", db="src"):
    """One row per oracle change: source_topic = prefix.schema.table,
    source_partition = index in the transaction, source_offset = commit LSN;
    event_value is the envelope of that change."""
    items = []
    for topic, part, offset, key, value in rows:
        label = "row (%s, %s, %s)" % (topic, part, offset)
        if not isinstance(value, dict):
            raise AssertionError("event_value of %s is not an object" % label)
        p = envelope_problems(_floatify(value), pipeline_id, db)
        if p:
            raise AssertionError("event_value of %s is not a valid envelope: %s" % (label, "; ".join(p)))
        s, t = value["source"], value["transaction"]
        table = "%s.%s" % (s["schema"], s["table"])
        if topic != "%s.%s" % (topic_prefix, table):
            raise AssertionError("%s: source_topic should be %s.%s" % (label, topic_prefix, table))
        if part != t["total_order"] - 1:
            raise AssertionError("%s: source_partition != transaction.total_order - 1 (%s)"
                                 % (label, t["total_order"]))
        if offset != rec_commit_lsn(value):
            raise AssertionError("%s: source_offset != the envelope's commit LSN %s"
                                 % (label, value["transaction"]["id"]))
        items.append((rec_key(value), offset, s["lsn"], table, value["op"], t["total_order"],
                      t["data_collection_order"], label + " xid=%d" % s["txId"]))
    return check_against_oracle(items, txns, "event log", ordered=False)


def _floatify(o):
    """Decimal -> int/float, for shape checks only."""
    if isinstance(o, dict):
        return {k: _floatify(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_floatify(v) for v in o]
    if isinstance(o, decimal.Decimal):
        return float(o)
    return o


def check_events_match_file(rows, records):
    """event_value equals the file's envelope for the same change (all but
    the processing-time ts_ms); event_key holds the key columns."""
    def norm(o):
        # numbers compare as exact decimals: jsonb keeps 1e308 as 1000…0
        if isinstance(o, dict):
            return {k: norm(v) for k, v in o.items()}
        if isinstance(o, list):
            return [norm(v) for v in o]
        if isinstance(o, float):
            return decimal.Decimal(repr(o))
        return o

    by_key = {}
    for rec in records:
        by_key[rec_key(rec)] = rec
    for topic, part, offset, key, value in rows:
        rec = by_key.get(rec_key(_floatify(value)))
        if rec is None:
            raise AssertionError("event (%s,%s,%s) has no line in the file" % (topic, part, offset))
        # when cdc decoded the change (top-level ts_*) differs between runs
        a = {k: v for k, v in value.items() if k not in ("ts_ms", "ts_us", "ts_ns")}
        b = {k: v for k, v in rec.items() if k not in ("ts_ms", "ts_us", "ts_ns")}
        if norm(a) != norm(b):
            raise AssertionError("event_value (%s,%s,%s) differs from the file's envelope:\n"
                                 "  event: %s\n  file:  %s" % (topic, part, offset,
                                                               short(json.dumps(a, default=str), 600),
                                                               short(json.dumps(b, default=str), 600)))


# --------------------------------------------------------------------------
# recording what a scripted workload did, and matching the file against it
