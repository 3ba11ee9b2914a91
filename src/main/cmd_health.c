/* `cdc health`: asks a running pipeline's /status endpoint how it is doing
 * and prints a summary.  Exit 0 when the pipeline is ready, 1 when it is not
 * or cannot be reached, 2 on a usage or configuration error. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonread.h"
#include "main/cli.h"
#include "main/cli_http.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/redact.h"

static void print_summary(const struct jsonv *doc, bool ready)
{
    const char *pid = jsonv_str(doc, "pipeline_id", "?");
    printf("pipeline %s: %s\n", pid, ready ? "ready" : "NOT READY");
    const char *why = jsonv_str(doc, "reason", NULL);
    if (!ready && why)
        printf("  reason: %s\n", why);
    const struct jsonv *src = jsonv_get(doc, "source");
    const struct jsonv *lag = jsonv_get(doc, "lag");
    printf("  source  %-10s received %s  confirmed %s  lag %.0f bytes, %.1f s\n",
           jsonv_str(src, "state", "?"), jsonv_str(src, "received_lsn", "-"),
           jsonv_str(src, "confirmed_lsn", "-"), jsonv_num(lag, "bytes", 0),
           jsonv_num(lag, "seconds", 0));
    if (jsonv_get(src, "events"))
        printf("          events %.0f  transactions %.0f  reconnects %.0f\n",
               jsonv_num(src, "events", 0), jsonv_num(src, "transactions", 0),
               jsonv_num(src, "reconnects", 0));
    const struct jsonv *sinks = jsonv_get(doc, "sinks");
    for (size_t i = 0; sinks && sinks->t == JSONV_ARR && i < sinks->n; i++) {
        const struct jsonv *s = &sinks->items[i];
        char name[300];
        snprintf(name, sizeof name, "%s (%s)", jsonv_str(s, "sink_id", "?"),
                 jsonv_str(s, "type", "?"));
        printf("  sink    %-24s %-9s backlog %.0f  events %.0f  errors %.0f  reopens %.0f", name,
               jsonv_str(s, "status", "?"), jsonv_num(s, "backlog", 0), jsonv_num(s, "events", 0),
               jsonv_num(s, "errors", 0), jsonv_num(s, "reopens", 0));
        const struct jsonv *dlq = jsonv_get(s, "dlq_pending");
        if (dlq && dlq->t == JSONV_NUM)
            printf("  dlq %.0f", dlq->num);
        printf("\n");
        const char *le = jsonv_str(s, "last_error", NULL);
        if (le)
            printf("          last error: %s\n", le);
    }
}

int cmd_health(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    if (o.nargs > 1) {
        fprintf(stderr, "error: cdc health: expected at most one PIPELINE file, got %d arguments\n",
                o.nargs);
        cli_command_usage(cmd, stderr);
        return 2;
    }
    struct config *cfg = NULL;
    char *base = NULL;
    if (o.url) {
        base = cli_api_base_from_url(o.url, "/status");
    } else {
        if (o.nargs == 1)
            rc = cli_load_config_flags(cmd, &o, CONFIG_SECRETS_OPTIONAL, &cfg);
        else if (o.platform)
            rc = cli_load_platform_only(o.platform, &cfg);
        if (rc)
            return rc;
        struct platform_cfg defaults = {.health_port = 8080, .health_enabled = true};
        base = cli_api_base(cfg ? &cfg->platform : &defaults, &rc);
        if (!base) {
            config_free(cfg);
            return rc;
        }
    }

    struct buf body = BUF_INIT;
    char err[1024];
    long status = 0;
    struct jsonv doc = {0};
    char shown[REDACT_URL_MAX];
    char *url = xasprintf("%s/status", base);
    redact_url(url, shown, sizeof shown);
    rc = 1;
    if (cli_http("GET", base, "/status", NULL, &body, &status, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
    } else if (status != 200) {
        fprintf(stderr, "error: %s answered HTTP %ld, not a status document\n", shown, status);
    } else if (jsonread_parse(body.p ? body.p : "", body.len, &doc) != 0 || doc.t != JSONV_OBJ) {
        fprintf(stderr, "error: %s did not answer with a JSON status document\n", shown);
    } else {
        const struct jsonv *ready = jsonv_get(&doc, "ready");
        bool ok = ready && ready->t == JSONV_BOOL && ready->b;
        print_summary(&doc, ok);
        fflush(stdout);
        if (ok)
            rc = 0;
        else
            fprintf(stderr, "error: pipeline %s is not ready: %s\n",
                    jsonv_str(&doc, "pipeline_id", "?"),
                    jsonv_str(&doc, "reason", "unknown reason"));
    }
    jsonv_free(&doc);
    buf_fini(&body);
    free(url);
    free(base);
    config_free(cfg);
    cli_http_done();
    return rc;
}
