/* The per-key runner: drives a submit/poll sink through one lane per
 * partition (one lane in all for `ordering: transaction`).
 *
 * A lane is a FIFO of events of its partition; at most one batch per lane is
 * in flight, so per-key order holds, while lanes progress independently: a
 * key that fails holds back only its own lane.  Outcomes:
 *   delivered            → released, the lane's position advances;
 *   unreachable          → retried with backoff for as long as it takes;
 *   retryable failure    → retried with backoff, dead-lettered after
 *                          retry.max_attempts attempts;
 *   permanent rejection  → dead-lettered at once.
 * A failing batch of several events is retried one event at a time, so only
 * the event the destination refuses is dead-lettered.
 *
 * Memory: a lane that is stuck retrying while its backlog reaches its share
 * of the budget is detached: its queued events are dropped (they are not done
 * for this sink, so the source position cannot pass them), the log flows on
 * for every other sink, and once the lane delivers again the runner asks the
 * source to replay from the confirmed position. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/retry.h"
#include "pipeline/runner.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

#define MAX_RESULTS 64

struct lane {
    struct cdc_event **q; /* q[head .. head+len): owned log references */
    size_t head, len, cap;
    size_t bytes;
    size_t inflight;        /* events from head submitted, result pending */
    unsigned attempts;      /* failed attempts of the head batch */
    int64_t retry_at;       /* monotonic us before which the lane waits */
    size_t isolate;         /* deliver this many more events one at a time */
    size_t retry_len;       /* retry the failed batch as it was (the same changes, so the same
                               idempotency key), not grown by what arrived since (0 = none) */
    struct cdc_posmap have; /* per stream: newest position delivered or dead-lettered */
    bool detached;          /* dropping arrivals until a replay */
    bool ready;             /* detached, and delivering again: wants the replay */
    uint64_t hold_seq;      /* detached: the first event dropped */
    uint32_t rewind_gen;    /* waiting for a REWIND marker >= this (0 = not) */
    int last_class;         /* class of the last failure (enum sink_errclass) */
};

struct lanes {
    struct runner *r;
    struct lane *l;
    unsigned n;
    size_t total_bytes;
    size_t budget_bytes;  /* what all lanes may hold */
    size_t budget_events; /* what one lane may hold */
    unsigned batches_in_flight;
    uint64_t last_seen;
    bool closing;
    int64_t first_ready_us; /* when the first detached lane became ready (0 = none) */
};

static void lane_push(struct lane *l, struct cdc_event *ev)
{
    if (l->head + l->len == l->cap) {
        if (l->head > l->cap / 2) {
            memmove(l->q, l->q + l->head, l->len * sizeof *l->q);
            l->head = 0;
        } else {
            l->cap = l->cap ? 2 * l->cap : 64;
            l->q = xrealloc(l->q, l->cap * sizeof *l->q);
        }
    }
    l->q[l->head + l->len++] = ev;
    l->bytes += ev->size;
}

/* Takes the head event off the lane; the caller releases it. */
static struct cdc_event *lane_pop(struct lanes *ls, struct lane *l)
{
    struct cdc_event *ev = l->q[l->head++];
    l->len--;
    l->bytes -= ev->size;
    ls->total_bytes -= ev->size;
    if (l->len == 0)
        l->head = 0;
    return ev;
}

static void release_one(struct runner *r, struct cdc_event *ev)
{
    evlog_release(r->eng->log, &ev, 1);
}

/* Drops the lane's queued events that are not in flight and stops taking new
 * ones until a replay.  Those events are not done for this sink. */
