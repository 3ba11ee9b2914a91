/* PostgreSQL sink: connection, pipelined statements, transactions; the
 * `events` mode (the reference's event-log table).
 *
 * Statements go out in libpq pipeline mode and their results are read once
 * per write() batch, so a batch costs one round trip.  A database transaction
 * only ever ends at a source transaction's end, and the same transaction
 * updates this sink's row in the checkpoint table: after a crash the sink
 * reports that position and the engine skips everything at or before it, so
 * no change is applied twice. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "sink/postgres/pg_config.h"
#include "sink/postgres/pg_sink.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define PIPELINE_MAX      4000   /* results outstanding before we drain */
#define COMMIT_MIN_AGE_US 200000 /* commit at a boundary once the txn is this old… */

/* …or has this many rows: 10 batches, or for snapshot rows (loaded with
 * COPY) 60; each commit costs the mirror about what storing 1,500 rows
 * does. */
static int commit_rows(const struct sink *sk, bool snapshot)
{
    return sk->cfg->batch_size * (snapshot ? 60 : 10);
}

/* Whether the open transaction should end at its boundary now.  *now is
 * the monotonic clock, read on first use (0: not yet): one reading serves
 * a write() call, which takes a batch in milliseconds. */
static bool commit_due(const struct sink *sk, int64_t *now)
{
    const struct pgsink *ps = sk->priv;
    if (ps->rows_in_dbtxn >= (size_t)commit_rows(sk, ps->boundary_snapshot))
        return true;
    if (*now == 0)
        *now = clock_mono_us();
    return *now - ps->dbtxn_started_us >= COMMIT_MIN_AGE_US;
}

/* SQLSTATE classes worth retrying, and whether a failure of that class may
 * be one row's: transaction rollback (serialization, deadlock), resources,
 * program limits (a row too big for an index), operator intervention,
 * system, internal. */
static const struct {
    char cls[3];
    bool row;
} retry_classes[] = {{"40", false}, {"53", false}, {"54", true}, {"55", false},
                     {"57", false}, {"58", false}, {"XX", true}};

/* The index of sqlstate's class in retry_classes, or -1. */
static int retry_class(const char *sqlstate)
{
    for (int i = 0; i < (int)(sizeof retry_classes / sizeof *retry_classes); i++)
        if (strncmp(sqlstate, retry_classes[i].cls, 2) == 0)
            return i;
    return -1;
}

static enum sink_errclass classify(const char *sqlstate, PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK || !sqlstate[0] || strncmp(sqlstate, "08", 2) == 0 ||
        strncmp(sqlstate, "57P", 3) == 0)
        return SINK_ERR_UNREACHABLE;
    return retry_class(sqlstate) >= 0 ? SINK_ERR_RETRYABLE : SINK_ERR_PERMANENT;
}

void pgs_scratch(struct pgsink *ps, size_t n)
{
    if (n > ps->capvals) {
        ps->capvals = n < 64 ? 64 : n;
        ps->vals = xrealloc(ps->vals, ps->capvals * sizeof *ps->vals);
        ps->types = xrealloc(ps->types, ps->capvals * sizeof *ps->types);
    }
}

static void pend_push(struct pgsink *ps, enum pgs_kind kind, uint64_t seq,
                      const struct cdc_event *ev)
{
    if (ps->npend == ps->cappend) {
        ps->cappend = ps->cappend ? 2 * ps->cappend : 256;
        ps->pend = xrealloc(ps->pend, ps->cappend * sizeof *ps->pend);
    }
    ps->pend[ps->npend++] = (struct pgs_pending){(uint8_t)kind, false, false, seq, ev};
}

int pgs_conn_error(struct sink *sk, const char *what)
{
    struct pgsink *ps = sk->priv;
    char line[512];
    return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: %s", what,
                          pgconn_error(ps->conn, line, sizeof line));
}

/* Drains before the pipeline holds too many unread results (the server would
 * block writing them while we block writing more statements). */
static int maybe_drain(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    return ps->npend >= PIPELINE_MAX ? pgs_drain(sk) : 0;
}

