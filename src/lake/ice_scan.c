/* Table scans with deletes applied (see ice_scan.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_scan.h"
#include "lake/lake_keymap.h"
#include "lake/lake_value.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/strmap.h"

/* Position deletes of one data file. */
struct posvec {
    int64_t *pos, *seq;
    size_t n, cap;
    bool sorted;
};

/* Equality deletes over one set of columns: each key with the highest data
 * sequence number of a file deleting it. */
struct eqgroup {
    int32_t *ids;
    uint32_t nids;
    bool partitioned; /* keys start with the delete file's partition values */
    struct lake_keymap *keys;
    int64_t *maxseq;
    size_t cap;
};

struct ice_scan {
    struct ice_table *t; /* borrowed */
    int64_t seq;
    struct ice_schema *sc;
    struct ice_entry *files;
    size_t nfiles;
    size_t *data, ndata, *dels, ndels;
    struct strmap *pos; /* data file path -> struct posvec */
    struct eqgroup *eq;
    size_t neq;
    char ***refs; /* per delete file: the data files a position delete file names */
    size_t *nrefs;
};

const struct ice_schema *ice_meta_schema_by_id(const struct ice_meta *m, int32_t schema_id)
{
    for (size_t i = 0; i < m->nschemas; i++)
        if (m->schemas[i]->schema_id == schema_id)
            return m->schemas[i];
    return NULL;
}

static void free_posvec(void *p)
{
    struct posvec *v = p;
    free(v->pos);
    free(v->seq);
    free(v);
}

void ice_scan_free(struct ice_scan *s)
{
    if (!s)
        return;
    ice_schema_free(s->sc);
    ice_entries_free(s->files, s->nfiles);
    strmap_free(s->pos, free_posvec);
    for (size_t i = 0; i < s->neq; i++) {
        free(s->eq[i].ids);
        lake_keymap_free(s->eq[i].keys);
        free(s->eq[i].maxseq);
    }
    free(s->eq);
    for (size_t i = 0; s->refs && i < s->ndels; i++) {
        for (size_t k = 0; k < s->nrefs[i]; k++)
            free(s->refs[i][k]);
        free(s->refs[i]);
    }
    free(s->refs);
    free(s->nrefs);
    free(s->data);
    free(s->dels);
    free(s);
}

/* Reads a whole file of the table and opens it. */
static int open_file(struct ice_scan *s, const char *path, struct buf *b,
                     struct parquet_reader **rd, char *err, size_t errlen)
{
    int rc = lake_store_get(s->t->store, path, b, err, errlen);
    if (rc == LAKE_STORE_ABSENT)
        return cdc_fail(err, errlen, CDC_EIO, "table %s.%s: file %s is missing", s->t->ns,
                        s->t->name, path);
    if (rc < 0)
        return rc;
    return parquet_reader_open(rd, b->p, b->len, NULL, path, err, errlen);
}

static void add_ref(struct ice_scan *s, size_t di, const char *path)
{
    for (size_t k = 0; k < s->nrefs[di]; k++)
        if (strcmp(s->refs[di][k], path) == 0)
            return;
    s->refs[di] = xrealloc(s->refs[di], (s->nrefs[di] + 1) * sizeof *s->refs[di]);
    s->refs[di][s->nrefs[di]++] = xstrdup(path);
}

