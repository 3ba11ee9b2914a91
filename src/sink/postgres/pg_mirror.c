/* Replica mode: applies changes to the mirror of each captured table.
 *
 * Mirror tables are created and kept in line with the source by pg_schema.c;
 * the statements come from pg_sql.c.  Statements per shape of change:
 *   insert / snapshot row / update with the whole row and the same key:
 *       INSERT … ON CONFLICT (key) DO UPDATE   (idempotent), several rows of
 *       one table per statement; a long run of snapshot rows, or of
 *       inserts, into one table is loaded with COPY with the same effect
 *       (pg_copy.c)
 *   update that changes the key: DELETE the old key, then the upsert
 *   update that leaves TOAST values unchanged:
 *       UPDATE … SET <carried columns> WHERE key = <old key>
 *   delete: DELETE … WHERE key = <old key>; a run of deletes from one table
 *       by key goes out as DELETE … WHERE (key) IN (VALUES …), several rows
 *       per statement
 *   tables whose rows are found by their whole old image (no unique key, or
 *   a DEFERRABLE one): plain INSERT; UPDATE and DELETE of one row matching
 *   every old value, which must exist (a miss is an error, not a no-op);
 *   a DEFERRABLE key is deferred in the mirror too, and the database
 *   transaction ends with the source transaction that used it
 *   truncate: one TRUNCATE of every table the source truncated together,
 *   with its RESTART IDENTITY and CASCADE. */
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

void pgs_mirror_free(void *p)
{
    struct pgs_mirror *m = p;
    if (!m)
        return;
    cdc_table_unref(m->tab);
    free(m->qname);
    free(m->types);
    free(m->ins_sql);
    for (int i = 0; i < PGS_GROUP_SIZES; i++) {
        free(m->ins_n[i]);
        free(m->del_n[i]);
    }
    free(m->upd_sql);
    free(m->del_sql);
    free(m->del_key_sql);
    free(m->stage_create);
    free(m->stage_insert);
    for (int i = 0; i < 2; i++) {
        free(m->stage_copy[i]);
        free(m->direct_copy[i]);
    }
    free(m);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    return s ? hash_bytes(h, s, strlen(s) + 1) : hash_bytes(h, "", 1);
}

/* Rows per multi-row statement of per_row parameters each: 256, fewer
 * where they would pass the protocol's 65,535 parameters. */
static size_t rows_per_statement(unsigned per_row)
{
    size_t n = per_row ? 65535u / per_row : 256;
    return n > 256 ? 256 : n ? n : 1;
}

/* The mirror for tab's shape.  Keyed by the shape, not the version: a
 * Relation message comes again after every reconnect, mostly with the same
 * columns.  The shape includes what the schema code decides on (column
 * numbers, missing values), so a new one is checked against the mirror. */
static struct pgs_mirror *find_mirror(struct sink *sk, struct cdc_table *tab)
{
    struct pgsink *ps = sk->priv;
    uint64_t h = hash_str(HASH_SEED, tab->schema);
    h = hash_str(h, tab->name);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        const struct cdc_column *c = &tab->cols[i];
        h = hash_str(h, c->name);
        h = hash_str(h, c->type_name);
        h = hash_str(h, c->missing);
        int16_t attnum = c->attnum;
        h = hash_bytes(h, &attnum, sizeof attnum);
        uint8_t k = (uint8_t)(c->key | (tab->key_unique << 1) | (tab->key_deferrable << 2) |
                              (c->volatile_default << 3) | ((c->missing != NULL) << 4) |
                              (c->has_default << 5));
        h = hash_bytes(h, &k, 1);
    }
    char key[64];
    snprintf(key, sizeof key, "%" PRIu64 ":%u:%016llx", tab->id, tab->ncols,
             (unsigned long long)hash_finish(h));
    struct pgs_mirror *m = strmap_get(ps->mirrors, key);
    if (m)
        return m;
    m = xcalloc(1, sizeof *m);
    cdc_table_ref(tab);
    m->tab = tab;
    m->by_row = !tab->key_unique || tab->key_deferrable;
    const char *schema = pg_conf(sk)->target_schema ? pg_conf(sk)->target_schema : tab->schema;
    m->qname = pgconn_quote_qualified(schema, tab->name);
    if (pgs_schema_ensure(sk, m) != 0) {
        pgs_mirror_free(m);
        return NULL;
    }
    m->ins_sql = pgs_sql_insert(m, 1);
    m->group_max = rows_per_statement(tab->ncols);
    m->del_max = rows_per_statement(tab->nkeys);
    m->upd_sql = pgs_sql_update(m, NULL, true);
    m->del_sql = pgs_sql_delete(m);
    if (tab->key_unique)
        m->del_key_sql = pgs_sql_delete_key(m);
    strmap_put(ps->mirrors, key, m);
    return m;
}

