/* `cdc snapshot PIPELINE --table schema.table[,…]`: requests an incremental
 * snapshot of tables through the source (source_ops.request_snapshot; for
 * PostgreSQL an `execute-snapshot` row in the signal table, which travels
 * through the replication stream, so a running pipeline picks it up at once
 * and a stopped one when it next starts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/cli.h"
#include "source/source.h"
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
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    if (!ops->request_snapshot) {
        fprintf(stderr, "error: %s: source.source_type %s has no incremental snapshots\n",
                cfg->pipeline_file, ops->name);
        config_free(cfg);
        return 2;
    }
    /* The tables, checked against source.tables. */
    char **tables = NULL;
    size_t n = 0;
    char *list = xstrdup(o.table), *save = NULL;
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
        tables = xrealloc(tables, (n + 1) * sizeof *tables);
        tables[n++] = t;
    }
    char err[1024];
    if (!rc && ops->request_snapshot(cfg, tables, n, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (!rc) {
        report_owner(cfg);
    }
    free(tables);
    free(list);
    config_free(cfg);
    return rc;
}
