/* Kafka sink: every change as a keyed record on its table's topic (see
 * transport/kafka/kenc.h for the records, docs/kafka.md for users).
 *
 * A serial sink: write() hands records to an idempotent producer, flush()
 * waits for Kafka's acknowledgements and reports durable the newest event
 * whose records, and all earlier ones, Kafka holds (acks=all).  Per-key
 * order comes from the partitioner (one key, one partition) and from
 * idempotence (no reordering by retries).
 *
 * A failed delivery (a message that timed out, a fatal producer error) is a
 * sink failure: the engine closes the sink, reopens it and replays from the
 * confirmed position, so nothing is confirmed that Kafka does not hold.
 * Kafka may then hold some records twice, and a restart after a crash does
 * the same: the sink cannot tell what a dead producer delivered (open
 * reports having nothing), so delivery is at least once. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "sink/kafka/kafka_sink.h"
#include "sink/sink.h"
#include "transport/kafka/kenc.h"
#include "transport/kafka/kproducer.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* How long one flush waits for acknowledgements before reporting what has
 * arrived: long enough for a stop to find everything acknowledged after a
 * broker's reconnect, short enough to report progress while one is down. */
#define FLUSH_WAIT_MS 5000

struct kafka_sink {
    struct kproducer *kp;
    struct kenc *enc;
    uint64_t given_seq;     /* newest seq passed to write() */
    uint64_t behind_seq;    /* given_seq at the last flush (what it set on its way) */
    uint64_t logged_resent; /* resent messages already reported in the log */
    char path[48];          /* "sinks[N].kafka", for messages */
};

static void kafka_close(struct sink *sk)
{
    struct kafka_sink *ks = sk->priv;
    if (!ks)
        return;
    kproducer_close(ks->kp);
    kenc_free(ks->enc);
    free(ks);
    sk->priv = NULL;
}

/* Reports holding nothing, of any stream: Kafka cannot say what a dead
 * producer delivered. */
static int kafka_open(struct sink *sk, struct cdc_posmap *have)
{
    const struct kafka_sink_cfg *kc = sk->cfg->conf;
    struct kafka_sink *ks = xcalloc(1, sizeof *ks);
    snprintf(ks->path, sizeof ks->path, "sinks[%td].kafka", sk->cfg - sk->config->sinks);
    struct kproducer_opts po = {
        .client = &kc->client,
        .path = ks->path,
        .name = sk->cfg->sink_id,
        .acks = kc->acks,
        .no_idempotence = kc->no_idempotence,
    };
    char err[768];
    int rc = kproducer_open(&ks->kp, &po, err, sizeof err);
    if (rc) {
        free(ks);
        return sink_set_error(sk, rc == CDC_EINVAL ? SINK_ERR_PERMANENT : SINK_ERR_UNREACHABLE,
                              "%s", err);
    }
    struct kenc_opts eo = {
        .topic_template = kc->topic,
        .topic_prefix = sk->config->topic_prefix,
        .json = sk->json,
        .schemas_enable = kc->schemas_enable,
        .tombstones_on_delete = kc->tombstones_on_delete,
        .event_header = kc->event_header,
    };
    ks->enc = kenc_new(&eo);
    sk->priv = ks;
    return 0;
}

/* The producer failed: report why as a sink failure. */
static int producer_failed(struct sink *sk, struct kafka_sink *ks)
{
    const char *why = kproducer_failure(ks->kp);
    return sink_set_error(sk, SINK_ERR_UNREACHABLE, "kafka: %s", why ? why : "producer failed");
}

static int kafka_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    struct kafka_sink *ks = sk->priv;
    char err[512];
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        struct kproducer_msg recs[KENC_MAX_RECORDS];
        int nrec = kenc_event(ks->enc, ev, recs, err, sizeof err);
        if (nrec < 0) {
            sk->err_seq = ev->seq;
            return sink_set_error(sk, SINK_ERR_PERMANENT, "%s", err);
        }
        for (int r = 0; r < nrec; r++) {
            int rc = kproducer_send(ks->kp, &recs[r], ev->seq, err, sizeof err);
            if (rc == CDC_EINVAL) {
                /* Kafka can never take this record (too large): the
                 * event is dead-lettered; what went before stays. */
                sk->err_seq = ev->seq;
                return sink_set_error(sk, SINK_ERR_PERMANENT, "%s", err);
            }
            if (rc)
                return producer_failed(sk, ks);
        }
    }
    if (n)
        ks->given_seq = evs[n - 1]->seq;
    kproducer_poll(ks->kp);
    return 0;
}

static int kafka_flush(struct sink *sk, uint64_t *durable_seq)
{
    struct kafka_sink *ks = sk->priv;
    /* Behind (a batch is full and more wait): wait only for what the last
     * flush set on its way, so this batch's records travel while the next
     * one is encoded; at most two batches are ever outstanding.  Other
     * flushes wait for everything. */
    int rc = sk->flush_behind ? kproducer_wait_upto(ks->kp, ks->behind_seq, FLUSH_WAIT_MS)
                              : kproducer_wait(ks->kp, FLUSH_WAIT_MS);
    ks->behind_seq = ks->given_seq;
    if (rc == CDC_ECONN)
        return producer_failed(sk, ks);
    uint64_t oldest = kproducer_oldest_pending(ks->kp);
    *durable_seq = oldest ? oldest - 1 : ks->given_seq;
    struct kproducer_stats st;
    kproducer_stats(ks->kp, &st);
    if (st.resent > ks->logged_resent) {
        log_warn("sink.kafka.retries", "sink=%s resent=%" PRIu64 " outstanding=%" PRIu64,
                 sk->cfg->sink_id, st.resent, st.outstanding);
        sk->request_retries += st.resent - ks->logged_resent; /* this producer's since the last */
        ks->logged_resent = st.resent;
    }
    return 0;
}

const struct sink_ops sink_kafka_ops = {
    .open = kafka_open,
    .write = kafka_write,
    .flush = kafka_flush,
    .close = kafka_close,
};