/* find_mirror, remembering the last table version: a version's shape never
 * changes, and mirrors live as long as the sink. */
static struct pgs_mirror *get_mirror(struct sink *sk, struct cdc_table *tab)
{
    struct pgsink *ps = sk->priv;
    if (tab == ps->last_tab)
        return ps->last_mirror;
    struct pgs_mirror *m = find_mirror(sk, tab);
    if (!m)
        return NULL;
    cdc_table_ref(tab);
    if (ps->last_tab)
        cdc_table_unref(ps->last_tab);
    ps->last_tab = tab;
    ps->last_mirror = m;
    return m;
}

static const char *val_text(const struct cdc_event *ev, const struct cdc_val *v)
{
    return v->kind == CDC_V_TEXT ? cdc_val_ptr(ev, v) : NULL;
}

/* Appends the old-row match parameters (key columns by key, every column by
 * row) to vals[n..]; returns the new count or an error. */
static int put_match_params(struct sink *sk, const struct pgs_mirror *m, const struct cdc_event *ev,
                            const struct cdc_val *row, const char **vals, int n)
{
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!m->by_row && !tab->cols[i].key)
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

/* Sends sql with vals[0..n) typed as the mirror's columns say (types filled
 * by the caller), marking statements that must find their row. */
static int send(struct sink *sk, const char *sql, int n, const struct cdc_event *ev,
                bool must_match)
{
    struct pgsink *ps = sk->priv;
    int rc = pgs_send_stmt(sk, sql, n, ps->vals, ps->types, ev);
    if (rc == 0 && must_match)
        pgs_mark_must_match(sk);
    return rc;
}

static int group_add(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev);
static bool groupable(const struct sink *sk, const struct cdc_event *ev);

/* An update, by row: one row matching the whole old image gets the carried
 * columns. */
static int update_by_row(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = ev->tab;
    if (!ev->before)
        return sink_set_error(sk, SINK_ERR_PERMANENT,
                              "table %s.%s has no unique key and the log carried no old row",
                              tab->schema, tab->name);
    bool *skip = NULL;
    char *sql = m->upd_sql;
    for (uint16_t i = 0; i < tab->ncols && !skip; i++)
        if (ev->after[i].kind == CDC_V_UNCHANGED) {
            skip = xcalloc(tab->ncols, sizeof *skip);
            for (uint16_t k = 0; k < tab->ncols; k++)
                skip[k] = ev->after[k].kind == CDC_V_UNCHANGED;
            sql = pgs_sql_update(m, skip, true);
        }
    int rc = 0;
    if (sql) {
        pgs_scratch(ps, 2u * tab->ncols);
        int n = 0;
        for (uint16_t i = 0; i < tab->ncols; i++)
            if (!skip || !skip[i]) {
                ps->types[n] = m->types[i];
                ps->vals[n++] = val_text(ev, &ev->after[i]);
            }
        pgs_sql_match_types(m, ps->types, n);
        rc = put_match_params(sk, m, ev, ev->before, ps->vals, n);
        if (rc >= 0)
            rc = send(sk, sql, rc, ev, true);
    }
    if (skip) {
        free(skip);
        free(sql);
    }
    return rc;
}

