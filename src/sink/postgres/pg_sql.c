/* The statements replica mode sends, built once per table shape.
 *
 * Every parameter is sent with the mirror column's type (struct pgs_mirror's
 * types), so the server parses the source's text as that type and never has
 * to guess one.  Rows are found
 *   by key:    key columns equal ($n typed, so composite, enum, domain, range
 *              and array keys compare as values), for tables with a unique,
 *              immediate key;
 *   by row:    otherwise, one row (by ctid) whose every column prints the
 *              same text as the old value parsed as that column's type, NULL
 *              matching NULL; key columns, if any, compared with `=`.  Text of
 *              typed values, not `=`: types without an equality operator
 *              (json, xml, point, polygon…) work, and values `=` calls equal
 *              but that differ (0 and -0, 'A' and 'a' under citext) never find
 *              the wrong one of two rows.  Both sides print in the mirror's own
 *              session with fixed TimeZone, DateStyle, IntervalStyle and
 *              extra_float_digits, so the texts are comparable. */
#include <stdio.h>
#include <stdlib.h>

#include "pg/pgconn.h"
#include "sink/postgres/pg_sink.h"

static void put_ident(struct buf *b, const char *name)
{
    char *q = pgconn_quote_ident(name);
    buf_puts(b, q);
    free(q);
}

void pgs_sql_put_cols(struct buf *b, const struct cdc_table *tab)
{
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (i)
            buf_puts(b, ", ");
        put_ident(b, tab->cols[i].name);
    }
}

static bool by_key(const struct pgs_mirror *m)
{
    return !m->by_row;
}

/* WHERE clause matching the old row; parameters start at $first, one per
 * matched column in column order (key columns by key, every column by row). */
static void put_match(struct buf *b, const struct pgs_mirror *m, int first)
{
    const struct cdc_table *tab = m->tab;
    int p = first;
    if (by_key(m)) {
        buf_puts(b, " WHERE ");
        bool any = false;
        for (uint16_t i = 0; i < tab->ncols; i++) {
            if (!tab->cols[i].key)
                continue;
            if (any)
                buf_puts(b, " AND ");
            put_ident(b, tab->cols[i].name);
            buf_printf(b, " = $%d", p++);
            any = true;
        }
        return;
    }
    /* (A table without columns: any row.) */
    buf_printf(b, " WHERE ctid = (SELECT ctid FROM %s WHERE true", m->qname);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        buf_puts(b, " AND ");
        put_ident(b, tab->cols[i].name);
        if (tab->key_unique && tab->cols[i].key) {
            buf_printf(b, " = $%d", p++);
        } else {
            buf_printf(b, "::text IS NOT DISTINCT FROM $%d::text", p++);
        }
    }
    buf_puts(b, " LIMIT 1)");
}

int pgs_sql_match_types(const struct pgs_mirror *m, Oid *types, int n)
{
    const struct cdc_table *tab = m->tab;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (!by_key(m) || tab->cols[i].key)
            types[n++] = m->types[i];
    return n;
}

static void put_key_list(struct buf *b, const struct cdc_table *tab)
{
    bool any = false;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!tab->cols[i].key)
            continue;
        if (any)
            buf_puts(b, ", ");
        put_ident(b, tab->cols[i].name);
        any = true;
    }
}

/* "INSERT INTO t (c1, …) OVERRIDING SYSTEM VALUE": the source's values,
 * also for a mirror's GENERATED ALWAYS identity. */
static void put_insert_head(struct buf *b, const struct pgs_mirror *m)
{
    const struct cdc_table *tab = m->tab;
    buf_printf(b, "INSERT INTO %s (", m->qname);
    pgs_sql_put_cols(b, tab);
    buf_puts(b, ") OVERRIDING SYSTEM VALUE");
}

/* By key: " ON CONFLICT (key) DO UPDATE SET" every other column (DO NOTHING
 * when the key is every column); nothing by row. */
