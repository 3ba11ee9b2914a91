/* MySQL / MariaDB source: the source_ops.  The binlog is read as a replica
 * reads it (mystream.h), decoded by mydecode.h into events, and the
 * position every sink holds is stored in the state store (mysrc_int.h).
 * Reconnects, rewinds, pauses and stops are the driver's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/myjson.h"
#include "source/mysql/mysrc_int.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

#define HEARTBEAT_MS    100   /* the server says it is idle this often: polls end then */
#define POLL_MAX_EVENTS 4096  /* binlog events one poll handles before the driver looks again */
#define POLL_MAX_US     50000 /* ... or this long */
#define STORE_MIN_GAP_US                                                                           \
    100000 /* the stored position moves at most this often (except at the end) */

static struct mysrc *my(struct source *s)
{
    return s->priv;
}

/* ---------- decoder callbacks: into the emitter ---------- */

static int on_change(void *arg, struct cdc_event *ev, const struct mydecode_row *row)
{
    struct mysrc *src = arg;
    src->last_event_ts_us = row->ts_us;
    if (mysrc_is_signal(src, ev->tab)) {
        /* snapshot requests and watermarks, not a captured change */
        int rc = src->isnap ? isnap_on_signal(src->isnap, src->em, ev) : 0;
        cdc_event_unref(ev);
        return rc;
    }
    if (src->isnap)
        isnap_on_change(src->isnap, ev);
    return emitter_event(src->em, ev);
}

/* A group ended.  One without captured changes only moves the position. */
static int on_commit(void *arg, struct cdc_event *ev, const struct mydecode_txn *txn)
{
    struct mysrc *src = arg;
    struct mysrc_place p = {
        .scalar = txn->end, .pos = txn->end_pos, .gtid = (char *)txn->gtid_state};
    str_copy(p.file, sizeof p.file, txn->file);
    mysrc_pending_push(src, &p);
    src->received = txn->end;
    if (txn->ts_us)
        src->last_event_ts_us = txn->ts_us;
    if (txn->nchanges == 0) {
        cdc_event_unref(ev);
        emitter_keepalive(src->em, 0, txn->end);
        return 0;
    }
    return emitter_commit(src->em, ev);
}

/* A heartbeat outside any group: everything before (file, pos) is out. */
static int on_idle(void *arg, const char *file, uint32_t pos)
{
    struct mysrc *src = arg;
    src->idle_seen = true;
    src->last_event_ts_us = 0; /* at the server's end: nothing behind */
    uint64_t scalar = mydecode_scalar(file, pos);
    if (scalar > src->received) {
        struct mysrc_place p = {
            .scalar = scalar, .pos = pos, .gtid = (char *)mydecode_gtid_state(src->dec)};
        str_copy(p.file, sizeof p.file, file);
        mysrc_pending_push(src, &p);
        src->received = scalar;
        emitter_keepalive(src->em, 0, scalar);
    }
    return 0;
}

static const struct mydecode_ops decode_ops = {
    .change = on_change,
    .commit = on_commit,
    .idle = on_idle,
};

/* ---------- the ops ---------- */

static void close_stream(struct mysrc *src)
{
    mystream_close(src->stream);
    src->stream = NULL;
    mydecode_free(src->dec);
    src->dec = NULL;
}

static int op_open(struct source *s, char *err, size_t errlen)
{
    struct mysrc *src = xcalloc(1, sizeof *src);
    s->priv = src;
    src->cfg = s->cfg;
    src->store = s->store;
    mysrc_conn_cfg(s->cfg, &src->cc);
    int rc = mysrc_check(s->cfg, &src->srv, err, errlen);
    return rc == CDC_ENOTSUP ? CDC_EINVAL : rc;
}

/* The binlog position is gone (purged, or never stored although sinks hold
 * changes) and the snapshot mode does not read the tables again. */
