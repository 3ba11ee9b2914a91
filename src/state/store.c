/* The state store on SQLite (contract in store.h).
 *
 * One connection per struct store, serialized by st->mu: a SQLite connection
 * must not run statements from two threads at once, and the callers (sink
 * threads dead-lettering now and then, the CLI) are never busy enough for a
 * pool to pay.  Durability is WAL with synchronous=FULL: every commit fsyncs
 * the WAL before it returns.  Other processes (`cdc dlq` while `cdc run` is
 * running) open their own connections; SQLite's file locks order the writers
 * and the busy timeout makes a writer wait for its turn instead of failing.
 *
 * Positions are unsigned 64-bit numbers stored in SQLite's signed integers
 * (the bits unchanged), so the SQL never orders by them: sorting happens here.
 * Each entry's position also names its source stream (0 for a source with
 * one; the `stream` column). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/evcodec.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/mem.h"
#include "util/str.h"

#define BUSY_TIMEOUT_MS 10000
#define LIST_PAGE       128 /* entries read per lock hold while listing */

struct store {
    pthread_mutex_t mu; /* guards db */
    sqlite3 *db;
    char *path; /* owned: what error messages name */
};

/* Schema migrations: migrations[v] takes a database from user_version v to
 * v + 1.  Append only; never edit a released step. */
static const char *const migrations[] = {
    "CREATE TABLE dlq ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused, even after a purge */
    " sink_id TEXT NOT NULL,"
    " commit_lsn INTEGER NOT NULL,"  /* uint64 bits */
    " event_index INTEGER NOT NULL," /* uint64 bits */
    " topic TEXT NOT NULL,"
    " op TEXT NOT NULL,"
    " key_json TEXT,"
    " value_json TEXT,"
    " event BLOB NOT NULL," /* evcodec encoding */
    " error_class TEXT NOT NULL,"
    " error TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " http_status INTEGER NOT NULL,"
    " first_failed_us INTEGER NOT NULL,"
    " dead_lettered_us INTEGER NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'resolved')),"
    " resolved_us INTEGER NOT NULL DEFAULT 0);"
    /* store_dlq_pending_positions, store_dlq_count and listings of one sink */
    "CREATE INDEX dlq_sink_status ON dlq (sink_id, status, commit_lsn, event_index);"
    /* listings of every sink, store_dlq_purge */
    "CREATE INDEX dlq_status ON dlq (status, id);"
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    /* 1 -> 2: positions carry the source stream they belong to; older entries
     * are stream 0's (the only one then). */
    "ALTER TABLE dlq ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3: snapshot rows are told apart (skipped by content, never by
     * position: their position is only where in the stream they belong) */
    "ALTER TABLE dlq ADD COLUMN snapshot INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

static const char entry_cols[] = "id, sink_id, commit_lsn, event_index, topic, op, error_class, "
                                 "error, attempts, http_status, first_failed_us, "
                                 "dead_lettered_us, status, resolved_us, stream";
#define ENTRY_NCOLS 15

/* Formats "PATH: cannot WHAT: sqlite's reason" into err and returns CDC_EIO. */
static int db_fail(struct store *st, char *err, size_t errlen, const char *what)
{
    return cdc_fail(err, errlen, CDC_EIO, "%s: cannot %s: %s", st->path, what,
                    sqlite3_errmsg(st->db));
}

static int prepare(struct store *st, sqlite3_stmt **stmt, const char *sql, char *err, size_t errlen,
                   const char *what)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return db_fail(st, err, errlen, what);
    }
    return 0;
}

/* Runs a statement that returns no rows. */
static int exec_sql(struct store *st, const char *sql, char *err, size_t errlen, const char *what)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(st, err, errlen, what);
    return 0;
}

/* Reads a PRAGMA that answers one integer. */
static int pragma_int(struct store *st, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt, sql, err, errlen, "read the schema version");
    if (rc)
        return rc;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        *v = sqlite3_column_int64(stmt, 0);
    else
        rc = db_fail(st, err, errlen, "read the schema version");
    sqlite3_finalize(stmt);
    return rc;
}

/* Creates the database file (mode 0600: it holds row data; SQLite gives its
 * -wal and -shm files the same mode) and its directories, and makes the new
 * directory entry durable.  An existing file is left alone. */
