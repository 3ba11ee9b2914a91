/* /metrics: the view (api_int.h) in the Prometheus text format 0.0.4.
 *
 * Every sample carries pipeline="<pipeline_id>"; a sink's also sink= and
 * type=.  A family's samples are left out while its component does not
 * exist yet (a scraper sees no value, not a false 0); its HELP and TYPE
 * lines are always there. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "http/api_int.h"
#include "util/procstat.h"

/* ---------- text format helpers ---------- */

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct buf *b, const char *v)
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

/* Appends name="value" (with a leading comma unless first). */
static void label(struct buf *b, const char *name, const char *value, bool first)
{
    buf_printf(b, "%s%s=\"", first ? "" : ",", name);
    label_value(b, value);
    buf_putc(b, '"');
}

static void sample_u64(struct buf *b, const char *name, const char *labels, uint64_t v)
{
    buf_printf(b, "%s{%s} %" PRIu64 "\n", name, labels, v);
}

/* Whole numbers without a fraction (and without an exponent up to 2^53),
 * others with microsecond precision. */
static void sample_f(struct buf *b, const char *name, const char *labels, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        buf_printf(b, "%s{%s} %.0f\n", name, labels, v);
    else
        buf_printf(b, "%s{%s} %.6f\n", name, labels, v);
}

/* ---------- the families ---------- */

enum { M_EVENTS, M_TXNS, M_BYTES, M_RECONNECTS, M_RECEIVED, M_CONFIRMED, M_LAG_BYTES, M_NSRC };

static const struct {
    const char *name, *type, *help;
} src_metrics[M_NSRC] = {
    [M_EVENTS] = {"cdc_source_events_total", "counter",
                  "Change events emitted by the source (snapshot rows included)."},
    [M_TXNS] = {"cdc_source_transactions_total", "counter", "Source transactions committed."},
    [M_BYTES] = {"cdc_source_bytes_total", "counter", "Logical replication payload bytes."},
    [M_RECONNECTS] = {"cdc_source_reconnects_total", "counter",
                      "Times the replication connection was re-established."},
    [M_RECEIVED] = {"cdc_source_received_lsn", "gauge", "Newest WAL position received."},
    [M_CONFIRMED] = {"cdc_source_confirmed_lsn", "gauge",
                     "Newest WAL position confirmed to the replication slot."},
    [M_LAG_BYTES] = {"cdc_source_lag_bytes", "gauge",
                     "WAL bytes received but not yet confirmed (received - confirmed)."},
};

static void render_source(struct buf *b, const struct view *v, const char *pl)
{
    const struct source_stats *ss = &v->src;
    const uint64_t val[M_NSRC] = {
        [M_EVENTS] = ss->events,         [M_TXNS] = ss->transactions, [M_BYTES] = ss->bytes,
        [M_RECONNECTS] = ss->reconnects, [M_RECEIVED] = ss->received, [M_CONFIRMED] = ss->confirmed,
        [M_LAG_BYTES] = v->lag_bytes,
    };
    for (int i = 0; i < M_NSRC; i++) {
        head(b, src_metrics[i].name, src_metrics[i].type, src_metrics[i].help);
        if (v->have_src)
            sample_u64(b, src_metrics[i].name, pl, val[i]);
    }
    for (size_t k = 0; k < ss->nmetrics; k++) {
        char name[96];
        snprintf(name, sizeof name, "cdc_source_%s", ss->metrics[k].name);
        head(b, name, ss->metrics[k].type, ss->metrics[k].help);
        if (v->have_src)
            sample_u64(b, name, pl, ss->metrics[k].value);
    }
    if (ss->has_parts) {
        head(b, "cdc_source_partition_lag", "gauge",
             "Records of an assigned partition not yet durable in every sink.");
        struct buf lb = BUF_INIT;
        for (size_t k = 0; v->have_src && k < ss->nparts; k++) {
            char part[16];
            snprintf(part, sizeof part, "%d", (int)ss->parts[k].partition);
            buf_reset(&lb);
            buf_puts(&lb, pl);
            label(&lb, "topic", ss->parts[k].topic, false);
            label(&lb, "partition", part, false);
            sample_u64(b, "cdc_source_partition_lag", lb.p, ss->parts[k].lag);
        }
        buf_fini(&lb);
    }
    head(b, "cdc_source_paused", "gauge",
         "1 while reading (or a snapshot's reading) is paused by the control API.");
    if (v->have_src)
        sample_u64(b, "cdc_source_paused", pl, ss->paused ? 1 : 0);
    head(b, "cdc_source_lag_seconds", "gauge",
         "Age of the newest transaction seen while it is not yet durable in every sink; "
         "0 when caught up.");
    if (v->have_src)
        sample_f(b, "cdc_source_lag_seconds", pl, v->lag_seconds);
}

