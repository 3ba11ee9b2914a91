/* Unit tests for the configuration loader: valid files, defaults, ${VAR}
 * substitution and the exact text of each kind of error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "sink/file/file_sink.h"
#include "sink/iceberg/iceberg_sink.h"
#include "sink/kafka/kafka_sink.h"
#include "sink/postgres/pg_config.h"
#include "sink/registry.h"
#include "sink/webhook/webhook.h"
#include "util/err.h"

/* A sink's own config, as its type's struct. */
#define FILE_OF(s)    ((const struct file_sink_cfg *)(s)->conf)
#define PG_OF(s)      ((const struct pg_sink_cfg *)(s)->conf)
#define WEBHOOK_OF(s) ((const struct webhook_sink_cfg *)(s)->conf)
#define ICEBERG_OF(s) ((const struct iceberg_sink_cfg *)(s)->conf)
#define KAFKA_OF(s)   ((const struct kafka_sink_cfg *)(s)->conf)

/* The fixture directory, next to this file. */
static char *data_path(const char *name)
{
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    size_t dir = slash ? (size_t)(slash - here) + 1 : 0;
    size_t n = dir + strlen("data/config/") + strlen(name) + 1;
    char *p = malloc(n);
    snprintf(p, n, "%.*sdata/config/%s", (int)dir, here, name);
    return p;
}

/* A valid pipeline, each part on known lines:
 *   1 pipeline_id   2-4 source   5-9 sinks[0] (file) */
#define P_ID   "pipeline_id: p1\n"
#define P_SRC  "source:\n  database: db\n  tables: [public.t]\n"
#define P_SINK "sinks:\n  - sink_id: s1\n    sink_type: file\n    file:\n      path: out.jsonl\n"
#define P_OK   P_ID P_SRC P_SINK

static struct config *load(const char *pipe, const char *plat, struct cfg_errors *errs)
{
    struct config *cfg = NULL;
    int rc = config_load_text(&cfg, "pipeline.yaml", pipe, strlen(pipe), "platform.yaml", plat,
                              plat ? strlen(plat) : 0, errs);
    if (rc == 0) {
        assert_non_null(cfg);
        assert_int_equal(errs->n, 0);
    } else {
        assert_int_equal(rc, CDC_EINVAL);
        assert_null(cfg);
        assert_true(errs->n > 0);
    }
    return cfg;
}

static struct config *load_ok(const char *pipe, const char *plat)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(pipe, plat, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("unexpected: %s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_non_null(cfg);
    return cfg;
}

/* Loading fails with exactly the given error lines (NULL-terminated). */
static void expect_errors(const char *pipe, const char *plat, ...)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(pipe, plat, &errs);
    config_free(cfg);
    va_list ap;
    va_start(ap, plat);
    size_t i = 0;
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        if (i >= errs.n || strcmp(errs.msgs[i], want) != 0) {
            for (size_t j = 0; j < errs.n; j++)
                print_error("got:  %s\n", errs.msgs[j]);
            print_error("want: %s\n", want);
            va_end(ap);
            cfg_errors_fini(&errs);
            fail();
        }
    }
    va_end(ap);
    if (i != errs.n) {
        for (size_t j = 0; j < errs.n; j++)
            print_error("got: %s\n", errs.msgs[j]);
        cfg_errors_fini(&errs);
        fail_msg("expected %zu errors", i);
    }
    cfg_errors_fini(&errs);
}

#define EXPECT1(pipe, plat, msg) expect_errors(pipe, plat, msg, (const char *)NULL)

/* ---- valid configurations ---- */

