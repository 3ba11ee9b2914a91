/* The source-neutral snapshot machinery (source/snapshot/) with a fake
 * source's snap_ops: no database, the real engine and state store.
 *
 * The fake has tables of integer ids 0..n-1; a chunk is "lo-hi"; a key is
 * "k=<id>".  The tests check what every source gets for free: the initial
 * snapshot reads every chunk once across several readers, records progress
 * under the state-store keys the PostgreSQL source always used, resumes at
 * the chunks not done, rebuilds a resumed keyless table (a truncate first, a
 * fold rule stored); the incremental snapshot brackets each chunk with
 * watermarks, drops the rows the stream changed inside the window, emits
 * the rest at the high watermark and stores the last durable key. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/json.h"
#include "pipeline/engine.h"
#include "sink/sink.h"
#include "source/emitter.h"
#include "source/snapshot/incremental.h"
#include "source/snapshot/snapshot.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"

#define MAXEV 4096

/* ---------- a sink that keeps what it was given ---------- */

struct got {
    char op;
    char table[32];
    long id; /* -1: no row */
    struct cdc_pos pos;
    uint64_t snapshot_id;
    uint64_t chunk; /* snapshot_chunk, snapshot_row */
    uint32_t row;
};

static struct {
    pthread_mutex_t mu;
    struct got ev[MAXEV];
    int n;
    uint64_t seq;
} ks;

static int ks_open(struct sink *sk, struct cdc_posmap *have)
{
    return 0;
}

static int ks_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    pthread_mutex_lock(&ks.mu);
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        ks.seq = ev->seq;
        if (cdc_op_is_control(ev->op) || ks.n == MAXEV)
            continue;
        struct got *g = &ks.ev[ks.n++];
        g->op = (char)ev->op;
        snprintf(g->table, sizeof g->table, "%s", ev->tab ? ev->tab->name : "");
        g->id = ev->after ? strtol(cdc_val_ptr(ev, &ev->after[0]), NULL, 10) : -1;
        g->pos = ev->pos;
        g->snapshot_id = ev->snapshot_id;
        g->chunk = ev->snapshot_chunk;
        g->row = ev->snapshot_row;
    }
    pthread_mutex_unlock(&ks.mu);
    return 0;
}

static int ks_flush(struct sink *sk, uint64_t *durable_seq)
{
    pthread_mutex_lock(&ks.mu);
    *durable_seq = ks.seq;
    pthread_mutex_unlock(&ks.mu);
    return 0;
}

static void ks_close(struct sink *sk)
{
}

static const struct sink_ops keep_ops = {
    .open = ks_open,
    .write = ks_write,
    .flush = ks_flush,
    .close = ks_close,
};

/* How often the sink got table/id as op. */
static int count(const char *table, long id, char op)
{
    int c = 0;
    pthread_mutex_lock(&ks.mu);
    for (int i = 0; i < ks.n; i++)
        c += strcmp(ks.ev[i].table, table) == 0 && ks.ev[i].id == id && ks.ev[i].op == op;
    pthread_mutex_unlock(&ks.mu);
    return c;
}

/* ---------- the fake source's snap_ops ---------- */

static struct {
    pthread_mutex_t mu;
    int readers_open, readers_closed;
    int reads[8]; /* per chunk of public.a, by its lo / 10 */
    int plans;
    char watermarks[16][160];
    char wm_types[16][32];
    int nwm;
    char *last_after;
    int after_reads;          /* fo_read_after calls */
    int inflight[3], most[3]; /* chunk reads running at once, per table (a, b, nokey) */
    uint64_t hidden;          /* a transaction the reads do not see... */
    int hidden_reads;         /* ...up to this many reads */
} fsn;

static int fo_open_reader(void *arg, unsigned i, void **rd, char *err, size_t errlen)
{
    *rd = (void *)(uintptr_t)(i + 1);
    pthread_mutex_lock(&fsn.mu);
    fsn.readers_open++;
    pthread_mutex_unlock(&fsn.mu);
    return 0;
}

static void fo_close_reader(void *arg, void *rd)
{
    pthread_mutex_lock(&fsn.mu);
    fsn.readers_closed++;
    pthread_mutex_unlock(&fsn.mu);
}

