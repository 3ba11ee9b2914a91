/* The deliver role's dead-letter topic; see kdlq.h. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/kafka/kdlq.h"
#include "transport/kafka/kenc.h"
#include "transport/kafka/kproducer.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define PUBLISH_WAIT_MS 30000 /* how long a dead letter waits for Kafka */

struct kdlq {
    const struct config *cfg;
    pthread_mutex_t mu;
    struct kproducer *kp; /* NULL after a failure: reopened at the next publish */
    uint64_t tag;
};

static int producer_open(struct kdlq *q, char *err, size_t errlen)
{
    struct kproducer_opts po = {
        .client = &q->cfg->platform.kafka.client,
        .path = "kafka",
        .name = "dlq",
    };
    return kproducer_open(&q->kp, &po, err, errlen);
}

int kdlq_open(struct kdlq **out, const struct config *cfg, char *err, size_t errlen)
{
    struct kdlq *q = xcalloc(1, sizeof *q);
    q->cfg = cfg;
    pthread_mutex_init(&q->mu, NULL);
    int rc = producer_open(q, err, errlen);
    if (rc) {
        kdlq_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

void kdlq_close(struct kdlq *q)
{
    if (!q)
        return;
    kproducer_close(q->kp);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int kdlq_publish(void *arg, const struct cdc_event *ev, const char *sink_id, const char *errclass,
                 const char *error, const char *key, const char *value)
{
    struct kdlq *q = arg;
    const struct config *cfg = q->cfg;
    char topic[KENC_TOPIC_MAX + 1] = "";
    if (ev->tab)
        kenc_topic("{topic_prefix}.{schema}.{table}", cfg->topic_prefix, cfg->source.database,
                   ev->tab->schema, ev->tab->name, topic, sizeof topic);
    else
        snprintf(topic, sizeof topic, "%s.message", cfg->topic_prefix);
    char *dlq_topic = xasprintf("%s.%s", topic, cfg->platform.dlq.topic_suffix);
    char part[16], off[24], ts[24];
    snprintf(part, sizeof part, "%" PRIu32, ev->pos.stream & 0xffff);
    snprintf(off, sizeof off, "%" PRIu64, ev->pos.lsn ? ev->pos.lsn - 1 : 0);
    snprintf(ts, sizeof ts, "%" PRId64, clock_wall_us() / 1000);
    const struct kproducer_header h[] = {
        {"dlq.source.topic", topic, strlen(topic)},  {"dlq.source.partition", part, strlen(part)},
        {"dlq.source.offset", off, strlen(off)},     {"dlq.error.type", errclass, strlen(errclass)},
        {"dlq.error.message", error, strlen(error)}, {"dlq.timestamp", ts, strlen(ts)},
        {"dlq.sink_id", sink_id, strlen(sink_id)},
    };
    bool keyed = key && strcmp(key, "null") != 0;
    struct kproducer_msg m = {
        .topic = dlq_topic,
        .key = keyed ? key : NULL,
        .keylen = keyed ? strlen(key) : 0,
        .value = value,
        .valuelen = strlen(value),
        .headers = h,
        .nheaders = sizeof h / sizeof h[0],
    };
    char err[512] = "";
    pthread_mutex_lock(&q->mu);
    int rc = q->kp ? 0 : producer_open(q, err, sizeof err);
    if (rc == 0)
        rc = kproducer_send(q->kp, &m, ++q->tag, err, sizeof err);
    if (rc == 0 && (rc = kproducer_wait(q->kp, PUBLISH_WAIT_MS)) != 0)
        snprintf(err, sizeof err, "%s",
                 kproducer_failure(q->kp) ? kproducer_failure(q->kp) : "not acknowledged in time");
    if (rc != 0 && q->kp && kproducer_failure(q->kp)) {
        kproducer_close(q->kp); /* failed for good: a new one next time */
        q->kp = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        log_error("kafka.dlq_publish_failed", "sink=%s topic=%s error=%s", sink_id, dlq_topic,
                  log_q(err));
    else
        log_warn("kafka.dead_lettered", "sink=%s topic=%s source_partition=%s source_offset=%s",
                 sink_id, dlq_topic, part, off);
    free(dlq_topic);
    return rc;
}
