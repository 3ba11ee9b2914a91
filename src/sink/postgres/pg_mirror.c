/* Replica mode: keeps a mirror of each captured table.
 *
 * Mirror tables are created from the source's column list (the key becomes
 * the primary key) and gain columns the source adds.  Statements per shape:
 *   insert / snapshot row / update with the whole row and the same key:
 *       INSERT … ON CONFLICT (key) DO UPDATE   (idempotent)
 *   update that changes the key: DELETE the old key, then the upsert
 *   update that leaves TOAST values unchanged:
 *       UPDATE … SET <carried columns> WHERE key = <old key>
 *   delete: DELETE … WHERE key = <old key>
 *   tables whose identity is the whole row (REPLICA IDENTITY FULL, no key):
 *       one row matching every old value, found by ctid
 *   truncate: TRUNCATE. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "sink/postgres/pg_config.h"
#include "sink/postgres/pg_sink.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/mem.h"

#define GROUP_SIZES 9 /* multi-row statements of 1, 2, 4, … 256 rows */

struct pgs_mirror {
    struct cdc_table *tab;    /* owned reference */
    char *qname;              /* quoted target table */
    char *ins_sql;            /* upsert, or plain insert for row-identity tables */
    char *ins_n[GROUP_SIZES]; /* the same for 2^i rows, built when first needed */
    size_t group_max;         /* rows per statement: 256, fewer for wide tables */
    char *upd_sql;            /* all columns, by old key or old row */
    char *del_sql;
};

void pgs_mirror_free(void *p)
{
    struct pgs_mirror *m = p;
    if (!m)
        return;
    cdc_table_unref(m->tab);
    free(m->qname);
    free(m->ins_sql);
    for (int i = 0; i < GROUP_SIZES; i++)
        free(m->ins_n[i]);
    free(m->upd_sql);
    free(m->del_sql);
    free(m);
}

static void put_ident(struct buf *b, const char *name)
{
    char *q = pgconn_quote_ident(name);
    buf_puts(b, q);
    free(q);
}

/* WHERE clause matching the old row: by key columns when they are unique,
 * otherwise by every column's text (one row, by ctid).  Parameters start at
 * $first, in column order of the matched columns. */
static void put_match(struct buf *b, const struct pgs_mirror *m, int first)
{
    const struct cdc_table *tab = m->tab;
    int p = first;
    if (tab->key_unique) {
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
    buf_printf(b, " WHERE ctid = (SELECT ctid FROM %s WHERE ", m->qname);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (i)
            buf_puts(b, " AND ");
        put_ident(b, tab->cols[i].name);
        buf_printf(b, "::text IS NOT DISTINCT FROM $%d::text", p++);
    }
    buf_puts(b, " LIMIT 1)");
}

static char *build_insert(const struct pgs_mirror *m, size_t rows)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    buf_printf(&b, "INSERT INTO %s (", m->qname);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (i)
            buf_puts(&b, ", ");
        put_ident(&b, tab->cols[i].name);
    }
    buf_puts(&b, ") VALUES ");
    unsigned p = 1;
    for (size_t r = 0; r < rows; r++) {
        buf_puts(&b, r ? ", (" : "(");
        for (uint16_t i = 0; i < tab->ncols; i++)
            buf_printf(&b, "%s$%u", i ? ", " : "", p++);
        buf_putc(&b, ')');
    }
    if (tab->key_unique) {
        buf_puts(&b, " ON CONFLICT (");
        bool any = false;
        for (uint16_t i = 0; i < tab->ncols; i++) {
            if (!tab->cols[i].key)
                continue;
            if (any)
                buf_puts(&b, ", ");
            put_ident(&b, tab->cols[i].name);
            any = true;
        }
        buf_puts(&b, ") DO ");
        if (tab->nkeys == tab->ncols) {
            buf_puts(&b, "NOTHING");
        } else {
            buf_puts(&b, "UPDATE SET ");
            any = false;
            for (uint16_t i = 0; i < tab->ncols; i++) {
                if (tab->cols[i].key)
                    continue;
                if (any)
                    buf_puts(&b, ", ");
                put_ident(&b, tab->cols[i].name);
                buf_puts(&b, " = EXCLUDED.");
                put_ident(&b, tab->cols[i].name);
                any = true;
            }
        }
    }
    return b.p;
}

/* UPDATE setting the columns whose after value was carried (skip[i] false). */
static char *build_update(const struct pgs_mirror *m, const bool *skip)
{
    const struct cdc_table *tab = m->tab;
    struct buf b = BUF_INIT;
    buf_printf(&b, "UPDATE %s SET ", m->qname);
    int p = 1;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (skip && skip[i])
            continue;
        if (p > 1)
            buf_puts(&b, ", ");
        put_ident(&b, tab->cols[i].name);
        buf_printf(&b, " = $%d", p++);
    }
    put_match(&b, m, p);
    return b.p;
}

