/* PostgreSQL source: replication framing, pgoutput to events, streamed
 * transactions, status updates and reconnection. */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pg/pgconn.h"
#include "source/pg/isnap.h"
#include "source/pg/pgoutput.h"
#include "source/pg/pgslot.h"
#include "source/pg/pgsrc.h"
#include "source/pg/relcache.h"
#include "source/pg/snapshot.h"
#include "source/pg/spill.h"
#include "source/pg/xidsnap.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define PUSH_BATCH       512
#define PUSH_BATCH_BYTES (256u << 10) /* events held before a push, by size too */
#define HEARTBEAT_PREFIX "cdc_heartbeat"

/* A table rebuilt by a resumed snapshot: its changes committed before
 * `until` by transactions the rebuild's snapshot saw are already in its rows. */
struct fold_rule {
    char *schema, *name;
    struct xidsnap snap;
    uint64_t until; /* WAL position when the snapshot was taken */
};

/* Per-table change counter within one transaction (data_collection_order). */
struct table_count {
    uint32_t relid;
    uint32_t n;
};

struct pgsrc {
    const struct config *cfg;
    struct store *store; /* borrowed: snapshot progress */
    /* Initial snapshot to take (or finish) before streaming: its id, and
     * the replication connection that exported its snapshot (kept idle until
     * the readers imported it), or NULL when resuming. */
    char *snap_id;
    PGconn *snap_exporter;
    char *snap_name;
    pthread_mutex_t emit_mu; /* snapshot readers push concurrently */
    struct engine *eng;      /* borrowed during pgsrc_run */
    const struct pgsrc_opts *opts;
    PGconn *conn;         /* SQL connection: catalog lookups, heartbeats */
    PGconn *repl;         /* replication connection, or NULL */
    int repl_lowat;       /* SO_RCVLOWAT now set on repl's socket (0: default) */
    bool coalesce;        /* reading in chunks: see COALESCE_BYTES */
    bool rcvbuf_fixed;    /* SO_RCVBUF set on repl's socket */
    size_t window_msgs;   /* messages received in the current window */
    int64_t window_start; /* monotonic us */
    struct relcache *rels;
    struct spill *spill;
    struct isnap *isnap; /* incremental snapshots; NULL when unavailable */
    struct fold_rule *folds;
    size_t nfolds;
    uint64_t start_lsn;

    /* transaction being decoded */
    bool in_txn;
    uint32_t xid;
    uint64_t commit_lsn;
    int64_t commit_ts; /* unix us */
    uint64_t next_idx;
    struct table_count *counts;
    size_t ncounts, capcounts;

    /* streamed transactions */
    bool in_stream;
    uint32_t stream_xid;

    uint64_t msg_lsn;         /* LSN of the message being handled */
    uint64_t next_seq;        /* last seq assigned */
    uint64_t last_commit_end; /* end LSN of the newest transaction fully pushed */
    uint64_t write_lsn;       /* newest position received and processed */
    uint64_t sent_flush;      /* flush position last reported */
    int64_t last_status_us;
    int64_t next_heartbeat_us;
    bool ever_streamed;
    bool stats_paused;
    int64_t next_mem_log_us;

    struct cdc_event **pend; /* events assigned seqs, not yet pushed */
    size_t npend;
    size_t pend_bytes;

    /* counters, published to stats under mu by publish_stats */
    uint64_t n_events, n_txns, n_bytes, n_reconnects;
    pthread_mutex_t mu;
    struct pgsrc_stats stats;

    char err[512];
};

/* ---------- status updates ---------- */

/* Standby status update: Byte1('r'), Int64 write, Int64 flush, Int64 apply,
 * Int64 client clock (us since 2000-01-01), Byte1 reply requested. */
static int send_status(struct pgsrc *src, bool force)
{
    if (!src->repl)
        return 0;
    uint64_t flush = src->eng ? engine_confirmed(src->eng) : src->start_lsn;
    int64_t now = clock_mono_us();
    int64_t interval = (int64_t)(src->cfg->source.status_interval_seconds * 1e6);
    bool changed = flush != src->sent_flush;
    if (!force && !(changed && now - src->last_status_us >= 100000) &&
        now - src->last_status_us < interval)
        return 0;
    uint64_t write = src->write_lsn > flush ? src->write_lsn : flush;
    uint8_t msg[34];
    msg[0] = 'r';
    pgo_put_u64(msg + 1, write);
    pgo_put_u64(msg + 9, flush);
    pgo_put_u64(msg + 17, flush);
    pgo_put_u64(msg + 25, (uint64_t)(clock_wall_us() - PG_EPOCH_OFFSET_US));
    msg[33] = 0;
    if (PQputCopyData(src->repl, (const char *)msg, sizeof msg) != 1 || PQflush(src->repl) != 0) {
        pgconn_error(src->repl, src->err, sizeof src->err);
        return CDC_ECONN;
    }
    if (changed)
        log_debug("source.confirmed", "lsn=%X/%X", (unsigned)(flush >> 32), (unsigned)flush);
    src->sent_flush = flush;
    src->last_status_us = now;
    return 0;
}

static void publish_stats(struct pgsrc *src)
{
    pthread_mutex_lock(&src->mu);
    src->stats.events = src->n_events;
    src->stats.transactions = src->n_txns;
    src->stats.bytes_received = src->n_bytes;
    src->stats.received_lsn = src->write_lsn;
    src->stats.confirmed_lsn = src->sent_flush;
    src->stats.reconnects = src->n_reconnects;
    src->stats.spilled_bytes = src->spill ? spill_bytes(src->spill) : 0;
    src->stats.connected = src->repl != NULL;
    src->stats.paused = src->stats_paused;
    pthread_mutex_unlock(&src->mu);
    /* Where memory goes, for people tuning budgets (debug level only). */
    if (log_enabled(LOG_DEBUG) && src->eng) {
        int64_t now = clock_mono_us();
        if (now >= src->next_mem_log_us) {
            src->next_mem_log_us = now + 5000000;
            uint64_t live_bytes, live_events, wait_us;
            bool full;
            engine_log_stats(src->eng, &live_bytes, &live_events, &full, &wait_us);
            struct mallinfo2 mi = mallinfo2();
            log_debug("memory",
                      "log_bytes=%llu log_events=%llu heap_in_use=%zu heap_free=%zu "
                      "mmapped=%zu pending=%zu",
                      (unsigned long long)live_bytes, (unsigned long long)live_events, mi.uordblks,
                      mi.fordblks, mi.hblkhd, src->pend_bytes);
        }
    }
}

