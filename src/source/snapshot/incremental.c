/* Incremental snapshots with watermarks; see incremental.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonread.h"
#include "source/emitter.h"
#include "source/snapshot/incremental.h"
#include "source/source.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strmap.h"

#define KEY_QUEUE      "isnap.queue"
#define KEY_LAST       "isnap.key." /* + table: last durable key (the source's text) */
#define KEY_RUN        "isnap.run." /* + table: snapshot_id of the run in progress */
#define MAX_CHUNK_ROWS 8192
/* The transactions the stream delivered last, kept for read_chunk_settled. */
#define RECENT_XIDS 4096
/* A chunk read that misses one of them is done again, this often at most,
 * this long apart. */
#define SETTLE_READS   40
#define SETTLE_WAIT_US 25000

enum state { S_IDLE, S_WAIT_OPEN, S_OPEN, S_CLOSED };

/* A chunk emitted but not yet durable everywhere. */
struct pending {
    uint64_t id;
    char *table;
    char *last_key; /* NULL: the chunk was the table's last */
};

struct isnap {
    struct isnap_cfg c;
    char nonce[32];
    char **queue; /* tables still to do, in order; persisted */
    size_t nqueue;
    unsigned gen; /* bumped by a rewind */
    uint64_t counter;

    /* the table in progress */
    char *table; /* configured name (copy) */
    void *t;     /* the source's handle */
    struct cdc_table *tab;
    char *next_key;  /* key after which the next chunk starts, or NULL */
    uint64_t run_id; /* the rows' snapshot_id: one per run over the table */

    /* the chunk in progress */
    enum state state;
    uint64_t chunk_seq;
    char open_id[160], close_id[160];
    struct cdc_event **rows;
    size_t nrows, caprows;
    struct strmap *by_key; /* key text -> row index + 1 */
    char *chunk_last_key;  /* key of the chunk's last row, NULL if it was the table's last */

    struct pending *pend;
    size_t npend, cappend;

    /* The newest transactions whose changes the stream delivered (a ring,
     * one entry per transaction in a row), for read_chunk_settled. */
    uint64_t recent[RECENT_XIDS];
    size_t recent_n, recent_head;

    /* Progress of the current run (from the first table queued while idle
     * to the queue's end), reported through the emitter. */
    bool reporting;
    uint64_t rows_emitted, chunks_done, tables_done;
    int64_t next_report_us;
};

static int match_table(const struct config *cfg, const char *name, const char **configured)
{
    char *s1 = NULL, *t1 = NULL;
    if (config_split_table(name, &s1, &t1) != 0)
        return -1;
    int found = -1;
    for (size_t i = 0; i < cfg->source.ntables && found < 0; i++) {
        char *s2 = NULL, *t2 = NULL;
        if (config_split_table(cfg->source.tables[i], &s2, &t2) == 0 && strcmp(s1, s2) == 0 &&
            strcmp(t1, t2) == 0) {
            found = (int)i;
            *configured = cfg->source.tables[i];
        }
        free(s2);
        free(t2);
    }
    free(s1);
    free(t1);
    return found;
}

static int save_queue(struct isnap *is, char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < is->nqueue; i++) {
        buf_puts(&b, is->queue[i]);
        buf_putc(&b, '\n');
    }
    int rc = store_kv_put(is->c.store, KEY_QUEUE, b.p ? b.p : "", err, errlen);
    buf_fini(&b);
    return rc;
}

static void free_queue(struct isnap *is)
{
    for (size_t i = 0; i < is->nqueue; i++)
        free(is->queue[i]);
    free(is->queue);
    is->queue = NULL;
    is->nqueue = 0;
}

static void pop_queue(struct isnap *is)
{
    if (!is->nqueue)
        return;
    free(is->queue[0]);
    memmove(is->queue, is->queue + 1, (is->nqueue - 1) * sizeof *is->queue);
    is->nqueue--;
}

