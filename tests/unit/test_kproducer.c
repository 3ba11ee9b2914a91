/* Unit tests for the Kafka producer wrapper (transport/kafka/kproducer.c)
 * and client configuration (kclient.c), against librdkafka's mock cluster
 * running inside the test process (brokers on 127.0.0.1, nothing else).
 *
 * The point: the oldest pending tag never moves past a message Kafka has
 * not acknowledged, whatever the order of acknowledgements across
 * partitions, and a failed delivery fails the producer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config/config.h"
#include "transport/kafka/kclient.h"
#include "transport/kafka/kproducer.h"
#include "util/err.h"

struct fixture {
    rd_kafka_t *host; /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    struct kafka_client_cfg client;
    struct kv props[4];
    char keys[2][16]; /* a key for partition 0 and one for partition 1 of "t" */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    f->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(f->host);
    f->mc = rd_kafka_mock_cluster_new(f->host, 2);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, "t", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_partition_set_leader(f->mc, "t", 0, 1), 0);
    assert_int_equal(rd_kafka_mock_partition_set_leader(f->mc, "t", 1, 2), 0);
    f->client.bootstrap_servers = (char *)rd_kafka_mock_cluster_bootstraps(f->mc);
    f->client.auth_mechanism = "none";
    f->client.properties = f->props;
    /* keys the murmur2 partitioner puts in partition 0 and 1 */
    for (int i = 0, found = 0; found != 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        int32_t p = rd_kafka_msg_partitioner_murmur2(NULL, k, strlen(k), 2, NULL, NULL);
        if (!(found & (1 << p))) {
            strcpy(f->keys[p], k);
            found |= 1 << p;
        }
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->host);
    free(f);
    return 0;
}

static void set_props(struct fixture *f, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        f->props[i].key = va_arg(ap, char *);
        f->props[i].value = va_arg(ap, char *);
    }
    va_end(ap);
    f->client.nproperties = n;
}

static struct kproducer *open_ok(struct fixture *f)
{
    struct kproducer_opts o = {.client = &f->client, .path = "sinks[0].kafka", .name = "test"};
    struct kproducer *kp = NULL;
    char err[512];
    int rc = kproducer_open(&kp, &o, err, sizeof err);
    if (rc)
        fail_msg("kproducer_open: %s", err);
    return kp;
}

static int send_one(struct kproducer *kp, const char *key, const char *value, uint64_t tag)
{
    struct kproducer_msg m = {.topic = "t",
                              .key = key,
                              .keylen = strlen(key),
                              .value = value,
                              .valuelen = value ? strlen(value) : 0};
    char err[512];
    return kproducer_send(kp, &m, tag, err, sizeof err);
}

/* Acknowledgements of partition 0 arrive while partition 1's broker is
 * down: the oldest pending tag stays at the first message of partition 1,
 * not at the newest acknowledged one; once the broker is back everything
 * is acknowledged. */
static void test_oldest_pending_follows_acks(void **state)
{
    struct fixture *f = *state;
    set_props(f, 0);
    struct kproducer *kp = open_ok(f);
    const char *p0 = f->keys[0], *p1 = f->keys[1];
    assert_int_equal(kproducer_oldest_pending(kp), 0);
    assert_int_equal(send_one(kp, p0, "a", 1), 0);
    assert_int_equal(kproducer_wait(kp, 5000), 0);
    assert_int_equal(kproducer_oldest_pending(kp), 0);

    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 2), 0);
    assert_int_equal(send_one(kp, p0, "b", 2), 0);
    assert_int_equal(send_one(kp, p1, "c", 3), 0);
    assert_int_equal(send_one(kp, p0, "d", 3), 0); /* two messages of one tag */
    assert_int_equal(send_one(kp, p0, "e", 4), 0);
    assert_int_equal(send_one(kp, p0, NULL, 5), 0); /* a tombstone */
    assert_int_equal(kproducer_wait(kp, 1500), CDC_EAGAIN);
    assert_int_equal(kproducer_oldest_pending(kp), 3);
    struct kproducer_stats st;
    kproducer_stats(kp, &st);
    assert_int_equal(st.sent, 6);
    assert_int_equal(st.acked, 5);
    assert_int_equal(st.outstanding, 1);

    assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, 2), 0);
    assert_int_equal(kproducer_wait(kp, 15000), 0);
    assert_int_equal(kproducer_oldest_pending(kp), 0);
    kproducer_stats(kp, &st);
    assert_int_equal(st.acked, 6);
    assert_int_equal(st.failed, 0);
    assert_null(kproducer_failure(kp));
    kproducer_close(kp);
}

/* kproducer_wait_upto waits for the messages up to a tag and no further:
 * with partition 1's broker down it returns once the earlier messages of
 * partition 0 are acknowledged, and times out while one up to the tag is
 * still outstanding. */
static void test_wait_upto_a_tag(void **state)
{
    struct fixture *f = *state;
    set_props(f, 0);
    struct kproducer *kp = open_ok(f);
    const char *p0 = f->keys[0], *p1 = f->keys[1];
    assert_int_equal(send_one(kp, p0, "a", 1), 0);
    assert_int_equal(kproducer_wait(kp, 5000), 0);

    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 2), 0);
    assert_int_equal(send_one(kp, p0, "b", 2), 0);
    assert_int_equal(send_one(kp, p1, "c", 3), 0);
    assert_int_equal(send_one(kp, p0, "d", 4), 0);
    assert_int_equal(kproducer_wait_upto(kp, 2, 5000), 0);
    assert_int_equal(kproducer_oldest_pending(kp), 3);
    assert_int_equal(kproducer_wait_upto(kp, 3, 800), CDC_EAGAIN);
    assert_int_equal(kproducer_oldest_pending(kp), 3);

    assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, 2), 0);
    assert_int_equal(kproducer_wait_upto(kp, 3, 15000), 0);
    uint64_t oldest = kproducer_oldest_pending(kp);
    assert_true(oldest == 0 || oldest == 4);
    assert_int_equal(kproducer_wait(kp, 5000), 0);
    assert_int_equal(kproducer_oldest_pending(kp), 0);
    assert_null(kproducer_failure(kp));
    kproducer_close(kp);
}

