/* Iceberg tables: load, create, commit snapshots, roll back (see
 * ice_table.h).  Expiry and orphan cleanup are in ice_maint.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "lake/ice_table.h"
#include "util/err.h"
#include "util/mem.h"

int64_t ice_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ice_table_free(struct ice_table *t)
{
    if (!t)
        return;
    free(t->ns);
    free(t->name);
    free(t->meta_location);
    ice_meta_free(t->meta);
    free(t);
}

static struct ice_table *table_new(struct ice_catalog *cat, const char *ns, const char *name)
{
    struct ice_table *t = xcalloc(1, sizeof *t);
    t->cat = cat;
    t->store = cat->store;
    t->ns = xstrdup(ns);
    t->name = xstrdup(name);
    return t;
}

int ice_table_load(struct ice_catalog *cat, const char *ns, const char *name,
                   struct ice_table **out, char *err, size_t errlen)
{
    *out = NULL;
    struct ice_table *t = table_new(cat, ns, name);
    int rc = cat->ops->load(cat, ns, name, &t->meta_location, &t->meta, err, errlen);
    if (rc != 0) {
        ice_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int ice_table_refresh(struct ice_table *t, char *err, size_t errlen)
{
    char *loc = NULL;
    struct ice_meta *m = NULL;
    int rc = t->cat->ops->load(t->cat, t->ns, t->name, &loc, &m, err, errlen);
    if (rc == LAKE_STORE_ABSENT)
        return cdc_fail(err, errlen, CDC_EIO, "table %s.%s disappeared from the catalog", t->ns,
                        t->name);
    if (rc < 0)
        return rc;
    free(t->meta_location);
    ice_meta_free(t->meta);
    t->meta_location = loc;
    t->meta = m;
    return 0;
}

int ice_table_create(struct ice_catalog *cat, const char *ns, const char *name,
                     const struct ice_schema *sc, const struct ice_spec *sp,
                     const struct ice_kv *props, size_t nprops, struct ice_table **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (ice_spec_check(sp, sc, err, errlen) < 0)
        return CDC_EINVAL;
    char *loc = ice_catalog_table_location(cat, ns, name);
    struct ice_meta *m = ice_meta_new(loc, sc, sp, ice_now_ms());
    free(loc);
    for (size_t i = 0; i < nprops; i++)
        ice_kv_set(&m->props, &m->nprops, props[i].key, props[i].value);
    struct ice_table *t = table_new(cat, ns, name);
    int rc = cat->ops->create(cat, ns, name, m, &t->meta_location, &t->meta, err, errlen);
    ice_meta_free(m);
    if (rc != 0) {
        ice_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

char *ice_table_new_path(const struct ice_table *t, const char *dir, const char *suffix)
{
    char uuid[37];
    ice_uuid(uuid);
    return xasprintf("%s/%s/%s%s", t->meta->location, dir, uuid, suffix);
}

int ice_table_read_list(struct ice_table *t, const char *uri, struct ice_manifest_file **out,
                        size_t *n, char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    int rc = lake_store_get(t->store, uri, &b, err, errlen);
    if (rc == LAKE_STORE_ABSENT)
        rc = cdc_fail(err, errlen, CDC_EIO, "manifest list %s is missing", uri);
    if (rc == 0) {
        char perr[256];
        if (ice_manifest_list_read((const uint8_t *)b.p, b.len, out, n, perr, sizeof perr) < 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: %s", uri, perr);
    }
    buf_fini(&b);
    return rc;
}

int ice_table_read_manifest(struct ice_table *t, const char *uri, struct ice_entry **out, size_t *n,
                            char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    int rc = lake_store_get(t->store, uri, &b, err, errlen);
    if (rc == LAKE_STORE_ABSENT)
        rc = cdc_fail(err, errlen, CDC_EIO, "manifest %s is missing", uri);
    if (rc == 0) {
        char perr[256];
        if (ice_manifest_read((const uint8_t *)b.p, b.len, out, n, perr, sizeof perr) < 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: %s", uri, perr);
    }
    buf_fini(&b);
    return rc;
}

static void random_sync(uint8_t sync[16])
{
    char u[37];
    ice_uuid(u);
    for (int i = 0, k = 0; u[i] && k < 16; i++) {
        if (u[i] == '-')
            continue;
        int hi = u[i] <= '9' ? u[i] - '0' : u[i] - 'a' + 10;
        int lo = u[i + 1] <= '9' ? u[i + 1] - '0' : u[i + 1] - 'a' + 10;
        sync[k++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
}

/* ---- commits ------------------------------------------------------------------- */

