/* Event log and commit tracker: unit tests plus a multi-threaded stress test
 * (run it under ThreadSanitizer: make VARIANT=tsan build/tsan/tests/test_pipeline). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event.h"
#include "pipeline/evlog.h"
#include "pipeline/retry.h"
#include "pipeline/runner.h"
#include "pipeline/tracker.h"
#include "util/err.h"

static struct cdc_event *mk(uint64_t seq, size_t extra, unsigned part)
{
    struct cdc_event *ev = cdc_event_new(0, 0, extra);
    ev->op = CDC_OP_INSERT;
    ev->seq = seq;
    ev->part = (uint16_t)part;
    return ev;
}

/* Stream 0, the only one of these tests (test_streams.c has several). */
static struct tracker *tracker_new0(unsigned nsinks, uint64_t start)
{
    return tracker_new(nsinks, &(struct cdc_ack){0, start}, 1);
}

static uint64_t tracker_rewind0(struct tracker *t)
{
    struct cdc_acks restart = {0};
    tracker_rewind(t, &restart);
    const struct cdc_ack *a = cdc_acks_get(&restart, 0);
    uint64_t pos = a ? a->pos : 0;
    cdc_acks_fini(&restart);
    return pos;
}

static void test_tracker_basics(void **state)
{
    (void)state;
    struct tracker *t = tracker_new0(2, 100);
    assert_int_equal(tracker_confirmed_of(t, 0), 100);
    tracker_commit(t, 3, 0, 200);
    tracker_commit(t, 5, 0, 300);
    tracker_commit(t, 5, 0, 350); /* same last seq: coalesced, newer LSN wins */
    assert_int_equal(tracker_pending(t), 2);
    tracker_sink_done(t, 0, 10);
    assert_int_equal(tracker_confirmed_of(t, 0), 100); /* sink 1 has nothing durable yet */
    tracker_sink_done(t, 1, 4);
    assert_int_equal(tracker_confirmed_of(t, 0), 200);
    tracker_sink_done(t, 1, 3); /* going backwards is ignored */
    assert_int_equal(tracker_confirmed_of(t, 0), 200);
    tracker_sink_done(t, 1, 5);
    assert_int_equal(tracker_confirmed_of(t, 0), 350);
    assert_int_equal(tracker_pending(t), 0);
    /* A rewind forgets what is pending and answers where to restart. */
    tracker_commit(t, 9, 0, 400);
    assert_int_equal(tracker_rewind0(t), 350);
    assert_int_equal(tracker_pending(t), 0);
    tracker_sink_done(t, 0, 100);
    tracker_sink_done(t, 1, 100);
    assert_int_equal(tracker_confirmed_of(t, 0), 350);
    /* The FIFO grows past its initial size. */
    for (uint64_t i = 0; i < 5000; i++)
        tracker_commit(t, 200 + i, 0, 1000 + i);
    tracker_sink_done(t, 0, 4000);
    tracker_sink_done(t, 1, 4000);
    assert_int_equal(tracker_confirmed_of(t, 0), 1000 + 3800);
    tracker_free(t);
}

/* A sink that stays behind must not grow the tracker without end; merging
 * may confirm later, never earlier. */
static void test_tracker_bounded(void **state)
{
    (void)state;
    struct tracker *t = tracker_new0(1, 0);
    for (uint64_t i = 1; i <= 1000000; i++)
        tracker_commit(t, i, 0, i * 10);
    assert_true(tracker_pending(t) <= 65536);
    for (uint64_t done = 1; done <= 1000000; done += 99991) {
        tracker_sink_done(t, 0, done);
        uint64_t c = tracker_confirmed_of(t, 0);
        assert_true(c <= done * 10); /* never beyond what is durable */
    }
    tracker_sink_done(t, 0, 1000000);
    assert_int_equal(tracker_confirmed_of(t, 0), 10000000);
    tracker_free(t);
}

