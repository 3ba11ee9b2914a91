/* The source interface.  A source type is a `const struct source_ops` table
 * chosen by source.source_type from the registry (source/registry.c); adding
 * a source touches its own folder and one registry line.
 *
 * A source reads a database's change log (or a Kafka topic's partitions)
 * and hands changes to the pipeline through one door, the emitter
 * (source/emitter.h), which numbers them, routes them and registers each
 * transaction with the commit tracker.  Everything every source needs around
 * that is the driver's (source/driver.h): starting from the acknowledged
 * positions, reconnecting with backoff, rewinds a sink asks for, pause and
 * resume, stop positions, periodic acknowledgements, keepalives while the
 * pipeline is full, stats.  A source implements only what differs:
 *
 *   open      check the server and the configuration; create nothing
 *   prepare   create what capture needs (slot, publication, stored
 *             position) and say where streaming starts
 *   snapshot  read the rows the tables already hold (source/snapshot/
 *             gives the chunk queue, readers, progress and resume)
 *   start     (re)connect and stream from the given acknowledged positions
 *   poll      read what arrived, emit it; wait a little when nothing did
 *   ack       what every sink holds durably: the source may release it
 *   close
 *
 * Threads: the driver calls a running source's ops from one thread (the
 * source thread).  Snapshot readers are the source's own threads; they
 * emit through emitter_batch. */
#ifndef CDC_SOURCE_SOURCE_H
#define CDC_SOURCE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "core/event.h"
#include "core/json.h"
#include "core/posmap.h"

struct emitter;
struct store;

/* Positions a source is told are durable everywhere, or asked to start
 * from, are struct cdc_ack arrays (core/event.h): one entry per stream, in
 * stream order.  PostgreSQL and MySQL have one stream (0); a Kafka consumer
 * has one per topic partition.  Every event's pos.stream says which stream
 * it belongs to, and the commit tracker confirms each stream on its own. */

/* A source-specific figure for /status ("name": value) and /metrics
 * (cdc_source_<name>). */
struct source_metric {
    const char *name; /* e.g. "spilled_bytes" */
    const char *type; /* "gauge" | "counter" */
    const char *help;
    uint64_t value;
};

#define SOURCE_POS_TEXT_MAX 48
#define SOURCE_METRICS_MAX  4
#define SOURCE_PARTS_MAX    64 /* partitions /metrics shows one by one */

/* How far behind one partition of a source that reads several (a Kafka
 * consumer's assigned partitions) is: records not yet durable in every
 * sink.  /metrics: cdc_source_partition_lag{topic,partition}. */
struct source_part_lag {
    char topic[128]; /* cut to fit */
    int32_t partition;
    uint64_t lag;
};

/* A snapshot's progress (source/snapshot/ reports it through the emitter):
 * what /status, /metrics and `cdc status` show while one runs. */
struct snap_progress {
    bool running;
    bool incremental;        /* an incremental snapshot; else the initial one */
    bool paused;             /* its readers wait for the control API's resume */
    uint64_t rows_read;      /* rows read by this run */
    uint64_t rows_estimated; /* initial: rows this run expects to read (the planner's
                                estimate; resumed: the share of the chunks not done) */
    uint64_t chunks_done;    /* durable in every sink (initial: of the whole plan) */
    uint64_t chunks_total;   /* initial: planned; incremental: 0 (unknown in advance) */
    uint64_t tables_done;
    uint64_t tables_total;  /* incremental: done + in progress + queued */
    double rows_per_second; /* recent rate */
    double eta_seconds;     /* initial: at the recent rate; -1 = unknown */
    char table[128];        /* incremental: the table in progress ("" = none) */
};

/* What /status and /metrics show of the source.  The driver fills the
 * generic figures; the source's stats op fills bytes, received, confirmed
 * and its own metrics. */
