/* lake_write table SPEC.json: runs Iceberg table operations with src/lake so
 * the format tests can read the result with independent readers.
 *
 * SPEC: {"warehouse": "file:///…" | "s3://bucket/prefix",
 *        "s3": {"endpoint","region","access_key_id","secret_access_key","part_bytes"},
 *        "catalog": {"type": "fs" | "sql" | "rest", "uri": …, "name": …},
 *        "namespace": "db", "table": "t", "codec": "zstd",
 *        "schema": {Iceberg schema}, "partition_by": "bucket(4, id)",
 *        "ops": [op, …]}
 * ops (rows are arrays of PostgreSQL text values or null):
 *   {"op":"append", "rows":[…], "props":{…}}
 *   {"op":"row_delta", "rows":[…], "eq_ids":[1], "eq_deletes":[[key text…]…],
 *    "pos_deletes":[{"op":k, "file":i, "pos":p}…], "props":{…}}
 *       (pos_deletes name the i-th data file written by op k, this one included)
 *   {"op":"replace", "rows":[…]}: removes every live file, adds rows (the
 *       table's content with deletes applied) at the read snapshot's sequence
 *   {"op":"rollback", "to_op":k}: makes op k's snapshot current
 *   {"op":"expire", "min_keep":n}: expires all but n snapshots (no age limit)
 *   {"op":"half_commit", "rows":[…]}: writes data, manifest and manifest list
 *       files but never commits (a crash before the catalog swap)
 *   {"op":"clean_orphans", "grace_ms":n}: removes unreferenced files older
 *       than n ms (default: all of them)
 *   {"op":"reload"}: loads the table again from the catalog
 *   {"op":"conflict", "rows":[…]}: a second writer loaded before this op's
 *       append commits the same rows after it: CDC_EAGAIN, then success
 *       after a refresh (stale_commit, retried_snapshot_id)
 * Prints {"metadata_location", "ops":[{"snapshot_id", "data_files":[…],
 * "delete_files":[…], …}]}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lake/ice_catalog.h"
#include "lake/ice_maint.h"
#include "lake/ice_table.h"
#include "lake/lake_store.h"
#include "util/err.h"
#include "util/mem.h"

#include "lake_helper.h"

struct op_result {
    int64_t snapshot_id;
    char **data;
    size_t ndata;
    char **deletes;
    size_t ndeletes;
    struct buf extra; /* more JSON members */
};

struct run {
    struct ice_table *t;
    struct lake_store *st;
    const struct jsonv *spec;
    enum parquet_codec codec;
    struct op_result *res;
    size_t nres;
    char err[1024];
};

static int upload_cb(void *arg, const void *data, size_t n, char *err, size_t errlen)
{
    return lake_upload_write(arg, data, n, err, errlen);
}

/* Writes rows of schema sc to a new file in dir; fills df. part = the
 * partition values for the file (copied), or NULL. */
static int write_file(struct run *r, const struct ice_schema *sc, const struct jsonv *rows,
                      size_t *idx, size_t nidx, enum ice_content content,
                      const struct ice_pvalue *part, uint32_t npart, struct ice_data_file *df)
{
    char *path = ice_table_new_path(r->t, "data", ".parquet");
    struct lake_upload *up = NULL;
    struct parquet_writer *pw = NULL;
    struct parquet_file_info info;
    struct parquet_opts o = {.codec = r->codec, .label = r->t->name};
    int rc = lake_upload_open(r->st, path, &up, r->err, sizeof r->err);
    if (rc == 0)
        rc = parquet_writer_new(&pw, sc, &o, upload_cb, up, r->err, sizeof r->err);
    for (size_t i = 0; rc == 0 && i < nidx; i++) {
        struct jsonv one = {.t = JSONV_ARR, .items = (struct jsonv *)&rows->items[idx[i]], .n = 1};
        rc = lake_add_rows(pw, &one, r->err, sizeof r->err);
    }
    if (rc == 0)
        rc = parquet_writer_finish(pw, &info, r->err, sizeof r->err);
    parquet_writer_free(pw);
    if (rc == 0) {
        rc = lake_upload_commit(up, r->err, sizeof r->err);
        if (rc == 0) {
            ice_data_file_init(df, content, path, &info);
            df->npart = npart;
            df->part = xcalloc(npart ? npart : 1, sizeof *df->part);
            for (uint32_t k = 0; k < npart; k++) {
                df->part[k] = part[k];
                df->part[k].s = part[k].s ? xstrdup(part[k].s) : NULL;
            }
        }
        parquet_file_info_fini(&info);
    } else if (up) {
        lake_upload_abort(up);
    }
    free(path);
    return rc;
}

