/* `cdc dlq replay`: takes the pipeline's locks, picks the entries and
 * prints what happened to each; the replay itself is pipeline/replay.c.
 *
 * The locks (take_replay_locks) keep one replay at a time and no run
 * starting during one; beside a running pipeline, only sinks that take
 * several writers get their entries. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/dlq.h"
#include "pipeline/replay.h"
#include "source/source.h"
#include "state/pipelock.h"
#include "util/err.h"
#include "util/mem.h"

struct ids {
    int64_t *v;
    size_t n, cap;
};

static int collect_id(const struct dlq_entry *e, void *arg)
{
    struct ids *ids = arg;
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? 2 * ids->cap : 64;
        ids->v = xrealloc(ids->v, ids->cap * sizeof *ids->v);
    }
    ids->v[ids->n++] = e->id;
    return 0;
}

/* Replays one entry and says what happened.  Returns 0 (delivered and
 * resolved, or nothing to do) or 1 (it stays pending, or could not be
 * marked resolved). */
static int replay_one(struct replay *rp, int64_t id)
{
    struct replay_result res;
    replay_entry(rp, id, &res);
    switch (res.outcome) {
    case REPLAY_DELIVERED:
        printf("replayed id %" PRId64 " to %s\n", id, res.sink_id);
        fflush(stdout);
        return 0;
    case REPLAY_RESOLVED:
        printf("dead-letter entry %" PRId64 " was resolved meanwhile\n", id);
        return 0; /* another replay got there first */
    case REPLAY_UNMARKED:
        fprintf(stderr,
                "error: dead-letter entry %" PRId64 " was delivered to %s but could not be "
                "marked resolved (a later replay delivers it again): %s\n",
                id, res.sink_id, res.err);
        return 1;
    case REPLAY_STORE_FAILED:
        fprintf(stderr, "error: %s\n", res.err);
        return 1;
    case REPLAY_PENDING:
        break;
    }
    fprintf(stderr,
            "error: dead-letter entry %" PRId64 " (sink %s) not replayed, it stays "
            "pending: %s\n",
            id, res.sink_id, res.err);
    return 1;
}

/* A `cdc run` of the pipeline, when this replay runs beside one. */
struct owner {
    bool guest;
    struct pipelock_holder holder;
};

/* One replay at a time (two would deliver the same entries twice), and no
 * `cdc run` may start halfway through one: the replay lock, then the
 * pipeline's own lock (the deliver role's, for its queue).  A running pipeline already holding the
 * latter makes this replay its guest (own->guest).  Returns 0, or 1 with the reason printed. */
static int take_replay_locks(const struct dlq_cmd *c, struct owner *own,
                             struct pipelock **replay_lock, struct pipelock **owner_lock)
{
    const struct config *cfg = c->cfg;
    const char *dir = cfg->platform.state_dir;
    char err[1024];
    int rc = pipelock_acquire(replay_lock, dir, c->name, PIPELOCK_REPLAY, "dlq replay", NULL, err,
                              sizeof err);
    if (rc == 0)
        rc = pipelock_acquire(owner_lock, dir, c->name, PIPELOCK_OWNER, "dlq replay", &own->holder,
                              err, sizeof err);
    if (rc == CDC_EBUSY && *replay_lock) {
        own->guest = true;
        return 0;
    }
    if (rc == 0)
        return 0;
    pipelock_release(*replay_lock);
    *replay_lock = NULL;
    fprintf(stderr, "error: cannot replay: %s%s\n", err,
            rc == CDC_EBUSY ? "; one replay at a time: wait for that one to finish" : "");
    return 1;
}

int dlq_replay(const struct dlq_cmd *c)
{
    const struct config *cfg = c->cfg;
    const struct cli_opts *o = c->o;
    if (o->sink && !dlq_find_sink(cfg, o->sink)) {
        fprintf(stderr, "error: --sink %s: %s has no sink with that sink_id\n", o->sink,
                cfg->pipeline_file);
        return 2;
    }
    if (!dlq_state_file_exists(c)) {
        if (c->id) {
            fprintf(stderr, "error: there is no dead-letter entry %" PRId64 ": %s does not exist\n",
                    c->id, c->path);
            return 2;
        }
        printf("no dead-letter entries\n");
        return 0;
    }
    struct json_ctx json;
    source_json_ctx(cfg, CDC_VERSION, &json);
    struct owner own = {.guest = false};
    struct ids ids = {NULL, 0, 0};
    struct store *st = NULL;
    char err[1024];
    struct pipelock *replay_lock = NULL, *owner_lock = NULL;
    int rc = take_replay_locks(c, &own, &replay_lock, &owner_lock);
    if (rc)
        return rc;
    if (dlq_open_store(c, &st)) {
        pipelock_release(owner_lock);
        pipelock_release(replay_lock);
        return 1;
    }
    if (c->id) {
        struct dlq_entry e;
        int grc = store_dlq_get(st, c->id, &e, err, sizeof err);
        if (grc != 0) {
            fprintf(stderr, "error: %s\n", err);
            rc = grc == CDC_EINVAL ? 2 : 1;
        } else if (o->sink && strcmp(o->sink, e.sink_id) != 0) {
            fprintf(stderr, "error: dead-letter entry %" PRId64 " belongs to sink %s, not %s\n",
                    c->id, e.sink_id, o->sink);
            rc = 2;
        } else if (e.status == DLQ_RESOLVED) {
            printf("dead-letter entry %" PRId64 " is already resolved; nothing to replay\n", c->id);
        } else {
            collect_id(&e, &ids);
        }
        dlq_entry_fini(&e);
    } else if (store_dlq_list(st, o->sink, false, collect_id, &ids, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (ids.n == 0) {
        printf("no pending dead-letter entries\n");
    }
    if (rc || ids.n == 0)
        goto out;
    char who[160] = "";
    if (own.guest) {
        pipelock_describe(&own.holder, who, sizeof who);
        printf("pipeline %s is running in %s: replaying beside it; entries of sinks that take "
               "one writer at a time (file) stay pending\n",
               cfg->pipeline_id, who);
        fflush(stdout);
    }

    signal(SIGPIPE, SIG_IGN); /* network sinks see a closed peer as an error */
    struct replay_opts ro = {
        .cfg = cfg, .json = &json, .store = st, .guest = own.guest, .owner = who};
    struct replay *rp = replay_new(&ro);
    size_t ok = 0;
    for (size_t i = 0; i < ids.n; i++)
        ok += replay_one(rp, ids.v[i]) == 0;
    replay_free(rp);
    printf("replayed %zu of %zu entr%s\n", ok, ids.n, ids.n == 1 ? "y" : "ies");
    rc = ok == ids.n ? 0 : 1;
out:
    free(ids.v);
    store_close(st);
    pipelock_release(owner_lock);
    pipelock_release(replay_lock);
    return rc;
}