/* Files written for one commit attempt, removed again if it fails. */
struct written {
    char **uris;
    size_t n;
};

static void written_add(struct written *w, const char *uri)
{
    w->uris = xrealloc(w->uris, (w->n + 1) * sizeof *w->uris);
    w->uris[w->n++] = xstrdup(uri);
}

static void written_fini(struct written *w, struct lake_store *st, bool remove)
{
    for (size_t i = 0; i < w->n; i++) {
        if (remove) {
            char err[128];
            lake_store_del(st, w->uris[i], err, sizeof err);
        }
        free(w->uris[i]);
    }
    free(w->uris);
    w->uris = NULL;
    w->n = 0;
}

struct totals {
    int64_t added_data_files, added_delete_files, added_eq_files, added_pos_files;
    int64_t added_records, added_eq_deletes, added_pos_deletes, added_size;
    int64_t removed_data_files, removed_delete_files, deleted_records, removed_size;
    int64_t removed_eq_deletes, removed_pos_deletes;
};

static int64_t prev_total(const struct ice_snapshot *parent, const char *key)
{
    const char *v = ice_snapshot_get(parent, key);
    return v ? strtoll(v, NULL, 10) : 0;
}

static void set_num(struct ice_snapshot *s, const char *key, int64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)v);
    ice_kv_set(&s->summary, &s->nsummary, key, num);
}

static void fill_summary(struct ice_snapshot *s, const char *op, const struct totals *x,
                         const struct ice_snapshot *parent, const struct ice_change *c)
{
    ice_kv_set(&s->summary, &s->nsummary, "operation", op);
    struct {
        const char *key;
        int64_t v;
    } added[] = {
        {"added-data-files", x->added_data_files},
        {"added-delete-files", x->added_delete_files},
        {"added-equality-delete-files", x->added_eq_files},
        {"added-position-delete-files", x->added_pos_files},
        {"added-records", x->added_records},
        {"added-equality-deletes", x->added_eq_deletes},
        {"added-position-deletes", x->added_pos_deletes},
        {"added-files-size", x->added_size},
        {"removed-data-files", x->removed_data_files},
        {"removed-delete-files", x->removed_delete_files},
        {"deleted-records", x->deleted_records},
        {"removed-files-size", x->removed_size},
    };
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++)
        if (added[i].v)
            set_num(s, added[i].key, added[i].v);
    set_num(s, "total-records",
            prev_total(parent, "total-records") + x->added_records - x->deleted_records);
    set_num(s, "total-files-size",
            prev_total(parent, "total-files-size") + x->added_size - x->removed_size);
    set_num(s, "total-data-files",
            prev_total(parent, "total-data-files") + x->added_data_files - x->removed_data_files);
    set_num(s, "total-delete-files",
            prev_total(parent, "total-delete-files") + x->added_delete_files -
                x->removed_delete_files);
    set_num(s, "total-position-deletes",
            prev_total(parent, "total-position-deletes") + x->added_pos_deletes -
                x->removed_pos_deletes);
    set_num(s, "total-equality-deletes",
            prev_total(parent, "total-equality-deletes") + x->added_eq_deletes -
                x->removed_eq_deletes);
    for (size_t i = 0; i < c->nprops; i++)
        ice_kv_set(&s->summary, &s->nsummary, c->props[i].key, c->props[i].value);
}

/* Writes a manifest of entries into a new file; fills mf (path, length). */
static int put_manifest(struct ice_table *t, int content, const struct ice_entry *e, size_t n,
                        const struct ice_spec *sp, int64_t snapshot_id, int64_t seq,
                        int64_t min_seq, struct ice_manifest_file *mf, struct written *w, char *err,
                        size_t errlen)
{
    uint8_t sync[16];
    random_sync(sync);
    struct buf b = BUF_INIT;
    ice_manifest_write(&b, ice_meta_schema(t->meta), sp, content, e, n, sync, mf);
    char *uri = ice_table_new_path(t, "metadata", "-m0.avro");
    int rc = lake_store_put(t->store, uri, b.p, b.len, 0, err, errlen);
    if (rc == 0) {
        written_add(w, uri);
        mf->path = uri;
        mf->length = (int64_t)b.len;
        mf->seq = seq;
        mf->min_seq = min_seq;
        mf->added_snapshot_id = snapshot_id;
    } else {
        free(uri);
    }
    buf_fini(&b);
    return rc;
}