/* Partition values of one row (text values in schema order). */
static int row_partition(struct run *r, const struct ice_schema *sc, const struct jsonv *row,
                         struct ice_pvalue *out)
{
    const struct ice_spec *sp = ice_meta_spec(r->t->meta, r->t->meta->default_spec_id);
    for (uint32_t k = 0; k < sp->n; k++) {
        int col = ice_schema_index(sc, sp->fields[k].source_id);
        const struct jsonv *v = col >= 0 && (size_t)col < row->n ? &row->items[col] : NULL;
        if (col < 0 || !v)
            return cdc_fail(r->err, sizeof r->err, CDC_EINVAL, "row lacks partition source");
        int rc =
            ice_partition_value(&sp->fields[k], &sc->fields[col], v->t == JSONV_STR ? v->s : NULL,
                                v->t == JSONV_STR ? strlen(v->s) : 0, &out[k]);
        if (rc < 0)
            return cdc_fail(r->err, sizeof r->err, CDC_EINVAL, "bad partition source value");
    }
    return 0;
}

/* Writes rows as one file per partition; appends them to *files. */
static int write_rows(struct run *r, const struct ice_schema *sc, const struct jsonv *rows,
                      enum ice_content content, struct ice_data_file **files, size_t *nfiles)
{
    const struct ice_spec *sp = ice_meta_spec(r->t->meta, r->t->meta->default_spec_id);
    size_t n = rows ? rows->n : 0;
    struct ice_pvalue *pv = xcalloc(n * (sp->n ? sp->n : 1) + 1, sizeof *pv);
    bool *done = xcalloc(n + 1, sizeof *done);
    size_t *idx = xcalloc(n + 1, sizeof *idx);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = row_partition(r, sc, &rows->items[i], &pv[i * sp->n]);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (done[i])
            continue;
        size_t m = 0;
        for (size_t j = i; j < n; j++) {
            bool same = !done[j];
            for (uint32_t k = 0; same && k < sp->n; k++)
                same = ice_pvalue_equal(&pv[i * sp->n + k], &pv[j * sp->n + k]);
            if (same) {
                done[j] = true;
                idx[m++] = j;
            }
        }
        *files = xrealloc(*files, (*nfiles + 1) * sizeof **files);
        rc = write_file(r, sc, rows, idx, m, content, &pv[i * sp->n], sp->n, &(*files)[*nfiles]);
        if (rc == 0)
            (*nfiles)++;
    }
    for (size_t i = 0; i < n * sp->n; i++)
        ice_pvalue_fini(&pv[i]);
    free(pv);
    free(done);
    free(idx);
    return rc;
}

static struct ice_kv *props_of(const struct jsonv *op, size_t *n)
{
    const struct jsonv *p = jsonv_get(op, "props");
    *n = 0;
    struct ice_kv *kv = NULL;
    for (size_t i = 0; p && p->t == JSONV_OBJ && i < p->n; i++)
        if (p->items[i].t == JSONV_STR)
            ice_kv_set(&kv, n, p->keys[i], p->items[i].s);
    return kv;
}

/* Equality delete file of key rows for eq_ids. */
static int eq_deletes(struct run *r, const struct jsonv *op, struct ice_data_file **files,
                      size_t *nfiles)
{
    const struct jsonv *ids = jsonv_get(op, "eq_ids"), *rows = jsonv_get(op, "eq_deletes");
    if (!rows || rows->n == 0)
        return 0;
    const struct ice_schema *tsc = ice_meta_schema(r->t->meta);
    struct ice_schema *sc = ice_schema_new(tsc->schema_id);
    int32_t *eq = xcalloc(ids ? ids->n + 1 : 1, sizeof *eq);
    for (size_t i = 0; ids && i < ids->n; i++) {
        const struct ice_field *f = ice_schema_find(tsc, (int32_t)ids->items[i].num);
        if (f) {
            struct ice_field *g = ice_schema_add(sc, f->id, f->name, f->type, f->required);
            g->precision = f->precision;
            g->scale = f->scale;
            g->len = f->len;
        }
        eq[i] = (int32_t)ids->items[i].num;
    }
    size_t first = *nfiles;
    int rc = write_rows(r, sc, rows, ICE_CONTENT_EQ_DELETES, files, nfiles);
    for (size_t i = first; rc == 0 && i < *nfiles; i++) {
        (*files)[i].neq = (uint32_t)(ids ? ids->n : 0);
        (*files)[i].eq_ids = xcalloc(ids ? ids->n + 1 : 1, sizeof *eq);
        memcpy((*files)[i].eq_ids, eq, (ids ? ids->n : 0) * sizeof *eq);
    }
    free(eq);
    ice_schema_free(sc);
    return rc;
}

