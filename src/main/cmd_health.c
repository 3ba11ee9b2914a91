/* `cdc health`: asks a running pipeline's /status endpoint how it is doing
 * and prints a summary.  Exit 0 when the pipeline is ready, 1 when it is not
 * or cannot be reached, 2 on a usage or configuration error. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonread.h"
#include "main/cli.h"
#include "util/buf.h"
#include "util/mem.h"
#include "util/redact.h"

/* ---------- fetching ---------- */

#define MAX_DOC (4 * 1024 * 1024)

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    if (b->len + size * n > MAX_DOC)
        return 0;
    buf_put(b, p, size * n);
    return size * n;
}

/* GETs url into body.  0, or -1 with a sentence in err. */
static int fetch(const char *url, struct buf *body, long *status, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot initialize libcurl");
        return -1;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cdc-health/" CDC_VERSION);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        char shown[REDACT_URL_MAX];
        snprintf(err, errlen, "cannot reach %s: %s", redact_url(url, shown, sizeof shown),
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        curl_easy_cleanup(c);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return 0;
}

/* ---------- the command ---------- */

/* The platform settings alone: platform.yaml is loaded together with a
 * minimal stand-in pipeline, so it is validated exactly as `cdc run` would. */
static int load_platform_only(const char *path, struct config **cfg)
{
    static const char stand_in[] = "pipeline_id: health\n"
                                   "source: {database: d, tables: [public.t]}\n"
                                   "sinks: [{sink_id: s, sink_type: file, file: {path: f}}]\n";
    struct buf text = BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: %s: cannot read\n", path);
        return 2;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&text, chunk, n);
    fclose(f);
    struct cfg_errors errs = {0};
    int rc = config_load_text(cfg, "(none)", stand_in, sizeof stand_in - 1, path,
                              text.p ? text.p : "", text.len, &errs);
    buf_fini(&text);
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "error: %s\n", errs.msgs[i]);
        cfg_errors_fini(&errs);
        return 2;
    }
    cfg_errors_fini(&errs);
    return 0;
}

/* http://HOST:PORT/status for a server bound to bind:port. */
static char *status_url_from_config(const struct platform_cfg *pl)
{
    const char *bind = pl->health_bind && *pl->health_bind ? pl->health_bind : "127.0.0.1";
    if (strcmp(bind, "0.0.0.0") == 0)
        bind = "127.0.0.1";
    else if (strcmp(bind, "::") == 0 || strcmp(bind, "[::]") == 0)
        bind = "[::1]";
    bool v6 = strchr(bind, ':') && bind[0] != '[';
    return xasprintf("http://%s%s%s:%d/status", v6 ? "[" : "", bind, v6 ? "]" : "",
                     pl->health_port);
}

static char *status_url_from_arg(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= 7 && memcmp(url + n - 7, "/status", 7) == 0)
        return xstrndup(url, n);
    return xasprintf("%.*s/status", (int)n, url);
}

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
        printf("  sink    %-24s %-9s backlog %.0f  events %.0f  errors %.0f  retries %.0f", name,
               jsonv_str(s, "status", "?"), jsonv_num(s, "backlog", 0), jsonv_num(s, "events", 0),
               jsonv_num(s, "errors", 0), jsonv_num(s, "retries", 0));
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
    char *url = NULL;
    if (o.url) {
        url = status_url_from_arg(o.url);
    } else {
        if (o.nargs == 1)
            rc = cli_load_config(cmd, &o, &cfg);
        else if (o.platform)
            rc = load_platform_only(o.platform, &cfg);
        if (rc)
            return rc;
        struct platform_cfg defaults = {.health_port = 8080, .health_enabled = true};
        const struct platform_cfg *pl = cfg ? &cfg->platform : &defaults;
        if (!pl->health_enabled) {
            fprintf(stderr, "error: the health endpoint is disabled (health_enabled: false); "
                            "pass --url if it runs elsewhere\n");
            config_free(cfg);
            return 1;
        }
        if (pl->health_port == 0) {
            fprintf(stderr, "error: health_port is 0 (any free port): pass --url with the port "
                            "the pipeline logged in event=http.listening\n");
            config_free(cfg);
            return 2;
        }
        url = status_url_from_config(pl);
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct buf body = BUF_INIT;
    char err[1024];
    long status = 0;
    struct jsonv doc = {0};
    char shown[REDACT_URL_MAX];
    redact_url(url, shown, sizeof shown);
    rc = 1;
    if (fetch(url, &body, &status, err, sizeof err) != 0) {
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
    config_free(cfg);
    curl_global_cleanup();
    return rc;
}