static int load_queue(struct isnap *is, char *err, size_t errlen)
{
    free_queue(is);
    char *v = NULL;
    int rc = store_kv_get(is->c.store, KEY_QUEUE, &v, err, errlen);
    if (rc || !v)
        return rc;
    char *save = NULL;
    for (char *line = strtok_r(v, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        is->queue = xrealloc(is->queue, (is->nqueue + 1) * sizeof *is->queue);
        is->queue[is->nqueue++] = xstrdup(line);
    }
    free(v);
    return 0;
}

int isnap_open(struct isnap **out, const struct isnap_cfg *c, char *err, size_t errlen)
{
    struct isnap *is = xcalloc(1, sizeof *is);
    is->c = *c;
    snprintf(is->nonce, sizeof is->nonce, "%" PRIx64, (uint64_t)clock_wall_us());
    is->by_key = strmap_new();
    int rc = load_queue(is, err, errlen);
    if (rc) {
        isnap_free(is);
        return rc;
    }
    if (is->nqueue)
        log_info("snapshot.incremental_resume", "tables=%zu next=%s", is->nqueue, is->queue[0]);
    *out = is;
    return 0;
}

static void drop_rows(struct isnap *is)
{
    for (size_t i = 0; i < is->nrows; i++)
        if (is->rows[i])
            cdc_event_unref(is->rows[i]);
    is->nrows = 0;
    strmap_free(is->by_key, NULL);
    is->by_key = strmap_new();
    free(is->chunk_last_key);
    is->chunk_last_key = NULL;
}

static void drop_table(struct isnap *is)
{
    if (is->t)
        is->c.ops->close_table(is->c.arg, is->t);
    free(is->table);
    free(is->next_key);
    cdc_table_unref(is->tab);
    is->table = is->next_key = NULL;
    is->t = NULL;
    is->tab = NULL;
}

static void drop_pending(struct isnap *is)
{
    for (size_t i = 0; i < is->npend; i++) {
        free(is->pend[i].table);
        free(is->pend[i].last_key);
    }
    is->npend = 0;
}

void isnap_free(struct isnap *is)
{
    if (!is)
        return;
    drop_rows(is);
    strmap_free(is->by_key, NULL);
    drop_table(is);
    drop_pending(is);
    free(is->pend);
    free(is->rows);
    free_queue(is);
    free(is);
}

bool isnap_active(const struct isnap *is)
{
    return is->nqueue > 0 || is->tab != NULL;
}

int isnap_request(struct isnap *is, char *const *tables, size_t n, char *err, size_t errlen)
{
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        const char *configured = NULL;
        if (match_table(is->c.cfg, tables[i], &configured) < 0) {
            log_warn("snapshot.signal_ignored", "table=%s reason=%s", log_q(tables[i]),
                     log_q("not one of source.tables"));
            continue;
        }
        bool queued = false;
        for (size_t k = 0; k < is->nqueue && !queued; k++)
            queued = strcmp(is->queue[k], configured) == 0;
        if (queued)
            continue;
        is->queue = xrealloc(is->queue, (is->nqueue + 1) * sizeof *is->queue);
        is->queue[is->nqueue++] = xstrdup(configured);
        changed = true;
        log_info("snapshot.incremental_queued", "table=%s", configured);
    }
    return changed ? save_queue(is, err, errlen) : 0;
}

/* Key text of a row: each key column's kind and text, separated. */
static void key_text(const struct cdc_event *ev, const struct cdc_val *row, struct buf *b)
{
    buf_reset(b);
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!tab->cols[i].key)
            continue;
        buf_putc(b, (char)('0' + row[i].kind));
        if (row[i].kind == CDC_V_TEXT)
            buf_put(b, cdc_val_ptr(ev, &row[i]), row[i].len);
        buf_putc(b, '\x1f');
    }
}

static bool same_table(const struct cdc_table *a, const struct cdc_table *b)
{
    return a && b && strcmp(a->schema, b->schema) == 0 && strcmp(a->name, b->name) == 0;
}

static const char *col_text(const struct cdc_event *ev, const char *name, size_t *len)
{
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (strcmp(tab->cols[i].name, name) == 0 && ev->after && ev->after[i].kind == CDC_V_TEXT) {
            *len = ev->after[i].len;
            return cdc_val_ptr(ev, &ev->after[i]);
        }
    return NULL;
}

