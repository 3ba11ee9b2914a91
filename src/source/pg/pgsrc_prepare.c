/* PostgreSQL source: what happens before streaming: server and table
 * checks, the publication, the slot, the initial snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/pgslot.h"
#include "source/pg/pgsrc_int.h"
#include "source/pg/snapshot.h"
#include "state/store.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* Creates the slot; with export, keeps the connection that exported the
 * snapshot open for the snapshot readers. */
static int create_slot(struct pgsrc *src, bool export_snapshot, char *err, size_t errlen)
{
    struct pgconn_params rp;
    pgslot_params(src->cfg, true, &rp);
    PGconn *repl = pgconn_connect(&rp, err, errlen);
    if (!repl)
        return CDC_ECONN;
    int rc = pgslot_create(repl, src->cfg, export_snapshot, &src->start_lsn,
                           export_snapshot ? &src->snap_name : NULL, err, errlen);
    if (rc || !export_snapshot)
        PQfinish(repl);
    else
        src->snap_exporter = repl;
    if (!rc)
        log_info("source.slot_created", "slot=%s lsn=%X/%X snapshot=%s", src->cfg->source.slot_name,
                 (unsigned)(src->start_lsn >> 32), (unsigned)src->start_lsn,
                 src->snap_name ? src->snap_name : "none");
    return rc;
}

static int drop_slot(struct pgsrc *src, char *err, size_t errlen)
{
    const char *params[1] = {src->cfg->source.slot_name};
    char e[512];
    PGresult *res =
        pgconn_exec(src->conn, e, sizeof e, "SELECT pg_drop_replication_slot($1)", 1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ERR, "source: cannot drop slot %s: %s",
                        src->cfg->source.slot_name, e);
    PQclear(res);
    return 0;
}

/* Decides, from the slot and the recorded snapshot state, whether an initial
 * snapshot must run before streaming, and prepares it:
 *   recorded as running  -> resume it (no exported snapshot: see snapshot.h);
 *   never taken          -> create the slot exporting a snapshot (an existing
 *                           slot nobody snapshotted for is recreated, so the
 *                           snapshot and the stream meet exactly);
 *   when_needed          -> only when the slot is missing or lost. */
static int prepare_snapshot(struct pgsrc *src, const struct pgslot_info *info, char *err,
                            size_t errlen)
{
    const struct config *cfg = src->cfg;
    enum snapshot_mode mode = cfg->source.snapshot_mode;
    char *state = NULL;
    int rc = store_kv_get(src->store, SNAP_KEY_INITIAL, &state, err, errlen);
    if (rc)
        return rc;
    bool running = state && strncmp(state, "running ", 8) == 0;
    bool done = state && strncmp(state, "done ", 5) == 0;
    bool slot_ok = info->exists && !info->lost;
    bool want = false;
    switch (mode) {
    case SNAPSHOT_NEVER:
    case SNAPSHOT_NO_DATA:
        break;
    case SNAPSHOT_INITIAL:
    case SNAPSHOT_INITIAL_ONLY:
        want = !done || !slot_ok;
        break;
    case SNAPSHOT_WHEN_NEEDED:
        want = running || !slot_ok;
        break;
    }
    if (running && slot_ok && want) {
        char id[64];
        unsigned long long lsn = 0;
        if (sscanf(state + 8, "%63s %llu", id, &lsn) == 2) {
            src->snap_id = xstrdup(id);
            src->start_lsn = lsn;
            free(state);
            log_info("source.snapshot_resume", "id=%s", src->snap_id);
            return 0;
        }
    }
    free(state);
    if (info->exists && (want || info->lost)) {
        log_info("source.slot_recreate", "slot=%s reason=%s", cfg->source.slot_name,
                 info->lost ? "lost" : "no snapshot was taken for it");
        if ((rc = drop_slot(src, err, errlen)))
            return rc;
    }
    if (!info->exists || want || info->lost) {
        if ((rc = create_slot(src, want, err, errlen)))
            return rc;
    } else {
        src->start_lsn = info->confirmed_flush;
    }
    if (mode == SNAPSHOT_NO_DATA) {
        /* Schema only: every table counts as snapshotted, now and when added
         * later, so switching to another mode does not read old rows. */
        for (size_t i = 0; i < cfg->source.ntables && !rc; i++) {
            char *key = xasprintf("%s%s", SNAP_KEY_TABLE, cfg->source.tables[i]);
            rc = store_kv_put(src->store, key, "no_data", err, errlen);
            free(key);
        }
        if (rc || done)
            return rc;
        char v[64];
        snprintf(v, sizeof v, "done none %llu", (unsigned long long)src->start_lsn);
        return store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
    }
    if (!want)
        return 0;
    char v[96];
    src->snap_id = xasprintf("%X_%X", (unsigned)(src->start_lsn >> 32), (unsigned)src->start_lsn);
    snprintf(v, sizeof v, "running %s %llu", src->snap_id, (unsigned long long)src->start_lsn);
    return store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
}

/* Tables added to source.tables after the initial snapshot get an
 * incremental one, when the snapshot mode asks for snapshots. */
