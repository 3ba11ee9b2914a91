/* The source driver and the emitter, driven by the scripted fake source
 * and sink of drivertest.h: a plain run to the stop position, a dropped
 * connection and its backoff, a first start that fails, a sink that loses
 * a flush and the rewind that follows, and backpressure from a stuck sink.
 * Pausing and stopping are test_driver_stop.c's.  Run it under
 * ThreadSanitizer too: make VARIANT=tsan build/tsan/tests/test_driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "drivertest.h"

/* ---------- tests ---------- */

/* A plain run: everything arrives, the stop position ends it. */
static void test_streams_to_stop_position(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    start_run(&r);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    check_delivered();
    assert_int_equal(fk.nstarts, 1);
    assert_int_equal(fk.starts[0], 0);
    struct source_stats st;
    driver_stats(r.drv, &st);
    int events = 0;
    for (int k = 1; k <= NTXN; k++)
        events += txn_events(k);
    assert_int_equal(st.events, (uint64_t)events);
    assert_int_equal(st.transactions, NTXN);
    assert_int_equal(st.reconnects, 0);
    assert_false(st.connected);
    teardown(&r);
}

/* The connection drops in the middle of a transaction and comes back only
 * after refused starts: the driver waits 1, 2, 4, … s (capped at 30),
 * resumes after the newest transaction already in the log, and the sink
 * skips the half it had. */
static void test_reconnects_with_backoff(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    fk.lose_at = 7;
    fk.refuse_first = 7;
    /* Nothing is confirmed until the source is back: the restart position
     * comes from what is in the log, not from what sinks confirmed. */
    fs.hold = true;
    start_run(&r);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&fk.mu);
        bool back = fk.nstarts == 9;
        pthread_mutex_unlock(&fk.mu);
        if (back)
            break;
        clock_sleep_us(5000);
    }
    pthread_mutex_lock(&fs.mu);
    fs.hold = false;
    pthread_mutex_unlock(&fs.mu);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    check_delivered();
    static const int64_t want[] = {1000000,  2000000,  4000000,  8000000,
                                   16000000, 30000000, 30000000, 30000000};
    assert_int_equal(r.nbackoffs, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(r.backoffs[i], want[i]);
    /* The first start, then the restarts: after transaction 6, the newest
     * one whole in the log (7 was cut). */
    assert_int_equal(fk.nstarts, 9);
    for (int i = 1; i < fk.nstarts; i++)
        assert_int_equal(fk.starts[i], txn_end(6));
    assert_int_equal(fk.disconnects, 1);
    assert_int_equal(fk.rewinds, 0);
    struct source_stats st;
    driver_stats(r.drv, &st);
    assert_int_equal(st.reconnects, 1 + 7);
    teardown(&r);
}

/* The first start failing is a misconfiguration: the run stops at once. */
static void test_first_start_failure_is_fatal(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    fk.refuse_initial = true;
    start_run(&r);
    finish_run(&r);
    assert_int_equal(r.rc, CDC_ECONN);
    assert_string_equal(r.err, "source: scripted: connection refused");
    assert_int_equal(r.nbackoffs, 0);
    teardown(&r);
}

/* The sink loses a flush: its runner reopens it and asks for a rewind; the
 * driver restarts the source from the confirmed position and the sink gets
 * what it lost, once. */
static void test_rewind_replays_from_confirmed(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    fs.fail_flush_at = 3;
    start_run(&r);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    check_delivered();
    assert_int_equal(fk.rewinds, 1);
    assert_int_equal(fs.opens, 2);
    assert_true(fk.nstarts == 2);
    /* The restart position was confirmed, so it was durable. */
    assert_true(fk.starts[1] <= fk.acks[fk.nacks - 1]);
    teardown(&r);
}

/* The pipeline is full (the sink is stuck): the emitter waits and, while it
 * does, acknowledges and lets the source keep its connection alive. */
static void test_backpressure_keeps_source_alive(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    fs.block_writes = true;
    start_run(&r);
    pthread_mutex_lock(&fs.mu);
    while (fs.blocked == 0)
        pthread_cond_wait(&fs.cv, &fs.mu);
    pthread_mutex_unlock(&fs.mu);
    int idles = 0;
    for (int i = 0; i < 2000 && idles < 3; i++) {
        clock_sleep_us(5000);
        pthread_mutex_lock(&fk.mu);
        idles = fk.idles;
        pthread_mutex_unlock(&fk.mu);
    }
    assert_true(idles >= 3);
    /* It is waiting for room, not reading. */
    pthread_mutex_lock(&fk.mu);
    int polls = fk.polls, acks = fk.nacks;
    pthread_mutex_unlock(&fk.mu);
    clock_sleep_us(300000);
    pthread_mutex_lock(&fk.mu);
    assert_int_equal(fk.polls, polls);
    assert_int_equal(fk.nacks, acks); /* nothing is durable: nothing new to acknowledge */
    assert_true(fk.idles > idles);
    pthread_mutex_unlock(&fk.mu);
    pthread_mutex_lock(&fs.mu);
    fs.block_writes = false;
    pthread_cond_broadcast(&fs.cv);
    pthread_mutex_unlock(&fs.mu);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    check_delivered();
    teardown(&r);
}

int main(void)
{
    alarm(300); /* a hang is a failure, not a stuck build */
    pthread_mutex_init(&fs.mu, NULL);
    pthread_cond_init(&fs.cv, NULL);
    pthread_mutex_init(&fk.mu, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_to_stop_position),
        cmocka_unit_test(test_reconnects_with_backoff),
        cmocka_unit_test(test_first_start_failure_is_fatal),
        cmocka_unit_test(test_rewind_replays_from_confirmed),
        cmocka_unit_test(test_backpressure_keeps_source_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
