/* The producer: librdkafka plus a ring that maps acknowledgements back to
 * tags.
 *
 * The ring holds one entry per tag with messages in flight: {tag, number of
 * its messages not yet resolved}.  A message's opaque is the absolute index
 * of its entry; the entry lives at index % capacity.  The head advances over
 * resolved entries, so the head entry's tag is the oldest pending one. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/jsonread.h"
#include "transport/kafka/kclient.h"
#include "transport/kafka/kproducer.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strmap.h"

struct pending {
    uint64_t tag;
    uint64_t left; /* messages of this tag not yet acknowledged */
};

struct kproducer {
    struct kclient_ctx ctx; /* first: the log callback reads it through the opaque */
    rd_kafka_t *rk;
    struct strmap *topics; /* name -> rd_kafka_topic_t * */
    struct pending *ring;
    uint64_t cap;        /* a power of two */
    uint64_t head, tail; /* absolute indexes: [head, tail) are live */
    bool failed;
    char failure[512];
    struct kproducer_stats st;
};

static void fail(struct kproducer *kp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct kproducer *kp, const char *fmt, ...)
{
    if (kp->failed)
        return; /* the first failure is the one worth reporting */
    va_list ap;
    va_start(ap, fmt);
    char raw[512];
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    kclient_scrub(&kp->ctx, raw, kp->failure, sizeof kp->failure);
    kp->failed = true;
}

/* ---- the ring ---- */

static void ring_grow(struct kproducer *kp)
{
    uint64_t ncap = kp->cap ? kp->cap * 2 : 1024;
    struct pending *n = xcalloc(ncap, sizeof *n);
    for (uint64_t i = kp->head; i < kp->tail; i++)
        n[i & (ncap - 1)] = kp->ring[i & (kp->cap - 1)];
    free(kp->ring);
    kp->ring = n;
    kp->cap = ncap;
}

/* The entry a new message of tag belongs to: the last one if it has the
 * same tag, else a new one.  Returns its absolute index. */
static uint64_t ring_claim(struct kproducer *kp, uint64_t tag)
{
    if (kp->tail > kp->head && kp->ring[(kp->tail - 1) & (kp->cap - 1)].tag == tag) {
        kp->ring[(kp->tail - 1) & (kp->cap - 1)].left++;
        return kp->tail - 1;
    }
    if (kp->tail - kp->head == kp->cap)
        ring_grow(kp);
    kp->ring[kp->tail & (kp->cap - 1)] = (struct pending){tag, 1};
    return kp->tail++;
}

/* Gives back a claim whose message was not queued. */
static void ring_unclaim(struct kproducer *kp, uint64_t idx)
{
    struct pending *p = &kp->ring[idx & (kp->cap - 1)];
    if (--p->left == 0 && idx == kp->tail - 1)
        kp->tail--;
}

static void ring_settle(struct kproducer *kp)
{
    while (kp->head < kp->tail && kp->ring[kp->head & (kp->cap - 1)].left == 0)
        kp->head++;
}

/* ---- librdkafka callbacks (served on the caller's thread) ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct kproducer *kp = opaque;
    uint64_t idx = (uint64_t)(uintptr_t)msg->_private;
    if (idx >= kp->head && idx < kp->tail) {
        struct pending *p = &kp->ring[idx & (kp->cap - 1)];
        if (p->left)
            p->left--;
    }
    if (msg->err) {
        kp->st.failed++;
        if (!kp->failed) {
            fail(kp, "delivery to %s [%d] failed: %s", rd_kafka_topic_name(msg->rkt),
                 (int)msg->partition, rd_kafka_err2str(msg->err));
            /* Send nothing more: a later message of the partition must not
             * land after the gap this one leaves. */
            rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
        }
    } else {
        kp->st.acked++;
    }
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    struct kproducer *kp = opaque;
    char clean[512];
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        fail(kp, "fatal producer error %s: %s", rd_kafka_err2name(orig), why);
        log_error("sink.kafka.fatal", "client=%s error=%s", log_q(kp->ctx.name),
                  log_q(kp->failure));
        return;
    }
    /* Broker connections come and go; librdkafka reconnects and retries
     * by itself until message.timeout.ms. */
    kclient_scrub(&kp->ctx, reason, clean, sizeof clean);
    log_warn("kafka.error", "client=%s code=%s error=%s", log_q(kp->ctx.name),
             rd_kafka_err2name((rd_kafka_resp_err_t)code), log_q(clean));
}

