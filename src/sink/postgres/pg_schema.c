/* Replica mode: mirror tables and the source's schema changes.
 *
 * A mirror table is created from the source's columns (the key becomes the
 * primary key, DEFERRABLE INITIALLY DEFERRED when the source's is deferrable).
 * The registry table beside the checkpoint table records, per mirror table,
 * whether cdc created it and the source columns it mirrors (number, type,
 * name), updated in the same transaction as the data.  When a new shape of
 * the table arrives, it is compared with the recorded one by column number:
 *   a new number: ADD COLUMN, existing rows getting the value the source's
 *       existing rows got (PostgreSQL's missing value), or stop when the
 *       default was volatile (the source rewrote its rows, unseen by the log);
 *   the same number under a new name: RENAME COLUMN;
 *   a number gone: DROP COLUMN (or keep it, drop_columns: false);
 *   a new type: ALTER COLUMN TYPE when it widens (integer to bigint …),
 *       else stop;
 *   a new key: a new primary key on tables cdc created; on others a unique
 *       index on the key must exist, or cdc stops saying which.
 * Columns the mirror has and the source never had are left alone.  Without a
 * record (tables from before it), only missing columns are added, by name.
 * "Stop" is SINK_ERR_FATAL: the pipeline ends with a message naming table and
 * column, confirming nothing past it; once the mirror is fixed by hand, the
 * next run goes on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "pg/pgconn.h"
#include "sink/postgres/pg_config.h"
#include "sink/postgres/pg_sink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* A column of the mirror table, from its catalog. */
struct mcol {
    char *name;
    Oid type;
    char *type_text; /* format_type */
    bool notnull;
};

/* A source column as the registry recorded it. */
struct rcol {
    int attnum;
    Oid type;
    int32_t typmod;
    char *name;
};

struct shape {
    bool exists;
    struct mcol *cols;
    size_t n;
};

struct record {
    bool found;
    bool created;
    uint64_t relid;
    struct rcol *cols;
    size_t n;
};

static void shape_fini(struct shape *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->cols[i].name);
        free(s->cols[i].type_text);
    }
    free(s->cols);
    *s = (struct shape){0};
}

static void record_fini(struct record *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->cols[i].name);
    free(r->cols);
    *r = (struct record){0};
}

static const struct mcol *mcol_find(const struct shape *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->cols[i].name, name) == 0)
            return &s->cols[i];
    return NULL;
}

static void put_ident(struct buf *b, const char *name)
{
    char *q = pgconn_quote_ident(name);
    buf_puts(b, q);
    free(q);
}

int pgs_schema_open(struct sink *sk, const char *qschema)
{
    struct pgsink *ps = sk->priv;
    ps->registry_table = xasprintf("%s.cdc_mirror_tables", qschema);
    char *sql = xasprintf(PGS_DDL_LOCK "CREATE TABLE IF NOT EXISTS %s ("
                                       " pipeline_id text NOT NULL,"
                                       " sink_id text NOT NULL,"
                                       " mirror_table text NOT NULL,"
                                       " source_relid bigint NOT NULL,"
                                       " created boolean NOT NULL,"
                                       " columns jsonb NOT NULL,"
                                       " updated_at timestamptz NOT NULL DEFAULT now(),"
                                       " PRIMARY KEY (pipeline_id, sink_id, mirror_table))",
                          ps->registry_table);
    char e[512];
    PGresult *res = pgconn_exec(ps->conn, e, sizeof e, sql, 0, NULL);
    free(sql);
    if (!res)
        return sink_set_error(sk, SINK_ERR_PERMANENT, "cannot create %s: %s", ps->registry_table,
                              e);
    PQclear(res);
    return 0;
}

