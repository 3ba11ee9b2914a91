/* A table's batch committed as one snapshot: deferred rows completed and
 * written, open files finished, position deletes written, then one commit
 * with the position the snapshot holds (cdc.position) and a commit id.
 *
 * A lost race (another writer, e.g. compaction, committed first) is
 * retried on the reloaded table; the files stay valid.  An answer that
 * leaves the outcome unknown (a REST catalog's 5xx) is settled by looking
 * for the commit id in the reloaded table.  A failure leaves the batch for
 * the sink's close to discard: the engine then replays from what the table
 * holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/iceberg/icesink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define COMMIT_TRIES 10

/* The paths of every live file of the current snapshot (a TRUNCATE's
 * removal). */
static int live_paths(struct itable *it, char ***out, size_t *n, char *err, size_t errlen)
{
    struct ice_entry *e;
    size_t ne;
    *out = NULL;
    *n = 0;
    int rc = ice_table_files(it->t, -1, &e, &ne, err, errlen);
    if (rc < 0)
        return rc;
    *out = xcalloc(ne + 1, sizeof **out);
    for (size_t i = 0; i < ne; i++)
        (*out)[(*n)++] = xstrdup(e[i].df.path);
    ice_entries_free(e, ne);
    return 0;
}

static void free_paths(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

static bool has_commit(const struct ice_table *t, const char *id)
{
    for (size_t i = 0; i < t->meta->nsnapshots; i++) {
        const char *v = ice_snapshot_get(&t->meta->snapshots[i], "cdc.commit-id");
        if (v && strcmp(v, id) == 0)
            return true;
    }
    return false;
}

/* Commits the change, retrying lost races.  0, or the lake error. */
static int commit_retrying(struct itable *it, struct ice_change *c, const char *commit_id,
                           int64_t *snap, char *err, size_t errlen)
{
    char **remove = NULL;
    size_t nremove = 0;
    int rc = 0;
    for (int attempt = 0; attempt < COMMIT_TRIES; attempt++) {
        if (it->b.truncated) {
            free_paths(remove, nremove);
            if ((rc = live_paths(it, &remove, &nremove, err, errlen)) < 0)
                break;
            c->remove = (const char *const *)remove;
            c->nremove = nremove;
        }
        if (c->ndata + c->ndeletes + c->nremove == 0) {
            rc = 0; /* a TRUNCATE of an empty table, nothing after it */
            break;
        }
        rc = ice_table_commit(it->t, c, snap, err, errlen);
        if (rc != CDC_EAGAIN && rc != CDC_ECONN)
            break;
        bool unknown = rc == CDC_ECONN;
        int rrc = ice_table_refresh(it->t, err, errlen);
        if (rrc < 0) {
            rc = rrc;
            break;
        }
        bool done = unknown && has_commit(it->t, commit_id);
        log_info("sink.iceberg.commit_retry", "table=%s attempt=%d reason=%s committed=%s",
                 it->label, attempt + 1, unknown ? "outcome_unknown" : "conflict",
                 done ? "true" : "false");
        if (done) {
            rc = 0;
            break;
        }
    }
    free_paths(remove, nremove);
    return rc;
}

int icesink_commit(struct sink *sk, struct itable *it, const struct icepos *pos)
{
    struct batch *b = &it->b;
    if (b->changes == 0 && !b->truncated)
        return 0;
    /* The batch's files are finished first: deferred rows read them. */
    int rc = icesink_close_writers(sk, it);
    if (rc == 0)
        rc = icesink_fill(sk, it);
    if (rc == 0)
        rc = icesink_close_writers(sk, it);
    if (rc == 0)
        rc = icesink_write_pos_deletes(sk, it);
    if (rc)
        return rc;
    struct ice_data_file *data = xcalloc(b->nfiles + 1, sizeof *data);
    struct ice_data_file *dels = xcalloc(b->nfiles + 1, sizeof *dels);
    size_t nd = 0, nx = 0;
    int64_t rows = 0;
    for (size_t i = 0; i < b->nfiles; i++) {
        if (!b->files[i].done)
            continue;
        if (b->files[i].content == ICE_CONTENT_DATA) {
            data[nd++] = b->files[i].df; /* shallow: the batch owns them */
            rows += b->files[i].df.records;
        } else {
            dels[nx++] = b->files[i].df;
        }
    }
    /* What the snapshot holds: everything up to the newest transaction end
     * written (a replay of dead letters moves nothing). */
    struct icepos now = {0};
    icepos_copy(&now, &it->have);
    if (!sk->replay)
        icepos_merge(&now, pos);
    char ptext[ICEPOS_TEXT_MAX], commit_id[37];
    if (icepos_format(&now, ptext, sizeof ptext) != 0) {
        icepos_fini(&now);
        free(data);
        free(dels);
        return sink_set_error(sk, SINK_ERR_FATAL,
                              "table %s: the source's positions (%zu streams) do not fit in the "
                              "snapshot summary's %s",
                              it->label, now.m.n, ICEPOS_PROP);
    }
    ice_uuid(commit_id);
    struct ice_kv kv[2] = {{"cdc.commit-id", commit_id}, {ICEPOS_PROP, ptext}};
    struct ice_change c = {
        .data = data,
        .ndata = nd,
        .deletes = dels,
        .ndeletes = nx,
        .data_seq = -1,
        .props = kv,
        .nprops = icepos_known(&now) ? 2 : 1,
    };
    char err[512];
    int64_t snap = -1;
    b->committing = true;
    rc = commit_retrying(it, &c, commit_id, &snap, err, sizeof err);
    free(data);
    free(dels);
    if (rc) {
        icepos_fini(&now);
        return icesink_lake_error(sk, rc, it->label, err);
    }
    const struct ice_snapshot *cur = ice_meta_current(it->t->meta);
    const char *total = cur ? ice_snapshot_get(cur, "total-records") : NULL;
    it->has_rows = total ? strtoll(total, NULL, 10) > 0 : rows > 0;
    if (snap >= 0)
        log_debug("sink.iceberg.committed",
                  "sink=%s table=%s snapshot=%lld rows=%lld data_files=%zu delete_files=%zu "
                  "position=%s",
                  sk->cfg->sink_id, it->label, (long long)snap, (long long)rows, nd, nx, ptext);
    icepos_fini(&it->have);
    it->have = now; /* moved */
    /* The files belong to the table now: forget them without deleting. */
    icesink_batch_fini(b);
    return 0;
}
