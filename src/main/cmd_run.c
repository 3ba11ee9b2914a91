/* `cdc run`: wires the source, the engine and the sinks, and stops them in
 * order: stop reading, let every sink drain and flush, confirm the final
 * position to the source, exit. */
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
#include "source/driver.h"
#include "state/store.h"
#include "util/log.h"

static volatile sig_atomic_t stop_flag;
static atomic_bool paused_flag; /* set by the control API */

static void on_signal(int sig)
{
    if (stop_flag) {
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
    cli_warn_inert(cfg, true);
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    struct cdc_ack stop_at = {0, 0};
    struct driver_opts dopts = {.stop = &stop_flag, .paused = &paused_flag};
    if (o.stop_at_lsn) {
        char perr[256];
        if (ops->parse_pos(o.stop_at_lsn, &stop_at, perr, sizeof perr) != 0) {
            fprintf(stderr, "error: --stop-at-lsn: %s, got \"%s\"\n", perr, o.stop_at_lsn);
            config_free(cfg);
            return 2;
        }
        dopts.stop_at = &stop_at;
        dopts.nstop_at = 1;
    }
    /* Before anything is opened: a second run of a running pipeline must
     * not touch its sinks, its slot or its state. */
    struct pipelock *lock = NULL;
    if ((rc = cli_lock_pipeline(cfg, "run", &lock))) {
        config_free(cfg);
        return rc;
    }
    install_signals();

    struct json_ctx json;
    source_json_ctx(cfg, CDC_VERSION, &json);
    char err[1200] = "";
    struct driver *drv = NULL;
    struct engine *eng = NULL;
    struct store *store = NULL;
    struct api *api = NULL;
    struct api_ctx actx = {
        .cfg = cfg, .paused = &paused_flag, .json = &json, .version = CDC_VERSION};
    log_info("run.starting", "pipeline=%s", cfg->pipeline_id);
    char *state_path = store_path(cfg->platform.state_dir, cfg->pipeline_id);
    rc = store_open(&store, state_path, err, sizeof err);
    free(state_path);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    /* Everything that can fail is checked before anything is created on the
     * source: the source itself (reachable, tables exist), the sinks (they
     * open and say what they hold), the health port.  Only then the
     * publication and the slot, which pin WAL from their creation on. */
    if (driver_new(&drv, ops, cfg, store, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    if (engine_new(&eng, cfg, &json, store, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    /* Health and metrics come up once the source is reachable, so an
     * unreachable database stays the first error a user sees. */
    actx.store = store;
    actx.src = drv;
    if (cfg->platform.health_enabled && api_start(&api, &actx, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    struct cdc_posmap held = {0};
    engine_held(eng, &held);
    rc = driver_prepare(drv, &held, err, sizeof err);
    cdc_posmap_fini(&held);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    const struct cdc_acks *start = driver_start(drv);
    if (engine_start(eng, start->v, start->n) != 0) {
        fprintf(stderr, "error: cannot start sink threads\n");
        rc = 1;
        goto out;
    }
    actx.eng = eng;
    if (api)
        api_update(api, &actx);
    int srcrc = driver_run(drv, eng, &dopts, err, sizeof err);
    if (stop_flag)
        log_info("run.stopping", "signal=%d", (int)stop_flag);
    engine_close(eng);
    int waitrc = engine_wait(eng, (int64_t)(cfg->platform.shutdown_timeout_seconds * 1e6));
    driver_finish(drv);
    if (engine_failed(eng, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (srcrc != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (waitrc != 0) {
        fprintf(stderr, "error: sinks did not finish within shutdown_timeout_seconds; the "
                        "unconfirmed changes will be delivered again on the next run\n");
        rc = 1;
    }
out:
    if (rc != 0)
        driver_abandon(drv); /* drops what this run created, if it never began */
    api_stop(api);
    engine_free(eng);
    store_close(store);
    driver_free(drv);
    pipelock_release(lock);
    config_free(cfg);
    return rc;
}
