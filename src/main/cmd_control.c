/* `cdc status`, `cdc pause`, `cdc resume`: a running pipeline's control API
 * (http/api.h), reached on health_bind:health_port with control_token.
 *
 * They never connect to the source or a sink, so they load the config with
 * CONFIG_SECRETS_OPTIONAL: the database passwords need not be in the
 * environment.  When nothing answers, `cdc status` says so and shows what
 * the state store holds (the snapshot's progress, pending dead letters). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/jsonread.h"
#include "main/cli.h"
#include "main/cli_http.h"
#include "source/snapshot/snapshot.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/mem.h"

/* Where the API is, and how to authenticate. */
struct target {
    struct config *cfg; /* NULL with --url and no PIPELINE */
    char *base;
    const char *token; /* borrowed from cfg; NULL or "" = none */
    bool check_id;     /* a PIPELINE was given: the API must serve it */
};

static void target_fini(struct target *t)
{
    config_free(t->cfg);
    free(t->base);
}

/* Parses the options and finds the API.  0, or the exit status. */
static int target_open(const struct command *cmd, int argc, char **argv, struct cli_opts *o,
                       struct target *t)
{
    memset(t, 0, sizeof *t);
    int rc = cli_parse_common(cmd, argc, argv, o);
    if (rc)
        return rc == CLI_EXIT_HELP ? -1 : rc;
    if (o->nargs > 1 || (o->nargs == 0 && !o->url && !o->platform)) {
        fprintf(stderr, "error: cdc %s: expected one PIPELINE file, got %d arguments\n", cmd->name,
                o->nargs);
        cli_command_usage(cmd, stderr);
        return 2;
    }
    if (o->nargs == 1)
        rc = cli_load_config_flags(cmd, o, CONFIG_SECRETS_OPTIONAL, &t->cfg);
    else if (o->platform)
        rc = cli_load_platform_only(o->platform, &t->cfg);
    if (rc)
        return rc;
    if (t->cfg)
        t->token = t->cfg->platform.control_token;
    t->check_id = o->nargs == 1;
    if (o->url) {
        t->base = cli_api_base_from_url(o->url, NULL);
        return 0;
    }
    t->base = cli_api_base(&t->cfg->platform, &rc);
    return t->base ? 0 : rc;
}

/* The error for an answer other than 2xx: a refused token names the key
 * (and the variable, when it was not set). */
static void http_refused(const struct target *t, const char *what, long status,
                         const struct buf *body)
{
    if (status == 401 || status == 403) {
        const char *unset = NULL;
        for (size_t i = 0; t->cfg && i < t->cfg->unset_secrets.n; i++)
            if (strstr(t->cfg->unset_secrets.msgs[i], "control_token"))
                unset = t->cfg->unset_secrets.msgs[i];
        if (unset)
            fprintf(stderr, "error: %s: the control API refused it (HTTP %ld): %s\n", what, status,
                    unset);
        else if (!t->token || !*t->token)
            fprintf(stderr,
                    "error: %s: the control API needs a token (HTTP %ld): set control_token in "
                    "the platform file\n",
                    what, status);
        else
            fprintf(stderr, "error: %s: the control API refused control_token (HTTP %ld)\n", what,
                    status);
        return;
    }
    struct jsonv doc = {0};
    const char *msg = NULL;
    if (body->len && jsonread_parse(body->p, body->len, &doc) == 0)
        msg = jsonv_str(&doc, "error", NULL);
    fprintf(stderr, "error: %s: HTTP %ld%s%s\n", what, status, msg ? ": " : "", msg ? msg : "");
    jsonv_free(&doc);
}

