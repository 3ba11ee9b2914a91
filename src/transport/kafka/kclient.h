/* What every Kafka client of cdc shares (the producer of the kafka sink and
 * of the capture role, the consumer of `cdc consume` and of the deliver
 * role): a librdkafka configuration built from a kafka_client_cfg, and
 * librdkafka's log lines routed into cdc's log with secrets scrubbed.
 *
 * Properties are librdkafka's to judge: a name or value it refuses is a
 * configuration error naming the file, line and property. */
#ifndef CDC_TRANSPORT_KAFKA_KCLIENT_H
#define CDC_TRANSPORT_KAFKA_KCLIENT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"

/* The first member of every client's opaque state (rd_kafka_opaque), so
 * the log callback can name the client and scrub its secrets. */
struct kclient_ctx {
    const char *name;       /* for log lines: a sink id, "consume", ... */
    const char *secrets[2]; /* borrowed: sasl_password, ssl_key_password (or NULL) */
};

/* Builds a configuration for c: connection and security settings, cdc's
 * logging (ctx becomes the opaque; it must outlive the client), then the
 * properties passed through.  path names the block in messages ("kafka",
 * "sinks[0].kafka").  Returns 0 with *out owned by the caller (rd_kafka_new
 * takes it), or CDC_EINVAL with err naming the refused setting, e.g.
 * "pipeline.yaml:14: sinks[0].kafka.properties.linger.ms: librdkafka: ...". */
int kclient_conf(rd_kafka_conf_t **out, const struct kafka_client_cfg *c, const char *path,
                 struct kclient_ctx *ctx, char *err, size_t errlen);

/* Sets one property that cdc itself chooses; CDC_EINVAL with librdkafka's
 * reason if refused. */
int kclient_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                size_t errlen);

/* Whether the user's properties set name (then cdc leaves it alone). */
int kclient_has_property(const struct kafka_client_cfg *c, const char *name);

/* Checks c the way kclient_conf does, without building a client: for `cdc
 * validate`.  0, or CDC_EINVAL with err as above. */
int kclient_check(const struct kafka_client_cfg *c, const char *path, char *err, size_t errlen);

/* Copies src into dst (size n) with every secret of ctx replaced by "***". */
void kclient_scrub(const struct kclient_ctx *ctx, const char *src, char *dst, size_t n);

#endif
