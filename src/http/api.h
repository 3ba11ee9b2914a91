/* The pipeline's HTTP endpoints, served by httpd on the platform's
 * health_bind:health_port.
 *
 * For probes and scrapers, open to anyone who can connect:
 *   GET  /healthz          200 "ok" while the process runs (liveness)
 *   GET  /readyz           200 when the source streams (or takes its initial
 *                          snapshot) and every sink is running, else 503; a
 *                          JSON summary either way
 *   GET  /metrics          Prometheus text format 0.0.4
 *   GET  /status           everything as one JSON document
 *
 * The control API (/v1/...), for operators and `cdc status|pause|resume`:
 *   GET  /v1/status        = /status
 *   POST /v1/pause         the source stops reading, snapshot readers too
 *   POST /v1/resume        (sinks drain, the position keeps being confirmed)
 *   GET  /v1/lag           per sink: events, seconds and source bytes behind
 *   GET  /v1/snapshots     the running (or last) snapshot's progress
 *   POST /v1/snapshots     queue an incremental snapshot of tables
 *                          (?tables=a,b or {"tables": [...]}): 202
 *   GET  /v1/dlq           dead-letter entries (?sink=S&all=true&limit=N)
 *   POST /v1/dlq/replay    replay pending entries (?sink=S&id=N) in the
 *                          background: 202; GET shows how it went
 *   /control/pause, /control/resume, /control/status: deprecated aliases of
 *   the first three, answered with a Deprecation header.
 *
 * With platform control_token set, the control API needs `Authorization:
 * Bearer <token>` (401 without, 403 with a wrong one); the token is never
 * logged or echoed.  Without one it answers only on a loopback address:
 * api_check_bind refuses to serve it elsewhere.
 *
 * Every figure is read from the components at request time through their
 * stats functions; the API keeps no counters of its own. */
#ifndef CDC_HTTP_API_H
#define CDC_HTTP_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/json.h"
#include "pipeline/engine.h"
#include "source/driver.h"
#include "state/store.h"

/* What the endpoints read.  All borrowed; any may be NULL while the pipeline
 * starts (the endpoints then report it as starting and not ready). */
struct api_ctx {
    const struct config *cfg;    /* bind address, port, pipeline id, sinks, control token */
    struct engine *eng;          /* only once engine_start has returned */
    struct driver *src;          /* once driver_new has succeeded */
    struct store *store;         /* the dead-letter queue; NULL = none */
    atomic_bool *paused;         /* the flag given to driver_opts.paused; NULL = cannot pause */
    const struct json_ctx *json; /* envelope settings for DLQ replays; NULL = no replays */
    const char *version;         /* cdc's version, for cdc_build_info */
};

struct api;

/* The rule for serving the control API: without control_token only on a
 * loopback health_bind (loading the platform file checks it too, with the
 * line).  0, or CDC_EINVAL with a sentence naming the file and both keys.
 * No check when health_enabled is false. */
int api_check_bind(const struct config *cfg, char *err, size_t errlen);

/* Starts the server on ctx->cfg's health_bind:health_port (127.0.0.1 and any
 * free port when cfg is NULL) and logs event=http.listening; refuses what
 * api_check_bind refuses.  Copies *ctx. */
int api_start(struct api **out, const struct api_ctx *ctx, char *err, size_t errlen);
/* Replaces the context, e.g. once the engine runs, or with the pointers
 * cleared before the components are freed.  Returns after any request
 * reading the old context has finished. */
void api_update(struct api *api, const struct api_ctx *ctx);
/* The port actually bound. */
int api_port(const struct api *api);
/* Stops serving (waiting for a DLQ replay it started to finish its current
 * entry) and frees api; NULL is a no-op. */
void api_stop(struct api *api);

#endif
