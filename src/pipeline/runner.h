/* Private to the engine: the runner (one thread per enabled sink) and the
 * helpers both kinds of runner share.
 *
 * run_serial.c drives sinks that deliver in stream order (write/flush);
 * run_lanes.c drives per-key sinks (submit/poll) through one lane per
 * partition.  engine.c wires them up; runner.c and deadletter.c hold what
 * they share. */
#ifndef CDC_PIPELINE_RUNNER_H
#define CDC_PIPELINE_RUNNER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pipeline/engine.h"
#include "pipeline/evlog.h"
#include "pipeline/tracker.h"
#include "sink/sink.h"
#include "state/store.h"

#define READ_BATCH 1024

struct lane; /* run_lanes.c */

/* A span of the stream dead-lettered as a whole for one sink (a source
 * transaction, or the tables of one TRUNCATE): its events go to the
 * dead-letter queue as the replay after the failure brings them, instead of
 * to the sink. */
struct dl_span {
    struct cdc_pos from, to; /* inclusive */
    char why[640];           /* the error stored with each event */
};

/* A snapshot row dead-lettered for this sink, by content: its chunk is read
 * again under new positions after every rewind, so positions cannot skip it.
 * A read skips as many rows with this content as were dead-lettered. */
struct snap_skip {
    uint64_t hash; /* table and values */
    unsigned dead; /* times dead-lettered */
    unsigned seen; /* skipped since the last rewind */
};

struct runner {
    struct engine *eng;
    struct sink sk;
    unsigned idx;
    pthread_t thread;
    bool started;
    uint64_t rng;
    size_t batch_size;
    int64_t flush_interval_us;
    bool flush_on_catch_up; /* serial: flush when caught up too (SINK_FLUSH_ON_CATCH_UP) */

    /* What the destination holds, per stream: everything up to here.  The
     * serial runner raises it as it gives events (a replayed copy later in
     * the same read is skipped); the per-key runner copies it into every
     * lane. */
    struct cdc_posmap have;

    /* serial runners */
    uint64_t last_seen;    /* newest seq read from the log */
    uint64_t last_given;   /* newest seq passed to write() */
    size_t pending;        /* events written and not yet all durable */
    int64_t pending_since; /* monotonic us of the first of them, or of the last flush that
                              left some of them not durable */
    size_t since_flush;    /* events written since the last flush */
    bool awaiting_rewind;  /* discard until a REWIND marker of gen >= rewind_gen */
    uint32_t rewind_gen;
    struct cdc_event **give; /* scratch: the events of one read that are written */
    struct cdc_pos fail_pos; /* the event that failed last, and how often in a row */
    unsigned fail_attempts;

    /* per-key runners */
    struct lane *lanes;
    unsigned nlanes;

    /* A sink that keeps failing (runner_failed .. runner_progress): */
    unsigned fail_streak;   /* failures since the sink last made progress durable */
    uint64_t progress_need; /* events it must make durable after reopening to count as
                               past the failure (what the failure lost) */
    uint64_t progress_made; /* events made durable since it reopened */

    /* Positions dead-lettered for this sink and still pending: done, so a
     * replay skips them.  Sorted (by stream, then position). */
    struct cdc_pos *skip;
    size_t nskip, capskip;
    struct dl_span *spans; /* pending whole-span dead-letters, in stream order */
    size_t nspans, capspans;
    struct snap_skip *snapskip;
    size_t nsnapskip, capsnapskip;

    /* Serial runners: what was written and is not yet durable, one entry
     * per run of events with the same commit time (a source transaction),
     * for the durable_seconds histogram. */
    struct lat_run *lat;
    size_t nlat, caplat;

    pthread_mutex_t mu; /* guards the stats below */
    const char *state;
    uint64_t events_out, skipped, flushes, errors, reopens, request_retries, dead_lettered,
        done_seq;
    char last_error[256];
    struct histo durable_seconds, flush_seconds, request_seconds;
    struct http_count {
        int code;
        uint64_t n;
    } http[ENGINE_HTTP_CODES];
    unsigned nhttp;
};

/* stats.c: the runners' latency and HTTP figures. */
struct lat_run {
    uint64_t last_seq; /* seq of its last event */
    int64_t commit_ts; /* unix us */
    uint64_t n;
};
/* Serial runners: remember evs[0..n) (just written) until they are durable. */
void runner_lat_written(struct runner *r, struct cdc_event *const *evs, size_t n);
/* They are durable up to seq: observe their commit-to-durable times. */
void runner_lat_durable(struct runner *r, uint64_t seq);
/* The sink lost what it had not made durable: forget it (the replay brings
 * the changes again, with their commit times). */
void runner_lat_lost(struct runner *r);
/* Per-key runners: adds ev's commit-to-durable time (delivered now_us) to
 * h, a change's only; then runner_lat_merge adds h to the sink's figures. */
void runner_lat_observe(struct histo *h, const struct cdc_event *ev, int64_t now_us);
void runner_lat_merge(struct runner *r, const struct histo *h);
/* A per-key sink's request finished: its HTTP status (0 = none) and how
 * long it took (0 = not timed). */
void runner_note_request(struct runner *r, int http_status, int64_t duration_us);

