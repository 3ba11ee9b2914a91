/* The source driver; see driver.h. */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/engine.h"
#include "schema/schema_hist.h"
#include "source/driver.h"
#include "source/emitter.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define POLL_WAIT_MS     100   /* longest a poll waits: rewinds, stops, pauses are seen this fast */
#define PAUSE_SLEEP_US   50000 /* how often a paused source looks again */
#define BUSY_PUBLISH_US  200000 /* stats of a busy stream are published this often */
#define MEM_LOG_US       5000000
#define BACKOFF_MIN_US   1000000
#define BACKOFF_MAX_US   30000000
#define BACKOFF_SLICE_US 100000   /* a backoff wait looks at the stop flag this often */
#define SLOW_CHECK_US    1000000  /* how often the event log is checked for a slow sink */
#define SLOW_LOG_US      10000000 /* how often a sink holding the pipeline back is named */
/* After a stop request, the open transaction may take this long. */
#define STOP_TXN_WAIT_US 5000000

struct driver {
    struct source src;
    struct cdc_acks start;       /* from prepare: where each stream starts */
    struct cdc_acks acks;        /* source thread: what every sink holds, per stream */
    struct engine *eng;          /* borrowed from driver_run on */
    const struct driver_opts *o; /* borrowed from driver_run on */
    struct emitter *em;
    struct schemahist *schema; /* every table's versions; NULL without a store */
    bool connected, started, paused, snapshotting;
    bool draining; /* read up to the stop position: engine_drain called */
    /* While streaming, the emitter's stop flag: set once the stream ends
     * (see stop_now). */
    volatile sig_atomic_t stop_now;
    int64_t stop_deadline_us; /* a stop was requested inside a transaction: until when to read */
    uint64_t reconnects;
    int64_t next_publish_us, next_mem_log_us;
    /* watch_slow_sink (the source thread) */
    int64_t next_slow_check_us, next_slow_log_us, full_since_us;
    uint64_t full_wait_us;
    pthread_mutex_t mu; /* guards stats, snap and the snapshot requests */
    struct source_stats stats;
    struct snap_progress snap; /* the latest a snapshot reported */
    char **req;                /* tables asked for by the control API, not yet queued */
    size_t nreq;
};

/* A signal, or a sink that stopped the pipeline (engine_failed: a change it
 * cannot apply, which must not be confirmed past), or the emitter (a schema
 * change refused). */
static bool stop_requested(const struct driver *d)
{
    return (d->o && d->o->stop && *d->o->stop) || engine_failed(d->eng, NULL, 0) ||
           (d->em && emitter_failed(d->em, NULL, 0));
}

/* Whether streaming ends now.  A stop request inside a transaction lets
 * the source read on until the transaction ends (for at most
 * stop_txn_wait_us): otherwise sinks hold part of it that no final
 * acknowledgement covers, and the server sends it again next time.  A sink
 * that stopped the pipeline, a lost connection or a pause end it at once. */
static bool stop_now(struct driver *d)
{
    if (d->stop_now)
        return true;
    if (!stop_requested(d))
        return false;
    bool now = engine_failed(d->eng, NULL, 0) || emitter_failed(d->em, NULL, 0) || !d->connected ||
               !emitter_in_txn(d->em) || (d->o->paused && atomic_load(d->o->paused));
    if (!now) {
        int64_t t = clock_mono_us();
        if (!d->stop_deadline_us) {
            int64_t wait = d->o->stop_txn_wait_us > 0 ? d->o->stop_txn_wait_us : STOP_TXN_WAIT_US;
            d->stop_deadline_us = t + wait;
            log_info("source.stop_finishing_transaction", "wait_s=%.1f", wait / 1e6);
        }
        now = t >= d->stop_deadline_us;
    }
    if (now)
        d->stop_now = 1;
    return now;
}

/* What every sink holds durably, as acknowledgements. */
static const struct cdc_acks *confirmed_acks(struct driver *d)
{
    engine_confirmed(d->eng, &d->acks);
    return &d->acks;
}

/* Whether every stop position is acknowledged, each in its stream. */
static bool stop_reached(const struct driver_opts *o, const struct cdc_acks *acks)
{
    for (size_t i = 0; i < o->nstop_at; i++) {
        const struct cdc_ack *a = cdc_acks_get(acks, o->stop_at[i].stream);
        if (!a || a->pos < o->stop_at[i].pos)
            return false;
    }
    return o->nstop_at > 0;
}

