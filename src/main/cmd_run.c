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
#include "pg/pgconn.h"
#include "pipeline/engine.h"
#include "source/pg/pgjson.h"
#include "source/pg/pgsrc.h"
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
    struct pgsrc_opts sopts = {.stop = &stop_flag, .paused = &paused_flag};
    if (o.stop_at_lsn && pgconn_parse_lsn(o.stop_at_lsn, &sopts.stop_at_lsn) != 0) {
        fprintf(stderr, "error: --stop-at-lsn: expected an LSN like 0/16B3748, got \"%s\"\n",
                o.stop_at_lsn);
        return 2;
    }
    struct config *cfg;
    if ((rc = cli_load_config(cmd, &o, &cfg)) || (rc = cli_check_supported(cfg))) {
        config_free(cfg);
        return rc;
    }
    /* Before anything is opened: a second run of a running pipeline must
     * not touch its sinks, its slot or its state. */
    struct pipelock *lock = NULL;
    if ((rc = cli_lock_pipeline(cfg, "run", &lock))) {
        config_free(cfg);
        return rc;
    }
    install_signals();

    struct json_ctx json = {
        .pipeline_id = cfg->pipeline_id,
        .connector = "postgresql",
        .db = cfg->source.database,
        .version = CDC_VERSION,
        .source = pgjson_source,
    };
    char err[1200] = "";
    struct pgsrc *src = NULL;
    struct engine *eng = NULL;
    struct store *store = NULL;
    struct api *api = NULL;
    struct api_ctx actx = {.cfg = cfg, .paused = &paused_flag};
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
    if (pgsrc_open(&src, cfg, store, err, sizeof err) != 0) {
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
    actx.src = src;
    if (cfg->platform.health_enabled && api_start(&api, &actx, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    if (pgsrc_prepare(src, engine_held(eng), err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
        goto out;
    }
    if (engine_start(eng, pgsrc_start_lsn(src)) != 0) {
        fprintf(stderr, "error: cannot start sink threads\n");
        rc = 1;
        goto out;
    }
    actx.eng = eng;
    if (api)
        api_update(api, &actx);
    int srcrc = pgsrc_run(src, eng, &sopts, err, sizeof err);
    if (stop_flag)
        log_info("run.stopping", "signal=%d", (int)stop_flag);
    engine_close(eng);
    int waitrc = engine_wait(eng, (int64_t)(cfg->platform.shutdown_timeout_seconds * 1e6));
    pgsrc_finish(src, eng);
    if (srcrc != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (waitrc != 0) {
        fprintf(stderr, "error: sinks did not finish within shutdown_timeout_seconds; the "
                        "unconfirmed changes will be delivered again on the next run\n");
        rc = 1;
    }
out:
    if (rc != 0)
        pgsrc_abandon(src); /* drops what this run created, if it never began */
    api_stop(api);
    engine_free(eng);
    store_close(store);
    pgsrc_close(src);
    pipelock_release(lock);
    config_free(cfg);
    return rc;
}