static int fo_open_table(void *arg, void *rd, const char *table, void **t, struct cdc_table **shape,
                         char *err, size_t errlen)
{
    const char *name = strchr(table, '.') + 1;
    struct cdc_table *tab = cdc_table_new(1, "public", name, "cdc", 1);
    tab->cols[0].name = xstrdup("id");
    tab->cols[0].type_name = xstrdup("integer");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].key = true;
    cdc_table_finish(tab);
    tab->key_unique = strcmp(name, "nokey") != 0;
    *shape = tab;
    cdc_table_ref(tab);
    *t = tab;
    return 0;
}

static void fo_close_table(void *arg, void *t)
{
    cdc_table_unref(t);
}

/* Chunks of ten ids: 40 rows in public.a, 20 in the others. */
static int fo_plan(void *arg, void *rd, void *t, int64_t chunk_rows, struct buf *chunks,
                   uint64_t *estimate, char *err, size_t errlen)
{
    struct cdc_table *tab = t;
    int rows = strcmp(tab->name, "a") == 0 ? 40 : 20;
    for (int lo = 0; lo < rows; lo += 10)
        buf_printf(chunks, "%d-%d\n", lo, lo + 9);
    *estimate = (uint64_t)rows;
    pthread_mutex_lock(&fsn.mu);
    fsn.plans++;
    pthread_mutex_unlock(&fsn.mu);
    return 0;
}

static struct cdc_event *row(struct cdc_table *tab, long id)
{
    char val[32];
    int len = snprintf(val, sizeof val, "%ld", id);
    struct cdc_event *ev = cdc_event_new(0, 1, (size_t)len + 1);
    ev->after[0] = (struct cdc_val){0, (uint32_t)len, CDC_V_TEXT};
    memcpy(ev->data, val, (size_t)len + 1);
    ev->data_len = (uint32_t)len + 1;
    cdc_table_ref(tab);
    ev->tab = tab;
    return ev;
}

static int fo_read_chunk(void *arg, void *rd, void *t, const char *chunk, snap_row_fn fn,
                         void *fn_arg, char *err, size_t errlen)
{
    struct cdc_table *tab = t;
    long lo = 0, hi = 0;
    assert_int_equal(sscanf(chunk, "%ld-%ld", &lo, &hi), 2);
    int ti = tab->name[0] == 'a' ? 0 : tab->name[0] == 'b' ? 1 : 2;
    pthread_mutex_lock(&fsn.mu);
    if (ti == 0)
        fsn.reads[lo / 10]++;
    if (++fsn.inflight[ti] > fsn.most[ti])
        fsn.most[ti] = fsn.inflight[ti];
    pthread_mutex_unlock(&fsn.mu);
    int rc = 0;
    for (long id = lo; id <= hi && !rc; id++) {
        rc = fn(fn_arg, row(tab, id));
        if (id == lo)
            usleep(2000); /* time for another reader to start a chunk meanwhile */
    }
    pthread_mutex_lock(&fsn.mu);
    fsn.inflight[ti]--;
    pthread_mutex_unlock(&fsn.mu);
    return rc;
}

static char *fo_fold_rule(void *arg)
{
    return xstrdup("RULE");
}

static int fo_watermark(void *arg, const char *table, const char *id, const char *type, char *err,
                        size_t errlen)
{
    assert_true(fsn.nwm < 16);
    snprintf(fsn.watermarks[fsn.nwm], sizeof fsn.watermarks[0], "%s", id);
    snprintf(fsn.wm_types[fsn.nwm], sizeof fsn.wm_types[0], "%s", type);
    fsn.nwm++;
    return 0;
}

/* 12 rows: ids 0..11, in key order after "k=<id>". */
static int fo_read_after(void *arg, void *t, const char *after, size_t limit, snap_row_fn fn,
                         void *fn_arg, char *err, size_t errlen)
{
    free(fsn.last_after);
    fsn.last_after = after ? xstrdup(after) : NULL;
    fsn.after_reads++;
    long from = after ? strtol(after + 2, NULL, 10) + 1 : 0;
    int rc = 0;
    for (long id = from; id < 12 && (size_t)(id - from) < limit && !rc; id++)
        rc = fn(fn_arg, row(t, id));
    return rc;
}

static bool fo_saw(void *arg, void *t, const struct cdc_event *ev)
{
    return !(fsn.hidden && ev->xid == fsn.hidden && fsn.after_reads <= fsn.hidden_reads);
}

static char *fo_row_key(void *arg, void *t, const struct cdc_event *ev)
{
    return xasprintf("k=%s", cdc_val_ptr(ev, &ev->after[0]));
}