static int read_shape(struct sink *sk, const char *qname, struct shape *s)
{
    const char *vals[1] = {qname};
    PGresult *res = pgs_query(sk,
                              "SELECT c.oid IS NOT NULL, a.attname, a.atttypid, "
                              "  format_type(a.atttypid, a.atttypmod), a.attnotnull "
                              "FROM (SELECT to_regclass($1)) AS c(oid) "
                              "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                              "  AND NOT a.attisdropped ORDER BY a.attnum",
                              1, vals, SINK_ERR_RETRYABLE);
    if (!res)
        return CDC_ERR;
    int n = PQntuples(res);
    s->exists = n > 0 && PQgetvalue(res, 0, 0)[0] == 't';
    s->cols = xcalloc((size_t)n + 1, sizeof *s->cols);
    for (int r = 0; r < n && s->exists; r++) {
        if (PQgetisnull(res, r, 1))
            continue; /* a table without columns */
        struct mcol *c = &s->cols[s->n++];
        c->name = xstrdup(PQgetvalue(res, r, 1));
        c->type = (Oid)strtoul(PQgetvalue(res, r, 2), NULL, 10);
        c->type_text = xstrdup(PQgetvalue(res, r, 3));
        c->notnull = PQgetvalue(res, r, 4)[0] == 't';
    }
    PQclear(res);
    return 0;
}

static int read_record(struct sink *sk, const char *qname, struct record *rec)
{
    struct pgsink *ps = sk->priv;
    char *sql = xasprintf("SELECT r.source_relid, r.created, x.attnum, x.type, x.typmod, x.name "
                          "FROM %s r LEFT JOIN LATERAL jsonb_to_recordset(r.columns) "
                          "  AS x(attnum int, type oid, typmod int, name text) ON true "
                          "WHERE r.pipeline_id = $1 AND r.sink_id = $2 AND r.mirror_table = $3",
                          ps->registry_table);
    const char *vals[3] = {sk->config->pipeline_id, sk->cfg->sink_id, qname};
    PGresult *res = pgs_query(sk, sql, 3, vals, SINK_ERR_RETRYABLE);
    free(sql);
    if (!res)
        return CDC_ERR;
    int n = PQntuples(res);
    rec->found = n > 0;
    rec->cols = xcalloc((size_t)n + 1, sizeof *rec->cols);
    for (int r = 0; r < n; r++) {
        rec->relid = strtoull(PQgetvalue(res, r, 0), NULL, 10);
        rec->created = PQgetvalue(res, r, 1)[0] == 't';
        if (PQgetisnull(res, r, 5))
            continue;
        struct rcol *c = &rec->cols[rec->n++];
        c->attnum = atoi(PQgetvalue(res, r, 2));
        c->type = (Oid)strtoul(PQgetvalue(res, r, 3), NULL, 10);
        c->typmod = (int32_t)strtol(PQgetvalue(res, r, 4), NULL, 10);
        c->name = xstrdup(PQgetvalue(res, r, 5));
    }
    PQclear(res);
    return 0;
}

/* Records the shape now mirrored (in the open transaction), with the
 * source's column numbers: attnums[i] for column i (0 = unknown). */
static int write_record(struct sink *sk, const struct pgs_mirror *m, bool created,
                        const int *attnums)
{
    struct pgsink *ps = sk->priv;
    const struct cdc_table *tab = m->tab;
    struct buf cols = BUF_INIT;
    buf_putc(&cols, '[');
    for (uint16_t i = 0; i < tab->ncols; i++) {
        const struct cdc_column *c = &tab->cols[i];
        buf_printf(&cols, "%s{\"attnum\":%d,\"type\":%u,\"typmod\":%d,\"name\":", i ? "," : "",
                   attnums[i], c->type_oid, c->typmod);
        json_string(&cols, c->name, strlen(c->name));
        buf_putc(&cols, '}');
    }
    buf_putc(&cols, ']');
    char relid[24];
    snprintf(relid, sizeof relid, "%" PRIu64, tab->id);
    const char *vals[6] = {sk->config->pipeline_id,
                           sk->cfg->sink_id,
                           m->qname,
                           relid,
                           created ? "true" : "false",
                           cols.p};
    char *sql = xasprintf("INSERT INTO %s (pipeline_id, sink_id, mirror_table, source_relid, "
                          "created, columns) VALUES ($1, $2, $3, $4, $5, $6) "
                          "ON CONFLICT (pipeline_id, sink_id, mirror_table) DO UPDATE SET "
                          "source_relid = EXCLUDED.source_relid, created = EXCLUDED.created, "
                          "columns = EXCLUDED.columns, updated_at = now()",
                          ps->registry_table);
    PGresult *res = pgs_query(sk, sql, 6, vals, SINK_ERR_RETRYABLE);
    free(sql);
    buf_fini(&cols);
    if (!res)
        return CDC_ERR;
    PQclear(res);
    return 0;
}