void driver_format_pos(const struct driver *d, uint64_t pos, char *buf, size_t len)
{
    d->src.ops->format_pos(pos, buf, len);
}

/* Names the sink that holds the pipeline back: while the event log is full
 * (or the source waited for room since the last look), the sink with the
 * largest backlog, every SLOW_LOG_US.  Source thread (publish and snapshot
 * progress call it). */
static void watch_slow_sink(struct driver *d)
{
    int64_t now = clock_mono_us();
    if (!d->eng || now < d->next_slow_check_us)
        return;
    d->next_slow_check_us = now + SLOW_CHECK_US;
    uint64_t bytes, events, wait_us;
    bool full;
    engine_log_stats(d->eng, &bytes, &events, &full, &wait_us);
    bool waited = wait_us > d->full_wait_us;
    d->full_wait_us = wait_us;
    if (!full && !waited) {
        d->full_since_us = 0;
        return;
    }
    if (!d->full_since_us)
        d->full_since_us = now;
    if (now < d->next_slow_log_us)
        return;
    unsigned n = engine_nsinks(d->eng), worst = n;
    uint64_t worst_backlog = 0, second = 0;
    for (unsigned i = 0; i < n; i++) {
        struct engine_sink_stats st;
        engine_sink_stats(d->eng, i, &st);
        if (st.backlog > worst_backlog) {
            second = worst_backlog;
            worst_backlog = st.backlog;
            worst = i;
        } else if (st.backlog > second) {
            second = st.backlog;
        }
    }
    if (worst == n)
        return;
    struct engine_sink_stats st;
    engine_sink_stats(d->eng, worst, &st);
    d->next_slow_log_us = now + SLOW_LOG_US;
    log_warn("pipeline.slow_sink",
             "sink=%s state=%s backlog_events=%llu others_max_backlog=%llu log_bytes=%llu "
             "held_seconds=%.0f hint=%s",
             st.sink_id, st.state ? st.state : "unknown", (unsigned long long)worst_backlog,
             (unsigned long long)second, (unsigned long long)bytes,
             (double)(now - d->full_since_us) / 1e6,
             log_q(n > 1 && second * 2 > worst_backlog
                       ? "the event log is full: the sinks named are the slowest"
                       : "the event log is full because this sink has not read its share: the "
                         "source waits for it"));
}

/* Copies the figures into the stats others read; logs where memory goes
 * now and then (debug level only). */
static void publish(struct driver *d)
{
    struct source_stats st;
    memset(&st, 0, sizeof st);
    d->src.ops->stats(&d->src, &st);
    size_t pending = 0;
    if (d->em) {
        struct emitter_counts c;
        emitter_counts(d->em, &c);
        st.events = c.events;
        st.transactions = c.transactions;
        st.last_commit_ts = c.last_commit_ts;
        pending = c.pending_bytes;
    }
    st.reconnects = d->reconnects;
    st.connected = d->connected;
    pthread_mutex_lock(&d->mu);
    st.snapshot = d->snap;
    pthread_mutex_unlock(&d->mu);
    bool pause_wanted = d->o && d->o->paused && atomic_load(d->o->paused);
    st.paused = d->paused || (st.snapshot.running && pause_wanted);
    st.snapshot.paused = st.snapshot.running && pause_wanted;
    st.snapshotting = st.snapshotting || d->snapshotting || st.snapshot.running;
    st.lag = st.received > st.confirmed ? st.received - st.confirmed : 0;
    driver_format_pos(d, st.received, st.received_text, sizeof st.received_text);
    driver_format_pos(d, st.confirmed, st.confirmed_text, sizeof st.confirmed_text);
    pthread_mutex_lock(&d->mu);
    d->stats = st;
    pthread_mutex_unlock(&d->mu);
    int64_t now = clock_mono_us();
    d->next_publish_us = now + BUSY_PUBLISH_US;
    watch_slow_sink(d);
    if (log_enabled(LOG_DEBUG) && d->eng && now >= d->next_mem_log_us) {
        d->next_mem_log_us = now + MEM_LOG_US;
        uint64_t live_bytes, live_events, wait_us;
        bool full;
        engine_log_stats(d->eng, &live_bytes, &live_events, &full, &wait_us);
        struct mallinfo2 mi = mallinfo2();
        log_debug("memory",
                  "log_bytes=%llu log_events=%llu heap_in_use=%zu heap_free=%zu "
                  "mmapped=%zu pending=%zu",
                  (unsigned long long)live_bytes, (unsigned long long)live_events, mi.uordblks,
                  mi.fordblks, mi.hblkhd, pending);
    }
}

