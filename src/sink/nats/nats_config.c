/* The nats sink type: its block's keys and their checks, the summary
 * `cdc validate` prints, and how the engine drives it (serial: a flush waits
 * for JetStream's acknowledgements). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_keys.h"
#include "sink/nats/nats_sink.h"
#include "util/redact.h"

/* One server or several, comma-separated: nats://, a host each.  (TLS,
 * tls://, is not in this version: said so rather than half done.) */
static const char *check_url(const char *v)
{
    if (strncmp(v, "tls://", 6) == 0 || strstr(v, ",tls://"))
        return "a nats:// URL: TLS (tls://) is not implemented in this version of cdc";
    const char *what = "a nats://host:port URL, or several separated by commas";
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (strncmp(p, "nats://", 7) != 0 || n <= 7)
            return what;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] <= ' ')
                return what;
        if (!p[n])
            return NULL;
        p += n + 1;
    }
}

/* A JetStream stream name: no '.', '*', '>', '/', '\\' or white space. */
static const char *check_stream(const char *v)
{
    if (!*v)
        return "a stream name";
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr(".*>/\\", *p))
            return "a stream name without '.', '*', '>', '/', '\\' or spaces";
    return NULL;
}

static void nats_sink_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map,
                            int line, uint64_t ok)
{
    const struct nats_sink_cfg *c = obj;
    if ((c->user == NULL) != (c->password == NULL))
        cfg_error_key(ctx, cfg_key_line(map, c->user ? "user" : "password", line),
                      c->user ? "user" : "password", "user and password go together");
    if (c->token && (c->user || c->password))
        cfg_error_key(ctx, cfg_key_line(map, "token", line), "token",
                      "give a token or a user and password, not both");
}

#define T struct nats_sink_cfg
static const struct cfg_key nats_sink_keys[] = {
    K_STR(T, url, NULL, .flags = CFG_REQUIRED | CFG_NOECHO, .check = check_url),
    K_STR(T, user, NULL, .flags = CFG_NULLABLE),
    K_STR(T, password, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_STR(T, token, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_STR(T, subject, "{topic_prefix}.{schema}.{table}", .check = nats_subject_check),
    K_STR(T, stream, NULL, .flags = CFG_NULLABLE, .check = check_stream),
    K_FLT(T, publish_timeout_seconds, 10.0, 0, .flags = CFG_GT),
    K_INT(T, max_pending, 4096, 1, 1 << 20),
};
#undef T
static const struct cfg_schema nats_sink_schema = {KEYS(nats_sink_keys), .check = nats_sink_check};

/* "{subject template} -> nats://host:port [stream S]", each server's
 * credentials masked. */
static void nats_describe(const struct sink_cfg *sc, struct buf *out)
{
    const struct nats_sink_cfg *c = sc->conf;
    buf_printf(out, " %s ->", c->subject);
    for (const char *p = c->url; *p;) {
        size_t n = strcspn(p, ",");
        /* the whole piece: cut before it is redacted, a long password
         * would lose its '@' and show */
        char *one = strndup(p, n), shown[REDACT_URL_MAX];
        buf_printf(out, "%s%s", p == c->url ? " " : ",",
                   one ? redact_url(one, shown, sizeof shown) : "?");
        free(one);
        p += n + (p[n] == ',');
    }
    if (c->stream)
        buf_printf(out, " stream %s", c->stream);
    if (c->user || c->token)
        buf_printf(out, ", %s set", c->token ? "token" : "user and password");
}

const struct sink_type sink_nats_type = {
    .name = "nats",
    .description = "JetStream messages on a subject per table, deduplicated by Nats-Msg-Id",
    .ops = &sink_nats_ops,
    .schema = &nats_sink_schema,
    .conf_size = sizeof(struct nats_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 10000,
    .flush_interval_seconds = 0.2,
    .ordering = ORDER_TRANSACTION,
    .at_least_once = true,
    .flush = SINK_FLUSH_ON_CATCH_UP,
    .describe = nats_describe,
};
