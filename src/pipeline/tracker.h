/* The commit tracker: decides which source positions may be confirmed.
 *
 * The source registers each completed transaction as (seq of its last event
 * in the event log, stream, position to confirm once it is durable
 * everywhere).  Each sink reports the newest seq up to which everything it
 * was given is durable (or was already present and skipped).  A stream's
 * confirmable position is that of its newest registered transaction whose
 * last seq every sink has passed; transactions are registered in seq order
 * (the streams interleaved), so a FIFO popped from the front is enough, and
 * each pop raises only its own stream.  A stream that lags (its
 * transactions are behind in the log, or not durable yet) keeps its own
 * position back and nobody else's.
 * Thread-safe: the source registers and queries, sink threads report. */
#ifndef CDC_PIPELINE_TRACKER_H
#define CDC_PIPELINE_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "core/posmap.h"

struct tracker;

/* start[0..n): where each stream starts, confirmed from the outset. */
struct tracker *tracker_new(unsigned nsinks, const struct cdc_ack *start, size_t n);
void tracker_free(struct tracker *t);

/* A transaction of stream whose last event has seq last_seq (or, for a
 * keepalive with nothing pending, the newest seq pushed so far) may confirm
 * pos once durable.  Calls must come in non-decreasing last_seq order. */
void tracker_commit(struct tracker *t, uint64_t last_seq, uint32_t stream, uint64_t pos);
/* Sink s has made everything up to seq durable. */
void tracker_sink_done(struct tracker *t, unsigned s, uint64_t seq);
/* The newest positions that may be confirmed, one per stream known (none
 * ever decreases): *out becomes a copy. */
void tracker_confirmed(struct tracker *t, struct cdc_acks *out);
/* The same for one stream (0 when nothing is known of it). */
uint64_t tracker_confirmed_of(struct tracker *t, uint32_t stream);
/* Drops every registered, not yet confirmable transaction; *out gets the
 * confirmed positions: the source restarts from there and registers them
 * again. */
void tracker_rewind(struct tracker *t, struct cdc_acks *out);
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
