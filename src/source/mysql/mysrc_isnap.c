/* MySQL source: incremental snapshots (source/snapshot/incremental.h).
 * Watermark rows and snapshot requests are inserted into a signal table on
 * the server (Debezium's layout: id, type, data); the binlog brings them
 * back to the decoder like any captured table's rows, in commit order, so
 * a chunk read right after its low watermark committed sees everything the
 * stream had before it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "source/mysql/mysrc_int.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

int mysrc_signal_table(const struct config *cfg, char **db, char **name)
{
    if (cfg->source.signal_table)
        return config_split_table(cfg->source.signal_table, db, name) == 0 ? 0 : CDC_EINVAL;
    *db = xstrdup(cfg->source.database);
    *name = xstrdup("cdc_signal");
    return 0;
}

static void put_ident(struct buf *b, const char *s)
{
    buf_putc(b, '`');
    for (; *s; s++) {
        if (*s == '`')
            buf_putc(b, '`');
        buf_putc(b, *s);
    }
    buf_putc(b, '`');
}

static char *qualified(const char *db, const char *name)
{
    struct buf b = BUF_INIT;
    put_ident(&b, db);
    buf_putc(&b, '.');
    put_ident(&b, name);
    return b.p;
}

static int ensure_signal_table(MYSQL *m, const char *db, const char *name, char *err, size_t errlen)
{
    char *q = qualified(db, name);
    char *sql = xasprintf("CREATE TABLE IF NOT EXISTS %s (id VARCHAR(64) PRIMARY KEY, "
                          "type VARCHAR(32) NOT NULL, data TEXT) ENGINE=InnoDB",
                          q);
    free(q);
    int rc = myconn_exec(m, sql, err, errlen);
    free(sql);
    return rc;
}

static int insert_signal(MYSQL *m, const char *db, const char *name, const char *id,
                         const char *type, const char *data, char *err, size_t errlen)
{
    struct buf sql = BUF_INIT;
    char *q = qualified(db, name);
    buf_printf(&sql, "INSERT INTO %s (id, type, data) VALUES ('", q);
    free(q);
    const char *vals[3] = {id, type, data};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(vals[i]);
        buf_reserve(&sql, 2 * n + 8);
        sql.len += mysql_real_escape_string(m, sql.p + sql.len, vals[i], (unsigned long)n);
        sql.p[sql.len] = '\0';
        buf_puts(&sql, i < 2 ? "', '" : "')");
    }
    int rc = myconn_exec(m, sql.p, err, errlen);
    buf_fini(&sql);
    return rc;
}

int mysrc_watermark(void *arg, const char *table, const char *id, const char *type, char *err,
                    size_t errlen)
{
    struct mysrc *src = arg;
    char e[400];
    if (!src->sigconn || mysql_ping(src->sigconn) != 0) {
        myconn_close(src->sigconn);
        src->sigconn = NULL;
        if (myconn_open(&src->sigconn, &src->cc, e, sizeof e) != 0)
            return cdc_fail(err, errlen, CDC_ECONN, "cannot write snapshot watermark: %s", e);
    }
    struct buf data = BUF_INIT;
    buf_puts(&data, "{\"table\":");
    json_string(&data, table, strlen(table));
    buf_putc(&data, '}');
    int rc = insert_signal(src->sigconn, src->sig_db, src->sig_name, id, type, data.p, e, sizeof e);
    buf_fini(&data);
    if (rc)
        return cdc_fail(err, errlen, CDC_ECONN, "cannot write snapshot watermark: %s", e);
    return 0;
}

/* Tables added to source.tables after the initial snapshot get an
 * incremental one, when the snapshot mode asks for snapshots. */
static int queue_new_tables(struct mysrc *src, char *err, size_t errlen)
{
    enum snapshot_mode mode = src->cfg->source.snapshot_mode;
    if (src->snap_id || (mode != SNAPSHOT_INITIAL && mode != SNAPSHOT_WHEN_NEEDED))
        return 0;
    for (size_t i = 0; i < src->cfg->source.ntables; i++) {
        char *key = xasprintf("%s%s", SNAP_KEY_TABLE, src->cfg->source.tables[i]);
        char *v = NULL;
        int rc = store_kv_get(src->store, key, &v, err, errlen);
        free(key);
        if (!rc && !v)
            rc = isnap_request(src->isnap, &src->cfg->source.tables[i], 1, err, errlen);
        free(v);
        if (rc)
            return rc;
    }
    return 0;
}