static void detach(struct lanes *ls, struct lane *l, unsigned idx)
{
    struct runner *r = ls->r;
    /* Keep the batch in flight, or the event waiting to be retried: it keeps
     * probing the destination, and its success is what ends the detachment. */
    size_t keep = l->inflight ? l->inflight : (l->len ? 1 : 0);
    size_t dropped = l->len - keep;
    if (dropped == 0 && l->detached)
        return;
    if (!l->detached)
        l->hold_seq = dropped ? l->q[l->head + keep]->seq : ls->last_seen + 1;
    for (size_t i = keep; i < l->len; i++) {
        struct cdc_event *ev = l->q[l->head + i];
        l->bytes -= ev->size;
        ls->total_bytes -= ev->size;
        release_one(r, ev);
    }
    l->len = keep;
    l->detached = true;
    log_warn("sink.lane_detached", "sink=%s lane=%u dropped=%zu hint=%s", r->sk.cfg->sink_id, idx,
             dropped,
             log_q("the destination keeps failing; the lane replays from the confirmed "
                   "position once it delivers again"));
}

/* The lane delivered (or dead-lettered) everything it kept since it was
 * detached: it is ready for the replay that brings back what it dropped.
 * Lanes usually recover together (the destination came back), so the replay
 * is requested once for all of them: see request_replay. */
static void maybe_reattach(struct lanes *ls, struct lane *l)
{
    if (l->detached && !l->rewind_gen && !l->ready && l->len == 0) {
        l->ready = true;
        if (!ls->first_ready_us)
            ls->first_ready_us = clock_mono_us();
    }
}

/* One rewind for every ready lane, once no detached lane is still failing
 * or half a second after the first became ready. */
static void request_replay(struct lanes *ls)
{
    if (!ls->first_ready_us)
        return;
    bool waiting = false;
    for (unsigned i = 0; i < ls->n; i++)
        waiting |= ls->l[i].detached && !ls->l[i].ready && !ls->l[i].rewind_gen;
    if (waiting && clock_mono_us() - ls->first_ready_us < 500000)
        return;
    uint32_t gen = runner_request_rewind(ls->r);
    for (unsigned i = 0; i < ls->n; i++)
        if (ls->l[i].ready) {
            ls->l[i].ready = false;
            ls->l[i].rewind_gen = gen;
        }
    ls->first_ready_us = 0;
}

/* A delivery went through: lanes backing off because the destination was
 * unreachable try again now instead of sleeping out their backoff. */
static void destination_back(struct lanes *ls, int64_t now)
{
    for (unsigned i = 0; i < ls->n; i++) {
        struct lane *l = &ls->l[i];
        if (l->attempts && l->last_class == SINK_ERR_UNREACHABLE && !l->inflight)
            l->retry_at = now;
    }
}

/* The first n events of l were delivered: a delivered batch is durable,
 * which counts as a flush. */
static void deliver_head(struct lanes *ls, struct lane *l, size_t n)
{
    struct runner *r = ls->r;
    uint64_t data = 0;
    struct histo lat = {0};
    int64_t now = clock_wall_us();
    for (size_t i = 0; i < n; i++) {
        struct cdc_event *ev = lane_pop(ls, l);
        if (!ev->snapshot)
            cdc_posmap_set(&l->have, ev->pos);
        runner_lat_observe(&lat, ev, now);
        data++;
        release_one(r, ev);
    }
    if (data) {
        runner_lat_merge(r, &lat);
        pthread_mutex_lock(&r->mu);
        r->events_out += data;
        r->flushes++;
        pthread_mutex_unlock(&r->mu);
    }
}

static const char *class_name(int cls)
{
    return cls == SINK_ERR_PERMANENT   ? "permanent"
           : cls == SINK_ERR_RETRYABLE ? "retryable"
                                       : "unreachable";
}

