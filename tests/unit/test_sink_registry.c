/* Sink types own their config and their flush policy.
 *
 * A sink type the registry does not know (declared here, handed to the
 * loader with config_load_text_types) gets its block decoded with its own
 * schema: defaults, bounds, secrets, its check hook, the common keys it
 * takes with its defaults, and errors naming file:line and key.  The
 * registry lists every type, those this build cannot use included.
 *
 * A scripted fake sink driven by the real engine shows the flush policies:
 * SINK_FLUSH_INTERVAL_ONLY does not flush when the runner catches up, only
 * once its interval passed (with no new events) or a batch is written; a
 * flush that made less durable than it was given is tried again on the
 * interval, with no new events.  Run it under ThreadSanitizer too:
 * make VARIANT=tsan build/tsan/tests/test_sink_registry. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cfg_keys.h"
#include "config/config.h"
#include "pipeline/engine.h"
#include "sink/registry.h"
#include "sink/sink.h"
#include "source/pg/pgjson.h"
#include "util/clock.h"
#include "util/err.h"

/* ---------- a sink type of the test's own ---------- */

struct gauge_cfg {
    char *endpoint; /* required */
    int level;      /* default 5, 1..9 */
    char *token;    /* secret */
    bool loud;      /* default false */
};

/* Its cross-key rule: a loud gauge needs a token. */
static void gauge_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                        uint64_t ok)
{
    const struct gauge_cfg *g = obj;
    if (g->loud && !g->token)
        cfg_error_key(ctx, cfg_key_line(map, "loud", line), "loud", "a loud gauge needs a token");
}

#define T struct gauge_cfg
static const struct cfg_key gauge_keys[] = {
    K_STR(T, endpoint, NULL, .flags = CFG_REQUIRED),
    K_INT(T, level, 5, 1, 9),
    K_STR(T, token, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_BOOL(T, loud, 0),
};
#undef T
static const struct cfg_schema gauge_schema = {KEYS(gauge_keys), .check = gauge_check};

static const struct sink_type gauge_type = {
    .name = "gauge",
    .description = "a test sink",
    .schema = &gauge_schema,
    .conf_size = sizeof(struct gauge_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 77,
    .flush_interval_seconds = 3.5,
    .flush = SINK_FLUSH_INTERVAL_ONLY,
};

/* No keys of its own, no block needed, batch_size only. */
static const struct sink_type bare_type = {
    .name = "bare",
    .common_keys = SINK_KEY_BATCH_SIZE,
    .batch_size = 3,
    .flush_interval_seconds = 0.25,
};

/* Known by name, not in this build. */
static const struct sink_type absent_type = {
    .name = "absent", .availability = SINK_NOT_BUILT, .library = "libabsent"};

static const struct sink_type *const test_types[] = {&gauge_type, &bare_type, &absent_type};

#define PIPE_HEAD "pipeline_id: p\nsource:\n  database: db\n  tables: [public.t]\nsinks:\n"

/* Loads PIPE_HEAD + sinks with the test's types; returns the config or NULL
 * with the errors in errs. */
static struct config *load(const char *sinks, struct cfg_errors *errs)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s", PIPE_HEAD, sinks);
    struct config *cfg = NULL;
    int rc = config_load_text_types(&cfg, "pipeline.yaml", text, strlen(text), NULL, NULL, 0, errs,
                                    test_types, sizeof test_types / sizeof *test_types);
    assert_true((rc == 0) == (cfg != NULL));
    return cfg;
}

static struct config *load_ok(const char *sinks)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(sinks, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("unexpected: %s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_non_null(cfg);
    return cfg;
}

/* Loading fails with exactly this one error. */
static void expect1(const char *sinks, const char *want)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(sinks, &errs);
    config_free(cfg);
    if (errs.n != 1 || strcmp(errs.msgs[0], want) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            print_error("got:  %s\n", errs.msgs[i]);
        print_error("want: %s\n", want);
        cfg_errors_fini(&errs);
        fail();
    }
    cfg_errors_fini(&errs);
}

static void test_own_schema_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok("  - sink_id: g\n"
                                 "    sink_type: gauge\n"
                                 "    gauge: {endpoint: here}\n"
                                 "  - sink_id: g2\n"
                                 "    sink_type: gauge\n"
                                 "    gauge:\n"
                                 "      endpoint: there\n"
                                 "      level: 9\n"
                                 "      token: t0k\n"
                                 "      loud: true\n"
                                 "      batch_size: 5\n"
                                 "      flush_interval_seconds: 0\n"
                                 "  - sink_id: b\n"
                                 "    sink_type: bare\n");
    assert_int_equal(cfg->nsinks, 3);
    const struct sink_cfg *g = &cfg->sinks[0];
    assert_ptr_equal(g->type, &gauge_type);
    const struct gauge_cfg *gc = g->conf;
    assert_string_equal(gc->endpoint, "here");
    assert_int_equal(gc->level, 5);
    assert_null(gc->token);
    assert_false(gc->loud);
    assert_int_equal(g->batch_size, 77); /* the type's defaults for the common keys */
    assert_true(g->flush_interval_seconds == 3.5);

    const struct sink_cfg *g2 = &cfg->sinks[1];
    gc = g2->conf;
    assert_string_equal(gc->endpoint, "there");
    assert_int_equal(gc->level, 9);
    assert_string_equal(gc->token, "t0k");
    assert_true(gc->loud);
    assert_int_equal(g2->batch_size, 5);
    assert_true(g2->flush_interval_seconds == 0.0);

    /* no block needed, no keys of its own */
    const struct sink_cfg *b = &cfg->sinks[2];
    assert_ptr_equal(b->type, &bare_type);
    assert_null(b->conf);
    assert_int_equal(b->batch_size, 3);
    assert_true(b->flush_interval_seconds == 0.25);
    config_free(cfg);
}