static void render_snapshot_metrics(struct buf *b, const struct view *v, const char *pl)
{
    const struct snap_progress *p = &v->src.snapshot;
    static const struct {
        const char *name, *help;
    } g[] = {
        {"cdc_snapshot_running", "1 while an initial or incremental snapshot runs."},
        {"cdc_snapshot_rows_read", "Rows the current (or last) snapshot read."},
        {"cdc_snapshot_rows_estimated",
         "Rows the initial snapshot expects (the planner's estimate)."},
        {"cdc_snapshot_chunks_done", "Snapshot chunks durable in every sink."},
        {"cdc_snapshot_chunks_total", "Chunks the initial snapshot planned."},
        {"cdc_snapshot_tables_done", "Tables the snapshot finished."},
        {"cdc_snapshot_tables_total", "Tables the snapshot covers (incremental: so far queued)."},
        {"cdc_snapshot_rows_per_second", "Recent snapshot read rate."},
        {"cdc_snapshot_eta_seconds",
         "Estimated seconds until the initial snapshot is read; absent when unknown."},
    };
    const double val[] = {
        p->running,
        (double)p->rows_read,
        (double)p->rows_estimated,
        (double)p->chunks_done,
        (double)p->chunks_total,
        (double)p->tables_done,
        (double)p->tables_total,
        p->rows_per_second,
        p->eta_seconds,
    };
    for (size_t i = 0; i < sizeof g / sizeof *g; i++) {
        head(b, g[i].name, "gauge", g[i].help);
        bool eta = i == sizeof g / sizeof *g - 1;
        if (v->have_src && (!eta || (p->running && p->eta_seconds >= 0)))
            sample_f(b, g[i].name, pl, val[i]);
    }
}

static void render_buffer(struct buf *b, const struct view *v, const char *pl)
{
    head(b, "cdc_buffer_bytes", "gauge", "Bytes of events held in the event log.");
    if (v->have_eng)
        sample_u64(b, "cdc_buffer_bytes", pl, v->buf_bytes);
    head(b, "cdc_buffer_events", "gauge", "Events held in the event log.");
    if (v->have_eng)
        sample_u64(b, "cdc_buffer_events", pl, v->buf_events);
    head(b, "cdc_buffer_full", "gauge", "1 while the event log is full and the source waits.");
    if (v->have_eng)
        sample_u64(b, "cdc_buffer_full", pl, v->buf_full ? 1 : 0);
    head(b, "cdc_backpressure_seconds_total", "counter",
         "Time the source spent waiting for room in the event log.");
    if (v->have_eng)
        sample_f(b, "cdc_backpressure_seconds_total", pl, (double)v->full_wait_us / 1e6);
    head(b, "cdc_pending_transactions", "gauge",
         "Transactions registered with the commit tracker and not yet confirmed.");
    if (v->have_eng)
        sample_u64(b, "cdc_pending_transactions", pl, v->pending);
    head(b, "cdc_commit_watermark_lsn", "gauge",
         "Newest WAL position durable in every sink (confirmed at the next status update).");
    if (v->have_eng)
        sample_u64(b, "cdc_commit_watermark_lsn", pl, v->watermark);
}