static int cmp_pos(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* One position delete file per referenced data file. */
static int pos_deletes(struct run *r, const struct jsonv *op, struct op_result *cur,
                       const struct ice_data_file *cur_files, struct ice_data_file **files,
                       size_t *nfiles)
{
    const struct jsonv *pd = jsonv_get(op, "pos_deletes");
    if (!pd || pd->n == 0)
        return 0;
    /* (op, file, pos) triples sorted, so each file's positions ascend */
    int64_t *t = xcalloc(pd->n * 3, sizeof *t);
    for (size_t i = 0; i < pd->n; i++) {
        t[3 * i] = (int64_t)jsonv_num(&pd->items[i], "op", -1) * 100000 +
                   (int64_t)jsonv_num(&pd->items[i], "file", 0);
        t[3 * i + 1] = (int64_t)jsonv_num(&pd->items[i], "pos", -1);
    }
    qsort(t, pd->n, 3 * sizeof *t, cmp_pos);
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, ICE_POS_FILE_PATH_ID, "file_path", ICE_STRING, true);
    ice_schema_add(sc, ICE_POS_POS_ID, "pos", ICE_LONG, true);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < pd->n;) {
        size_t j = i;
        while (j < pd->n && t[3 * j] == t[3 * i])
            j++;
        size_t opi = (size_t)(t[3 * i] / 100000), fi = (size_t)(t[3 * i] % 100000);
        const char *path = NULL;
        const struct ice_data_file *target = NULL;
        if (opi == r->nres && fi < cur->ndata) {
            path = cur->data[fi];
            target = &cur_files[fi];
        } else if (opi < r->nres && fi < r->res[opi].ndata) {
            path = r->res[opi].data[fi];
        }
        if (!path) {
            rc = cdc_fail(r->err, sizeof r->err, CDC_EINVAL, "pos_deletes: no file %zu of op %zu",
                          fi, opi);
            break;
        }
        struct jsonv rows = {.t = JSONV_ARR, .n = j - i};
        rows.items = xcalloc(j - i, sizeof *rows.items);
        size_t *idx = xcalloc(j - i, sizeof *idx);
        char num[24];
        for (size_t k = i; k < j; k++) {
            struct jsonv *row = &rows.items[k - i];
            row->t = JSONV_ARR;
            row->n = 2;
            row->items = xcalloc(2, sizeof *row->items);
            row->items[0].t = row->items[1].t = JSONV_STR;
            row->items[0].s = xstrdup(path);
            snprintf(num, sizeof num, "%lld", (long long)t[3 * k + 1]);
            row->items[1].s = xstrdup(num);
            idx[k - i] = k - i;
        }
        *files = xrealloc(*files, (*nfiles + 1) * sizeof **files);
        struct ice_data_file *df = &(*files)[*nfiles];
        rc = write_file(r, sc, &rows, idx, j - i, ICE_CONTENT_POS_DELETES,
                        target ? target->part : NULL, target ? target->npart : 0, df);
        if (rc == 0) {
            df->referenced = xstrdup(path);
            (*nfiles)++;
        }
        jsonv_free(&rows);
        free(idx);
        i = j;
    }
    ice_schema_free(sc);
    free(t);
    return rc;
}

static void note_files(char ***out, size_t *n, const struct ice_data_file *f, size_t nf)
{
    for (size_t i = 0; i < nf; i++) {
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = xstrdup(f[i].path);
    }
}

static void free_files(struct ice_data_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ice_data_file_fini(&f[i]);
    free(f);
}

