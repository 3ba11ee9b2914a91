/* The pipeline's health, metrics and control endpoints (see api.h).
 *
 * A request takes one snapshot of every component's figures under the API's
 * mutex (so api_update can withdraw the components safely) and renders it as
 * JSON or Prometheus text. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/json.h"
#include "http/api.h"
#include "http/httpd.h"
#include "sink/registry.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

struct api {
    pthread_mutex_t mu; /* guards ctx, and is held while a request reads it */
    struct api_ctx ctx;
    struct httpd *httpd;
    int64_t started_us; /* wall clock */
};

/* ---------- one snapshot of the pipeline ---------- */

struct sink_snap {
    struct engine_sink_stats st;
    int64_t dlq; /* pending DLQ entries; -1 = unknown */
};

struct snapshot {
    const char *pipeline_id; /* or NULL */
    bool have_src, have_eng;
    struct source_stats src;
    char watermark_text[SOURCE_POS_TEXT_MAX];
    bool pause_requested;
    uint64_t watermark; /* durable in every sink (engine_confirmed) */
    uint64_t pending;
    uint64_t buf_bytes, buf_events, full_wait_us;
    bool buf_full;
    struct sink_snap *sinks;
    unsigned nsinks;
    const char *source_state;
    uint64_t lag_bytes;
    double lag_seconds;
    bool ready;
    char why[256]; /* why not ready */
    int64_t now_us;
    int64_t uptime_us;
};