struct source_stats {
    uint64_t events;       /* change events emitted */
    uint64_t transactions; /* transactions committed */
    uint64_t bytes;        /* payload bytes read from the source */
    uint64_t reconnects;
    uint64_t received;                        /* newest position received (stream 0) */
    uint64_t confirmed;                       /* newest position acknowledged to the source */
    uint64_t lag;                             /* received - confirmed, in the source's units */
    char received_text[SOURCE_POS_TEXT_MAX];  /* as the source writes positions */
    char confirmed_text[SOURCE_POS_TEXT_MAX]; /* ("16/B374D848" for PostgreSQL) */
    int64_t last_commit_ts;                   /* unix us of the newest commit seen */
    bool connected;                           /* the stream is up */
    bool paused;                              /* reading is paused by the control API */
    bool snapshotting;                        /* an initial or incremental snapshot runs */
    bool can_snapshot; /* incremental snapshots can be queued (source_ops.queue_snapshot) */
    struct snap_progress snapshot; /* the driver fills it */
    struct source_metric metrics[SOURCE_METRICS_MAX];
    size_t nmetrics;
    struct source_part_lag parts[SOURCE_PARTS_MAX]; /* the first nparts partitions */
    size_t nparts;
    bool has_parts; /* the source reads partitions (then /metrics has the family) */
};

/* A running source: what the driver passes to every op. */
struct source {
    const struct source_ops *ops;
    const struct config *cfg; /* borrowed */
    struct store *store;      /* borrowed: snapshot progress, what the source remembers */
    void *priv;               /* the implementation's state, owned by it */
};

/* What `source_ops.snapshot` returns when the pipeline should stop after it
 * (snapshot_mode initial_only) instead of streaming. */
#define SOURCE_SNAPSHOT_ONLY 1

struct source_ops {
    const char *name;      /* source.source_type: "postgres" */
    const char *connector; /* Debezium's source.connector: "postgresql" */
    /* Events come in several streams (pos.stream), or their envelopes do
     * not show their stream positions (a Kafka consumer): sinks that read
     * their place back from what they wrote keep checkpoints instead
     * (json_ctx.multi_stream).  PostgreSQL and MySQL: false. */
    bool multi_stream;

    /* ---- by type: the CLI calls these without a running pipeline ---- */

    /* Writes the envelope's "source" block (core/json.h).  What it needs
     * beyond the event model travels with each event as its source
     * metadata (ev->srcmeta, bytes in the type's own layout, and
     * ev->src_row), which the dead-letter queue keeps. */
    json_source_fn json_source;
    /* A position as people write it (--stop-at-lsn: which stream and
     * where; err says what was expected) and read it (logs, /status). */
    int (*parse_pos)(const char *text, struct cdc_ack *pos, char *err, size_t errlen);
    void (*format_pos)(uint64_t pos, char *buf, size_t len);
    /* `cdc deploy`: creates what capture needs on the server (what a run
     * would), one line per resource on out, warnings on stderr. */
    int (*deploy)(const struct config *cfg, FILE *out, char *err, size_t errlen);
    /* `cdc undeploy`: what it would drop and lose, one sentence for the
     * refusal without --yes; then the dropping itself. */
    void (*undeploy_warning)(const struct config *cfg, char *buf, size_t len);
    int (*undeploy)(const struct config *cfg, FILE *out, char *err, size_t errlen);
    /* `cdc snapshot`: asks the pipeline, running or not, for an incremental
     * snapshot of tables (already checked against source.tables).  NULL:
     * the source type has none. */
    int (*request_snapshot)(const struct config *cfg, char *const *tables, size_t n, FILE *out,
                            char *err, size_t errlen);

    /* ---- a running pipeline: called by the driver, on the source thread ---- */

