/* Unit tests for the configuration loader: valid files, defaults, ${VAR}
 * substitution, and the helpers around it.  The text of each kind of error
 * is test_config_errors.c's. */
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
#include "configtest.h"

/* A sink's own config, as its type's struct. */
#define FILE_OF(s)    ((const struct file_sink_cfg *)(s)->conf)
#define PG_OF(s)      ((const struct pg_sink_cfg *)(s)->conf)
#define WEBHOOK_OF(s) ((const struct webhook_sink_cfg *)(s)->conf)
#define ICEBERG_OF(s) ((const struct iceberg_sink_cfg *)(s)->conf)
#define KAFKA_OF(s)   ((const struct kafka_sink_cfg *)(s)->conf)

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
    assert_int_equal(s->mysql_server_id, 0); /* derived from pipeline_id */
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
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