static int create_file(const char *path, char *err, size_t errlen)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        rc = fs_make_dirs(path, dir, err, errlen);
    } else {
        strcpy(dir, slash ? "/" : ".");
    }
    if (rc == 0 && access(path, F_OK) != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = cdc_fail(err, errlen, CDC_EIO, "%s: cannot create the file: %s", path,
                          strerror(errno));
        } else {
            close(fd);
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
        }
    }
    free(dir);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION.  The version is re-read inside the
 * write transaction, so two processes opening a new file at once do not both
 * migrate. */
static int migrate(struct store *st, char *err, size_t errlen)
{
    int64_t v = 0;
    int rc = pragma_int(st, "PRAGMA user_version", &v, err, errlen);
    if (rc == 0 && v >= 0 && v < SCHEMA_VERSION &&
        (rc = exec_sql(st, "BEGIN IMMEDIATE", err, errlen, "start the schema migration")) == 0) {
        rc = pragma_int(st, "PRAGMA user_version", &v, err, errlen);
        for (; rc == 0 && v >= 0 && v < SCHEMA_VERSION; v++)
            rc = exec_sql(st, migrations[v], err, errlen, "create the schema");
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v);
        if (rc == 0)
            rc = exec_sql(st, sql, err, errlen, "record the schema version");
        if (rc == 0)
            rc = exec_sql(st, "COMMIT", err, errlen, "commit the schema");
        if (rc)
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc == 0 && v != SCHEMA_VERSION)
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "%s: schema version %lld is not one this version of cdc knows (1 to %d); "
                      "was it written by a newer cdc?",
                      st->path, (long long)v, SCHEMA_VERSION);
    return rc;
}

char *store_path(const char *state_dir, const char *pipeline_id)
{
    size_t n = strlen(state_dir);
    while (n > 1 && state_dir[n - 1] == '/')
        n--;
    return xasprintf("%.*s/%s/state.db", (int)n, state_dir, pipeline_id);
}

int store_open(struct store **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path)
        return cdc_fail(err, errlen, CDC_EINVAL, "state store: empty file name");
    bool mem = strcmp(path, ":memory:") == 0;
    int rc = mem ? 0 : create_file(path, err, errlen);
    if (rc)
        return rc;
    struct store *st = xcalloc(1, sizeof *st);
    st->path = xstrdup(path);
    pthread_mutex_init(&st->mu, NULL);
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = st->db ? db_fail(st, err, errlen, "open the state store")
                    : cdc_fail(err, errlen, CDC_EIO, "%s: cannot open the state store", path);
        goto fail;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    sqlite3_stmt *stmt;
    if ((rc = prepare(st, &stmt, "PRAGMA journal_mode = WAL", err, errlen,
                      "switch to the WAL journal")))
        goto fail;
    const char *mode = NULL;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(stmt, 0);
    bool wal = mode && strcmp(mode, mem ? "memory" : "wal") == 0;
    if (!wal)
        rc = mode ? cdc_fail(err, errlen, CDC_EIO,
                             "%s: cannot switch to the WAL journal: the file system allows "
                             "journal mode %s only",
                             path, mode)
                  : db_fail(st, err, errlen, "switch to the WAL journal");
    sqlite3_finalize(stmt);
    if (rc ||
        (rc = exec_sql(st, "PRAGMA synchronous = FULL", err, errlen, "set synchronous=FULL")) ||
        (rc = migrate(st, err, errlen)))
        goto fail;
    *out = st;
    return 0;
fail:
    store_close(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    sqlite3_close_v2(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st->path);
    free(st);
}

/* ---------- dead-letter queue ---------- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

static const char dlq_insert_sql[] =
    "INSERT INTO dlq (sink_id, commit_lsn, event_index, topic, op, key_json, "
    "value_json, event, error_class, error, attempts, http_status, "
    "first_failed_us, dead_lettered_us, stream, snapshot) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/* Inserts one entry with a prepared dlq_insert_sql statement. */
static int dlq_insert(struct store *st, sqlite3_stmt *stmt, const struct cdc_event *ev,
                      const char *key_json, const char *value_json, const struct dlq_failure *f,
                      int64_t *id, char *err, size_t errlen)
{
    struct buf blob = BUF_INIT;
    evcodec_encode(&blob, ev);
    char op[2] = {(char)ev->op, '\0'};
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    sqlite3_bind_text(stmt, 1, f->sink_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)ev->pos.lsn);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)ev->pos.idx);
    sqlite3_bind_text(stmt, 4, ev->tab ? ev->tab->topic : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, op, -1, SQLITE_STATIC);
    if (key_json)
        sqlite3_bind_text(stmt, 6, key_json, -1, SQLITE_STATIC);
    if (value_json)
        sqlite3_bind_text(stmt, 7, value_json, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 8, blob.p, (int)blob.len, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 9, nz(f->error_class), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 10, nz(f->error), -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 11, f->attempts);
    sqlite3_bind_int(stmt, 12, f->http_status);
    sqlite3_bind_int64(stmt, 13, f->first_failed_us);
    sqlite3_bind_int64(stmt, 14, clock_wall_us());
    sqlite3_bind_int64(stmt, 15, ev->pos.stream);
    sqlite3_bind_int(stmt, 16, ev->snapshot);
    int rc = 0;
    if (sqlite3_step(stmt) != SQLITE_DONE)
        rc = db_fail(st, err, errlen, "add a dead-letter entry");
    else if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    buf_fini(&blob);
    return rc;
}