    /* Connects and checks the server and the configured tables, sets
     * src->priv; creates nothing, so a run that fails later (a sink, the
     * health port) leaves the server as it was.  CDC_ECONN or CDC_EINVAL
     * with one sentence. */
    int (*open)(struct source *src, char *err, size_t errlen);
    /* Creates what capture needs and decides about an initial snapshot.
     * held: per stream, the newest position any sink holds (empty: none),
     * to tell a lost position from a first start.  start (empty on entry):
     * where each stream starts (cdc_acks_set), which the commit tracker
     * takes as confirmed. */
    int (*prepare)(struct source *src, const struct cdc_posmap *held, struct cdc_acks *start,
                   char *err, size_t errlen);
    /* After a failure before the snapshot or the stream began: removes what
     * prepare created, so it does not pin the server's log.  May be NULL. */
    void (*abandon)(struct source *src);
    /* Before streaming: takes (or finishes) the initial snapshot prepare
     * decided on, emitting its rows.  0, SOURCE_SNAPSHOT_ONLY, CDC_ESTOP
     * (stopped), or an error.  NULL = none. */
    int (*snapshot)(struct source *src, struct emitter *em, char *err, size_t errlen);
    /* Connects and starts streaming after the given positions.
     * CDC_ECONN: retried with backoff (except on the first start, when a
     * failure is a misconfiguration); anything else stops the pipeline.
     * err is one sentence the driver prefixes with "source: ", except for
     * CDC_EIO: a local failure (the state store) that names itself. */
    int (*start)(struct source *src, const struct cdc_ack *from, size_t n, char *err,
                 size_t errlen);
    /* Reads what has arrived and emits it, returning the number of messages
     * handled; when nothing has, does its idle work and waits up to
     * timeout_ms for more (returns 0).  CDC_ECONN / CDC_EIO: the connection
     * is lost (the driver reconnects); CDC_ESTOP: a stop was requested while
     * emitting; anything else stops the pipeline. */
    int (*poll)(struct source *src, struct emitter *em, int timeout_ms, char *err, size_t errlen);
    /* Everything up to acks is durable in every sink: the source may
     * confirm it (PostgreSQL: a standby status update, sent when due or
     * with now; MySQL: a stored position; Kafka: committed offsets).
     * Called before every poll and while the driver waits.  A broken
     * connection may be reported here or at the next poll. */
    int (*ack)(struct source *src, const struct cdc_ack *acks, size_t n, bool now);
    /* While the emitter waits for room in the pipeline: keep the server
     * from giving up on us (beyond what ack does).  May be NULL. */
    void (*idle)(struct source *src);
    /* Ends the stream: its connection was lost, or (rewind) a sink asked
     * for a replay and the driver restarts from the confirmed position.
     * Whatever was decoded of an unfinished transaction is forgotten; the
     * driver calls start again. */
    void (*disconnect)(struct source *src, bool rewind);
    /* After the pipeline drained: confirms acks and ends the stream. */
    void (*finish)(struct source *src, const struct cdc_ack *acks, size_t n);
    /* The source's figures (see struct source_stats); sets can_snapshot
     * when queue_snapshot would take a request now. */
    void (*stats)(struct source *src, struct source_stats *st);
    /* Queues an incremental snapshot of tables (configured names) in the
     * running pipeline, durably (the control API's POST /v1/snapshots).
     * CDC_EINVAL with a sentence when it cannot (no signal table).  NULL:
     * the source type has no incremental snapshots. */
    int (*queue_snapshot)(struct source *src, char *const *tables, size_t n, char *err,
                          size_t errlen);
    /* Frees everything (src->priv may be NULL after a failed open). */
    void (*close)(struct source *src);
};

/* The ops of a source type, or NULL when this build does not implement it
 * (the CLI refuses the pipeline then). */
const struct source_ops *source_ops_find(enum source_type type);

/* The envelope context of cfg's pipeline: name, database, the source type's
 * connector name and block writer.  Strings are borrowed from cfg. */
void source_json_ctx(const struct config *cfg, const char *version, struct json_ctx *out);

#endif
