/* PostgreSQL's snapshot ops; see pgsnap.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/copytext.h"
#include "source/pg/pgslot.h"
#include "source/pg/pgsnap.h"
#include "source/pg/pgsrc_int.h"
#include "source/pg/pubrel.h"
#include "source/pg/snapplan.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/str.h"

/* A captured table as snapshots read it. */
struct pgsnap_table {
    char *configured;      /* as in source.tables */
    char *qname;           /* "schema"."name" */
    struct pubrel pub;     /* what the publication publishes of it: where to read */
    char *cols;            /* quoted column list (the published columns), in the table's order */
    char *keys;            /* quoted key columns, or NULL */
    struct cdc_table *tab; /* shape, from the catalog (one reference) */
    struct xidsnap snap;   /* incremental: which transactions the last read's rows show */
};

/* ---------- readers (initial snapshots) ---------- */

static int open_reader(void *arg, unsigned i, void **rd, char *err, size_t errlen)
{
    struct pgsrc *src = arg;
    struct pgconn_params p;
    pgslot_params(src->cfg, false, &p);
    PGconn *conn = pgconn_connect(&p, err, errlen);
    *rd = conn;
    if (!conn)
        return CDC_ECONN;
    char e[512];
    PGresult *res =
        pgconn_exec(conn, e, sizeof e, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    PQclear(res);
    /* The slot's exported snapshot, or when resuming one reader 0 exports. */
    const char *import = src->snap_name ? src->snap_name : (i ? src->snap_exported : NULL);
    if (res && import) {
        char *lit = PQescapeLiteral(conn, import, strlen(import));
        char *sql = xasprintf("SET TRANSACTION SNAPSHOT %s", lit);
        PQfreemem(lit);
        res = pgconn_exec(conn, e, sizeof e, sql, 0, NULL);
        free(sql);
        PQclear(res);
    } else if (res) {
        res = pgconn_exec(conn, e, sizeof e,
                          "SELECT pg_export_snapshot(), pg_current_snapshot()::text, "
                          "pg_current_wal_lsn()::text",
                          0, NULL);
        if (res) {
            free(src->snap_exported);
            free(src->snap_fold_rule);
            src->snap_exported = xstrdup(PQgetvalue(res, 0, 0));
            src->snap_fold_rule = xasprintf("%s\t%s", PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
        }
        PQclear(res);
    }
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "snapshot: cannot start a reader: %s", e);
    return 0;
}

static void close_reader(void *arg, void *rd)
{
    PQfinish(rd); /* read-only: ending the transaction is enough */
}

/* Resuming: the fresh snapshot and where the WAL was when it was taken. */
static char *fold_rule(void *arg)
{
    struct pgsrc *src = arg;
    return src->snap_fold_rule ? xstrdup(src->snap_fold_rule) : NULL;
}

/* ---------- tables ---------- */

static void close_table(void *arg, void *t)
{
    struct pgsnap_table *pt = t;
    free(pt->configured);
    free(pt->qname);
    pubrel_fini(&pt->pub);
    free(pt->cols);
    free(pt->keys);
    cdc_table_unref(pt->tab);
    xidsnap_fini(&pt->snap);
    free(pt);
}

static int open_table(void *arg, void *rd, const char *table, void **t, struct cdc_table **shape,
                      char *err, size_t errlen)
{
    struct pgsrc *src = arg;
    PGconn *conn = rd ? rd : src->conn;
    *t = NULL;
    *shape = NULL;
    char *schema = NULL, *name = NULL;
    if (config_split_table(table, &schema, &name) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "snapshot: malformed table %s", table);
    struct pgsnap_table *pt = xcalloc(1, sizeof *pt);
    pt->configured = xstrdup(table);
    pt->qname = pgconn_quote_qualified(schema, name);
    int rc =
        pubrel_lookup(conn, src->cfg->source.publication_name, schema, name, &pt->pub, err, errlen);
    if (!rc)
        rc = relcache_describe(src->rels, conn, schema, name, pt->pub.cols, pt->pub.ncols, &pt->tab,
                               err, errlen);
    free(schema);
    free(name);
    if (rc) {
        close_table(arg, pt);
        return rc;
    }
    struct buf cols = BUF_INIT, keys = BUF_INIT;
    for (uint16_t c = 0; c < pt->tab->ncols; c++) {
        char *q = pgconn_quote_ident(pt->tab->cols[c].name);
        buf_printf(&cols, "%s%s", c ? ", " : "", q);
        if (pt->tab->cols[c].key)
            buf_printf(&keys, "%s%s", keys.len ? ", " : "", q);
        free(q);
    }
    pt->cols = cols.p ? cols.p : xstrdup(""); /* no columns: SELECT FROM t */
    pt->keys = keys.p;
    cdc_table_ref(pt->tab);
    *shape = pt->tab;
    *t = pt;
    return 0;
}

static int plan(void *arg, void *rd, void *t, int64_t chunk_rows, struct buf *chunks,
                uint64_t *estimate, char *err, size_t errlen)
{
    struct pgsnap_table *pt = t;
    return snapplan_table(rd, pt->qname, &pt->pub, pt->tab, chunk_rows, chunks, estimate, err,
                          errlen);
}

/* ---------- reading rows ---------- */

/* A row of COPY text as an event of pt's shape (positions left to the
 * caller), or NULL with *rc and err set: CDC_ERR for a row over
 * max_event_bytes (it stops the pipeline: nothing after it is confirmed),
 * CDC_EINVAL for text that does not parse.  what prefixes err. */
static struct cdc_event *row_event(const struct pgsrc *src, const struct pgsnap_table *pt,
                                   struct cdc_refbank *refs, const char *line, size_t len,
                                   const char *what, int *rc, char *err, size_t errlen)
{
    const struct cdc_table *tab = pt->tab;
    int64_t max = src->cfg->platform.max_event_bytes;
    if (max > 0 && len > (uint64_t)max) {
        *rc = cdc_fail(err, errlen, CDC_ERR,
                       "%sa row of %zu bytes exceeds max_event_bytes (%lld): raise it in "
                       "platform.yaml to let it through (a row needs about three times its size "
                       "in memory)",
                       what, len, (long long)max);
        return NULL;
    }
    struct cdc_event *ev = cdc_event_new(0, tab->ncols, len + tab->ncols);
    cdc_event_empty_rows(ev, false, true);
    uint32_t dl = 0;
    char e[512];
    if (copytext_row(line, len, tab->ncols, ev->after, ev->data, &dl, e, sizeof e) != 0) {
        *rc = cdc_fail(err, errlen, CDC_EINVAL, "%s%s", what, e);
        cdc_event_unref(ev);
        return NULL;
    }
    ev->data_len = dl;
    ev->tab = cdc_refbank_take(refs, pt->tab);
    return ev;
}

/* Drains a COPY … TO STDOUT the caller started, handing each row to row().
 * The first failure wins: a failing callback's value comes back as it is, a
 * row that cannot be taken as row_event says, a broken COPY as copy_rc,
 * with err prefixed by what.  The COPY is drained either way. */
static int copy_rows(const struct pgsrc *src, PGconn *conn, const struct pgsnap_table *pt,
                     snap_row_fn row, void *row_arg, int copy_rc, const char *what, char *err,
                     size_t errlen)
{
    int rc = 0, n;
    char *line = NULL;
    char e[512];
    struct cdc_refbank refs = {0};
    while ((n = PQgetCopyData(conn, &line, 0)) > 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        if (!rc) {
            struct cdc_event *ev = row_event(src, pt, &refs, line, len, what, &rc, err, errlen);
            if (ev)
                rc = row(row_arg, ev);
        }
        PQfreemem(line);
    }
    cdc_refbank_drop(&refs);
    if (n == -2 && !rc)
        rc = cdc_fail(err, errlen, copy_rc, "%s%s", what, pgconn_error(conn, e, sizeof e));
    PGresult *res;
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
            rc =
                cdc_fail(err, errlen, copy_rc, "%s%s", what, pgconn_result_error(res, e, sizeof e));
        PQclear(res);
    }
    return rc;
}