static void test_tracker_marks(void **state)
{
    (void)state;
    struct tracker *t = tracker_new0(2, 0);
    uint64_t ids[8];
    tracker_mark(t, 10, 1);
    tracker_mark(t, 20, 2);
    tracker_mark(t, 20, 3);
    assert_int_equal(tracker_take_marks(t, ids, 8), 0);
    tracker_sink_done(t, 0, 25);
    tracker_sink_done(t, 1, 15);
    assert_int_equal(tracker_take_marks(t, ids, 8), 1);
    assert_int_equal(ids[0], 1);
    tracker_sink_done(t, 1, 20);
    assert_int_equal(tracker_take_marks(t, ids, 1), 1); /* max respected */
    assert_int_equal(ids[0], 2);
    assert_int_equal(tracker_take_marks(t, ids, 8), 1);
    assert_int_equal(ids[0], 3);
    for (uint64_t i = 0; i < 1000; i++) /* grows and compacts */
        tracker_mark(t, 100 + i, 100 + i);
    tracker_sink_done(t, 0, 2000);
    tracker_sink_done(t, 1, 2000);
    size_t got = 0;
    while (tracker_take_marks(t, ids, 8) > 0)
        got++;
    assert_true(got >= 125);
    tracker_free(t);
}

static void test_evlog_order_and_release(void **state)
{
    (void)state;
    struct evlog *log;
    struct evlog_cfg cfg = {
        .nconsumers = 2, .nparts = 4, .max_bytes = 1 << 20, .max_per_part = 100};
    assert_int_equal(evlog_new(&log, &cfg), 0);
    struct cdc_event *evs[10];
    for (int i = 0; i < 10; i++)
        evs[i] = mk((uint64_t)i + 1, 10, (unsigned)i);
    size_t done;
    assert_int_equal(evlog_push(log, evs, 10, &done, 0), 0);
    assert_int_equal(done, 10);
    struct cdc_event *out[16];
    for (unsigned c = 0; c < 2; c++) {
        int n = evlog_read(log, c, out, 4, 0);
        assert_int_equal(n, 4);
        for (int i = 0; i < 4; i++)
            assert_int_equal(out[i]->seq, (uint64_t)i + 1);
        evlog_release(log, out, 4);
        n = evlog_read(log, c, out, 16, 0);
        assert_int_equal(n, 6);
        assert_int_equal(out[0]->seq, 5);
        evlog_release(log, out, 6);
    }
    struct evlog_stats st;
    evlog_stats(log, &st);
    assert_int_equal(st.live_events, 0);
    assert_int_equal(st.live_bytes, 0);
    assert_int_equal(evlog_read(log, 0, out, 16, 0), 0);
    evlog_close(log);
    assert_int_equal(evlog_read(log, 0, out, 16, 0), CDC_ESTOP);
    evlog_free(log);
}

static void test_evlog_budgets(void **state)
{
    (void)state;
    struct evlog *log;
    struct cdc_event *probe = mk(0, 1000, 0);
    size_t evsize = probe->size;
    cdc_event_unref(probe);
    /* Room for three events by bytes; two per partition. */
    struct evlog_cfg cfg = {
        .nconsumers = 1, .nparts = 2, .max_bytes = 3 * evsize, .max_per_part = 2};
    assert_int_equal(evlog_new(&log, &cfg), 0);
    struct cdc_event *evs[4] = {mk(1, 1000, 0), mk(2, 1000, 0), mk(3, 1000, 0), mk(4, 1000, 1)};
    size_t done;
    /* Partition 0 holds two: the third waits (times out) even with bytes left. */
    assert_int_equal(evlog_push(log, evs, 4, &done, 20), CDC_EFULL);
    assert_int_equal(done, 2);
    struct cdc_event *out[4];
    assert_int_equal(evlog_read(log, 0, out, 4, 0), 2);
    evlog_release(log, out, 1); /* frees one of partition 0 */
    assert_int_equal(evlog_push(log, evs + 2, 2, &done, 20), 0);
    struct evlog_stats st;
    evlog_stats(log, &st);
    assert_int_equal(st.live_events, 3);
    assert_true(st.live_bytes <= cfg.max_bytes);
    assert_true(st.full_waits >= 1);
    /* Bytes now full: one more waits even on the empty partition 1. */
    struct cdc_event *more = mk(5, 1000, 1);
    assert_int_equal(evlog_push(log, &more, 1, &done, 20), CDC_EFULL);
    assert_int_equal(done, 0);
    evlog_release(log, out + 1, 1);
    assert_int_equal(evlog_push(log, &more, 1, &done, 20), 0);
    /* Closing wakes everyone; unread events are freed by evlog_free. */
    evlog_close(log);
    struct cdc_event *late = mk(6, 10, 0);
    assert_int_equal(evlog_push(log, &late, 1, &done, 20), CDC_ESTOP);
    cdc_event_unref(late);
    evlog_free(log);
}

