/* Snapshots: reading the rows tables already hold, for any source.
 *
 * This folder holds what every source's snapshots share; a source plugs in
 * its own planning and reading through a small `struct snap_ops`:
 *
 *   initial.c      the initial snapshot: every captured table as of the
 *                  position the stream starts after.  Tables are split into
 *                  chunks (the source's plan), a pool of reader threads
 *                  takes chunks in turn and reads them on connections that
 *                  share one consistent snapshot, rows go into the pipeline
 *                  as `op: "r"` events, and a chunk is recorded as done in
 *                  the state store only once every sink holds it durably (a
 *                  tracker mark).  After a crash the snapshot resumes at the
 *                  chunks not done; a rewind a sink asks for reads the
 *                  chunks not yet durable again.
 *   incremental.c  incremental snapshots while the stream flows (the DBLog
 *                  watermark window): see incremental.h.
 *
 * The progress keys in the state store are described below; they are kept
 * across versions, so a snapshot interrupted by an older cdc resumes. */
#ifndef CDC_SOURCE_SNAPSHOT_SNAPSHOT_H
#define CDC_SOURCE_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "util/buf.h"

struct emitter;
struct store;

/* Takes one row (ownership passes): an event whose tab (a reference),
 * after values and data the source filled; the caller sets op, positions
 * and times.  Returns 0, or non-zero to stop the read (the source then
 * reads no further rows, drains what it must and returns that value). */
typedef int (*snap_row_fn)(void *arg, struct cdc_event *ev);

/* What a source implements for snapshots.  arg is the source's (given with
 * the ops).  Tables are named as configured in source.tables. */
struct snap_ops {
    /* ---- initial snapshots ---- */

    /* Opens reader i of n, in order 0..n-1 before any read: a connection
     * that sees the consistent snapshot the stream starts after (resuming
     * after a crash: a fresh one, which reader 0 takes and the others
     * share). */
    int (*open_reader)(void *arg, unsigned i, void **rd, char *err, size_t errlen);
    void (*close_reader)(void *arg, void *rd);
    /* A table as a snapshot reads it (rd: reader 0; NULL: the connection of
     * incremental snapshots): *shape gets its shape (one reference for the
     * caller), *t what the source needs to read it. */
    int (*open_table)(void *arg, void *rd, const char *table, void **t, struct cdc_table **shape,
                      char *err, size_t errlen);
    void (*close_table)(void *arg, void *t);
    /* Splits t into chunks of about chunk_rows rows: one line per chunk
     * appended to chunks (stored, and handed back to read_chunk, also after
     * a restart); *estimate = the rows expected. */
    int (*plan)(void *arg, void *rd, void *t, int64_t chunk_rows, struct buf *chunks,
                uint64_t *estimate, char *err, size_t errlen);
    /* Reads one chunk on rd, handing each row to row(row_arg, ev).  Called
     * by several reader threads at once (each on its own rd). */
    int (*read_chunk)(void *arg, void *rd, void *t, const char *chunk, snap_row_fn row,
                      void *row_arg, char *err, size_t errlen);
    /* Resuming: a table without a unique key is read again in full (after a
     * truncate event), and the stream must then drop its changes that the
     * fresh snapshot already shows.  The rule saying so, as the source's
     * stream reads it back from snapshot.<id>.folds ("<table>\t<rule>"
     * lines): heap text, or NULL when the source needs none. */
    char *(*fold_rule)(void *arg);

    /* ---- incremental snapshots (incremental.h) ---- */

    /* Inserts a watermark into the signal table; the stream brings it back
     * to isnap_on_signal.  type: "snapshot-window-open" | "-close". */
    int (*watermark)(void *arg, const char *table, const char *id, const char *type, char *err,
                     size_t errlen);
    /* Reads up to limit rows of t, in key order, after the key `after`
     * (NULL: from the first), as of one snapshot. */
    int (*read_after)(void *arg, void *t, const char *after, size_t limit, snap_row_fn row,
                      void *row_arg, char *err, size_t errlen);
    /* The key of a row read by read_after, as `after` takes it (heap). */
    char *(*row_key)(void *arg, void *t, const struct cdc_event *row);
    /* Whether the rows of the last read_after already show the effects of
     * ev's transaction (then ev, seen before the low watermark, must not
     * drop a row).  NULL: never. */
    bool (*saw)(void *arg, void *t, const struct cdc_event *ev);
};

/* The initial snapshot to take or finish. */
struct snap_initial_cfg {
    const struct config *cfg; /* snapshot_parallelism, snapshot_chunk_rows */
    struct store *store;      /* progress */
    struct emitter *em;       /* rows go in through emitter_batch */
    const struct snap_ops *ops;
    void *arg;
    const char *id; /* names the snapshot's progress keys */
    /* The stream position the snapshot is consistent with: the rows'
     * pos.lsn, lsn and snapshot_id (stream 0's: snapshots read one-stream
     * sources). */
    uint64_t pos;
    /* Resuming after a crash with a fresh snapshot (readers cannot join the
     * one the stream starts after any more). */
    bool resumed;
};

/* Snapshots tables[0..n) (as configured), resuming the progress recorded
 * for c->id.  Returns when every chunk is durable in every sink (0), when
 * stopped (CDC_ESTOP), or on error.  Serves the rewinds sinks ask for
 * meanwhile. */
int snap_initial(const struct snap_initial_cfg *c, char *const *tables, size_t n, char *err,
                 size_t errlen);

/* State-store keys ("<table>" as configured):
 *   snapshot.initial               "running <id> <pos>" | "done <id> <pos>"
 *   snapshot.table.<table>         the id of the snapshot that read it
 *                                  ("incremental", "no_data")
 *   snapshot.<id>.plan.<table>     "0 <estimate>\n" + one chunk a line
 *   snapshot.<id>.done.<table>.<n> chunk n is durable in every sink
 *   snapshot.<id>.folds            fold rules of rebuilt tables
 *   snapshot.chunkseq.<table>      the next chunk sequence of the table: every
 *                                  read of a chunk gets a new one (its rows'
 *                                  snapshot_chunk), so its rows never look like
 *                                  those of an earlier read
 *   isnap.queue, isnap.key.<table>, isnap.run.<table>   incremental.h */
#define SNAP_KEY_INITIAL  "snapshot.initial"
#define SNAP_KEY_TABLE    "snapshot.table."
#define SNAP_KEY_CHUNKSEQ "snapshot.chunkseq."

/* Takes the next chunk sequence of table (the key above); 0 or the store's
 * error. */
int snap_next_chunk_seq(struct store *store, const char *table, uint64_t *seq, char *err,
                        size_t errlen);

#endif
