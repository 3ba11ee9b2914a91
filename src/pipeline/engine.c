/* Engine: wiring of the event log, the tracker and the runners (what the
 * two kinds of runner share is runner.c's). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/runner.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

#define STOP_REPORT_US        3000000 /* a stop that waits says so this often */
#define MAX_FLUSH_INTERVAL_US (INT64_C(86400) * 1000000)

/* ---------- wiring ---------- */

/* Events the runner hands the sink at most before a flush is due (serial
 * sinks) or in one batch (per-key sinks). */
static size_t sink_batch_size(const struct sink_cfg *sc)
{
    unsigned k = sc->type->flush_batches ? sc->type->flush_batches : 1;
    return (size_t)(sc->batch_size > 0 ? sc->batch_size : 1) * k;
}

/* flush_interval_seconds, at most a day (no arithmetic overflows). */
static int64_t sink_flush_interval_us(const struct sink_cfg *sc)
{
    double us = sc->flush_interval_seconds * 1e6;
    return us < MAX_FLUSH_INTERVAL_US ? (int64_t)us : MAX_FLUSH_INTERVAL_US;
}

static bool is_per_key(const struct runner *r)
{
    return r->sk.ops->submit != NULL;
}

int engine_new(struct engine **out, const struct config *cfg, const struct json_ctx *json,
               struct store *store, char *err, size_t errlen)
{
    return engine_new_ops(out, cfg, json, store, NULL, err, errlen);
}

int engine_new_ops(struct engine **out, const struct config *cfg, const struct json_ctx *json,
                   struct store *store, const struct sink_ops *force, char *err, size_t errlen)
{
    *out = NULL;
    struct engine *eng = xcalloc(1, sizeof *eng);
    eng->cfg = cfg;
    eng->json = json;
    eng->store = store;
    int np = cfg->platform.partitions;
    if (np <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        np = (int)(cpus > 0 ? cpus : 1) * 4;
    }
    eng->nparts = (unsigned)np;
    atomic_init(&eng->rewind_requested, 0);
    atomic_init(&eng->rewind_served, 0);
    atomic_init(&eng->abandon, false);
    atomic_init(&eng->failed, false);
    pthread_mutex_init(&eng->fail_mu, NULL);

