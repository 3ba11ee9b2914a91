/* The pipeline's endpoints (http/api.h) on a real server on a loopback
 * port, driven through raw sockets: the probes and the status document,
 * the Prometheus text, the control API with and without control_token, the
 * refusal of an open control API, the dead-letter listing, and the figures
 * of a running engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <unistd.h>

#include "core/json.h"
#include "http/api.h"
#include "httptest.h"
#include "pipeline/engine.h"
#include "source/pg/pgjson.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

/* ---------- the API ---------- */

#define PIPE                                                                                       \
    "pipeline_id: p1\n"                                                                            \
    "source:\n  database: db\n  tables: [public.t]\n"                                              \
    "sinks:\n  - sink_id: out\n    sink_type: file\n    file:\n      path: %s\n"

static struct config *load_cfg(const char *platform, const char *sink_path)
{
    char pipe[1024];
    snprintf(pipe, sizeof pipe, PIPE, sink_path ? sink_path : "/nonexistent/out.jsonl");
    struct config *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = config_load_text(&cfg, "pipeline.yaml", pipe, strlen(pipe), "platform.yaml", platform,
                              strlen(platform), &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("config: %s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

static const char token_platform[] = "health_port: 0\ncontrol_token: s3cr3t-T0ken\n";

static void test_api_health_and_control(void **state)
{
    struct config *cfg = load_cfg(token_platform, NULL);
    struct store *st = NULL;
    char err[256];
    assert_int_equal(store_open(&st, ":memory:", err, sizeof err), 0);
    atomic_bool paused;
    atomic_init(&paused, false);
    struct api_ctx ctx = {.cfg = cfg, .store = st, .paused = &paused};
    struct api *api = NULL;
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    int port = api_port(api);
    assert_true(port > 0);
    struct buf all = BUF_INIT;
    const char *body;

    assert_int_equal(get(port, "/healthz", NULL, &all, &body), 200);
    assert_string_equal(body, "ok\n");

    /* starting: no source, no engine */
    assert_int_equal(get(port, "/readyz", NULL, &all, &body), 503);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"pipeline_id\":\"p1\""));
    assert_non_null(strstr(body, "\"state\":\"CONNECTING\""));
    assert_non_null(strstr(body, "\"sink_id\":\"out\""));
    assert_non_null(strstr(body, "\"status\":\"starting\""));
    assert_string_equal(header_of(&all, "Content-Type"), "application/json");

    assert_int_equal(get(port, "/status", NULL, &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"ready\":false"));
    assert_non_null(strstr(body, "\"dlq_pending\":0"));

    assert_int_equal(get(port, "/metrics", NULL, &all, &body), 200);
    assert_string_equal(header_of(&all, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(body, "# TYPE cdc_source_events_total counter\n"));
    assert_non_null(strstr(body, "# TYPE cdc_sink_up gauge\n"));
    assert_non_null(strstr(body, "cdc_sink_up{pipeline=\"p1\",sink=\"out\",type=\"file\"} 0\n"));
    assert_non_null(
        strstr(body, "cdc_sink_dlq_pending{pipeline=\"p1\",sink=\"out\",type=\"file\"} 0\n"));
    assert_null(strstr(body, "\ncdc_source_events_total{")); /* no source yet: no sample */

    assert_int_equal(get(port, "/nope", NULL, &all, &body), 404);
    const char post[] = "POST /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(port, post, sizeof post - 1, &all, &body), 405);
    assert_string_equal(header_of(&all, "Allow"), "GET, HEAD");

    /* control: 401 without a token, 403 with a wrong one, 200 with it */
    const char pause_noauth[] = "POST /control/pause HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(port, pause_noauth, sizeof pause_noauth - 1, &all, &body), 401);
    assert_non_null(header_of(&all, "WWW-Authenticate"));
    assert_null(strstr(all.p, "s3cr3t"));
    const char pause_basic[] =
        "POST /control/pause HTTP/1.1\r\nHost: t\r\nAuthorization: Basic czNjcjN0\r\n\r\n";
    assert_int_equal(roundtrip(port, pause_basic, sizeof pause_basic - 1, &all, &body), 401);
    static const char *wrong[] = {"s3cr3t-T0ke", "s3cr3t-T0ken1", "S3cr3t-T0ken", "x"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "POST /control/pause HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n",
                 wrong[i]);
        assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 403);
        assert_null(strstr(all.p, "s3cr3t-T0ken"));
    }
    assert_false(atomic_load(&paused));
    const char auth[] = "Authorization: bearer s3cr3t-T0ken\r\n";
    char req[256];
    snprintf(req, sizeof req, "POST /control/pause HTTP/1.1\r\nHost: t\r\n%s\r\n", auth);
    assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"paused\":true"));
    assert_true(atomic_load(&paused));
    assert_int_equal(get(port, "/control/status", auth, &all, &body), 200);
    assert_non_null(strstr(body, "\"pause_requested\":true"));
    assert_int_equal(get(port, "/control/status", NULL, &all, &body), 401);
    assert_int_equal(get(port, "/control/pause", auth, &all, &body), 405); /* GET */
    assert_int_equal(get(port, "/control/other", auth, &all, &body), 404);
    snprintf(req, sizeof req,
             "POST /control/resume HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n%s\r\n{}", auth);
    assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 200);
    assert_non_null(strstr(body, "\"paused\":false"));
    assert_false(atomic_load(&paused));

    /* without the pause flag, pausing is refused */
    ctx.paused = NULL;
    api_update(api, &ctx);
    snprintf(req, sizeof req, "POST /control/pause HTTP/1.1\r\nHost: t\r\n%s\r\n", auth);
    assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 503);

    buf_fini(&all);
    api_stop(api);
    store_close(st);
    config_free(cfg);
}

