/* PostgreSQL source: what happens before streaming: server and table
 * checks, the publication, the slot, the initial snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/pgslot.h"
#include "source/pg/pgsrc_int.h"
#include "source/pg/pubrel.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define KEY_STREAMED  "source.streamed"  /* "<slot> <LSN>" the last run started streaming from */
#define KEY_PUBLISHED "source.published" /* the tables published then, one a line */

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

/* What the recorded snapshot state and the slot say about an initial
 * snapshot. */
struct snap_plan {
    char *state; /* SNAP_KEY_INITIAL's value (owned), or NULL */
    bool running, done;
    bool want; /* an initial snapshot runs (or resumes) before streaming */
};

/* Decides, from the slot and the recorded snapshot state, whether an initial
 * snapshot must run before streaming (see prepare_snapshot). */
static int plan_snapshot(struct pgsrc *src, const struct pgslot_info *info, struct snap_plan *pl,
                         char *err, size_t errlen)
{
    memset(pl, 0, sizeof *pl);
    int rc = store_kv_get(src->store, SNAP_KEY_INITIAL, &pl->state, err, errlen);
    if (rc)
        return rc;
    pl->running = pl->state && strncmp(pl->state, "running ", 8) == 0;
    pl->done = pl->state && strncmp(pl->state, "done ", 5) == 0;
    bool slot_ok = info->exists && !info->lost;
    switch (src->cfg->source.snapshot_mode) {
    case SNAPSHOT_NEVER:
    case SNAPSHOT_NO_DATA:
        break;
    case SNAPSHOT_INITIAL:
    case SNAPSHOT_INITIAL_ONLY:
        pl->want = !pl->done || !slot_ok;
        break;
    case SNAPSHOT_WHEN_NEEDED:
        pl->want = pl->running || !slot_ok;
        break;
    }
    return 0;
}

/* Prepares the initial snapshot plan_snapshot decided on:
 *   recorded as running  -> resume it (no exported snapshot: see pgsnap.h);
 *   never taken          -> create the slot exporting a snapshot (an existing
 *                           slot nobody snapshotted for is recreated, so the
 *                           snapshot and the stream meet exactly);
 *   when_needed          -> only when the slot is missing or lost. */
