/* What the state store's own files share (store.c: the connection, the
 * dead-letter queue and key/value; store_schema.c: the schema history).
 * Not for callers outside src/state/: they use store.h. */
#ifndef CDC_STATE_STORE_INT_H
#define CDC_STATE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>

struct store {
    pthread_mutex_t mu; /* guards db */
    sqlite3 *db;
    char *path; /* owned: what error messages name */
};

/* Formats "PATH: cannot WHAT: sqlite's reason" into err and returns CDC_EIO. */
int store_db_fail(struct store *st, char *err, size_t errlen, const char *what);
/* Prepares sql; on failure *stmt = NULL and CDC_EIO naming what. */
int store_prepare(struct store *st, sqlite3_stmt **stmt, const char *sql, char *err, size_t errlen,
                  const char *what);
/* Runs statements that return no rows. */
int store_exec_sql(struct store *st, const char *sql, char *err, size_t errlen, const char *what);
/* Column i of the current row as text ("" for NULL). */
const char *store_col_text(sqlite3_stmt *stmt, int i);

#endif