static int position_gone(struct mysrc *src, uint64_t held, char *err, size_t errlen)
{
    char h[SOURCE_POS_TEXT_MAX];
    mysrc_format_pos(held, h, sizeof h);
    if (src->have_stored)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "source: the server no longer has binlog %s, where this pipeline resumes "
                        "(position %s:%u, gtid %s): it was purged, and the changes made since "
                        "are gone from the binlog.  cdc stops rather than skip them.  To read the "
                        "tables again, set source.snapshot_mode to when_needed; to accept the "
                        "gap, run cdc undeploy --yes, then start again",
                        src->stored.file, src->stored.file, src->stored.pos,
                        src->stored.gtid[0] ? src->stored.gtid : "none");
    return cdc_fail(err, errlen, CDC_EINVAL,
                    "source: the state store has no binlog position, but the sinks hold changes "
                    "up to %s: the changes made since are not known to be in the binlog.  cdc "
                    "stops rather than skip them.  To read the tables again, set "
                    "source.snapshot_mode to when_needed; to accept the gap, clear the sinks",
                    h);
}

/* No snapshot: every table counts as read (snapshot_mode no_data). */
static int mark_no_data(struct mysrc *src, bool done, char *err, size_t errlen)
{
    const struct config *cfg = src->cfg;
    int rc = 0;
    for (size_t i = 0; i < cfg->source.ntables && !rc; i++) {
        char *key = xasprintf("%s%s", SNAP_KEY_TABLE, cfg->source.tables[i]);
        rc = store_kv_put(src->store, key, "no_data", err, errlen);
        free(key);
    }
    if (rc || done)
        return rc;
    char v[64];
    snprintf(v, sizeof v, "done none %llu", (unsigned long long)src->start.scalar);
    return store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen);
}

/* Decides where streaming starts and whether an initial snapshot runs first
 * (as for PostgreSQL, a binlog position standing for the slot):
 *   initial, initial_only  unless one was done and the position is usable;
 *   when_needed            when the position is missing or purged, or a
 *                          snapshot was left unfinished;
 *   never, no_data         never.
 * A snapshot recorded as running resumes, streaming from the position
 * stored when it began. */
static int op_prepare(struct source *s, const struct cdc_posmap *held, struct cdc_acks *start,
                      char *err, size_t errlen)
{
    struct mysrc *src = my(s);
    const struct config *cfg = s->cfg;
    const struct cdc_pos *h = cdc_posmap_get(held, 0);
    uint64_t held_lsn = h ? h->lsn : 0;
    char *state = NULL;
    int rc = mysrc_load_position(src, err, errlen);
    if (!rc)
        rc = store_kv_get(src->store, SNAP_KEY_INITIAL, &state, err, errlen);
    bool pos_ok = false;
    if (!rc && src->have_stored)
        rc = mysrc_has_binlog(&src->cc, src->stored.file, &pos_ok, err, errlen);
    if (rc)
        goto out;
    bool running = state && strncmp(state, "running ", 8) == 0;
    bool done = state && strncmp(state, "done ", 5) == 0;
    bool want = false;
    switch (cfg->source.snapshot_mode) {
    case SNAPSHOT_NEVER:
    case SNAPSHOT_NO_DATA:
        break;
    case SNAPSHOT_INITIAL:
    case SNAPSHOT_INITIAL_ONLY:
        want = !done || !pos_ok;
        break;
    case SNAPSHOT_WHEN_NEEDED:
        want = running || !pos_ok;
        break;
    }
    bool history = src->have_stored || held_lsn != 0;
    if (history && !pos_ok) {
        if (!want) {
            rc = position_gone(src, held_lsn, err, errlen);
            goto out;
        }
        log_warn("source.position_missing", "stored=%s hint=%s",
                 src->have_stored ? src->stored.file : "none",
                 log_q("the pipeline streamed before: every table is read again (snapshot_mode)"));
    }
    char id[64];
    if (want && running && pos_ok && sscanf(state + 8, "%63s", id) == 1) {
        src->snap_id = xstrdup(id);
        mysrc_place_copy(&src->start, &src->stored);
        log_info("source.snapshot_resume", "id=%s", src->snap_id);
    } else if (want) {
        if ((rc = mysnap_open(&src->snap, &src->cc, err, errlen)))
            goto out;
        struct mysrc_place p = {.pos = mysnap_pos(src->snap),
                                .gtid = (char *)mysnap_gtid_state(src->snap)};
        str_copy(p.file, sizeof p.file, mysnap_file(src->snap));
        p.scalar = mydecode_scalar(p.file, p.pos);
        mysrc_place_copy(&src->start, &p);
        src->snap_id = xasprintf("%u_%u", (unsigned)(p.scalar >> 32), (unsigned)p.scalar);
        char v[128];
        snprintf(v, sizeof v, "running %s %llu", src->snap_id, (unsigned long long)p.scalar);
        if ((rc = mysrc_store_position(src, &src->start, err, errlen)) ||
            (rc = store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen)))
            goto out;
    } else if (pos_ok) {
        mysrc_place_copy(&src->start, &src->stored);
    } else if ((rc = mysrc_current_place(&src->cc, &src->start, err, errlen))) {
        goto out;
    }
    /* Sinks skip what they hold by position: a binlog numbered from 1 again
     * (RESET MASTER) would hide new changes behind old ones. */
    if (held_lsn > src->start.scalar && !(src->have_stored && pos_ok)) {
        char a[SOURCE_POS_TEXT_MAX], b[SOURCE_POS_TEXT_MAX];
        mysrc_format_pos(held_lsn, a, sizeof a);
        mysrc_format_pos(src->start.scalar, b, sizeof b);
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "source: the sinks hold changes up to binlog position %s, after where "
                      "streaming would start (%s, %s): the binlog was numbered anew (RESET "
                      "MASTER?).  Clear the sinks and the state store before starting again",
                      a, b, src->start.file);
        goto out;
    }
    if (cfg->source.snapshot_mode == SNAPSHOT_NO_DATA &&
        (rc = mark_no_data(src, done, err, errlen)))
        goto out;
    if ((rc = mysrc_isnap_prepare(src, err, errlen)))
        goto out;
    src->received = src->confirmed = src->start.scalar;
    cdc_acks_set(start, 0, src->start.scalar);