/* True if path is in list; marks it seen (seen may be NULL). */
static bool in_list(const char *path, const char *const *list, size_t n, bool *seen)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(path, list[i]) == 0) {
            if (seen)
                seen[i] = true;
            return true;
        }
    }
    return false;
}

/* Rewrites the manifests holding files to remove: those entries become
 * DELETED, the others EXISTING (sequence numbers made explicit); entries
 * deleted by earlier snapshots are dropped. */
static int rewrite_for_removal(struct ice_table *t, const struct ice_change *c,
                               struct ice_manifest_file *old, size_t nold, int64_t snapshot_id,
                               int64_t seq, struct ice_manifest_file **out, size_t *nout,
                               struct totals *x, struct written *w, char *err, size_t errlen)
{
    bool *seen = xcalloc(c->nremove ? c->nremove : 1, sizeof *seen);
    int rc = 0;
    for (size_t i = 0; i < nold && rc == 0; i++) {
        struct ice_entry *e;
        size_t n;
        if ((rc = ice_table_read_manifest(t, old[i].path, &e, &n, err, errlen)) < 0)
            break;
        bool touched = false;
        for (size_t k = 0; k < n; k++)
            if (e[k].status != ICE_DELETED && in_list(e[k].df.path, c->remove, c->nremove, seen))
                touched = true;
        if (!touched) {
            ice_manifest_file_copy(&(*out)[(*nout)++], &old[i]);
            ice_entries_free(e, n);
            continue;
        }
        size_t keep = 0;
        int64_t min_seq = -1;
        for (size_t k = 0; k < n; k++) {
            if (e[k].status == ICE_DELETED) {
                ice_data_file_fini(&e[k].df);
                continue;
            }
            /* Inherited numbers become explicit once the entry moves. */
            if (e[k].seq < 0)
                e[k].seq = old[i].seq;
            if (e[k].file_seq < 0)
                e[k].file_seq = old[i].seq;
            if (e[k].snapshot_id < 0)
                e[k].snapshot_id = old[i].added_snapshot_id;
            if (in_list(e[k].df.path, c->remove, c->nremove, NULL)) {
                e[k].status = ICE_DELETED;
                e[k].snapshot_id = snapshot_id;
                if (e[k].df.content == ICE_CONTENT_DATA) {
                    x->removed_data_files++;
                    x->deleted_records += e[k].df.records;
                } else {
                    x->removed_delete_files++;
                    if (e[k].df.content == ICE_CONTENT_EQ_DELETES)
                        x->removed_eq_deletes += e[k].df.records;
                    else
                        x->removed_pos_deletes += e[k].df.records;
                }
                x->removed_size += e[k].df.size;
            } else {
                e[k].status = ICE_EXISTING;
                if (min_seq < 0 || e[k].seq < min_seq)
                    min_seq = e[k].seq;
            }
            e[keep++] = e[k];
        }
        const struct ice_spec *sp = ice_meta_spec(t->meta, old[i].spec_id);
        if (!sp) {
            rc = cdc_fail(err, errlen, CDC_EINVAL, "manifest %s: unknown partition spec %d",
                          old[i].path, old[i].spec_id);
        } else {
            struct ice_manifest_file *mf = &(*out)[(*nout)];
            rc = put_manifest(t, old[i].content, e, keep, sp, snapshot_id, seq,
                              min_seq < 0 ? seq : min_seq, mf, w, err, errlen);
            if (rc == 0)
                (*nout)++;
        }
        ice_entries_free(e, keep);
    }
    for (size_t i = 0; rc == 0 && i < c->nremove; i++)
        if (!seen[i])
            rc = cdc_fail(err, errlen, CDC_EINVAL, "cannot remove %s: not a live file of %s.%s",
                          c->remove[i], t->ns, t->name);
    free(seen);
    return rc;
}

