#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/pgslot.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

void pgslot_params(const struct config *cfg, bool replication, struct pgconn_params *p)
{
    static __thread char appname[96];
    snprintf(appname, sizeof appname, "cdc:%s", cfg->pipeline_id);
    *p = (struct pgconn_params){
        .host = cfg->source.host,
        .port = cfg->source.port,
        .dbname = cfg->source.database,
        .user = cfg->source.username,
        .password = cfg->source.password,
        .sslmode = cfg->source.sslmode,
        .connect_timeout_seconds = cfg->source.connect_timeout_seconds,
        .application_name = appname,
        .replication = replication,
    };
}

int pgslot_check_server(PGconn *conn, char *err, size_t errlen)
{
    int ver = PQserverVersion(conn);
    if (ver < 140000)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "source: PostgreSQL %d.%d is too old; cdc needs 14 or newer", ver / 10000,
                        ver % 10000 / 100);
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e,
                                "SELECT current_setting('wal_level'), "
                                "pg_encoding_to_char(encoding) FROM pg_database "
                                "WHERE datname = current_database()",
                                0, NULL);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
    int rc = 0;
    if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0)
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "source: wal_level is %s; logical replication needs wal_level = logical "
                      "(set it in postgresql.conf and restart the server)",
                      PQgetvalue(res, 0, 0));
    else if (strcmp(PQgetvalue(res, 0, 1), "UTF8") != 0)
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "source: database encoding is %s; cdc needs a UTF8 database",
                      PQgetvalue(res, 0, 1));
    PQclear(res);
    return rc;
}

/* A partition is read and streamed through its partitioned table: listing
 * both would deliver its rows twice.  ancestors: one "schema.table" a line. */
static int check_not_partition_of_listed(const struct config *cfg, const char *schema,
                                         const char *table, const char *ancestors, char *err,
                                         size_t errlen)
{
    char *list = xstrdup(ancestors), *save = NULL;
    int rc = 0;
    for (char *a = strtok_r(list, "\n", &save); a && !rc; a = strtok_r(NULL, "\n", &save)) {
        for (size_t i = 0; i < cfg->source.ntables && !rc; i++) {
            char *s = NULL, *n = NULL;
            if (config_split_table(cfg->source.tables[i], &s, &n) == 0 &&
                strlen(s) + 1 + strlen(n) == strlen(a) && strncmp(a, s, strlen(s)) == 0 &&
                a[strlen(s)] == '.' && strcmp(a + strlen(s) + 1, n) == 0)
                rc = cdc_fail(err, errlen, CDC_EINVAL,
                              "source.tables: %s.%s is a partition of %s, which is listed too; "
                              "list only %s (its partitions are captured under its name)",
                              schema, table, a, a);
            free(s);
            free(n);
        }
    }
    free(list);
    return rc;
}