/* Runs one DDL statement in the open transaction; a failure stops the
 * pipeline with what was being done. */
static int ddl(struct sink *sk, const struct pgs_mirror *m, const char *sql, const char *what)
{
    log_info("sink.postgres.schema_change", "sink=%s table=%s change=%s", sk->cfg->sink_id,
             log_q(m->qname), log_q(what));
    PGresult *res = pgs_query(sk, sql, 0, NULL, SINK_ERR_FATAL);
    if (res) {
        PQclear(res);
        return 0;
    }
    if (sk->errclass != SINK_ERR_FATAL)
        return CDC_ERR;
    char why[sizeof sk->err];
    snprintf(why, sizeof why, "%s", sk->err);
    return sink_set_error(sk, SINK_ERR_FATAL, "mirror table %s: cannot %s: %s", m->qname, what,
                          why);
}

/* Stops the pipeline: the mirror needs a change cdc may not make. */
static int refuse(struct sink *sk, const struct pgs_mirror *m, const char *what)
{
    return sink_set_error(sk, SINK_ERR_FATAL,
                          "mirror table %s: %s, but create_tables is false, so cdc does not "
                          "change the table; change it by hand and run again",
                          m->qname, what);
}

/* Whether converting a column from one type to the other keeps every value
 * exactly (what the source did to its rows then needs no log). */
static bool widens(Oid from, int32_t from_mod, Oid to, int32_t to_mod)
{
    enum {
        INT2 = 21,
        INT4 = 23,
        INT8 = 20,
        FLOAT4 = 700,
        FLOAT8 = 701,
        NUMERIC = 1700,
        TEXT = 25,
        VARCHAR = 1043,
        BPCHAR = 1042,
        TIMESTAMP = 1114,
        TIMESTAMPTZ = 1184,
        TIME = 1083,
        TIMETZ = 1266
    };
    if (from == to) {
        if (to_mod == -1)
            return from != BPCHAR; /* char without a length is char(1) */
        if (from_mod == -1)
            return false;
        switch (from) {
        case VARCHAR:
        case BPCHAR:
        case TIMESTAMP:
        case TIMESTAMPTZ:
        case TIME:
        case TIMETZ:
            return to_mod >= from_mod;
        case NUMERIC: {
            int fp = (from_mod - 4) >> 16, fs = (from_mod - 4) & 0xffff;
            int tp = (to_mod - 4) >> 16, ts = (to_mod - 4) & 0xffff;
            return ts >= fs && tp - ts >= fp - fs;
        }
        default:
            return false;
        }
    }
    switch (from) {
    case INT2:
        return to == INT4 || to == INT8 || (to == NUMERIC && to_mod == -1);
    case INT4:
        return to == INT8 || (to == NUMERIC && to_mod == -1);
    case INT8:
        return to == NUMERIC && to_mod == -1;
    case FLOAT4:
        return to == FLOAT8;
    case VARCHAR:
        return to == TEXT;
    case TEXT:
        return to == VARCHAR && to_mod == -1;
    default:
        return false;
    }
}

/* The prior source column matched to new column c: by number when both are
 * known, else by name. */
static int match_prior(const struct record *rec, const struct cdc_column *c, const bool *taken)
{
    for (size_t j = 0; j < rec->n; j++)
        if (!taken[j] && c->attnum > 0 && rec->cols[j].attnum == c->attnum)
            return (int)j;
    for (size_t j = 0; j < rec->n; j++)
        if (!taken[j] && (c->attnum <= 0 || rec->cols[j].attnum <= 0) &&
            strcmp(rec->cols[j].name, c->name) == 0)
            return (int)j;
    return -1;
}

/* Whether the mirror table holds any row (a column's value for existing
 * rows matters only then). */
