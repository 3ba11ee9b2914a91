/* Initial snapshot: planning, parallel COPY readers, durable progress. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg/pgconn.h"
#include "source/pg/copytext.h"
#include "source/pg/pgslot.h"
#include "source/pg/pubrel.h"
#include "source/pg/snapplan.h"
#include "source/pg/snapshot.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

#define EMIT_BATCH 256

struct stab {
    const char *configured; /* as written in source.tables (borrowed) */
    char *schema, *name;
    char *qname;           /* "schema"."name" */
    struct pubrel pub;     /* what the publication publishes of it: where to read */
    char *cols;            /* quoted column list (the published columns), in the table's order */
    struct cdc_table *tab; /* shape, from the catalog */
    uint64_t estimate;     /* rows expected */
    atomic_uint_fast64_t rows;
    unsigned nchunks, ndone;
    bool fold; /* no unique key, resumed: read again in full after a truncate */
};

struct chunk {
    unsigned t;        /* index into tables */
    unsigned no;       /* chunk number within its table's plan */
    uint64_t seq_base; /* position idx base of the current read: (sequence << 32) */
    char *pred;        /* SQL predicate selecting the chunk's rows */
    bool done;         /* durable in every sink (as recorded) */
};

struct snap {
    const struct snap_ctx *ctx;
    const char *id;
    struct stab *t;
    size_t nt;
    struct chunk *c;
    size_t nc, capc;
    pthread_mutex_t mu;
    size_t next; /* next chunk to hand out */
    atomic_bool failed;
    unsigned gen; /* bumped by a rewind: marks of older chunk reads are void */
    /* Resuming: the readers' shared snapshot ("xmin:xmax:xip,…") and the WAL
     * position when it was taken, for fold rules. */
    char resume_snapshot[4096];
    char resume_lsn[32];
    char err[512];
    int64_t started_us;
    int64_t wall_start_us;
};

/* Records the first failure; every reader stops. */
static void fail_snap(struct snap *s, const char *table, const char *why)
{
    pthread_mutex_lock(&s->mu);
    if (!atomic_load(&s->failed)) {
        snprintf(s->err, sizeof s->err, "snapshot of %s failed: %s", table, why);
        atomic_store(&s->failed, true);
    }
    pthread_mutex_unlock(&s->mu);
}

static char *key_of(const char *id, const char *what, const char *table, long no)
{
    if (no >= 0)
        return xasprintf("snapshot.%s.%s.%s.%ld", id, what, table, no);
    return xasprintf("snapshot.%s.%s.%s", id, what, table);
}

static void add_chunk(struct snap *s, unsigned t, char *pred)
{
    if (s->nc == s->capc) {
        s->capc = s->capc ? 2 * s->capc : 64;
        s->c = xrealloc(s->c, s->capc * sizeof *s->c);
    }
    s->c[s->nc++] = (struct chunk){.t = t, .no = s->t[t].nchunks++, .pred = pred};
}

