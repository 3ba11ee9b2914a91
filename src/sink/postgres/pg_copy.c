/* Replica mode: runs of snapshot rows, and runs of inserts, loaded with
 * COPY.
 *
 * Snapshot rows of one table (distinct keys), or inserts into one table, are
 * parked as COPY data when the write() that brought them ends
 * (pgs_copy_park), so one load gathers the rows of many write() calls; it
 * ends before any other statement, before the commit, or once it is large
 * (pgs_copy_send).  A load past PGS_STREAM_BYTES starts its COPY at once
 * and sends each write()'s rows as they are parked, so the server stores
 * rows while cdc reads and encodes the next ones; the connection stays in
 * the COPY between write() calls.  The text is kept until the COPY ends (a
 * direct load that meets a key is loaded again through the staging table).
 * Nothing of a load is durable before the commit that makes the sink
 * report its rows, which comes after the load ends.  One COPY per commit
 * instead of one per write() matters: the server sets up a tuple slot per
 * buffered row of every COPY, which for a COPY of a thousand rows costs
 * about as much as storing them.  A load holds one kind of row: a refused
 * snapshot row and a refused insert are looked for differently
 * (sk->single_snapshot, sk->single_until).
 *
 * Inserts take this path because an insert into a key the mirror holds is
 * the exception: the source had no row under that key just before, and
 * neither has a mirror that is in step.  When it does hold one (a row
 * written into the mirror by hand, or kept from an earlier copy), the
 * direct COPY fails on it and the run goes through the staging table: the
 * mirror ends up as the upserts would have left it, always.
 *
 * The load goes out in the open database transaction, the one that later
 * stores the checkpoint, either
 *   straight into the mirror, where that provably does what the upsert
 *   would (direct_wanted):
 *       SAVEPOINT; COPY <mirror> FROM STDIN     (one round trip)
 *       RELEASE                                 (pipelined with what follows)
 *   or through a staging table, as upserts:
 *       COPY <staging> FROM STDIN
 *       INSERT INTO <mirror> SELECT … FROM <staging> ON CONFLICT (key) DO UPDATE …;
 *       TRUNCATE <staging>
 * Either way every row ends up in the mirror exactly as a multi-row upsert
 * leaves it (a chunk read again after a crash overwrites its rows), with
 * the values parsed by COPY instead of as statement parameters.  The
 * staging table is a temporary table of the mirror's columns (their types,
 * no constraints), emptied after every load and at every commit.
 *
 * The data is in COPY's binary format where every column's type has one in
 * pg_binary.c: the server then stores values instead of parsing texts
 * (timestamps and numerics cost it more to parse than to store).  A value
 * pg_binary.c does not convert turns the mirror's loads to text for the
 * rest of the run, from the row holding it on.
 *
 * Only tables found by a unique, immediate key take this path: tables found
 * by their whole old row (no unique key, or a DEFERRABLE one, which
 * ON CONFLICT cannot use) keep the statements of pg_mirror.c.  COPY cannot
 * run in pipeline mode, so the pipeline is drained and left for the load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "sink/postgres/pg_binary.h"
#include "sink/postgres/pg_sink.h"
#include "source/pg/copytext.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define SAVEPOINTS_MAX 32 /* direct loads per database transaction */
#define DIRECT_SKIP    8  /* runs upserted after a direct load met a key */

/* The statements for m (built once per mirror shape). */
static void build_sql(struct sink *sk, struct pgs_mirror *m)
{
    struct pgsink *ps = sk->priv;
    char name[48];
    snprintf(name, sizeof name, "pg_temp.cdc_stage_%u", ++ps->next_stage);
    m->stage_create = pgs_sql_stage_create(m, name);
    /* TRUNCATE costs far less than deleting the rows */
    char *ins = pgs_sql_insert_from(m, name);
    m->stage_insert = xasprintf("%s; TRUNCATE %s", ins, name);
    free(ins);
    for (int bin = 0; bin < 2; bin++) {
        m->stage_copy[bin] = pgs_sql_copy(m, name, bin);
        /* the savepoint goes out with the COPY: one round trip */
        char *copy = pgs_sql_copy(m, m->qname, bin);
        m->direct_copy[bin] = xasprintf("SAVEPOINT cdc_load; %s", copy);
        free(copy);
    }
}

bool pgs_copy_usable(const struct pgs_mirror *m)
{
    return !m->by_row && m->tab->ncols > 0;
}

