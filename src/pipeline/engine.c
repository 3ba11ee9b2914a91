/* Engine implementation: wiring plus the per-sink runner loop. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/engine.h"
#include "pipeline/evlog.h"
#include "pipeline/retry.h"
#include "pipeline/tracker.h"
#include "sink/sink.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

#define READ_BATCH 1024

struct runner {
    struct engine *eng;
    struct sink sk;
    unsigned idx;
    pthread_t thread;
    bool started;
    struct cdc_pos have;   /* the destination holds everything up to here */
    uint64_t last_seen;    /* newest seq read from the log */
    uint64_t last_given;   /* newest seq passed to write() */
    size_t pending;        /* events written since the last flush */
    int64_t pending_since; /* monotonic us of the first of them */
    bool awaiting_rewind;  /* discard until a REWIND marker of gen >= rewind_gen */
    uint32_t rewind_gen;
    uint64_t rng;
    size_t batch_size;
    int64_t flush_interval_us;
    struct cdc_event **give; /* scratch: the events of one read that are written */

    pthread_mutex_t mu; /* guards the stats below */
    const char *state;
    uint64_t events_out, skipped, flushes, errors, retries, done_seq;
    char last_error[256];
};

struct engine {
    const struct config *cfg;
    const struct json_ctx *json;
    struct evlog *log;
    struct tracker *tracker;
    struct runner *runners;
    unsigned nrunners;
    unsigned nparts;
    atomic_uint rewind_requested;
    atomic_uint rewind_served;
    atomic_bool abandon; /* shutdown timed out: stop retrying */
};

static void runner_set_state(struct runner *r, const char *state)
{
    pthread_mutex_lock(&r->mu);
    r->state = state;
    pthread_mutex_unlock(&r->mu);
}

static void runner_note_error(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->errors++;
    str_copy(r->last_error, sizeof r->last_error, r->sk.err);
    pthread_mutex_unlock(&r->mu);
}

static void runner_report_done(struct runner *r, uint64_t seq)
{
    if (seq == 0)
        return;
    pthread_mutex_lock(&r->mu);
    if (seq > r->done_seq)
        r->done_seq = seq;
    pthread_mutex_unlock(&r->mu);
    tracker_sink_done(r->eng->tracker, r->idx, seq);
}

/* Flushes what was written; reports durability.  Returns 0 or the sink's error. */
static int runner_flush(struct runner *r)
{
    if (r->pending == 0) {
        runner_report_done(r, r->last_seen);
        return 0;
    }
    uint64_t durable = 0;
    int rc = r->sk.ops->flush(&r->sk, &durable);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->mu);
    r->flushes++;
    pthread_mutex_unlock(&r->mu);
    if (durable >= r->last_given) {
        r->pending = 0;
        runner_report_done(r, r->last_seen);
    } else {
        runner_report_done(r, durable);
    }
    return 0;
}

/* After a failed write or flush: the sink may have lost what it had not made
 * durable.  Close it, reopen with backoff until it works (or shutdown gives
 * up), and ask the source to replay from the confirmed position. */
static void runner_recover(struct runner *r)
{
    struct engine *eng = r->eng;
    runner_note_error(r);
    log_error("sink.failed", "sink=%s class=%s error=%s", r->sk.cfg->sink_id,
              r->sk.errclass == SINK_ERR_PERMANENT ? "permanent" : "retryable", log_q(r->sk.err));
    runner_set_state(r, "retrying");
    r->sk.ops->close(&r->sk);
    for (unsigned attempt = 2;; attempt++) {
        int64_t delay = retry_delay_us(&r->sk.cfg->retry, attempt, r->sk.retry_after_us, &r->rng);
        r->sk.retry_after_us = 0;
        for (int64_t slept = 0; slept < delay && !atomic_load(&eng->abandon); slept += 50000)
            clock_sleep_us(delay - slept < 50000 ? delay - slept : 50000);
        if (atomic_load(&eng->abandon))
            break;
        pthread_mutex_lock(&r->mu);
        r->retries++;
        pthread_mutex_unlock(&r->mu);
        struct cdc_pos have = {0, 0};
        if (r->sk.ops->open(&r->sk, &have) == 0) {
            r->have = have;
            break;
        }
        runner_note_error(r);
        log_warn("sink.reopen_failed", "sink=%s attempt=%u error=%s", r->sk.cfg->sink_id, attempt,
                 log_q(r->sk.err));
    }
    r->pending = 0;
    r->awaiting_rewind = true;
    r->rewind_gen = atomic_fetch_add(&eng->rewind_requested, 1) + 1;
    char have[CDC_POS_TEXT_MAX];
    log_info("sink.rewind_requested", "sink=%s generation=%u have=%s", r->sk.cfg->sink_id,
             r->rewind_gen, cdc_pos_format(r->have, have, sizeof have));
    runner_set_state(r, "running");
}

