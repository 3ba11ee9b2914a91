/* Iceberg manifests and manifest lists as Avro (see ice_manifest.h).  The
 * schemas are spelled out as Iceberg's Java writer names them (record names
 * r2, r102, r508, k117_v118…) with every field id; readers match by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lake/avro.h"
#include "lake/ice_manifest.h"
#include "util/err.h"
#include "util/mem.h"

void ice_data_file_init(struct ice_data_file *df, enum ice_content content, const char *path,
                        const struct parquet_file_info *info)
{
    memset(df, 0, sizeof *df);
    df->content = content;
    df->path = xstrdup(path);
    df->records = info->rows;
    df->size = info->size;
    df->ncols = info->ncols;
    df->cols = xcalloc(info->ncols ? info->ncols : 1, sizeof *df->cols);
    for (uint32_t i = 0; i < info->ncols; i++) {
        const struct parquet_col_metrics *m = &info->cols[i];
        struct ice_col_stat *c = &df->cols[i];
        c->id = m->field_id;
        c->size = m->size;
        c->values = m->values;
        c->nulls = m->nulls;
        c->nans = m->nans;
        c->has_bounds = m->has_bounds;
        if (m->has_bounds) {
            buf_put(&c->lower, m->lower.p, m->lower.len);
            buf_put(&c->upper, m->upper.p, m->upper.len);
        }
    }
    df->nsplits = info->nrow_groups;
    df->splits = xcalloc(info->nrow_groups ? info->nrow_groups : 1, sizeof *df->splits);
    if (info->nrow_groups)
        memcpy(df->splits, info->row_group_offsets, info->nrow_groups * sizeof *df->splits);
}

void ice_data_file_copy(struct ice_data_file *dst, const struct ice_data_file *src)
{
    *dst = *src;
    dst->path = xstrdup(src->path);
    dst->referenced = src->referenced ? xstrdup(src->referenced) : NULL;
    dst->part = xcalloc(src->npart ? src->npart : 1, sizeof *dst->part);
    for (uint32_t i = 0; i < src->npart; i++) {
        dst->part[i] = src->part[i];
        dst->part[i].s = src->part[i].s ? xstrdup(src->part[i].s) : NULL;
    }
    dst->cols = xcalloc(src->ncols ? src->ncols : 1, sizeof *dst->cols);
    for (uint32_t i = 0; i < src->ncols; i++) {
        dst->cols[i] = src->cols[i];
        buf_init(&dst->cols[i].lower);
        buf_init(&dst->cols[i].upper);
        if (src->cols[i].has_bounds) {
            buf_put(&dst->cols[i].lower, src->cols[i].lower.p, src->cols[i].lower.len);
            buf_put(&dst->cols[i].upper, src->cols[i].upper.p, src->cols[i].upper.len);
        }
    }
    dst->splits = xcalloc(src->nsplits ? src->nsplits : 1, sizeof *dst->splits);
    if (src->nsplits)
        memcpy(dst->splits, src->splits, src->nsplits * sizeof *dst->splits);
    dst->eq_ids = xcalloc(src->neq ? src->neq : 1, sizeof *dst->eq_ids);
    if (src->neq)
        memcpy(dst->eq_ids, src->eq_ids, src->neq * sizeof *dst->eq_ids);
}

void ice_data_file_fini(struct ice_data_file *df)
{
    free(df->path);
    free(df->referenced);
    for (uint32_t i = 0; i < df->npart; i++)
        ice_pvalue_fini(&df->part[i]);
    free(df->part);
    for (uint32_t i = 0; i < df->ncols; i++) {
        buf_fini(&df->cols[i].lower);
        buf_fini(&df->cols[i].upper);
    }
    free(df->cols);
    free(df->splits);
    free(df->eq_ids);
    memset(df, 0, sizeof *df);
}

void ice_entries_free(struct ice_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ice_data_file_fini(&e[i].df);
    free(e);
}

void ice_manifest_file_copy(struct ice_manifest_file *dst, const struct ice_manifest_file *src)
{
    *dst = *src;
    dst->path = xstrdup(src->path);
    dst->parts = xcalloc(src->npart ? src->npart : 1, sizeof *dst->parts);
    for (uint32_t i = 0; i < src->npart; i++) {
        dst->parts[i] = src->parts[i];
        buf_init(&dst->parts[i].lower);
        buf_init(&dst->parts[i].upper);
        buf_put(&dst->parts[i].lower, src->parts[i].lower.p, src->parts[i].lower.len);
        buf_put(&dst->parts[i].upper, src->parts[i].upper.p, src->parts[i].upper.len);
    }
}

void ice_manifest_file_fini(struct ice_manifest_file *m)
{
    free(m->path);
    for (uint32_t k = 0; k < m->npart; k++) {
        buf_fini(&m->parts[k].lower);
        buf_fini(&m->parts[k].upper);
    }
    free(m->parts);
    memset(m, 0, sizeof *m);
}

void ice_manifest_files_free(struct ice_manifest_file *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ice_manifest_file_fini(&m[i]);
    free(m);
}

/* ---- schemas ----------------------------------------------------------------- */

