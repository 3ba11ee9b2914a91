/* The Kafka connection keys shared by the platform's kafka block
 * (cfg_kafka.c) and a kafka sink's block (src/sink/kafka/): their rows, for
 * a key table, and the rules between them. */
#ifndef CDC_CONFIG_CFG_KAFKA_H
#define CDC_CONFIG_CFG_KAFKA_H

#include <stdbool.h>

#include "config/cfg_keys.h"
#include "config/cfg_schema.h"

extern const char *const cfg_kafka_security_protocol_names[4];
extern const char *const cfg_kafka_auth_mechanism_names[4];
extern const char *const cfg_kafka_sasl_mechanism_names[4];

/* Rows for the shared keys of a struct T with a `client` member (struct
 * kafka_client_cfg): bootstrap_servers with the given default and flags,
 * then the security keys and properties. */
#define KC(f) .name = #f, .off = offsetof(T, client.f)
#define KAFKA_CLIENT_KEYS(bootstrap_default, bootstrap_flags)                                      \
    {KC(bootstrap_servers), .type = CFG_STRING, .def_str = (bootstrap_default),                    \
     .flags = (bootstrap_flags)},                                                                  \
        {KC(security_protocol), .type = CFG_STRING, .flags = CFG_NULLABLE,                         \
         CHOICES(cfg_kafka_security_protocol_names)},                                              \
        {KC(auth_mechanism), .type = CFG_STRING, .def_str = "none",                                \
         CHOICES(cfg_kafka_auth_mechanism_names)},                                                 \
        {KC(sasl_mechanism), .type = CFG_STRING, .flags = CFG_NULLABLE,                            \
         CHOICES(cfg_kafka_sasl_mechanism_names)},                                                 \
        {KC(sasl_username), .type = CFG_STRING, .flags = CFG_NULLABLE},                            \
        {KC(sasl_password), .type = CFG_STRING, .flags = CFG_SECRET | CFG_NULLABLE},               \
        {KC(ssl_ca_location), .type = CFG_STRING, .flags = CFG_NULLABLE},                          \
        {KC(ssl_certificate_location), .type = CFG_STRING, .flags = CFG_NULLABLE},                 \
        {KC(ssl_key_location), .type = CFG_STRING, .flags = CFG_NULLABLE},                         \
        {KC(ssl_key_password), .type = CFG_STRING, .flags = CFG_SECRET | CFG_NULLABLE},            \
    {                                                                                              \
        KC(properties), .type = CFG_STRMAP, .count_off = offsetof(T, client.nproperties),          \
                        .has_locs = true, .loc_off = offsetof(T, client.properties_loc),           \
                        .locs_off = offsetof(T, client.property_locs)                              \
    }

/* The rules between the connection keys of c (decoded from map, at line):
 * one authentication method named once, the credentials it needs and no
 * others, TLS files only with TLS, and properties that do not repeat a key.
 * platform: the platform's block (else a sink's, which always produces
 * with acks=all and idempotence). */
void cfg_kafka_client_check(struct cfg_ctx *ctx, struct kafka_client_cfg *c,
                            const struct yamltree_node *map, int line, bool platform);

#endif
