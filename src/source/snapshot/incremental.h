/* Incremental snapshots: reading a table's rows while streaming goes on
 * (the watermark technique published as DBLog), for any source that has a
 * signal table its stream carries.
 *
 * For each chunk (key order, after the last key done):
 *   1. insert a low watermark row into the signal table (snap_ops.watermark);
 *   2. read the chunk (snap_ops.read_after), buffering its rows by key;
 *   3. insert a high watermark row.
 * The stream is not interrupted.  When it reaches the low watermark, every
 * change to the table drops the buffered row with the same key (the stream's
 * version is newer); at the high watermark the remaining rows are emitted,
 * in key order, inside the watermark's transaction, as `op: "r"` events,
 * with a tracker mark.  The source's position keeps advancing throughout.
 *
 * The signal table has Debezium's layout (id text, type text, data text): a
 * row of type `execute-snapshot` with data
 * `{"data-collections": ["schema.table", …]}` queues tables; watermark rows
 * carry this pipeline's id.  Progress is stored per table (the last key
 * durable everywhere: isnap.key.<table>; the queue: isnap.queue; the run's
 * snapshot id: isnap.run.<table>), so a restart resumes where it left off.
 *
 * Not thread-safe: the source thread calls everything. */
#ifndef CDC_SOURCE_SNAPSHOT_INCREMENTAL_H
#define CDC_SOURCE_SNAPSHOT_INCREMENTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "source/snapshot/snapshot.h"

struct emitter;
struct isnap;

struct isnap_cfg {
    const struct config *cfg; /* source.tables, snapshot_chunk_rows, pipeline_id */
    struct store *store;      /* progress */
    const struct snap_ops *ops;
    void *arg; /* the ops' */
};

int isnap_open(struct isnap **out, const struct isnap_cfg *c, char *err, size_t errlen);
void isnap_free(struct isnap *is);

/* Queues tables (configured names, or names that match one) for an
 * incremental snapshot; persisted.  Tables already queued are kept once. */
int isnap_request(struct isnap *is, char *const *tables, size_t n, char *err, size_t errlen);

/* A row inserted into the signal table, as the stream carries it: ev->after
 * holds its id, type and data; ev->pos.lsn, lsn and xid say where in the
 * stream it is.  Queues tables, or opens or closes the window; at the close
 * the chunk's remaining rows go out through em, positioned in ev's
 * transaction.  Returns 0 or CDC_ESTOP. */
int isnap_on_signal(struct isnap *is, struct emitter *em, const struct cdc_event *ev);

/* Every change to a captured table, before it is emitted. */
void isnap_on_change(struct isnap *is, const struct cdc_event *ev);

/* Records the chunks every sink now holds (em's marks).  0 or the state
 * store's error. */
int isnap_record_done(struct isnap *is, struct emitter *em, char *err, size_t errlen);

/* Between transactions: starts the next chunk when none is in progress
 * (a table that cannot be snapshotted leaves the queue, loudly).  Returns 0
 * (also when there is nothing to do) or the error of the chunk's read. */
int isnap_step(struct isnap *is, char *err, size_t errlen);

/* The stream restarted from the confirmed position: forget the chunk in
 * progress and whatever was emitted but is not durable; resume from the
 * last key every sink holds. */
void isnap_rewind(struct isnap *is);

/* Whether any table is queued or in progress. */
bool isnap_active(const struct isnap *is);

#endif
