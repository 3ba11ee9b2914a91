/* The fixture of the unit tests of positions with streams (test_streams.c
 * through a scripted sink, test_streams_file.c through the real file sink):
 * a source whose events come in two streams, interleaved in one event log,
 * through the real driver, engine and serial runner.  Run them under
 * ThreadSanitizer too: make VARIANT=tsan build/tsan/tests/test_streams.
 *
 * The fake source has two streams numbered alike, as a Kafka consumer's
 * partitions are: transaction k (1-based) of either stream has two
 * inserts, commits at position k*1000 and ends at k*1000+500, so both
 * streams hold the same positions.  Stream 1 lags: one of its transactions
 * follows every two of stream 0's.  start() resumes each stream after its
 * acknowledged position, the way a consumer group does (or, with
 * from_zero, from the beginning: committed offsets older than what the
 * sink holds).
 *
 * What must hold: each stream's changes reach the destination exactly
 * once, in order, across a sink failure with a rewind, a reopen that
 * reports what the destination holds per stream, and a restart of the
 * whole pipeline; a position one stream acknowledges never depends on the
 * other; a change dead-lettered in one stream leaves the change of the
 * other stream at the same position alone.  With one `have` for all
 * streams (the newest position any holds), the lagging stream's changes
 * at positions below the other's would be skipped: lost.
 *
 * Include <cmocka.h> first. */
#ifndef CDC_TESTS_UNIT_STREAMSTEST_H
#define CDC_TESTS_UNIT_STREAMSTEST_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/json.h"
#include "pipeline/engine.h"
#include "sink/file/file_ckpt.h"
#include "sink/sink.h"
#include "source/driver.h"
#include "source/emitter.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"

#define NSTREAMS 2
#define NTXN     24 /* per stream */
#define NEV      2  /* changes per transaction */
#define MAXREC   1024

static inline uint64_t txn_lsn(int k)
{
    return (uint64_t)k * 1000;
}

static inline uint64_t txn_end(int k)
{
    return (uint64_t)k * 1000 + 500;
}

/* The change's value: which stream, transaction and change it is. */
static inline int change_id(uint32_t s, int k, int j)
{
    return (int)s * 100000 + k * 100 + j;
}

/* The order transactions enter the log: stream 1 lags, one of its
 * transactions after every two of stream 0's. */
static struct {
    uint32_t stream;
    int k;
} order[NSTREAMS * NTXN];
static int norder;

static inline void make_order(void)
{
    norder = 0;
    int k0 = 0, k1 = 0;
    while (k0 < NTXN || k1 < NTXN) {
        for (int i = 0; i < 2 && k0 < NTXN; i++)
            order[norder++] = (typeof(order[0])){0, ++k0};
        if (k1 < NTXN && (k0 == NTXN || k1 < k0 / 2))
            order[norder++] = (typeof(order[0])){1, ++k1};
    }
}

/* ---------- what the sinks record ---------- */

struct rec {
    uint32_t stream;
    struct cdc_pos pos;
    int id; /* change_id, or -1 for a COMMIT */
    uint64_t end;
};

static struct {
    pthread_mutex_t mu;
    struct rec durable[MAXREC]; /* made durable, in order */
    int ndurable;
    struct cdc_posmap have; /* per stream: newest durable position, reported at open */
    uint64_t durable_end[NSTREAMS];
    struct rec pending[MAXREC];
    int npending;
    uint64_t pending_seq;
    /* Fail the flush after this change was written (once), losing what is
     * pending: stream 0 is then well ahead of stream 1. */
    int fail_after_id;
    bool fail_next_flush;
    int opens;
    size_t streams_at_reopen; /* streams the last reopen reported */
    bool hold;                /* flush makes nothing durable */
    int refuse_id;            /* refuse this change for good (dead-letter it), once */
} ks;

/* ---------- the file, and the file sink's failure switch ---------- */

static char dir[] = "/tmp/cdc-streams-XXXXXX";
static char path[256];

static int file_fail_after_id; /* fail the flush after this change was written, once */
static bool file_fail_next;