static int apply_update(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = ev->tab;
    if (m->by_row) {
        int rc = pgs_mirror_flush_group(sk);
        return rc ? rc : update_by_row(sk, m, ev);
    }
    bool unchanged = false;
    for (uint16_t i = 0; i < tab->ncols; i++)
        unchanged |= ev->after[i].kind == CDC_V_UNCHANGED;
    bool moved = ev->before && cdc_event_key_changed(ev);

    /* The whole new row is known: upsert it, with its neighbours when it may.
     * When the key changed, first delete the old key's row (an UPDATE could
     * collide with a row a resumed snapshot already brought under the new
     * key).  Anything but a grouped upsert goes out after the group, so the
     * mirror sees changes in stream order. */
    if (!unchanged && !moved && groupable(sk, ev))
        return group_add(sk, m, ev);
    int rc = pgs_mirror_flush_group(sk);
    if (rc)
        return rc;
    pgs_scratch(ps, 2u * tab->ncols); /* after the flush: it may grow them */
    if (!unchanged) {
        if (moved) {
            int n = pgs_sql_match_types(m, ps->types, 0);
            if ((n = put_match_params(sk, m, ev, ev->before, ps->vals, 0)) < 0)
                return n;
            if ((rc = send(sk, m->del_sql, n, ev, false)))
                return rc;
        }
        for (uint16_t i = 0; i < tab->ncols; i++) {
            ps->vals[i] = val_text(ev, &ev->after[i]);
            ps->types[i] = m->types[i];
        }
        return send(sk, m->ins_sql, tab->ncols, ev, false);
    }
    /* TOAST values left out: set what was carried on the row with the old
     * key (from before when the log sent it, else from after: the key did
     * not change). */
    const struct cdc_val *old = ev->before ? ev->before : ev->after;
    bool *skip = xcalloc(tab->ncols, sizeof *skip);
    for (uint16_t i = 0; i < tab->ncols; i++)
        skip[i] = ev->after[i].kind == CDC_V_UNCHANGED;
    char *sql = pgs_sql_update(m, skip, moved);
    if (sql) {
        int n = 0;
        for (uint16_t i = 0; i < tab->ncols; i++)
            if (!skip[i] && (moved || !tab->cols[i].key)) {
                ps->types[n] = m->types[i];
                ps->vals[n++] = val_text(ev, &ev->after[i]);
            }
        pgs_sql_match_types(m, ps->types, n);
        rc = put_match_params(sk, m, ev, old, ps->vals, n);
        if (rc >= 0)
            rc = send(sk, sql, rc, ev, false);
        free(sql);
    }
    free(skip);
    return rc;
}

/* Sends group rows [from, from + 2^i) as one statement. */
static int send_rows(struct sink *sk, struct pgs_mirror *m, size_t from, int i)
{
    struct pgsink *ps = sk->priv;
    size_t rows = (size_t)1 << i;
    uint16_t nc = m->tab->ncols;
    if (!m->ins_n[i])
        m->ins_n[i] = pgs_sql_insert(m, rows);
    pgs_scratch(ps, rows * nc);
    for (size_t r = 0; r < rows; r++) {
        const struct cdc_event *ev = ps->grp[from + r];
        for (uint16_t c = 0; c < nc; c++) {
            ps->vals[r * nc + c] = val_text(ev, &ev->after[c]);
            ps->types[r * nc + c] = m->types[c];
        }
    }
    int rc = send(sk, m->ins_n[i], (int)(rows * nc), ps->grp[from + rows - 1], false);
    if (rc == 0 && rows > 1)
        pgs_mark_group(sk, ps->grp[from + rows - 1]);
    return rc;
}

/* Sends grouped deletes [from, from + 2^i) as one statement (one row: the
 * single-row delete). */
