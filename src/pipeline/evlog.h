/* The event log: the ordered, bounded buffer between the source and the sinks.
 *
 * One producer (the source thread) appends events in stream order; each
 * consumer (one per sink) reads them in the same order through its own
 * cursor, so sinks progress independently.  An event stays alive until every
 * consumer has released it; memory is bounded in bytes across the pipeline and
 * in events per partition (the router's hash of table and key), and a full log
 * blocks the producer.
 *
 * Every event pushed carries one reference per consumer; a consumer calls
 * evlog_release once for every event it read. */
#ifndef CDC_PIPELINE_EVLOG_H
#define CDC_PIPELINE_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

struct evlog;

struct evlog_cfg {
    unsigned nconsumers; /* >= 1 */
    unsigned nparts;     /* partitions, >= 1 */
    size_t max_bytes;    /* budget for live events, all partitions */
    size_t max_per_part; /* live events per partition */
};

struct evlog_stats {
    uint64_t pushed;     /* events appended */
    uint64_t live_bytes; /* bytes held by events not yet released by all consumers */
    uint64_t live_events;
    uint64_t full_waits;   /* times the producer had to wait for room */
    uint64_t full_wait_us; /* total time the producer waited */
    bool full_now;         /* the producer is waiting right now */
};

int evlog_new(struct evlog **out, const struct evlog_cfg *cfg);
/* Frees the log and any events still in it.  NULL is a no-op. */
void evlog_free(struct evlog *log);

/* Appends evs[0..n) in order, waiting up to timeout_ms for room.  Takes
 * ownership of the appended events (each must have refs == 1 and its part
 * set; the log sets the consumer references).  Returns 0 when all were
 * appended, or CDC_EFULL with *done < n when the wait timed out: the caller
 * still owns evs[*done..n) and should call again (after servicing its
 * connection).  Returns CDC_ESTOP if the log was closed. */
int evlog_push(struct evlog *log, struct cdc_event *const *evs, size_t n, size_t *done,
               int timeout_ms);

/* Reads up to max events at consumer c's cursor, waiting up to timeout_ms for
 * the first.  Returns the number read (0 on timeout), or CDC_ESTOP once the log
 * is closed and c has read everything.  The caller releases each event. */
int evlog_read(struct evlog *log, unsigned c, struct cdc_event **out, size_t max, int timeout_ms);

/* Drops consumer references; frees events whose last reference this was. */
void evlog_release(struct evlog *log, struct cdc_event *const *evs, size_t n);

/* Consumers waiting in evlog_read for events return now (0 events). */
void evlog_kick(struct evlog *log);

/* No more pushes; consumers drain what is left and then get CDC_ESTOP, and a
 * producer waiting for room gets CDC_ESTOP. */
void evlog_close(struct evlog *log);

/* Events not yet read by consumer c. */
uint64_t evlog_backlog(struct evlog *log, unsigned c);
void evlog_stats(struct evlog *log, struct evlog_stats *st);

#endif