int pgslot_check_tables(PGconn *conn, const struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->source.ntables; i++) {
        char *schema = NULL, *table = NULL;
        if (config_split_table(cfg->source.tables[i], &schema, &table) != 0)
            return cdc_fail(err, errlen, CDC_EINVAL, "source.tables: malformed name %s",
                            cfg->source.tables[i]);
        const char *params[2] = {schema, table};
        char e[512];
        PGresult *res = pgconn_exec(
            conn, e, sizeof e,
            "SELECT c.relkind, c.relreplident, "
            "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
            "  (SELECT string_agg(an.nspname || '.' || ac.relname, E'\\n') "
            "   FROM pg_partition_ancestors(c.oid) a JOIN pg_class ac ON ac.oid = a.relid "
            "   JOIN pg_namespace an ON an.oid = ac.relnamespace WHERE a.relid <> c.oid) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2",
            2, params);
        int rc = 0;
        if (!res) {
            rc = cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
        } else if (PQntuples(res) == 0) {
            const struct cfg_loc *loc =
                cfg->source.table_locs ? &cfg->source.table_locs[i] : &cfg->source.tables_loc;
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "%s:%d: source.tables: table %s.%s does not exist in database %s",
                          loc->file ? loc->file : cfg->pipeline_file, loc->line, schema, table,
                          cfg->source.database);
        } else {
            char kind = PQgetvalue(res, 0, 0)[0];
            char ident = PQgetvalue(res, 0, 1)[0];
            bool has_pk = PQgetvalue(res, 0, 2)[0] == 't';
            if (kind != 'r' && kind != 'p')
                rc = cdc_fail(err, errlen, CDC_EINVAL,
                              "source.tables: %s.%s is not a table (relkind %c)", schema, table,
                              kind);
            else if ((rc = check_not_partition_of_listed(cfg, schema, table, PQgetvalue(res, 0, 3),
                                                         err, errlen)))
                ;
            else if ((ident == 'd' && !has_pk) || ident == 'n')
                log_warn("source.replica_identity", "table=%s.%s identity=%s hint=%s", schema,
                         table, ident == 'n' ? "nothing" : "default_without_primary_key",
                         log_q("UPDATE and DELETE on this table cannot be captured; add a primary "
                               "key or ALTER TABLE ... REPLICA IDENTITY FULL"));
        }
        PQclear(res);
        free(schema);
        free(table);
        if (rc)
            return rc;
    }
    return 0;
}

int pgslot_get_publication(PGconn *conn, const char *pub, struct pgslot_pub *out, char *err,
                           size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *params[1] = {pub};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e,
                                "SELECT puballtables, pubviaroot, pubinsert, pubupdate, pubdelete, "
                                "  pubtruncate FROM pg_publication WHERE pubname = $1",
                                1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
    if (PQntuples(res) == 1) {
        out->exists = true;
        out->all_tables = PQgetvalue(res, 0, 0)[0] == 't';
        out->via_root = PQgetvalue(res, 0, 1)[0] == 't';
        static const char ops[4] = {'i', 'u', 'd', 't'};
        size_t k = 0;
        for (int i = 0; i < 4; i++)
            if (PQgetvalue(res, 0, 2 + i)[0] == 't')
                out->actions[k++] = ops[i];
        out->actions[k] = '\0';
    }
    PQclear(res);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tables listed in the publication itself (pg_publication_rel: not the
 * partitions or inheritance children it publishes through them), as sorted
 * "schema.table" strings. */
static int publication_members(PGconn *conn, const char *pub, char ***out, size_t *n, char *err,
                               size_t errlen)
{
    *out = NULL;
    *n = 0;
    const char *params[1] = {pub};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e,
                                "SELECT n.nspname || '.' || c.relname FROM pg_publication_rel r "
                                "JOIN pg_publication p ON p.oid = r.prpubid "
                                "JOIN pg_class c ON c.oid = r.prrelid "
                                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE p.pubname = $1",
                                1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
    *n = (size_t)PQntuples(res);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        (*out)[i] = xstrdup(PQgetvalue(res, (int)i, 0));
    PQclear(res);
    qsort(*out, *n, sizeof **out, cmp_str);
    return 0;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool sorted_has(char *const *v, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, v, n, sizeof *v, cmp_str) != NULL;
}

int pgslot_ensure_signal_table(PGconn *conn, const char *schema, const char *name, char *err,
                               size_t errlen)
{
    char *q = pgconn_quote_qualified(schema, name);
    char *sql = xasprintf("CREATE TABLE IF NOT EXISTS %s (id text PRIMARY KEY, type text NOT NULL, "
                          "data text)",
                          q);
    free(q);
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 0, NULL);
    free(sql);
    if (!res)
        return cdc_fail(err, errlen, CDC_ERR, "cannot create signal table %s.%s: %s", schema, name,
                        e);
    PQclear(res);
    return 0;
}

/* Appends "ONLY "s"."t"" for a "schema.table" name to a comma list. */
static void put_only(struct buf *b, const char *name)
{
    char *schema, *table;
    if (config_split_table(name, &schema, &table) != 0) {
        schema = xstrdup("?");
        table = xstrdup(name);
    }
    char *q = pgconn_quote_qualified(schema, table);
    buf_printf(b, "%sONLY %s", b->len ? ", " : "", q);
    free(q);
    free(schema);
    free(table);
}

