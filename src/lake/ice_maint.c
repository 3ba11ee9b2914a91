/* Snapshot expiry and orphan cleanup (see ice_maint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_maint.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/strmap.h"

#define MARK ((void *)1)

/* Adds the manifests of list_uri (and, if files, every file their entries
 * name: live ones only when live_only) to the sets. */
static int mark_list(struct ice_table *t, const char *list_uri, struct strmap *manifests,
                     struct strmap *files, bool live_only, char *err, size_t errlen)
{
    struct ice_manifest_file *ms;
    size_t n;
    int rc = ice_table_read_list(t, list_uri, &ms, &n, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool seen = strmap_get(manifests, ms[i].path) != NULL;
        strmap_put(manifests, ms[i].path, MARK);
        if (!files || seen)
            continue;
        struct ice_entry *e;
        size_t ne;
        if ((rc = ice_table_read_manifest(t, ms[i].path, &e, &ne, err, errlen)) < 0)
            break;
        for (size_t k = 0; k < ne; k++)
            if (!live_only || e[k].status != ICE_DELETED)
                strmap_put(files, e[k].df.path, MARK);
        ice_entries_free(e, ne);
    }
    ice_manifest_files_free(ms, n);
    return rc;
}

/* Which snapshots to keep: ref heads, the min_keep newest ancestors of
 * main, and everything not older than older_than_ms. */
static bool *keep_set(const struct ice_meta *m, int64_t older_than_ms, int min_keep)
{
    bool *keep = xcalloc(m->nsnapshots ? m->nsnapshots : 1, sizeof *keep);
    for (size_t i = 0; i < m->nsnapshots; i++) {
        if (m->snapshots[i].ts_ms >= older_than_ms)
            keep[i] = true;
        for (size_t r = 0; r < m->nrefs; r++)
            if (m->refs[r].snapshot_id == m->snapshots[i].id)
                keep[i] = true;
    }
    const struct ice_snapshot *s = ice_meta_current(m);
    for (int k = 0; s && k < min_keep; k++) {
        keep[s - m->snapshots] = true;
        s = s->parent_id >= 0 ? ice_meta_snapshot(m, s->parent_id) : NULL;
    }
    return keep;
}

static int del(struct ice_table *t, const char *uri, size_t *count, int *first_rc, char *err,
               size_t errlen)
{
    char e[256];
    int rc = lake_store_del(t->store, uri, e, sizeof e);
    if (rc < 0 && *first_rc == 0) {
        *first_rc = rc;
        cdc_fail(err, errlen, rc, "%s", e);
    }
    if (rc == 0)
        (*count)++;
    return rc;
}

