/* PostgreSQL source: the source_ops (start, poll, acknowledgements, the
 * final confirmation, stats).  Reconnects, rewinds, pauses and stops are
 * the driver's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/pgjson.h"
#include "source/pg/pgsrc_int.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"

#define CHECK_INTERVAL_US 5000000 /* the publication is checked this often while streaming */
#define POLL_MAX_FRAMES   256     /* frames one poll handles before the driver looks again */

static struct pgsrc *pg(struct source *s)
{
    return s->priv;
}

static int fail(struct pgsrc *src, int rc, char *err, size_t errlen)
{
    str_copy(err, errlen, src->err);
    return rc;
}

/* Between transactions, when the stream is idle: record incremental chunks
 * every sink holds, and start the next one. */
static int incremental_step(struct pgsrc *src)
{
    if (isnap_record_done(src->isnap, src->em, src->err, sizeof src->err) != 0)
        return CDC_EIO;
    if (src->in_txn || !isnap_active(src->isnap))
        return 0;
    if (pgsrc_ensure_sql_conn(src) != 0)
        return CDC_ECONN;
    int rc = isnap_step(src->isnap, src->err, sizeof src->err);
    return rc == CDC_EINVAL ? 0 : rc;
}

/* Checks the publication every CHECK_INTERVAL_US: someone may have taken a
 * table out of it, or dropped it, and its changes would then stop arriving
 * without a word.  Only CDC_EINVAL (stop the pipeline) comes back; a check
 * that cannot run now runs at the next interval. */
static int check_source_now_and_then(struct pgsrc *src)
{
    int64_t now = clock_mono_us();
    if (now < src->next_check_us)
        return 0;
    src->next_check_us = now + CHECK_INTERVAL_US;
    int rc = pgsrc_check_source(src, false);
    return rc == CDC_EINVAL ? rc : 0;
}

/* ---------- the ops ---------- */

static int op_open(struct source *s, char *err, size_t errlen)
{
    struct pgsrc *src = NULL;
    int rc = pgsrc_open(&src, s->cfg, s->store, err, errlen);
    s->priv = src;
    return rc;
}

/* One stream: 0. */
static int op_prepare(struct source *s, const struct cdc_posmap *held, struct cdc_acks *start,
                      char *err, size_t errlen)
{
    const struct cdc_pos *h = cdc_posmap_get(held, 0);
    int rc = pgsrc_prepare(pg(s), h ? *h : (struct cdc_pos){0, 0, 0}, err, errlen);
    if (rc == 0)
        cdc_acks_set(start, 0, pg(s)->start_lsn);
    return rc;
}

static void op_abandon(struct source *s)
{
    pgsrc_abandon(pg(s));
}

static int op_snapshot(struct source *s, struct emitter *em, char *err, size_t errlen)
{
    struct pgsrc *src = pg(s);
    src->em = em;
    int rc = 0;
    if (!src->snap_id) {
        /* Rebuilt tables' rules outlive the snapshot until the stream passes
         * them: load those of the last initial snapshot. */
        char *state = NULL;
        char id[64];
        if (store_kv_get(src->store, SNAP_KEY_INITIAL, &state, err, errlen) == 0 && state &&
            sscanf(state, "done %63s", id) == 1 && strcmp(id, "none") != 0)
            rc = pgsrc_load_folds(src, id, err, errlen);
        free(state);
        return rc;
    }
    src->began = true;
    rc = pgsrc_run_snapshot(src, err, errlen);
    if (rc)
        return rc;
    if (src->cfg->source.snapshot_mode == SNAPSHOT_INITIAL_ONLY) {
        log_info("source.snapshot_only", "hint=%s",
                 log_q("snapshot_mode initial_only: stopping without streaming"));
        return SOURCE_SNAPSHOT_ONLY;
    }
    return 0;
}

static int op_start(struct source *s, const struct cdc_ack *from, size_t n, char *err,
                    size_t errlen)
{
    struct pgsrc *src = pg(s);
    uint64_t lsn = n ? from[0].pos : src->start_lsn; /* stream 0, the only one */
    /* Reconnecting: the slot and the publication may have been changed
     * meanwhile (that is often why the connection ended). */
    int rc = src->ever_streamed ? pgsrc_check_source(src, true) : 0;
    if (rc == 0)
        rc = pgsrc_start_streaming(src, lsn);
    if (rc)
        return fail(src, rc, err, errlen);
    if (!src->ever_streamed && (rc = pgsrc_record_history(src, lsn)) != 0) {
        snprintf(err, errlen, "state store: %s", src->err);
        return CDC_EIO;
    }
    src->ever_streamed = true;
    src->began = true;
    src->next_check_us = clock_mono_us() + CHECK_INTERVAL_US;
    return 0;
}

/* Nothing arrived: push what waits, confirm, step snapshots, check the
 * publication, send a heartbeat, then wait for the socket. */
static int idle_work(struct pgsrc *src, int timeout_ms)
{
    int rc = emitter_flush(src->em);
    if (!rc)
        rc = pgsrc_send_status(src, false);
    if (!rc && src->isnap)
        rc = incremental_step(src);
    if (!rc && !src->in_txn)
        rc = check_source_now_and_then(src);
    pgsrc_heartbeat(src);
    if (rc)
        return rc;
    int wait = pgsrc_coalesce_wait_ms(src);
    pgsrc_wait_socket(src->repl, wait < timeout_ms ? wait : timeout_ms);
    if (PQconsumeInput(src->repl) == 0) {
        pgconn_error(src->repl, src->err, sizeof src->err);
        return CDC_ECONN;
    }
    return 0;
}

