#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "source/pg/relcache.h"
#include "source/pg/relfacts.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

struct relentry {
    uint64_t relid; /* the table's id (a relation OID); 0 = empty slot */
    bool captured;
    struct cdc_table *tab; /* owned reference */
    char *problem;         /* owned: why its changes cannot be placed, or NULL */
};

struct relcache {
    const struct config *cfg;
    struct relentry *slots;
    size_t cap; /* power of two */
    size_t used;
    char **schemas; /* the configured tables, split */
    char **names;
    size_t ntables;
    uint32_t next_version;
    bool map_partitions; /* see relcache_map_partitions */
};

/* OIDs of PostgreSQL's built-in types (pg_type.dat). */
enum cdc_type pgtype_class(uint32_t oid, char category)
{
    switch (oid) {
    case 16:
        return CDC_T_BOOL;
    case 17:
        return CDC_T_BYTES;
    case 20: /* int8 */
    case 21: /* int2 */
    case 23: /* int4 */
    case 26: /* oid */
        return CDC_T_INT;
    case 700:
    case 701:
        return CDC_T_FLOAT;
    case 1700:
        return CDC_T_NUMERIC;
    case 114:  /* json */
    case 3802: /* jsonb */
        return CDC_T_JSON;
    case 2950:
        return CDC_T_UUID;
    case 1082:
        return CDC_T_DATE;
    case 1083:
        return CDC_T_TIME;
    case 1266:
        return CDC_T_TIMETZ;
    case 1114:
        return CDC_T_TIMESTAMP;
    case 1184:
        return CDC_T_TIMESTAMPTZ;
    case 1186:
        return CDC_T_INTERVAL;
    case 199:  /* json[] */
    case 1000: /* bool[] */
    case 1001: /* bytea[] */
    case 1005: /* int2[] */
    case 1007: /* int4[] */
    case 1009: /* text[] */
    case 1014: /* bpchar[] */
    case 1015: /* varchar[] */
    case 1016: /* int8[] */
    case 1021: /* float4[] */
    case 1022: /* float8[] */
    case 1028: /* oid[] */
    case 1115: /* timestamp[] */
    case 1182: /* date[] */
    case 1183: /* time[] */
    case 1185: /* timestamptz[] */
    case 1187: /* interval[] */
    case 1231: /* numeric[] */
    case 1270: /* timetz[] */
    case 2951: /* uuid[] */
    case 3807: /* jsonb[] */
        return CDC_T_ARRAY;
    default:
        return category == 'A' ? CDC_T_ARRAY : CDC_T_TEXT;
    }
}

struct relcache *relcache_new(const struct config *cfg)
{
    struct relcache *rc = xcalloc(1, sizeof *rc);
    rc->cfg = cfg;
    rc->cap = 64;
    rc->slots = xcalloc(rc->cap, sizeof *rc->slots);
    rc->ntables = cfg->source.ntables;
    rc->schemas = xcalloc(rc->ntables ? rc->ntables : 1, sizeof *rc->schemas);
    rc->names = xcalloc(rc->ntables ? rc->ntables : 1, sizeof *rc->names);
    for (size_t i = 0; i < rc->ntables; i++)
        if (config_split_table(cfg->source.tables[i], &rc->schemas[i], &rc->names[i]) != 0) {
            rc->schemas[i] = xstrdup("");
            rc->names[i] = xstrdup("");
        }
    return rc;
}

void relcache_free(struct relcache *rc)
{
    if (!rc)
        return;
    for (size_t i = 0; i < rc->cap; i++) {
        cdc_table_unref(rc->slots[i].tab);
        free(rc->slots[i].problem);
    }
    for (size_t i = 0; i < rc->ntables; i++) {
        free(rc->schemas[i]);
        free(rc->names[i]);
    }
    free(rc->schemas);
    free(rc->names);
    free(rc->slots);
    free(rc);
}