static void opt_field(struct buf *b, const char *name, const char *type, int id)
{
    buf_printf(b, ",{\"name\":\"%s\",\"type\":[\"null\",%s],\"default\":null,\"field-id\":%d}",
               name, type, id);
}

static void map_field(struct buf *b, const char *name, int id, int kid, int vid, const char *vt)
{
    char t[256];
    snprintf(t, sizeof t,
             "{\"type\":\"array\",\"logicalType\":\"map\",\"items\":{\"type\":\"record\","
             "\"name\":\"k%d_v%d\",\"fields\":[{\"name\":\"key\",\"type\":\"int\",\"field-id\":%d},"
             "{\"name\":\"value\",\"type\":\"%s\",\"field-id\":%d}]}}",
             kid, vid, kid, vt, vid);
    opt_field(b, name, t, id);
}

static void entry_schema(struct buf *b, const struct ice_schema *sc, const struct ice_spec *sp)
{
    buf_puts(b, "{\"type\":\"record\",\"name\":\"manifest_entry\",\"fields\":["
                "{\"name\":\"status\",\"type\":\"int\",\"field-id\":0}");
    opt_field(b, "snapshot_id", "\"long\"", 1);
    opt_field(b, "sequence_number", "\"long\"", 3);
    opt_field(b, "file_sequence_number", "\"long\"", 4);
    buf_puts(b,
             ",{\"name\":\"data_file\",\"type\":{\"type\":\"record\",\"name\":\"r2\",\"fields\":["
             "{\"name\":\"content\",\"type\":\"int\",\"field-id\":134},"
             "{\"name\":\"file_path\",\"type\":\"string\",\"field-id\":100},"
             "{\"name\":\"file_format\",\"type\":\"string\",\"field-id\":101},"
             "{\"name\":\"partition\",\"type\":{\"type\":\"record\",\"name\":\"r102\","
             "\"fields\":[");
    for (uint32_t i = 0; i < sp->n; i++) {
        buf_printf(b, "%s{\"name\":", i ? "," : "");
        json_string(b, sp->fields[i].name, strlen(sp->fields[i].name));
        buf_printf(b, ",\"type\":[\"null\",\"%s\"],\"default\":null,\"field-id\":%d}",
                   ice_pfield_avro_type(&sp->fields[i], sc), sp->fields[i].field_id);
    }
    buf_puts(b, "]},\"field-id\":102},"
                "{\"name\":\"record_count\",\"type\":\"long\",\"field-id\":103},"
                "{\"name\":\"file_size_in_bytes\",\"type\":\"long\",\"field-id\":104}");
    map_field(b, "column_sizes", 108, 117, 118, "long");
    map_field(b, "value_counts", 109, 119, 120, "long");
    map_field(b, "null_value_counts", 110, 121, 122, "long");
    map_field(b, "nan_value_counts", 137, 138, 139, "long");
    map_field(b, "lower_bounds", 125, 126, 127, "bytes");
    map_field(b, "upper_bounds", 128, 129, 130, "bytes");
    opt_field(b, "key_metadata", "\"bytes\"", 131);
    opt_field(b, "split_offsets", "{\"type\":\"array\",\"items\":\"long\",\"element-id\":133}",
              132);
    opt_field(b, "equality_ids", "{\"type\":\"array\",\"items\":\"int\",\"element-id\":136}", 135);
    opt_field(b, "sort_order_id", "\"int\"", 140);
    opt_field(b, "referenced_data_file", "\"string\"", 143);
    buf_puts(b, "]},\"field-id\":2}]}");
}