static const struct snap_ops fake_snap_ops = {
    .open_reader = fo_open_reader,
    .close_reader = fo_close_reader,
    .open_table = fo_open_table,
    .close_table = fo_close_table,
    .plan = fo_plan,
    .read_chunk = fo_read_chunk,
    .fold_rule = fo_fold_rule,
    .watermark = fo_watermark,
    .read_after = fo_read_after,
    .row_key = fo_row_key,
    .saw = fo_saw,
};

/* ---------- wiring ---------- */

/* The pipeline up to its one sink's type. */
#define PIPELINE_HEAD                                                                              \
    "pipeline_id: snap\n"                                                                          \
    "source:\n"                                                                                    \
    "  database: db\n"                                                                             \
    "  tables: [public.a, public.b, public.nokey]\n"                                               \
    "  snapshot_parallelism: 3\n"                                                                  \
    "  snapshot_chunk_rows: 5\n"                                                                   \
    "sinks:\n"                                                                                     \
    "  - sink_id: keep\n"

static const char PIPELINE[] = PIPELINE_HEAD "    sink_type: file\n"
                                             "    file:\n"
                                             "      path: unused.jsonl\n";

/* The same with a mirror (a postgres sink, whose type wants each table's
 * rows in key order; the scripted sink stands in for it). */
static const char PIPELINE_MIRROR[] = PIPELINE_HEAD "    sink_type: postgres\n"
                                                    "    postgres: {database: m}\n";
static const char *pipeline = PIPELINE;

