/* Kafka keys: the connection and security keys shared by the platform's
 * kafka block and a kafka sink's block (whose own keys are the sink's, in
 * src/sink/kafka/), and the platform block (transport and consumer group
 * tuning).
 *
 * Property values are librdkafka's to judge: they are checked when a client
 * is built (and by `cdc validate`), not here, so this file does not need
 * librdkafka. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_kafka.h"
#include "config/cfg_keys.h"
#include "util/buf.h"
#include "util/mem.h"

const char *const cfg_kafka_security_protocol_names[4] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT",
                                                          "SASL_SSL"};
const char *const cfg_kafka_auth_mechanism_names[4] = {"none", "sasl_plain", "sasl_scram_256",
                                                       "sasl_scram_512"};
/* librdkafka's sasl.mechanisms spelling of the same, index for index. */
const char *const cfg_kafka_sasl_mechanism_names[4] = {NULL, "PLAIN", "SCRAM-SHA-256",
                                                       "SCRAM-SHA-512"};
static const char *const offset_reset_names[] = {"earliest", "latest"};
static const char *const acks_names[] = {"all", "0", "1", "-1"};

/* librdkafka properties that a key of ours sets: naming them again under
 * properties would leave two answers to one question. */
static const struct {
    const char *property, *key;
} owned_properties[] = {
    {"bootstrap.servers", "bootstrap_servers"},
    {"metadata.broker.list", "bootstrap_servers"},
    {"security.protocol", "security_protocol"},
    {"sasl.mechanism", "auth_mechanism"},
    {"sasl.mechanisms", "auth_mechanism"},
    {"sasl.username", "sasl_username"},
    {"sasl.password", "sasl_password"},
    {"ssl.ca.location", "ssl_ca_location"},
    {"ssl.certificate.location", "ssl_certificate_location"},
    {"ssl.key.location", "ssl_key_location"},
    {"ssl.key.password", "ssl_key_password"},
    {"enable.idempotence", "enable_idempotence"},
    {"acks", "acks"},
    {"request.required.acks", "acks"},
};

static int index_of(const char *const *names, size_t n, const char *v)
{
    for (size_t i = 0; v && i < n; i++)
        if (names[i] && strcmp(names[i], v) == 0)
            return (int)i;
    return -1;
}

static bool is_sasl_protocol(const char *p)
{
    return p && strncmp(p, "SASL_", 5) == 0;
}

static bool is_ssl_protocol(const char *p)
{
    return p && (strcmp(p, "SSL") == 0 || strcmp(p, "SASL_SSL") == 0);
}

static bool property_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