static int has_rows(struct sink *sk, const struct pgs_mirror *m, bool *any)
{
    char *sql = xasprintf("SELECT EXISTS (SELECT 1 FROM %s)", m->qname);
    PGresult *res = pgs_query(sk, sql, 0, NULL, SINK_ERR_RETRYABLE);
    free(sql);
    if (!res)
        return CDC_ERR;
    *any = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

/* Adds column c, existing rows getting the source's missing value.  known:
 * the column is new at the source (else the mirror merely lacks it). */
static int add_column(struct sink *sk, const struct pgs_mirror *m, const struct cdc_column *c,
                      bool known)
{
    struct pgsink *ps = sk->priv;
    char what[512];
    bool unknown_values = c->volatile_default || (c->has_default && !c->missing);
    bool any = false;
    if (unknown_values && has_rows(sk, m, &any) != 0)
        return CDC_ERR;
    if (unknown_values && any && c->volatile_default)
        return sink_set_error(
            sk, SINK_ERR_FATAL,
            "table %s.%s: column %s was added with a volatile default, so PostgreSQL rewrote "
            "the table and the log does not carry the values its existing rows got; add the "
            "column to mirror table %s with the source's values (or drop the mirror table and "
            "snapshot the table again) and run again",
            m->tab->schema, m->tab->name, c->name, m->qname);
    if (unknown_values && any)
        return sink_set_error(
            sk, SINK_ERR_FATAL,
            known ? "table %s.%s: column %s is new and has a default, but PostgreSQL no longer "
                    "records the value rows older than the column got (the table was rewritten "
                    "since, or the default was set after the column was added, leaving them "
                    "NULL); add the column to mirror table %s with the values the source's rows "
                    "have and run again"
                  : "table %s.%s: column %s, which has a default, is missing from mirror table "
                    "%s, and which values its existing rows should have is unknown; add the "
                    "column with the values the source's rows have and run again",
            m->tab->schema, m->tab->name, c->name, m->qname);
    if (!pg_conf(sk)->create_tables) {
        snprintf(what, sizeof what, "the source has column %s, the mirror does not", c->name);
        return refuse(sk, m, what);
    }
    struct buf sql = BUF_INIT;
    buf_printf(&sql, "ALTER TABLE %s ADD COLUMN ", m->qname);
    put_ident(&sql, c->name);
    buf_printf(&sql, " %s", c->type_name);
    if (c->missing) {
        char *lit = PQescapeLiteral(ps->conn, c->missing, strlen(c->missing));
        if (!lit) {
            buf_fini(&sql);
            return sink_set_error(sk, SINK_ERR_UNREACHABLE, "cannot quote a default");
        }
        buf_printf(&sql, " DEFAULT %s; ALTER TABLE %s ALTER COLUMN ", lit, m->qname);
        PQfreemem(lit);
        put_ident(&sql, c->name);
        buf_puts(&sql, " DROP DEFAULT");
    }
    snprintf(what, sizeof what, "add column %s%s", c->name,
             c->missing ? " with the source's value for existing rows" : "");
    int rc = ddl(sk, m, sql.p, what);
    buf_fini(&sql);
    return rc;
}

/* Brings an existing mirror table in line with m's shape, given the shape
 * recorded for it (rec, may be not found).  attnums[i] gets column i's
 * number: the catalog's, or, when the catalog no longer knows the column
 * under this name (renamed again since), the number recorded for it. */
static int evolve(struct sink *sk, const struct pgs_mirror *m, const struct shape *have,
                  const struct record *rec, int *attnums)
{
    const struct cdc_table *tab = m->tab;
    const struct pg_sink_cfg *pc = pg_conf(sk);
    bool prior = rec->found && rec->relid == tab->id && !sk->replay;
    bool *taken = xcalloc(rec->n + 1, sizeof *taken);
    int *from = xcalloc((size_t)tab->ncols + 1, sizeof *from);
    struct buf sql = BUF_INIT;
    char what[640];
    int rc = 0;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        from[i] = prior ? match_prior(rec, &tab->cols[i], taken) : -1;
        if (from[i] >= 0)
            taken[from[i]] = true;
        attnums[i] = tab->cols[i].attnum > 0 ? tab->cols[i].attnum
                     : from[i] >= 0          ? rec->cols[from[i]].attnum
                                             : 0;
    }
    /* Dropped at the source: every recorded column no new one matched. */
    for (size_t j = 0; prior && j < rec->n && rc == 0; j++) {
        const struct mcol *mc = mcol_find(have, rec->cols[j].name);
        if (taken[j] || !mc)
            continue;
        bool reused = false; /* a new column takes its name: it must go */
        for (uint16_t i = 0; i < tab->ncols; i++)
            reused |= from[i] < 0 && strcmp(tab->cols[i].name, mc->name) == 0;
        buf_reset(&sql);
        buf_printf(&sql, "ALTER TABLE %s ", m->qname);
        if (pc->drop_columns || reused) {
            buf_puts(&sql, "DROP COLUMN ");
            put_ident(&sql, mc->name);
            snprintf(what, sizeof what, "drop column %s, dropped at the source", mc->name);
        } else if (mc->notnull) {
            buf_puts(&sql, "ALTER COLUMN ");
            put_ident(&sql, mc->name);
            buf_puts(&sql, " DROP NOT NULL");
            snprintf(what, sizeof what, "keep column %s, dropped at the source, nullable",
                     mc->name);
        } else {
            log_info("sink.postgres.column_kept", "sink=%s table=%s column=%s", sk->cfg->sink_id,
                     log_q(m->qname), log_q(mc->name));
            continue;
        }
        rc = pc->create_tables ? ddl(sk, m, sql.p, what) : refuse(sk, m, what);
    }
    /* Renamed: through temporary names, so names may be swapped. */
    for (int phase = 0; phase < 2 && rc == 0; phase++)
        for (uint16_t i = 0; i < tab->ncols && rc == 0; i++) {
            if (from[i] < 0)
                continue;
            const struct rcol *old = &rec->cols[from[i]];
            const struct cdc_column *c = &tab->cols[i];
            if (strcmp(old->name, c->name) == 0)
                continue;
            char tmp[64];
            snprintf(tmp, sizeof tmp, "cdc rename %d", old->attnum);
            const char *src = phase ? tmp : old->name, *dst = phase ? c->name : tmp;
            if (phase == 0 && !mcol_find(have, old->name)) {
                /* Not in the mirror under its old name: added below if missing. */
                from[i] = -1;
                continue;
            }
            buf_reset(&sql);
            buf_printf(&sql, "ALTER TABLE %s RENAME COLUMN ", m->qname);
            put_ident(&sql, src);
            buf_puts(&sql, " TO ");
            put_ident(&sql, dst);
            snprintf(what, sizeof what, "rename column %s to %s", old->name, c->name);
            if (phase == 0 && !pc->create_tables)
                rc = refuse(sk, m, what);
            else
                rc = ddl(sk, m, sql.p, phase ? what : "rename a column (first step)");
        }
    /* Changed type: widened in the mirror, anything else stops. */
    for (uint16_t i = 0; i < tab->ncols && rc == 0; i++) {
        const struct cdc_column *c = &tab->cols[i];
        if (from[i] < 0)
            continue;
        const struct rcol *old = &rec->cols[from[i]];
        const struct mcol *mc = mcol_find(have, old->name);
        if ((old->type == c->type_oid && old->typmod == c->typmod) || !mc ||
            strcmp(mc->type_text, c->type_name) == 0)
            continue;
        if (!widens(old->type, old->typmod, c->type_oid, c->typmod)) {
            rc = sink_set_error(
                sk, SINK_ERR_FATAL,
                "table %s.%s: column %s changed type to %s, which cdc does not convert in mirror "
                "table %s (only widening changes such as integer to bigint); convert the mirror "
                "column yourself and run again",
                tab->schema, tab->name, c->name, c->type_name, m->qname);
            break;
        }
        buf_reset(&sql);
        buf_printf(&sql, "ALTER TABLE %s ALTER COLUMN ", m->qname);
        put_ident(&sql, c->name);
        buf_printf(&sql, " TYPE %s USING ", c->type_name);
        put_ident(&sql, c->name);
        buf_printf(&sql, "::%s", c->type_name);
        snprintf(what, sizeof what, "change column %s from %s to %s", c->name, mc->type_text,
                 c->type_name);
        rc = pc->create_tables ? ddl(sk, m, sql.p, what) : refuse(sk, m, what);
    }
    /* Added: every column the mirror now lacks (one it has is taken as is):
     * new at the source, or missing from the mirror for another reason. */
    struct shape now = {0};
    if (rc == 0)
        rc = read_shape(sk, m->qname, &now);
    for (uint16_t i = 0; i < tab->ncols && rc == 0; i++)
        if (!mcol_find(&now, tab->cols[i].name))
            rc = add_column(sk, m, &tab->cols[i], prior && from[i] < 0);
    shape_fini(&now);
    buf_fini(&sql);
    free(taken);
    free(from);
    return rc;
}