static int load_pos(struct ice_scan *s, size_t di, const struct ice_entry *e,
                    struct parquet_reader *rd, char *err, size_t errlen)
{
    int cp = parquet_reader_find(rd, ICE_POS_FILE_PATH_ID),
        cq = parquet_reader_find(rd, ICE_POS_POS_ID);
    if (cp < 0 || cq < 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "%s: a position delete file without file_path "
                        "and pos",
                        e->df.path);
    int rc = 0;
    char *path = NULL;
    for (uint32_t g = 0; rc == 0 && g < parquet_reader_row_groups(rd); g++) {
        struct parquet_column_data dp, dq;
        rc = parquet_reader_read(rd, g, (uint32_t)cp, &dp, err, errlen);
        if (rc == 0)
            rc = parquet_reader_read(rd, g, (uint32_t)cq, &dq, err, errlen);
        for (int64_t r = 0; rc == 0 && r < dp.rows; r++) {
            if (parquet_data_null(&dp, r) || parquet_data_null(&dq, r))
                continue;
            size_t n;
            const uint8_t *p = parquet_data_bytes(&dp, r, &n);
            if (!path || strlen(path) != n || memcmp(path, p, n) != 0) {
                free(path);
                path = xstrndup((const char *)p, n);
                add_ref(s, di, path);
            }
            struct posvec *v = strmap_get(s->pos, path);
            if (!v) {
                v = xcalloc(1, sizeof *v);
                strmap_put(s->pos, path, v);
            }
            if (v->n == v->cap) {
                v->cap = v->cap ? v->cap * 2 : 64;
                v->pos = xrealloc(v->pos, v->cap * sizeof *v->pos);
                v->seq = xrealloc(v->seq, v->cap * sizeof *v->seq);
            }
            v->pos[v->n] = parquet_data_int(&dq, r);
            v->seq[v->n++] = e->seq;
        }
        parquet_column_data_fini(&dp);
        parquet_column_data_fini(&dq);
    }
    free(path);
    return rc;
}

static struct eqgroup *group_for(struct ice_scan *s, const int32_t *ids, uint32_t n, bool part)
{
    for (size_t i = 0; i < s->neq; i++)
        if (s->eq[i].nids == n && s->eq[i].partitioned == part &&
            memcmp(s->eq[i].ids, ids, n * sizeof *ids) == 0)
            return &s->eq[i];
    s->eq = xrealloc(s->eq, (s->neq + 1) * sizeof *s->eq);
    struct eqgroup *g = &s->eq[s->neq++];
    memset(g, 0, sizeof *g);
    g->ids = xcalloc(n ? n : 1, sizeof *ids);
    memcpy(g->ids, ids, n * sizeof *ids);
    g->nids = n;
    g->partitioned = part;
    g->keys = lake_keymap_new();
    return g;
}

static int load_eq(struct ice_scan *s, const struct ice_entry *e, struct parquet_reader *rd,
                   char *err, size_t errlen)
{
    const struct ice_data_file *df = &e->df;
    struct eqgroup *g = group_for(s, df->eq_ids, df->neq, df->npart > 0);
    const struct ice_schema *fs = parquet_reader_schema(rd);
    int *cols = xcalloc(df->neq ? df->neq : 1, sizeof *cols);
    int rc = 0;
    for (uint32_t k = 0; k < df->neq && rc == 0; k++)
        if ((cols[k] = parquet_reader_find(rd, df->eq_ids[k])) < 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "%s: an equality delete file without its column %d", df->path,
                          df->eq_ids[k]);
    struct parquet_column_data *d = xcalloc(df->neq ? df->neq : 1, sizeof *d);
    struct buf key = BUF_INIT;
    for (uint32_t gi = 0; rc == 0 && gi < parquet_reader_row_groups(rd); gi++) {
        for (uint32_t k = 0; k < df->neq && rc == 0; k++)
            rc = parquet_reader_read(rd, gi, (uint32_t)cols[k], &d[k], err, errlen);
        for (int64_t r = 0; rc == 0 && r < parquet_reader_rg_rows(rd, gi); r++) {
            buf_reset(&key);
            if (g->partitioned)
                lake_key_partition(df->part, df->npart, &key);
            for (uint32_t k = 0; k < df->neq; k++)
                lake_value_key(&fs->fields[cols[k]], &d[k], r, &key);
            bool added;
            uint32_t at = lake_keymap_put(g->keys, key.p, key.len, &added);
            if (at >= g->cap) {
                g->cap = g->cap ? g->cap * 2 : 256;
                g->maxseq = xrealloc(g->maxseq, g->cap * sizeof *g->maxseq);
            }
            if (added || g->maxseq[at] < e->seq)
                g->maxseq[at] = e->seq;
        }
        for (uint32_t k = 0; k < df->neq; k++)
            parquet_column_data_fini(&d[k]);
    }
    buf_fini(&key);
    free(d);
    free(cols);
    return rc;
}

