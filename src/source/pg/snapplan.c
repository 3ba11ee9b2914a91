/* Snapshot planning: a table's rows split into chunks; see snapplan.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/snapplan.h"
#include "util/err.h"
#include "util/mem.h"

static bool is_int_type(uint32_t oid)
{
    return oid == 20 || oid == 21 || oid == 23;
}

int snapplan_table(PGconn *conn, const char *qname, const struct pubrel *pub,
                   const struct cdc_table *tab, int64_t chunk_rows, struct buf *plan,
                   uint64_t *estimate, char *err, size_t errlen)
{
    char e[512];
    const char *params[1] = {qname};
    /* A partitioned table is sized by its partitions; page ranges then
     * apply to each partition (the largest sets their number). */
    PGresult *res = pgconn_exec(
        conn, e, sizeof e,
        "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint, "
        "  coalesce(max(pg_relation_size(c.oid) / current_setting('block_size')::int), 0), "
        "  coalesce(max(c.relpages), 0) FROM pg_class c "
        "WHERE c.oid = $1::regclass OR (c.relkind = 'r' AND c.oid IN "
        "  (SELECT relid FROM pg_partition_tree($1::regclass)))",
        1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "snapshot: cannot size %s: %s", qname, e);
    int64_t reltuples = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t pages = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int64_t relpages = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);

    int keycol = -1;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (tab->cols[i].key)
            keycol = keycol == -1 ? i : -2;
    bool by_key = tab->key_unique;
    if (by_key && keycol >= 0 && is_int_type(tab->cols[keycol].type_oid)) {
        /* One integer key: split [min, max] evenly.  The number of rows
         * comes from the statistics, scaled to the table's size now as the
         * planner does, when the table has any: counting them reads the
         * whole table (a fifth of the time the snapshot itself takes). */
        char *k = pgconn_quote_ident(tab->cols[keycol].name);
        char *fw = pubrel_from_where(pub, NULL);
        char rows[32] = "count(*)";
        if (reltuples > 0 && relpages > 0)
            snprintf(rows, sizeof rows, "%" PRId64,
                     (int64_t)((double)reltuples * (double)pages / (double)relpages));
        char *sql = xasprintf("SELECT min(%s), max(%s), %s %s", k, k, rows, fw);
        free(fw);
        res = pgconn_exec(conn, e, sizeof e, sql, 0, NULL);
        free(sql);
        if (!res) {
            free(k);
            return cdc_fail(err, errlen, CDC_ECONN, "snapshot: cannot plan %s: %s", qname, e);
        }
        *estimate = (uint64_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        if (PQgetisnull(res, 0, 0)) {
            buf_puts(plan, "true\n");
        } else {
            int64_t lo = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            int64_t hi = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
            int64_t n = ((int64_t)*estimate + chunk_rows - 1) / chunk_rows;
            if (n < 1)
                n = 1;
            /* Ranges may be uneven when keys are sparse; that costs balance,
             * never correctness: together they cover everything. */
            int64_t step = (hi - lo) / n + 1;
            for (int64_t i = 0; i < n; i++) {
                int64_t a = lo + i * step;
                if (i == 0)
                    buf_printf(plan, "%s < %" PRId64 "\n", k, a + step);
                else if (i == n - 1)
                    buf_printf(plan, "%s >= %" PRId64 "\n", k, a);
                else
                    buf_printf(plan, "%s >= %" PRId64 " AND %s < %" PRId64 "\n", k, a, k, a + step);
                if (a + step > hi && i < n - 1) {
                    buf_printf(plan, "%s >= %" PRId64 "\n", k, a + step);
                    break;
                }
            }
        }
        PQclear(res);
        free(k);
        return 0;
    }
    if (by_key) {
        /* Any other key: boundaries every chunk_rows rows in key order. */
        struct buf keys = BUF_INIT, lits = BUF_INIT;
        int nk = 0;
        for (uint16_t i = 0; i < tab->ncols; i++) {
            if (!tab->cols[i].key)
                continue;
            char *q = pgconn_quote_ident(tab->cols[i].name);
            buf_printf(&keys, "%s%s", nk ? ", " : "", q);
            free(q);
            nk++;
        }
        char *fw = pubrel_from_where(pub, NULL);
        char *sql = xasprintf("SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s) AS rn "
                              "%s) s WHERE rn %% %" PRId64 " = 0 ORDER BY rn",
                              keys.p, keys.p, keys.p, fw, chunk_rows);
        free(fw);
        res = pgconn_exec(conn, e, sizeof e, sql, 0, NULL);
        free(sql);
        if (!res) {
            buf_fini(&keys);
            return cdc_fail(err, errlen, CDC_ECONN, "snapshot: cannot plan %s: %s", qname, e);
        }
        /* Row literals (v1::type1, v2::type2) for each boundary. */
        int nb = PQntuples(res);
        char **b = xcalloc((size_t)nb + 1, sizeof *b);
        for (int r = 0; r < nb; r++) {
            buf_reset(&lits);
            buf_putc(&lits, '(');
            int c = 0;
            for (uint16_t i = 0; i < tab->ncols; i++) {
                if (!tab->cols[i].key)
                    continue;
                char *lit = snapplan_literal(PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
                buf_printf(&lits, "%s%s::%s", c ? ", " : "", lit, tab->cols[i].type_name);
                free(lit);
                c++;
            }
            buf_putc(&lits, ')');
            b[r] = xstrdup(lits.p);
        }
        PQclear(res);
        *estimate = (uint64_t)(nb + 1) * (uint64_t)chunk_rows;
        for (int r = 0; r <= nb; r++) {
            if (r == 0 && nb == 0)
                buf_puts(plan, "true\n");
            else if (r == 0)
                buf_printf(plan, "(%s) <= %s\n", keys.p, b[0]);
            else if (r == nb)
                buf_printf(plan, "(%s) > %s\n", keys.p, b[r - 1]);
            else
                buf_printf(plan, "(%s) > %s AND (%s) <= %s\n", keys.p, b[r - 1], keys.p, b[r]);
        }
        for (int r = 0; r < nb; r++)
            free(b[r]);
        free(b);
        buf_fini(&keys);
        buf_fini(&lits);
        return 0;
    }
    /* No unique key: ranges of pages (TID range scans). */
    double per_page = relpages > 0 && reltuples > 0 ? (double)reltuples / (double)relpages : 100.0;
    int64_t step = (int64_t)((double)chunk_rows / per_page);
    if (step < 1)
        step = 1;
    *estimate = reltuples > 0 ? (uint64_t)reltuples : 0;
    if (pages <= step || pub->no_ctid) {
        buf_puts(plan, "true\n");
        return 0;
    }
    for (int64_t p = 0; p < pages; p += step) {
        if (p == 0)
            buf_printf(plan, "ctid < '(%" PRId64 ",0)'::tid\n", step);
        else if (p + step >= pages)
            buf_printf(plan, "ctid >= '(%" PRId64 ",0)'::tid\n", p);
        else
            buf_printf(plan, "ctid >= '(%" PRId64 ",0)'::tid AND ctid < '(%" PRId64 ",0)'::tid\n",
                       p, p + step);
    }
    return 0;
}

char *snapplan_literal(const char *s, size_t len)
{
    struct buf b = BUF_INIT;
    buf_reserve(&b, len + 4);
    buf_puts(&b, "E'");
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '\\':
            buf_puts(&b, "\\\\");
            break;
        case '\'':
            buf_puts(&b, "''");
            break;
        case '\n':
            buf_puts(&b, "\\n");
            break;
        case '\r':
            buf_puts(&b, "\\r");
            break;
        default:
            buf_putc(&b, s[i]);
        }
    }
    buf_putc(&b, '\'');
    return b.p;
}
