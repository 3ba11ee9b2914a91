/* `cdc health`: asks a running pipeline's /status endpoint how it is doing
 * and prints a summary.  Exit 0 when the pipeline is ready, 1 when it is not
 * or cannot be reached, 2 on a usage or configuration error. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/cli.h"
#include "util/buf.h"
#include "util/mem.h"

/* ---------- a small JSON reader for the status document ---------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype t;
    bool b;
    double num;
    char *s;          /* J_STR, owned */
    struct jv *items; /* J_ARR, J_OBJ: owned, n entries */
    char **keys;      /* J_OBJ: owned, n entries */
    size_t n;
};

struct jparser {
    const char *p, *end;
    int depth;
};

static void jv_fini(struct jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jv_fini(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    memset(v, 0, sizeof *v);
}

static void jskip(struct jparser *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static void put_utf8(struct buf *b, unsigned cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xc0 | cp >> 6));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xe0 | cp >> 12));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | cp >> 18));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

static int jhex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* A string literal at jp->p (the opening quote); heap copy in *out. */
static int jstring(struct jparser *jp, char **out)
{
    struct buf b = BUF_INIT;
    jp->p++;
    while (jp->p < jp->end && *jp->p != '"') {
        char c = *jp->p++;
        if ((unsigned char)c < 0x20)
            goto bad;
        if (c != '\\') {
            buf_putc(&b, c);
            continue;
        }
        if (jp->p >= jp->end)
            goto bad;
        c = *jp->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            buf_putc(&b, c);
            break;
        case 'b':
            buf_putc(&b, '\b');
            break;
        case 'f':
            buf_putc(&b, '\f');
            break;
        case 'n':
            buf_putc(&b, '\n');
            break;
        case 'r':
            buf_putc(&b, '\r');
            break;
        case 't':
            buf_putc(&b, '\t');
            break;
        case 'u': {
            unsigned cp, lo;
            if (jp->end - jp->p < 4 || jhex4(jp->p, &cp) != 0)
                goto bad;
            jp->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && jp->end - jp->p >= 6 && jp->p[0] == '\\' &&
                jp->p[1] == 'u' && jhex4(jp->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                jp->p += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            put_utf8(&b, cp);
            break;
        }
        default:
            goto bad;
        }
    }
    if (jp->p >= jp->end)
        goto bad;
    jp->p++;
    buf_reserve(&b, 0);
    b.p[b.len] = '\0';
    *out = b.p;
    return 0;
bad:
    buf_fini(&b);
    return -1;
}

static int jvalue(struct jparser *jp, struct jv *v);

static int jcontainer(struct jparser *jp, struct jv *v, bool obj)
{
    v->t = obj ? J_OBJ : J_ARR;
    size_t cap = 0;
    jp->p++;
    jskip(jp);
    if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
        jp->p++;
        return 0;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = xrealloc(v->items, cap * sizeof *v->items);
            if (obj)
                v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
        }
        struct jv *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        char *key = NULL;
        jskip(jp);
        if (obj) {
            if (jp->p >= jp->end || *jp->p != '"' || jstring(jp, &key) != 0)
                return -1;
            jskip(jp);
            if (jp->p >= jp->end || *jp->p != ':') {
                free(key);
                return -1;
            }
            jp->p++;
        }
        int rc = jvalue(jp, item);
        if (obj)
            v->keys[v->n] = key;
        v->n++;
        if (rc != 0)
            return -1;
        jskip(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
            jp->p++;
            return 0;
        }
        return -1;
    }
}

static int jvalue(struct jparser *jp, struct jv *v)
{
    jskip(jp);
    if (jp->p >= jp->end)
        return -1;
    char c = *jp->p;
    size_t left = (size_t)(jp->end - jp->p);
    if (c == '{' || c == '[') {
        if (++jp->depth > 64)
            return -1;
        int rc = jcontainer(jp, v, c == '{');
        jp->depth--;
        return rc;
    }
    if (c == '"') {
        v->t = J_STR;
        return jstring(jp, &v->s);
    }
    if (left >= 4 && memcmp(jp->p, "null", 4) == 0) {
        v->t = J_NULL;
        jp->p += 4;
        return 0;
    }
    if (left >= 4 && memcmp(jp->p, "true", 4) == 0) {
        v->t = J_BOOL;
        v->b = true;
        jp->p += 4;
        return 0;
    }
    if (left >= 5 && memcmp(jp->p, "false", 5) == 0) {
        v->t = J_BOOL;
        jp->p += 5;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t n = 0;
        while (jp->p + n < jp->end && n < sizeof tmp - 1 && strchr("+-.eE0123456789", jp->p[n]))
            n++;
        memcpy(tmp, jp->p, n);
        tmp[n] = '\0';
        char *e;
        v->t = J_NUM;
        v->num = strtod(tmp, &e);
        if (e != tmp + n)
            return -1;
        jp->p += n;
        return 0;
    }
    return -1;
}

