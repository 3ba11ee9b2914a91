"""MariaDB: a throwaway server for the MySQL source's tests, and the
binlog_dump helper that drives cdc's binlog decoder until the source runs
inside `cdc run`.

The server runs as root (--user=root) in a temp dir on a free loopback port,
with a binary log in ROW format, full row images and full row metadata.
Clients talk to it through the `mariadb` command-line client (no Python
driver needed)."""

# flake8: noqa: F401,F403,F405
import json
import os
import shutil
import signal
import subprocess
import time

from .common import *  # noqa: F401,F403

MARIADB_INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
MARIADB = shutil.which("mariadb") or "/usr/bin/mariadb"
MARIADB_BINLOG = shutil.which("mariadb-binlog") or "/usr/bin/mariadb-binlog"


def binlog_dump_bin():
    """The binlog_dump helper next to the cdc binary under test."""
    cdc = os.environ.get("CDC_BIN", os.path.join(REPO_ROOT, "build", "asan", "cdc"))
    path = os.path.join(os.path.dirname(os.path.abspath(cdc)), "tests", "binlog_dump")
    if not os.path.exists(path):
        raise CdcNotFound("%s is missing: build it with `make helpers`" % path)
    return path


class MariaDB:
    """A throwaway MariaDB server.  `log_bin=False` starts one without a
    binary log (for the server checks)."""

    def __init__(self, base_dir, log_bin=True, server_id=1, extra=()):
        self.dir = os.path.join(base_dir, "mariadb")
        self.port = None
        self.proc = None
        self.log_bin = log_bin
        self.server_id = server_id
        self.extra = list(extra)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        data = os.path.join(self.dir, "data")
        r = subprocess.run(
            [MARIADB_INSTALL_DB, "--no-defaults", "--user=root", "--datadir=" + data,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db failed:\n" + tail(r.stdout))
        last = ""
        for _ in range(5):
            port = free_port()
            args = [MARIADBD, "--no-defaults", "--user=root", "--datadir=" + data,
                    "--port=%d" % port, "--bind-address=127.0.0.1",
                    "--socket=" + os.path.join(self.dir, "sock"),
                    "--pid-file=" + os.path.join(self.dir, "pid"),
                    "--log-error=" + os.path.join(self.dir, "err.log"),
                    "--server-id=%d" % self.server_id,
                    "--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0",
                    "--innodb-buffer-pool-size=64M", "--skip-name-resolve"]
            if self.log_bin:
                args += ["--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL",
                         "--binlog-row-metadata=FULL"]
            args += self.extra
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.port = port
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                r = subprocess.run(self._client() + ["-e", "SELECT 1"], capture_output=True)
                if r.returncode == 0:
                    return self
                time.sleep(0.2)
            last = tail(self.error_log(), 15)
            self.stop()
        raise RuntimeError("could not start MariaDB:\n" + last)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "err.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def _client(self, user="root", password=None):
        args = [MARIADB, "--no-defaults", "-h127.0.0.1", "-P%d" % self.port, "-u" + user,
                "--default-character-set=utf8mb4"]
        if password is not None:
            args.append("-p" + password)
        return args

    def sql(self, sql, db=None, user="root", password=None, check=True):
        """Runs statements; returns the rows of the last result as lists of
        strings (None for NULL), tab-separated output parsed raw."""
        args = self._client(user, password) + ["--batch", "--skip-column-names", "--raw",
                                               "--binary-mode"]
        if db:
            args.append(db)
        r = subprocess.run(args, input=sql.encode(), capture_output=True, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError("mariadb: %s\nSQL: %s" % (r.stderr.decode(errors="replace"),
                                                            short(sql, 400)))
        if not check and r.returncode != 0:
            return r.stderr.decode(errors="replace")
        rows = []
        for line in r.stdout.split(b"\n"):
            if not line:
                continue
            rows.append([None if c == b"NULL" else c.decode("utf-8", "surrogateescape")
                         for c in line.split(b"\t")])
        return rows

    def value(self, sql, db=None):
        rows = self.sql(sql, db)
        return rows[0][0] if rows else None

    def master_status(self):
        """(file, position) of the binlog's end."""
        r = self.sql("SHOW MASTER STATUS")
        return r[0][0], int(r[0][1])

    def gtid_pos(self):
        return self.value("SELECT @@gtid_binlog_pos") or ""

    def binlog_dump(self, *args, user="root", password=None, timeout=300, check=True,
                    server_id=None):
        """Runs binlog_dump against this server; returns (returncode, [json
        objects], stderr)."""
        env = dict(os.environ)
        cmd = [binlog_dump_bin(), "--port", str(self.port), "--user", user]
        if password is not None:
            env["BINLOG_DUMP_PW"] = password
            cmd += ["--password-env", "BINLOG_DUMP_PW"]
        if server_id is not None:
            cmd += ["--server-id", str(server_id)]
        cmd += [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        err = r.stderr.decode(errors="replace")
        for m in SANITIZER_MARKERS:
            if m in err:
                raise AssertionError("binlog_dump: sanitizer report:\n" + tail(err, 40))
        if check and r.returncode != 0:
            raise AssertionError("binlog_dump %s failed (%d):\n%s" % (" ".join(cmd[3:]),
                                                                     r.returncode, tail(err)))
        out = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        return r.returncode, out, err

    def mariadb_binlog(self, file, start, stop=None, extra=()):
        """The independent decoder's text: mariadb-binlog over the server's
        replication protocol, rows decoded as pseudo-SQL (-vv)."""
        cmd = [MARIADB_BINLOG, "--no-defaults", "--read-from-remote-server", "-h127.0.0.1",
               "-P%d" % self.port, "-uroot", "-vv", "--base64-output=DECODE-ROWS",
               "--start-position=%d" % start]
        if stop is not None:
            cmd.append("--stop-position=%d" % stop)
        cmd += list(extra) + [file]
        r = subprocess.run(cmd, capture_output=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError("mariadb-binlog failed: %s" % r.stderr.decode(errors="replace"))
        return r.stdout


# --------------------------------------------------------------------------
# `cdc run` with a mysql source

CDC_USER = "cdc"
CDC_PASSWORD = "cdc-secret-pw"


def grant_cdc_user(db, privileges="REPLICATION SLAVE, REPLICATION CLIENT, SELECT"):
    """Creates the user cdc connects as, with the privileges the source
    needs (or those given)."""
    db.sql("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'; GRANT %s ON *.* TO '%s'@'%%';"
           % (CDC_USER, CDC_PASSWORD, privileges, CDC_USER))


def mysql_source(db, tables, database=None, snapshot_mode="never", **extra):
    src = {
        "source_type": "mysql",
        "host": "127.0.0.1",
        "port": db.port,
        "database": database or tables[0].split(".")[0],
        "username": CDC_USER,
        "password": "${MYPW}",
        "tables": list(tables),
        "mysql_server_id": 4242,
        "snapshot_mode": snapshot_mode,
    }
    src.update(extra)
    return src


def mysql_pipeline(db, tables, sinks, pipeline_id="my1", topic_prefix="cdc", **source_extra):
    return {
        "pipeline_id": pipeline_id,
        "topic_prefix": topic_prefix,
        "source": mysql_source(db, tables, **source_extra),
        "sinks": sinks,
    }


def mysql_cdc(ctx, db, pipeline, platform=None, name="cdc", cluster=None):
    """A Cdc with MYPW set (and PGPW when a PostgreSQL mirror is in use);
    both passwords count as secrets."""
    cdc = ctx.cdc(pipeline, platform, env={"MYPW": CDC_PASSWORD}, name=name, cluster=cluster,
                  secrets_=(CDC_PASSWORD,))
    return cdc


def stop_pos(db):
    """The binlog's end as `--stop-at-lsn` takes it."""
    file, pos = db.master_status()
    return "%s:%d" % (file, pos)


def mysql_jsonl(path):
    """The file sink's lines, parsed plainly (an absent-looking -0 is 0; the
    strict reader of every other test is harness.read_jsonl)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def purge_binlogs_before(db, file, timeout=60):
    """PURGE BINARY LOGS TO file, retried until the older files are gone
    (MariaDB keeps a file until its binlog checkpoint has passed)."""
    deadline = time.monotonic() + timeout
    while True:
        db.sql("PURGE BINARY LOGS TO '%s'" % file)
        logs = [r[0] for r in db.sql("SHOW BINARY LOGS")]
        if all(f >= file for f in logs):
            return
        if time.monotonic() > deadline:
            raise AssertionError("binlogs before %s were not purged: %s" % (file, logs))
        db.sql("FLUSH LOGS")
        time.sleep(0.2)


def change_script(n, seed, table="k.t", start_id=1, pause_every=0):
    """A deterministic workload on table (id INT PRIMARY KEY, v INT): n
    changes, one to four per transaction.  Returns (sql, changes) where
    changes lists (op, id, v) in commit order (v: the row's v after an
    insert or update, None for a delete), each v unique.  pause_every: a
    50 ms pause after every so many transactions, to spread the workload
    out."""
    import random
    rnd = random.Random(seed)
    live, next_id, out, sql = [], start_id, [], []
    i = ntxn = 0
    while i < n:
        k = rnd.randint(1, 4)
        sql.append("BEGIN;")
        for _ in range(k):
            i += 1
            r = rnd.random()
            if r < 0.5 or len(live) < 5:
                live.append(next_id)
                sql.append("INSERT INTO %s VALUES (%d, %d);" % (table, next_id, i))
                out.append(("c", next_id, i))
                next_id += 1
            elif r < 0.85:
                rid = rnd.choice(live)
                sql.append("UPDATE %s SET v = %d WHERE id = %d;" % (table, i, rid))
                out.append(("u", rid, i))
            else:
                rid = live.pop(rnd.randrange(len(live)))
                sql.append("DELETE FROM %s WHERE id = %d;" % (table, rid))
                out.append(("d", rid, None))
        sql.append("COMMIT;")
        ntxn += 1
        if pause_every and ntxn % pause_every == 0:
            sql.append("DO SLEEP(0.05);")
    return "\n".join(sql) + "\n", out


def start_script(db, sql):
    """Runs sql through the mariadb client in the background (read from a
    file, so starting it does not wait for the client); returns the Popen
    (wait() for it)."""
    path = os.path.join(db.dir, "script-%d.sql" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(sql)
    with open(path) as f:
        return subprocess.Popen(db._client() + ["--batch"], stdin=f, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
