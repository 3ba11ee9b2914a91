/* NATS JetStream sink: every change as a message on its table's subject
 * (nats_subject.c), the envelope as its data, for a JetStream stream to
 * store.  docs/nats.md is the users' side.
 *
 * A serial sink: write() publishes asynchronously over one connection,
 * flush() waits for the stream's acknowledgements and reports durable what
 * was written once every message is acknowledged (a stream acknowledges a
 * message once it stored it).  One connection, in order, gives the stream
 * the changes in commit order.
 *
 * Headers: Nats-Msg-Id, what identifies the change (sink/change_key.h, the
 * same after a restart or a replay), so the stream drops a message it
 * already holds from within its duplicate window; Cdc-Op (c, u, d, r, t or
 * m) and, for a table with a key, Cdc-Key (the key's JSON).
 *
 * Failures.  The connection never reconnects by itself: messages written
 * into a connection that broke are lost, and a reconnect would send the
 * ones after them first.  A broken connection, a timeout or an error
 * acknowledgement fails the sink instead; the engine reopens it and replays
 * from the confirmed position, in order, and the stream drops the repeats
 * (Nats-Msg-Id).  Open cannot tell what the stream holds, so the type is
 * at least once: a replay from beyond the duplicate window brings repeats.
 * A subject no stream takes, or taken by another stream than `stream`,
 * stops the pipeline (the stream must be changed).  A message too large for
 * the server goes to the dead-letter queue at once; one the stream refuses
 * (its max_msg_size) is known only from its acknowledgement, at a flush:
 * the sink then remembers where it was (sink.single_until) and, after the
 * replay, publishes up to there one message at a time, waiting for each
 * acknowledgement, so that write() names the refused change and the engine
 * dead-letters it alone. */
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "sink/change_key.h"
#include "sink/nats/nats_sink.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* A message published and not yet acknowledged, and the event it carries. */
struct sent {
    natsMsg *msg; /* only ever compared: the library owns it */
    uint64_t seq;
    struct cdc_pos pos;
    bool snapshot;
};

struct nats_sink {
    natsConnection *nc;
    jsCtx *js;
    struct buf subject, data, id, key;
    uint64_t given_seq; /* newest seq passed to write() */
    /* What was published since the last complete flush, in order: the
     * writer's only (the acknowledgement thread never reads it). */
    struct sent *sent;
    size_t nsent, capsent;
    /* Set by the acknowledgement handler (libnats's thread), under mu;
     * failed is set last, and read without the lock on every write. */
    pthread_mutex_t mu;
    atomic_bool failed;
    enum sink_errclass failclass;
    natsMsg *failed_msg; /* kept (not destroyed) to find its event */
    char why[512];
    uint64_t duplicates; /* acknowledged as already held */
    uint64_t logged_duplicates;
};

static const struct nats_sink_cfg *conf(const struct sink *sk)
{
    return sk->cfg->conf;
}

static int64_t timeout_ms(const struct sink *sk)
{
    double ms = conf(sk)->publish_timeout_seconds * 1000;
    return ms < 1 ? 1 : ms > 86400000 ? 86400000 : (int64_t)ms;
}

/* The acknowledgement of one message: counts repeats, records the first
 * failure.  Runs in libnats's thread. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct nats_sink *ns = closure;
    pthread_mutex_lock(&ns->mu);
    if (pa && pa->Duplicate)
        ns->duplicates++;
    if (pae && !atomic_load(&ns->failed)) {
        const char *subj = natsMsg_GetSubject(msg);
        const char *text = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
        if (pae->Err == NATS_NO_RESPONDERS) {
            ns->failclass = SINK_ERR_FATAL;
            snprintf(ns->why, sizeof ns->why,
                     "no JetStream stream takes subject %s: add the subject to a stream (or "
                     "create one), then run again",
                     subj);
        } else if (pae->ErrCode == JSStreamNotMatchErr || pae->ErrCode == JSStreamNotFoundErr) {
            ns->failclass = SINK_ERR_FATAL;
            snprintf(ns->why, sizeof ns->why,
                     "subject %s: %s (the stream named by `stream` must take it)", subj, text);
        } else if (pae->ErrCode == JSStreamMessageExceedsMaximumErr) {
            ns->failclass = SINK_ERR_PERMANENT;
            ns->failed_msg = msg;
            msg = NULL;
            snprintf(ns->why, sizeof ns->why, "subject %s: the stream refused the message: %s",
                     subj, text);
        } else {
            ns->failclass = SINK_ERR_UNREACHABLE;
            snprintf(ns->why, sizeof ns->why, "subject %s: %s", subj, text);
        }
        atomic_store(&ns->failed, true);
    }
    pthread_mutex_unlock(&ns->mu);
    natsMsg_Destroy(msg);
}

static void nats_close(struct sink *sk)
{
    struct nats_sink *ns = sk->priv;
    if (!ns)
        return;
    if (ns->js && ns->nsent) {
        /* What is still unacknowledged: given back, dropped (libnats 3.4
         * crashes here when nothing was ever published).  Then wait for
         * the acknowledgement handlers already running, which use ns. */
        natsMsgList pending;
        if (js_PublishAsyncGetPendingList(&pending, ns->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        (void)js_PublishAsyncComplete(ns->js, &po);
    }
    if (ns->nc)
        natsConnection_Close(ns->nc);
    jsCtx_Destroy(ns->js);
    natsConnection_Destroy(ns->nc);
    natsMsg_Destroy(ns->failed_msg);
    pthread_mutex_destroy(&ns->mu);
    buf_fini(&ns->subject);
    buf_fini(&ns->data);
    buf_fini(&ns->id);
    buf_fini(&ns->key);
    free(ns->sent);
    free(ns);
    sk->priv = NULL;
}