static const char list_schema[] =
    "{\"type\":\"record\",\"name\":\"manifest_file\",\"fields\":["
    "{\"name\":\"manifest_path\",\"type\":\"string\",\"field-id\":500},"
    "{\"name\":\"manifest_length\",\"type\":\"long\",\"field-id\":501},"
    "{\"name\":\"partition_spec_id\",\"type\":\"int\",\"field-id\":502},"
    "{\"name\":\"content\",\"type\":\"int\",\"field-id\":517},"
    "{\"name\":\"sequence_number\",\"type\":\"long\",\"field-id\":515},"
    "{\"name\":\"min_sequence_number\",\"type\":\"long\",\"field-id\":516},"
    "{\"name\":\"added_snapshot_id\",\"type\":\"long\",\"field-id\":503},"
    "{\"name\":\"added_files_count\",\"type\":\"int\",\"field-id\":504},"
    "{\"name\":\"existing_files_count\",\"type\":\"int\",\"field-id\":505},"
    "{\"name\":\"deleted_files_count\",\"type\":\"int\",\"field-id\":506},"
    "{\"name\":\"added_rows_count\",\"type\":\"long\",\"field-id\":512},"
    "{\"name\":\"existing_rows_count\",\"type\":\"long\",\"field-id\":513},"
    "{\"name\":\"deleted_rows_count\",\"type\":\"long\",\"field-id\":514},"
    "{\"name\":\"partitions\",\"type\":[\"null\",{\"type\":\"array\",\"items\":{\"type\":"
    "\"record\","
    "\"name\":\"r508\",\"fields\":["
    "{\"name\":\"contains_null\",\"type\":\"boolean\",\"field-id\":509},"
    "{\"name\":\"contains_nan\",\"type\":[\"null\",\"boolean\"],\"default\":null,\"field-id\":518},"
    "{\"name\":\"lower_bound\",\"type\":[\"null\",\"bytes\"],\"default\":null,\"field-id\":510},"
    "{\"name\":\"upper_bound\",\"type\":[\"null\",\"bytes\"],\"default\":null,\"field-id\":511}"
    "]},\"element-id\":508}],\"default\":null,\"field-id\":507},"
    "{\"name\":\"key_metadata\",\"type\":[\"null\",\"bytes\"],\"default\":null,\"field-id\":519}"
    "]}";

/* ---- writing ---------------------------------------------------------------- */

static void put_opt_long(struct buf *b, int64_t v)
{
    if (v < 0) {
        avro_put_long(b, 0);
    } else {
        avro_put_long(b, 1);
        avro_put_long(b, v);
    }
}

/* An int-keyed map as an array of key/value records; which = 0 sizes,
 * 1 values, 2 nulls, 3 nans. */
static void put_long_map(struct buf *b, const struct ice_data_file *df, int which, bool floats_only,
                         const struct ice_schema *sc)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < df->ncols; i++) {
        const struct ice_field *f = ice_schema_find(sc, df->cols[i].id);
        if (!floats_only || (f && (f->type == ICE_FLOAT || f->type == ICE_DOUBLE)))
            n++;
    }
    avro_put_long(b, 1); /* union branch: the map */
    if (n) {
        avro_put_long(b, n);
        for (uint32_t i = 0; i < df->ncols; i++) {
            const struct ice_col_stat *c = &df->cols[i];
            const struct ice_field *f = ice_schema_find(sc, c->id);
            if (floats_only && !(f && (f->type == ICE_FLOAT || f->type == ICE_DOUBLE)))
                continue;
            avro_put_long(b, c->id);
            avro_put_long(b, which == 0   ? c->size
                             : which == 1 ? c->values
                             : which == 2 ? c->nulls
                                          : c->nans);
        }
    }
    avro_put_long(b, 0);
}

static void put_bounds(struct buf *b, const struct ice_data_file *df, bool upper)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < df->ncols; i++)
        n += df->cols[i].has_bounds;
    avro_put_long(b, 1);
    if (n) {
        avro_put_long(b, n);
        for (uint32_t i = 0; i < df->ncols; i++) {
            const struct ice_col_stat *c = &df->cols[i];
            if (!c->has_bounds)
                continue;
            avro_put_long(b, c->id);
            const struct buf *v = upper ? &c->upper : &c->lower;
            avro_put_bytes(b, v->p, v->len);
        }
    }
    avro_put_long(b, 0);
}

