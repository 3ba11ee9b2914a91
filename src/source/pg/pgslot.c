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
            "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
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

/* The publication's current tables as a sorted "schema.table\n…" list. */
static int publication_tables(PGconn *conn, const char *pub, bool *exists, bool *all_tables,
                              struct buf *list, char *err, size_t errlen)
{
    const char *params[1] = {pub};
    char e[512];
    PGresult *res = pgconn_exec(
        conn, e, sizeof e, "SELECT puballtables FROM pg_publication WHERE pubname = $1", 1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
    *exists = PQntuples(res) == 1;
    *all_tables = *exists && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!*exists)
        return 0;
    res = pgconn_exec(conn, e, sizeof e,
                      "SELECT schemaname || '.' || tablename FROM pg_publication_tables "
                      "WHERE pubname = $1 ORDER BY 1",
                      1, params);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "source: %s", e);
    for (int i = 0; i < PQntuples(res); i++) {
        buf_puts(list, PQgetvalue(res, i, 0));
        buf_putc(list, '\n');
    }
    PQclear(res);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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

int pgslot_ensure_publication(PGconn *conn, const struct config *cfg, const char *extra_table,
                              const char **action, char *err, size_t errlen)
{
    const struct source_cfg *src = &cfg->source;
    bool exists = false, all = false;
    struct buf have = BUF_INIT, want = BUF_INIT, tables = BUF_INIT;
    int rc = publication_tables(conn, src->publication_name, &exists, &all, &have, err, errlen);
    if (rc)
        goto out;

    /* The wanted list in the same "schema.table\n" form, and the SQL list. */
    size_t ntables = src->ntables + (extra_table != NULL);
    char **names = xcalloc(ntables, sizeof *names);
    for (size_t i = 0; i < ntables; i++) {
        const char *name = i < src->ntables ? src->tables[i] : extra_table;
        char *schema, *table;
        if (config_split_table(name, &schema, &table) != 0) {
            schema = xstrdup("?");
            table = xstrdup(name);
        }
        names[i] = xasprintf("%s.%s", schema, table);
        char *q = pgconn_quote_qualified(schema, table);
        if (i)
            buf_puts(&tables, ", ");
        buf_puts(&tables, q);
        free(q);
        free(schema);
        free(table);
    }
    qsort(names, ntables, sizeof *names, cmp_str);
    for (size_t i = 0; i < ntables; i++) {
        buf_puts(&want, names[i]);
        buf_putc(&want, '\n');
        free(names[i]);
    }
    free(names);

    char *pub = pgconn_quote_ident(src->publication_name);
    char *sql = NULL;
    if (!exists) {
        sql = xasprintf("CREATE PUBLICATION %s FOR TABLE %s", pub, tables.p);
        *action = "created";
    } else if (all) {
        log_warn("source.publication_all_tables", "publication=%s", log_q(src->publication_name));
        *action = "unchanged";
    } else if (strcmp(have.p ? have.p : "", want.p ? want.p : "") != 0) {
        sql = xasprintf("ALTER PUBLICATION %s SET TABLE %s", pub, tables.p);
        *action = "updated";
    } else {
        *action = "unchanged";
    }
    free(pub);
    if (sql) {
        char e[512];
        PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 0, NULL);
        if (!res)
            rc = cdc_fail(err, errlen, CDC_ERR, "source: cannot %s publication %s: %s",
                          exists ? "alter" : "create", src->publication_name, e);
        PQclear(res);
        free(sql);
    }
out:
    buf_fini(&have);
    buf_fini(&want);
    buf_fini(&tables);
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
    bool exists = false, all = false;
    struct buf list = BUF_INIT;
    rc = publication_tables(conn, cfg->source.publication_name, &exists, &all, &list, err, errlen);
    buf_fini(&list);
    if (rc)
        return rc;
    if (exists) {
        char *pub = pgconn_quote_ident(cfg->source.publication_name);
        char *sql = xasprintf("DROP PUBLICATION %s", pub);
        free(pub);
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
