/* `cdc run`: wires the source, the engine and the sinks, and stops them in
 * order: stop reading, let every sink drain and flush, confirm the final
 * position to the source, exit.
 *
 * With transport_mode kafka the pipeline is two pipelines (roles), each a
 * source, an engine and sinks: capture (the configured source, one kafka
 * sink writing the topics) and deliver (the topics through a consumer
 * group, source/kafka/, into the configured sinks).  --role picks one; by
 * default both run in this process, capture on a thread of its own. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "http/api.h"
#include "main/cli.h"
#include "pipeline/engine.h"
#include "sink/registry.h"
#include "source/driver.h"
#include "state/store.h"
#include "util/log.h"
#include "util/mem.h"
#ifdef CDC_HAVE_RDKAFKA
#include "sink/kafka/kafka_sink.h"
#include "source/kafka/ksrc.h"
#include "transport/kafka/kdlq.h"
#endif

static volatile sig_atomic_t stop_flag;
static atomic_bool paused_flag; /* set by the control API */

static void on_signal(int sig)
{
    if (stop_flag > 0) {
        /* Second signal: leave now.  Safe at any instant: nothing is
         * confirmed that is not durable. */
        static const char msg[] = "level=warn event=run.forced_exit\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    stop_flag = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* One pipeline of the process: the embedded one, or a Kafka role. */
struct role {
    const char *name;             /* "capture", "deliver"; NULL: embedded */
    const struct source_ops *ops; /* borrowed */
    const struct config *cfg;     /* borrowed: the role's sinks */
    const char *state_name;       /* its state store: {state_dir}/{state_name}/ */
    bool serve_api;               /* health, metrics and control are this role's */
    bool dlq_topic;               /* dead letters also go to Kafka (the deliver role) */
    struct driver_opts dopts;
    struct json_ctx json;
    int rc;
    char err[1200];
};

/* Runs one role to its end; rc 0, or 1 with the error printed. */
static void role_run(struct role *r)
{
    const struct config *cfg = r->cfg;
    char *err = r->err;
    size_t errlen = sizeof r->err;
    struct driver *drv = NULL;
    struct engine *eng = NULL;
    struct store *store = NULL;
    struct api *api = NULL;
#ifdef CDC_HAVE_RDKAFKA
    struct kdlq *kdlq = NULL;
#endif
    struct api_ctx actx = {
        .cfg = cfg, .paused = &paused_flag, .json = &r->json, .version = CDC_VERSION};
    const char *prefix = r->name ? r->name : "";
    const char *sep = r->name ? ": " : "";
    int rc = 0;
    if (r->name)
        log_info("run.role_starting", "role=%s pipeline=%s", r->name, cfg->pipeline_id);
    char *state_path = store_path(cfg->platform.state_dir, r->state_name);
    rc = store_open(&store, state_path, err, errlen);
    free(state_path);
    if (rc != 0)
        goto fail;
    /* Everything that can fail is checked before anything is created on the
     * source: the source itself (reachable, tables exist), the sinks (they
     * open and say what they hold), the health port.  Only then the
     * publication and the slot, which pin WAL from their creation on. */
    if ((rc = driver_new(&drv, r->ops, cfg, store, err, errlen)) != 0)
        goto fail;
    if ((rc = engine_new(&eng, cfg, &r->json, store, err, errlen)) != 0)
        goto fail;
#ifdef CDC_HAVE_RDKAFKA
    if (r->dlq_topic && cfg->platform.dlq.enabled) {
        if ((rc = kdlq_open(&kdlq, cfg, err, errlen)) != 0)
            goto fail;
        engine_set_dlq_hook(eng, kdlq_publish, kdlq);
    }
#endif
    /* Health and metrics come up once the source is reachable, so an
     * unreachable database stays the first error a user sees. */
    actx.store = store;
    actx.src = drv;
    if (r->serve_api && cfg->platform.health_enabled &&
        (rc = api_start(&api, &actx, err, errlen)) != 0)
        goto fail;
    struct cdc_posmap held = {0};
    engine_held(eng, &held);
    rc = driver_prepare(drv, &held, err, errlen);
    cdc_posmap_fini(&held);
    if (rc != 0)
        goto fail;
    const struct cdc_acks *start = driver_start(drv);
    if (engine_start(eng, start->v, start->n) != 0) {
        snprintf(err, errlen, "cannot start sink threads");
        rc = 1;
        goto fail;
    }
    actx.eng = eng;
    if (api)
        api_update(api, &actx);
    int srcrc = driver_run(drv, eng, &r->dopts, err, errlen);
    if (stop_flag > 0)
        log_info("run.stopping", "signal=%d%s%s", (int)stop_flag, r->name ? " role=" : "", prefix);
    engine_close(eng);
    int waitrc = engine_wait(eng, (int64_t)(cfg->platform.shutdown_timeout_seconds * 1e6));
    driver_finish(drv);
    if (engine_failed(eng, err, errlen)) {
        rc = 1;
    } else if (srcrc != 0) {
        rc = 1;
    } else if (waitrc != 0) {
        snprintf(err, errlen,
                 "sinks did not finish within shutdown_timeout_seconds; the unconfirmed "
                 "changes will be delivered again on the next run");
        rc = 1;
    }
    goto out;
fail:
    rc = 1;
out:
    if (rc != 0) {
        fprintf(stderr, "error: %s%s%s\n", prefix, sep, err);
        driver_abandon(drv); /* drops what this run created, if it never began */
    }
    api_stop(api);
    engine_free(eng);
#ifdef CDC_HAVE_RDKAFKA
    kdlq_close(kdlq);
#endif
    store_close(store);
    driver_free(drv);
    r->rc = rc;
}

#ifdef CDC_HAVE_RDKAFKA
/* The capture role's one sink: the platform's cluster, the default topics,
 * acks and idempotence as kafka.* says, every record with the cdc.event
 * header the deliver role rebuilds events from. */
struct capture_view {
    struct config cfg;
    struct sink_cfg sink;
    struct kafka_sink_cfg kafka;
};

static void capture_view_init(struct capture_view *v, const struct config *cfg)
{
    const struct kafka_cfg *k = &cfg->platform.kafka;
    v->cfg = *cfg; /* a shallow view: cfg owns every string */
    v->kafka = (struct kafka_sink_cfg){
        .client = k->client,
        .topic = "{topic_prefix}.{schema}.{table}",
        .schemas_enable = k->schemas_enable,
        .tombstones_on_delete = k->tombstones_on_delete,
        .event_header = true,
        .acks = k->acks,
        .no_idempotence = !k->enable_idempotence,
    };
    v->sink = (struct sink_cfg){
        .sink_id = "kafka-capture",
        .type = &sink_kafka_type,
        .enabled = true,
        .ordering = ORDER_DEFAULT,
        .retry = cfg->platform.retry,
        .loc = {cfg->platform_file ? cfg->platform_file : "platform.yaml", 1},
        .batch_size = sink_kafka_type.batch_size,
        .flush_interval_seconds = sink_kafka_type.flush_interval_seconds,
        .conf = &v->kafka,
        .type_name = "kafka",
    };
    v->cfg.sinks = &v->sink;
    v->cfg.nsinks = 1;
}

static void *capture_thread(void *arg)
{
    struct role *r = arg;
    role_run(r);
    if (r->rc != 0 && !stop_flag)
        stop_flag = -1; /* the deliver role stops too: the process exits 1 */
    return NULL;
}
#endif

int cmd_run(const struct command *cmd, int argc, char **argv)
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
    bool kafka = cfg->platform.transport_mode == TRANSPORT_KAFKA;
    bool capture = true, deliver = kafka;
    if (o.role) {
        if (!kafka) {
            fprintf(stderr, "error: --role: only with transport_mode kafka (%s: %s)\n",
                    cfg->platform_file ? cfg->platform_file : "no platform config",
                    config_transport_name(cfg->platform.transport_mode));
            config_free(cfg);
            return 2;
        }
        if (strcmp(o.role, "capture") == 0) {
            deliver = false;
        } else if (strcmp(o.role, "deliver") == 0) {
            capture = false;
        } else {
            fprintf(stderr, "error: --role: expected capture or deliver, got \"%s\"\n", o.role);
            config_free(cfg);
            return 2;
        }
    }
    cli_warn_inert(cfg, true);
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    struct cdc_ack stop_at = {0, 0};
    struct driver_opts dopts = {.stop = &stop_flag, .paused = &paused_flag};
    if (o.stop_at_lsn) {
        char perr[256];
        if (!capture) {
            fprintf(stderr, "error: --stop-at-lsn: the deliver role reads topics, not the "
                            "source's log\n");
            config_free(cfg);
            return 2;
        }
        if (ops->parse_pos(o.stop_at_lsn, &stop_at, perr, sizeof perr) != 0) {
            fprintf(stderr, "error: --stop-at-lsn: %s, got \"%s\"\n", perr, o.stop_at_lsn);
            config_free(cfg);
            return 2;
        }
        dopts.stop_at = &stop_at;
        dopts.nstop_at = 1;
    }
    /* Before anything is opened: a second run of a running pipeline must
     * not touch its sinks, its slot or its state.  A deliver role's state
     * (its dead letters) is its own: "ID.deliver". */
    char *deliver_name = xasprintf("%s.deliver", cfg->pipeline_id);
    struct pipelock *lock = NULL, *dlock = NULL;
    if ((capture && (rc = cli_lock_pipeline(cfg, "run", &lock))) ||
        (deliver && (rc = cli_lock_named(cfg, deliver_name, "run", &dlock)))) {
        pipelock_release(lock);
        free(deliver_name);
        config_free(cfg);
        return rc;
    }
    install_signals();
    log_info("run.starting", "pipeline=%s%s", cfg->pipeline_id,
             !kafka               ? ""
             : capture && deliver ? " roles=capture,deliver"
             : capture            ? " roles=capture"
                                  : " roles=deliver");

    struct role cap = {.ops = ops, .cfg = cfg, .state_name = cfg->pipeline_id, .dopts = dopts};
    source_json_ctx(cfg, CDC_VERSION, &cap.json);
#ifdef CDC_HAVE_RDKAFKA
    struct capture_view view;
    struct role del = {.name = "deliver",
                       .ops = &ksrc_ops,
                       .cfg = cfg,
                       .state_name = deliver_name,
                       .serve_api = true,
                       .dlq_topic = true,
                       .dopts = {.stop = &stop_flag, .paused = &paused_flag}};
    source_json_ctx(cfg, CDC_VERSION, &del.json);
    del.json.multi_stream = true; /* one stream per partition */
    if (kafka) {
        capture_view_init(&view, cfg);
        cap.name = "capture";
        cap.cfg = &view.cfg;
    }
    cap.serve_api = !deliver;
    if (capture && deliver) {
        pthread_t th;
        if (pthread_create(&th, NULL, capture_thread, &cap) != 0) {
            fprintf(stderr, "error: cannot start the capture role's thread\n");
            rc = 1;
        } else {
            role_run(&del);
            if (del.rc != 0 && !stop_flag)
                stop_flag = -1;
            pthread_join(th, NULL);
            rc = cap.rc || del.rc ? 1 : 0;
        }
    } else if (deliver) {
        role_run(&del);
        rc = del.rc;
    } else {
        role_run(&cap);
        rc = cap.rc;
    }
#else
    cap.serve_api = true;
    role_run(&cap);
    rc = cap.rc;
#endif
    pipelock_release(dlock);
    pipelock_release(lock);
    free(deliver_name);
    config_free(cfg);
    return rc;
}