static int read_chunk(void *arg, void *rd, void *t, const char *chunk, snap_row_fn row,
                      void *row_arg, char *err, size_t errlen)
{
    struct pgsnap_table *pt = t;
    PGconn *conn = rd;
    char *fw = pubrel_from_where(&pt->pub, chunk);
    char *sql = xasprintf("COPY (SELECT %s %s) TO STDOUT", pt->cols, fw);
    free(fw);
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        pgconn_result_error(res, err, errlen);
        PQclear(res);
        return CDC_ERR;
    }
    PQclear(res);
    return copy_rows(arg, conn, pt, row, row_arg, CDC_ERR, "", err, errlen);
}

/* ---------- incremental snapshots ---------- */

static int watermark(void *arg, const char *table, const char *id, const char *type, char *err,
                     size_t errlen)
{
    struct pgsrc *src = arg;
    char *q = pgconn_quote_qualified(src->sig_schema, src->sig_name);
    char *sql = xasprintf("INSERT INTO %s (id, type, data) VALUES ($1, $2, $3)", q);
    free(q);
    char data[256];
    snprintf(data, sizeof data, "{\"table\":\"%s\"}", table);
    const char *params[3] = {id, type, data};
    char e[512];
    PGresult *res = pgconn_exec(src->conn, e, sizeof e, sql, 3, params);
    free(sql);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "cannot write snapshot watermark: %s", e);
    PQclear(res);
    return 0;
}