/* The emitter waits for room: acknowledge what sinks finished and keep the
 * server from giving up on us.  A broken connection shows up at the next
 * poll: the source reconnects once the events are in. */
static void on_wait(void *arg)
{
    struct driver *d = arg;
    if (d->o)
        (void)stop_now(d); /* a stop waiting for the open transaction ends it when due */
    const struct cdc_acks *acks = confirmed_acks(d);
    (void)d->src.ops->ack(&d->src, acks->v, acks->n, false);
    if (d->src.ops->idle)
        d->src.ops->idle(&d->src);
    publish(d);
}

/* A snapshot reported its progress (emitter_progress): published at once,
 * with the source's counters, so /status follows a snapshot, whose reader
 * threads emit while this thread only supervises. */
static void on_progress(void *arg, const struct snap_progress *p)
{
    struct driver *d = arg;
    pthread_mutex_lock(&d->mu);
    d->snap = *p;
    pthread_mutex_unlock(&d->mu);
    publish(d);
}

/* Queues the incremental snapshots the control API asked for (source
 * thread). */
static void serve_snapshot_requests(struct driver *d)
{
    pthread_mutex_lock(&d->mu);
    char **tables = d->req;
    size_t n = d->nreq;
    d->req = NULL;
    d->nreq = 0;
    pthread_mutex_unlock(&d->mu);
    if (!n)
        return;
    char e[512] = "";
    if (d->src.ops->queue_snapshot(&d->src, tables, n, e, sizeof e) != 0)
        log_error("snapshot.request_failed", "via=http error=%s", log_q(e));
    for (size_t i = 0; i < n; i++)
        free(tables[i]);
    free(tables);
}