static bool dlq_storable(const struct cdc_event *ev, const struct dlq_failure *f)
{
    return ev && !cdc_op_is_control(ev->op) && f && f->sink_id;
}

int store_dlq_add(struct store *st, const struct cdc_event *ev, const char *key_json,
                  const char *value_json, const struct dlq_failure *f, int64_t *id, char *err,
                  size_t errlen)
{
    return store_dlq_add_many(st, 1, &ev, &key_json, &value_json, f, id, err, errlen);
}

int store_dlq_add_many(struct store *st, size_t n, const struct cdc_event *const *evs,
                       const char *const *key_json, const char *const *value_json,
                       const struct dlq_failure *f, int64_t *first_id, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (!dlq_storable(evs[i], f))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "%s: cannot dead-letter a control event or one without a sink_id",
                            st->path);
    if (n == 0)
        return 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt = NULL;
    int rc = n > 1 ? exec_sql(st, "BEGIN IMMEDIATE", err, errlen, "add dead-letter entries") : 0;
    bool in_txn = n > 1 && rc == 0;
    if (rc == 0)
        rc = prepare(st, &stmt, dlq_insert_sql, err, errlen, "add a dead-letter entry");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc =
            dlq_insert(st, stmt, evs[i], key_json ? key_json[i] : NULL,
                       value_json ? value_json[i] : NULL, f, i == 0 ? first_id : NULL, err, errlen);
    sqlite3_finalize(stmt);
    if (in_txn && rc == 0)
        rc = exec_sql(st, "COMMIT", err, errlen, "add dead-letter entries");
    if (in_txn && rc != 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void dlq_entry_fini(struct dlq_entry *e)
{
    if (!e)
        return;
    free(e->key_json);
    free(e->value_json);
    free(e->event);
    e->key_json = e->value_json = NULL;
    e->event = NULL;
    e->event_len = 0;
}

static const char *col_text(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    return s ? (const char *)s : "";
}

/* Fills e from a row selected with entry_cols (payload pointers NULL). */
static void read_entry(sqlite3_stmt *stmt, struct dlq_entry *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(stmt, 0);
    str_copy(e->sink_id, sizeof e->sink_id, col_text(stmt, 1));
    e->pos.lsn = (uint64_t)sqlite3_column_int64(stmt, 2);
    e->pos.idx = (uint64_t)sqlite3_column_int64(stmt, 3);
    str_copy(e->topic, sizeof e->topic, col_text(stmt, 4));
    e->op = col_text(stmt, 5)[0];
    str_copy(e->error_class, sizeof e->error_class, col_text(stmt, 6));
    str_copy(e->error, sizeof e->error, col_text(stmt, 7));
    e->attempts = sqlite3_column_int(stmt, 8);
    e->http_status = sqlite3_column_int(stmt, 9);
    e->first_failed_us = sqlite3_column_int64(stmt, 10);
    e->dead_lettered_us = sqlite3_column_int64(stmt, 11);
    e->status = strcmp(col_text(stmt, 12), "resolved") == 0 ? DLQ_RESOLVED : DLQ_PENDING;
    e->resolved_us = sqlite3_column_int64(stmt, 13);
    e->pos.stream = (uint32_t)sqlite3_column_int64(stmt, 14);
}

/* Reads entries a page at a time and calls fn with the store unlocked, so a
 * long listing never holds up a sink thread and fn may call the store (e.g.
 * store_dlq_resolve). */
int store_dlq_list(struct store *st, const char *sink_id, bool include_resolved,
                   int (*fn)(const struct dlq_entry *e, void *arg), void *arg, char *err,
                   size_t errlen)
{
    struct buf sql = BUF_INIT;
    buf_printf(&sql, "SELECT %s, key_json FROM dlq WHERE id > ?1%s%s ORDER BY id LIMIT %d",
               entry_cols, sink_id ? " AND sink_id = ?2" : "",
               include_resolved ? "" : " AND status = 'pending'", LIST_PAGE);
    struct dlq_entry *page = xcalloc(LIST_PAGE, sizeof *page);
    int64_t after = 0;
    int rc = 0;
    for (bool more = true, stop = false; more && !stop && rc == 0;) {
        size_t n = 0;
        pthread_mutex_lock(&st->mu);
        sqlite3_stmt *stmt;
        rc = prepare(st, &stmt, sql.p, err, errlen, "list dead-letter entries");
        if (rc == 0) {
            sqlite3_bind_int64(stmt, 1, after);
            if (sink_id)
                sqlite3_bind_text(stmt, 2, sink_id, -1, SQLITE_STATIC);
            int s;
            while ((s = sqlite3_step(stmt)) == SQLITE_ROW) {
                read_entry(stmt, &page[n]);
                if (sqlite3_column_type(stmt, ENTRY_NCOLS) != SQLITE_NULL) /* after entry_cols */
                    page[n].key_json = xstrdup(col_text(stmt, ENTRY_NCOLS));
                n++;
            }
            if (s != SQLITE_DONE)
                rc = db_fail(st, err, errlen, "list dead-letter entries");
            sqlite3_finalize(stmt);
        }
        pthread_mutex_unlock(&st->mu);
        more = n == LIST_PAGE;
        for (size_t i = 0; i < n && !stop; i++) {
            after = page[i].id;
            stop = fn(&page[i], arg) != 0;
        }
        for (size_t i = 0; i < n; i++)
            dlq_entry_fini(&page[i]);
    }
    free(page);
    buf_fini(&sql);
    return rc;
}

int store_dlq_get(struct store *st, int64_t id, struct dlq_entry *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s, key_json, value_json, event FROM dlq WHERE id = ?1",
             entry_cols);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt, sql, err, errlen, "read a dead-letter entry");
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, id);
        int s = sqlite3_step(stmt);
        if (s == SQLITE_ROW) {
            read_entry(stmt, e);
            int c = ENTRY_NCOLS; /* the payloads follow entry_cols */
            if (sqlite3_column_type(stmt, c) != SQLITE_NULL)
                e->key_json = xstrdup(col_text(stmt, c));
            if (sqlite3_column_type(stmt, c + 1) != SQLITE_NULL)
                e->value_json = xstrdup(col_text(stmt, c + 1));
            const void *blob = sqlite3_column_blob(stmt, c + 2);
            e->event_len = (size_t)sqlite3_column_bytes(stmt, c + 2);
            e->event = xmalloc(e->event_len ? e->event_len : 1);
            if (e->event_len)
                memcpy(e->event, blob, e->event_len);
        } else if (s == SQLITE_DONE) {
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: there is no dead-letter entry %lld",
                          st->path, (long long)id);
        } else {
            rc = db_fail(st, err, errlen, "read a dead-letter entry");
        }
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_dlq_resolve(struct store *st, int64_t id, char *err, size_t errlen)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt,
                     "UPDATE dlq SET status = 'resolved', resolved_us = ?2 "
                     "WHERE id = ?1 AND status = 'pending'",
                     err, errlen, "resolve a dead-letter entry");
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_int64(stmt, 2, clock_wall_us());
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = db_fail(st, err, errlen, "resolve a dead-letter entry");
        bool changed = sqlite3_changes(st->db) > 0;
        sqlite3_finalize(stmt);
        /* Nothing changed: already resolved (fine) or no such entry. */
        if (rc == 0 && !changed &&
            (rc = prepare(st, &stmt, "SELECT 1 FROM dlq WHERE id = ?1", err, errlen,
                          "resolve a dead-letter entry")) == 0) {
            sqlite3_bind_int64(stmt, 1, id);
            int s = sqlite3_step(stmt);
            if (s == SQLITE_DONE)
                rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: there is no dead-letter entry %lld",
                              st->path, (long long)id);
            else if (s != SQLITE_ROW)
                rc = db_fail(st, err, errlen, "resolve a dead-letter entry");
            sqlite3_finalize(stmt);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_dlq_purge(struct store *st, bool all, int64_t *n, char *err, size_t errlen)
{
    if (n)
        *n = 0;
    pthread_mutex_lock(&st->mu);
    int rc = exec_sql(st, all ? "DELETE FROM dlq" : "DELETE FROM dlq WHERE status = 'resolved'",
                      err, errlen, "purge dead-letter entries");
    if (rc == 0 && n)
        *n = sqlite3_changes(st->db);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int pos_cmp(const void *a, const void *b)
{
    return cdc_pos_cmp(*(const struct cdc_pos *)a, *(const struct cdc_pos *)b);
}

int store_dlq_pending_positions(struct store *st, const char *sink_id, struct cdc_pos **out,
                                size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    struct cdc_pos *v = NULL;
    size_t len = 0, cap = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt,
                     sink_id ? "SELECT commit_lsn, event_index, stream FROM dlq "
                               "WHERE sink_id = ?1 AND status = 'pending' AND snapshot = 0"
                             : "SELECT commit_lsn, event_index, stream FROM dlq "
                               "WHERE status = 'pending' AND snapshot = 0",
                     err, errlen, "read dead-lettered positions");
    if (rc == 0) {
        if (sink_id)
            sqlite3_bind_text(stmt, 1, sink_id, -1, SQLITE_STATIC);
        int s;
        while ((s = sqlite3_step(stmt)) == SQLITE_ROW) {
            if (len == cap) {
                cap = cap ? 2 * cap : 64;
                v = xrealloc(v, cap * sizeof *v);
            }
            v[len].lsn = (uint64_t)sqlite3_column_int64(stmt, 0);
            v[len].idx = (uint64_t)sqlite3_column_int64(stmt, 1);
            v[len].stream = (uint32_t)sqlite3_column_int64(stmt, 2);
            len++;
        }
        if (s != SQLITE_DONE)
            rc = db_fail(st, err, errlen, "read dead-lettered positions");
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        free(v);
        return rc;
    }
    if (len > 1) {
        qsort(v, len, sizeof *v, pos_cmp);
        size_t k = 1;
        for (size_t i = 1; i < len; i++)
            if (cdc_pos_cmp(v[i], v[k - 1]) != 0)
                v[k++] = v[i];
        len = k;
    }
    *out = v;
    *n = len;
    return 0;
}

