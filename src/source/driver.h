/* The source driver: the loop every source needs, around its ops.
 *
 *   driver_new      picks nothing: runs ops->open (checks, creates nothing)
 *   driver_prepare  ops->prepare: what capture needs, where streaming starts
 *   driver_run      the initial snapshot (ops->snapshot), then streaming:
 *                   start from the acknowledged positions; poll; reconnect
 *                   with backoff (1 s doubling to 30 s) when the connection
 *                   is lost, resuming after the newest transaction already
 *                   in the log; serve the rewinds sinks ask for (restart
 *                   from the confirmed position, REWIND marker); pause while
 *                   the control API says so (still acknowledging); stop on
 *                   request or once a stop position is confirmed; hand the
 *                   commit tracker's confirmed position to ops->ack before
 *                   every poll and while the pipeline is full
 *   driver_finish   after the engine drained: the final acknowledgement
 *   driver_stats    for /status and /metrics, from any thread
 *
 * cmd_run and the HTTP API know sources only through this header. */
#ifndef CDC_SOURCE_DRIVER_H
#define CDC_SOURCE_DRIVER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source/emitter.h"
#include "source/source.h"

struct driver;
struct engine;

struct driver_opts {
    /* Stop once every one of these positions is acknowledged, each in its
     * stream (n = 0: run until *stop).  `cdc run --stop-at-lsn`. */
    const struct cdc_ack *stop_at;
    size_t nstop_at;
    /* Set asynchronously (signal handler) to ask for a graceful stop.  The
     * source stops reading at the end of the transaction it is in (so the
     * final acknowledgement covers everything the sinks were given), or
     * after stop_txn_wait_us at the latest. */
    volatile sig_atomic_t *stop;
    int64_t stop_txn_wait_us; /* 0 = 5 s */
    /* While true the source reads nothing (it keeps its connection alive
     * and keeps acknowledging); NULL = never paused.  The control API's. */
    atomic_bool *paused;
    /* Reconnect backoff: 0 = 1 s doubling to 30 s. */
    int64_t backoff_min_us, backoff_max_us;
    /* Tests: called instead of waiting out a backoff (NULL: sleep, watching
     * *stop). */
    void (*backoff_hook)(void *arg, int64_t us);
    void *backoff_arg;
};

/* Opens a source of type ops (ops->open).  Borrows cfg and store (snapshot
 * progress, what the source remembers) for the driver's life.  Runtime
 * problems (unreachable server, missing table) come back as CDC_ECONN or
 * CDC_EINVAL with one sentence in err. */
int driver_new(struct driver **out, const struct source_ops *ops, const struct config *cfg,
               struct store *store, char *err, size_t errlen);
/* ops->prepare (see source.h).  held: per stream, the newest position any
 * sink holds (engine_held). */
int driver_prepare(struct driver *d, const struct cdc_posmap *held, char *err, size_t errlen);
/* Where streaming starts, per stream: the commit tracker's first confirmed
 * positions (engine_start). */
const struct cdc_acks *driver_start(const struct driver *d);
/* Snapshot, then stream into eng until o says stop (returns 0) or a fatal
 * error.  eng and o are borrowed until driver_finish. */
int driver_run(struct driver *d, struct engine *eng, const struct driver_opts *o, char *err,
               size_t errlen);
/* After the engine drained: acknowledges the final position and ends the
 * stream. */
void driver_finish(struct driver *d);
/* After a failure before the snapshot or the stream began (ops->abandon). */
void driver_abandon(struct driver *d);
/* The published figures, with the event counters as of now; any thread. */
void driver_stats(struct driver *d, struct source_stats *st);
/* The control API asks for an incremental snapshot of tables (configured
 * names): handed to the source thread, which queues them
 * (source_ops.queue_snapshot) before its next poll.  Any thread.
 * CDC_ENOTSUP when the source type has none. */
int driver_queue_snapshot(struct driver *d, char *const *tables, size_t n, char *err,
                          size_t errlen);
/* How far behind a sink durable up to done_seq is (emitter_lag); zeros
 * before the stream runs.  Any thread. */
void driver_sink_lag(struct driver *d, uint64_t done_seq, int64_t now_us, struct emitter_lag *lag);
/* A position as the source writes it. */
void driver_format_pos(const struct driver *d, uint64_t pos, char *buf, size_t len);
/* Closes the source; NULL is a no-op. */
void driver_free(struct driver *d);

#endif