static struct relentry *find_slot(struct relentry *slots, size_t cap, uint64_t relid)
{
    size_t i = (size_t)((relid * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
    while (slots[i].relid != 0 && slots[i].relid != relid)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static struct relentry *insert_slot(struct relcache *rc, uint64_t relid)
{
    if ((rc->used + 1) * 2 > rc->cap) {
        size_t ncap = rc->cap * 2;
        struct relentry *n = xcalloc(ncap, sizeof *n);
        for (size_t i = 0; i < rc->cap; i++)
            if (rc->slots[i].relid)
                *find_slot(n, ncap, rc->slots[i].relid) = rc->slots[i];
        free(rc->slots);
        rc->slots = n;
        rc->cap = ncap;
    }
    struct relentry *e = find_slot(rc->slots, rc->cap, relid);
    if (e->relid == 0) {
        e->relid = relid;
        rc->used++;
    }
    return e;
}

struct cdc_table *relcache_get(struct relcache *rc, uint64_t relid, bool *captured)
{
    struct relentry *e = find_slot(rc->slots, rc->cap, relid);
    if (e->relid == 0)
        return NULL;
    *captured = e->captured;
    return e->tab;
}

static int captured_index(const struct relcache *rc, const char *schema, const char *name)
{
    for (size_t i = 0; i < rc->ntables; i++)
        if (strcmp(rc->schemas[i], schema) == 0 && strcmp(rc->names[i], name) == 0)
            return (int)i;
    return -1;
}

static bool is_captured(const struct relcache *rc, const char *schema, const char *name)
{
    return captured_index(rc, schema, name) >= 0;
}

void relcache_map_partitions(struct relcache *rc, bool on)
{
    rc->map_partitions = on;
}

const char *relcache_problem(struct relcache *rc, uint64_t relid)
{
    struct relentry *e = find_slot(rc->slots, rc->cap, relid);
    return e->relid ? e->problem : NULL;
}

/* A partition the publication publishes under its own name: *root = index of
 * the captured table it is a partition of (the topmost one), or -1, and
 * *root_oid its relation id.  When the relation no longer exists nobody can
 * tell: *problem says so. */
static int find_captured_root(struct relcache *rc, PGconn *conn, const struct pgo_msg *m, int *root,
                              uint32_t *root_oid, char **problem, char *err, size_t errlen)
{
    *root = -1;
    char relid[16];
    snprintf(relid, sizeof relid, "%u", m->relation.relid);
    const char *params[1] = {relid};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e,
                                "SELECT n.nspname, c.relname, c.oid "
                                "FROM pg_partition_ancestors($1::oid) a "
                                "JOIN pg_class c ON c.oid = a.relid "
                                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                "UNION ALL SELECT NULL, NULL, NULL WHERE NOT EXISTS "
                                "  (SELECT 1 FROM pg_class WHERE oid = $1::oid)",
                                1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "partition lookup for %s.%s failed: %s",
                        m->relation.nspname, m->relation.relname, e);
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetisnull(res, r, 0)) {
            *problem = xasprintf(
                "pgoutput sent a change of %s.%s (relation %u), which no longer exists, and the "
                "publication does not publish partitions through their root: cdc cannot tell "
                "whether it was a partition of a captured table.  Set publish_via_partition_root "
                "= true on publication %s",
                m->relation.nspname, m->relation.relname, m->relation.relid,
                rc->cfg->source.publication_name);
            break;
        }
        int i = captured_index(rc, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
        if (i >= 0) {
            *root = i;
            *root_oid = (uint32_t)strtoul(PQgetvalue(res, r, 2), NULL, 10);
        }
    }
    PQclear(res);
    return 0;
}

/* SQL type names and categories for the table's columns, in one round trip.
 * User-defined types (and arrays of them) become text in a mirror: the target
 * database does not know them, and their text form is what we carry. */
static int lookup_types(PGconn *conn, struct cdc_table *tab, char *err, size_t errlen)
{
    struct buf oids = BUF_INIT, mods = BUF_INIT;
    buf_putc(&oids, '{');
    buf_putc(&mods, '{');
    for (uint16_t i = 0; i < tab->ncols; i++) {
        buf_printf(&oids, "%s%u", i ? "," : "", tab->cols[i].type_oid);
        buf_printf(&mods, "%s%d", i ? "," : "", tab->cols[i].typmod);
    }
    buf_putc(&oids, '}');
    buf_putc(&mods, '}');
    const char *params[2] = {oids.p, mods.p};
    char e[512];
    PGresult *res =
        pgconn_exec(conn, e, sizeof e,
                    "SELECT CASE WHEN u.o >= 16384 OR coalesce(t.typelem, 0) >= 16384 THEN 'text' "
                    "            ELSE format_type(u.o, u.m) END, "
                    "       coalesce(t.typcategory, 'X') "
                    "FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS u(o, m, n) "
                    "LEFT JOIN pg_type t ON t.oid = u.o ORDER BY u.n",
                    2, params);
    buf_fini(&oids);
    buf_fini(&mods);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "catalog lookup for %s.%s failed: %s", tab->schema,
                        tab->name, e);
    for (uint16_t i = 0; i < tab->ncols && i < PQntuples(res); i++) {
        struct cdc_column *c = &tab->cols[i];
        c->type_name = xstrdup(PQgetvalue(res, i, 0));
        c->type = pgtype_class(c->type_oid, PQgetvalue(res, i, 1)[0]);
        if (strcmp(c->type_name, "text") == 0 && c->type_oid >= 16384)
            c->type = CDC_T_TEXT;
    }
    PQclear(res);
    return 0;
}

