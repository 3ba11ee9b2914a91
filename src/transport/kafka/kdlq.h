/* The deliver role's dead-letter topic: a change a sink dead-letters is
 * also published to {topic}.{dlq.topic_suffix}, its source topic's
 * dead-letter topic, keyed as the source record was, the envelope as value,
 * with the reference's headers:
 *
 *   dlq.source.topic, dlq.source.partition, dlq.source.offset
 *                       where the deliver role read it
 *   dlq.error.type      the failure's class (permanent, ...)
 *   dlq.error.message   the sink's error
 *   dlq.timestamp       when it was dead-lettered (ms since the epoch)
 *   dlq.sink_id         the sink that refused it
 *
 * A dead letter counts as done only once Kafka acknowledged it (the
 * publish waits).  Thread-safe: sink threads publish concurrently. */
#ifndef CDC_TRANSPORT_KAFKA_KDLQ_H
#define CDC_TRANSPORT_KAFKA_KDLQ_H

#include <stddef.h>

#include "config/config.h"
#include "core/event.h"

struct kdlq;

/* A producer on the platform's cluster.  Borrows cfg.  0, CDC_EINVAL or
 * CDC_ECONN with err. */
int kdlq_open(struct kdlq **out, const struct config *cfg, char *err, size_t errlen);
void kdlq_close(struct kdlq *q);

/* An engine_dlq_hook (pipeline/engine.h); arg is the struct kdlq. */
int kdlq_publish(void *arg, const struct cdc_event *ev, const char *sink_id, const char *errclass,
                 const char *error, const char *key, const char *value);

#endif