enum {
    S_EVENTS,
    S_SKIPPED,
    S_FLUSHES,
    S_ERRORS,
    S_REOPENS,
    S_RETRIES,
    S_DEAD,
    S_BACKLOG,
    S_UP,
    S_DLQ,
    S_LAG_EVENTS,
    S_LAG_SECONDS,
    S_LAG_BYTES,
    S_N
};

static const struct {
    const char *name, *type, *help;
} sink_metrics[S_N] = {
    [S_EVENTS] = {"cdc_sink_events_total", "counter", "Events delivered to the sink."},
    [S_SKIPPED] = {"cdc_sink_skipped_total", "counter",
                   "Events skipped because the sink already had them."},
    [S_FLUSHES] = {"cdc_sink_flushes_total", "counter",
                   "Flushes that made the sink's writes durable (per-key sinks: batches "
                   "delivered)."},
    [S_ERRORS] = {"cdc_sink_errors_total", "counter", "Failed writes, flushes, requests or opens."},
    [S_REOPENS] = {"cdc_sink_reopens_total", "counter",
                   "Times the sink was opened again after a failure."},
    [S_RETRIES] = {"cdc_sink_request_retries_total", "counter",
                   "Requests sent again: a per-key sink's failed batches, a Kafka producer's "
                   "resent messages."},
    [S_DEAD] = {"cdc_sink_dead_lettered_total", "counter",
                "Events this run stored in the dead-letter queue."},
    [S_BACKLOG] = {"cdc_sink_backlog_events", "gauge",
                   "Events in the event log the sink has not read."},
    [S_UP] = {"cdc_sink_up", "gauge", "1 while the sink is running, 0 otherwise."},
    [S_DLQ] = {"cdc_sink_dlq_pending", "gauge", "Dead-letter queue entries pending for the sink."},
    [S_LAG_EVENTS] = {"cdc_sink_lag_events", "gauge",
                      "Changes emitted by the source that the sink has not made durable."},
    [S_LAG_SECONDS] = {"cdc_sink_lag_seconds", "gauge",
                       "Age of the oldest source commit the sink has not made durable; 0 when "
                       "caught up."},
    [S_LAG_BYTES] = {"cdc_sink_lag_bytes", "gauge",
                     "Source log bytes between the newest position received and the sink's "
                     "newest durable commit."},
};

/* The labels of sink k: pipeline, sink, type. */
static void sink_labels(struct buf *lb, const char *pl, const struct sink_view *k)
{
    buf_reset(lb);
    buf_puts(lb, pl);
    label(lb, "sink", k->st.sink_id, false);
    label(lb, "type", k->st.sink_type, false);
}