/* For REPLICA IDENTITY FULL or NOTHING the message marks every column or none
 * as key; the primary key, when the table has one, identifies rows better. */
static int lookup_primary_key(PGconn *conn, struct cdc_table *tab, bool *found, char *err,
                              size_t errlen)
{
    char relid[24];
    snprintf(relid, sizeof relid, "%" PRIu64, tab->id);
    const char *params[1] = {relid};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e,
                                "SELECT a.attname FROM pg_index i "
                                "JOIN pg_attribute a ON a.attrelid = i.indrelid "
                                "  AND a.attnum = ANY (i.indkey) "
                                "WHERE i.indrelid = $1::oid AND i.indisprimary",
                                1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "primary key lookup for %s.%s failed: %s",
                        tab->schema, tab->name, e);
    *found = PQntuples(res) > 0;
    if (*found) {
        for (uint16_t i = 0; i < tab->ncols; i++) {
            tab->cols[i].key = false;
            for (int r = 0; r < PQntuples(res); r++)
                if (strcmp(tab->cols[i].name, PQgetvalue(res, r, 0)) == 0)
                    tab->cols[i].key = true;
        }
    }
    PQclear(res);
    return 0;
}

int relcache_update(struct relcache *rc, PGconn *conn, const struct pgo_msg *m, char *err,
                    size_t errlen)
{
    const char *schema = m->relation.nspname[0] ? m->relation.nspname : "pg_catalog";
    const char *name = m->relation.relname;
    bool captured = is_captured(rc, schema, name);
    char *problem = NULL;
    uint32_t id = m->relation.relid;
    if (!captured && rc->map_partitions) {
        /* A partition published under its own name is captured under the
         * name (and relation id) of the captured table it belongs to. */
        int root = -1;
        int ret = find_captured_root(rc, conn, m, &root, &id, &problem, err, errlen);
        if (ret)
            return ret;
        if (root >= 0) {
            log_info("source.partition", "partition=%s.%s table=%s.%s", schema, name,
                     rc->schemas[root], rc->names[root]);
            schema = rc->schemas[root];
            name = rc->names[root];
            captured = true;
        }
    }
    struct cdc_table *tab =
        cdc_table_new(id, schema, name, rc->cfg->topic_prefix, m->relation.ncols);
    tab->replident = m->relation.replident;
    tab->version = ++rc->next_version;
    const uint8_t *cur = m->relation.cols;
    for (uint16_t i = 0; i < m->relation.ncols; i++) {
        struct pgo_relcol rcol;
        pgo_relcol_next(&cur, &rcol);
        tab->cols[i].name = xstrdup(rcol.name);
        tab->cols[i].type_oid = rcol.type_oid;
        tab->cols[i].typmod = rcol.typmod;
        tab->cols[i].key = (rcol.flags & 1) != 0;
        tab->cols[i].type = pgtype_class(rcol.type_oid, 0);
    }
    int ret = 0;
    /* DEFAULT and INDEX identities flag a unique key; FULL and NOTHING are
     * unique only through the primary key, if the table has one. */
    bool unique = tab->replident == 'd' || tab->replident == 'i';
    if (captured) {
        ret = lookup_types(conn, tab, err, errlen);
        if (!ret && (tab->replident == 'f' || tab->replident == 'n'))
            ret = lookup_primary_key(conn, tab, &unique, err, errlen);
    }
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (!tab->cols[i].type_name)
            tab->cols[i].type_name = xstrdup("text");
    if (ret) {
        cdc_table_unref(tab);
        free(problem);
        return ret;
    }
    cdc_table_finish(tab);
    tab->key_unique = unique && tab->nkeys > 0;
    if (captured && (ret = relfacts_lookup(conn, tab, err, errlen)) != 0) {
        cdc_table_unref(tab);
        free(problem);
        return ret;
    }
    struct relentry *e = insert_slot(rc, m->relation.relid);
    cdc_table_unref(e->tab);
    free(e->problem);
    e->tab = tab;
    e->captured = captured;
    e->problem = problem;
    log_debug("source.relation",
              "relid=%" PRIu64 " table=%s.%s columns=%u keys=%u identity=%c captured=%d", tab->id,
              tab->schema, tab->name, tab->ncols, tab->nkeys, tab->replident, captured);
    return 0;
}