static int send_deletes(struct sink *sk, struct pgs_mirror *m, size_t from, int i)
{
    struct pgsink *ps = sk->priv;
    size_t rows = (size_t)1 << i;
    if (rows > 1 && !m->del_n[i])
        m->del_n[i] = pgs_sql_delete_keys(m, rows);
    pgs_scratch(ps, rows * m->tab->nkeys);
    int n = 0;
    for (size_t r = 0; r < rows; r++) {
        const struct cdc_event *ev = ps->grp[from + r];
        pgs_sql_match_types(m, ps->types, n);
        if ((n = put_match_params(sk, m, ev, ev->before, ps->vals, n)) < 0)
            return n;
    }
    const struct cdc_event *last = ps->grp[from + rows - 1];
    int rc = send(sk, rows > 1 ? m->del_n[i] : m->del_sql, n, last, false);
    if (rc == 0 && rows > 1)
        pgs_mark_group(sk, last);
    return rc;
}

/* Whether the group may join the load: snapshot rows, or inserts. */
static bool parkable(const struct pgsink *ps)
{
    return ps->ngrp && (ps->grp_kind == PGS_GRP_SNAPSHOT || ps->grp_kind == PGS_GRP_INSERTS) &&
           pgs_copy_usable(ps->grp_mirror);
}

int pgs_mirror_flush_group(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    if (!ps)
        return 0;
    int rc = 0;
    /* a group too small for a COPY of its own goes out as statements */
    if (parkable(ps) && (ps->load.nrows || ps->ngrp >= PGS_COPY_MIN))
        rc = pgs_copy_park(sk);
    if (rc == 0)
        rc = pgs_copy_send(sk);
    struct pgs_mirror *m = ps->grp_mirror;
    size_t n = ps->ngrp, from = 0;
    bool del = ps->grp_kind == PGS_GRP_DELETES;
    ps->ngrp = 0;
    keyset_clear(&ps->grp_keys);
    /* Largest powers of two first: at most nine shapes per table. */
    for (int i = PGS_GROUP_SIZES - 1; i >= 0 && from < n && rc == 0; i--) {
        size_t rows = (size_t)1 << i;
        while (n - from >= rows && rc == 0) {
            rc = del ? send_deletes(sk, m, from, i) : send_rows(sk, m, from, i);
            from += rows;
        }
    }
    return rc;
}

int pgs_mirror_end_write(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    return parkable(ps) ? pgs_copy_park(sk) : pgs_mirror_flush_group(sk);
}

/* Starts a group of kind for m: the load goes out first unless the group
 * may join it (it holds one mirror's rows of one kind, and its keys are in
 * grp_keys). */
static int group_start(struct sink *sk, struct pgs_mirror *m, enum pgs_grp kind)
{
    struct pgsink *ps = sk->priv;
    int rc;
    if (ps->load.nrows && (ps->load.m != m || ps->load.kind != kind) && (rc = pgs_copy_send(sk)))
        return rc;
    ps->grp_kind = (uint8_t)kind;
    return 0;
}

uint64_t pgs_mirror_key_hash(const struct pgs_mirror *m, const struct cdc_event *ev)
{
    uint64_t h = HASH_SEED;
    for (uint16_t i = 0; i < m->tab->ncols; i++) {
        if (!m->tab->cols[i].key)
            continue;
        const struct cdc_val *v = &ev->after[i];
        uint32_t tag[2] = {v->kind, v->kind == CDC_V_TEXT ? v->len : 0};
        h = hash_bytes(h, tag, sizeof tag);
        if (v->kind == CDC_V_TEXT)
            h = hash_bytes(h, cdc_val_ptr(ev, v), v->len);
    }
    return hash_finish(h);
}

static void group_push(struct pgsink *ps, struct pgs_mirror *m, const struct cdc_event *ev)
{
    if (ps->ngrp == ps->capgrp) {
        ps->capgrp = ps->capgrp ? 2 * ps->capgrp : 256;
        ps->grp = xrealloc(ps->grp, ps->capgrp * sizeof *ps->grp);
    }
    ps->grp_mirror = m;
    ps->grp[ps->ngrp++] = ev;
}

/* Queues an insert (or a whole-row upsert) to go out with its neighbours.
 * A key already in the group starts a new one: one statement must not touch
 * the same row twice. */