static void handle_result(struct lanes *ls, const struct sink_result *res)
{
    struct runner *r = ls->r;
    if (res->lane >= ls->n)
        return;
    struct lane *l = &ls->l[res->lane];
    size_t k = l->inflight;
    if (k == 0)
        return;
    l->inflight = 0;
    ls->batches_in_flight--;
    runner_note_request(r, res->http_status, res->duration_us);
    size_t done = res->rc == 0 ? k : (res->ndone < k ? res->ndone : k);
    deliver_head(ls, l, done);
    l->isolate = l->isolate > done ? l->isolate - done : 0;
    l->retry_len = 0;
    runner_progress(r, done);
    if (res->rc == 0) {
        if (l->attempts && l->last_class == SINK_ERR_UNREACHABLE)
            destination_back(ls, clock_mono_us());
        l->attempts = 0;
        l->retry_at = 0;
        maybe_reattach(ls, l);
        return;
    }
    l->last_class = res->errclass;
    int64_t now = clock_mono_us();
    size_t remaining = k - done;
    str_copy(r->sk.err, sizeof r->sk.err, res->err);
    runner_note_error(r);
    unsigned attempt = l->attempts + 1; /* the attempt that just failed */
    bool give_up =
        res->errclass == SINK_ERR_PERMANENT ||
        (res->errclass == SINK_ERR_RETRYABLE && attempt >= (unsigned)r->sk.cfg->retry.max_attempts);
    if (give_up && remaining > 1) {
        /* Find the event the destination refuses: one at a time. */
        l->isolate = remaining;
        l->attempts = 0;
        l->retry_at = now;
        return;
    }
    if (give_up && runner_dlq_enabled(r)) {
        struct cdc_event *ev = l->q[l->head];
        if (runner_dead_letter(r, ev, class_name(res->errclass), res->err, (int)attempt,
                               res->http_status) == 0) {
            ev = lane_pop(ls, l);
            if (!ev->snapshot)
                cdc_posmap_set(&l->have, ev->pos);
            release_one(r, ev);
            l->attempts = 0;
            l->retry_at = 0;
            maybe_reattach(ls, l);
            return;
        }
    }
    if (give_up)
        log_error("sink.cannot_dead_letter", "sink=%s lane=%u hint=%s", r->sk.cfg->sink_id,
                  res->lane, log_q("the dead-letter queue is disabled or failed: retrying"));
    l->attempts = attempt;
    l->retry_len = remaining;
    pthread_mutex_lock(&r->mu);
    r->request_retries++;
    pthread_mutex_unlock(&r->mu);
    int64_t delay = retry_delay_us(&r->sk.cfg->retry, attempt + 1, res->retry_after_us, &r->rng);
    l->retry_at = now + delay;
    /* A destination that does not answer at all is down: worth a warning.
     * One that answers "later" (429, 503) is flow control. */
    log_emit(res->errclass == SINK_ERR_UNREACHABLE ? LOG_WARN : LOG_INFO, "sink.retry",
             "sink=%s lane=%u attempt=%u class=%s in_ms=%lld error=%s", r->sk.cfg->sink_id,
             res->lane, attempt, class_name(res->errclass), (long long)(delay / 1000),
             log_q(res->err));
}

/* Puts one event read from the log into its lane, or drops it. */
static void route(struct lanes *ls, struct cdc_event *ev)
{
    struct runner *r = ls->r;
    ls->last_seen = ev->seq;
    if (ev->op == CDC_OP_REWIND) {
        for (unsigned i = 0; i < ls->n; i++) {
            struct lane *l = &ls->l[i];
            if (l->rewind_gen && ev->rewind_gen >= l->rewind_gen) {
                l->rewind_gen = 0;
                l->detached = false;
                l->ready = false;
                log_info("sink.lane_reattached", "sink=%s lane=%u", r->sk.cfg->sink_id, i);
            }
        }
        release_one(r, ev);
        return;
    }
    if (cdc_op_is_control(ev->op)) {
        release_one(r, ev);
        return;
    }
    struct lane *l = &ls->l[ls->n == 1 ? 0 : ev->part % ls->n];
    if (l->detached) {
        release_one(r, ev);
        return;
    }
    if (!ev->snapshot &&
        (cdc_posmap_covers(&l->have, ev->pos) || runner_skipped_by_dlq(r, ev->pos))) {
        pthread_mutex_lock(&r->mu);
        r->skipped++;
        pthread_mutex_unlock(&r->mu);
        release_one(r, ev);
        return;
    }
    lane_push(l, ev);
    ls->total_bytes += ev->size;
}

