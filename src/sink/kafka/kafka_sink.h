/* The kafka sink's own keys (its block's, besides the common batch_size
 * and flush_interval_seconds): sink_cfg.conf of a kafka sink. */
#ifndef CDC_SINK_KAFKA_KAFKA_SINK_H
#define CDC_SINK_KAFKA_KAFKA_SINK_H

#include <stdbool.h>

#include "sink/sink.h"

struct kafka_sink_cfg {
    struct kafka_client_cfg client; /* bootstrap_servers required */
    /* Topic name template: {topic_prefix}, {schema}, {table} and {db} are
     * replaced; default "{topic_prefix}.{schema}.{table}". */
    char *topic;
    bool schemas_enable; /* default false: wrap key and value as {"schema":…,"payload":…} */
    bool tombstones_on_delete; /* default true: a null-valued record after each delete */
    /* The capture role's sink only (no keys of the block): records carry
     * the cdc.event header, and the platform's acks and enable_idempotence
     * apply. */
    bool event_header;
    const char *acks; /* borrowed; NULL: all */
    bool no_idempotence;
};

extern const struct sink_type sink_kafka_type;
extern const struct sink_ops sink_kafka_ops; /* kafka_sink.c */

/* sc's kafka config, or NULL when sc is not a kafka sink. */
const struct kafka_sink_cfg *kafka_sink_conf(const struct sink_cfg *sc);

#endif
