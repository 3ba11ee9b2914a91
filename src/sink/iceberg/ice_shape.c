/* A table's setup: loading it (with what it holds), creating it from the
 * first change's source shape, and following the source's columns.
 *
 * Columns map by name.  Types come from the source's column types
 * (lake_type_for_column; docs/lakehouse.md has the table).  A column the
 * source adds is added to the table (schema evolution: a new schema
 * version; rows written before it read NULL).  Anything else that changes
 * (a column dropped or renamed, a type changed, a different primary key,
 * in upsert mode a column added with a value for existing rows) stops the
 * pipeline with an error naming the table and the column: the table cannot
 * follow it without rewriting what it holds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_maint.h"
#include "lake/lake_conv.h"
#include "sink/iceberg/icesink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define EVOLVE_TRIES 5

static const char *const extra_names[ICESINK_NEXTRA] = {
    ICESINK_COL_OP, ICESINK_COL_TS, ICESINK_COL_POS, ICESINK_COL_TOPIC, ICESINK_COL_UNCHANGED};
static const enum ice_type extra_types[ICESINK_NEXTRA] = {ICE_STRING, ICE_LONG, ICE_STRING,
                                                          ICE_STRING, ICE_STRING};

static bool upsert_mode(const struct sink *sk)
{
    return icesink_conf(sk)->write_mode == ICEBERG_UPSERT;
}

/* What it holds and whether it has rows, from its current snapshot. */
static int read_state(struct sink *sk, struct itable *it)
{
    char *v = ice_table_find_prop(it->t, ICEPOS_PROP);
    int rc = icepos_parse(v, &it->have);
    if (rc)
        rc = sink_set_error(sk, SINK_ERR_FATAL,
                            "table %s: its snapshot summary has a malformed %s \"%s\"", it->label,
                            ICEPOS_PROP, v);
    free(v);
    const struct ice_snapshot *cur = ice_meta_current(it->t->meta);
    const char *n = cur ? ice_snapshot_get(cur, "total-records") : NULL;
    it->has_rows = cur && (!n || strtoll(n, NULL, 10) > 0);
    return rc;
}

int icesink_table_load(struct sink *sk, struct itable *it)
{
    struct icesink *s = sk->priv;
    const struct iceberg_sink_cfg *ic = icesink_conf(sk);
    char err[512];
    int rc = ice_table_load(s->cat, ic->table_namespace, it->name, &it->t, err, sizeof err);
    if (rc == LAKE_STORE_ABSENT) {
        it->t = NULL;
        cdc_posmap_clear(&it->have.m);
        it->has_rows = false;
        return 0;
    }
    if (rc)
        return icesink_lake_error(sk, rc, it->label, err);
    if ((rc = read_state(sk, it)) != 0)
        return rc;
    /* Files of a commit a crash interrupted (written, never made current)
     * are referenced by nothing: removed once older than the grace period
     * (a younger one may belong to another writer's commit in progress).
     * Not while replaying dead letters beside a running pipeline. */
    if (!sk->replay) {
        size_t removed = 0;
        int64_t before = ice_now_ms() - (int64_t)(ic->maintenance.orphan_file_grace_seconds * 1000);
        if (ice_table_clean_orphans(it->t, before, &removed, err, sizeof err) < 0)
            log_warn("sink.iceberg.orphans_not_removed", "sink=%s table=%s error=%s",
                     sk->cfg->sink_id, it->label, log_q(err));
        else if (removed)
            log_info("sink.iceberg.orphans_removed", "sink=%s table=%s files=%zu", sk->cfg->sink_id,
                     it->label, removed);
    }
    return 0;
}

/* A change the table cannot follow: the pipeline stops with this. */
static int fatal(struct sink *sk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fatal(struct sink *sk, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sk->err, sizeof sk->err, fmt, ap);
    va_end(ap);
    sk->errclass = SINK_ERR_FATAL;
    return CDC_ERR;
}

/* The partition spec partition_by asks for, checked against sc. */
static int make_spec(struct sink *sk, struct itable *it, const struct ice_schema *sc,
                     struct ice_spec **sp)
{
    const struct iceberg_sink_cfg *ic = icesink_conf(sk);
    struct buf text = BUF_INIT;
    buf_puts(&text, "");
    for (size_t i = 0; i < ic->npartition_by; i++)
        buf_printf(&text, "%s%s", i ? ", " : "", ic->partition_by[i]);
    char err[512];
    int rc = ice_spec_parse(text.p, sc, 0, 1000, sp, err, sizeof err);
    buf_fini(&text);
    if (rc)
        return sink_set_error(sk, SINK_ERR_FATAL, "table %s: partition_by: %s", it->label, err);
    return 0;
}