void cfg_kafka_client_check(struct cfg_ctx *ctx, struct kafka_client_cfg *c,
                            const struct yamltree_node *map, int line, bool platform)
{
    const char *what_platform = platform ? "kafka" : "the sink's kafka block";
    bool auth_given = yamltree_map_find(map, "auth_mechanism") != NULL;
    int auth = index_of(cfg_kafka_auth_mechanism_names, ARRAY_LEN(cfg_kafka_auth_mechanism_names),
                        c->auth_mechanism);
    if (auth < 0)
        return; /* reported by the key itself */
    if (c->sasl_mechanism) {
        int legacy = index_of(cfg_kafka_sasl_mechanism_names,
                              ARRAY_LEN(cfg_kafka_sasl_mechanism_names), c->sasl_mechanism);
        if (legacy < 0)
            return;
        if (auth_given && auth != legacy) {
            cfg_error_key(ctx, cfg_key_line(map, "sasl_mechanism", line), "sasl_mechanism",
                          "%s says auth_mechanism %s; name the method once (auth_mechanism: %s)",
                          c->sasl_mechanism, c->auth_mechanism,
                          cfg_kafka_auth_mechanism_names[legacy]);
            return;
        }
        auth = legacy;
        free(c->auth_mechanism);
        c->auth_mechanism = xstrdup(cfg_kafka_auth_mechanism_names[legacy]);
    }
    bool sasl = auth > 0;
    int pline = cfg_key_line(map, "security_protocol", line);
    const char *protocol = config_kafka_security_protocol(c);
    if (sasl && !is_sasl_protocol(protocol)) {
        cfg_error_key(ctx, pline, "security_protocol",
                      "auth_mechanism %s needs SASL_SSL or SASL_PLAINTEXT, got \"%s\"",
                      c->auth_mechanism, c->security_protocol);
    } else if (!sasl && is_sasl_protocol(protocol)) {
        cfg_error_key(ctx, pline, "security_protocol",
                      "%s needs auth_mechanism sasl_plain, sasl_scram_256 or sasl_scram_512",
                      c->security_protocol);
    }
    static const char *const creds[] = {"sasl_username", "sasl_password"};
    const char *vals[] = {c->sasl_username, c->sasl_password};
    for (size_t i = 0; i < 2; i++) {
        if (sasl && !vals[i])
            cfg_error_key(ctx, line, creds[i], "required with auth_mechanism %s",
                          c->auth_mechanism);
        else if (!sasl && vals[i])
            cfg_error_key(ctx, cfg_key_line(map, creds[i], line), creds[i],
                          "only used with a SASL auth_mechanism, and %s has none", what_platform);
    }
    static const char *const tls[] = {"ssl_ca_location", "ssl_certificate_location",
                                      "ssl_key_location", "ssl_key_password"};
    const char *tvals[] = {c->ssl_ca_location, c->ssl_certificate_location, c->ssl_key_location,
                           c->ssl_key_password};
    for (size_t i = 0; i < ARRAY_LEN(tls); i++)
        if (tvals[i] && !is_ssl_protocol(protocol))
            cfg_error_key(ctx, cfg_key_line(map, tls[i], line), tls[i],
                          "only used with security_protocol SSL or SASL_SSL, not %s", protocol);
    if ((c->ssl_certificate_location != NULL) != (c->ssl_key_location != NULL))
        cfg_error_key(
            ctx,
            cfg_key_line(map, c->ssl_key_location ? "ssl_key_location" : "ssl_certificate_location",
                         line),
            c->ssl_key_location ? "ssl_certificate_location" : "ssl_key_location",
            "a client certificate needs both ssl_certificate_location and "
            "ssl_key_location");

    size_t mark = cfg_path_push_key(&ctx->path, "properties", 10);
    for (size_t i = 0; i < c->nproperties; i++) {
        const char *name = c->properties[i].key;
        int pl = c->property_locs ? c->property_locs[i].line : c->properties_loc.line;
        if (!property_name_ok(name)) {
            cfg_error_key(ctx, pl, name, "expected a librdkafka property name such as linger.ms");
            continue;
        }
        for (size_t j = 0; j < ARRAY_LEN(owned_properties); j++) {
            const char *key = owned_properties[j].key;
            if (strcmp(owned_properties[j].property, name) != 0)
                continue;
            if (!platform && (strcmp(key, "acks") == 0 || strcmp(key, "enable_idempotence") == 0))
                cfg_error_key(ctx, pl, name,
                              "a kafka sink always produces with acks=all and idempotence (a "
                              "change counts as delivered only once every in-sync replica has "
                              "it); remove it");
            else
                cfg_error_key(ctx, pl, name, "set it with the key %s instead", key);
        }
    }
    cfg_path_pop(&ctx->path, mark);
}

const char *config_kafka_security_protocol(const struct kafka_client_cfg *c)
{
    if (c->security_protocol)
        return c->security_protocol;
    return c->auth_mechanism && strcmp(c->auth_mechanism, "none") != 0 ? "SASL_SSL" : "PLAINTEXT";
}

