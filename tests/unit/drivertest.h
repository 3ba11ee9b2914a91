/* The fixture of the source driver's unit tests (test_driver.c,
 * test_driver_stop.c): a scripted fake source into the real engine (event
 * log, commit tracker, runner threads) with a scripted fake sink; no server
 * anywhere.  Run them under ThreadSanitizer too: make VARIANT=tsan
 * build/tsan/tests/test_driver.
 *
 * The fake source "streams" NTXN transactions: transaction k (1-based) has
 * k % 3 + 1 inserts, commits at LSN k*1000 and ends at k*1000+500.  start()
 * resumes after a position the way a replication slot does (every
 * transaction that ends after it), and a script can drop the connection in
 * the middle of a transaction or refuse starts.  The fake sink keeps what
 * it made durable and reports it at open, like a real destination; a script
 * can fail a flush (losing what was not durable) or block a write.
 *
 * Every test checks the two rules the driver exists for: the destination
 * ends up with every change exactly once, in order; and no position is
 * acknowledged to the source before the sink holds it durably (and acks
 * never go backwards): check_delivered.  Include <cmocka.h> first. */
#ifndef CDC_TESTS_UNIT_DRIVERTEST_H
#define CDC_TESTS_UNIT_DRIVERTEST_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/json.h"
#include "pipeline/engine.h"
#include "sink/sink.h"
#include "source/driver.h"
#include "source/emitter.h"
#include "util/clock.h"
#include "util/err.h"

#define NTXN     40
#define MAXPOS   1024
#define MAXCALLS 256

static inline uint64_t txn_lsn(int k)
{
    return (uint64_t)k * 1000;
}

static inline uint64_t txn_end(int k)
{
    return (uint64_t)k * 1000 + 500;
}

static inline int txn_events(int k)
{
    return k % 3 + 1;
}

/* ---------- the fake sink ---------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cdc_pos durable[MAXPOS]; /* data events, in the order made durable */
    int ndurable;
    uint64_t durable_end; /* end of the newest transaction durable whole */
    struct cdc_pos have;  /* the newest position durable, reported at open */
    struct {
        struct cdc_pos pos;
        uint64_t end;  /* a COMMIT's end, 0 for data events */
    } pending[MAXPOS]; /* written, not yet flushed */
    int npending;
    uint64_t pending_seq;
    int flushes, fail_flush_at; /* fail the n-th flush (once) */
    int opens;
    bool hold;         /* flush makes nothing durable while set (keeps it pending) */
    bool block_writes; /* write waits while set */
    int blocked;       /* writes that waited */
} fs;

static inline void fs_reset(void)
{
    pthread_mutex_destroy(&fs.mu);
    pthread_cond_destroy(&fs.cv);
    memset(&fs, 0, sizeof fs);
    pthread_mutex_init(&fs.mu, NULL);
    pthread_cond_init(&fs.cv, NULL);
}

static inline int fs_open(struct sink *sk, struct cdc_posmap *have)
{
    pthread_mutex_lock(&fs.mu);
    fs.opens++;
    fs.npending = 0;
    cdc_posmap_set(have, fs.have);
    pthread_mutex_unlock(&fs.mu);
    return 0;
}

static inline int fs_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    pthread_mutex_lock(&fs.mu);
    if (fs.block_writes) {
        fs.blocked++;
        pthread_cond_broadcast(&fs.cv);
        while (fs.block_writes)
            pthread_cond_wait(&fs.cv, &fs.mu);
    }
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        fs.pending_seq = ev->seq;
        if (ev->op == CDC_OP_REWIND || fs.npending == MAXPOS)
            continue;
        fs.pending[fs.npending].pos = ev->pos;
        fs.pending[fs.npending].end = ev->op == CDC_OP_COMMIT ? ev->end_lsn : 0;
        fs.npending++;
    }
    pthread_mutex_unlock(&fs.mu);
    return 0;
}

static inline int fs_flush(struct sink *sk, uint64_t *durable_seq)
{
    pthread_mutex_lock(&fs.mu);
    if (fs.hold) {
        *durable_seq = 0;
        pthread_mutex_unlock(&fs.mu);
        return 0;
    }
    if (++fs.flushes == fs.fail_flush_at) {
        fs.npending = 0; /* lost: it was never durable */
        pthread_mutex_unlock(&fs.mu);
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "scripted flush failure");
    }
    for (int i = 0; i < fs.npending; i++) {
        if (fs.pending[i].end)
            fs.durable_end = fs.pending[i].end;
        else if (fs.ndurable < MAXPOS)
            fs.durable[fs.ndurable++] = fs.pending[i].pos;
        fs.have = fs.pending[i].pos;
    }
    fs.npending = 0;
    *durable_seq = fs.pending_seq;
    pthread_mutex_unlock(&fs.mu);
    return 0;
}

