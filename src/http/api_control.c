/* The control API's actions (api.h): pause and resume, queueing incremental
 * snapshots, listing dead letters and replaying them.
 *
 * A replay runs on its own thread (a destination may take seconds per
 * entry; handlers must not block): POST /v1/dlq/replay starts it and
 * answers 202, GET /v1/dlq/replay says how it goes.  It takes the
 * pipeline's replay lock, so it never runs beside a `cdc dlq replay`, and
 * it replays as that command does beside a running pipeline (a guest):
 * entries of sinks that take one writer at a time stay pending. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/jsonread.h"
#include "http/api_int.h"
#include "pipeline/replay.h"
#include "state/dlq_json.h"
#include "state/pipelock.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define DLQ_LIST_DEFAULT 100
#define DLQ_LIST_MAX     1000
#define REPLAY_ERRORS    20 /* failures a replay's status keeps */

void json_error(struct http_response *rs, int status, const char *msg)
{
    rs->status = status;
    rs->content_type = "application/json";
    buf_reset(&rs->body);
    buf_puts(&rs->body, "{\"error\":");
    json_string(&rs->body, msg, strlen(msg));
    buf_puts(&rs->body, "}\n");
}

/* ---------- pause, resume ---------- */

void control_pause(struct api *api, const struct http_request *rq, struct http_response *rs,
                   bool pause)
{
    if (!api->ctx.paused) {
        json_error(rs, 503, "the pipeline cannot be paused yet");
        return;
    }
    bool was = atomic_exchange(api->ctx.paused, pause);
    if (was != pause)
        log_info(pause ? "control.paused" : "control.resumed", "via=http path=%s", log_q(rq->path));
    rs->content_type = "application/json";
    buf_printf(&rs->body, "{\"paused\":%s,\"changed\":%s}\n", pause ? "true" : "false",
               was != pause ? "true" : "false");
}

/* ---------- snapshots ---------- */

/* The configured name of table (either spelling of source.tables), or NULL. */
static const char *configured_table(const struct config *cfg, const char *table)
{
    char *s1 = NULL, *t1 = NULL;
    if (config_split_table(table, &s1, &t1) != 0)
        return NULL;
    const char *found = NULL;
    for (size_t i = 0; i < cfg->source.ntables && !found; i++) {
        char *s2 = NULL, *t2 = NULL;
        if (config_split_table(cfg->source.tables[i], &s2, &t2) == 0 && strcmp(s1, s2) == 0 &&
            strcmp(t1, t2) == 0)
            found = cfg->source.tables[i];
        free(s2);
        free(t2);
    }
    free(s1);
    free(t1);
    return found;
}

/* The tables a POST names: ?tables=a,b or a JSON body {"tables": [...]}.
 * Returns 0, or -1 after answering 400. */
