/* The source driver and the emitter, driven by the scripted fake source
 * and sink of drivertest.h: pausing (the source reads nothing, the driver
 * keeps acknowledging), a stop request, and a stop in the middle of a
 * transaction (finished if the rest comes, not waited for without end),
 * and a stop position a sink that flushes at intervals does not make wait.
 * Run it under ThreadSanitizer too: make VARIANT=tsan
 * build/tsan/tests/test_driver_stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "drivertest.h"

/* ---------- tests ---------- */

/* Paused: the source reads nothing, but the driver keeps acknowledging;
 * resumed, it goes on. */
static void test_pause_reads_nothing_until_resumed(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    atomic_store(&r.paused, true);
    start_run(&r);
    struct source_stats st;
    for (int i = 0; i < 2000; i++) {
        driver_stats(r.drv, &st);
        if (st.paused)
            break;
        clock_sleep_us(5000);
    }
    assert_true(st.paused);
    clock_sleep_us(200000);
    pthread_mutex_lock(&fk.mu);
    int polls = fk.polls;
    int acks = fk.nacks;
    pthread_mutex_unlock(&fk.mu);
    assert_int_equal(polls, 0);
    assert_true(acks >= 1);
    atomic_store(&r.paused, false);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    check_delivered();
    driver_stats(r.drv, &st);
    assert_false(st.paused);
    teardown(&r);
}

/* A stop request ends the run without a stop position. */
static void test_stop_request(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    r.o.nstop_at = 0;
    signalled = &r;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    start_run(&r);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&fk.mu);
        bool idle = fk.polls > NTXN + 2;
        pthread_mutex_unlock(&fk.mu);
        if (idle)
            break;
        clock_sleep_us(5000);
    }
    /* As in cdc run: a signal handler sets the flag, on the source thread. */
    pthread_kill(r.thread, SIGUSR1);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    check_delivered();
    teardown(&r);
}

/* A stop requested in the middle of a transaction: the source reads the
 * rest of it first, so the sink holds whole transactions only and the
 * final acknowledgement covers everything it was given. */
static void test_stop_finishes_the_open_transaction(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    r.o.nstop_at = 0;
    fk.split_at = 8;
    start_run(&r);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(fk.cursor, 8); /* it stopped right after */
    pthread_mutex_lock(&fs.mu);
    int n = 0;
    for (int k = 1; k <= 8; k++)
        n += txn_events(k);
    assert_int_equal(fs.ndurable, n);
    assert_int_equal(fs.durable[n - 1].lsn, txn_lsn(8));
    assert_int_equal(fs.durable_end, txn_end(8));
    pthread_mutex_unlock(&fs.mu);
    assert_false(fk.ack_beyond_durable);
    assert_true(fk.acks[fk.nacks - 1] >= txn_end(8));
    assert_int_equal(fk.finishes, 1);
    teardown(&r);
}

/* The rest of the transaction never comes: the stop waits for it only so
 * long, and acknowledges nothing of it. */
static void test_stop_waits_for_the_open_transaction_only_so_long(void **state)
{
    (void)state;
    struct run r;
    setup(&r);
    r.o.nstop_at = 0;
    r.o.stop_txn_wait_us = 200000;
    fk.split_at = 8;
    fk.stall_split = true;
    start_run(&r);
    finish_run(&r);
    assert_int_equal(r.rc, 0);
    pthread_mutex_lock(&fs.mu);
    assert_int_equal(fs.durable_end, txn_end(7));
    pthread_mutex_unlock(&fs.mu);
    assert_false(fk.ack_beyond_durable);
    assert_int_equal(fk.acks[fk.nacks - 1], txn_end(7));
    teardown(&r);
}

/* A sink that flushes only at its interval (an iceberg sink's, here 60 s)
 * flushes as soon as it has caught up once the source has read up to the
 * stop position: the run ends in moments, not at the next interval. */
static void test_stop_position_does_not_wait_for_the_flush_interval(void **state)
{
    (void)state;
    static const char pipeline[] = "pipeline_id: fake\n"
                                   "source:\n"
                                   "  database: db\n"
                                   "  tables: [public.t]\n"
                                   "sinks:\n"
                                   "  - sink_id: fake\n"
                                   "    sink_type: iceberg\n"
                                   "    iceberg:\n"
                                   "      warehouse: file:///nonexistent\n"
                                   "      flush_interval_seconds: 60\n";
    struct run r;
    setup_with(&r, pipeline);
    int64_t t0 = clock_mono_us();
    start_run(&r);
    finish_run(&r);
    int64_t took = clock_mono_us() - t0;
    assert_int_equal(r.rc, 0);
    check_delivered();
    if (took > 20000000)
        fail_msg("the run took %.1f s: it waited for the 60 s flush interval", took / 1e6);
    teardown(&r);
}

int main(void)
{
    alarm(300); /* a hang is a failure, not a stuck build */
    pthread_mutex_init(&fs.mu, NULL);
    pthread_cond_init(&fs.cv, NULL);
    pthread_mutex_init(&fk.mu, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_reads_nothing_until_resumed),
        cmocka_unit_test(test_stop_request),
        cmocka_unit_test(test_stop_finishes_the_open_transaction),
        cmocka_unit_test(test_stop_waits_for_the_open_transaction_only_so_long),
        cmocka_unit_test(test_stop_position_does_not_wait_for_the_flush_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
