/* Event log implementation: a power-of-two ring of event pointers guarded by
 * one mutex, taken once per pushed or read batch.  Live-memory accounting uses
 * atomics so that releasing events (the hot path on every sink) locks only
 * when the producer is actually waiting for room. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "pipeline/evlog.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"

struct evlog {
    pthread_mutex_t mu;
    pthread_cond_t readable; /* consumers wait here */
    pthread_cond_t writable; /* the producer waits here */
    struct cdc_event **ring; /* owned; slots [tail, head) are in use */
    uint64_t mask;
    uint64_t head;    /* next slot to write */
    uint64_t tail;    /* oldest slot some consumer has not read */
    uint64_t *cursor; /* per consumer: next slot to read */
    unsigned nconsumers;
    unsigned nparts;
    size_t max_bytes;
    size_t max_per_part;
    bool closed;
    uint64_t kicks; /* evlog_kick calls: a read waiting for events returns */
    atomic_bool producer_waiting;
    atomic_size_t live_bytes;
    atomic_size_t live_events;
    atomic_size_t *part_live; /* nparts counters */
    /* stats, under mu */
    uint64_t pushed;
    uint64_t full_waits;
    uint64_t full_wait_us;
};

int evlog_new(struct evlog **out, const struct evlog_cfg *cfg)
{
    *out = NULL;
    if (cfg->nconsumers == 0 || cfg->nparts == 0 || cfg->max_per_part == 0 || cfg->max_bytes == 0)
        return CDC_EINVAL;
    struct evlog *log = xcalloc(1, sizeof *log);
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->readable, NULL);
    pthread_cond_init(&log->writable, NULL);
    /* Room for every partition's budget plus control events between them. */
    uint64_t want = (uint64_t)cfg->max_per_part * cfg->nparts + 1024;
    uint64_t cap = 1024;
    while (cap < want && cap < (1ULL << 26))
        cap <<= 1;
    log->ring = xcalloc(cap, sizeof *log->ring);
    log->mask = cap - 1;
    log->nconsumers = cfg->nconsumers;
    log->nparts = cfg->nparts;
    log->max_bytes = cfg->max_bytes;
    log->max_per_part = cfg->max_per_part;
    log->cursor = xcalloc(cfg->nconsumers, sizeof *log->cursor);
    log->part_live = xcalloc(cfg->nparts, sizeof *log->part_live);
    for (unsigned i = 0; i < cfg->nparts; i++)
        atomic_init(&log->part_live[i], 0);
    atomic_init(&log->live_bytes, 0);
    atomic_init(&log->live_events, 0);
    atomic_init(&log->producer_waiting, false);
    *out = log;
    return 0;
}

void evlog_free(struct evlog *log)
{
    if (!log)
        return;
    /* Every slot not yet read by a consumer still holds that consumer's
     * reference; drop them so the events are freed. */
    for (unsigned c = 0; c < log->nconsumers; c++)
        for (uint64_t s = log->cursor[c]; s < log->head; s++)
            cdc_event_unref(log->ring[s & log->mask]);
    cdc_event_reap();
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->readable);
    pthread_cond_destroy(&log->writable);
    free(log->ring);
    free(log->cursor);
    free(log->part_live);
    free(log);
}

static bool is_accounted(const struct cdc_event *ev)
{
    return !cdc_op_is_control(ev->op);
}

/* Whether ev fits now.  An empty pipeline always accepts one event, so a single
 * event larger than the whole byte budget still passes (alone). */
static bool has_room(struct evlog *log, const struct cdc_event *ev)
{
    if (log->head - log->tail > log->mask)
        return false;
    if (!is_accounted(ev))
        return true;
    size_t live = atomic_load(&log->live_bytes);
    if (live > 0 && live + ev->size > log->max_bytes)
        return false;
    if (atomic_load(&log->part_live[ev->part % log->nparts]) >= log->max_per_part)
        return false;
    return true;
}

int evlog_push(struct evlog *log, struct cdc_event *const *evs, size_t n, size_t *done,
               int timeout_ms)
{
    size_t i = 0;
    int rc = 0;
    struct timespec deadline;
    bool have_deadline = false;
    int64_t wait_start = 0;

    pthread_mutex_lock(&log->mu);
    while (i < n) {
        if (log->closed) {
            rc = CDC_ESTOP;
            break;
        }
        struct cdc_event *ev = evs[i];
        if (!has_room(log, ev)) {
            if (!have_deadline) {
                clock_deadline_after(&deadline, timeout_ms);
                have_deadline = true;
                wait_start = clock_mono_us();
                log->full_waits++;
            }
            atomic_store(&log->producer_waiting, true);
            /* Re-check after announcing the wait: a release between the
             * check and the flag would otherwise go unnoticed. */
            if (has_room(log, ev))
                continue;
            if (i > 0)
                pthread_cond_broadcast(&log->readable);
            int w = pthread_cond_timedwait(&log->writable, &log->mu, &deadline);
            if (w == ETIMEDOUT && !has_room(log, ev)) {
                rc = CDC_EFULL;
                break;
            }
            continue;
        }
        atomic_store_explicit(&ev->refs, log->nconsumers, memory_order_relaxed);
        if (is_accounted(ev)) {
            atomic_fetch_add(&log->live_bytes, ev->size);
            atomic_fetch_add(&log->part_live[ev->part % log->nparts], 1);
        }
        atomic_fetch_add(&log->live_events, 1);
        log->ring[log->head & log->mask] = ev;
        log->head++;
        log->pushed++;
        i++;
    }
    atomic_store(&log->producer_waiting, false);
    if (have_deadline)
        log->full_wait_us += (uint64_t)(clock_mono_us() - wait_start);
    if (i > 0)
        pthread_cond_broadcast(&log->readable);
    pthread_mutex_unlock(&log->mu);
    *done = i;
    return i == n ? 0 : rc;
}