/* Builds the REST form of a snapshot commit. */
static void rest_changes(const struct ice_table *t, const struct ice_snapshot *s, int64_t parent_id,
                         struct buf *req, struct buf *upd)
{
    buf_puts(req, "[{\"type\":\"assert-table-uuid\",\"uuid\":");
    json_string(req, t->meta->table_uuid, strlen(t->meta->table_uuid));
    if (parent_id >= 0)
        buf_printf(req,
                   "},{\"type\":\"assert-ref-snapshot-id\",\"ref\":\"main\",\"snapshot-id\":%lld}]",
                   (long long)parent_id);
    else
        buf_puts(req, "},{\"type\":\"assert-ref-snapshot-id\",\"ref\":\"main\","
                      "\"snapshot-id\":null}]");
    buf_puts(upd, "[");
    if (s) {
        buf_puts(upd, "{\"action\":\"add-snapshot\",\"snapshot\":");
        ice_snapshot_json(upd, s);
        buf_puts(upd, "},");
    }
}

/* Swaps the catalog to meta; on success the table holds it. */
static int swap(struct ice_table *t, struct ice_meta *meta, const char *reqs, const char *upds,
                char *err, size_t errlen)
{
    struct ice_commit_req req = {
        .ns = t->ns,
        .table = t->name,
        .base_location = t->meta_location,
        .base = t->meta,
        .meta = meta,
        .requirements_json = reqs,
        .updates_json = upds,
    };
    char *loc = NULL;
    struct ice_meta *stored = NULL;
    int rc = t->cat->ops->commit(t->cat, &req, &loc, &stored, err, errlen);
    if (rc != 0) {
        ice_meta_free(meta);
        return rc;
    }
    if (stored) { /* the catalog wrote the metadata: its version is the truth */
        ice_meta_free(meta);
        meta = stored;
    }
    free(t->meta_location);
    ice_meta_free(t->meta);
    t->meta_location = loc;
    t->meta = meta;
    return 0;
}

/* The next metadata version: a copy of the current one with the metadata
 * log extended (kept to the newest 100 entries, Iceberg's default). */
static struct ice_meta *next_meta(const struct ice_table *t, int64_t now)
{
    struct ice_meta *m = ice_meta_copy(t->meta);
    m->last_updated_ms = now;
    if (t->meta_location) {
        if (m->nmetalog >= 100) {
            free(m->metalog[0].file);
            memmove(m->metalog, m->metalog + 1, (m->nmetalog - 1) * sizeof *m->metalog);
            m->nmetalog--;
        }
        m->metalog = xrealloc(m->metalog, (m->nmetalog + 1) * sizeof *m->metalog);
        m->metalog[m->nmetalog++] =
            (struct ice_log_entry){t->meta->last_updated_ms, -1, xstrdup(t->meta_location)};
    }
    return m;
}

static void snaplog_add(struct ice_meta *m, int64_t id, int64_t ts)
{
    m->snaplog = xrealloc(m->snaplog, (m->nsnaplog + 1) * sizeof *m->snaplog);
    m->snaplog[m->nsnaplog++] = (struct ice_log_entry){ts, id, NULL};
}

static void count_added(const struct ice_change *c, struct totals *x)
{
    for (size_t i = 0; i < c->ndata; i++) {
        x->added_data_files++;
        x->added_records += c->data[i].records;
        x->added_size += c->data[i].size;
    }
    for (size_t i = 0; i < c->ndeletes; i++) {
        const struct ice_data_file *d = &c->deletes[i];
        x->added_delete_files++;
        x->added_size += d->size;
        if (d->content == ICE_CONTENT_EQ_DELETES) {
            x->added_eq_files++;
            x->added_eq_deletes += d->records;
        } else {
            x->added_pos_files++;
            x->added_pos_deletes += d->records;
        }
    }
}

static int check_change(const struct ice_table *t, const struct ice_change *c, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < c->ndata; i++)
        if (c->data[i].content != ICE_CONTENT_DATA)
            return cdc_fail(err, errlen, CDC_EINVAL, "%s: not a data file", c->data[i].path);
    for (size_t i = 0; i < c->ndeletes; i++) {
        const struct ice_data_file *d = &c->deletes[i];
        if (d->content == ICE_CONTENT_DATA || (d->content == ICE_CONTENT_EQ_DELETES && d->neq == 0))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "%s: not a delete file (equality deletes need equality ids)", d->path);
    }
    if (c->ndata + c->ndeletes + c->nremove == 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s: an empty commit", t->ns, t->name);
    return 0;
}

