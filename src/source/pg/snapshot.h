/* Snapshots: reading the rows a table already holds.
 *
 * The initial snapshot reads every captured table as of the moment the slot
 * was created: the slot exports a snapshot, and every reader connection
 * imports it (SET TRANSACTION SNAPSHOT), so no change is missed or doubled at
 * the boundary: streaming then starts exactly at the slot's consistent
 * point.  Tables are split into chunks (primary-key ranges; ctid page ranges
 * for tables without one), read in parallel with COPY, and pushed as
 * `op: "r"` events through the normal pipeline.
 *
 * Progress is kept in the state store per table and chunk, and a chunk counts
 * as done only when every sink holds it durably (a tracker mark).  After a
 * crash the snapshot resumes at the unfinished chunks with a fresh snapshot:
 * the stream, which starts at the slot's position, then brings those rows up
 * to date, so the destinations converge on the source. */
#ifndef CDC_SOURCE_PG_SNAPSHOT_H
#define CDC_SOURCE_PG_SNAPSHOT_H

#include <libpq-fe.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "source/emitter.h"
#include "source/pg/relcache.h"
#include "state/store.h"

struct snap_ctx {
    const struct config *cfg;
    struct emitter *em; /* rows go in through emitter_batch */
    struct store *store;
    struct relcache *rels;
    const char *snapshot_name; /* exported snapshot to import; NULL when resuming */
    uint64_t lsn;              /* the slot's consistent point */
};

/* Snapshots tables[0..n) ("schema.table" as configured), resuming the
 * progress recorded for snapshot `id`.  Returns when every chunk is durable
 * in every sink (0), when stopped (CDC_ESTOP), or on error. */
int snap_initial(const struct snap_ctx *ctx, const char *id, char *const *tables, size_t n,
                 char *err, size_t errlen);

/* State-store keys. */
#define SNAP_KEY_INITIAL "snapshot.initial" /* "running <id> <lsn>" | "done <id> <lsn>" */
#define SNAP_KEY_TABLE   "snapshot.table."  /* + "schema.table" -> id that snapshotted it */

#endif
