/* What the configuration loader's unit tests (test_config.c,
 * test_config_errors.c) share: the fixture files, a valid pipeline in parts
 * on known lines, loading a pipeline and platform text, and the check that
 * loading fails with exactly the given error lines.  Include <cmocka.h>
 * first. */
#ifndef CDC_TESTS_UNIT_CONFIGTEST_H
#define CDC_TESTS_UNIT_CONFIGTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/err.h"

/* The fixture directory, next to this file. */
static inline char *data_path(const char *name)
{
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    size_t dir = slash ? (size_t)(slash - here) + 1 : 0;
    size_t n = dir + strlen("data/config/") + strlen(name) + 1;
    char *p = malloc(n);
    snprintf(p, n, "%.*sdata/config/%s", (int)dir, here, name);
    return p;
}

/* A valid pipeline, each part on known lines:
 *   1 pipeline_id   2-4 source   5-9 sinks[0] (file) */
#define P_ID   "pipeline_id: p1\n"
#define P_SRC  "source:\n  database: db\n  tables: [public.t]\n"
#define P_SINK "sinks:\n  - sink_id: s1\n    sink_type: file\n    file:\n      path: out.jsonl\n"
#define P_OK   P_ID P_SRC P_SINK

static inline struct config *load(const char *pipe, const char *plat, struct cfg_errors *errs)
{
    struct config *cfg = NULL;
    int rc = config_load_text(&cfg, "pipeline.yaml", pipe, strlen(pipe), "platform.yaml", plat,
                              plat ? strlen(plat) : 0, errs);
    if (rc == 0) {
        assert_non_null(cfg);
        assert_int_equal(errs->n, 0);
    } else {
        assert_int_equal(rc, CDC_EINVAL);
        assert_null(cfg);
        assert_true(errs->n > 0);
    }
    return cfg;
}

static inline struct config *load_ok(const char *pipe, const char *plat)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(pipe, plat, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("unexpected: %s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_non_null(cfg);
    return cfg;
}

/* Loading fails with exactly the given error lines (NULL-terminated). */
static inline void expect_errors(const char *pipe, const char *plat, ...)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(pipe, plat, &errs);
    config_free(cfg);
    va_list ap;
    va_start(ap, plat);
    size_t i = 0;
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        if (i >= errs.n || strcmp(errs.msgs[i], want) != 0) {
            for (size_t j = 0; j < errs.n; j++)
                print_error("got:  %s\n", errs.msgs[j]);
            print_error("want: %s\n", want);
            va_end(ap);
            cfg_errors_fini(&errs);
            fail();
        }
    }
    va_end(ap);
    if (i != errs.n) {
        for (size_t j = 0; j < errs.n; j++)
            print_error("got: %s\n", errs.msgs[j]);
        cfg_errors_fini(&errs);
        fail_msg("expected %zu errors", i);
    }
    cfg_errors_fini(&errs);
}

#define EXPECT1(pipe, plat, msg) expect_errors(pipe, plat, msg, (const char *)NULL)

#endif