/* Without control_token the control API answers on loopback (the only
 * address it may listen on then), under /v1/ and the old paths. */
static void test_api_control_without_token(void **state)
{
    struct config *cfg = load_cfg("health_port: 0\n", NULL);
    atomic_bool paused;
    atomic_init(&paused, false);
    struct api_ctx ctx = {.cfg = cfg, .paused = &paused};
    struct api *api = NULL;
    char err[256];
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    struct buf all = BUF_INIT;
    const char *body;
    const char req[] = "POST /v1/pause HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(api_port(api), req, sizeof req - 1, &all, &body), 200);
    assert_true(atomic_load(&paused));
    assert_non_null(strstr(body, "\"changed\":true"));
    const char old[] = "POST /control/resume HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(api_port(api), old, sizeof old - 1, &all, &body), 200);
    assert_false(atomic_load(&paused));
    assert_string_equal(header_of(&all, "Deprecation"), "true");
    assert_string_equal(header_of(&all, "Link"), "</v1/resume>; rel=\"successor-version\"");
    assert_int_equal(get(api_port(api), "/v1/nothing", NULL, &all, &body), 404);
    assert_int_equal(get(api_port(api), "/v1/pause", NULL, &all, &body), 405);
    /* no DLQ store: the figure is unknown, not 0 */
    assert_int_equal(get(api_port(api), "/status", NULL, &all, &body), 200);
    assert_non_null(strstr(body, "\"dlq_pending\":null"));
    assert_int_equal(get(api_port(api), "/v1/dlq", NULL, &all, &body), 503);
    assert_int_equal(get(api_port(api), "/v1/snapshots", NULL, &all, &body), 200);
    assert_non_null(strstr(body, "\"snapshot\":null"));
    const char snap[] = "POST /v1/snapshots?tables=public.t HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(api_port(api), snap, sizeof snap - 1, &all, &body), 503);
    buf_fini(&all);
    api_stop(api);
    config_free(cfg);

    /* no config at all: loopback, any port */
    struct api_ctx none = {0};
    assert_int_equal(api_start(&api, &none, err, sizeof err), 0);
    assert_int_equal(get(api_port(api), "/readyz", NULL, &all, &body), 503);
    assert_true(json_valid(body, strlen(body)));
    buf_fini(&all);
    api_stop(api);
}

/* Without control_token the control API does not start on an address
 * others can reach: loading the platform file says so with the line, and
 * the server refuses too (a config loaded with secrets optional), naming
 * the file and both keys. */