static char *build_delete(const struct pgs_mirror *m)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "DELETE FROM %s", m->qname);
    put_match(&b, m, 1);
    return b.p;
}

/* Creates the mirror table, or adds columns the source has and it lacks. */
static int ensure_table(struct sink *sk, struct pgs_mirror *m, const char *schema)
{
    const struct cdc_table *tab = m->tab;
    const char *vals[1] = {m->qname};
    PGresult *res = pgs_query(sk,
                              "SELECT a.attname FROM pg_attribute a "
                              "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                              "AND NOT a.attisdropped",
                              1, vals);
    if (!res)
        return CDC_ERR;
    int nhave = PQntuples(res);
    struct buf ddl = BUF_INIT;
    if (nhave == 0) {
        if (!pg_conf(sk)->create_tables) {
            PQclear(res);
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "mirror table %s does not exist and create_tables is false",
                                  m->qname);
        }
        buf_puts(&ddl, "CREATE SCHEMA IF NOT EXISTS ");
        put_ident(&ddl, schema);
        buf_printf(&ddl, "; CREATE TABLE IF NOT EXISTS %s (", m->qname);
        for (uint16_t i = 0; i < tab->ncols; i++) {
            if (i)
                buf_puts(&ddl, ", ");
            put_ident(&ddl, tab->cols[i].name);
            buf_printf(&ddl, " %s", tab->cols[i].type_name);
        }
        if (tab->key_unique) {
            buf_puts(&ddl, ", PRIMARY KEY (");
            bool any = false;
            for (uint16_t i = 0; i < tab->ncols; i++) {
                if (!tab->cols[i].key)
                    continue;
                if (any)
                    buf_puts(&ddl, ", ");
                put_ident(&ddl, tab->cols[i].name);
                any = true;
            }
            buf_putc(&ddl, ')');
        }
        buf_putc(&ddl, ')');
        log_info("sink.postgres.create_table", "sink=%s table=%s", sk->cfg->sink_id,
                 log_q(m->qname));
    } else {
        for (uint16_t i = 0; i < tab->ncols; i++) {
            bool found = false;
            for (int r = 0; r < nhave && !found; r++)
                found = strcmp(PQgetvalue(res, r, 0), tab->cols[i].name) == 0;
            if (found)
                continue;
            buf_printf(&ddl, "%sALTER TABLE %s ADD COLUMN IF NOT EXISTS ", ddl.len ? "; " : "",
                       m->qname);
            put_ident(&ddl, tab->cols[i].name);
            buf_printf(&ddl, " %s", tab->cols[i].type_name);
            log_info("sink.postgres.add_column", "sink=%s table=%s column=%s", sk->cfg->sink_id,
                     log_q(m->qname), log_q(tab->cols[i].name));
        }
    }
    PQclear(res);
    int rc = 0;
    if (ddl.len) {
        res = pgs_query(sk, ddl.p, 0, NULL);
        if (!res)
            rc = CDC_ERR;
        PQclear(res);
    }
    buf_fini(&ddl);
    return rc;
}

static struct pgs_mirror *get_mirror(struct sink *sk, struct cdc_table *tab)
{
    struct pgsink *ps = sk->priv;
    /* Keyed by the table's shape, not its version: a Relation message comes
     * again after every reconnect, mostly with the same columns. */
    uint64_t h = hash_bytes(HASH_SEED, tab->schema, strlen(tab->schema) + 1);
    h = hash_bytes(h, tab->name, strlen(tab->name) + 1);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        h = hash_bytes(h, tab->cols[i].name, strlen(tab->cols[i].name) + 1);
        h = hash_bytes(h, tab->cols[i].type_name, strlen(tab->cols[i].type_name) + 1);
        uint8_t k = (uint8_t)(tab->cols[i].key | (tab->key_unique << 1));
        h = hash_bytes(h, &k, 1);
    }
    char key[64];
    snprintf(key, sizeof key, "%u:%u:%016llx", tab->id, tab->ncols,
             (unsigned long long)hash_finish(h));
    struct pgs_mirror *m = strmap_get(ps->mirrors, key);
    if (m)
        return m;
    m = xcalloc(1, sizeof *m);
    cdc_table_ref(tab);
    m->tab = tab;
    const char *schema = pg_conf(sk)->target_schema ? pg_conf(sk)->target_schema : tab->schema;
    m->qname = pgconn_quote_qualified(schema, tab->name);
    if (ensure_table(sk, m, schema) != 0) {
        pgs_mirror_free(m);
        return NULL;
    }
    m->ins_sql = build_insert(m, 1);
    m->group_max = tab->ncols ? 65535u / tab->ncols : 256;
    if (m->group_max > 256)
        m->group_max = 256;
    m->upd_sql = build_update(m, NULL);
    m->del_sql = build_delete(m);
    strmap_put(ps->mirrors, key, m);
    return m;
}