static bool listed(char *const *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i], name) == 0)
            return true;
    return false;
}

int relcache_describe(struct relcache *rc, PGconn *conn, const char *schema, const char *name,
                      char *const *only_cols, size_t n_only, struct cdc_table **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    const char *params[2] = {schema, name};
    char e[512];
    /* Columns as pgoutput sends them, with key flags as its Relation message
     * sets them: the replica identity index (DEFAULT: the primary key),
     * every column for FULL. */
    PGresult *res = pgconn_exec(
        conn, e, sizeof e,
        "SELECT c.oid, c.relreplident, a.attname, a.atttypid, a.atttypmod, "
        "  CASE WHEN c.relreplident = 'f' THEN true "
        "       ELSE coalesce(a.attnum = ANY (i.indkey), false) END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "  AND a.attgenerated = '' "
        "LEFT JOIN pg_index i ON i.indrelid = c.oid AND "
        "  ((c.relreplident = 'd' AND i.indisprimary) OR "
        "   (c.relreplident = 'i' AND i.indisreplident)) "
        "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
        2, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "catalog lookup for %s.%s failed: %s", schema, name,
                        e);
    int nrows = PQntuples(res);
    if (nrows == 0) {
        PQclear(res);
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s does not exist", schema, name);
    }
    /* A table without columns is one row with a NULL attname.  Columns the
     * publication's column list leaves out are not published: the table's
     * shape is the published columns only. */
    int *keep = xcalloc((size_t)nrows, sizeof *keep);
    uint16_t n = 0;
    for (int r = 0; r < nrows; r++)
        if (!PQgetisnull(res, r, 2) &&
            (!only_cols || listed(only_cols, n_only, PQgetvalue(res, r, 2))))
            keep[n++] = r;
    struct cdc_table *tab = cdc_table_new((uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10),
                                          schema, name, rc->cfg->topic_prefix, n);
    tab->replident = PQgetvalue(res, 0, 1)[0];
    tab->version = ++rc->next_version;
    for (uint16_t i = 0; i < n; i++) {
        struct cdc_column *c = &tab->cols[i];
        int r = keep[i];
        c->name = xstrdup(PQgetvalue(res, r, 2));
        c->type_oid = (uint32_t)strtoul(PQgetvalue(res, r, 3), NULL, 10);
        c->typmod = (int32_t)strtol(PQgetvalue(res, r, 4), NULL, 10);
        c->key = PQgetvalue(res, r, 5)[0] == 't';
    }
    free(keep);
    PQclear(res);
    bool unique = tab->replident == 'd' || tab->replident == 'i';
    int ret = lookup_types(conn, tab, err, errlen);
    if (!ret && (tab->replident == 'f' || tab->replident == 'n'))
        ret = lookup_primary_key(conn, tab, &unique, err, errlen);
    if (ret) {
        cdc_table_unref(tab);
        return ret;
    }
    cdc_table_finish(tab);
    tab->key_unique = unique && tab->nkeys > 0;
    if ((ret = relfacts_lookup(conn, tab, err, errlen)) != 0) {
        cdc_table_unref(tab);
        return ret;
    }
    *out = tab;
    return 0;
}