struct fx {
    struct config *cfg;
    struct json_ctx json;
    struct engine *eng;
    struct store *store;
    struct emitter *em;
    volatile sig_atomic_t stop;
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    pthread_mutex_lock(&ks.mu);
    ks.n = 0;
    ks.seq = 0;
    pthread_mutex_unlock(&ks.mu);
    free(fsn.last_after);
    memset(fsn.reads, 0, sizeof fsn.reads);
    fsn.readers_open = fsn.readers_closed = fsn.plans = fsn.nwm = 0;
    fsn.last_after = NULL;
    fsn.after_reads = 0;
    fsn.hidden = 0;
    fsn.hidden_reads = 0;
    memset(fsn.most, 0, sizeof fsn.most);
    struct cfg_errors errs = {0};
    int rc = config_load_text(&f->cfg, NULL, pipeline, strlen(pipeline), NULL, NULL, 0, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_int_equal(rc, 0);
    char err[512];
    assert_int_equal(store_open(&f->store, ":memory:", err, sizeof err), 0);
    assert_int_equal(engine_new_ops(&f->eng, f->cfg, &f->json, NULL, &keep_ops, err, sizeof err),
                     0);
    assert_int_equal(engine_start(f->eng, &(struct cdc_ack){0, 0}, 1), 0);
    struct emitter_cfg ec = {.eng = f->eng, .stop = &f->stop};
    f->em = emitter_new(&ec);
    *state = f;
    return 0;
}

static int setup_mirror(void **state)
{
    pipeline = PIPELINE_MIRROR;
    return setup(state);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pipeline = PIPELINE;
    emitter_flush(f->em);
    engine_close(f->eng);
    engine_wait(f->eng, 5000000);
    engine_free(f->eng);
    emitter_free(f->em);
    store_close(f->store);
    config_free(f->cfg);
    free(f);
    return 0;
}

static bool has_key(struct fx *f, const char *key, const char *want)
{
    char *v = NULL, err[256];
    assert_int_equal(store_kv_get(f->store, key, &v, err, sizeof err), 0);
    bool ok = v && (!want || strcmp(v, want) == 0);
    free(v);
    return ok;
}

static void put(struct fx *f, const char *key, const char *v)
{
    char err[256];
    assert_int_equal(store_kv_put(f->store, key, v, err, sizeof err), 0);
}

static int run_initial(struct fx *f, bool resumed)
{
    struct snap_initial_cfg c = {
        .cfg = f->cfg,
        .store = f->store,
        .em = f->em,
        .ops = &fake_snap_ops,
        .id = "S1",
        .pos = 777,
        .resumed = resumed,
    };
    char err[512];
    int rc = snap_initial(&c, f->cfg->source.tables, f->cfg->source.ntables, err, sizeof err);
    if (rc)
        fprintf(stderr, "snap_initial: %s\n", err);
    return rc;
}

/* ---------- tests ---------- */

static void test_initial_reads_every_chunk_once(void **state)
{
    struct fx *f = *state;
    assert_int_equal(run_initial(f, false), 0);
    assert_int_equal(fsn.readers_open, 3);
    assert_int_equal(fsn.readers_closed, 3);
    for (long id = 0; id < 40; id++)
        assert_int_equal(count("a", id, 'r'), 1);
    for (long id = 0; id < 20; id++) {
        assert_int_equal(count("b", id, 'r'), 1);
        assert_int_equal(count("nokey", id, 'r'), 1);
    }
    for (int c = 0; c < 4; c++)
        assert_int_equal(fsn.reads[c], 1);
    /* Rows carry the snapshot's position and identity: the snapshot, the
     * chunk read and their row in it, no two alike in a table; their
     * position is the point the stream starts after, nothing finer. */
    pthread_mutex_lock(&ks.mu);
    for (int i = 0; i < ks.n; i++) {
        assert_int_equal(ks.ev[i].pos.lsn, 777);
        assert_int_equal(ks.ev[i].pos.idx, 0);
        assert_int_equal(ks.ev[i].snapshot_id, 777);
        for (int k = 0; k < i; k++)
            assert_false(strcmp(ks.ev[k].table, ks.ev[i].table) == 0 &&
                         ks.ev[k].chunk == ks.ev[i].chunk && ks.ev[k].row == ks.ev[i].row);
    }
    pthread_mutex_unlock(&ks.mu);
    /* Progress under the keys every version used. */
    assert_true(has_key(f, "snapshot.S1.plan.public.a", "0 40\n0-9\n10-19\n20-29\n30-39\n"));
    for (int c = 0; c < 4; c++) {
        char key[64];
        snprintf(key, sizeof key, "snapshot.S1.done.public.a.%d", c);
        assert_true(has_key(f, key, "1"));
    }
    assert_true(has_key(f, "snapshot.table.public.a", "S1"));
    assert_true(has_key(f, "snapshot.table.public.nokey", "S1"));
    assert_true(has_key(f, "snapshot.chunkseq.public.a", "4"));
    assert_false(has_key(f, "snapshot.S1.folds", NULL)); /* not resumed: nothing rebuilt */
}

/* With a sink that wants key order (a mirror), a table is read by one
 * reader at a time, chunk after chunk, so its rows reach the sink in key
 * order; the three readers still share the tables. */
static void test_initial_one_reader_per_table(void **state)
{
    struct fx *f = *state;
    assert_int_equal(run_initial(f, false), 0);
    assert_int_equal(fsn.readers_open, 3);
    for (int t = 0; t < 3; t++)
        assert_int_equal(fsn.most[t], 1);
    for (int c = 0; c < 4; c++)
        assert_int_equal(fsn.reads[c], 1);
    const char *names[] = {"a", "b", "nokey"};
    long rows[] = {40, 20, 20};
    for (int t = 0; t < 3; t++) {
        long next = 0;
        pthread_mutex_lock(&ks.mu);
        for (int i = 0; i < ks.n; i++)
            if (strcmp(ks.ev[i].table, names[t]) == 0 && ks.ev[i].op == 'r') {
                if (ks.ev[i].id != next)
                    fail_msg("%s: row %ld arrived where %ld was due", names[t], ks.ev[i].id, next);
                next++;
            }
        pthread_mutex_unlock(&ks.mu);
        assert_int_equal(next, rows[t]);
    }
}

static void test_initial_resumes_at_chunks_not_done(void **state)
{
    struct fx *f = *state;
    /* What an interrupted run left: plans, two chunks of public.a done, one
     * of the keyless table done. */
    put(f, "snapshot.S1.plan.public.a", "0 40\n0-9\n10-19\n20-29\n30-39\n");
    put(f, "snapshot.S1.done.public.a.0", "1");
    put(f, "snapshot.S1.done.public.a.2", "1");
    put(f, "snapshot.S1.plan.public.nokey", "0 20\n0-9\n10-19\n");
    put(f, "snapshot.S1.done.public.nokey.0", "1");
    put(f, "snapshot.S1.folds", "public.gone\tOLD\npublic.nokey\tOLDER\n");
    assert_int_equal(run_initial(f, true), 0);
    assert_int_equal(fsn.plans, 1); /* public.b only: the others were stored */
    assert_int_equal(fsn.reads[0], 0);
    assert_int_equal(fsn.reads[1], 1);
    assert_int_equal(fsn.reads[2], 0);
    assert_int_equal(fsn.reads[3], 1);
    assert_int_equal(count("a", 5, 'r'), 0);
    assert_int_equal(count("a", 15, 'r'), 1);
    /* The keyless table is rebuilt: a truncate ahead of its rows, all of
     * them read again, and its fold rule replaces the older one. */
    pthread_mutex_lock(&ks.mu);
    int first = -1;
    for (int i = 0; i < ks.n && first < 0; i++)
        if (strcmp(ks.ev[i].table, "nokey") == 0)
            first = i;
    assert_true(first >= 0);
    assert_int_equal(ks.ev[first].op, 't');
    pthread_mutex_unlock(&ks.mu);
    for (long id = 0; id < 20; id++)
        assert_int_equal(count("nokey", id, 'r'), 1);
    assert_true(has_key(f, "snapshot.S1.folds", "public.gone\tOLD\npublic.nokey\tRULE\n"));
    assert_true(has_key(f, "snapshot.S1.done.public.a.3", "1"));
    assert_true(has_key(f, "snapshot.S1.done.public.nokey.1", "1"));
}

/* A row inserted into the signal table, as a stream would carry it. */
static struct cdc_event *signal_row(const char *id, const char *type, uint64_t at)
{
    struct cdc_table *tab = cdc_table_new(9, "public", "cdc_signal", "cdc", 3);
    const char *names[3] = {"id", "type", "data"};
    for (int i = 0; i < 3; i++) {
        tab->cols[i].name = xstrdup(names[i]);
        tab->cols[i].type_name = xstrdup("text");
    }
    cdc_table_finish(tab);
    const char *vals[3] = {id, type, "{}"};
    struct cdc_event *ev = cdc_event_new(0, 3, 512);
    uint32_t off = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(vals[i]);
        ev->after[i] = (struct cdc_val){off, (uint32_t)len, CDC_V_TEXT};
        memcpy(ev->data + off, vals[i], len + 1);
        off += (uint32_t)len + 1;
    }
    ev->data_len = off;
    ev->op = CDC_OP_INSERT;
    ev->tab = tab;
    ev->pos = (struct cdc_pos){at, 0, 0};
    ev->lsn = at + 1;
    ev->xid = 42;
    return ev;
}