/* Loads or makes the plan of every table, and which chunks are done. */
static int prepare(struct snap *s, PGconn *conn, char *const *tables, size_t n, char *err,
                   size_t errlen)
{
    const struct snap_ctx *ctx = s->ctx;
    s->t = xcalloc(n ? n : 1, sizeof *s->t);
    s->nt = n;
    for (size_t i = 0; i < n; i++) {
        struct stab *st = &s->t[i];
        st->configured = tables[i];
        if (config_split_table(tables[i], &st->schema, &st->name) != 0)
            return cdc_fail(err, errlen, CDC_EINVAL, "snapshot: malformed table %s", tables[i]);
        st->qname = pgconn_quote_qualified(st->schema, st->name);
        int rc = pubrel_lookup(conn, ctx->cfg->source.publication_name, st->schema, st->name,
                               &st->pub, err, errlen);
        if (!rc)
            rc = relcache_describe(ctx->rels, conn, st->schema, st->name, st->pub.cols,
                                   st->pub.ncols, &st->tab, err, errlen);
        if (rc)
            return rc;
        struct buf cols = BUF_INIT;
        for (uint16_t c = 0; c < st->tab->ncols; c++) {
            char *q = pgconn_quote_ident(st->tab->cols[c].name);
            buf_printf(&cols, "%s%s", c ? ", " : "", q);
            free(q);
        }
        st->cols = cols.p ? cols.p : xstrdup(""); /* no columns: SELECT FROM t */

        char *pkey = key_of(s->id, "plan", tables[i], -1);
        char *plan = NULL;
        if ((rc = store_kv_get(ctx->store, pkey, &plan, err, errlen))) {
            free(pkey);
            return rc;
        }
        if (!plan) {
            struct buf b = BUF_INIT;
            rc = snapplan_table(conn, st->qname, &st->pub, st->tab,
                                ctx->cfg->source.snapshot_chunk_rows, &b, &st->estimate, err,
                                errlen);
            /* First line: the row estimate; then one predicate per chunk. */
            struct buf full = BUF_INIT;
            buf_printf(&full, "0 %" PRIu64 "\n", st->estimate);
            if (b.len)
                buf_put(&full, b.p, b.len);
            if (!rc)
                rc = store_kv_put(ctx->store, pkey, full.p, err, errlen);
            plan = full.p;
            buf_fini(&b);
            if (rc) {
                free(plan);
                free(pkey);
                return rc;
            }
        }
        free(pkey);
        char *save = NULL;
        char *line = strtok_r(plan, "\n", &save);
        uint64_t unused = 0, est = 0;
        if (line && sscanf(line, "%" SCNu64 " %" SCNu64, &unused, &est) == 2)
            st->estimate = est;
        while ((line = strtok_r(NULL, "\n", &save))) {
            add_chunk(s, (unsigned)i, xstrdup(line));
            struct chunk *c = &s->c[s->nc - 1];
            char *dkey = key_of(s->id, "done", tables[i], c->no);
            char *v = NULL;
            rc = store_kv_get(ctx->store, dkey, &v, err, errlen);
            free(dkey);
            c->done = v != NULL;
            st->ndone += c->done;
            free(v);
            if (rc) {
                free(plan);
                return rc;
            }
        }
        free(plan);
        if (st->ndone)
            log_info("snapshot.resume", "table=%s chunks_done=%u of=%u", tables[i], st->ndone,
                     st->nchunks);
    }
    return 0;
}

/* ---------- reading ---------- */

static struct cdc_event *row_event(struct snap *s, const struct chunk *c, const struct stab *st,
                                   const char *line, size_t len, uint64_t row, char *err,
                                   size_t errlen)
{
    const struct cdc_table *tab = st->tab;
    int64_t max = s->ctx->cfg->platform.max_event_bytes;
    if (max > 0 && len > (uint64_t)max) {
        cdc_fail(err, errlen, CDC_EINVAL,
                 "a row of %zu bytes exceeds max_event_bytes (%lld): raise it in platform.yaml to "
                 "let it through (a row needs about three times its size in memory)",
                 len, (long long)max);
        return NULL;
    }
    struct cdc_event *ev = cdc_event_new(0, tab->ncols, len + tab->ncols);
    cdc_event_empty_rows(ev, false, true);
    uint32_t dl = 0;
    if (copytext_row(line, len, tab->ncols, ev->after, ev->data, &dl, err, errlen) != 0) {
        cdc_event_unref(ev);
        return NULL;
    }
    ev->data_len = dl;
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    cdc_table_ref(st->tab);
    ev->tab = st->tab;
    ev->pos.lsn = s->ctx->lsn;
    ev->pos.idx = c->seq_base | row;
    ev->snapshot_id = s->ctx->lsn; /* the consistent point names the snapshot */
    ev->lsn = s->ctx->lsn;
    ev->commit_ts = s->wall_start_us;
    ev->emit_ts = clock_wall_us();
    return ev;
}

/* Every read of a chunk gets its own sequence number, so its rows' positions
 * (event-log keys) never collide with an earlier, partial read of it: a read
 * after a resume or a rewind may see other rows in another order. */
