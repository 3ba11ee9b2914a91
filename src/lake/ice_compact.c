/* Compaction: small data files rewritten with deletes applied, delete
 * files that then remove nothing dropped (see ice_table_compact in
 * ice_maint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_maint.h"
#include "lake/ice_scan.h"
#include "lake/ice_writer.h"
#include "lake/lake_value.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/strmap.h"

#define COMMIT_TRIES 10

/* Rewriting one partition's candidates. */
struct rewrite {
    struct ice_table *t;
    const struct ice_compact_opts *o;
    const struct ice_schema *sc;
    const struct ice_entry *part; /* a file of the partition: its values */
    struct ice_file_writer w;
    bool open;
    struct ice_data_file *out;
    size_t nout;
    int64_t rows;
    char err[512];
};

static int finish_file(struct rewrite *rw)
{
    if (!rw->open)
        return 0;
    rw->open = false;
    rw->out = xrealloc(rw->out, (rw->nout + 1) * sizeof *rw->out);
    int rc = ice_file_writer_finish(&rw->w, ICE_CONTENT_DATA, rw->part->df.part, rw->part->df.npart,
                                    &rw->out[rw->nout], rw->err, sizeof rw->err);
    if (rc == 0)
        rw->nout++;
    return rc;
}

static int on_rows(void *arg, const struct ice_rows *rs)
{
    struct rewrite *rw = arg;
    if (rw->o->stop && rw->o->stop(rw->o->stop_arg))
        return cdc_fail(rw->err, sizeof rw->err, CDC_ESTOP, "compaction stopped");
    for (int64_t k = 0; k < rs->n; k++) {
        if (!rw->open) {
            struct parquet_opts po = {
                .codec = rw->o->codec, .label = rw->t->name, .row_group_bytes = 32u << 20};
            int rc = ice_file_writer_open(&rw->w, rw->t, rw->sc, &po, rw->err, sizeof rw->err);
            if (rc)
                return rc;
            rw->open = true;
        }
        for (uint32_t c = 0; c < rs->ncols; c++)
            lake_value_add(rw->w.pw, c, &rw->sc->fields[c], rs->cols[c], rs->idx[k]);
        int rc = parquet_end_row(rw->w.pw, rw->err, sizeof rw->err);
        if (rc)
            return rc;
        rw->rows++;
        if (parquet_writer_bytes(rw->w.pw) >= rw->o->target_bytes && (rc = finish_file(rw)))
            return rc;
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct ice_entry *x = *(const struct ice_entry *const *)a;
    const struct ice_entry *y = *(const struct ice_entry *const *)b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return strcmp(x->df.path, y->df.path);
}

static bool same_partition(const struct ice_entry *a, const struct ice_entry *b)
{
    if (a->df.npart != b->df.npart)
        return false;
    for (uint32_t k = 0; k < a->df.npart; k++)
        if (!ice_pvalue_equal(&a->df.part[k], &b->df.part[k]))
            return false;
    return true;
}

static void remove_written(struct ice_table *t, struct ice_data_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char e[128];
        lake_store_del(t->store, f[i].path, e, sizeof e);
        ice_data_file_fini(&f[i]);
    }
}

/* After a lost race: whether every file to remove is still live. */
static int still_live(struct ice_table *t, const char *const *paths, size_t n, bool *ok, char *err,
                      size_t errlen)
{
    struct ice_entry *e;
    size_t ne;
    int rc = ice_table_files(t, -1, &e, &ne, err, errlen);
    if (rc < 0)
        return rc;
    struct strmap *live = strmap_new();
    for (size_t i = 0; i < ne; i++)
        strmap_put(live, e[i].df.path, (void *)1);
    *ok = true;
    for (size_t i = 0; i < n && *ok; i++)
        *ok = strmap_get(live, paths[i]) != NULL;
    strmap_free(live, NULL);
    ice_entries_free(e, ne);
    return 0;
}

/* The summary properties to carry, read from the current snapshot. */
static struct ice_kv *carried(const struct ice_table *t, const struct ice_compact_opts *o,
                              const char *commit_id, size_t *n)
{
    struct ice_kv *kv = NULL;
    *n = 0;
    const struct ice_snapshot *cur = ice_meta_current(t->meta);
    for (size_t i = 0; cur && i < o->ncarry; i++) {
        const char *v = ice_snapshot_get(cur, o->carry[i]);
        if (v)
            ice_kv_set(&kv, n, o->carry[i], v);
    }
    ice_kv_set(&kv, n, "cdc.commit-id", commit_id);
    return kv;
}

/* Whether a snapshot carrying commit_id is in the table (after an answer
 * that left the outcome unknown). */
static bool committed(const struct ice_table *t, const char *commit_id, int64_t *id)
{
    for (size_t i = 0; i < t->meta->nsnapshots; i++) {
        const char *v = ice_snapshot_get(&t->meta->snapshots[i], "cdc.commit-id");
        if (v && strcmp(v, commit_id) == 0) {
            *id = t->meta->snapshots[i].id;
            return true;
        }
    }
    return false;
}

