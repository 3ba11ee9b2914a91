/* The PostgreSQL sink's checkpoint table: one row per (pipeline, sink,
 * stream) with the position of the newest source transaction applied,
 * updated in the same database transaction as the changes.
 *
 *   CREATE TABLE <checkpoint_table> (
 *     pipeline_id text, sink_id text, stream bigint, commit_lsn bigint,
 *     event_index bigint (-1: the whole transaction), updated_at timestamptz,
 *     PRIMARY KEY (pipeline_id, sink_id, stream))
 *
 * A source with one stream has one row (stream 0).  Tables written by an
 * earlier cdc, without the stream column, are migrated in place at open:
 * their rows become stream 0's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "sink/postgres/pg_config.h"
#include "sink/postgres/pg_sink.h"
#include "util/log.h"
#include "util/mem.h"

char *pgs_ckpt_sql(enum pgs_ckpt_stmt which, const char *qschema, const char *qtable)
{
    switch (which) {
    case PGS_CKPT_CREATE:
        return xasprintf(PGS_DDL_LOCK "CREATE SCHEMA IF NOT EXISTS %s; "
                                      "CREATE TABLE IF NOT EXISTS %s ("
                                      " pipeline_id text NOT NULL,"
                                      " sink_id text NOT NULL,"
                                      " stream bigint NOT NULL DEFAULT 0,"
                                      " commit_lsn bigint NOT NULL,"
                                      " event_index bigint NOT NULL,"
                                      " updated_at timestamptz NOT NULL DEFAULT now(),"
                                      " PRIMARY KEY (pipeline_id, sink_id, stream))",
                         qschema, qtable);
    case PGS_CKPT_HAS_STREAM:
        /* $1: the quoted table name */
        return xasprintf("SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass "
                         "AND attname = 'stream' AND NOT attisdropped");
    case PGS_CKPT_LOCK:
        return xasprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", qtable);
    case PGS_CKPT_ADD_STREAM:
        return xasprintf("ALTER TABLE %s ADD COLUMN stream bigint NOT NULL DEFAULT 0", qtable);
    case PGS_CKPT_PKEY:
        /* $1: the quoted table name */
        return xasprintf("SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass "
                         "AND contype = 'p'");
    case PGS_CKPT_REKEY:
        return xasprintf("ALTER TABLE %s ADD PRIMARY KEY (pipeline_id, sink_id, stream)", qtable);
    case PGS_CKPT_INIT:
        return xasprintf("INSERT INTO %s (pipeline_id, sink_id, stream, commit_lsn, event_index) "
                         "VALUES ($1, $2, 0, 0, 0) ON CONFLICT DO NOTHING",
                         qtable);
    case PGS_CKPT_READ:
        return xasprintf("SELECT stream, commit_lsn, event_index FROM %s "
                         "WHERE pipeline_id = $1 AND sink_id = $2",
                         qtable);
    case PGS_CKPT_SAVE:
        return xasprintf("INSERT INTO %s (pipeline_id, sink_id, stream, commit_lsn, event_index) "
                         "VALUES ($1, $2, $3, $4, $5) "
                         "ON CONFLICT (pipeline_id, sink_id, stream) DO UPDATE SET "
                         "commit_lsn = EXCLUDED.commit_lsn, event_index = EXCLUDED.event_index, "
                         "updated_at = now()",
                         qtable);
    }
    return NULL;
}

void pgs_ckpt_params(struct cdc_pos pos, char stream[24], char lsn[24], char idx[24])
{
    snprintf(stream, 24, "%" PRIu32, pos.stream);
    snprintf(lsn, 24, "%" PRId64, (int64_t)pos.lsn); /* bigint: the same 64 bits */
    if (pos.idx == CDC_POS_TXN_END)
        snprintf(idx, 24, "-1");
    else
        snprintf(idx, 24, "%" PRIu64, pos.idx);
}

/* Runs one statement of the migration; false (err filled) on failure. */
static bool run(PGconn *conn, char *sql, int nparams, const char *const *vals, PGresult **keep,
                char *err, size_t errlen)
{
    PGresult *res = pgconn_exec(conn, err, errlen, sql, nparams, vals);
    free(sql);
    if (keep)
        *keep = res;
    else
        PQclear(res);
    return res != NULL;
}

/* A table from before streams: adds the column (its rows are stream 0's)
 * and moves the key onto it, in one transaction under a lock, so sinks
 * opening at once migrate it once. */