static int group_add(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    int rc;
    /* A run of snapshot rows, or of inserts, waits for a COPY-sized run;
     * other rows, and a row joining a group of another kind, for one
     * statement's worth. */
    enum pgs_grp kind = ev->snapshot              ? PGS_GRP_SNAPSHOT
                        : ev->op == CDC_OP_INSERT ? PGS_GRP_INSERTS
                                                  : PGS_GRP_UPSERTS;
    bool same = ps->ngrp == 0 || ps->grp_kind == kind;
    size_t max =
        same && kind != PGS_GRP_UPSERTS && pgs_copy_usable(m) ? PGS_COPY_MAX : m->group_max;
    if (ps->ngrp && (ps->grp_kind == PGS_GRP_DELETES || ps->grp_mirror != m || ps->ngrp >= max) &&
        (rc = pgs_mirror_flush_group(sk)))
        return rc;
    if (ps->ngrp == 0 && (rc = group_start(sk, m, kind)))
        return rc;
    if (ps->grp_kind != kind)
        ps->grp_kind = PGS_GRP_UPSERTS;
    if (!m->by_row) {
        uint64_t h = pgs_mirror_key_hash(m, ev);
        if (!keyset_add(&ps->grp_keys, h)) {
            if ((rc = pgs_mirror_flush_group(sk)))
                return rc;
            keyset_add(&ps->grp_keys, h); /* the flush emptied the set */
        }
    }
    group_push(ps, m, ev);
    return 0;
}

/* Queues a delete by key to go out with its neighbours: after everything
 * before it (the group before is flushed, the load goes out with it), as
 * one statement per run of deletes from one table.  A key twice in a run
 * is harmless. */
static int delete_add(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    int rc;
    if (ps->ngrp &&
        (ps->grp_kind != PGS_GRP_DELETES || ps->grp_mirror != m || ps->ngrp >= m->del_max) &&
        (rc = pgs_mirror_flush_group(sk)))
        return rc;
    if (ps->ngrp == 0 && (rc = group_start(sk, m, PGS_GRP_DELETES)))
        return rc;
    group_push(ps, m, ev);
    return 0;
}

/* Whether ev may share a statement with its neighbours: not while going one
 * by one to find a row the destination refused. */
static bool groupable(const struct sink *sk, const struct cdc_event *ev)
{
    if (ev->snapshot)
        return !sk->single_snapshot;
    /* one by one up to single_until, in its stream (another stream's
     * events were not in the failed statement) */
    return sk->single_until.lsn == 0 || ev->pos.stream != sk->single_until.stream ||
           cdc_pos_cmp(ev->pos, sk->single_until) > 0;
}

/* Whether the table of a truncate group exists in the mirror (a mirror
 * table never created holds no rows to truncate). */
