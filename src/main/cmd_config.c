/* `cdc validate`, and config loading shared by every command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/cli.h"
#include "sink/registry.h"
#include "source/source.h"
#ifdef CDC_HAVE_RDKAFKA
#include "transport/kafka/kclient.h"
#endif
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/redact.h"

int cli_load_config(const struct command *cmd, const struct cli_opts *o, struct config **cfg)
{
    return cli_load_config_flags(cmd, o, 0, cfg);
}

int cli_load_config_flags(const struct command *cmd, const struct cli_opts *o, unsigned flags,
                          struct config **cfg)
{
    *cfg = NULL;
    if (o->nargs != 1) {
        fprintf(stderr, "error: cdc %s: expected one PIPELINE file, got %d arguments\n", cmd->name,
                o->nargs);
        cli_command_usage(cmd, stderr);
        return 2;
    }
    struct cfg_errors errs = {0};
    if (config_load_flags(cfg, o->args[0], o->platform, flags, &errs) != 0) {
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

/* What loading could not check: librdkafka judging the platform's Kafka
 * properties, and each sink type's own check (sink_type.check). */
static int check_clients(const struct config *cfg)
{
    char err[1024];
    int rc = 0;
#ifdef CDC_HAVE_RDKAFKA
    if (cfg->platform.transport_mode == TRANSPORT_KAFKA &&
        kclient_check(&cfg->platform.kafka.client, "kafka", err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 2;
    }
#endif
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct sink_cfg *s = &cfg->sinks[i];
        char path[160];
        snprintf(path, sizeof path, "sinks[%zu].%s", i, s->type->name);
        if (s->type->check && s->type->check(s, path, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            rc = 2;
        }
    }
    return rc;
}

int cli_check_supported(const struct config *cfg)
{
    if (check_clients(cfg) != 0)
        return 2;
    if (!source_ops_find(cfg->source.source_type)) {
        fprintf(stderr,
                "error: %s: source.source_type %s is not implemented in this version of cdc "
                "(postgres is%s)\n",
                cfg->pipeline_file, config_source_type_name(cfg->source.source_type),
                source_ops_find(SOURCE_MYSQL) ? ", and mysql" : "");
        return 2;
    }
#ifndef CDC_HAVE_RDKAFKA
    if (cfg->platform.transport_mode == TRANSPORT_KAFKA) {
        fprintf(stderr, "error: %s: transport_mode kafka: this cdc was built without librdkafka\n",
                cfg->platform_file ? cfg->platform_file : "platform");
        return 2;
    }
#endif
    if (cfg->platform.transport_mode != TRANSPORT_EMBEDDED &&
        cfg->platform.transport_mode != TRANSPORT_KAFKA) {
        fprintf(stderr,
                "error: %s: transport_mode %s is not implemented in this version of cdc "
                "(embedded is)\n",
                cfg->platform_file ? cfg->platform_file : "platform",
                config_transport_name(cfg->platform.transport_mode));
        return 2;
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct sink_cfg *s = &cfg->sinks[i];
        char why[160];
        if (s->enabled && sink_type_unavailable(s->type, why, sizeof why)) {
            fprintf(stderr, "error: %s:%d: sinks[%zu].sink_type: %s\n", s->loc.file, s->loc.line, i,
                    why);
            return 2;
        }
    }
    return 0;
}

int cli_lock_pipeline(const struct config *cfg, const char *command, struct pipelock **lk)
{
    return cli_lock_named(cfg, cfg->pipeline_id, command, lk);
}

int cli_lock_named(const struct config *cfg, const char *name, const char *command,
                   struct pipelock **lk)
{
    char err[1024];
    int rc = pipelock_acquire(lk, cfg->platform.state_dir, name, PIPELOCK_OWNER, command, NULL, err,
                              sizeof err);
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

static void print_kafka(const struct kafka_cfg *k)
{
    struct buf b = BUF_INIT;
    config_kafka_client_describe(&k->client, &b);
    printf("kafka      %s", b.p ? b.p : "");
    buf_fini(&b);
    printf("\n           group %s (%s when none committed), session %d ms, max poll interval %d "
           "ms, fetch min %d bytes wait %d ms, poll batch %d, commit every %gs\n",
           k->group_id, k->auto_offset_reset, k->session_timeout_ms, k->max_poll_interval_ms,
           k->fetch_min_bytes, k->fetch_max_wait_ms, k->poll_batch_size,
           k->commit_interval_seconds);
    printf("           acks %s, idempotence %s, new topics %d partitions x %d replicas, "
           "schemas_enable %s, tombstones_on_delete %s\n",
           k->acks, k->enable_idempotence ? "on" : "off", k->topic_num_partitions,
           k->topic_replication_factor, k->schemas_enable ? "true" : "false",
           k->tombstones_on_delete ? "true" : "false");
}

/* One line: id, type, what the type says of its destination (no secrets:
 * sink_type.describe). */
static void print_sink(const struct sink_cfg *s)
{
    struct buf b = BUF_INIT;
    if (s->type->describe && s->conf)
        s->type->describe(s, &b);
    printf("  %-16s %-9s%s%s\n", s->sink_id, s->type->name, b.p ? b.p : "",
           s->enabled ? "" : " (disabled)");
    buf_fini(&b);
}

void cli_warn_inert(const struct config *cfg, bool to_log)
{
    for (size_t i = 0; i < cfg->inert.n; i++) {
        if (to_log)
            log_warn("config.no_effect", "detail=%s", log_q(cfg->inert.msgs[i]));
        else
            fprintf(stderr, "warning: %s\n", cfg->inert.msgs[i]);
    }
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
    cli_warn_inert(cfg, false);
    const struct source_cfg *src = &cfg->source;
    char host[REDACT_URL_MAX];
    printf("pipeline   %s (transport %s, topic prefix %s)\n", cfg->pipeline_id,
           config_transport_name(cfg->platform.transport_mode), cfg->topic_prefix);
    printf("source     %s %s:%d/%s as %s, slot %s, publication %s, snapshot %s\n",
           config_source_type_name(src->source_type), redact_url(src->host, host, sizeof host),
           src->port, src->database, src->username, src->slot_name, src->publication_name,
           config_snapshot_mode_name(src->snapshot_mode));
    if (cfg->platform.transport_mode == TRANSPORT_KAFKA)
        print_kafka(&cfg->platform.kafka);
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
