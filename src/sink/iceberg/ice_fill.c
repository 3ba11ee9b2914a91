/* Values an update did not carry (PostgreSQL sends an unchanged TOASTed
 * value as "unchanged", and a key-only old image does not have it either).
 * In upsert mode the new row must hold them, so such an update is kept
 * aside (a deferred row) and completed at the commit from the row it
 * replaced: a row the batch wrote (read back from the batch's file), an
 * earlier deferred row, or the table's row with that key as of the last
 * snapshot (a scan with deletes applied).  A value found nowhere (the
 * table never had the row: it was not snapshotted) is written as NULL and
 * logged at error level, naming the table, column and key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_scan.h"
#include "lake/lake_value.h"
#include "sink/iceberg/icesink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* A row's values by field id, as text. */
struct trow {
    bool set; /* found */
    uint32_t n;
    int32_t *ids;
    bool *null;
    uint32_t *off, *len;
    struct buf text;
};

static void trow_fini(struct trow *r)
{
    free(r->ids);
    free(r->null);
    free(r->off);
    free(r->len);
    buf_fini(&r->text);
    memset(r, 0, sizeof *r);
}

static void trow_init(struct trow *r, uint32_t n)
{
    trow_fini(r);
    r->set = true;
    r->n = 0;
    r->ids = xcalloc(n + 1, sizeof *r->ids);
    r->null = xcalloc(n + 1, sizeof *r->null);
    r->off = xcalloc(n + 1, sizeof *r->off);
    r->len = xcalloc(n + 1, sizeof *r->len);
}

static void trow_put(struct trow *r, int32_t id, const char *s, size_t n, bool null)
{
    uint32_t i = r->n++;
    r->ids[i] = id;
    r->null[i] = null;
    r->off[i] = (uint32_t)r->text.len;
    r->len[i] = (uint32_t)n;
    if (!null)
        buf_put(&r->text, s, n);
}

static void trow_copy(struct trow *dst, const struct trow *src)
{
    trow_init(dst, src->n);
    for (uint32_t i = 0; i < src->n; i++)
        trow_put(dst, src->ids[i], src->null[i] ? NULL : src->text.p + src->off[i], src->len[i],
                 src->null[i]);
}

/* The value of field id in r: 1 (*s, *n set; *s NULL for NULL), or 0. */
static int trow_get(const struct trow *r, int32_t id, const char **s, uint32_t *n)
{
    for (uint32_t i = 0; r->set && i < r->n; i++)
        if (r->ids[i] == id) {
            *s = r->null[i] ? NULL : r->text.p + r->off[i];
            *n = r->len[i];
            return 1;
        }
    return 0;
}

/* Row r of the columns d (fields fs) into t. */
static void trow_from(struct trow *t, const struct ice_schema *fs,
                      const struct parquet_column_data *const *d, int64_t r)
{
    trow_init(t, fs->nfields);
    struct buf v = BUF_INIT;
    for (uint32_t c = 0; c < fs->nfields; c++) {
        if (!d[c] || parquet_data_null(d[c], r)) {
            trow_put(t, fs->fields[c].id, NULL, 0, true);
            continue;
        }
        buf_reset(&v);
        lake_value_text(&fs->fields[c], d[c], r, &v);
        trow_put(t, fs->fields[c].id, v.p ? v.p : "", v.len, false);
    }
    buf_fini(&v);
}

