/* The publication's view of captured tables; see pubrel.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/pubrel.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

void pubrel_fini(struct pubrel *pr)
{
    free(pr->from);
    free(pr->filter);
    for (size_t i = 0; i < pr->ncols; i++)
        free(pr->cols[i]);
    free(pr->cols);
    memset(pr, 0, sizeof *pr);
}

/* One relation the publication lists for the table, with its columns. */
struct prow {
    char kind;       /* relkind */
    const char *rel; /* quoted "schema"."table" (in the result) */
    const char *filter;
    char **cols;
    size_t ncols;
};

static bool same_cols(const struct prow *a, const struct prow *b)
{
    if (a->ncols != b->ncols)
        return false;
    for (size_t i = 0; i < a->ncols; i++) {
        bool found = false;
        for (size_t k = 0; k < b->ncols && !found; k++)
            found = strcmp(a->cols[i], b->cols[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static void put_cols(struct buf *b, char *const *cols, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *q = pgconn_quote_ident(cols[i]);
        buf_printf(b, "%s%s", i ? ", " : "", q);
        free(q);
    }
}

/* Builds *out from the relations the publication lists for the table: the
 * table itself, or (a partitioned table whose partitions are published one
 * by one) the partitions it publishes. */
static int build(struct prow *rows, size_t n, const char *schema, const char *name,
                 struct pubrel *out, char *err, size_t errlen)
{
    for (size_t i = 1; i < n; i++)
        if (!same_cols(&rows[0], &rows[i]))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "the partitions of %s.%s are published with different column lists "
                            "(%s and %s); cdc captures them as one table: give them one column "
                            "list, or publish them through the root (publish_via_partition_root)",
                            schema, name, rows[0].rel, rows[i].rel);
    out->ncols = rows[0].ncols;
    out->cols = NULL;
    if (out->ncols) {
        out->cols = xcalloc(out->ncols, sizeof *out->cols);
        for (size_t i = 0; i < out->ncols; i++)
            out->cols[i] = xstrdup(rows[0].cols[i]);
    }
    if (n == 1) {
        /* The table itself (ONLY: an inheritance parent's children are
         * published, if at all, under their own names), a partitioned table
         * published through its root (all its partitions), or its one
         * published partition. */
        out->from = rows[0].kind == 'p' ? xstrdup(rows[0].rel) : xasprintf("ONLY %s", rows[0].rel);
        out->filter = rows[0].filter ? xstrdup(rows[0].filter) : NULL;
        return 0;
    }
    /* Partitions published one by one (the publication does not publish
     * through the root): each as published, with its own filter. */
    struct buf b = BUF_INIT;
    buf_putc(&b, '(');
    for (size_t i = 0; i < n; i++) {
        buf_puts(&b, i ? " UNION ALL SELECT " : "SELECT ");
        put_cols(&b, rows[0].cols, rows[0].ncols);
        buf_printf(&b, " FROM ONLY %s", rows[i].rel);
        if (rows[i].filter)
            buf_printf(&b, " WHERE (%s)", rows[i].filter);
    }
    buf_puts(&b, ") AS published");
    out->from = b.p;
    out->no_ctid = true;
    return 0;
}

int pubrel_lookup(PGconn *conn, const char *pub, const char *schema, const char *name,
                  struct pubrel *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* Filters and column lists exist from PostgreSQL 15 on. */
    bool v15 = PQserverVersion(conn) >= 150000;
    char *sql = xasprintf(
        "WITH t AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "           WHERE n.nspname = $2 AND c.relname = $3) "
        "SELECT c.relkind, format('%%I.%%I', pt.schemaname, pt.tablename), %s, %s "
        "FROM pg_publication_tables pt "
        "JOIN pg_namespace ns ON ns.nspname = pt.schemaname "
        "JOIN pg_class c ON c.relnamespace = ns.oid AND c.relname = pt.tablename "
        "CROSS JOIN t %s "
        "WHERE pt.pubname = $1 "
        "  AND (c.oid = t.oid OR t.oid IN (SELECT relid FROM pg_partition_ancestors(c.oid))) "
        "ORDER BY 2%s",
        v15 ? "pt.rowfilter" : "NULL::text", v15 ? "a.name" : "NULL::name",
        v15 ? "LEFT JOIN LATERAL unnest(pt.attnames) WITH ORDINALITY AS a(name, ord) ON true" : "",
        v15 ? ", a.ord" : "");
    const char *params[3] = {pub, schema, name};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 3, params);
    free(sql);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN,
                        "catalog lookup of publication %s for %s.%s failed: %s", pub, schema, name,
                        e);
    int nr = PQntuples(res);
    struct prow *rows = xcalloc(nr ? (size_t)nr : 1, sizeof *rows);
    size_t n = 0;
    for (int r = 0; r < nr; r++) {
        const char *rel = PQgetvalue(res, r, 1);
        if (n == 0 || strcmp(rows[n - 1].rel, rel) != 0) {
            rows[n].kind = PQgetvalue(res, r, 0)[0];
            rows[n].rel = rel;
            rows[n].filter = PQgetisnull(res, r, 2) ? NULL : PQgetvalue(res, r, 2);
            rows[n].cols = xcalloc((size_t)nr, sizeof *rows[n].cols);
            n++;
        }
        if (!PQgetisnull(res, r, 3))
            rows[n - 1].cols[rows[n - 1].ncols++] = PQgetvalue(res, r, 3);
    }
    int rc;
    if (n == 0)
        rc = cdc_fail(err, errlen, CDC_EINVAL, "publication %s does not publish table %s.%s", pub,
                      schema, name);
    else
        rc = build(rows, n, schema, name, out, err, errlen);
    for (size_t i = 0; i < n; i++)
        free(rows[i].cols);
    free(rows);
    PQclear(res);
    if (rc)
        pubrel_fini(out);
    return rc;
}

