"""PgCluster (a throwaway PostgreSQL 15 cluster) and catalog helpers."""

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

class PgCluster:
    """A throwaway cluster in base_dir/pg on a free loopback port.

    Besides the superuser it creates a login role (SUPERUSER REPLICATION) with
    a random, distinctive password; cdc configs use that role so that tests
    can prove the password never appears in cdc's output."""

    def __init__(self, base_dir):
        self.dir = os.path.join(base_dir, "pg")
        self.port = None
        self.running = False
        self.role = "cdc_tester"
        self.role_password = "pw-" + secrets.token_hex(10)
        self._conns = []

    def start(self):
        last = ""
        for _ in range(5):
            port = free_port()
            r = subprocess.run(
                ["bash", PG_SCRIPT, "start", self.dir, str(port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=240,
            )
            if r.returncode == 0:
                self.port = port
                self.running = True
                break
            last = r.stdout + "\n" + tail(self.server_log(), 15)
        else:
            raise RuntimeError("could not start PostgreSQL:\n" + last)
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(
                "CREATE ROLE %s LOGIN SUPERUSER REPLICATION PASSWORD %%s" % qident(self.role),
                (self.role_password,),
            )
        conn.close()
        return self

    def pg_ctl(self, args, timeout=180):
        """Runs `pg_ctl -D <data> ARGS` as the cluster's owner; returns
        (exit code, output, seconds it took)."""
        argv = [os.path.join(PGBIN, "pg_ctl"), "-D", os.path.join(self.dir, "data")] + list(args)
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        t0 = time.monotonic()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout, time.monotonic() - t0

    def start_again(self):
        """Starts the stopped cluster again on its port."""
        subprocess.run(["bash", PG_SCRIPT, "start", self.dir, str(self.port)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=240)
        self.running = True

    def server_log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        for c in self._conns:
            try:
                c.close()
            except Exception:
                pass
        self._conns = []
        if self.running:
            subprocess.run(
                ["bash", PG_SCRIPT, "stop", self.dir],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
            )
            self.running = False

    def connect(self, dbname="postgres", autocommit=True):
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=SUPERUSER_PASSWORD,
            dbname=dbname,
            connect_timeout=10,
            application_name="cdc-integration-tests",
        )
        conn.autocommit = autocommit
        self._conns.append(conn)
        return conn

    def createdb(self, name):
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % qident(name))
        conn.close()

    def execute(self, dbname, sql, params=None):
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                if cur.description is not None:
                    return cur.fetchall()
                return None
        finally:
            conn.close()

    def current_lsn(self, dbname="postgres"):
        return self.execute(dbname, "SELECT pg_current_wal_lsn()::text")[0][0]

    def slot(self, name):
        rows = self.execute(
            "postgres",
            "SELECT slot_name, plugin, slot_type, database, active, "
            "confirmed_flush_lsn::text, restart_lsn::text "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (name,),
        )
        if not rows:
            return None
        keys = ("slot_name", "plugin", "slot_type", "database", "active",
                "confirmed_flush_lsn", "restart_lsn")
        return dict(zip(keys, rows[0]))

    def wait_slot_inactive(self, name, timeout=20):
        def free():
            s = self.slot(name)
            return s is None or not s["active"]

        wait_for(free, timeout, "replication slot %s to become inactive" % name)


# --------------------------------------------------------------------------
# cdc processes




# --------------------------------------------------------------------------
# catalog helpers and the value mapping


def table_columns(conn, table):
    """[(name, typname)] in column order."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, t.typname FROM pg_attribute a "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (qtable(table),),
        )
        return cur.fetchall()


def primary_key(conn, table):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)",
            (qtable(table),),
        )
        return [r[0] for r in cur.fetchall()]


def text_expr(col):
    """SQL for a column's text output (the type's output function, as in
    COPY and pgoutput; `::text` differs for boolean and char(n)), NULL kept."""
    return "CASE WHEN %s IS NULL THEN NULL ELSE concat(%s) END" % (col, col)


class TableMeta:
    def __init__(self, conn, table):
        self.table = table
        self.columns = table_columns(conn, table)
        if not self.columns:
            raise AssertionError("table %s has no columns" % table)
        self.names = [c for c, _ in self.columns]
        self.types = dict(self.columns)
        self.key = primary_key(conn, table)
        with conn.cursor() as cur:
            cur.execute("SELECT relreplident FROM pg_class WHERE oid = %s::regclass", (qtable(table),))
            self.identity = cur.fetchone()[0]  # d(efault), f(ull), i(ndex), n(othing)

    def text_select(self, prefix=""):
        return ", ".join(text_expr(prefix + qident(c)) for c in self.names)

    def rows_text(self, conn):
        """Every row as {column: text or None}."""
        with conn.cursor() as cur:
            cur.execute("SELECT %s FROM %s" % (self.text_select(), qtable(self.table)))
            return [dict(zip(self.names, r)) for r in cur.fetchall()]


INT_TYPES = {"int2", "int4", "int8"}
FLOAT_TYPES = {"float4", "float8"}



def iter_rows_text(conn, meta, table=None, batch=20000):
    """Streams every row of table (default meta.table; same columns) as
    {column: text or None}, through a server-side cursor."""
    name = "rows_%s" % secrets.token_hex(4)
    was = conn.autocommit
    conn.autocommit = False  # a named cursor lives in a transaction
    try:
        with conn.cursor(name=name) as cur:
            cur.itersize = batch
            cur.execute("SELECT %s FROM %s" % (meta.text_select(), qtable(table or meta.table)))
            for r in cur:
                yield dict(zip(meta.names, r))
    finally:
        conn.rollback()
        conn.autocommit = was


def slot_confirmed_lsn(cluster, slot):
    """The slot's confirmed_flush_lsn as an integer, or None."""
    s = cluster.slot(slot)
    if s is None or s["confirmed_flush_lsn"] is None:
        return None
    return lsn_to_int(s["confirmed_flush_lsn"])