/* A signal, or a sink that stopped the pipeline (engine_failed). */
static bool stop_requested(const struct pgsrc *src)
{
    return (src->opts && src->opts->stop && *src->opts->stop) ||
           (src->eng && engine_failed(src->eng, NULL, 0));
}

/* ---------- pushing events ---------- */

/* Pushes evs[0..n) into the engine, waiting while it is full; the events are
 * the engine's or released afterwards.  With keepalive (the source thread,
 * which owns the replication connection) the wait keeps the server's
 * connection alive with status updates.  Returns CDC_ESTOP if a stop was
 * requested while blocked (the unpushed events are dropped: they were never
 * confirmed, the next run gets them), else 0. */
static int push_events(struct pgsrc *src, struct cdc_event **evs, size_t n, bool keepalive)
{
    size_t off = 0;
    int rc = 0;
    bool logged = false;
    while (off < n) {
        size_t done = 0;
        rc = engine_push(src->eng, evs + off, n - off, &done, 100);
        off += done;
        if (rc == 0)
            break;
        if (rc == CDC_ESTOP || stop_requested(src)) {
            rc = CDC_ESTOP;
            break;
        }
        if (!keepalive)
            continue;
        if (!logged) {
            log_debug("source.backpressure", "waiting=%zu", n - off);
            logged = true;
        }
        /* A broken connection shows up at the next read: the caller
         * reconnects once the events are in. */
        (void)send_status(src, false);
        publish_stats(src);
    }
    for (size_t i = off; i < n; i++)
        cdc_event_unref(evs[i]);
    return rc == CDC_ESTOP ? CDC_ESTOP : 0;
}

/* Pushes the pending events (see push_events). */
static int flush_pending(struct pgsrc *src)
{
    int rc = push_events(src, src->pend, src->npend, true);
    src->npend = 0;
    src->pend_bytes = 0;
    return rc;
}

static int emit(struct pgsrc *src, struct cdc_event *ev)
{
    ev->seq = ++src->next_seq;
    if (!cdc_op_is_control(ev->op)) {
        engine_route(src->eng, ev);
        src->n_events++;
    }
    src->pend[src->npend++] = ev;
    src->pend_bytes += ev->size;
    /* Events waiting here are outside the event log's memory budget: keep
     * few of them, counted in bytes as well. */
    if (src->npend == PUSH_BATCH || src->pend_bytes >= PUSH_BATCH_BYTES)
        return flush_pending(src);
    return 0;
}

/* ---------- decoding ---------- */

static uint32_t table_order(struct pgsrc *src, uint32_t relid)
{
    for (size_t i = 0; i < src->ncounts; i++)
        if (src->counts[i].relid == relid)
            return ++src->counts[i].n;
    if (src->ncounts == src->capcounts) {
        src->capcounts = src->capcounts ? 2 * src->capcounts : 8;
        src->counts = xrealloc(src->counts, src->capcounts * sizeof *src->counts);
    }
    src->counts[src->ncounts++] = (struct table_count){relid, 1};
    return 1;
}

static void begin_txn(struct pgsrc *src, uint32_t xid, uint64_t commit_lsn, int64_t pg_ts)
{
    src->in_txn = true;
    src->xid = xid;
    src->commit_lsn = commit_lsn;
    src->commit_ts = pg_ts + PG_EPOCH_OFFSET_US;
    src->next_idx = 0;
    src->ncounts = 0;
}

/* A new change event positioned in the current transaction. */
static struct cdc_event *new_change(struct pgsrc *src, int op, struct cdc_table *tab,
                                    bool with_before, bool with_after, size_t data_cap)
{
    uint16_t n = tab ? tab->ncols : 2;
    struct cdc_event *ev = cdc_event_new(with_before ? n : 0, with_after ? n : 0, data_cap);
    ev->op = (uint8_t)op;
    if (tab) {
        cdc_table_ref(tab);
        ev->tab = tab;
        ev->table_order = table_order(src, tab->id);
    }
    ev->pos.lsn = src->commit_lsn;
    ev->pos.idx = src->next_idx++;
    ev->total_order = (uint32_t)ev->pos.idx + 1;
    ev->lsn = src->msg_lsn;
    ev->xid = src->xid;
    ev->commit_ts = src->commit_ts;
    ev->emit_ts = clock_wall_us();
    return ev;
}

/* Copies a tuple's values into vals/ev->data. */
static int fill_row(struct pgsrc *src, struct cdc_event *ev, const struct cdc_table *tab,
                    const struct pgo_tuple *t, struct cdc_val *vals)
{
    if (t->ncols != tab->ncols)
        return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                        "table %s.%s: change has %u columns but the relation has %u", tab->schema,
                        tab->name, t->ncols, tab->ncols);
    const uint8_t *cur = t->p;
    for (uint16_t i = 0; i < t->ncols; i++) {
        struct pgo_col col;
        pgo_tuple_next(&cur, &col);
        switch (col.kind) {
        case 'n':
            vals[i].kind = CDC_V_NULL;
            break;
        case 'u':
            vals[i].kind = CDC_V_UNCHANGED;
            break;
        default:
            vals[i].kind = CDC_V_TEXT;
            vals[i].off = ev->data_len;
            vals[i].len = col.len;
            memcpy(ev->data + ev->data_len, col.data, col.len);
            ev->data[ev->data_len + col.len] = '\0';
            ev->data_len += col.len + 1;
            break;
        }
    }
    return 0;
}

/* At the high watermark: the chunk's rows that the stream did not change
 * meanwhile go out inside the watermark's transaction. */
static int emit_snapshot_rows(struct pgsrc *src)
{
    struct cdc_event **rows;
    size_t n = isnap_take_rows(src->isnap, &rows);
    int rc = 0;
    size_t i = 0;
    for (; i < n && rc == 0; i++) {
        struct cdc_event *ev = rows[i];
        ev->pos.lsn = src->commit_lsn;
        ev->lsn = src->msg_lsn;
        ev->xid = src->xid;
        rc = emit(src, ev);
    }
    for (; i < n; i++)
        cdc_event_unref(rows[i]);
    uint64_t id = isnap_emitted(src->isnap);
    engine_mark(src->eng, src->next_seq, id);
    return rc;
}

/* A change to the signal table: snapshot requests and watermarks. */
static int on_signal(struct pgsrc *src, const struct pgo_msg *m, struct cdc_table *tab)
{
    if (m->type != PGO_INSERT)
        return 0;
    struct cdc_event *ev = cdc_event_new(0, tab->ncols, m->change.new.len);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(tab);
    ev->tab = tab;
    int rc = fill_row(src, ev, tab, &m->change.new, ev->after);
    if (rc == 0 && isnap_on_signal(src->isnap, ev) == ISNAP_WINDOW_CLOSE)
        rc = emit_snapshot_rows(src);
    cdc_event_unref(ev);
    return rc;
}

