/* Unit tests for how events and their table references are made and let go
 * (core/event.c): released events wait in their maker's grave until a
 * thread that makes events frees them, and references taken ahead in a
 * bank all come back.  Run under AddressSanitizer (a buried event is
 * poisoned, so a use after release is caught) and ThreadSanitizer. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event.h"

static struct cdc_table *mktab(uint64_t id)
{
    struct cdc_table *tab = cdc_table_new(id, "public", "t", "cdc", 1);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("bigint");
    cdc_table_finish(tab);
    return tab;
}

static unsigned refs_of(struct cdc_table *tab)
{
    return atomic_load(&tab->refs);
}

/* A bank takes references ahead in one add, hands them out one by one,
 * gives back what is left when the table changes or it is dropped, and
 * the references handed out are real: the table lives until the last. */
static void test_refbank_counts(void **state)
{
    (void)state;
    struct cdc_table *a = mktab(1), *b = mktab(2);
    struct cdc_refbank bank = {0};
    assert_ptr_equal(cdc_refbank_take(&bank, a), a);
    assert_int_equal(refs_of(a), 1 + CDC_REFBANK);
    for (int i = 1; i < CDC_REFBANK; i++)
        cdc_refbank_take(&bank, a);
    assert_int_equal(bank.n, 0);
    cdc_refbank_take(&bank, a); /* the next add */
    assert_int_equal(refs_of(a), 1 + 2 * CDC_REFBANK);
    cdc_refbank_take(&bank, b); /* what is left of a goes back */
    assert_int_equal(refs_of(a), 1 + CDC_REFBANK + 1);
    assert_int_equal(refs_of(b), 1 + CDC_REFBANK);
    cdc_refbank_drop(&bank);
    assert_int_equal(refs_of(b), 2);
    assert_null(bank.tab);
    cdc_refbank_drop(&bank); /* an empty bank: nothing */
    /* the creator's reference, then those handed out, in runs */
    cdc_table_unref(a);
    cdc_table_unref_n(a, CDC_REFBANK);
    assert_int_equal(refs_of(a), 1);
    cdc_table_unref_n(a, 0);
    cdc_table_unref_n(a, 1); /* the last: freed (ASan sees a leak otherwise) */
    cdc_table_unref_n(b, 2);
}

/* Releasing events keeps their table reference for the caller when asked,
 * and frees them (once reaped) either way. */
static void test_unref_keep_table(void **state)
{
    (void)state;
    struct cdc_table *t = mktab(3);
    struct cdc_event *ev = cdc_event_new(0, 1, 8);
    cdc_table_ref(t);
    ev->tab = t;
    cdc_event_ref(ev);
    struct cdc_table *got = (struct cdc_table *)1;
    assert_false(cdc_event_unref_keep_table(ev, &got));
    assert_null(got);
    assert_true(cdc_event_unref_keep_table(ev, &got));
    assert_ptr_equal(got, t);
    assert_int_equal(refs_of(t), 2);
    cdc_table_unref(got);
    cdc_event_reap();
    cdc_table_unref(t);
}

#define MAKERS     2
#define PER_MAKER  200000
#define QUEUE_SIZE 1024

/* One maker's events on their way to the releasing thread. */
struct queue {
    struct cdc_event *ring[QUEUE_SIZE];
    atomic_size_t head, tail;
    struct cdc_table *tab;
    atomic_bool done;
};

static void *maker_main(void *arg)
{
    struct queue *q = arg;
    struct cdc_refbank bank = {0};
    for (unsigned i = 0; i < PER_MAKER; i++) {
        size_t n = i % 7 * 40; /* several sizes */
        struct cdc_event *ev = cdc_event_new(0, 1, n + 1);
        memset(ev->data, 'x', n);
        ev->data_len = (uint32_t)n;
        ev->tab = cdc_refbank_take(&bank, q->tab);
        ev->seq = i;
        while (atomic_load(&q->head) - atomic_load(&q->tail) == QUEUE_SIZE)
            ;
        size_t h = atomic_load(&q->head);
        q->ring[h % QUEUE_SIZE] = ev;
        atomic_store(&q->head, h + 1);
    }
    cdc_refbank_drop(&bank);
    atomic_store(&q->done, true);
    return NULL;
}

/* Two threads make events, a third releases them: every event reaches the
 * releaser intact (its data as made), and at the end every table is back
 * to the one reference the test holds, so every event was freed. */
static void test_makers_and_releaser(void **state)
{
    (void)state;
    static struct queue q[MAKERS];
    pthread_t th[MAKERS];
    for (int m = 0; m < MAKERS; m++) {
        memset(&q[m], 0, sizeof q[m]);
        q[m].tab = mktab(10 + (uint64_t)m);
        assert_int_equal(pthread_create(&th[m], NULL, maker_main, &q[m]), 0);
    }
    uint64_t next[MAKERS] = {0};
    for (;;) {
        bool finished = true;
        for (int m = 0; m < MAKERS; m++) {
            size_t t = atomic_load(&q[m].tail);
            if (t == atomic_load(&q[m].head)) {
                /* done is set after the last event is queued */
                if (!atomic_load(&q[m].done) || t != atomic_load(&q[m].head))
                    finished = false;
                continue;
            }
            finished = false;
            struct cdc_event *ev = q[m].ring[t % QUEUE_SIZE];
            atomic_store(&q[m].tail, t + 1);
            assert_int_equal(ev->seq, next[m]);
            assert_ptr_equal(ev->tab, q[m].tab);
            size_t n = next[m] % 7 * 40;
            assert_int_equal(ev->data_len, n);
            for (size_t k = 0; k < n; k++)
                assert_int_equal(ev->data[k], 'x');
            next[m]++;
            assert_true(cdc_event_unref(ev));
        }
        if (finished)
            break;
    }
    for (int m = 0; m < MAKERS; m++) {
        pthread_join(th[m], NULL);
        assert_int_equal(next[m], PER_MAKER);
        assert_int_equal(refs_of(q[m].tab), 1);
        cdc_table_unref(q[m].tab);
    }
    cdc_event_reap(); /* what waits in the graves: freed, or ASan reports leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refbank_counts),
        cmocka_unit_test(test_unref_keep_table),
        cmocka_unit_test(test_makers_and_releaser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
