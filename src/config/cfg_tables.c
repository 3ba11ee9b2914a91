/* The configuration schema: one table per struct of config.h, plus the
 * cross-field rules that a single key cannot express.  What every sink has
 * is in cfg_sinks.c, a sink type's own keys in the type's folder. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg_keys.h"
#include "config/cfg_schema.h"
#include "util/mem.h"

/* ---- names ---- */

static const char *const source_type_names[] = {"postgres", "mysql", "mongodb", "sqlserver"};
static const char *const snapshot_mode_names[] = {"initial", "never", "when_needed", "no_data",
                                                  "initial_only"};
static const char *const transport_names[] = {"embedded", "kafka", "pubsub", "kinesis"};
const char *const cfg_sslmode_names[6] = {"disable", "allow",     "prefer",
                                          "require", "verify-ca", "verify-full"};
static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
static const char *const log_format_names[] = {"logfmt", "json"};

static const char *enum_name(const char *const *names, size_t n, unsigned v)
{
    return v < n && names[v] ? names[v] : "unknown";
}

const char *config_source_type_name(enum source_type t)
{
    return enum_name(source_type_names, ARRAY_LEN(source_type_names), (unsigned)t);
}

const char *config_snapshot_mode_name(enum snapshot_mode m)
{
    return enum_name(snapshot_mode_names, ARRAY_LEN(snapshot_mode_names), (unsigned)m);
}

const char *config_transport_name(enum transport_mode t)
{
    return enum_name(transport_names, ARRAY_LEN(transport_names), (unsigned)t);
}

/* ---- value checks: NULL when fine, else what was expected ---- */

const char *cfg_check_id(const char *v)
{
    if (!*v)
        return "letters, digits, \"_\", \".\" or \"-\"";
    for (const char *p = v; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return "letters, digits, \"_\", \".\" or \"-\"";
    }
    return NULL;
}

static const char *check_slot(const char *v)
{
    size_t n = strlen(v);
    const char *what = "1 to 63 characters from a-z, 0-9 and \"_\"";
    if (n < 1 || n > 63)
        return what;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return what;
    return NULL;
}

const char *cfg_check_url(const char *v)
{
    if ((strncmp(v, "http://", 7) == 0 && v[7]) || (strncmp(v, "https://", 8) == 0 && v[8]))
        return NULL;
    return "an http:// or https:// URL";
}

const char *cfg_check_table(const char *v)
{
    char *schema = NULL, *table = NULL;
    if (config_split_table(v, &schema, &table) != 0)
        return "\"schema.table\"";
    free(schema);
    free(table);
    return NULL;
}

/* ---- keys of the reference that have no effect here (cfg_key.inert) ---- */

static const char *only_mysql(const struct config *cfg)
{
    return cfg->source.source_type == SOURCE_MYSQL ? NULL : "only a mysql source uses it";
}

static const char *only_postgres(const struct config *cfg)
{
    return cfg->source.source_type == SOURCE_POSTGRES ? NULL : "only a postgres source uses it";
}

static const char *only_mongodb(const struct config *cfg)
{
    return cfg->source.source_type == SOURCE_MONGODB ? NULL : "only a mongodb source uses it";
}

static const char *no_connect(const struct config *cfg)
{
    return "cdc reads the database log itself: there is no Kafka Connect to deploy to";
}

static const char *dlq_in_store(const struct config *cfg)
{
    return "dead letters are kept in the state store, not in topics";
}

static const char *dlq_attempts(const struct config *cfg)
{
    return "retry.max_attempts decides when a change is dead-lettered";
}

static const char *dlq_durable(const struct config *cfg)
{
    return "every dead letter is stored durably at once";
}

static const char *no_registry(const struct config *cfg)
{
    return "there is no schema registry to poll";
}

static const char *lag_on_request(const struct config *cfg)
{
    return "lag is computed at every /status and /metrics request";
}

/* ---- retry ---- */

/* The backoff ceiling may not be below its start. */
static void retry_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                        uint64_t ok)
{
    const struct retry_cfg *r = obj;
    if (r->max_wait_seconds < r->initial_wait_seconds)
        cfg_error_key(ctx, cfg_key_line(map, "max_wait_seconds", line), "max_wait_seconds",
                      "expected a number >= initial_wait_seconds (%g), got %g",
                      r->initial_wait_seconds, r->max_wait_seconds);
}