static void test_evlog_oversized_event_passes_alone(void **state)
{
    (void)state;
    struct evlog *log;
    struct evlog_cfg cfg = {.nconsumers = 1, .nparts = 1, .max_bytes = 100, .max_per_part = 10};
    assert_int_equal(evlog_new(&log, &cfg), 0);
    struct cdc_event *big = mk(1, 5000, 0);
    size_t done;
    assert_int_equal(evlog_push(log, &big, 1, &done, 0), 0);
    struct cdc_event *second = mk(2, 10, 0);
    assert_int_equal(evlog_push(log, &second, 1, &done, 10), CDC_EFULL);
    struct cdc_event *out[2];
    assert_int_equal(evlog_read(log, 0, out, 2, 0), 1);
    evlog_release(log, out, 1);
    assert_int_equal(evlog_push(log, &second, 1, &done, 10), 0);
    evlog_free(log);
}

static void test_retry_delays(void **state)
{
    (void)state;
    struct retry_cfg rc = {.max_attempts = 5,
                           .initial_wait_seconds = 1,
                           .max_wait_seconds = 10,
                           .multiplier = 2,
                           .jitter = false};
    uint64_t rng = 1;
    assert_int_equal(retry_delay_us(&rc, 2, 0, &rng), 1000000);
    assert_int_equal(retry_delay_us(&rc, 3, 0, &rng), 2000000);
    assert_int_equal(retry_delay_us(&rc, 5, 0, &rng), 8000000);
    assert_int_equal(retry_delay_us(&rc, 9, 0, &rng), 10000000);
    assert_int_equal(retry_delay_us(&rc, 2, 30000000, &rng), 30000000); /* Retry-After wins */
    rc.jitter = true;
    for (int i = 0; i < 1000; i++) {
        int64_t d = retry_delay_us(&rc, 4, 0, &rng);
        assert_true(d >= 2000000 && d <= 4000000);
    }
}

/* A sink that keeps failing: the backoff grows from one failure to the next
 * (a successful reopen does not start it over) and starts over only once the
 * sink has made durable as much as the last failure lost. */
static void test_failure_streak_backoff(void **state)
{
    (void)state;
    struct sink_cfg sc;
    memset(&sc, 0, sizeof sc);
    sc.sink_id = "jsonl";
    sc.retry = (struct retry_cfg){.max_attempts = 5,
                                  .initial_wait_seconds = 1,
                                  .max_wait_seconds = 10,
                                  .multiplier = 2,
                                  .jitter = false};
    struct runner r;
    memset(&r, 0, sizeof r);
    r.sk.cfg = &sc;
    assert_int_equal(runner_failed(&r, 500), 1);
    assert_int_equal(runner_backoff_us(&r, 0, 0), 1000000);
    assert_int_equal(runner_backoff_us(&r, 1, 0), 2000000); /* the reopen failed too */
    runner_progress(&r, 100);                               /* a little, not past the loss */
    assert_int_equal(runner_failed(&r, 500), 2);
    assert_int_equal(runner_backoff_us(&r, 0, 0), 2000000);
    assert_int_equal(runner_failed(&r, 0), 3); /* nothing lost: one event must get through */
    assert_int_equal(runner_backoff_us(&r, 0, 0), 4000000);
    assert_int_equal(runner_failed(&r, 10), 4);
    assert_int_equal(runner_backoff_us(&r, 0, 0), 8000000);
    assert_true(r.fail_streak > REWIND_BUDGET);
    assert_int_equal(runner_backoff_us(&r, 3, 0), 10000000);        /* capped */
    assert_int_equal(runner_backoff_us(&r, 0, 30000000), 30000000); /* Retry-After wins */
    runner_progress(&r, 9);
    assert_int_equal(r.fail_streak, 4);
    runner_progress(&r, 1); /* what the last failure lost is durable again */
    assert_int_equal(r.fail_streak, 0);
    assert_int_equal(runner_failed(&r, 1), 1);
    assert_int_equal(runner_backoff_us(&r, 0, 0), 1000000);
}

