/* The emitter: the one door from a source into the pipeline.
 *
 * It gives every event the next sequence number (its index in the event
 * log), routes data events to their partition (hash of table and key), and
 * pushes them into the engine in batches, waiting while the pipeline is full
 * and keeping the source alive meanwhile (the driver's wait hook: ack and
 * source_ops.idle).  A COMMIT marker registers its transaction with the
 * commit tracker, so the transaction's end position is acknowledged to the
 * source once every sink holds it; a keepalive registers a position with
 * nothing new before it (an idle stream must not pin the server's log); a
 * mark asks to be told when every sink holds everything up to an event (a
 * snapshot chunk).
 *
 * Threads: emitter_event, _commit, _keepalive, _mark and _flush belong to
 * the source thread.  emitter_batch (snapshot readers) may be called from
 * several threads at once, but not while the source thread emits; the
 * marks and rewind functions from any thread. */
#ifndef CDC_SOURCE_EMITTER_H
#define CDC_SOURCE_EMITTER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "core/posmap.h"

struct engine;
struct emitter;
struct snap_progress;

struct emitter_cfg {
    struct engine *eng;                /* borrowed */
    const volatile sig_atomic_t *stop; /* a stop was requested (NULL: never) */
    /* While true, snapshot readers wait before they emit (emitter_wait_resumed);
     * NULL = never paused.  The control API's pause. */
    const atomic_bool *paused;
    /* Called now and then while the source thread waits for room. */
    void (*wait_hook)(void *arg);
    /* Called with a snapshot's progress (emitter_progress); may be NULL. */
    void (*progress_hook)(void *arg, const struct snap_progress *p);
    void *wait_arg; /* both hooks' */
    /* Versions every event's table (schema/schema_hist.h) before it is
     * numbered; NULL = no history (tab->version stays as the source set
     * it).  Borrowed. */
    struct schemahist *schema;
};

struct emitter *emitter_new(const struct emitter_cfg *cfg);
/* Drops what was not pushed (it was never confirmed: a later run gets it
 * again).  NULL is a no-op. */
void emitter_free(struct emitter *em);

/* A change or control event (ownership moves): its table versioned (the
 * schema history), the next seq and, for data events, its partition; goes
 * out with the next batch.  Returns 0, or CDC_ESTOP when a stop was
 * requested while the pipeline was full, or the schema history refused the
 * event's table (emitter_failed says why): the event is dropped then, and
 * what was emitted before it is pushed. */
int emitter_event(struct emitter *em, struct cdc_event *ev);
/* Ends a transaction: ev is its CDC_OP_COMMIT marker (ownership moves) with
 * end_lsn the position of its stream (ev->pos.stream) to acknowledge once
 * every sink holds the transaction. */
int emitter_commit(struct emitter *em, struct cdc_event *ev);
/* Everything stream holds up to pos has been emitted (no transaction of it
 * is open): pos may be acknowledged once what came before is durable. */
void emitter_keepalive(struct emitter *em, uint32_t stream, uint64_t pos);
/* Pushes the events waiting for their batch.  0 or CDC_ESTOP. */
int emitter_flush(struct emitter *em);

/* Snapshot readers: versions the tables of, numbers, routes and pushes
 * evs[0..n) at once (ownership moves), waiting while the pipeline is full;
 * *last_seq = the seq of the last.  0, or CDC_ESTOP (the events are freed;
 * see emitter_event). */
int emitter_batch(struct emitter *em, struct cdc_event **evs, size_t n, uint64_t *last_seq);

/* The newest seq given out (0: none yet). */
uint64_t emitter_last_seq(struct emitter *em);
/* Marks: id comes back from emitter_take_marks once every sink made
 * everything up to seq durable.  Add in non-decreasing seq order. */
void emitter_mark(struct emitter *em, uint64_t seq, uint64_t id);
size_t emitter_take_marks(struct emitter *em, uint64_t *ids, size_t max);

/* Whether a sink asked for a replay that was not served; *gen = the
 * generation to serve. */
bool emitter_rewind_wanted(struct emitter *em, uint32_t *gen);
/* Serves it: pushes what waits, forgets the transactions not yet confirmed
 * and puts a REWIND marker in the log.  *restart = the confirmed positions,
 * per stream: the source restarts from there.  0 or CDC_ESTOP. */
int emitter_rewind(struct emitter *em, uint32_t gen, struct cdc_acks *restart);

/* Per stream, the end of the newest transaction emitted (or the restart
 * position of the last rewind, or what emitter_set_last_ends said): a
 * reconnect resumes each stream after the newest of it and the confirmed
 * position.  Source thread only. */
const struct cdc_acks *emitter_last_ends(const struct emitter *em);
void emitter_set_last_ends(struct emitter *em, const struct cdc_ack *v, size_t n);

/* Per stream, the newest position emitted: a transaction's end or a
 * keepalive (everything up to it is in the pipeline or was empty).  Source
 * thread only. */
const struct cdc_acks *emitter_reached(const struct emitter *em);

/* What every sink holds durably, per stream (the commit tracker's
 * confirmed positions): a source that must know before it lets a stream
 * go (a Kafka consumer losing partitions).  Source thread. */
void emitter_confirmed(struct emitter *em, struct cdc_acks *out);

/* A stop was requested (or a sink stopped the pipeline). */
bool emitter_stopping(const struct emitter *em);
/* Whether the emitter stopped the pipeline itself (the schema history
 * refused a table version, or could not record it); err (may be NULL) gets
 * why.  Every later emit returns CDC_ESTOP.  Any thread. */
bool emitter_failed(struct emitter *em, char *err, size_t errlen);
/* From now on a stop is what *stop says (the driver, while it lets the
 * transaction in progress finish after a stop request). */
void emitter_set_stop(struct emitter *em, const volatile sig_atomic_t *stop);
/* Whether a transaction is open: changes were emitted (emitter_event) since
 * the last commit or keepalive. */
bool emitter_in_txn(const struct emitter *em);
/* The source lost what it had decoded of the open transaction (its
 * connection dropped): none is open any more. */
void emitter_forget_txn(struct emitter *em);

/* Whether the control API paused the pipeline. */
bool emitter_paused(const struct emitter *em);
/* Snapshot readers: waits while paused (a stop ends the wait).  Returns
 * true if it waited. */
bool emitter_wait_resumed(const struct emitter *em);
/* A snapshot reports its progress (to the driver: /status, /metrics). */
void emitter_progress(struct emitter *em, const struct snap_progress *p);

/* How far behind a sink that made everything up to seq durable is, judged
 * from the commits emitted (sampled: one per 10 ms, the last 8192 samples):
 * events = changes emitted after seq; seconds = age of the oldest commit
 * after seq not yet durable (0 when none, or only snapshot rows, wait);
 * pos = the newest commit position at or before seq (0: unknown).  Any
 * thread. */
struct emitter_lag {
    uint64_t events;
    double seconds;
    uint64_t pos;
};
void emitter_lag(struct emitter *em, uint64_t seq, int64_t now_us, struct emitter_lag *lag);

struct emitter_counts {
    uint64_t events;       /* data events emitted */
    uint64_t transactions; /* COMMIT markers emitted */
    int64_t last_commit_ts;
    size_t pending_bytes; /* waiting for their batch */
};
/* Any thread, except pending_bytes: the source thread's only.  A change
 * is counted before it enters the event log, so no sink has delivered more
 * than events says. */
void emitter_counts(struct emitter *em, struct emitter_counts *c);

#endif