/* Runs one statement outside the pipeline; a failure becomes the sink
 * error, naming ev's table. */
static int exec_step(struct sink *sk, const char *sql, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    PGresult *res = PQexec(ps->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN)
        rc = pgs_result_error(sk, res, ev, true);
    PQclear(res);
    return rc;
}

/* Sends the parked data from byte `from` on. */
static int put_rows(struct sink *sk, size_t from)
{
    struct pgsink *ps = sk->priv;
    const struct buf *t = &ps->load.data;
    for (size_t off = from; off < t->len;) {
        size_t n = t->len - off < 256 * 1024 ? t->len - off : 256 * 1024;
        if (PQputCopyData(ps->conn, t->p + off, (int)n) != 1)
            return -1;
        off += n;
    }
    return 0;
}

/* Sends the parked data from byte `from` on (and the binary format's
 * trailer), ends the COPY in progress and reads its result.  With dup_key,
 * a unique violation is not an error: *dup_key tells (the transaction is
 * then aborted up to the caller's savepoint). */
static int copy_end(struct sink *sk, size_t from, bool *dup_key)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_event *last = &ps->load.last;
    int rc = 0;
    const char *why = put_rows(sk, from) != 0 ? PQerrorMessage(ps->conn) : NULL;
    if (!why && ps->load.binary && PQputCopyData(ps->conn, PGS_BIN_TRAILER, 2) != 1)
        why = PQerrorMessage(ps->conn);
    if (PQputCopyEnd(ps->conn, why ? "cannot send rows" : NULL) != 1 && !why)
        why = PQerrorMessage(ps->conn);
    PGresult *res;
    while ((res = PQgetResult(ps->conn))) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (dup_key && strcmp(pgconn_sqlstate(res), "23505") == 0 && !why)
                *dup_key = true;
            else
                rc = pgs_result_error(sk, res, last, true);
        }
        PQclear(res);
    }
    if (rc == 0 && why)
        rc = pgs_conn_error(sk, "cannot send COPY data");
    return rc;
}

/* Whether COPY into the mirror does what the upsert would, for as long as
 * this transaction lasts: the table has a unique, immediate, valid index on
 * exactly the key's columns (the upsert's arbiter), no rules (COPY ignores
 * them) and no row security (COPY refuses it), checked after locking the
 * table (DROP INDEX, CREATE RULE and ALTER TABLE need locks this one
 * conflicts with, held until the transaction ends).  1 yes, 0 no, or an
 * error. */
static int direct_allowed(struct sink *sk, struct pgs_mirror *m, const struct cdc_event *ev)
{
    struct pgsink *ps = sk->priv;
    char *lock = xasprintf("LOCK TABLE %s IN ROW EXCLUSIVE MODE", m->qname);
    int rc = exec_step(sk, lock, ev);
    free(lock);
    if (rc)
        return rc;
    /* Prepared once per connection: a stream of small transactions checks
     * once per transaction, and planning the query each time cost more
     * than the load saved. */
    if (!ps->direct_check_ready) {
        PGresult *prep = PQprepare(
            ps->conn, "cdc_direct_check",
            "SELECT NOT c.relhasrules AND NOT c.relrowsecurity AND EXISTS (SELECT FROM pg_index "
            "  i WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid "
            "  AND i.indpred IS NULL AND i.indexprs IS NULL AND (SELECT string_agg(a.attname, "
            "  E'\\x1f' ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = i.indrelid "
            "  AND a.attnum = ANY (i.indkey)) = $2) FROM pg_class c WHERE c.oid = to_regclass($1)",
            2, NULL);
        if (PQresultStatus(prep) != PGRES_COMMAND_OK)
            rc = pgs_result_error(sk, prep, ev, true);
        PQclear(prep);
        if (rc)
            return rc;
        ps->direct_check_ready = true;
    }
    struct buf want = BUF_INIT, list = BUF_INIT;
    pgs_schema_key_names(m->tab, &want, &list);
    const char *vals[2] = {m->qname, want.p ? want.p : ""};
    PGresult *res = PQexecPrepared(ps->conn, "cdc_direct_check", 2, vals, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        rc = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    else
        rc = pgs_result_error(sk, res, ev, true);
    PQclear(res);
    buf_fini(&want);
    buf_fini(&list);
    return rc;
}

/* Whether this load goes straight into the mirror, where that provably
 * does what the upsert would: under a savepoint, into a table
 * direct_allowed, the COPY either finds none of the keys in the mirror and
 * adds every row, as the upsert would, or fails on the first one there
 * (unique_violation) and is rolled back, leaving the rows to the upsert.
 * Tried again some loads after that (a resumed chunk, an incremental
 * snapshot of rows the mirror holds).  1 yes, 0 no (through the staging
 * table), or an error. */
static int direct_wanted(struct sink *sk, struct pgs_mirror *m)
{
    struct pgsink *ps = sk->priv;
    if (m->direct_skip) {
        m->direct_skip--;
        return 0;
    }
    /* each savepoint that wrote keeps a subtransaction to the end */
    if (ps->savepoints >= SAVEPOINTS_MAX)
        return 0;
    if (m->direct_txn != ps->dbtxn_no) {
        int rc = direct_allowed(sk, m, &ps->load.last);
        if (rc < 0)
            return rc;
        m->direct_txn = ps->dbtxn_no;
        m->direct_ok = rc == 1;
    }
    return m->direct_ok;
}

/* Starts the load's COPY into m's staging table, made on first use. */
static int stage_start(struct sink *sk, struct pgs_mirror *m)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_event *last = &ps->load.last;
    int rc;
    if (!m->stage_ready) {
        if ((rc = exec_step(sk, m->stage_create, last)))
            return rc;
        m->stage_ready = true;
    }
    return exec_step(sk, m->stage_copy[ps->load.binary], last);
}