struct engine {
    const struct config *cfg;
    const struct json_ctx *json;
    struct store *store;      /* borrowed; NULL = no dead-letter queue */
    engine_dlq_hook dlq_hook; /* or NULL; see engine_set_dlq_hook */
    void *dlq_arg;
    struct evlog *log;
    struct tracker *tracker;
    struct runner *runners;
    unsigned nrunners;
    unsigned nparts;
    atomic_uint rewind_requested;
    atomic_uint rewind_served;
    atomic_bool abandon;  /* shutdown timed out: stop retrying */
    atomic_bool draining; /* engine_drain: no more input is coming soon */
    /* A sink failed in a way only an operator can fix (SINK_ERR_FATAL): the
     * source stops, the run ends with fail_err. */
    atomic_bool failed;
    pthread_mutex_t fail_mu;
    char fail_err[1200];
};

void *run_serial(void *runner);
void *run_lanes(void *runner);

void runner_set_state(struct runner *r, const char *state);
/* Records the sink's current error (sk.err) in the stats. */
void runner_note_error(struct runner *r);
void runner_report_done(struct runner *r, uint64_t seq);
/* Asks the source to restart from the confirmed position; returns the
 * generation the REWIND marker will carry. */
uint32_t runner_request_rewind(struct runner *r);

/* Rewinds a sink may ask for in a row without making progress; past them it
 * stays detached (draining the log) and asks again only when its backoff has
 * passed and the sink says it is ready (sink_ops.ready). */
#define REWIND_BUDGET 3

/* The sink failed and lost `lost` events it had not made durable (at least
 * one is assumed): one more failure in a row.  Returns the streak. */
unsigned runner_failed(struct runner *r, uint64_t lost);
/* The sink made n more events durable: once that covers what the last
 * failure lost, the streak ends (the backoff starts over next time). */
void runner_progress(struct runner *r, uint64_t n);
/* Backoff before reopen attempt `attempt` (0 = the first) of a sink that
 * failed fail_streak times in a row: the streak carries the backoff on from
 * one failure to the next instead of starting over at each reopen. */
int64_t runner_backoff_us(struct runner *r, unsigned attempt, int64_t advice_us);
/* After a successful reopen: asks for the rewind that brings back what the
 * sink lost, at once within REWIND_BUDGET failures in a row; past it, only
 * after the backoff and once the sink is ready, draining the log
 * meanwhile.  Returns the rewind's generation, or 0 if the pipeline is
 * stopping. */
uint32_t runner_rewind_when_due(struct runner *r);
/* Reads and drops events for up to us microseconds (or until the log
 * closes: returns false then), so a sink that cannot take events does not
 * hold the others back.  The dropped events are not done for this sink: it
 * reports nothing while detached and gets them again after a rewind. */
bool runner_drain_for(struct runner *r, int64_t us);
/* Adds pos to the skip set (kept sorted: inserts are rare). */
void runner_skip_add(struct runner *r, struct cdc_pos pos);
/* Whether pos was dead-lettered for this sink (pending). */
bool runner_skipped_by_dlq(const struct runner *r, struct cdc_pos pos);
/* Whether the dead-letter queue is usable. */
bool runner_dlq_enabled(const struct runner *r);
/* Stores ev in the dead-letter queue with the failure; adds it to the skip
 * set.  Returns 0, or CDC_ERR if it could not be stored (then the caller
 * must keep the event). */
int runner_dead_letter(struct runner *r, const struct cdc_event *ev, const char *errclass,
                       const char *error, int attempts, int http_status);

/* deadletter.c: what a serial sink's failure dead-letters beyond the event
 * that failed. */

/* Stores evs[0..n) in the dead-letter queue in one commit with one error;
 * adds them to the skip set.  Returns 0, or CDC_ERR (none stored). */
int runner_dead_letter_many(struct runner *r, struct cdc_event *const *evs, size_t n,
                            const char *errclass, const char *error);
/* Dead-letters the span [from, to] of the stream as the replay brings it. */
void runner_span_add(struct runner *r, struct cdc_pos from, struct cdc_pos to, const char *why);
/* The pending span holding pos, or NULL. */
struct dl_span *runner_span_find(struct runner *r, struct cdc_pos pos);
/* Forgets spans that end before pos (the stream has passed them). */
void runner_spans_passed(struct runner *r, struct cdc_pos pos);
/* Snapshot rows: remember a dead-lettered one; whether a row read again is
 * one (and count it as skipped); a rewind starts the counting over. */
void runner_snapshot_skip_add(struct runner *r, const struct cdc_event *ev);
bool runner_snapshot_skipped(struct runner *r, const struct cdc_event *ev);
void runner_snapshot_skip_rewound(struct runner *r);
/* Whether the sink dead-letters whole source transactions (the PostgreSQL
 * replica mirror's dead_letter_scope: transaction). */
bool runner_keeps_transactions(const struct runner *r);
/* After ev was dead-lettered with error (or, for a COMMIT marker, its
 * transaction failed as a whole): the rest of its transaction, or of its
 * TRUNCATE, becomes a span dead-lettered as the replay brings it. */
void runner_span_after(struct runner *r, const struct cdc_event *ev, const char *error);
/* At start: the sink's pending dead letters, so a run that stopped in the
 * middle goes on the same way (snapshot rows skipped, spans resumed). */
int runner_dead_letters_load(struct runner *r, struct store *st, char *err, size_t errlen);
/* Stops the pipeline because of this sink's current (fatal) error. */
void runner_fail(struct runner *r);

#endif
