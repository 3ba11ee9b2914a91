/* The view of the pipeline one request takes (api_int.h), and the JSON
 * documents built from it: status, lag, snapshot. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "http/api_int.h"
#include "sink/registry.h"
#include "util/clock.h"
#include "util/mem.h"

static void why_add(struct view *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why_add(struct view *v, const char *fmt, ...)
{
    size_t n = strlen(v->why);
    if (n && n + 2 < sizeof v->why) {
        memcpy(v->why + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why + n, sizeof v->why - n, fmt, ap);
    va_end(ap);
}

/* Each sink's figures.  Taken before the source's, so the source never
 * shows fewer events than its sinks delivered. */
static void take_sinks(const struct api_ctx *ctx, struct view *v)
{
    if (ctx->eng) {
        v->nsinks = engine_nsinks(ctx->eng);
        v->sinks = xcalloc(v->nsinks ? v->nsinks : 1, sizeof *v->sinks);
        for (unsigned i = 0; i < v->nsinks; i++)
            engine_sink_stats(ctx->eng, i, &v->sinks[i].st);
    } else if (ctx->cfg) {
        /* Not running yet: the configured sinks, as starting. */
        v->sinks = xcalloc(ctx->cfg->nsinks ? ctx->cfg->nsinks : 1, sizeof *v->sinks);
        for (size_t i = 0; i < ctx->cfg->nsinks; i++) {
            const struct sink_cfg *sc = &ctx->cfg->sinks[i];
            if (!sc->enabled)
                continue;
            struct engine_sink_stats *st = &v->sinks[v->nsinks++].st;
            st->sink_id = sc->sink_id;
            st->sink_type = sc->type->name;
            st->state = "starting";
        }
    }
    for (unsigned i = 0; i < v->nsinks; i++)
        v->sinks[i].dlq = ctx->store ? store_dlq_count(ctx->store, v->sinks[i].st.sink_id) : -1;
}

/* How far behind each sink is (needs the source's figures). */
static void take_lag(const struct api_ctx *ctx, struct view *v)
{
    for (unsigned i = 0; ctx->eng && ctx->src && i < v->nsinks; i++) {
        struct sink_view *k = &v->sinks[i];
        k->have_lag = true;
        driver_sink_lag(ctx->src, k->st.done_seq, v->now_us, &k->lag);
        if (k->lag.events > 0 && k->lag.pos && v->src.received > k->lag.pos)
            k->bytes_behind = v->src.received - k->lag.pos;
    }
}

void view_take(struct api *api, struct view *v)
{
    const struct api_ctx *ctx = &api->ctx;
    memset(v, 0, sizeof *v);
    v->now_us = clock_wall_us();
    v->uptime_us = v->now_us - api->started_us;
    v->pipeline_id = ctx->cfg ? ctx->cfg->pipeline_id : NULL;
    v->pause_requested = ctx->paused && atomic_load(ctx->paused);
    take_sinks(ctx, v);
    if (ctx->src) {
        v->have_src = true;
        driver_stats(ctx->src, &v->src);
    }
    if (ctx->eng) {
        v->have_eng = true;
        /* The first stream's (the only one of PostgreSQL and MySQL). */
        struct cdc_acks acks = {0};
        engine_confirmed(ctx->eng, &acks);
        v->watermark = acks.n ? acks.v[0].pos : 0;
        cdc_acks_fini(&acks);
        if (ctx->src)
            driver_format_pos(ctx->src, v->watermark, v->watermark_text, sizeof v->watermark_text);
        v->pending = engine_pending(ctx->eng);
        engine_log_stats(ctx->eng, &v->buf_bytes, &v->buf_events, &v->buf_full, &v->full_wait_us);
    }
    take_lag(ctx, v);

    const struct source_stats *ss = &v->src;
    bool initial = v->have_src && ss->snapshot.running && !ss->snapshot.incremental;
    if (v->have_src && ss->paused)
        v->source_state = "PAUSED";
    else if (initial)
        v->source_state = "SNAPSHOTTING";
    else if (!v->have_src || !ss->connected)
        v->source_state = "CONNECTING";
    else
        v->source_state = "RUNNING";

    if (v->have_src) {
        v->lag_bytes = ss->lag;
        /* Caught up when everything received is durable in every sink; until
         * then, how old the newest transaction seen is. */
        uint64_t durable = v->have_eng ? v->watermark : ss->confirmed;
        if (durable < ss->received && ss->last_commit_ts > 0 && v->now_us > ss->last_commit_ts)
            v->lag_seconds = (double)(v->now_us - ss->last_commit_ts) / 1e6;
    }

    /* Taking the initial snapshot is working, not starting: ready. */
    bool working = v->have_src && (ss->connected || initial);
    v->ready = working && v->have_eng;
    if (!working)
        why_add(v, "source is connecting");
    if (!v->have_eng && v->nsinks == 0)
        why_add(v, "sinks are starting");
    for (unsigned i = 0; i < v->nsinks; i++) {
        const char *state = v->sinks[i].st.state ? v->sinks[i].st.state : "unknown";
        if (strcmp(state, "running") != 0) {
            v->ready = false;
            why_add(v, "sink %s is %s", v->sinks[i].st.sink_id, state);
        }
    }
}