static const char *val_text(const struct cdc_event *ev, const struct cdc_val *v)
{
    return v->kind == CDC_V_TEXT ? cdc_val_ptr(ev, v) : NULL;
}

/* Appends the old-row match parameters (key columns, or all columns). */
static int put_match_params(struct sink *sk, const struct cdc_event *ev, const struct cdc_val *row,
                            const char **vals, int n)
{
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (tab->key_unique && !tab->cols[i].key)
            continue;
        if (row[i].kind == CDC_V_UNCHANGED)
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "table %s.%s: the log did not carry column %s needed to find "
                                  "the row",
                                  tab->schema, tab->name, tab->cols[i].name);
        vals[n++] = val_text(ev, &row[i]);
    }
    return n;
}

static bool key_changed(const struct cdc_event *ev)
{
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!tab->cols[i].key)
            continue;
        const struct cdc_val *a = &ev->before[i], *b = &ev->after[i];
        if (b->kind == CDC_V_UNCHANGED)
            continue;
        if (a->kind != b->kind ||
            (a->kind == CDC_V_TEXT &&
             (a->len != b->len || memcmp(cdc_val_ptr(ev, a), cdc_val_ptr(ev, b), a->len) != 0)))
            return true;
    }
    return false;
}

static int group_add(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev);
static bool groupable(const struct sink *sk, const struct cdc_event *ev);

static int apply_update(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = ev->tab;
    bool unchanged = false;
    for (uint16_t i = 0; i < tab->ncols; i++)
        unchanged |= ev->after[i].kind == CDC_V_UNCHANGED;
    bool moved = ev->before && tab->key_unique && key_changed(ev);

    /* The whole new row is known: upsert it, with its neighbours when it may.
     * When the key changed, first delete the old key's row (an UPDATE could
     * collide with a row a resumed snapshot already brought under the new
     * key).  Anything but a grouped upsert goes out after the group, so the
     * mirror sees changes in stream order. */
    if (tab->key_unique && !unchanged && !moved && groupable(sk, ev))
        return group_add(sk, m, ev);
    int rc = pgs_mirror_flush_group(sk);
    if (rc)
        return rc;
    const char **vals = pgs_vals(ps, 2u * tab->ncols); /* after the flush: it may grow them */
    if (tab->key_unique && !unchanged) {
        if (moved) {
            int n = put_match_params(sk, ev, ev->before, vals, 0);
            if (n < 0)
                return n;
            if ((rc = pgs_send_stmt(sk, m->del_sql, n, vals, ev)))
                return rc;
        }
        for (uint16_t i = 0; i < tab->ncols; i++)
            vals[i] = val_text(ev, &ev->after[i]);
        return pgs_send_stmt(sk, m->ins_sql, tab->ncols, vals, ev);
    }
    /* The row to change: old key (or old row) from before when the log sent
     * it, else the key from after (the key did not change). */
    const struct cdc_val *old = ev->before ? ev->before : ev->after;
    if (!tab->key_unique && !ev->before)
        return sink_set_error(sk, SINK_ERR_PERMANENT,
                              "table %s.%s has no key and the log carried no old row", tab->schema,
                              tab->name);
    bool *skip = NULL;
    char *sql = m->upd_sql;
    int n = 0;
    if (unchanged) {
        skip = xcalloc(tab->ncols, sizeof *skip);
        for (uint16_t i = 0; i < tab->ncols; i++)
            skip[i] = ev->after[i].kind == CDC_V_UNCHANGED;
        sql = build_update(m, skip);
    }
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (!skip || !skip[i])
            vals[n++] = val_text(ev, &ev->after[i]);
    rc = put_match_params(sk, ev, old, vals, n);
    if (rc >= 0)
        rc = pgs_send_stmt(sk, sql, rc, vals, ev);
    if (skip) {
        free(skip);
        free(sql);
    }
    return rc;
}

/* Sends group rows [from, from + 2^i) as one statement. */
static int send_rows(struct sink *sk, struct pgs_mirror *m, size_t from, int i)
{
    struct pgsink *ps = sk->priv;
    size_t rows = (size_t)1 << i;
    uint16_t nc = m->tab->ncols;
    if (!m->ins_n[i])
        m->ins_n[i] = build_insert(m, rows);
    const char **vals = pgs_vals(ps, rows * nc);
    for (size_t r = 0; r < rows; r++) {
        const struct cdc_event *ev = ps->grp[from + r];
        for (uint16_t c = 0; c < nc; c++)
            vals[r * nc + c] = val_text(ev, &ev->after[c]);
    }
    int rc = pgs_send_stmt(sk, m->ins_n[i], (int)(rows * nc), vals, ps->grp[from + rows - 1]);
    if (rc == 0 && rows > 1)
        pgs_mark_group(sk, ps->grp[from + rows - 1]);
    return rc;
}

