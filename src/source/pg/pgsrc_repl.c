/* PostgreSQL source: the replication connection (start, status updates,
 * read coalescing), the side SQL connection, heartbeats. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pg/pgconn.h"
#include "source/pg/pgoutput.h"
#include "source/pg/pgslot.h"
#include "source/pg/pgsrc_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* ---------- status updates ---------- */

/* Standby status update: Byte1('r'), Int64 write, Int64 flush, Int64 apply,
 * Int64 client clock (us since 2000-01-01), Byte1 reply requested.  A flush
 * (and apply) of 0 is InvalidXLogRecPtr: "no flush position", which moves
 * nothing in the slot. */
static int put_status(struct pgsrc *src, uint64_t write, uint64_t flush)
{
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
    return 0;
}

int pgsrc_send_status(struct pgsrc *src, bool force)
{
    if (!src->repl)
        return 0;
    uint64_t flush = src->confirmed;
    int64_t now = clock_mono_us();
    int64_t interval = (int64_t)(src->cfg->source.status_interval_seconds * 1e6);
    bool changed = flush != src->sent_flush;
    if (!force && !(changed && now - src->last_status_us >= 100000) &&
        now - src->last_status_us < interval)
        return 0;
    uint64_t write = src->write_lsn > flush ? src->write_lsn : flush;
    if (put_status(src, write, flush) != 0)
        return CDC_ECONN;
    if (changed)
        log_debug("source.confirmed", "lsn=%X/%X", (unsigned)(flush >> 32), (unsigned)flush);
    src->sent_flush = flush;
    src->last_status_us = now;
    return 0;
}

/* The server asks for an answer while it waits for one, and a server that is
 * shutting down asks until the position it sent is reported replicated: the
 * flush position, or when that is invalid the write position.  While a sink
 * holds the confirmed position back (it is slow, or its destination is down)
 * a regular answer would keep the server from stopping for as long as the
 * sink does.  So then the answer reports what was received as written and
 * no flush position: the slot keeps the confirmed position (nothing is
 * confirmed that is not durable everywhere), and a server shutting down ends
 * replication at once; cdc reconnects once it is back and resumes from the
 * confirmed position. */
int pgsrc_answer_keepalive(struct pgsrc *src)
{
    if (!src->repl)
        return 0;
    uint64_t flush = src->confirmed;
    if (flush >= src->write_lsn)
        return pgsrc_send_status(src, true);
    if (put_status(src, src->write_lsn, 0) != 0)
        return CDC_ECONN;
    log_debug("source.answered_unconfirmed", "received=%X/%X confirmed=%X/%X",
              (unsigned)(src->write_lsn >> 32), (unsigned)src->write_lsn, (unsigned)(flush >> 32),
              (unsigned)flush);
    src->last_status_us = clock_mono_us();
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
int pgsrc_coalesce_wait_ms(struct pgsrc *src)
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

void pgsrc_close_repl(struct pgsrc *src)
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

int pgsrc_start_streaming(struct pgsrc *src, uint64_t lsn)
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
        pgsrc_close_repl(src);
        return CDC_ECONN;
    }
    PQclear(res);
    if (PQsetnonblocking(src->repl, 1) != 0) {
        pgconn_error(src->repl, src->err, sizeof src->err);
        pgsrc_close_repl(src);
        return CDC_ECONN;
    }
    src->sent_flush = 0;
    src->last_status_us = 0;
    log_info("source.streaming", "slot=%s from=%s", src->cfg->source.slot_name, lsntext);
    return 0;
}

/* Waits until the replication socket is readable or timeout_ms passes. */
void pgsrc_wait_socket(PGconn *conn, int timeout_ms)
{
    struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
    if (PQflush(conn) > 0)
        pfd.events |= POLLOUT;
    poll(&pfd, 1, timeout_ms);
}

int pgsrc_ensure_sql_conn(struct pgsrc *src)
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

void pgsrc_heartbeat(struct pgsrc *src)
{
    double every = src->cfg->source.heartbeat_interval_seconds;
    if (every <= 0)
        return;
    int64_t now = clock_mono_us();
    if (now < src->next_heartbeat_us)
        return;
    src->next_heartbeat_us = now + (int64_t)(every * 1e6);
    char e[256];
    if (pgsrc_ensure_sql_conn(src) != 0)
        return;
    PGresult *res =
        pgconn_exec(src->conn, e, sizeof e,
                    "SELECT pg_logical_emit_message(false, '" HEARTBEAT_PREFIX "', '')", 0, NULL);
    if (!res)
        log_warn("source.heartbeat_failed", "error=%s", log_q(e));
    PQclear(res);
}