#define T struct retry_cfg
static const struct cfg_key retry_keys[] = {
    K_INT(T, max_attempts, 5, 1, INT32_MAX),
    K_FLT(T, initial_wait_seconds, 1.0, 0),
    K_FLT(T, max_wait_seconds, 60.0, 0),
    K_FLT(T, multiplier, 2.0, 1),
    K_BOOL(T, jitter, 1),
};
#undef T
const struct cfg_schema cfg_retry_schema = {KEYS(retry_keys), .check = retry_check};

/* ---- source ---- */

static const struct cfg_schema source_schema;

/* One entry of source.tables split for the duplicate check. */
struct table_key {
    char *schema, *table; /* owned */
    size_t idx;
};

static int table_key_cmp(const void *a, const void *b)
{
    const struct table_key *x = a, *y = b;
    int c = strcmp(x->schema, y->schema);
    if (!c)
        c = strcmp(x->table, y->table);
    if (!c)
        c = x->idx < y->idx ? -1 : x->idx > y->idx;
    return c;
}

/* Reports each table named again (public.a and public."a" are the same),
 * pointing at the first mention.  Every entry is a valid name here. */
static void check_table_dups(struct cfg_ctx *ctx, const struct source_cfg *src)
{
    struct table_key *v = xcalloc(src->ntables, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < src->ntables; i++) {
        if (config_split_table(src->tables[i], &v[n].schema, &v[n].table) == 0)
            v[n++].idx = i;
    }
    qsort(v, n, sizeof *v, table_key_cmp);
    size_t mark = cfg_path_push_key(&ctx->path, "tables", 6);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(v[i].schema, v[first].schema) != 0 || strcmp(v[i].table, v[first].table) != 0) {
            first = i;
            continue;
        }
        size_t j = v[i].idx;
        size_t m2 = cfg_path_push_index(&ctx->path, j);
        struct buf b = BUF_INIT;
        cfg_quote(&b, src->tables[j], strlen(src->tables[j]));
        cfg_error(ctx, src->table_locs[j].line, "duplicate table %s (first listed at line %d)", b.p,
                  src->table_locs[v[first].idx].line);
        buf_fini(&b);
        cfg_path_pop(&ctx->path, m2);
    }
    cfg_path_pop(&ctx->path, mark);
    for (size_t i = 0; i < n; i++) {
        free(v[i].schema);
        free(v[i].table);
    }
    free(v);
}

/* Port default by source type; at least one table, none twice. */
static void source_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                         uint64_t ok)
{
    struct source_cfg *src = obj;
    static const int ports[] = {5432, 3306, 27017, 1433};
    if (src->port == 0) /* absent (or invalid, already reported) */
        src->port = (unsigned)src->source_type < ARRAY_LEN(ports) ? ports[src->source_type] : 5432;

    const struct yamltree_pair *tp = yamltree_map_find(map, "tables");
    if (tp && !cfg_schema_ok(&source_schema, ok, "tables"))
        return;
    if (src->ntables == 0) {
        cfg_error_key(ctx, tp ? tp->key->line : line, "tables", "at least one table is required");
        return;
    }
    check_table_dups(ctx, src);
}

#define T struct source_cfg
static const struct cfg_key source_keys[] = {
    K_ENUM(T, source_type, SOURCE_POSTGRES, source_type_names),
    K_STR(T, host, "localhost"),
    K_INT(T, port, 0, 1, PORT_MAX), /* 0 until source_check picks the type's default */
    K_STR(T, database, NULL, .flags = CFG_REQUIRED),
    K_STR(T, username, "cdc_user"),
    K_STR(T, password, "cdc_password", .flags = CFG_SECRET),
    {.name = "tables",
     .type = CFG_STRLIST,
     .off = offsetof(T, tables),
     .count_off = offsetof(T, ntables),
     .has_locs = true,
     .loc_off = offsetof(T, tables_loc),
     .locs_off = offsetof(T, table_locs),
     .check = cfg_check_table,
     .item_desc = "\"schema.table\" names"},
    K_ENUM(T, snapshot_mode, SNAPSHOT_INITIAL, snapshot_mode_names),
    K_STR(T, slot_name, "cdc_slot", .check = check_slot, .inert = only_postgres),
    K_STR(T, publication_name, "cdc_publication", .inert = only_postgres),
    /* 0: derived from pipeline_id (mysrc_server_id) */
    K_INT(T, mysql_server_id, 0, 0, INT32_MAX, .inert = only_mysql),
    K_STR(T, replica_set_name, NULL, .flags = CFG_NULLABLE, .inert = only_mongodb),
    K_STR(T, auth_source, "admin", .inert = only_mongodb),
    K_STR(T, sslmode, "prefer", CHOICES(cfg_sslmode_names), .inert = only_postgres),
    K_FLT(T, connect_timeout_seconds, 10.0, 0, .flags = CFG_GT),
    K_FLT(T, status_interval_seconds, 10.0, 0, .flags = CFG_GT, .inert = only_postgres),
    K_FLT(T, heartbeat_interval_seconds, 0.0, 0, .inert = only_postgres),
    K_INT(T, snapshot_parallelism, 2, 1, 64),
    K_I64(T, snapshot_chunk_rows, 50000, 1, INT64_MAX),
    K_STR(T, signal_table, NULL, .flags = CFG_NULLABLE, .check = cfg_check_table),
};
#undef T
static const struct cfg_schema source_schema = {KEYS(source_keys), .check = source_check};

