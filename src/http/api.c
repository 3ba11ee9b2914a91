/* The pipeline's health, metrics and control endpoints (see api.h): the
 * server's lifetime, the routes and who may use them.
 *
 * A request takes one view of every component's figures under the API's
 * mutex (so api_update can withdraw the components safely) and renders it
 * (api_view.c, api_metrics.c) or acts on it (api_control.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/api_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* ---------- who may use the control API ---------- */

static bool have_token(const struct platform_cfg *pl)
{
    return pl->control_token && *pl->control_token;
}

int api_check_bind(const struct config *cfg, char *err, size_t errlen)
{
    const struct platform_cfg *pl = &cfg->platform;
    if (!pl->health_enabled || have_token(pl) || config_bind_is_loopback(pl->health_bind))
        return 0;
    return cdc_fail(err, errlen, CDC_EINVAL,
                    "%s: health_bind %s is not a loopback address, and without control_token the "
                    "control API (pause, resume, snapshots, dead-letter replays) would answer "
                    "anyone who can reach it: set control_token, or bind health_bind to "
                    "127.0.0.1",
                    cfg->platform_file ? cfg->platform_file : "platform settings", pl->health_bind);
}

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

/* 0 if the request may use the control API, else the answer is set: with a
 * token configured it needs the right bearer token; without one the server
 * listens on loopback only (api_check_bind). */
static int check_auth(struct api *api, const struct http_request *rq, struct http_response *rs)
{
    const struct config *cfg = api->ctx.cfg;
    if (!cfg || !have_token(&cfg->platform))
        return 0;
    const char *auth = http_request_header(rq, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        http_response_header(rs, "WWW-Authenticate", "Bearer realm=\"cdc\"");
        json_error(rs, 401, "this endpoint needs an Authorization: Bearer token");
        return -1;
    }
    const char *given = auth + 7;
    while (*given == ' ')
        given++;
    if (!token_equal(given, cfg->platform.control_token)) {
        json_error(rs, 403, "wrong token");
        return -1;
    }
    return 0;
}

/* ---------- routing ---------- */

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

static void serve_status(struct api *api, struct http_response *rs, bool full, bool readyz)
{
    struct view v;
    view_take(api, &v);
    rs->content_type = "application/json";
    render_status(&rs->body, &v, full);
    if (readyz && !v.ready)
        rs->status = 503;
    view_fini(&v);
}

static void serve_lag(struct api *api, struct http_response *rs)
{
    struct view v;
    view_take(api, &v);
    rs->content_type = "application/json";
    render_lag(&rs->body, &v);
    view_fini(&v);
}

/* What is under /v1/ (rest = the path after it).  false: no such route. */
static bool route_v1(struct api *api, const char *rest, const struct http_request *rq,
                     struct http_response *rs)
{
    if (strcmp(rest, "status") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            serve_status(api, rs, true, false);
    } else if (strcmp(rest, "pause") == 0 || strcmp(rest, "resume") == 0) {
        if (method_is(rq, "POST", NULL, rs))
            control_pause(api, rq, rs, rest[0] == 'p');
    } else if (strcmp(rest, "lag") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            serve_lag(api, rs);
    } else if (strcmp(rest, "snapshots") == 0) {
        if (method_is(rq, "GET", "POST", rs))
            control_snapshots(api, rq, rs);
    } else if (strcmp(rest, "dlq") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            control_dlq(api, rq, rs);
    } else if (strcmp(rest, "schema") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            control_schema(api, rq, rs);
    } else if (strcmp(rest, "dlq/replay") == 0) {
        if (method_is(rq, "GET", "POST", rs))
            control_replay(api, rq, rs);
    } else {
        return false;
    }
    return true;
}

/* The unversioned control paths of earlier versions, kept as aliases. */
static const struct {
    const char *old, *v1;
} deprecated[] = {
    {"/control/pause", "pause"},
    {"/control/resume", "resume"},
    {"/control/status", "status"},
};

static void api_handle(const struct http_request *rq, struct http_response *rs, void *arg)
{
    struct api *api = arg;
    const char *path = rq->path;
    pthread_mutex_lock(&api->mu);
    if (strcmp(path, "/healthz") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            buf_puts(&rs->body, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            serve_status(api, rs, false, true);
    } else if (strcmp(path, "/status") == 0) {
        if (method_is(rq, "GET", "HEAD", rs))
            serve_status(api, rs, true, false);
    } else if (strcmp(path, "/metrics") == 0) {
        if (method_is(rq, "GET", "HEAD", rs)) {
            struct view v;
            view_take(api, &v);
            rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
            render_metrics(&rs->body, &v, api->ctx.version);
            view_fini(&v);
        }
    } else if (strncmp(path, "/v1/", 4) == 0) {
        if (check_auth(api, rq, rs) == 0 && !route_v1(api, path + 4, rq, rs))
            json_error(rs, 404, "no such control endpoint");
    } else if (strncmp(path, "/control/", 9) == 0) {
        size_t i = 0;
        while (i < sizeof deprecated / sizeof *deprecated && strcmp(deprecated[i].old, path) != 0)
            i++;
        if (check_auth(api, rq, rs) != 0) {
            /* answered */
        } else if (i == sizeof deprecated / sizeof *deprecated) {
            json_error(rs, 404, "no such control endpoint");
        } else {
            char link[64];
            snprintf(link, sizeof link, "</v1/%s>; rel=\"successor-version\"", deprecated[i].v1);
            http_response_header(rs, "Deprecation", "true");
            http_response_header(rs, "Link", link);
            route_v1(api, deprecated[i].v1, rq, rs);
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
    int rc = ctx->cfg ? api_check_bind(ctx->cfg, err, errlen) : 0;
    if (rc)
        return rc;
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
    rc = httpd_start(&api->httpd, &o, herr, sizeof herr);
    if (rc != 0) {
        cdc_fail(err, errlen, rc, "health server: %s", herr);
        pthread_mutex_destroy(&api->mu);
        free(api);
        return rc;
    }
    log_info("http.listening", "addr=%s port=%d control=%s", log_q(bind), httpd_port(api->httpd),
             pl && have_token(pl) ? "token" : "loopback");
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
    api_replay_free(api->replay);
    pthread_mutex_destroy(&api->mu);
    free(api);
}
