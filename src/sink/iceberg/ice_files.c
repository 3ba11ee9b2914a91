/* The files of a table's open batch: data files and equality delete files,
 * one open file per partition, started anew at the target size; position
 * deletes kept as (file, position) pairs until the commit writes them.
 * Rows arrive as texts by field index (the source's canonical text), and
 * their partition is computed from the same texts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/iceberg/icesink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

static const struct ice_spec *spec_of(const struct itable *it)
{
    return ice_meta_spec(it->t->meta, it->t->meta->default_spec_id);
}

/* The batch's index of partition values v (taking ownership of v), adding
 * them when new. */
static uint32_t part_index(struct batch *b, struct ice_pvalue *v, uint32_t npart)
{
    for (size_t p = 0; p < b->nparts; p++) {
        bool same = true;
        for (uint32_t k = 0; k < npart && same; k++)
            same = ice_pvalue_equal(&b->parts[p * npart + k], &v[k]);
        if (same) {
            for (uint32_t k = 0; k < npart; k++)
                ice_pvalue_fini(&v[k]);
            return (uint32_t)p;
        }
    }
    b->npart = npart;
    b->parts = xrealloc(b->parts, (b->nparts + 1) * (npart ? npart : 1) * sizeof *b->parts);
    memcpy(&b->parts[b->nparts * npart], v, npart * sizeof *v);
    return (uint32_t)b->nparts++;
}

/* The partition of a row whose fields of schema sc have texts vals. */
static int row_partition(struct sink *sk, struct itable *it, const struct ice_schema *sc,
                         const char *const *vals, const uint32_t *lens, uint32_t *part)
{
    const struct ice_spec *sp = spec_of(it);
    if (sp->n == 0 && it->b.nparts > 0) { /* unpartitioned: one partition */
        *part = 0;
        return 0;
    }
    struct ice_pvalue *v = xcalloc(sp->n ? sp->n : 1, sizeof *v);
    for (uint32_t k = 0; k < sp->n; k++) {
        int j = ice_schema_index(sc, sp->fields[k].source_id);
        if (j < 0 || ice_partition_value(&sp->fields[k], &sc->fields[j], vals[j],
                                         vals[j] ? lens[j] : 0, &v[k]) < 0) {
            for (uint32_t q = 0; q < k; q++)
                ice_pvalue_fini(&v[q]);
            free(v);
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "table %s, partition field %s: cannot compute it from column "
                                  "%s's value",
                                  it->label, sp->fields[k].name,
                                  j >= 0 ? sc->fields[j].name : "(missing)");
        }
    }
    *part = part_index(&it->b, v, sp->n);
    free(v);
    return 0;
}

static uint32_t add_file(struct batch *b, const char *path, enum ice_content content, uint32_t part)
{
    if (b->nfiles == b->capfiles) {
        b->capfiles = b->capfiles ? b->capfiles * 2 : 16;
        b->files = xrealloc(b->files, b->capfiles * sizeof *b->files);
    }
    struct bfile *f = &b->files[b->nfiles];
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    f->content = content;
    f->part = part;
    return (uint32_t)b->nfiles++;
}

/* The open writer of partition part in ws (opening one with schema sc). */
static int writer_for(struct sink *sk, struct itable *it, struct pwriter **ws, size_t *nws,
                      uint32_t part, const struct ice_schema *sc, enum ice_content content,
                      struct pwriter **out)
{
    for (size_t i = 0; i < *nws; i++)
        if ((*ws)[i].part == part) {
            *out = &(*ws)[i];
            return 0;
        }
    const struct iceberg_sink_cfg *ic = icesink_conf(sk);
    /* Pages of up to 8 MiB of values: zstd and snappy compress large pages
     * of unique strings markedly better (DuckDB writes them so too). */
    struct parquet_opts o = {
        .codec = iceberg_codec(ic),
        .row_group_bytes = content == ICE_CONTENT_DATA ? 32u << 20 : 8u << 20,
        .page_bytes = 8u << 20,
        .label = it->label,
    };
    struct pwriter pw = {.part = part};
    char err[512];
    int rc = ice_file_writer_open(&pw.w, it->t, sc, &o, err, sizeof err);
    if (rc)
        return icesink_lake_error(sk, rc, it->label, err);
    pw.file = add_file(&it->b, pw.w.path, content, part);
    *ws = xrealloc(*ws, (*nws + 1) * sizeof **ws);
    (*ws)[*nws] = pw;
    *out = &(*ws)[(*nws)++];
    return 0;
}