/* Ends a load whose COPY is streaming: statements follow the load. */
static int load_first(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    return ps->load.open ? pgs_copy_send(sk) : 0;
}

int pgs_send_stmt(struct sink *sk, const char *sql, int nparams, const char *const *vals,
                  const Oid *types, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    int rc = load_first(sk);
    if (rc)
        return rc;
    /* The same text with other parameter types is another statement (a
     * mirror column whose type changed). */
    buf_reset(&ps->stmtkey);
    buf_puts(&ps->stmtkey, sql);
    for (int i = 0; types && i < nparams; i++) { /* no printf: one type per value */
        buf_putc(&ps->stmtkey, i ? ',' : '\x1f');
        buf_put_u64(&ps->stmtkey, types[i]);
    }
    const char *name = strmap_get(ps->stmts, ps->stmtkey.p);
    if (!name) {
        char *n = xasprintf("cdc_%u", ++ps->next_stmt);
        if (!PQsendPrepare(ps->conn, n, sql, nparams, types)) {
            free(n);
            return pgs_conn_error(sk, "cannot prepare statement");
        }
        pend_push(ps, PGS_PREPARE, 0, ev);
        strmap_put(ps->stmts, ps->stmtkey.p, n);
        name = n;
    }
    if (!PQsendQueryPrepared(ps->conn, name, nparams, vals, NULL, NULL, 0))
        return pgs_conn_error(sk, "cannot send statement");
    pend_push(ps, PGS_STMT, 0, ev);
    return maybe_drain(sk);
}

