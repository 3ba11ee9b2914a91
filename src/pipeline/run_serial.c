/* The serial runner: drives a write/flush sink in stream order.
 *
 * It reads batches from the log, skips what the destination already holds
 * (or what was dead-lettered for it), writes the rest, and flushes when its
 * batch is full, its interval passed, or (unless the sink type flushes on
 * its interval only) it caught up.  When the sink fails,
 * the runner dead-letters the failing event if the sink named one that the
 * destination rejects, then reopens the sink with backoff, draining the log
 * meanwhile so the other sinks keep going, and asks the source to rewind to
 * the confirmed position.  A sink that fails again right after each reopen
 * backs off longer each time and, past REWIND_BUDGET rewinds in a row without
 * progress, waits detached until it is ready instead of having the source
 * replay the backlog for every sink again and again. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/runner.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* Flushes what was written; reports durability.  Returns 0 or the sink's error. */
static int flush(struct runner *r)
{
    if (r->pending == 0) {
        runner_report_done(r, r->last_seen);
        return 0;
    }
    uint64_t durable = 0;
    int64_t t0 = clock_mono_us();
    int rc = r->sk.ops->flush(&r->sk, &durable);
    int64_t took = clock_mono_us() - t0;
    pthread_mutex_lock(&r->mu);
    histo_observe(&r->flush_seconds, (double)took / 1e6);
    r->request_retries = r->sk.request_retries;
    if (!rc)
        r->flushes++;
    pthread_mutex_unlock(&r->mu);
    if (rc)
        return rc;
    r->since_flush = 0;
    runner_lat_durable(r, durable >= r->last_given ? r->last_given : durable);
    if (durable >= r->last_given) {
        runner_progress(r, r->pending);
        r->pending = 0;
        runner_report_done(r, r->last_seen);
    } else {
        /* The sink cannot make all of it durable yet (a source transaction
         * is still open in it): try again after another interval, not at
         * once, whether more events come or not. */
        runner_report_done(r, durable);
        r->pending_since = clock_mono_us();
    }
    return 0;
}

static const char *class_name(int cls)
{
    return cls == SINK_ERR_PERMANENT   ? "permanent"
           : cls == SINK_ERR_RETRYABLE ? "retryable"
           : cls == SINK_ERR_FATAL     ? "fatal"
                                       : "unreachable";
}

/* Decides about the event the sink says failed (if it is in the batch): a
 * destination that rejects it (permanent), or keeps failing it
 * (retry.max_attempts times in a row), gets it dead-lettered, with the rest
 * of its transaction when the sink keeps transactions whole.  A COMMIT
 * marker named as the failure (a deferred constraint) dead-letters its whole
 * transaction.  Returns true if something was dead-lettered. */
static bool maybe_dead_letter(struct runner *r, struct cdc_event *const *evs, size_t n)
{
    if (r->sk.errclass == SINK_ERR_UNREACHABLE || r->sk.errclass == SINK_ERR_FATAL ||
        r->sk.err_seq == 0)
        return false;
    const struct cdc_event *ev = NULL;
    for (size_t i = 0; i < n && !ev; i++)
        if (evs[i]->seq == r->sk.err_seq)
            ev = evs[i];
    r->sk.err_seq = 0;
    if (!ev)
        return false;
    if (cdc_pos_cmp(ev->pos, r->fail_pos) == 0) {
        r->fail_attempts++;
    } else {
        r->fail_pos = ev->pos;
        r->fail_attempts = 1;
    }
    bool give_up = r->sk.errclass == SINK_ERR_PERMANENT ||
                   r->fail_attempts >= (unsigned)r->sk.cfg->retry.max_attempts;
    if (!give_up || !runner_dlq_enabled(r))
        return false;
    if (ev->op == CDC_OP_COMMIT) {
        runner_span_after(r, ev, r->sk.err);
        r->fail_attempts = 0;
        return true;
    }
    if (runner_dead_letter(r, ev, class_name(r->sk.errclass), r->sk.err, (int)r->fail_attempts,
                           0) != 0)
        return false;
    if (ev->snapshot) {
        runner_snapshot_skip_add(r, ev);
        r->sk.single_snapshot = false; /* found it */
    }
    runner_span_after(r, ev, r->sk.err);
    r->fail_attempts = 0;
    return true;
}

