"""Integration test harness for cdc.

Everything a test needs to drive the real binary against real servers, and to
judge the result independently of cdc.  One module per room:

  common    constants, LSNs, ports, waits, YAML for config files
  pg        PgCluster: a throwaway PostgreSQL 15 cluster (scripts/pg-throwaway.sh);
            catalog helpers (TableMeta)
  cdc       Cdc, CdcProcess: config files, `cdc <verb>` runs, `cdc run`
            processes (SIGTERM, kill -9, waits, logs, peak RSS); the state
            store and the dead-letter queue
  oracle    Oracle: a second logical slot (test_decoding) that lists every
            change per transaction, the independent truth; check_* compare
            cdc's JSONL file / event-log table with it
  compare   compare_tables proves a mirror table equals its source as a
            multiset; replay_* rebuild the source's rows from cdc's output
  workload  Workload: a random concurrent writer (own connection, own thread)
  receiver  Receiver: the webhook test receiver process and webhook checks
  api       a running pipeline's HTTP endpoints: requests with a token, the
            status document, a strict Prometheus text parser (Metrics)
  mysql     MariaDB: a throwaway server; binlog_dump and mariadb-binlog runs
  kafka     KafkaMock: the mock Kafka cluster process; kcat readers; Java
            murmur2; checks of a kafka sink's records
  nats      NatsServer: a throwaway nats-server with JetStream; NatsClient, a
            reader speaking the NATS protocol itself; checks of a nats sink
  lake      lake_write (cdc's Parquet/Iceberg writers), the node readers in
            tests/js, s3rver behind a SigV4-checking proxy, the REST catalog fake
  iceberg   the iceberg sink's tables: metadata through either catalog, icebird,
            and merge-on-read by the spec from avsc's manifests and DuckDB's files
  ctx       Ctx: handed to every test function

Tests import the package as one namespace (`import harness as h`).  Only the
Python standard library and psycopg2 are used.
"""

from .common import *  # noqa: F401,F403
from .pg import *  # noqa: F401,F403
from .cdc import *  # noqa: F401,F403
from .oracle import *  # noqa: F401,F403
from .oracle import _CHANGE  # noqa: F401
from .compare import *  # noqa: F401,F403
from .workload import *  # noqa: F401,F403
from .receiver import *  # noqa: F401,F403
from .api import *  # noqa: F401,F403
from .mysql import *  # noqa: F401,F403
from .kafka import *  # noqa: F401,F403
from .nats import *  # noqa: F401,F403
from .lake import *  # noqa: F401,F403
from .iceberg import *  # noqa: F401,F403
from .ctx import *  # noqa: F401,F403
