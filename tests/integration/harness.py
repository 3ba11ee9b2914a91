"""Integration test harness for cdc.

Everything a test needs to drive the real binary against real PostgreSQL
servers, and to judge the result independently of cdc:

  PgCluster        a throwaway PostgreSQL 15 cluster (scripts/pg-throwaway.sh)
  Cdc, CdcProcess  config files, `cdc <verb>` runs, `cdc run` processes:
                   SIGTERM, kill -9, waits with timeouts, logs, peak RSS
  compare_tables   proves a mirror table equals its source as a multiset
  Workload         random concurrent writer (own connection, own thread)
  Oracle           a second logical slot (test_decoding) that lists every
                   change per transaction: the independent truth
  check_*/replay_* compare cdc's JSONL file / event-log table with the oracle
                   and with the source rows

Only the Python standard library and psycopg2 are used.  Paths are relative to
the repository root, found from this file.
"""

import base64
import collections
import contextlib
import decimal
import hashlib
import io
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import psycopg2
import psycopg2.extras

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_SCRIPT = os.path.join(REPO_ROOT, "scripts", "pg-throwaway.sh")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres"
UNCHANGED = "__debezium_unavailable_value"
OPS = {"INSERT": "c", "UPDATE": "u", "DELETE": "d", "TRUNCATE": "t"}

# Lines that mean a sanitizer found something (ASan, LSan, UBSan, TSan).
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "ERROR: ThreadSanitizer",
)


class CdcNotFound(Exception):
    """The cdc binary is missing: the test cannot run."""


# --------------------------------------------------------------------------
# small helpers


def lsn_to_int(text):
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def int_to_lsn(n):
    return "%X/%X" % (n >> 32, n & 0xFFFFFFFF)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qident(name):
    return '"' + name.replace('"', '""') + '"'


def qtable(table):
    """'schema.table' -> quoted "schema"."table"."""
    schema, _, name = table.partition(".")
    return qident(schema) + "." + qident(name)