static bool is_signal_table(const struct pgsrc *src, const struct cdc_table *tab)
{
    return src->isnap && strcmp(tab->schema, isnap_signal_schema(src->isnap)) == 0 &&
           strcmp(tab->name, isnap_signal_name(src->isnap)) == 0;
}

/* Whether a change of tab in the current transaction is already in rows a
 * rebuild read (see struct fold_rule). */
static bool folded(const struct pgsrc *src, const struct cdc_table *tab)
{
    for (size_t i = 0; i < src->nfolds; i++) {
        const struct fold_rule *f = &src->folds[i];
        if (src->commit_lsn < f->until && strcmp(f->schema, tab->schema) == 0 &&
            strcmp(f->name, tab->name) == 0 && xidsnap_sees(&f->snap, src->xid))
            return true;
    }
    return false;
}

static void free_folds(struct pgsrc *src)
{
    for (size_t i = 0; i < src->nfolds; i++) {
        free(src->folds[i].schema);
        free(src->folds[i].name);
        xidsnap_fini(&src->folds[i].snap);
    }
    free(src->folds);
    src->folds = NULL;
    src->nfolds = 0;
}

/* Loads the fold rules of the initial snapshot `id` (lines "table TAB
 * snapshot TAB lsn"). */
static int load_folds(struct pgsrc *src, const char *id, char *err, size_t errlen)
{
    free_folds(src);
    char *key = xasprintf("snapshot.%s.folds", id);
    char *v = NULL;
    int rc = store_kv_get(src->store, key, &v, err, errlen);
    free(key);
    if (rc || !v)
        return rc;
    char *save = NULL;
    for (char *line = strtok_r(v, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *t2 = strchr(line, '\t');
        char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
        if (!t3)
            continue;
        *t2 = *t3 = '\0';
        struct fold_rule f = {0};
        if (config_split_table(line, &f.schema, &f.name) != 0 ||
            xidsnap_parse(&f.snap, t2 + 1) != 0 || pgconn_parse_lsn(t3 + 1, &f.until) != 0) {
            free(f.schema);
            free(f.name);
            xidsnap_fini(&f.snap);
            continue;
        }
        src->folds = xrealloc(src->folds, (src->nfolds + 1) * sizeof *src->folds);
        src->folds[src->nfolds++] = f;
        log_info("source.fold_rule", "table=%s until=%s", line, t3 + 1);
    }
    free(v);
    return 0;
}

static int on_change(struct pgsrc *src, const struct pgo_msg *m)
{
    bool captured = false;
    struct cdc_table *tab = relcache_get(src->rels, m->change.relid, &captured);
    if (!tab)
        return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                        "pgoutput sent a change for relation %u before describing it",
                        m->change.relid);
    if (!captured)
        return is_signal_table(src, tab) ? on_signal(src, m, tab) : 0;
    if (!src->in_txn)
        return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                        "pgoutput sent a change outside a transaction");
    if (src->nfolds && folded(src, tab))
        return 0;
    bool before = m->change.old_kind != 0;
    bool after = m->type != PGO_DELETE;
    size_t cap = (before ? m->change.old.len : 0) + (after ? m->change.new.len : 0);
    int op = m->type == PGO_INSERT   ? CDC_OP_INSERT
             : m->type == PGO_UPDATE ? CDC_OP_UPDATE
                                     : CDC_OP_DELETE;
    struct cdc_event *ev = new_change(src, op, tab, before, after, cap);
    int rc = 0;
    if (before) {
        ev->before_key_only = m->change.old_kind == 'K';
        rc = fill_row(src, ev, tab, &m->change.old, ev->before);
    }
    if (!rc && after)
        rc = fill_row(src, ev, tab, &m->change.new, ev->after);
    if (rc) {
        cdc_event_unref(ev);
        return rc;
    }
    if (src->isnap)
        isnap_on_change(src->isnap, ev);
    return emit(src, ev);
}

/* One TRUNCATE statement: an event per captured table, consecutive, each
 * carrying the statement's options and the names of all of them, so a mirror
 * can truncate them together as the source did (tables linked by foreign
 * keys cannot be truncated one by one). */
static int on_truncate(struct pgsrc *src, const struct pgo_msg *m)
{
    struct cdc_table **tabs = xcalloc(m->truncate.nrels ? m->truncate.nrels : 1, sizeof *tabs);
    uint32_t n = 0;
    struct buf names = BUF_INIT;
    for (uint32_t i = 0; i < m->truncate.nrels && n < UINT16_MAX; i++) {
        bool captured = false;
        struct cdc_table *tab = relcache_get(src->rels, pgo_truncate_relid(m, i), &captured);
        if (!tab || !captured || (src->nfolds && folded(src, tab)))
            continue;
        tabs[n++] = tab;
        buf_put(&names, tab->schema, strlen(tab->schema) + 1);
        buf_put(&names, tab->name, strlen(tab->name) + 1);
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        struct cdc_event *ev = new_change(src, CDC_OP_TRUNCATE, tabs[i], false, false, names.len);
        ev->trunc_opts = m->truncate.options & (CDC_TRUNC_CASCADE | CDC_TRUNC_RESTART_IDENTITY);
        ev->trunc_index = (uint16_t)i;
        ev->trunc_count = (uint16_t)n;
        memcpy(ev->data, names.p, names.len);
        ev->data_len = (uint32_t)names.len;
        if (src->isnap)
            isnap_on_change(src->isnap, ev);
        rc = emit(src, ev);
    }
    buf_fini(&names);
    free(tabs);
    return rc;
}

/* Ends the current transaction: a COMMIT marker in the log, and the
 * transaction's end LSN registered with the tracker. */
static int commit_txn(struct pgsrc *src, uint64_t end_lsn)
{
    struct cdc_event *ev = cdc_event_new(0, 0, 0);
    ev->op = CDC_OP_COMMIT;
    ev->pos = (struct cdc_pos){src->commit_lsn, CDC_POS_TXN_END};
    ev->end_lsn = end_lsn;
    ev->xid = src->xid;
    ev->commit_ts = src->commit_ts;
    ev->total_order = (uint32_t)src->next_idx; /* events in the transaction */
    src->in_txn = false;
    int rc = emit(src, ev);
    /* ev may be gone already (pushed and released, or freed on a stop):
     * its seq is the newest one assigned. */
    if (rc == 0)
        engine_commit(src->eng, src->next_seq, end_lsn);
    src->last_commit_end = end_lsn;
    if (end_lsn > src->write_lsn)
        src->write_lsn = end_lsn;
    src->n_txns++;
    pthread_mutex_lock(&src->mu);
    src->stats.last_commit_ts = src->commit_ts;
    pthread_mutex_unlock(&src->mu);
    return rc;
}