/* A lane holding more than its share while stuck retrying is detached; a
 * lane that is merely slow makes the runner stop reading (backpressure). */
static bool has_room(struct lanes *ls)
{
    bool room = ls->total_bytes < ls->budget_bytes;
    for (unsigned i = 0; i < ls->n; i++) {
        struct lane *l = &ls->l[i];
        bool over = l->len >= ls->budget_events || (!room && l->len > l->inflight);
        if (!over || l->detached)
            continue;
        if (l->attempts > 0)
            detach(ls, l, i);
        else
            return false;
    }
    return ls->total_bytes < ls->budget_bytes;
}

static void submit_ready(struct lanes *ls, int64_t now)
{
    struct runner *r = ls->r;
    for (unsigned i = 0; i < ls->n; i++) {
        struct lane *l = &ls->l[i];
        if (l->inflight || l->len == 0 || now < l->retry_at)
            continue;
        size_t k = l->isolate ? 1 : (l->len < r->batch_size ? l->len : r->batch_size);
        if (l->retry_len && l->retry_len < k)
            k = l->retry_len;
        if (r->sk.ops->submit(&r->sk, i, l->q + l->head, k) != 0) {
            struct sink_result res = {.lane = i, .rc = CDC_ERR, .errclass = r->sk.errclass};
            str_copy(res.err, sizeof res.err, r->sk.err);
            l->inflight = k;
            ls->batches_in_flight++;
            handle_result(ls, &res);
            continue;
        }
        l->inflight = k;
        ls->batches_in_flight++;
    }
}

/* Newest seq up to which everything is delivered, dead-lettered or skipped. */
static uint64_t done_seq(const struct lanes *ls)
{
    uint64_t d = ls->last_seen;
    for (unsigned i = 0; i < ls->n; i++) {
        const struct lane *l = &ls->l[i];
        uint64_t ld = l->len ? l->q[l->head]->seq - 1 : l->detached ? l->hold_seq - 1 : UINT64_MAX;
        if (ld < d)
            d = ld;
    }
    return d;
}

static void update_state(struct lanes *ls)
{
    const char *state = "running";
    for (unsigned i = 0; i < ls->n; i++) {
        if (ls->l[i].detached) {
            state = "detached";
            break;
        }
        if (ls->l[i].attempts > 0)
            state = "retrying";
    }
    runner_set_state(ls->r, state);
}

/* The sink itself broke (poll failed): drop everything, reopen with
 * backoff while draining the log, then replay.  false if stopping. */
static bool reopen(struct lanes *ls)
{
    struct runner *r = ls->r;
    runner_note_error(r);
    log_error("sink.failed", "sink=%s error=%s", r->sk.cfg->sink_id, log_q(r->sk.err));
    r->sk.ops->close(&r->sk);
    for (unsigned i = 0; i < ls->n; i++) {
        struct lane *l = &ls->l[i];
        l->inflight = 0;
        detach(ls, l, i);
        l->attempts = 0;
        l->retry_at = 0;
        l->retry_len = 0;
    }
    ls->batches_in_flight = 0;
    runner_set_state(r, "retrying");
    runner_failed(r, 1);
    for (unsigned attempt = 0;; attempt++) {
        if (!runner_drain_for(r, runner_backoff_us(r, attempt, 0)))
            return false;
        pthread_mutex_lock(&r->mu);
        r->reopens++;
        pthread_mutex_unlock(&r->mu);
        /* What it holds does not matter: the lanes keep their own
         * positions (a per-key sink reports nothing). */
        struct cdc_posmap have = {0};
        int orc = r->sk.ops->open(&r->sk, &have);
        cdc_posmap_fini(&have);
        if (orc == 0)
            break;
        runner_note_error(r);
    }
    uint32_t gen = runner_rewind_when_due(r);
    if (!gen)
        return false;
    for (unsigned i = 0; i < ls->n; i++)
        ls->l[i].rewind_gen = gen;
    return true;
}