/* At the high watermark: the chunk's rows that the stream did not change
 * meanwhile go out inside the watermark's transaction, with a mark. */
static int close_window(struct isnap *is, struct emitter *em, const struct cdc_event *at);
static int take_marks(struct isnap *is, struct emitter *em, char *err, size_t errlen);

int isnap_on_signal(struct isnap *is, struct emitter *em, const struct cdc_event *ev)
{
    if (ev->op != CDC_OP_INSERT || !ev->tab)
        return 0;
    size_t idl = 0, tl = 0, dl = 0;
    const char *id = col_text(ev, "id", &idl);
    const char *type = col_text(ev, "type", &tl);
    const char *data = col_text(ev, "data", &dl);
    if (!id || !type)
        return 0;
    if (strcmp(type, "execute-snapshot") == 0 && data) {
        char **tables = NULL;
        size_t n = 0;
        char err[256];
        if (jsonread_string_array(data, dl, "data-collections", &tables, &n) != 0) {
            log_warn("snapshot.signal_malformed", "id=%s", log_q(id));
            return 0;
        }
        int rc = isnap_request(is, tables, n, err, sizeof err);
        jsonread_free_strings(tables, n);
        if (rc)
            log_error("snapshot.signal_failed", "id=%s error=%s", log_q(id), log_q(err));
        return 0;
    }
    if (strcmp(type, "snapshot-window-open") == 0 && is->state == S_WAIT_OPEN &&
        strcmp(id, is->open_id) == 0) {
        is->state = S_OPEN;
        return 0;
    }
    if (strcmp(type, "snapshot-window-close") == 0 && is->state == S_OPEN &&
        strcmp(id, is->close_id) == 0) {
        is->state = S_CLOSED;
        return close_window(is, em, ev);
    }
    return 0;
}

static void drop_key(struct isnap *is, const struct cdc_event *ev, const struct cdc_val *row,
                     struct buf *kb)
{
    key_text(ev, row, kb);
    uintptr_t at = (uintptr_t)strmap_get(is->by_key, kb->p ? kb->p : "");
    if (at && is->rows[at - 1]) {
        cdc_event_unref(is->rows[at - 1]);
        is->rows[at - 1] = NULL;
    }
}

static void note_recent(struct isnap *is, uint64_t xid)
{
    if (xid == 0)
        return;
    if (is->recent_n && is->recent[(is->recent_head + is->recent_n - 1) % RECENT_XIDS] == xid)
        return;
    if (is->recent_n == RECENT_XIDS) {
        is->recent_head = (is->recent_head + 1) % RECENT_XIDS;
        is->recent_n--;
    }
    is->recent[(is->recent_head + is->recent_n++) % RECENT_XIDS] = xid;
}

void isnap_on_change(struct isnap *is, const struct cdc_event *ev)
{
    if (!ev->snapshot)
        note_recent(is, ev->xid);
    if ((is->state != S_OPEN && is->state != S_WAIT_OPEN) || !same_table(ev->tab, is->tab))
        return;
    /* Inside the window every change wins over the read row (DBLog); before
     * it, changes the read could not see do too: a commit record can precede
     * the low watermark while its transaction is not yet visible to a
     * snapshot taken after it. */
    if (is->state != S_OPEN && is->c.ops->saw && is->c.ops->saw(is->c.arg, is->t, ev))
        return;
    if (ev->op == CDC_OP_TRUNCATE) {
        for (size_t i = 0; i < is->nrows; i++)
            if (is->rows[i]) {
                cdc_event_unref(is->rows[i]);
                is->rows[i] = NULL;
            }
        return;
    }
    struct buf kb = BUF_INIT;
    if (ev->after)
        drop_key(is, ev, ev->after, &kb);
    if (ev->before)
        drop_key(is, ev, ev->before, &kb);
    buf_fini(&kb);
}

/* The chunk is emitted: it waits for its mark; the next step reads the
 * next chunk, or the next table. */