static void put_entry(struct buf *b, const struct ice_entry *e, const struct ice_schema *sc,
                      const struct ice_spec *sp)
{
    const struct ice_data_file *df = &e->df;
    avro_put_long(b, e->status);
    put_opt_long(b, e->snapshot_id);
    put_opt_long(b, e->seq);
    put_opt_long(b, e->file_seq);
    avro_put_long(b, df->content);
    avro_put_string(b, df->path);
    avro_put_string(b, "PARQUET");
    for (uint32_t i = 0; i < sp->n; i++) {
        const struct ice_pvalue *v = i < df->npart ? &df->part[i] : NULL;
        if (!v || v->null) {
            avro_put_long(b, 0);
            continue;
        }
        avro_put_long(b, 1);
        if (v->is_str)
            avro_put_string(b, v->s);
        else
            avro_put_long(b, v->l);
    }
    avro_put_long(b, df->records);
    avro_put_long(b, df->size);
    put_long_map(b, df, 0, false, sc);
    put_long_map(b, df, 1, false, sc);
    put_long_map(b, df, 2, false, sc);
    put_long_map(b, df, 3, true, sc);
    put_bounds(b, df, false);
    put_bounds(b, df, true);
    avro_put_long(b, 0); /* key_metadata: null */
    avro_put_long(b, 1); /* split_offsets */
    if (df->nsplits) {
        avro_put_long(b, df->nsplits);
        for (uint32_t i = 0; i < df->nsplits; i++)
            avro_put_long(b, df->splits[i]);
    }
    avro_put_long(b, 0);
    if (df->content == ICE_CONTENT_EQ_DELETES) {
        avro_put_long(b, 1);
        avro_put_long(b, df->neq);
        for (uint32_t i = 0; i < df->neq; i++)
            avro_put_long(b, df->eq_ids[i]);
        avro_put_long(b, 0);
    } else {
        avro_put_long(b, 0);
    }
    if (df->content == ICE_CONTENT_POS_DELETES) {
        avro_put_long(b, 0); /* sort_order_id: null for position deletes */
    } else {
        avro_put_long(b, 1);
        avro_put_long(b, 0); /* the unsorted order */
    }
    if (df->referenced) {
        avro_put_long(b, 1);
        avro_put_string(b, df->referenced);
    } else {
        avro_put_long(b, 0);
    }
}

/* Single-value serialization of a partition value for summaries. */
static void pvalue_bytes(const struct ice_pvalue *v, const char *avro_type, struct buf *b)
{
    buf_reset(b);
    if (v->is_str) {
        buf_puts(b, v->s);
        return;
    }
    int n = strcmp(avro_type, "long") == 0 ? 8 : 4;
    for (int i = 0; i < n; i++)
        buf_putc(b, (char)((uint64_t)v->l >> (8 * i)));
}

static bool pvalue_less(const struct ice_pvalue *a, const struct ice_pvalue *b)
{
    return a->is_str ? strcmp(a->s, b->s) < 0 : a->l < b->l;
}

void ice_manifest_write(struct buf *out, const struct ice_schema *sc, const struct ice_spec *sp,
                        int content, const struct ice_entry *e, size_t n, const uint8_t sync[16],
                        struct ice_manifest_file *mf)
{
    struct buf schema = BUF_INIT, sjson = BUF_INIT, spjson = BUF_INIT, body = BUF_INIT;
    entry_schema(&schema, sc, sp);
    ice_schema_json(&sjson, sc);
    ice_spec_fields_json(&spjson, sp);
    char schema_id[16], spec_id[16];
    snprintf(schema_id, sizeof schema_id, "%d", sc->schema_id);
    snprintf(spec_id, sizeof spec_id, "%d", sp->spec_id);
    struct avro_kv meta[] = {
        {"schema", sjson.p},          {"schema-id", schema_id},
        {"partition-spec", spjson.p}, {"partition-spec-id", spec_id},
        {"format-version", "2"},      {"content", content ? "deletes" : "data"},
    };
    avro_ocf_header(out, schema.p, meta, sizeof meta / sizeof meta[0], sync);