int64_t store_dlq_count(struct store *st, const char *sink_id)
{
    int64_t count = -1;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    if (prepare(st, &stmt,
                sink_id ? "SELECT count(*) FROM dlq WHERE sink_id = ?1 AND status = 'pending'"
                        : "SELECT count(*) FROM dlq WHERE status = 'pending'",
                NULL, 0, "count dead-letter entries") == 0) {
        if (sink_id)
            sqlite3_bind_text(stmt, 1, sink_id, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) == SQLITE_ROW)
            count = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    return count;
}

/* ---------- key/value ---------- */

int store_kv_put(struct store *st, const char *key, const char *value, char *err, size_t errlen)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt,
                     "INSERT INTO kv (key, value) VALUES (?1, ?2) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     err, errlen, "store a value");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = db_fail(st, err, errlen, "store a value");
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_kv_get(struct store *st, const char *key, char **value, char *err, size_t errlen)
{
    *value = NULL;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt, "SELECT value FROM kv WHERE key = ?1", err, errlen, "read a value");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        int s = sqlite3_step(stmt);
        if (s == SQLITE_ROW)
            *value = xstrdup(col_text(stmt, 0));
        else if (s != SQLITE_DONE)
            rc = db_fail(st, err, errlen, "read a value");
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Deletes the keys k with prefix <= k < upper, where upper is the prefix with
 * its last byte below 0xff incremented (text compares bytewise): an index
 * range, and exact for any bytes, unlike LIKE. */
int store_kv_delete_prefix(struct store *st, const char *prefix, char *err, size_t errlen)
{
    char *upper = xstrdup(prefix);
    size_t n = strlen(upper);
    while (n > 0 && (unsigned char)upper[n - 1] == 0xff)
        n--;
    upper[n] = '\0';
    if (n > 0)
        upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt,
                     n > 0 ? "DELETE FROM kv WHERE key >= ?1 AND key < ?2"
                           : "DELETE FROM kv WHERE key >= ?1",
                     err, errlen, "delete values");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_STATIC);
        if (n > 0)
            sqlite3_bind_text(stmt, 2, upper, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = db_fail(st, err, errlen, "delete values");
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    free(upper);
    return rc;
}

int store_kv_delete(struct store *st, const char *key, char *err, size_t errlen)
{
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *stmt;
    int rc = prepare(st, &stmt, "DELETE FROM kv WHERE key = ?1", err, errlen, "delete a value");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            rc = db_fail(st, err, errlen, "delete a value");
        sqlite3_finalize(stmt);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}