static void test_own_schema_errors(void **state)
{
    (void)state;
    expect1(
        "  - sink_id: g\n    sink_type: gauge\n    gauge:\n      endpoint: e\n      level: 12\n",
        "pipeline.yaml:10: sinks[0].gauge.level: expected an integer 1..9, got \"12\"");
    expect1("  - sink_id: g\n    sink_type: gauge\n    gauge: {level: 2}\n",
            "pipeline.yaml:8: sinks[0].gauge.endpoint: required key is missing");
    /* a misspelling is pointed at the type's keys and the common ones */
    expect1("  - sink_id: g\n    sink_type: gauge\n    gauge:\n      endpoint: e\n"
            "      batch_sise: 3\n",
            "pipeline.yaml:10: sinks[0].gauge.batch_sise: unknown key (did you mean "
            "\"batch_size\"?)");
    expect1("  - sink_id: g\n    sink_type: gauge\n    gauge:\n      endpoint: e\n"
            "      batch_size: 0\n",
            "pipeline.yaml:10: sinks[0].gauge.batch_size: expected an integer >= 1, got \"0\"");
    /* a common key the type does not take is unknown */
    expect1("  - sink_id: b\n    sink_type: bare\n    bare:\n      flush_interval_seconds: 1\n",
            "pipeline.yaml:9: sinks[0].bare.flush_interval_seconds: unknown key");
    /* the type's own rule; the secret is not echoed */
    expect1("  - sink_id: g\n    sink_type: gauge\n    gauge:\n      endpoint: e\n"
            "      loud: true\n",
            "pipeline.yaml:10: sinks[0].gauge.loud: a loud gauge needs a token");
    expect1("  - sink_id: g\n    sink_type: gauge\n    gauge:\n      endpoint: e\n"
            "      token: [hunter2]\n",
            "pipeline.yaml:10: sinks[0].gauge.token: expected a string");
    /* the sink_type names one of the types the loader was given */
    expect1("  - sink_id: g\n    sink_type: file\n",
            "pipeline.yaml:7: sinks[0].sink_type: expected one of gauge|bare|absent, got "
            "\"file\"");
    expect1("  - sink_id: g\n    sink_type: gauge\n",
            "pipeline.yaml:6: sinks[0]: sink_type \"gauge\" needs a \"gauge:\" block");
    expect1("  - sink_id: b\n    sink_type: bare\n    gauge: {endpoint: e}\n",
            "pipeline.yaml:8: sinks[0]: sink_type \"bare\" must not have a \"gauge:\" block");
    expect1("  - sink_id: g\n    sink_type: gauge\n    guage: {endpoint: e}\n    gauge: "
            "{endpoint: e}\n",
            "pipeline.yaml:8: sinks[0].guage: unknown key (did you mean \"gauge\"?)");
    expect1("  - sink_id: g\n    sink_type: gauge\n    gauge: [a]\n",
            "pipeline.yaml:8: sinks[0].gauge: expected a mapping");
}

