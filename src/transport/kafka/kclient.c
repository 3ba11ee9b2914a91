/* Building librdkafka configurations from cdc's config, and its logging. */
#include <stdio.h>
#include <string.h>

#include "transport/kafka/kclient.h"
#include "util/err.h"
#include "util/log.h"

/* librdkafka's sasl.mechanisms for our auth_mechanism values. */
static const char *sasl_mechanism(const char *auth)
{
    if (!auth)
        return NULL;
    if (strcmp(auth, "sasl_plain") == 0)
        return "PLAIN";
    if (strcmp(auth, "sasl_scram_256") == 0)
        return "SCRAM-SHA-256";
    if (strcmp(auth, "sasl_scram_512") == 0)
        return "SCRAM-SHA-512";
    return NULL;
}

int kclient_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK)
        return cdc_fail(err, errlen, CDC_EINVAL, "%s: librdkafka: %s", name, why);
    return 0;
}

int kclient_has_property(const struct kafka_client_cfg *c, const char *name)
{
    for (size_t i = 0; i < c->nproperties; i++)
        if (strcmp(c->properties[i].key, name) == 0)
            return 1;
    return 0;
}

void kclient_scrub(const struct kclient_ctx *ctx, const char *src, char *dst, size_t n)
{
    if (n == 0)
        return;
    size_t o = 0;
    while (*src && o + 1 < n) {
        size_t hit = 0;
        for (size_t i = 0; ctx && i < 2 && !hit; i++) {
            const char *s = ctx->secrets[i];
            size_t len = s ? strlen(s) : 0;
            if (len && strncmp(src, s, len) == 0)
                hit = len;
        }
        if (hit) {
            for (const char *m = "***"; *m && o + 1 < n; m++)
                dst[o++] = *m;
            src += hit;
        } else {
            dst[o++] = *src++;
        }
    }
    dst[o] = '\0';
}

/* librdkafka logs from its own threads; log_emit is thread-safe.  Levels
 * are syslog's: 0-3 errors, 4 warnings, 5-6 information, 7 debugging. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct kclient_ctx *ctx = rd_kafka_opaque(rk);
    enum log_level lvl = level <= 3   ? LOG_ERROR
                         : level == 4 ? LOG_WARN
                         : level <= 6 ? LOG_INFO
                                      : LOG_DEBUG;
    if (!log_enabled(lvl))
        return;
    char clean[1024];
    kclient_scrub(ctx, buf, clean, sizeof clean);
    log_emit(lvl, "kafka.log", "client=%s facility=%s message=%s",
             ctx && ctx->name ? log_q(ctx->name) : "kafka", log_q(fac), log_q(clean));
}

/* The settings of c, without the properties.  Secrets go to librdkafka and
 * nowhere else. */
static int set_client(rd_kafka_conf_t *conf, const struct kafka_client_cfg *c, const char *path,
                      char *err, size_t errlen)
{
    const char *proto = config_kafka_security_protocol(c);
    const struct {
        const char *name, *value, *key;
    } settings[] = {
        {"bootstrap.servers", c->bootstrap_servers, "bootstrap_servers"},
        {"security.protocol", proto, "security_protocol"},
        {"sasl.mechanisms", sasl_mechanism(c->auth_mechanism), "auth_mechanism"},
        {"sasl.username", c->sasl_username, "sasl_username"},
        {"sasl.password", c->sasl_password, "sasl_password"},
        {"ssl.ca.location", c->ssl_ca_location, "ssl_ca_location"},
        {"ssl.certificate.location", c->ssl_certificate_location, "ssl_certificate_location"},
        {"ssl.key.location", c->ssl_key_location, "ssl_key_location"},
        {"ssl.key.password", c->ssl_key_password, "ssl_key_password"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
        if (!settings[i].value)
            continue;
        char why[512];
        if (rd_kafka_conf_set(conf, settings[i].name, settings[i].value, why, sizeof why) !=
            RD_KAFKA_CONF_OK) {
            bool secret = strstr(settings[i].key, "password") != NULL;
            /* librdkafka's reason may quote the value: not for secrets */
            return cdc_fail(err, errlen, CDC_EINVAL, "%s.%s: librdkafka refuses it%s%s", path,
                            settings[i].key, secret ? "" : ": ", secret ? "" : why);
        }
    }
    return 0;
}

static int set_properties(rd_kafka_conf_t *conf, const struct kafka_client_cfg *c, const char *path,
                          char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nproperties; i++) {
        char why[512];
        const struct kv *p = &c->properties[i];
        if (rd_kafka_conf_set(conf, p->key, p->value, why, sizeof why) == RD_KAFKA_CONF_OK)
            continue;
        const struct cfg_loc *loc = c->property_locs ? &c->property_locs[i] : &c->properties_loc;
        if (loc->file)
            return cdc_fail(err, errlen, CDC_EINVAL, "%s:%d: %s.properties.%s: librdkafka: %s",
                            loc->file, loc->line, path, p->key, why);
        return cdc_fail(err, errlen, CDC_EINVAL, "%s.properties.%s: librdkafka: %s", path, p->key,
                        why);
    }
    return 0;
}

int kclient_conf(rd_kafka_conf_t **out, const struct kafka_client_cfg *c, const char *path,
                 struct kclient_ctx *ctx, char *err, size_t errlen)
{
    *out = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (ctx) {
        ctx->secrets[0] = c->sasl_password;
        ctx->secrets[1] = c->ssl_key_password;
        rd_kafka_conf_set_opaque(conf, ctx);
        rd_kafka_conf_set_log_cb(conf, on_log);
    }
    int rc = set_client(conf, c, path, err, errlen);
    if (!rc)
        rc = set_properties(conf, c, path, err, errlen);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    *out = conf;
    return 0;
}

int kclient_check(const struct kafka_client_cfg *c, const char *path, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf;
    int rc = kclient_conf(&conf, c, path, NULL, err, errlen);
    if (!rc)
        rd_kafka_conf_destroy(conf);
    return rc;
}
