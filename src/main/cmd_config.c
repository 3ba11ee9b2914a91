/* `cdc validate`, and config loading shared by every command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/cli.h"
#include "sink/sink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/redact.h"

int cli_load_config(const struct command *cmd, const struct cli_opts *o, struct config **cfg)
{
    *cfg = NULL;
    if (o->nargs != 1) {
        fprintf(stderr, "error: cdc %s: expected one PIPELINE file, got %d arguments\n", cmd->name,
                o->nargs);
        cli_command_usage(cmd, stderr);
        return 2;
    }
    struct cfg_errors errs = {0};
    if (config_load(cfg, o->args[0], o->platform, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "error: %s\n", errs.msgs[i]);
        if (errs.n == 0)
            fprintf(stderr, "error: %s: cannot load configuration\n", o->args[0]);
        cfg_errors_fini(&errs);
        return 2;
    }
    cfg_errors_fini(&errs);
    const struct platform_cfg *pl = &(*cfg)->platform;
    int lvl = log_level_parse(pl->log_level);
    log_setup(lvl < 0 ? LOG_INFO : (enum log_level)lvl, strcmp(pl->log_format, "json") == 0);
    return 0;
}

int cli_check_supported(const struct config *cfg)
{
    if (cfg->source.source_type != SOURCE_POSTGRES) {
        fprintf(stderr,
                "error: %s: source.source_type %s is not implemented in this version of cdc "
                "(postgres is)\n",
                cfg->pipeline_file, config_source_type_name(cfg->source.source_type));
        return 2;
    }
    if (cfg->platform.transport_mode != TRANSPORT_EMBEDDED) {
        fprintf(stderr,
                "error: %s: transport_mode %s is not implemented in this version of cdc "
                "(embedded is)\n",
                cfg->platform_file ? cfg->platform_file : "platform",
                config_transport_name(cfg->platform.transport_mode));
        return 2;
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct sink_cfg *s = &cfg->sinks[i];
        if (s->enabled && !sink_ops_find(s->sink_type)) {
            fprintf(stderr,
                    "error: %s:%d: sinks[%zu].sink_type: %s sinks are not implemented in this "
                    "version of cdc\n",
                    s->loc.file, s->loc.line, i, config_sink_type_name(s->sink_type));
            return 2;
        }
    }
    return 0;
}

int cli_lock_pipeline(const struct config *cfg, const char *command, struct pipelock **lk)
{
    char err[1024];
    int rc = pipelock_acquire(lk, cfg->platform.state_dir, cfg->pipeline_id, PIPELOCK_OWNER,
                              command, NULL, err, sizeof err);
    if (rc == CDC_EBUSY) {
        fprintf(stderr,
                "error: cannot %s: %s; one process at a time owns a pipeline: stop that "
                "one first\n",
                command, err);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "error: cannot %s: %s\n", command, err);
        return 1;
    }
    return 0;
}

/* Destinations as people may see them: no credentials (redact_url). */
static void print_sink(const struct sink_cfg *s)
{
    char shown[REDACT_URL_MAX];
    printf("  %-16s %-9s", s->sink_id, config_sink_type_name(s->sink_type));
    switch (s->sink_type) {
    case SINK_FILE:
        printf(" %s", s->file.path);
        break;
    case SINK_POSTGRES:
        printf(" %s", s->postgres.mode == PG_SINK_REPLICA ? "replica" : "events");
        if (s->postgres.mode == PG_SINK_EVENTS)
            printf(" %s", s->postgres.target_table);
        printf(" -> %s:%d/%s", redact_url(s->postgres.host, shown, sizeof shown), s->postgres.port,
               s->postgres.database);
        break;
    case SINK_WEBHOOK:
        printf(" %s %s", s->webhook.method, redact_url(s->webhook.url, shown, sizeof shown));
        break;
    default:
        break;
    }
    if (!s->enabled)
        printf(" (disabled)");
    printf("\n");
}

int cmd_validate(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    struct config *cfg;
    if ((rc = cli_load_config(cmd, &o, &cfg)))
        return rc;
    const struct source_cfg *src = &cfg->source;
    char host[REDACT_URL_MAX];
    printf("pipeline   %s (transport %s, topic prefix %s)\n", cfg->pipeline_id,
           config_transport_name(cfg->platform.transport_mode), cfg->topic_prefix);
    printf("source     %s %s:%d/%s as %s, slot %s, publication %s, snapshot %s\n",
           config_source_type_name(src->source_type), redact_url(src->host, host, sizeof host),
           src->port, src->database, src->username, src->slot_name, src->publication_name,
           config_snapshot_mode_name(src->snapshot_mode));
    printf("tables    ");
    for (size_t i = 0; i < src->ntables; i++)
        printf(" %s%s", src->tables[i], i + 1 < src->ntables ? "," : "");
    printf("\nsinks\n");
    for (size_t i = 0; i < cfg->nsinks; i++)
        print_sink(&cfg->sinks[i]);
    rc = cli_check_supported(cfg);
    if (!rc)
        printf("config ok\n");
    config_free(cfg);
    return rc;
}
