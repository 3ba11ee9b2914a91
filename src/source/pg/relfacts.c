#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/relfacts.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

/* A default is volatile when a function or operator it calls is (what
 * PostgreSQL's contain_volatile_functions decides before rewriting the table
 * on ADD COLUMN); identity columns are filled from a sequence, so too.  The
 * function ids are read from the stored expression tree (pg_node_tree text:
 * ":funcid N", ":opfuncid N"). */
static const char facts_sql[] =
    "SELECT a.attnum, a.atthasmissing, "
    "  CASE WHEN a.atthasmissing THEN array_to_string(a.attmissingval, '') END, "
    "  coalesce(a.attidentity <> '' OR d.adbin::text LIKE '%NEXTVALUEEXPR%' OR EXISTS ("
    "    SELECT 1 FROM regexp_matches(d.adbin::text, ':(?:op)?funcid ([0-9]+)', 'g') AS f(m) "
    "    JOIN pg_proc p ON p.oid = f.m[1]::oid WHERE p.provolatile = 'v'), false), "
    "  (SELECT NOT i.indimmediate FROM pg_index i "
    "     WHERE i.indrelid = $1::oid AND i.indisprimary), "
    "  coalesce(a.atthasdef OR a.attidentity <> '', false), coalesce(a.attnotnull, false) "
    "FROM unnest($2::text[]) WITH ORDINALITY AS u(name, n) "
    "LEFT JOIN pg_attribute a ON a.attrelid = $1::oid AND a.attname = u.name "
    "  AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "ORDER BY u.n";

/* Appends s as an element of a text[] literal. */
static void put_array_elem(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

int relfacts_lookup(PGconn *conn, struct cdc_table *tab, char *err, size_t errlen)
{
    char relid[24];
    snprintf(relid, sizeof relid, "%" PRIu64, tab->id);
    struct buf names = BUF_INIT;
    buf_putc(&names, '{');
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (i)
            buf_putc(&names, ',');
        put_array_elem(&names, tab->cols[i].name);
    }
    buf_putc(&names, '}');
    const char *params[2] = {relid, names.p};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e, facts_sql, 2, params);
    buf_fini(&names);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "column lookup for %s.%s failed: %s", tab->schema,
                        tab->name, e);
    bool pk_deferrable = false;
    for (int r = 0; r < PQntuples(res) && r < tab->ncols; r++) {
        struct cdc_column *c = &tab->cols[r];
        if (!PQgetisnull(res, r, 0))
            c->attnum = (int16_t)atoi(PQgetvalue(res, r, 0));
        free(c->missing);
        c->missing = NULL;
        if (PQgetvalue(res, r, 1)[0] == 't' && !PQgetisnull(res, r, 2))
            c->missing = xstrdup(PQgetvalue(res, r, 2));
        c->volatile_default = PQgetvalue(res, r, 3)[0] == 't';
        pk_deferrable = PQgetvalue(res, r, 4)[0] == 't';
        c->has_default = PQgetvalue(res, r, 5)[0] == 't';
        c->not_null = PQgetvalue(res, r, 6)[0] == 't';
    }
    PQclear(res);
    /* A deferrable primary key is never a replica identity: it is the key
     * only under REPLICA IDENTITY FULL (or NOTHING), where relcache takes
     * the primary key to identify rows. */
    tab->key_deferrable =
        pk_deferrable && tab->key_unique && (tab->replident == 'f' || tab->replident == 'n');
    return 0;
}
