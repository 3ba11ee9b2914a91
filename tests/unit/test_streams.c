/* Positions with streams through a scripted sink: the two-stream fake
 * source of streamstest.h through the real driver, engine and serial
 * runner into a sink that records what it makes durable, fails a flush
 * and dead-letters a change on request; and the commit tracker's
 * positions per stream.  Run it under ThreadSanitizer too: make
 * VARIANT=tsan build/tsan/tests/test_streams.  The same through the real
 * file sink is test_streams_file.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pipeline/tracker.h"
#include "state/store.h"
#include "streamstest.h"

/* ---------- the scripted sink ---------- */

static int ks_open(struct sink *sk, struct cdc_posmap *have)
{
    pthread_mutex_lock(&ks.mu);
    ks.opens++;
    ks.npending = 0;
    cdc_posmap_copy(have, &ks.have);
    ks.streams_at_reopen = ks.have.n;
    pthread_mutex_unlock(&ks.mu);
    return 0;
}

static int ks_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    pthread_mutex_lock(&ks.mu);
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        if (ev->op == CDC_OP_REWIND)
            continue;
        int id = ev->op == CDC_OP_COMMIT ? -1 : atoi(cdc_val_ptr(ev, &ev->after[0]));
        if (id >= 0 && id == ks.refuse_id) {
            ks.refuse_id = -1;
            ks.npending = 0;
            sk->err_seq = ev->seq;
            pthread_mutex_unlock(&ks.mu);
            return sink_set_error(sk, SINK_ERR_PERMANENT, "scripted: change %d refused", id);
        }
        if (id >= 0 && id == ks.fail_after_id) {
            ks.fail_after_id = -1;
            ks.fail_next_flush = true;
        }
        assert_true(ks.npending < MAXREC);
        ks.pending[ks.npending++] = (struct rec){ev->pos.stream, ev->pos, id, ev->end_lsn};
        ks.pending_seq = ev->seq;
    }
    pthread_mutex_unlock(&ks.mu);
    return 0;
}

static int ks_flush(struct sink *sk, uint64_t *durable_seq)
{
    pthread_mutex_lock(&ks.mu);
    *durable_seq = 0;
    if (ks.hold) {
        pthread_mutex_unlock(&ks.mu);
        return 0;
    }
    if (ks.fail_next_flush) {
        ks.fail_next_flush = false;
        ks.npending = 0;
        pthread_mutex_unlock(&ks.mu);
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "scripted flush failure");
    }
    for (int i = 0; i < ks.npending; i++) {
        struct rec *p = &ks.pending[i];
        if (p->id < 0)
            ks.durable_end[p->stream] = p->end;
        assert_true(ks.ndurable < MAXREC);
        ks.durable[ks.ndurable++] = *p;
        cdc_posmap_set(&ks.have, p->pos);
    }
    ks.npending = 0;
    *durable_seq = ks.pending_seq;
    pthread_mutex_unlock(&ks.mu);
    return 0;
}

static void ks_close(struct sink *sk)
{
    pthread_mutex_lock(&ks.mu);
    ks.npending = 0;
    pthread_mutex_unlock(&ks.mu);
}

static const struct sink_ops scripted_ops = {
    .open = ks_open,
    .write = ks_write,
    .flush = ks_flush,
    .close = ks_close,
};

static uint64_t scripted_end_of(uint32_t s)
{
    pthread_mutex_lock(&ks.mu);
    uint64_t e = ks.durable_end[s];
    pthread_mutex_unlock(&ks.mu);
    return e;
}

static void check_scripted(int skip_id)
{
    pthread_mutex_lock(&ks.mu);
    int ids[MAXREC], n = 0;
    for (int i = 0; i < ks.ndurable; i++)
        if (ks.durable[i].id >= 0)
            ids[n++] = ks.durable[i].id;
    for (uint32_t s = 0; s < NSTREAMS; s++)
        assert_int_equal(ks.durable_end[s], txn_end(NTXN));
    pthread_mutex_unlock(&ks.mu);
    check_ids(ids, n, skip_id);
}

/* ---------- tests ---------- */

/* The tracker confirms each stream on its own: a stream's position moves
 * when its own transactions are durable everywhere, and a stream that lags
 * holds back nobody else. */