static void test_full_files(void **state)
{
    (void)state;
    char *pp = data_path("pipeline.yaml"), *pl = data_path("platform.yaml");
    unsetenv("CDC_TEST_PGHOST");
    setenv("CDC_TEST_PGPASSWORD", "from-env", 1);
    unsetenv("CDC_TEST_CONTROL_TOKEN");
    struct config *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = config_load(&cfg, pp, pl, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("%s\n", errs.msgs[i]);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);

    assert_string_equal(cfg->pipeline_file, pp);
    assert_string_equal(cfg->platform_file, pl);
    assert_string_equal(cfg->pipeline_id, "orders-v2");
    assert_string_equal(cfg->topic_prefix, "shop");

    const struct source_cfg *s = &cfg->source;
    assert_int_equal(s->source_type, SOURCE_POSTGRES);
    assert_string_equal(s->host, "db.internal");
    assert_int_equal(s->port, 6543);
    assert_string_equal(s->database, "shop");
    assert_string_equal(s->username, "replicator");
    assert_string_equal(s->password, "from-env");
    assert_int_equal(s->ntables, 3);
    assert_string_equal(s->tables[0], "public.customers");
    assert_string_equal(s->tables[1], "public.\"Order Items\"");
    assert_string_equal(s->tables[2], "sales.orders");
    assert_ptr_equal(s->tables_loc.file, cfg->pipeline_file);
    assert_int_equal(s->tables_loc.line, 12);
    assert_int_equal(s->table_locs[0].line, 13);
    assert_int_equal(s->table_locs[2].line, 15);
    assert_ptr_equal(s->table_locs[1].file, cfg->pipeline_file);
    assert_int_equal(s->snapshot_mode, SNAPSHOT_WHEN_NEEDED);
    assert_string_equal(s->slot_name, "orders_slot");
    assert_string_equal(s->publication_name, "orders_pub");
    assert_string_equal(s->sslmode, "require");
    assert_true(s->connect_timeout_seconds == 5.0);
    assert_true(s->status_interval_seconds == 2.5);
    assert_true(s->heartbeat_interval_seconds == 60.0);
    assert_int_equal(s->snapshot_parallelism, 4);
    assert_int_equal(s->snapshot_chunk_rows, 100000);
    assert_string_equal(s->signal_table, "public.cdc_signals");
    assert_null(s->replica_set_name);

    assert_int_equal(cfg->nsinks, 5);
    const struct sink_cfg *f = &cfg->sinks[0];
    assert_string_equal(f->sink_id, "events-file");
    assert_ptr_equal(f->type, sink_type_find("file"));
    assert_true(f->enabled);
    assert_int_equal(f->ordering, ORDER_TRANSACTION);
    assert_int_equal(f->loc.line, 28);
    assert_ptr_equal(f->loc.file, cfg->pipeline_file);
    assert_string_equal(FILE_OF(f)->path, "/var/lib/cdc/events.jsonl");
    assert_false(FILE_OF(f)->fsync);
    assert_int_equal(f->batch_size, 500);
    assert_true(f->flush_interval_seconds == 1.0);
    assert_false(f->has_retry);
    assert_int_equal(f->retry.max_attempts, 3); /* the platform's */
    assert_true(f->retry.max_wait_seconds == 20.0);
    assert_false(f->retry.jitter);

    const struct sink_cfg *pg = &cfg->sinks[1];
    assert_ptr_equal(pg->type, sink_type_find("postgres"));
    assert_true(pg->enabled);
    assert_int_equal(pg->ordering, ORDER_DEFAULT);
    assert_string_equal(PG_OF(pg)->host, "replica.internal");
    assert_int_equal(PG_OF(pg)->port, 5433);
    assert_string_equal(PG_OF(pg)->database, "analytics");
    assert_string_equal(PG_OF(pg)->password, "pw");
    assert_int_equal(PG_OF(pg)->mode, PG_SINK_REPLICA);
    assert_string_equal(PG_OF(pg)->target_schema, "mirror");
    assert_string_equal(PG_OF(pg)->target_table, "public.cdc_events");
    assert_int_equal(pg->batch_size, 200);
    assert_false(PG_OF(pg)->upsert);
    assert_false(PG_OF(pg)->drop_columns);
    assert_int_equal(PG_OF(pg)->dead_letter_scope, PG_DL_ROW);
    assert_true(pg->has_retry);
    assert_int_equal(pg->retry.max_attempts, 10);       /* the sink's */
    assert_true(pg->retry.multiplier == 1.5);           /* the sink's */
    assert_true(pg->retry.initial_wait_seconds == 0.5); /* the platform's */
    assert_false(pg->retry.jitter);                     /* the platform's */

    const struct sink_cfg *wh = &cfg->sinks[2];
    assert_ptr_equal(wh->type, sink_type_find("webhook"));
    assert_false(wh->enabled);
    assert_string_equal(WEBHOOK_OF(wh)->url, "https://hooks.example.com/cdc");
    assert_string_equal(WEBHOOK_OF(wh)->method, "PUT");
    assert_int_equal(WEBHOOK_OF(wh)->nheaders, 2);
    assert_string_equal(WEBHOOK_OF(wh)->headers[0].key, "X-Source");
    assert_string_equal(WEBHOOK_OF(wh)->headers[0].value, "cdc");
    assert_string_equal(WEBHOOK_OF(wh)->headers[1].key, "X-Team");
    assert_string_equal(WEBHOOK_OF(wh)->auth_token, "tok");
    assert_string_equal(WEBHOOK_OF(wh)->signing_secret, "sig");
    assert_int_equal(wh->batch_size, 50);
    assert_int_equal(WEBHOOK_OF(wh)->max_in_flight, 2);
    assert_true(WEBHOOK_OF(wh)->timeout_seconds == 3.0);

    const struct sink_cfg *ice = &cfg->sinks[3];
    assert_ptr_equal(ice->type, sink_type_find("iceberg"));
    assert_string_equal(ICEBERG_OF(ice)->catalog_uri, "sqlite:////tmp/cdc_catalog.db");
    assert_string_equal(ICEBERG_OF(ice)->warehouse, "file:///tmp/cdc_warehouse");
    assert_string_equal(ICEBERG_OF(ice)->table_name, "customers_cdc");
    assert_int_equal(ICEBERG_OF(ice)->write_mode, ICEBERG_UPSERT);
    assert_string_equal(ICEBERG_OF(ice)->table_namespace, "default");
    assert_int_equal(ICEBERG_OF(ice)->compression, ICEBERG_ZSTD);
    assert_false(ICEBERG_OF(ice)->maintenance.enabled);
    assert_int_equal(ICEBERG_OF(ice)->maintenance.compaction_file_threshold, 10);
    assert_int_equal(ice->batch_size, 500);
    assert_false(ICEBERG_OF(ice)->auto_create_table);

    const struct sink_cfg *ks = &cfg->sinks[4];
    assert_ptr_equal(ks->type, sink_type_find("kafka"));
    assert_string_equal(KAFKA_OF(ks)->client.bootstrap_servers, "k1:9092,k2:9092");
    assert_string_equal(KAFKA_OF(ks)->topic, "{topic_prefix}.{db}.{schema}_{table}");
    assert_string_equal(KAFKA_OF(ks)->client.security_protocol, "SSL");
    assert_string_equal(KAFKA_OF(ks)->client.auth_mechanism, "none");
    assert_string_equal(KAFKA_OF(ks)->client.ssl_ca_location, "/etc/cdc/ca.pem");
    assert_string_equal(KAFKA_OF(ks)->client.ssl_certificate_location, "/etc/cdc/client.pem");
    assert_string_equal(KAFKA_OF(ks)->client.ssl_key_location, "/etc/cdc/client.key");
    assert_string_equal(KAFKA_OF(ks)->client.ssl_key_password, "keypw");
    assert_true(KAFKA_OF(ks)->schemas_enable);
    assert_false(KAFKA_OF(ks)->tombstones_on_delete);
    assert_int_equal(KAFKA_OF(ks)->client.nproperties, 2);
    assert_string_equal(KAFKA_OF(ks)->client.properties[0].key, "linger.ms");
    assert_string_equal(KAFKA_OF(ks)->client.properties[0].value, "20");
    assert_string_equal(KAFKA_OF(ks)->client.properties[1].key, "compression.type");
    assert_int_equal(KAFKA_OF(ks)->client.properties_loc.line, 95);
    assert_int_equal(KAFKA_OF(ks)->client.property_locs[0].line, 96);
    assert_int_equal(KAFKA_OF(ks)->client.property_locs[1].line, 97);

    const struct platform_cfg *p = &cfg->platform;
    assert_int_equal(p->transport_mode, TRANSPORT_KAFKA);
    assert_string_equal(p->kafka.client.bootstrap_servers, "kafka-prod:9092");
    assert_string_equal(p->kafka.schema_registry_url, "http://registry-prod:8081");
    assert_string_equal(p->kafka.group_id, "cdc-prod");
    assert_string_equal(p->kafka.auto_offset_reset, "latest");
    assert_false(p->kafka.enable_idempotence);
    assert_string_equal(p->kafka.acks, "1");
    assert_int_equal(p->kafka.topic_num_partitions, 6);
    assert_int_equal(p->kafka.topic_replication_factor, 3);
    assert_int_equal(p->kafka.poll_batch_size, 100);
    assert_int_equal(p->kafka.deser_pool_size, 4);
    assert_true(p->kafka.commit_interval_seconds == 0.5);
    assert_int_equal(p->kafka.session_timeout_ms, 10000);
    assert_int_equal(p->kafka.max_poll_interval_ms, 60000);
    assert_int_equal(p->kafka.fetch_min_bytes, 1024);
    assert_int_equal(p->kafka.fetch_max_wait_ms, 100);
    assert_true(p->kafka.schemas_enable);
    assert_false(p->kafka.tombstones_on_delete);
    assert_string_equal(p->kafka.client.security_protocol, "SASL_SSL");
    assert_string_equal(p->kafka.client.sasl_mechanism, "SCRAM-SHA-512");
    assert_string_equal(p->kafka.client.auth_mechanism, "sasl_scram_512");
    assert_string_equal(p->kafka.client.sasl_username, "cdc");
    assert_string_equal(p->kafka.client.sasl_password, "kpw");
    assert_string_equal(p->kafka.client.ssl_ca_location, "/etc/kafka/ca.pem");
    assert_int_equal(p->kafka.client.nproperties, 2);
    assert_string_equal(p->kafka.client.properties[1].key, "socket.keepalive.enable");
    assert_string_equal(p->kafka.client.properties[1].value, "true");
    assert_string_equal(p->connector.connect_url, "http://connect-prod:8083");
    assert_true(p->connector.timeout_seconds == 45.0);
    assert_int_equal(p->connector.retry_max_attempts, 7);
    assert_true(p->connector.retry_wait_seconds == 3.0);
    assert_false(p->dlq.enabled);
    assert_string_equal(p->dlq.topic_suffix, "dead");
    assert_int_equal(p->dlq.max_retries, 0);
    assert_false(p->dlq.include_headers);
    assert_true(p->dlq.flush_interval_seconds == 1.0);
    assert_int_equal(p->retry.max_attempts, 3);
    assert_true(p->retry.multiplier == 3.0);
    assert_int_equal(p->max_buffered_messages, 5000);
    assert_int_equal(p->max_buffered_bytes, INT64_C(1073741824));
    assert_int_equal(p->partitions, 16);
    assert_true(p->schema_monitor_interval_seconds == 60.0);
    assert_true(p->lag_monitor_interval_seconds == 30.0);
    assert_true(p->stop_on_incompatible_schema);
    assert_int_equal(p->health_port, 9090);
    assert_false(p->health_enabled);
    assert_string_equal(p->health_bind, "0.0.0.0");
    assert_string_equal(p->control_token, "ctl");
    assert_string_equal(p->state_dir, "/var/lib/cdc/state");
    assert_string_equal(p->log_level, "debug");
    assert_string_equal(p->log_format, "json");
    assert_true(p->shutdown_timeout_seconds == 10.0);

    config_free(cfg);
    cfg_errors_fini(&errs);
    unsetenv("CDC_TEST_PGPASSWORD");
    free(pp);
    free(pl);
}