/* Sorts one read batch into what the sink must see.  Snapshot rows are always
 * delivered (sinks apply them idempotently); changes the destination already
 * holds are skipped; a sink waiting for a rewind discards until the marker. */
static size_t runner_select(struct runner *r, struct cdc_event **evs, size_t n)
{
    size_t k = 0;
    uint64_t skipped = 0;
    for (size_t i = 0; i < n; i++) {
        struct cdc_event *ev = evs[i];
        r->last_seen = ev->seq;
        if (ev->op == CDC_OP_REWIND) {
            if (r->awaiting_rewind && ev->rewind_gen >= r->rewind_gen)
                r->awaiting_rewind = false;
            continue;
        }
        if (r->awaiting_rewind)
            continue;
        if (!ev->snapshot && cdc_pos_cmp(ev->pos, r->have) <= 0) {
            skipped += !cdc_op_is_control(ev->op);
            continue;
        }
        r->give[k++] = ev;
    }
    if (skipped) {
        pthread_mutex_lock(&r->mu);
        r->skipped += skipped;
        pthread_mutex_unlock(&r->mu);
    }
    return k;
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    struct engine *eng = r->eng;
    struct cdc_event *batch[READ_BATCH];
    r->give = xmalloc(sizeof batch);
    runner_set_state(r, "running");

    for (;;) {
        int timeout_ms = 200;
        if (r->pending) {
            int64_t left = r->pending_since + r->flush_interval_us - clock_mono_us();
            timeout_ms = left <= 0 ? 0 : (int)(left / 1000) + 1;
        }
        int n = evlog_read(eng->log, r->idx, batch, READ_BATCH, timeout_ms);
        if (n == CDC_ESTOP)
            break;
        size_t k = runner_select(r, batch, (size_t)n);
        if (k > 0) {
            if (r->sk.ops->write(&r->sk, r->give, k) != 0) {
                evlog_release(eng->log, batch, (size_t)n);
                runner_recover(r);
                if (atomic_load(&eng->abandon))
                    break;
                continue;
            }
            size_t data = 0;
            for (size_t i = 0; i < k; i++)
                data += !cdc_op_is_control(r->give[i]->op);
            struct cdc_event *last = r->give[k - 1];
            r->last_given = last->seq;
            if (!last->snapshot)
                r->have = last->op == CDC_OP_COMMIT
                              ? (struct cdc_pos){last->pos.lsn, CDC_POS_TXN_END}
                              : last->pos;
            if (r->pending == 0)
                r->pending_since = clock_mono_us();
            r->pending += k;
            pthread_mutex_lock(&r->mu);
            r->events_out += data;
            pthread_mutex_unlock(&r->mu);
        }
        if (n > 0)
            evlog_release(eng->log, batch, (size_t)n);
        if (r->awaiting_rewind)
            continue;
        bool caught_up = n < READ_BATCH;
        bool due = r->pending && (r->pending >= r->batch_size || caught_up ||
                                  clock_mono_us() - r->pending_since >= r->flush_interval_us);
        if (due || (r->pending == 0 && n > 0)) {
            if (runner_flush(r) != 0) {
                runner_recover(r);
                if (atomic_load(&eng->abandon))
                    break;
            }
        }
    }
    if (!atomic_load(&eng->abandon) && !r->awaiting_rewind && runner_flush(r) != 0) {
        runner_note_error(r);
        log_error("sink.final_flush_failed", "sink=%s error=%s", r->sk.cfg->sink_id,
                  log_q(r->sk.err));
    }
    free(r->give);
    r->give = NULL;
    runner_set_state(r, "stopped");
    return NULL;
}