/* ---------- stress: one producer, several consumers, tracker ---------- */

#define STRESS_EVENTS    400000
#define STRESS_CONSUMERS 3

struct stress {
    struct evlog *log;
    struct tracker *tracker;
    size_t max_bytes;
    unsigned id;
    uint64_t seen;
    int failed;
};

static void *consumer(void *arg)
{
    struct stress *s = arg;
    struct cdc_event *out[257];
    uint64_t rng = 0x1234567 + s->id;
    uint64_t expect = 1;
    for (;;) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t want = 1 + rng % 256;
        int n = evlog_read(s->log, s->id, out, want, 50);
        if (n == CDC_ESTOP)
            break;
        for (int i = 0; i < n; i++) {
            if (out[i]->seq != expect)
                s->failed = 1;
            expect++;
        }
        if (n > 0) {
            uint64_t last = out[n - 1]->seq;
            /* Release in two halves, in a different order than read. */
            evlog_release(s->log, out + n / 2, (size_t)(n - n / 2));
            evlog_release(s->log, out, (size_t)(n / 2));
            tracker_sink_done(s->tracker, s->id, last);
            s->seen += (uint64_t)n;
        }
    }
    if (expect != STRESS_EVENTS + 1)
        s->failed = 1;
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    struct evlog *log;
    struct evlog_cfg cfg = {
        .nconsumers = STRESS_CONSUMERS, .nparts = 8, .max_bytes = 256 * 1024, .max_per_part = 300};
    assert_int_equal(evlog_new(&log, &cfg), 0);
    struct tracker *tracker = tracker_new0(STRESS_CONSUMERS, 0);
    struct stress st[STRESS_CONSUMERS];
    pthread_t th[STRESS_CONSUMERS];
    for (unsigned i = 0; i < STRESS_CONSUMERS; i++) {
        st[i] = (struct stress){log, tracker, cfg.max_bytes, i, 0, 0};
        pthread_create(&th[i], NULL, consumer, &st[i]);
    }
    uint64_t rng = 42, lsn = 0, last_confirmed = 0;
    struct cdc_event *batch[64];
    size_t nb = 0;
    for (uint64_t seq = 1; seq <= STRESS_EVENTS; seq++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        batch[nb++] = mk(seq, rng % 2000, (unsigned)(rng >> 32) % 8);
        if (seq % 7 == 0)
            tracker_commit(tracker, seq, 0, ++lsn);
        if (nb == 64 || seq == STRESS_EVENTS) {
            size_t off = 0, done;
            while (off < nb) {
                evlog_push(log, batch + off, nb - off, &done, 10);
                off += done;
                struct evlog_stats es;
                evlog_stats(log, &es);
                /* One event may exceed the budget only when it is alone. */
                assert_true(es.live_bytes <= cfg.max_bytes + 2100 + sizeof(struct cdc_event));
            }
            nb = 0;
            uint64_t c = tracker_confirmed_of(tracker, 0);
            assert_true(c >= last_confirmed);
            last_confirmed = c;
        }
    }
    evlog_close(log);
    for (unsigned i = 0; i < STRESS_CONSUMERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(st[i].failed, 0);
        assert_int_equal(st[i].seen, STRESS_EVENTS);
    }
    assert_int_equal(tracker_confirmed_of(tracker, 0), STRESS_EVENTS / 7);
    struct evlog_stats es;
    evlog_stats(log, &es);
    assert_int_equal(es.live_events, 0);
    assert_int_equal(es.live_bytes, 0);
    tracker_free(tracker);
    evlog_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracker_basics),
        cmocka_unit_test(test_tracker_marks),
        cmocka_unit_test(test_tracker_bounded),
        cmocka_unit_test(test_evlog_order_and_release),
        cmocka_unit_test(test_evlog_budgets),
        cmocka_unit_test(test_evlog_oversized_event_passes_alone),
        cmocka_unit_test(test_retry_delays),
        cmocka_unit_test(test_failure_streak_backoff),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