/* append, row_delta, replace and half_commit. */
static int op_write(struct run *r, const struct jsonv *op, const char *kind, struct op_result *res)
{
    const struct ice_schema *sc = ice_meta_schema(r->t->meta);
    struct ice_data_file *data = NULL, *dels = NULL;
    size_t ndata = 0, ndels = 0, nprops = 0;
    int rc = write_rows(r, sc, jsonv_get(op, "rows"), ICE_CONTENT_DATA, &data, &ndata);
    note_files(&res->data, &res->ndata, data, ndata);
    if (rc == 0)
        rc = eq_deletes(r, op, &dels, &ndels);
    if (rc == 0)
        rc = pos_deletes(r, op, res, data, &dels, &ndels);
    note_files(&res->deletes, &res->ndeletes, dels, ndels);
    struct ice_kv *props = props_of(op, &nprops);
    struct ice_change c = {data, ndata, dels, ndels, NULL, 0, -1, false, props, nprops};
    struct ice_entry *live = NULL;
    size_t nlive = 0;
    const char **remove = NULL;
    if (rc == 0 && strcmp(kind, "replace") == 0) {
        rc = ice_table_files(r->t, -1, &live, &nlive, r->err, sizeof r->err);
        remove = xcalloc(nlive + 1, sizeof *remove);
        for (size_t i = 0; i < nlive; i++)
            remove[i] = live[i].df.path;
        c.remove = remove;
        c.nremove = nlive;
        c.replace = true;
        c.data_seq = r->t->meta->last_seq;
    }
    if (rc == 0 && strcmp(kind, "half_commit") == 0) {
        /* What a crash between writing files and the catalog swap leaves:
         * data, a manifest and a manifest list, never referenced. */
        struct ice_entry e = {ICE_ADDED, 1, -1, -1, data[0]};
        struct ice_manifest_file mf, ml = {0};
        struct buf b = BUF_INIT;
        uint8_t sync[16] = {1, 2, 3};
        ice_manifest_write(&b, sc, ice_meta_spec(r->t->meta, 0), 0, &e, 1, sync, &mf);
        char *m = ice_table_new_path(r->t, "metadata", "-m0.avro");
        rc = lake_store_put(r->st, m, b.p, b.len, 0, r->err, sizeof r->err);
        buf_reset(&b);
        ml = mf;
        ml.path = m;
        ml.length = 1;
        ice_manifest_list_write(&b, 1, -1, 99, &ml, 1, sync);
        char *l = ice_table_new_path(r->t, "metadata", ".avro");
        if (rc == 0)
            rc = lake_store_put(r->st, l, b.p, b.len, 0, r->err, sizeof r->err);
        buf_printf(&res->extra, ",\"orphans\":[\"%s\",\"%s\",\"%s\"]", data[0].path, m, l);
        mf.path = NULL;
        ice_manifest_file_fini(&mf);
        free(m);
        free(l);
        buf_fini(&b);
    } else if (rc == 0) {
        rc = ice_table_commit(r->t, &c, &res->snapshot_id, r->err, sizeof r->err);
    }
    free(remove);
    ice_entries_free(live, nlive);
    ice_kvs_free(props, nprops);
    free_files(data, ndata);
    free_files(dels, ndels);
    return rc;
}

/* Two writers: a second handle loaded now commits after the first one did;
 * its commit must fail with CDC_EAGAIN, and succeed after a refresh. */
static int op_conflict(struct run *r, const struct jsonv *op, struct op_result *res)
{
    struct ice_table *stale = NULL;
    int rc = ice_table_load(r->t->cat, r->t->ns, r->t->name, &stale, r->err, sizeof r->err);
    if (rc == 0)
        rc = op_write(r, op, "append", res);
    struct ice_data_file *data = NULL;
    size_t ndata = 0;
    struct ice_table *first = r->t;
    if (rc == 0) {
        r->t = stale; /* write the second file as the stale writer */
        rc = write_rows(r, ice_meta_schema(stale->meta), jsonv_get(op, "rows"), ICE_CONTENT_DATA,
                        &data, &ndata);
        r->t = first;
    }
    struct ice_change c = {data, ndata, NULL, 0, NULL, 0, -1, false, NULL, 0};
    int64_t id = 0;
    if (rc == 0) {
        char e2[512];
        int crc = ice_table_commit(stale, &c, &id, e2, sizeof e2);
        buf_printf(&res->extra, ",\"stale_commit\":%d", crc);
        if (crc == CDC_EAGAIN) {
            rc = ice_table_refresh(stale, r->err, sizeof r->err);
            if (rc == 0)
                rc = ice_table_commit(stale, &c, &id, r->err, sizeof r->err);
            buf_printf(&res->extra, ",\"retried_snapshot_id\":%lld", (long long)id);
            note_files(&res->data, &res->ndata, data, ndata);
        } else {
            rc = cdc_fail(r->err, sizeof r->err, CDC_EINVAL, "stale commit gave %d: %s", crc, e2);
        }
    }
    if (rc == 0)
        rc = ice_table_refresh(r->t, r->err, sizeof r->err);
    free_files(data, ndata);
    ice_table_free(stale);
    return rc;
}