static void render_sinks(struct buf *b, const struct view *v, const char *pl)
{
    struct buf lb = BUF_INIT;
    for (int m = 0; m < S_N; m++) {
        head(b, sink_metrics[m].name, sink_metrics[m].type, sink_metrics[m].help);
        for (unsigned i = 0; i < v->nsinks; i++) {
            const struct sink_view *k = &v->sinks[i];
            const uint64_t val[S_N] = {
                [S_EVENTS] = k->st.events_out,
                [S_SKIPPED] = k->st.skipped,
                [S_FLUSHES] = k->st.flushes,
                [S_ERRORS] = k->st.errors,
                [S_REOPENS] = k->st.reopens,
                [S_RETRIES] = k->st.request_retries,
                [S_DEAD] = k->st.dead_lettered,
                [S_BACKLOG] = k->st.backlog,
                [S_UP] = k->st.state && strcmp(k->st.state, "running") == 0,
                [S_DLQ] = k->dlq > 0 ? (uint64_t)k->dlq : 0,
                [S_LAG_EVENTS] = k->lag.events,
                [S_LAG_BYTES] = k->bytes_behind,
            };
            if (m == S_DLQ && k->dlq < 0)
                continue; /* no store: unknown */
            if ((m == S_LAG_EVENTS || m == S_LAG_SECONDS || m == S_LAG_BYTES) && !k->have_lag)
                continue;
            sink_labels(&lb, pl, k);
            if (m == S_LAG_SECONDS)
                sample_f(b, sink_metrics[m].name, lb.p, k->lag.seconds);
            else
                sample_u64(b, sink_metrics[m].name, lb.p, val[m]);
        }
    }

    head(b, "cdc_sink_commit_to_durable_seconds", "histogram",
         "Seconds from a change's commit at the source to durable in the sink.");
    for (unsigned i = 0; i < v->nsinks; i++) {
        sink_labels(&lb, pl, &v->sinks[i]);
        histo_render(&v->sinks[i].st.durable_seconds, "cdc_sink_commit_to_durable_seconds", lb.p,
                     b);
    }
    head(b, "cdc_sink_flush_duration_seconds", "histogram",
         "How long the sink took to make its writes durable (serial sinks).");
    for (unsigned i = 0; i < v->nsinks; i++) {
        if (!v->sinks[i].st.flush_seconds.count)
            continue;
        sink_labels(&lb, pl, &v->sinks[i]);
        histo_render(&v->sinks[i].st.flush_seconds, "cdc_sink_flush_duration_seconds", lb.p, b);
    }
    head(b, "cdc_sink_http_request_duration_seconds", "histogram",
         "How long the sink's HTTP requests took (webhook).");
    for (unsigned i = 0; i < v->nsinks; i++) {
        if (!v->sinks[i].st.request_seconds.count)
            continue;
        sink_labels(&lb, pl, &v->sinks[i]);
        histo_render(&v->sinks[i].st.request_seconds, "cdc_sink_http_request_duration_seconds",
                     lb.p, b);
    }
    head(b, "cdc_sink_http_responses_total", "counter",
         "HTTP responses the sink received, by status code (code=\"other\": codes beyond the "
         "first 15 seen).");
    for (unsigned i = 0; i < v->nsinks; i++) {
        const struct engine_sink_stats *st = &v->sinks[i].st;
        for (unsigned c = 0; c < st->nhttp; c++) {
            char code[16];
            snprintf(code, sizeof code, "%d", st->http[c].code);
            sink_labels(&lb, pl, &v->sinks[i]);
            label(&lb, "code", st->http[c].code ? code : "other", false);
            sample_u64(b, "cdc_sink_http_responses_total", lb.p, st->http[c].n);
        }
    }
    buf_fini(&lb);
}

/* The standard process_* families of Prometheus clients. */
static void render_process(struct buf *b, const char *pl)
{
    struct procstat ps;
    procstat_self(&ps);
    head(b, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.");
    sample_f(b, "process_cpu_seconds_total", pl, ps.cpu_seconds);
    head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sample_u64(b, "process_resident_memory_bytes", pl, ps.resident_bytes);
    head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    sample_u64(b, "process_virtual_memory_bytes", pl, ps.virtual_bytes);
    head(b, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
    if (ps.start_time_seconds > 0)
        buf_printf(b, "process_start_time_seconds{%s} %.3f\n", pl, ps.start_time_seconds);
    head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    if (ps.open_fds >= 0)
        sample_u64(b, "process_open_fds", pl, (uint64_t)ps.open_fds);
    head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    if (ps.max_fds >= 0)
        sample_u64(b, "process_max_fds", pl, (uint64_t)ps.max_fds);
}

void render_metrics(struct buf *b, const struct view *v, const char *version)
{
    struct buf pl = BUF_INIT;
    label(&pl, "pipeline", v->pipeline_id ? v->pipeline_id : "", true);
    render_source(b, v, pl.p);
    render_snapshot_metrics(b, v, pl.p);
    render_buffer(b, v, pl.p);
    render_sinks(b, v, pl.p);
    head(b, "cdc_uptime_seconds", "gauge", "Seconds since the HTTP server started.");
    sample_f(b, "cdc_uptime_seconds", pl.p, (double)v->uptime_us / 1e6);
    head(b, "cdc_build_info", "gauge", "Always 1; the labels say which cdc this is.");
    struct buf info = BUF_INIT;
    buf_puts(&info, pl.p);
    label(&info, "version", version ? version : "unknown", false);
    sample_u64(b, "cdc_build_info", info.p, 1);
    buf_fini(&info);
    render_process(b, pl.p);
    buf_fini(&pl);
}