/* ---- platform ---- */

#define T struct connector_cfg
static const struct cfg_key connector_keys[] = {
    K_STR(T, connect_url, "http://localhost:8083", .flags = CFG_NOECHO, .check = cfg_check_url,
          .inert = no_connect),
    K_FLT(T, timeout_seconds, 30.0, 0, .flags = CFG_GT, .inert = no_connect),
    K_INT(T, retry_max_attempts, 5, 1, INT32_MAX, .inert = no_connect),
    K_FLT(T, retry_wait_seconds, 2.0, 0, .inert = no_connect),
};
#undef T
static const struct cfg_schema connector_schema = {KEYS(connector_keys)};

#define T struct dlq_cfg
static const struct cfg_key dlq_keys[] = {
    K_BOOL(T, enabled, 1),
    K_STR(T, topic_suffix, "dlq", .inert = dlq_in_store),
    K_INT(T, max_retries, 3, 0, INT32_MAX, .inert = dlq_attempts),
    K_BOOL(T, include_headers, 1, .inert = dlq_in_store),
    K_FLT(T, flush_interval_seconds, 0.0, 0, .inert = dlq_durable),
};
#undef T
static const struct cfg_schema dlq_schema = {KEYS(dlq_keys)};

bool config_bind_is_loopback(const char *bind)
{
    if (!bind || !*bind)
        return true; /* the default, 127.0.0.1 */
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(bind);
    if (n >= 2 && bind[0] == '[' && bind[n - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(n - 2), bind + 1);
    else
        snprintf(host, sizeof host, "%s", bind);
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

/* Without control_token the control API answers anyone who can connect:
 * only on a loopback health_bind.  (Commands that load the config with
 * secrets optional serve nothing, and their token may just be unset.) */
static void platform_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map,
                           int line, uint64_t ok)
{
    const struct platform_cfg *pl = obj;
    if (ctx->unset_secrets || !pl->health_enabled || (pl->control_token && *pl->control_token) ||
        config_bind_is_loopback(pl->health_bind))
        return;
    cfg_error_key(ctx, cfg_key_line(map, "health_bind", line), "health_bind",
                  "%s is not a loopback address, and without control_token the control API "
                  "(pause, resume, snapshots, dead-letter replays) would answer anyone who can "
                  "reach it: set control_token, or bind health_bind to 127.0.0.1",
                  pl->health_bind);
}

#define T struct platform_cfg
static const struct cfg_key platform_keys[] = {
    K_ENUM(T, transport_mode, TRANSPORT_EMBEDDED, transport_names),
    K_OBJ(T, kafka, cfg_kafka_schema),
    K_OBJ(T, connector, connector_schema),
    K_OBJ(T, dlq, dlq_schema),
    K_OBJ(T, retry, cfg_retry_schema),
    K_INT(T, max_buffered_messages, 10000, 1, INT32_MAX),
    K_I64(T, max_buffered_bytes, INT64_C(64) << 20, 1, INT64_MAX),
    K_I64(T, max_event_bytes, 0, 0, INT64_MAX),
    K_INT(T, partitions, 0, 0, 4096),
    K_FLT(T, schema_monitor_interval_seconds, 30.0, 0, .flags = CFG_GT, .inert = no_registry),
    K_FLT(T, lag_monitor_interval_seconds, 15.0, 0, .flags = CFG_GT, .inert = lag_on_request),
    K_BOOL(T, stop_on_incompatible_schema, 0),
    K_INT(T, health_port, 8080, 0, PORT_MAX),
    K_BOOL(T, health_enabled, 1),
    K_STR(T, health_bind, "127.0.0.1"),
    K_STR(T, control_token, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_STR(T, state_dir, ".cdc-state"),
    K_STR(T, log_level, "info", CHOICES(log_level_names)),
    K_STR(T, log_format, "logfmt", CHOICES(log_format_names)),
    K_FLT(T, shutdown_timeout_seconds, 30.0, 0),
    K_NOTIMPL("pubsub", "the Google Pub/Sub transport"),
    K_NOTIMPL("kinesis", "the Amazon Kinesis transport"),
    K_NOTIMPL("wal_reader", "the direct WAL reader of the Pub/Sub and Kinesis transports"),
    K_FOREIGN("pipeline_id"),
    K_FOREIGN("topic_prefix"),
    K_FOREIGN("source"),
    K_FOREIGN("sinks"),
};
#undef T
const struct cfg_schema cfg_platform_schema = {KEYS(platform_keys), .check = platform_check,
                                               .role = "platform"};

/* ---- pipeline ---- */

/* Sinks: at least one, ids unique, at least one enabled. */
static void pipeline_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map,
                           int line, uint64_t ok)
{
    struct config *cfg = obj;
    const struct yamltree_pair *sp = yamltree_map_find(map, "sinks");
    if (!sp || !cfg_schema_ok(&cfg_pipeline_schema, ok, "sinks"))
        return;
    if (cfg->nsinks == 0) {
        cfg_error_key(ctx, sp->key->line, "sinks", "at least one sink is required");
        return;
    }
    const struct yamltree_node *items = sp->value;
    bool any_enabled = false;
    for (size_t j = 0; j < cfg->nsinks; j++) {
        const struct sink_cfg *sk = &cfg->sinks[j];
        any_enabled |= sk->enabled;
        for (size_t i = 0; sk->sink_id && i < j; i++) {
            const struct sink_cfg *first = &cfg->sinks[i];
            if (!first->sink_id || strcmp(first->sink_id, sk->sink_id) != 0)
                continue;
            size_t mark = cfg_path_push_key(&ctx->path, "sinks", 5);
            cfg_path_push_index(&ctx->path, j);
            struct buf b = BUF_INIT;
            cfg_quote(&b, sk->sink_id, strlen(sk->sink_id));
            cfg_error_key(ctx, cfg_key_line(items->items[j], "sink_id", sk->loc.line), "sink_id",
                          "duplicate sink_id %s (first defined at line %d)", b.p,
                          cfg_key_line(items->items[i], "sink_id", first->loc.line));
            buf_fini(&b);
            cfg_path_pop(&ctx->path, mark);
            break;
        }
    }
    if (!any_enabled)
        cfg_error_key(ctx, sp->key->line, "sinks", "at least one sink must be enabled");
}

#define T struct config
static const struct cfg_key pipeline_keys[] = {
    K_STR(T, pipeline_id, NULL, .flags = CFG_REQUIRED, .check = cfg_check_id),
    K_STR(T, topic_prefix, "cdc"),
    {.name = "source",
     .type = CFG_OBJECT,
     .flags = CFG_REQUIRED,
     .off = offsetof(T, source),
     .sub = &source_schema},
    K_OBJLIST(T, sinks, nsinks, cfg_sink_schema, .flags = CFG_REQUIRED),
    K_FOREIGN("transport_mode"),
    K_FOREIGN("kafka"),
    K_FOREIGN("connector"),
    K_FOREIGN("dlq"),
    K_FOREIGN("retry"),
    K_FOREIGN("max_buffered_messages"),
    K_FOREIGN("max_buffered_bytes"),
    K_FOREIGN("max_event_bytes"),
    K_FOREIGN("partitions"),
    K_FOREIGN("schema_monitor_interval_seconds"),
    K_FOREIGN("lag_monitor_interval_seconds"),
    K_FOREIGN("stop_on_incompatible_schema"),
    K_FOREIGN("health_port"),
    K_FOREIGN("health_enabled"),
    K_FOREIGN("health_bind"),
    K_FOREIGN("control_token"),
    K_FOREIGN("state_dir"),
    K_FOREIGN("log_level"),
    K_FOREIGN("log_format"),
    K_FOREIGN("shutdown_timeout_seconds"),
    K_FOREIGN("pubsub"),
    K_FOREIGN("kinesis"),
    K_FOREIGN("wal_reader"),
};
#undef T
const struct cfg_schema cfg_pipeline_schema = {KEYS(pipeline_keys), .check = pipeline_check,
                                               .role = "pipeline"};