/* After a failed write or flush (`unflushed` events of the failed call were
 * not yet counted as pending): close, reopen with backoff (draining the log
 * while waiting, so others are not held up), then ask for a rewind, at once
 * or, for a sink that keeps failing, when it is due (runner_rewind_when_due).
 * The backoff goes on growing across failures until the sink makes progress
 * durable: a reopen that succeeds proves little (a full disk opens fine).
 * A fatal failure, of the call or of a reopen, stops the pipeline instead:
 * the destination must be changed first.  Returns false if the pipeline is
 * stopping. */
static bool recover(struct runner *r, bool dead_lettered, size_t unflushed)
{
    if (r->sk.errclass == SINK_ERR_FATAL) {
        runner_fail(r);
        return false;
    }
    runner_note_error(r);
    log_error("sink.failed", "sink=%s class=%s error=%s", r->sk.cfg->sink_id,
              class_name(r->sk.errclass), log_q(r->sk.err));
    runner_set_state(r, "retrying");
    r->sk.ops->close(&r->sk);
    /* A dead-lettered event is progress: it is out of the way. */
    if (!dead_lettered)
        runner_failed(r, r->pending + unflushed);
    runner_lat_lost(r);
    r->pending = 0;
    r->since_flush = 0;
    for (unsigned attempt = 0;; attempt++) {
        /* A dead-lettered event is out of the way: try again at once. */
        int64_t delay =
            dead_lettered && attempt == 0 ? 0 : runner_backoff_us(r, attempt, r->sk.retry_after_us);
        r->sk.retry_after_us = 0;
        if (!runner_drain_for(r, delay))
            return false;
        pthread_mutex_lock(&r->mu);
        r->reopens++;
        pthread_mutex_unlock(&r->mu);
        cdc_posmap_clear(&r->have);
        if (r->sk.ops->open(&r->sk, &r->have) == 0)
            break;
        if (r->sk.errclass == SINK_ERR_FATAL) {
            runner_fail(r);
            return false;
        }
        runner_note_error(r);
        log_warn("sink.reopen_failed", "sink=%s attempt=%u error=%s", r->sk.cfg->sink_id,
                 attempt + 1, log_q(r->sk.err));
    }
    r->rewind_gen = runner_rewind_when_due(r);
    if (!r->rewind_gen)
        return false;
    r->awaiting_rewind = true;
    runner_set_state(r, "running");
    return true;
}

/* Stores the run of events just collected for a span being dead-lettered;
 * if the store fails, they go to the sink after all (which refuses them
 * again, and the failure is retried). */
static void flush_span(struct runner *r, struct cdc_event **span, size_t *nspan, size_t *k,
                       const struct dl_span *sp)
{
    if (*nspan && runner_dead_letter_many(r, span, *nspan, "permanent", sp->why) != 0)
        for (size_t i = 0; i < *nspan; i++)
            r->give[(*k)++] = span[i];
    *nspan = 0;
}

/* Sorts one read batch into what the sink must see.  Snapshot rows are
 * delivered (sinks apply them idempotently) unless dead-lettered before;
 * changes the destination already holds or that were dead-lettered are
 * skipped; changes of a span being dead-lettered whole are dead-lettered now;
 * a sink waiting for a rewind discards until the marker. */