static inline void fs_close(struct sink *sk)
{
    pthread_mutex_lock(&fs.mu);
    fs.npending = 0;
    pthread_mutex_unlock(&fs.mu);
}

/* Stands in for the configured file sink (engine_new_ops): serial, as the
 * file sink's type says. */
static const struct sink_ops fake_sink_ops = {
    .open = fs_open,
    .write = fs_write,
    .flush = fs_flush,
    .close = fs_close,
};

/* ---------- the fake source ---------- */

struct fake {
    struct cdc_table *tab;
    int cursor; /* index of the next transaction to send (0-based) */
    bool connected;
    int lose_at;      /* drop the connection in the middle of this transaction (once) */
    int refuse_first; /* refuse this many starts after a lost connection */
    bool refuse_initial;
    int refused;
    /* Send this transaction in two polls, asking for a stop (as a signal
     * would) after the first; with stall_split the rest never comes. */
    int split_at;
    bool stall_split;
    int next_j; /* the next change of the transaction at the cursor to send */
    volatile sig_atomic_t *stop;
    pthread_mutex_t mu; /* the records below, read by the test thread */
    uint64_t starts[MAXCALLS];
    int nstarts;
    uint64_t acks[MAXCALLS * 16];
    int nacks;
    int polls, idles, disconnects, rewinds, finishes;
    bool ack_beyond_durable, ack_backwards;
};

static struct fake fk;

static inline void fake_reset(void)
{
    pthread_mutex_destroy(&fk.mu);
    memset(&fk, 0, sizeof fk);
    pthread_mutex_init(&fk.mu, NULL);
    fk.lose_at = -1;
}

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
    src->priv = &fk;
    return 0;
}

static inline int fk_prepare(struct source *src, const struct cdc_posmap *held,
                             struct cdc_acks *start, char *err, size_t errlen)
{
    cdc_acks_set(start, 0, 0);
    return 0;
}

static inline int fk_start(struct source *src, const struct cdc_ack *from, size_t n, char *err,
                           size_t errlen)
{
    pthread_mutex_lock(&fk.mu);
    if (fk.nstarts < MAXCALLS)
        fk.starts[fk.nstarts++] = from[0].pos;
    pthread_mutex_unlock(&fk.mu);
    if ((fk.refuse_initial && fk.nstarts == 1) ||
        (fk.lose_at < 0 && fk.refused < fk.refuse_first && fk.nstarts > 1)) {
        fk.refused++;
        snprintf(err, errlen, "scripted: connection refused");
        return CDC_ECONN;
    }
    /* Like a slot: every transaction that ends after the position. */
    fk.cursor = 0;
    while (fk.cursor < NTXN && txn_end(fk.cursor + 1) <= from[0].pos)
        fk.cursor++;
    fk.connected = true;
    return 0;
}

static inline struct cdc_event *mk_event(int k, int j)
{
    char val[32];
    int len = snprintf(val, sizeof val, "%d", k * 100 + j);
    struct cdc_event *ev = cdc_event_new(0, 1, (size_t)len + 1);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(fk.tab);
    ev->tab = fk.tab;
    ev->after[0] = (struct cdc_val){0, (uint32_t)len, CDC_V_TEXT};
    memcpy(ev->data, val, (size_t)len + 1);
    ev->data_len = (uint32_t)len + 1;
    ev->pos = (struct cdc_pos){txn_lsn(k), (uint64_t)j, 0};
    ev->lsn = txn_lsn(k) + (uint64_t)j;
    ev->xid = (uint32_t)k;
    return ev;
}

