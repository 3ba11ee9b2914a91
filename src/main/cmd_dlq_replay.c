/* `cdc dlq replay`: delivers dead-lettered events to their sinks again.
 *
 * A replayed event goes to its sink outside the stream (struct sink's replay
 * flag): the sink delivers it as it is and a sink with a checkpoint leaves the
 * checkpoint alone.  The pipeline's locks (take_replay_locks) keep one replay
 * at a time and no run starting during one; beside a running pipeline, only
 * sinks that take several writers get their entries. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evcodec.h"
#include "main/dlq.h"
#include "sink/sink.h"
#include "source/source.h"
#include "state/pipelock.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"

#define REPLAY_MARGIN_MS  5000 /* on top of a per-key sink's own request timeout */
#define REPLAY_DEFAULT_MS 60000

/* One configured sink as replay uses it: opened on first use, closed after a
 * failure (reopened for its next entry) and at the end. */
struct rsink {
    struct sink sk;
    bool open;
    bool unusable; /* could not be opened: its remaining entries fail at once */
};

struct replay {
    const struct dlq_cmd *c;
    /* A `cdc run` owns the pipeline: replay beside it, except into sinks
     * that take one writer only (their entries stay pending). */
    bool guest;
    struct pipelock_holder owner;
    struct json_ctx json;
    struct rsink *sinks; /* cfg->nsinks entries */
    struct store *st;
    uint64_t seq;
    int64_t *ids;
    size_t nids, capids;
};

static int collect_id(const struct dlq_entry *e, void *arg)
{
    struct replay *r = arg;
    if (r->nids == r->capids) {
        r->capids = r->capids ? 2 * r->capids : 64;
        r->ids = xrealloc(r->ids, r->capids * sizeof *r->ids);
    }
    r->ids[r->nids++] = e->id;
    return 0;
}

static int replay_timeout_ms(const struct sink_cfg *sc)
{
    if (sc->sink_type == SINK_WEBHOOK)
        return (int)(sc->webhook.timeout_seconds * 1000) + REPLAY_MARGIN_MS;
    return REPLAY_DEFAULT_MS;
}

static void rsink_close(struct rsink *rs)
{
    if (rs->open)
        rs->sk.ops->close(&rs->sk);
    rs->open = false;
}

/* Delivers ev to an open sink; 0 once it is durable there, else CDC_ERR with
 * the reason in err. */
static int deliver(struct replay *r, struct rsink *rs, struct cdc_event *ev, char *err,
                   size_t errlen)
{
    struct sink *sk = &rs->sk;
    const struct sink_ops *ops = sk->ops;
    struct cdc_event *evs[1] = {ev};
    ev->seq = ++r->seq;
    if (ops->write) {
        uint64_t durable = 0;
        if (ops->write(sk, evs, 1) != 0 || ops->flush(sk, &durable) != 0)
            return cdc_fail(err, errlen, CDC_ERR, "%s", sk->err);
        if (durable < ev->seq)
            return cdc_fail(err, errlen, CDC_ERR,
                            "the sink did not report the event durable after a flush");
        return 0;
    }
    if (ops->submit(sk, 0, evs, 1) != 0)
        return cdc_fail(err, errlen, CDC_ERR, "%s", sk->err);
    int timeout = replay_timeout_ms(sk->cfg);
    int64_t deadline = clock_mono_us() + (int64_t)timeout * 1000;
    for (;;) {
        int64_t left = deadline - clock_mono_us();
        if (left <= 0)
            return cdc_fail(err, errlen, CDC_ERR, "no answer from the sink within %d s",
                            timeout / 1000);
        struct sink_result res[4];
        int k = ops->poll(sk, (int)(left / 1000) + 1, res, 4);
        if (k < 0)
            return cdc_fail(err, errlen, CDC_ERR, "%s", sk->err);
        for (int i = 0; i < k; i++) {
            if (res[i].lane != 0)
                continue;
            if (res[i].rc == 0)
                return 0;
            if (!res[i].err[0])
                return cdc_fail(err, errlen, CDC_ERR, "delivery failed (HTTP status %d)",
                                res[i].http_status);
            return cdc_fail(err, errlen, CDC_ERR, "%s", res[i].err);
        }
    }
}

/* Replays one entry.  Returns 0 (delivered and resolved, or nothing to do)
 * or 1 (it stays pending; the reason is printed). */
