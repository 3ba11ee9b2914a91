/* The topics the Kafka transport needs, and `cdc deploy` creating them:
 * {topic_prefix}.{schema}.{table} for every source table (the capture
 * role's), and {topic}.{dlq.topic_suffix} for each of them when dead
 * letters are enabled (the deliver role's), each with the platform's
 * kafka.topic_num_partitions and kafka.topic_replication_factor. */
#ifndef CDC_TRANSPORT_KAFKA_KTOPICS_H
#define CDC_TRANSPORT_KAFKA_KTOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

enum ktopic_state {
    KTOPIC_UNKNOWN, /* not asked yet */
    KTOPIC_CREATED,
    KTOPIC_EXISTS,
    KTOPIC_REFUSED, /* error says why */
};

struct ktopic {
    char *name;
    bool dlq; /* a dead-letter topic */
    enum ktopic_state state;
    char error[256];
};

struct ktopics {
    struct ktopic *v;
    size_t n;
};

/* The topics of cfg's transport, in source table order (each table's
 * dead-letter topic after all the capture topics), without duplicates. */
void ktopics_list(const struct config *cfg, struct ktopics *out);
void ktopics_fini(struct ktopics *t);

/* Creates on the platform's cluster the topics of t that do not exist yet
 * (CreateTopics through librdkafka's admin API) and prints one line per
 * topic on out: created, or already there.  Sets every topic's state.
 * Returns 0 (all created or there), CDC_ERR when the cluster refused some
 * (their state and error say why; nothing printed for them), CDC_ECONN when
 * it did not answer, CDC_EINVAL for a client setting librdkafka refuses;
 * err says why (secrets scrubbed). */
int ktopics_create(const struct config *cfg, struct ktopics *t, FILE *out, char *err,
                   size_t errlen);

#endif