/* A type this build lacks: known by name, block unchecked, refused with
 * its reason when used. */
static void test_not_built(void **state)
{
    (void)state;
    struct config *cfg = load_ok("  - sink_id: a\n    sink_type: absent\n    absent: {x: 1}\n");
    assert_ptr_equal(cfg->sinks[0].type, &absent_type);
    char why[160];
    assert_string_equal(sink_type_unavailable(cfg->sinks[0].type, why, sizeof why),
                        "sink type absent is not available in this build (built without "
                        "libabsent)");
    /* the engine refuses it */
    struct json_ctx json = {.pipeline_id = "p",
                            .connector = "postgresql",
                            .db = "db",
                            .version = "0",
                            .source = pgjson_source};
    struct engine *eng = NULL;
    char err[256];
    assert_int_equal(engine_new(&eng, cfg, &json, NULL, err, sizeof err), CDC_ENOTSUP);
    assert_null(eng);
    assert_non_null(strstr(err, "not available in this build"));
    config_free(cfg);
}

static void test_registry(void **state)
{
    (void)state;
    static const char *const want[] = {"file", "postgres", "webhook", "iceberg", "kafka", "nats"};
    enum { N = sizeof want / sizeof *want };
    assert_int_equal(sink_type_count(), N);
    for (size_t i = 0; i < N; i++) {
        const struct sink_type *t = sink_type_at(i);
        assert_non_null(t);
        assert_string_equal(t->name, want[i]);
        assert_ptr_equal(sink_type_find(want[i]), t);
        /* what the loader needs of every usable type */
        if (t->availability == SINK_AVAILABLE) {
            assert_non_null(t->ops);
            assert_non_null(t->schema);
            assert_true(t->batch_size >= 1);
        }
    }
    assert_null(sink_type_at(N));
    assert_null(sink_type_find("iceberg ")); /* exact names only */
    assert_null(sink_type_find(NULL));
    char why[160];
    assert_null(sink_type_unavailable(sink_type_find("file"), why, sizeof why));
    assert_null(sink_type_unavailable(sink_type_find("iceberg"), why, sizeof why));
    const struct sink_type planned = {.name = "lake", .availability = SINK_NOT_IMPLEMENTED};
    assert_string_equal(sink_type_unavailable(&planned, why, sizeof why),
                        "lake sinks are not implemented in this version of cdc");
    /* each type's common keys with its own defaults */
    struct cfg_errors errs = {0};
    const char *text = PIPE_HEAD "  - sink_id: f\n    sink_type: file\n    file: {path: x}\n"
                                 "  - sink_id: w\n    sink_type: webhook\n"
                                 "    webhook: {url: 'http://h/', batch_size: 20}\n";
    struct config *cfg = NULL;
    assert_int_equal(config_load_text(&cfg, NULL, text, strlen(text), NULL, NULL, 0, &errs), 0);
    assert_int_equal(cfg->sinks[0].batch_size, 10000);
    assert_true(cfg->sinks[0].flush_interval_seconds == 0.2);
    assert_int_equal(cfg->sinks[1].batch_size, 20);
    config_free(cfg);
    cfg_errors_fini(&errs);
}

/* ---------- flush policies, through the engine ---------- */

#define MAX_FLUSHES 16

/* The fake sink's script and record: its sink_cfg.conf. */
struct fake {
    pthread_mutex_t mu;
    struct engine *eng; /* to note what was confirmed when a flush starts */
    int partial;        /* the first this many flushes make only up to partial_seq durable */
    uint64_t partial_seq;
    uint64_t given; /* newest seq written */
    int64_t first_write_us;
    size_t written;
    int flushes;
    int64_t flush_us[MAX_FLUSHES];
    uint64_t confirmed_at[MAX_FLUSHES]; /* engine_confirmed as each flush started */
};