static int replay_one(struct replay *r, int64_t id)
{
    const struct config *cfg = r->c->cfg;
    struct dlq_entry e;
    char err[1200];
    if (store_dlq_get(r->st, id, &e, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    int rc = 1;
    struct cdc_event *ev = NULL;
    const struct sink_cfg *sc = dlq_find_sink(cfg, e.sink_id);
    struct rsink *rs = sc ? &r->sinks[sc - cfg->sinks] : NULL;
    char derr[256];
    if (e.status == DLQ_RESOLVED) {
        printf("dead-letter entry %" PRId64 " was resolved meanwhile\n", id);
        rc = 0; /* another replay got there first */
        goto out;
    }
    if (!sc) {
        snprintf(err, sizeof err, "sink %s is not in %s any more", e.sink_id, cfg->pipeline_file);
        goto fail;
    }
    if (!sc->enabled) {
        snprintf(err, sizeof err, "sink %s is disabled in %s; enable it to replay its entries",
                 e.sink_id, cfg->pipeline_file);
        goto fail;
    }
    if (!rs->sk.ops) {
        snprintf(err, sizeof err, "sink type %s is not implemented in this version of cdc",
                 config_sink_type_name(sc->sink_type));
        goto fail;
    }
    if (r->guest && rs->sk.ops->single_writer) {
        char who[160];
        pipelock_describe(&r->owner, who, sizeof who);
        snprintf(err, sizeof err,
                 "sink %s takes one writer at a time and %s is writing it; replay this entry "
                 "once that process has stopped",
                 e.sink_id, who);
        goto fail;
    }
    if (rs->unusable) {
        snprintf(err, sizeof err, "sink %s could not be opened (see above)", e.sink_id);
        goto fail;
    }
    if (evcodec_decode(e.event, e.event_len, NULL, &ev, derr, sizeof derr) != 0) {
        snprintf(err, sizeof err, "the stored event cannot be decoded: %s", derr);
        goto fail;
    }
    if (!rs->open) {
        struct cdc_pos have;
        if (rs->sk.ops->open(&rs->sk, &have) != 0) {
            rs->unusable = true;
            snprintf(err, sizeof err, "cannot open sink %s: %s", e.sink_id, rs->sk.err);
            goto fail;
        }
        rs->open = true;
    }
    if (deliver(r, rs, ev, err, sizeof err) != 0) {
        rsink_close(rs); /* it may hold half a delivery: start afresh */
        goto fail;
    }
    if (store_dlq_resolve(r->st, id, err, sizeof err) != 0) {
        fprintf(stderr,
                "error: dead-letter entry %" PRId64 " was delivered to %s but could not be "
                "marked resolved (a later replay delivers it again): %s\n",
                id, e.sink_id, err);
        goto out;
    }
    printf("replayed id %" PRId64 " to %s\n", id, e.sink_id);
    fflush(stdout);
    rc = 0;
    goto out;
fail:
    fprintf(stderr,
            "error: dead-letter entry %" PRId64 " (sink %s) not replayed, it stays "
            "pending: %s\n",
            id, e.sink_id, err);
out:
    if (ev)
        cdc_event_unref(ev);
    dlq_entry_fini(&e);
    return rc;
}

/* One replay at a time (two would deliver the same entries twice), and no
 * `cdc run` may start halfway through one: the replay lock, then the
 * pipeline's own lock.  A running pipeline already holding the latter makes
 * this replay its guest (r->guest).  Returns 0, or 1 with the reason printed. */
static int take_replay_locks(struct replay *r, struct pipelock **replay_lock,
                             struct pipelock **owner_lock)
{
    const struct config *cfg = r->c->cfg;
    const char *dir = cfg->platform.state_dir;
    char err[1024];
    int rc = pipelock_acquire(replay_lock, dir, cfg->pipeline_id, PIPELOCK_REPLAY, "dlq replay",
                              NULL, err, sizeof err);
    if (rc == 0)
        rc = pipelock_acquire(owner_lock, dir, cfg->pipeline_id, PIPELOCK_OWNER, "dlq replay",
                              &r->owner, err, sizeof err);
    if (rc == CDC_EBUSY && *replay_lock) {
        r->guest = true;
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
    struct replay r = {.c = c};
    source_json_ctx(cfg, CDC_VERSION, &r.json);
    char err[1024];
    struct pipelock *replay_lock = NULL, *owner_lock = NULL;
    int rc = take_replay_locks(&r, &replay_lock, &owner_lock);
    if (rc)
        return rc;
    if (dlq_open_store(c, &r.st)) {
        pipelock_release(owner_lock);
        pipelock_release(replay_lock);
        return 1;
    }
    if (c->id) {
        struct dlq_entry e;
        int grc = store_dlq_get(r.st, c->id, &e, err, sizeof err);
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
            collect_id(&e, &r);
        }
        dlq_entry_fini(&e);
    } else if (store_dlq_list(r.st, o->sink, false, collect_id, &r, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (r.nids == 0) {
        printf("no pending dead-letter entries\n");
    }
    if (rc || r.nids == 0)
        goto out;
    if (r.guest) {
        char who[160];
        pipelock_describe(&r.owner, who, sizeof who);
        printf("pipeline %s is running in %s: replaying beside it; entries of sinks that take "
               "one writer at a time (file) stay pending\n",
               cfg->pipeline_id, who);
        fflush(stdout);
    }

    signal(SIGPIPE, SIG_IGN); /* network sinks see a closed peer as an error */
    r.sinks = xcalloc(cfg->nsinks ? cfg->nsinks : 1, sizeof *r.sinks);
    for (size_t i = 0; i < cfg->nsinks; i++) {
        struct sink *sk = &r.sinks[i].sk;
        sk->ops = sink_ops_find(cfg->sinks[i].sink_type);
        sk->cfg = &cfg->sinks[i];
        sk->config = cfg;
        sk->json = &r.json;
        sk->index = (unsigned)i;
        sk->replay = true;
    }
    size_t ok = 0;
    for (size_t i = 0; i < r.nids; i++)
        ok += replay_one(&r, r.ids[i]) == 0;
    for (size_t i = 0; i < cfg->nsinks; i++)
        rsink_close(&r.sinks[i]);
    printf("replayed %zu of %zu entr%s\n", ok, r.nids, r.nids == 1 ? "y" : "ies");
    rc = ok == r.nids ? 0 : 1;
out:
    free(r.sinks);
    free(r.ids);
    store_close(r.st);
    pipelock_release(owner_lock);
    pipelock_release(replay_lock);
    return rc;
}