static inline int fk_poll(struct source *src, struct emitter *em, int timeout_ms, char *err,
                          size_t errlen)
{
    pthread_mutex_lock(&fk.mu);
    fk.polls++;
    pthread_mutex_unlock(&fk.mu);
    if (fk.cursor == NTXN) {
        /* Idle: the server's log ends a little after the last commit. */
        int rc = emitter_flush(em);
        emitter_keepalive(em, 0, txn_end(NTXN) + 10);
        clock_sleep_us(1000);
        return rc ? rc : 0;
    }
    int k = fk.cursor + 1;
    int split = k == fk.split_at ? txn_events(k) / 2 : 0; /* [0, split) goes first */
    if (split && fk.next_j == split && fk.stall_split) {
        clock_sleep_us(1000); /* the rest of the transaction never arrives */
        return 0;
    }
    for (int j = fk.next_j; j < txn_events(k); j++) {
        if (k == fk.lose_at && j == txn_events(k) / 2 && j > 0) {
            fk.lose_at = -1;
            snprintf(err, errlen, "scripted: connection reset");
            return CDC_ECONN;
        }
        if (split && j == split && fk.next_j < split) {
            fk.next_j = split;
            *fk.stop = 1; /* a signal while the transaction is half read */
            return 1;
        }
        int rc = emitter_event(em, mk_event(k, j));
        if (rc)
            return rc;
    }
    fk.next_j = 0;
    struct cdc_event *c = cdc_event_new(0, 0, 0);
    c->op = CDC_OP_COMMIT;
    c->pos = (struct cdc_pos){txn_lsn(k), CDC_POS_TXN_END, 0};
    c->end_lsn = txn_end(k);
    c->total_order = (uint32_t)txn_events(k);
    int rc = emitter_commit(em, c);
    fk.cursor++;
    return rc ? rc : 1;
}

/* The greatest transaction end at or before pos (0: none). */
static inline uint64_t end_floor(uint64_t pos)
{
    uint64_t f = 0;
    for (int k = 1; k <= NTXN; k++)
        if (txn_end(k) <= pos)
            f = txn_end(k);
    return f;
}

static inline void record_ack(uint64_t pos)
{
    pthread_mutex_lock(&fs.mu);
    uint64_t durable = fs.durable_end;
    pthread_mutex_unlock(&fs.mu);
    pthread_mutex_lock(&fk.mu);
    if (end_floor(pos) > durable)
        fk.ack_beyond_durable = true;
    if (fk.nacks && pos < fk.acks[fk.nacks - 1])
        fk.ack_backwards = true;
    if (fk.nacks < MAXCALLS * 16 && (fk.nacks == 0 || fk.acks[fk.nacks - 1] != pos))
        fk.acks[fk.nacks++] = pos;
    pthread_mutex_unlock(&fk.mu);
}

static inline int fk_ack(struct source *src, const struct cdc_ack *acks, size_t n, bool now)
{
    assert_int_equal(n, 1);
    assert_int_equal(acks[0].stream, 0);
    record_ack(acks[0].pos);
    return 0;
}

static inline void fk_idle(struct source *src)
{
    pthread_mutex_lock(&fk.mu);
    fk.idles++;
    pthread_mutex_unlock(&fk.mu);
}

static inline void fk_disconnect(struct source *src, bool rewind)
{
    pthread_mutex_lock(&fk.mu);
    fk.disconnects++;
    fk.rewinds += rewind;
    pthread_mutex_unlock(&fk.mu);
    fk.connected = false;
}

static inline void fk_finish(struct source *src, const struct cdc_ack *acks, size_t n)
{
    record_ack(acks[0].pos);
    pthread_mutex_lock(&fk.mu);
    fk.finishes++;
    pthread_mutex_unlock(&fk.mu);
}

static inline void fk_stats(struct source *src, struct source_stats *st)
{
    st->received = fk.cursor ? txn_end(fk.cursor) : 0;
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
    .format_pos = fk_format,
    .open = fk_open,
    .prepare = fk_prepare,
    .start = fk_start,
    .poll = fk_poll,
    .ack = fk_ack,
    .idle = fk_idle,
    .disconnect = fk_disconnect,
    .finish = fk_finish,
    .stats = fk_stats,
    .close = fk_close,
};

/* ---------- wiring ---------- */

static const char PIPELINE[] = "pipeline_id: fake\n"
                               "source:\n"
                               "  database: db\n"
                               "  tables: [public.t]\n"
                               "sinks:\n"
                               "  - sink_id: fake\n"
                               "    sink_type: file\n"
                               "    file:\n"
                               "      path: unused.jsonl\n";

static const char PLATFORM[] = "max_buffered_messages: 4\n"
                               "partitions: 1\n"
                               "health_enabled: false\n"
                               "shutdown_timeout_seconds: 10\n"
                               "retry:\n"
                               "  initial_wait_seconds: 0.01\n"
                               "  max_wait_seconds: 0.02\n"
                               "  jitter: false\n";