/* Upsert deletes a key in the partition the key names, so only key
 * columns may partition the table. */
static int check_spec(struct sink *sk, struct itable *it, const struct ice_spec *sp,
                      const struct ice_schema *sc)
{
    for (uint32_t k = 0; upsert_mode(sk) && k < sp->n; k++) {
        bool ident = false;
        for (uint32_t i = 0; i < sc->nident; i++)
            ident |= sc->ident_ids[i] == sp->fields[k].source_id;
        if (!ident)
            return fatal(sk,
                         "table %s: partition field %s: in write_mode upsert a table can only "
                         "be partitioned by primary key columns (a key's equality delete must "
                         "reach the partition of the row it replaces)",
                         it->label, sp->fields[k].name);
    }
    return 0;
}

/* The Iceberg field for a source column: by PostgreSQL's type (with
 * numeric's precision and scale), or by the type class for other sources. */
static void field_for(const struct sink *sk, const struct cdc_column *col, struct ice_field *f)
{
    memset(f, 0, sizeof *f);
    f->name = col->name;
    if (sk->config->source.source_type == SOURCE_POSTGRES)
        lake_type_for_column(col, f);
    else
        lake_type_for_class(col, f);
}

static int create_table(struct sink *sk, struct itable *it, const struct cdc_table *tab)
{
    struct icesink *s = sk->priv;
    const struct iceberg_sink_cfg *ic = icesink_conf(sk);
    bool upsert = upsert_mode(sk);
    struct ice_schema *sc = ice_schema_new(0);
    int32_t id = 1;
    int rc = 0;
    for (uint16_t c = 0; c < tab->ncols && rc == 0; c++) {
        struct ice_field f;
        field_for(sk, &tab->cols[c], &f);
        bool key = upsert && tab->cols[c].key;
        if (key && (f.type == ICE_FLOAT || f.type == ICE_DOUBLE))
            rc = fatal(sk,
                       "table %s, column %s: a floating-point column cannot be an Iceberg "
                       "identifier field (write_mode upsert keys rows by the primary key)",
                       it->label, f.name);
        struct ice_field *g = ice_schema_add(sc, id, f.name, f.type, key);
        g->precision = f.precision;
        g->scale = f.scale;
        g->len = f.len;
        if (key)
            ice_schema_add_identifier(sc, id);
        id++;
    }
    for (int k = 0; !upsert && k < ICESINK_NEXTRA; k++)
        ice_schema_add(sc, id++, extra_names[k], extra_types[k], false);
    struct ice_spec *sp = NULL;
    if (rc == 0)
        rc = make_spec(sk, it, sc, &sp);
    if (rc == 0)
        rc = check_spec(sk, it, sp, sc);
    if (rc == 0) {
        char err[512];
        rc = ice_table_create(s->cat, ic->table_namespace, it->name, sc, sp, NULL, 0, &it->t, err,
                              sizeof err);
        if (rc == CDC_EAGAIN) /* created meanwhile by someone else */
            rc = icesink_table_load(sk, it);
        else if (rc)
            rc = icesink_lake_error(sk, rc, it->label, err);
        else
            log_info("sink.iceberg.table_created", "sink=%s table=%s columns=%u mode=%s",
                     sk->cfg->sink_id, it->label, sc->nfields, upsert ? "upsert" : "append");
        if (rc == 0 && it->t)
            it->has_rows = false;
    }
    ice_spec_free(sp);
    ice_schema_free(sc);
    return rc;
}

static bool same_type(const struct ice_field *a, const struct ice_field *b)
{
    return a->type == b->type &&
           (a->type != ICE_DECIMAL || (a->precision == b->precision && a->scale == b->scale)) &&
           (a->type != ICE_FIXED || a->len == b->len);
}

static bool is_ident(const struct ice_schema *sc, int32_t id)
{
    for (uint32_t i = 0; i < sc->nident; i++)
        if (sc->ident_ids[i] == id)
            return true;
    return false;
}

/* Compares the source shape with the table's schema: what to add (into
 * add[], *nadd), or a FATAL error for what cannot be followed. */