static int prepare_snapshot(struct pgsrc *src, const struct pgslot_info *info,
                            const struct snap_plan *pl, char *err, size_t errlen)
{
    const struct config *cfg = src->cfg;
    enum snapshot_mode mode = cfg->source.snapshot_mode;
    bool slot_ok = info->exists && !info->lost;
    bool want = pl->want;
    int rc;
    if (pl->running && slot_ok && want) {
        char id[64];
        unsigned long long lsn = 0;
        if (sscanf(pl->state + 8, "%63s %llu", id, &lsn) == 2) {
            src->snap_id = xstrdup(id);
            src->start_lsn = lsn;
            log_info("source.snapshot_resume", "id=%s", src->snap_id);
            return 0;
        }
    }
    if (info->exists && (want || info->lost)) {
        log_info("source.slot_recreate", "slot=%s reason=%s", cfg->source.slot_name,
                 info->lost ? "lost" : "no snapshot was taken for it");
        if ((rc = drop_slot(src, err, errlen)))
            return rc;
    }
    if (!info->exists || want || info->lost) {
        if ((rc = create_slot(src, want, err, errlen)))
            return rc;
        src->created_slot = true;
    } else {
        src->start_lsn = info->confirmed_flush;
    }
    if (mode == SNAPSHOT_NO_DATA) {
        /* Schema only: every table counts as snapshotted, now and when added
         * later, so switching to another mode does not read old rows. */
        rc = 0;
        for (size_t i = 0; i < cfg->source.ntables && !rc; i++) {
            char *key = xasprintf("%s%s", SNAP_KEY_TABLE, cfg->source.tables[i]);
            rc = store_kv_put(src->store, key, "no_data", err, errlen);
            free(key);
        }
        if (rc || pl->done)
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

/* ---------- changed by someone else ---------- */

/* The slot is missing (or lost its WAL) although this pipeline streamed from
 * it before: a new slot would start after the changes made meanwhile. */
static int slot_gone(struct pgsrc *src, const struct pgslot_info *info, const char *streamed,
                     struct cdc_pos held, char *err, size_t errlen)
{
    char pos[CDC_POS_TEXT_MAX];
    return cdc_fail(
        err, errlen, CDC_EINVAL,
        "source: replication slot %s %s, but this pipeline has streamed before (%s%s%s; the "
        "sinks hold changes up to %s): the changes made since it last confirmed are gone from "
        "the stream and a new slot would start after them.  cdc stops rather than skip them.  "
        "To read the tables again, set source.snapshot_mode to when_needed; to accept the gap, "
        "run cdc undeploy --yes and cdc deploy, then start again",
        src->cfg->source.slot_name,
        info->exists ? "lost the WAL it needed (wal_status lost)" : "does not exist",
        streamed ? "last started from slot " : "", streamed ? streamed : "",
        streamed ? "" : "no record in the state store", cdc_pos_format(held, pos, sizeof pos));
}

/* A table this pipeline's publication published when it last streamed, and
 * does not now: its changes since then are not in the stream. */
static int check_still_published(struct pgsrc *src, const struct pgslot_pub *pub,
                                 const char *published, char *err, size_t errlen)
{
    if (pub->exists && pub->all_tables)
        return 0;
    const struct source_cfg *sc = &src->cfg->source;
    bool *unpub = xcalloc(sc->ntables ? sc->ntables : 1, sizeof *unpub);
    char *missing = NULL;
    int rc = 0;
    if (pub->exists &&
        (rc = pubrel_unpublished(src->conn, src->cfg, unpub, &missing, err, errlen))) {
        free(unpub);
        return rc;
    }
    free(missing);
    /* The configured tables recorded as published and not published now
     * (all of them when the publication is gone). */
    struct buf gone = BUF_INIT;
    for (size_t i = 0; i < sc->ntables; i++) {
        if (pub->exists && !unpub[i])
            continue;
        bool recorded = false;
        char *list = xstrdup(published), *save = NULL;
        for (char *t = strtok_r(list, "\n", &save); t && !recorded; t = strtok_r(NULL, "\n", &save))
            recorded = strcmp(sc->tables[i], t) == 0;
        free(list);
        if (recorded)
            buf_printf(&gone, "%s%s", gone.len ? ", " : "", sc->tables[i]);
    }
    free(unpub);
    if (gone.len)
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "source: publication %s %s %s, which it published when this pipeline last "
                      "streamed: changes made since then are not in the replication stream.  cdc "
                      "stops rather than miss them.  Publish them again (cdc deploy), then read "
                      "them again (cdc snapshot --table …), or remove them from source.tables",
                      src->cfg->source.publication_name,
                      pub->exists ? "no longer publishes" : "was dropped; it published", gone.p);
    buf_fini(&gone);
    return rc;
}

int pgsrc_check_source(struct pgsrc *src, bool slot_too)
{
    if (pgsrc_ensure_sql_conn(src) != 0)
        return CDC_ECONN;
    const struct config *cfg = src->cfg;
    char e[512];
    if (slot_too) {
        struct pgslot_info info;
        if (pgslot_get(src->conn, cfg, &info, e, sizeof e) != 0)
            return cdc_fail(src->err, sizeof src->err, CDC_ECONN, "%s", e);
        if (!info.exists || info.lost)
            return cdc_fail(
                src->err, sizeof src->err, CDC_EINVAL,
                "replication slot %s %s while the pipeline ran: the changes it held are gone from "
                "the stream.  cdc stops rather than skip them.  With source.snapshot_mode "
                "when_needed the next start reads the tables again; to accept the gap, run cdc "
                "undeploy --yes and cdc deploy",
                cfg->source.slot_name, info.exists ? "lost the WAL it needed" : "was dropped");
    }
    struct pgslot_pub pub;
    if (pgslot_get_publication(src->conn, cfg->source.publication_name, &pub, e, sizeof e) != 0)
        return cdc_fail(src->err, sizeof src->err, CDC_ECONN, "%s", e);
    const char *hint = "cdc stops rather than miss changes.  Restore it (cdc deploy), then read "
                       "the affected tables again (cdc snapshot --table …)";
    if (!pub.exists)
        return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                        "publication %s was dropped while the pipeline ran: changes of its tables "
                        "are no longer in the replication stream.  %s",
                        cfg->source.publication_name, hint);
    for (const char *a = src->pub_actions; *a; a++)
        if (!strchr(pub.actions, *a))
            return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                            "publication %s no longer publishes %s (publish = '%s' was changed "
                            "while the pipeline ran): those changes are no longer in the "
                            "replication stream.  %s",
                            cfg->source.publication_name,
                            *a == 'i'   ? "inserts"
                            : *a == 'u' ? "updates"
                            : *a == 'd' ? "deletes"
                                        : "truncates",
                            pub.actions, hint);
    if (pub.all_tables)
        return 0;
    char *missing = NULL;
    if (pubrel_unpublished(src->conn, cfg, NULL, &missing, e, sizeof e) != 0)
        return cdc_fail(src->err, sizeof src->err, CDC_ECONN, "%s", e);
    int rc = 0;
    if (missing && *missing)
        rc = cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                      "publication %s no longer publishes %s (it was altered while the pipeline "
                      "ran): changes of %s are no longer in the replication stream.  %s",
                      cfg->source.publication_name, missing, missing, hint);
    free(missing);
    return rc;
}

