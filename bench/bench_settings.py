"""The benchmark's settings: the BENCH_* variables of the environment (listed
in bench.py's docstring), the backlogs, the tables and both clusters'
settings."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_SCRIPT = os.path.join(REPO, "scripts", "pg-throwaway.sh")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
PASSWORD = "postgres"
PUBLICATION = "bench_pub"
TABLES = ["public.bench_rows", "public.bench_lat"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


RUNS = max(1, env_int("BENCH_RUNS", 3))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
LAT_SECONDS = env_int("BENCH_LAT_SECONDS", 5 if QUICK else 20)
LAT_RATES = [int(x) for x in os.environ.get("BENCH_LAT_RATES", "10000,50000").split(",") if x]
LAT_TXN_ROWS = env_int("BENCH_LAT_TXN_ROWS", 0)
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")
TIMEOUT = env_int("BENCH_TIMEOUT", 900)
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
JSON_OUT = os.environ.get("BENCH_JSON", "")
ONLY = os.environ.get("BENCH_ONLY", "").strip()
FORCE_WEBHOOK = os.environ.get("BENCH_WEBHOOK", "") not in ("", "0")
WEBHOOK_BATCH = max(1, env_int("BENCH_WEBHOOK_BATCH", 100))
# The limit client wakes up once this many bytes have arrived (SO_RCVLOWAT):
# a reader that is not woken for every message lets the walsender stream
# much faster (docs/benchmarks.md).
LIMIT_LOWAT = max(0, env_int("BENCH_LIMIT_LOWAT", 65536))


def txn_rows(rate):
    """Rows per transaction of the latency load at `rate` rows/s."""
    return LAT_TXN_ROWS if LAT_TXN_ROWS > 0 else max(1, rate // 1000)


# Backlogs: (name, title, transactions, rows per transaction).
if QUICK:
    BACKLOGS = [
        ("batch", "100,000 rows as 100 txns x 1,000 rows", 100, 1000),
        ("single", "20,000 single-row txns", 20000, 1),
        ("bigtxn", "one 100,000-row txn", 1, 100000),
    ]
else:
    BACKLOGS = [
        ("batch", "1,000,000 rows as 1,000 txns x 1,000 rows", 1000, 1000),
        ("single", "200,000 single-row txns", 200000, 1),
        ("bigtxn", "one 1,000,000-row txn", 1, 1000000),
    ]

# Rows the initial-snapshot measurement reads (bench_rows is filled up to it).
SNAPSHOT_ROWS = 200000 if QUICK else 2000000

# Columns of both tables; the row is an order-like record of ~100 bytes.
ROW_COLUMNS = """account int NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL,
                 note text, created_at timestamptz NOT NULL"""
# What the peer contenders (bench_peers.py) need to know.
PEER_CFG = dict(row_columns=ROW_COLUMNS, publication="bench_native", tables=TABLES,
                timeout=TIMEOUT, password=PASSWORD)
ROW_VALUES = """g %% 10000, (g %% 100000) / 100.0, (ARRAY['new','paid','shipped'])[g %% 3 + 1],
                'order ' || g || ' for customer ' || (g %% 10000), now()"""

# Both clusters (shared_buffers is added per cluster).
CLUSTER_SETTINGS = {
    # durability as in production
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "logical",
    # room for the benchmark: no checkpoint or autovacuum in the middle of a
    # measurement (each measurement starts right after an explicit CHECKPOINT)
    "max_wal_size": "32GB",
    "checkpoint_timeout": "1h",
    "autovacuum": "off",
    "wal_buffers": "64MB",
    "max_replication_slots": "64",
    "max_wal_senders": "32",
    "max_connections": "200",
    "logical_decoding_work_mem": "64MB",
    "jit": "off",
}