static size_t select_events(struct runner *r, struct cdc_event **evs, size_t n)
{
    size_t k = 0, nspan = 0;
    uint64_t skipped = 0;
    struct cdc_event **span = NULL;
    struct dl_span cur;
    for (size_t i = 0; i < n; i++) {
        struct cdc_event *ev = evs[i];
        r->last_seen = ev->seq;
        if (ev->op == CDC_OP_REWIND) {
            if (r->awaiting_rewind && ev->rewind_gen >= r->rewind_gen)
                r->awaiting_rewind = false;
            /* Snapshot chunks not yet done are read again after it. */
            runner_snapshot_skip_rewound(r);
            continue;
        }
        if (r->awaiting_rewind)
            continue;
        if (ev->snapshot && runner_snapshot_skipped(r, ev)) {
            skipped++;
            continue;
        }
        if (!ev->snapshot && (cdc_posmap_covers(&r->have, ev->pos) ||
                              (ev->op != CDC_OP_COMMIT && runner_skipped_by_dlq(r, ev->pos)))) {
            skipped += !cdc_op_is_control(ev->op);
            continue;
        }
        if (!ev->snapshot && r->nspans) {
            const struct dl_span *sp =
                cdc_op_is_control(ev->op) ? NULL : runner_span_find(r, ev->pos);
            if (nspan && (!sp || cdc_pos_cmp(sp->from, cur.from) != 0))
                flush_span(r, span, &nspan, &k, &cur);
            if (sp && runner_dlq_enabled(r)) {
                if (!span)
                    span = xmalloc(n * sizeof *span);
                cur = *sp;
                span[nspan++] = ev;
                continue;
            }
            runner_spans_passed(r, ev->pos);
        }
        r->give[k++] = ev;
        /* At once, not after the write: the same batch may hold a replayed
         * copy of this event (a reconnect or a rewind resends it). */
        if (!ev->snapshot)
            cdc_posmap_set(&r->have, ev->pos);
    }
    if (nspan)
        flush_span(r, span, &nspan, &k, &cur);
    free(span);
    if (skipped) {
        pthread_mutex_lock(&r->mu);
        r->skipped += skipped;
        pthread_mutex_unlock(&r->mu);
    }
    return k;
}

void *run_serial(void *arg)
{
    struct runner *r = arg;
    struct engine *eng = r->eng;
    struct cdc_event *batch[READ_BATCH];
    r->give = xmalloc(sizeof batch);
    runner_set_state(r, "running");
    bool alive = true;

    while (alive && !atomic_load(&eng->abandon)) {
        int timeout_ms = 200;
        if (r->pending) {
            int64_t left = r->pending_since + r->flush_interval_us - clock_mono_us();
            timeout_ms = left <= 0 ? 0 : (int)(left / 1000) + 1;
        }
        int n = evlog_read(eng->log, r->idx, batch, READ_BATCH, timeout_ms);
        if (n == CDC_ESTOP)
            break;
        size_t k = select_events(r, batch, (size_t)n);
        if (k > 0) {
            if (r->sk.ops->write(&r->sk, r->give, k) != 0) {
                bool dl = maybe_dead_letter(r, r->give, k);
                evlog_release(eng->log, batch, (size_t)n);
                alive = recover(r, dl, k);
                continue;
            }
            size_t data = 0;
            for (size_t i = 0; i < k; i++)
                data += !cdc_op_is_control(r->give[i]->op);
            runner_lat_written(r, r->give, k);
            r->last_given = r->give[k - 1]->seq;
            if (r->pending == 0)
                r->pending_since = clock_mono_us();
            r->pending += k;
            r->since_flush += k;
            pthread_mutex_lock(&r->mu);
            r->events_out += data;
            pthread_mutex_unlock(&r->mu);
        }
        if (n > 0)
            evlog_release(eng->log, batch, (size_t)n);
        if (r->awaiting_rewind)
            continue;
        /* Due: a batch written since the last flush, the interval passed
         * since the oldest event not durable, or caught up.  A sink that
         * gathers a trickle until its interval (SINK_FLUSH_INTERVAL_ONLY)
         * flushes when caught up only once the source has read all it
         * will (engine_drain). */
        bool caught_up = n < READ_BATCH;
        bool on_catch_up = r->flush_on_catch_up || atomic_load(&eng->draining);
        bool due = r->pending && (r->since_flush >= r->batch_size || (caught_up && on_catch_up) ||
                                  clock_mono_us() - r->pending_since >= r->flush_interval_us);
        r->sk.flush_behind = due && !caught_up && r->since_flush >= r->batch_size;
        if ((due || (r->pending == 0 && n > 0)) && flush(r) != 0)
            alive = recover(r, false, 0);
        r->sk.flush_behind = false;
    }
    if (alive && !atomic_load(&eng->abandon) && !r->awaiting_rewind && flush(r) != 0) {
        runner_note_error(r);
        log_error("sink.final_flush_failed", "sink=%s error=%s", r->sk.cfg->sink_id,
                  log_q(r->sk.err));
    }
    free(r->give);
    r->give = NULL;
    runner_set_state(r, "stopped");
    return NULL;
}