static int requested_tables(const struct http_request *rq, struct http_response *rs, char ***tables,
                            size_t *n)
{
    *tables = NULL;
    *n = 0;
    char q[4096];
    if (http_query_param(rq, "tables", q, sizeof q) || http_query_param(rq, "table", q, sizeof q)) {
        char *save = NULL;
        for (char *t = strtok_r(q, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (!*t)
                continue;
            *tables = xrealloc(*tables, (*n + 1) * sizeof **tables);
            (*tables)[(*n)++] = xstrdup(t);
        }
    } else if (rq->body && rq->body_len) {
        if (jsonread_string_array(rq->body, rq->body_len, "tables", tables, n) != 0) {
            json_error(rs, 400, "expected a JSON body {\"tables\": [\"schema.table\", ...]}");
            return -1;
        }
    }
    if (*n == 0) {
        json_error(rs, 400, "name the tables: ?tables=schema.table,... or {\"tables\": [...]}");
        return -1;
    }
    return 0;
}

void control_snapshots(struct api *api, const struct http_request *rq, struct http_response *rs)
{
    const struct api_ctx *ctx = &api->ctx;
    if (strcmp(rq->method, "POST") != 0) {
        struct view v;
        view_take(api, &v);
        rs->content_type = "application/json";
        render_snapshot(&rs->body, &v);
        view_fini(&v);
        return;
    }
    if (!ctx->src || !ctx->cfg) {
        json_error(rs, 503, "the source is not running yet");
        return;
    }
    char **tables;
    size_t n;
    if (requested_tables(rq, rs, &tables, &n) != 0)
        return;
    struct source_stats st;
    driver_stats(ctx->src, &st);
    struct buf msg = BUF_INIT;
    char **names = xcalloc(n, sizeof *names);
    for (size_t i = 0; i < n && !msg.len; i++) {
        const char *c = configured_table(ctx->cfg, tables[i]);
        if (!c) {
            buf_puts(&msg, "not one of source.tables: ");
            buf_puts(&msg, tables[i]);
        }
        names[i] = (char *)c;
    }
    char err[512] = "";
    if (msg.len) {
        json_error(rs, 400, msg.p);
    } else if (!st.can_snapshot) {
        json_error(rs, 409,
                   "incremental snapshots are unavailable: the source could not set up its "
                   "signal table (source.signal_table)");
    } else if (driver_queue_snapshot(ctx->src, names, n, err, sizeof err) != 0) {
        json_error(rs, 501, err);
    } else {
        log_info("control.snapshot_requested", "via=http tables=%zu", n);
        rs->status = 202;
        rs->content_type = "application/json";
        buf_puts(&rs->body, "{\"queued\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                buf_putc(&rs->body, ',');
            json_string(&rs->body, names[i], strlen(names[i]));
        }
        buf_puts(&rs->body, "]}\n");
    }
    buf_fini(&msg);
    free(names);
    jsonread_free_strings(tables, n);
}

/* ---------- dead letters ---------- */

struct dlq_list {
    struct buf *out;
    const char *prefix;
    size_t n, limit;
    bool more;
};

static int list_entry(const struct dlq_entry *e, void *arg)
{
    struct dlq_list *l = arg;
    if (l->n == l->limit) {
        l->more = true;
        return 1;
    }
    if (l->n++)
        buf_putc(l->out, ',');
    dlq_entry_json(l->out, e, l->prefix);
    return 0;
}

/* A yes/no query flag: true, 1 or yes. */
static bool query_flag(const struct http_request *rq, const char *name)
{
    char v[16];
    return http_query_param(rq, name, v, sizeof v) &&
           (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0);
}

void control_dlq(struct api *api, const struct http_request *rq, struct http_response *rs)
{
    const struct api_ctx *ctx = &api->ctx;
    if (!ctx->store || !ctx->cfg) {
        json_error(rs, 503, "the state store is not open");
        return;
    }
    char sink[256] = "", lim[32];
    bool by_sink = http_query_param(rq, "sink", sink, sizeof sink) && sink[0];
    struct dlq_list l = {.prefix = ctx->cfg->topic_prefix, .limit = DLQ_LIST_DEFAULT};
    if (http_query_param(rq, "limit", lim, sizeof lim)) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > DLQ_LIST_MAX) {
            json_error(rs, 400, "limit: expected an integer 1..1000");
            return;
        }
        l.limit = (size_t)v;
    }
    struct buf entries = BUF_INIT;
    l.out = &entries;
    char err[1024];
    if (store_dlq_list(ctx->store, by_sink ? sink : NULL, query_flag(rq, "all"), list_entry, &l,
                       err, sizeof err) != 0) {
        buf_fini(&entries);
        json_error(rs, 500, err);
        return;
    }
    rs->content_type = "application/json";
    buf_printf(&rs->body, "{\"count\":%zu,\"truncated\":%s,\"entries\":[", l.n,
               l.more ? "true" : "false");
    if (entries.len)
        buf_put(&rs->body, entries.p, entries.len);
    buf_puts(&rs->body, "]}\n");
    buf_fini(&entries);
}

/* ---------- replaying dead letters ---------- */