/* The mirror's unique indexes on plain columns: name lists (sorted, joined
 * by \x1f), whether primary, immediate, and the primary key's constraint. */
static PGresult *read_indexes(struct sink *sk, const char *qname)
{
    const char *vals[1] = {qname};
    return pgs_query(sk,
                     "SELECT i.indisprimary, i.indimmediate, "
                     "  (SELECT string_agg(a.attname, E'\\x1f' ORDER BY a.attname) "
                     "     FROM pg_attribute a WHERE a.attrelid = i.indrelid "
                     "     AND a.attnum = ANY (i.indkey)), "
                     "  (SELECT c.conname FROM pg_constraint c WHERE c.conindid = i.indexrelid "
                     "     AND c.contype = 'p') "
                     "FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique "
                     "  AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL",
                     1, vals, SINK_ERR_RETRYABLE);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void pgs_schema_key_names(const struct cdc_table *tab, struct buf *sorted, struct buf *list)
{
    const char **names = xcalloc((size_t)tab->ncols + 1, sizeof *names);
    size_t n = 0;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (tab->cols[i].key) {
            names[n++] = tab->cols[i].name;
            if (list->len)
                buf_puts(list, ", ");
            put_ident(list, tab->cols[i].name);
        }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(sorted, '\x1f');
        buf_puts(sorted, names[i]);
    }
    free(names);
}