/* The rows deferred rows take from batch file f. */
static int from_file(struct sink *sk, struct itable *it, uint32_t f, struct trow *base)
{
    struct icesink *s = sk->priv;
    struct batch *b = &it->b;
    struct buf data = BUF_INIT;
    struct parquet_reader *rd = NULL;
    char err[512];
    int rc = lake_store_get(s->store, b->files[f].path, &data, err, sizeof err);
    if (rc == LAKE_STORE_ABSENT)
        rc = cdc_fail(err, sizeof err, CDC_EIO, "%s is missing", b->files[f].path);
    if (rc == 0)
        rc = parquet_reader_open(&rd, data.p, data.len, NULL, b->files[f].path, err, sizeof err);
    const struct ice_schema *fs = rd ? parquet_reader_schema(rd) : NULL;
    int64_t first = 0;
    for (uint32_t g = 0; rc == 0 && g < parquet_reader_row_groups(rd); g++) {
        int64_t rows = parquet_reader_rg_rows(rd, g);
        bool wanted = false;
        for (size_t i = 0; i < b->ndef && !wanted; i++)
            wanted = b->def[i].src == FILL_FILE && b->def[i].file == f && b->def[i].pos >= first &&
                     b->def[i].pos < first + rows;
        if (wanted) {
            struct parquet_column_data *d = xcalloc(fs->nfields + 1, sizeof *d);
            const struct parquet_column_data **dp = xcalloc(fs->nfields + 1, sizeof *dp);
            for (uint32_t c = 0; c < fs->nfields && rc == 0; c++) {
                rc = parquet_reader_read(rd, g, c, &d[c], err, sizeof err);
                dp[c] = &d[c];
            }
            for (size_t i = 0; rc == 0 && i < b->ndef; i++)
                if (b->def[i].src == FILL_FILE && b->def[i].file == f && b->def[i].pos >= first &&
                    b->def[i].pos < first + rows)
                    trow_from(&base[i], fs, dp, b->def[i].pos - first);
            for (uint32_t c = 0; c < fs->nfields; c++)
                parquet_column_data_fini(&d[c]);
            free(d);
            free(dp);
        }
        first += rows;
    }
    parquet_reader_free(rd);
    buf_fini(&data);
    if (rc)
        return icesink_lake_error(sk, rc, it->label, err);
    return 0;
}

/* Looking up keys in the table as of its last snapshot. */
struct lookup {
    struct itable *it;
    const struct ice_schema *sc;
    struct lake_keymap *want; /* keys sought -> index into found */
    struct trow *found;
    struct buf key;
};

static int on_rows(void *arg, const struct ice_rows *rs)
{
    struct lookup *lk = arg;
    int *cols = xcalloc(lk->it->nkey + 1, sizeof *cols);
    for (uint32_t k = 0; k < lk->it->nkey; k++)
        cols[k] = ice_schema_index(lk->sc, lk->it->eq_ids[k]);
    for (int64_t i = 0; i < rs->n; i++) {
        buf_reset(&lk->key);
        for (uint32_t k = 0; k < lk->it->nkey; k++)
            lake_value_key(cols[k] >= 0 ? &lk->sc->fields[cols[k]] : NULL,
                           cols[k] >= 0 ? rs->cols[cols[k]] : NULL, rs->idx[i], &lk->key);
        int64_t at = lake_keymap_get(lk->want, lk->key.p, lk->key.len);
        if (at >= 0)
            trow_from(&lk->found[at], lk->sc, rs->cols, rs->idx[i]);
    }
    free(cols);
    return 0;
}

static int from_table(struct sink *sk, struct itable *it, struct trow *base)
{
    struct batch *b = &it->b;
    struct lookup lk = {.it = it, .want = lake_keymap_new()};
    for (size_t i = 0; i < b->ndef; i++)
        if (b->def[i].src == FILL_TABLE) {
            size_t n;
            const void *k = lake_keymap_key(b->keys, b->def[i].slot, &n);
            lake_keymap_put(lk.want, k, n, NULL);
        }
    size_t nwant = lake_keymap_count(lk.want);
    int rc = 0;
    char err[512];
    struct ice_scan *scan = NULL;
    lk.found = xcalloc(nwant + 1, sizeof *lk.found);
    if (nwant) {
        rc = ice_table_refresh(it->t, err, sizeof err);
        if (rc == 0)
            rc = ice_scan_open(it->t, -1, &scan, err, sizeof err);
        if (rc == 0)
            lk.sc = ice_scan_schema(scan);
        for (size_t f = 0; rc == 0 && f < ice_scan_ndata(scan); f++)
            rc = ice_scan_file(scan, f, on_rows, &lk, err, sizeof err);
    }
    for (size_t i = 0; rc == 0 && i < b->ndef; i++)
        if (b->def[i].src == FILL_TABLE) {
            size_t n;
            const void *k = lake_keymap_key(b->keys, b->def[i].slot, &n);
            int64_t at = lake_keymap_get(lk.want, k, n);
            if (at >= 0 && lk.found[at].set)
                trow_copy(&base[i], &lk.found[at]);
        }
    for (size_t i = 0; i < nwant; i++)
        trow_fini(&lk.found[i]);
    free(lk.found);
    buf_fini(&lk.key);
    lake_keymap_free(lk.want);
    ice_scan_free(scan);
    if (rc)
        return icesink_lake_error(sk, rc, it->label, err);
    return 0;
}