out:
    free(state);
    return rc;
}

static int op_snapshot(struct source *s, struct emitter *em, char *err, size_t errlen)
{
    struct mysrc *src = my(s);
    if (!src->snap_id)
        return 0;
    src->em = em;
    struct snap_initial_cfg c = {
        .cfg = s->cfg,
        .store = src->store,
        .em = em,
        .ops = &mysrc_snap_ops,
        .arg = src,
        .id = src->snap_id,
        .pos = src->start.scalar,
        .resumed = src->snap == NULL,
    };
    int rc = snap_initial(&c, s->cfg->source.tables, s->cfg->source.ntables, err, errlen);
    mysnap_close(src->snap); /* when no reader took it */
    src->snap = NULL;
    if (rc)
        return rc;
    char v[128];
    snprintf(v, sizeof v, "done %s %llu", src->snap_id, (unsigned long long)src->start.scalar);
    if ((rc = store_kv_put(src->store, SNAP_KEY_INITIAL, v, err, errlen)))
        return rc;
    if (s->cfg->source.snapshot_mode == SNAPSHOT_INITIAL_ONLY) {
        log_info("source.snapshot_only", "hint=%s",
                 log_q("snapshot_mode initial_only: stopping without streaming"));
        return SOURCE_SNAPSHOT_ONLY;
    }
    return 0;
}

/* Where a restart at scalar resumes: the start, the stored position, or a
 * commit emitted since. */
static const struct mysrc_place *place_of(struct mysrc *src, uint64_t scalar)
{
    if (scalar == src->start.scalar)
        return &src->start;
    if (src->have_stored && scalar == src->stored.scalar)
        return &src->stored;
    return mysrc_pending_find(src, scalar);
}