static int on_message(struct pgsrc *src, const struct pgo_msg *m)
{
    bool heartbeat = strcmp(m->message.prefix, HEARTBEAT_PREFIX) == 0;
    bool transactional = (m->message.flags & 1) != 0;
    if (heartbeat) {
        if (!src->in_txn)
            engine_commit(src->eng, src->next_seq, m->message.lsn);
        return 0;
    }
    bool standalone = !transactional || !src->in_txn;
    if (standalone)
        begin_txn(src, 0, m->message.lsn, 0);
    size_t plen = strlen(m->message.prefix);
    struct cdc_event *ev =
        new_change(src, CDC_OP_MESSAGE, NULL, false, true, plen + m->message.len + 2);
    if (standalone)
        ev->commit_ts = ev->emit_ts;
    ev->msg_transactional = transactional;
    ev->after[0] = (struct cdc_val){0, (uint32_t)plen, CDC_V_TEXT};
    memcpy(ev->data, m->message.prefix, plen + 1);
    ev->after[1] = (struct cdc_val){(uint32_t)plen + 1, m->message.len, CDC_V_TEXT};
    memcpy(ev->data + plen + 1, m->message.content, m->message.len);
    ev->data[plen + 1 + m->message.len] = '\0';
    ev->data_len = (uint32_t)(plen + m->message.len + 2);
    int rc = emit(src, ev);
    if (!rc && standalone)
        rc = commit_txn(src, m->message.lsn);
    return rc;
}

static int handle_payload(struct pgsrc *src, const uint8_t *p, size_t len);

/* Stream Commit: replays the spilled messages as one ordinary transaction. */
static int replay_stream(struct pgsrc *src, const struct pgo_msg *m)
{
    uint32_t xid = m->xid;
    int rc = spill_begin_replay(src->spill, xid, src->err, sizeof src->err);
    if (rc)
        return rc;
    begin_txn(src, xid, m->commit.commit_lsn, m->commit.commit_ts);
    log_debug("source.stream_commit", "xid=%u lsn=%X/%X", xid,
              (unsigned)(m->commit.commit_lsn >> 32), (unsigned)m->commit.commit_lsn);
    const uint8_t *msg;
    size_t len;
    uint64_t lsn;
    bool saved = src->in_stream;
    int r;
    while ((r = spill_next(src->spill, &lsn, &msg, &len)) > 0) {
        src->msg_lsn = lsn;
        src->in_stream = true; /* spilled messages carry their xid */
        rc = handle_payload(src, msg, len);
        src->in_stream = saved;
        if (rc)
            break;
    }
    if (!rc && r < 0)
        rc = cdc_fail(src->err, sizeof src->err, CDC_EIO,
                      "cannot read back streamed transaction %u", xid);
    spill_finish(src->spill, xid);
    if (rc)
        return rc;
    return commit_txn(src, m->commit.end_lsn);
}

/* Handles one pgoutput message.  Inside a stream block (and while replaying
 * one) data messages belong to the streamed transaction. */
static int handle_payload(struct pgsrc *src, const uint8_t *p, size_t len)
{
    struct pgo_msg m;
    int rc = pgo_parse(p, len, src->in_stream, &m, src->err, sizeof src->err);
    if (rc)
        return rc;
    bool data_msg = m.type == PGO_RELATION || m.type == PGO_TYPE || m.type == PGO_INSERT ||
                    m.type == PGO_UPDATE || m.type == PGO_DELETE || m.type == PGO_TRUNCATE ||
                    m.type == PGO_MESSAGE;
    if (src->in_stream && data_msg && !src->in_txn)
        return spill_append(src->spill, src->stream_xid, m.xid, src->msg_lsn, p, len, src->err,
                            sizeof src->err);

    switch (m.type) {
    case PGO_BEGIN:
        begin_txn(src, m.begin.xid, m.begin.final_lsn, m.begin.commit_ts);
        return 0;
    case PGO_COMMIT:
        if (!src->in_txn)
            return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                            "pgoutput sent Commit without Begin");
        return commit_txn(src, m.commit.end_lsn);
    case PGO_RELATION:
        return relcache_update(src->rels, src->conn, &m, src->err, sizeof src->err);
    case PGO_TYPE:
    case PGO_ORIGIN:
        return 0;
    case PGO_INSERT:
    case PGO_UPDATE:
    case PGO_DELETE:
        return on_change(src, &m);
    case PGO_TRUNCATE:
        return on_truncate(src, &m);
    case PGO_MESSAGE:
        return on_message(src, &m);
    case PGO_STREAM_START:
        src->in_stream = true;
        src->stream_xid = m.xid;
        return 0;
    case PGO_STREAM_STOP:
        src->in_stream = false;
        return 0;
    case PGO_STREAM_COMMIT:
        return replay_stream(src, &m);
    case PGO_STREAM_ABORT:
        spill_abort(src->spill, m.xid, m.stream_abort.subxid);
        return 0;
    }
    return 0;
}

/* One CopyData frame: XLogData ('w') or primary keepalive ('k'). */
static int handle_frame(struct pgsrc *src, const uint8_t *buf, size_t len)
{
    if (len < 1)
        return 0;
    if (buf[0] == 'w') {
        /* Byte1('w'), Int64 dataStart, Int64 walEnd, Int64 sendTime, payload */
        if (len < 25)
            return cdc_fail(src->err, sizeof src->err, CDC_EINVAL, "short XLogData frame");
        src->msg_lsn = pgo_get_u64(buf + 1);
        src->n_bytes += len - 25;
        return handle_payload(src, buf + 25, len - 25);
    }
    if (buf[0] == 'k') {
        /* Byte1('k'), Int64 walEnd, Int64 sendTime, Byte1 reply requested */
        if (len < 18)
            return cdc_fail(src->err, sizeof src->err, CDC_EINVAL, "short keepalive frame");
        uint64_t wal_end = pgo_get_u64(buf + 1);
        /* Outside a transaction everything the server has decoded up to
         * wal_end was sent: that position can be confirmed once what came
         * before it is durable, so idle or filtered tables never pin WAL. */
        if (!src->in_txn) {
            engine_commit(src->eng, src->next_seq, wal_end);
            if (wal_end > src->write_lsn)
                src->write_lsn = wal_end;
        }
        if (buf[17])
            return flush_pending(src) == CDC_ESTOP ? CDC_ESTOP : send_status(src, true);
        return 0;
    }
    return 0;
}

