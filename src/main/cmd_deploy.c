/* `cdc deploy` and `cdc undeploy`: what the source needs for capture (for
 * PostgreSQL the publication and the slot), through its source_ops; with
 * transport_mode kafka, deploy also creates the transport's topics. */
#include <stdio.h>
#include <stdlib.h>

#include "main/cli.h"
#include "source/source.h"
#include "util/err.h"
#ifdef CDC_HAVE_RDKAFKA
#include "transport/kafka/ktopics.h"
#endif

/* The transport's topics (ktopics.h).  0 when they are there, or when the
 * cluster answered but did not create them: then a warning on stderr names
 * each missing topic with its settings (brokers with
 * auto.create.topics.enable, and the test's mock cluster, create them on
 * first use).  1 when the cluster could not be asked at all. */
static int deploy_topics(const struct config *cfg)
{
#ifdef CDC_HAVE_RDKAFKA
    struct ktopics t;
    ktopics_list(cfg, &t);
    char err[1024];
    int rc = ktopics_create(cfg, &t, stdout, err, sizeof err);
    fflush(stdout);
    if (rc == 0) {
        ktopics_fini(&t);
        return 0;
    }
    const struct kafka_cfg *k = &cfg->platform.kafka;
    fprintf(stderr, "%s: the Kafka cluster did not create the topics: %s\n",
            rc == CDC_ERR ? "warning" : "error", err);
    fprintf(stderr, "Create these topics before the roles run (the source is deployed; a second "
                    "deploy reports them as existing):\n");
    for (size_t i = 0; i < t.n; i++)
        if (t.v[i].state != KTOPIC_CREATED && t.v[i].state != KTOPIC_EXISTS)
            fprintf(stderr, "  %s  partitions=%d replication_factor=%d%s\n", t.v[i].name,
                    k->topic_num_partitions, k->topic_replication_factor,
                    t.v[i].dlq ? "  (dead letters)" : "");
    fprintf(stderr, "Brokers with auto.create.topics.enable create them on first use, with the "
                    "broker's defaults instead.\n");
    ktopics_fini(&t);
    return rc == CDC_ERR ? 0 : 1;
#else
    (void)cfg;
    fprintf(stderr, "error: transport_mode kafka: this cdc is built without librdkafka\n");
    return 2;
#endif
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
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    char err[1024];
    if (ops->deploy(cfg, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (cfg->platform.transport_mode == TRANSPORT_KAFKA) {
        rc = deploy_topics(cfg);
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