static void test_api_refuses_open_control(void **state)
{
    static const char *const open_binds[] = {"0.0.0.0", "::", "10.1.2.3", "db.internal"};
    for (size_t i = 0; i < sizeof open_binds / sizeof *open_binds; i++) {
        char plat[128], pipe[1024];
        snprintf(plat, sizeof plat, "health_port: 0\nhealth_bind: \"%s\"\n", open_binds[i]);
        snprintf(pipe, sizeof pipe, PIPE, "/nonexistent/out.jsonl");
        struct config *cfg = NULL;
        struct cfg_errors errs = {0};
        assert_int_equal(config_load_text(&cfg, "pipeline.yaml", pipe, strlen(pipe),
                                          "platform.yaml", plat, strlen(plat), &errs),
                         CDC_EINVAL);
        assert_int_equal(errs.n, 1);
        assert_non_null(strstr(errs.msgs[0], "platform.yaml:2: health_bind: "));
        assert_non_null(strstr(errs.msgs[0], "control_token"));
        cfg_errors_fini(&errs);
        assert_int_equal(config_load_text_flags(&cfg, "pipeline.yaml", pipe, strlen(pipe),
                                                "platform.yaml", plat, strlen(plat),
                                                CONFIG_SECRETS_OPTIONAL, &errs),
                         0);
        struct api_ctx ctx = {.cfg = cfg};
        struct api *api = NULL;
        char err[512];
        assert_int_equal(api_check_bind(cfg, err, sizeof err), CDC_EINVAL);
        assert_int_equal(api_start(&api, &ctx, err, sizeof err), CDC_EINVAL);
        assert_null(api);
        assert_non_null(strstr(err, "platform.yaml: health_bind"));
        assert_non_null(strstr(err, open_binds[i]));
        assert_non_null(strstr(err, "control_token"));
        config_free(cfg);
    }
    /* with a token, or with the endpoints off, it is fine */
    struct config *cfg = load_cfg("health_bind: 0.0.0.0\ncontrol_token: t0k\n", NULL);
    char err[512];
    assert_int_equal(api_check_bind(cfg, err, sizeof err), 0);
    config_free(cfg);
    cfg = load_cfg("health_bind: 0.0.0.0\nhealth_enabled: false\n", NULL);
    assert_int_equal(api_check_bind(cfg, err, sizeof err), 0);
    config_free(cfg);
}

