/* PostgreSQL source: pgoutput messages to events (transactions, streamed
 * transactions, snapshot signals), emitted through the driver's emitter. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/pgoutput.h"
#include "source/pg/pgsrc_int.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* ---------- decoding ---------- */

static uint32_t table_order(struct pgsrc *src, uint64_t relid)
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
    if (n == 0)
        cdc_event_empty_rows(ev, with_before, with_after);
    ev->op = (uint8_t)op;
    if (tab) {
        ev->tab = cdc_refbank_take(&src->tab_refs, tab);
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

/* Copies a tuple's values into vals/ev->data.  ev->data may be the frame the
 * tuple is in (see adopt_frame): values then move towards its start, never
 * past what is still to be read (each value drops a header of 5 bytes and
 * gains a NUL), hence memmove. */
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
            memmove(ev->data + ev->data_len, col.data, col.len);
            ev->data[ev->data_len + col.len] = '\0';
            ev->data_len += col.len + 1;
            break;
        }
    }
    return 0;
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
    /* Where it is in the stream: a chunk closed by it goes out here. */
    ev->pos.lsn = src->commit_lsn;
    ev->lsn = src->msg_lsn;
    ev->xid = src->xid;
    int rc = fill_row(src, ev, tab, &m->change.new, ev->after);
    if (rc == 0)
        rc = isnap_on_signal(src->isnap, src->em, ev);
    cdc_event_unref(ev);
    return rc;
}

static bool is_signal_table(const struct pgsrc *src, const struct cdc_table *tab)
{
    return src->isnap && strcmp(tab->schema, src->sig_schema) == 0 &&
           strcmp(tab->name, src->sig_name) == 0;
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

void pgsrc_free_folds(struct pgsrc *src)
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
int pgsrc_load_folds(struct pgsrc *src, const char *id, char *err, size_t errlen)
{
    pgsrc_free_folds(src);
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

/* Rows this large are decoded in place in the frame that carried them
 * instead of into a copy: one copy of a huge value less at the peak. */
#define ADOPT_FRAME_BYTES (1u << 20)

/* Lets ev take over the current frame when t's values are in it. */
static bool adopt_frame(struct pgsrc *src, struct cdc_event *ev, const struct pgo_tuple *t)
{
    const char *p = (const char *)t->p;
    if (!src->frame || p < src->frame || p >= src->frame + src->frame_len)
        return false;
    ev->data = src->frame;
    ev->data_free = PQfreemem;
    uint64_t size = (uint64_t)ev->size + src->frame_len;
    ev->size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    src->frame = NULL;
    return true;
}

/* max_event_bytes: a row past it stops the pipeline (nothing after it is
 * confirmed, so nothing is lost; raising the limit lets it through). */
static int check_row_size(struct pgsrc *src, const struct cdc_table *tab, size_t bytes)
{
    int64_t max = src->cfg->platform.max_event_bytes;
    if (max <= 0 || bytes <= (uint64_t)max)
        return 0;
    return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                    "table %s.%s: a change of %zu bytes exceeds max_event_bytes (%lld); cdc stops "
                    "before it (nothing after it is confirmed): raise max_event_bytes in "
                    "platform.yaml to let it through (a row needs about three times its size in "
                    "memory)",
                    tab->schema, tab->name, bytes, (long long)max);
}

static int on_change(struct pgsrc *src, const struct pgo_msg *m)
{
    bool captured = false;
    struct cdc_table *tab = relcache_get(src->rels, m->change.relid, &captured);
    if (!tab)
        return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                        "pgoutput sent a change for relation %u before describing it",
                        m->change.relid);
    if (!captured && relcache_problem(src->rels, m->change.relid))
        return cdc_fail(src->err, sizeof src->err, CDC_EINVAL, "%s",
                        relcache_problem(src->rels, m->change.relid));
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
    int rc = check_row_size(src, tab, cap);
    if (rc)
        return rc;
    int op = m->type == PGO_INSERT   ? CDC_OP_INSERT
             : m->type == PGO_UPDATE ? CDC_OP_UPDATE
                                     : CDC_OP_DELETE;
    bool big = cap >= ADOPT_FRAME_BYTES && src->frame;
    struct cdc_event *ev = new_change(src, op, tab, before, after, big ? 0 : cap);
    if (big && !adopt_frame(src, ev, before ? &m->change.old : &m->change.new)) {
        cdc_event_unref(ev);
        ev = new_change(src, op, tab, before, after, cap);
    }
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
    return emitter_event(src->em, ev);
}

/* Whether an earlier relation of the truncate is captured as the same table
 * (partitions published under their own names map to one table). */
static bool truncated_before(struct pgsrc *src, const struct pgo_msg *m, uint32_t i,
                             const struct cdc_table *tab)
{
    for (uint32_t j = 0; j < i; j++) {
        bool captured = false;
        const struct cdc_table *t = relcache_get(src->rels, pgo_truncate_relid(m, j), &captured);
        if (t && captured && t->id == tab->id)
            return true;
    }
    return false;
}

/* A TRUNCATE of partitions published under their own names is a truncate of
 * the captured partitioned table only when it covers all its partitions;
 * emptying some of them has no form as a change of that table, and emitting
 * it as a truncate of the table would empty the other partitions in every
 * destination.  Stops the pipeline then. */