static int next_chunk_seq(struct snap *s, const struct stab *st, uint64_t *seq)
{
    char err[256];
    char *key = xasprintf("snapshot.chunkseq.%s", st->configured);
    char *v = NULL;
    pthread_mutex_lock(&s->mu);
    int rc = store_kv_get(s->ctx->store, key, &v, err, sizeof err);
    *seq = v ? strtoull(v, NULL, 10) : 0;
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, *seq + 1);
    if (!rc)
        rc = store_kv_put(s->ctx->store, key, num, err, sizeof err);
    pthread_mutex_unlock(&s->mu);
    free(v);
    free(key);
    if (rc)
        fail_snap(s, st->configured, err);
    return rc;
}

/* Reads one chunk with COPY and pushes its rows; marks the chunk with the
 * tracker so it is recorded once every sink holds it. */
static int read_chunk(struct snap *s, PGconn *conn, size_t ci)
{
    pthread_mutex_lock(&s->mu);
    unsigned gen = s->gen;
    pthread_mutex_unlock(&s->mu);
    struct chunk *c = &s->c[ci];
    struct stab *st = &s->t[c->t];
    uint64_t seq;
    if (next_chunk_seq(s, st, &seq) != 0)
        return CDC_ERR;
    c->seq_base = seq << 32;
    char *fw = pubrel_from_where(&st->pub, c->pred);
    char *sql = xasprintf("COPY (SELECT %s %s) TO STDOUT", st->cols, fw);
    free(fw);
    PGresult *res = PQexec(conn, sql);
    free(sql);
    char line_err[512];
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        pgconn_result_error(res, line_err, sizeof line_err);
        PQclear(res);
        fail_snap(s, st->configured, line_err);
        return CDC_ERR;
    }
    PQclear(res);
    struct cdc_event *batch[EMIT_BATCH];
    size_t nb = 0;
    uint64_t row = 0, last_seq = 0;
    int rc = 0;
    char *buf = NULL;
    int n;
    while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
        size_t len = (size_t)n;
        if (len && buf[len - 1] == '\n')
            len--;
        struct cdc_event *ev =
            rc ? NULL : row_event(s, c, st, buf, len, row++, line_err, sizeof line_err);
        PQfreemem(buf);
        if (!ev) {
            if (!rc)
                fail_snap(s, st->configured, line_err);
            rc = CDC_ERR;
            continue; /* drain the COPY */
        }
        batch[nb++] = ev;
        if (nb == EMIT_BATCH) {
            rc = emitter_batch(s->ctx->em, batch, nb, &last_seq);
            nb = 0;
        }
        if (atomic_load(&s->failed) && !rc)
            rc = CDC_ESTOP;
    }
    if (n == -2 && !rc) {
        fail_snap(s, st->configured, pgconn_error(conn, line_err, sizeof line_err));
        rc = CDC_ERR;
    }
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc) {
            fail_snap(s, st->configured, pgconn_result_error(res, line_err, sizeof line_err));
            rc = CDC_ERR;
        }
        PQclear(res);
    }
    if (!rc && nb)
        rc = emitter_batch(s->ctx->em, batch, nb, &last_seq);
    else
        for (size_t i = 0; i < nb; i++)
            cdc_event_unref(batch[i]);
    if (rc)
        return rc;
    atomic_fetch_add(&st->rows, row);
    emitter_mark(s->ctx->em, last_seq, ((uint64_t)gen << 32) | ci);
    return 0;
}

struct reader {
    struct snap *s;
    PGconn *conn;
    pthread_t thread;
    atomic_bool running;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct snap *s = rd->s;
    atomic_store(&rd->running, true);
    while (!atomic_load(&s->failed) && !emitter_stopping(s->ctx->em)) {
        pthread_mutex_lock(&s->mu);
        while (s->next < s->nc && s->c[s->next].done)
            s->next++;
        size_t ci = s->next < s->nc ? s->next++ : SIZE_MAX;
        pthread_mutex_unlock(&s->mu);
        if (ci == SIZE_MAX)
            break;
        int rc = read_chunk(s, rd->conn, ci);
        if (rc)
            break;
    }
    atomic_store(&rd->running, false);
    return NULL;
}

/* ---------- progress ---------- */