void *run_lanes(void *arg)
{
    struct runner *r = arg;
    struct engine *eng = r->eng;
    const struct config *cfg = eng->cfg;
    struct lanes ls = {.r = r};
    ls.n = r->sk.cfg->ordering == ORDER_TRANSACTION ? 1 : eng->nparts;
    ls.l = xcalloc(ls.n, sizeof *ls.l);
    for (unsigned i = 0; i < ls.n; i++)
        cdc_posmap_copy(&ls.l[i].have, &r->have);
    ls.budget_bytes =
        (size_t)cfg->platform.max_buffered_bytes / 4; /* lanes: a share of the log's */
    ls.budget_events = (size_t)cfg->platform.max_buffered_messages / 2;
    if (ls.budget_events == 0)
        ls.budget_events = 1;
    /* One lane for every partition (ordering: transaction) holds no more
     * per partition could: the log's per-partition limit must not fill
     * before the lane detaches. */
    if (r->batch_size == 0)
        r->batch_size = 1;
    struct cdc_event *batch[READ_BATCH];
    struct sink_result results[MAX_RESULTS];
    runner_set_state(r, "running");
    bool alive = true;

    while (alive && !atomic_load(&eng->abandon)) {
        int64_t now = clock_mono_us();
        int64_t next_retry = INT64_MAX;
        bool sendable = false; /* a lane has a batch to send now */
        for (unsigned i = 0; i < ls.n; i++) {
            const struct lane *l = &ls.l[i];
            if (l->inflight || !l->len)
                continue;
            if (l->retry_at <= now)
                sendable = true;
            else if (l->retry_at < next_retry)
                next_retry = l->retry_at;
        }
        int wait_ms = 50;
        if (next_retry != INT64_MAX && (next_retry - now) / 1000 < wait_ms)
            wait_ms = (int)((next_retry - now) / 1000) + 1;

        bool reading = !ls.closing && has_room(&ls);
        if (reading) {
            /* Wait for the log only when there is nothing else to do: a
             * caught-up log must not hold back a lane's backlog. */
            bool busy = ls.batches_in_flight || sendable;
            int n = evlog_read(eng->log, r->idx, batch, READ_BATCH, busy ? 0 : wait_ms);
            if (n == CDC_ESTOP)
                ls.closing = true;
            for (int i = 0; i < n; i++)
                route(&ls, batch[i]);
        }
        submit_ready(&ls, clock_mono_us());
        /* Lanes full and nothing could go out: they wait for their retry
         * time.  (Sleeping before submitting, as this once did, idled a
         * backlog 50 ms whenever the lanes were full as their requests
         * came back.) */
        if (!reading && !ls.batches_in_flight)
            clock_sleep_us((int64_t)wait_ms * 1000);
        if (ls.batches_in_flight) {
            int n = r->sk.ops->poll(&r->sk, wait_ms, results, MAX_RESULTS);
            if (n < 0) {
                alive = reopen(&ls);
                continue;
            }
            for (int i = 0; i < n; i++)
                handle_result(&ls, &results[i]);
        }
        request_replay(&ls);
        runner_report_done(r, done_seq(&ls));
        update_state(&ls);
        if (ls.closing) {
            bool empty = ls.batches_in_flight == 0;
            for (unsigned i = 0; i < ls.n && empty; i++)
                empty = ls.l[i].len == 0;
            if (empty)
                break;
        }
    }
    /* Whatever is still queued was not delivered: not done, redelivered by
     * the next run. */
    for (unsigned i = 0; i < ls.n; i++) {
        struct lane *l = &ls.l[i];
        for (size_t k = 0; k < l->len; k++)
            release_one(r, l->q[l->head + k]);
        free(l->q);
        cdc_posmap_fini(&l->have);
    }
    free(ls.l);
    runner_set_state(r, "stopped");
    return NULL;
}