/* Completes deferred row i from its base; the result is its own row. */
static void complete(struct sink *sk, struct itable *it, size_t i, const struct trow *base,
                     struct trow *res)
{
    const struct deferred *d = &it->b.def[i];
    trow_init(res, d->n);
    for (uint32_t c = 0; c < d->n; c++) {
        const char *s = NULL;
        uint32_t n = 0;
        if (d->kind[c] == CDC_V_TEXT) {
            trow_put(res, d->ids[c], d->text.p + d->off[c], d->len[c], false);
        } else if (d->kind[c] == CDC_V_UNCHANGED && trow_get(base, d->ids[c], &s, &n)) {
            trow_put(res, d->ids[c], s, n, s == NULL);
        } else {
            if (d->kind[c] == CDC_V_UNCHANGED && d->alive) {
                const struct ice_schema *sc = ice_meta_schema(it->t->meta);
                int j = ice_schema_index(sc, d->ids[c]);
                log_error("sink.iceberg.value_missing", "sink=%s table=%s column=%s error=%s",
                          sk->cfg->sink_id, it->label, j >= 0 ? sc->fields[j].name : "?",
                          log_q("an update did not carry this column's unchanged value and the "
                                "table has no earlier row of the key to take it from (was the "
                                "table snapshotted?): written as NULL"));
            }
            trow_put(res, d->ids[c], NULL, 0, true);
        }
    }
}

int icesink_fill(struct sink *sk, struct itable *it)
{
    struct batch *b = &it->b;
    if (!b->ndef)
        return 0;
    struct trow *base = xcalloc(b->ndef, sizeof *base), *res = xcalloc(b->ndef, sizeof *res);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->ndef; i++) {
        if (b->def[i].src != FILL_FILE || base[i].set)
            continue;
        rc = from_file(sk, it, b->def[i].file, base);
    }
    if (rc == 0)
        rc = from_table(sk, it, base);
    const struct ice_schema *sc = ice_meta_schema(it->t->meta);
    const char **vals = xcalloc(sc->nfields + 1, sizeof *vals);
    uint32_t *lens = xcalloc(sc->nfields + 1, sizeof *lens);
    for (size_t i = 0; rc == 0 && i < b->ndef; i++) {
        const struct deferred *d = &b->def[i];
        complete(sk, it, i, d->src == FILL_DEFERRED ? &res[d->pos] : &base[i], &res[i]);
        if (!d->alive)
            continue;
        memset(vals, 0, (sc->nfields + 1) * sizeof *vals);
        for (uint32_t c = 0; c < res[i].n; c++) {
            int j = ice_schema_index(sc, res[i].ids[c]);
            if (j >= 0 && !res[i].null[c]) {
                vals[j] = res[i].text.p + res[i].off[c];
                lens[j] = res[i].len[c];
            }
        }
        uint32_t file;
        int64_t pos;
        rc = icesink_put_row(sk, it, vals, lens, &file, &pos);
    }
    free(vals);
    free(lens);
    for (size_t i = 0; i < b->ndef; i++) {
        trow_fini(&base[i]);
        trow_fini(&res[i]);
    }
    free(base);
    free(res);
    return rc;
}
