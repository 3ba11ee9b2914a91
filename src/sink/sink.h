/* The sink interface.  A sink type (sink/registry.h: its name, config keys
 * and delivery settings) points at a `const struct sink_ops` table of the
 * functions below; the registry lists the types, so adding a sink touches
 * its own folder and one registry line.
 *
 * A sink delivers in one of two ways.
 *
 * Serial (write/flush; file, postgres): the engine gives the sink its own
 * thread and calls it in stream order:
 *   open   once (and again after a failure), reporting what the destination
 *          already holds, per stream, so replays skip it;
 *   write  batches of events, data and control (COMMIT markers end a source
 *          transaction); the events are borrowed for the call only;
 *   flush  to make everything written durable;
 *   close  at the end or before a reopen.
 * A sink never sees an event at or before the position it reported having
 * for the event's stream, except snapshot rows, which it applies
 * idempotently.  Sinks need no locks: only their thread calls them.
 *
 * Streams.  A source has one stream (PostgreSQL, MySQL: every pos.stream is
 * 0) or several (a Kafka consumer: one per partition, interleaved in the
 * log).  Positions of different streams are not comparable, so a sink that
 * keeps a checkpoint keeps one position per stream it has seen (core/
 * posmap.h) and reports all of them at open.  A sink that reports nothing
 * gets everything again after a restart (at least once). */
#ifndef CDC_SINK_SINK_H
#define CDC_SINK_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "core/json.h"
#include "core/posmap.h"
#include "sink/registry.h"

/* Per-key (submit/poll; webhook): the engine keeps one lane per partition
 * (per-key order holds within a lane) and lets the sink deliver lanes
 * concurrently.  submit() starts delivering a batch of one lane; poll()
 * reports finished batches.  At most one batch per lane is in flight.  The
 * events stay valid (the engine holds them) until their result is reported.
 * A delivered batch is durable: nothing is flushed later.
 *
 * Either way a sink never sees an event at or before the position it
 * reported having (per lane for per-key sinks), except snapshot rows, which
 * it applies idempotently.  Only the sink's thread calls it: no locks. */

struct sink;

/* The outcome of one submitted batch. */
struct sink_result {
    unsigned lane;
    int rc;                 /* 0: all delivered; else failed (see the fields below) */
    int errclass;           /* enum sink_errclass */
    size_t ndone;           /* events from the start of the batch delivered before the failure */
    int64_t retry_after_us; /* the destination asked to wait this long (0 = no advice) */
    int http_status;        /* for HTTP sinks: the response status, 0 if none */
    int64_t duration_us;    /* how long the request took; 0 = unknown (not timed) */
    char err[512];
};

struct sink_ops {
    /* Opens files or connections and says what the destination already
     * holds durably: have arrives empty, and the sink sets, for every
     * stream it can tell, the newest position it holds (cdc_posmap_set; a
     * single-stream source's positions are stream 0's).  Nothing for a
     * stream it cannot tell about, or at all: those events come again. */
    int (*open)(struct sink *sk, struct cdc_posmap *have);
    /* Delivers events in order.  Returns 0 or a negative CDC_E* with
     * sink_set_error called. */
    int (*write)(struct sink *sk, struct cdc_event *const *evs, size_t n);
    /* Makes written events durable.  *durable_seq = seq of the newest event
     * passed to write that is now durable (everything before it too), or 0. */
    int (*flush)(struct sink *sk, uint64_t *durable_seq);
    /* Releases everything; the sink may be opened again afterwards. */
    void (*close)(struct sink *sk);
    /* Optional, on an open sink that kept failing right after every reopen:
     * whether the destination can take data again (the file sink: its file
     * system has room).  The engine asks before it has the source replay
     * for it.  NULL: only the backoff paces the retries. */
    bool (*ready)(struct sink *sk);

    /* Per-key sinks instead of write/flush (which are NULL then). */
    /* Starts delivering evs[0..n) of one lane.  Returns 0, or an error with
     * sink_set_error called (the batch then failed as a whole). */
    int (*submit)(struct sink *sk, unsigned lane, struct cdc_event *const *evs, size_t n);
    /* Waits up to timeout_ms for finished batches; fills out[0..max) and
     * returns how many, or < 0 if the sink itself broke (reopen it). */
    int (*poll)(struct sink *sk, int timeout_ms, struct sink_result *out, size_t max);
};

/* Why a call failed, for the retry policy and the dead-letter queue. */
enum sink_errclass {
    SINK_ERR_RETRYABLE,   /* the destination answered with a failure worth retrying
                             (HTTP 408/429/5xx, deadlock, disk full): retried up to
                             retry.max_attempts, then dead-lettered */
    SINK_ERR_PERMANENT,   /* the destination rejects this data (HTTP 400/401/403/404/422,
                             a constraint violation): dead-lettered at once */
    SINK_ERR_UNREACHABLE, /* no answer at all (connection refused or lost, timeout):
                             the destination is down, not the data wrong; retried
                             with backoff for as long as it takes, never dead-lettered */
    SINK_ERR_FATAL,       /* the destination cannot take what follows until someone
                             changes it (a schema change a mirror cannot follow, a
                             missing unique index): the pipeline stops with this
                             error; nothing is dead-lettered or confirmed past it */
};

struct sink {
    const struct sink_ops *ops;  /* cfg->type->ops */
    const struct sink_cfg *cfg;  /* borrowed from the config; cfg->conf is the type's own */
    const struct config *config; /* borrowed */
    const struct json_ctx *json; /* borrowed: envelope settings */
    unsigned index;              /* position in the pipeline's sink list */
    /* Replaying dead-lettered events (`cdc dlq replay`): deliver them as they
     * are, outside the stream; a sink with a checkpoint must not move it. */
    bool replay;
    void *priv; /* the implementation's state, owned by it */
    /* Set by the runner for a flush that is due because a batch is full
     * while more events wait: the sink may start making what was written
     * durable and report what an earlier flush started (a smaller
     * *durable_seq), so it takes the next batch while the destination
     * syncs.  Other flushes (caught up, interval, final) report everything
     * written. */
    bool flush_behind;
    /* Last error, set by the implementation through sink_set_error. */
    char err[1024];
    enum sink_errclass errclass;
    int64_t retry_after_us; /* the destination asked us to wait this long (0 = no advice) */
    uint64_t err_seq;       /* seq of the event that failed, if known (0 = the batch); a
                               COMMIT marker's seq when its transaction failed as a whole */
    /* Kept across a reopen: a sink that batches several events per request
     * and could not tell which one the destination refused delivers events
     * up to this position (of its stream) one at a time, so the next
     * failure names it.  Only for failures that may be a row's: not after a
     * lost connection. */
    struct cdc_pos single_until;
    /* The same for snapshot rows, which a rewind reads again under new
     * positions: one at a time until one is dead-lettered. */
    bool single_snapshot;
    /* Requests the sink (or its client library) sent again by itself, e.g.
     * Kafka produce requests; only ever grows, also across reopens.  The
     * runner publishes it as cdc_sink_request_retries_total. */
    uint64_t request_retries;
};

/* Records why the current call failed; returns CDC_ERR for one-line returns. */
int sink_set_error(struct sink *sk, enum sink_errclass cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