struct run {
    struct config *cfg;
    struct json_ctx json;
    struct engine *eng;
    struct driver *drv;
    struct driver_opts o;
    volatile sig_atomic_t stop;
    atomic_bool paused;
    struct cdc_ack stop_at;
    int64_t backoffs[MAXCALLS];
    int nbackoffs;
    pthread_t thread;
    int rc;
    char err[512];
};

static inline void on_backoff(void *arg, int64_t us)
{
    struct run *r = arg;
    if (r->nbackoffs < MAXCALLS)
        r->backoffs[r->nbackoffs++] = us;
}

/* Opens everything with this pipeline configuration (its one sink's type
 * says when a flush is due; the scripted sink stands in for it); the run
 * stops once the last transaction is confirmed. */
static inline void setup_with(struct run *r, const char *pipeline)
{
    memset(r, 0, sizeof *r);
    fs_reset();
    fake_reset();
    struct cfg_errors errs = {0};
    int rc = config_load_text(&r->cfg, NULL, pipeline, strlen(pipeline), NULL, PLATFORM,
                              strlen(PLATFORM), &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_int_equal(rc, 0);
    r->json = (struct json_ctx){.pipeline_id = "fake"};
    char err[512];
    assert_int_equal(driver_new(&r->drv, &fake_source_ops, r->cfg, NULL, err, sizeof err), 0);
    assert_int_equal(
        engine_new_ops(&r->eng, r->cfg, &r->json, NULL, &fake_sink_ops, err, sizeof err), 0);
    struct cdc_posmap held = {0};
    engine_held(r->eng, &held);
    assert_int_equal(driver_prepare(r->drv, &held, err, sizeof err), 0);
    cdc_posmap_fini(&held);
    const struct cdc_acks *start = driver_start(r->drv);
    assert_int_equal(engine_start(r->eng, start->v, start->n), 0);
    atomic_init(&r->paused, false);
    r->stop_at = (struct cdc_ack){0, txn_end(NTXN)};
    fk.stop = &r->stop;
    r->o = (struct driver_opts){
        .stop_at = &r->stop_at,
        .nstop_at = 1,
        .stop = &r->stop,
        .paused = &r->paused,
        .backoff_hook = on_backoff,
        .backoff_arg = r,
    };
}

/* The same with a file sink's flushes (a flush whenever caught up). */
static inline void setup(struct run *r)
{
    setup_with(r, PIPELINE);
}

static struct run *signalled; /* the run SIGUSR1 stops */

static inline void on_sigusr1(int sig)
{
    (void)sig;
    signalled->stop = 1;
}

static inline void *run_main(void *arg)
{
    struct run *r = arg;
    r->rc = driver_run(r->drv, r->eng, &r->o, r->err, sizeof r->err);
    return NULL;
}

static inline void start_run(struct run *r)
{
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
}

/* Joins the run and drains the engine, as cmd_run does. */
static inline void finish_run(struct run *r)
{
    pthread_join(r->thread, NULL);
    engine_close(r->eng);
    assert_int_equal(engine_wait(r->eng, 10000000), 0);
    driver_finish(r->drv);
}

static inline void teardown(struct run *r)
{
    engine_free(r->eng);
    driver_free(r->drv);
    config_free(r->cfg);
}

/* Every change of the script exactly once, in order; acknowledgements
 * never ahead of the sink, never backwards, and the final one covers all. */
static inline void check_delivered(void)
{
    pthread_mutex_lock(&fs.mu);
    int i = 0;
    for (int k = 1; k <= NTXN; k++)
        for (int j = 0; j < txn_events(k); j++, i++) {
            assert_true(i < fs.ndurable);
            assert_int_equal(fs.durable[i].lsn, txn_lsn(k));
            assert_int_equal(fs.durable[i].idx, (uint64_t)j);
        }
    assert_int_equal(fs.ndurable, i);
    assert_int_equal(fs.durable_end, txn_end(NTXN));
    pthread_mutex_unlock(&fs.mu);
    assert_false(fk.ack_beyond_durable);
    assert_false(fk.ack_backwards);
    assert_true(fk.nacks > 0);
    assert_true(fk.acks[fk.nacks - 1] >= txn_end(NTXN));
    assert_int_equal(fk.finishes, 1);
}

#endif