static int run_op(struct run *r, const struct jsonv *op, struct op_result *res)
{
    const char *kind = jsonv_str(op, "op", "");
    if (strcmp(kind, "conflict") == 0)
        return op_conflict(r, op, res);
    if (strcmp(kind, "append") == 0 || strcmp(kind, "row_delta") == 0 ||
        strcmp(kind, "replace") == 0 || strcmp(kind, "half_commit") == 0)
        return op_write(r, op, kind, res);
    if (strcmp(kind, "rollback") == 0) {
        size_t k = (size_t)jsonv_num(op, "to_op", -1);
        if (k >= r->nres)
            return cdc_fail(r->err, sizeof r->err, CDC_EINVAL, "rollback: bad to_op");
        res->snapshot_id = r->res[k].snapshot_id;
        return ice_table_rollback(r->t, res->snapshot_id, r->err, sizeof r->err);
    }
    if (strcmp(kind, "expire") == 0) {
        struct ice_expire_stats st;
        int rc = ice_table_expire(r->t, ice_now_ms() + 1, (int)jsonv_num(op, "min_keep", 1), &st,
                                  r->err, sizeof r->err);
        buf_printf(&res->extra,
                   ",\"expired\":{\"snapshots\":%zu,\"manifest_lists\":%zu,\"manifests\":%zu,"
                   "\"files\":%zu}",
                   st.snapshots, st.manifest_lists, st.manifests, st.files);
        return rc;
    }
    if (strcmp(kind, "clean_orphans") == 0) {
        size_t removed = 0;
        /* grace_ms: only files older than that go (default: all, 1 s ahead) */
        int64_t grace = (int64_t)jsonv_num(op, "grace_ms", -1000);
        int rc =
            ice_table_clean_orphans(r->t, ice_now_ms() - grace, &removed, r->err, sizeof r->err);
        buf_printf(&res->extra, ",\"removed\":%zu", removed);
        return rc;
    }
    if (strcmp(kind, "reload") == 0) {
        struct ice_catalog *cat = r->t->cat;
        char *ns = xstrdup(r->t->ns), *name = xstrdup(r->t->name);
        ice_table_free(r->t);
        r->t = NULL;
        int rc = ice_table_load(cat, ns, name, &r->t, r->err, sizeof r->err);
        int64_t size = -1;
        if (rc == 0)
            rc = lake_store_head(r->st, r->t->meta_location, &size, r->err, sizeof r->err);
        if (rc == 0) {
            char *pos = ice_table_find_prop(r->t, "cdc.position");
            buf_printf(&res->extra,
                       ",\"cdc_position\":\"%s\",\"last_seq\":%lld,\"metadata_size\":%lld",
                       pos ? pos : "", (long long)r->t->meta->last_seq, (long long)size);
            free(pos);
        }
        free(ns);
        free(name);
        return rc == 0 ? 0 : CDC_EINVAL;
    }
    return cdc_fail(r->err, sizeof r->err, CDC_EINVAL, "unknown op \"%s\"", kind);
}

static void print_result(const struct run *r)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "{\"metadata_location\":");
    json_string(&b, r->t->meta_location, strlen(r->t->meta_location));
    buf_puts(&b, ",\"ops\":[");
    for (size_t i = 0; i < r->nres; i++) {
        const struct op_result *x = &r->res[i];
        buf_printf(&b, "%s{\"snapshot_id\":%lld,\"data_files\":[", i ? "," : "",
                   (long long)x->snapshot_id);
        for (size_t k = 0; k < x->ndata; k++) {
            buf_puts(&b, k ? "," : "");
            json_string(&b, x->data[k], strlen(x->data[k]));
        }
        buf_puts(&b, "],\"delete_files\":[");
        for (size_t k = 0; k < x->ndeletes; k++) {
            buf_puts(&b, k ? "," : "");
            json_string(&b, x->deletes[k], strlen(x->deletes[k]));
        }
        buf_printf(&b, "]%s}", x->extra.p ? x->extra.p : "");
    }
    buf_puts(&b, "]}\n");
    fputs(b.p, stdout);
    buf_fini(&b);
}