static int fake_open(struct sink *sk, struct cdc_posmap *have)
{
    return 0;
}

static int fake_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    struct fake *fk = (struct fake *)sk->cfg->conf;
    pthread_mutex_lock(&fk->mu);
    if (!fk->written)
        fk->first_write_us = clock_mono_us();
    fk->written += n;
    fk->given = evs[n - 1]->seq;
    pthread_mutex_unlock(&fk->mu);
    return 0;
}

static int fake_flush(struct sink *sk, uint64_t *durable_seq)
{
    struct fake *fk = (struct fake *)sk->cfg->conf;
    uint64_t confirmed = engine_confirmed_of(fk->eng, 0);
    pthread_mutex_lock(&fk->mu);
    int i = fk->flushes++;
    if (i < MAX_FLUSHES) {
        fk->flush_us[i] = clock_mono_us();
        fk->confirmed_at[i] = confirmed;
    }
    *durable_seq = i < fk->partial ? fk->partial_seq : fk->given;
    pthread_mutex_unlock(&fk->mu);
    return 0;
}

static void fake_close(struct sink *sk)
{
}

static const struct sink_ops fake_ops = {
    .open = fake_open,
    .write = fake_write,
    .flush = fake_flush,
    .close = fake_close,
};

static const struct sink_type fake_interval_type = {
    .name = "fake",
    .ops = &fake_ops,
    .ordering = ORDER_TRANSACTION,
    .flush = SINK_FLUSH_INTERVAL_ONLY,
};

static const struct sink_type fake_catch_up_type = {
    .name = "fake",
    .ops = &fake_ops,
    .ordering = ORDER_TRANSACTION,
    .flush = SINK_FLUSH_ON_CATCH_UP,
};

struct rig {
    struct config cfg;
    struct sink_cfg sc;
    struct fake fk;
    struct json_ctx json;
    struct engine *eng;
    uint64_t seq;
};

static void rig_start(struct rig *r, const struct sink_type *type, int batch_size, double interval)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->fk.mu, NULL);
    r->cfg.pipeline_id = "p";
    r->cfg.platform.partitions = 1;
    r->cfg.platform.max_buffered_bytes = INT64_C(64) << 20;
    r->cfg.platform.max_buffered_messages = 10000;
    r->sc.sink_id = "fake";
    r->sc.type = type;
    r->sc.enabled = true;
    r->sc.retry = (struct retry_cfg){
        .max_attempts = 5, .initial_wait_seconds = 0.01, .max_wait_seconds = 0.1, .multiplier = 2};
    r->sc.batch_size = batch_size;
    r->sc.flush_interval_seconds = interval;
    r->sc.conf = &r->fk;
    r->cfg.sinks = &r->sc;
    r->cfg.nsinks = 1;
    r->json = (struct json_ctx){.pipeline_id = "p",
                                .connector = "postgresql",
                                .db = "db",
                                .version = "0",
                                .source = pgjson_source};
    char err[256];
    assert_int_equal(engine_new(&r->eng, &r->cfg, &r->json, NULL, err, sizeof err), 0);
    r->fk.eng = r->eng;
    assert_int_equal(engine_start(r->eng, &(struct cdc_ack){0, 0}, 1), 0);
}

/* One source transaction of n changes committed at lsn. */
static void rig_txn(struct rig *r, size_t n, uint64_t lsn)
{
    struct cdc_event *evs[64];
    assert_true(n < 64);
    for (size_t i = 0; i <= n; i++) {
        struct cdc_event *ev = cdc_event_new(0, 0, 0);
        ev->op = i < n ? CDC_OP_INSERT : CDC_OP_COMMIT;
        ev->pos = (struct cdc_pos){lsn, i < n ? i : CDC_POS_TXN_END, 0};
        ev->seq = ++r->seq;
        engine_route(r->eng, ev);
        evs[i] = ev;
    }
    size_t done = 0;
    assert_int_equal(engine_push(r->eng, evs, n + 1, &done, 10000), 0);
    engine_commit(r->eng, r->seq, 0, lsn);
}

