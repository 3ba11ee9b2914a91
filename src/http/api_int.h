/* Private to the HTTP API (api.h): the view of the pipeline one request
 * takes, and the files that render and serve it.
 *
 *   api.c          lifetime, routing, authentication
 *   api_view.c     the view, and the JSON documents built from it
 *   api_metrics.c  the Prometheus text
 *   api_control.c  pause, resume, snapshots, dead letters and their replay
 *   api_schema.c   the schema history */
#ifndef CDC_HTTP_API_INT_H
#define CDC_HTTP_API_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/api.h"
#include "http/httpd.h"
#include "source/emitter.h"
#include "util/buf.h"

struct api_replay; /* api_control.c */

struct api {
    pthread_mutex_t mu; /* guards ctx, and is held while a request reads it */
    struct api_ctx ctx;
    struct httpd *httpd;
    int64_t started_us;        /* wall clock */
    struct api_replay *replay; /* the last DLQ replay started over HTTP, or NULL */
};

struct sink_view {
    struct engine_sink_stats st;
    int64_t dlq; /* pending DLQ entries; -1 = unknown */
    bool have_lag;
    struct emitter_lag lag;
    uint64_t bytes_behind; /* in the source's position units (WAL bytes for PostgreSQL) */
};

/* One consistent look at the pipeline. */
struct view {
    const char *pipeline_id; /* or NULL */
    bool have_src, have_eng;
    struct source_stats src;
    char watermark_text[SOURCE_POS_TEXT_MAX];
    bool pause_requested;
    uint64_t watermark; /* durable in every sink (engine_confirmed) */
    uint64_t pending;
    uint64_t buf_bytes, buf_events, full_wait_us;
    bool buf_full;
    struct sink_view *sinks;
    unsigned nsinks;
    const char *source_state; /* CONNECTING, SNAPSHOTTING, RUNNING, PAUSED */
    uint64_t lag_bytes;
    double lag_seconds;
    bool ready;
    char why[256]; /* why not ready */
    int64_t now_us;
    int64_t uptime_us;
};

/* api_view.c.  The caller holds api->mu. */
void view_take(struct api *api, struct view *v);
void view_fini(struct view *v);
/* The status document (/status, /v1/status); full = false: the /readyz
 * summary. */
void render_status(struct buf *b, const struct view *v, bool full);
/* GET /v1/lag and GET /v1/snapshots. */
void render_lag(struct buf *b, const struct view *v);
void render_snapshot(struct buf *b, const struct view *v);

/* api_metrics.c */
void render_metrics(struct buf *b, const struct view *v, const char *version);

/* api_control.c.  Handlers answer in rs; the caller holds api->mu. */
void json_error(struct http_response *rs, int status, const char *msg);
void control_pause(struct api *api, const struct http_request *rq, struct http_response *rs,
                   bool pause);
void control_snapshots(struct api *api, const struct http_request *rq, struct http_response *rs);
void control_dlq(struct api *api, const struct http_request *rq, struct http_response *rs);
void control_replay(struct api *api, const struct http_request *rq, struct http_response *rs);
/* api_schema.c: GET /v1/schema. */
void control_schema(struct api *api, const struct http_request *rq, struct http_response *rs);
/* Waits for a replay thread and frees it; NULL is a no-op. */
void api_replay_free(struct api_replay *rp);

#endif