    memset(mf, 0, sizeof *mf);
    mf->spec_id = sp->spec_id;
    mf->content = content;
    mf->npart = sp->n;
    mf->parts = xcalloc(sp->n ? sp->n : 1, sizeof *mf->parts);
    const struct ice_pvalue **lo = xcalloc(sp->n ? sp->n : 1, sizeof *lo);
    const struct ice_pvalue **hi = xcalloc(sp->n ? sp->n : 1, sizeof *hi);
    for (size_t i = 0; i < n; i++) {
        const struct ice_entry *x = &e[i];
        put_entry(&body, x, sc, sp);
        if (x->status == ICE_ADDED) {
            mf->added_files++;
            mf->added_rows += x->df.records;
        } else if (x->status == ICE_EXISTING) {
            mf->existing_files++;
            mf->existing_rows += x->df.records;
        } else {
            mf->deleted_files++;
            mf->deleted_rows += x->df.records;
        }
        for (uint32_t k = 0; k < sp->n && k < x->df.npart; k++) {
            const struct ice_pvalue *v = &x->df.part[k];
            if (v->null) {
                mf->parts[k].contains_null = true;
                continue;
            }
            if (!lo[k] || pvalue_less(v, lo[k]))
                lo[k] = v;
            if (!hi[k] || pvalue_less(hi[k], v))
                hi[k] = v;
        }
    }
    for (uint32_t k = 0; k < sp->n; k++) {
        if (!lo[k])
            continue;
        const char *t = ice_pfield_avro_type(&sp->fields[k], sc);
        mf->parts[k].has_bounds = true;
        pvalue_bytes(lo[k], t, &mf->parts[k].lower);
        pvalue_bytes(hi[k], t, &mf->parts[k].upper);
    }
    free(lo);
    free(hi);
    if (n)
        avro_ocf_block(out, body.p, body.len, (int64_t)n, sync);
    buf_fini(&schema);
    buf_fini(&sjson);
    buf_fini(&spjson);
    buf_fini(&body);
}

void ice_manifest_list_write(struct buf *out, int64_t snapshot_id, int64_t parent_id, int64_t seq,
                             const struct ice_manifest_file *m, size_t n, const uint8_t sync[16])
{
    char sid[24], pid[24], sq[24];
    snprintf(sid, sizeof sid, "%lld", (long long)snapshot_id);
    if (parent_id >= 0)
        snprintf(pid, sizeof pid, "%lld", (long long)parent_id);
    else
        snprintf(pid, sizeof pid, "null");
    snprintf(sq, sizeof sq, "%lld", (long long)seq);
    struct avro_kv meta[] = {
        {"snapshot-id", sid},
        {"parent-snapshot-id", pid},
        {"sequence-number", sq},
        {"format-version", "2"},
    };
    avro_ocf_header(out, list_schema, meta, sizeof meta / sizeof meta[0], sync);
    struct buf body = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const struct ice_manifest_file *f = &m[i];
        avro_put_string(&body, f->path);
        avro_put_long(&body, f->length);
        avro_put_long(&body, f->spec_id);
        avro_put_long(&body, f->content);
        avro_put_long(&body, f->seq);
        avro_put_long(&body, f->min_seq);
        avro_put_long(&body, f->added_snapshot_id);
        avro_put_long(&body, f->added_files);
        avro_put_long(&body, f->existing_files);
        avro_put_long(&body, f->deleted_files);
        avro_put_long(&body, f->added_rows);
        avro_put_long(&body, f->existing_rows);
        avro_put_long(&body, f->deleted_rows);
        avro_put_long(&body, 1); /* partitions: the array */
        if (f->npart) {
            avro_put_long(&body, f->npart);
            for (uint32_t k = 0; k < f->npart; k++) {
                const struct ice_part_summary *p = &f->parts[k];
                avro_put_bool(&body, p->contains_null);
                avro_put_long(&body, 0); /* contains_nan: null */
                for (int u = 0; u < 2; u++) {
                    const struct buf *v = u ? &p->upper : &p->lower;
                    if (p->has_bounds) {
                        avro_put_long(&body, 1);
                        avro_put_bytes(&body, v->p, v->len);
                    } else {
                        avro_put_long(&body, 0);
                    }
                }
            }
        }
        avro_put_long(&body, 0);
        avro_put_long(&body, 0); /* key_metadata: null */
    }
    if (n)
        avro_ocf_block(out, body.p, body.len, (int64_t)n, sync);
    buf_fini(&body);
}

/* ---- reading ---------------------------------------------------------------- */