static int op_start(struct source *s, const struct cdc_ack *from, size_t n, char *err,
                    size_t errlen)
{
    struct mysrc *src = my(s);
    uint64_t scalar = n ? from[0].pos : src->start.scalar;
    const struct mysrc_place *found = place_of(src, scalar);
    struct mysrc_place at = {0};
    if (found) {
        mysrc_place_copy(&at, found);
    } else {
        /* Not a place this run saw end a group (it should not happen): the
         * file from its sequence, by position. */
        const char *base = src->start.file;
        const char *dot = strrchr(base, '.');
        at.scalar = scalar;
        snprintf(at.file, sizeof at.file, "%.*s.%06u", (int)(dot ? dot - base : 0), base,
                 (unsigned)(scalar >> 32));
        at.pos = (uint32_t)scalar;
        at.gtid = xstrdup("");
        log_warn("source.position_by_file", "file=%s pos=%u hint=%s", at.file, at.pos,
                 log_q("no GTID state known for this position: resuming by file and offset"));
    }
    mysrc_pending_drop_after(src, scalar);
    if (!mysrc_pending_find(src, scalar))
        mysrc_pending_push(src, &at);
    struct mystream_cfg sc = {.conn = &src->cc,
                              .server_id = mysrc_server_id(s->cfg),
                              .gtid_state = at.gtid,
                              .file = at.file,
                              .pos = at.pos,
                              .heartbeat_ms = HEARTBEAT_MS};
    char e[600];
    int rc = mystream_open(&src->stream, &sc, e, sizeof e);
    if (!rc) {
        /* the captured tables and the signal table */
        size_t nt = s->cfg->source.ntables;
        const char **tables = xcalloc(nt + 1, sizeof *tables);
        for (size_t i = 0; i < nt; i++)
            tables[i] = s->cfg->source.tables[i];
        if (src->sig_full)
            tables[nt++] = src->sig_full;
        struct mydecode_cfg dc = {.topic_prefix = s->cfg->topic_prefix,
                                  .tables = tables,
                                  .ntables = nt,
                                  .checksum = mystream_checksum(src->stream)};
        src->dec = mydecode_new(&dc, &decode_ops, src);
        free(tables);
        rc = mydecode_set_start(src->dec, at.file, at.pos, at.gtid, e, sizeof e);
    }
    if (!rc && !src->have_stored) {
        /* From now on the pipeline has streamed: a lost position is noticed. */
        if (mysrc_store_position(src, &at, e, sizeof e) != 0) {
            close_stream(src);
            mysrc_place_fini(&at);
            return cdc_fail(err, errlen, CDC_EIO, "state store: %s", e);
        }
    }
    if (rc) {
        close_stream(src);
        if (rc == MYSTREAM_EPURGED)
            rc = CDC_EINVAL;
        cdc_fail(err, errlen, rc, "%s", e);
    } else {
        log_info("source.streaming", "file=%s pos=%u gtid=%s by=%s server_id=%u", at.file, at.pos,
                 at.gtid[0] ? at.gtid : "none", at.gtid[0] ? "gtid" : "position", sc.server_id);
    }
    mysrc_place_fini(&at);
    return rc;
}

static int op_poll(struct source *s, struct emitter *em, int timeout_ms, char *err, size_t errlen)
{
    (void)timeout_ms; /* a read waits for at most a heartbeat */
    struct mysrc *src = my(s);
    src->em = em;
    src->idle_seen = false;
    int64_t t0 = clock_mono_us();
    int handled = 0, rc = 0;
    while (handled < POLL_MAX_EVENTS && !emitter_stopping(em)) {
        const uint8_t *p;
        size_t n;
        rc = mystream_next(src->stream, &p, &n, err, errlen);
        if (rc <= 0)
            break;
        handled++;
        src->n_bytes += n;
        rc = mydecode_feed(src->dec, p, n, err, errlen);
        if (rc || src->idle_seen || (handled % 64 == 0 && clock_mono_us() - t0 > POLL_MAX_US))
            break;
    }
    if (rc == MYSTREAM_EPURGED) {
        char e[400];
        str_copy(e, sizeof e, err);
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "%s.  cdc stops rather than skip changes; with source.snapshot_mode "
                      "when_needed the next start reads the tables again",
                      e);
    } else if (rc == 0 && handled == 0 && !emitter_stopping(em)) {
        rc = cdc_fail(err, errlen, CDC_ECONN, "the server ended the binlog dump");
    }
    if (rc == 0)
        rc = emitter_flush(em);
    if (rc == 0 && src->dec && !mydecode_in_group(src->dec))
        rc = mysrc_isnap_between(src, err, errlen);
    return rc ? rc : handled;
}

/* Stores the newest position every sink holds, at most every
 * STORE_MIN_GAP_US unless now. */
