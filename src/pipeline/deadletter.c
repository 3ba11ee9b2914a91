/* Dead-lettering beyond one event, for serial sinks:
 *
 * - spans: when a destination refuses one change and the sink keeps source
 *   transactions whole (the PostgreSQL mirror's dead_letter_scope:
 *   transaction), the rest of that transaction is dead-lettered with it as the
 *   replay after the failure brings it, so the destination never holds part
 *   of a transaction.  The tables of one TRUNCATE are one span in any scope:
 *   the statement is theirs together.
 * - snapshot rows: a snapshot row has no position in the WAL; after the
 *   rewind that follows its failure its chunk is read again under new
 *   positions.  It is remembered by content, so the re-read skips it instead
 *   of failing (and dead-lettering) it again and again.
 * - a fatal failure stops the pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evcodec.h"
#include "core/json.h"
#include "pipeline/runner.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

void runner_skip_add(struct runner *r, struct cdc_pos pos)
{
    if (r->nskip == r->capskip) {
        r->capskip = r->capskip ? 2 * r->capskip : 16;
        r->skip = xrealloc(r->skip, r->capskip * sizeof *r->skip);
    }
    size_t i = r->nskip;
    while (i > 0 && cdc_pos_cmp(r->skip[i - 1], pos) > 0) {
        r->skip[i] = r->skip[i - 1];
        i--;
    }
    r->skip[i] = pos;
    r->nskip++;
}

int runner_dead_letter_many(struct runner *r, struct cdc_event *const *evs, size_t n,
                            const char *errclass, const char *error)
{
    if (n == 0)
        return 0;
    if (!runner_dlq_enabled(r))
        return CDC_ERR;
    struct buf *keys = xcalloc(n, sizeof *keys), *vals = xcalloc(n, sizeof *vals);
    const char **kp = xcalloc(n, sizeof *kp), **vp = xcalloc(n, sizeof *vp);
    for (size_t i = 0; i < n; i++) {
        json_key(&keys[i], evs[i]);
        json_envelope(&vals[i], evs[i], r->sk.json);
        kp[i] = keys[i].p;
        vp[i] = vals[i].p;
    }
    struct dlq_failure f = {
        .sink_id = r->sk.cfg->sink_id,
        .error_class = errclass,
        .error = error,
        .attempts = 1,
        .first_failed_us = clock_wall_us(),
    };
    int64_t id = 0;
    char err[512];
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && r->eng->dlq_hook; i++)
        if (r->eng->dlq_hook(r->eng->dlq_arg, evs[i], f.sink_id, errclass, error, kp[i], vp[i]))
            rc = cdc_fail(err, sizeof err, CDC_EIO, "the dead-letter topic did not take it");
    if (rc == 0)
        rc = store_dlq_add_many(r->eng->store, n, (const struct cdc_event *const *)evs, kp, vp, &f,
                                &id, err, sizeof err);
    for (size_t i = 0; i < n; i++) {
        buf_fini(&keys[i]);
        buf_fini(&vals[i]);
    }
    free(keys);
    free(vals);
    free(kp);
    free(vp);
    char pos[CDC_POS_TEXT_MAX];
    cdc_pos_format(evs[0]->pos, pos, sizeof pos);
    if (rc != 0) {
        log_error("sink.dead_letter_failed", "sink=%s position=%s events=%zu error=%s",
                  r->sk.cfg->sink_id, pos, n, log_q(err));
        return CDC_ERR;
    }
    log_warn("sink.dead_lettered", "sink=%s first_id=%lld position=%s events=%zu class=%s error=%s",
             r->sk.cfg->sink_id, (long long)id, pos, n, errclass, log_q(error));
    for (size_t i = 0; i < n; i++)
        if (!evs[i]->snapshot) /* snapshot rows are skipped by content */
            runner_skip_add(r, evs[i]->pos);
    pthread_mutex_lock(&r->mu);
    r->dead_lettered += n;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void runner_span_add(struct runner *r, struct cdc_pos from, struct cdc_pos to, const char *why)
{
    for (size_t i = 0; i < r->nspans; i++)
        if (cdc_pos_cmp(r->spans[i].from, from) == 0)
            return;
    if (r->nspans == r->capspans) {
        r->capspans = r->capspans ? 2 * r->capspans : 4;
        r->spans = xrealloc(r->spans, r->capspans * sizeof *r->spans);
    }
    struct dl_span *s = &r->spans[r->nspans++];
    s->from = from;
    s->to = to;
    str_copy(s->why, sizeof s->why, why);
}