/* ---------- connection ---------- */

/*
 * Read coalescing.  While a backlog streams, the walsender sends one message
 * per row with its own send(); a reader asleep in poll() is woken by every
 * one of them, and on a busy machine those wake-ups cost the walsender (the
 * bottleneck: decoding runs on one core) up to half its rate.  So while more
 * than COALESCE_RATE messages a second arrive, the reader waits until
 * COALESCE_BYTES have arrived (SO_RCVLOWAT) or COALESCE_MS have passed; below
 * that rate it wakes for every byte, so a lone commit is seen at once.  The
 * rate is measured over windows of at least COALESCE_WINDOW_US.  Latency
 * cost: at most COALESCE_MS, and only while the stream is that fast.
 */
#define COALESCE_BYTES     (64 * 1024)
#define REPL_RCVBUF        (4 * 1024 * 1024) /* the kernel caps it at net.core.rmem_max */
#define COALESCE_MS        5
#define COALESCE_RATE      80000 /* messages (rows, begins, commits) per second */
#define COALESCE_WINDOW_US 20000

/* Decides, before a wait, whether to read in chunks; returns the timeout. */
static int coalesce_wait_ms(struct pgsrc *src)
{
    int64_t now = clock_mono_us();
    int64_t elapsed = now - src->window_start;
    if (src->window_start == 0) {
        src->window_start = now;
        src->window_msgs = 0;
    } else if (elapsed >= COALESCE_WINDOW_US) {
        src->coalesce = (double)src->window_msgs * 1e6 / (double)elapsed >= COALESCE_RATE;
        src->window_start = now;
        src->window_msgs = 0;
    }
    int lowat = src->coalesce ? COALESCE_BYTES : 1;
    if (src->repl_lowat != lowat) {
        int fd = PQsocket(src->repl);
        if (src->coalesce && !src->rcvbuf_fixed) {
            /* The kernel grows a receive buffer only for a reader that
             * drains it at once, which a coalescing reader does not; a
             * small window then stalls the walsender.  Fixed from here on
             * (a fixed buffer costs latency near saturation: set only once
             * a backlog shows up). */
            int rcvbuf = REPL_RCVBUF;
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
            src->rcvbuf_fixed = true;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) == 0)
            src->repl_lowat = lowat;
    }
    return src->coalesce ? COALESCE_MS : 100;
}

static void close_repl(struct pgsrc *src)
{
    if (src->repl) {
        PQfinish(src->repl);
        src->repl = NULL;
    }
    src->repl_lowat = 0;
    src->coalesce = false;
    src->rcvbuf_fixed = false;
    src->window_msgs = 0;
    src->window_start = 0;
    src->in_txn = false;
    src->in_stream = false;
    if (src->spill)
        spill_reset(src->spill);
}

static int start_streaming(struct pgsrc *src, uint64_t lsn)
{
    struct pgconn_params p;
    pgslot_params(src->cfg, true, &p);
    src->repl = pgconn_connect(&p, src->err, sizeof src->err);
    if (!src->repl)
        return CDC_ECONN;
    char *pub = xstrdup(src->cfg->source.publication_name);
    /* publication_names is a list of identifiers: quote it. */
    char *pubq = pgconn_quote_ident(pub);
    free(pub);
    char *slot = pgconn_quote_ident(src->cfg->source.slot_name);
    char lsntext[32];
    pgconn_format_lsn(lsn, lsntext, sizeof lsntext);
    /* The option value is a string literal: double the single quotes. */
    struct buf lit = BUF_INIT;
    for (const char *c = pubq; *c; c++) {
        if (*c == '\'')
            buf_putc(&lit, '\'');
        buf_putc(&lit, *c);
    }
    char *sql = xasprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '2', "
                          "publication_names '%s', streaming 'on', messages 'true')",
                          slot, lsntext, lit.p);
    free(pubq);
    free(slot);
    buf_fini(&lit);
    PGresult *res = PQexec(src->repl, sql);
    free(sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        char line[400];
        pgconn_result_error(res, line, sizeof line);
        PQclear(res);
        /* A slot in use by another process is not worth retrying quickly. */
        snprintf(src->err, sizeof src->err, "cannot start replication from slot %s: %s",
                 src->cfg->source.slot_name, line);
        close_repl(src);
        return CDC_ECONN;
    }
    PQclear(res);
    if (PQsetnonblocking(src->repl, 1) != 0) {
        pgconn_error(src->repl, src->err, sizeof src->err);
        close_repl(src);
        return CDC_ECONN;
    }
    src->sent_flush = 0;
    src->last_status_us = 0;
    log_info("source.streaming", "slot=%s from=%s", src->cfg->source.slot_name, lsntext);
    return 0;
}

/* Waits until the replication socket is readable or timeout_ms passes. */
static void wait_socket(PGconn *conn, int timeout_ms)
{
    struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
    if (PQflush(conn) > 0)
        pfd.events |= POLLOUT;
    poll(&pfd, 1, timeout_ms);
}

static int ensure_sql_conn(struct pgsrc *src)
{
    if (src->conn && PQstatus(src->conn) == CONNECTION_OK)
        return 0;
    if (src->conn)
        PQfinish(src->conn);
    struct pgconn_params p;
    pgslot_params(src->cfg, false, &p);
    src->conn = pgconn_connect(&p, src->err, sizeof src->err);
    return src->conn ? 0 : CDC_ECONN;
}

static void heartbeat(struct pgsrc *src)
{
    double every = src->cfg->source.heartbeat_interval_seconds;
    if (every <= 0)
        return;
    int64_t now = clock_mono_us();
    if (now < src->next_heartbeat_us)
        return;
    src->next_heartbeat_us = now + (int64_t)(every * 1e6);
    char e[256];
    if (ensure_sql_conn(src) != 0)
        return;
    PGresult *res =
        pgconn_exec(src->conn, e, sizeof e,
                    "SELECT pg_logical_emit_message(false, '" HEARTBEAT_PREFIX "', '')", 0, NULL);
    if (!res)
        log_warn("source.heartbeat_failed", "error=%s", log_q(e));
    PQclear(res);
}

/* ---------- public ---------- */

/* Creates the slot; with export, keeps the connection that exported the
 * snapshot open for the snapshot readers. */