/* Makes the mirror able to find rows by the source's key: on a table cdc
 * created, its primary key follows the source's; on another, a unique index
 * on the key must be there for upserts, or cdc stops saying so. */
static int ensure_key(struct sink *sk, const struct pgs_mirror *m, bool created)
{
    const struct cdc_table *tab = m->tab;
    PGresult *res = read_indexes(sk, m->qname);
    if (!res)
        return CDC_ERR;
    struct buf want = BUF_INIT, list = BUF_INIT, sql = BUF_INIT;
    if (tab->key_unique)
        pgs_schema_key_names(tab, &want, &list);
    bool has_arbiter = false, pk_ok = !tab->key_unique;
    int pk = -1;
    for (int r = 0; r < PQntuples(res); r++) {
        bool same = tab->key_unique && strcmp(PQgetvalue(res, r, 2), want.p ? want.p : "") == 0;
        bool immediate = PQgetvalue(res, r, 1)[0] == 't';
        if (same && immediate)
            has_arbiter = true;
        if (PQgetvalue(res, r, 0)[0] == 't') {
            pk = r;
            pk_ok = same && immediate != tab->key_deferrable;
        }
    }
    int rc = 0;
    char what[640];
    if (created && !pk_ok) {
        buf_printf(&sql, "ALTER TABLE %s ", m->qname);
        if (pk >= 0) {
            buf_puts(&sql, "DROP CONSTRAINT ");
            put_ident(&sql, PQgetvalue(res, pk, 3));
            /* The old key's columns may hold NULLs from now on. */
            const char *p = PQgetvalue(res, pk, 2);
            while (*p) {
                size_t len = strcspn(p, "\x1f");
                char *name = xstrndup(p, len);
                bool still = false;
                for (uint16_t i = 0; i < tab->ncols; i++)
                    still |=
                        tab->key_unique && tab->cols[i].key && strcmp(tab->cols[i].name, name) == 0;
                if (!still) {
                    buf_puts(&sql, ", ALTER COLUMN ");
                    put_ident(&sql, name);
                    buf_puts(&sql, " DROP NOT NULL");
                }
                free(name);
                p += len + (p[len] ? 1 : 0);
            }
        }
        if (tab->key_unique)
            buf_printf(&sql, "%sADD PRIMARY KEY (%s)%s", pk >= 0 ? ", " : "", list.p,
                       tab->key_deferrable ? " DEFERRABLE INITIALLY DEFERRED" : "");
        snprintf(what, sizeof what, "make (%s) the primary key, as the source's key changed",
                 tab->key_unique ? list.p : "");
        if (!tab->key_unique)
            snprintf(what, sizeof what, "drop the primary key, as the source has none");
        rc = ddl(sk, m, sql.p, what);
    } else if (!created && tab->key_unique && !tab->key_deferrable && !has_arbiter) {
        rc = sink_set_error(sk, SINK_ERR_FATAL,
                            "mirror table %s has no unique index on (%s), the key of %s.%s "
                            "(its primary key or replica identity index), which upserts need; "
                            "cdc did not create the table, so it does not change its indexes: "
                            "create one, e.g. CREATE UNIQUE INDEX ON %s (%s), and run again",
                            m->qname, list.p, tab->schema, tab->name, m->qname, list.p);
    }
    PQclear(res);
    buf_fini(&want);
    buf_fini(&list);
    buf_fini(&sql);
    return rc;
}