/* Pushes what was emitted and records the chunks every sink holds, until
 * key has the value want (NULL: until it is gone). */
static void settle(struct fx *f, struct isnap *is, const char *key, const char *want)
{
    char err[256];
    assert_int_equal(emitter_flush(f->em), 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(isnap_record_done(is, f->em, err, sizeof err), 0);
        if (want ? has_key(f, key, want) : !has_key(f, key, NULL))
            return;
        clock_sleep_us(5000);
    }
    fail_msg("%s never became %s", key, want ? want : "absent");
}

static void test_incremental_window(void **state)
{
    struct fx *f = *state;
    struct isnap *is = NULL;
    char err[512];
    struct isnap_cfg ic = {.cfg = f->cfg, .store = f->store, .ops = &fake_snap_ops};
    assert_int_equal(isnap_open(&is, &ic, err, sizeof err), 0);
    char *tables[] = {"public.a"};
    assert_int_equal(isnap_request(is, tables, 1, err, sizeof err), 0);
    assert_true(has_key(f, "isnap.queue", "public.a\n"));
    assert_true(isnap_active(is));

    /* Chunk 1: ids 0..4 (snapshot_chunk_rows 5), between two watermarks. */
    assert_int_equal(isnap_step(is, err, sizeof err), 0);
    assert_int_equal(fsn.nwm, 2);
    assert_string_equal(fsn.wm_types[0], "snapshot-window-open");
    assert_string_equal(fsn.wm_types[1], "snapshot-window-close");
    assert_null(fsn.last_after);
    /* The stream: the low watermark, an update of id 3 inside the window,
     * the high watermark: id 3's read row is dropped (the stream's is
     * newer), the others go out positioned at the high watermark. */
    struct cdc_event *open = signal_row(fsn.watermarks[0], fsn.wm_types[0], 5000);
    assert_int_equal(isnap_on_signal(is, f->em, open), 0);
    struct cdc_table *a = NULL;
    void *t = NULL;
    fo_open_table(NULL, NULL, "public.a", &t, &a, err, sizeof err);
    struct cdc_event *upd = row(a, 3);
    upd->op = CDC_OP_UPDATE;
    isnap_on_change(is, upd);
    cdc_event_unref(upd);
    cdc_table_unref(a);
    fo_close_table(NULL, t);
    struct cdc_event *close = signal_row(fsn.watermarks[1], fsn.wm_types[1], 6000);
    assert_int_equal(isnap_on_signal(is, f->em, close), 0);
    /* Once durable, the last key is progress. */
    settle(f, is, "isnap.key.public.a", "k=4");
    for (long id = 0; id < 5; id++)
        assert_int_equal(count("a", id, 'r'), id == 3 ? 0 : 1);
    pthread_mutex_lock(&ks.mu);
    for (int i = 0; i < ks.n; i++) {
        assert_int_equal(ks.ev[i].pos.lsn, 6000);
        assert_int_equal(ks.ev[i].pos.idx, 0);
        assert_int_equal(ks.ev[i].chunk, ks.ev[0].chunk);
        assert_int_equal(ks.ev[i].row, (uint32_t)(i == 0 ? 0 : ks.ev[i - 1].row + 1));
    }
    pthread_mutex_unlock(&ks.mu);

    /* Chunks 2 and 3 resume after it; the last one ends the table. */
    for (int chunk = 0; chunk < 2; chunk++) {
        assert_int_equal(isnap_step(is, err, sizeof err), 0);
        assert_string_equal(fsn.last_after, chunk == 0 ? "k=4" : "k=9");
        struct cdc_event *o = signal_row(fsn.watermarks[fsn.nwm - 2], "snapshot-window-open", 7000);
        struct cdc_event *c =
            signal_row(fsn.watermarks[fsn.nwm - 1], "snapshot-window-close", 8000);
        assert_int_equal(isnap_on_signal(is, f->em, o), 0);
        assert_int_equal(isnap_on_signal(is, f->em, c), 0);
        cdc_event_unref(o);
        cdc_event_unref(c);
        if (chunk == 0)
            settle(f, is, "isnap.key.public.a", "k=9");
        else
            settle(f, is, "snapshot.table.public.a", "incremental");
    }
    for (long id = 5; id < 12; id++)
        assert_int_equal(count("a", id, 'r'), 1);
    assert_false(isnap_active(is));
    assert_true(has_key(f, "snapshot.table.public.a", "incremental"));
    assert_false(has_key(f, "isnap.key.public.a", NULL));
    assert_true(has_key(f, "isnap.queue", ""));
    cdc_event_unref(open);
    cdc_event_unref(close);
    isnap_free(is);
}

