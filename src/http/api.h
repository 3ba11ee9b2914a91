/* The pipeline's HTTP endpoints, served by httpd on the platform's
 * health_bind:health_port:
 *
 *   GET  /healthz          200 "ok" while the process runs (liveness)
 *   GET  /readyz           200 when the source is connected and every sink is
 *                          running, else 503; a JSON summary either way
 *   GET  /metrics          Prometheus text format 0.0.4
 *   GET  /status           everything above as one JSON document
 *   POST /control/pause    the source stops reading (sinks drain, the
 *   POST /control/resume   position keeps being confirmed); resume undoes it
 *   GET  /control/status   = /status
 *
 * The control routes exist only when platform control_token is set (else
 * 404) and need `Authorization: Bearer <token>` (401 without, 403 with a
 * wrong one).  The token is never logged or echoed.
 *
 * Every figure is read from the components at request time through their
 * stats functions; the API keeps no counters of its own. */
#ifndef CDC_HTTP_API_H
#define CDC_HTTP_API_H

#include <stdatomic.h>
#include <stddef.h>

#include "config/config.h"
#include "pipeline/engine.h"
#include "source/driver.h"
#include "state/store.h"

/* What the endpoints read.  All borrowed; any may be NULL while the pipeline
 * starts (the endpoints then report it as starting and not ready). */
struct api_ctx {
    const struct config *cfg; /* bind address, port, pipeline id, sinks, control token */
    struct engine *eng;       /* only once engine_start has returned */
    struct driver *src;       /* once driver_new has succeeded */
    struct store *store;      /* DLQ counts; NULL = none */
    atomic_bool *paused;      /* the flag given to driver_opts.paused; NULL = cannot pause */
};

struct api;

/* Starts the server on ctx->cfg's health_bind:health_port (127.0.0.1 and any
 * free port when cfg is NULL) and logs event=http.listening.  Copies *ctx. */
int api_start(struct api **out, const struct api_ctx *ctx, char *err, size_t errlen);
/* Replaces the context, e.g. once the engine runs, or with the pointers
 * cleared before the components are freed.  Returns after any request
 * reading the old context has finished. */
void api_update(struct api *api, const struct api_ctx *ctx);
/* The port actually bound. */
int api_port(const struct api *api);
/* Stops serving and frees api; NULL is a no-op. */
void api_stop(struct api *api);

#endif