static int create_table(struct sink *sk, const struct pgs_mirror *m)
{
    const struct cdc_table *tab = m->tab;
    const char *schema = pg_conf(sk)->target_schema ? pg_conf(sk)->target_schema : tab->schema;
    if (!pg_conf(sk)->create_tables)
        return sink_set_error(sk, SINK_ERR_FATAL,
                              "mirror table %s does not exist and create_tables is false",
                              m->qname);
    struct buf sql = BUF_INIT, want = BUF_INIT, list = BUF_INIT;
    buf_puts(&sql, PGS_DDL_LOCK "CREATE SCHEMA IF NOT EXISTS ");
    put_ident(&sql, schema);
    /* IF NOT EXISTS: another process of the pipeline (a deliver role of
     * the same consumer group) may have created it meanwhile */
    buf_printf(&sql, "; CREATE TABLE IF NOT EXISTS %s (", m->qname);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (i)
            buf_puts(&sql, ", ");
        put_ident(&sql, tab->cols[i].name);
        buf_printf(&sql, " %s", tab->cols[i].type_name);
    }
    if (tab->key_unique) {
        pgs_schema_key_names(tab, &want, &list);
        buf_printf(&sql, "%sPRIMARY KEY (%s)%s", tab->ncols ? ", " : "", list.p,
                   tab->key_deferrable ? " DEFERRABLE INITIALLY DEFERRED" : "");
    }
    buf_putc(&sql, ')');
    int rc = ddl(sk, m, sql.p, "create the table");
    buf_fini(&sql);
    buf_fini(&want);
    buf_fini(&list);
    return rc;
}

int pgs_schema_ensure(struct sink *sk, struct pgs_mirror *m)
{
    const struct cdc_table *tab = m->tab;
    struct shape have = {0};
    struct record rec = {0};
    int *attnums = xcalloc((size_t)tab->ncols + 1, sizeof *attnums);
    for (uint16_t i = 0; i < tab->ncols; i++)
        attnums[i] = tab->cols[i].attnum;
    int rc = read_shape(sk, m->qname, &have);
    if (rc == 0 && !have.exists) {
        rc = create_table(sk, m);
        if (rc == 0)
            rc = write_record(sk, m, true, attnums);
    } else if (rc == 0) {
        rc = read_record(sk, m->qname, &rec);
        if (rc == 0)
            rc = evolve(sk, m, &have, &rec, attnums);
        if (rc == 0 && !sk->replay)
            rc = ensure_key(sk, m, rec.found && rec.created);
        if (rc == 0 && !sk->replay)
            rc = write_record(sk, m, rec.found && rec.created, attnums);
    }
    free(attnums);
    shape_fini(&have);
    record_fini(&rec);
    if (rc == 0)
        rc = read_shape(sk, m->qname, &have);
    /* Every parameter is typed by the mirror column it goes to. */
    m->types = xcalloc((size_t)tab->ncols + 1, sizeof *m->types);
    for (uint16_t i = 0; i < tab->ncols && rc == 0; i++) {
        const struct mcol *mc = mcol_find(&have, tab->cols[i].name);
        if (!mc)
            rc = sink_set_error(sk, SINK_ERR_FATAL, "mirror table %s has no column %s", m->qname,
                                tab->cols[i].name);
        else
            m->types[i] = mc->type;
    }
    shape_fini(&have);
    return rc;
}