/* ---------- the fake source ---------- */

static struct {
    struct cdc_table *tab;
    int cursor;              /* next entry of order[] */
    uint64_t from[NSTREAMS]; /* per stream: start after this end position */
    bool from_zero;          /* start ignores the acknowledged positions */
    pthread_mutex_t mu;
    uint64_t acked[NSTREAMS];
    bool ack_beyond_durable, ack_backwards, ack_unknown_stream;
    int starts, rewinds, finishes;
} fk;

static inline int fk_open(struct source *src, char *err, size_t errlen)
{
    struct cdc_table *tab = cdc_table_new(1, "public", "t", "cdc", 1);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("integer");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].key = true;
    tab->key_unique = true;
    cdc_table_finish(tab);
    fk.tab = tab;
    return 0;
}

static inline int fk_prepare(struct source *src, const struct cdc_posmap *held,
                             struct cdc_acks *start, char *err, size_t errlen)
{
    for (uint32_t s = 0; s < NSTREAMS; s++)
        cdc_acks_set(start, s, 0);
    return 0;
}

static inline int fk_start(struct source *src, const struct cdc_ack *from, size_t n, char *err,
                           size_t errlen)
{
    memset(fk.from, 0, sizeof fk.from);
    for (size_t i = 0; i < n && !fk.from_zero; i++) {
        assert_true(from[i].stream < NSTREAMS);
        fk.from[from[i].stream] = from[i].pos;
    }
    fk.cursor = 0;
    pthread_mutex_lock(&fk.mu);
    fk.starts++;
    pthread_mutex_unlock(&fk.mu);
    return 0;
}

static inline struct cdc_event *mk_event(uint32_t s, int k, int j)
{
    char val[32];
    int len = snprintf(val, sizeof val, "%d", change_id(s, k, j));
    struct cdc_event *ev = cdc_event_new(0, 1, (size_t)len + 1);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(fk.tab);
    ev->tab = fk.tab;
    ev->after[0] = (struct cdc_val){0, (uint32_t)len, CDC_V_TEXT};
    memcpy(ev->data, val, (size_t)len + 1);
    ev->data_len = (uint32_t)len + 1;
    ev->pos = (struct cdc_pos){txn_lsn(k), (uint64_t)j, s};
    ev->lsn = txn_lsn(k) + (uint64_t)j;
    ev->xid = (uint64_t)k;
    ev->total_order = (uint32_t)j + 1;
    ev->table_order = (uint32_t)j + 1;
    return ev;
}

static inline int fk_poll(struct source *src, struct emitter *em, int timeout_ms, char *err,
                          size_t errlen)
{
    while (fk.cursor < norder && txn_end(order[fk.cursor].k) <= fk.from[order[fk.cursor].stream])
        fk.cursor++;
    if (fk.cursor == norder) {
        int rc = emitter_flush(em);
        for (uint32_t s = 0; s < NSTREAMS; s++)
            emitter_keepalive(em, s, txn_end(NTXN) + 10);
        clock_sleep_us(1000);
        return rc;
    }
    uint32_t s = order[fk.cursor].stream;
    int k = order[fk.cursor].k;
    for (int j = 0; j < NEV; j++) {
        int rc = emitter_event(em, mk_event(s, k, j));
        if (rc)
            return rc;
    }
    struct cdc_event *c = cdc_event_new(0, 0, 0);
    c->op = CDC_OP_COMMIT;
    c->pos = (struct cdc_pos){txn_lsn(k), CDC_POS_TXN_END, s};
    c->end_lsn = txn_end(k);
    int rc = emitter_commit(em, c);
    fk.cursor++;
    return rc ? rc : 1;
}

/* Per stream: the greatest transaction end at or before pos (0: none). */
static inline uint64_t end_floor(uint64_t pos)
{
    uint64_t f = 0;
    for (int k = 1; k <= NTXN; k++)
        if (txn_end(k) <= pos)
            f = txn_end(k);
    return f;
}

