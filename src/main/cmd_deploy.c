/* `cdc deploy` and `cdc undeploy`: what the source needs for capture (for
 * PostgreSQL the publication and the slot), through its source_ops. */
#include <stdio.h>
#include <stdlib.h>

#include "main/cli.h"
#include "source/source.h"

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
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    char err[1024];
    if (ops->deploy(cfg, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    }
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
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    if (!o.yes) {
        char what[1024];
        ops->undeploy_warning(cfg, what, sizeof what);
        fprintf(stderr, "error: %s Run again with --yes to proceed.\n", what);
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
    if (ops->undeploy(cfg, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    }
    pipelock_release(lock);
    config_free(cfg);
    return rc;
}
