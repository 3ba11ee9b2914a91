/* The dead-letter replay driver (replay.h).  Each configured sink is
 * opened on first use, closed after a failed delivery (it may hold half of
 * one) and reopened for its next entry, and closed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evcodec.h"
#include "pipeline/replay.h"
#include "sink/sink.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/str.h"

#define REPLAY_MARGIN_MS  5000  /* on top of a per-key sink's own reply timeout */
#define REPLAY_DEFAULT_MS 60000 /* a per-key sink that names no reply timeout */

/* One configured sink as replay uses it. */
struct rsink {
    struct sink sk;
    bool open;
    bool unusable; /* could not be opened: its remaining entries fail at once */
};

struct replay {
    struct replay_opts o;
    struct rsink *sinks; /* cfg->nsinks entries */
    uint64_t seq;        /* replayed events get seqs of their own */
};

struct replay *replay_new(const struct replay_opts *o)
{
    const struct config *cfg = o->cfg;
    struct replay *r = xcalloc(1, sizeof *r);
    r->o = *o;
    r->sinks = xcalloc(cfg->nsinks ? cfg->nsinks : 1, sizeof *r->sinks);
    for (size_t i = 0; i < cfg->nsinks; i++) {
        struct sink *sk = &r->sinks[i].sk;
        sk->ops = cfg->sinks[i].type->ops;
        sk->cfg = &cfg->sinks[i];
        sk->config = cfg;
        sk->json = o->json;
        sk->index = (unsigned)i;
        sk->replay = true;
    }
    return r;
}

static void rsink_close(struct rsink *rs)
{
    if (rs->open)
        rs->sk.ops->close(&rs->sk);
    rs->open = false;
}

void replay_free(struct replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->o.cfg->nsinks; i++)
        rsink_close(&r->sinks[i]);
    free(r->sinks);
    free(r);
}

static int reply_timeout_ms(const struct sink_cfg *sc)
{
    if (!sc->type->reply_timeout_ms)
        return REPLAY_DEFAULT_MS;
    return sc->type->reply_timeout_ms(sc) + REPLAY_MARGIN_MS;
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
    int timeout = reply_timeout_ms(sk->cfg);
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

/* The configured sink called sink_id, or NULL. */
static struct rsink *find_sink(struct replay *r, const char *sink_id)
{
    const struct config *cfg = r->o.cfg;
    for (size_t i = 0; i < cfg->nsinks; i++)
        if (strcmp(cfg->sinks[i].sink_id, sink_id) == 0)
            return &r->sinks[i];
    return NULL;
}

/* Why the entry of rs (NULL: its sink is gone) cannot be replayed now, in
 * err; false when it can. */
static bool refused(struct replay *r, const struct rsink *rs, const char *sink_id, char *err,
                    size_t errlen)
{
    const struct config *cfg = r->o.cfg;
    char why[160];
    if (!rs)
        snprintf(err, errlen, "sink %s is not in %s any more", sink_id, cfg->pipeline_file);
    else if (!rs->sk.cfg->enabled)
        snprintf(err, errlen, "sink %s is disabled in %s; enable it to replay its entries", sink_id,
                 cfg->pipeline_file);
    else if (sink_type_unavailable(rs->sk.cfg->type, why, sizeof why))
        snprintf(err, errlen, "%s", why);
    else if (r->o.guest && rs->sk.cfg->type->single_writer)
        snprintf(err, errlen,
                 "sink %s takes one writer at a time and %s is writing it; replay this entry "
                 "once that process has stopped",
                 sink_id, r->o.owner ? r->o.owner : "another process");
    else if (rs->unusable)
        snprintf(err, errlen, "sink %s could not be opened (see above)", sink_id);
    else
        return false;
    return true;
}

void replay_entry(struct replay *r, int64_t id, struct replay_result *res)
{
    struct dlq_entry e;
    memset(res, 0, sizeof *res);
    res->outcome = REPLAY_PENDING;
    if (store_dlq_get(r->o.store, id, &e, res->err, sizeof res->err) != 0) {
        res->outcome = REPLAY_STORE_FAILED;
        return;
    }
    str_copy(res->sink_id, sizeof res->sink_id, e.sink_id);
    struct cdc_event *ev = NULL;
    struct rsink *rs = find_sink(r, e.sink_id);
    char derr[256];
    if (e.status == DLQ_RESOLVED) {
        res->outcome = REPLAY_RESOLVED;
        goto out;
    }
    if (refused(r, rs, e.sink_id, res->err, sizeof res->err))
        goto out;
    if (evcodec_decode(e.event, e.event_len, NULL, &ev, derr, sizeof derr) != 0) {
        snprintf(res->err, sizeof res->err, "the stored event cannot be decoded: %s", derr);
        goto out;
    }
    if (!rs->open) {
        struct cdc_posmap have = {0}; /* a replay delivers whatever the sink holds */
        int orc = rs->sk.ops->open(&rs->sk, &have);
        cdc_posmap_fini(&have);
        if (orc != 0) {
            rs->unusable = true;
            snprintf(res->err, sizeof res->err, "cannot open sink %s: %s", e.sink_id, rs->sk.err);
            goto out;
        }
        rs->open = true;
    }
    if (deliver(r, rs, ev, res->err, sizeof res->err) != 0) {
        rsink_close(rs); /* it may hold half a delivery: start afresh */
        goto out;
    }
    res->outcome = store_dlq_resolve(r->o.store, id, res->err, sizeof res->err) == 0
                       ? REPLAY_DELIVERED
                       : REPLAY_UNMARKED;
out:
    if (ev)
        cdc_event_unref(ev);
    dlq_entry_fini(&e);
}