int driver_queue_snapshot(struct driver *d, char *const *tables, size_t n, char *err, size_t errlen)
{
    if (!d->src.ops->queue_snapshot)
        return cdc_fail(err, errlen, CDC_ENOTSUP, "source type %s has no incremental snapshots",
                        d->src.ops->name);
    pthread_mutex_lock(&d->mu);
    d->req = xrealloc(d->req, (d->nreq + n) * sizeof *d->req);
    for (size_t i = 0; i < n; i++)
        d->req[d->nreq++] = xstrdup(tables[i]);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

void driver_sink_lag(struct driver *d, uint64_t done_seq, int64_t now_us, struct emitter_lag *lag)
{
    *lag = (struct emitter_lag){0, 0, 0};
    pthread_mutex_lock(&d->mu);
    struct emitter *em = d->em;
    pthread_mutex_unlock(&d->mu);
    if (em)
        emitter_lag(em, done_seq, now_us, lag);
}

/* Waits out a reconnect backoff; false if a stop was requested. */
static bool backoff_wait(struct driver *d, int64_t us)
{
    if (d->o->backoff_hook) {
        d->o->backoff_hook(d->o->backoff_arg, us);
        return !stop_requested(d);
    }
    for (int64_t t = 0; t < us && !stop_requested(d); t += BACKOFF_SLICE_US)
        clock_sleep_us(BACKOFF_SLICE_US);
    return !stop_requested(d);
}

int driver_new(struct driver **out, const struct source_ops *ops, const struct config *cfg,
               struct store *store, char *err, size_t errlen)
{
    *out = NULL;
    struct driver *d = xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->src = (struct source){.ops = ops, .cfg = cfg, .store = store};
    if (store)
        d->schema = schemahist_new(store, cfg->platform.stop_on_incompatible_schema);
    int rc = ops->open(&d->src, err, errlen);
    if (rc) {
        driver_free(d);
        return rc;
    }
    publish(d);
    *out = d;
    return 0;
}

int driver_prepare(struct driver *d, const struct cdc_posmap *held, char *err, size_t errlen)
{
    cdc_acks_clear(&d->start);
    return d->src.ops->prepare(&d->src, held, &d->start, err, errlen);
}

const struct cdc_acks *driver_start(const struct driver *d)
{
    return &d->start;
}

/* Serves a sink's rewind request: a REWIND marker after everything
 * emitted, the stream ended; the caller starts it again from *from. */
static int serve_rewind(struct driver *d, uint32_t gen, struct cdc_acks *from)
{
    int rc = emitter_rewind(d->em, gen, from);
    if (rc)
        return rc;
    d->src.ops->disconnect(&d->src, true);
    d->connected = false;
    char text[SOURCE_POS_TEXT_MAX];
    const struct cdc_ack *s0 = cdc_acks_get(from, 0);
    driver_format_pos(d, s0 ? s0->pos : 0, text, sizeof text);
    log_info("source.rewind", "generation=%u from=%s streams=%zu", gen, text, from->n);
    return 0;
}

/* The connection was lost: resume after the newest transaction already in
 * the log (sinks skip whatever part of a transaction they already have). */
static int lost(struct driver *d, const char *why, struct cdc_acks *from)
{
    if (emitter_flush(d->em) == CDC_ESTOP)
        return CDC_ESTOP;
    log_warn("source.connection_lost", "error=%s", log_q(why));
    d->src.ops->disconnect(&d->src, false);
    d->connected = false;
    emitter_forget_txn(d->em);
    /* Per stream: the newer of what is in the log and what is confirmed. */
    cdc_acks_copy(from, confirmed_acks(d));
    const struct cdc_acks *last = emitter_last_ends(d->em);
    for (size_t i = 0; i < last->n; i++)
        cdc_acks_raise(from, last->v[i].stream, last->v[i].pos);
    d->reconnects++;
    return 0;
}

/* Streams until a stop or a fatal error (see driver.h). */
static int stream(struct driver *d, char *err, size_t errlen)
{
    const struct source_ops *ops = d->src.ops;
    const struct driver_opts *o = d->o;
    int64_t min_us = o->backoff_min_us > 0 ? o->backoff_min_us : BACKOFF_MIN_US;
    int64_t max_us = o->backoff_max_us > 0 ? o->backoff_max_us : BACKOFF_MAX_US;
    struct cdc_acks from = {0};
    cdc_acks_copy(&from, &d->start);
    emitter_set_last_ends(d->em, d->start.v, d->start.n);
    emitter_set_stop(d->em, &d->stop_now);
    int64_t backoff_us = 0;
    char e[1024];
    int rc = 0;
    while (!stop_now(d)) {
        if (!d->connected) {
            if (backoff_us && !backoff_wait(d, backoff_us))
                break;
            e[0] = '\0';
            rc = ops->start(&d->src, from.v, from.n, e, sizeof e);
            if (rc == CDC_ECONN && d->started) {
                backoff_us = backoff_us ? backoff_us * 2 : min_us;
                if (backoff_us > max_us)
                    backoff_us = max_us;
                d->reconnects++;
                log_warn("source.reconnect", "in_seconds=%.1f error=%s", backoff_us / 1e6,
                         log_q(e));
                publish(d);
                rc = 0; /* not an error unless a stop ends the wait */
                continue;
            }
            if (rc) {
                /* The first start fails fast: a misconfiguration (no
                 * permission, a slot in use) will not heal. */
                cdc_fail(err, errlen, rc, rc == CDC_EIO ? "%s" : "source: %s", e);
                break;
            }
            backoff_us = 0;
            d->connected = d->started = true;
        }
        uint32_t gen;
        if (emitter_rewind_wanted(d->em, &gen)) {
            if ((rc = serve_rewind(d, gen, &from)) != 0)
                break;
            continue;
        }
        serve_snapshot_requests(d);
        const struct cdc_acks *acks = confirmed_acks(d);
        if (stop_reached(o, acks)) {
            char text[SOURCE_POS_TEXT_MAX];
            driver_format_pos(d, o->stop_at[0].pos, text, sizeof text);
            log_info("source.stop_lsn_reached", "lsn=%s", text);
            break;
        }
        /* Read up to the stop: what is left is the sinks' to make durable,
         * now rather than at their next flush interval. */
        if (!d->draining && stop_reached(o, emitter_reached(d->em)) && emitter_flush(d->em) == 0) {
            d->draining = true;
            engine_drain(d->eng);
        }
        if (o->paused && atomic_load(o->paused)) {
            /* Paused: read nothing, but keep acknowledging what sinks
             * finish and keep the server from timing us out. */
            rc = emitter_flush(d->em);
            if (!rc)
                (void)ops->ack(&d->src, acks->v, acks->n, false);
            d->paused = true;
            publish(d);
            if (rc)
                break;
            clock_sleep_us(PAUSE_SLEEP_US);
            continue;
        }
        d->paused = false;
        (void)ops->ack(&d->src, acks->v, acks->n, false);
        e[0] = '\0';
        rc = ops->poll(&d->src, d->em, POLL_WAIT_MS, e, sizeof e);
        if (rc >= 0) {
            if (rc == 0 || clock_mono_us() >= d->next_publish_us)
                publish(d);
            rc = 0;
            continue;
        }
        if (rc == CDC_ECONN || rc == CDC_EIO) {
            if ((rc = lost(d, e, &from)) != 0)
                break;
            backoff_us = min_us;
            continue;
        }
        if (rc != CDC_ESTOP)
            cdc_fail(err, errlen, rc, "source: %s", e);
        break;
    }
    cdc_acks_fini(&from);
    if (rc == CDC_ESTOP)
        rc = 0; /* a stop requested while waiting for room */
    if (rc == 0)
        (void)emitter_flush(d->em); /* CDC_ESTOP: the rest is never confirmed */
    return rc;
}

int driver_run(struct driver *d, struct engine *eng, const struct driver_opts *o, char *err,
               size_t errlen)
{
    d->eng = eng;
    d->o = o;
    struct emitter_cfg ec = {.eng = eng,
                             .stop = o->stop,
                             .paused = o->paused,
                             .wait_hook = on_wait,
                             .progress_hook = on_progress,
                             .wait_arg = d,
                             .schema = d->schema};
    struct emitter *em = emitter_new(&ec);
    pthread_mutex_lock(&d->mu);
    d->em = em;
    pthread_mutex_unlock(&d->mu);
    int rc = 0;
    if (d->src.ops->snapshot) {
        d->snapshotting = true;
        publish(d);
        rc = d->src.ops->snapshot(&d->src, d->em, err, errlen);
        d->snapshotting = false;
        pthread_mutex_lock(&d->mu);
        d->snap.running = false;
        pthread_mutex_unlock(&d->mu);
        if (rc == CDC_ESTOP || rc == SOURCE_SNAPSHOT_ONLY)
            rc = 0;
        else if (rc == 0)
            rc = stream(d, err, errlen);
    } else {
        rc = stream(d, err, errlen);
    }
    /* The emitter stopped the pipeline (a schema change refused): an
     * error, whatever the source made of the stop. */
    char e[1024];
    if (emitter_failed(d->em, e, sizeof e))
        rc = cdc_fail(err, errlen, CDC_EINVAL, "%s", e);
    publish(d);
    return rc;
}

void driver_finish(struct driver *d)
{
    if (!d->eng)
        return;
    const struct cdc_acks *acks = confirmed_acks(d);
    d->src.ops->finish(&d->src, acks->v, acks->n);
    d->connected = false;
    publish(d);
}

void driver_abandon(struct driver *d)
{
    if (d && d->src.ops->abandon)
        d->src.ops->abandon(&d->src);
}

void driver_stats(struct driver *d, struct source_stats *st)
{
    pthread_mutex_lock(&d->mu);
    *st = d->stats;
    if (d->em) {
        /* The counters live: what was published may be older than what
         * sinks already delivered (a snapshot's readers emit on their own
         * threads), and a source that counts less than its sinks confuses. */
        struct emitter_counts c;
        emitter_counts(d->em, &c);
        st->events = c.events;
        st->transactions = c.transactions;
        st->last_commit_ts = c.last_commit_ts;
    }
    pthread_mutex_unlock(&d->mu);
}

void driver_free(struct driver *d)
{
    if (!d)
        return;
    d->src.ops->close(&d->src);
    emitter_free(d->em);
    schemahist_free(d->schema);
    for (size_t i = 0; i < d->nreq; i++)
        free(d->req[i]);
    free(d->req);
    cdc_acks_fini(&d->start);
    cdc_acks_fini(&d->acks);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