struct api_replay {
    pthread_t thread;
    pthread_mutex_t mu; /* guards the figures below */
    atomic_bool stop;
    /* what it works on (copies and borrowed pointers the run outlives) */
    const struct config *cfg;
    const struct json_ctx *json;
    struct store *store;
    struct pipelock *lock;
    int64_t *ids;
    size_t nids;
    char sink[128];
    int64_t started_us, finished_us;
    /* how it goes */
    bool running;
    size_t done, delivered, pending;
    struct buf errors; /* a JSON array's members */
    size_t nerrors;
};

static void *replay_main(void *arg)
{
    struct api_replay *rp = arg;
    struct replay_opts ro = {.cfg = rp->cfg,
                             .json = rp->json,
                             .store = rp->store,
                             .guest = true,
                             .owner = "this cdc run"};
    struct replay *r = replay_new(&ro);
    for (size_t i = 0; i < rp->nids && !atomic_load(&rp->stop); i++) {
        struct replay_result res;
        replay_entry(r, rp->ids[i], &res);
        bool ok = res.outcome == REPLAY_DELIVERED || res.outcome == REPLAY_RESOLVED;
        pthread_mutex_lock(&rp->mu);
        rp->done++;
        if (ok) {
            rp->delivered += res.outcome == REPLAY_DELIVERED;
        } else {
            rp->pending++;
            if (rp->nerrors < REPLAY_ERRORS) {
                buf_printf(&rp->errors,
                           "%s{\"id\":%" PRId64 ",\"sink_id\":", rp->nerrors ? "," : "",
                           rp->ids[i]);
                json_string(&rp->errors, res.sink_id, strlen(res.sink_id));
                buf_puts(&rp->errors, ",\"error\":");
                json_string(&rp->errors, res.err, strlen(res.err));
                buf_putc(&rp->errors, '}');
                rp->nerrors++;
            }
        }
        pthread_mutex_unlock(&rp->mu);
    }
    replay_free(r);
    /* Released before the replay counts as finished: a record lock belongs to
     * the process, and closing this descriptor after the next replay took
     * the lock would drop that one's too. */
    pipelock_release(rp->lock);
    rp->lock = NULL;
    pthread_mutex_lock(&rp->mu);
    rp->running = false;
    rp->finished_us = clock_wall_us();
    log_info("control.replay_done", "entries=%zu delivered=%zu pending=%zu", rp->done,
             rp->delivered, rp->pending);
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

void api_replay_free(struct api_replay *rp)
{
    if (!rp)
        return;
    atomic_store(&rp->stop, true);
    pthread_join(rp->thread, NULL);
    pthread_mutex_destroy(&rp->mu);
    buf_fini(&rp->errors);
    free(rp->ids);
    free(rp);
}

static void render_replay(struct buf *b, struct api_replay *rp)
{
    if (!rp) {
        buf_puts(b, "{\"replay\":null}\n");
        return;
    }
    pthread_mutex_lock(&rp->mu);
    buf_printf(b, "{\"replay\":{\"running\":%s,\"sink\":", rp->running ? "true" : "false");
    if (rp->sink[0])
        json_string(b, rp->sink, strlen(rp->sink));
    else
        buf_puts(b, "null");
    buf_printf(
        b,
        ",\"entries\":%zu,\"done\":%zu,\"delivered\":%zu,\"pending\":%zu,\"started_us\":%" PRId64
        ",\"finished_us\":",
        rp->nids, rp->done, rp->delivered, rp->pending, rp->started_us);
    if (rp->running)
        buf_puts(b, "null");
    else
        buf_printf(b, "%" PRId64, rp->finished_us);
    buf_puts(b, ",\"errors\":[");
    if (rp->errors.len)
        buf_put(b, rp->errors.p, rp->errors.len);
    buf_puts(b, "]}}\n");
    pthread_mutex_unlock(&rp->mu);
}

struct id_list {
    int64_t *v;
    size_t n, cap;
};

static int collect_id(const struct dlq_entry *e, void *arg)
{
    struct id_list *ids = arg;
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? 2 * ids->cap : 64;
        ids->v = xrealloc(ids->v, ids->cap * sizeof *ids->v);
    }
    ids->v[ids->n++] = e->id;
    return 0;
}

