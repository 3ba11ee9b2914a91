/* HTTP requests to a running pipeline; see cli_http.h. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/cli_http.h"
#include "util/mem.h"
#include "util/redact.h"

#define MAX_DOC (4 * 1024 * 1024)

char *cli_api_base(const struct platform_cfg *pl, int *rc)
{
    if (!pl->health_enabled) {
        fprintf(stderr, "error: the health endpoint is disabled (health_enabled: false); "
                        "pass --url if it runs elsewhere\n");
        *rc = 1;
        return NULL;
    }
    if (pl->health_port == 0) {
        fprintf(stderr, "error: health_port is 0 (any free port): pass --url with the port "
                        "the pipeline logged in event=http.listening\n");
        *rc = 2;
        return NULL;
    }
    const char *bind = pl->health_bind && *pl->health_bind ? pl->health_bind : "127.0.0.1";
    if (strcmp(bind, "0.0.0.0") == 0)
        bind = "127.0.0.1";
    else if (strcmp(bind, "::") == 0 || strcmp(bind, "[::]") == 0)
        bind = "[::1]";
    bool v6 = strchr(bind, ':') && bind[0] != '[';
    *rc = 0;
    return xasprintf("http://%s%s%s:%d", v6 ? "[" : "", bind, v6 ? "]" : "", pl->health_port);
}

char *cli_api_base_from_url(const char *url, const char *suffix)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    size_t k = suffix ? strlen(suffix) : 0;
    if (k && n >= k && memcmp(url + n - k, suffix, k) == 0)
        n -= k;
    return xstrndup(url, n);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    if (b->len + size * n > MAX_DOC)
        return 0;
    buf_put(b, p, size * n);
    return size * n;
}

static bool initialized;

void cli_http_done(void)
{
    if (initialized)
        curl_global_cleanup();
    initialized = false;
}

int cli_http(const char *method, const char *base, const char *path, const char *token,
             struct buf *body, long *status, char *err, size_t errlen)
{
    if (!initialized) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        initialized = true;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot initialize libcurl");
        return -1;
    }
    char *url = xasprintf("%s%s", base, path);
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    if (token && *token) {
        auth = xasprintf("Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cdc/" CDC_VERSION);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc != CURLE_OK) {
        char shown[REDACT_URL_MAX];
        snprintf(err, errlen, "cannot reach %s: %s", redact_url(url, shown, sizeof shown),
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        ret = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(url);
    return ret;
}

int cli_load_platform_only(const char *path, struct config **cfg)
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
    int rc = config_load_text_flags(cfg, "(none)", stand_in, sizeof stand_in - 1, path,
                                    text.p ? text.p : "", text.len, CONFIG_SECRETS_OPTIONAL, &errs);
    buf_fini(&text);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "error: %s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    return rc != 0 ? 2 : 0;
}
