/* `cdc deploy` and `cdc undeploy`: the source's publication and slot. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "main/cli.h"
#include "pg/pgconn.h"
#include "source/pg/isnap.h"
#include "source/pg/pgslot.h"

static PGconn *connect_source(const struct config *cfg, bool replication)
{
    struct pgconn_params p;
    pgslot_params(cfg, replication, &p);
    char err[600];
    PGconn *conn = pgconn_connect(&p, err, sizeof err);
    if (!conn)
        fprintf(stderr, "error: source: %s\n", err);
    return conn;
}

/* The snapshot signal table, created if missing; NULL (with a warning) if it
 * cannot be, then incremental snapshots are unavailable. */
static const char *signal_table(PGconn *conn, const struct config *cfg)
{
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : ISNAP_DEFAULT_SIGNAL_TABLE;
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

int cmd_deploy(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    struct config *cfg;
    if ((rc = cli_load_config(cmd, &o, &cfg)) || (rc = cli_check_supported(cfg))) {
        config_free(cfg);
        return rc;
    }
    /* A running pipeline deploys by itself; altering its publication under
     * it would change what it receives behind its back. */
    struct pipelock *lock = NULL;
    if ((rc = cli_lock_pipeline(cfg, "deploy", &lock))) {
        config_free(cfg);
        return rc;
    }
    char err[1024];
    const char *action;
    struct pgslot_info info;
    PGconn *conn = connect_source(cfg, false);
    if (!conn) {
        rc = 1;
    } else if (pgslot_check_server(conn, err, sizeof err) ||
               pgslot_check_tables(conn, cfg, err, sizeof err) ||
               pgslot_ensure_publication(conn, cfg, signal_table(conn, cfg), &action, err,
                                         sizeof err) ||
               pgslot_get(conn, cfg, &info, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else {
        printf("publication %s: %s\n", cfg->source.publication_name, action);
        if (info.exists) {
            printf("slot %s: exists\n", cfg->source.slot_name);
        } else {
            PGconn *repl = connect_source(cfg, true);
            uint64_t lsn = 0;
            if (!repl) {
                rc = 1;
            } else if (pgslot_create(repl, cfg, false, &lsn, NULL, err, sizeof err)) {
                fprintf(stderr, "error: %s\n", err);
                rc = 1;
            } else {
                char l[32];
                pgconn_format_lsn(lsn, l, sizeof l);
                printf("slot %s: created at %s\n", cfg->source.slot_name, l);
            }
            PQfinish(repl);
        }
    }
    PQfinish(conn);
    pipelock_release(lock);
    config_free(cfg);
    return rc;
}

int cmd_undeploy(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    struct config *cfg;
    if ((rc = cli_load_config(cmd, &o, &cfg)) || (rc = cli_check_supported(cfg))) {
        config_free(cfg);
        return rc;
    }
    if (!o.yes) {
        fprintf(stderr,
                "error: undeploy drops replication slot %s and publication %s in %s; the slot's "
                "position is lost and changes made until the next deploy will not be captured. "
                "Run again with --yes to proceed.\n",
                cfg->source.slot_name, cfg->source.publication_name, cfg->source.database);
        config_free(cfg);
        return 2;
    }
    /* Dropping the slot under a running pipeline (or a snapshot in
     * progress) would leave it streaming from nothing. */
    struct pipelock *lock = NULL;
    if ((rc = cli_lock_pipeline(cfg, "undeploy", &lock))) {
        config_free(cfg);
        return rc;
    }
    char err[1024];
    bool slot = false, pub = false;
    PGconn *conn = connect_source(cfg, false);
    if (!conn) {
        rc = 1;
    } else if (pgslot_drop(conn, cfg, &slot, &pub, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else {
        printf("slot %s: %s\n", cfg->source.slot_name, slot ? "dropped" : "absent");
        printf("publication %s: %s\n", cfg->source.publication_name, pub ? "dropped" : "absent");
    }
    PQfinish(conn);
    pipelock_release(lock);
    config_free(cfg);
    return rc;
}
