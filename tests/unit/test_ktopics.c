/* Unit tests for the Kafka transport's topic list (transport/kafka/ktopics.c):
 * which topics `cdc deploy` creates, with which settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "configtest.h"
#include "transport/kafka/ktopics.h"

#define PIPE                                                                                       \
    "pipeline_id: p1\ntopic_prefix: shop\nsource:\n  database: db\n"                               \
    "  tables: [public.items, sales.orders, public.Odd$Name, public.Odd_Name]\n" P_SINK

static void expect_topics(const struct ktopics *t, const char *const *want, size_t n, size_t ndlq)
{
    for (size_t i = 0; i < t->n; i++)
        print_message("topic %zu: %s%s\n", i, t->v[i].name, t->v[i].dlq ? " (dlq)" : "");
    assert_int_equal(t->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t->v[i].name, want[i]);
        assert_int_equal(t->v[i].dlq, i >= n - ndlq);
        assert_int_equal(t->v[i].state, KTOPIC_UNKNOWN);
    }
}

/* One capture topic per table (two tables whose names become one topic
 * name: that topic once; names made
 * Kafka-safe as the capture role makes them), then each one's dead-letter
 * topic with the default suffix. */
static void test_capture_and_dead_letter_topics(void **state)
{
    (void)state;
    struct config *cfg = load_ok(PIPE, "transport_mode: kafka\n");
    struct ktopics t;
    ktopics_list(cfg, &t);
    static const char *const want[] = {
        "shop.public.items",     "shop.sales.orders",     "shop.public.Odd_Name",
        "shop.public.items.dlq", "shop.sales.orders.dlq", "shop.public.Odd_Name.dlq",
    };
    expect_topics(&t, want, 6, 3);
    ktopics_fini(&t);
    assert_int_equal(t.n, 0);
    config_free(cfg);
}

static void test_dead_letter_suffix_and_disabled(void **state)
{
    (void)state;
    struct config *cfg = load_ok(PIPE, "transport_mode: kafka\ndlq:\n  topic_suffix: dead\n");
    struct ktopics t;
    ktopics_list(cfg, &t);
    static const char *const want[] = {
        "shop.public.items",      "shop.sales.orders",      "shop.public.Odd_Name",
        "shop.public.items.dead", "shop.sales.orders.dead", "shop.public.Odd_Name.dead",
    };
    expect_topics(&t, want, 6, 3);
    ktopics_fini(&t);
    config_free(cfg);

    cfg = load_ok(PIPE, "transport_mode: kafka\ndlq:\n  enabled: false\n");
    ktopics_list(cfg, &t);
    expect_topics(&t, want, 3, 0);
    ktopics_fini(&t);
    config_free(cfg);
}

/* The partition count and replication factor are read and, with the Kafka
 * transport, no longer noted as having no effect. */
static void test_topic_settings_take_effect(void **state)
{
    (void)state;
    struct config *cfg = load_ok(PIPE, "transport_mode: kafka\nkafka:\n  topic_num_partitions: 8\n"
                                       "  topic_replication_factor: 3\n");
    assert_int_equal(cfg->platform.kafka.topic_num_partitions, 8);
    assert_int_equal(cfg->platform.kafka.topic_replication_factor, 3);
    for (size_t i = 0; i < cfg->inert.n; i++) {
        print_message("note: %s\n", cfg->inert.msgs[i]);
        assert_null(strstr(cfg->inert.msgs[i], "topic_num_partitions"));
        assert_null(strstr(cfg->inert.msgs[i], "topic_replication_factor"));
    }
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_and_dead_letter_topics),
        cmocka_unit_test(test_dead_letter_suffix_and_disabled),
        cmocka_unit_test(test_topic_settings_take_effect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