static size_t sink_batch_size(const struct sink_cfg *sc)
{
    switch (sc->sink_type) {
    case SINK_FILE:
        return (size_t)sc->file.batch_size;
    case SINK_POSTGRES:
        return (size_t)sc->postgres.batch_size * 16;
    case SINK_WEBHOOK:
        return (size_t)sc->webhook.batch_size * 64;
    default:
        return 10000;
    }
}

static int64_t sink_flush_interval_us(const struct sink_cfg *sc)
{
    if (sc->sink_type == SINK_FILE)
        return (int64_t)(sc->file.flush_interval_seconds * 1e6);
    return 200000;
}

int engine_new(struct engine **out, const struct config *cfg, const struct json_ctx *json,
               char *err, size_t errlen)
{
    *out = NULL;
    struct engine *eng = xcalloc(1, sizeof *eng);
    eng->cfg = cfg;
    eng->json = json;
    int np = cfg->platform.partitions;
    if (np <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        np = (int)(cpus > 0 ? cpus : 1) * 4;
    }
    eng->nparts = (unsigned)np;
    atomic_init(&eng->rewind_requested, 0);
    atomic_init(&eng->rewind_served, 0);
    atomic_init(&eng->abandon, false);

    for (size_t i = 0; i < cfg->nsinks; i++)
        eng->nrunners += cfg->sinks[i].enabled;
    eng->runners = xcalloc(eng->nrunners ? eng->nrunners : 1, sizeof *eng->runners);
    unsigned k = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct sink_cfg *sc = &cfg->sinks[i];
        if (!sc->enabled)
            continue;
        const struct sink_ops *ops = sink_ops_find(sc->sink_type);
        if (!ops) {
            rc = cdc_fail(err, errlen, CDC_ENOTSUP,
                          "sinks[%zu] (%s): sink_type %s is not implemented yet", i, sc->sink_id,
                          config_sink_type_name(sc->sink_type));
            goto fail;
        }
        struct runner *r = &eng->runners[k];
        pthread_mutex_init(&r->mu, NULL);
        r->eng = eng;
        r->idx = k;
        r->state = "opening";
        r->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)k << 32) ^ (uint64_t)clock_wall_us();
        r->batch_size = sink_batch_size(sc);
        r->flush_interval_us = sink_flush_interval_us(sc);
        r->sk.ops = ops;
        r->sk.cfg = sc;
        r->sk.config = cfg;
        r->sk.json = json;
        r->sk.index = k;
        k++;
        if (ops->open(&r->sk, &r->have) != 0) {
            rc = cdc_fail(err, errlen, CDC_ECONN, "sink %s: %s", sc->sink_id, r->sk.err);
            r->sk.ops = NULL; /* not open: nothing to close */
            goto fail;
        }
        char have[CDC_POS_TEXT_MAX];
        log_info("sink.opened", "sink=%s type=%s have=%s", sc->sink_id, ops->name,
                 cdc_pos_format(r->have, have, sizeof have));
    }
    if (eng->nrunners == 0) {
        rc = cdc_fail(err, errlen, CDC_EINVAL, "no enabled sinks");
        goto fail;
    }
    struct evlog_cfg lc = {
        .nconsumers = eng->nrunners,
        .nparts = eng->nparts,
        .max_bytes = (size_t)cfg->platform.max_buffered_bytes,
        .max_per_part = (size_t)cfg->platform.max_buffered_messages,
    };
    if (evlog_new(&eng->log, &lc) != 0) {
        rc = cdc_fail(err, errlen, CDC_EINVAL, "invalid buffer limits");
        goto fail;
    }
    *out = eng;
    return 0;
fail:
    engine_free(eng);
    return rc;
}

int engine_start(struct engine *eng, uint64_t confirmed_lsn)
{
    eng->tracker = tracker_new(eng->nrunners, confirmed_lsn);
    for (unsigned i = 0; i < eng->nrunners; i++) {
        struct runner *r = &eng->runners[i];
        if (pthread_create(&r->thread, NULL, runner_main, r) != 0)
            return CDC_ERR;
        r->started = true;
    }
    return 0;
}