static int op_ack(struct source *s, const struct cdc_ack *acks, size_t n, bool now)
{
    struct mysrc *src = my(s);
    if (!n)
        return 0;
    src->confirmed = acks[0].pos;
    int64_t t = clock_mono_us();
    if (!now && t - src->last_store_us < STORE_MIN_GAP_US)
        return 0;
    const struct mysrc_place *p = mysrc_pending_take(src, acks[0].pos);
    if (!p || (src->have_stored && p->scalar <= src->stored.scalar))
        return 0;
    struct mysrc_place copy = {0};
    mysrc_place_copy(&copy, p);
    char e[300];
    if (mysrc_store_position(src, &copy, e, sizeof e) != 0)
        log_warn("source.position_not_stored", "error=%s", log_q(e));
    else
        log_debug("source.confirmed", "file=%s pos=%u", copy.file, copy.pos);
    mysrc_place_fini(&copy);
    src->last_store_us = t;
    return 0;
}

static void op_disconnect(struct source *s, bool rewind)
{
    struct mysrc *src = my(s);
    close_stream(src);
    if (rewind && src->isnap)
        isnap_rewind(src->isnap);
}

/* The control API's request: the same queue a signal row feeds. */
static int op_queue_snapshot(struct source *s, char *const *tables, size_t n, char *err,
                             size_t errlen)
{
    struct mysrc *src = my(s);
    if (!src || !src->isnap)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "incremental snapshots are unavailable: the signal table could not be "
                        "set up (see the source.no_signal_table log line at start)");
    return isnap_request(src->isnap, tables, n, err, errlen);
}

static void op_finish(struct source *s, const struct cdc_ack *acks, size_t n)
{
    struct mysrc *src = my(s);
    op_ack(s, acks, n, true);
    close_stream(src);
    log_info("source.stopped", "file=%s pos=%u gtid=%s", src->stored.file, src->stored.pos,
             src->stored.gtid && src->stored.gtid[0] ? src->stored.gtid : "none");
}

static void op_stats(struct source *s, struct source_stats *st)
{
    struct mysrc *src = my(s);
    if (!src)
        return;
    st->bytes = src->n_bytes;
    st->received = src->received;
    st->confirmed = src->have_stored ? src->stored.scalar : 0;
    st->snapshotting = src->isnap && isnap_active(src->isnap);
    st->can_snapshot = src->isnap != NULL;
    /* How old the newest binlog event read is, while the server has more
     * (its heartbeat says when it has not).  Whole seconds: binlog event
     * times have no fraction. */
    int64_t now = clock_wall_us(), ts = src->last_event_ts_us;
    st->metrics[st->nmetrics++] = (struct source_metric){
        "seconds_behind_source", "gauge",
        "Seconds between the newest binlog event read and now, 0 once the server says it has "
        "no more (MySQL source).",
        ts > 0 && now > ts ? (uint64_t)((now - ts) / 1000000) : 0};
}

static void op_close(struct source *s)
{
    struct mysrc *src = my(s);
    if (!src)
        return;
    close_stream(src);
    mysrc_isnap_close(src);
    mysnap_close(src->snap);
    mysrc_reader_free(src->reader);
    mysrc_pending_clear(src);
    free(src->pend);
    mysrc_place_fini(&src->start);
    mysrc_place_fini(&src->stored);
    free(src->snap_id);
    free(src);
    s->priv = NULL;
}

const struct source_ops mysrc_ops = {
    .name = "mysql",
    .connector = "mysql",
    .json_source = myjson_event_source,
    .parse_pos = mysrc_parse_pos,
    .format_pos = mysrc_format_pos,
    .deploy = mysrc_deploy,
    .undeploy_warning = mysrc_undeploy_warning,
    .undeploy = mysrc_undeploy,
    .request_snapshot = mysrc_request_snapshot,
    .open = op_open,
    .prepare = op_prepare,
    .snapshot = op_snapshot,
    .start = op_start,
    .poll = op_poll,
    .ack = op_ack,
    .disconnect = op_disconnect,
    .finish = op_finish,
    .stats = op_stats,
    .queue_snapshot = op_queue_snapshot,
    .close = op_close,
};