static void test_defaults(void **state)
{
    (void)state;
    char *pp = data_path("minimal.yaml");
    struct config *cfg = NULL;
    struct cfg_errors errs = {0};
    assert_int_equal(config_load(&cfg, pp, NULL, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_null(cfg->platform_file);
    assert_string_equal(cfg->topic_prefix, "cdc");

    const struct source_cfg *s = &cfg->source;
    assert_int_equal(s->source_type, SOURCE_POSTGRES);
    assert_string_equal(s->host, "localhost");
    assert_int_equal(s->port, 5432);
    assert_string_equal(s->username, "cdc_user");
    assert_string_equal(s->password, "cdc_password");
    assert_int_equal(s->snapshot_mode, SNAPSHOT_INITIAL);
    assert_string_equal(s->slot_name, "cdc_slot");
    assert_string_equal(s->publication_name, "cdc_publication");
    assert_int_equal(s->mysql_server_id, 1);
    assert_null(s->replica_set_name);
    assert_string_equal(s->auth_source, "admin");
    assert_string_equal(s->sslmode, "prefer");
    assert_true(s->connect_timeout_seconds == 10.0);
    assert_true(s->status_interval_seconds == 10.0);
    assert_true(s->heartbeat_interval_seconds == 0.0);
    assert_int_equal(s->snapshot_parallelism, 2);
    assert_int_equal(s->snapshot_chunk_rows, 50000);
    assert_null(s->signal_table);

    const struct sink_cfg *sk = &cfg->sinks[0];
    assert_true(sk->enabled);
    assert_int_equal(sk->ordering, ORDER_DEFAULT);
    assert_false(sk->has_retry);
    assert_int_equal(sk->retry.max_attempts, 5);
    assert_true(sk->retry.initial_wait_seconds == 1.0);
    assert_true(sk->retry.max_wait_seconds == 60.0);
    assert_true(sk->retry.multiplier == 2.0);
    assert_true(sk->retry.jitter);
    assert_true(FILE_OF(sk)->fsync);
    assert_int_equal(sk->batch_size, 10000);
    assert_true(sk->flush_interval_seconds == 0.2);

    const struct platform_cfg *p = &cfg->platform;
    assert_int_equal(p->transport_mode, TRANSPORT_EMBEDDED);
    assert_string_equal(p->kafka.client.bootstrap_servers, "localhost:9092");
    assert_string_equal(p->kafka.schema_registry_url, "http://localhost:8081");
    assert_string_equal(p->kafka.group_id, "cdc-platform");
    assert_string_equal(p->kafka.auto_offset_reset, "earliest");
    assert_true(p->kafka.enable_idempotence);
    assert_string_equal(p->kafka.acks, "all");
    assert_int_equal(p->kafka.topic_num_partitions, 1);
    assert_null(p->kafka.client.security_protocol);
    assert_string_equal(config_kafka_security_protocol(&p->kafka.client), "PLAINTEXT");
    assert_string_equal(p->kafka.client.auth_mechanism, "none");
    assert_null(p->kafka.client.sasl_password);
    assert_int_equal(p->kafka.client.nproperties, 0);
    assert_int_equal(p->kafka.session_timeout_ms, 45000);
    assert_int_equal(p->kafka.max_poll_interval_ms, 300000);
    assert_int_equal(p->kafka.fetch_min_bytes, 1);
    assert_int_equal(p->kafka.fetch_max_wait_ms, 500);
    assert_false(p->kafka.schemas_enable);
    assert_true(p->kafka.tombstones_on_delete);
    assert_string_equal(p->connector.connect_url, "http://localhost:8083");
    assert_true(p->connector.timeout_seconds == 30.0);
    assert_int_equal(p->connector.retry_max_attempts, 5);
    assert_true(p->connector.retry_wait_seconds == 2.0);
    assert_true(p->dlq.enabled);
    assert_string_equal(p->dlq.topic_suffix, "dlq");
    assert_int_equal(p->dlq.max_retries, 3);
    assert_true(p->dlq.include_headers);
    assert_true(p->dlq.flush_interval_seconds == 0.0);
    assert_int_equal(p->max_buffered_messages, 10000);
    assert_int_equal(p->max_buffered_bytes, INT64_C(64) << 20);
    assert_int_equal(p->max_event_bytes, 0);
    assert_int_equal(p->partitions, 0);
    assert_true(p->schema_monitor_interval_seconds == 30.0);
    assert_true(p->lag_monitor_interval_seconds == 15.0);
    assert_false(p->stop_on_incompatible_schema);
    assert_int_equal(p->health_port, 8080);
    assert_true(p->health_enabled);
    assert_string_equal(p->health_bind, "127.0.0.1");
    assert_null(p->control_token);
    assert_string_equal(p->state_dir, ".cdc-state");
    assert_string_equal(p->log_level, "info");
    assert_string_equal(p->log_format, "logfmt");
    assert_true(p->shutdown_timeout_seconds == 30.0);
    config_free(cfg);
    free(pp);
}

static void test_sink_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok(P_ID P_SRC "sinks:\n"
                                            "  - sink_id: pg\n"
                                            "    sink_type: postgres\n"
                                            "    postgres: {database: a}\n"
                                            "  - sink_id: wh\n"
                                            "    sink_type: webhook\n"
                                            "    webhook: {url: 'http://x/'}\n"
                                            "  - sink_id: k\n"
                                            "    sink_type: kafka\n"
                                            "    kafka: {bootstrap_servers: 'h:9092'}\n",
                                 NULL);
    const struct pg_sink_cfg *pg = PG_OF(&cfg->sinks[0]);
    assert_string_equal(pg->host, "localhost");
    assert_int_equal(pg->port, 5432);
    assert_string_equal(pg->username, "postgres");
    assert_null(pg->password);
    assert_string_equal(pg->sslmode, "prefer");
    assert_int_equal(pg->mode, PG_SINK_EVENTS);
    assert_string_equal(pg->target_table, "public.cdc_events");
    assert_null(pg->target_schema);
    assert_string_equal(pg->checkpoint_table, "public.cdc_checkpoints");
    assert_int_equal(cfg->sinks[0].batch_size, 1000);
    assert_true(pg->upsert);
    assert_true(pg->create_tables);
    assert_true(pg->drop_columns);
    assert_int_equal(pg->dead_letter_scope, PG_DL_TRANSACTION);
    const struct webhook_sink_cfg *wh = WEBHOOK_OF(&cfg->sinks[1]);
    assert_string_equal(wh->method, "POST");
    assert_int_equal(wh->nheaders, 0);
    assert_true(wh->timeout_seconds == 10.0);
    assert_null(wh->auth_token);
    assert_null(wh->signing_secret);
    assert_int_equal(cfg->sinks[1].batch_size, 1);
    assert_int_equal(wh->max_in_flight, 8);
    const struct kafka_sink_cfg *k = KAFKA_OF(&cfg->sinks[2]);
    assert_ptr_equal(cfg->sinks[2].type, sink_type_find("kafka"));
    assert_string_equal(k->client.bootstrap_servers, "h:9092");
    assert_string_equal(k->topic, "{topic_prefix}.{schema}.{table}");
    assert_string_equal(config_kafka_security_protocol(&k->client), "PLAINTEXT");
    assert_string_equal(k->client.auth_mechanism, "none");
    assert_null(k->client.sasl_username);
    assert_null(k->client.ssl_ca_location);
    assert_int_equal(k->client.nproperties, 0);
    assert_false(k->schemas_enable);
    assert_true(k->tombstones_on_delete);
    config_free(cfg);
}

static void test_default_port_per_source_type(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int port;
    } cases[] = {{"postgres", 5432}, {"mysql", 3306}, {"mongodb", 27017}, {"sqlserver", 1433}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 P_ID "source:\n  source_type: %s\n  database: d\n"
                      "  tables: [a.b]\n" P_SINK,
                 cases[i].type);
        struct config *cfg = load_ok(text, NULL);
        assert_int_equal(cfg->source.port, cases[i].port);
        config_free(cfg);
    }
    struct config *cfg = load_ok(P_ID "source:\n  source_type: mysql\n  port: 3307\n"
                                      "  database: d\n  tables: [a.b]\n" P_SINK,
                                 NULL);
    assert_int_equal(cfg->source.port, 3307);
    config_free(cfg);
}