static int flushes(struct rig *r)
{
    pthread_mutex_lock(&r->fk.mu);
    int n = r->fk.flushes;
    pthread_mutex_unlock(&r->fk.mu);
    return n;
}

/* Waits (up to 30 s) until the sink was flushed n times. */
static void wait_flushes(struct rig *r, int n)
{
    int64_t end = clock_mono_us() + 30000000;
    while (flushes(r) < n && clock_mono_us() < end)
        clock_sleep_us(2000);
    assert_true(flushes(r) >= n);
}

static void wait_confirmed(struct rig *r, uint64_t lsn)
{
    int64_t end = clock_mono_us() + 30000000;
    while (engine_confirmed_of(r->eng, 0) < lsn && clock_mono_us() < end)
        clock_sleep_us(2000);
    assert_int_equal(engine_confirmed_of(r->eng, 0), lsn);
}

static void rig_stop(struct rig *r)
{
    engine_close(r->eng);
    assert_int_equal(engine_wait(r->eng, 10000000), 0);
    engine_free(r->eng);
    pthread_mutex_destroy(&r->fk.mu);
}

#define INTERVAL_S  0.4
#define INTERVAL_US 400000

/* Caught up after one small transaction: no flush until the interval has
 * passed since the write, then one with no new event arriving, and the
 * position is confirmed. */
static void test_interval_only_waits_for_interval(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, &fake_interval_type, 1000, INTERVAL_S);
    rig_txn(&r, 3, 100);
    wait_flushes(&r, 1);
    pthread_mutex_lock(&r.fk.mu);
    int64_t waited = r.fk.flush_us[0] - r.fk.first_write_us;
    size_t written = r.fk.written;
    pthread_mutex_unlock(&r.fk.mu);
    assert_int_equal(written, 4);
    if (waited < INTERVAL_US)
        fail_msg("flushed %lld us after the write, before the %d us interval", (long long)waited,
                 INTERVAL_US);
    wait_confirmed(&r, 100);
    rig_stop(&r);
}

/* The flush-on-catch-up policy (file, postgres, kafka) keeps flushing as
 * soon as it has read everything, long before its interval. */
static void test_catch_up_flushes_at_once(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, &fake_catch_up_type, 1000, 60);
    rig_txn(&r, 3, 100);
    wait_flushes(&r, 1);
    wait_confirmed(&r, 100);
    rig_stop(&r);
}

/* A full batch is flushed without waiting for the interval. */
static void test_interval_only_flushes_full_batch(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, &fake_interval_type, 8, 60);
    rig_txn(&r, 20, 100);
    wait_flushes(&r, 1);
    wait_confirmed(&r, 100);
    rig_stop(&r);
}

/* The first flush makes only part of what it was given durable: with no
 * new event arriving, the sink is flushed again once the interval passed
 * (not at once), and only then is the position confirmed. */
static void test_partial_durability_reflushed_on_interval(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, &fake_interval_type, 1000, INTERVAL_S);
    r.fk.partial = 1;
    r.fk.partial_seq = 2; /* of 1..4 */
    rig_txn(&r, 3, 100);
    wait_flushes(&r, 2);
    pthread_mutex_lock(&r.fk.mu);
    int64_t gap = r.fk.flush_us[1] - r.fk.flush_us[0];
    uint64_t before_second = r.fk.confirmed_at[1];
    pthread_mutex_unlock(&r.fk.mu);
    if (gap < INTERVAL_US)
        fail_msg("flushed again %lld us after a partial flush, before the %d us interval",
                 (long long)gap, INTERVAL_US);
    assert_int_equal(before_second, 0); /* half a transaction confirms nothing */
    wait_confirmed(&r, 100);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_schema_defaults),
        cmocka_unit_test(test_own_schema_errors),
        cmocka_unit_test(test_not_built),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_interval_only_waits_for_interval),
        cmocka_unit_test(test_catch_up_flushes_at_once),
        cmocka_unit_test(test_interval_only_flushes_full_batch),
        cmocka_unit_test(test_partial_durability_reflushed_on_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
