/* The kafka sink type: its block's keys (the connection keys it shares
 * with the platform's kafka block, config/cfg_kafka.h, and its own), the
 * summary `cdc validate` prints, librdkafka's check of the properties, and
 * how the engine drives it (serial: the flush waits for acknowledgements). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/cfg_kafka.h"
#include "sink/kafka/kafka_sink.h"
#include "transport/kafka/kclient.h"

static const char *const topic_fields[] = {"topic_prefix", "schema", "table", "db"};

/* A template uses only the known placeholders and has text besides them. */
static const char *check_topic(const char *v)
{
    const char *what = "a topic name template using {topic_prefix}, {schema}, {table} and {db}";
    if (!*v)
        return what;
    for (const char *p = v; *p; p++) {
        if (*p == '}')
            return what;
        if (*p != '{')
            continue;
        const char *end = strchr(p, '}');
        if (!end)
            return what;
        bool known = false;
        for (size_t i = 0; i < ARRAY_LEN(topic_fields); i++)
            known |= strlen(topic_fields[i]) == (size_t)(end - p - 1) &&
                     memcmp(topic_fields[i], p + 1, (size_t)(end - p - 1)) == 0;
        if (!known)
            return what;
        p = end;
    }
    return NULL;
}

static void kafka_sink_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map,
                             int line, uint64_t ok)
{
    struct kafka_sink_cfg *k = obj;
    cfg_kafka_client_check(ctx, &k->client, map, line, false);
}

#define T struct kafka_sink_cfg
static const struct cfg_key kafka_sink_keys[] = {
    KAFKA_CLIENT_KEYS(NULL, CFG_REQUIRED),
    K_STR(T, topic, "{topic_prefix}.{schema}.{table}", .check = check_topic),
    K_BOOL(T, schemas_enable, 0),
    K_BOOL(T, tombstones_on_delete, 1),
};
#undef T
static const struct cfg_schema kafka_sink_schema = {KEYS(kafka_sink_keys),
                                                    .check = kafka_sink_check};

/* "{topic template} -> brokers PROTOCOL ...", secrets only as "set". */
static void kafka_describe(const struct sink_cfg *sc, struct buf *out)
{
    const struct kafka_sink_cfg *kc = sc->conf;
    buf_printf(out, " %s -> ", kc->topic);
    config_kafka_client_describe(&kc->client, out);
    buf_printf(out, ", schemas_enable %s, tombstones_on_delete %s",
               kc->schemas_enable ? "true" : "false", kc->tombstones_on_delete ? "true" : "false");
}

/* librdkafka judges the properties: a refused one is a config error. */
static int kafka_check(const struct sink_cfg *sc, const char *path, char *err, size_t errlen)
{
    const struct kafka_sink_cfg *kc = sc->conf;
    return kclient_check(&kc->client, path, err, errlen);
}

const struct sink_type sink_kafka_type = {
    .name = "kafka",
    .description = "keyed records on a topic per table, produced idempotently with acks=all",
    .ops = &sink_kafka_ops,
    .schema = &kafka_sink_schema,
    .conf_size = sizeof(struct kafka_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 10000,
    .flush_interval_seconds = 0.2,
    .ordering = ORDER_KEY,
    .at_least_once = true,
    .flush = SINK_FLUSH_ON_CATCH_UP,
    .describe = kafka_describe,
    .check = kafka_check,
};

const struct kafka_sink_cfg *kafka_sink_conf(const struct sink_cfg *sc)
{
    return sc->type == &sink_kafka_type ? sc->conf : NULL;
}