static void test_lax_scalars(void **state)
{
    (void)state;
    struct config *cfg = load_ok(P_ID P_SRC P_SINK, "health_port: '9000'\n"
                                                    "health_enabled: OFF\n"
                                                    "stop_on_incompatible_schema: Yes\n"
                                                    "dlq: {enabled: 0, include_headers: 1}\n"
                                                    "shutdown_timeout_seconds: 5\n"
                                                    "lag_monitor_interval_seconds: \"2.5e1\"\n"
                                                    "max_buffered_bytes: 9007199254740993\n");
    assert_int_equal(cfg->platform.health_port, 9000);
    assert_false(cfg->platform.health_enabled);
    assert_true(cfg->platform.stop_on_incompatible_schema);
    assert_false(cfg->platform.dlq.enabled);
    assert_true(cfg->platform.dlq.include_headers);
    assert_true(cfg->platform.shutdown_timeout_seconds == 5.0);
    assert_true(cfg->platform.lag_monitor_interval_seconds == 25.0);
    assert_int_equal(cfg->platform.max_buffered_bytes, INT64_C(9007199254740993));
    config_free(cfg);
}

static void test_null_values(void **state)
{
    (void)state;
    /* null keeps a default, and clears an "or NULL" string */
    struct config *cfg = load_ok(P_ID "source:\n  database: db\n  host:\n  replica_set_name: ~\n"
                                      "  tables: [a.b]\n" P_SINK,
                                 "kafka:\nlog_level: null\n");
    assert_string_equal(cfg->source.host, "localhost");
    assert_null(cfg->source.replica_set_name);
    assert_string_equal(cfg->platform.log_level, "info");
    assert_string_equal(cfg->platform.kafka.group_id, "cdc-platform");
    config_free(cfg);
}

