#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/tracker.h"
#include "util/mem.h"

/* Transactions tracked one by one before neighbours are merged. */
#define TRACKER_MAX_PENDING 65536

struct pending {
    uint64_t last_seq;
    uint64_t lsn;
};

struct tracker {
    pthread_mutex_t mu;
    struct pending *marks; /* (seq, id) in seq order; marks[mhead .. mlen) live */
    size_t mcap, mhead, mlen;
    unsigned nsinks;
    uint64_t *done; /* per sink */
    struct pending *fifo;
    size_t cap, head, len; /* ring: entries fifo[(head + i) % cap] */
    uint64_t confirmed;
};

struct tracker *tracker_new(unsigned nsinks, uint64_t confirmed_lsn)
{
    struct tracker *t = xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->nsinks = nsinks;
    t->done = xcalloc(nsinks ? nsinks : 1, sizeof *t->done);
    t->cap = 1024;
    t->fifo = xmalloc(t->cap * sizeof *t->fifo);
    t->confirmed = confirmed_lsn;
    return t;
}

void tracker_free(struct tracker *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->done);
    free(t->fifo);
    free(t->marks);
    free(t);
}

static struct pending *at(struct tracker *t, size_t i)
{
    return &t->fifo[(t->head + i) % t->cap];
}

void tracker_commit(struct tracker *t, uint64_t last_seq, uint64_t lsn)
{
    pthread_mutex_lock(&t->mu);
    if (t->len > 0) {
        struct pending *last = at(t, t->len - 1);
        if (last->last_seq == last_seq) {
            if (lsn > last->lsn)
                last->lsn = lsn;
            pthread_mutex_unlock(&t->mu);
            return;
        }
    }
    if (t->len == t->cap && t->cap >= TRACKER_MAX_PENDING) {
        /* A sink that stays behind (detached, waiting for its destination)
         * must not make this grow without end: merge neighbours.  A merged
         * entry confirms its older LSN only together with the newer one:
         * later, never too early. */
        struct pending *n = xmalloc(t->cap * sizeof *n);
        for (size_t i = 0; i < t->len / 2; i++)
            n[i] = *at(t, 2 * i + 1);
        if (t->len % 2)
            n[t->len / 2] = *at(t, t->len - 1);
        free(t->fifo);
        t->fifo = n;
        t->len = (t->len + 1) / 2;
        t->head = 0;
    } else if (t->len == t->cap) {
        struct pending *n = xmalloc(2 * t->cap * sizeof *n);
        for (size_t i = 0; i < t->len; i++)
            n[i] = *at(t, i);
        free(t->fifo);
        t->fifo = n;
        t->head = 0;
        t->cap *= 2;
    }
    *at(t, t->len) = (struct pending){last_seq, lsn};
    t->len++;
    pthread_mutex_unlock(&t->mu);
}

void tracker_sink_done(struct tracker *t, unsigned s, uint64_t seq)
{
    pthread_mutex_lock(&t->mu);
    if (seq > t->done[s])
        t->done[s] = seq;
    pthread_mutex_unlock(&t->mu);
}

static uint64_t min_done_locked(struct tracker *t)
{
    uint64_t min = UINT64_MAX;
    for (unsigned s = 0; s < t->nsinks; s++)
        if (t->done[s] < min)
            min = t->done[s];
    return min;
}

static uint64_t confirmed_locked(struct tracker *t)
{
    uint64_t min = min_done_locked(t);
    while (t->len > 0 && at(t, 0)->last_seq <= min) {
        if (at(t, 0)->lsn > t->confirmed)
            t->confirmed = at(t, 0)->lsn;
        t->head = (t->head + 1) % t->cap;
        t->len--;
    }
    return t->confirmed;
}

uint64_t tracker_confirmed(struct tracker *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t c = confirmed_locked(t);
    pthread_mutex_unlock(&t->mu);
    return c;
}

uint64_t tracker_rewind(struct tracker *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t c = confirmed_locked(t);
    t->head = 0;
    t->len = 0;
    pthread_mutex_unlock(&t->mu);
    return c;
}

uint64_t tracker_pending(struct tracker *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t n = t->len;
    pthread_mutex_unlock(&t->mu);
    return n;
}

uint64_t tracker_min_done(struct tracker *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t m = min_done_locked(t);
    pthread_mutex_unlock(&t->mu);
    return m;
}

void tracker_mark(struct tracker *t, uint64_t seq, uint64_t id)
{
    pthread_mutex_lock(&t->mu);
    if (t->mhead > 0 && t->mhead == t->mlen)
        t->mhead = t->mlen = 0;
    if (t->mlen == t->mcap) {
        if (t->mhead > 0) {
            memmove(t->marks, t->marks + t->mhead, (t->mlen - t->mhead) * sizeof *t->marks);
            t->mlen -= t->mhead;
            t->mhead = 0;
        } else {
            t->mcap = t->mcap ? 2 * t->mcap : 64;
            t->marks = xrealloc(t->marks, t->mcap * sizeof *t->marks);
        }
    }
    t->marks[t->mlen++] = (struct pending){seq, id};
    pthread_mutex_unlock(&t->mu);
}

size_t tracker_take_marks(struct tracker *t, uint64_t *ids, size_t max)
{
    pthread_mutex_lock(&t->mu);
    uint64_t min = min_done_locked(t);
    size_t n = 0;
    while (n < max && t->mhead < t->mlen && t->marks[t->mhead].last_seq <= min)
        ids[n++] = t->marks[t->mhead++].lsn;
    pthread_mutex_unlock(&t->mu);
    return n;
}