void engine_close(struct engine *eng)
{
    if (eng->log)
        evlog_close(eng->log);
}

int engine_wait(struct engine *eng, int64_t timeout_us)
{
    int64_t deadline = clock_mono_us() + timeout_us;
    int rc = 0;
    for (unsigned i = 0; i < eng->nrunners; i++) {
        struct runner *r = &eng->runners[i];
        if (!r->started)
            continue;
        for (;;) {
            pthread_mutex_lock(&r->mu);
            bool stopped = strcmp(r->state, "stopped") == 0;
            pthread_mutex_unlock(&r->mu);
            if (stopped)
                break;
            if (clock_mono_us() > deadline && !atomic_load(&eng->abandon)) {
                log_warn("engine.shutdown_timeout", "sink=%s", r->sk.cfg->sink_id);
                atomic_store(&eng->abandon, true);
                rc = CDC_ERR;
            }
            clock_sleep_us(10000);
        }
        pthread_join(r->thread, NULL);
        r->started = false;
    }
    return atomic_load(&eng->abandon) ? CDC_ERR : rc;
}

void engine_free(struct engine *eng)
{
    if (!eng)
        return;
    if (eng->log) {
        engine_close(eng);
        atomic_store(&eng->abandon, true);
        engine_wait(eng, 0);
    }
    for (unsigned i = 0; i < eng->nrunners; i++) {
        struct runner *r = &eng->runners[i];
        if (r->sk.ops)
            r->sk.ops->close(&r->sk);
        if (r->eng)
            pthread_mutex_destroy(&r->mu);
    }
    free(eng->runners);
    evlog_free(eng->log);
    tracker_free(eng->tracker);
    free(eng);
}

void engine_route(const struct engine *eng, struct cdc_event *ev)
{
    ev->part = (uint16_t)(cdc_event_key_hash(ev) % eng->nparts);
}

int engine_push(struct engine *eng, struct cdc_event *const *evs, size_t n, size_t *done,
                int timeout_ms)
{
    return evlog_push(eng->log, evs, n, done, timeout_ms);
}

void engine_commit(struct engine *eng, uint64_t last_seq, uint64_t lsn)
{
    tracker_commit(eng->tracker, last_seq, lsn);
}

uint64_t engine_confirmed(struct engine *eng)
{
    return tracker_confirmed(eng->tracker);
}

uint64_t engine_pending(struct engine *eng)
{
    return tracker_pending(eng->tracker);
}

bool engine_rewind_wanted(struct engine *eng, uint32_t *gen)
{
    unsigned req = atomic_load(&eng->rewind_requested);
    *gen = req;
    return req != atomic_load(&eng->rewind_served);
}

uint64_t engine_rewind(struct engine *eng, uint32_t gen)
{
    atomic_store(&eng->rewind_served, gen);
    return tracker_rewind(eng->tracker);
}

unsigned engine_nsinks(const struct engine *eng)
{
    return eng->nrunners;
}

void engine_sink_stats(struct engine *eng, unsigned i, struct engine_sink_stats *st)
{
    struct runner *r = &eng->runners[i];
    pthread_mutex_lock(&r->mu);
    st->sink_id = r->sk.cfg->sink_id;
    st->sink_type = r->sk.ops ? r->sk.ops->name : "?";
    st->state = r->state;
    st->events_out = r->events_out;
    st->skipped = r->skipped;
    st->flushes = r->flushes;
    st->errors = r->errors;
    st->retries = r->retries;
    st->done_seq = r->done_seq;
    snprintf(st->last_error, sizeof st->last_error, "%s", r->last_error);
    pthread_mutex_unlock(&r->mu);
    st->backlog = eng->log ? evlog_backlog(eng->log, i) : 0;
}

void engine_log_stats(struct engine *eng, uint64_t *live_bytes, uint64_t *live_events,
                      bool *full_now, uint64_t *full_wait_us)
{
    struct evlog_stats st;
    evlog_stats(eng->log, &st);
    *live_bytes = st.live_bytes;
    *live_events = st.live_events;
    *full_now = st.full_now;
    *full_wait_us = st.full_wait_us;
}