static int open_catalog(struct run *r, const char *warehouse, struct ice_catalog **cat)
{
    const struct jsonv *c = jsonv_get(r->spec, "catalog");
    const char *type = jsonv_str(c, "type", "fs");
    const char *name = jsonv_str(c, "name", "default"), *uri = jsonv_str(c, "uri", "");
    if (strcmp(type, "sql") == 0)
        return ice_catalog_sql_open(r->st, name, uri, warehouse, cat, r->err, sizeof r->err);
    if (strcmp(type, "rest") == 0)
        return ice_catalog_rest_open(r->st, name, uri, warehouse, NULL, cat, r->err, sizeof r->err);
    return ice_catalog_fs_open(r->st, warehouse, cat, r->err, sizeof r->err);
}

int lake_table_main(const char *spec_path)
{
    struct buf text = BUF_INIT;
    struct jsonv spec;
    if (lake_read_file(spec_path, &text) < 0 || jsonread_parse(text.p, text.len, &spec) < 0) {
        fprintf(stderr, "lake_write: cannot read %s\n", spec_path);
        return 2;
    }
    struct run r = {.spec = &spec, .codec = lake_codec(jsonv_str(&spec, "codec", "zstd"))};
    const char *wh = jsonv_str(&spec, "warehouse", "");
    const struct jsonv *s3 = jsonv_get(&spec, "s3");
    struct lake_s3_cfg s3cfg = {
        .endpoint = jsonv_str(s3, "endpoint", NULL),
        .region = jsonv_str(s3, "region", "us-east-1"),
        .access_key_id = jsonv_str(s3, "access_key_id", NULL),
        .secret_access_key = jsonv_str(s3, "secret_access_key", NULL),
        .part_bytes = (size_t)jsonv_num(s3, "part_bytes", 0),
    };
    struct ice_catalog *cat = NULL;
    struct ice_schema *sc = NULL;
    struct ice_spec *sp = NULL;
    const char *ns = jsonv_str(&spec, "namespace", "db"), *name = jsonv_str(&spec, "table", "t");
    int rc = lake_store_open(wh, s3 ? &s3cfg : NULL, &r.st, r.err, sizeof r.err);
    if (rc == 0)
        rc = open_catalog(&r, wh, &cat);
    if (rc == 0)
        rc = ice_table_load(cat, ns, name, &r.t, r.err, sizeof r.err);
    if (rc == LAKE_STORE_ABSENT) {
        rc = ice_schema_from_json(jsonv_get(&spec, "schema"), &sc, r.err, sizeof r.err);
        if (rc == 0)
            rc = ice_spec_parse(jsonv_str(&spec, "partition_by", ""), sc, 0, 1000, &sp, r.err,
                                sizeof r.err);
        if (rc == 0)
            rc = ice_table_create(cat, ns, name, sc, sp, NULL, 0, &r.t, r.err, sizeof r.err);
    }
    const struct jsonv *ops = jsonv_get(&spec, "ops");
    r.res = xcalloc(ops ? ops->n + 1 : 1, sizeof *r.res);
    for (size_t i = 0; rc == 0 && ops && i < ops->n; i++) {
        rc = run_op(&r, &ops->items[i], &r.res[r.nres]);
        if (rc == 0)
            r.nres++;
        else
            fprintf(stderr, "lake_write: op %zu: %s\n", i, r.err);
        if (rc != 0)
            r.err[0] = '\0';
    }
    if (rc == 0)
        print_result(&r);
    else if (r.err[0])
        fprintf(stderr, "lake_write: %s\n", r.err); /* not an op's failure */
    for (size_t i = 0; i <= r.nres && ops; i++) {
        for (size_t k = 0; k < r.res[i].ndata; k++)
            free(r.res[i].data[k]);
        for (size_t k = 0; k < r.res[i].ndeletes; k++)
            free(r.res[i].deletes[k]);
        free(r.res[i].data);
        free(r.res[i].deletes);
        buf_fini(&r.res[i].extra);
    }
    free(r.res);
    ice_table_free(r.t);
    ice_catalog_free(cat);
    lake_store_free(r.st);
    ice_schema_free(sc);
    ice_spec_free(sp);
    jsonv_free(&spec);
    buf_fini(&text);
    return rc == 0 ? 0 : 1;
}