static uint64_t chunk_emitted(struct isnap *is)
{
    is->nrows = 0;
    strmap_free(is->by_key, NULL);
    is->by_key = strmap_new();
    if (is->npend == is->cappend) {
        is->cappend = is->cappend ? 2 * is->cappend : 8;
        is->pend = xrealloc(is->pend, is->cappend * sizeof *is->pend);
    }
    uint64_t id = ((uint64_t)is->gen << 32) | (is->counter & 0xffffffffu);
    is->pend[is->npend++] = (struct pending){id, xstrdup(is->table), is->chunk_last_key};
    if (is->chunk_last_key) {
        free(is->next_key);
        is->next_key = xstrdup(is->chunk_last_key);
    } else {
        /* The table is read to its end: the next step moves on. */
        log_info("snapshot.incremental_read", "table=%s", is->table);
        drop_table(is);
        pop_queue(is);
    }
    is->chunk_last_key = NULL;
    is->state = S_IDLE;
    return id;
}

static int close_window(struct isnap *is, struct emitter *em, const struct cdc_event *at)
{
    size_t k = 0;
    for (size_t i = 0; i < is->nrows; i++)
        if (is->rows[i]) {
            struct cdc_event *ev = is->rows[i];
            ev->snapshot_chunk = is->chunk_seq;
            ev->snapshot_row = (uint32_t)k;
            is->rows[k++] = ev;
        }
    int rc = 0;
    size_t i = 0;
    for (; i < k && rc == 0; i++) {
        struct cdc_event *ev = is->rows[i];
        ev->pos = (struct cdc_pos){at->pos.lsn, 0, at->pos.stream}; /* in at's transaction */
        ev->lsn = at->lsn;
        ev->xid = at->xid;
        rc = emitter_event(em, ev);
    }
    for (; i < k; i++)
        cdc_event_unref(is->rows[i]);
    is->rows_emitted += k;
    uint64_t id = chunk_emitted(is);
    emitter_mark(em, emitter_last_seq(em), id);
    return rc;
}

#define REPORT_US 200000

/* Tells the emitter (the driver: /status, /metrics) where the run is, now
 * and then while active, and once when it ends. */
static void report(struct isnap *is, struct emitter *em)
{
    bool active = isnap_active(is) || is->npend > 0;
    if (!active && !is->reporting)
        return;
    int64_t now = clock_mono_us();
    if (active && is->reporting && now < is->next_report_us)
        return;
    if (active && !is->reporting)
        is->rows_emitted = is->chunks_done = is->tables_done = 0; /* a new run */
    is->reporting = active;
    is->next_report_us = now + REPORT_US;
    struct snap_progress p = {.running = active,
                              .incremental = true,
                              .paused = emitter_paused(em),
                              .rows_read = is->rows_emitted,
                              .chunks_done = is->chunks_done,
                              .tables_done = is->tables_done,
                              .eta_seconds = -1};
    p.tables_total = is->tables_done + is->nqueue;
    for (size_t i = 0; i < is->npend; i++)
        p.tables_total += is->pend[i].last_key == NULL; /* read to its end, not yet durable */
    if (is->table)
        snprintf(p.table, sizeof p.table, "%s", is->table);
    emitter_progress(em, &p);
}

int isnap_record_done(struct isnap *is, struct emitter *em, char *err, size_t errlen)
{
    int rc = take_marks(is, em, err, errlen);
    report(is, em);
    return rc;
}