static uint64_t (*durable_end_of)(uint32_t s); /* what the destination holds of stream s */

static inline void record_acks(const struct cdc_ack *acks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t s = acks[i].stream;
        pthread_mutex_lock(&fk.mu);
        if (s >= NSTREAMS) {
            fk.ack_unknown_stream = true;
            pthread_mutex_unlock(&fk.mu);
            continue;
        }
        if (acks[i].pos < fk.acked[s])
            fk.ack_backwards = true;
        fk.acked[s] = acks[i].pos;
        pthread_mutex_unlock(&fk.mu);
        if (end_floor(acks[i].pos) > durable_end_of(s)) {
            pthread_mutex_lock(&fk.mu);
            fk.ack_beyond_durable = true;
            pthread_mutex_unlock(&fk.mu);
        }
    }
}

static inline int fk_ack(struct source *src, const struct cdc_ack *acks, size_t n, bool now)
{
    record_acks(acks, n);
    return 0;
}

static inline void fk_disconnect(struct source *src, bool rewind)
{
    pthread_mutex_lock(&fk.mu);
    fk.rewinds += rewind;
    pthread_mutex_unlock(&fk.mu);
}

static inline void fk_finish(struct source *src, const struct cdc_ack *acks, size_t n)
{
    record_acks(acks, n);
    pthread_mutex_lock(&fk.mu);
    fk.finishes++;
    pthread_mutex_unlock(&fk.mu);
}

static inline void fk_stats(struct source *src, struct source_stats *st)
{
}

static inline void fk_close(struct source *src)
{
    cdc_table_unref(fk.tab);
    fk.tab = NULL;
}

static inline void fk_format(uint64_t pos, char *buf, size_t len)
{
    snprintf(buf, len, "%llu", (unsigned long long)pos);
}

static const struct source_ops fake_source_ops = {
    .name = "fake",
    .connector = "fake",
    .multi_stream = true,
    .format_pos = fk_format,
    .open = fk_open,
    .prepare = fk_prepare,
    .start = fk_start,
    .poll = fk_poll,
    .ack = fk_ack,
    .disconnect = fk_disconnect,
    .finish = fk_finish,
    .stats = fk_stats,
    .close = fk_close,
};

/* ---------- wiring ---------- */

static const char PLATFORM[] = "max_buffered_messages: 16\n"
                               "partitions: 1\n"
                               "health_enabled: false\n"
                               "shutdown_timeout_seconds: 10\n"
                               "retry:\n"
                               "  initial_wait_seconds: 0.01\n"
                               "  max_wait_seconds: 0.02\n"
                               "  max_attempts: 3\n"
                               "  jitter: false\n";

struct run {
    struct config *cfg;
    struct json_ctx json;
    struct store *store;
    struct engine *eng;
    struct driver *drv;
    struct driver_opts o;
    volatile sig_atomic_t stop;
    struct cdc_ack stop_at[NSTREAMS];
    pthread_t thread;
    int rc;
    char err[512];
};