/* Remembers, once streaming has started, that this pipeline streamed from
 * its slot and which tables its publication published: a later start tells
 * from that a slot dropped or a table unpublished by someone else. */
int pgsrc_record_history(struct pgsrc *src, uint64_t from)
{
    char e[256];
    char *v =
        xasprintf("%s %X/%X", src->cfg->source.slot_name, (unsigned)(from >> 32), (unsigned)from);
    int rc = store_kv_put(src->store, KEY_STREAMED, v, e, sizeof e);
    free(v);
    struct buf list = BUF_INIT;
    for (size_t i = 0; i < src->cfg->source.ntables; i++)
        buf_printf(&list, "%s\n", src->cfg->source.tables[i]);
    if (!rc)
        rc = store_kv_put(src->store, KEY_PUBLISHED, list.p ? list.p : "", e, sizeof e);
    buf_fini(&list);
    if (rc)
        snprintf(src->err, sizeof src->err, "%s", e);
    return rc;
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
    src->cfg = cfg;
    src->store = store;
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
    *out = src;
    return 0;
fail:
    pgsrc_close(src);
    return rc;
}

int pgsrc_prepare(struct pgsrc *src, struct cdc_pos held, char *err, size_t errlen)
{
    const struct config *cfg = src->cfg;
    struct pgslot_info info;
    struct pgslot_pub pub;
    struct snap_plan plan = {0};
    char *streamed = NULL, *published = NULL;
    int rc;
    if ((rc = pgslot_get(src->conn, cfg, &info, err, errlen)) ||
        (rc = pgslot_get_publication(src->conn, cfg->source.publication_name, &pub, err, errlen)) ||
        (rc = store_kv_get(src->store, KEY_STREAMED, &streamed, err, errlen)) ||
        (rc = store_kv_get(src->store, KEY_PUBLISHED, &published, err, errlen)) ||
        (rc = plan_snapshot(src, &info, &plan, err, errlen)))
        goto out;
    /* Before creating anything: a slot or publication changed by someone
     * else since this pipeline last streamed must not go unnoticed. */
    bool history = streamed != NULL || held.lsn != 0;
    if (history && (!info.exists || info.lost)) {
        if (!plan.want) {
            rc = slot_gone(src, &info, streamed, held, err, errlen);
            goto out;
        }
        log_warn("source.slot_missing", "slot=%s state=%s hint=%s", cfg->source.slot_name,
                 info.exists ? "lost" : "missing",
                 log_q("the pipeline streamed before: every table is read again (snapshot_mode)"));
    }
    if (!plan.want && published && (rc = check_still_published(src, &pub, published, err, errlen)))
        goto out;

    /* The signal table carries snapshot requests and watermarks through the
     * stream; without it (no permission) incremental snapshots are off. */
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : PGSNAP_DEFAULT_SIGNAL_TABLE;
    bool have_signal =
        config_split_table(sig, &src->sig_schema, &src->sig_name) == 0 &&
        pgslot_ensure_signal_table(src->conn, src->sig_schema, src->sig_name, err, errlen) == 0;
    if (!have_signal)
        log_warn("source.no_signal_table", "table=%s error=%s hint=%s", log_q(sig), log_q(err),
                 log_q("incremental snapshots are unavailable"));
    const char *action;
    if ((rc = pgslot_ensure_publication(src->conn, cfg, have_signal ? sig : NULL, &action, err,
                                        errlen)))
        goto out;
    src->created_pub = strcmp(action, "created") == 0;
    if (strcmp(action, "unchanged") != 0)
        log_info("source.publication", "name=%s action=%s", cfg->source.publication_name, action);
    bool partitioned = false;
    if ((rc = pgslot_get_publication(src->conn, cfg->source.publication_name, &pub, err, errlen)) ||
        (rc = pubrel_any_partitioned(src->conn, cfg, &partitioned, err, errlen)))
        goto out;
    snprintf(src->pub_actions, sizeof src->pub_actions, "%s", pub.actions);
    src->rels = relcache_new(cfg);
    if (partitioned && !pub.via_root) {
        relcache_map_partitions(src->rels, true);
        log_warn("source.publication_partitions", "publication=%s hint=%s",
                 log_q(cfg->source.publication_name),
                 log_q("it publishes partitions under their own names: cdc maps them to the "
                       "captured table through the catalog; publish_via_partition_root = true "
                       "makes PostgreSQL do it"));
    }
    if ((rc = prepare_snapshot(src, &info, &plan, err, errlen)))
        goto out;
    if (have_signal) {
        struct isnap_cfg ic = {.cfg = cfg, .store = src->store, .ops = &pgsnap_ops, .arg = src};
        if ((rc = isnap_open(&src->isnap, &ic, err, errlen)))
            goto out;
        if ((rc = queue_new_tables(src, err, errlen)))
            goto out;
    }
    char *dir = xasprintf("%s/%s/spill", cfg->platform.state_dir, cfg->pipeline_id);
    rc = spill_new(&src->spill, dir, err, errlen);
    free(dir);
    if (rc)
        goto out;
    src->write_lsn = src->start_lsn;
    src->confirmed = src->start_lsn;
out:
    free(plan.state);
    free(streamed);
    free(published);
    return rc;
}