static int64_t opt_long(const struct avro_value *rec, const char *name)
{
    return avro_get_long(rec, name, -1);
}

/* Reads an int-keyed map (array of key/value records) into df->cols. */
static struct ice_col_stat *col_for(struct ice_data_file *df, int32_t id)
{
    for (uint32_t i = 0; i < df->ncols; i++)
        if (df->cols[i].id == id)
            return &df->cols[i];
    df->cols = xrealloc(df->cols, (df->ncols + 1) * sizeof *df->cols);
    struct ice_col_stat *c = &df->cols[df->ncols++];
    memset(c, 0, sizeof *c);
    c->id = id;
    c->size = c->values = c->nulls = c->nans = -1;
    return c;
}

static void read_map(struct ice_data_file *df, const struct avro_value *rec, const char *name,
                     int which)
{
    const struct avro_value *arr = avro_get(rec, name);
    if (!arr || arr->schema->kind != AVRO_ARRAY)
        return;
    for (size_t i = 0; i < arr->n; i++) {
        const struct avro_value *kv = &arr->items[i];
        const struct avro_value *k = avro_get(kv, "key"), *v = avro_get(kv, "value");
        if (!k || !v)
            continue;
        struct ice_col_stat *c = col_for(df, (int32_t)k->l);
        switch (which) {
        case 0:
            c->size = v->l;
            break;
        case 1:
            c->values = v->l;
            break;
        case 2:
            c->nulls = v->l;
            break;
        case 3:
            c->nans = v->l;
            break;
        case 4:
        case 5:
            buf_reset(which == 4 ? &c->lower : &c->upper);
            buf_put(which == 4 ? &c->lower : &c->upper, v->p, v->len);
            c->has_bounds = true;
            break;
        }
    }
}

static int read_data_file(const struct avro_value *r2, struct ice_data_file *df)
{
    memset(df, 0, sizeof *df);
    df->content = (enum ice_content)avro_get_long(r2, "content", 0);
    df->path = avro_get_string(r2, "file_path");
    df->records = avro_get_long(r2, "record_count", -1);
    df->size = avro_get_long(r2, "file_size_in_bytes", -1);
    if (!df->path || df->records < 0 || df->size < 0 || df->content > 2)
        return CDC_EINVAL;
    const struct avro_value *part = avro_get(r2, "partition");
    if (part && part->schema->kind == AVRO_RECORD) {
        df->npart = (uint32_t)part->n;
        df->part = xcalloc(part->n ? part->n : 1, sizeof *df->part);
        for (size_t i = 0; i < part->n; i++) {
            const struct avro_value *v = &part->items[i];
            while (v->schema->kind == AVRO_UNION)
                v = &v->items[0];
            struct ice_pvalue *pv = &df->part[i];
            if (v->schema->kind == AVRO_NULL) {
                pv->null = true;
            } else if (v->schema->kind == AVRO_STRING) {
                pv->is_str = true;
                pv->s = xstrndup((const char *)v->p, v->len);
            } else {
                pv->l = v->l;
            }
        }
    }
    read_map(df, r2, "column_sizes", 0);
    read_map(df, r2, "value_counts", 1);
    read_map(df, r2, "null_value_counts", 2);
    read_map(df, r2, "nan_value_counts", 3);
    read_map(df, r2, "lower_bounds", 4);
    read_map(df, r2, "upper_bounds", 5);
    const struct avro_value *splits = avro_get(r2, "split_offsets");
    if (splits && splits->schema->kind == AVRO_ARRAY) {
        df->nsplits = (uint32_t)splits->n;
        df->splits = xcalloc(splits->n ? splits->n : 1, sizeof *df->splits);
        for (size_t i = 0; i < splits->n; i++)
            df->splits[i] = splits->items[i].l;
    }
    const struct avro_value *eq = avro_get(r2, "equality_ids");
    if (eq && eq->schema->kind == AVRO_ARRAY) {
        df->neq = (uint32_t)eq->n;
        df->eq_ids = xcalloc(eq->n ? eq->n : 1, sizeof *df->eq_ids);
        for (size_t i = 0; i < eq->n; i++)
            df->eq_ids[i] = (int32_t)eq->items[i].l;
    }
    if (df->content == ICE_CONTENT_EQ_DELETES && df->neq == 0)
        return CDC_EINVAL;
    df->referenced = avro_get_string(r2, "referenced_data_file");
    return 0;
}