static void entries_for(const struct ice_data_file *f, size_t n, int64_t snapshot_id,
                        int64_t data_seq, struct ice_entry *e)
{
    for (size_t i = 0; i < n; i++) {
        e[i].status = ICE_ADDED;
        e[i].snapshot_id = snapshot_id;
        e[i].seq = data_seq; /* -1: inherited from the manifest list */
        e[i].file_seq = -1;
        e[i].df = f[i]; /* shallow: written, never freed here */
    }
}

int ice_table_commit(struct ice_table *t, const struct ice_change *c, int64_t *snapshot_id,
                     char *err, size_t errlen)
{
    if (check_change(t, c, err, errlen) < 0)
        return CDC_EINVAL;
    const struct ice_snapshot *parent = ice_meta_current(t->meta);
    const struct ice_spec *sp = ice_meta_spec(t->meta, t->meta->default_spec_id);
    int64_t id = ice_new_snapshot_id(), seq = t->meta->last_seq + 1, now = ice_now_ms();
    int64_t data_seq = c->data_seq >= 0 ? c->data_seq : seq;
    struct totals x = {0};
    struct written w = {NULL, 0};
    struct ice_manifest_file *old = NULL, *ms = NULL;
    size_t nold = 0, nms = 0;
    int rc = 0;
    if (!sp)
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s: no default partition spec", t->ns,
                        t->name);
    if (parent &&
        (rc = ice_table_read_list(t, parent->manifest_list, &old, &nold, err, errlen)) < 0)
        return rc;
    ms = xcalloc(nold + 3, sizeof *ms);
    count_added(c, &x);
    size_t nmax = c->ndata > c->ndeletes ? c->ndata : c->ndeletes;
    struct ice_entry *e = xcalloc(nmax ? nmax : 1, sizeof *e);
    if (c->ndata) {
        entries_for(c->data, c->ndata, id, c->data_seq, e);
        rc = put_manifest(t, 0, e, c->ndata, sp, id, seq, data_seq, &ms[nms], &w, err, errlen);
        nms += rc == 0;
    }
    if (rc == 0 && c->ndeletes) {
        entries_for(c->deletes, c->ndeletes, id, -1, e);
        rc = put_manifest(t, 1, e, c->ndeletes, sp, id, seq, seq, &ms[nms], &w, err, errlen);
        nms += rc == 0;
    }
    free(e);
    if (rc == 0 && c->nremove)
        rc = rewrite_for_removal(t, c, old, nold, id, seq, &ms, &nms, &x, &w, err, errlen);
    else
        for (size_t i = 0; rc == 0 && i < nold; i++)
            ice_manifest_file_copy(&ms[nms++], &old[i]);
    /* Carried-over manifests with no live file (only entries an earlier
     * snapshot deleted) leave the list; this snapshot's own stay. */
    size_t keep = 0;
    for (size_t i = 0; i < nms; i++) {
        if (ms[i].added_files + ms[i].existing_files == 0 && ms[i].added_snapshot_id != id) {
            ice_manifest_file_fini(&ms[i]);
            continue;
        }
        ms[keep++] = ms[i];
    }
    nms = keep;

    struct ice_meta *m = NULL;
    struct buf list = BUF_INIT, reqs = BUF_INIT, upds = BUF_INIT;
    if (rc == 0) {
        uint8_t sync[16];
        random_sync(sync);
        ice_manifest_list_write(&list, id, parent ? parent->id : -1, seq, ms, nms, sync);
        char name[80];
        char uuid[37];
        ice_uuid(uuid);
        snprintf(name, sizeof name, "snap-%lld-1-%s.avro", (long long)id, uuid);
        char *uri = xasprintf("%s/metadata/%s", t->meta->location, name);
        rc = lake_store_put(t->store, uri, list.p, list.len, 0, err, errlen);
        if (rc == 0)
            written_add(&w, uri);
        m = next_meta(t, now);
        struct ice_snapshot s = {
            .id = id,
            .parent_id = parent ? parent->id : -1,
            .seq = seq,
            .ts_ms = now,
            .schema_id = t->meta->current_schema_id,
            .manifest_list = uri,
        };
        const char *op = c->replace                         ? "replace"
                         : (c->ndeletes || c->nremove) == 0 ? "append"
                         : c->ndata == 0                    ? "delete"
                                                            : "overwrite";
        fill_summary(&s, op, &x, parent, c);
        m->snapshots = xrealloc(m->snapshots, (m->nsnapshots + 1) * sizeof *m->snapshots);
        m->snapshots[m->nsnapshots++] = s;
        m->last_seq = seq;
        ice_meta_set_main(m, id);
        snaplog_add(m, id, now);
        rest_changes(t, &s, parent ? parent->id : -1, &reqs, &upds);
        buf_printf(&upds,
                   "{\"action\":\"set-snapshot-ref\",\"ref-name\":\"main\",\"type\":\"branch\","
                   "\"snapshot-id\":%lld}]",
                   (long long)id);
    }
    if (rc == 0) {
        rc = swap(t, m, reqs.p, upds.p, err, errlen);
        m = NULL;
    }
    ice_meta_free(m);
    /* A conflict or a failed write: nothing of this attempt can become
     * visible, remove it.  CDC_ECONN (a REST catalog's 5xx, a lost answer)
     * may have committed: the files stay for orphan cleanup to judge. */
    written_fini(&w, t->store, rc < 0 && rc != CDC_ECONN);
    ice_manifest_files_free(old, nold);
    ice_manifest_files_free(ms, nms);
    buf_fini(&list);
    buf_fini(&reqs);
    buf_fini(&upds);
    if (rc == 0 && snapshot_id)
        *snapshot_id = id;
    return rc;
}