/* Appends s as an element of a text[] literal. */
static void put_elem(struct buf *b, const char *s)
{
    buf_puts(b, b->len > 1 ? ",\"" : "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

int pubrel_unpublished(PGconn *conn, const struct config *cfg, bool *unpublished, char **missing,
                       char *err, size_t errlen)
{
    *missing = NULL;
    if (unpublished)
        memset(unpublished, 0, cfg->source.ntables * sizeof *unpublished);
    struct buf schemas = BUF_INIT, names = BUF_INIT;
    buf_putc(&schemas, '{');
    buf_putc(&names, '{');
    for (size_t i = 0; i < cfg->source.ntables; i++) {
        char *s = NULL, *n = NULL;
        config_split_table(cfg->source.tables[i], &s, &n);
        put_elem(&schemas, s ? s : "");
        put_elem(&names, n ? n : "");
        free(s);
        free(n);
    }
    buf_putc(&schemas, '}');
    buf_putc(&names, '}');
    /* Published: listed in the publication itself (a partitioned table
     * without partitions is published by nothing else), or published by it
     * with its partitions. */
    const char *params[3] = {cfg->source.publication_name, schemas.p, names.p};
    char e[512];
    PGresult *res =
        pgconn_exec(conn, e, sizeof e,
                    "WITH listed AS ("
                    "  SELECT c.oid AS relid FROM pg_publication_tables pt "
                    "  JOIN pg_namespace ns ON ns.nspname = pt.schemaname "
                    "  JOIN pg_class c ON c.relnamespace = ns.oid AND c.relname = pt.tablename "
                    "  WHERE pt.pubname = $1 "
                    "  UNION SELECT r.prrelid FROM pg_publication_rel r "
                    "  JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = $1), "
                    "covered AS (SELECT relid FROM listed UNION "
                    "  SELECT a.relid FROM listed l, LATERAL pg_partition_ancestors(l.relid) a) "
                    "SELECT w.i FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS w(s, n, i) "
                    "JOIN pg_namespace wn ON wn.nspname = w.s "
                    "JOIN pg_class wc ON wc.relnamespace = wn.oid AND wc.relname = w.n "
                    "WHERE wc.oid NOT IN (SELECT relid FROM covered) ORDER BY 1",
                    3, params);
    buf_fini(&schemas);
    buf_fini(&names);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "catalog lookup of publication %s failed: %s",
                        cfg->source.publication_name, e);
    struct buf list = BUF_INIT;
    for (int r = 0; r < PQntuples(res); r++) {
        size_t i = strtoul(PQgetvalue(res, r, 0), NULL, 10) - 1;
        if (i >= cfg->source.ntables)
            continue;
        buf_printf(&list, "%s%s", list.len ? ", " : "", cfg->source.tables[i]);
        if (unpublished)
            unpublished[i] = true;
    }
    PQclear(res);
    *missing = list.p;
    return 0;
}

int pubrel_any_partitioned(PGconn *conn, const struct config *cfg, bool *any, char *err,
                           size_t errlen)
{
    *any = false;
    for (size_t i = 0; i < cfg->source.ntables && !*any; i++) {
        char *s = NULL, *n = NULL;
        if (config_split_table(cfg->source.tables[i], &s, &n) != 0) {
            free(s);
            free(n);
            continue;
        }
        const char *params[2] = {s, n};
        char e[512];
        PGresult *res = pgconn_exec(conn, e, sizeof e,
                                    "SELECT c.relkind = 'p' FROM pg_class c "
                                    "JOIN pg_namespace ns ON ns.oid = c.relnamespace "
                                    "WHERE ns.nspname = $1 AND c.relname = $2",
                                    2, params);
        free(s);
        free(n);
        if (!res)
            return cdc_fail(err, errlen, CDC_ECONN, "catalog lookup failed: %s", e);
        *any = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
    }
    return 0;
}

char *pubrel_from_where(const struct pubrel *pr, const char *pred)
{
    const char *f = pr->filter;
    if (f && pred)
        return xasprintf("FROM %s WHERE (%s) AND (%s)", pr->from, f, pred);
    if (f || pred)
        return xasprintf("FROM %s WHERE %s", pr->from, f ? f : pred);
    return xasprintf("FROM %s", pr->from);
}
