/* Iceberg sink: changes of each source table into an Iceberg table
 * (table_name's template), a snapshot per table per flush.
 *
 * Exactly once.  Each snapshot's summary carries the position of the
 * newest source transaction it holds (cdc.position, ice_pos.h).  At open
 * the sink reads every configured table's position and reports the oldest
 * as what it holds: the engine skips what is at or before it, and each
 * table skips what it already has itself, so a crash between the commits
 * of two tables of one flush replays only into the one that lacks it.
 * Files written for a commit that never reached the catalog are removed
 * at open (ice_shape.c).
 *
 * Transactions.  A table's batch is committed only at a source transaction
 * boundary: a COMMIT marker (or a snapshot row, which belongs to no
 * transaction).  A flush that arrives mid-transaction commits nothing and
 * asks for a commit at the next boundary, inside write(); its durability
 * is reported at the next flush.  So no snapshot holds part of a source
 * transaction.  One flush commits every table with something pending, one
 * after the other (Iceberg has no multi-table commit): a transaction
 * touching two tables may be visible in one table a moment before the
 * other, never half in one table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/iceberg/icesink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

int icesink_lake_error(struct sink *sk, int rc, const char *what, const char *err)
{
    enum sink_errclass cls = rc == CDC_ECONN    ? SINK_ERR_UNREACHABLE
                             : rc == CDC_EINVAL ? SINK_ERR_PERMANENT
                                                : SINK_ERR_RETRYABLE;
    return sink_set_error(sk, cls, "%s: %s", what, err);
}

static struct itable *table_new(struct sink *sk, const char *name)
{
    struct icesink *s = sk->priv;
    struct itable *it = xcalloc(1, sizeof *it);
    it->name = xstrdup(name);
    it->label = xasprintf("%s.%s", icesink_conf(sk)->table_namespace, name);
    s->tables = xrealloc(s->tables, (s->ntables + 1) * sizeof *s->tables);
    s->tables[s->ntables++] = it;
    if (s->maint)
        icemaint_add(s->maint, name);
    return it;
}

/* The table source table tab goes to (known or new). */
static struct itable *route(struct sink *sk, struct cdc_table *tab)
{
    struct icesink *s = sk->priv;
    if (tab == s->last_tab)
        return s->last_it;
    char *name = iceberg_table_for(icesink_conf(sk), tab->schema, tab->name);
    struct itable *it = NULL;
    for (size_t i = 0; i < s->ntables && !it; i++)
        if (strcmp(s->tables[i]->name, name) == 0)
            it = s->tables[i];
    if (!it)
        it = table_new(sk, name);
    free(name);
    /* Held, so that no other table can take its address meanwhile. */
    cdc_table_ref(tab);
    cdc_table_unref(s->last_tab);
    s->last_tab = tab;
    s->last_it = it;
    return it;
}

static void ice_close(struct sink *sk);

static int ice_open_inner(struct sink *sk, struct cdc_posmap *have)
{
    const struct iceberg_sink_cfg *ic = icesink_conf(sk);
    struct icesink *s = xcalloc(1, sizeof *s);
    sk->priv = s;
    char err[512];
    int rc = iceberg_open_catalog(ic, &s->store, &s->cat, err, sizeof err);
    if (rc)
        return icesink_lake_error(sk, rc, "catalog", err);
    size_t n;
    char **names = iceberg_configured_tables(ic, sk->config, &n);
    if (ic->write_mode == ICEBERG_UPSERT && n < sk->config->source.ntables) {
        iceberg_free_names(names, n);
        return sink_set_error(sk, SINK_ERR_FATAL,
                              "table_name \"%s\" sends several source tables to one Iceberg "
                              "table; write_mode upsert needs one table per source table (use "
                              "{table}, or {schema}_{table})",
                              ic->table_name);
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = icesink_table_load(sk, table_new(sk, names[i]));
    iceberg_free_names(names, n);
    if (rc)
        return rc;
    const struct icepos **v = xcalloc(s->ntables + 1, sizeof *v);
    for (size_t i = 0; i < s->ntables; i++) {
        v[i] = &s->tables[i]->have;
        char p[ICEPOS_TEXT_MAX];
        icepos_format(v[i], p, sizeof p);
        log_info("sink.iceberg.table", "sink=%s table=%s exists=%s position=%s", sk->cfg->sink_id,
                 s->tables[i]->label, s->tables[i]->t ? "true" : "false", p);
    }
    icepos_oldest((const struct icepos *const *)v, s->ntables, have);
    free(v);
    if (ic->maintenance.enabled && !sk->replay) {
        if ((rc = icemaint_start(sk, &s->maint)) != 0)
            return rc;
        for (size_t i = 0; i < s->ntables; i++)
            icemaint_add(s->maint, s->tables[i]->name);
    }
    return 0;
}

static int ice_open(struct sink *sk, struct cdc_posmap *have)
{
    cdc_posmap_clear(have);
    int rc = ice_open_inner(sk, have);
    if (rc)
        ice_close(sk);
    return rc;
}

/* Commits every table with something pending; afterwards everything up to
 * the boundary at `seq` is durable. */
static int commit_all(struct sink *sk, uint64_t seq)
{
    struct icesink *s = sk->priv;
    for (size_t i = 0; i < s->ntables; i++) {
        int rc = icesink_commit(sk, s->tables[i], &s->last_commit);
        if (rc)
            return rc;
    }
    s->durable_seq = seq;
    s->commit_due = false;
    return 0;
}

static int ice_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    struct icesink *s = sk->priv;
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        s->given_seq = ev->seq;
        bool boundary = false;
        if (ev->op == CDC_OP_COMMIT) {
            s->in_txn = false;
            if (!sk->replay)
                icepos_advance(&s->last_commit, ev->pos);
            boundary = true;
        } else if (ev->tab && !cdc_op_is_control(ev->op) && ev->op != CDC_OP_MESSAGE) {
            if (!ev->snapshot && !sk->replay)
                s->in_txn = true;
            struct itable *it = route(sk, ev->tab);
            if (sk->replay || !icepos_holds(&it->have, ev)) {
                int rc = icesink_apply(sk, it, ev);
                if (rc)
                    return rc;
            }
            boundary = !s->in_txn;
        }
        if (boundary) {
            s->boundary_seq = ev->seq;
            if (s->commit_due) {
                int rc = commit_all(sk, ev->seq);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

static int ice_flush(struct sink *sk, uint64_t *durable_seq)
{
    struct icesink *s = sk->priv;
    if (s->in_txn) {
        /* Never a snapshot with part of a transaction: commit when it ends. */
        s->commit_due = true;
        *durable_seq = s->durable_seq;
        return 0;
    }
    int rc = commit_all(sk, s->given_seq);
    if (rc)
        return rc;
    *durable_seq = s->durable_seq;
    return 0;
}

static void ice_close(struct sink *sk)
{
    struct icesink *s = sk->priv;
    if (!s)
        return;
    icemaint_stop(s->maint);
    cdc_table_unref(s->last_tab);
    for (size_t i = 0; i < s->ntables; i++) {
        icesink_batch_discard(s, s->tables[i]);
        icesink_table_free(s->tables[i]);
    }
    free(s->tables);
    icepos_fini(&s->last_commit);
    ice_catalog_free(s->cat);
    lake_store_free(s->store);
    free(s);
    sk->priv = NULL;
}

const struct sink_ops sink_iceberg_ops = {
    .open = ice_open,
    .write = ice_write,
    .flush = ice_flush,
    .close = ice_close,
};