/* Messages librdkafka transmitted again (after a refused or lost produce
 * request), from a statistics document: per partition, what it transmitted
 * beyond the messages that have left its queues. */
static uint64_t resent_messages(const struct jsonv *doc)
{
    const struct jsonv *topics = jsonv_get(doc, "topics");
    uint64_t total = 0;
    for (size_t t = 0; topics && topics->t == JSONV_OBJ && t < topics->n; t++) {
        const struct jsonv *parts = jsonv_get(&topics->items[t], "partitions");
        for (size_t p = 0; parts && parts->t == JSONV_OBJ && p < parts->n; p++) {
            const struct jsonv *tp = &parts->items[p];
            if (jsonv_num(tp, "partition", -1) < 0)
                continue; /* the unassigned queue */
            double left = jsonv_num(tp, "msgs", 0) - jsonv_num(tp, "msgq_cnt", 0) -
                          jsonv_num(tp, "xmit_msgq_cnt", 0);
            double extra = jsonv_num(tp, "txmsgs", 0) - left;
            if (extra > 0)
                total += (uint64_t)extra;
        }
    }
    return total;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct kproducer *kp = opaque;
    struct jsonv doc;
    if (jsonread_parse(json, len, &doc) != 0)
        return 0;
    uint64_t resent = resent_messages(&doc);
    if (resent > kp->st.resent) /* counters of a partition may lag behind */
        kp->st.resent = resent;
    jsonv_free(&doc);
    return 0;
}

/* ---- the API ---- */

int kproducer_open(struct kproducer **out, const struct kproducer_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    struct kproducer *kp = xcalloc(1, sizeof *kp);
    kp->ctx.name = o->name ? o->name : "producer";
    rd_kafka_conf_t *conf = NULL;
    int rc = kclient_conf(&conf, o->client, o->path, &kp->ctx, err, errlen);
    if (rc) {
        free(kp);
        return rc;
    }
    /* cdc's own settings first, so that properties may tune the rest */
    char interval[32];
    snprintf(interval, sizeof interval, "%d",
             o->stats_interval_ms > 0 ? o->stats_interval_ms : 1000);
    const struct {
        const char *name, *value;
    } own[] = {
        {"enable.idempotence", o->no_idempotence ? "false" : "true"},
        {"acks", o->acks ? o->acks : "all"},
        /* No message ever times out: one that did could leave a gap that
         * a later message of its partition, and key, jumps (see the
         * header); a broker that is down holds the sink back instead. */
        {"message.timeout.ms", "0"},
        {"enable.gapless.guarantee", o->no_idempotence ? "false" : "true"},
        {"partitioner", "murmur2_random"},
        {"statistics.interval.ms", interval},
    };
    for (size_t i = 0; i < sizeof own / sizeof *own && !rc; i++)
        if (!kclient_has_property(o->client, own[i].name))
            rc = kclient_set(conf, own[i].name, own[i].value, err, errlen);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        free(kp);
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    /* The log callback reads ctx, the delivery report the whole state:
     * both find it through the one opaque (ctx is its first member). */
    rd_kafka_conf_set_opaque(conf, kp);
    char why[512];
    kp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!kp->rk) {
        char clean[512];
        kclient_scrub(&kp->ctx, why, clean, sizeof clean);
        rd_kafka_conf_destroy(conf);
        free(kp);
        return cdc_fail(err, errlen, CDC_EINVAL, "%s: librdkafka: %s", o->path, clean);
    }
    kp->topics = strmap_new();
    const struct rd_kafka_metadata *md = NULL;
    int timeout = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    rd_kafka_resp_err_t e = rd_kafka_metadata(kp->rk, 0, NULL, &md, timeout);
    if (e) {
        kproducer_close(kp);
        return cdc_fail(err, errlen, CDC_ECONN, "cannot reach Kafka at %s: %s",
                        o->client->bootstrap_servers, rd_kafka_err2str(e));
    }
    rd_kafka_metadata_destroy(md);
    *out = kp;
    return 0;
}