/* A transaction the stream delivered before the chunk's read but the read
 * did not see (its commit was sent before its session left the running
 * set): the read is done again until it sees it, so no read row is older
 * than a change already delivered. */
static void test_incremental_read_sees_delivered_changes(void **state)
{
    struct fx *f = *state;
    struct isnap *is = NULL;
    char err[512];
    struct isnap_cfg ic = {.cfg = f->cfg, .store = f->store, .ops = &fake_snap_ops};
    assert_int_equal(isnap_open(&is, &ic, err, sizeof err), 0);
    char *tables[] = {"public.a"};
    assert_int_equal(isnap_request(is, tables, 1, err, sizeof err), 0);
    struct cdc_table *a = NULL;
    void *t = NULL;
    fo_open_table(NULL, NULL, "public.a", &t, &a, err, sizeof err);
    struct cdc_event *upd = row(a, 3);
    upd->op = CDC_OP_UPDATE;
    upd->xid = 4242;
    isnap_on_change(is, upd); /* delivered before the step: no window yet */
    fsn.hidden = 4242;
    fsn.hidden_reads = 2;
    assert_int_equal(isnap_step(is, err, sizeof err), 0);
    assert_int_equal(fsn.after_reads, 3); /* two reads missed it, the third saw it */
    assert_int_equal(fsn.nwm, 2);         /* one window around them all */
    /* A transaction that stays unseen (still running) ends the rereads. */
    isnap_free(is);
    is = NULL;
    assert_int_equal(isnap_open(&is, &ic, err, sizeof err), 0);
    fsn.after_reads = 0;
    fsn.hidden_reads = 1000;
    isnap_on_change(is, upd);
    cdc_event_unref(upd);
    cdc_table_unref(a);
    fo_close_table(NULL, t);
    assert_int_equal(isnap_request(is, tables, 1, err, sizeof err), 0);
    assert_int_equal(isnap_step(is, err, sizeof err), 0);
    assert_true(fsn.after_reads > 1 && fsn.after_reads < 100);
    isnap_free(is);
}

int main(void)
{
    alarm(120);
    pthread_mutex_init(&ks.mu, NULL);
    pthread_mutex_init(&fsn.mu, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_initial_reads_every_chunk_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initial_one_reader_per_table, setup_mirror, teardown),
        cmocka_unit_test_setup_teardown(test_initial_resumes_at_chunks_not_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental_read_sees_delivered_changes, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(fsn.last_after);
    return rc;
}