int ice_manifest_read(const uint8_t *data, size_t len, struct ice_entry **out, size_t *n, char *err,
                      size_t errlen)
{
    struct avro_ocf f;
    *out = NULL;
    *n = 0;
    if (avro_ocf_read(data, len, &f, err, errlen) < 0)
        return CDC_EINVAL;
    struct ice_entry *e = xcalloc(f.nrecords ? f.nrecords : 1, sizeof *e);
    size_t k = 0;
    int rc = 0;
    for (; k < f.nrecords; k++) {
        const struct avro_value *r = &f.records[k];
        e[k].status = (enum ice_status)avro_get_long(r, "status", -1);
        e[k].snapshot_id = opt_long(r, "snapshot_id");
        e[k].seq = opt_long(r, "sequence_number");
        e[k].file_seq = opt_long(r, "file_sequence_number");
        const struct avro_value *r2 = avro_get(r, "data_file");
        if ((int)e[k].status < 0 || e[k].status > ICE_DELETED || !r2 ||
            read_data_file(r2, &e[k].df) < 0) {
            k++;
            rc = cdc_fail(err, errlen, CDC_EINVAL, "manifest entry %zu: missing or bad fields", k);
            break;
        }
    }
    avro_ocf_fini(&f);
    if (rc < 0) {
        ice_entries_free(e, k);
        return rc;
    }
    *out = e;
    *n = k;
    return 0;
}

int ice_manifest_list_read(const uint8_t *data, size_t len, struct ice_manifest_file **out,
                           size_t *n, char *err, size_t errlen)
{
    struct avro_ocf f;
    *out = NULL;
    *n = 0;
    if (avro_ocf_read(data, len, &f, err, errlen) < 0)
        return CDC_EINVAL;
    struct ice_manifest_file *m = xcalloc(f.nrecords ? f.nrecords : 1, sizeof *m);
    size_t k = 0;
    int rc = 0;
    for (; k < f.nrecords; k++) {
        const struct avro_value *r = &f.records[k];
        struct ice_manifest_file *x = &m[k];
        x->path = avro_get_string(r, "manifest_path");
        x->length = avro_get_long(r, "manifest_length", -1);
        x->spec_id = (int32_t)avro_get_long(r, "partition_spec_id", 0);
        x->content = (int32_t)avro_get_long(r, "content", 0);
        x->seq = avro_get_long(r, "sequence_number", 0);
        x->min_seq = avro_get_long(r, "min_sequence_number", 0);
        x->added_snapshot_id = avro_get_long(r, "added_snapshot_id", -1);
        x->added_files = (int32_t)avro_get_long(r, "added_files_count", 0);
        x->existing_files = (int32_t)avro_get_long(r, "existing_files_count", 0);
        x->deleted_files = (int32_t)avro_get_long(r, "deleted_files_count", 0);
        x->added_rows = avro_get_long(r, "added_rows_count", 0);
        x->existing_rows = avro_get_long(r, "existing_rows_count", 0);
        x->deleted_rows = avro_get_long(r, "deleted_rows_count", 0);
        const struct avro_value *parts = avro_get(r, "partitions");
        if (parts && parts->schema->kind == AVRO_ARRAY) {
            x->npart = (uint32_t)parts->n;
            x->parts = xcalloc(parts->n ? parts->n : 1, sizeof *x->parts);
            for (size_t i = 0; i < parts->n; i++) {
                const struct avro_value *p = &parts->items[i];
                const struct avro_value *lo = avro_get(p, "lower_bound");
                const struct avro_value *hi = avro_get(p, "upper_bound");
                x->parts[i].contains_null = avro_get_long(p, "contains_null", 0) != 0;
                if (lo && hi) {
                    x->parts[i].has_bounds = true;
                    buf_put(&x->parts[i].lower, lo->p, lo->len);
                    buf_put(&x->parts[i].upper, hi->p, hi->len);
                }
            }
        }
        if (!x->path || x->length < 0 || x->content < 0 || x->content > 1) {
            k++;
            rc = cdc_fail(err, errlen, CDC_EINVAL, "manifest list row %zu: missing fields", k);
            break;
        }
    }
    avro_ocf_fini(&f);
    if (rc < 0) {
        ice_manifest_files_free(m, k);
        return rc;
    }
    *out = m;
    *n = k;
    return 0;
}