static int check_partition_truncate(struct pgsrc *src, const struct pgo_msg *m)
{
    for (uint32_t i = 0; i < m->truncate.nrels; i++) {
        uint32_t relid = pgo_truncate_relid(m, i);
        bool captured = false;
        const struct cdc_table *tab = relcache_get(src->rels, relid, &captured);
        if (!tab || !captured || tab->id == relid || truncated_before(src, m, i, tab))
            continue;
        uint32_t n = 0;
        for (uint32_t j = i; j < m->truncate.nrels; j++) {
            bool c = false;
            const struct cdc_table *t = relcache_get(src->rels, pgo_truncate_relid(m, j), &c);
            n += t && c && t->id == tab->id;
        }
        if (pgsrc_ensure_sql_conn(src) != 0)
            return CDC_ECONN;
        char root[24], e[512];
        snprintf(root, sizeof root, "%" PRIu64, tab->id);
        const char *params[1] = {root};
        PGresult *res =
            pgconn_exec(src->conn, e, sizeof e,
                        "SELECT count(*) FROM pg_partition_tree($1::oid) WHERE isleaf", 1, params);
        if (!res)
            return cdc_fail(src->err, sizeof src->err, CDC_ECONN,
                            "partition lookup for %s.%s failed: %s", tab->schema, tab->name, e);
        long leaves = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if ((long)n < leaves)
            return cdc_fail(src->err, sizeof src->err, CDC_EINVAL,
                            "a TRUNCATE emptied %u of the %ld partitions of %s.%s, which has no "
                            "form as a change of %s.%s (publication %s sends partitions under "
                            "their own names); cdc stops rather than lose it.  To go on: cdc "
                            "undeploy --yes, then run with snapshot_mode when_needed (the "
                            "tables are read again, and the new publication publishes "
                            "partitions under their table's name)",
                            n, leaves, tab->schema, tab->name, tab->schema, tab->name,
                            src->cfg->source.publication_name);
    }
    return 0;
}

/* One TRUNCATE statement: an event per captured table, consecutive, each
 * carrying the statement's options and the names of all of them, so a mirror
 * can truncate them together as the source did (tables linked by foreign
 * keys cannot be truncated one by one). */
static int on_truncate(struct pgsrc *src, const struct pgo_msg *m)
{
    int prc = check_partition_truncate(src, m);
    if (prc)
        return prc;
    struct cdc_table **tabs = xcalloc(m->truncate.nrels ? m->truncate.nrels : 1, sizeof *tabs);
    uint32_t n = 0;
    struct buf names = BUF_INIT;
    int rc = 0;
    for (uint32_t i = 0; i < m->truncate.nrels && n < UINT16_MAX; i++) {
        bool captured = false;
        struct cdc_table *tab = relcache_get(src->rels, pgo_truncate_relid(m, i), &captured);
        if (tab && !captured && relcache_problem(src->rels, pgo_truncate_relid(m, i))) {
            rc = cdc_fail(src->err, sizeof src->err, CDC_EINVAL, "%s",
                          relcache_problem(src->rels, pgo_truncate_relid(m, i)));
            break;
        }
        if (!tab || !captured || (src->nfolds && folded(src, tab)) ||
            truncated_before(src, m, i, tab))
            continue;
        tabs[n++] = tab;
        buf_put(&names, tab->schema, strlen(tab->schema) + 1);
        buf_put(&names, tab->name, strlen(tab->name) + 1);
    }
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        struct cdc_event *ev = new_change(src, CDC_OP_TRUNCATE, tabs[i], false, false, names.len);
        ev->trunc_opts = m->truncate.options & (CDC_TRUNC_CASCADE | CDC_TRUNC_RESTART_IDENTITY);
        ev->trunc_index = (uint16_t)i;
        ev->trunc_count = (uint16_t)n;
        memcpy(ev->data, names.p, names.len);
        ev->data_len = (uint32_t)names.len;
        if (src->isnap)
            isnap_on_change(src->isnap, ev);
        rc = emitter_event(src->em, ev);
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
    ev->pos = (struct cdc_pos){src->commit_lsn, CDC_POS_TXN_END, 0};
    ev->end_lsn = end_lsn;
    ev->xid = src->xid;
    ev->commit_ts = src->commit_ts;
    ev->total_order = (uint32_t)src->next_idx; /* events in the transaction */
    src->in_txn = false;
    if (end_lsn > src->write_lsn)
        src->write_lsn = end_lsn;
    return emitter_commit(src->em, ev);
}

static int on_message(struct pgsrc *src, const struct pgo_msg *m)
{
    bool heartbeat = strcmp(m->message.prefix, HEARTBEAT_PREFIX) == 0;
    bool transactional = (m->message.flags & 1) != 0;
    if (heartbeat) {
        if (!src->in_txn)
            emitter_keepalive(src->em, 0, m->message.lsn);
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
    int rc = emitter_event(src->em, ev);
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
int pgsrc_handle_frame(struct pgsrc *src, const uint8_t *buf, size_t len)
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
            emitter_keepalive(src->em, 0, wal_end);
            if (wal_end > src->write_lsn)
                src->write_lsn = wal_end;
        }
        if (buf[17])
            return emitter_flush(src->em) == CDC_ESTOP ? CDC_ESTOP : pgsrc_answer_keepalive(src);
        return 0;
    }
    return 0;
}