/* Leaves the pipeline (COPY cannot run in it) and starts the load's COPY:
 * straight into the mirror where direct_wanted, else into the staging
 * table.  The parked data is sent from here on as it grows. */
static int load_start(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    struct pgs_mirror *m = ps->load.m;
    int rc = pgs_drain(sk);
    if (rc == 0 && !PQexitPipelineMode(ps->conn))
        rc = pgs_conn_error(sk, "cannot leave pipeline mode");
    if (rc)
        return rc;
    if (!m->stage_create)
        build_sql(sk, m);
    if ((rc = direct_wanted(sk, m)) < 0)
        return rc;
    ps->load.direct = rc == 1;
    if (ps->load.direct)
        ps->savepoints++;
    rc = ps->load.direct ? exec_step(sk, m->direct_copy[ps->load.binary], &ps->load.last)
                         : stage_start(sk, m);
    if (rc)
        return rc;
    ps->load.open = true;
    ps->load.sent = 0;
    return 0;
}

void pgs_copy_drop(struct pgsink *ps)
{
    buf_reset(&ps->load.data);
    ps->load.nrows = 0;
    ps->load.binary = false;
    ps->load.m = NULL;
    ps->load.open = false;
    ps->load.sent = 0;
    keyset_clear(&ps->grp_keys);
}

int pgs_copy_send(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    struct pgs_mirror *m = ps->load.m;
    if (!ps->load.nrows)
        return 0;
    const struct cdc_event *last = &ps->load.last;
    int rc = ps->load.open ? 0 : load_start(sk);
    bool direct = rc == 0 && ps->load.direct, dup = false;
    if (rc == 0) {
        ps->load.open = false;
        rc = copy_end(sk, ps->load.sent, direct ? &dup : NULL);
    }
    if (rc == 0 && dup) {
        /* the direct load met a key the mirror holds: upsert it instead */
        m->direct_skip = DIRECT_SKIP;
        direct = false;
        rc = exec_step(sk, "ROLLBACK TO SAVEPOINT cdc_load; RELEASE SAVEPOINT cdc_load", last);
        if (rc == 0 && (rc = stage_start(sk, m)) == 0)
            rc = copy_end(sk, 0, NULL);
    }
    if (rc == 0 && !direct)
        rc = exec_step(sk, m->stage_insert, last);
    if (!PQenterPipelineMode(ps->conn) && rc == 0)
        rc = pgs_conn_error(sk, "cannot enter pipeline mode");
    /* the direct load's savepoint, released in the pipeline with what follows */
    if (direct && rc == 0)
        rc = pgs_send_plain(sk, "RELEASE SAVEPOINT cdc_load", PGS_STMT, NULL);
    pgs_copy_drop(ps);
    return rc;
}

/* Whether m's loads may go in the binary format: every column's type has
 * one (decided once per mirror shape). */