static int compare(struct sink *sk, struct itable *it, const struct cdc_table *tab,
                   const struct ice_schema *sc, struct ice_field *add, size_t *nadd)
{
    bool upsert = upsert_mode(sk);
    char t1[40], t2[40];
    *nadd = 0;
    for (uint16_t c = 0; c < tab->ncols; c++) {
        const struct cdc_column *col = &tab->cols[c];
        struct ice_field want;
        field_for(sk, col, &want);
        const struct ice_field *have = NULL;
        for (uint32_t j = 0; j < sc->nfields && !have; j++)
            if (strcmp(sc->fields[j].name, col->name) == 0)
                have = &sc->fields[j];
        if (!have) {
            if (upsert && col->key)
                return fatal(sk,
                             "table %s, column %s: a primary key column the Iceberg table does "
                             "not have: its identifier fields cannot change",
                             it->label, col->name);
            if (upsert && (col->missing || col->volatile_default) && (it->has_rows || it->b.nfiles))
                return fatal(sk,
                             "table %s, column %s: added at the source with a value for the rows "
                             "it had; an Iceberg v2 column added now would read NULL in them. "
                             "Add the column to the Iceberg table with those values yourself "
                             "(or drop and snapshot the table again), then run again",
                             it->label, col->name);
            add[(*nadd)++] = want;
            continue;
        }
        if (!same_type(have, &want)) {
            ice_type_format(have, t1, sizeof t1);
            ice_type_format(&want, t2, sizeof t2);
            return sink_set_error(sk, SINK_ERR_FATAL,
                                  "table %s, column %s: the source's type maps to %s, the "
                                  "Iceberg column is %s: cdc does not change the type of "
                                  "columns holding data; change the Iceberg table, then run "
                                  "again",
                                  it->label, col->name, t2, t1);
        }
        if (upsert && (col->key != is_ident(sc, have->id)))
            return fatal(sk,
                         "table %s, column %s: %s: write_mode upsert keeps the table's "
                         "identifier fields equal to the source's primary key",
                         it->label, col->name,
                         col->key ? "now in the primary key, not an identifier field"
                                  : "an identifier field, no longer in the primary key");
    }
    for (uint32_t j = 0; j < sc->nfields; j++) {
        const char *name = sc->fields[j].name;
        bool known = false;
        for (uint16_t c = 0; c < tab->ncols && !known; c++)
            known = strcmp(tab->cols[c].name, name) == 0;
        for (int k = 0; !upsert && k < ICESINK_NEXTRA && !known; k++)
            known = strcmp(extra_names[k], name) == 0;
        if (!known)
            return fatal(sk,
                         "table %s, column %s: the Iceberg table has it, the source table no "
                         "longer does (dropped or renamed): cdc does not drop columns holding "
                         "data; drop it from the Iceberg table, then run again",
                         it->label, name);
    }
    for (int k = 0; !upsert && k < ICESINK_NEXTRA; k++) {
        int j = -1;
        for (uint32_t q = 0; q < sc->nfields && j < 0; q++)
            if (strcmp(sc->fields[q].name, extra_names[k]) == 0)
                j = (int)q;
        if (j < 0) {
            add[(*nadd)++] =
                (struct ice_field){.name = (char *)extra_names[k], .type = extra_types[k]};
        } else if (sc->fields[j].type != extra_types[k]) {
            for (uint16_t c = 0; c < tab->ncols; c++)
                if (strcmp(tab->cols[c].name, extra_names[k]) == 0)
                    return fatal(sk,
                                 "table %s, column %s: write_mode append adds a column of that "
                                 "name; rename the source column or use write_mode upsert",
                                 it->label, extra_names[k]);
            return fatal(sk, "table %s, column %s: write_mode append needs it to be a %s column",
                         it->label, extra_names[k], extra_types[k] == ICE_LONG ? "long" : "string");
        }
    }
    return 0;
}