static void test_bind_is_loopback(void **state)
{
    static const char *const yes[] = {"127.0.0.1", "127.8.9.10",       "::1", "[::1]", "localhost",
                                      "LocalHost", "::ffff:127.0.0.1", "",    NULL};
    static const char *const no[] = {"0.0.0.0",   "::",  "[::]",        "10.0.0.1",
                                     "128.0.0.1", "::2", "example.com", "localhost.example",
                                     "[::1"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(config_bind_is_loopback(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        if (config_bind_is_loopback(no[i]))
            fail_msg("%s taken for loopback", no[i]);
    }
}

/* An insert into public.t (id int key) at (lsn, 0), for the DLQ. */
static struct cdc_event *dlq_event(struct cdc_table *tab, const char *id, uint64_t lsn)
{
    struct cdc_event *ev = cdc_event_new(0, 1, 32);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos = (struct cdc_pos){.lsn = lsn};
    ev->lsn = lsn;
    ev->commit_ts = 1718150400000000;
    size_t n = strlen(id);
    ev->after[0] = (struct cdc_val){.kind = CDC_V_TEXT, .off = ev->data_len, .len = (uint32_t)n};
    memcpy(ev->data + ev->data_len, id, n + 1);
    ev->data_len += (uint32_t)n + 1;
    return ev;
}

/* GET /v1/dlq: the entries with their table and key, filtered and cut. */
static void test_api_dlq_list(void **state)
{
    struct config *cfg = load_cfg(token_platform, NULL);
    struct store *st = NULL;
    char err[512];
    assert_int_equal(store_open(&st, ":memory:", err, sizeof err), 0);
    struct cdc_table *tab = cdc_table_new(1, "public", "t", "cdc", 1);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("integer");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].type_oid = 23;
    tab->cols[0].typmod = -1;
    tab->cols[0].key = true;
    cdc_table_finish(tab);
    static const char *const sinks[] = {"out", "out", "other"};
    static const char *const keys[] = {"{\"id\":1}", "{\"id\":2}", "{\"id\":3}"};
    for (int i = 0; i < 3; i++) {
        struct cdc_event *ev = dlq_event(tab, keys[i] + 6, 0x1000 + (uint64_t)i);
        struct dlq_failure f = {sinks[i], "permanent", "HTTP 422", 1, 422, 1};
        assert_int_equal(store_dlq_add(st, ev, keys[i], "{}", &f, NULL, err, sizeof err), 0);
        cdc_event_unref(ev);
    }
    cdc_table_unref(tab);
    struct api_ctx ctx = {.cfg = cfg, .store = st};
    struct api *api = NULL;
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    struct buf all = BUF_INIT;
    const char *body;
    const char auth[] = "Authorization: Bearer s3cr3t-T0ken\r\n";
    assert_int_equal(get(api_port(api), "/v1/dlq", NULL, &all, &body), 401);
    assert_int_equal(get(api_port(api), "/v1/dlq", auth, &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"count\":3,\"truncated\":false"));
    assert_non_null(strstr(body, "\"table\":\"public.t\",\"key\":{\"id\":2}"));
    assert_int_equal(get(api_port(api), "/v1/dlq?sink=other", auth, &all, &body), 200);
    assert_non_null(strstr(body, "\"count\":1,"));
    assert_non_null(strstr(body, "\"key\":{\"id\":3}"));
    assert_int_equal(get(api_port(api), "/v1/dlq?limit=2", auth, &all, &body), 200);
    assert_non_null(strstr(body, "\"count\":2,\"truncated\":true"));
    assert_int_equal(get(api_port(api), "/v1/dlq?limit=0", auth, &all, &body), 400);
    /* no replay without the envelope settings */
    const char rp[] = "POST /v1/dlq/replay HTTP/1.1\r\nHost: t\r\n"
                      "Authorization: Bearer s3cr3t-T0ken\r\n\r\n";
    assert_int_equal(roundtrip(api_port(api), rp, sizeof rp - 1, &all, &body), 503);
    assert_int_equal(get(api_port(api), "/v1/dlq/replay", auth, &all, &body), 200);
    assert_non_null(strstr(body, "{\"replay\":null}"));
    buf_fini(&all);
    api_stop(api);
    store_close(st);
    config_free(cfg);
}

/* A running engine with one file sink: per-sink metrics and readiness of
 * the sinks (the source is still missing, so not ready). */
static void test_api_with_engine(void **state)
{
    char dir[] = "/tmp/cdc-httpd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    struct config *cfg = load_cfg("health_port: 0\n", path);
    struct json_ctx json = {.pipeline_id = "p",
                            .connector = "postgresql",
                            .db = "db",
                            .version = "0",
                            .source = pgjson_source};
    struct engine *eng = NULL;
    char err[512];
    assert_int_equal(engine_new(&eng, cfg, &json, NULL, err, sizeof err), 0);
    assert_int_equal(engine_start(eng, &(struct cdc_ack){0, 0x16B3748}, 1), 0);
    struct api_ctx ctx = {.cfg = cfg};
    struct api *api = NULL;
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    ctx.eng = eng;
    api_update(api, &ctx);
    struct buf all = BUF_INIT;
    const char *body;
    int64_t deadline = clock_mono_us() + 5000000;
    for (;;) {
        assert_int_equal(get(api_port(api), "/metrics", NULL, &all, &body), 200);
        if (strstr(body, "cdc_sink_up{pipeline=\"p1\",sink=\"out\",type=\"file\"} 1\n") ||
            clock_mono_us() > deadline)
            break;
        usleep(20000);
    }
    assert_non_null(strstr(body, "cdc_sink_up{pipeline=\"p1\",sink=\"out\",type=\"file\"} 1\n"));
    assert_non_null(
        strstr(body, "cdc_sink_events_total{pipeline=\"p1\",sink=\"out\",type=\"file\"} 0\n"));
    assert_non_null(strstr(
        body, "cdc_sink_dead_lettered_total{pipeline=\"p1\",sink=\"out\",type=\"file\"} 0\n"));
    assert_null(strstr(body, "cdc_sink_dlq_pending{")); /* no store: no figure */
    assert_non_null(strstr(body, "cdc_buffer_full{pipeline=\"p1\"} 0\n"));
    assert_non_null(strstr(body, "cdc_commit_watermark_lsn{pipeline=\"p1\"} 23803720\n"));
    assert_int_equal(get(api_port(api), "/readyz", NULL, &all, &body), 503);
    assert_non_null(strstr(body, "\"status\":\"running\""));
    assert_non_null(strstr(body, "source is connecting"));
    /* withdraw the engine before freeing it */
    ctx.eng = NULL;
    api_update(api, &ctx);
    engine_close(eng);
    assert_int_equal(engine_wait(eng, 5000000), 0);
    engine_free(eng);
    assert_int_equal(get(api_port(api), "/status", NULL, &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    buf_fini(&all);
    api_stop(api);
    config_free(cfg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_health_and_control),
        cmocka_unit_test(test_api_control_without_token),
        cmocka_unit_test(test_api_refuses_open_control),
        cmocka_unit_test(test_bind_is_loopback),
        cmocka_unit_test(test_api_dlq_list),
        cmocka_unit_test(test_api_with_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
