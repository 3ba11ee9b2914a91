/* Webhook sink: its connections, checked against the scripted HTTP/1.1
 * server of webhooktest.h: a refused connection and a timeout, concurrent
 * lanes, the max_in_flight limit, connection reuse, and close with requests
 * in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "webhooktest.h"

static void test_refused_and_timeout_are_unreachable(void **state)
{
    (void)state;
    struct cdc_table *tab = mktab();
    struct cdc_event *ev = mkev(tab, 1, "n", 9000, 0);

    /* a port nobody listens on */
    int port = 0;
    int fd = listen_any(&port);
    assert_true(fd >= 0);
    close(fd);
    struct fx f;
    fx_init(&f, port, "/x");
    fx_open(&f);
    struct sink_result res = deliver(&f, 5, &ev, 1);
    assert_int_not_equal(res.rc, 0);
    assert_int_equal(res.errclass, SINK_ERR_UNREACHABLE);
    assert_int_equal(res.http_status, 0);
    assert_int_equal(res.ndone, 0);
    assert_non_null(strstr(res.err, "127.0.0.1"));
    fx_close(&f);

    /* a server that accepts and never answers */
    struct server *srv = server_start();
    script_hang(srv);
    fx_init(&f, srv->port, "/slow");
    f.w.timeout_seconds = 0.3;
    fx_open(&f);
    assert_int_equal(f.sk.ops->submit(&f.sk, 6, &ev, 1), 0);
    int64_t took = collect(&f, &res, 1);
    assert_int_equal(res.lane, 6);
    assert_int_not_equal(res.rc, 0);
    assert_int_equal(res.errclass, SINK_ERR_UNREACHABLE);
    assert_int_equal(res.http_status, 0);
    assert_non_null(strstr(res.err, "/slow"));
    if (took < 250000 || took > 3000000)
        fail_msg("timeout after %lld us, want about 300 ms", (long long)took);
    assert_int_equal(nrecs(srv), 1);
    fx_close(&f);
    server_stop(srv);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_lanes_are_concurrent(void **state)
{
    (void)state;
    struct server *srv = server_start();
    enum { LANES = 6 };
    for (int i = 0; i < LANES; i++)
        script_delay(srv, 200, 300);
    struct fx f;
    fx_init(&f, srv->port, "/c");
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[LANES];
    int64_t t0 = clock_mono_us();
    for (int i = 0; i < LANES; i++) {
        evs[i] = mkev(tab, i, "n", 7000, (uint64_t)i);
        assert_int_equal(f.sk.ops->submit(&f.sk, (unsigned)(10 + i), &evs[i], 1), 0);
    }
    struct sink_result res[LANES];
    collect(&f, res, LANES);
    int64_t took = clock_mono_us() - t0;
    unsigned seen = 0;
    for (int i = 0; i < LANES; i++) {
        assert_int_equal(res[i].rc, 0);
        assert_true(res[i].lane >= 10 && res[i].lane < 10 + LANES);
        seen |= 1u << (res[i].lane - 10);
    }
    assert_int_equal(seen, (1u << LANES) - 1);
    /* all were being answered at once, on as many connections */
    assert_int_equal(counter(srv, &srv->max_busy), LANES);
    assert_int_equal(counter(srv, &srv->nconns), LANES);
    if (took > 1500000)
        fail_msg("%d concurrent 300 ms requests took %lld us", LANES, (long long)took);
    fx_close(&f);
    for (int i = 0; i < LANES; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(tab);
    server_stop(srv);
}

/* Beyond max_in_flight batches wait in the sink, and their timeout starts
 * only when they are sent: five 200 ms requests two at a time take 600 ms,
 * longer than the 500 ms timeout, and none times out. */
static void test_max_in_flight(void **state)
{
    (void)state;
    struct server *srv = server_start();
    enum { LANES = 5 };
    for (int i = 0; i < LANES; i++)
        script_delay(srv, 200, 200);
    struct fx f;
    fx_init(&f, srv->port, "/m");
    f.w.max_in_flight = 2;
    f.w.timeout_seconds = 0.5;
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[LANES];
    for (int i = 0; i < LANES; i++) {
        evs[i] = mkev(tab, i, "n", 8000, (uint64_t)i);
        assert_int_equal(f.sk.ops->submit(&f.sk, (unsigned)i, &evs[i], 1), 0);
    }
    struct sink_result res[LANES];
    int64_t took = collect(&f, res, LANES);
    for (int i = 0; i < LANES; i++)
        if (res[i].rc != 0)
            fail_msg("lane %u failed: %s", res[i].lane, res[i].err);
    assert_int_equal(counter(srv, &srv->max_busy), 2);
    assert_true(counter(srv, &srv->nconns) <= 2);
    assert_true(took >= 550000);
    fx_close(&f);
    for (int i = 0; i < LANES; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(tab);
    server_stop(srv);
}

static void test_connection_reuse(void **state)
{
    (void)state;
    struct server *srv = server_start();
    struct fx f;
    fx_init(&f, srv->port, "/r");
    fx_open(&f);
    struct cdc_table *tab = mktab();
    for (int i = 0; i < 6; i++) {
        struct cdc_event *ev = mkev(tab, i, "n", 9000 + (uint64_t)i, 0);
        struct sink_result res = deliver(&f, (unsigned)(i % 3), &ev, 1);
        assert_int_equal(res.rc, 0);
        cdc_event_unref(ev);
    }
    assert_int_equal(nrecs(srv), 6);
    assert_int_equal(counter(srv, &srv->nconns), 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(srv->recs[i].conn, 1);
    fx_close(&f);
    cdc_table_unref(tab);
    server_stop(srv);
}

/* close() abandons what is in flight; the sink can be opened again. */
static void test_close_in_flight_and_reopen(void **state)
{
    (void)state;
    struct server *srv = server_start();
    script_hang(srv);
    script_hang(srv);
    struct fx f;
    fx_init(&f, srv->port, "/z");
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[3] = {mkev(tab, 1, "n", 100, 0), mkev(tab, 2, "n", 100, 1),
                                mkev(tab, 3, "n", 100, 2)};
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(f.sk.ops->submit(&f.sk, i, &evs[i], 1), 0);
    struct sink_result res;
    assert_int_equal(f.sk.ops->poll(&f.sk, 200, &res, 1), 0);
    int64_t t0 = clock_mono_us();
    fx_close(&f);
    assert_true(clock_mono_us() - t0 < 1000000);
    /* nothing in flight: poll returns at once */
    fx_open(&f);
    t0 = clock_mono_us();
    assert_int_equal(f.sk.ops->poll(&f.sk, 2000, &res, 1), 0);
    assert_true(clock_mono_us() - t0 < 500000);
    res = deliver(&f, 0, &evs[2], 1);
    assert_int_equal(res.rc, 0);
    assert_int_equal(nrecs(srv), 3);
    fx_close(&f);
    for (int i = 0; i < 3; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(tab);
    server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_and_timeout_are_unreachable),
        cmocka_unit_test(test_lanes_are_concurrent),
        cmocka_unit_test(test_max_in_flight),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_close_in_flight_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