static int create_slot(struct pgsrc *src, bool export_snapshot, char *err, size_t errlen)
{
    struct pgconn_params rp;
    pgslot_params(src->cfg, true, &rp);
    PGconn *repl = pgconn_connect(&rp, err, errlen);
    if (!repl)
        return CDC_ECONN;
    int rc = pgslot_create(repl, src->cfg, export_snapshot, &src->start_lsn,
                           export_snapshot ? &src->snap_name : NULL, err, errlen);
    if (rc || !export_snapshot)
        PQfinish(repl);
    else
        src->snap_exporter = repl;
    if (!rc)
        log_info("source.slot_created", "slot=%s lsn=%X/%X snapshot=%s", src->cfg->source.slot_name,
                 (unsigned)(src->start_lsn >> 32), (unsigned)src->start_lsn,
                 src->snap_name ? src->snap_name : "none");
    return rc;
}

static int drop_slot(struct pgsrc *src, char *err, size_t errlen)
{
    const char *params[1] = {src->cfg->source.slot_name};
    char e[512];
    PGresult *res =
        pgconn_exec(src->conn, e, sizeof e, "SELECT pg_drop_replication_slot($1)", 1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ERR, "source: cannot drop slot %s: %s",
                        src->cfg->source.slot_name, e);
    PQclear(res);
    return 0;
}

/* Decides, from the slot and the recorded snapshot state, whether an initial
 * snapshot must run before streaming, and prepares it:
 *   recorded as running  -> resume it (no exported snapshot: see snapshot.h);
 *   never taken          -> create the slot exporting a snapshot (an existing
 *                           slot nobody snapshotted for is recreated, so the
 *                           snapshot and the stream meet exactly);
 *   when_needed          -> only when the slot is missing or lost. */
static int prepare_snapshot(struct pgsrc *src, const struct pgslot_info *info, char *err,
                            size_t errlen)
{
    const struct config *cfg = src->cfg;
    enum snapshot_mode mode = cfg->source.snapshot_mode;
    char *state = NULL;
    int rc = store_kv_get(src->store, SNAP_KEY_INITIAL, &state, err, errlen);
    if (rc)
        return rc;
    bool running = state && strncmp(state, "running ", 8) == 0;
    bool done = state && strncmp(state, "done ", 5) == 0;
    bool slot_ok = info->exists && !info->lost;
    bool want = false;
    switch (mode) {
    case SNAPSHOT_NEVER:
    case SNAPSHOT_NO_DATA:
        break;
    case SNAPSHOT_INITIAL:
    case SNAPSHOT_INITIAL_ONLY:
        want = !done || !slot_ok;
        break;
    case SNAPSHOT_WHEN_NEEDED:
        want = running || !slot_ok;
        break;
    }
    if (running && slot_ok && want) {
        char id[64];
        unsigned long long lsn = 0;
        if (sscanf(state + 8, "%63s %llu", id, &lsn) == 2) {
            src->snap_id = xstrdup(id);
            src->start_lsn = lsn;
            free(state);
            log_info("source.snapshot_resume", "id=%s", src->snap_id);
            return 0;
        }
    }
    free(state);
    if (info->exists && (want || info->lost)) {
        log_info("source.slot_recreate", "slot=%s reason=%s", cfg->source.slot_name,
                 info->lost ? "lost" : "no snapshot was taken for it");
        if ((rc = drop_slot(src, err, errlen)))
            return rc;
    }
    if (!info->exists || want || info->lost) {
        if ((rc = create_slot(src, want, err, errlen)))
            return rc;
    } else {
        src->start_lsn = info->confirmed_flush;
    }
    if (mode == SNAPSHOT_NO_DATA) {
        /* Schema only: every table counts as snapshotted, now and when added
         * later, so switching to another mode does not read old rows. */
        for (size_t i = 0; i < cfg->source.ntables && !rc; i++) {
            char *key = xasprintf("%s%s", SNAP_KEY_TABLE, cfg->source.tables[i]);
            rc = store_kv_put(src->store, key, "no_data", err, errlen);
            free(key);
        }
        if (rc || done)
            return rc;
        char v[64];
        snprintf(v, sizeof v, "done none %llu", (unsigned long long)src->start_lsn);
        return store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
    }
    if (!want)
        return 0;
    char v[96];
    src->snap_id = xasprintf("%X_%X", (unsigned)(src->start_lsn >> 32), (unsigned)src->start_lsn);
    snprintf(v, sizeof v, "running %s %llu", src->snap_id, (unsigned long long)src->start_lsn);
    return store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
}

/* Tables added to source.tables after the initial snapshot get an
 * incremental one, when the snapshot mode asks for snapshots. */
static int queue_new_tables(struct pgsrc *src, char *err, size_t errlen)
{
    enum snapshot_mode mode = src->cfg->source.snapshot_mode;
    if (src->snap_id || (mode != SNAPSHOT_INITIAL && mode != SNAPSHOT_WHEN_NEEDED))
        return 0;
    for (size_t i = 0; i < src->cfg->source.ntables; i++) {
        char *key = xasprintf("%s%s", SNAP_KEY_TABLE, src->cfg->source.tables[i]);
        char *v = NULL;
        int rc = store_kv_get(src->store, key, &v, err, errlen);
        free(key);
        if (rc)
            return rc;
        if (!v)
            rc = isnap_request(src->isnap, &src->cfg->source.tables[i], 1, err, errlen);
        free(v);
        if (rc)
            return rc;
    }
    return 0;
}