static int load_deletes(struct ice_scan *s, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < s->ndels && rc == 0; i++) {
        const struct ice_entry *e = &s->files[s->dels[i]];
        struct buf b = BUF_INIT;
        struct parquet_reader *rd = NULL;
        rc = open_file(s, e->df.path, &b, &rd, err, errlen);
        if (rc == 0)
            rc = e->df.content == ICE_CONTENT_POS_DELETES ? load_pos(s, i, e, rd, err, errlen)
                                                          : load_eq(s, e, rd, err, errlen);
        parquet_reader_free(rd);
        buf_fini(&b);
    }
    return rc;
}

int ice_scan_open(struct ice_table *t, int64_t snapshot_id, struct ice_scan **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    const struct ice_snapshot *snap =
        snapshot_id < 0 ? ice_meta_current(t->meta) : ice_meta_snapshot(t->meta, snapshot_id);
    if (snapshot_id >= 0 && !snap)
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s has no snapshot %lld", t->ns, t->name,
                        (long long)snapshot_id);
    const struct ice_schema *sc = snap ? ice_meta_schema_by_id(t->meta, snap->schema_id) : NULL;
    struct ice_scan *s = xcalloc(1, sizeof *s);
    s->t = t;
    s->sc = ice_schema_copy(sc ? sc : ice_meta_schema(t->meta));
    s->pos = strmap_new();
    int rc = 0;
    if (snap) {
        s->seq = snap->seq;
        rc = ice_table_files(t, snap->id, &s->files, &s->nfiles, err, errlen);
    }
    s->data = xcalloc(s->nfiles + 1, sizeof *s->data);
    s->dels = xcalloc(s->nfiles + 1, sizeof *s->dels);
    for (size_t i = 0; rc == 0 && i < s->nfiles; i++) {
        if (s->files[i].df.content == ICE_CONTENT_DATA)
            s->data[s->ndata++] = i;
        else
            s->dels[s->ndels++] = i;
    }
    s->refs = xcalloc(s->ndels + 1, sizeof *s->refs);
    s->nrefs = xcalloc(s->ndels + 1, sizeof *s->nrefs);
    if (rc == 0)
        rc = load_deletes(s, err, errlen);
    if (rc) {
        ice_scan_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

const struct ice_schema *ice_scan_schema(const struct ice_scan *s)
{
    return s->sc;
}

int64_t ice_scan_seq(const struct ice_scan *s)
{
    return s->seq;
}

size_t ice_scan_ndata(const struct ice_scan *s)
{
    return s->ndata;
}

const struct ice_entry *ice_scan_data(const struct ice_scan *s, size_t i)
{
    return &s->files[s->data[i]];
}

size_t ice_scan_ndeletes(const struct ice_scan *s)
{
    return s->ndels;
}

const struct ice_entry *ice_scan_delete(const struct ice_scan *s, size_t i)
{
    return &s->files[s->dels[i]];
}

static bool listed(const char *path, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(path, list[i]) == 0)
            return true;
    return false;
}

bool ice_scan_delete_needed(const struct ice_scan *s, size_t i, const char *const *except, size_t n)
{
    const struct ice_entry *d = ice_scan_delete(s, i);
    for (size_t k = 0; k < s->ndata; k++) {
        const struct ice_entry *e = ice_scan_data(s, k);
        if (listed(e->df.path, except, n))
            continue;
        if (d->df.content == ICE_CONTENT_EQ_DELETES
                ? e->seq < d->seq
                : listed(e->df.path, (const char *const *)s->refs[i], s->nrefs[i]))
            return true;
    }
    return false;
}