    for (size_t i = 0; i < cfg->nsinks; i++)
        eng->nrunners += cfg->sinks[i].enabled;
    eng->runners = xcalloc(eng->nrunners ? eng->nrunners : 1, sizeof *eng->runners);
    unsigned k = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct sink_cfg *sc = &cfg->sinks[i];
        if (!sc->enabled)
            continue;
        /* force: a test's scripted sink in place of every sink's own ops */
        const struct sink_ops *ops = force ? force : sc->type->ops; /* set when available */
        char why[160];
        if (!force && sink_type_unavailable(sc->type, why, sizeof why)) {
            rc = cdc_fail(err, errlen, CDC_ENOTSUP, "sinks[%zu] (%s): %s", i, sc->sink_id, why);
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
        r->flush_on_catch_up = sc->type->flush == SINK_FLUSH_ON_CATCH_UP;
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
        if (store) {
            char e[256];
            if (store_dlq_pending_positions(store, sc->sink_id, &r->skip, &r->nskip, e, sizeof e) !=
                0) {
                rc = cdc_fail(err, errlen, CDC_EIO, "sink %s: %s", sc->sink_id, e);
                goto fail;
            }
            r->capskip = r->nskip;
            if (runner_dead_letters_load(r, store, e, sizeof e) != 0) {
                rc = cdc_fail(err, errlen, CDC_EIO, "sink %s: %s", sc->sink_id, e);
                goto fail;
            }
        }
        char have[256];
        log_info("sink.opened", "sink=%s type=%s have=%s dead_lettered=%zu", sc->sink_id,
                 sc->type->name, cdc_posmap_format(&r->have, have, sizeof have), r->nskip);
    }
    if (eng->nrunners == 0) {
        rc = cdc_fail(err, errlen, CDC_EINVAL, "no enabled sinks");
        goto fail;
    }
    /* max_buffered_bytes bounds all data in flight: the event log gets what
     * is left after a reserve for what sinks and libraries hold while writing
     * (file buffers, request bodies, connection buffers, the log's own ring)
     * and the allocator's slack; at least half. */
    size_t budget = (size_t)cfg->platform.max_buffered_bytes;
    size_t reserve = (size_t)6 << 20;
    size_t share = budget > 2 * reserve ? budget - reserve : budget / 2;
    struct evlog_cfg lc = {
        .nconsumers = eng->nrunners,
        .nparts = eng->nparts,
        .max_bytes = share > 0 ? share : 1,
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

void engine_held(const struct engine *eng, struct cdc_posmap *out)
{
    cdc_posmap_clear(out);
    for (unsigned i = 0; i < eng->nrunners; i++) {
        const struct cdc_posmap *h = &eng->runners[i].have;
        for (size_t k = 0; k < h->n; k++)
            cdc_posmap_raise(out, h->v[k]);
    }
}

int engine_start(struct engine *eng, const struct cdc_ack *start, size_t n)
{
    eng->tracker = tracker_new(eng->nrunners, start, n);
    for (unsigned i = 0; i < eng->nrunners; i++) {
        struct runner *r = &eng->runners[i];
        if (pthread_create(&r->thread, NULL, is_per_key(r) ? run_lanes : run_serial, r) != 0)
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

/* Says which sink holds the stop, and what it waits for. */
static void log_stop_waiting(struct runner *r, int64_t waited_us, int64_t timeout_us)
{
    char state[16], last[sizeof r->last_error];
    pthread_mutex_lock(&r->mu);
    str_copy(state, sizeof state, r->state);
    str_copy(last, sizeof last, r->last_error);
    pthread_mutex_unlock(&r->mu);
    bool failing = strcmp(state, "running") != 0;
    log_warn("run.stop_waiting", "sink=%s state=%s waiting_for=%s waited_s=%.0f timeout_s=%.0f%s%s",
             r->sk.cfg->sink_id, state,
             log_q(failing ? "its destination, to deliver what it holds (retrying)"
                           : "its last writes to be delivered and made durable"),
             (double)waited_us / 1e6, (double)timeout_us / 1e6, last[0] ? " last_error=" : "",
             last[0] ? log_q(last) : "");
}

int engine_wait(struct engine *eng, int64_t timeout_us)
{
    int64_t start = clock_mono_us();
    int64_t deadline = start + timeout_us;
    int64_t next_report = start + STOP_REPORT_US;
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
            int64_t now = clock_mono_us();
            if (now > deadline && !atomic_load(&eng->abandon)) {
                log_warn("engine.shutdown_timeout", "sink=%s timeout_s=%.0f", r->sk.cfg->sink_id,
                         (double)timeout_us / 1e6);
                atomic_store(&eng->abandon, true);
            }
            if (now >= next_report && !atomic_load(&eng->abandon)) {
                log_stop_waiting(r, now - start, timeout_us);
                next_report = now + STOP_REPORT_US;
            }
            clock_sleep_us(10000);
        }
        pthread_join(r->thread, NULL);
        r->started = false;
    }
    return atomic_load(&eng->abandon) ? CDC_ERR : 0;
}

void engine_set_dlq_hook(struct engine *eng, engine_dlq_hook fn, void *arg)
{
    eng->dlq_hook = fn;
    eng->dlq_arg = arg;
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
        free(r->skip);
        free(r->lat);
        cdc_posmap_fini(&r->have);
        free(r->spans);
        free(r->snapskip);
        if (r->eng)
            pthread_mutex_destroy(&r->mu);
    }
    free(eng->runners);
    pthread_mutex_destroy(&eng->fail_mu);
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

void engine_drain(struct engine *eng)
{
    if (atomic_exchange(&eng->draining, true))
        return;
    evlog_kick(eng->log);
}

void engine_commit(struct engine *eng, uint64_t last_seq, uint32_t stream, uint64_t pos)
{
    tracker_commit(eng->tracker, last_seq, stream, pos);
}

void engine_confirmed(struct engine *eng, struct cdc_acks *out)
{
    tracker_confirmed(eng->tracker, out);
}

uint64_t engine_confirmed_of(struct engine *eng, uint32_t stream)
{
    return tracker_confirmed_of(eng->tracker, stream);
}

uint64_t engine_pending(struct engine *eng)
{
    return tracker_pending(eng->tracker);
}

void engine_mark(struct engine *eng, uint64_t seq, uint64_t id)
{
    tracker_mark(eng->tracker, seq, id);
}

size_t engine_take_marks(struct engine *eng, uint64_t *ids, size_t max)
{
    return tracker_take_marks(eng->tracker, ids, max);
}

bool engine_rewind_wanted(struct engine *eng, uint32_t *gen)
{
    unsigned req = atomic_load(&eng->rewind_requested);
    *gen = req;
    return req != atomic_load(&eng->rewind_served);
}

void engine_rewind(struct engine *eng, uint32_t gen, struct cdc_acks *restart)
{
    atomic_store(&eng->rewind_served, gen);
    tracker_rewind(eng->tracker, restart);
}

bool engine_failed(struct engine *eng, char *err, size_t errlen)
{
    if (!atomic_load(&eng->failed))
        return false;
    if (err && errlen) {
        pthread_mutex_lock(&eng->fail_mu);
        snprintf(err, errlen, "%s", eng->fail_err);
        pthread_mutex_unlock(&eng->fail_mu);
    }
    return true;
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
    st->sink_type = r->sk.cfg->type->name;
    st->state = r->state;
    st->events_out = r->events_out;
    st->skipped = r->skipped;
    st->flushes = r->flushes;
    st->errors = r->errors;
    st->reopens = r->reopens;
    st->request_retries = r->request_retries;
    st->durable_seconds = r->durable_seconds;
    st->flush_seconds = r->flush_seconds;
    st->request_seconds = r->request_seconds;
    st->nhttp = r->nhttp;
    for (unsigned k = 0; k < r->nhttp; k++) {
        st->http[k].code = r->http[k].code;
        st->http[k].n = r->http[k].n;
    }
    st->dead_lettered = r->dead_lettered;
    st->done_seq = r->done_seq;
    str_copy(st->last_error, sizeof st->last_error, r->last_error);
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