int pgsrc_open(struct pgsrc **out, const struct config *cfg, struct store *store, char *err,
               size_t errlen)
{
    *out = NULL;
    struct pgsrc *src = xcalloc(1, sizeof *src);
    pthread_mutex_init(&src->mu, NULL);
    pthread_mutex_init(&src->emit_mu, NULL);
    src->cfg = cfg;
    src->store = store;
    src->pend = xmalloc(PUSH_BATCH * sizeof *src->pend);
    int rc;
    struct pgconn_params p;
    pgslot_params(cfg, false, &p);
    src->conn = pgconn_connect(&p, err, errlen);
    if (!src->conn) {
        rc = CDC_ECONN;
        goto fail;
    }
    if ((rc = pgslot_check_server(src->conn, err, errlen)) ||
        (rc = pgslot_check_tables(src->conn, cfg, err, errlen)))
        goto fail;
    /* The signal table carries snapshot requests and watermarks through the
     * stream; without it (no permission) incremental snapshots are off. */
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : ISNAP_DEFAULT_SIGNAL_TABLE;
    char *sig_schema = NULL, *sig_name = NULL;
    bool have_signal =
        config_split_table(sig, &sig_schema, &sig_name) == 0 &&
        pgslot_ensure_signal_table(src->conn, sig_schema, sig_name, err, errlen) == 0;
    free(sig_schema);
    free(sig_name);
    if (!have_signal)
        log_warn("source.no_signal_table", "table=%s error=%s hint=%s", log_q(sig), log_q(err),
                 log_q("incremental snapshots are unavailable"));
    const char *action;
    if ((rc = pgslot_ensure_publication(src->conn, cfg, have_signal ? sig : NULL, &action, err,
                                        errlen)))
        goto fail;
    if (strcmp(action, "unchanged") != 0)
        log_info("source.publication", "name=%s action=%s", cfg->source.publication_name, action);
    struct pgslot_info info;
    if ((rc = pgslot_get(src->conn, cfg, &info, err, errlen)))
        goto fail;
    if ((rc = prepare_snapshot(src, &info, err, errlen)))
        goto fail;
    src->rels = relcache_new(cfg);
    if (have_signal) {
        if ((rc = isnap_open(&src->isnap, cfg, store, src->rels, err, errlen)))
            goto fail;
        if ((rc = queue_new_tables(src, err, errlen)))
            goto fail;
    }
    char *dir = xasprintf("%s/%s/spill", cfg->platform.state_dir, cfg->pipeline_id);
    rc = spill_new(&src->spill, dir, err, errlen);
    free(dir);
    if (rc)
        goto fail;
    src->last_commit_end = src->start_lsn;
    src->write_lsn = src->start_lsn;
    *out = src;
    return 0;
fail:
    pgsrc_close(src);
    return rc;
}

/* Snapshot readers push through here: one at a time, with seqs from the same
 * counter the stream uses. */
static int snap_emit(void *arg, struct cdc_event **evs, size_t n, uint64_t *last_seq)
{
    struct pgsrc *src = arg;
    pthread_mutex_lock(&src->emit_mu);
    for (size_t i = 0; i < n; i++) {
        evs[i]->seq = ++src->next_seq;
        engine_route(src->eng, evs[i]);
    }
    src->n_events += n;
    *last_seq = evs[n - 1]->seq;
    int rc = push_events(src, evs, n, false);
    pthread_mutex_unlock(&src->emit_mu);
    return rc;
}

/* Runs (or finishes) the initial snapshot before streaming starts. */
static int run_snapshot(struct pgsrc *src, char *err, size_t errlen)
{
    const struct config *cfg = src->cfg;
    struct snap_ctx ctx = {
        .cfg = cfg,
        .eng = src->eng,
        .store = src->store,
        .rels = src->rels,
        .snapshot_name = src->snap_name,
        .lsn = src->start_lsn,
        .stop = src->opts->stop,
        .emit = snap_emit,
        .emit_arg = src,
    };
    int rc = snap_initial(&ctx, src->snap_id, cfg->source.tables, cfg->source.ntables, err, errlen);
    /* The readers have imported the snapshot (or failed): the exporting
     * connection may go. */
    if (src->snap_exporter) {
        PQfinish(src->snap_exporter);
        src->snap_exporter = NULL;
    }
    if (rc)
        return rc;
    char v[96];
    snprintf(v, sizeof v, "done %s %llu", src->snap_id, (unsigned long long)src->start_lsn);
    rc = store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
    return rc ? rc : load_folds(src, src->snap_id, err, errlen);
}

uint64_t pgsrc_start_lsn(const struct pgsrc *src)
{
    return src->start_lsn;
}

/* Between transactions, when the stream is idle: record incremental chunks
 * every sink holds, and start the next one. */
static int incremental_step(struct pgsrc *src)
{
    uint64_t ids[64];
    size_t n;
    while ((n = engine_take_marks(src->eng, ids, 64)) > 0)
        if (isnap_marks_done(src->isnap, ids, n, src->err, sizeof src->err) != 0)
            return CDC_EIO;
    if (src->in_txn || !isnap_active(src->isnap))
        return 0;
    if (ensure_sql_conn(src) != 0)
        return CDC_ECONN;
    int rc = isnap_step(src->isnap, src->conn, src->err, sizeof src->err);
    return rc == CDC_EINVAL ? 0 : rc;
}

/* Serves a sink's rewind request: restart the stream from the confirmed
 * position and mark the restart in the log. */
static int do_rewind(struct pgsrc *src, uint32_t gen, uint64_t *restart)
{
    int rc = flush_pending(src);
    if (rc)
        return rc;
    *restart = engine_rewind(src->eng, gen);
    close_repl(src);
    if (src->isnap)
        isnap_rewind(src->isnap);
    struct cdc_event *ev = cdc_event_new(0, 0, 0);
    ev->op = CDC_OP_REWIND;
    ev->rewind_gen = gen;
    rc = emit(src, ev);
    if (!rc)
        rc = flush_pending(src);
    src->last_commit_end = *restart;
    log_info("source.rewind", "generation=%u from=%X/%X", gen, (unsigned)(*restart >> 32),
             (unsigned)*restart);
    return rc;
}