static int migrate(struct sink *sk, const char *qtable)
{
    struct pgsink *ps = sk->priv;
    const char *vals[1] = {qtable};
    char e[512];
    PGresult *res = NULL;
    bool ok =
        run(ps->conn, xstrdup("BEGIN"), 0, NULL, NULL, e, sizeof e) &&
        run(ps->conn, pgs_ckpt_sql(PGS_CKPT_LOCK, NULL, qtable), 0, NULL, NULL, e, sizeof e) &&
        run(ps->conn, pgs_ckpt_sql(PGS_CKPT_HAS_STREAM, NULL, qtable), 1, vals, &res, e, sizeof e);
    bool done = ok && strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    PQclear(res);
    res = NULL;
    if (ok && !done) {
        ok = run(ps->conn, pgs_ckpt_sql(PGS_CKPT_ADD_STREAM, NULL, qtable), 0, NULL, NULL, e,
                 sizeof e) &&
             run(ps->conn, pgs_ckpt_sql(PGS_CKPT_PKEY, NULL, qtable), 1, vals, &res, e, sizeof e);
        if (ok && PQntuples(res) == 1) {
            char *key = pgconn_quote_ident(PQgetvalue(res, 0, 0));
            ok = run(ps->conn, xasprintf("ALTER TABLE %s DROP CONSTRAINT %s", qtable, key), 0, NULL,
                     NULL, e, sizeof e);
            free(key);
        }
        PQclear(res);
        ok = ok &&
             run(ps->conn, pgs_ckpt_sql(PGS_CKPT_REKEY, NULL, qtable), 0, NULL, NULL, e, sizeof e);
    }
    ok = ok && run(ps->conn, xstrdup("COMMIT"), 0, NULL, NULL, e, sizeof e);
    if (!ok) {
        char ignore[64];
        PQclear(pgconn_exec(ps->conn, ignore, sizeof ignore, "ROLLBACK", 0, NULL));
        return sink_set_error(sk, SINK_ERR_PERMANENT,
                              "cannot add the stream column to checkpoint table %s: %s",
                              pg_conf(sk)->checkpoint_table, e);
    }
    if (!done)
        log_info("sink.postgres.checkpoint_migrated", "sink=%s table=%s", sk->cfg->sink_id,
                 log_q(pg_conf(sk)->checkpoint_table));
    return 0;
}

int pgs_ckpt_create(struct sink *sk, const char *qschema)
{
    struct pgsink *ps = sk->priv;
    char e[512];
    if (!run(ps->conn, pgs_ckpt_sql(PGS_CKPT_CREATE, qschema, ps->ckpt_table), 0, NULL, NULL, e,
             sizeof e))
        return sink_set_error(sk, SINK_ERR_PERMANENT, "cannot create checkpoint table %s: %s",
                              pg_conf(sk)->checkpoint_table, e);
    const char *vals[1] = {ps->ckpt_table};
    PGresult *res = NULL;
    if (!run(ps->conn, pgs_ckpt_sql(PGS_CKPT_HAS_STREAM, NULL, ps->ckpt_table), 1, vals, &res, e,
             sizeof e))
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot read checkpoint table %s: %s",
                              pg_conf(sk)->checkpoint_table, e);
    bool has = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    PQclear(res);
    return has ? 0 : migrate(sk, ps->ckpt_table);
}

int pgs_ckpt_read(struct sink *sk, struct cdc_posmap *have)
{
    struct pgsink *ps = sk->priv;
    const char *vals[2] = {sk->config->pipeline_id, sk->cfg->sink_id};
    char e[512];
    PGresult *res = NULL;
    if (!run(ps->conn, pgs_ckpt_sql(PGS_CKPT_INIT, NULL, ps->ckpt_table), 2, vals, NULL, e,
             sizeof e))
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot initialise checkpoint: %s", e);
    if (!run(ps->conn, pgs_ckpt_sql(PGS_CKPT_READ, NULL, ps->ckpt_table), 2, vals, &res, e,
             sizeof e))
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot read checkpoint: %s", e);
    for (int r = 0; r < PQntuples(res); r++) {
        long long stream = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        long long lsn = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        long long idx = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        if (stream < 0 || stream > UINT32_MAX)
            continue; /* not one of ours */
        cdc_posmap_set(have,
                       (struct cdc_pos){(uint64_t)lsn, idx < 0 ? CDC_POS_TXN_END : (uint64_t)idx,
                                        (uint32_t)stream});
    }
    PQclear(res);
    return 0;
}

int pgs_ckpt_send(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    if (!ps->save_sql)
        ps->save_sql = pgs_ckpt_sql(PGS_CKPT_SAVE, NULL, ps->ckpt_table);
    for (size_t i = 0; i < ps->ckpt.n; i++) {
        char stream[24], lsn[24], idx[24];
        pgs_ckpt_params(ps->ckpt.v[i], stream, lsn, idx);
        const char *vals[5] = {sk->config->pipeline_id, sk->cfg->sink_id, stream, lsn, idx};
        int rc = pgs_send_stmt(sk, ps->save_sql, 5, vals, NULL, NULL);
        if (rc)
            return rc;
        ps->pend[ps->npend - 1].kind = PGS_CKPT;
    }
    cdc_posmap_clear(&ps->ckpt);
    return 0;
}