static void progress(struct snap *s, bool final, bool to_log)
{
    uint64_t rows = 0, total = 0;
    for (size_t i = 0; i < s->nt; i++) {
        rows += atomic_load(&s->t[i].rows);
        total += s->t[i].estimate;
    }
    double secs = (double)(clock_mono_us() - s->started_us) / 1e6;
    double rate = secs > 0 ? (double)rows / secs : 0;
    double eta = rate > 0 && total > rows ? (double)(total - rows) / rate : 0;
    if (isatty(2)) {
        fprintf(stderr, "\rsnapshot: %" PRIu64 "/%" PRIu64 " rows  %.0f rows/s  ETA %.0fs   %s",
                rows, total, rate, eta, final ? "\n" : "");
        fflush(stderr);
    }
    if (!to_log && !final)
        return;
    for (size_t i = 0; i < s->nt; i++) {
        struct stab *st = &s->t[i];
        uint64_t r = atomic_load(&st->rows);
        log_info(final ? "snapshot.table_done" : "snapshot.progress",
                 "table=%s rows=%" PRIu64 " estimate=%" PRIu64 " chunks_done=%u chunks=%u",
                 st->configured, r, st->estimate, st->ndone, st->nchunks);
    }
    log_info(final ? "snapshot.done" : "snapshot.rate",
             "rows=%" PRIu64 " seconds=%.1f rows_per_second=%.0f eta_seconds=%.0f", rows, secs,
             rate, eta);
}

/* Records chunks every sink now holds. */
static int record_done(struct snap *s, char *err, size_t errlen)
{
    uint64_t ids[64];
    size_t n;
    while ((n = emitter_take_marks(s->ctx->em, ids, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&s->mu);
            bool stale = (ids[i] >> 32) != s->gen;
            pthread_mutex_unlock(&s->mu);
            if (stale)
                continue;
            struct chunk *c = &s->c[ids[i] & 0xffffffffu];
            struct stab *st = &s->t[c->t];
            if (c->done)
                continue;
            char *dkey = key_of(s->id, "done", st->configured, c->no);
            int rc = store_kv_put(s->ctx->store, dkey, "1", err, errlen);
            free(dkey);
            if (rc)
                return rc;
            pthread_mutex_lock(&s->mu);
            c->done = true;
            st->ndone++;
            pthread_mutex_unlock(&s->mu);
        }
    }
    return 0;
}

/* A sink lost rows it had not made durable and asked for a replay.  Snapshot
 * rows are not in the WAL: read every chunk not yet recorded as done again,
 * and mark the restart in the log for the sink to resume after. */
static void serve_rewind(struct snap *s, uint32_t gen)
{
    uint64_t restart;
    emitter_rewind(s->ctx->em, gen, &restart);
    /* Only now: a read that started before the marker went out keeps the
     * old generation, so its mark is void and the chunk is read again. */
    pthread_mutex_lock(&s->mu);
    s->gen++;
    s->next = 0;
    pthread_mutex_unlock(&s->mu);
    log_info("snapshot.rewind", "generation=%u hint=%s", gen,
             log_q("chunks not yet durable in every sink are read again"));
}

/* Resuming: a table without a unique key cannot take a fresh read of some
 * chunks on top of rows already delivered, nor the stream's replay of
 * changes the fresh read already shows.  It is rebuilt: a truncate event,
 * every chunk read again (one shared snapshot), and a fold rule, stored for
 * the source, that drops its changes by transactions that snapshot saw. */