/* ---- ${VAR} substitution ---- */

static void test_env_substitution(void **state)
{
    (void)state;
    setenv("CDC_T_HOST", "pg.example", 1);
    setenv("CDC_T_PORT", "6000", 1);
    setenv("CDC_T_EMPTY", "", 1);
    unsetenv("CDC_T_UNSET");
    struct config *cfg = load_ok(P_ID "source:\n"
                                      "  host: ${CDC_T_HOST}\n"
                                      "  port: ${CDC_T_PORT:-5432}\n"
                                      "  database: db_${CDC_T_UNSET:-dflt}_${CDC_T_EMPTY:-e}\n"
                                      "  username: \"$${CDC_T_HOST} and ${CDC_T_HOST}\"\n"
                                      "  password: a$b$$c${CDC_T_EMPTY}\n"
                                      "  tables: ['${CDC_T_UNSET:-public}.t']\n" P_SINK,
                                 "health_port: ${CDC_T_UNSET:-8181}\n");
    assert_string_equal(cfg->source.host, "pg.example");
    assert_int_equal(cfg->source.port, 6000);
    assert_string_equal(cfg->source.database, "db_dflt_e");
    assert_string_equal(cfg->source.username, "${CDC_T_HOST} and pg.example");
    assert_string_equal(cfg->source.password, "a$b$$c");
    assert_string_equal(cfg->source.tables[0], "public.t");
    assert_int_equal(cfg->platform.health_port, 8181);
    config_free(cfg);

    EXPECT1(P_ID "source:\n  database: db\n  password: ${CDC_PW}\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:4: source.password: environment variable CDC_PW is not set");
    EXPECT1(P_ID "source:\n  database: db\n  port: ${CDC_T_UNSET:-abc}\n  tables: [a.b]\n" P_SINK,
            NULL, "pipeline.yaml:4: source.port: expected an integer 1..65535, got \"abc\"");
    EXPECT1(P_ID "source:\n  database: ${CDC_T_HOST\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:3: source.database: unterminated ${ (write $${ for a literal ${)");
    EXPECT1(P_ID "source:\n  database: ${1X}\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:3: source.database: malformed variable reference: expected ${NAME} or "
            "${NAME:-default}");
    /* an expansion may be empty; an anchored empty key is reported, not crashed on */
    cfg = load_ok(P_ID "source:\n  database: db\n  password: ${CDC_T_UNSET:-}\n"
                       "  username: ${CDC_T_EMPTY}\n  tables: [a.b]\n" P_SINK,
                  NULL);
    assert_string_equal(cfg->source.password, "");
    assert_string_equal(cfg->source.username, "");
    config_free(cfg);
    expect_errors(P_OK, "&a : 1\n",
                  "platform.yaml:1: \"\": YAML anchors (&name) are not supported; repeat the "
                  "values instead",
                  "platform.yaml:1: \"\": unknown key", (const char *)NULL);

    unsetenv("CDC_T_HOST");
    unsetenv("CDC_T_PORT");
    unsetenv("CDC_T_EMPTY");
}

/* ---- errors, one per case ---- */

static void test_err_unknown_key(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  databse: db\n  database: db\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:3: source.databse: unknown key (did you mean \"database\"?)");
    EXPECT1(P_OK "colour: red\n", NULL, "pipeline.yaml:10: colour: unknown key");
    EXPECT1(P_OK, "kafka:\n  bootstrap_server: x\n",
            "platform.yaml:2: kafka.bootstrap_server: unknown key (did you mean "
            "\"bootstrap_servers\"?)");
}

static void test_err_duplicate_key(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  database: db\n  tables: [a.b]\n  database: other\n" P_SINK, NULL,
            "pipeline.yaml:5: source.database: duplicate key (first defined at line 3)");
}

static void test_err_wrong_int(void **state)
{
    (void)state;
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: s\n    sink_type: postgres\n    postgres:\n"
                       "      database: d\n      port: abc\n",
            NULL,
            "pipeline.yaml:10: sinks[0].postgres.port: expected an integer 1..65535, got \"abc\"");
    EXPECT1(P_OK, "max_buffered_messages: 1.5\n",
            "platform.yaml:1: max_buffered_messages: expected an integer >= 1, got \"1.5\"");
    EXPECT1(P_OK, "max_buffered_bytes: 99999999999999999999\n",
            "platform.yaml:1: max_buffered_bytes: expected an integer >= 1, got "
            "\"99999999999999999999\"");
    EXPECT1(P_OK, "max_event_bytes: -1\n",
            "platform.yaml:1: max_event_bytes: expected an integer >= 0, got \"-1\"");
}

static void test_err_wrong_bool(void **state)
{
    (void)state;
    EXPECT1(P_OK, "health_enabled: maybe\n",
            "platform.yaml:1: health_enabled: expected true or false, got \"maybe\"");
}

static void test_err_wrong_enum(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  database: db\n  snapshot_mode: always\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:4: source.snapshot_mode: expected one of "
            "initial|never|when_needed|no_data|initial_only, got \"always\"");
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: s\n    sink_type: postgres\n    postgres:\n"
                       "      database: d\n      dead_letter_scope: statement\n",
            NULL,
            "pipeline.yaml:10: sinks[0].postgres.dead_letter_scope: expected one of "
            "transaction|row, got \"statement\"");
    EXPECT1(P_OK, "log_level: verbose\n",
            "platform.yaml:1: log_level: expected one of debug|info|warn|error, got \"verbose\"");
}

static void test_err_wrong_float(void **state)
{
    (void)state;
    EXPECT1(P_OK, "retry:\n  multiplier: 0.5\n",
            "platform.yaml:2: retry.multiplier: expected a number >= 1, got \"0.5\"");
    EXPECT1(P_OK, "schema_monitor_interval_seconds: 0\n",
            "platform.yaml:1: schema_monitor_interval_seconds: expected a number > 0, got \"0\"");
    EXPECT1(P_OK, "lag_monitor_interval_seconds: nan\n",
            "platform.yaml:1: lag_monitor_interval_seconds: expected a number > 0, got \"nan\"");
}

