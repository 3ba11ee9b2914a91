/* Table maintenance for the iceberg sink: compaction and snapshot expiry,
 * in a background thread of the sink (maintenance.enabled) and once for
 * `cdc lakehouse maintain`.
 *
 * The thread has its own storage and catalog handles and loads each table
 * afresh for every pass, so it commits beside the sink like any other
 * writer: the sink's commits and its own are optimistic and retried over
 * each other (ice_commit.c, ice_compact.c).  Compaction's replace snapshot
 * carries the cdc.position of the snapshot it commits on, so what a table
 * holds survives compaction and, the current snapshot being always kept,
 * expiry.  Orphan files are removed only where no commit of this pipeline
 * can be in progress: when the sink opens, and by `cdc lakehouse maintain`
 * (which holds the pipeline lock). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_maint.h"
#include "sink/iceberg/icesink.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define EXPIRE_TRIES 5

struct icemaint {
    const struct iceberg_sink_cfg *ic; /* borrowed from the config */
    char *sink_id;
    struct lake_store *store;
    struct ice_catalog *cat;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;    /* guarded by mu */
    char **names; /* guarded by mu */
    size_t n;
};

static bool stopping(void *arg)
{
    struct icemaint *m = arg;
    pthread_mutex_lock(&m->mu);
    bool s = m->stop;
    pthread_mutex_unlock(&m->mu);
    return s;
}

int iceberg_maintain(struct ice_catalog *cat, const struct iceberg_sink_cfg *ic, const char *name,
                     unsigned what, struct iceberg_maint_report *rep, bool (*stop)(void *),
                     void *stop_arg, char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    rep->compact.snapshot_id = -1;
    struct ice_table *t;
    int rc = ice_table_load(cat, ic->table_namespace, name, &t, err, errlen);
    if (rc == LAKE_STORE_ABSENT)
        return 0;
    if (rc)
        return rc;
    const struct iceberg_maint_cfg *mc = &ic->maintenance;
    if (what & ICEBERG_MAINT_COMPACT) {
        const char *carry[] = {ICEPOS_PROP};
        struct ice_compact_opts o = {
            .min_files = (size_t)mc->compaction_file_threshold,
            .target_bytes = (int64_t)mc->target_file_size_mb << 20,
            .max_rows = mc->compaction_max_rows_per_batch,
            .codec = iceberg_codec(ic),
            .carry = carry,
            .ncarry = 1,
            .stop = stop,
            .stop_arg = stop_arg,
        };
        rc = ice_table_compact(t, &o, &rep->compact, err, errlen);
        if (rc == CDC_EAGAIN || rc == CDC_ESTOP) /* try again next time */
            rc = 0;
    }
    if (rc == 0 && (what & ICEBERG_MAINT_EXPIRE)) {
        int64_t older = ice_now_ms() - (int64_t)(mc->expire_snapshots_older_than_seconds * 1000);
        for (int attempt = 0; attempt < EXPIRE_TRIES; attempt++) {
            rc = ice_table_expire(t, older, mc->min_snapshots_to_keep, &rep->expire, err, errlen);
            if (rc != CDC_EAGAIN)
                break;
            if ((rc = ice_table_refresh(t, err, errlen)) != 0)
                break;
            rc = CDC_EAGAIN;
        }
        if (rc == CDC_EAGAIN)
            rc = 0;
    }
    if (rc == 0 && (what & ICEBERG_MAINT_ORPHANS)) {
        int64_t older = ice_now_ms() - (int64_t)(mc->orphan_file_grace_seconds * 1000);
        rc = ice_table_clean_orphans(t, older, &rep->orphans, err, errlen);
    }
    ice_table_free(t);
    return rc;
}

/* One pass of `what` over every table the sink writes. */
static void pass(struct icemaint *m, unsigned what)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    char **names = xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = xstrdup(m->names[i]);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n && !stopping(m); i++) {
        struct iceberg_maint_report rep;
        char err[512];
        int rc =
            iceberg_maintain(m->cat, m->ic, names[i], what, &rep, stopping, m, err, sizeof err);
        if (rc)
            log_warn("sink.iceberg.maintenance_failed", "sink=%s table=%s.%s error=%s", m->sink_id,
                     m->ic->table_namespace, names[i], log_q(err));
        if (rep.compact.snapshot_id >= 0)
            log_info("sink.iceberg.compacted",
                     "sink=%s table=%s.%s files=%zu delete_files=%zu new_files=%zu rows=%lld",
                     m->sink_id, m->ic->table_namespace, names[i], rep.compact.data_files,
                     rep.compact.delete_files, rep.compact.new_files, (long long)rep.compact.rows);
        if (rep.expire.snapshots)
            log_info("sink.iceberg.expired",
                     "sink=%s table=%s.%s snapshots=%zu manifest_lists=%zu manifests=%zu "
                     "files=%zu",
                     m->sink_id, m->ic->table_namespace, names[i], rep.expire.snapshots,
                     rep.expire.manifest_lists, rep.expire.manifests, rep.expire.files);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void *run(void *arg)
{
    struct icemaint *m = arg;
    const struct iceberg_maint_cfg *mc = &m->ic->maintenance;
    int64_t now = clock_mono_us();
    int64_t next_compact = now + (int64_t)(mc->compaction_interval_seconds * 1e6);
    int64_t next_expire = now + (int64_t)(mc->expire_snapshots_interval_seconds * 1e6);
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        int64_t due = next_compact < next_expire ? next_compact : next_expire;
        now = clock_mono_us();
        if (due > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (due - now) * 1000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&m->mu);
        unsigned what = 0;
        if (now >= next_compact) {
            what |= ICEBERG_MAINT_COMPACT;
            next_compact = now + (int64_t)(mc->compaction_interval_seconds * 1e6);
        }
        if (now >= next_expire) {
            what |= ICEBERG_MAINT_EXPIRE;
            next_expire = now + (int64_t)(mc->expire_snapshots_interval_seconds * 1e6);
        }
        pass(m, what);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int icemaint_start(struct sink *sk, struct icemaint **out)
{
    *out = NULL;
    struct icemaint *m = xcalloc(1, sizeof *m);
    m->ic = icesink_conf(sk);
    m->sink_id = xstrdup(sk->cfg->sink_id);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    char err[512];
    int rc = iceberg_open_catalog(m->ic, &m->store, &m->cat, err, sizeof err);
    if (rc) {
        icemaint_stop(m);
        return icesink_lake_error(sk, rc, "maintenance catalog", err);
    }
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        icemaint_stop(m);
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot start the maintenance thread");
    }
    m->started = true;
    *out = m;
    return 0;
}

void icemaint_add(struct icemaint *m, const char *name)
{
    pthread_mutex_lock(&m->mu);
    m->names = xrealloc(m->names, (m->n + 1) * sizeof *m->names);
    m->names[m->n++] = xstrdup(name);
    pthread_mutex_unlock(&m->mu);
}

void icemaint_stop(struct icemaint *m)
{
    if (!m)
        return;
    if (m->started) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    ice_catalog_free(m->cat);
    lake_store_free(m->store);
    for (size_t i = 0; i < m->n; i++)
        free(m->names[i]);
    free(m->names);
    free(m->sink_id);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}