static void why_add(struct snapshot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why_add(struct snapshot *s, const char *fmt, ...)
{
    size_t n = strlen(s->why);
    if (n && n + 2 < sizeof s->why) {
        memcpy(s->why + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why + n, sizeof s->why - n, fmt, ap);
    va_end(ap);
}

/* Fills s from the context; the caller holds api->mu. */
static void snapshot_take(struct api *api, struct snapshot *s)
{
    const struct api_ctx *ctx = &api->ctx;
    memset(s, 0, sizeof *s);
    s->now_us = clock_wall_us();
    s->uptime_us = s->now_us - api->started_us;
    s->pipeline_id = ctx->cfg ? ctx->cfg->pipeline_id : NULL;
    s->pause_requested = ctx->paused && atomic_load(ctx->paused);
    if (ctx->src) {
        s->have_src = true;
        driver_stats(ctx->src, &s->src);
    }
    if (ctx->eng) {
        s->have_eng = true;
        /* The first stream's (the only one of PostgreSQL and MySQL). */
        struct cdc_acks acks = {0};
        engine_confirmed(ctx->eng, &acks);
        s->watermark = acks.n ? acks.v[0].pos : 0;
        cdc_acks_fini(&acks);
        if (ctx->src)
            driver_format_pos(ctx->src, s->watermark, s->watermark_text, sizeof s->watermark_text);
        s->pending = engine_pending(ctx->eng);
        engine_log_stats(ctx->eng, &s->buf_bytes, &s->buf_events, &s->buf_full, &s->full_wait_us);
        s->nsinks = engine_nsinks(ctx->eng);
        s->sinks = xcalloc(s->nsinks ? s->nsinks : 1, sizeof *s->sinks);
        for (unsigned i = 0; i < s->nsinks; i++)
            engine_sink_stats(ctx->eng, i, &s->sinks[i].st);
    } else if (ctx->cfg) {
        /* Not running yet: the configured sinks, as starting. */
        s->sinks = xcalloc(ctx->cfg->nsinks ? ctx->cfg->nsinks : 1, sizeof *s->sinks);
        for (size_t i = 0; i < ctx->cfg->nsinks; i++) {
            const struct sink_cfg *sc = &ctx->cfg->sinks[i];
            if (!sc->enabled)
                continue;
            struct engine_sink_stats *st = &s->sinks[s->nsinks++].st;
            st->sink_id = sc->sink_id;
            st->sink_type = sc->type->name;
            st->state = "starting";
        }
    }
    for (unsigned i = 0; i < s->nsinks; i++)
        s->sinks[i].dlq = ctx->store ? store_dlq_count(ctx->store, s->sinks[i].st.sink_id) : -1;

    if (!s->have_src || !s->src.connected)
        s->source_state = "CONNECTING";
    else if (s->src.paused)
        s->source_state = "PAUSED";
    else
        s->source_state = "RUNNING";

    if (s->have_src) {
        const struct source_stats *ss = &s->src;
        s->lag_bytes = ss->lag;
        /* Caught up when everything received is durable in every sink; until
         * then, how old the newest transaction seen is. */
        uint64_t durable = s->have_eng ? s->watermark : ss->confirmed;
        if (durable < ss->received && ss->last_commit_ts > 0 && s->now_us > ss->last_commit_ts)
            s->lag_seconds = (double)(s->now_us - ss->last_commit_ts) / 1e6;
    }

    s->ready = s->have_src && s->src.connected && s->have_eng;
    if (!s->have_src || !s->src.connected)
        why_add(s, "source is connecting");
    if (!s->have_eng && s->nsinks == 0)
        why_add(s, "sinks are starting");
    for (unsigned i = 0; i < s->nsinks; i++) {
        const char *state = s->sinks[i].st.state ? s->sinks[i].st.state : "unknown";
        if (strcmp(state, "running") != 0) {
            s->ready = false;
            why_add(s, "sink %s is %s", s->sinks[i].st.sink_id, state);
        }
    }
}

static void snapshot_fini(struct snapshot *s)
{
    free(s->sinks);
    s->sinks = NULL;
}

/* ---------- JSON ---------- */

static void put_str_json(struct buf *b, const char *s)
{
    if (s)
        json_string(b, s, strlen(s));
    else
        buf_puts(b, "null");
}

static void put_time_json(struct buf *b, int64_t us)
{
    if (us <= 0) {
        buf_puts(b, "null");
        return;
    }
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char text[64];
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "\"%s.%06dZ\"", text, (int)(us % 1000000));
}

/* The health document.  full adds counters, buffer figures and uptime (the
 * /status form); the short form is the reference's readiness body. */
static void render_json(struct buf *b, const struct snapshot *s, bool full)
{
    buf_puts(b, "{\"pipeline_id\":");
    put_str_json(b, s->pipeline_id);
    buf_printf(b, ",\"ready\":%s", s->ready ? "true" : "false");
    if (!s->ready) {
        buf_puts(b, ",\"reason\":");
        put_str_json(b, s->why);
    }
    buf_puts(b, ",\"source\":{\"state\":");
    put_str_json(b, s->source_state);
    if (s->have_src) {
        buf_puts(b, ",\"confirmed_lsn\":");
        put_str_json(b, s->src.confirmed_text);
        buf_puts(b, ",\"received_lsn\":");
        put_str_json(b, s->src.received_text);
    } else {
        buf_puts(b, ",\"confirmed_lsn\":null,\"received_lsn\":null");
    }
    if (full) {
        const struct source_stats *ss = &s->src;
        buf_printf(b,
                   ",\"connected\":%s,\"paused\":%s,\"pause_requested\":%s,\"events\":%" PRIu64
                   ",\"transactions\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"reconnects\":%" PRIu64,
                   ss->connected ? "true" : "false", ss->paused ? "true" : "false",
                   s->pause_requested ? "true" : "false", ss->events, ss->transactions, ss->bytes,
                   ss->reconnects);
        for (size_t i = 0; i < ss->nmetrics; i++)
            buf_printf(b, ",\"%s\":%" PRIu64, ss->metrics[i].name, ss->metrics[i].value);
        buf_puts(b, ",\"last_commit_time\":");
        put_time_json(b, ss->last_commit_ts);
    }
    buf_puts(b, "},\"sinks\":[");
    for (unsigned i = 0; i < s->nsinks; i++) {
        const struct sink_snap *k = &s->sinks[i];
        buf_puts(b, i ? ",{\"sink_id\":" : "{\"sink_id\":");
        put_str_json(b, k->st.sink_id);
        buf_puts(b, ",\"type\":");
        put_str_json(b, k->st.sink_type);
        buf_puts(b, ",\"status\":");
        put_str_json(b, k->st.state);
        buf_printf(b, ",\"backlog\":%" PRIu64 ",\"last_error\":", k->st.backlog);
        put_str_json(b, k->st.last_error[0] ? k->st.last_error : NULL);
        if (full) {
            buf_printf(b,
                       ",\"events\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"flushes\":%" PRIu64
                       ",\"errors\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"dlq_pending\":",
                       k->st.events_out, k->st.skipped, k->st.flushes, k->st.errors, k->st.retries);
            if (k->dlq >= 0)
                buf_printf(b, "%" PRId64, k->dlq);
            else
                buf_puts(b, "null");
        }
        buf_putc(b, '}');
    }
    buf_printf(b, "],\"lag\":{\"bytes\":%" PRIu64 ",\"seconds\":%.3f}", s->lag_bytes,
               s->lag_seconds);
    if (full) {
        if (s->have_eng) {
            buf_printf(b,
                       ",\"buffer\":{\"bytes\":%" PRIu64 ",\"events\":%" PRIu64
                       ",\"full\":%s,\"backpressure_seconds\":%.3f}"
                       ",\"pending_transactions\":%" PRIu64 ",\"commit_watermark_lsn\":",
                       s->buf_bytes, s->buf_events, s->buf_full ? "true" : "false",
                       (double)s->full_wait_us / 1e6, s->pending);
            put_str_json(b, s->watermark_text);
        } else {
            buf_puts(b, ",\"buffer\":null,\"pending_transactions\":null,"
                        "\"commit_watermark_lsn\":null");
        }
        buf_printf(b, ",\"uptime_seconds\":%.3f", (double)s->uptime_us / 1e6);
    }
    buf_puts(b, "}\n");
}

/* ---------- Prometheus text ---------- */

static void prom_head(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(struct buf *b, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\')
            buf_puts(b, "\\\\");
        else if (*v == '"')
            buf_puts(b, "\\\"");
        else if (*v == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *v);
    }
}

static void prom_u64(struct buf *b, const char *name, uint64_t v)
{
    buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void prom_sink_u64(struct buf *b, const char *name, const struct sink_snap *k, uint64_t v)
{
    buf_printf(b, "%s{sink=\"", name);
    prom_label(b, k->st.sink_id);
    buf_puts(b, "\",type=\"");
    prom_label(b, k->st.sink_type);
    buf_printf(b, "\"} %" PRIu64 "\n", v);
}

/* One metric family per source figure.  The samples are left out while the
 * component does not exist yet (a scraper sees no value, not a false 0). */
struct metric_def {
    const char *name, *type, *help;
};

enum {
    M_EVENTS,
    M_TXNS,
    M_BYTES,
    M_RECONNECTS,
    M_RECEIVED,
    M_CONFIRMED,
    M_LAG_BYTES,
    M_PAUSED,
    M_NSRC
};

/* The source's own figures (struct source_stats.metrics) come between
 * M_LAG_BYTES and M_PAUSED. */
static const struct metric_def src_metrics[M_NSRC] = {
    [M_EVENTS] = {"cdc_source_events_total", "counter", "Change events decoded from the source."},
    [M_TXNS] = {"cdc_source_transactions_total", "counter", "Source transactions committed."},
    [M_BYTES] = {"cdc_source_bytes_total", "counter", "Logical replication payload bytes."},
    [M_RECONNECTS] = {"cdc_source_reconnects_total", "counter",
                      "Times the replication connection was re-established."},
    [M_RECEIVED] = {"cdc_source_received_lsn", "gauge", "Newest WAL position received."},
    [M_CONFIRMED] = {"cdc_source_confirmed_lsn", "gauge",
                     "Newest WAL position confirmed to the replication slot."},
    [M_LAG_BYTES] = {"cdc_source_lag_bytes", "gauge",
                     "WAL bytes received but not yet confirmed (received - confirmed)."},
    [M_PAUSED] = {"cdc_source_paused", "gauge", "1 while reading is paused by the control API."},
};

enum { S_EVENTS, S_SKIPPED, S_FLUSHES, S_ERRORS, S_RETRIES, S_DEAD, S_BACKLOG, S_UP, S_DLQ, S_N };

/* Per sink, labelled sink="<sink_id>",type="<sink type>". */
static const struct metric_def sink_metrics[S_N] = {
    [S_EVENTS] = {"cdc_sink_events_total", "counter", "Events delivered to the sink."},
    [S_SKIPPED] = {"cdc_sink_skipped_total", "counter",
                   "Events skipped because the sink already had them."},
    [S_FLUSHES] = {"cdc_sink_flushes_total", "counter",
                   "Flushes that made the sink's writes durable."},
    [S_ERRORS] = {"cdc_sink_errors_total", "counter", "Failed writes, flushes or opens."},
    [S_RETRIES] = {"cdc_sink_retries_total", "counter",
                   "Times the sink was reopened after a failure."},
    [S_DEAD] = {"cdc_sink_dead_lettered_total", "counter",
                "Events this run stored in the dead-letter queue."},
    [S_BACKLOG] = {"cdc_sink_backlog_events", "gauge",
                   "Events in the event log the sink has not read."},
    [S_UP] = {"cdc_sink_up", "gauge", "1 while the sink is running, 0 otherwise."},
    [S_DLQ] = {"cdc_sink_dlq_pending", "gauge", "Dead-letter queue entries pending for the sink."},
};

static void render_metrics(struct buf *b, const struct snapshot *s)
{
    const struct source_stats *ss = &s->src;
    uint64_t v[M_NSRC] = {
        [M_EVENTS] = ss->events,      [M_TXNS] = ss->transactions,
        [M_BYTES] = ss->bytes,        [M_RECONNECTS] = ss->reconnects,
        [M_RECEIVED] = ss->received,  [M_CONFIRMED] = ss->confirmed,
        [M_LAG_BYTES] = s->lag_bytes, [M_PAUSED] = ss->paused ? 1 : 0,
    };
    for (int i = 0; i < M_NSRC; i++) {
        if (i == M_PAUSED) {
            for (size_t k = 0; k < ss->nmetrics; k++) {
                char name[96];
                snprintf(name, sizeof name, "cdc_source_%s", ss->metrics[k].name);
                prom_head(b, name, ss->metrics[k].type, ss->metrics[k].help);
                if (s->have_src)
                    prom_u64(b, name, ss->metrics[k].value);
            }
        }
        prom_head(b, src_metrics[i].name, src_metrics[i].type, src_metrics[i].help);
        if (s->have_src)
            prom_u64(b, src_metrics[i].name, v[i]);
    }
    prom_head(b, "cdc_source_lag_seconds", "gauge",
              "Age of the newest transaction seen while it is not yet durable in every sink; "
              "0 when caught up.");
    if (s->have_src)
        buf_printf(b, "cdc_source_lag_seconds %.3f\n", s->lag_seconds);

    prom_head(b, "cdc_buffer_bytes", "gauge", "Bytes of events held in the event log.");
    if (s->have_eng)
        prom_u64(b, "cdc_buffer_bytes", s->buf_bytes);
    prom_head(b, "cdc_buffer_events", "gauge", "Events held in the event log.");
    if (s->have_eng)
        prom_u64(b, "cdc_buffer_events", s->buf_events);
    prom_head(b, "cdc_buffer_full", "gauge", "1 while the event log is full and the source waits.");
    if (s->have_eng)
        prom_u64(b, "cdc_buffer_full", s->buf_full ? 1 : 0);
    prom_head(b, "cdc_backpressure_seconds_total", "counter",
              "Time the source spent waiting for room in the event log.");
    if (s->have_eng)
        buf_printf(b, "cdc_backpressure_seconds_total %.6f\n", (double)s->full_wait_us / 1e6);
    prom_head(b, "cdc_pending_transactions", "gauge",
              "Transactions registered with the commit tracker and not yet confirmed.");
    if (s->have_eng)
        prom_u64(b, "cdc_pending_transactions", s->pending);
    prom_head(b, "cdc_commit_watermark_lsn", "gauge",
              "Newest WAL position durable in every sink (confirmed at the next status update).");
    if (s->have_eng)
        prom_u64(b, "cdc_commit_watermark_lsn", s->watermark);

    for (int m = 0; m < S_N; m++) {
        prom_head(b, sink_metrics[m].name, sink_metrics[m].type, sink_metrics[m].help);
        for (unsigned i = 0; i < s->nsinks; i++) {
            const struct sink_snap *k = &s->sinks[i];
            uint64_t val[S_N] = {
                [S_EVENTS] = k->st.events_out,
                [S_SKIPPED] = k->st.skipped,
                [S_FLUSHES] = k->st.flushes,
                [S_ERRORS] = k->st.errors,
                [S_RETRIES] = k->st.retries,
                [S_DEAD] = k->st.dead_lettered,
                [S_BACKLOG] = k->st.backlog,
                [S_UP] = k->st.state && strcmp(k->st.state, "running") == 0,
                [S_DLQ] = k->dlq > 0 ? (uint64_t)k->dlq : 0,
            };
            if (m == S_DLQ && k->dlq < 0)
                continue; /* no store: unknown */
            prom_sink_u64(b, sink_metrics[m].name, k, val[m]);
        }
    }
    prom_head(b, "cdc_uptime_seconds", "gauge", "Seconds since the HTTP server started.");
    buf_printf(b, "cdc_uptime_seconds %.3f\n", (double)s->uptime_us / 1e6);
}

/* ---------- control ---------- */

/* Compares in time that depends only on the length of what the client sent,
 * never on where the first difference is, nor on the token's length. */
static bool token_equal(const char *given, const char *want)
{
    size_t glen = strlen(given), wlen = strlen(want);
    volatile unsigned char diff = (unsigned char)(glen != wlen);
    if (wlen == 0)
        return false;
    for (size_t i = 0; i < glen; i++)
        diff |= (unsigned char)(given[i] ^ want[i % wlen]);
    return diff == 0;
}

static void json_error(struct http_response *rs, int status, const char *msg)
{
    rs->status = status;
    rs->content_type = "application/json";
    buf_reset(&rs->body);
    buf_puts(&rs->body, "{\"error\":");
    json_string(&rs->body, msg, strlen(msg));
    buf_puts(&rs->body, "}\n");
}

/* 0 if the request carries the right bearer token, else the answer is set. */
static int check_auth(const struct http_request *rq, struct http_response *rs, const char *token)
{
    const char *auth = http_request_header(rq, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        http_response_header(rs, "WWW-Authenticate", "Bearer realm=\"cdc\"");
        json_error(rs, 401, "this endpoint needs an Authorization: Bearer token");
        return -1;
    }
    const char *given = auth + 7;
    while (*given == ' ')
        given++;
    if (!token_equal(given, token)) {
        json_error(rs, 403, "wrong token");
        return -1;
    }
    return 0;
}

static bool method_is(const struct http_request *rq, const char *a, const char *b,
                      struct http_response *rs)
{
    if (strcmp(rq->method, a) == 0 || (b && strcmp(rq->method, b) == 0))
        return true;
    char allow[32];
    snprintf(allow, sizeof allow, "%s%s%s", a, b ? ", " : "", b ? b : "");
    http_response_header(rs, "Allow", allow);
    json_error(rs, 405, "method not allowed");
    return false;
}

static void set_paused(struct api *api, const struct http_request *rq, struct http_response *rs,
                       bool pause)
{
    if (!method_is(rq, "POST", NULL, rs))
        return;
    if (!api->ctx.paused) {
        json_error(rs, 503, "the pipeline cannot be paused yet");
        return;
    }
    bool was = atomic_exchange(api->ctx.paused, pause);
    if (was != pause)
        log_info(pause ? "control.paused" : "control.resumed", "via=http");
    rs->content_type = "application/json";
    buf_printf(&rs->body, "{\"paused\":%s,\"changed\":%s}\n", pause ? "true" : "false",
               was != pause ? "true" : "false");
}

/* ---------- routing ---------- */

static void render_status(struct api *api, struct http_response *rs, bool full, bool readyz)
{
    struct snapshot s;
    snapshot_take(api, &s);
    rs->content_type = "application/json";
    render_json(&rs->body, &s, full);
    if (readyz && !s.ready)
        rs->status = 503;
    snapshot_fini(&s);
}

static void api_handle(const struct http_request *rq, struct http_response *rs, void *arg)
{
    struct api *api = arg;
    const char *path = rq->path;
    pthread_mutex_lock(&api->mu);
    const char *token = api->ctx.cfg ? api->ctx.cfg->platform.control_token : NULL;
    if (strcmp(path, "/healthz") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            buf_puts(&rs->body, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            render_status(api, rs, false, true);
    } else if (strcmp(path, "/status") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            render_status(api, rs, true, false);
    } else if (strcmp(path, "/metrics") == 0) {
        if (method_is(rq, "GET", "HEAD", rs)) {
            struct snapshot s;
            snapshot_take(api, &s);
            rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
            render_metrics(&rs->body, &s);
            snapshot_fini(&s);
        }
    } else if (token && *token && strncmp(path, "/control/", 9) == 0) {
        if (check_auth(rq, rs, token) != 0) {
            /* answered */
        } else if (strcmp(path, "/control/pause") == 0) {
            set_paused(api, rq, rs, true);
        } else if (strcmp(path, "/control/resume") == 0) {
            set_paused(api, rq, rs, false);
        } else if (strcmp(path, "/control/status") == 0) {
            if (method_is(rq, "GET", "HEAD", rs))
                render_status(api, rs, true, false);
        } else {
            json_error(rs, 404, "no such control endpoint");
        }
    } else {
        json_error(rs, 404, "not found");
    }
    pthread_mutex_unlock(&api->mu);
}

/* ---------- lifetime ---------- */

int api_start(struct api **out, const struct api_ctx *ctx, char *err, size_t errlen)
{
    *out = NULL;
    struct api *api = xcalloc(1, sizeof *api);
    pthread_mutex_init(&api->mu, NULL);
    api->ctx = *ctx;
    api->started_us = clock_wall_us();
    const struct platform_cfg *pl = ctx->cfg ? &ctx->cfg->platform : NULL;
    const char *bind = pl && pl->health_bind && *pl->health_bind ? pl->health_bind : "127.0.0.1";
    struct httpd_opts o = {
        .bind = bind,
        .port = pl ? pl->health_port : 0,
        .handler = api_handle,
        .arg = api,
    };
    char herr[512];
    int rc = httpd_start(&api->httpd, &o, herr, sizeof herr);
    if (rc != 0) {
        cdc_fail(err, errlen, rc, "health server: %s", herr);
        pthread_mutex_destroy(&api->mu);
        free(api);
        return rc;
    }
    log_info("http.listening", "addr=%s port=%d control=%s", log_q(bind), httpd_port(api->httpd),
             pl && pl->control_token && *pl->control_token ? "enabled" : "disabled");
    *out = api;
    return 0;
}

void api_update(struct api *api, const struct api_ctx *ctx)
{
    pthread_mutex_lock(&api->mu);
    api->ctx = *ctx;
    pthread_mutex_unlock(&api->mu);
}

int api_port(const struct api *api)
{
    return httpd_port(api->httpd);
}

void api_stop(struct api *api)
{
    if (!api)
        return;
    httpd_stop(api->httpd);
    pthread_mutex_destroy(&api->mu);
    free(api);
}