static int jparse(const char *s, size_t n, struct jv *v)
{
    struct jparser jp = {s, s + n, 0};
    memset(v, 0, sizeof *v);
    if (jvalue(&jp, v) != 0) {
        jv_fini(v);
        return -1;
    }
    jskip(&jp);
    if (jp.p != jp.end) {
        jv_fini(v);
        return -1;
    }
    return 0;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    return NULL;
}

static const char *jstr(const struct jv *o, const char *key, const char *dflt)
{
    const struct jv *v = jget(o, key);
    return v && v->t == J_STR ? v->s : dflt;
}

static double jnum(const struct jv *o, const char *key, double dflt)
{
    const struct jv *v = jget(o, key);
    return v && v->t == J_NUM ? v->num : dflt;
}

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
        snprintf(err, errlen, "cannot reach %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
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

static void print_summary(const struct jv *doc, bool ready)
{
    const char *pid = jstr(doc, "pipeline_id", "?");
    printf("pipeline %s: %s\n", pid, ready ? "ready" : "NOT READY");
    const char *why = jstr(doc, "reason", NULL);
    if (!ready && why)
        printf("  reason: %s\n", why);
    const struct jv *src = jget(doc, "source");
    const struct jv *lag = jget(doc, "lag");
    printf("  source  %-10s received %s  confirmed %s  lag %.0f bytes, %.1f s\n",
           jstr(src, "state", "?"), jstr(src, "received_lsn", "-"), jstr(src, "confirmed_lsn", "-"),
           jnum(lag, "bytes", 0), jnum(lag, "seconds", 0));
    if (jget(src, "events"))
        printf("          events %.0f  transactions %.0f  reconnects %.0f\n",
               jnum(src, "events", 0), jnum(src, "transactions", 0), jnum(src, "reconnects", 0));
    const struct jv *sinks = jget(doc, "sinks");
    for (size_t i = 0; sinks && sinks->t == J_ARR && i < sinks->n; i++) {
        const struct jv *s = &sinks->items[i];
        char name[300];
        snprintf(name, sizeof name, "%s (%s)", jstr(s, "sink_id", "?"), jstr(s, "type", "?"));
        printf("  sink    %-24s %-9s backlog %.0f  events %.0f  errors %.0f  retries %.0f", name,
               jstr(s, "status", "?"), jnum(s, "backlog", 0), jnum(s, "events", 0),
               jnum(s, "errors", 0), jnum(s, "retries", 0));
        const struct jv *dlq = jget(s, "dlq_pending");
        if (dlq && dlq->t == J_NUM)
            printf("  dlq %.0f", dlq->num);
        printf("\n");
        const char *le = jstr(s, "last_error", NULL);
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
    struct jv doc = {0};
    rc = 1;
    if (fetch(url, &body, &status, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
    } else if (status != 200) {
        fprintf(stderr, "error: %s answered HTTP %ld, not a status document\n", url, status);
    } else if (jparse(body.p ? body.p : "", body.len, &doc) != 0 || doc.t != J_OBJ) {
        fprintf(stderr, "error: %s did not answer with a JSON status document\n", url);
    } else {
        const struct jv *ready = jget(&doc, "ready");
        bool ok = ready && ready->t == J_BOOL && ready->b;
        print_summary(&doc, ok);
        fflush(stdout);
        if (ok)
            rc = 0;
        else
            fprintf(stderr, "error: pipeline %s is not ready: %s\n", jstr(&doc, "pipeline_id", "?"),
                    jstr(&doc, "reason", "unknown reason"));
    }
    jv_fini(&doc);
    buf_fini(&body);
    free(url);
    config_free(cfg);
    curl_global_cleanup();
    return rc;
}