static int commit(struct ice_table *t, const struct ice_compact_opts *o, struct ice_change *c,
                  int64_t *snapshot_id, char *err, size_t errlen)
{
    char commit_id[37];
    ice_uuid(commit_id);
    int rc = CDC_EAGAIN;
    for (int attempt = 0; attempt < COMMIT_TRIES && (rc == CDC_EAGAIN || rc == CDC_ECONN);
         attempt++) {
        if (attempt > 0) {
            bool ok = false;
            int rrc = ice_table_refresh(t, err, errlen);
            if (rrc < 0)
                return rrc;
            if (rc == CDC_ECONN && committed(t, commit_id, snapshot_id))
                return 0;
            if ((rrc = still_live(t, c->remove, c->nremove, &ok, err, errlen)) < 0)
                return rrc;
            if (!ok)
                return cdc_fail(err, errlen, CDC_EAGAIN,
                                "table %s.%s: another writer removed files the compaction "
                                "rewrote; nothing changed",
                                t->ns, t->name);
        }
        size_t nkv;
        struct ice_kv *kv = carried(t, o, commit_id, &nkv);
        c->props = kv;
        c->nprops = nkv;
        rc = ice_table_commit(t, c, snapshot_id, err, errlen);
        ice_kvs_free(kv, nkv);
        c->props = NULL;
        c->nprops = 0;
    }
    return rc;
}

int ice_table_compact(struct ice_table *t, const struct ice_compact_opts *o,
                      struct ice_compact_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    stats->snapshot_id = -1;
    struct ice_scan *s;
    int rc = ice_scan_open(t, -1, &s, err, errlen);
    if (rc < 0)
        return rc;
    size_t nd = ice_scan_ndata(s), nx = ice_scan_ndeletes(s);
    const struct ice_entry **cand = xcalloc(nd + 1, sizeof *cand);
    const char **remove = xcalloc(nd + nx + 1, sizeof *remove);
    size_t *cidx = xcalloc(nd + 1, sizeof *cidx);
    size_t ncand = 0, nremove = 0;
    for (size_t i = 0; i < nd; i++)
        if (ice_scan_data(s, i)->df.size < o->target_bytes)
            cand[ncand++] = ice_scan_data(s, i);
    qsort(cand, ncand, sizeof *cand, cmp_entry);
    int64_t rows = 0;
    size_t keep = 0;
    for (size_t i = 0; i < ncand; i++) {
        if (o->max_rows > 0 && keep > 0 && rows + cand[i]->df.records > o->max_rows)
            break;
        rows += cand[i]->df.records;
        cand[keep++] = cand[i];
    }
    ncand = keep;
    for (size_t i = 0; i < ncand; i++)
        remove[nremove++] = cand[i]->df.path;
    size_t ndrop = 0;
    for (size_t i = 0; i < nx; i++)
        if (!ice_scan_delete_needed(s, i, remove, ncand)) {
            remove[ncand + ndrop++] = ice_scan_delete(s, i)->df.path;
        }
    nremove = ncand + ndrop;
    struct rewrite rw = {.t = t, .o = o, .sc = ice_scan_schema(s)};
    if (ncand + nx < (o->min_files ? o->min_files : 1) || (ncand < 2 && ndrop == 0))
        goto out; /* nothing worth a snapshot */
    /* Map candidates back to their scan index, then rewrite partition by
     * partition. */
    for (size_t i = 0; i < ncand; i++)
        for (size_t k = 0; k < nd; k++)
            if (ice_scan_data(s, k) == cand[i])
                cidx[i] = k;
    bool *done = xcalloc(ncand + 1, sizeof *done);
    for (size_t i = 0; rc == 0 && i < ncand; i++) {
        if (done[i])
            continue;
        rw.part = cand[i];
        for (size_t j = i; rc == 0 && j < ncand; j++) {
            if (done[j] || !same_partition(cand[i], cand[j]))
                continue;
            done[j] = true;
            rc = ice_scan_file(s, cidx[j], on_rows, &rw, rw.err, sizeof rw.err);
        }
        if (rc == 0)
            rc = finish_file(&rw);
    }
    free(done);
    if (rc) {
        if (rw.open)
            ice_file_writer_abort(&rw.w);
        cdc_fail(err, errlen, rc, "%s", rw.err);
        remove_written(t, rw.out, rw.nout);
        rw.nout = 0;
        goto out;
    }
    struct ice_change c = {
        .data = rw.out,
        .ndata = rw.nout,
        .remove = remove,
        .nremove = nremove,
        .data_seq = ice_scan_seq(s),
        .replace = true,
    };
    rc = commit(t, o, &c, &stats->snapshot_id, err, errlen);
    if (rc) {
        remove_written(t, rw.out, rw.nout);
        rw.nout = 0;
        goto out;
    }
    stats->data_files = ncand;
    stats->delete_files = ndrop;
    stats->new_files = rw.nout;
    stats->rows = rw.rows;
out:
    for (size_t i = 0; i < rw.nout; i++)
        ice_data_file_fini(&rw.out[i]);
    free(rw.out);
    free(cand);
    free(cidx);
    free(remove);
    ice_scan_free(s);
    return rc;
}
