/* Unit tests for the configuration loader: the exact text of each kind of
 * error, one case per test, and that every error of a file is reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/err.h"
#include "configtest.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