static void test_err_out_of_range(void **state)
{
    (void)state;
    EXPECT1(P_OK, "dlq:\n  enabled: true\n  topic_suffix: dlq\n  max_retries: -1\n",
            "platform.yaml:4: dlq.max_retries: expected an integer >= 0, got \"-1\"");
    EXPECT1(P_OK, "health_port: 70000\n",
            "platform.yaml:1: health_port: expected an integer 0..65535, got \"70000\"");
}

static void test_err_missing_required(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:2: source.database: required key is missing");
    EXPECT1(P_SRC P_SINK, NULL, "pipeline.yaml:1: pipeline_id: required key is missing");
    EXPECT1(P_ID P_SRC, NULL, "pipeline.yaml:1: sinks: required key is missing");
    EXPECT1(P_ID "source:\n  database:\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:3: source.database: required key has no value");
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_type: file\n    file: {path: x}\n", NULL,
            "pipeline.yaml:6: sinks[0].sink_id: required key is missing");
}

static void test_err_unset_var(void **state)
{
    (void)state;
    unsetenv("CDC_PW");
    EXPECT1(P_ID "source:\n  database: db\n  tables: [a.b]\n  password: ${CDC_PW}\n" P_SINK, NULL,
            "pipeline.yaml:5: source.password: environment variable CDC_PW is not set");
}

static void test_err_yaml_syntax(void **state)
{
    (void)state;
    EXPECT1("pipeline_id: p\nsource:\n  database: [db\n", NULL,
            "pipeline.yaml:4:1: YAML syntax error: did not find expected ',' or ']'");
    EXPECT1(P_OK, "a: b: c\n",
            "platform.yaml:1:5: YAML syntax error: mapping values are not allowed in this context");
    EXPECT1("", NULL, "pipeline.yaml:1: empty document");
    EXPECT1("# only a comment\n", NULL, "pipeline.yaml:1: empty document");
    EXPECT1(P_OK "---\nb: 1\n", NULL,
            "pipeline.yaml:10: multiple YAML documents in one file are not supported");
    EXPECT1("- a\n- b\n", NULL,
            "pipeline.yaml:1: expected a mapping of keys at the top level, got a list");
}

static void test_err_alias_rejected(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  database: &db main\n  username: cdc\n  tables: [a.b]\n" P_SINK, NULL,
            "pipeline.yaml:3: source.database: YAML anchors (&name) are not supported; repeat the "
            "values instead");
    expect_errors(P_OK, "kafka: &k\n  group_id: g\nconnector: *k\n",
                  "platform.yaml:1: kafka: YAML anchors (&name) are not supported; repeat the "
                  "values instead",
                  "platform.yaml:3: connector: YAML aliases (*name) are not supported; repeat the "
                  "values instead",
                  (const char *)NULL);
    EXPECT1(P_OK, "retry:\n  <<: {max_attempts: 2}\n",
            "platform.yaml:2: retry: YAML merge keys (<<) are not supported; repeat the values "
            "instead");
    EXPECT1(P_OK, "health_port: !!int 5\n",
            "platform.yaml:1: health_port: YAML tags (!tag) are not supported");
}

static void test_err_platform_key_in_pipeline(void **state)
{
    (void)state;
    EXPECT1(P_OK "dlq:\n  enabled: false\n", NULL,
            "pipeline.yaml:10: dlq: \"dlq\" belongs in the platform config, not the pipeline "
            "config");
    EXPECT1(P_OK "retry: {max_attempts: 2}\n", NULL,
            "pipeline.yaml:10: retry: \"retry\" belongs in the platform config, not the pipeline "
            "config");
    EXPECT1(P_OK, "pipeline_id: x\n",
            "platform.yaml:1: pipeline_id: \"pipeline_id\" belongs in the pipeline config, not the "
            "platform config");
}

static void test_err_duplicate_sink_id(void **state)
{
    (void)state;
    EXPECT1(P_OK "  - sink_id: s1\n    sink_type: file\n    file: {path: y}\n", NULL,
            "pipeline.yaml:10: sinks[1].sink_id: duplicate sink_id \"s1\" (first defined at line "
            "6)");
}

static void test_err_sink_blocks(void **state)
{
    (void)state;
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: s\n    sink_type: postgres\n", NULL,
            "pipeline.yaml:6: sinks[0]: sink_type \"postgres\" needs a \"postgres:\" block");
    EXPECT1(P_OK "    webhook: {url: 'http://x'}\n", NULL,
            "pipeline.yaml:10: sinks[0]: sink_type \"file\" must not have a \"webhook:\" block");
    /* an empty block still needs its required keys */
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: s\n    sink_type: file\n    file:\n", NULL,
            "pipeline.yaml:8: sinks[0].file.path: required key is missing");
}

#define K_SINK(block) P_ID P_SRC "sinks:\n  - sink_id: k\n    sink_type: kafka\n    kafka:\n" block