static inline void start_run(struct run *r, const struct sink_ops *ops, struct store *store)
{
    memset(r, 0, sizeof *r);
    memset(fk.acked, 0, sizeof fk.acked);
    char pipeline[512];
    snprintf(pipeline, sizeof pipeline,
             "pipeline_id: streams\n"
             "source:\n"
             "  database: db\n"
             "  tables: [public.t]\n"
             "sinks:\n"
             "  - sink_id: out\n"
             "    sink_type: file\n"
             "    file:\n"
             "      path: %s\n"
             "      batch_size: 3\n",
             path);
    struct cfg_errors errs = {0};
    int rc = config_load_text(&r->cfg, NULL, pipeline, strlen(pipeline), NULL, PLATFORM,
                              strlen(PLATFORM), &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_int_equal(rc, 0);
    r->json = (struct json_ctx){.pipeline_id = "streams",
                                .connector = "fake",
                                .db = "db",
                                .version = "0",
                                .multi_stream = true};
    r->store = store;
    char err[512];
    assert_int_equal(driver_new(&r->drv, &fake_source_ops, r->cfg, store, err, sizeof err), 0);
    rc = engine_new_ops(&r->eng, r->cfg, &r->json, store, ops, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    struct cdc_posmap held = {0};
    engine_held(r->eng, &held);
    assert_int_equal(driver_prepare(r->drv, &held, err, sizeof err), 0);
    cdc_posmap_fini(&held);
    const struct cdc_acks *start = driver_start(r->drv);
    assert_int_equal(engine_start(r->eng, start->v, start->n), 0);
    for (uint32_t s = 0; s < NSTREAMS; s++)
        r->stop_at[s] = (struct cdc_ack){s, txn_end(NTXN)};
    r->o = (struct driver_opts){.stop_at = r->stop_at, .nstop_at = NSTREAMS, .stop = &r->stop};
}

static inline void *run_main(void *arg)
{
    struct run *r = arg;
    r->rc = driver_run(r->drv, r->eng, &r->o, r->err, sizeof r->err);
    return NULL;
}

static inline void finish_run(struct run *r)
{
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
    pthread_join(r->thread, NULL);
    engine_close(r->eng);
    assert_int_equal(engine_wait(r->eng, 10000000), 0);
    driver_finish(r->drv);
    assert_int_equal(r->rc, 0);
    engine_free(r->eng);
    driver_free(r->drv);
    config_free(r->cfg);
}

static inline void reset(void)
{
    pthread_mutex_lock(&ks.mu);
    cdc_posmap_fini(&ks.have);
    ks.ndurable = ks.npending = ks.opens = 0;
    ks.fail_after_id = -1;
    ks.fail_next_flush = false;
    ks.streams_at_reopen = 0;
    memset(ks.durable_end, 0, sizeof ks.durable_end);
    ks.hold = false;
    ks.refuse_id = -1;
    pthread_mutex_unlock(&ks.mu);
    pthread_mutex_lock(&fk.mu);
    fk.ack_beyond_durable = fk.ack_backwards = fk.ack_unknown_stream = false;
    fk.starts = fk.rewinds = fk.finishes = 0;
    fk.from_zero = false;
    memset(fk.acked, 0, sizeof fk.acked);
    pthread_mutex_unlock(&fk.mu);
    file_fail_after_id = -1;
    file_fail_next = false;
    make_order();
}

/* Every change of both streams exactly once, each stream in order, minus
 * the one dead-lettered (skip_id, or -1). */
static inline void check_ids(const int *ids, int n, int skip_id)
{
    int next[NSTREAMS] = {0};
    int seen = 0;
    for (int i = 0; i < n; i++) {
        uint32_t s = (uint32_t)(ids[i] / 100000);
        assert_true(s < NSTREAMS);
        /* the next change of this stream, in order, once */
        int k, j;
        do {
            k = next[s] / NEV + 1;
            j = next[s] % NEV;
            next[s]++;
        } while (change_id(s, k, j) == skip_id);
        if (ids[i] != change_id(s, k, j))
            fail_msg("stream %u: got change %d where %d was due", s, ids[i], change_id(s, k, j));
        seen++;
    }
    for (uint32_t s = 0; s < NSTREAMS; s++)
        if (next[s] != NTXN * NEV)
            fail_msg("stream %u: %d of %d changes delivered", s, next[s], NTXN * NEV);
    assert_true(seen > 0);
}

static inline void check_acks(void)
{
    pthread_mutex_lock(&fk.mu);
    assert_false(fk.ack_beyond_durable);
    assert_false(fk.ack_backwards);
    assert_false(fk.ack_unknown_stream);
    for (uint32_t s = 0; s < NSTREAMS; s++)
        assert_true(fk.acked[s] >= txn_end(NTXN));
    pthread_mutex_unlock(&fk.mu);
}

static inline void remove_files(void)
{
    char *ck = file_ckpt_path(path);
    unlink(path);
    unlink(ck);
    free(ck);
}

static inline int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    remove_files();
    cdc_posmap_fini(&ks.have);
    return rmdir(dir);
}

#endif