/* The publication lists each table with ONLY: an inheritance parent then
 * publishes its own rows (children are published only when listed
 * themselves), while a partitioned table still publishes every partition.
 * A publication cdc creates publishes partitions under their root's name
 * (publish_via_partition_root).  An existing one gets the tables added or
 * dropped one by one, so the row filters and column lists of the tables it
 * keeps stay as they are. */
int pgslot_ensure_publication(PGconn *conn, const struct config *cfg, const char *extra_table,
                              const char **action, char *err, size_t errlen)
{
    const struct source_cfg *src = &cfg->source;
    struct pgslot_pub pub;
    int rc = pgslot_get_publication(conn, src->publication_name, &pub, err, errlen);
    if (rc)
        return rc;
    /* The wanted tables as sorted "schema.table" strings. */
    size_t nwant = src->ntables + (extra_table != NULL);
    char **want = xcalloc(nwant, sizeof *want);
    for (size_t i = 0; i < nwant; i++) {
        const char *name = i < src->ntables ? src->tables[i] : extra_table;
        char *schema, *table;
        if (config_split_table(name, &schema, &table) != 0) {
            schema = xstrdup("?");
            table = xstrdup(name);
        }
        want[i] = xasprintf("%s.%s", schema, table);
        free(schema);
        free(table);
    }
    qsort(want, nwant, sizeof *want, cmp_str);
    char **have = NULL;
    size_t nhave = 0;
    if (pub.exists && !pub.all_tables &&
        (rc = publication_members(conn, src->publication_name, &have, &nhave, err, errlen)))
        goto out;

    char *q = pgconn_quote_ident(src->publication_name);
    struct buf add = BUF_INIT, drop = BUF_INIT, sql = BUF_INIT;
    for (size_t i = 0; i < nwant; i++)
        if ((i == 0 || strcmp(want[i], want[i - 1]) != 0) && !sorted_has(have, nhave, want[i]))
            put_only(&add, want[i]);
    for (size_t i = 0; i < nhave; i++)
        if (!sorted_has(want, nwant, have[i]))
            put_only(&drop, have[i]);
    *action = "unchanged";
    if (!pub.exists) {
        buf_printf(&sql,
                   "CREATE PUBLICATION %s FOR TABLE %s WITH (publish_via_partition_root = true)", q,
                   add.p);
        *action = "created";
    } else if (pub.all_tables) {
        log_warn("source.publication_all_tables", "publication=%s", log_q(src->publication_name));
    } else {
        if (add.len)
            buf_printf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", q, add.p);
        if (drop.len)
            buf_printf(&sql, "%sALTER PUBLICATION %s DROP TABLE %s", sql.len ? "; " : "", q,
                       drop.p);
        if (sql.len)
            *action = "updated";
    }
    free(q);
    if (sql.len) {
        char e[512];
        PGresult *res = pgconn_exec(conn, e, sizeof e, sql.p, 0, NULL);
        if (!res)
            rc = cdc_fail(err, errlen, CDC_ERR, "source: cannot %s publication %s: %s",
                          pub.exists ? "alter" : "create", src->publication_name, e);
        PQclear(res);
    }
    buf_fini(&add);
    buf_fini(&drop);
    buf_fini(&sql);
out:
    free_strings(want, nwant);
    free_strings(have, nhave);
    return rc;
}

