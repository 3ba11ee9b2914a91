/* The schema history's tables in the state store (contract in store.h).
 *
 * schema_versions holds one row per version of a table, schema_columns its
 * columns in order.  A version and its columns are written in one
 * transaction, so a reader never sees a version without its columns.
 * Positions are stored as the bits of SQLite's signed integers, as the
 * dead-letter queue's are. */
#include <stdlib.h>
#include <string.h>

#include "state/store.h"
#include "state/store_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"

void schema_version_fini(struct schema_version *v)
{
    if (!v)
        return;
    free(v->changes);
    free(v->summary);
    cdc_table_unref(v->shape);
    v->changes = v->summary = NULL;
    v->shape = NULL;
}

static int add_columns(struct store *st, const struct schema_version *v, char *err, size_t errlen)
{
    sqlite3_stmt *stmt;
    int rc = store_prepare(st, &stmt,
                           "INSERT INTO schema_columns (schema_name, table_name, version, ord, "
                           "name, type_name, type_class, type_oid, typmod, is_key, attnum, "
                           "not_null, has_default) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                           err, errlen, "record a schema version's columns");
    const struct cdc_table *tab = v->shape;
    for (uint16_t i = 0; rc == 0 && i < tab->ncols; i++) {
        const struct cdc_column *c = &tab->cols[i];
        sqlite3_reset(stmt);
        sqlite3_bind_text(stmt, 1, tab->schema, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, tab->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, v->version);
        sqlite3_bind_int(stmt, 4, i);
        sqlite3_bind_text(stmt, 5, c->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 6, c->type_name ? c->type_name : "text", -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 7, (int)c->type);
        sqlite3_bind_int64(stmt, 8, c->type_oid);
        sqlite3_bind_int(stmt, 9, c->typmod);
        sqlite3_bind_int(stmt, 10, c->key);
        sqlite3_bind_int(stmt, 11, c->attnum);
        sqlite3_bind_int(stmt, 12, c->not_null);
        sqlite3_bind_int(stmt, 13, c->has_default);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = store_db_fail(st, err, errlen, "record a schema version's columns");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int store_schema_add(struct store *st, const struct schema_version *v, char *err, size_t errlen)
{
    const struct cdc_table *tab = v->shape;
    pthread_mutex_lock(&st->mu);
    int rc = store_exec_sql(st, "BEGIN IMMEDIATE", err, errlen, "record a schema version");
    bool in_txn = rc == 0;
    sqlite3_stmt *stmt = NULL;
    if (rc == 0)
        rc = store_prepare(st, &stmt,
                           "INSERT INTO schema_versions (schema_name, table_name, version, "
                           "stream, commit_lsn, event_index, key_unique, compatible, changes, "
                           "held, recorded_us, summary) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                           err, errlen, "record a schema version");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, tab->schema, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, tab->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, v->version);
        sqlite3_bind_int64(stmt, 4, v->pos.stream);
        sqlite3_bind_int64(stmt, 5, (sqlite3_int64)v->pos.lsn);
        sqlite3_bind_int64(stmt, 6, (sqlite3_int64)v->pos.idx);
        sqlite3_bind_int(stmt, 7, tab->key_unique);
        sqlite3_bind_int(stmt, 8, v->compatible);
        sqlite3_bind_text(stmt, 9, v->changes ? v->changes : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 10, v->held);
        sqlite3_bind_int64(stmt, 11, v->recorded_us ? v->recorded_us : clock_wall_us());
        sqlite3_bind_text(stmt, 12, v->summary ? v->summary : "", -1, SQLITE_STATIC);
        int s = sqlite3_step(stmt);
        if (s == SQLITE_CONSTRAINT)
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: version %u of %s.%s is recorded already",
                          st->path, v->version, tab->schema, tab->name);
        else if (s != SQLITE_DONE)
            rc = store_db_fail(st, err, errlen, "record a schema version");
    }
    sqlite3_finalize(stmt);
    if (rc == 0)
        rc = add_columns(st, v, err, errlen);
    if (rc == 0)
        rc = store_exec_sql(st, "COMMIT", err, errlen, "record a schema version");
    if (rc && in_txn)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_schema_release(struct store *st, const char *schema, const char *name, uint32_t version,
                         char *err, size_t errlen)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = store_prepare(st, &stmt,
                           "UPDATE schema_versions SET held = 0 "
                           "WHERE schema_name = ?1 AND table_name = ?2 AND version = ?3",
                           err, errlen, "accept a schema version");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, schema, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, version);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = store_db_fail(st, err, errlen, "accept a schema version");
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Reads the columns of schema.name's version into a new shape. */
static int read_shape(struct store *st, sqlite3_stmt *cols, const char *schema, const char *name,
                      uint32_t version, bool key_unique, struct cdc_table **out, char *err,
                      size_t errlen)
{
    sqlite3_reset(cols);
    sqlite3_bind_text(cols, 1, schema, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(cols, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(cols, 3, version);
    struct cdc_column *got = NULL;
    size_t n = 0, cap = 0;
    int s;
    while ((s = sqlite3_step(cols)) == SQLITE_ROW && n < UINT16_MAX) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            got = xrealloc(got, cap * sizeof *got);
        }
        struct cdc_column *c = &got[n++];
        memset(c, 0, sizeof *c);
        c->name = xstrdup(store_col_text(cols, 0));
        c->type_name = xstrdup(store_col_text(cols, 1));
        c->type = (enum cdc_type)sqlite3_column_int(cols, 2);
        c->type_oid = (uint32_t)sqlite3_column_int64(cols, 3);
        c->typmod = sqlite3_column_int(cols, 4);
        c->key = sqlite3_column_int(cols, 5) != 0;
        c->attnum = (int16_t)sqlite3_column_int(cols, 6);
        c->not_null = sqlite3_column_int(cols, 7) != 0;
        c->has_default = sqlite3_column_int(cols, 8) != 0;
    }
    struct cdc_table *tab = cdc_table_new(0, schema, name, NULL, (uint16_t)n);
    if (n)
        memcpy(tab->cols, got, n * sizeof *got);
    free(got);
    cdc_table_finish(tab);
    tab->key_unique = key_unique;
    tab->version = version;
    if (s != SQLITE_DONE && s != SQLITE_ROW) {
        cdc_table_unref(tab);
        return store_db_fail(st, err, errlen, "read a schema version's columns");
    }
    *out = tab;
    return 0;
}

/* Versions are read a whole list at a time under the lock (they are few),
 * then handed to fn without it. */
int store_schema_list(struct store *st, const char *schema, const char *name,
                      int (*fn)(const struct schema_version *v, void *arg), void *arg, char *err,
                      size_t errlen)
{
    struct schema_version *list = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt = NULL, *cols = NULL;
    int rc = store_prepare(st, &stmt,
                           schema ? "SELECT schema_name, table_name, version, stream, commit_lsn, "
                                    "event_index, key_unique, compatible, changes, held, "
                                    "recorded_us, summary FROM schema_versions "
                                    "WHERE schema_name = ?1 AND table_name = ?2 "
                                    "ORDER BY schema_name, table_name, version"
                                  : "SELECT schema_name, table_name, version, stream, commit_lsn, "
                                    "event_index, key_unique, compatible, changes, held, "
                                    "recorded_us, summary FROM schema_versions "
                                    "ORDER BY schema_name, table_name, version",
                           err, errlen, "list schema versions");
    if (rc == 0)
        rc = store_prepare(st, &cols,
                           "SELECT name, type_name, type_class, type_oid, typmod, is_key, "
                           "attnum, not_null, has_default FROM schema_columns "
                           "WHERE schema_name = ?1 AND table_name = ?2 AND version = ?3 "
                           "ORDER BY ord",
                           err, errlen, "list schema versions");
    if (rc == 0 && schema) {
        sqlite3_bind_text(stmt, 1, schema, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    }
    int s = SQLITE_DONE;
    while (rc == 0 && (s = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xrealloc(list, cap * sizeof *list);
        }
        struct schema_version *v = &list[n];
        memset(v, 0, sizeof *v);
        v->version = (uint32_t)sqlite3_column_int64(stmt, 2);
        v->pos.stream = (uint32_t)sqlite3_column_int64(stmt, 3);
        v->pos.lsn = (uint64_t)sqlite3_column_int64(stmt, 4);
        v->pos.idx = (uint64_t)sqlite3_column_int64(stmt, 5);
        v->compatible = sqlite3_column_int(stmt, 7);
        v->changes = xstrdup(store_col_text(stmt, 8));
        v->held = sqlite3_column_int(stmt, 9) != 0;
        v->recorded_us = sqlite3_column_int64(stmt, 10);
        v->summary = xstrdup(store_col_text(stmt, 11));
        rc = read_shape(st, cols, store_col_text(stmt, 0), store_col_text(stmt, 1), v->version,
                        sqlite3_column_int(stmt, 6) != 0, &v->shape, err, errlen);
        n++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = store_db_fail(st, err, errlen, "list schema versions");
    sqlite3_finalize(stmt);
    sqlite3_finalize(cols);
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && list[i].shape && fn(&list[i], arg) != 0)
            rc = 1;
        schema_version_fini(&list[i]);
    }
    free(list);
    return rc == 1 ? 0 : rc;
}
