"""A random concurrent writer (own connection, own thread) and its key pool."""

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
from .compare import *  # noqa: F401,F403

LINE_NO_MOVED = 1000  # moved order lines are numbered above this


class KeyPool:
    """Keys that exist in a table, with an undo journal for rollbacks."""

    def __init__(self):
        self.keys = []
        self.pos = {}
        self.journal = []

    def __len__(self):
        return len(self.keys)

    def add(self, k, log=True):
        self.pos[k] = len(self.keys)
        self.keys.append(k)
        if log:
            self.journal.append(("add", k))

    def remove(self, k, log=True):
        i = self.pos.pop(k)
        last = self.keys.pop()
        if i < len(self.keys):
            self.keys[i] = last
            self.pos[last] = i
        if log:
            self.journal.append(("remove", k))

    def choice(self, rng):
        return self.keys[rng.randrange(len(self.keys))] if self.keys else None

    def mark(self):
        return len(self.journal)

    def undo_to(self, mark):
        while len(self.journal) > mark:
            op, k = self.journal.pop()
            if op == "add":
                self.remove(k, log=False)
            else:
                self.add(k, log=False)


class Workload(threading.Thread):
    """Random writes to the STANDARD_TABLES on its own connection:
    multi-statement transactions touching several tables, inserts, updates
    (of small columns, leaving large TOASTed notes unchanged; of notes; of
    primary keys), deletes, multi-row statements, savepoints rolled back and
    whole transactions rolled back.  It is the only writer, so it knows which
    keys exist.  Stops after max_txns transactions or when stop() is called.
    self.committed lists (xid, changes) for each committed transaction."""

    def __init__(self, cluster, dbname, seed=None, max_txns=None, pause=0.01, big_note_ratio=0.08,
                 bulk_ratio=0.04):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.dbname = dbname
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.max_txns = max_txns
        self.pause = pause
        self.big_note_ratio = big_note_ratio
        self.bulk_ratio = bulk_ratio
        self.accounts, self.lines, self.history = KeyPool(), KeyPool(), KeyPool()
        self.pools = (self.accounts, self.lines, self.history)
        self.next_id = 1
        self.committed = []
        self.rolled_back = 0
        self.error = None
        self._halt = threading.Event()

    @staticmethod
    def create_tables(conn):
        with conn.cursor() as cur:
            cur.execute(STANDARD_DDL)

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def text(self, n):
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(n))

    def big_note(self):
        # incompressible, so it is stored out of line (TOAST)
        return base64.b64encode(self.rng.randbytes(self.rng.randrange(6000, 12000))).decode()

    # each op returns the number of rows it changed
    def op(self, cur):
        if self.rng.random() < self.bulk_ratio:
            # a bigger multi-row statement
            n = self.rng.randrange(50, 250)
            first = self.next_id + 1
            self.next_id += n
            cur.execute(
                "INSERT INTO history SELECT g, 'bulk', g * 1.5, md5(g::text) "
                "FROM generate_series(%s, %s) g", (first, first + n - 1))
            for k in range(first, first + n):
                self.history.add(k)
            return n
        r = self.rng.random()
        if r < 0.12 or not self.accounts:
            k = self.new_id()
            note = self.big_note() if self.rng.random() < self.big_note_ratio else self.text(20)
            cur.execute("INSERT INTO accounts VALUES (%s, %s, %s, %s)",
                        (k, self.text(8), self.rng.randrange(10 ** 6), note))
            self.accounts.add(k)
            return 1
        if r < 0.24:
            k = self.accounts.choice(self.rng)
            cur.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s",
                        (self.rng.randrange(-500, 500), k))
            return cur.rowcount
        if r < 0.28:
            k = self.accounts.choice(self.rng)
            cur.execute("UPDATE accounts SET note = %s WHERE id = %s", (self.text(30), k))
            return cur.rowcount
        if r < 0.32:
            k, n = self.accounts.choice(self.rng), self.new_id()
            cur.execute("UPDATE accounts SET id = %s WHERE id = %s", (n, k))
            self.accounts.remove(k)
            self.accounts.add(n)
            return 1
        if r < 0.37:
            k = self.accounts.choice(self.rng)
            cur.execute("DELETE FROM accounts WHERE id = %s", (k,))
            self.accounts.remove(k)
            return 1
        if r < 0.49 or not self.lines:
            o = self.new_id()
            n = self.rng.randrange(1, 6)
            vals = [(o, i, "SKU-%d" % self.rng.randrange(1000), self.rng.randrange(1, 9),
                     "%d.%02d" % (self.rng.randrange(500), self.rng.randrange(100)))
                    for i in range(1, n + 1)]
            cur.execute("INSERT INTO lines VALUES " + ",".join(["(%s,%s,%s,%s,%s)"] * n),
                        [x for v in vals for x in v])
            for v in vals:
                self.lines.add((v[0], v[1]))
            return n
        if r < 0.58:
            o, _ = self.lines.choice(self.rng)
            cur.execute("UPDATE lines SET qty = qty + 1 WHERE order_id = %s", (o,))
            return cur.rowcount
        if r < 0.62:
            o, ln = self.lines.choice(self.rng)
            # Inserted lines are numbered 1..5: a moved line gets a number
            # above those, unique in the run (an id alone may be as small).
            n = LINE_NO_MOVED + self.new_id()
            cur.execute("UPDATE lines SET line_no = %s WHERE order_id = %s AND line_no = %s", (n, o, ln))
            self.lines.remove((o, ln))
            self.lines.add((o, n))
            return 1
        if r < 0.67:
            o, ln = self.lines.choice(self.rng)
            cur.execute("DELETE FROM lines WHERE order_id = %s RETURNING line_no", (o,))
            for (l2,) in cur.fetchall():
                self.lines.remove((o, l2))
            return cur.rowcount
        if r < 0.80 or not self.history:
            k = self.new_id()
            cur.execute("INSERT INTO history VALUES (%s, %s, %s, %s)",
                        (k, self.rng.choice(["debit", "credit", "fee"]),
                         "%d.%d" % (self.rng.randrange(10 ** 6), self.rng.randrange(10 ** 4)),
                         self.text(self.rng.randrange(0, 60))))
            self.history.add(k)
            return 1
        if r < 0.88:
            k = self.history.choice(self.rng)
            cur.execute("UPDATE history SET amount = amount * 2, kind = %s WHERE id = %s",
                        (self.rng.choice(["debit", "credit", "fee", "adj"]), k))
            return cur.rowcount
        if r < 0.90:
            k, n = self.history.choice(self.rng), self.new_id()
            cur.execute("UPDATE history SET id = %s WHERE id = %s", (n, k))
            self.history.remove(k)
            self.history.add(n)
            return 1
        k = self.history.choice(self.rng)
        cur.execute("DELETE FROM history WHERE id = %s", (k,))
        self.history.remove(k)
        return 1

    def transaction(self, conn):
        marks = [p.mark() for p in self.pools]
        changes = 0
        with conn.cursor() as cur:
            cur.execute("SELECT txid_current()")
            xid = cur.fetchone()[0] & 0xFFFFFFFF
            for _ in range(self.rng.choice([1, 1, 2, 3, 4, 6, 10])):
                if self.rng.random() < 0.05:
                    sp = [p.mark() for p in self.pools]
                    cur.execute("SAVEPOINT sp")
                    for _ in range(self.rng.randrange(1, 4)):
                        self.op(cur)
                    cur.execute("ROLLBACK TO SAVEPOINT sp")
                    for p, m in zip(self.pools, sp):
                        p.undo_to(m)
                else:
                    changes += self.op(cur)
        if self.rng.random() < 0.08:
            conn.rollback()
            for p, m in zip(self.pools, marks):
                p.undo_to(m)
            self.rolled_back += 1
        else:
            conn.commit()
            for p in self.pools:
                p.journal.clear()
            if changes:
                self.committed.append((xid, changes))

    def run(self):
        conn = None
        try:
            conn = psycopg2.connect(
                host="127.0.0.1", port=self.cluster.port, user=SUPERUSER,
                password=SUPERUSER_PASSWORD, dbname=self.dbname, connect_timeout=10,
                application_name="cdc-test-workload")
            n = 0
            while not self._halt.is_set() and (self.max_txns is None or n < self.max_txns):
                self.transaction(conn)
                n += 1
                if self.pause:
                    time.sleep(self.rng.uniform(0, self.pause))
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            if conn is not None:
                conn.close()

    def stop(self, timeout=60):
        self._halt.set()
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("workload thread did not stop")
        if self.error is not None:
            raise AssertionError("workload failed: %r" % (self.error,))
        return self

    @property
    def changes(self):
        return sum(n for _, n in self.committed)