static int cmp_pos(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Sorts a file's position deletes by position (pairs kept together). */
static void sort_posvec(struct posvec *v)
{
    if (v->sorted)
        return;
    int64_t *pairs = xcalloc(v->n ? v->n * 2 : 2, sizeof *pairs);
    for (size_t i = 0; i < v->n; i++) {
        pairs[2 * i] = v->pos[i];
        pairs[2 * i + 1] = v->seq[i];
    }
    qsort(pairs, v->n, 2 * sizeof *pairs, cmp_pos);
    for (size_t i = 0; i < v->n; i++) {
        v->pos[i] = pairs[2 * i];
        v->seq[i] = pairs[2 * i + 1];
    }
    free(pairs);
    v->sorted = true;
}

/* State of reading one data file. */
struct fileread {
    struct ice_scan *s;
    const struct ice_entry *e;
    struct parquet_reader *rd;
    const struct ice_schema *fs;
    struct parquet_column_data *fd; /* per file column, for the current row group */
    bool *loaded;
    uint32_t nfcols;
};

static int load_col(struct fileread *f, uint32_t g, int c, char *err, size_t errlen)
{
    if (c < 0 || f->loaded[c])
        return 0;
    f->loaded[c] = true;
    return parquet_reader_read(f->rd, g, (uint32_t)c, &f->fd[c], err, errlen);
}

/* Whether row r (position p) of the current row group is deleted. */
static bool deleted(struct fileread *f, const struct posvec *pv, size_t *pj, int64_t p, int64_t r,
                    struct buf *key)
{
    int64_t seq = f->e->seq;
    if (pv) {
        while (*pj < pv->n && pv->pos[*pj] < p)
            (*pj)++;
        for (size_t j = *pj; j < pv->n && pv->pos[j] == p; j++)
            if (pv->seq[j] >= seq)
                return true;
    }
    for (size_t q = 0; q < f->s->neq; q++) {
        const struct eqgroup *g = &f->s->eq[q];
        buf_reset(key);
        if (g->partitioned)
            lake_key_partition(f->e->df.part, f->e->df.npart, key);
        for (uint32_t k = 0; k < g->nids; k++) {
            int c = parquet_reader_find(f->rd, g->ids[k]);
            lake_value_key(c >= 0 ? &f->fs->fields[c] : NULL, c >= 0 ? &f->fd[c] : NULL, r, key);
        }
        int64_t at = lake_keymap_get(g->keys, key->p, key->len);
        if (at >= 0 && g->maxseq[at] > seq)
            return true;
    }
    return false;
}

int ice_scan_file(struct ice_scan *s, size_t i, ice_rows_fn fn, void *arg, char *err, size_t errlen)
{
    const struct ice_entry *e = ice_scan_data(s, i);
    struct buf b = BUF_INIT, key = BUF_INIT;
    struct fileread f = {.s = s, .e = e};
    int rc = open_file(s, e->df.path, &b, &f.rd, err, errlen);
    if (rc) {
        buf_fini(&b);
        return rc;
    }
    f.fs = parquet_reader_schema(f.rd);
    f.nfcols = f.fs->nfields;
    f.fd = xcalloc(f.nfcols + 1, sizeof *f.fd);
    f.loaded = xcalloc(f.nfcols + 1, sizeof *f.loaded);
    struct posvec *pv = strmap_get(s->pos, e->df.path);
    if (pv)
        sort_posvec(pv);
    uint32_t nc = s->sc->nfields;
    const struct parquet_column_data **cols = xcalloc(nc + 1, sizeof *cols);
    int64_t *idx = NULL, base = 0;
    size_t pj = 0;
    for (uint32_t g = 0; rc == 0 && g < parquet_reader_row_groups(f.rd); g++) {
        int64_t rows = parquet_reader_rg_rows(f.rd, g);
        for (uint32_t c = 0; c < nc && rc == 0; c++) {
            int fc = parquet_reader_find(f.rd, s->sc->fields[c].id);
            rc = load_col(&f, g, fc, err, errlen);
            cols[c] = fc >= 0 ? &f.fd[fc] : NULL;
        }
        for (size_t q = 0; q < s->neq && rc == 0; q++)
            for (uint32_t k = 0; k < s->eq[q].nids && rc == 0; k++)
                rc = load_col(&f, g, parquet_reader_find(f.rd, s->eq[q].ids[k]), err, errlen);
        idx = xrealloc(idx, (size_t)(rows ? rows : 1) * sizeof *idx);
        int64_t n = 0;
        for (int64_t r = 0; rc == 0 && r < rows; r++)
            if (!deleted(&f, pv, &pj, base + r, r, &key))
                idx[n++] = r;
        if (rc == 0 && n > 0) {
            struct ice_rows rs = {e, base, n, idx, nc, cols};
            rc = fn(arg, &rs);
        }
        for (uint32_t c = 0; c < f.nfcols; c++) {
            if (f.loaded[c])
                parquet_column_data_fini(&f.fd[c]);
            f.loaded[c] = false;
        }
        base += rows;
    }
    free(idx);
    free(cols);
    free(f.fd);
    free(f.loaded);
    parquet_reader_free(f.rd);
    buf_fini(&b);
    buf_fini(&key);
    return rc;
}