static rd_kafka_topic_t *topic_handle(struct kproducer *kp, const char *name)
{
    rd_kafka_topic_t *rkt = strmap_get(kp->topics, name);
    if (!rkt) {
        rkt = rd_kafka_topic_new(kp->rk, name, NULL);
        if (rkt)
            strmap_put(kp->topics, name, rkt);
    }
    return rkt;
}

int kproducer_send(struct kproducer *kp, const struct kproducer_msg *m, uint64_t tag, char *err,
                   size_t errlen)
{
    if (kp->failed)
        return cdc_fail(err, errlen, CDC_ECONN, "%s", kp->failure);
    rd_kafka_topic_t *rkt = topic_handle(kp, m->topic);
    if (!rkt)
        return cdc_fail(err, errlen, CDC_EINVAL, "topic \"%s\": %s", m->topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
    uint64_t idx = ring_claim(kp, tag);
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (m->nheaders) {
            hdrs = rd_kafka_headers_new(m->nheaders);
            for (size_t i = 0; i < m->nheaders; i++)
                rd_kafka_header_add(hdrs, m->headers[i].name, -1, m->headers[i].value,
                                    (ssize_t)m->headers[i].len);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            kp->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, m->keylen),
            RD_KAFKA_V_VALUE((void *)m->value, m->valuelen), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)idx), RD_KAFKA_V_END);
        if (!e) {
            kp->st.sent++;
            return 0;
        }
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !kp->failed) {
            /* the local queue is full: wait for acknowledgements */
            rd_kafka_poll(kp->rk, 100);
            continue;
        }
        ring_unclaim(kp, idx);
        if (kp->failed || e == RD_KAFKA_RESP_ERR__FATAL) {
            fail(kp, "cannot produce to %s: %s", m->topic, rd_kafka_err2str(e));
            return cdc_fail(err, errlen, CDC_ECONN, "%s", kp->failure);
        }
        return cdc_fail(err, errlen, CDC_EINVAL, "cannot produce to %s: %s", m->topic,
                        rd_kafka_err2str(e));
    }
}

void kproducer_poll(struct kproducer *kp)
{
    rd_kafka_poll(kp->rk, 0);
    ring_settle(kp);
}

int kproducer_wait(struct kproducer *kp, int timeout_ms)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(kp->rk, timeout_ms);
    ring_settle(kp);
    if (kp->failed)
        return CDC_ECONN;
    if (e || kp->head < kp->tail)
        return CDC_EAGAIN;
    return 0;
}

int kproducer_wait_upto(struct kproducer *kp, uint64_t tag, int timeout_ms)
{
    int64_t deadline = clock_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        kproducer_poll(kp);
        if (kp->failed)
            return CDC_ECONN;
        uint64_t oldest = kproducer_oldest_pending(kp);
        if (!oldest || oldest > tag)
            return 0;
        int64_t left = deadline - clock_mono_us();
        if (left <= 0)
            return CDC_EAGAIN;
        rd_kafka_poll(kp->rk, left > 100000 ? 100 : (int)(left / 1000) + 1);
    }
}

uint64_t kproducer_oldest_pending(const struct kproducer *kp)
{
    return kp->head < kp->tail ? kp->ring[kp->head & (kp->cap - 1)].tag : 0;
}

const char *kproducer_failure(const struct kproducer *kp)
{
    return kp->failed ? kp->failure : NULL;
}

void kproducer_stats(const struct kproducer *kp, struct kproducer_stats *st)
{
    *st = kp->st;
    st->outstanding = kp->st.sent - kp->st.acked - kp->st.failed;
}

static void destroy_topic(void *rkt)
{
    rd_kafka_topic_destroy(rkt);
}

void kproducer_close(struct kproducer *kp)
{
    if (!kp)
        return;
    if (kp->rk) {
        /* Nothing waits for what Kafka has not acknowledged: the caller
         * sends it again after reopening. */
        rd_kafka_purge(kp->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(kp->rk, 0);
    }
    strmap_free(kp->topics, destroy_topic);
    if (kp->rk)
        rd_kafka_destroy(kp->rk);
    free(kp->ring);
    free(kp);
}