/* A message that cannot be delivered in time fails the producer for good. */
static void test_failed_delivery_fails_producer(void **state)
{
    struct fixture *f = *state;
    set_props(f, 1, "message.timeout.ms", "800");
    struct kproducer *kp = open_ok(f);
    /* the idempotent producer gets its id first */
    assert_int_equal(send_one(kp, f->keys[1], "a", 1), 0);
    assert_int_equal(kproducer_wait(kp, 5000), 0);
    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 2), 0);
    assert_int_equal(send_one(kp, f->keys[0], "b", 2), 0);
    assert_int_equal(send_one(kp, f->keys[1], "c", 3), 0);
    int rc = CDC_EAGAIN;
    for (int i = 0; i < 20 && rc == CDC_EAGAIN; i++)
        rc = kproducer_wait(kp, 500);
    assert_int_equal(rc, CDC_ECONN);
    assert_non_null(kproducer_failure(kp));
    if (!strstr(kproducer_failure(kp), "t [1]") || !strstr(kproducer_failure(kp), "timed out"))
        fail_msg("failure: %s", kproducer_failure(kp));
    assert_int_equal(send_one(kp, f->keys[0], "d", 4), CDC_ECONN);
    assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, 2), 0);
    kproducer_close(kp);
}

/* A message larger than the producer may send is refused at once, and
 * only that message: the producer goes on. */
static void test_too_large_is_refused_alone(void **state)
{
    struct fixture *f = *state;
    set_props(f, 1, "message.max.bytes", "2000");
    struct kproducer *kp = open_ok(f);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct kproducer_msg m = {
        .topic = "t", .key = "k", .keylen = 1, .value = big, .valuelen = strlen(big)};
    char err[512];
    assert_int_equal(kproducer_send(kp, &m, 1, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "cannot produce to t"));
    assert_null(kproducer_failure(kp));
    assert_int_equal(kproducer_oldest_pending(kp), 0);
    assert_int_equal(send_one(kp, f->keys[0], "small", 2), 0);
    assert_int_equal(kproducer_wait(kp, 5000), 0);
    kproducer_close(kp);
}

/* Settings librdkafka refuses are named with their file and line; the
 * password never appears. */
static void test_refused_settings(void **state)
{
    struct fixture *f = *state;
    struct cfg_loc locs[2] = {{"pipeline.yaml", 14}, {"pipeline.yaml", 15}};
    set_props(f, 2, "linger.ms", "soon", "socket.keepalive.enable", "true");
    f->client.property_locs = locs;
    struct kproducer_opts o = {.client = &f->client, .path = "sinks[0].kafka", .name = "test"};
    struct kproducer *kp = NULL;
    char err[512];
    assert_int_equal(kproducer_open(&kp, &o, err, sizeof err), CDC_EINVAL);
    if (!strstr(err, "pipeline.yaml:14: sinks[0].kafka.properties.linger.ms: librdkafka: "))
        fail_msg("%s", err);
    assert_int_equal(kclient_check(&f->client, "sinks[0].kafka", err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "pipeline.yaml:14: sinks[0].kafka.properties.linger.ms"));

    set_props(f, 1, "no.such.property", "1");
    f->client.sasl_password = "hunter2-secret";
    f->client.auth_mechanism = "sasl_plain";
    f->client.sasl_username = "u";
    assert_int_equal(kproducer_open(&kp, &o, err, sizeof err), CDC_EINVAL);
    if (!strstr(err, "pipeline.yaml:14: sinks[0].kafka.properties.no.such.property: librdkafka: "
                     "No such configuration property"))
        fail_msg("%s", err);
    assert_null(strstr(err, "hunter2"));
    f->client.sasl_password = NULL;
    f->client.sasl_username = NULL;
    f->client.auth_mechanism = "none";
    f->client.property_locs = NULL;
}

static void test_unreachable_cluster(void **state)
{
    struct fixture *f = *state;
    struct kafka_client_cfg c = {.bootstrap_servers = "127.0.0.1:1", .auth_mechanism = "none"};
    struct kproducer_opts o = {
        .client = &c, .path = "sinks[0].kafka", .name = "test", .connect_timeout_ms = 1000};
    struct kproducer *kp = NULL;
    char err[512];
    (void)f;
    assert_int_equal(kproducer_open(&kp, &o, err, sizeof err), CDC_ECONN);
    assert_non_null(strstr(err, "cannot reach Kafka at 127.0.0.1:1"));
    assert_null(kp);
}

static void test_scrub(void **state)
{
    (void)state;
    struct kclient_ctx ctx = {.secrets = {"pw", NULL}};
    char out[32];
    kclient_scrub(&ctx, "a pw in pwpw", out, sizeof out);
    assert_string_equal(out, "a *** in ******");
    kclient_scrub(&ctx, "0123456789abcdef", out, 8);
    assert_string_equal(out, "0123456");
    kclient_scrub(NULL, "pw", out, sizeof out);
    assert_string_equal(out, "pw");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oldest_pending_follows_acks),
        cmocka_unit_test(test_wait_upto_a_tag),
        cmocka_unit_test(test_failed_delivery_fails_producer),
        cmocka_unit_test(test_too_large_is_refused_alone),
        cmocka_unit_test(test_refused_settings),
        cmocka_unit_test(test_unreachable_cluster),
        cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
