/* Positions with streams through the real file sink: the two-stream fake
 * source of streamstest.h through the real driver, engine and serial
 * runner into the file sink, one of whose flushes fails as a crash
 * between the data's fdatasync and the checkpoint's would leave it.  Run
 * it under ThreadSanitizer too: make VARIANT=tsan
 * build/tsan/tests/test_streams_file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sink/file/file_sink.h"
#include "streamstest.h"

/* ---------- the real file sink, failing one flush on request ---------- */

static int ff_open(struct sink *sk, struct cdc_posmap *have)
{
    int rc = sink_file_type.ops->open(sk, have);
    if (rc == 0) {
        pthread_mutex_lock(&ks.mu);
        ks.opens++;
        ks.streams_at_reopen = have->n;
        pthread_mutex_unlock(&ks.mu);
    }
    return rc;
}

static size_t slurp(const char *p, char *buf, size_t cap)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* The n-th flush fails as a crash between the data's fdatasync and the
 * checkpoint's would leave it: the data is in the file, the checkpoint
 * still the previous one.  The reopen must cut that data off (it was
 * never acknowledged); the replay brings it again. */
static int ff_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (evs[i]->op == CDC_OP_INSERT &&
            atoi(cdc_val_ptr(evs[i], &evs[i]->after[0])) == file_fail_after_id) {
            file_fail_after_id = -1;
            file_fail_next = true;
        }
    return sink_file_type.ops->write(sk, evs, n);
}

static int ff_flush(struct sink *sk, uint64_t *durable_seq)
{
    if (!file_fail_next)
        return sink_file_type.ops->flush(sk, durable_seq);
    file_fail_next = false;
    static char old[2 * FILE_CKPT_SLOT];
    char *ck = file_ckpt_path(path);
    size_t n = slurp(ck, old, sizeof old);
    uint64_t ignored;
    assert_int_equal(sink_file_type.ops->flush(sk, &ignored), 0);
    FILE *f = fopen(ck, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite(old, 1, n, f), n);
    fclose(f);
    free(ck);
    return sink_set_error(sk, SINK_ERR_RETRYABLE, "scripted: the checkpoint was not written");
}

static struct sink_ops file_ops; /* sink_file_type's, with the two above */

static int read_ids(int *ids, int max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n'))
            break; /* being written (the acknowledgement check reads while it runs) */
        const char *a = strstr(line, "\"after\":{\"id\":");
        assert_non_null(a);
        assert_true(n < max);
        ids[n++] = atoi(a + strlen("\"after\":{\"id\":"));
    }
    fclose(f);
    return n;
}

/* What the file holds of stream s, by its lines (for the acknowledgement
 * check: transactions whole in the file). */
static uint64_t file_end_of(uint32_t s)
{
    int ids[MAXREC];
    int n = read_ids(ids, MAXREC);
    int count[NTXN + 2] = {0};
    for (int i = 0; i < n; i++)
        if ((uint32_t)(ids[i] / 100000) == s)
            count[(ids[i] % 100000) / 100]++;
    uint64_t end = 0;
    for (int k = 1; k <= NTXN && count[k] == NEV; k++)
        end = txn_end(k);
    return end;
}

/* The same through the real file sink: its checkpoint keeps each stream's
 * position beside the file, a failed flush (as an fsync error) leaves
 * the data after the last checkpoint unacknowledged and the reopen cuts it
 * off, and a restart from the beginning appends nothing twice. */
static void test_file_sink_failure_and_restart(void **state)
{
    (void)state;
    reset();
    remove_files();
    durable_end_of = file_end_of;
    file_ops = *sink_file_type.ops;
    file_ops.open = ff_open;
    file_ops.write = ff_write;
    file_ops.flush = ff_flush;
    file_fail_after_id = change_id(0, 10, 0);
    struct run r;
    start_run(&r, &file_ops, NULL);
    finish_run(&r);
    int ids[MAXREC];
    int n = read_ids(ids, MAXREC);
    check_ids(ids, n, -1);
    check_acks();
    assert_int_equal(fk.rewinds, 1);
    assert_int_equal(ks.opens, 2);
    assert_int_equal(ks.streams_at_reopen, NSTREAMS);

    fk.from_zero = true;
    start_run(&r, &file_ops, NULL);
    finish_run(&r);
    assert_int_equal(read_ids(ids, MAXREC), n);
    check_ids(ids, n, -1);
    check_acks();
    remove_files();
}

int main(void)
{
    alarm(300); /* a hang is a failure, not a stuck build */
    pthread_mutex_init(&ks.mu, NULL);
    pthread_mutex_init(&fk.mu, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sink_failure_and_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
