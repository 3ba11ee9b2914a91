/* The webhook sink type: its block's keys and their checks, the summary
 * `cdc validate` prints, and how the engine drives it (per-key lanes; the
 * common batch_size is the most envelopes one request carries). */
#include <stdint.h>
#include <string.h>

#include "config/cfg_keys.h"
#include "sink/webhook/webhook.h"
#include "util/redact.h"

static const char *const method_names[] = {"POST", "PUT", "PATCH"};

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Header names must be HTTP tokens and values single-line, or a config
 * could smuggle extra header lines into every request. */
static void webhook_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                          uint64_t ok)
{
    const struct webhook_sink_cfg *w = obj;
    const struct yamltree_pair *hp = yamltree_map_find(map, "headers");
    if (!hp)
        return;
    size_t mark = cfg_path_push_key(&ctx->path, "headers", 7);
    for (size_t i = 0; i < w->nheaders; i++) {
        int hline = cfg_key_line(hp->value, w->headers[i].key, hp->key->line);
        const char *key = w->headers[i].key;
        if (!header_name_ok(key))
            cfg_error_key(ctx, hline, key,
                          "expected a header name of letters, digits and !#$%%&'*+-.^_`|~");
        else if (!header_value_ok(w->headers[i].value))
            cfg_error_key(ctx, hline, key, "header value must not contain line breaks");
    }
    cfg_path_pop(&ctx->path, mark);
}

#define T struct webhook_sink_cfg
static const struct cfg_key webhook_sink_keys[] = {
    K_STR(T, url, NULL, .flags = CFG_REQUIRED | CFG_NOECHO, .check = cfg_check_url),
    K_STR(T, method, "POST", CHOICES(method_names)),
    K_STRMAP(T, headers, nheaders),
    K_FLT(T, timeout_seconds, 10.0, 0, .flags = CFG_GT),
    K_STR(T, auth_token, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_STR(T, signing_secret, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_INT(T, max_in_flight, 8, 1, 1024),
};
#undef T
static const struct cfg_schema webhook_sink_schema = {KEYS(webhook_sink_keys),
                                                      .check = webhook_check};

/* "POST https://host/path", without credentials in the URL. */
static void webhook_describe(const struct sink_cfg *sc, struct buf *out)
{
    const struct webhook_sink_cfg *w = sc->conf;
    char shown[REDACT_URL_MAX];
    buf_printf(out, " %s %s", w->method, redact_url(w->url, shown, sizeof shown));
}

/* A request is answered (or given up) within timeout_seconds. */
static int webhook_reply_timeout_ms(const struct sink_cfg *sc)
{
    const struct webhook_sink_cfg *w = sc->conf;
    double ms = w->timeout_seconds * 1000;
    return ms < INT32_MAX / 2 ? (int)ms : INT32_MAX / 2;
}

const struct sink_type sink_webhook_type = {
    .name = "webhook",
    .description = "HTTP requests carrying the envelopes, with an idempotency key",
    .ops = &sink_webhook_ops,
    .schema = &webhook_sink_schema,
    .conf_size = sizeof(struct webhook_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE,
    .batch_size = 1,
    .ordering = ORDER_KEY,
    .at_least_once = true,
    .reply_timeout_ms = webhook_reply_timeout_ms,
    .describe = webhook_describe,
};