int ice_table_expire(struct ice_table *t, int64_t older_than_ms, int min_keep,
                     struct ice_expire_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    const struct ice_meta *old = t->meta;
    bool *keep = keep_set(old, older_than_ms, min_keep < 1 ? 1 : min_keep);
    size_t nexp = 0;
    for (size_t i = 0; i < old->nsnapshots; i++)
        nexp += !keep[i];
    if (nexp == 0) {
        free(keep);
        return 0;
    }
    /* The new version, and what the expired snapshots listed. */
    char **lists = xcalloc(nexp, sizeof *lists);
    struct ice_meta *m = ice_meta_copy(old);
    struct buf upds = BUF_INIT, reqs = BUF_INIT;
    buf_puts(&upds, "[{\"action\":\"remove-snapshots\",\"snapshot-ids\":[");
    size_t k = 0, e = 0;
    for (size_t i = 0; i < old->nsnapshots; i++) {
        if (keep[i]) {
            m->snapshots[k++] = m->snapshots[i];
            continue;
        }
        buf_printf(&upds, "%s%lld", e ? "," : "", (long long)old->snapshots[i].id);
        lists[e++] = xstrdup(old->snapshots[i].manifest_list);
        free(m->snapshots[i].manifest_list);
        ice_kvs_free(m->snapshots[i].summary, m->snapshots[i].nsummary);
    }
    m->nsnapshots = k;
    buf_puts(&upds, "]}]");
    size_t kl = 0;
    for (size_t i = 0; i < m->nsnaplog; i++)
        if (ice_meta_snapshot(m, m->snaplog[i].snapshot_id))
            m->snaplog[kl++] = m->snaplog[i];
    m->nsnaplog = kl;
    m->last_updated_ms = ice_now_ms();
    m->metalog = xrealloc(m->metalog, (m->nmetalog + 1) * sizeof *m->metalog);
    m->metalog[m->nmetalog++] =
        (struct ice_log_entry){old->last_updated_ms, -1, xstrdup(t->meta_location)};
    buf_printf(&reqs,
               "[{\"type\":\"assert-table-uuid\",\"uuid\":\"%s\"},{\"type\":\"assert-ref-"
               "snapshot-id\",\"ref\":\"main\",\"snapshot-id\":%lld}]",
               old->table_uuid, (long long)old->current_snapshot_id);
    free(keep);

    struct ice_commit_req req = {t->ns, t->name, t->meta_location, t->meta, m, reqs.p, upds.p};
    char *loc = NULL;
    struct ice_meta *stored = NULL;
    int rc = t->cat->ops->commit(t->cat, &req, &loc, &stored, err, errlen);
    buf_fini(&upds);
    buf_fini(&reqs);
    if (rc != 0) {
        ice_meta_free(m);
        for (size_t i = 0; i < nexp; i++)
            free(lists[i]);
        free(lists);
        return rc;
    }
    if (stored) {
        ice_meta_free(m);
        m = stored;
    }
    free(t->meta_location);
    ice_meta_free(t->meta);
    t->meta_location = loc;
    t->meta = m;
    stats->snapshots = nexp;

    /* Only now, with the trimmed metadata current, delete what nothing
     * kept references. */
    struct strmap *kept_manifests = strmap_new(), *live = strmap_new();
    struct strmap *gone_manifests = strmap_new(), *gone_files = strmap_new();
    for (size_t i = 0; rc == 0 && i < m->nsnapshots; i++)
        rc = mark_list(t, m->snapshots[i].manifest_list, kept_manifests, live, true, err, errlen);
    int del_rc = 0;
    for (size_t i = 0; rc == 0 && i < nexp; i++) {
        struct ice_manifest_file *ms;
        size_t n;
        if ((rc = ice_table_read_list(t, lists[i], &ms, &n, err, errlen)) < 0)
            break;
        for (size_t j = 0; rc == 0 && j < n; j++) {
            if (strmap_get(kept_manifests, ms[j].path) || strmap_get(gone_manifests, ms[j].path))
                continue;
            strmap_put(gone_manifests, ms[j].path, MARK);
            struct ice_entry *en;
            size_t ne;
            if ((rc = ice_table_read_manifest(t, ms[j].path, &en, &ne, err, errlen)) < 0)
                break;
            for (size_t q = 0; q < ne; q++) {
                const char *p = en[q].df.path;
                if (strmap_get(live, p) || strmap_get(gone_files, p))
                    continue;
                strmap_put(gone_files, p, MARK);
                del(t, p, &stats->files, &del_rc, err, errlen);
            }
            ice_entries_free(en, ne);
            del(t, ms[j].path, &stats->manifests, &del_rc, err, errlen);
        }
        ice_manifest_files_free(ms, n);
        del(t, lists[i], &stats->manifest_lists, &del_rc, err, errlen);
    }
    strmap_free(kept_manifests, NULL);
    strmap_free(live, NULL);
    strmap_free(gone_manifests, NULL);
    strmap_free(gone_files, NULL);
    for (size_t i = 0; i < nexp; i++)
        free(lists[i]);
    free(lists);
    return rc < 0 ? rc : del_rc;
}

struct orphan_walk {
    struct ice_table *t;
    struct strmap *reachable;
    int64_t older_than_ms;
    char **victims;
    size_t n;
};

static int on_file(void *arg, const char *uri, int64_t size, int64_t mtime_ms)
{
    struct orphan_walk *w = arg;
    const char *base = strrchr(uri, '/');
    base = base ? base + 1 : uri;
    if (strmap_get(w->reachable, uri) || strcmp(base, "version-hint.text") == 0 ||
        mtime_ms >= w->older_than_ms)
        return 0;
    w->victims = xrealloc(w->victims, (w->n + 1) * sizeof *w->victims);
    w->victims[w->n++] = xstrdup(uri);
    return 0;
}

int ice_table_clean_orphans(struct ice_table *t, int64_t older_than_ms, size_t *removed, char *err,
                            size_t errlen)
{
    *removed = 0;
    const struct ice_meta *m = t->meta;
    struct strmap *reach = strmap_new();
    strmap_put(reach, t->meta_location, MARK);
    for (size_t i = 0; i < m->nmetalog; i++)
        strmap_put(reach, m->metalog[i].file, MARK);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->nsnapshots; i++) {
        strmap_put(reach, m->snapshots[i].manifest_list, MARK);
        /* manifests and the files they name, whatever their status */
        rc = mark_list(t, m->snapshots[i].manifest_list, reach, reach, false, err, errlen);
    }
    struct orphan_walk w = {t, reach, older_than_ms, NULL, 0};
    if (rc == 0) {
        char *prefix = xasprintf("%s/", m->location);
        rc = lake_store_list(t->store, prefix, on_file, &w, err, errlen);
        free(prefix);
    }
    int del_rc = 0;
    for (size_t i = 0; i < w.n; i++) {
        if (rc == 0)
            del(t, w.victims[i], removed, &del_rc, err, errlen);
        free(w.victims[i]);
    }
    free(w.victims);
    strmap_free(reach, NULL);
    return rc < 0 ? rc : del_rc;
}
