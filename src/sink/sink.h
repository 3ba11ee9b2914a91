/* The sink interface.  A sink type is a `const struct sink_ops` table chosen
 * by name from the registry (sink/registry.c); adding a sink touches its own
 * folder and one registry line.
 *
 * The engine gives each sink its own thread and calls it in stream order:
 *   open   once (and again after a failure), reporting what the destination
 *          already holds so replays skip it;
 *   write  batches of events, data and control (COMMIT markers end a source
 *          transaction); the events are borrowed for the call only;
 *   flush  to make everything written durable;
 *   close  at the end or before a reopen.
 * A sink never sees an event at or before the position it reported having,
 * except snapshot rows, which it applies idempotently.  Sinks need no locks:
 * only their thread calls them. */
#ifndef CDC_SINK_SINK_H
#define CDC_SINK_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "core/json.h"

struct sink;

struct sink_ops {
    const char *name;
    /* What the sink does when the config says nothing: ORDER_TRANSACTION
     * (serial, commit order) or ORDER_KEY (partitions in parallel). */
    enum sink_ordering ordering;
    /* Opens files or connections.  *have = newest position the destination
     * already holds durably ({0,0} when it cannot tell). */
    int (*open)(struct sink *sk, struct cdc_pos *have);
    /* Delivers events in order.  Returns 0 or a negative CDC_E* with
     * sink_set_error called. */
    int (*write)(struct sink *sk, struct cdc_event *const *evs, size_t n);
    /* Makes written events durable.  *durable_seq = seq of the newest event
     * passed to write that is now durable (everything before it too), or 0. */
    int (*flush)(struct sink *sk, uint64_t *durable_seq);
    /* Releases everything; the sink may be opened again afterwards. */
    void (*close)(struct sink *sk);
};

/* Why a call failed, for the retry policy and the dead-letter queue. */
enum sink_errclass {
    SINK_ERR_RETRYABLE, /* connection lost, timeout, 5xx, disk full: try again */
    SINK_ERR_PERMANENT, /* the destination rejects this data: retrying cannot help */
};

struct sink {
    const struct sink_ops *ops;
    const struct sink_cfg *cfg;  /* borrowed from the config */
    const struct config *config; /* borrowed */
    const struct json_ctx *json; /* borrowed: envelope settings */
    unsigned index;              /* position in the pipeline's sink list */
    void *priv;                  /* the implementation's state, owned by it */
    /* Last error, set by the implementation through sink_set_error. */
    char err[1024];
    enum sink_errclass errclass;
    int64_t retry_after_us; /* the destination asked us to wait this long (0 = no advice) */
    uint64_t err_seq;       /* seq of the event that failed, if known (0 = the batch) */
};

/* Records why the current call failed; returns CDC_ERR for one-line returns. */
int sink_set_error(struct sink *sk, enum sink_errclass cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The ops for a sink type, or NULL if this build does not implement it. */
const struct sink_ops *sink_ops_find(enum sink_type type);

#endif