static bool replay_running(struct api_replay *rp)
{
    if (!rp)
        return false;
    pthread_mutex_lock(&rp->mu);
    bool r = rp->running;
    pthread_mutex_unlock(&rp->mu);
    return r;
}

/* Picks the entries (?sink=S, ?id=N; default every pending one) and starts
 * the replay thread. */
static void start_replay(struct api *api, const struct http_request *rq, struct http_response *rs)
{
    const struct api_ctx *ctx = &api->ctx;
    if (!ctx->store || !ctx->cfg || !ctx->json) {
        json_error(rs, 503, "the pipeline cannot replay dead letters yet");
        return;
    }
    if (replay_running(api->replay)) {
        json_error(rs, 409, "a replay is running: GET /v1/dlq/replay says how it goes");
        return;
    }
    char sink[128] = "", idtext[32] = "";
    bool by_sink = http_query_param(rq, "sink", sink, sizeof sink) && sink[0];
    bool by_id = http_query_param(rq, "id", idtext, sizeof idtext);
    bool known = !by_sink;
    for (size_t i = 0; by_sink && i < ctx->cfg->nsinks; i++)
        known |= strcmp(ctx->cfg->sinks[i].sink_id, sink) == 0;
    if (!known) {
        json_error(rs, 400, "sink: the pipeline has no sink with that sink_id");
        return;
    }
    struct id_list ids = {NULL, 0, 0};
    char err[1024];
    if (by_id) {
        char *end;
        errno = 0;
        long long id = strtoll(idtext, &end, 10);
        struct dlq_entry e;
        if (*end || errno || id <= 0) {
            json_error(rs, 400, "id: expected an entry id (a positive integer)");
            return;
        }
        if (store_dlq_get(ctx->store, id, &e, err, sizeof err) != 0) {
            json_error(rs, 404, "there is no such dead-letter entry");
            return;
        }
        if (e.status == DLQ_PENDING && (!by_sink || strcmp(e.sink_id, sink) == 0))
            collect_id(&e, &ids);
        dlq_entry_fini(&e);
    } else if (store_dlq_list(ctx->store, by_sink ? sink : NULL, false, collect_id, &ids, err,
                              sizeof err) != 0) {
        json_error(rs, 500, err);
        return;
    }
    struct pipelock *lock = NULL;
    int rc = pipelock_acquire(&lock, ctx->cfg->platform.state_dir, ctx->cfg->pipeline_id,
                              PIPELOCK_REPLAY, "dlq replay", NULL, err, sizeof err);
    if (rc != 0) {
        free(ids.v);
        json_error(rs, rc == CDC_EBUSY ? 409 : 500, err);
        return;
    }
    api_replay_free(api->replay); /* the last one, finished */
    struct api_replay *rp = xcalloc(1, sizeof *rp);
    pthread_mutex_init(&rp->mu, NULL);
    rp->cfg = ctx->cfg;
    rp->json = ctx->json;
    rp->store = ctx->store;
    rp->lock = lock;
    rp->ids = ids.v;
    rp->nids = ids.n;
    snprintf(rp->sink, sizeof rp->sink, "%s", by_sink ? sink : "");
    rp->started_us = clock_wall_us();
    rp->running = true;
    api->replay = rp;
    if (pthread_create(&rp->thread, NULL, replay_main, rp) != 0) {
        api->replay = NULL;
        pipelock_release(rp->lock);
        pthread_mutex_destroy(&rp->mu);
        free(rp->ids);
        free(rp);
        json_error(rs, 500, "cannot start the replay thread");
        return;
    }
    log_info("control.replay_started", "via=http entries=%zu sink=%s", ids.n,
             by_sink ? sink : "any");
    rs->status = 202;
    rs->content_type = "application/json";
    render_replay(&rs->body, rp);
}

void control_replay(struct api *api, const struct http_request *rq, struct http_response *rs)
{
    if (strcmp(rq->method, "POST") == 0) {
        start_replay(api, rq, rs);
        return;
    }
    rs->content_type = "application/json";
    render_replay(&rs->body, api->replay);
}