void view_fini(struct view *v)
{
    free(v->sinks);
    v->sinks = NULL;
}

/* ---------- JSON ---------- */

static void put_str(struct buf *b, const char *s)
{
    if (s)
        json_string(b, s, strlen(s));
    else
        buf_puts(b, "null");
}

static void put_time(struct buf *b, int64_t us)
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

static const char *tf(bool b)
{
    return b ? "true" : "false";
}

/* The snapshot object, or null when none ran in this process. */
static void put_snapshot(struct buf *b, const struct view *v)
{
    const struct snap_progress *p = &v->src.snapshot;
    if (!v->have_src || (!p->running && !p->rows_read && !p->chunks_total && !p->tables_total)) {
        buf_puts(b, "null");
        return;
    }
    buf_printf(b,
               "{\"kind\":\"%s\",\"running\":%s,\"paused\":%s,\"rows_read\":%" PRIu64
               ",\"rows_estimated\":%" PRIu64 ",\"chunks_done\":%" PRIu64
               ",\"chunks_total\":%" PRIu64 ",\"tables_done\":%" PRIu64 ",\"tables_total\":%" PRIu64
               ",\"rows_per_second\":%.1f,\"eta_seconds\":",
               p->incremental ? "incremental" : "initial", tf(p->running), tf(p->paused),
               p->rows_read, p->rows_estimated, p->chunks_done, p->chunks_total, p->tables_done,
               p->tables_total, p->rows_per_second);
    if (p->eta_seconds >= 0)
        buf_printf(b, "%.1f", p->eta_seconds);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"table\":");
    put_str(b, p->table[0] ? p->table : NULL);
    buf_putc(b, '}');
}

static void put_sink_lag(struct buf *b, const struct sink_view *k)
{
    if (!k->have_lag) {
        buf_puts(b, "null");
        return;
    }
    buf_printf(b, "{\"events\":%" PRIu64 ",\"seconds\":%.3f,\"bytes\":%" PRIu64 "}", k->lag.events,
               k->lag.seconds, k->bytes_behind);
}

static void put_source(struct buf *b, const struct view *v, bool full)
{
    const struct source_stats *ss = &v->src;
    buf_puts(b, "{\"state\":");
    put_str(b, v->source_state);
    if (v->have_src) {
        buf_puts(b, ",\"confirmed_lsn\":");
        put_str(b, ss->confirmed_text);
        buf_puts(b, ",\"received_lsn\":");
        put_str(b, ss->received_text);
    } else {
        buf_puts(b, ",\"confirmed_lsn\":null,\"received_lsn\":null");
    }
    if (full) {
        buf_printf(b,
                   ",\"connected\":%s,\"paused\":%s,\"pause_requested\":%s,\"snapshotting\":%s"
                   ",\"events\":%" PRIu64 ",\"transactions\":%" PRIu64 ",\"bytes\":%" PRIu64
                   ",\"reconnects\":%" PRIu64,
                   tf(ss->connected), tf(ss->paused), tf(v->pause_requested), tf(ss->snapshotting),
                   ss->events, ss->transactions, ss->bytes, ss->reconnects);
        for (size_t i = 0; i < ss->nmetrics; i++)
            buf_printf(b, ",\"%s\":%" PRIu64, ss->metrics[i].name, ss->metrics[i].value);
        buf_puts(b, ",\"last_commit_time\":");
        put_time(b, ss->last_commit_ts);
    }
    buf_putc(b, '}');
}