# --------------------------------------------------------------------------
# kill tests under load


class HistoryBacklog:
    """A backlog for kill tests: transactions of 1,000 inserts each into
    public.history (ids from 10,000,000 up), written while cdc is down so
    that a restart has big transactions to drain."""

    def __init__(self, conn):
        self.conn = conn
        self.txns = 0

    def add(self, txns):
        with self.conn.cursor() as cur:
            for _ in range(txns):
                first = 10_000_000 + self.txns * 1000
                cur.execute("INSERT INTO history SELECT g, 'backlog', g * 1.5, md5(g::text) "
                            "FROM generate_series(%s, %s) g", (first, first + 999))
                self.txns += 1

    def check(self, txns, workload):
        """The oracle's transactions: the workload's as it committed them,
        and every other one a whole backlog transaction."""
        committed = dict(workload.committed)
        assert {t.xid: len(t.changes) for t in txns if t.xid in committed} == committed
        sizes = [len(t.changes) for t in txns if t.xid not in committed]
        assert sizes == [1000] * self.txns, "the backlog's transactions: %s" % sizes[:40]


def kill_under_load(cdc, cluster, slot, rng, kills, workload, backlog, on_kill=None):
    """Starts cdc, then kills it with SIGKILL `kills` times at random moments
    (0.3-1.5 s apart) while the workload writes, adding two backlog
    transactions before each restart; stops the workload, kills cdc once
    more and lets a last run reach the source's current position.  on_kill
    (the killed process) runs after each kill.  Returns that position and
    the last run's result."""
    proc = cdc.start()
    for _ in range(kills):
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is not None:
            raise AssertionError("cdc exited on its own; %s" % proc.result().describe())
        proc.kill9()
        if on_kill:
            on_kill(proc)
        cluster.wait_slot_inactive(slot)
        backlog.add(2)
        proc = cdc.start()
    time.sleep(rng.uniform(0.5, 2.0))
    workload.stop(60)
    proc.kill9()
    if on_kill:
        on_kill(proc)
    stop = cluster.current_lsn("src")
    cluster.wait_slot_inactive(slot)
    return stop, cdc.run_to(stop, timeout=300)
