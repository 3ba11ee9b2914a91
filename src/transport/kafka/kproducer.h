/* A Kafka producer that knows which of its messages Kafka holds.
 *
 * Used by the kafka sink and by the capture role (any source -> topics).
 * Every message carries a tag (an event seq); tags never decrease.  Kafka's
 * acknowledgements arrive in any order across partitions; the producer
 * tracks them so kproducer_oldest_pending() names the oldest tag with a
 * message not yet acknowledged: everything tagged before it is in Kafka
 * (acks=all: on every in-sync replica).  That is what a caller may confirm.
 *
 * One failed delivery (a fatal idempotence error, a refusal by the broker,
 * a message that timed out when message.timeout.ms is set) fails the
 * producer for good: it sends nothing more, kproducer_failure() says why,
 * every later call returns CDC_ECONN, and the caller closes it, opens a new
 * one and sends again from its last confirmed position.  Kafka may then hold
 * some messages twice (idempotence does not span producer instances), never
 * a gap that was confirmed.
 *
 * The producer is idempotent (enable.idempotence: no duplicates or
 * reordering from its own retries, enable.gapless.guarantee: an error that
 * would leave a gap in a partition stops it) and partitions keyed messages
 * with murmur2 like Kafka's Java client (partitioner=murmur2_random), so
 * one key always lands in one partition, the partition a Java producer would
 * pick.  Messages never time out (message.timeout.ms=0): a message that timed
 * out while a later one of its partition got through would leave a gap the
 * replay fills out of order, so a broker that is down holds the producer
 * back until it is up again.  A finite message.timeout.ms in the properties
 * turns a long outage into failures and replays instead, at that price.
 *
 * Not thread-safe: one thread calls it (delivery reports are served on that
 * thread, inside send and wait). */
#ifndef CDC_TRANSPORT_KAFKA_KPRODUCER_H
#define CDC_TRANSPORT_KAFKA_KPRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct kproducer;

struct kproducer_opts {
    const struct kafka_client_cfg *client; /* borrowed for the producer's life */
    const char *path;                      /* the config block, for messages: "sinks[0].kafka" */
    const char *name;                      /* for logs: the sink id, "capture" */
    const char *acks;                      /* "all" (NULL), "-1", "1" or "0" */
    bool no_idempotence;                   /* true only when the platform config says so */
    int connect_timeout_ms;                /* how long open waits for the cluster; 0: 10 s */
    int stats_interval_ms;                 /* librdkafka statistics (resent); 0: 1 s */
};

struct kproducer_header {
    const char *name;
    const void *value;
    size_t len;
};

/* One record.  A NULL key is a null key (the partition is then random); a
 * NULL value a null value (a tombstone).  Everything is copied by send. */
struct kproducer_msg {
    const char *topic;
    const void *key;
    size_t keylen;
    const void *value;
    size_t valuelen;
    const struct kproducer_header *headers;
    size_t nheaders;
};

struct kproducer_stats {
    uint64_t sent;        /* messages handed to librdkafka */
    uint64_t acked;       /* acknowledged by Kafka */
    uint64_t failed;      /* delivery reports with an error */
    uint64_t resent;      /* messages librdkafka transmitted again after a refused or
                             lost request (from its statistics, updated every
                             stats_interval_ms) */
    uint64_t outstanding; /* sent, neither acknowledged nor failed */
};

/* Builds the producer and checks that the cluster answers (a metadata
 * request, up to connect_timeout_ms).  Returns 0, CDC_EINVAL (a setting
 * librdkafka refuses; err names it) or CDC_ECONN (no answer). */
int kproducer_open(struct kproducer **out, const struct kproducer_opts *o, char *err,
                   size_t errlen);

/* Queues one message tagged tag (>= every earlier tag), waiting while the
 * local queue is full.  Returns 0; CDC_EINVAL when Kafka can never take
 * this message (larger than message.max.bytes, an invalid topic name; err
 * says why, the producer stays usable); or CDC_ECONN when the producer has
 * failed (err = kproducer_failure()). */
int kproducer_send(struct kproducer *kp, const struct kproducer_msg *m, uint64_t tag, char *err,
                   size_t errlen);

/* Sends what lingers at once and serves acknowledgements until nothing is
 * outstanding, the producer fails, or timeout_ms passes.  Returns 0 (all
 * acknowledged), CDC_EAGAIN (timed out: some are still on their way) or
 * CDC_ECONN (failed). */
int kproducer_wait(struct kproducer *kp, int timeout_ms);

/* Serves acknowledgements until every message tagged tag or lower is
 * acknowledged, the producer fails, or timeout_ms passes; later messages
 * stay on their way (and in linger.ms).  Returns 0, CDC_EAGAIN or
 * CDC_ECONN as kproducer_wait does. */
int kproducer_wait_upto(struct kproducer *kp, uint64_t tag, int timeout_ms);

/* Serves whatever acknowledgements have arrived, without waiting. */
void kproducer_poll(struct kproducer *kp);

/* Tag of the oldest message not acknowledged yet, or 0 when none is
 * outstanding.  Meaningless after a failure. */
uint64_t kproducer_oldest_pending(const struct kproducer *kp);

/* Why the producer failed, or NULL while it has not. */
const char *kproducer_failure(const struct kproducer *kp);

void kproducer_stats(const struct kproducer *kp, struct kproducer_stats *st);

/* Drops whatever is not acknowledged (it may or may not reach Kafka) and
 * frees everything.  NULL is a no-op. */
void kproducer_close(struct kproducer *kp);

#endif