/* Sets the column mapping from the current schema. */
static int set_mapping(struct sink *sk, struct itable *it, struct cdc_table *tab)
{
    const struct ice_schema *sc = ice_meta_schema(it->t->meta);
    free(it->field_of);
    free(it->key_cols);
    free(it->eq_ids);
    ice_schema_free(it->eq_sc);
    it->field_of = xcalloc(tab->ncols + 1u, sizeof *it->field_of);
    it->key_cols = xcalloc(tab->ncols + 1u, sizeof *it->key_cols);
    it->eq_ids = xcalloc(tab->ncols + 1u, sizeof *it->eq_ids);
    it->eq_sc = ice_schema_new(0);
    it->nkey = 0;
    for (uint16_t c = 0; c < tab->ncols; c++) {
        it->field_of[c] = -1;
        for (uint32_t j = 0; j < sc->nfields; j++)
            if (strcmp(sc->fields[j].name, tab->cols[c].name) == 0)
                it->field_of[c] = (int)j;
        if (upsert_mode(sk) && tab->cols[c].key) {
            const struct ice_field *f = &sc->fields[it->field_of[c]];
            it->key_cols[it->nkey] = c;
            it->eq_ids[it->nkey++] = f->id;
            struct ice_field *g = ice_schema_add(it->eq_sc, f->id, f->name, f->type, true);
            g->precision = f->precision;
            g->scale = f->scale;
            g->len = f->len;
        }
    }
    for (int k = 0; k < ICESINK_NEXTRA; k++) {
        it->extra[k] = -1;
        for (uint32_t j = 0; j < sc->nfields; j++)
            if (strcmp(sc->fields[j].name, extra_names[k]) == 0)
                it->extra[k] = (int)j;
    }
    it->nfields = sc->nfields;
    it->deferrable = tab->key_deferrable;
    if (upsert_mode(sk) && it->nkey != sc->nident)
        return fatal(sk, "table %s: its identifier fields differ from the source's primary key",
                     it->label);
    return check_spec(sk, it, ice_meta_spec(it->t->meta, it->t->meta->default_spec_id), sc);
}

int icesink_table_prepare(struct sink *sk, struct itable *it, struct cdc_table *tab)
{
    if (it->shape == tab)
        return 0;
    const struct iceberg_sink_cfg *ic = icesink_conf(sk);
    int rc = 0;
    if (upsert_mode(sk) && (tab->nkeys == 0 || !tab->key_unique))
        return fatal(sk,
                     "table %s.%s has no primary key (or unique replica identity index): "
                     "write_mode upsert finds rows by key; give the table one, or write it "
                     "with an iceberg sink in write_mode append",
                     tab->schema, tab->name);
    if (!it->t && (rc = icesink_table_load(sk, it)) != 0)
        return rc;
    if (!it->t && !ic->auto_create_table)
        return fatal(sk, "table %s does not exist and auto_create_table is false", it->label);
    if (!it->t && (rc = create_table(sk, it, tab)) != 0)
        return rc;
    struct ice_field *add = xcalloc(tab->ncols + ICESINK_NEXTRA + 1u, sizeof *add);
    for (int attempt = 0; rc == 0; attempt++) {
        size_t nadd = 0;
        rc = compare(sk, it, tab, ice_meta_schema(it->t->meta), add, &nadd);
        if (rc || nadd == 0)
            break;
        /* Files open with the old schema end here; the batch keeps them. */
        if ((rc = icesink_close_writers(sk, it)) != 0)
            break;
        char err[512];
        rc = ice_table_add_columns(it->t, add, nadd, err, sizeof err);
        if (rc == 0) {
            struct buf names = BUF_INIT;
            for (size_t i = 0; i < nadd; i++)
                buf_printf(&names, "%s%s", i ? "," : "", add[i].name);
            log_info("sink.iceberg.columns_added", "sink=%s table=%s columns=%s schema_id=%d",
                     sk->cfg->sink_id, it->label, log_q(names.p),
                     (int)it->t->meta->current_schema_id);
            buf_fini(&names);
            break;
        }
        if (rc != CDC_EAGAIN || attempt >= EVOLVE_TRIES) {
            rc = icesink_lake_error(sk, rc, it->label, err);
            break;
        }
        if ((rc = ice_table_refresh(it->t, err, sizeof err)) != 0)
            rc = icesink_lake_error(sk, rc, it->label, err);
    }
    free(add);
    if (rc == 0)
        rc = set_mapping(sk, it, tab);
    if (rc == 0) {
        cdc_table_ref(tab);
        cdc_table_unref(it->shape);
        it->shape = tab;
    }
    return rc;
}

void icesink_table_free(struct itable *it)
{
    if (!it)
        return;
    icesink_batch_fini(&it->b);
    icepos_fini(&it->have);
    ice_table_free(it->t);
    cdc_table_unref(it->shape);
    free(it->field_of);
    free(it->key_cols);
    free(it->eq_ids);
    ice_schema_free(it->eq_sc);
    free(it->s_vals);
    free(it->s_kvals);
    free(it->s_lens);
    free(it->s_klens);
    free(it->s_unchanged);
    buf_fini(&it->s_key);
    free(it->name);
    free(it->label);
    free(it);
}