static int fold_keyless(struct snap *s, char *err, size_t errlen)
{
    struct buf rules = BUF_INIT;
    int rc = 0;
    for (size_t t = 0; t < s->nt && !rc; t++) {
        struct stab *st = &s->t[t];
        if (st->tab->key_unique || st->ndone == st->nchunks)
            continue;
        st->fold = true;
        st->ndone = 0;
        for (size_t i = 0; i < s->nc; i++) {
            if (s->c[i].t != t || !s->c[i].done)
                continue;
            s->c[i].done = false;
            char *dkey = key_of(s->id, "done", st->configured, s->c[i].no);
            rc = store_kv_delete(s->ctx->store, dkey, err, errlen);
            free(dkey);
        }
        buf_printf(&rules, "%s\t%s\t%s\n", st->configured, s->resume_snapshot, s->resume_lsn);
        /* Clear what earlier attempts delivered, ahead of the rows. */
        uint64_t seq = 0, last;
        if (!rc && next_chunk_seq(s, st, &seq) != 0)
            rc = cdc_fail(err, errlen, CDC_EIO, "%s", s->err);
        if (rc)
            break;
        struct cdc_event *ev = cdc_event_new(0, 0, 0);
        ev->op = CDC_OP_TRUNCATE;
        ev->snapshot = true;
        cdc_table_ref(st->tab);
        ev->tab = st->tab;
        ev->pos = (struct cdc_pos){s->ctx->lsn, seq << 32};
        ev->lsn = s->ctx->lsn;
        ev->commit_ts = ev->emit_ts = clock_wall_us();
        if (emitter_batch(s->ctx->em, &ev, 1, &last) != 0)
            rc = CDC_ESTOP;
        log_info("snapshot.rebuild", "table=%s reason=%s", st->configured,
                 log_q("resumed without a unique key: truncated and read again in full"));
    }
    if (!rc && rules.len) {
        char *key = xasprintf("snapshot.%s.folds", s->id);
        char *prev = NULL;
        rc = store_kv_get(s->ctx->store, key, &prev, err, errlen);
        struct buf all = BUF_INIT;
        /* Keep rules of tables not rebuilt now; replace the others. */
        if (!rc && prev) {
            char *save = NULL;
            for (char *line = strtok_r(prev, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                size_t tl = strcspn(line, "\t");
                bool replaced = false;
                for (size_t t = 0; t < s->nt; t++)
                    if (s->t[t].fold && strlen(s->t[t].configured) == tl &&
                        strncmp(s->t[t].configured, line, tl) == 0)
                        replaced = true;
                if (!replaced)
                    buf_printf(&all, "%s\n", line);
            }
        }
        buf_put(&all, rules.p, rules.len);
        if (!rc)
            rc = store_kv_put(s->ctx->store, key, all.p, err, errlen);
        free(prev);
        free(key);
        buf_fini(&all);
    }
    buf_fini(&rules);
    return rc;
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->nt; i++) {
        free(s->t[i].schema);
        free(s->t[i].name);
        free(s->t[i].qname);
        pubrel_fini(&s->t[i].pub);
        free(s->t[i].cols);
        cdc_table_unref(s->t[i].tab);
    }
    for (size_t i = 0; i < s->nc; i++)
        free(s->c[i].pred);
    free(s->t);
    free(s->c);
    pthread_mutex_destroy(&s->mu);
}