/* Reads the frames libpq has buffered (at most POLL_MAX_FRAMES); when there
 * are none, does the idle work and waits. */
static int op_poll(struct source *s, struct emitter *em, int timeout_ms, char *err, size_t errlen)
{
    struct pgsrc *src = pg(s);
    src->em = em;
    int handled = 0, rc = 0;
    while (handled < POLL_MAX_FRAMES && !emitter_stopping(em)) {
        char *buf = NULL;
        int n = PQgetCopyData(src->repl, &buf, 1);
        if (n == 0) {
            if (handled == 0)
                rc = idle_work(src, timeout_ms);
            break;
        }
        if (n < 0) {
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
            break;
        }
        handled++;
        src->window_msgs++;
        src->frame = buf;
        src->frame_len = (size_t)n;
        rc = pgsrc_handle_frame(src, (const uint8_t *)buf, (size_t)n);
        if (src->frame) /* no event took it over */
            PQfreemem(src->frame);
        src->frame = NULL;
        /* A busy stream is rarely idle: step snapshots between transactions
         * now and then too. */
        if (!rc && !src->in_txn && ++src->steps % 256 == 0 &&
            clock_mono_us() - src->last_step_us > 200000) {
            src->last_step_us = clock_mono_us();
            rc = emitter_flush(em);
            if (!rc && src->isnap)
                rc = incremental_step(src);
            if (!rc)
                rc = check_source_now_and_then(src);
        }
        if (rc)
            break;
    }
    return rc ? fail(src, rc, err, errlen) : handled;
}

static int op_ack(struct source *s, const struct cdc_ack *acks, size_t n, bool now)
{
    struct pgsrc *src = pg(s);
    if (n)
        src->confirmed = acks[0].pos;
    return pgsrc_send_status(src, now);
}

static void op_disconnect(struct source *s, bool rewind)
{
    struct pgsrc *src = pg(s);
    pgsrc_close_repl(src);
    if (rewind) {
        if (src->isnap)
            isnap_rewind(src->isnap);
    } else if (src->conn && PQstatus(src->conn) != CONNECTION_OK) {
        pgsrc_ensure_sql_conn(src);
    }
}

static void op_finish(struct source *s, const struct cdc_ack *acks, size_t n)
{
    struct pgsrc *src = pg(s);
    if (n)
        src->confirmed = acks[0].pos;
    if (!src->repl)
        return;
    if (pgsrc_send_status(src, true) == 0) {
        /* End the copy and wait briefly for the server to finish, so the
         * final position is processed before we disconnect. */
        PQsetnonblocking(src->repl, 0);
        if (PQputCopyEnd(src->repl, NULL) == 1) {
            int64_t deadline = clock_mono_us() + 3000000;
            for (;;) {
                char *buf = NULL;
                int k = PQgetCopyData(src->repl, &buf, 1);
                if (buf)
                    PQfreemem(buf);
                if (k < 0 || clock_mono_us() > deadline)
                    break;
                if (k == 0) {
                    pgsrc_wait_socket(src->repl, 100);
                    if (!PQconsumeInput(src->repl))
                        break;
                }
            }
            PGresult *res;
            while ((res = PQgetResult(src->repl)))
                PQclear(res);
        }
    }
    char c[32];
    pgsrc_format_pos(src->sent_flush, c, sizeof c);
    log_info("source.stopped", "confirmed=%s", c);
    pgsrc_close_repl(src);
}

static void op_stats(struct source *s, struct source_stats *st)
{
    struct pgsrc *src = pg(s);
    if (!src)
        return;
    st->bytes = src->n_bytes;
    st->received = src->write_lsn;
    st->confirmed = src->sent_flush;
    st->snapshotting = src->isnap && isnap_active(src->isnap);
    st->can_snapshot = src->isnap != NULL;
    st->metrics[st->nmetrics++] =
        (struct source_metric){"spilled_bytes", "gauge",
                               "Bytes of streamed transactions spilled to disk until they commit.",
                               src->spill ? spill_bytes(src->spill) : 0};
}

/* The control API's request: the same queue a signal row feeds. */
static int op_queue_snapshot(struct source *s, char *const *tables, size_t n, char *err,
                             size_t errlen)
{
    struct pgsrc *src = pg(s);
    if (!src || !src->isnap)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "incremental snapshots are unavailable: the signal table could not be "
                        "set up (see the source.no_signal_table log line at start)");
    return isnap_request(src->isnap, tables, n, err, errlen);
}

static void op_close(struct source *s)
{
    pgsrc_close(pg(s));
    s->priv = NULL;
}

const struct source_ops pgsrc_ops = {
    .name = "postgres",
    .connector = "postgresql",
    .json_source = pgjson_source,
    .parse_pos = pgsrc_parse_pos,
    .format_pos = pgsrc_format_pos,
    .deploy = pgsrc_deploy,
    .undeploy_warning = pgsrc_undeploy_warning,
    .undeploy = pgsrc_undeploy,
    .request_snapshot = pgsrc_request_snapshot,
    .open = op_open,
    .prepare = op_prepare,
    .abandon = op_abandon,
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