int pgs_mirror_flush_group(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    if (!ps || ps->ngrp == 0)
        return 0;
    struct pgs_mirror *m = ps->grp_mirror;
    size_t n = ps->ngrp, from = 0;
    ps->ngrp = 0;
    strmap_free(ps->grp_keys, NULL);
    ps->grp_keys = NULL;
    /* Largest powers of two first: at most nine shapes per table. */
    for (int i = GROUP_SIZES - 1; i >= 0 && from < n; i--) {
        size_t rows = (size_t)1 << i;
        while (n - from >= rows) {
            int rc = send_rows(sk, m, from, i);
            if (rc)
                return rc;
            from += rows;
        }
    }
    return 0;
}

/* Queues an insert (or a whole-row upsert) to go out with its neighbours.
 * A key already in the group starts a new one: one statement must not touch
 * the same row twice. */
static int group_add(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    int rc;
    if (ps->ngrp && (ps->grp_mirror != m || ps->ngrp >= m->group_max) &&
        (rc = pgs_mirror_flush_group(sk)))
        return rc;
    if (m->tab->key_unique) {
        buf_reset(&ps->grp_key);
        for (uint16_t i = 0; i < m->tab->ncols; i++) {
            if (!m->tab->cols[i].key)
                continue;
            const struct cdc_val *v = &ev->after[i];
            buf_putc(&ps->grp_key, (char)('0' + v->kind));
            if (v->kind == CDC_V_TEXT)
                buf_put(&ps->grp_key, cdc_val_ptr(ev, v), v->len);
            buf_putc(&ps->grp_key, '\x1f');
        }
        const char *key = ps->grp_key.p ? ps->grp_key.p : "";
        if (ps->grp_keys && strmap_get(ps->grp_keys, key) && (rc = pgs_mirror_flush_group(sk)))
            return rc;
        if (!ps->grp_keys)
            ps->grp_keys = strmap_new();
        strmap_put(ps->grp_keys, key, (void *)1);
    }
    if (ps->ngrp == ps->capgrp) {
        ps->capgrp = ps->capgrp ? 2 * ps->capgrp : 256;
        ps->grp = xrealloc(ps->grp, ps->capgrp * sizeof *ps->grp);
    }
    ps->grp_mirror = m;
    ps->grp[ps->ngrp++] = ev;
    return 0;
}

/* Whether ev may share a statement with its neighbours: not while going one
 * by one to find a row the destination refused. */
static bool groupable(const struct sink *sk, const struct cdc_event *ev)
{
    return sk->single_until.lsn == 0 || ev->snapshot || cdc_pos_cmp(ev->pos, sk->single_until) > 0;
}

int pgs_mirror_apply(struct sink *sk, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = ev->tab;
    struct pgs_mirror *m = get_mirror(sk, ev->tab);
    if (!m)
        return CDC_ERR;
    if ((ev->op == CDC_OP_UPDATE || ev->op == CDC_OP_DELETE) && tab->nkeys == 0) {
        if (!ps->warned_nokey)
            log_warn("sink.postgres.no_key", "sink=%s table=%s.%s", sk->cfg->sink_id, tab->schema,
                     tab->name);
        ps->warned_nokey = true;
        return 0;
    }
    if ((ev->op == CDC_OP_INSERT || ev->op == CDC_OP_READ) && groupable(sk, ev))
        return group_add(sk, m, ev);
    if (ev->op == CDC_OP_UPDATE)
        return apply_update(sk, m, ev);
    int grc = pgs_mirror_flush_group(sk);
    if (grc)
        return grc;
    const char **vals = pgs_vals(ps, 2u * tab->ncols);
    switch (ev->op) {
    case CDC_OP_INSERT:
    case CDC_OP_READ:
        for (uint16_t i = 0; i < tab->ncols; i++)
            vals[i] = val_text(ev, &ev->after[i]);
        return pgs_send_stmt(sk, m->ins_sql, tab->ncols, vals, ev);
    case CDC_OP_DELETE: {
        if (!ev->before)
            return sink_set_error(sk, SINK_ERR_PERMANENT, "table %s.%s: delete without old key",
                                  tab->schema, tab->name);
        int n = put_match_params(sk, ev, ev->before, vals, 0);
        if (n < 0)
            return n;
        return pgs_send_stmt(sk, m->del_sql, n, vals, ev);
    }
    case CDC_OP_TRUNCATE: {
        char *sql = xasprintf("TRUNCATE %s", m->qname);
        int rc = pgs_send_plain(sk, sql, PGS_STMT, ev);
        free(sql);
        return rc;
    }
    default:
        return 0;
    }
}