int ice_table_rollback(struct ice_table *t, int64_t snapshot_id, char *err, size_t errlen)
{
    if (!ice_meta_snapshot(t->meta, snapshot_id))
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s has no snapshot %lld", t->ns, t->name,
                        (long long)snapshot_id);
    int64_t now = ice_now_ms();
    struct ice_meta *m = next_meta(t, now);
    int64_t cur = t->meta->current_snapshot_id;
    ice_meta_set_main(m, snapshot_id);
    snaplog_add(m, snapshot_id, now);
    struct buf reqs = BUF_INIT, upds = BUF_INIT;
    rest_changes(t, NULL, cur, &reqs, &upds);
    buf_printf(&upds,
               "{\"action\":\"set-snapshot-ref\",\"ref-name\":\"main\",\"type\":\"branch\","
               "\"snapshot-id\":%lld}]",
               (long long)snapshot_id);
    int rc = swap(t, m, reqs.p, upds.p, err, errlen);
    buf_fini(&reqs);
    buf_fini(&upds);
    return rc;
}

char *ice_table_find_prop(const struct ice_table *t, const char *key)
{
    const struct ice_snapshot *s = ice_meta_current(t->meta);
    for (size_t hops = 0; s && hops <= t->meta->nsnapshots; hops++) {
        const char *v = ice_snapshot_get(s, key);
        if (v)
            return xstrdup(v);
        s = s->parent_id >= 0 ? ice_meta_snapshot(t->meta, s->parent_id) : NULL;
    }
    return NULL;
}

int ice_table_files(struct ice_table *t, int64_t snapshot_id, struct ice_entry **out, size_t *n,
                    char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    const struct ice_snapshot *s =
        snapshot_id < 0 ? ice_meta_current(t->meta) : ice_meta_snapshot(t->meta, snapshot_id);
    if (!s)
        return snapshot_id < 0
                   ? 0
                   : cdc_fail(err, errlen, CDC_EINVAL, "no snapshot %lld", (long long)snapshot_id);
    struct ice_manifest_file *ms;
    size_t nms;
    int rc = ice_table_read_list(t, s->manifest_list, &ms, &nms, err, errlen);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    for (size_t i = 0; i < nms && rc == 0; i++) {
        struct ice_entry *e;
        size_t ne;
        if ((rc = ice_table_read_manifest(t, ms[i].path, &e, &ne, err, errlen)) < 0)
            break;
        for (size_t k = 0; k < ne; k++) {
            if (e[k].status == ICE_DELETED) {
                ice_data_file_fini(&e[k].df);
                continue;
            }
            if (e[k].seq < 0)
                e[k].seq = ms[i].seq;
            if (e[k].file_seq < 0)
                e[k].file_seq = ms[i].seq;
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = xrealloc(*out, cap * sizeof **out);
            }
            (*out)[(*n)++] = e[k];
        }
        free(e);
    }
    ice_manifest_files_free(ms, nms);
    if (rc < 0) {
        ice_entries_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