static bool binary_wanted(struct pgs_mirror *m)
{
    if (m->binary == 0) {
        m->binary = 1;
        for (uint16_t c = 0; c < m->tab->ncols; c++)
            if (!pgs_bin_type_ok(m->types[c]))
                m->binary = -1;
    }
    return m->binary == 1;
}

/* Appends the group's rows to the binary load; 0, or CDC_EINVAL (the load
 * as it was) when pg_binary.c did not convert a value: m's loads are text
 * from then on. */
static int park_binary(struct pgsink *ps, struct pgs_mirror *m, size_t n)
{
    struct buf *b = &ps->load.data;
    size_t at = b->len;
    if (ps->load.nrows == 0)
        pgs_bin_header(b);
    for (size_t r = 0; r < n; r++) {
        const struct cdc_event *ev = ps->grp[r];
        pgs_bin_tuple(b, ev->tab->ncols);
        for (uint16_t c = 0; c < ev->tab->ncols; c++) {
            const struct cdc_val *v = &ev->after[c];
            if (v->kind != CDC_V_TEXT)
                pgs_bin_null(b);
            else if (pgs_bin_put(b, m->types[c], cdc_val_ptr(ev, v), v->len) < 0) {
                b->len = at;
                m->binary = -1;
                log_info("sink.postgres.copy_text", "table=%s column=%s hint=%s", log_q(m->qname),
                         log_q(m->tab->cols[c].name),
                         log_q("a value the binary COPY format is not used for: this table's "
                               "rows are loaded as text from here on"));
                return CDC_EINVAL;
            }
        }
    }
    ps->load.binary = true;
    return 0;
}

static void park_text(struct pgsink *ps, size_t n)
{
    struct buf *b = &ps->load.data;
    for (size_t r = 0; r < n; r++) {
        const struct cdc_event *ev = ps->grp[r];
        for (uint16_t c = 0; c < ev->tab->ncols; c++) {
            const struct cdc_val *v = &ev->after[c];
            if (c)
                buf_putc(b, '\t');
            copytext_put(b, v->kind == CDC_V_TEXT ? cdc_val_ptr(ev, v) : NULL, v->len);
        }
        buf_putc(b, '\n');
    }
}

int pgs_copy_park(struct sink *sk)
{
    struct pgsink *ps = sk->priv;
    struct pgs_mirror *m = ps->grp_mirror;
    size_t n = ps->ngrp;
    int rc;
    ps->ngrp = 0;
    if (n == 0)
        return 0;
    if (ps->load.nrows && (ps->load.m != m || ps->load.kind != ps->grp_kind) &&
        (rc = pgs_copy_send(sk)))
        return rc;
    /* a load keeps the format it started with */
    bool binary = ps->load.nrows ? ps->load.binary : binary_wanted(m);
    if (binary && park_binary(ps, m, n) < 0) {
        /* The binary rows before go out first; the group's keys stay in
         * grp_keys, which the send emptied. */
        if (ps->load.nrows && (rc = pgs_copy_send(sk)))
            return rc;
        for (size_t r = 0; r < n; r++)
            keyset_add(&ps->grp_keys, pgs_mirror_key_hash(m, ps->grp[r]));
        binary = false;
    }
    if (!binary)
        park_text(ps, n);
    struct buf *b = &ps->load.data;
    /* What names the load in errors: the newest row's header, without its
     * values (the event itself is gone once write() returns). */
    struct cdc_event *last = &ps->load.last;
    *last = *ps->grp[n - 1];
    last->tab = m->tab;
    last->srcmeta = NULL;
    last->before = last->after = NULL;
    last->data = NULL;
    last->data_len = 0;
    last->data_free = NULL;
    ps->load.m = m;
    ps->load.kind = ps->grp_kind;
    ps->load.nrows += n;
    if (ps->load.nrows >= PGS_COPY_MAX || b->len >= PGS_LOAD_BYTES)
        return pgs_copy_send(sk);
    /* A large load streams: the server stores rows while the next are
     * read and encoded, instead of all of them at the commit. */
    if (!ps->load.open && b->len >= PGS_STREAM_BYTES && (rc = load_start(sk)))
        return rc;
    if (ps->load.open) {
        if (put_rows(sk, ps->load.sent) != 0)
            return pgs_conn_error(sk, "cannot send COPY data");
        ps->load.sent = b->len;
    }
    return 0;
}