int pgs_send_plain(struct sink *sk, const char *sql, enum pgs_kind kind, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    int rc = load_first(sk);
    if (rc)
        return rc;
    if (!PQsendQueryParams(ps->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
        return pgs_conn_error(sk, "cannot send statement");
    pend_push(ps, kind, 0, ev);
    return maybe_drain(sk);
}

/* Names the event behind a failed statement, for the error message. */
void pgs_mark_group(struct sink *sk, const struct cdc_event *last)
{
    struct pgsink *ps = sk->priv;
    ps->pend[ps->npend - 1].group = true;
    ps->pend[ps->npend - 1].ev = last;
}

void pgs_mark_must_match(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    ps->pend[ps->npend - 1].must_match = true;
}

static void describe_event(const struct cdc_event *ev, char *buf, size_t len)
{
    if (!ev || !ev->tab) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, len, " (table %s.%s, op %c, position %" PRIu64 "/%" PRIu64 ")", ev->tab->schema,
             ev->tab->name, ev->op, ev->pos.lsn, ev->pos.idx);
}

/* Whether a failed statement may have failed for one of its rows: not when
 * the connection failed, nor for the retryable classes that are not about
 * a row.  Going one row at a time after those would only slow the sink
 * down: for a snapshot, until the snapshot ends. */
static bool row_error(const struct sink *sk, const PGresult *res)
{
    if (sk->errclass == SINK_ERR_UNREACHABLE || !res)
        return false;
    int c = retry_class(pgconn_sqlstate(res));
    return c < 0 || retry_classes[c].row;
}

int pgs_result_error(struct sink *sk, PGresult *res, const struct cdc_event *ev, bool group)
{
    struct pgsink *ps = sk->priv;
    char line[512], ctx[256];
    describe_event(ev, ctx, sizeof ctx);
    if (res)
        pgconn_result_error(res, line, sizeof line);
    else
        pgconn_error(ps->conn, line, sizeof line);
    int rc =
        sink_set_error(sk, classify(res ? pgconn_sqlstate(res) : "", ps->conn), "%s%s", line, ctx);
    if (sk->errclass == SINK_ERR_FATAL) {
        sk->err_seq = 0;
    } else if (ev && group && !row_error(sk, res)) {
        /* Not about a row (the connection, a deadlock, the server's
         * resources): the statement is simply sent again. */
        sk->err_seq = 0;
    } else if (ev && group) {
        /* Several rows in one statement: which one is unknown.  After the
         * reopen, go one by one up to here, so the next failure names it. */
        if (ev->snapshot)
            sk->single_snapshot = true;
        else
            sk->single_until = ev->pos;
        sk->err_seq = 0;
    } else if (ev) {
        sk->err_seq = ev->seq;
    }
    return rc;
}

int pgs_drain(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    if (ps->npend == 0)
        return 0;
    if (!PQpipelineSync(ps->conn)) {
        ps->npend = 0;
        return pgs_conn_error(sk, "cannot sync pipeline");
    }
    int rc = 0;
    for (size_t i = 0; i < ps->npend; i++) {
        const struct pgs_pending *p = &ps->pend[i];
        PGresult *res;
        bool got = false;
        while ((res = PQgetResult(ps->conn))) {
            got = true;
            ExecStatusType st = PQresultStatus(res);
            if (rc == 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                rc = pgs_result_error(sk, res, p->ev, p->group);
                if (!p->ev && sk->errclass == SINK_ERR_PERMANENT && ps->npend > 0) {
                    /* No row to blame (a deferred constraint at COMMIT):
                     * narrow down the same way. */
                    for (size_t k = ps->npend; k-- > 0;)
                        if (ps->pend[k].ev) {
                            sk->single_until = ps->pend[k].ev->pos;
                            break;
                        }
                }
            } else if (rc == 0 && p->must_match && p->ev && st == PGRES_COMMAND_OK &&
                       strcmp(PQcmdTuples(res), "0") == 0) {
                /* The row to change is not in the mirror: the mirror
                 * differs from the source, and applying nothing would
                 * hide it. */
                const struct cdc_table *tab = p->ev->tab;
                char ctx[256];
                describe_event(p->ev, ctx, sizeof ctx);
                rc = sink_set_error(sk, SINK_ERR_PERMANENT,
                                    "%s found no row in mirror table %s.%s to %s: the mirror "
                                    "differs from the source%s",
                                    p->ev->op == CDC_OP_DELETE ? "delete" : "update", tab->schema,
                                    tab->name, p->ev->op == CDC_OP_DELETE ? "delete" : "change",
                                    ctx);
                sk->err_seq = p->ev->seq;
            } else if (rc == 0 && p->kind == PGS_COMMIT) {
                /* COMMIT of an aborted transaction reports ROLLBACK. */
                if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
                    rc = sink_set_error(sk, SINK_ERR_RETRYABLE, "transaction was rolled back");
                else if (p->seq > ps->durable_seq)
                    ps->durable_seq = p->seq;
            }
            PQclear(res);
        }
        if (!got && PQstatus(ps->conn) != CONNECTION_OK) {
            if (rc == 0)
                rc = pgs_conn_error(sk, "connection lost");
            break;
        }
    }
    if (PQstatus(ps->conn) == CONNECTION_OK) {
        PGresult *res = PQgetResult(ps->conn); /* the sync point */
        if (res && PQresultStatus(res) != PGRES_PIPELINE_SYNC && rc == 0)
            rc = sink_set_error(sk, SINK_ERR_RETRYABLE, "pipeline out of step");
        PQclear(res);
    }
    ps->npend = 0;
    return rc;
}

PGresult *pgs_query(struct sink *sk, const char *sql, int nparams, const char *const *vals,
                    enum sink_errclass cls)
{
    struct pgsink *ps = sk->priv;
    if (pgs_mirror_flush_group(sk) != 0 || pgs_drain(sk) != 0)
        return NULL;
    if (!PQexitPipelineMode(ps->conn)) {
        pgs_conn_error(sk, "cannot leave pipeline mode");
        return NULL;
    }
    char e[512];
    PGresult *res = pgconn_exec(ps->conn, e, sizeof e, sql, nparams, vals);
    if (!res)
        sink_set_error(sk, PQstatus(ps->conn) != CONNECTION_OK ? SINK_ERR_UNREACHABLE : cls, "%s",
                       e);
    if (!PQenterPipelineMode(ps->conn)) {
        PQclear(res);
        pgs_conn_error(sk, "cannot enter pipeline mode");
        return NULL;
    }
    return res;
}

/* ---------- transactions and checkpoint ---------- */

static int begin_dbtxn(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    if (ps->in_dbtxn)
        return 0;
    int rc = pgs_send_plain(sk, "BEGIN", PGS_BEGIN, NULL);
    ps->in_dbtxn = true;
    ps->dbtxn_no++;
    ps->savepoints = 0;
    ps->dbtxn_started_us = clock_mono_us();
    ps->rows_in_dbtxn = 0;
    return rc;
}

/* Ends the database transaction at the current boundary, with the newest
 * source commit's checkpoint in it.  Durable once pgs_drain has seen the
 * COMMIT succeed. */
static int send_commit(struct sink *sk, const struct cdc_event *marker)
{
    struct pgsink *ps = sk->priv;
    int grc = pgs_mirror_flush_group(sk);
    if (grc)
        return grc;
    if (ps->ckpt.n) {
        int rc = pgs_ckpt_send(sk);
        if (rc)
            return rc;
    }
    if (!PQsendQueryParams(ps->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        return pgs_conn_error(sk, "cannot send COMMIT");
    /* A failure at COMMIT (a deferred constraint) is the source
     * transaction's whose marker ends the database transaction, when it is
     * known to be the only one that could cause it. */
    pend_push(ps, PGS_COMMIT, ps->boundary_seq, marker);
    ps->in_dbtxn = false;
    ps->at_boundary = false;
    ps->commit_now = false;
    return 0;
}

/* ---------- events mode ---------- */

static int events_apply(struct sink *sk, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    /* A change: (topic, its index in the transaction, the commit LSN); of a
     * source with several streams (a Kafka consumer, one change per record):
     * (topic, its stream, its position in it), for every stream: mixing
     * the two would let a stream's number meet another's index.  A
     * snapshot row: (topic, -1, its chunk read << 32 | its row in the read),
     * numbers no other read of the table uses. */
    char part[16], off[24];
    if (ev->snapshot) {
        snprintf(part, sizeof part, "-1");
        snprintf(off, sizeof off, "%" PRId64,
                 (int64_t)(ev->snapshot_chunk << 32 | ev->snapshot_row));
    } else if (sk->json->multi_stream) {
        if (ev->pos.idx != 0 || ev->pos.stream > INT32_MAX)
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "position %" PRIu64 ":%" PRIu64 " of stream %" PRIu32
                                  ": an event log keeps one change per position of a stream",
                                  ev->pos.lsn, ev->pos.idx, ev->pos.stream);
        snprintf(part, sizeof part, "%" PRIu32, ev->pos.stream);
        snprintf(off, sizeof off, "%" PRId64, (int64_t)ev->pos.lsn);
    } else {
        if (ev->pos.idx > INT32_MAX)
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "event index %" PRIu64 " does not fit source_partition (integer)",
                                  ev->pos.idx);
        snprintf(part, sizeof part, "%" PRIu64, ev->pos.idx);
        snprintf(off, sizeof off, "%" PRId64, (int64_t)ev->pos.lsn);
    }
    buf_reset(&ps->keybuf);
    buf_reset(&ps->valbuf);
    json_key(&ps->keybuf, ev);
    json_envelope(&ps->valbuf, ev, sk->json);
    pgs_scratch(ps, 5);
    const char **vals = ps->vals;
    vals[0] = strcmp(ps->keybuf.p, "null") == 0 ? NULL : ps->keybuf.p;
    vals[1] = ps->valbuf.p;
    vals[2] = ev->tab->topic;
    vals[3] = part;
    vals[4] = off;
    buf_reset(&ps->sql);
    buf_printf(&ps->sql,
               "INSERT INTO %s (event_key, event_value, source_topic, source_partition, "
               "source_offset) VALUES ($1, $2, $3, $4, $5)%s",
               ps->events_table, pg_conf(sk)->upsert ? " ON CONFLICT DO NOTHING" : "");
    return pgs_send_stmt(sk, ps->sql.p, 5, vals, NULL, ev);
}

static int events_ensure_table(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    const struct pg_sink_cfg *pc = pg_conf(sk);
    char *schema, *table;
    if (config_split_table(pc->target_table, &schema, &table) != 0)
        return sink_set_error(sk, SINK_ERR_PERMANENT, "postgres.target_table: malformed name %s",
                              pc->target_table);
    ps->events_table = pgconn_quote_qualified(schema, table);
    char *qschema = pgconn_quote_ident(schema);
    free(schema);
    free(table);
    int rc = 0;
    if (pc->create_tables) {
        char *sql =
            xasprintf(PGS_DDL_LOCK "CREATE SCHEMA IF NOT EXISTS %s; "
                                   "CREATE TABLE IF NOT EXISTS %s ("
                                   " id bigserial PRIMARY KEY,"
                                   " event_key jsonb,"
                                   " event_value jsonb NOT NULL,"
                                   " source_topic text NOT NULL,"
                                   " source_partition integer NOT NULL,"
                                   " source_offset bigint NOT NULL,"
                                   " created_at timestamptz NOT NULL DEFAULT now(),"
                                   " UNIQUE (source_topic, source_partition, source_offset))",
                      qschema, ps->events_table);
        char e[512];
        PGresult *res = pgconn_exec(ps->conn, e, sizeof e, sql, 0, NULL);
        free(sql);
        if (!res)
            rc =
                sink_set_error(sk, SINK_ERR_PERMANENT, "cannot create %s: %s", pc->target_table, e);
        PQclear(res);
    }
    free(qschema);
    return rc;
}

/* ---------- sink ops ---------- */

static void pgs_close(struct sink *sk);

static int pgs_open_inner(struct sink *sk, struct cdc_posmap *have)
{
    const struct pg_sink_cfg *pc = pg_conf(sk);
    struct pgsink *ps = xcalloc(1, sizeof *ps);
    sk->priv = ps;
    ps->stmts = strmap_new();
    ps->mirrors = strmap_new();
    char appname[96];
    snprintf(appname, sizeof appname, "cdc:%s:%s", sk->config->pipeline_id, sk->cfg->sink_id);
    struct pgconn_params p = {
        .host = pc->host,
        .port = pc->port,
        .dbname = pc->database,
        .user = pc->username,
        .password = pc->password,
        .sslmode = pc->sslmode,
        .connect_timeout_seconds = 10,
        .application_name = appname,
    };
    char e[512];
    ps->conn = pgconn_connect(&p, e, sizeof e);
    if (!ps->conn)
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s", e);

    char *schema, *table;
    if (config_split_table(pc->checkpoint_table, &schema, &table) != 0)
        return sink_set_error(sk, SINK_ERR_PERMANENT,
                              "postgres.checkpoint_table: malformed name %s", pc->checkpoint_table);
    ps->ckpt_table = pgconn_quote_qualified(schema, table);
    char *qschema = pgconn_quote_ident(schema);
    free(schema);
    free(table);
    /* Values are read and compared in fixed formats, whatever the mirror
     * database's defaults: the source's text is parsed the way PostgreSQL
     * writes it by default, and a row is found by comparing text printed
     * in this session (a TimeZone differing from the source's would
     * otherwise make timestamptz texts differ). */
    PGresult *res = pgconn_exec(ps->conn, e, sizeof e,
                                "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; "
                                "SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; "
                                "SET bytea_output = 'hex'",
                                0, NULL);
    if (!res) {
        free(qschema);
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot set the session's formats: %s", e);
    }
    PQclear(res);
    int rc = pgs_ckpt_create(sk, qschema);
    if (rc == 0 && pc->mode == PG_SINK_REPLICA)
        rc = pgs_schema_open(sk, qschema);
    free(qschema);
    if (rc == 0)
        rc = pgs_ckpt_read(sk, have);
    if (rc)
        return rc;
    if (pc->mode == PG_SINK_EVENTS && events_ensure_table(sk) != 0)
        return CDC_ERR;
    if (!PQenterPipelineMode(ps->conn))
        return pgs_conn_error(sk, "cannot enter pipeline mode");
    return 0;
}

/* Opens; on failure releases everything, so the caller may simply retry. */
static int pgs_open(struct sink *sk, struct cdc_posmap *have)
{
    int rc = pgs_open_inner(sk, have);
    if (rc)
        pgs_close(sk);
    return rc;
}

static int pgs_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    struct pgsink *ps = sk->priv;
    bool replica = pg_conf(sk)->mode == PG_SINK_REPLICA;
    int rc = 0;
    int64_t now = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct cdc_event *ev = evs[i];
        bool boundary = false;
        if (ev->op == CDC_OP_COMMIT) {
            if (!ps->in_dbtxn)
                continue;
            cdc_posmap_set(&ps->ckpt, ev->pos);
            boundary = true;
        } else if (cdc_op_is_control(ev->op) || ev->op == CDC_OP_MESSAGE || !ev->tab) {
            continue;
        } else {
            if ((rc = begin_dbtxn(sk)))
                break;
            rc = replica ? pgs_mirror_apply(sk, ev) : events_apply(sk, ev);
            ps->rows_in_dbtxn++;
            boundary = ev->snapshot || sk->replay;
        }
        ps->at_boundary = boundary;
        if (boundary) {
            ps->boundary_seq = ev->seq;
            ps->boundary_snapshot = ev->snapshot;
            bool deferred = ps->commit_now && ev->op == CDC_OP_COMMIT;
            if (rc == 0 && (deferred || commit_due(sk, &now)))
                rc = send_commit(sk, deferred ? ev : NULL);
        }
    }
    if (rc == 0)
        rc = pgs_mirror_end_write(sk);
    if (rc == 0)
        rc = pgs_drain(sk);
    else
        pgs_drain(sk); /* keep the first error; the connection is reset anyway */
    if (rc) {
        ps->ngrp = 0;
        pgs_copy_drop(ps);
    }
    if (n)
        ps->given_seq = evs[n - 1]->seq;
    return rc;
}

