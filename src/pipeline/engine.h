/* The delivery engine: the event log, the commit tracker and one runner thread
 * per enabled sink.
 *
 * Sources reach it through their emitter (source/emitter.h), which pushes
 * events (engine_push) and registers completed transactions (engine_commit);
 * runners deliver them to their sinks in order, flush, and report
 * durability to the tracker; the source driver (source/driver.h) asks
 * engine_confirmed() what the source may acknowledge, per stream.  When a sink loses
 * state it had not made durable (a failed write or commit), its runner
 * reopens it and asks for a rewind: the driver restarts the source from the
 * confirmed position, every sink skips what it already has, and the failed
 * sink gets everything again. */
#ifndef CDC_PIPELINE_ENGINE_H
#define CDC_PIPELINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "core/json.h"
#include "core/posmap.h"
#include "util/histo.h"

struct engine;
struct store;

/* HTTP status codes a sink's stats count separately; more are summed
 * under code 0. */
#define ENGINE_HTTP_CODES 16

/* Per-sink figures for logs, health and metrics. */
struct engine_sink_stats {
    const char *sink_id;
    const char *sink_type;
    const char *state;   /* "running", "retrying", "stopped" */
    uint64_t events_out; /* events delivered (data events, after skipping) */
    uint64_t skipped;    /* events the destination already had */
    uint64_t flushes;    /* flushes that made writes durable; per-key sinks: batches delivered */
    uint64_t errors;
    uint64_t reopens;         /* times the sink was opened again after a failure */
    uint64_t request_retries; /* requests sent again: a per-key sink's batches, the sink's own */
    uint64_t dead_lettered;   /* events stored in the dead-letter queue by this run */
    uint64_t done_seq;        /* durable up to this event log seq */
    uint64_t backlog;         /* events in the log this sink has not read */
    char last_error[256];
    /* Seconds from a change's commit at the source to durable in the sink
     * (changes only: snapshot rows have no commit time). */
    struct histo durable_seconds;
    struct histo flush_seconds;   /* serial sinks: how long each flush took */
    struct histo request_seconds; /* per-key sinks that time their requests (HTTP) */
    struct {
        int code; /* HTTP status; 0 = codes beyond ENGINE_HTTP_CODES */
        uint64_t n;
    } http[ENGINE_HTTP_CODES];
    unsigned nhttp;
};

/* Creates the engine and opens every enabled sink (fails fast: a sink that
 * cannot open at start-up is a runtime error for the caller to report).
 * Borrows cfg, json and store (the dead-letter queue; NULL = none, then
 * failing events are retried forever) for the engine's lifetime. */
int engine_new(struct engine **out, const struct config *cfg, const struct json_ctx *json,
               struct store *store, char *err, size_t errlen);
/* The same with every enabled sink driven by ops instead of its type's
 * (tests: a scripted sink behind the real runners). */
struct sink_ops;
int engine_new_ops(struct engine **out, const struct config *cfg, const struct json_ctx *json,
                   struct store *store, const struct sink_ops *ops, char *err, size_t errlen);
/* Per stream, the newest position any enabled sink reported holding when it
 * opened (*out becomes a copy; empty: none does, or none can tell). */
void engine_held(const struct engine *eng, struct cdc_posmap *out);
/* Starts the runner threads.  start[0..n): where the source starts, per
 * stream (confirmed from the outset). */
int engine_start(struct engine *eng, const struct cdc_ack *start, size_t n);
void engine_free(struct engine *eng);

/* Called for every dead letter before the state store keeps it, from sink
 * threads (concurrently): the Kafka deliver role also publishes dead
 * letters to a topic.  key and value are the event's key and envelope.
 * 0, or an error (logged by the hook): the event is then not
 * dead-lettered, and the sink's failure takes its course (retries). */
typedef int (*engine_dlq_hook)(void *arg, const struct cdc_event *ev, const char *sink_id,
                               const char *errclass, const char *error, const char *key,
                               const char *value);
/* Before engine_start. */
void engine_set_dlq_hook(struct engine *eng, engine_dlq_hook fn, void *arg);

/* Sets ev->part from the table and key. */
void engine_route(const struct engine *eng, struct cdc_event *ev);
/* See evlog_push. */
int engine_push(struct engine *eng, struct cdc_event *const *evs, size_t n, size_t *done,
                int timeout_ms);
/* See tracker_commit. */
void engine_commit(struct engine *eng, uint64_t last_seq, uint32_t stream, uint64_t pos);
/* What may be acknowledged to the source, per stream (see
 * tracker_confirmed); *out becomes a copy. */
void engine_confirmed(struct engine *eng, struct cdc_acks *out);
/* The same for one stream (0 when nothing is known of it). */
uint64_t engine_confirmed_of(struct engine *eng, uint32_t stream);
/* Transactions registered and not yet confirmed. */
uint64_t engine_pending(struct engine *eng);
/* See tracker_mark / tracker_take_marks. */
void engine_mark(struct engine *eng, uint64_t seq, uint64_t id);
size_t engine_take_marks(struct engine *eng, uint64_t *ids, size_t max);

/* Whether a sink asked for a rewind the source has not served; *gen is the
 * generation to put in the REWIND marker. */
bool engine_rewind_wanted(struct engine *eng, uint32_t *gen);
/* Forgets pending transactions; *restart gets the positions to restart
 * from, per stream.  The source then pushes a CDC_OP_REWIND event carrying
 * gen. */
void engine_rewind(struct engine *eng, uint32_t gen, struct cdc_acks *restart);

/* The source has read all it was asked to (cdc run --stop-at-lsn reached
 * the stop position) but keeps the pipeline open until the sinks confirm
 * it: from now on a sink flushes as soon as it has caught up, instead of
 * waiting for its flush interval. */
void engine_drain(struct engine *eng);

/* No more events: runners drain, flush and stop.  engine_wait joins them,
 * giving up after timeout_us (then runners are told to abandon retries).
 * Returns 0 if every sink flushed everything it was given. */
void engine_close(struct engine *eng);
int engine_wait(struct engine *eng, int64_t timeout_us);

/* Whether a sink stopped the pipeline (a failure only an operator can fix);
 * err (may be NULL) gets "sink <id>: <why>".  The source stops reading then,
 * and nothing past what every sink holds is confirmed. */
bool engine_failed(struct engine *eng, char *err, size_t errlen);

unsigned engine_nsinks(const struct engine *eng);
void engine_sink_stats(struct engine *eng, unsigned i, struct engine_sink_stats *st);
void engine_log_stats(struct engine *eng, uint64_t *live_bytes, uint64_t *live_events,
                      bool *full_now, uint64_t *full_wait_us);

#endif