/* The connection: no reconnects (see the head comment), the credentials. */
static natsStatus connect_to(struct nats_sink *ns, const struct nats_sink_cfg *c, const char *name,
                             int64_t wait_ms)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, c->url);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, wait_ms);
    if (s == NATS_OK && c->user)
        s = natsOptions_SetUserInfo(o, c->user, c->password);
    if (s == NATS_OK && c->token)
        s = natsOptions_SetToken(o, c->token);
    if (s == NATS_OK)
        s = natsConnection_Connect(&ns->nc, o);
    natsOptions_Destroy(o);
    return s;
}

/* Reports holding nothing: the stream cannot say which changes it holds. */
static int nats_open(struct sink *sk, struct cdc_posmap *have)
{
    const struct nats_sink_cfg *c = conf(sk);
    struct nats_sink *ns = xcalloc(1, sizeof *ns);
    pthread_mutex_init(&ns->mu, NULL);
    sk->priv = ns;
    char name[128];
    snprintf(name, sizeof name, "cdc %s/%s", sk->config->pipeline_id, sk->cfg->sink_id);
    natsStatus s = connect_to(ns, c, name, timeout_ms(sk));
    if (s != NATS_OK) {
        nats_close(sk);
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "nats: cannot connect: %s",
                              natsStatus_GetText(s));
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms(sk);
    jo.PublishAsync.MaxPending = c->max_pending;
    jo.PublishAsync.StallWait = timeout_ms(sk);
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = ns;
    s = natsConnection_JetStream(&ns->js, ns->nc, &jo);
    if (s == NATS_OK) { /* a server without JetStream does not answer its API */
        jsAccountInfo *ai = NULL;
        s = js_GetAccountInfo(&ai, ns->js, NULL, NULL);
        jsAccountInfo_Destroy(ai);
        if (s == NATS_NO_RESPONDERS) {
            nats_close(sk);
            return sink_set_error(sk, SINK_ERR_FATAL,
                                  "nats: the server does not run JetStream (nats-server -js, or "
                                  "jetstream {} in its configuration): cdc publishes to streams");
        }
    }
    if (s == NATS_OK && c->stream) {
        jsStreamInfo *si = NULL;
        jsErrCode code = 0;
        s = js_GetStreamInfo(&si, ns->js, c->stream, NULL, &code);
        jsStreamInfo_Destroy(si);
        if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
            nats_close(sk);
            return sink_set_error(sk, SINK_ERR_FATAL,
                                  "nats: JetStream stream %s does not exist: create it (its "
                                  "subjects must take %s), then run again",
                                  c->stream, c->subject);
        }
    }
    if (s != NATS_OK) {
        nats_close(sk);
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "nats: JetStream: %s",
                              natsStatus_GetText(s));
    }
    return 0;
}

/* The first failure the acknowledgements reported, as the sink's error. */
static int ack_failed(struct sink *sk, struct nats_sink *ns)
{
    pthread_mutex_lock(&ns->mu);
    const struct sent *bad = NULL;
    if (ns->failed_msg) /* the last match: an address may have been used before */
        for (size_t i = 0; i < ns->nsent; i++)
            if (ns->sent[i].msg == ns->failed_msg)
                bad = &ns->sent[i];
    if (bad) {
        sk->err_seq = bad->seq;
        if (bad->snapshot)
            sk->single_snapshot = true;
        else
            sk->single_until = bad->pos;
    }
    int rc = sink_set_error(sk, ns->failclass, "nats: %s", ns->why);
    pthread_mutex_unlock(&ns->mu);
    return rc;
}

static bool has_failed(struct nats_sink *ns)
{
    return atomic_load(&ns->failed);
}

