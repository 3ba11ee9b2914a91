/* The commit tracker: decides which source position may be confirmed.
 *
 * The source registers each completed transaction as (seq of its last event
 * in the event log, LSN to confirm once it is durable everywhere).  Each sink
 * reports the newest seq up to which everything it was given is durable (or
 * was already present and skipped).  The confirmable LSN is that of the newest
 * registered transaction whose last seq every sink has passed; transactions are
 * registered in seq order, so a FIFO popped from the front is enough.
 * Thread-safe: the source registers and queries, sink threads report. */
#ifndef CDC_PIPELINE_TRACKER_H
#define CDC_PIPELINE_TRACKER_H

#include <stdint.h>

struct tracker;

struct tracker *tracker_new(unsigned nsinks, uint64_t confirmed_lsn);
void tracker_free(struct tracker *t);

/* A transaction whose last event has seq last_seq (or, for a keepalive with
 * nothing pending, the newest seq pushed so far) may confirm lsn once durable.
 * Calls must come in non-decreasing last_seq order. */
void tracker_commit(struct tracker *t, uint64_t last_seq, uint64_t lsn);
/* Sink s has made everything up to seq durable. */
void tracker_sink_done(struct tracker *t, unsigned s, uint64_t seq);
/* The newest LSN that may be confirmed to the source (never decreases). */
uint64_t tracker_confirmed(struct tracker *t);
/* Drops every registered, not yet confirmable transaction and returns the
 * confirmed LSN: the source restarts from there and registers them again. */
uint64_t tracker_rewind(struct tracker *t);
/* Registered transactions not yet confirmed. */
uint64_t tracker_pending(struct tracker *t);
/* Smallest seq all sinks have passed. */
uint64_t tracker_min_done(struct tracker *t);

/* Marks: the source learns when every sink has made durable everything up to
 * a seq, for work that is not a source position (a snapshot chunk).  Add in
 * non-decreasing seq order; tracker_take_marks moves the ids whose seq all
 * sinks passed into ids[0..max) and returns how many. */
void tracker_mark(struct tracker *t, uint64_t seq, uint64_t id);
size_t tracker_take_marks(struct tracker *t, uint64_t *ids, size_t max);

#endif
