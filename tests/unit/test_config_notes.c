/* Unit tests for what the configuration loader notes besides errors: keys
 * of the reference that have no effect (cfg->inert), keys it does not
 * implement, and secrets left empty by CONFIG_SECRETS_OPTIONAL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cfg_env.h"
#include "config/config.h"
#include "util/err.h"

#define P_HEAD "pipeline_id: p1\nsource:\n  database: db\n  tables: [public.t]\n"
#define P_SINK "sinks:\n  - sink_id: s1\n    sink_type: file\n    file:\n      path: out.jsonl\n"

static struct config *load_flags(const char *pipe, const char *plat, unsigned flags,
                                 struct cfg_errors *errs)
{
    struct config *cfg = NULL;
    config_load_text_flags(&cfg, "pipeline.yaml", pipe, strlen(pipe), "platform.yaml", plat,
                           plat ? strlen(plat) : 0, flags, errs);
    return cfg;
}

static void assert_lines(const struct cfg_errors *got, const char *const *want, size_t n)
{
    for (size_t i = 0; i < got->n; i++)
        print_message("got: %s\n", got->msgs[i]);
    assert_int_equal(got->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got->msgs[i], want[i]);
}

/* Present keys of the reference that cdc does not act on are noted with
 * file and line, in file order; defaults and keys it acts on are not. */
static void test_inert_keys_noted(void **state)
{
    (void)state;
    const char *pipe = "pipeline_id: p1\n"
                       "source:\n"
                       "  database: db\n"
                       "  auth_source: admin\n"
                       "  mysql_server_id: 7\n"
                       "  tables: [public.t]\n" P_SINK;
    const char *plat = "dlq:\n"
                       "  enabled: true\n"
                       "  max_retries: 5\n"
                       "connector:\n"
                       "  connect_url: http://connect:8083\n"
                       "kafka:\n"
                       "  group_id: g\n"
                       "  acks: all\n"
                       "lag_monitor_interval_seconds: 5\n";
    struct cfg_errors errs = {0};
    struct config *cfg = load_flags(pipe, plat, 0, &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n, 0);
    static const char *const want[] = {
        "pipeline.yaml:4: accepted, has no effect: source.auth_source (only a mongodb source "
        "uses it)",
        "pipeline.yaml:5: accepted, has no effect: source.mysql_server_id (only a mysql source "
        "uses it)",
        "platform.yaml:3: accepted, has no effect: dlq.max_retries (retry.max_attempts decides "
        "when a change is dead-lettered)",
        "platform.yaml:5: accepted, has no effect: connector.connect_url (cdc reads the database "
        "log itself: there is no Kafka Connect to deploy to)",
        "platform.yaml:8: accepted, has no effect: kafka.acks (only transport_mode kafka reads "
        "it; a kafka sink takes its settings from its own block)",
        "platform.yaml:9: accepted, has no effect: lag_monitor_interval_seconds (lag is computed "
        "at every /status and /metrics request)",
    };
    assert_lines(&cfg->inert, want, sizeof want / sizeof *want);
    config_free(cfg);

    /* A key that has an effect in this config is not noted. */
    const char *mysql = "pipeline_id: p1\nsource:\n  source_type: mysql\n  database: db\n"
                        "  mysql_server_id: 7\n  tables: [public.t]\n" P_SINK;
    cfg = load_flags(mysql, NULL, 0, &errs);
    assert_non_null(cfg);
    assert_int_equal(cfg->inert.n, 0);
    config_free(cfg);

    /* PostgreSQL's replication keys under a mysql source. */
    const char *mysql_pg = "pipeline_id: p1\nsource:\n  source_type: mysql\n  database: db\n"
                           "  slot_name: s\n  heartbeat_interval_seconds: 5\n"
                           "  tables: [db.t]\n" P_SINK;
    cfg = load_flags(mysql_pg, NULL, 0, &errs);
    assert_non_null(cfg);
    static const char *const want_pg[] = {
        "pipeline.yaml:5: accepted, has no effect: source.slot_name (only a postgres source "
        "uses it)",
        "pipeline.yaml:6: accepted, has no effect: source.heartbeat_interval_seconds (only a "
        "postgres source uses it)",
    };
    assert_lines(&cfg->inert, want_pg, sizeof want_pg / sizeof *want_pg);
    config_free(cfg);
}

/* pubsub, kinesis and wal_reader are the reference's, and not implemented:
 * said so, not "unknown key"; in the pipeline file they point at the
 * platform file. */