/* Records the chunks every sink now holds (isnap_record_done). */
static int take_marks(struct isnap *is, struct emitter *em, char *err, size_t errlen)
{
    uint64_t ids[64];
    size_t n;
    while ((n = emitter_take_marks(em, ids, 64)) > 0)
        for (size_t i = 0; i < n; i++) {
            if ((ids[i] >> 32) != is->gen)
                continue; /* from before a rewind: that chunk is read again */
            size_t k = 0;
            while (k < is->npend && is->pend[k].id != ids[i])
                k++;
            if (k == is->npend)
                continue;
            struct pending *p = &is->pend[k];
            char *key = xasprintf("%s%s", KEY_LAST, p->table);
            int rc;
            if (p->last_key) {
                rc = store_kv_put(is->c.store, key, p->last_key, err, errlen);
            } else {
                rc = store_kv_delete(is->c.store, key, err, errlen);
                char *run = xasprintf("%s%s", KEY_RUN, p->table);
                if (!rc)
                    rc = store_kv_delete(is->c.store, run, err, errlen);
                free(run);
                char *done = xasprintf("%s%s", SNAP_KEY_TABLE, p->table);
                if (!rc)
                    rc = store_kv_put(is->c.store, done, "incremental", err, errlen);
                free(done);
                if (!rc)
                    rc = save_queue(is, err, errlen);
                if (!rc)
                    log_info("snapshot.incremental_done", "table=%s", p->table);
                is->tables_done++;
            }
            is->chunks_done++;
            free(key);
            free(p->table);
            free(p->last_key);
            memmove(p, p + 1, (is->npend - k - 1) * sizeof *p);
            is->npend--;
            if (rc)
                return rc;
        }
    return 0;
}

void isnap_rewind(struct isnap *is)
{
    is->gen++;
    drop_rows(is);
    drop_table(is);
    drop_pending(is);
    is->state = S_IDLE;
    char err[256];
    if (load_queue(is, err, sizeof err) != 0)
        log_error("snapshot.incremental_reload_failed", "error=%s", log_q(err));
}

/* The run's snapshot id: kept across restarts and rewinds until the table is
 * done, so re-read rows carry the same identity (webhook idempotency keys). */
static int load_run_id(struct isnap *is, char *err, size_t errlen)
{
    char *key = xasprintf("%s%s", KEY_RUN, is->table);
    char *v = NULL;
    int rc = store_kv_get(is->c.store, key, &v, err, errlen);
    is->run_id = v ? strtoull(v, NULL, 10) : 0;
    if (!rc && !is->run_id) {
        char num[32];
        is->run_id = (uint64_t)clock_wall_us();
        snprintf(num, sizeof num, "%" PRIu64, is->run_id);
        rc = store_kv_put(is->c.store, key, num, err, errlen);
    }
    free(v);
    free(key);
    return rc;
}

/* Describes the table at the head of the queue and where to resume. */
static int start_table(struct isnap *is, char *err, size_t errlen)
{
    is->table = xstrdup(is->queue[0]);
    int rc = is->c.ops->open_table(is->c.arg, NULL, is->table, &is->t, &is->tab, err, errlen);
    if (rc == 0 && !is->tab->key_unique)
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "incremental snapshot of %s needs a primary key (or a unique replica "
                      "identity index)",
                      is->table);
    if (rc)
        return rc;
    char *key = xasprintf("%s%s", KEY_LAST, is->table);
    rc = store_kv_get(is->c.store, key, &is->next_key, err, errlen);
    free(key);
    if (!rc)
        rc = load_run_id(is, err, errlen);
    log_info("snapshot.incremental_table", "table=%s resume=%s", is->table,
             is->next_key ? "yes" : "no");
    return rc;
}

/* Buffers one row the read handed over. */
static int on_row(void *arg, struct cdc_event *ev)
{
    struct isnap *is = arg;
    int64_t now = clock_wall_us();
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    ev->snapshot_id = is->run_id;
    ev->commit_ts = now;
    ev->emit_ts = now;
    if (is->nrows == is->caprows) {
        is->caprows = is->caprows ? 2 * is->caprows : 256;
        is->rows = xrealloc(is->rows, is->caprows * sizeof *is->rows);
    }
    is->rows[is->nrows++] = ev;
    struct buf kb = BUF_INIT;
    key_text(ev, ev->after, &kb);
    strmap_put(is->by_key, kb.p ? kb.p : "", (void *)(uintptr_t)is->nrows);
    buf_fini(&kb);
    return 0;
}

/* A transaction the stream delivered that the chunk's read did not see
 * (0: none, or the source cannot tell). */