static void put_sink(struct buf *b, const struct sink_view *k, bool full)
{
    buf_puts(b, "{\"sink_id\":");
    put_str(b, k->st.sink_id);
    buf_puts(b, ",\"type\":");
    put_str(b, k->st.sink_type);
    buf_puts(b, ",\"status\":");
    put_str(b, k->st.state);
    buf_printf(b, ",\"backlog\":%" PRIu64 ",\"last_error\":", k->st.backlog);
    put_str(b, k->st.last_error[0] ? k->st.last_error : NULL);
    if (full) {
        buf_printf(b,
                   ",\"events\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"flushes\":%" PRIu64
                   ",\"errors\":%" PRIu64 ",\"reopens\":%" PRIu64 ",\"request_retries\":%" PRIu64
                   ",\"dead_lettered\":%" PRIu64 ",\"dlq_pending\":",
                   k->st.events_out, k->st.skipped, k->st.flushes, k->st.errors, k->st.reopens,
                   k->st.request_retries, k->st.dead_lettered);
        if (k->dlq >= 0)
            buf_printf(b, "%" PRId64, k->dlq);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"lag\":");
        put_sink_lag(b, k);
    }
    buf_putc(b, '}');
}

void render_status(struct buf *b, const struct view *v, bool full)
{
    buf_puts(b, "{\"pipeline_id\":");
    put_str(b, v->pipeline_id);
    buf_printf(b, ",\"ready\":%s", tf(v->ready));
    if (!v->ready) {
        buf_puts(b, ",\"reason\":");
        put_str(b, v->why);
    }
    buf_puts(b, ",\"source\":");
    put_source(b, v, full);
    buf_puts(b, ",\"snapshot\":");
    put_snapshot(b, v);
    buf_puts(b, ",\"sinks\":[");
    for (unsigned i = 0; i < v->nsinks; i++) {
        if (i)
            buf_putc(b, ',');
        put_sink(b, &v->sinks[i], full);
    }
    buf_printf(b, "],\"lag\":{\"bytes\":%" PRIu64 ",\"seconds\":%.3f}", v->lag_bytes,
               v->lag_seconds);
    if (full) {
        if (v->have_eng) {
            buf_printf(b,
                       ",\"buffer\":{\"bytes\":%" PRIu64 ",\"events\":%" PRIu64
                       ",\"full\":%s,\"backpressure_seconds\":%.3f}"
                       ",\"pending_transactions\":%" PRIu64 ",\"commit_watermark_lsn\":",
                       v->buf_bytes, v->buf_events, tf(v->buf_full), (double)v->full_wait_us / 1e6,
                       v->pending);
            put_str(b, v->watermark_text);
        } else {
            buf_puts(b, ",\"buffer\":null,\"pending_transactions\":null,"
                        "\"commit_watermark_lsn\":null");
        }
        buf_printf(b, ",\"uptime_seconds\":%.3f", (double)v->uptime_us / 1e6);
    }
    buf_puts(b, "}\n");
}

void render_lag(struct buf *b, const struct view *v)
{
    buf_puts(b, "{\"pipeline_id\":");
    put_str(b, v->pipeline_id);
    buf_printf(b, ",\"source\":{\"received_lsn\":");
    put_str(b, v->have_src ? v->src.received_text : NULL);
    buf_puts(b, ",\"confirmed_lsn\":");
    put_str(b, v->have_src ? v->src.confirmed_text : NULL);
    buf_printf(b, ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f},\"sinks\":[", v->lag_bytes,
               v->lag_seconds);
    for (unsigned i = 0; i < v->nsinks; i++) {
        const struct sink_view *k = &v->sinks[i];
        buf_puts(b, i ? ",{\"sink_id\":" : "{\"sink_id\":");
        put_str(b, k->st.sink_id);
        buf_puts(b, ",\"type\":");
        put_str(b, k->st.sink_type);
        buf_puts(b, ",\"status\":");
        put_str(b, k->st.state);
        buf_printf(b, ",\"backlog\":%" PRIu64 ",\"lag\":", k->st.backlog);
        put_sink_lag(b, k);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}\n");
}

void render_snapshot(struct buf *b, const struct view *v)
{
    buf_puts(b, "{\"pipeline_id\":");
    put_str(b, v->pipeline_id);
    buf_printf(b, ",\"can_queue\":%s,\"snapshot\":", tf(v->have_src && v->src.can_snapshot));
    put_snapshot(b, v);
    buf_puts(b, "}\n");
}