struct dl_span *runner_span_find(struct runner *r, struct cdc_pos pos)
{
    for (size_t i = 0; i < r->nspans; i++)
        if (cdc_pos_cmp(pos, r->spans[i].from) >= 0 && cdc_pos_cmp(pos, r->spans[i].to) <= 0)
            return &r->spans[i];
    return NULL;
}

void runner_spans_passed(struct runner *r, struct cdc_pos pos)
{
    size_t k = 0;
    for (size_t i = 0; i < r->nspans; i++)
        if (r->spans[i].to.stream != pos.stream || cdc_pos_cmp(r->spans[i].to, pos) >= 0)
            r->spans[k++] = r->spans[i];
    r->nspans = k;
}

static uint64_t row_hash(const struct cdc_event *ev)
{
    uint64_t h = hash_bytes(HASH_SEED, ev->tab->schema, strlen(ev->tab->schema) + 1);
    h = hash_bytes(h, ev->tab->name, strlen(ev->tab->name) + 1);
    for (uint16_t i = 0; ev->after && i < ev->tab->ncols; i++) {
        const struct cdc_val *v = &ev->after[i];
        uint8_t k = v->kind;
        h = hash_bytes(h, &k, 1);
        if (v->kind == CDC_V_TEXT)
            h = hash_bytes(h, cdc_val_ptr(ev, v), (size_t)v->len + 1);
    }
    return hash_finish(h);
}

static struct snap_skip *snap_find(struct runner *r, uint64_t h)
{
    for (size_t i = 0; i < r->nsnapskip; i++)
        if (r->snapskip[i].hash == h)
            return &r->snapskip[i];
    return NULL;
}

static void snap_add(struct runner *r, uint64_t h, bool seen)
{
    struct snap_skip *s = snap_find(r, h);
    if (!s) {
        if (r->nsnapskip == r->capsnapskip) {
            r->capsnapskip = r->capsnapskip ? 2 * r->capsnapskip : 8;
            r->snapskip = xrealloc(r->snapskip, r->capsnapskip * sizeof *r->snapskip);
        }
        s = &r->snapskip[r->nsnapskip++];
        *s = (struct snap_skip){h, 0, 0};
    }
    s->dead++;
    s->seen += seen;
}

void runner_snapshot_skip_add(struct runner *r, const struct cdc_event *ev)
{
    if (ev->snapshot && ev->op == CDC_OP_READ && ev->tab)
        snap_add(r, row_hash(ev), true);
}

bool runner_snapshot_skipped(struct runner *r, const struct cdc_event *ev)
{
    if (r->nsnapskip == 0 || !ev->snapshot || ev->op != CDC_OP_READ || !ev->tab)
        return false;
    struct snap_skip *s = snap_find(r, row_hash(ev));
    if (!s || s->seen >= s->dead)
        return false;
    s->seen++;
    return true;
}

void runner_snapshot_skip_rewound(struct runner *r)
{
    for (size_t i = 0; i < r->nsnapskip; i++)
        r->snapskip[i].seen = 0;
}

bool runner_keeps_transactions(const struct runner *r)
{
    const struct sink_type *t = r->sk.cfg->type;
    return t->dead_letters_transactions && t->dead_letters_transactions(r->sk.cfg);
}