static uint64_t unseen_recent(struct isnap *is)
{
    if (!is->c.ops->saw)
        return 0;
    for (size_t i = 0; i < is->recent_n; i++) {
        struct cdc_event probe = {.xid = is->recent[(is->recent_head + i) % RECENT_XIDS]};
        if (!is->c.ops->saw(is->c.arg, is->t, &probe))
            return probe.xid;
    }
    return 0;
}

/* Reads the chunk after next_key into rows. */
static int read_chunk(struct isnap *is, char *err, size_t errlen)
{
    int64_t limit = is->c.cfg->source.snapshot_chunk_rows;
    if (limit > MAX_CHUNK_ROWS)
        limit = MAX_CHUNK_ROWS;
    int rc = is->c.ops->read_after(is->c.arg, is->t, is->next_key, (size_t)limit, on_row, is, err,
                                   errlen);
    if (!rc && is->nrows > 0 && (int64_t)is->nrows == limit)
        is->chunk_last_key = is->c.ops->row_key(is->c.arg, is->t, is->rows[is->nrows - 1]);
    return rc;
}

/* read_chunk, done again while the read misses a transaction the stream
 * already delivered.  PostgreSQL sends a commit as soon as its record is
 * flushed, and the committing session leaves the set of running
 * transactions a moment later: a read in between does not see it, and its
 * rows, emitted at the high watermark, would be older than that
 * transaction's changes delivered before them (the window only catches
 * changes the stream brings after the low watermark).  Such a transaction is
 * committed, so a read a few milliseconds later sees it.  One still unseen
 * after SETTLE_READS reads has not committed (a streamed transaction, whose
 * commit then follows the low watermark and is the window's to handle). */
static int read_chunk_settled(struct isnap *is, char *err, size_t errlen)
{
    for (int attempt = 1;; attempt++) {
        int rc = read_chunk(is, err, errlen);
        uint64_t xid = rc ? 0 : unseen_recent(is);
        if (rc || !xid)
            return rc;
        if (attempt == SETTLE_READS) {
            log_info("snapshot.read_unsettled", "table=%s xid=%" PRIu64 " reads=%d", is->table, xid,
                     attempt);
            return 0;
        }
        log_debug("snapshot.read_again", "table=%s xid=%" PRIu64 " attempt=%d", is->table, xid,
                  attempt);
        drop_rows(is);
        clock_sleep_us(SETTLE_WAIT_US);
    }
}

int isnap_step(struct isnap *is, char *err, size_t errlen)
{
    if (is->state != S_IDLE)
        return 0;
    while (!is->tab && is->nqueue) {
        int rc = start_table(is, err, errlen);
        if (rc == 0)
            break;
        if (rc == CDC_ECONN) {
            drop_table(is);
            return rc;
        }
        /* A table that cannot be snapshotted incrementally is dropped from
         * the queue, loudly; the others go on. */
        log_error("snapshot.incremental_failed", "table=%s error=%s", is->queue[0], log_q(err));
        drop_table(is);
        pop_queue(is);
        if ((rc = save_queue(is, err, errlen)))
            return rc;
    }
    if (!is->tab)
        return 0;
    is->counter++;
    snprintf(is->open_id, sizeof is->open_id, "%s|%s|%" PRIu64 "|open", is->c.cfg->pipeline_id,
             is->nonce, is->counter);
    snprintf(is->close_id, sizeof is->close_id, "%s|%s|%" PRIu64 "|close", is->c.cfg->pipeline_id,
             is->nonce, is->counter);
    const struct snap_ops *ops = is->c.ops;
    int rc = snap_next_chunk_seq(is->c.store, is->table, &is->chunk_seq, err, errlen);
    if (!rc)
        rc = ops->watermark(is->c.arg, is->table, is->open_id, "snapshot-window-open", err, errlen);
    if (!rc)
        rc = read_chunk_settled(is, err, errlen);
    if (!rc)
        rc = ops->watermark(is->c.arg, is->table, is->close_id, "snapshot-window-close", err,
                            errlen);
    if (rc) {
        drop_rows(is);
        is->state = S_IDLE;
        return rc;
    }
    is->state = S_WAIT_OPEN;
    return 0;
}