int snap_initial(const struct snap_ctx *ctx, const char *id, char *const *tables, size_t n,
                 char *err, size_t errlen)
{
    struct snap s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.id = id;
    pthread_mutex_init(&s.mu, NULL);
    atomic_init(&s.failed, false);
    s.started_us = clock_mono_us();
    s.wall_start_us = clock_wall_us();

    unsigned nconn = (unsigned)ctx->cfg->source.snapshot_parallelism;
    if (nconn < 1)
        nconn = 1;
    struct reader *rd = xcalloc(nconn, sizeof *rd);
    int rc = 0;
    /* Every reader joins the same snapshot before anything else happens: the
     * slot's exported one, or when resuming one the first reader exports. */
    char exported[128] = "";
    for (unsigned i = 0; i < nconn; i++) {
        struct pgconn_params p;
        pgslot_params(ctx->cfg, false, &p);
        rd[i].s = &s;
        rd[i].conn = pgconn_connect(&p, err, errlen);
        if (!rd[i].conn) {
            rc = CDC_ECONN;
            goto out;
        }
        char e[512];
        PGresult *res = pgconn_exec(rd[i].conn, e, sizeof e,
                                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
        PQclear(res);
        const char *import = ctx->snapshot_name ? ctx->snapshot_name : (i ? exported : NULL);
        if (res && import) {
            char *lit = PQescapeLiteral(rd[i].conn, import, strlen(import));
            char *sql = xasprintf("SET TRANSACTION SNAPSHOT %s", lit);
            PQfreemem(lit);
            res = pgconn_exec(rd[i].conn, e, sizeof e, sql, 0, NULL);
            free(sql);
            PQclear(res);
        } else if (res && !ctx->snapshot_name) {
            res = pgconn_exec(rd[i].conn, e, sizeof e,
                              "SELECT pg_export_snapshot(), pg_current_snapshot()::text, "
                              "pg_current_wal_lsn()::text",
                              0, NULL);
            if (res) {
                str_copy(exported, sizeof exported, PQgetvalue(res, 0, 0));
                str_copy(s.resume_snapshot, sizeof s.resume_snapshot, PQgetvalue(res, 0, 1));
                str_copy(s.resume_lsn, sizeof s.resume_lsn, PQgetvalue(res, 0, 2));
            }
            PQclear(res);
        }
        if (!res) {
            rc = cdc_fail(err, errlen, CDC_ECONN, "snapshot: cannot start a reader: %s", e);
            goto out;
        }
    }
    if ((rc = prepare(&s, rd[0].conn, tables, n, err, errlen)))
        goto out;
    if (!ctx->snapshot_name && (rc = fold_keyless(&s, err, errlen)))
        goto out;
    size_t todo = 0;
    for (size_t i = 0; i < s.nc; i++)
        todo += !s.c[i].done;
    log_info("snapshot.started",
             "id=%s tables=%zu chunks=%zu remaining=%zu readers=%u "
             "imported=%s",
             id, s.nt, s.nc, todo, nconn, ctx->snapshot_name ? "yes" : "no (resumed)");
    for (unsigned i = 0; i < nconn; i++)
        atomic_store(&rd[i].running, true);
    for (unsigned i = 0; i < nconn; i++)
        if (pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]) != 0) {
            atomic_store(&s.failed, true);
            rc = cdc_fail(err, errlen, CDC_ERR, "snapshot: cannot start reader threads");
            for (unsigned k = 0; k < i; k++)
                pthread_join(rd[k].thread, NULL);
            goto out;
        }
    int64_t next_log = clock_mono_us() + 10000000, next_tty = 0;
    for (;;) {
        uint32_t rgen;
        if (emitter_rewind_wanted(ctx->em, &rgen)) {
            serve_rewind(&s, rgen);
            /* Readers that already ran out of chunks exited: start them
             * again for what is to be read again. */
            for (unsigned i = 0; i < nconn; i++) {
                if (atomic_load(&rd[i].running))
                    continue;
                pthread_join(rd[i].thread, NULL);
                atomic_store(&rd[i].running, true);
                if (pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]) != 0) {
                    atomic_store(&rd[i].running, false);
                    atomic_store(&s.failed, true);
                }
            }
        }
        if ((rc = record_done(&s, err, errlen)))
            atomic_store(&s.failed, true);
        size_t done = 0;
        pthread_mutex_lock(&s.mu);
        for (size_t i = 0; i < s.nc; i++)
            done += s.c[i].done;
        pthread_mutex_unlock(&s.mu);
        if (done == s.nc || atomic_load(&s.failed) || emitter_stopping(ctx->em))
            break;
        int64_t now = clock_mono_us();
        if (now >= next_tty) {
            progress(&s, false, now >= next_log);
            if (now >= next_log)
                next_log = now + 10000000;
            next_tty = now + 500000;
        }
        clock_sleep_us(20000);
    }
    for (unsigned i = 0; i < nconn; i++)
        pthread_join(rd[i].thread, NULL);
    if (!rc && atomic_load(&s.failed))
        rc = cdc_fail(err, errlen, CDC_ERR, "%s", s.err);
    else if (!rc && emitter_stopping(ctx->em))
        rc = CDC_ESTOP;
    if (!rc) {
        progress(&s, true, true);
        for (size_t i = 0; i < s.nt && !rc; i++) {
            char *key = xasprintf("%s%s", SNAP_KEY_TABLE, s.t[i].configured);
            rc = store_kv_put(ctx->store, key, id, err, errlen);
            free(key);
        }
    }
out:
    for (unsigned i = 0; i < nconn; i++)
        if (rd[i].conn)
            PQfinish(rd[i].conn); /* read-only: ending the transaction is enough */
    free(rd);
    snap_free(&s);
    return rc;
}
