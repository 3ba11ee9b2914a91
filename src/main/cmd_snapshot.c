/* `cdc snapshot PIPELINE --table schema.table[,…]`: requests an incremental
 * snapshot by writing an `execute-snapshot` row into the source's signal
 * table.  The request travels through the replication stream, so a running
 * pipeline picks it up at once and a stopped one when it next starts; other
 * systems can trigger snapshots the same way. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "main/cli.h"
#include "pg/pgconn.h"
#include "source/pg/isnap.h"
#include "source/pg/pgslot.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/mem.h"

/* Says whether a `cdc run` will pick the request up now.  The request itself
 * needs no lock: it is a row in the source that the running pipeline (or
 * the next one to start) reads from the stream, which is why it is made
 * while the pipeline runs. */
static void report_owner(const struct config *cfg)
{
    struct pipelock_holder h;
    char err[1024], who[160];
    int held = pipelock_probe(cfg->platform.state_dir, cfg->pipeline_id, PIPELOCK_OWNER, &h, err,
                              sizeof err);
    if (held > 0) {
        pipelock_describe(&h, who, sizeof who);
        printf("pipeline %s is held by %s\n", cfg->pipeline_id, who);
    } else if (held == 0) {
        printf("pipeline %s is not running here; the snapshot starts when `cdc run` next "
               "starts\n",
               cfg->pipeline_id);
    }
}

int cmd_snapshot(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    if (!o.table) {
        fprintf(stderr, "error: cdc snapshot: --table SCHEMA.TABLE is required\n");
        return 2;
    }
    struct config *cfg;
    if ((rc = cli_load_config(cmd, &o, &cfg)) || (rc = cli_check_supported(cfg))) {
        config_free(cfg);
        return rc;
    }
    /* The tables, checked against source.tables, as a JSON array. */
    struct buf tables = BUF_INIT;
    buf_putc(&tables, '[');
    char *list = xstrdup(o.table), *save = NULL;
    int n = 0;
    for (char *t = strtok_r(list, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        char *s1, *t1;
        bool found = false;
        if (config_split_table(t, &s1, &t1) == 0) {
            for (size_t i = 0; i < cfg->source.ntables && !found; i++) {
                char *s2, *t2;
                if (config_split_table(cfg->source.tables[i], &s2, &t2) == 0) {
                    found = strcmp(s1, s2) == 0 && strcmp(t1, t2) == 0;
                    free(s2);
                    free(t2);
                }
            }
            free(s1);
            free(t1);
        }
        if (!found) {
            fprintf(stderr, "error: --table %s is not one of source.tables in %s\n", t,
                    cfg->pipeline_file);
            rc = 2;
            break;
        }
        if (n++)
            buf_putc(&tables, ',');
        json_string(&tables, t, strlen(t));
    }
    free(list);
    buf_putc(&tables, ']');
    if (rc) {
        buf_fini(&tables);
        config_free(cfg);
        return rc;
    }
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : ISNAP_DEFAULT_SIGNAL_TABLE;
    char *schema = NULL, *name = NULL;
    config_split_table(sig, &schema, &name);
    struct pgconn_params p;
    pgslot_params(cfg, false, &p);
    char err[1024];
    PGconn *conn = pgconn_connect(&p, err, sizeof err);
    if (!conn) {
        fprintf(stderr, "error: source: %s\n", err);
        rc = 1;
    } else if (pgslot_ensure_signal_table(conn, schema, name, err, sizeof err) != 0) {
        fprintf(stderr, "error: source: %s\n", err);
        rc = 1;
    } else {
        char *q = pgconn_quote_qualified(schema, name);
        char *sql =
            xasprintf("INSERT INTO %s (id, type, data) VALUES ($1, 'execute-snapshot', $2)", q);
        free(q);
        char id[96];
        snprintf(id, sizeof id, "%s|cli|%lld", cfg->pipeline_id, (long long)clock_wall_us());
        struct buf data = BUF_INIT;
        buf_printf(&data, "{\"data-collections\":%s,\"type\":\"incremental\"}", tables.p);
        const char *params[2] = {id, data.p};
        char e[512];
        PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 2, params);
        free(sql);
        buf_fini(&data);
        if (!res) {
            fprintf(stderr, "error: source: cannot write to %s: %s\n", sig, e);
            rc = 1;
        } else {
            printf("requested an incremental snapshot of %s (signal %s in %s); the pipeline "
                   "reads it from the stream\n",
                   o.table, id, sig);
            report_owner(cfg);
        }
        PQclear(res);
    }
    PQfinish(conn);
    free(schema);
    free(name);
    buf_fini(&tables);
    config_free(cfg);
    return rc;
}
