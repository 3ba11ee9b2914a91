/* PostgreSQL source: the run loop (reconnects, rewinds, incremental
 * snapshot steps, the final confirmation) and stats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/pgsrc_int.h"
#include "source/pg/snapshot.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define CHECK_INTERVAL_US 5000000 /* the publication is checked this often while streaming */

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
    if (pgsrc_ensure_sql_conn(src) != 0)
        return CDC_ECONN;
    int rc = isnap_step(src->isnap, src->conn, src->err, sizeof src->err);
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

/* Serves a sink's rewind request: restart the stream from the confirmed
 * position and mark the restart in the log. */
static int do_rewind(struct pgsrc *src, uint32_t gen, uint64_t *restart)
{
    int rc = pgsrc_flush_pending(src);
    if (rc)
        return rc;
    *restart = engine_rewind(src->eng, gen);
    pgsrc_close_repl(src);
    if (src->isnap)
        isnap_rewind(src->isnap);
    struct cdc_event *ev = cdc_event_new(0, 0, 0);
    ev->op = CDC_OP_REWIND;
    ev->rewind_gen = gen;
    rc = pgsrc_emit(src, ev);
    if (!rc)
        rc = pgsrc_flush_pending(src);
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
            rc = pgsrc_load_folds(src, id, err, errlen);
        free(state);
        if (rc)
            return rc;
    }
    if (src->snap_id) {
        src->began = true;
        rc = pgsrc_run_snapshot(src, err, errlen);
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

    while (!pgsrc_stop_requested(src)) {
        if (!src->repl) {
            if (backoff_us) {
                for (int64_t t = 0; t < backoff_us && !pgsrc_stop_requested(src); t += 100000)
                    clock_sleep_us(100000);
                if (pgsrc_stop_requested(src))
                    break;
            }
            /* Reconnecting: the slot and the publication may have been
             * changed meanwhile (that is often why the connection ended). */
            rc = src->ever_streamed ? pgsrc_check_source(src, true) : 0;
            if (rc == CDC_EINVAL) {
                cdc_fail(err, errlen, rc, "source: %s", src->err);
                break;
            }
            if (rc == 0)
                rc = pgsrc_start_streaming(src, from);
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
                pgsrc_publish_stats(src);
                rc = 0; /* not an error unless a stop ends the wait */
                continue;
            }
            backoff_us = 0;
            if (!src->ever_streamed && (rc = pgsrc_record_history(src, from)) != 0) {
                cdc_fail(err, errlen, rc, "state store: %s", src->err);
                break;
            }
            src->ever_streamed = true;
            src->began = true;
            src->next_check_us = clock_mono_us() + CHECK_INTERVAL_US;
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
            rc = pgsrc_flush_pending(src);
            if (!rc)
                rc = pgsrc_send_status(src, false);
            src->stats_paused = true;
            pgsrc_publish_stats(src);
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
            src->frame = buf;
            src->frame_len = (size_t)n;
            rc = pgsrc_handle_frame(src, (const uint8_t *)buf, (size_t)n);
            if (src->frame) /* no event took it over */
                PQfreemem(src->frame);
            src->frame = NULL;
            /* A busy stream is rarely idle: step snapshots between
             * transactions now and then too. */
            if (!rc && !src->in_txn && ++steps % 256 == 0 &&
                clock_mono_us() - last_step_us > 200000) {
                last_step_us = clock_mono_us();
                rc = pgsrc_flush_pending(src);
                if (!rc && src->isnap)
                    rc = incremental_step(src);
                if (!rc)
                    rc = check_source_now_and_then(src);
            }
        } else if (n == 0) {
            rc = pgsrc_flush_pending(src);
            if (!rc)
                rc = pgsrc_send_status(src, false);
            if (!rc && src->isnap)
                rc = incremental_step(src);
            if (!rc && !src->in_txn)
                rc = check_source_now_and_then(src);
            pgsrc_heartbeat(src);
            pgsrc_publish_stats(src);
            if (!rc) {
                pgsrc_wait_socket(src->repl, pgsrc_coalesce_wait_ms(src));
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
            if (pgsrc_flush_pending(src) == CDC_ESTOP)
                break;
            log_warn("source.connection_lost", "error=%s", log_q(src->err));
            pgsrc_close_repl(src);
            if (src->conn && PQstatus(src->conn) != CONNECTION_OK)
                pgsrc_ensure_sql_conn(src);
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
        pgsrc_flush_pending(src);
    pgsrc_publish_stats(src);
    return rc;
}

void pgsrc_finish(struct pgsrc *src, struct engine *eng)
{
    src->eng = eng;
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
                int n = PQgetCopyData(src->repl, &buf, 1);
                if (buf)
                    PQfreemem(buf);
                if (n < 0 || clock_mono_us() > deadline)
                    break;
                if (n == 0) {
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
    uint64_t c = src->sent_flush;
    log_info("source.stopped", "confirmed=%X/%X", (unsigned)(c >> 32), (unsigned)c);
    pgsrc_publish_stats(src);
    pgsrc_close_repl(src);
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
    pgsrc_close_repl(src);
    if (src->conn)
        PQfinish(src->conn);
    for (size_t i = 0; i < src->npend; i++)
        cdc_event_unref(src->pend[i]);
    isnap_free(src->isnap);
    pgsrc_free_folds(src);
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