/* Builds and publishes one change. */
static int publish(struct sink *sk, struct nats_sink *ns, const struct cdc_event *ev)
{
    const struct nats_sink_cfg *c = conf(sk);
    const struct config *cfg = sk->config;
    buf_reset(&ns->subject);
    if (ev->tab && ev->op != CDC_OP_MESSAGE)
        nats_subject(&ns->subject, c->subject, cfg->topic_prefix, cfg->source.database,
                     ev->tab->schema, ev->tab->name);
    else
        nats_subject(&ns->subject, "{topic_prefix}.message", cfg->topic_prefix, NULL, NULL, NULL);
    buf_reset(&ns->data);
    json_envelope(&ns->data, ev, sk->json);
    buf_reset(&ns->id);
    sink_change_key(&ns->id, cfg->pipeline_id, sk->cfg->sink_id, ev);
    bool keyed = ev->tab && ev->tab->key_unique && ev->tab->nkeys > 0 &&
                 ev->op != CDC_OP_TRUNCATE && ev->op != CDC_OP_MESSAGE;
    if (keyed) {
        buf_reset(&ns->key);
        json_key(&ns->key, ev);
    }
    char op[2] = {(char)ev->op, '\0'}; /* a change's op is its envelope letter */
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, ns->subject.p, NULL, ns->data.p, (int)ns->data.len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Cdc-Op", op);
    if (s == NATS_OK && keyed)
        s = natsMsgHeader_Set(m, "Cdc-Key", ns->key.p);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = ns->id.p;
    po.ExpectStream = c->stream;
    po.MaxWait = timeout_ms(sk);
    natsMsg *sent = m;
    if (s == NATS_OK)
        s = js_PublishMsgAsync(ns->js, &m, &po);
    natsMsg_Destroy(m);          /* NULL once the library took it */
    if (s == NATS_MAX_PAYLOAD) { /* libnats counts the headers with the envelope */
        sk->err_seq = ev->seq;
        return sink_set_error(sk, SINK_ERR_PERMANENT,
                              "nats: %s: the message (a %zu-byte envelope and its headers) is "
                              "larger than the server takes (max_payload %" PRId64 " bytes)",
                              ns->subject.p, ns->data.len, natsConnection_GetMaxPayload(ns->nc));
    }
    if (s != NATS_OK) {
        const char *last = nats_GetLastError(NULL); /* this thread's, of this call */
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "nats: publishing to %s: %s", ns->subject.p,
                              last && *last ? last : natsStatus_GetText(s));
    }
    if (ns->nsent == ns->capsent) {
        ns->capsent = ns->capsent ? 2 * ns->capsent : 1024;
        ns->sent = xrealloc(ns->sent, ns->capsent * sizeof *ns->sent);
    }
    ns->sent[ns->nsent++] = (struct sent){sent, ev->seq, ev->pos, ev->snapshot};
    return 0;
}

/* Whether ev goes alone, its acknowledgement awaited: up to where a
 * message was refused before (see the head comment). */
static bool alone(const struct sink *sk, const struct cdc_event *ev)
{
    if (ev->snapshot)
        return sk->single_snapshot;
    return sk->single_until.lsn != 0 && ev->pos.stream == sk->single_until.stream &&
           cdc_pos_cmp(ev->pos, sk->single_until) <= 0;
}

/* Waits for every acknowledgement: 0, or the sink's error. */
static int wait_acks(struct sink *sk, struct nats_sink *ns)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms(sk);
    natsStatus s = js_PublishAsyncComplete(ns->js, &po);
    if (has_failed(ns))
        return ack_failed(sk, ns);
    if (s != NATS_OK)
        return sink_set_error(sk, SINK_ERR_UNREACHABLE,
                              "nats: of %zu messages published since the last flush, some were "
                              "not acknowledged within %.3g s: %s",
                              ns->nsent, conf(sk)->publish_timeout_seconds, natsStatus_GetText(s));
    ns->nsent = 0;
    return 0;
}

static int nats_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    struct nats_sink *ns = sk->priv;
    if (has_failed(ns)) /* a refusal the acknowledgements brought comes first */
        return ack_failed(sk, ns);
    if (natsConnection_IsClosed(ns->nc))
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "nats: the connection closed");
    for (size_t i = 0; i < n; i++) {
        if (cdc_op_is_control(evs[i]->op))
            continue;
        if (has_failed(ns))
            return ack_failed(sk, ns);
        int rc = publish(sk, ns, evs[i]);
        if (!rc && alone(sk, evs[i]))
            rc = wait_acks(sk, ns);
        if (rc)
            return rc;
    }
    if (n)
        ns->given_seq = evs[n - 1]->seq;
    return 0;
}

static int nats_flush(struct sink *sk, uint64_t *durable_seq)
{
    struct nats_sink *ns = sk->priv;
    *durable_seq = 0;
    if (ns->nsent && natsConnection_IsClosed(ns->nc) && !has_failed(ns))
        return sink_set_error(sk, SINK_ERR_UNREACHABLE,
                              "nats: the connection closed with %zu messages unacknowledged",
                              ns->nsent);
    int rc = ns->nsent ? wait_acks(sk, ns) : 0;
    if (rc)
        return rc;
    *durable_seq = ns->given_seq;
    pthread_mutex_lock(&ns->mu);
    uint64_t dup = ns->duplicates;
    pthread_mutex_unlock(&ns->mu);
    if (dup > ns->logged_duplicates) {
        log_info("sink.nats.duplicates", "sink=%s dropped_by_stream=%" PRIu64, sk->cfg->sink_id,
                 dup - ns->logged_duplicates);
        ns->logged_duplicates = dup;
    }
    return 0;
}

const struct sink_ops sink_nats_ops = {
    .open = nats_open,
    .write = nats_write,
    .flush = nats_flush,
    .close = nats_close,
};