void runner_span_after(struct runner *r, const struct cdc_event *ev, const char *error)
{
    if (ev->snapshot)
        return;
    char pos[CDC_POS_TEXT_MAX], why[sizeof r->spans->why];
    cdc_pos_format(ev->pos, pos, sizeof pos);
    if (ev->op == CDC_OP_COMMIT || runner_keeps_transactions(r)) {
        snprintf(why, sizeof why, "dead-lettered with its transaction: %s at %s: %.500s",
                 ev->op == CDC_OP_COMMIT ? "the transaction failed" : "a change was refused", pos,
                 error);
        runner_span_add(r, (struct cdc_pos){ev->pos.lsn, 0, ev->pos.stream},
                        (struct cdc_pos){ev->pos.lsn, CDC_POS_TXN_END - 1, ev->pos.stream}, why);
    } else if (ev->op == CDC_OP_TRUNCATE && ev->trunc_count > 1 && ev->trunc_index <= ev->pos.idx) {
        snprintf(why, sizeof why, "dead-lettered with the truncate at %s: %.500s", pos, error);
        uint64_t first = ev->pos.idx - ev->trunc_index;
        runner_span_add(r, (struct cdc_pos){ev->pos.lsn, first, ev->pos.stream},
                        (struct cdc_pos){ev->pos.lsn, first + ev->trunc_count - 1, ev->pos.stream},
                        why);
    }
}

struct load_ctx {
    struct runner *r;
    int64_t *ids; /* snapshot rows and truncates: their events are needed */
    size_t n, cap;
};

static int collect_entry(const struct dlq_entry *e, void *arg)
{
    struct load_ctx *c = arg;
    if (e->op != CDC_OP_READ && e->op != CDC_OP_TRUNCATE) {
        /* A change: its transaction follows it, if the sink keeps them whole. */
        if (runner_keeps_transactions(c->r))
            runner_span_add(c->r, (struct cdc_pos){e->pos.lsn, 0, e->pos.stream},
                            (struct cdc_pos){e->pos.lsn, CDC_POS_TXN_END - 1, e->pos.stream},
                            e->error);
        return 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->ids = xrealloc(c->ids, c->cap * sizeof *c->ids);
    }
    c->ids[c->n++] = e->id;
    return 0;
}

/* What a run stopped in the middle of must go on the same way: a refused
 * snapshot row is skipped when read again, and the rest of a transaction (or
 * truncate) whose change was dead-lettered follows it. */
int runner_dead_letters_load(struct runner *r, struct store *st, char *err, size_t errlen)
{
    struct load_ctx c = {r, NULL, 0, 0};
    int rc = store_dlq_list(st, r->sk.cfg->sink_id, false, collect_entry, &c, err, errlen);
    for (size_t i = 0; i < c.n && rc == 0; i++) {
        struct dlq_entry e;
        if (store_dlq_get(st, c.ids[i], &e, err, errlen) != 0)
            continue; /* purged meanwhile */
        struct cdc_event *ev = NULL;
        char derr[256];
        if (evcodec_decode(e.event, e.event_len, NULL, &ev, derr, sizeof derr) == 0) {
            if (ev->snapshot && ev->op == CDC_OP_READ && ev->tab)
                snap_add(r, row_hash(ev), false);
            else
                runner_span_after(r, ev, e.error);
            cdc_event_unref(ev);
        }
        dlq_entry_fini(&e);
    }
    free(c.ids);
    return rc;
}

void runner_fail(struct runner *r)
{
    struct engine *eng = r->eng;
    pthread_mutex_lock(&eng->fail_mu);
    if (!atomic_load(&eng->failed)) {
        snprintf(eng->fail_err, sizeof eng->fail_err, "sink %s: %s", r->sk.cfg->sink_id, r->sk.err);
        atomic_store(&eng->failed, true);
    }
    pthread_mutex_unlock(&eng->fail_mu);
    runner_note_error(r);
    log_error("sink.stopped", "sink=%s error=%s", r->sk.cfg->sink_id, log_q(r->sk.err));
}
