"""Running the cdc binary: config files, `cdc <verb>` runs, `cdc run` processes,
logs, the state store, the dead-letter queue."""

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
        return self.command(["deploy", self.pipeline_path] + self.platform_args(), timeout)

    def undeploy(self, yes, timeout=60):
        return self.command(["undeploy", self.pipeline_path] + self.platform_args() +
                            (["--yes"] if yes else []), timeout)

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


def dlq_seed(db_path, sink_id, n, *args):
    """Dead-letters n events for sink_id in the state store at db_path with
    the dlq_seed helper (built by `make helpers` next to the cdc binary under
    test), as a sink thread of `cdc run` would; returns the entries it
    printed ({"id", "position", "key", "envelope"})."""
    path = os.path.join(os.path.dirname(cdc_bin()), "tests", "dlq_seed")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CdcNotFound("helper not found: %s (build it with `make helpers`, same VARIANT as "
                          "the cdc binary)" % os.path.relpath(path, REPO_ROOT))
    r = subprocess.run([path, db_path, sink_id, str(n)] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("dlq_seed failed (%d): %s" % (r.returncode, r.stderr))
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(out) == n, "dlq_seed printed %d entries, expected %d" % (len(out), n)
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