/* Moves tail to the slowest cursor.  Called with mu held. */
static void advance_tail(struct evlog *log)
{
    uint64_t min = log->head;
    for (unsigned c = 0; c < log->nconsumers; c++)
        if (log->cursor[c] < min)
            min = log->cursor[c];
    if (min != log->tail) {
        log->tail = min;
        pthread_cond_signal(&log->writable);
    }
}

int evlog_read(struct evlog *log, unsigned c, struct cdc_event **out, size_t max, int timeout_ms)
{
    pthread_mutex_lock(&log->mu);
    if (log->cursor[c] == log->head && !log->closed && timeout_ms > 0) {
        struct timespec deadline;
        clock_deadline_after(&deadline, timeout_ms);
        uint64_t kicks = log->kicks;
        while (log->cursor[c] == log->head && !log->closed && log->kicks == kicks)
            if (pthread_cond_timedwait(&log->readable, &log->mu, &deadline) == ETIMEDOUT)
                break;
    }
    uint64_t avail = log->head - log->cursor[c];
    if (avail == 0) {
        int rc = log->closed ? CDC_ESTOP : 0;
        pthread_mutex_unlock(&log->mu);
        return rc;
    }
    size_t n = avail < max ? (size_t)avail : max;
    uint64_t from = log->cursor[c];
    for (size_t i = 0; i < n; i++)
        out[i] = log->ring[(from + i) & log->mask];
    bool was_tail = from == log->tail;
    log->cursor[c] = from + n;
    if (was_tail)
        advance_tail(log);
    pthread_mutex_unlock(&log->mu);
    return (int)n;
}

void evlog_release(struct evlog *log, struct cdc_event *const *evs, size_t n)
{
    size_t freed_bytes = 0, freed = 0;
    struct cdc_table *run = NULL; /* the table of the events just freed */
    unsigned run_refs = 0;        /* and the references they held of it */
    for (size_t i = 0; i < n; i++) {
        struct cdc_event *ev = evs[i];
        uint32_t size = ev->size;
        unsigned part = ev->part % log->nparts;
        bool accounted = is_accounted(ev);
        struct cdc_table *tab;
        if (!cdc_event_unref_keep_table(ev, &tab))
            continue;
        if (tab != run) {
            cdc_table_unref_n(run, run_refs);
            run = tab;
            run_refs = 0;
        }
        run_refs += tab != NULL;
        freed++;
        if (accounted) {
            freed_bytes += size;
            atomic_fetch_sub(&log->part_live[part], 1);
        }
    }
    cdc_table_unref_n(run, run_refs);
    if (!freed)
        return;
    atomic_fetch_sub(&log->live_bytes, freed_bytes);
    atomic_fetch_sub(&log->live_events, freed);
    if (atomic_load(&log->producer_waiting)) {
        pthread_mutex_lock(&log->mu);
        pthread_cond_signal(&log->writable);
        pthread_mutex_unlock(&log->mu);
    }
}

void evlog_kick(struct evlog *log)
{
    pthread_mutex_lock(&log->mu);
    log->kicks++;
    pthread_cond_broadcast(&log->readable);
    pthread_mutex_unlock(&log->mu);
}

void evlog_close(struct evlog *log)
{
    pthread_mutex_lock(&log->mu);
    log->closed = true;
    pthread_cond_broadcast(&log->readable);
    pthread_cond_broadcast(&log->writable);
    pthread_mutex_unlock(&log->mu);
}

uint64_t evlog_backlog(struct evlog *log, unsigned c)
{
    pthread_mutex_lock(&log->mu);
    uint64_t n = log->head - log->cursor[c];
    pthread_mutex_unlock(&log->mu);
    return n;
}

void evlog_stats(struct evlog *log, struct evlog_stats *st)
{
    pthread_mutex_lock(&log->mu);
    st->pushed = log->pushed;
    st->full_waits = log->full_waits;
    st->full_wait_us = log->full_wait_us;
    pthread_mutex_unlock(&log->mu);
    st->live_bytes = atomic_load(&log->live_bytes);
    st->live_events = atomic_load(&log->live_events);
    st->full_now = atomic_load(&log->producer_waiting);
}