static void test_not_implemented_keys(void **state)
{
    (void)state;
    struct cfg_errors errs = {0};
    const char *plat = "pubsub:\n  project_id: p\nkinesis:\n  region: r\nwal_reader:\n  x: 1\n";
    struct config *cfg = load_flags(P_HEAD P_SINK, plat, 0, &errs);
    assert_null(cfg);
    static const char *const want[] = {
        "platform.yaml:1: pubsub: not implemented in this version of cdc (the Google Pub/Sub "
        "transport)",
        "platform.yaml:3: kinesis: not implemented in this version of cdc (the Amazon Kinesis "
        "transport)",
        "platform.yaml:5: wal_reader: not implemented in this version of cdc (the direct WAL "
        "reader of the Pub/Sub and Kinesis transports)",
    };
    assert_lines(&errs, want, sizeof want / sizeof *want);
    cfg_errors_fini(&errs);

    cfg = load_flags(P_HEAD P_SINK "pubsub: {}\n", NULL, 0, &errs);
    assert_null(cfg);
    static const char *const want2[] = {
        "pipeline.yaml:10: pubsub: \"pubsub\" belongs in the platform config, not the pipeline "
        "config"};
    assert_lines(&errs, want2, 1);
    cfg_errors_fini(&errs);
}

/* CONFIG_SECRETS_OPTIONAL: an unset ${VAR} of a secret leaves it empty and
 * is noted by variable name; other keys stay strict; without the flag the
 * load fails as before. */
static void test_secrets_optional(void **state)
{
    (void)state;
    unsetenv("CDC_TEST_UNSET_PW");
    unsetenv("CDC_TEST_UNSET_HOST");
    setenv("CDC_TEST_SET_TOKEN", "tok-value", 1);
    const char *pipe = "pipeline_id: p1\n"
                       "source:\n"
                       "  database: db\n"
                       "  password: ${CDC_TEST_UNSET_PW}\n"
                       "  tables: [public.t]\n" P_SINK;
    const char *plat = "control_token: ${CDC_TEST_SET_TOKEN}\n";
    struct cfg_errors errs = {0};
    struct config *cfg = load_flags(pipe, plat, CONFIG_SECRETS_OPTIONAL, &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n, 0);
    assert_string_equal(cfg->source.password, "");
    assert_string_equal(cfg->platform.control_token, "tok-value");
    static const char *const want[] = {
        "pipeline.yaml:4: source.password: environment variable CDC_TEST_UNSET_PW is not set"};
    assert_lines(&cfg->unset_secrets, want, 1);
    config_free(cfg);

    cfg = load_flags(pipe, plat, 0, &errs);
    assert_null(cfg);
    assert_lines(&errs, want, 1);
    cfg_errors_fini(&errs);

    const char *host = "pipeline_id: p1\n"
                       "source:\n"
                       "  database: db\n"
                       "  host: ${CDC_TEST_UNSET_HOST}\n"
                       "  tables: [public.t]\n" P_SINK;
    cfg = load_flags(host, NULL, CONFIG_SECRETS_OPTIONAL, &errs);
    assert_null(cfg);
    static const char *const want_host[] = {
        "pipeline.yaml:4: source.host: environment variable CDC_TEST_UNSET_HOST is not set"};
    assert_lines(&errs, want_host, 1);
    cfg_errors_fini(&errs);
}

/* The expansion itself: an unset variable expands to nothing and is named
 * once, the rest of the text stays. */
static void test_env_expand_unset(void **state)
{
    (void)state;
    unsetenv("CDC_TEST_U1");
    unsetenv("CDC_TEST_U2");
    setenv("CDC_TEST_S1", "v", 1);
    char *out = NULL;
    struct buf msg = BUF_INIT;
    bool unset = true;
    const char *in = "a${CDC_TEST_S1}b${CDC_TEST_U1}c${CDC_TEST_U2}";
    assert_int_equal(cfg_env_expand(in, strlen(in), &out, &msg, &unset), 0);
    assert_true(unset);
    assert_string_equal(out, "avbc");
    assert_string_equal(msg.p, "environment variable CDC_TEST_U1 is not set");
    free(out);
    buf_fini(&msg);
    assert_int_equal(cfg_env_expand("x${CDC_TEST_S1}", 15, &out, &msg, &unset), 0);
    assert_false(unset);
    assert_string_equal(out, "xv");
    free(out);
    assert_int_equal(cfg_env_expand(in, strlen(in), &out, &msg, NULL), CDC_EINVAL);
    assert_null(out);
    buf_fini(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inert_keys_noted),
        cmocka_unit_test(test_not_implemented_keys),
        cmocka_unit_test(test_secrets_optional),
        cmocka_unit_test(test_env_expand_unset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