static void test_tracker_per_stream(void **state)
{
    (void)state;
    const struct cdc_ack start[] = {{0, 100}, {1, 7}};
    struct tracker *t = tracker_new(2, start, 2);
    tracker_commit(t, 2, 0, 1500);
    tracker_commit(t, 4, 1, 15);
    tracker_commit(t, 4, 0, 1600); /* the same seq, another stream: both kept */
    tracker_commit(t, 6, 0, 2500);
    tracker_sink_done(t, 0, 10);
    tracker_sink_done(t, 1, 3);
    assert_int_equal(tracker_confirmed_of(t, 0), 1500);
    assert_int_equal(tracker_confirmed_of(t, 1), 7);
    tracker_sink_done(t, 1, 5);
    struct cdc_acks c = {0};
    tracker_confirmed(t, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(cdc_acks_get(&c, 0)->pos, 1600);
    assert_int_equal(cdc_acks_get(&c, 1)->pos, 15);
    /* a rewind answers every stream's restart position */
    tracker_commit(t, 8, 1, 25);
    tracker_rewind(t, &c);
    assert_int_equal(cdc_acks_get(&c, 0)->pos, 1600);
    assert_int_equal(cdc_acks_get(&c, 1)->pos, 15);
    assert_int_equal(tracker_pending(t), 0);
    /* a stream seen for the first time */
    tracker_commit(t, 9, 5, 3);
    tracker_sink_done(t, 0, 9);
    tracker_sink_done(t, 1, 9);
    assert_int_equal(tracker_confirmed_of(t, 5), 3);
    cdc_acks_fini(&c);
    tracker_free(t);
}

/* A sink that stays behind with interleaved streams: the FIFO stays
 * bounded, and merging confirms each stream later, never earlier, never
 * with another stream's position. */
static void test_tracker_bounded_streams(void **state)
{
    (void)state;
    const struct cdc_ack start[] = {{0, 0}, {1, 0}};
    struct tracker *t = tracker_new(1, start, 2);
    for (uint64_t i = 1; i <= 600000; i++) /* stream 1 lags: one of its per three */
        tracker_commit(t, i, i % 3 == 0, i % 3 == 0 ? i / 3 : i * 10);
    assert_true(tracker_pending(t) <= 65536);
    for (uint64_t done = 1; done <= 600000; done += 49999) {
        tracker_sink_done(t, 0, done);
        assert_true(tracker_confirmed_of(t, 0) <= done * 10);
        assert_true(tracker_confirmed_of(t, 1) <= done / 3);
    }
    tracker_sink_done(t, 0, 600000);
    assert_int_equal(tracker_confirmed_of(t, 0), 599999 * 10);
    assert_int_equal(tracker_confirmed_of(t, 1), 200000);
    tracker_free(t);
}

/* A flush fails once the destination holds stream 0 far ahead of stream 1:
 * the reopen reports both, the rewind replays both from their confirmed
 * positions, and the lagging stream's changes below stream 0's position
 * are delivered, not skipped.  Then a whole new run whose source starts
 * both streams from the beginning: the sink skips, per stream, exactly
 * what it holds. */
static void test_scripted_sink_failure_and_restart(void **state)
{
    (void)state;
    reset();
    durable_end_of = scripted_end_of;
    ks.fail_after_id = change_id(0, 10, 0);
    struct run r;
    start_run(&r, &scripted_ops, NULL);
    finish_run(&r);
    check_scripted(-1);
    check_acks();
    assert_int_equal(fk.rewinds, 1);
    assert_int_equal(ks.opens, 2);
    assert_int_equal(ks.streams_at_reopen, NSTREAMS);

    /* Restart: every change comes again, none is doubled. */
    fk.from_zero = true;
    int before = ks.ndurable;
    start_run(&r, &scripted_ops, NULL);
    finish_run(&r);
    assert_int_equal(ks.ndurable, before);
    check_scripted(-1);
    check_acks();
}

/* A change of stream 1 is refused for good (dead-lettered) while nothing
 * is durable yet: after the rewind both streams replay from the start, and
 * stream 0's change at the same position is delivered, not taken for the
 * dead letter. */
static void test_dead_letter_is_per_stream(void **state)
{
    (void)state;
    reset();
    durable_end_of = scripted_end_of;
    struct store *store;
    char err[256];
    assert_int_equal(store_open(&store, ":memory:", err, sizeof err), 0);
    ks.hold = true;
    ks.refuse_id = change_id(1, 2, 0); /* stream 1 at (2000, 0); stream 0 has one there too */
    struct run r;
    start_run(&r, &scripted_ops, store);
    assert_int_equal(pthread_create(&r.thread, NULL, run_main, &r), 0);
    for (int i = 0; i < 4000; i++) {
        pthread_mutex_lock(&ks.mu);
        bool refused = ks.refuse_id < 0;
        pthread_mutex_unlock(&ks.mu);
        if (refused)
            break;
        clock_sleep_us(2000);
    }
    pthread_mutex_lock(&ks.mu);
    assert_true(ks.refuse_id < 0);
    ks.hold = false;
    pthread_mutex_unlock(&ks.mu);
    pthread_join(r.thread, NULL);
    engine_close(r.eng);
    assert_int_equal(engine_wait(r.eng, 10000000), 0);
    driver_finish(r.drv);
    assert_int_equal(r.rc, 0);
    engine_free(r.eng);
    driver_free(r.drv);
    config_free(r.cfg);
    check_scripted(change_id(1, 2, 0));
    check_acks();
    struct cdc_pos *pos;
    size_t n;
    assert_int_equal(store_dlq_pending_positions(store, "out", &pos, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pos[0].stream, 1);
    assert_int_equal(pos[0].lsn, txn_lsn(2));
    assert_int_equal(pos[0].idx, 0);
    free(pos);
    store_close(store);
}

int main(void)
{
    alarm(300); /* a hang is a failure, not a stuck build */
    pthread_mutex_init(&ks.mu, NULL);
    pthread_mutex_init(&fk.mu, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracker_per_stream),
        cmocka_unit_test(test_tracker_bounded_streams),
        cmocka_unit_test(test_scripted_sink_failure_and_restart),
        cmocka_unit_test(test_dead_letter_is_per_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
