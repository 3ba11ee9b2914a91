/* The SQL catalog in SQLite, with the tables and columns of PyIceberg's
 * SqlCatalog (and Java's JdbcCatalog), so either can open the same database:
 *
 *   iceberg_tables(catalog_name, table_namespace, table_name,
 *                  metadata_location, previous_metadata_location[, iceberg_type])
 *   iceberg_namespace_properties(catalog_name, namespace, property_key,
 *                                property_value)
 *
 * A commit writes <location>/metadata/NNNNN-<uuid>.metadata.json, then swaps
 * the pointer with UPDATE … WHERE metadata_location = <base>: no row changed
 * means another writer committed first (CDC_EAGAIN).  `iceberg_type` (added
 * to PyIceberg's schema later) is filled when the database has it. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_catalog.h"
#include "lake/ice_catalog_sql.h"
#include "util/err.h"
#include "util/mem.h"

struct sql_catalog {
    struct ice_catalog cat;
    sqlite3 *db;
    bool has_type; /* iceberg_tables.iceberg_type exists */
};

#define SQL(c) ((struct sql_catalog *)(c))

static int read_meta(struct lake_store *st, const char *uri, struct ice_meta **out, char *err,
                     size_t errlen)
{
    struct buf b = BUF_INIT;
    int rc = lake_store_get(st, uri, &b, err, errlen);
    if (rc == LAKE_STORE_ABSENT)
        rc = cdc_fail(err, errlen, CDC_EIO, "the catalog points at %s, which does not exist", uri);
    if (rc == 0) {
        char perr[256];
        if (ice_meta_parse(b.p ? b.p : "", b.len, out, perr, sizeof perr) < 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: %s", uri, perr);
    }
    buf_fini(&b);
    return rc;
}

static int sql_fail(struct sql_catalog *s, const char *what, char *err, size_t errlen)
{
    return cdc_fail(err, errlen, CDC_EIO, "SQL catalog: %s: %s", what, sqlite3_errmsg(s->db));
}

static int sql_load(struct ice_catalog *cat, const char *ns, const char *table, char **location,
                    struct ice_meta **meta, char *err, size_t errlen)
{
    struct sql_catalog *s = SQL(cat);
    *location = NULL;
    *meta = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ?1 "
                           "AND table_namespace = ?2 AND table_name = ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(s, "load", err, errlen);
    sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, table, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char *loc = NULL;
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        loc = xstrdup((const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        rc = -1;
    sqlite3_finalize(st);
    if (rc < 0)
        return sql_fail(s, "load", err, errlen);
    if (!loc)
        return LAKE_STORE_ABSENT;
    rc = read_meta(cat->store, loc, meta, err, errlen);
    if (rc < 0) {
        free(loc);
        return rc;
    }
    *location = loc;
    return 0;
}

/* NNNNN of ".../NNNNN-uuid.metadata.json", or -1. */
static long version_of(const char *uri)
{
    const char *s = uri ? strrchr(uri, '/') : NULL;
    long v = -1;
    if (s && sscanf(s, "/%ld-", &v) == 1)
        return v;
    return -1;
}

static int put_meta(struct ice_catalog *cat, const struct ice_meta *meta, long v, char **uri,
                    char *err, size_t errlen)
{
    char uuid[37];
    ice_uuid(uuid);
    *uri = xasprintf("%s/metadata/%05ld-%s.metadata.json", meta->location, v, uuid);
    struct buf json = BUF_INIT;
    ice_meta_json(&json, meta);
    int rc = lake_store_put(cat->store, *uri, json.p, json.len, LAKE_PUT_NOREPLACE, err, errlen);
    buf_fini(&json);
    if (rc == LAKE_STORE_EXISTS)
        rc = cdc_fail(err, errlen, CDC_EIO, "%s exists already", *uri);
    if (rc != 0) {
        free(*uri);
        *uri = NULL;
    }
    return rc;
}

static int exec(struct sql_catalog *s, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(s, sql, err, errlen);
    return 0;
}

static int sql_create(struct ice_catalog *cat, const char *ns, const char *table,
                      const struct ice_meta *meta, char **location, struct ice_meta **out,
                      char *err, size_t errlen)
{
    struct sql_catalog *s = SQL(cat);
    char *uri;
    int rc = put_meta(cat, meta, 0, &uri, err, errlen);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = exec(s, "BEGIN IMMEDIATE", err, errlen);
    if (rc == 0 &&
        sqlite3_prepare_v2(s->db,
                           "INSERT OR IGNORE INTO iceberg_namespace_properties (catalog_name, "
                           "namespace, property_key, property_value) VALUES (?1, ?2, 'exists', "
                           "'true')",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_fail(s, "create namespace", err, errlen);
    } else if (rc == 0) {
        rc = sql_fail(s, "create namespace", err, errlen);
    }
    sqlite3_finalize(st);
    st = NULL;
    const char *ins =
        s->has_type ? "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, "
                      "metadata_location, previous_metadata_location, iceberg_type) VALUES "
                      "(?1, ?2, ?3, ?4, NULL, 'TABLE')"
                    : "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, "
                      "metadata_location, previous_metadata_location) VALUES (?1, ?2, ?3, "
                      "?4, NULL)";
    if (rc == 0 && sqlite3_prepare_v2(s->db, ins, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, uri, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_CONSTRAINT)
            rc = cdc_fail(err, errlen, CDC_EAGAIN, "table %s.%s exists already", ns, table);
        else if (r != SQLITE_DONE)
            rc = sql_fail(s, "create table", err, errlen);
    } else if (rc == 0) {
        rc = sql_fail(s, "create table", err, errlen);
    }
    sqlite3_finalize(st);
    if (rc == 0)
        rc = exec(s, "COMMIT", err, errlen);
    if (rc != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        char derr[128];
        lake_store_del(cat->store, uri, derr, sizeof derr);
        free(uri);
        return rc;
    }
    *location = uri;
    *out = ice_meta_copy(meta);
    return 0;
}

static int sql_commit(struct ice_catalog *cat, const struct ice_commit_req *req, char **location,
                      struct ice_meta **stored, char *err, size_t errlen)
{
    *stored = NULL;
    struct sql_catalog *s = SQL(cat);
    long v = version_of(req->base_location);
    char *uri;
    int rc = put_meta(cat, req->meta, v + 1, &uri, err, errlen);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE iceberg_tables SET metadata_location = ?1, "
                           "previous_metadata_location = ?2 WHERE catalog_name = ?3 AND "
                           "table_namespace = ?4 AND table_name = ?5 AND metadata_location = ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(s, "commit", err, errlen);
    } else {
        sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, req->base_location, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, cat->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, req->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, req->table, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_fail(s, "commit", err, errlen);
        else if (sqlite3_changes(s->db) != 1)
            rc = cdc_fail(err, errlen, CDC_EAGAIN,
                          "table %s.%s moved past %s: another writer committed", req->ns,
                          req->table, req->base_location);
        sqlite3_finalize(st);
    }
    if (rc != 0) {
        /* Never current: remove it now rather than leave an orphan. */
        char derr[128];
        lake_store_del(cat->store, uri, derr, sizeof derr);
        free(uri);
        return rc;
    }
    *location = uri;
    return 0;
}

static void sql_free(struct ice_catalog *cat)
{
    struct sql_catalog *s = SQL(cat);
    sqlite3_close(s->db);
    free(cat->name);
    free(cat->warehouse);
    free(s);
}

static const struct ice_catalog_ops sql_ops = {"sql", sql_load, sql_create, sql_commit, sql_free};

int ice_catalog_sql_open(struct lake_store *store, const char *catalog_name, const char *uri,
                         const char *warehouse, struct ice_catalog **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(uri, "sqlite:///", 10) != 0 || !uri[10])
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "catalog_uri %s: expected sqlite:///relative.db or sqlite:////abs.db", uri);
    const char *path = uri + 10; /* "/abs.db" for sqlite:////abs.db */
    struct sql_catalog *s = xcalloc(1, sizeof *s);
    s->cat.ops = &sql_ops;
    s->cat.store = store;
    s->cat.name = xstrdup(catalog_name ? catalog_name : "default");
    s->cat.warehouse = xstrdup(warehouse);
    size_t n = strlen(s->cat.warehouse);
    while (n && s->cat.warehouse[n - 1] == '/')
        s->cat.warehouse[--n] = '\0';
    int rc = 0;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = cdc_fail(err, errlen, CDC_EIO, "SQL catalog %s: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 10000);
    rc = exec(s,
              "CREATE TABLE IF NOT EXISTS iceberg_tables (catalog_name VARCHAR(255) NOT NULL, "
              "table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, "
              "metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), "
              "iceberg_type VARCHAR(5), PRIMARY KEY (catalog_name, table_namespace, table_name));"
              "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (catalog_name "
              "VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, property_key "
              "VARCHAR(255) NOT NULL, property_value VARCHAR(1000) NOT NULL, PRIMARY KEY "
              "(catalog_name, namespace, property_key));",
              err, errlen);
    if (rc < 0)
        goto fail;
    s->has_type = sqlite3_exec(s->db, "SELECT iceberg_type FROM iceberg_tables LIMIT 0", NULL, NULL,
                               NULL) == SQLITE_OK;
    *out = &s->cat;
    return 0;
fail:
    sql_free(&s->cat);
    return rc;
}