def wait_for(predicate, timeout, what, interval=0.1):
    """Polls predicate() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def short(value, limit=120):
    s = value if isinstance(value, str) else repr(value)
    if len(s) > limit:
        s = s[: limit - 30] + "…(%d chars)…" % len(s) + s[-20:]
    return s


def tail(text, n=25):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# YAML writer (block style) for configs given as dicts


_PLAIN = re.compile(r"^[A-Za-z0-9_/.${}][A-Za-z0-9_/.${}:@+-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _looks_numeric(s):
    try:
        float(s)
        return True
    except ValueError:
        return s.lower().startswith(("0x", "0o", ".inf", "-.inf", ".nan"))


def yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict) and not v:
        return "{}"
    if isinstance(v, list) and not v:
        return "[]"
    s = str(v)
    if (
        _PLAIN.match(s)
        and s.lower() not in _RESERVED
        and not _looks_numeric(s)
        and not s.endswith(":")
    ):
        return s
    return json.dumps(s, ensure_ascii=False)


def to_yaml(obj):
    out = []

    def emit(o, ind):
        pad = " " * ind
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, (dict, list)) and v:
                    out.append("%s%s:" % (pad, k))
                    emit(v, ind + 2)
                else:
                    out.append("%s%s: %s" % (pad, k, yaml_scalar(v)))
        elif isinstance(o, list):
            for item in o:
                if isinstance(item, (dict, list)) and item:
                    start = len(out)
                    emit(item, ind + 2)
                    out[start] = pad + "- " + out[start][ind + 2 :]
                else:
                    out.append("%s- %s" % (pad, yaml_scalar(item)))
        else:
            out.append(pad + yaml_scalar(o))

    emit(obj, 0)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# PostgreSQL cluster


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


def cdc_bin(release=False):
    """The binary under test: $CDC_BIN (or $CDC_BIN_RELEASE for memory
    measurements), default build/release/cdc; relative paths are taken from
    the repository root."""
    var = "CDC_BIN_RELEASE" if release else "CDC_BIN"
    path = os.environ.get(var) or os.path.join("build", "release", "cdc")
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def require_bin(path, var="CDC_BIN"):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        rel = os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT + os.sep) else path
        raise CdcNotFound("cdc binary not found: %s (build it with make, or set %s)" % (rel, var))
    return path


class Result:
    """How one cdc process ended."""

    def __init__(self, argv, rc, stdout, stderr, duration, peak_rss_kb, stderr_path):
        self.argv = argv
        self.rc = rc  # exit code, or -signal
        self.stdout = stdout
        self.stderr = stderr
        self.duration = duration
        self.peak_rss_kb = peak_rss_kb
        self.stderr_path = stderr_path

    @property
    def error_lines(self):
        return [l for l in self.stderr.splitlines() if l.startswith("error: ")]

    def describe(self, n=25):
        if self.rc is None:
            how = "is still running"
        elif self.rc < 0:
            how = "died of signal %d" % -self.rc
        else:
            how = "exited %d" % self.rc
        out = "`cdc %s` %s after %.1fs" % (" ".join(self.argv[1:]), how, self.duration)
        if self.stdout.strip():
            out += "\n  stdout (tail):\n    " + tail(self.stdout, 8).replace("\n", "\n    ")
        if self.stderr.strip():
            out += "\n  stderr (tail):\n    " + tail(self.stderr, n).replace("\n", "\n    ")
        return out

    def expect_rc(self, rc):
        if self.rc != rc:
            raise AssertionError("expected exit %d; %s" % (rc, self.describe()))
        return self


class CdcProcess:
    """One running cdc.  Reaped only through poll()/wait(); a sampler thread
    reads VmHWM from /proc while the process lives (the peak RSS of cdc's own
    address space; rusage would include the forking parent's)."""

    def __init__(self, argv, env, cwd, out_prefix, secrets_):
        self.argv = argv
        self.secrets = [s for s in secrets_ if s]
        self.stdout_path = out_prefix + ".stdout"
        self.stderr_path = out_prefix + ".stderr"
        self.started = time.monotonic()
        self.rc = None
        self.duration = None
        self.peak_rss_kb = 0
        self._lock = threading.Lock()
        with open(self.stdout_path, "wb") as fo, open(self.stderr_path, "wb") as fe:
            self.proc = subprocess.Popen(
                argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env, cwd=cwd
            )
        self.pid = self.proc.pid
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _read_hwm(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        if kb > self.peak_rss_kb:
                            self.peak_rss_kb = kb
        except (OSError, ValueError):
            pass

    def _sample(self):
        while True:
            with self._lock:
                if self.rc is not None:
                    return
                self._read_hwm()
            time.sleep(0.05)

    def poll(self):
        with self._lock:
            if self.rc is not None:
                return self.rc
            self._read_hwm()
            pid, status, _ = os.wait4(self.pid, os.WNOHANG)
            if pid == 0:
                return None
            self.rc = os.waitstatus_to_exitcode(status)
            self.proc.returncode = self.rc
            self.duration = time.monotonic() - self.started
            return self.rc

    def alive(self):
        return self.poll() is None

    def send(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self):
        self.send(signal.SIGTERM)

    def kill9(self, timeout=30):
        self.send(signal.SIGKILL)
        return self.wait(timeout)

    def wait(self, timeout):
        """Waits for exit; on timeout kills the process and raises."""
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                os.kill(self.pid, signal.SIGKILL)
                while self.poll() is None:
                    time.sleep(0.02)
                res = self.result()
                raise AssertionError(
                    "cdc did not exit within %.0fs (killed); %s" % (timeout, res.describe())
                )
            time.sleep(0.02)
        return self.result()

    def read_output(self):
        def rd(p):
            try:
                with open(p, "rb") as f:
                    return f.read().decode("utf-8", "replace")
            except OSError:
                return ""

        return rd(self.stdout_path), rd(self.stderr_path)

    def result(self):
        out, err = self.read_output()
        res = Result(
            self.argv,
            self.rc,
            out,
            err,
            self.duration if self.duration is not None else time.monotonic() - self.started,
            self.peak_rss_kb,
            self.stderr_path,
        )
        self.check_output(res)
        return res

    def check_output(self, res):
        both = res.stdout + "\n" + res.stderr
        for marker in SANITIZER_MARKERS:
            if marker in both:
                i = both.index(marker)
                raise AssertionError(
                    "sanitizer report in the output of `cdc %s`:\n%s"
                    % (" ".join(self.argv[1:]), both[max(0, i - 200) : i + 2500])
                )
        for s in self.secrets:
            if s in both:
                where = "stdout" if s in res.stdout else "stderr"
                raise AssertionError(
                    "`cdc %s` printed a configured password on %s (log: %s)"
                    % (" ".join(self.argv[1:]), where, res.stderr_path)
                )


class Cdc:
    """A cdc installation for one test: a work directory holding
    pipeline.yaml / platform.yaml (from dicts or text) and one stdout/stderr
    file pair per process started.  Processes run with cwd = the work dir and
    with PG* variables removed from the environment (plus `env`)."""

    def __init__(self, ctx, pipeline, platform=None, env=None, name="cdc", secrets_=()):
        self.ctx = ctx
        self.dir = ctx.tmpdir(name)
        self.pipeline_path = os.path.join(self.dir, "pipeline.yaml")
        self.platform_path = None
        self.write_pipeline(pipeline)
        if platform is not None:
            self.platform_path = os.path.join(self.dir, "platform.yaml")
            self._write(self.platform_path, platform)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self.env.update(env or {})
        self.secrets = list(secrets_)
        self.nproc = 0
        self.processes = []

    @staticmethod
    def _write(path, content):
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else to_yaml(content))

    def write_pipeline(self, pipeline):
        self._write(self.pipeline_path, pipeline)

    def spawn(self, args, release=False):
        binary = require_bin(cdc_bin(release), "CDC_BIN_RELEASE" if release else "CDC_BIN")
        self.nproc += 1
        argv = [binary] + list(args)
        prefix = os.path.join(self.dir, "%03d-%s" % (self.nproc, args[0] if args else "cdc"))
        p = CdcProcess(argv, self.env, self.dir, prefix, self.secrets)
        self.processes.append(p)
        self.ctx.defer(lambda: p.poll() is None and p.kill9())
        return p

    def command(self, args, timeout=60, release=False):
        """Runs `cdc ARGS` to completion and returns its Result."""
        return self.spawn(args, release).wait(timeout)

    def platform_args(self):
        return ["--platform-config", self.platform_path] if self.platform_path else []

    def validate(self, timeout=60):
        return self.command(["validate", self.pipeline_path] + self.platform_args(), timeout)

    def deploy(self, timeout=60):
        return self.command(["deploy", self.pipeline_path], timeout)

    def undeploy(self, yes, timeout=60):
        return self.command(["undeploy", self.pipeline_path] + (["--yes"] if yes else []), timeout)

    def start(self, stop_at_lsn=None, release=False, extra=()):
        args = ["run", self.pipeline_path] + self.platform_args()
        if stop_at_lsn:
            args += ["--stop-at-lsn", stop_at_lsn]
        return self.spawn(args + list(extra), release)

    def run_to(self, stop_at_lsn, timeout, release=False):
        """`cdc run --stop-at-lsn`: must exit 0 by itself within timeout."""
        res = self.start(stop_at_lsn, release).wait(timeout)
        res.expect_rc(0)
        if res.error_lines:
            raise AssertionError("cdc exited 0 but printed an error line; " + res.describe())
        return res


# --------------------------------------------------------------------------
# configuration builders


def source_config(cluster, tables, database="src", slot="t1_slot", publication="t1_pub", **extra):
    src = {
        "host": "127.0.0.1",
        "port": cluster.port,
        "database": database,
        "username": cluster.role,
        "password": "${PGPW}",
        "tables": list(tables),
        "slot_name": slot,
        "publication_name": publication,
        "snapshot_mode": "never",
    }
    src.update(extra)
    return src


def file_sink(path, sink_id="jsonl"):
    return {"sink_id": sink_id, "sink_type": "file", "file": {"path": path}}


def pg_sink(cluster, mode, database="mirror", sink_id=None, **extra):
    pg = {
        "host": "127.0.0.1",
        "port": cluster.port,
        "database": database,
        "username": cluster.role,
        "password": "${PGPW}",
        "mode": mode,
    }
    if mode == "events":
        pg["target_table"] = "public.cdc_events"
    pg.update(extra)
    return {
        "sink_id": sink_id or ("mirror" if mode == "replica" else "eventlog"),
        "sink_type": "postgres",
        "postgres": pg,
    }


def pipeline_config(cluster, tables, sinks, pipeline_id="t1", topic_prefix="cdc", **source_extra):
    return {
        "pipeline_id": pipeline_id,
        "topic_prefix": topic_prefix,
        "source": source_config(cluster, tables, **source_extra),
        "sinks": sinks,
    }


def platform_config(state_dir, **extra):
    p = {"state_dir": state_dir, "health_enabled": False}
    p.update(extra)
    return p


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


def _dump(conn, table, cols, path):
    collist = ", ".join(qident(c) for c in cols)
    order = ", ".join('%s::text COLLATE "C"' % qident(c) for c in cols)
    sql = "COPY (SELECT %s FROM %s ORDER BY %s) TO STDOUT" % (collist, qtable(table), order)
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


def compare_tables(src_conn, dst_conn, table, dst_table=None, show=10):
    """Proves dst_table (default: same name) in dst_conn holds exactly the rows
    of table in src_conn, as multisets of text forms of the source's columns.
    Returns the row count; raises AssertionError with a readable diff."""
    dst_table = dst_table or table
    src_cols = table_columns(src_conn, table)
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
        hs, ns = _dump(src_conn, table, cols, os.path.join(d, "src"))
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

    @staticmethod
    def flatten(txns):
        return [c for t in txns for c in t.changes]


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
            n = self.new_id()
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
# per-test context


class Ctx:
    """Handed to every test function: temp dirs, clusters, cdc installations,
    and cleanups run in reverse order when the test ends (pass or fail)."""

    def __init__(self, name, keep=False, verbose=True):
        self.name = name
        self.keep = keep
        self.verbose = verbose
        self.failed = False
        self.root = tempfile.mkdtemp(prefix="cdc-it-%s-" % re.sub(r"\W", "_", name)[:40])
        self._cleanups = []
        self._n = 0

    def log(self, msg):
        if self.verbose:
            print("    " + msg, flush=True)

    def defer(self, fn):
        self._cleanups.append(fn)

    def tmpdir(self, name="tmp"):
        self._n += 1
        path = os.path.join(self.root, "%02d-%s" % (self._n, name))
        os.makedirs(path)
        return path

    def cluster(self):
        c = PgCluster(self.tmpdir("pg"))
        self.defer(c.stop)
        c.start()
        return c

    def cdc(self, pipeline, platform=None, env=None, name="cdc", cluster=None, secrets_=()):
        """A Cdc whose environment has PGPW = the cluster role's password (and
        which treats that password as a secret)."""
        env = dict(env or {})
        sec = list(secrets_)
        if cluster is not None:
            env.setdefault("PGPW", cluster.role_password)
            sec.append(cluster.role_password)
        return Cdc(self, pipeline, platform, env, name, sec)

    def workload(self, cluster, dbname, **kw):
        w = Workload(cluster, dbname, **kw)
        self.defer(lambda: w.is_alive() and (w._halt.set() or w.join(30)))
        return w

    def close(self):
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print("    (cleanup error: %r)" % (e,), flush=True)
        self._cleanups = []
        if self.keep and self.failed:
            print("    kept %s" % self.root, flush=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------
# webhooks: the test receiver, webhook sink configs, the dead-letter queue,
# per-key order and memory

import hmac  # noqa: E402
import select  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

RECEIVER_SCRIPT = os.path.join(REPO_ROOT, "tests", "integration", "receiver.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class Receiver:
    """tests/integration/receiver.py in its own process, stopped when the test
    ends.  url() is what a webhook sink posts to; control() steers it (the
    keys of its POST /__control, see the receiver's docstring); records()
    returns every request it got, in arrival order."""

    def __init__(self, ctx, name="receiver"):
        self.ctx = ctx
        self.dir = ctx.tmpdir(name)
        self.proc = None
        self.port = None
        self.control_port = None

    def start(self, timeout=20):
        self.stderr_path = os.path.join(self.dir, "stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([SYSTEM_PYTHON, RECEIVER_SCRIPT], stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL, cwd=self.dir)
        self.ctx.defer(self.stop)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line:
            raise AssertionError("the webhook receiver did not start:\n" + self.stderr())
        info = json.loads(line)
        self.port, self.control_port = info["port"], info["control_port"]
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return tail(f.read(), 30)
        except OSError:
            return ""

    def url(self, path="/hook", userinfo=""):
        return "http://%s127.0.0.1:%d%s" % (userinfo, self.port, path)

    def _call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.control_port, path),
                                     data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AssertionError("receiver %s %s: HTTP %d %s" % (method, path, e.code,
                                                                   e.read()[:300]))
        except OSError as e:
            raise AssertionError("receiver %s %s failed (%s); its stderr:\n%s"
                                 % (method, path, e, self.stderr()))

    def control(self, **cmd):
        """Steers the receiver, e.g. control(fail={"status": 500, "count": 3})."""
        return self._call("POST", "/__control", cmd)

    def records(self, raw=False):
        """Every request so far (see the receiver's docstring for the fields)."""
        if raw:
            return self._call("GET", "/__received?raw=1")
        # Fetch only what may have changed since the last call: the records
        # from the first one the receiver was still answering.
        cache = getattr(self, "_cache", [])
        start = next((i for i, r in enumerate(cache) if not r["final"]), len(cache))
        self._cache = cache[:start] + self._call("GET", "/__received?since=%d" % start)
        return list(self._cache)

    def stats(self):
        return self._call("GET", "/__stats")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


def webhook_sink(url, sink_id="hook", retry=None, **webhook):
    """A webhook sink block; webhook holds the keys of `webhook:` besides url."""
    w = {"url": url}
    w.update(webhook)
    s = {"sink_id": sink_id, "sink_type": "webhook", "webhook": w}
    if retry is not None:
        s["retry"] = retry
    return s


def record_envelopes(rec):
    """The envelopes one received request carried: the body itself, or the
    items of an array."""
    body = rec.get("body")
    if isinstance(body, list):
        return body
    return [] if body is None else [body]


def webhook_deliveries(records, path=None):
    """[(record, envelope)] of the requests answered 2xx (the deliveries), in
    arrival order and, within a request, array order; optionally only those
    sent to path."""
    out = []
    for rec in records:
        if rec["status"] is None or not 200 <= rec["status"] < 300:
            continue
        if path is not None and rec["path"] != path:
            continue
        for env in record_envelopes(rec):
            out.append((rec, env))
    return out


def envelope_position(env):
    """(commit LSN, index in the transaction): the change's position."""
    return (rec_commit_lsn(env), env["transaction"]["total_order"] - 1)


def idempotency_key(pipeline_id, sink_id, env):
    """The Idempotency-Key the webhook sink sends for a batch starting at env."""
    commit, idx = envelope_position(env)
    return "%s:%s:%d:%d" % (pipeline_id, sink_id, commit, idx)


def hmac_signature(secret, raw):
    """The X-CDC-Signature value for a body (text as received)."""
    return "sha256=" + hmac.new(secret.encode(), raw.encode("utf-8"), hashlib.sha256).hexdigest()


def envelope_row_key(env, metas):
    """(table, key values) of the row an envelope changes: the primary-key
    columns of after (c, u, r) or before (d), as the engine routes them;
    (table, None) for truncates and keyless tables."""
    table = rec_table(env)
    m = metas.get(table)
    row = env.get("after") if env.get("after") is not None else env.get("before")
    if m is None or not m.key or not isinstance(row, dict):
        return (table, None)
    return (table, tuple(json.dumps(row.get(k), sort_keys=True) for k in m.key))


def check_per_key_order(envs, metas, what):
    """envs: envelopes in the order a destination received them.  For every
    key, its changes must arrive in commit order, each position once.
    Returns the number of keys."""
    last = {}
    problems = []
    for i, env in enumerate(envs):
        k = envelope_row_key(env, metas)
        pos = envelope_position(env)
        prev = last.get(k)
        if prev is not None and pos <= prev[0] and len(problems) < 10:
            problems.append("%s: key %s: change at %s (#%d) arrived after %s (#%d)" % (
                what, k, "%s:%d" % (int_to_lsn(pos[0]), pos[1]), i,
                "%s:%d" % (int_to_lsn(prev[0][0]), prev[0][1]), prev[1]))
        last[k] = (pos, i)
    if problems:
        raise AssertionError("not in per-key commit order:\n  " + "\n  ".join(problems))
    return len(last)


def count_inversions(envs):
    """How many adjacent pairs arrived out of commit order (across keys):
    proof that deliveries ran in parallel."""
    pos = [envelope_position(e) for e in envs]
    return sum(1 for a, b in zip(pos, pos[1:]) if b < a)


def check_webhook_against_oracle(envs, txns, pipeline_id="t1", db="src", exactly_once=True):
    """Every envelope must be a well-formed envelope of an oracle change at its
    right position, and every oracle change must be there: exactly once, or
    (exactly_once=False, after crashes) at least once.  Order is not checked
    here (check_per_key_order does).  Returns the number of changes."""
    items = []
    seen = set()
    for i, env in enumerate(envs, 1):
        p = envelope_problems(env, pipeline_id, db)
        if p:
            raise AssertionError("webhook envelope %d is not valid: %s\n  %s"
                                 % (i, "; ".join(p), short(json.dumps(env), 400)))
        key = rec_key(env)
        if not exactly_once:
            if key in seen:
                continue
            seen.add(key)
        s, t = env["source"], env["transaction"]
        items.append((key, rec_commit_lsn(env), s["lsn"], rec_table(env), env["op"],
                      t["total_order"], t["data_collection_order"],
                      "envelope %d (%s %s xid=%d #%d)" % (i, env["op"], rec_table(env), s["txId"],
                                                         t["total_order"])))
    return check_against_oracle(items, txns, "webhook", ordered=False)


def dlq_entries(cdc, sink=None, include_resolved=False, timeout=60):
    """`cdc dlq list`: one dict per entry line, {"id", "sink", "status", "line"}
    (status "pending" or "resolved", if the line says)."""
    args = ["dlq", "list", cdc.pipeline_path] + cdc.platform_args()
    if sink:
        args += ["--sink", sink]
    if include_resolved:
        args.append("--all")
    res = cdc.command(args, timeout).expect_rc(0)
    out = []
    for line in res.stdout.splitlines():
        if re.match(r"^\d+ (pending )?entr(y|ies)\b", line):
            continue  # the summary
        m = re.match(r"^\s*(\d+)\s+(\S+)", line)
        if not m:
            continue
        st = re.search(r"\b(pending|resolved)\b", line)
        out.append({"id": int(m.group(1)), "sink": m.group(2),
                    "status": st.group(1) if st else None, "line": line})
    return out


def dlq_show(cdc, entry_id, timeout=60):
    """`cdc dlq show PIPELINE ID`: its Result (stdout holds the entry)."""
    return cdc.command(["dlq", "show", cdc.pipeline_path, str(entry_id)] + cdc.platform_args(),
                       timeout).expect_rc(0)


def dlq_replay(cdc, sink=None, entry_id=None, timeout=120):
    """`cdc dlq replay PIPELINE [--sink S] [--id N]`: its Result (exit code not checked)."""
    args = ["dlq", "replay", cdc.pipeline_path] + cdc.platform_args()
    if sink:
        args += ["--sink", sink]
    if entry_id is not None:
        args += ["--id", str(entry_id)]
    return cdc.command(args, timeout)


def proc_status_kb(pid, field):
    """A /proc/PID/status size field (VmRSS, VmHWM, ...) in kB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def sink_checkpoint(conn, pipeline_id, sink_id, table="public.cdc_checkpoints"):
    """(commit_lsn, event_index) a postgres sink recorded, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (table,))
        if cur.fetchone()[0] is None:
            return None
        cur.execute("SELECT commit_lsn, event_index FROM %s WHERE pipeline_id = %%s AND sink_id = %%s"
                    % qtable(table), (pipeline_id, sink_id))
        row = cur.fetchone()
        return tuple(row) if row else None


# --------------------------------------------------------------------------
# snapshots: cdc's log lines, its state store, snapshot ('r') rows

import sqlite3  # noqa: E402

_LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    """One logfmt line -> {key: value}, quoted values unescaped."""
    out = {}
    for k, v in _LOGFMT_PAIR.findall(line):
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v[1:-1])
        out[k] = v
    return out


def log_events(text, event=None):
    """Every structured log line of a cdc stderr text (optionally only one
    event name), parsed, in order; each dict also has "_line" (its index)."""
    out = []
    for i, line in enumerate(text.splitlines()):
        if "event=" not in line or not line.startswith("ts="):
            continue
        d = parse_logfmt(line)
        if event is not None and d.get("event") != event:
            continue
        d["_line"] = i
        out.append(d)
    return out


def proc_stderr(proc):
    """What a running (or finished) CdcProcess has written to stderr so far."""
    return proc.read_output()[1]


def wait_log_event(proc, event, timeout, pred=None, what=None, interval=0.05):
    """Waits until proc's stderr holds a log line of `event` (and pred(d)
    holds for it); returns that line parsed.  Fails at once, with the log, if
    the process exits first, and after timeout."""
    found = []

    def seen():
        for d in log_events(proc_stderr(proc), event):
            if pred is None or pred(d):
                found.append(d)
                return True
        if proc.poll() is not None:
            # one last look: the line may have been written just before exiting
            for d in log_events(proc_stderr(proc), event):
                if pred is None or pred(d):
                    found.append(d)
                    return True
            raise AssertionError("cdc exited before logging %s; %s"
                                 % (what or "event=" + event, proc.result().describe()))
        return False

    try:
        wait_for(seen, timeout, what or "cdc to log event=%s" % event, interval)
    except AssertionError as e:
        if proc.poll() is None and "timed out" in str(e):
            raise AssertionError("%s; stderr so far (tail):\n    %s" % (
                e, tail(proc_stderr(proc), 20).replace("\n", "\n    ")))
        raise
    return found[0]


def state_db_path(state_dir, pipeline_id):
    return os.path.join(state_dir, pipeline_id, "state.db")


def state_kv(state_dir, pipeline_id, prefix=""):
    """{key: value} of cdc's state store (table kv) whose keys start with
    prefix; {} when the store does not exist yet.  Opened read-only, so it
    can be read while cdc runs."""
    path = state_db_path(state_dir, pipeline_id)
    if not os.path.exists(path):
        return {}
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        try:
            rows = conn.execute("SELECT key, value FROM kv WHERE substr(key, 1, ?) = ?",
                                (len(prefix), prefix)).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return {}
            raise
        return dict(rows)
    finally:
        conn.close()


def snapshot_plan(state_dir, pipeline_id, snap_id, table):
    """The chunk predicates the state store holds for one table of snapshot
    snap_id (`snapshot.<id>.plan.<table>`: a first line with the chunk
    sequence base and the row estimate, then one SQL predicate per chunk):
    (base, [predicate, ...]), or None if there is no plan."""
    kv = state_kv(state_dir, pipeline_id, "snapshot.%s.plan.%s" % (snap_id, table))
    v = kv.get("snapshot.%s.plan.%s" % (snap_id, table))
    if v is None:
        return None
    lines = [l for l in v.split("\n") if l.strip()]
    base = int(lines[0].split()[0])
    return base, lines[1:]


def snapshot_done_chunks(state_dir, pipeline_id, snap_id, table):
    """Chunk numbers of one table recorded as done (`snapshot.<id>.done.<table>.<n>`)."""
    prefix = "snapshot.%s.done.%s." % (snap_id, table)
    return sorted(int(k[len(prefix):]) for k in state_kv(state_dir, pipeline_id, prefix)
                  if k[len(prefix):].isdigit())


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
