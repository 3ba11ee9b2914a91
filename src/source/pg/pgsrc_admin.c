/* PostgreSQL source: what the CLI does without a running pipeline (cdc
 * deploy, undeploy, snapshot) and positions as people write them. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "pg/pgconn.h"
#include "source/pg/pgslot.h"
#include "source/pg/pgsrc_int.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"

int pgsrc_parse_pos(const char *text, struct cdc_ack *pos, char *err, size_t errlen)
{
    pos->stream = 0; /* PostgreSQL has one stream */
    if (pgconn_parse_lsn(text, &pos->pos) == 0)
        return 0;
    return cdc_fail(err, errlen, CDC_EINVAL, "expected an LSN like 0/16B3748");
}

void pgsrc_format_pos(uint64_t pos, char *buf, size_t len)
{
    snprintf(buf, len, "%X/%X", (unsigned)(pos >> 32), (unsigned)pos);
}

static PGconn *connect_source(const struct config *cfg, bool replication, char *err, size_t errlen)
{
    struct pgconn_params p;
    pgslot_params(cfg, replication, &p);
    char e[600];
    PGconn *conn = pgconn_connect(&p, e, sizeof e);
    if (!conn)
        snprintf(err, errlen, "source: %s", e);
    return conn;
}

/* The snapshot signal table, created if missing; NULL (with a warning) if it
 * cannot be, then incremental snapshots are unavailable. */
static const char *signal_table(PGconn *conn, const struct config *cfg)
{
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : PGSNAP_DEFAULT_SIGNAL_TABLE;
    char *schema = NULL, *name = NULL;
    char err[512];
    int rc = config_split_table(sig, &schema, &name);
    if (rc == 0)
        rc = pgslot_ensure_signal_table(conn, schema, name, err, sizeof err);
    free(schema);
    free(name);
    if (rc) {
        fprintf(stderr, "warning: %s; incremental snapshots are unavailable\n", err);
        return NULL;
    }
    return sig;
}

/* The publication (with the signal table) and the slot. */
int pgsrc_deploy(const struct config *cfg, FILE *out, char *err, size_t errlen)
{
    const char *action;
    struct pgslot_info info;
    PGconn *conn = connect_source(cfg, false, err, errlen);
    if (!conn)
        return CDC_ECONN;
    int rc;
    if ((rc = pgslot_check_server(conn, err, errlen)) ||
        (rc = pgslot_check_tables(conn, cfg, err, errlen)) ||
        (rc =
             pgslot_ensure_publication(conn, cfg, signal_table(conn, cfg), &action, err, errlen)) ||
        (rc = pgslot_get(conn, cfg, &info, err, errlen))) {
        PQfinish(conn);
        return rc;
    }
    fprintf(out, "publication %s: %s\n", cfg->source.publication_name, action);
    if (info.exists) {
        fprintf(out, "slot %s: exists\n", cfg->source.slot_name);
    } else {
        PGconn *repl = connect_source(cfg, true, err, errlen);
        uint64_t lsn = 0;
        if (!repl) {
            rc = CDC_ECONN;
        } else if ((rc = pgslot_create(repl, cfg, false, &lsn, NULL, err, errlen)) == 0) {
            char l[32];
            pgconn_format_lsn(lsn, l, sizeof l);
            fprintf(out, "slot %s: created at %s\n", cfg->source.slot_name, l);
        }
        PQfinish(repl);
    }
    PQfinish(conn);
    return rc;
}

void pgsrc_undeploy_warning(const struct config *cfg, char *buf, size_t len)
{
    snprintf(buf, len,
             "undeploy drops replication slot %s and publication %s in %s; the slot's position "
             "is lost and changes made until the next deploy will not be captured.",
             cfg->source.slot_name, cfg->source.publication_name, cfg->source.database);
}

int pgsrc_undeploy(const struct config *cfg, FILE *out, char *err, size_t errlen)
{
    bool slot = false, pub = false;
    PGconn *conn = connect_source(cfg, false, err, errlen);
    if (!conn)
        return CDC_ECONN;
    int rc = pgslot_drop(conn, cfg, &slot, &pub, err, errlen);
    if (rc == 0) {
        fprintf(out, "slot %s: %s\n", cfg->source.slot_name, slot ? "dropped" : "absent");
        fprintf(out, "publication %s: %s\n", cfg->source.publication_name,
                pub ? "dropped" : "absent");
    }
    PQfinish(conn);
    return rc;
}

/* Writes an `execute-snapshot` row into the signal table.  The request
 * travels through the replication stream, so a running pipeline picks it
 * up at once and a stopped one when it next starts; other systems can
 * trigger snapshots the same way. */
int pgsrc_request_snapshot(const struct config *cfg, char *const *tables, size_t n, FILE *out,
                           char *err, size_t errlen)
{
    struct buf list = BUF_INIT, names = BUF_INIT;
    buf_putc(&list, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) {
            buf_putc(&list, ',');
            buf_putc(&names, ',');
        }
        json_string(&list, tables[i], strlen(tables[i]));
        buf_puts(&names, tables[i]);
    }
    buf_putc(&list, ']');
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : PGSNAP_DEFAULT_SIGNAL_TABLE;
    char *schema = NULL, *name = NULL;
    config_split_table(sig, &schema, &name);
    char e[512];
    int rc = 0;
    PGconn *conn = connect_source(cfg, false, err, errlen);
    if (!conn) {
        rc = CDC_ECONN;
    } else if (pgslot_ensure_signal_table(conn, schema, name, e, sizeof e) != 0) {
        rc = cdc_fail(err, errlen, CDC_ERR, "source: %s", e);
    } else {
        char *q = pgconn_quote_qualified(schema, name);
        char *sql =
            xasprintf("INSERT INTO %s (id, type, data) VALUES ($1, 'execute-snapshot', $2)", q);
        free(q);
        char id[96];
        snprintf(id, sizeof id, "%s|cli|%lld", cfg->pipeline_id, (long long)clock_wall_us());
        struct buf data = BUF_INIT;
        buf_printf(&data, "{\"data-collections\":%s,\"type\":\"incremental\"}", list.p);
        const char *params[2] = {id, data.p};
        PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 2, params);
        free(sql);
        buf_fini(&data);
        if (!res)
            rc = cdc_fail(err, errlen, CDC_ECONN, "source: cannot write to %s: %s", sig, e);
        else
            fprintf(out,
                    "requested an incremental snapshot of %s (signal %s in %s); the pipeline "
                    "reads it from the stream\n",
                    names.p ? names.p : "", id, sig);
        PQclear(res);
    }
    PQfinish(conn);
    free(schema);
    free(name);
    buf_fini(&list);
    buf_fini(&names);
    return rc;
}
