"""The benchmark's processes: signals that stop it, children that die with it,
throwaway PostgreSQL clusters, cdc and helper processes, and the CPU time
of processes, backends and the whole machine."""

import ctypes
import os
import signal
import socket
import statistics
import subprocess
import threading
import time

import psycopg2

from bench_settings import CLK_TCK, PASSWORD, PG_SCRIPT


class Interrupted(Exception):
    pass


SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
STOPPING = False


def on_signal(sig, frame):
    global STOPPING
    STOPPING = True
    raise Interrupted("signal %d" % sig)


def start_thread(fn, *args):
    """A daemon thread that never takes the signals above, so that they reach
    the main thread and interrupt whatever it is blocked in."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return t


_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # Children die with this script (PR_SET_PDEATHSIG) and get default
    # signal dispositions back.
    _libc.prctl(1, signal.SIGKILL)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kv(line):
    return dict(x.split("=", 1) for x in line.split() if "=" in x)


def machine_cpu():
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


def proc_cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def fmt_int(v):
    return "{:,}".format(int(round(v)))


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------


class Cluster:
    def __init__(self, bench, name, settings):
        self.bench = bench
        self.name = name
        self.dir = os.path.join(bench.work, name)
        self.settings = settings
        self.port = None
        self.running = False

    def _script(self, *args):
        r = subprocess.run(["bash", PG_SCRIPT] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if r.returncode != 0:
            log = ""
            try:
                with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                    log = f.read()[-3000:]
            except OSError:
                pass
            raise RuntimeError("pg-throwaway.sh %s failed:\n%s\n%s" % (args[0], r.stdout, log))

    def start(self):
        self.running = True
        for attempt in range(3):
            self.port = free_port()  # may be taken again before the server binds it
            try:
                self._script("start", self.dir, str(self.port))
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        conn = self.connect()
        with conn.cursor() as cur:
            for k, v in self.settings.items():
                cur.execute("ALTER SYSTEM SET %s = %%s" % k, (v,))
        conn.close()
        self._script("stop", self.dir)
        self._script("start", self.dir, str(self.port))

    def stop(self):
        if self.running:
            try:
                self._script("stop", self.dir)
            finally:
                self.running = False

    def connect(self, db="postgres"):
        c = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                             password=PASSWORD, dbname=db, application_name="cdc-bench")
        c.autocommit = True
        return c

    def one(self, db, sql, args=None):
        c = self.connect(db)
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchone()[0] if cur.description else None
        finally:
            c.close()

    def conninfo(self, db, replication=False):
        s = "host=127.0.0.1 port=%d user=postgres password=%s dbname=%s" % (
            self.port, PASSWORD, db)
        return s + (" replication=database" if replication else "")


class Proc:
    """A child process, timed from spawn to exit: wall seconds, exit status,
    own CPU seconds (rusage of the reaped child), peak RSS (VmHWM sampled
    every 20 ms while it lives)."""

    def __init__(self, bench, argv, name, env=None, sample_rss=False):
        self.bench = bench
        self.argv = argv
        self.name = name
        self.out_path = os.path.join(bench.logs, name + ".out")
        self.err_path = os.path.join(bench.logs, name + ".err")
        self.hwm_kb = 0
        self.rc = None
        self.cpu = None
        self.elapsed = None
        self._done = threading.Event()
        fo = open(self.out_path, "wb")
        fe = open(self.err_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.wall0 = time.time()
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                  env=full_env, cwd=bench.work, preexec_fn=_child_setup,
                                  start_new_session=True)
        fo.close()
        fe.close()
        self.pid = self.p.pid
        bench.procs.add(self)
        if sample_rss:
            start_thread(self._sample)

    def _sample(self):
        path = "/proc/%d/status" % self.pid
        while not self._done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            self._done.wait(0.02)

    def wait(self, timeout=None):
        """Waits for the exit; kills the process after timeout seconds (3
        once the benchmark is being interrupted)."""
        if STOPPING:
            timeout = min(timeout or 3, 3)
        done = threading.Event()

        def watchdog():
            if not done.wait(timeout):
                self.kill()

        if timeout:
            start_thread(watchdog)
        try:
            _, status, ru = os.wait4(self.pid, 0)
        finally:
            done.set()
        self.elapsed = time.monotonic() - self.t0
        self._done.set()
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc
        self.cpu = ru.ru_utime + ru.ru_stime
        self.bench.procs.discard(self)
        return self.rc

    def alive(self):
        return self.rc is None and self.p.poll() is None

    def signal(self, sig):
        if self.rc is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.signal(signal.SIGKILL)

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def log_tail(self, n=12):
        return "\n".join(("    | " + l) for l in self.stderr().splitlines()[-n:])


class BackendCpu:
    """CPU seconds of the server processes a measurement uses: finds their
    pids with a query (every 10 ms until it returns some, then every 200 ms
    for new ones) and samples /proc every 20 ms; for each process the last
    sample before it exits counts."""

    def __init__(self, cluster, db, query, args=()):
        self.conn = cluster.connect(db)
        self.query = query
        self.args = args
        self.cpu = {}
        self._stop = threading.Event()
        self._t = start_thread(self._run)

    def _run(self):
        tick = 0
        try:
            with self.conn.cursor() as cur:
                while not self._stop.is_set():
                    if not self.cpu or tick % 10 == 0:
                        cur.execute(self.query, self.args)
                        for (pid,) in cur.fetchall():
                            if pid:
                                self.cpu.setdefault(pid, 0.0)
                    for pid in self.cpu:
                        v = proc_cpu_seconds(pid)
                        if v is not None:
                            self.cpu[pid] = v
                    tick += 1
                    self._stop.wait(0.02 if self.cpu else 0.01)
        except psycopg2.Error:
            pass

    def stop(self):
        self._stop.set()
        self._t.join(5)
        try:
            self.conn.close()
        except psycopg2.Error:
            pass
        return sum(self.cpu.values()) if self.cpu else None


def walsender_cpu(cluster, slot):
    return BackendCpu(cluster, "src",
                      "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))


def sink_backend_cpu(cluster):
    return BackendCpu(cluster, "postgres",
                      "SELECT pid FROM pg_stat_activity WHERE datname = 'mirror' "
                      "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")


class LineCounter:
    """Counts the lines of a growing file, reading each byte once."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            while True:
                b = f.read(1 << 24)
                if not b:
                    return self.lines
                self.offset += len(b)
                self.lines += b.count(b"\n")