static int mirror_exists(struct sink *sk, const char *qname, bool *exists)
{
    const char *vals[1] = {qname};
    PGresult *res =
        pgs_query(sk, "SELECT to_regclass($1) IS NOT NULL", 1, vals, SINK_ERR_RETRYABLE);
    if (!res)
        return CDC_ERR;
    *exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

/* One TRUNCATE for the tables the source truncated together, at the first
 * of their events this sink gets; the others are then done. */
static int apply_truncate(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    struct cdc_pos first = {ev->pos.lsn, ev->pos.idx - ev->trunc_index, ev->pos.stream};
    bool grouped = ev->trunc_count > 1 && ev->trunc_index <= ev->pos.idx;
    if (grouped && ps->trunc_done && cdc_pos_cmp(first, ps->trunc_first) == 0)
        return 0;
    int rc = pgs_mirror_flush_group(sk);
    if (rc)
        return rc;
    struct buf sql = BUF_INIT;
    buf_printf(&sql, "TRUNCATE %s", m->qname);
    for (uint16_t i = 0; grouped && i < ev->trunc_count && rc == 0; i++) {
        const char *schema, *name;
        if (!cdc_event_trunc_table(ev, i, &schema, &name)) {
            rc = sink_set_error(sk, SINK_ERR_PERMANENT, "truncate event has malformed table names");
            break;
        }
        if (i == ev->trunc_index)
            continue;
        const char *ts = pg_conf(sk)->target_schema;
        char *q = pgconn_quote_qualified(ts ? ts : schema, name);
        bool exists = false;
        rc = mirror_exists(sk, q, &exists);
        if (rc == 0 && exists && strcmp(q, m->qname) != 0)
            buf_printf(&sql, ", %s", q);
        free(q);
    }
    if (ev->trunc_opts & CDC_TRUNC_RESTART_IDENTITY)
        buf_puts(&sql, " RESTART IDENTITY");
    if (ev->trunc_opts & CDC_TRUNC_CASCADE)
        buf_puts(&sql, " CASCADE");
    if (rc == 0)
        rc = pgs_send_plain(sk, sql.p, PGS_STMT, ev);
    buf_fini(&sql);
    if (rc == 0 && grouped) {
        ps->trunc_done = true;
        ps->trunc_first = first;
    }
    return rc;
}

/* A snapshot row of a table with a deferrable key: ON CONFLICT cannot use
 * a deferrable constraint, so the key's row is deleted and inserted. */
static int reinsert_by_key(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = ev->tab;
    pgs_scratch(ps, tab->ncols);
    int n = 0;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (tab->cols[i].key) {
            ps->types[n] = m->types[i];
            ps->vals[n++] = val_text(ev, &ev->after[i]);
        }
    int rc = send(sk, m->del_key_sql, n, ev, false);
    if (rc)
        return rc;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        ps->vals[i] = val_text(ev, &ev->after[i]);
        ps->types[i] = m->types[i];
    }
    return send(sk, m->ins_sql, tab->ncols, ev, false);
}

int pgs_mirror_apply(struct sink *sk, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = ev->tab;
    struct pgs_mirror *m = get_mirror(sk, ev->tab);
    if (!m)
        return CDC_ERR;
    if (tab->key_deferrable && !ev->snapshot)
        ps->commit_now = true;
    if ((ev->op == CDC_OP_UPDATE || ev->op == CDC_OP_DELETE) && tab->nkeys == 0 && tab->ncols)
        return sink_set_error(sk, SINK_ERR_PERMANENT,
                              "table %s.%s has no key and the log carried no old row: the row "
                              "to change cannot be found (REPLICA IDENTITY NOTHING)",
                              tab->schema, tab->name);
    bool reinsert = ev->op == CDC_OP_READ && tab->key_deferrable;
    if ((ev->op == CDC_OP_INSERT || ev->op == CDC_OP_READ) && !reinsert && groupable(sk, ev))
        return group_add(sk, m, ev);
    if (ev->op == CDC_OP_UPDATE)
        return apply_update(sk, m, ev);
    if (ev->op == CDC_OP_DELETE && !m->by_row && ev->before && groupable(sk, ev))
        return delete_add(sk, m, ev);
    int rc = pgs_mirror_flush_group(sk);
    if (rc)
        return rc;
    switch (ev->op) {
    case CDC_OP_INSERT:
    case CDC_OP_READ:
        if (reinsert)
            return reinsert_by_key(sk, m, ev);
        pgs_scratch(ps, tab->ncols);
        for (uint16_t i = 0; i < tab->ncols; i++) {
            ps->vals[i] = val_text(ev, &ev->after[i]);
            ps->types[i] = m->types[i];
        }
        return send(sk, m->ins_sql, tab->ncols, ev, false);
    case CDC_OP_DELETE: {
        if (!ev->before)
            return sink_set_error(sk, SINK_ERR_PERMANENT, "table %s.%s: delete without old key",
                                  tab->schema, tab->name);
        pgs_scratch(ps, tab->ncols);
        int n = pgs_sql_match_types(m, ps->types, 0);
        if ((n = put_match_params(sk, m, ev, ev->before, ps->vals, 0)) < 0)
            return n;
        return send(sk, m->del_sql, n, ev, m->by_row);
    }
    case CDC_OP_TRUNCATE:
        return apply_truncate(sk, m, ev);
    default:
        return 0;
    }
}
