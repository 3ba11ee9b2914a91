/* Sink types and their registry.
 *
 * A sink type is everything cdc knows about one kind of destination: its
 * name (the sink_type value, and the name of its block in pipeline.yaml),
 * the keys of that block, how it delivers (sink_ops, sink.h) and how its
 * runner batches and flushes.  Each is a `const struct sink_type` defined in
 * its folder under src/sink/; registry.c lists them, one line each.  The
 * configuration loader asks the registry which types exist and decodes a
 * sink's block with the type's schema, so adding a sink touches its folder
 * and that one line. */
#ifndef CDC_SINK_REGISTRY_H
#define CDC_SINK_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "config/cfg_schema.h"
#include "config/config.h"
#include "util/buf.h"

struct sink_ops;

enum sink_availability {
    SINK_AVAILABLE,
    SINK_NOT_IMPLEMENTED, /* a type of the reference cdc does not implement yet: its block is
                             checked, an enabled sink of it is refused */
    SINK_NOT_BUILT,       /* its library was absent when this cdc was built (the Makefile's
                             optional modules): its block is not checked, an enabled sink of
                             it is refused */
};

/* When a serial sink's runner flushes (per-key sinks deliver every batch
 * durably and are never flushed).  Either way a flush is due once
 * batch_size x flush_batches events are pending, or flush_interval_seconds
 * passed since the oldest of them; a flush that made less durable than it
 * was given is tried again after another interval, new events or not. */
enum sink_flush_policy {
    /* ...and whenever the runner has read everything there is: the lowest
     * latency, a flush per trickle of changes (file, postgres, kafka). */
    SINK_FLUSH_ON_CATCH_UP,
    /* ...and only then: a trickle is gathered until the batch fills or the
     * interval passes (a lakehouse table must not commit a snapshot for
     * every few changes). */
    SINK_FLUSH_INTERVAL_ONLY,
};

/* The common keys a type's block takes (struct sink_cfg). */
enum {
    SINK_KEY_BATCH_SIZE = 1 << 0,
    SINK_KEY_FLUSH_INTERVAL = 1 << 1,
};

struct sink_type {
    const char *name;        /* the sink_type value and the name of its block */
    const char *description; /* one line: what the destination is */
    enum sink_availability availability;
    const char *library;        /* SINK_NOT_BUILT: the library the build lacked */
    const struct sink_ops *ops; /* NULL unless SINK_AVAILABLE */

    /* The block.  Its own keys decode into a struct of conf_size bytes
     * (sink_cfg.conf) with schema (defaults, bounds, secrets, its checks);
     * NULL schema: the type has no keys of its own. */
    const struct cfg_schema *schema;
    size_t conf_size;
    bool block_required;           /* a sink of this type must have its block */
    unsigned common_keys;          /* SINK_KEY_*: the common keys its block takes */
    int batch_size;                /* default of the common key batch_size (>= 1) */
    double flush_interval_seconds; /* default of the common key flush_interval_seconds */

    /* Delivery. */
    enum sink_ordering ordering; /* ORDER_TRANSACTION (serial) or ORDER_KEY (lanes) */
    enum sink_flush_policy flush;
    unsigned flush_batches; /* serial: batch_size x this many events make a flush due (0: 1) */
    /* The destination takes one writer at a time (a file): `cdc dlq replay`
     * leaves its entries pending while a running pipeline owns it. */
    bool single_writer;
    /* What a replay after a restart brings.  false (exactly once): open
     * reports, per stream, what the destination holds, and the engine skips
     * it.  true (at least once): open cannot tell (what a dead Kafka
     * producer delivered), so a replay may deliver some events again.  The
     * sink conformance suite (tests/integration/test_sink_conformance.py)
     * holds every type to what it declares here. */
    bool at_least_once;
    /* Snapshot rows go into tables with indexes (a mirror): an initial
     * snapshot then reads each table with one reader at a time, so its rows
     * arrive in the order of its chunks and every index grows at its end.
     * Chunks of one table read side by side interleave, and the rows of all
     * but the highest chunk land inside the index: its pages split in half
     * and stay half empty (a mirror's primary key 55 MB instead of 42). */
    bool ordered_snapshot;
    /* Optional, per-key sinks: the longest one batch may take to be answered
     * (the webhook's timeout_seconds); NULL: 60 s. */
    int (*reply_timeout_ms)(const struct sink_cfg *sc);
    /* Optional, serial sinks: a change the destination refuses takes its
     * whole source transaction to the dead-letter queue (the destination
     * never holds part of one); NULL or false: only the refused change. */
    bool (*dead_letters_transactions)(const struct sink_cfg *sc);

    /* Optional: appends what `cdc validate` shows after the sink's id and
     * type ("-> host:port/db"): never a secret (util/redact.h). */
    void (*describe)(const struct sink_cfg *sc, struct buf *out);
    /* Optional, run by `cdc validate` and `cdc run` for every sink of the
     * type: checks what loading could not (librdkafka judging the Kafka
     * properties).  path names the block ("sinks[2].kafka").  0, or
     * CDC_EINVAL with a "FILE:LINE: KEY: MESSAGE" sentence in err. */
    int (*check)(const struct sink_cfg *sc, const char *path, char *err, size_t errlen);
};

/* The registry: every sink type cdc knows, including those it cannot use
 * (not implemented, not built), in the order messages list them. */
size_t sink_type_count(void);
/* The i-th type, or NULL past the last. */
const struct sink_type *sink_type_at(size_t i);
/* The type called name, or NULL when there is none. */
const struct sink_type *sink_type_find(const char *name);

/* Why a sink of type t cannot be used, completing "error: WHERE: ": "iceberg
 * sinks are not implemented in this version of cdc", "sink type kafka is not
 * available in this build (built without librdkafka)"; NULL when it can. */
const char *sink_type_unavailable(const struct sink_type *t, char *buf, size_t len);

#endif