void config_kafka_client_describe(const struct kafka_client_cfg *c, struct buf *out)
{
    buf_printf(out, "%s %s", c->bootstrap_servers, config_kafka_security_protocol(c));
    if (strcmp(c->auth_mechanism, "none") != 0)
        buf_printf(out, " %s as %s (password %s)", c->auth_mechanism,
                   c->sasl_username ? c->sasl_username : "?", c->sasl_password ? "set" : "not set");
    if (c->ssl_ca_location)
        buf_printf(out, ", ca %s", c->ssl_ca_location);
    if (c->ssl_certificate_location)
        buf_printf(out, ", certificate %s key %s%s", c->ssl_certificate_location,
                   c->ssl_key_location ? c->ssl_key_location : "?",
                   c->ssl_key_password ? " (key password set)" : "");
    if (c->nproperties) {
        /* names only: a passed-through property may hold a secret */
        buf_puts(out, ", properties");
        for (size_t i = 0; i < c->nproperties; i++)
            buf_printf(out, "%s%s", i ? "," : " ", c->properties[i].key);
    }
}

/* ---- the platform's kafka block ---- */

static void kafka_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                        uint64_t ok)
{
    struct kafka_cfg *k = obj;
    cfg_kafka_client_check(ctx, &k->client, map, line, true);
    if (k->enable_idempotence && cfg_schema_ok(&cfg_kafka_schema, ok, "acks") &&
        strcmp(k->acks, "all") != 0 && strcmp(k->acks, "-1") != 0)
        cfg_error_key(ctx, cfg_key_line(map, "acks", line), "acks",
                      "enable_idempotence needs acks all, got \"%s\"", k->acks);
    if (k->max_poll_interval_ms < k->session_timeout_ms)
        cfg_error_key(ctx, cfg_key_line(map, "max_poll_interval_ms", line), "max_poll_interval_ms",
                      "expected a number >= session_timeout_ms (%d), got %d", k->session_timeout_ms,
                      k->max_poll_interval_ms);
}

/* Keys of the platform's kafka block that only the Kafka transport's
 * roles would read (`cdc consume` reads the connection keys, group_id and
 * auto_offset_reset; a kafka sink has its own block). */
static const char *transport_only(const struct config *cfg)
{
    if (cfg->platform.transport_mode == TRANSPORT_KAFKA)
        return NULL;
    return "only transport_mode kafka reads it; a kafka sink takes its settings from its own "
           "block";
}

static const char *one_decoder(const struct config *cfg)
{
    (void)cfg;
    return "the deliver role decodes records on its consumer's thread";
}

static const char *no_registry(const struct config *cfg)
{
    return "records are JSON: no schema registry is used";
}

#define T struct kafka_cfg
static const struct cfg_key kafka_keys[] = {
    KAFKA_CLIENT_KEYS("localhost:9092", 0),
    K_STR(T, schema_registry_url, "http://localhost:8081", .flags = CFG_NOECHO,
          .check = cfg_check_url, .inert = no_registry),
    K_STR(T, group_id, "cdc-platform"),
    K_STR(T, auto_offset_reset, "earliest", CHOICES(offset_reset_names)),
    K_BOOL(T, enable_idempotence, 1, .inert = transport_only),
    K_STR(T, acks, "all", CHOICES(acks_names), .inert = transport_only),
    K_INT(T, topic_num_partitions, 1, 1, INT32_MAX, .inert = transport_only),
    K_INT(T, topic_replication_factor, 1, 1, INT32_MAX, .inert = transport_only),
    K_INT(T, session_timeout_ms, 45000, 1, 3600000, .inert = transport_only),
    K_INT(T, max_poll_interval_ms, 300000, 1, 86400000, .inert = transport_only),
    K_INT(T, fetch_min_bytes, 1, 1, 100000000, .inert = transport_only),
    K_INT(T, fetch_max_wait_ms, 500, 0, 300000, .inert = transport_only),
    K_INT(T, poll_batch_size, 1, 1, INT32_MAX, .inert = transport_only),
    K_INT(T, deser_pool_size, 1, 1, INT32_MAX, .inert = one_decoder),
    K_FLT(T, commit_interval_seconds, 0.0, 0, .inert = transport_only),
    K_BOOL(T, schemas_enable, 0, .inert = transport_only),
    K_BOOL(T, tombstones_on_delete, 1, .inert = transport_only),
};
#undef T
const struct cfg_schema cfg_kafka_schema = {KEYS(kafka_keys), .check = kafka_check};