/* Finishes writer i of ws (removing it from ws). */
static int finish(struct sink *sk, struct itable *it, struct pwriter *ws, size_t *nws, size_t i)
{
    struct pwriter pw = ws[i];
    ws[i] = ws[--*nws];
    struct bfile *f = &it->b.files[pw.file];
    uint32_t npart = spec_of(it)->n;
    char err[512];
    int rc = ice_file_writer_finish(&pw.w, f->content, &it->b.parts[(size_t)pw.part * npart], npart,
                                    &f->df, err, sizeof err);
    if (rc)
        return icesink_lake_error(sk, rc, it->label, err);
    if (f->content == ICE_CONTENT_EQ_DELETES) {
        f->df.neq = it->nkey;
        f->df.eq_ids = xcalloc(it->nkey + 1, sizeof *f->df.eq_ids);
        memcpy(f->df.eq_ids, it->eq_ids, it->nkey * sizeof *it->eq_ids);
    }
    f->done = true;
    return 0;
}

int icesink_close_writers(struct sink *sk, struct itable *it)
{
    int rc = 0;
    while (rc == 0 && it->b.ndata)
        rc = finish(sk, it, it->b.data, &it->b.ndata, 0);
    while (rc == 0 && it->b.neq)
        rc = finish(sk, it, it->b.eq, &it->b.neq, 0);
    return rc;
}

/* Adds one row to w; the texts go through the writer's conversions. */
static int add_row(struct sink *sk, struct itable *it, struct pwriter *w,
                   const struct ice_schema *sc, const char *const *vals, const uint32_t *lens)
{
    char err[512];
    int rc = 0;
    for (uint32_t j = 0; j < sc->nfields && rc == 0; j++) {
        if (vals[j])
            rc = parquet_add_text(w->w.pw, j, vals[j], lens[j], err, sizeof err);
        else
            parquet_add_null(w->w.pw, j);
    }
    if (rc) {
        char ignore[64];
        parquet_end_row(w->w.pw, ignore, sizeof ignore); /* drops the partial row */
        return sink_set_error(sk, SINK_ERR_PERMANENT, "%s", err);
    }
    if ((rc = parquet_end_row(w->w.pw, err, sizeof err)) != 0)
        return sink_set_error(sk, SINK_ERR_PERMANENT, "%s", err);
    return 0;
}

static int64_t target_bytes(const struct sink *sk)
{
    return (int64_t)icesink_conf(sk)->maintenance.target_file_size_mb << 20;
}

int icesink_put_row(struct sink *sk, struct itable *it, const char *const *vals,
                    const uint32_t *lens, uint32_t *file, int64_t *pos)
{
    const struct ice_schema *sc = ice_meta_schema(it->t->meta);
    uint32_t part;
    struct pwriter *w;
    int rc = row_partition(sk, it, sc, vals, lens, &part);
    if (rc == 0)
        rc = writer_for(sk, it, &it->b.data, &it->b.ndata, part, sc, ICE_CONTENT_DATA, &w);
    if (rc == 0)
        rc = add_row(sk, it, w, sc, vals, lens);
    if (rc)
        return rc;
    *file = w->file;
    *pos = w->rows++;
    if (parquet_writer_bytes(w->w.pw) >= target_bytes(sk))
        rc = finish(sk, it, it->b.data, &it->b.ndata, (size_t)(w - it->b.data));
    return rc;
}

int icesink_put_eq_delete(struct sink *sk, struct itable *it, const char *const *vals,
                          const uint32_t *lens)
{
    uint32_t part;
    struct pwriter *w;
    int rc = row_partition(sk, it, it->eq_sc, vals, lens, &part);
    if (rc == 0)
        rc = writer_for(sk, it, &it->b.eq, &it->b.neq, part, it->eq_sc, ICE_CONTENT_EQ_DELETES, &w);
    if (rc == 0)
        rc = add_row(sk, it, w, it->eq_sc, vals, lens);
    if (rc == 0)
        w->rows++;
    return rc;
}

void icesink_put_pos_delete(struct itable *it, uint32_t file, int64_t pos)
{
    struct batch *b = &it->b;
    if (b->nposdel == b->capposdel) {
        b->capposdel = b->capposdel ? b->capposdel * 2 : 256;
        b->posdel = xrealloc(b->posdel, b->capposdel * 2 * sizeof *b->posdel);
    }
    b->posdel[2 * b->nposdel] = file;
    b->posdel[2 * b->nposdel + 1] = pos;
    b->nposdel++;
}