static void put_conflict(struct buf *b, const struct pgs_mirror *m)
{
    const struct cdc_table *tab = m->tab;
    if (!by_key(m))
        return;
    buf_puts(b, " ON CONFLICT (");
    put_key_list(b, tab);
    buf_puts(b, ") DO ");
    if (tab->nkeys == tab->ncols) {
        buf_puts(b, "NOTHING");
        return;
    }
    buf_puts(b, "UPDATE SET ");
    bool any = false;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (tab->cols[i].key)
            continue;
        if (any)
            buf_puts(b, ", ");
        put_ident(b, tab->cols[i].name);
        buf_puts(b, " = EXCLUDED.");
        put_ident(b, tab->cols[i].name);
        any = true;
    }
}

/* "($1, …, $per_row), ($per_row+1, …), …": rows rows of parameters. */
static void put_param_rows(struct buf *b, size_t rows, unsigned per_row)
{
    unsigned p = 1;
    for (size_t r = 0; r < rows; r++) {
        buf_puts(b, r ? ", (" : "(");
        for (unsigned i = 0; i < per_row; i++)
            buf_printf(b, "%s$%u", i ? ", " : "", p++);
        buf_putc(b, ')');
    }
}

char *pgs_sql_insert(const struct pgs_mirror *m, size_t rows)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    if (tab->ncols == 0) { /* rows without columns */
        buf_printf(&b, "INSERT INTO %s SELECT FROM generate_series(1, %zu)", m->qname, rows);
        return b.p;
    }
    put_insert_head(&b, m);
    buf_puts(&b, " VALUES ");
    put_param_rows(&b, rows, tab->ncols);
    put_conflict(&b, m);
    return b.p;
}

char *pgs_sql_insert_from(const struct pgs_mirror *m, const char *stage)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    put_insert_head(&b, m);
    buf_puts(&b, " SELECT ");
    pgs_sql_put_cols(&b, tab);
    buf_printf(&b, " FROM %s", stage);
    put_conflict(&b, m);
    return b.p;
}

char *pgs_sql_copy(const struct pgs_mirror *m, const char *target, bool binary)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "COPY %s (", target);
    pgs_sql_put_cols(&b, m->tab);
    buf_puts(&b, binary ? ") FROM STDIN (FORMAT binary)" : ") FROM STDIN");
    return b.p;
}

char *pgs_sql_stage_create(const struct pgs_mirror *m, const char *stage)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "CREATE TEMP TABLE IF NOT EXISTS %s ON COMMIT DELETE ROWS AS SELECT ", stage);
    pgs_sql_put_cols(&b, m->tab);
    buf_printf(&b, " FROM %s WITH NO DATA", m->qname);
    return b.p;
}

char *pgs_sql_update(const struct pgs_mirror *m, const bool *skip, bool set_keys)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    buf_printf(&b, "UPDATE %s SET ", m->qname);
    int p = 1;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        /* By key, the key is matched, not set (a GENERATED ALWAYS identity
         * could not be), unless the update moves the row. */
        if ((skip && skip[i]) || (by_key(m) && tab->cols[i].key && !set_keys))
            continue;
        if (p > 1)
            buf_puts(&b, ", ");
        put_ident(&b, tab->cols[i].name);
        buf_printf(&b, " = $%d", p++);
    }
    if (p == 1) { /* nothing to set */
        buf_fini(&b);
        return NULL;
    }
    put_match(&b, m, p);
    return b.p;
}

char *pgs_sql_delete(const struct pgs_mirror *m)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "DELETE FROM %s", m->qname);
    put_match(&b, m, 1);
    return b.p;
}

char *pgs_sql_delete_keys(const struct pgs_mirror *m, size_t rows)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    buf_printf(&b, "DELETE FROM %s WHERE (", m->qname);
    put_key_list(&b, tab);
    buf_puts(&b, ") IN (VALUES ");
    put_param_rows(&b, rows, tab->nkeys);
    buf_putc(&b, ')');
    return b.p;
}

char *pgs_sql_delete_key(const struct pgs_mirror *m)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    buf_printf(&b, "DELETE FROM %s WHERE ", m->qname);
    int p = 1;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!tab->cols[i].key)
            continue;
        if (p > 1)
            buf_puts(&b, " AND ");
        put_ident(&b, tab->cols[i].name);
        buf_printf(&b, " = $%d", p++);
    }
    return b.p;
}