/* Reads the chunk after `after` with COPY, in one snapshot whose
 * pg_current_snapshot() says which transactions its rows show. */
static int read_after(void *arg, void *t, const char *after, size_t limit, snap_row_fn row,
                      void *row_arg, char *err, size_t errlen)
{
    struct pgsrc *src = arg;
    struct pgsnap_table *pt = t;
    PGconn *conn = src->conn;
    /* The published rows (the row filter) after the last key done. */
    char *pred = after ? xasprintf("(%s) > %s", pt->keys, after) : NULL;
    char *fw = pubrel_from_where(&pt->pub, pred);
    char *sql = xasprintf("COPY (SELECT %s %s ORDER BY %s LIMIT %zu) TO STDOUT", pt->cols, fw,
                          pt->keys, limit);
    free(pred);
    free(fw);
    char what[300], e[512];
    snprintf(what, sizeof what, "incremental snapshot of %s: ", pt->configured);
    PGresult *res =
        pgconn_exec(conn, e, sizeof e, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    PQclear(res);
    if (res)
        res = pgconn_exec(conn, e, sizeof e, "SELECT pg_current_snapshot()::text", 0, NULL);
    int rc = 0;
    if (!res) {
        rc = cdc_fail(err, errlen, CDC_ECONN, "%s%s", what, e);
        goto out;
    }
    xidsnap_fini(&pt->snap);
    xidsnap_parse(&pt->snap, PQgetvalue(res, 0, 0));
    PQclear(res);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = cdc_fail(err, errlen, CDC_ECONN, "%s%s", what, pgconn_result_error(res, e, sizeof e));
        PQclear(res);
        goto out;
    }
    PQclear(res);
    rc = copy_rows(src, conn, pt, row, row_arg, CDC_ECONN, what, err, errlen);
    if (!rc) {
        res = pgconn_exec(conn, e, sizeof e, "COMMIT", 0, NULL);
        if (!res)
            rc = cdc_fail(err, errlen, CDC_ECONN, "%s%s", what, e);
        PQclear(res);
    }
out:
    if (rc)
        PQclear(PQexec(conn, "ROLLBACK")); /* if the read's transaction is still open */
    free(sql);
    return rc;
}

/* Row literal "(v1::t1, …)" of the row's key, for the next chunk's bound. */
static char *row_key(void *arg, void *t, const struct cdc_event *ev)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '(');
    bool first = true;
    for (uint16_t i = 0; i < ev->tab->ncols; i++) {
        if (!ev->tab->cols[i].key)
            continue;
        const struct cdc_val *v = &ev->after[i];
        char *lit = v->kind == CDC_V_TEXT ? snapplan_literal(cdc_val_ptr(ev, v), v->len) : NULL;
        buf_printf(&b, "%s%s::%s", first ? "" : ", ", lit ? lit : "NULL",
                   ev->tab->cols[i].type_name);
        free(lit);
        first = false;
    }
    buf_putc(&b, ')');
    return b.p;
}

/* A commit record can precede the low watermark while its transaction is
 * not yet visible to a snapshot taken after it. */
static bool saw(void *arg, void *t, const struct cdc_event *ev)
{
    struct pgsnap_table *pt = t;
    return xidsnap_sees(&pt->snap, (uint32_t)ev->xid); /* PostgreSQL's xids have 32 bits */
}

const struct snap_ops pgsnap_ops = {
    .open_reader = open_reader,
    .close_reader = close_reader,
    .open_table = open_table,
    .close_table = close_table,
    .plan = plan,
    .read_chunk = read_chunk,
    .fold_rule = fold_rule,
    .watermark = watermark,
    .read_after = read_after,
    .row_key = row_key,
    .saw = saw,
};