void pgsrc_abandon(struct pgsrc *src)
{
    if (!src || src->began || (!src->created_slot && !src->created_pub))
        return;
    if (src->snap_exporter) {
        PQfinish(src->snap_exporter);
        src->snap_exporter = NULL;
    }
    char e[512];
    if (src->created_slot && pgsrc_ensure_sql_conn(src) == 0 && drop_slot(src, e, sizeof e) != 0)
        log_warn("source.cleanup_failed", "slot=%s error=%s", src->cfg->source.slot_name, log_q(e));
    if (src->created_pub && src->conn) {
        char *q = pgconn_quote_ident(src->cfg->source.publication_name);
        char *sql = xasprintf("DROP PUBLICATION IF EXISTS %s", q);
        free(q);
        PGresult *res = pgconn_exec(src->conn, e, sizeof e, sql, 0, NULL);
        free(sql);
        if (!res)
            log_warn("source.cleanup_failed", "publication=%s error=%s",
                     src->cfg->source.publication_name, log_q(e));
        PQclear(res);
    }
    log_info("source.cleaned_up", "slot=%s publication=%s reason=%s",
             src->created_slot ? "dropped" : "kept", src->created_pub ? "dropped" : "kept",
             log_q("the run failed before streaming; nothing it created stays to pin WAL"));
}

/* Runs (or finishes) the initial snapshot before streaming starts. */
int pgsrc_run_snapshot(struct pgsrc *src, char *err, size_t errlen)
{
    const struct config *cfg = src->cfg;
    struct snap_initial_cfg c = {
        .cfg = cfg,
        .store = src->store,
        .em = src->em,
        .ops = &pgsnap_ops,
        .arg = src,
        .id = src->snap_id,
        .pos = src->start_lsn,
        .resumed = src->snap_name == NULL,
    };
    int rc = snap_initial(&c, cfg->source.tables, cfg->source.ntables, err, errlen);
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

void pgsrc_close(struct pgsrc *src)
{
    if (!src)
        return;
    pgsrc_close_repl(src);
    if (src->conn)
        PQfinish(src->conn);
    isnap_free(src->isnap);
    pgsrc_free_folds(src);
    cdc_refbank_drop(&src->tab_refs);
    relcache_free(src->rels);
    spill_free(src->spill);
    if (src->snap_exporter)
        PQfinish(src->snap_exporter);
    free(src->snap_id);
    free(src->snap_name);
    free(src->snap_exported);
    free(src->snap_fold_rule);
    free(src->sig_schema);
    free(src->sig_name);
    free(src->counts);
    free(src);
}