int pgslot_get(PGconn *conn, const struct config *cfg, struct pgslot_info *info, char *err,
               size_t errlen)
{
    memset(info, 0, sizeof *info);
    const char *params[1] = {cfg->source.slot_name};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e,
                                "SELECT s.plugin, s.slot_type, d.datname, s.active, "
                                "  s.confirmed_flush_lsn, s.restart_lsn, "
                                "  coalesce(s.wal_status, '') = 'lost' "
                                "FROM pg_replication_slots s "
                                "LEFT JOIN pg_database d ON d.oid = s.datoid "
                                "WHERE s.slot_name = $1",
                                1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
    int rc = 0;
    if (PQntuples(res) == 1) {
        info->exists = true;
        const char *plugin = PQgetvalue(res, 0, 0);
        const char *type = PQgetvalue(res, 0, 1);
        const char *db = PQgetvalue(res, 0, 2);
        if (strcmp(type, "logical") != 0 || strcmp(plugin, "pgoutput") != 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "source.slot_name: slot %s exists but is a %s slot for plugin %s; cdc "
                          "needs a logical pgoutput slot (choose another slot_name)",
                          cfg->source.slot_name, type, plugin[0] ? plugin : "none");
        else if (strcmp(db, cfg->source.database) != 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "source.slot_name: slot %s belongs to database %s, not %s",
                          cfg->source.slot_name, db, cfg->source.database);
        info->active = PQgetvalue(res, 0, 3)[0] == 't';
        pgconn_parse_lsn(PQgetvalue(res, 0, 4), &info->confirmed_flush);
        pgconn_parse_lsn(PQgetvalue(res, 0, 5), &info->restart_lsn);
        info->lost = PQgetvalue(res, 0, 6)[0] == 't';
    }
    PQclear(res);
    return rc;
}

int pgslot_create(PGconn *repl, const struct config *cfg, bool export_snapshot,
                  uint64_t *consistent_point, char **snapshot_name, char *err, size_t errlen)
{
    if (snapshot_name)
        *snapshot_name = NULL;
    char *slot = pgconn_quote_ident(cfg->source.slot_name);
    char *sql = xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput %s", slot,
                          export_snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
    free(slot);
    char e[512];
    PGresult *res = pgconn_exec(repl, e, sizeof e, sql, 0, NULL);
    free(sql);
    if (!res)
        return cdc_fail(err, errlen, CDC_ERR, "source: cannot create replication slot %s: %s",
                        cfg->source.slot_name, e);
    /* Columns: slot_name, consistent_point, snapshot_name, output_plugin. */
    pgconn_parse_lsn(PQgetvalue(res, 0, 1), consistent_point);
    if (snapshot_name && !PQgetisnull(res, 0, 2))
        *snapshot_name = xstrdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    return 0;
}

int pgslot_drop(PGconn *conn, const struct config *cfg, bool *dropped_slot, bool *dropped_pub,
                char *err, size_t errlen)
{
    *dropped_slot = *dropped_pub = false;
    struct pgslot_info info;
    int rc = pgslot_get(conn, cfg, &info, err, errlen);
    if (rc && !info.exists)
        return rc;
    char e[512];
    if (info.exists) {
        if (info.active)
            return cdc_fail(err, errlen, CDC_ERR,
                            "source: slot %s is in use by a running pipeline; stop it first",
                            cfg->source.slot_name);
        const char *params[1] = {cfg->source.slot_name};
        PGresult *res =
            pgconn_exec(conn, e, sizeof e, "SELECT pg_drop_replication_slot($1)", 1, params);
        if (!res)
            return cdc_fail(err, errlen, CDC_ERR, "source: cannot drop slot %s: %s",
                            cfg->source.slot_name, e);
        PQclear(res);
        *dropped_slot = true;
    }
    struct pgslot_pub pub;
    if ((rc = pgslot_get_publication(conn, cfg->source.publication_name, &pub, err, errlen)))
        return rc;
    if (pub.exists) {
        char *q = pgconn_quote_ident(cfg->source.publication_name);
        char *sql = xasprintf("DROP PUBLICATION %s", q);
        free(q);
        PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 0, NULL);
        free(sql);
        if (!res)
            return cdc_fail(err, errlen, CDC_ERR, "source: cannot drop publication %s: %s",
                            cfg->source.publication_name, e);
        PQclear(res);
        *dropped_pub = true;
    }
    return 0;
}