/* Commits at the boundary, except that a flush behind (a batch is full and
 * more wait: sk->flush_behind) leaves a young transaction of snapshot rows
 * open to grow, reporting the commits before it. */
static int pgs_flush(struct sink *sk, uint64_t *durable_seq)
{
    struct pgsink *ps = sk->priv;
    int64_t now = 0;
    bool keep_open = sk->flush_behind && ps->boundary_snapshot && !commit_due(sk, &now);
    if (ps->in_dbtxn && ps->at_boundary && !keep_open) {
        int rc = send_commit(sk, NULL);
        if (!rc)
            rc = pgs_drain(sk);
        if (rc)
            return rc;
    }
    *durable_seq = ps->in_dbtxn ? ps->durable_seq : ps->given_seq;
    return 0;
}

static void free_name(void *p)
{
    free(p);
}

static void pgs_close(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    if (!ps)
        return;
    if (ps->conn)
        PQfinish(ps->conn); /* an open transaction (and COPY) rolls back */
    ps->conn = NULL;
    strmap_free(ps->stmts, free_name);
    if (ps->last_tab)
        cdc_table_unref(ps->last_tab);
    strmap_free(ps->mirrors, pgs_mirror_free);
    pgs_copy_drop(ps);
    free(ps->grp);
    keyset_fini(&ps->grp_keys);
    buf_fini(&ps->load.data);
    free(ps->ckpt_table);
    free(ps->save_sql);
    cdc_posmap_fini(&ps->ckpt);
    free(ps->registry_table);
    free(ps->events_table);
    free(ps->pend);
    free(ps->vals);
    free(ps->types);
    buf_fini(&ps->stmtkey);
    buf_fini(&ps->sql);
    buf_fini(&ps->keybuf);
    buf_fini(&ps->valbuf);
    free(ps);
    sk->priv = NULL;
}

const struct sink_ops sink_postgres_ops = {
    .open = pgs_open,
    .write = pgs_write,
    .flush = pgs_flush,
    .close = pgs_close,
};
