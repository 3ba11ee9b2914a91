#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/tracker.h"
#include "util/mem.h"

/* Transactions tracked one by one before neighbours are merged. */
#define TRACKER_MAX_PENDING 65536

struct pending {
    uint64_t last_seq;
    uint64_t pos;
    uint32_t stream;
};

struct mark {
    uint64_t seq;
    uint64_t id;
};

struct tracker {
    pthread_mutex_t mu;
    struct mark *marks; /* in seq order; marks[mhead .. mlen) live */
    size_t mcap, mhead, mlen;
    unsigned nsinks;
    uint64_t *done; /* per sink */
    struct pending *fifo;
    size_t cap, head, len;     /* ring: entries fifo[(head + i) % cap] */
    struct cdc_acks confirmed; /* per stream */
};

struct tracker *tracker_new(unsigned nsinks, const struct cdc_ack *start, size_t n)
{
    struct tracker *t = xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->nsinks = nsinks;
    t->done = xcalloc(nsinks ? nsinks : 1, sizeof *t->done);
    t->cap = 1024;
    t->fifo = xmalloc(t->cap * sizeof *t->fifo);
    for (size_t i = 0; i < n; i++)
        cdc_acks_raise(&t->confirmed, start[i].stream, start[i].pos);
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
    cdc_acks_fini(&t->confirmed);
    free(t);
}

static struct pending *at(struct tracker *t, size_t i)
{
    return &t->fifo[(t->head + i) % t->cap];
}

/* A sink that stays behind (detached, waiting for its destination) must not
 * make the FIFO grow without end: from the newest back, each stream keeps
 * its newest entry and every other older one.  A dropped entry's position
 * is confirmed with its stream's next kept entry: later, never too early.
 * Returns whether that freed room. */
static bool compact(struct tracker *t)
{
    struct cdc_acks seen = {0}; /* per stream: entries of it met so far */
    bool *keep = xmalloc(t->len * sizeof *keep);
    size_t kept = 0;
    for (size_t i = t->len; i-- > 0;) {
        const struct pending *p = at(t, i);
        const struct cdc_ack *c = cdc_acks_get(&seen, p->stream);
        uint64_t k = c ? c->pos : 0;
        keep[i] = k % 2 == 0;
        kept += keep[i];
        cdc_acks_set(&seen, p->stream, k + 1);
    }
    cdc_acks_fini(&seen);
    if (kept == t->len) {
        free(keep);
        return false;
    }
    struct pending *n = xmalloc(t->cap * sizeof *n);
    size_t k = 0;
    for (size_t i = 0; i < t->len; i++)
        if (keep[i])
            n[k++] = *at(t, i);
    free(keep);
    free(t->fifo);
    t->fifo = n;
    t->len = k;
    t->head = 0;
    return true;
}

void tracker_commit(struct tracker *t, uint64_t last_seq, uint32_t stream, uint64_t pos)
{
    pthread_mutex_lock(&t->mu);
    if (t->len > 0) {
        struct pending *last = at(t, t->len - 1);
        if (last->last_seq == last_seq && last->stream == stream) {
            if (pos > last->pos)
                last->pos = pos;
            pthread_mutex_unlock(&t->mu);
            return;
        }
    }
    if (t->len == t->cap && !(t->cap >= TRACKER_MAX_PENDING && compact(t))) {
        struct pending *n = xmalloc(2 * t->cap * sizeof *n);
        for (size_t i = 0; i < t->len; i++)
            n[i] = *at(t, i);
        free(t->fifo);
        t->fifo = n;
        t->head = 0;
        t->cap *= 2;
    }
    *at(t, t->len) = (struct pending){last_seq, pos, stream};
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

static void confirm_locked(struct tracker *t)
{
    uint64_t min = min_done_locked(t);
    while (t->len > 0 && at(t, 0)->last_seq <= min) {
        const struct pending *p = at(t, 0);
        cdc_acks_raise(&t->confirmed, p->stream, p->pos);
        t->head = (t->head + 1) % t->cap;
        t->len--;
    }
}

void tracker_confirmed(struct tracker *t, struct cdc_acks *out)
{
    pthread_mutex_lock(&t->mu);
    confirm_locked(t);
    cdc_acks_copy(out, &t->confirmed);
    pthread_mutex_unlock(&t->mu);
}

uint64_t tracker_confirmed_of(struct tracker *t, uint32_t stream)
{
    pthread_mutex_lock(&t->mu);
    confirm_locked(t);
    const struct cdc_ack *c = cdc_acks_get(&t->confirmed, stream);
    uint64_t pos = c ? c->pos : 0;
    pthread_mutex_unlock(&t->mu);
    return pos;
}

void tracker_rewind(struct tracker *t, struct cdc_acks *out)
{
    pthread_mutex_lock(&t->mu);
    confirm_locked(t);
    t->head = 0;
    t->len = 0;
    cdc_acks_copy(out, &t->confirmed);
    pthread_mutex_unlock(&t->mu);
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
    t->marks[t->mlen++] = (struct mark){seq, id};
    pthread_mutex_unlock(&t->mu);
}

size_t tracker_take_marks(struct tracker *t, uint64_t *ids, size_t max)
{
    pthread_mutex_lock(&t->mu);
    uint64_t min = min_done_locked(t);
    size_t n = 0;
    while (n < max && t->mhead < t->mlen && t->marks[t->mhead].seq <= min)
        ids[n++] = t->marks[t->mhead++].id;
    pthread_mutex_unlock(&t->mu);
    return n;
}