int mysrc_isnap_prepare(struct mysrc *src, char *err, size_t errlen)
{
    if (mysrc_signal_table(src->cfg, &src->sig_db, &src->sig_name) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "source.signal_table: expected db.table");
    src->sig_full = xasprintf("%s.%s", src->sig_db, src->sig_name);
    char e[400];
    int rc = myconn_open(&src->sigconn, &src->cc, e, sizeof e);
    if (!rc)
        rc = ensure_signal_table(src->sigconn, src->sig_db, src->sig_name, e, sizeof e);
    if (!rc)
        rc = mysnap_open_plain(&src->iconn, &src->cc, e, sizeof e);
    if (rc) {
        log_warn("source.no_signal_table", "table=%s error=%s hint=%s", log_q(src->sig_full),
                 log_q(e), log_q("incremental snapshots are unavailable"));
        return 0;
    }
    struct isnap_cfg ic = {
        .cfg = src->cfg, .store = src->store, .ops = &mysrc_snap_ops, .arg = src};
    if ((rc = isnap_open(&src->isnap, &ic, err, errlen)))
        return rc;
    return queue_new_tables(src, err, errlen);
}

bool mysrc_is_signal(const struct mysrc *src, const struct cdc_table *tab)
{
    return src->sig_db && tab && strcmp(tab->schema, src->sig_db) == 0 &&
           strcmp(tab->name, src->sig_name) == 0;
}

int mysrc_isnap_between(struct mysrc *src, char *err, size_t errlen)
{
    if (!src->isnap)
        return 0;
    if (isnap_record_done(src->isnap, src->em, err, errlen) != 0)
        return CDC_EIO;
    if (!isnap_active(src->isnap))
        return 0;
    if (!mysnap_alive(src->iconn)) {
        /* (re)connect the reads' connection; a server that is away is the
         * stream's problem too: the driver reconnects */
        mysnap_close(src->iconn);
        src->iconn = NULL;
        if (mysnap_open_plain(&src->iconn, &src->cc, err, errlen) != 0)
            return CDC_ECONN;
    }
    int rc = isnap_step(src->isnap, err, errlen);
    return rc == CDC_EINVAL ? 0 : rc;
}

/* `cdc snapshot`: an execute-snapshot row in the signal table, which the
 * running pipeline reads from the binlog (a stopped one when it starts). */
int mysrc_request_snapshot(const struct config *cfg, char *const *tables, size_t n, FILE *out,
                           char *err, size_t errlen)
{
    struct myconn_cfg cc;
    mysrc_conn_cfg(cfg, &cc);
    char *db = NULL, *name = NULL;
    if (mysrc_signal_table(cfg, &db, &name) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "source.signal_table: expected db.table");
    struct buf list = BUF_INIT, names = BUF_INIT;
    buf_puts(&list, "{\"data-collections\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) {
            buf_putc(&list, ',');
            buf_putc(&names, ',');
        }
        json_string(&list, tables[i], strlen(tables[i]));
        buf_puts(&names, tables[i]);
    }
    buf_puts(&list, "],\"type\":\"incremental\"}");
    MYSQL *m = NULL;
    char e[600], id[96];
    snprintf(id, sizeof id, "%s|cli|%lld", cfg->pipeline_id, (long long)clock_wall_us());
    int rc = myconn_open(&m, &cc, e, sizeof e);
    if (!rc)
        rc = ensure_signal_table(m, db, name, e, sizeof e);
    if (!rc)
        rc = insert_signal(m, db, name, id, "execute-snapshot", list.p, e, sizeof e);
    if (rc)
        cdc_fail(err, errlen, rc, "source: cannot write to %s.%s: %s", db, name, e);
    else
        fprintf(out,
                "requested an incremental snapshot of %s (signal %s in %s.%s); the pipeline "
                "reads it from the binlog\n",
                names.p ? names.p : "", id, db, name);
    myconn_close(m);
    free(db);
    free(name);
    buf_fini(&list);
    buf_fini(&names);
    return rc;
}

void mysrc_isnap_close(struct mysrc *src)
{
    isnap_free(src->isnap);
    src->isnap = NULL;
    mysnap_close(src->iconn);
    src->iconn = NULL;
    myconn_close(src->sigconn);
    src->sigconn = NULL;
    free(src->sig_db);
    free(src->sig_name);
    free(src->sig_full);
    src->sig_db = src->sig_name = src->sig_full = NULL;
}