int pgsrc_run(struct pgsrc *src, struct engine *eng, const struct pgsrc_opts *opts, char *err,
              size_t errlen)
{
    src->eng = eng;
    src->opts = opts;
    uint64_t from = src->start_lsn;
    int64_t backoff_us = 0;
    int rc = 0;
    if (!src->snap_id) {
        /* Rebuilt tables' rules outlive the snapshot until the stream passes
         * them: load those of the last initial snapshot. */
        char *state = NULL;
        char id[64];
        if (store_kv_get(src->store, SNAP_KEY_INITIAL, &state, err, errlen) == 0 && state &&
            sscanf(state, "done %63s", id) == 1 && strcmp(id, "none") != 0)
            rc = load_folds(src, id, err, errlen);
        free(state);
        if (rc)
            return rc;
    }
    if (src->snap_id) {
        rc = run_snapshot(src, err, errlen);
        if (rc == CDC_ESTOP)
            return 0;
        if (rc)
            return rc;
        if (src->cfg->source.snapshot_mode == SNAPSHOT_INITIAL_ONLY) {
            log_info("source.snapshot_only", "hint=%s",
                     log_q("snapshot_mode initial_only: stopping without streaming"));
            return 0;
        }
    }
    uint64_t frames = 0, steps = 0;
    int64_t last_step_us = 0;
    bool idle = true;

    while (!stop_requested(src)) {
        if (!src->repl) {
            if (backoff_us) {
                for (int64_t t = 0; t < backoff_us && !stop_requested(src); t += 100000)
                    clock_sleep_us(100000);
                if (stop_requested(src))
                    break;
            }
            rc = start_streaming(src, from);
            if (rc && !src->ever_streamed) {
                /* The first start fails fast: a misconfiguration (no
                 * replication permission, slot in use) will not heal. */
                cdc_fail(err, errlen, rc, "source: %s", src->err);
                break;
            }
            if (rc) {
                backoff_us = backoff_us ? backoff_us * 2 : 1000000;
                if (backoff_us > 30000000)
                    backoff_us = 30000000;
                src->n_reconnects++;
                log_warn("source.reconnect", "in_seconds=%.1f error=%s", backoff_us / 1e6,
                         log_q(src->err));
                publish_stats(src);
                continue;
            }
            backoff_us = 0;
            src->ever_streamed = true;
        }
        uint32_t gen;
        if (engine_rewind_wanted(eng, &gen)) {
            rc = do_rewind(src, gen, &from);
            if (rc == CDC_ESTOP)
                break;
            continue;
        }
        if (opts->stop_at_lsn && (++frames % 4096 == 0 || idle) &&
            engine_confirmed(eng) >= opts->stop_at_lsn) {
            log_info("source.stop_lsn_reached", "lsn=%X/%X", (unsigned)(opts->stop_at_lsn >> 32),
                     (unsigned)opts->stop_at_lsn);
            break;
        }

        if (opts->paused && atomic_load(opts->paused)) {
            /* Paused: read nothing, but keep confirming what sinks finish
             * and keep the server from timing us out. */
            rc = flush_pending(src);
            if (!rc)
                rc = send_status(src, false);
            src->stats_paused = true;
            publish_stats(src);
            if (rc == CDC_ESTOP)
                break;
            clock_sleep_us(50000);
            continue;
        }
        src->stats_paused = false;
        char *buf = NULL;
        int n = PQgetCopyData(src->repl, &buf, 1);
        idle = n == 0;
        if (n > 0) {
            src->window_msgs++;
            rc = handle_frame(src, (const uint8_t *)buf, (size_t)n);
            PQfreemem(buf);
            /* A busy stream is rarely idle: step snapshots between
             * transactions now and then too. */
            if (!rc && src->isnap && !src->in_txn && ++steps % 256 == 0 &&
                clock_mono_us() - last_step_us > 200000) {
                last_step_us = clock_mono_us();
                rc = flush_pending(src);
                if (!rc)
                    rc = incremental_step(src);
            }
        } else if (n == 0) {
            rc = flush_pending(src);
            if (!rc)
                rc = send_status(src, false);
            if (!rc && src->isnap)
                rc = incremental_step(src);
            heartbeat(src);
            publish_stats(src);
            if (!rc) {
                wait_socket(src->repl, coalesce_wait_ms(src));
                if (PQconsumeInput(src->repl) == 0) {
                    pgconn_error(src->repl, src->err, sizeof src->err);
                    rc = CDC_ECONN;
                }
            }
        } else {
            if (n == -1) {
                PGresult *res = PQgetResult(src->repl);
                if (PQresultStatus(res) == PGRES_COMMAND_OK)
                    snprintf(src->err, sizeof src->err, "the server ended replication");
                else
                    pgconn_result_error(res, src->err, sizeof src->err);
                PQclear(res);
            } else {
                pgconn_error(src->repl, src->err, sizeof src->err);
            }
            rc = CDC_ECONN;
        }
        if (rc == CDC_ESTOP) {
            rc = 0;
            break;
        }
        if (rc == CDC_ECONN || rc == CDC_EIO) {
            /* Connection lost (or the side connection for catalog lookups):
             * resume after the newest transaction already in the log; sinks
             * skip whatever part of a transaction they already have. */
            if (flush_pending(src) == CDC_ESTOP)
                break;
            log_warn("source.connection_lost", "error=%s", log_q(src->err));
            close_repl(src);
            if (src->conn && PQstatus(src->conn) != CONNECTION_OK)
                ensure_sql_conn(src);
            uint64_t confirmed = engine_confirmed(eng);
            from = src->last_commit_end > confirmed ? src->last_commit_end : confirmed;
            backoff_us = 1000000;
            src->n_reconnects++;
            rc = 0;
            continue;
        }
        if (rc) {
            cdc_fail(err, errlen, rc, "source: %s", src->err);
            break;
        }
    }
    if (rc == 0 && src->npend)
        flush_pending(src);
    publish_stats(src);
    return rc;
}

void pgsrc_finish(struct pgsrc *src, struct engine *eng)
{
    src->eng = eng;
    if (!src->repl)
        return;
    if (send_status(src, true) == 0) {
        /* End the copy and wait briefly for the server to finish, so the
         * final position is processed before we disconnect. */
        PQsetnonblocking(src->repl, 0);
        if (PQputCopyEnd(src->repl, NULL) == 1) {
            int64_t deadline = clock_mono_us() + 3000000;
            for (;;) {
                char *buf = NULL;
                int n = PQgetCopyData(src->repl, &buf, 1);
                if (buf)
                    PQfreemem(buf);
                if (n < 0 || clock_mono_us() > deadline)
                    break;
                if (n == 0) {
                    wait_socket(src->repl, 100);
                    if (!PQconsumeInput(src->repl))
                        break;
                }
            }
            PGresult *res;
            while ((res = PQgetResult(src->repl)))
                PQclear(res);
        }
    }
    uint64_t c = src->sent_flush;
    log_info("source.stopped", "confirmed=%X/%X", (unsigned)(c >> 32), (unsigned)c);
    publish_stats(src);
    close_repl(src);
}

void pgsrc_get_stats(struct pgsrc *src, struct pgsrc_stats *st)
{
    pthread_mutex_lock(&src->mu);
    *st = src->stats;
    pthread_mutex_unlock(&src->mu);
}

void pgsrc_close(struct pgsrc *src)
{
    if (!src)
        return;
    close_repl(src);
    if (src->conn)
        PQfinish(src->conn);
    for (size_t i = 0; i < src->npend; i++)
        cdc_event_unref(src->pend[i]);
    isnap_free(src->isnap);
    free_folds(src);
    relcache_free(src->rels);
    spill_free(src->spill);
    if (src->snap_exporter)
        PQfinish(src->snap_exporter);
    free(src->snap_id);
    free(src->snap_name);
    pthread_mutex_destroy(&src->emit_mu);
    free(src->counts);
    free(src->pend);
    pthread_mutex_destroy(&src->mu);
    free(src);
}