/* GETs the status document into doc.  0, or 1 after printing why not. */
static int get_status(const struct target *t, struct jsonv *doc, struct buf *body)
{
    char err[1024];
    long status = 0;
    bool token = t->token && *t->token;
    /* With a token, the control API's own path; /status needs none. */
    const char *path = token ? "/v1/status" : "/status";
    if (cli_http("GET", t->base, path, t->token, body, &status, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (status != 200) {
        http_refused(t, "status", status, body);
        return 1;
    }
    if (jsonread_parse(body->p ? body->p : "", body->len, doc) != 0 || doc->t != JSONV_OBJ) {
        fprintf(stderr, "error: %s%s did not answer with a JSON status document\n", t->base, path);
        return 1;
    }
    const char *pid = jsonv_str(doc, "pipeline_id", "");
    if (t->check_id && strcmp(pid, t->cfg->pipeline_id) != 0) {
        fprintf(stderr, "error: %s serves pipeline %s, not %s\n", t->base, pid,
                t->cfg->pipeline_id);
        return 1;
    }
    return 0;
}

/* ---------- cdc status ---------- */

static void print_snapshot(const struct jsonv *sn)
{
    if (!sn || sn->t != JSONV_OBJ)
        return;
    const struct jsonv *running = jsonv_get(sn, "running");
    const struct jsonv *paused = jsonv_get(sn, "paused");
    bool run = running && running->t == JSONV_BOOL && running->b;
    printf("  snapshot %s %s: %.0f", jsonv_str(sn, "kind", "?"), run ? "running" : "finished",
           jsonv_num(sn, "rows_read", 0));
    if (jsonv_num(sn, "rows_estimated", 0) > 0)
        printf("/%.0f", jsonv_num(sn, "rows_estimated", 0));
    printf(" rows");
    if (jsonv_num(sn, "chunks_total", 0) > 0)
        printf(", %.0f/%.0f chunks", jsonv_num(sn, "chunks_done", 0),
               jsonv_num(sn, "chunks_total", 0));
    else
        printf(", %.0f chunks", jsonv_num(sn, "chunks_done", 0));
    printf(", %.0f/%.0f tables", jsonv_num(sn, "tables_done", 0), jsonv_num(sn, "tables_total", 0));
    const char *table = jsonv_str(sn, "table", NULL);
    if (table)
        printf(" (now %s)", table);
    if (run) {
        printf(", %.0f rows/s", jsonv_num(sn, "rows_per_second", 0));
        const struct jsonv *eta = jsonv_get(sn, "eta_seconds");
        if (eta && eta->t == JSONV_NUM)
            printf(", ETA %.0fs", eta->num);
    }
    if (paused && paused->t == JSONV_BOOL && paused->b)
        printf(", PAUSED");
    printf("\n");
}

static void print_status(const struct jsonv *doc)
{
    const struct jsonv *ready = jsonv_get(doc, "ready");
    const struct jsonv *src = jsonv_get(doc, "source");
    const struct jsonv *lag = jsonv_get(doc, "lag");
    bool ok = ready && ready->t == JSONV_BOOL && ready->b;
    printf("pipeline %s: %s, source %s\n", jsonv_str(doc, "pipeline_id", "?"),
           ok ? "ready" : "NOT READY", jsonv_str(src, "state", "?"));
    const char *why = jsonv_str(doc, "reason", NULL);
    if (!ok && why)
        printf("  reason: %s\n", why);
    printf("  source   received %s  confirmed %s  lag %.0f bytes, %.1f s  events %.0f  "
           "transactions %.0f  reconnects %.0f\n",
           jsonv_str(src, "received_lsn", "-"), jsonv_str(src, "confirmed_lsn", "-"),
           jsonv_num(lag, "bytes", 0), jsonv_num(lag, "seconds", 0), jsonv_num(src, "events", 0),
           jsonv_num(src, "transactions", 0), jsonv_num(src, "reconnects", 0));
    print_snapshot(jsonv_get(doc, "snapshot"));
    const struct jsonv *sinks = jsonv_get(doc, "sinks");
    for (size_t i = 0; sinks && sinks->t == JSONV_ARR && i < sinks->n; i++) {
        const struct jsonv *s = &sinks->items[i];
        const struct jsonv *sl = jsonv_get(s, "lag");
        char name[300];
        snprintf(name, sizeof name, "%s (%s)", jsonv_str(s, "sink_id", "?"),
                 jsonv_str(s, "type", "?"));
        printf("  sink     %-24s %-9s behind %.0f events, %.1f s, %.0f bytes  backlog %.0f  "
               "errors %.0f",
               name, jsonv_str(s, "status", "?"), jsonv_num(sl, "events", 0),
               jsonv_num(sl, "seconds", 0), jsonv_num(sl, "bytes", 0), jsonv_num(s, "backlog", 0),
               jsonv_num(s, "errors", 0));
        const struct jsonv *dlq = jsonv_get(s, "dlq_pending");
        if (dlq && dlq->t == JSONV_NUM)
            printf("  dlq %.0f", dlq->num);
        printf("\n");
        const char *le = jsonv_str(s, "last_error", NULL);
        if (le)
            printf("           last error: %s\n", le);
    }
}

struct dlq_count {
    const struct config *cfg;
    size_t *per_sink;
    size_t other;
};

static int count_entry(const struct dlq_entry *e, void *arg)
{
    struct dlq_count *c = arg;
    for (size_t i = 0; i < c->cfg->nsinks; i++)
        if (strcmp(c->cfg->sinks[i].sink_id, e->sink_id) == 0) {
            c->per_sink[i]++;
            return 0;
        }
    c->other++;
    return 0;
}

/* Nothing answers: what the state store says about the pipeline. */
static void print_local_state(const struct config *cfg)
{
    char *path = store_path(cfg->platform.state_dir, cfg->pipeline_id);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        printf("  state    none yet (%s does not exist)\n", path);
        free(path);
        return;
    }
    struct store *st = NULL;
    char err[1024];
    if (store_open(&st, path, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        free(path);
        return;
    }
    char *snap = NULL, *queue = NULL;
    store_kv_get(st, SNAP_KEY_INITIAL, &snap, err, sizeof err);
    store_kv_get(st, "isnap.queue", &queue, err, sizeof err);
    if (snap) {
        char state[16] = "";
        sscanf(snap, "%15s", state);
        printf("  snapshot initial: %s\n", strcmp(state, "done") == 0 ? "done"
                                           : strcmp(state, "running") == 0
                                               ? "interrupted: the next run resumes it"
                                               : state);
    }
    if (queue && *queue) {
        printf("  snapshot incremental queued:");
        for (char *p = strtok(queue, "\n"); p; p = strtok(NULL, "\n"))
            printf(" %s", p);
        printf("\n");
    }
    struct dlq_count c = {.cfg = cfg, .per_sink = xcalloc(cfg->nsinks + 1, sizeof(size_t))};
    if (store_dlq_list(st, NULL, false, count_entry, &c, err, sizeof err) == 0) {
        for (size_t i = 0; i < cfg->nsinks; i++)
            printf("  sink     %-24s dlq %zu pending\n", cfg->sinks[i].sink_id, c.per_sink[i]);
        if (c.other)
            printf("  sink     (no longer configured)   dlq %zu pending\n", c.other);
    }
    free(c.per_sink);
    free(snap);
    free(queue);
    store_close(st);
    free(path);
}

int cmd_status(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    struct target t;
    int rc = target_open(cmd, argc, argv, &o, &t);
    if (rc) {
        target_fini(&t);
        return rc < 0 ? 0 : rc;
    }
    struct jsonv doc = {0};
    struct buf body = BUF_INIT;
    rc = get_status(&t, &doc, &body);
    if (rc == 0) {
        if (o.json)
            fwrite(body.p, 1, body.len, stdout);
        else
            print_status(&doc);
    } else if (t.cfg && o.nargs == 1 && !o.json) {
        printf("pipeline %s: not running (nothing answers on %s)\n", t.cfg->pipeline_id, t.base);
        print_local_state(t.cfg);
    }
    jsonv_free(&doc);
    buf_fini(&body);
    target_fini(&t);
    cli_http_done();
    return rc;
}

/* ---------- cdc pause, cdc resume ---------- */

int cmd_pause(const struct command *cmd, int argc, char **argv)
{
    bool pause = strcmp(cmd->name, "pause") == 0;
    struct cli_opts o;
    struct target t;
    int rc = target_open(cmd, argc, argv, &o, &t);
    if (rc) {
        target_fini(&t);
        return rc < 0 ? 0 : rc;
    }
    /* First make sure the API is this pipeline's. */
    struct jsonv doc = {0}, ans = {0};
    struct buf body = BUF_INIT;
    rc = get_status(&t, &doc, &body);
    if (rc == 0) {
        char err[1024];
        long status = 0;
        buf_reset(&body);
        if (cli_http("POST", t.base, pause ? "/v1/pause" : "/v1/resume", t.token, &body, &status,
                     err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            rc = 1;
        } else if (status != 200) {
            http_refused(&t, cmd->name, status, &body);
            rc = 1;
        } else {
            jsonread_parse(body.p ? body.p : "", body.len, &ans);
            const struct jsonv *changed = jsonv_get(&ans, "changed");
            bool did = changed && changed->t == JSONV_BOOL && changed->b;
            printf("pipeline %s %s\n", jsonv_str(&doc, "pipeline_id", "?"),
                   pause ? (did ? "paused" : "was already paused")
                         : (did ? "resumed" : "was not paused"));
        }
    }
    jsonv_free(&doc);
    jsonv_free(&ans);
    buf_fini(&body);
    target_fini(&t);
    cli_http_done();
    return rc;
}
