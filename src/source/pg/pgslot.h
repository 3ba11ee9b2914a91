/* Replication resources on the source: server checks, the publication, the
 * logical slot.  Used by `cdc deploy`, `cdc undeploy` and at `cdc run` start.
 * All functions borrow their connections and report one sentence in err. */
#ifndef CDC_SOURCE_PG_PGSLOT_H
#define CDC_SOURCE_PG_PGSLOT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "pg/pgconn.h"

/* Connection parameters for the configured source (replication or not). */
void pgslot_params(const struct config *cfg, bool replication, struct pgconn_params *p);

/* PostgreSQL >= 14 (pgoutput protocol 2), wal_level = logical, UTF8. */
int pgslot_check_server(PGconn *conn, char *err, size_t errlen);

/* Every configured table exists (error names the table and the config line);
 * warns about tables whose replica identity cannot carry updates/deletes. */
int pgslot_check_tables(PGconn *conn, const struct config *cfg, char *err, size_t errlen);

/* The publication as the catalog describes it. */
struct pgslot_pub {
    bool exists;
    bool all_tables; /* FOR ALL TABLES */
    bool via_root;   /* publish_via_partition_root */
    char actions[5]; /* what it publishes: "iudt" (insert, update, delete, truncate) or less */
};
int pgslot_get_publication(PGconn *conn, const char *pub, struct pgslot_pub *out, char *err,
                           size_t errlen);

/* Creates the publication FOR TABLE ONLY each configured table (and
 * extra_table, the snapshot signal table, unless NULL) WITH
 * (publish_via_partition_root = true), or adds and drops tables when its
 * list differs (keeping the row filters and column lists of the others).
 * *action = "created" | "updated" | "unchanged". */
int pgslot_ensure_publication(PGconn *conn, const struct config *cfg, const char *extra_table,
                              const char **action, char *err, size_t errlen);

/* Creates the signal table (Debezium's layout: id, type, data) if missing. */
int pgslot_ensure_signal_table(PGconn *conn, const char *schema, const char *name, char *err,
                               size_t errlen);

struct pgslot_info {
    bool exists;
    bool active;
    uint64_t confirmed_flush; /* 0 if unknown */
    uint64_t restart_lsn;
    bool lost; /* the server removed WAL the slot needed (wal_status = lost) */
};
int pgslot_get(PGconn *conn, const struct config *cfg, struct pgslot_info *info, char *err,
               size_t errlen);

/* Creates the logical slot (pgoutput) over a replication connection.
 * With export_snapshot, *snapshot_name (heap, or NULL) names a snapshot that
 * stays importable until the next command on `repl`. */
int pgslot_create(PGconn *repl, const struct config *cfg, bool export_snapshot,
                  uint64_t *consistent_point, char **snapshot_name, char *err, size_t errlen);

/* Drops the slot and the publication if they exist.  *dropped_* say what was
 * there.  Fails if the slot is in use. */
int pgslot_drop(PGconn *conn, const struct config *cfg, bool *dropped_slot, bool *dropped_pub,
                char *err, size_t errlen);

#endif