static int cmp_posdel(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

int icesink_write_pos_deletes(struct sink *sk, struct itable *it)
{
    struct batch *b = &it->b;
    if (!b->nposdel)
        return 0;
    /* by partition, then by path and position as the spec asks */
    int64_t *v = xcalloc(b->nposdel * 3, sizeof *v);
    for (size_t i = 0; i < b->nposdel; i++) {
        uint32_t f = (uint32_t)b->posdel[2 * i];
        v[3 * i] = b->files[f].part;
        v[3 * i + 1] = f;
        v[3 * i + 2] = b->posdel[2 * i + 1];
    }
    qsort(v, b->nposdel, 3 * sizeof *v, cmp_posdel);
    /* Files sort by index, not path: sort each partition's run by path. */
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, ICE_POS_FILE_PATH_ID, "file_path", ICE_STRING, true);
    ice_schema_add(sc, ICE_POS_POS_ID, "pos", ICE_LONG, true);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->nposdel;) {
        size_t j = i;
        while (j < b->nposdel && v[3 * j] == v[3 * i])
            j++;
        /* the files of this partition in path order */
        uint32_t *files = xcalloc(j - i, sizeof *files);
        size_t nf = 0;
        for (size_t k = i; k < j; k++)
            if (nf == 0 || files[nf - 1] != (uint32_t)v[3 * k + 1])
                files[nf++] = (uint32_t)v[3 * k + 1];
        for (size_t a = 1; a < nf; a++)
            for (size_t c = a;
                 c > 0 && strcmp(b->files[files[c - 1]].path, b->files[files[c]].path) > 0; c--) {
                uint32_t t = files[c];
                files[c] = files[c - 1];
                files[c - 1] = t;
            }
        struct pwriter *w = NULL;
        struct pwriter *ws = NULL;
        size_t nws = 0;
        rc = writer_for(sk, it, &ws, &nws, (uint32_t)v[3 * i], sc, ICE_CONTENT_POS_DELETES, &w);
        char num[24];
        for (size_t q = 0; rc == 0 && q < nf; q++) {
            const char *path = b->files[files[q]].path;
            for (size_t k = i; rc == 0 && k < j; k++) {
                if ((uint32_t)v[3 * k + 1] != files[q])
                    continue;
                snprintf(num, sizeof num, "%lld", (long long)v[3 * k + 2]);
                const char *vals[2] = {path, num};
                uint32_t lens[2] = {(uint32_t)strlen(path), (uint32_t)strlen(num)};
                rc = add_row(sk, it, w, sc, vals, lens);
            }
        }
        if (rc == 0) {
            uint32_t fi = w->file;
            rc = finish(sk, it, ws, &nws, 0);
            if (rc == 0 && nf == 1)
                b->files[fi].df.referenced = xstrdup(b->files[files[0]].path);
        } else if (nws) {
            ice_file_writer_abort(&ws[0].w);
        }
        free(ws);
        free(files);
        i = j;
    }
    ice_schema_free(sc);
    free(v);
    b->nposdel = 0;
    return rc;
}

void icesink_batch_discard(struct icesink *s, struct itable *it)
{
    struct batch *b = &it->b;
    for (size_t i = 0; i < b->ndata; i++)
        ice_file_writer_abort(&b->data[i].w);
    for (size_t i = 0; i < b->neq; i++)
        ice_file_writer_abort(&b->eq[i].w);
    b->ndata = b->neq = 0;
    /* Files of a commit that was tried may be in the table (an answer
     * lost): orphan cleanup judges them later, by what the table holds. */
    for (size_t i = 0; i < b->nfiles && !b->committing; i++) {
        if (b->files[i].done && s->store) {
            char e[256];
            if (lake_store_del(s->store, b->files[i].path, e, sizeof e) < 0)
                log_warn("sink.iceberg.file_left", "table=%s file=%s error=%s", it->label,
                         log_q(b->files[i].path), log_q(e));
        }
    }
    icesink_batch_fini(b);
}

void icesink_batch_fini(struct batch *b)
{
    for (size_t i = 0; i < b->nfiles; i++) {
        free(b->files[i].path);
        if (b->files[i].done)
            ice_data_file_fini(&b->files[i].df);
    }
    free(b->files);
    for (size_t i = 0; i < b->nparts * b->npart; i++)
        ice_pvalue_fini(&b->parts[i]);
    free(b->parts);
    free(b->data);
    free(b->eq);
    free(b->posdel);
    lake_keymap_free(b->keys);
    free(b->slots);
    free(b->rows);
    for (size_t i = 0; i < b->ndef; i++) {
        free(b->def[i].ids);
        free(b->def[i].kind);
        free(b->def[i].off);
        free(b->def[i].len);
        buf_fini(&b->def[i].text);
    }
    free(b->def);
    memset(b, 0, sizeof *b);
}