static void test_err_kafka(void **state)
{
    (void)state;
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: k\n    sink_type: kafka\n", NULL,
            "pipeline.yaml:6: sinks[0]: sink_type \"kafka\" needs a \"kafka:\" block");
    EXPECT1(K_SINK("      topic: t\n"), NULL,
            "pipeline.yaml:8: sinks[0].kafka.bootstrap_servers: required key is missing");
    EXPECT1(K_SINK("      bootstrap_servers: h:1\n      topic: \"{topic_prefix}.{tabel}\"\n"), NULL,
            "pipeline.yaml:10: sinks[0].kafka.topic: expected a topic name template using "
            "{topic_prefix}, {schema}, {table} and {db}, got \"{topic_prefix}.{tabel}\"");
    expect_errors(K_SINK("      bootstrap_servers: h:1\n      auth_mechanism: sasl_plain\n"
                         "      security_protocol: SSL\n"),
                  NULL,
                  "pipeline.yaml:8: sinks[0].kafka.sasl_username: required with auth_mechanism "
                  "sasl_plain",
                  "pipeline.yaml:8: sinks[0].kafka.sasl_password: required with auth_mechanism "
                  "sasl_plain",
                  "pipeline.yaml:11: sinks[0].kafka.security_protocol: auth_mechanism sasl_plain "
                  "needs SASL_SSL or SASL_PLAINTEXT, got \"SSL\"",
                  (const char *)NULL);
    EXPECT1(K_SINK("      bootstrap_servers: h:1\n      security_protocol: SASL_PLAINTEXT\n"), NULL,
            "pipeline.yaml:10: sinks[0].kafka.security_protocol: SASL_PLAINTEXT needs "
            "auth_mechanism sasl_plain, sasl_scram_256 or sasl_scram_512");
    EXPECT1(K_SINK("      bootstrap_servers: h:1\n      sasl_password: pw-not-shown\n"), NULL,
            "pipeline.yaml:10: sinks[0].kafka.sasl_password: only used with a SASL "
            "auth_mechanism, and the sink's kafka block has none");
    EXPECT1(K_SINK("      bootstrap_servers: h:1\n      ssl_ca_location: /ca.pem\n"), NULL,
            "pipeline.yaml:10: sinks[0].kafka.ssl_ca_location: only used with "
            "security_protocol SSL or SASL_SSL, not PLAINTEXT");
    EXPECT1(K_SINK("      bootstrap_servers: h:1\n      security_protocol: SSL\n"
                   "      ssl_key_location: /k.pem\n"),
            NULL,
            "pipeline.yaml:11: sinks[0].kafka.ssl_certificate_location: a client certificate "
            "needs both ssl_certificate_location and ssl_key_location");
    expect_errors(K_SINK("      bootstrap_servers: h:1\n      properties:\n"
                         "        linger.ms: 5\n        bootstrap.servers: x:1\n"
                         "        \"bad name\": 1\n"),
                  NULL,
                  "pipeline.yaml:12: sinks[0].kafka.properties.bootstrap.servers: set it with "
                  "the key bootstrap_servers instead",
                  "pipeline.yaml:13: sinks[0].kafka.properties.bad name: expected a "
                  "librdkafka property name such as linger.ms",
                  (const char *)NULL);
    EXPECT1(P_OK, "kafka:\n  acks: \"1\"\n",
            "platform.yaml:2: kafka.acks: enable_idempotence needs acks all, got \"1\"");
    EXPECT1(P_OK, "kafka:\n  session_timeout_ms: 6000\n  max_poll_interval_ms: 5000\n",
            "platform.yaml:3: kafka.max_poll_interval_ms: expected a number >= "
            "session_timeout_ms (6000), got 5000");
    EXPECT1(P_OK,
            "kafka:\n  auth_mechanism: sasl_plain\n  sasl_mechanism: SCRAM-SHA-256\n"
            "  sasl_username: u\n  sasl_password: p\n",
            "platform.yaml:3: kafka.sasl_mechanism: SCRAM-SHA-256 says auth_mechanism "
            "sasl_plain; name the method once (auth_mechanism: sasl_scram_256)");
    EXPECT1(P_OK, "kafka:\n  auth_mechanism: kerberos\n",
            "platform.yaml:2: kafka.auth_mechanism: expected one of "
            "none|sasl_plain|sasl_scram_256|sasl_scram_512, got \"kerberos\"");
    EXPECT1(P_OK, "kafka:\n  fetch_max_wait_ms: -1\n",
            "platform.yaml:2: kafka.fetch_max_wait_ms: expected an integer 0..300000, got \"-1\"");
    /* SASL with the right protocol and credentials is fine */
    struct config *cfg =
        load_ok(P_OK, "kafka:\n  auth_mechanism: sasl_scram_256\n  sasl_username: u\n"
                      "  sasl_password: p\n");
    assert_string_equal(config_kafka_security_protocol(&cfg->platform.kafka.client), "SASL_SSL");
    config_free(cfg);
}

static void test_err_no_enabled_sink(void **state)
{
    (void)state;
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: s\n    sink_type: file\n    enabled: false\n"
                       "    file: {path: x}\n",
            NULL, "pipeline.yaml:5: sinks: at least one sink must be enabled");
    EXPECT1(P_ID P_SRC "sinks: []\n", NULL,
            "pipeline.yaml:5: sinks: at least one sink is required");
}

static void test_err_tables(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  database: db\n  tables: [public.a, users, public.b]\n" P_SINK, NULL,
            "pipeline.yaml:4: source.tables[1]: expected \"schema.table\", got \"users\"");
    EXPECT1(P_ID "source:\n  database: db\n  tables: public.users\n" P_SINK, NULL,
            "pipeline.yaml:4: source.tables: expected a list of \"schema.table\" names");
    EXPECT1(P_ID "source:\n  database: db\n  tables: []\n" P_SINK, NULL,
            "pipeline.yaml:4: source.tables: at least one table is required");
    EXPECT1(P_ID "source:\n  database: db\n" P_SINK, NULL,
            "pipeline.yaml:2: source.tables: at least one table is required");
    EXPECT1(P_ID
            "source:\n  database: db\n  tables:\n    - public.a\n    - 'public.\"a\"'\n" P_SINK,
            NULL,
            "pipeline.yaml:6: source.tables[1]: duplicate table \"public.\\\"a\\\"\" (first listed "
            "at line 5)");
    expect_errors(
        P_ID "source:\n  database: db\n  tables:\n    - a.b\n    - c.d\n    - a.b\n"
             "    - '\"a\".\"b\"'\n" P_SINK,
        NULL, "pipeline.yaml:7: source.tables[2]: duplicate table \"a.b\" (first listed at line 5)",
        "pipeline.yaml:8: source.tables[3]: duplicate table \"\\\"a\\\".\\\"b\\\"\" (first "
        "listed at line 5)",
        (const char *)NULL);
    EXPECT1(P_ID "source:\n  database: db\n  tables: [public.Order Items]\n" P_SINK, NULL,
            "pipeline.yaml:4: source.tables[0]: expected \"schema.table\", got \"public.Order "
            "Items\"");
}

static void test_err_secret_not_echoed(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  database: db\n  tables: [a.b]\n  password: {value: hunter2}\n" P_SINK,
            NULL, "pipeline.yaml:5: source.password: expected a string");
    EXPECT1(P_OK, "control_token: \"${hunter2\"\n",
            "platform.yaml:1: control_token: unterminated ${ (write $${ for a literal ${)");
    EXPECT1(P_OK, "kafka:\n  sasl_password: [hunter2]\n",
            "platform.yaml:2: kafka.sasl_password: expected a string");
}