static int queue_new_tables(struct pgsrc *src, char *err, size_t errlen)
{
    enum snapshot_mode mode = src->cfg->source.snapshot_mode;
    if (src->snap_id || (mode != SNAPSHOT_INITIAL && mode != SNAPSHOT_WHEN_NEEDED))
        return 0;
    for (size_t i = 0; i < src->cfg->source.ntables; i++) {
        char *key = xasprintf("%s%s", SNAP_KEY_TABLE, src->cfg->source.tables[i]);
        char *v = NULL;
        int rc = store_kv_get(src->store, key, &v, err, errlen);
        free(key);
        if (rc)
            return rc;
        if (!v)
            rc = isnap_request(src->isnap, &src->cfg->source.tables[i], 1, err, errlen);
        free(v);
        if (rc)
            return rc;
    }
    return 0;
}

int pgsrc_open(struct pgsrc **out, const struct config *cfg, struct store *store, char *err,
               size_t errlen)
{
    *out = NULL;
    struct pgsrc *src = xcalloc(1, sizeof *src);
    pthread_mutex_init(&src->mu, NULL);
    pthread_mutex_init(&src->emit_mu, NULL);
    src->cfg = cfg;
    src->store = store;
    src->pend = xmalloc(PUSH_BATCH * sizeof *src->pend);
    int rc;
    struct pgconn_params p;
    pgslot_params(cfg, false, &p);
    src->conn = pgconn_connect(&p, err, errlen);
    if (!src->conn) {
        rc = CDC_ECONN;
        goto fail;
    }
    if ((rc = pgslot_check_server(src->conn, err, errlen)) ||
        (rc = pgslot_check_tables(src->conn, cfg, err, errlen)))
        goto fail;
    /* The signal table carries snapshot requests and watermarks through the
     * stream; without it (no permission) incremental snapshots are off. */
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : ISNAP_DEFAULT_SIGNAL_TABLE;
    char *sig_schema = NULL, *sig_name = NULL;
    bool have_signal =
        config_split_table(sig, &sig_schema, &sig_name) == 0 &&
        pgslot_ensure_signal_table(src->conn, sig_schema, sig_name, err, errlen) == 0;
    free(sig_schema);
    free(sig_name);
    if (!have_signal)
        log_warn("source.no_signal_table", "table=%s error=%s hint=%s", log_q(sig), log_q(err),
                 log_q("incremental snapshots are unavailable"));
    const char *action;
    if ((rc = pgslot_ensure_publication(src->conn, cfg, have_signal ? sig : NULL, &action, err,
                                        errlen)))
        goto fail;
    if (strcmp(action, "unchanged") != 0)
        log_info("source.publication", "name=%s action=%s", cfg->source.publication_name, action);
    struct pgslot_info info;
    if ((rc = pgslot_get(src->conn, cfg, &info, err, errlen)))
        goto fail;
    if ((rc = prepare_snapshot(src, &info, err, errlen)))
        goto fail;
    src->rels = relcache_new(cfg);
    if (have_signal) {
        if ((rc = isnap_open(&src->isnap, cfg, store, src->rels, err, errlen)))
            goto fail;
        if ((rc = queue_new_tables(src, err, errlen)))
            goto fail;
    }
    char *dir = xasprintf("%s/%s/spill", cfg->platform.state_dir, cfg->pipeline_id);
    rc = spill_new(&src->spill, dir, err, errlen);
    free(dir);
    if (rc)
        goto fail;
    src->last_commit_end = src->start_lsn;
    src->write_lsn = src->start_lsn;
    *out = src;
    return 0;
fail:
    pgsrc_close(src);
    return rc;
}

/* Snapshot readers push through here: one at a time, with seqs from the same
 * counter the stream uses. */
static int snap_emit(void *arg, struct cdc_event **evs, size_t n, uint64_t *last_seq)
{
    struct pgsrc *src = arg;
    pthread_mutex_lock(&src->emit_mu);
    for (size_t i = 0; i < n; i++) {
        evs[i]->seq = ++src->next_seq;
        engine_route(src->eng, evs[i]);
    }
    src->n_events += n;
    *last_seq = evs[n - 1]->seq;
    int rc = pgsrc_push_events(src, evs, n, false);
    pthread_mutex_unlock(&src->emit_mu);
    return rc;
}

/* Runs (or finishes) the initial snapshot before streaming starts. */
int pgsrc_run_snapshot(struct pgsrc *src, char *err, size_t errlen)
{
    const struct config *cfg = src->cfg;
    struct snap_ctx ctx = {
        .cfg = cfg,
        .eng = src->eng,
        .store = src->store,
        .rels = src->rels,
        .snapshot_name = src->snap_name,
        .lsn = src->start_lsn,
        .stop = src->opts->stop,
        .emit = snap_emit,
        .emit_arg = src,
    };
    int rc = snap_initial(&ctx, src->snap_id, cfg->source.tables, cfg->source.ntables, err, errlen);
    /* The readers have imported the snapshot (or failed): the exporting
     * connection may go. */
    if (src->snap_exporter) {
        PQfinish(src->snap_exporter);
        src->snap_exporter = NULL;
    }
    if (rc)
        return rc;
    char v[96];
    snprintf(v, sizeof v, "done %s %llu", src->snap_id, (unsigned long long)src->start_lsn);
    rc = store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
    return rc ? rc : pgsrc_load_folds(src, src->snap_id, err, errlen);
}