static void test_err_other_rules(void **state)
{
    (void)state;
    EXPECT1(P_ID "source:\n  database: db\n  tables: [a.b]\n  slot_name: My-Slot\n" P_SINK, NULL,
            "pipeline.yaml:5: source.slot_name: expected 1 to 63 characters from a-z, 0-9 and "
            "\"_\", got \"My-Slot\"");
    EXPECT1(P_ID P_SRC "sinks:\n  - sink_id: w\n    sink_type: webhook\n    webhook:\n"
                       "      url: ftp://example.com/secret-token\n",
            NULL, "pipeline.yaml:9: sinks[0].webhook.url: expected an http:// or https:// URL");
    EXPECT1(P_OK, "retry:\n  initial_wait_seconds: 10\n  max_wait_seconds: 5\n",
            "platform.yaml:3: retry.max_wait_seconds: expected a number >= initial_wait_seconds "
            "(10), got 5");
    EXPECT1("pipeline_id: \"a b\"\n" P_SRC P_SINK, NULL,
            "pipeline.yaml:1: pipeline_id: expected letters, digits, \"_\", \".\" or \"-\", got "
            "\"a b\"");
    EXPECT1(P_ID "source: [1]\n" P_SINK, NULL, "pipeline.yaml:2: source: expected a mapping");
    EXPECT1(P_ID P_SRC "sinks:\n  - 1\n", NULL,
            "pipeline.yaml:6: sinks[0]: expected a mapping, got a scalar");
}

/* Every error is reported, sorted by file then line. */
static void test_err_collects_all(void **state)
{
    (void)state;
    expect_errors("pipeline_id: p\n"
                  "source:\n"
                  "  database: db\n"
                  "  port: x\n"
                  "  tables: [a.b]\n"
                  "kafka: {}\n"
                  "sinks:\n"
                  "  - sink_id: s\n"
                  "    sink_type: file\n"
                  "    enabled: nope\n"
                  "    file: {path: p, batch_size: 0}\n",
                  "health_port: -5\nlog_format: xml\n",
                  "pipeline.yaml:4: source.port: expected an integer 1..65535, got \"x\"",
                  "pipeline.yaml:6: kafka: \"kafka\" belongs in the platform config, not the "
                  "pipeline config",
                  "pipeline.yaml:10: sinks[0].enabled: expected true or false, got \"nope\"",
                  "pipeline.yaml:11: sinks[0].file.batch_size: expected an integer >= 1, got \"0\"",
                  "platform.yaml:1: health_port: expected an integer 0..65535, got \"-5\"",
                  "platform.yaml:2: log_format: expected one of logfmt|json, got \"xml\"",
                  (const char *)NULL);
}

static void test_err_unreadable_file(void **state)
{
    (void)state;
    struct config *cfg = (struct config *)1;
    struct cfg_errors errs = {0};
    char *pp = data_path("minimal.yaml");
    assert_int_equal(config_load(&cfg, pp, "no/such/platform.yaml", &errs), CDC_EIO);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0],
                        "no/such/platform.yaml: cannot read: No such file or directory");
    cfg_errors_fini(&errs);
    assert_int_equal(errs.n, 0);
    free(pp);
}

/* ---- helpers ---- */

static void test_split_table(void **state)
{
    (void)state;
    char *s = NULL, *t = NULL;
    assert_int_equal(config_split_table("public.users", &s, &t), 0);
    assert_string_equal(s, "public");
    assert_string_equal(t, "users");
    free(s);
    free(t);
    assert_int_equal(config_split_table("public.\"Order Items\"", &s, &t), 0);
    assert_string_equal(s, "public");
    assert_string_equal(t, "Order Items");
    free(s);
    free(t);
    assert_int_equal(config_split_table("\"my.schema\".\"a\"\"b\"", &s, &t), 0);
    assert_string_equal(s, "my.schema");
    assert_string_equal(t, "a\"b");
    free(s);
    free(t);
    static const char *const bad[] = {"users",  "a.b.c", ".b",       "a.",    "\"a.b",
                                      "\"\".b", "a b.c", "a.\"b\"x", "a.\"b", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(config_split_table(bad[i], &s, &t), CDC_EINVAL);
        assert_null(s);
        assert_null(t);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(config_source_type_name(SOURCE_MONGODB), "mongodb");
    assert_string_equal(sink_type_find("webhook")->name, "webhook");
    assert_string_equal(sink_type_find("kafka")->name, "kafka");
    assert_string_equal(config_snapshot_mode_name(SNAPSHOT_INITIAL_ONLY), "initial_only");
    assert_string_equal(config_transport_name(TRANSPORT_EMBEDDED), "embedded");
    assert_string_equal(config_transport_name((enum transport_mode)42), "unknown");
}

static void test_free_null(void **state)
{
    (void)state;
    config_free(NULL);
    cfg_errors_fini(NULL);
    /* errs may be NULL: errors are then just dropped */
    struct config *cfg = NULL;
    assert_int_equal(config_load_text(&cfg, NULL, "x: 1\n", 5, NULL, NULL, 0, NULL), CDC_EINVAL);
    assert_null(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_files),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sink_defaults),
        cmocka_unit_test(test_default_port_per_source_type),
        cmocka_unit_test(test_lax_scalars),
        cmocka_unit_test(test_null_values),
        cmocka_unit_test(test_env_substitution),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_duplicate_key),
        cmocka_unit_test(test_err_wrong_int),
        cmocka_unit_test(test_err_wrong_bool),
        cmocka_unit_test(test_err_wrong_enum),
        cmocka_unit_test(test_err_wrong_float),
        cmocka_unit_test(test_err_out_of_range),
        cmocka_unit_test(test_err_missing_required),
        cmocka_unit_test(test_err_unset_var),
        cmocka_unit_test(test_err_yaml_syntax),
        cmocka_unit_test(test_err_alias_rejected),
        cmocka_unit_test(test_err_platform_key_in_pipeline),
        cmocka_unit_test(test_err_duplicate_sink_id),
        cmocka_unit_test(test_err_sink_blocks),
        cmocka_unit_test(test_err_kafka),
        cmocka_unit_test(test_err_no_enabled_sink),
        cmocka_unit_test(test_err_tables),
        cmocka_unit_test(test_err_secret_not_echoed),
        cmocka_unit_test(test_err_other_rules),
        cmocka_unit_test(test_err_collects_all),
        cmocka_unit_test(test_err_unreadable_file),
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
