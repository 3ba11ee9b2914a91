/* Unit tests for the iceberg sink's pure parts: its block's keys, defaults
 * and errors (FILE:LINE: KEY: MESSAGE, secrets never repeated), what `cdc
 * validate` shows, table name templates, and the positions the sink stores
 * and reports (ice_pos.c).  The sink itself runs against PostgreSQL in
 * tests/integration/test_iceberg_sink.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "sink/iceberg/ice_pos.h"
#include "sink/iceberg/iceberg_sink.h"
#include "util/buf.h"
#include "util/err.h"

#define HEAD                                                                                       \
    "pipeline_id: p\nsource:\n  database: db\n  tables: [public.t, sales.orders]\nsinks:\n"        \
    "  - sink_id: lake\n    sink_type: iceberg\n    iceberg:\n"

/* Loads HEAD + the block's lines; the config, or NULL with errs. */
static struct config *load(const char *block, struct cfg_errors *errs)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", HEAD, block);
    struct config *cfg = NULL;
    config_load_text(&cfg, "pipeline.yaml", text, strlen(text), NULL, NULL, 0, errs);
    return cfg;
}

/* The one error loading block gives, which must contain want. */
static void expect_error(const char *block, const char *want)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load(block, &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    if (!strstr(errs.msgs[0], want)) {
        fprintf(stderr, "error %s lacks %s\n", errs.msgs[0], want);
        fail();
    }
    cfg_errors_fini(&errs);
}

static void test_defaults_and_keys(void **state)
{
    struct cfg_errors errs = {0};
    struct config *cfg = load("      warehouse: file:///wh\n", &errs);
    assert_non_null(cfg);
    const struct iceberg_sink_cfg *ic = iceberg_sink_conf(&cfg->sinks[0]);
    assert_non_null(ic);
    assert_null(ic->catalog_uri);
    assert_string_equal(ic->catalog_name, "default");
    assert_string_equal(ic->table_namespace, "default");
    assert_string_equal(ic->table_name, "{table}");
    assert_int_equal(ic->write_mode, ICEBERG_APPEND);
    assert_true(ic->auto_create_table);
    assert_int_equal(ic->npartition_by, 0);
    assert_string_equal(ic->s3_region, "us-east-1");
    assert_int_equal(ic->compression, ICEBERG_ZSTD);
    assert_false(ic->maintenance.enabled);
    assert_true(ic->maintenance.expire_snapshots_older_than_seconds == 86400);
    assert_int_equal(ic->maintenance.compaction_max_rows_per_batch, 500000);
    assert_int_equal(ic->maintenance.target_file_size_mb, 128);
    assert_int_equal(cfg->sinks[0].batch_size, 10000);
    assert_true(cfg->sinks[0].flush_interval_seconds == 60);
    char *n = iceberg_table_for(ic, "sales", "orders");
    assert_string_equal(n, "orders");
    free(n);
    config_free(cfg);

    cfg = load("      warehouse: s3://lake/wh\n"
               "      catalog_uri: rest+https://cat.example.com:8181\n"
               "      catalog_token: tok-SECRET\n"
               "      table_name: \"{schema}_{table}_v2\"\n"
               "      write_mode: upsert\n"
               "      partition_by: [\"bucket(16, id)\", region, \"day( ts )\"]\n"
               "      s3_access_key_id: AK\n"
               "      s3_secret_access_key: SK-SECRET\n"
               "      compression: snappy\n"
               "      maintenance:\n"
               "        enabled: true\n"
               "        min_snapshots_to_keep: 3\n",
               &errs);
    assert_non_null(cfg);
    ic = iceberg_sink_conf(&cfg->sinks[0]);
    assert_int_equal(ic->write_mode, ICEBERG_UPSERT);
    assert_int_equal(ic->npartition_by, 3);
    assert_int_equal(ic->maintenance.min_snapshots_to_keep, 3);
    assert_int_equal(iceberg_codec(ic), PARQUET_SNAPPY);
    n = iceberg_table_for(ic, "sales", "orders");
    assert_string_equal(n, "sales_orders_v2");
    free(n);
    size_t cnt;
    char **names = iceberg_configured_tables(ic, cfg, &cnt);
    assert_int_equal(cnt, 2);
    assert_string_equal(names[0], "public_t_v2");
    iceberg_free_names(names, cnt);
    struct buf d = BUF_INIT;
    cfg->sinks[0].type->describe(&cfg->sinks[0], &d);
    assert_non_null(strstr(d.p, "upsert default.{schema}_{table}_v2 -> REST catalog default"));
    assert_non_null(strstr(d.p, "partitioned by bucket(16, id), region"));
    assert_null(strstr(d.p, "SECRET"));
    buf_fini(&d);
    config_free(cfg);
}

static void test_errors(void **state)
{
    expect_error("      catalog_uri: sqlite:///x.db\n",
                 "sinks[0].iceberg.warehouse: required key is missing");
    expect_error("      warehouse: /tmp/wh\n",
                 "pipeline.yaml:9: sinks[0].iceberg.warehouse: expected a warehouse URI");
    expect_error("      warehouse: file:///wh\n      catalog_uri: mysql://h/db\n",
                 "pipeline.yaml:10: sinks[0].iceberg.catalog_uri: expected sqlite:///");
    expect_error("      warehouse: file:///wh\n      write_mode: merge\n",
                 "pipeline.yaml:10: sinks[0].iceberg.write_mode");
    expect_error("      warehouse: file:///wh\n      table_name: \"{db}_{table}\"\n",
                 "sinks[0].iceberg.table_name: expected a table name template");
    expect_error("      warehouse: file:///wh\n      partition_by: [\"week(ts)\"]\n",
                 "sinks[0].iceberg.partition_by");
    expect_error("      warehouse: file:///wh\n      partition_by: [\"bucket(id)\"]\n",
                 "sinks[0].iceberg.partition_by");
    expect_error("      warehouse: s3://b/wh\n",
                 "pipeline.yaml:9: sinks[0].iceberg.warehouse: an s3:// warehouse needs "
                 "s3_access_key_id and s3_secret_access_key");
    expect_error("      warehouse: file:///wh\n      catalog_token: TOKSECRET\n"
                 "      catalog_uri: sqlite:///x.db\n",
                 "sinks[0].iceberg.catalog_token: only a REST catalog");
    expect_error("      warehouse: file:///wh\n      maintenance: {enabled: true, wat: 1}\n",
                 "sinks[0].iceberg.maintenance.wat");
    /* a secret's bad value is not repeated */
    struct cfg_errors errs = {0};
    assert_null(
        load("      warehouse: file:///wh\n      s3_secret_access_key: [SECRETX]\n", &errs));
    assert_true(errs.n >= 1);
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msgs[i], "SECRETX"));
    cfg_errors_fini(&errs);
}

static void test_positions(void **state)
{
    struct icepos a = {0}, b = {0}, c = {0}, d = {0};
    char t[ICEPOS_TEXT_MAX];
    assert_int_equal(icepos_parse("16/B374D848:end", &a), 0);
    assert_true(icepos_known(&a) && a.m.n == 1);
    assert_true(a.m.v[0].lsn == 0x16B374D848ULL && a.m.v[0].idx == CDC_POS_TXN_END);
    assert_int_equal(icepos_format(&a, t, sizeof t), 0);
    assert_string_equal(t, "16/B374D848:end");
    assert_int_equal(icepos_parse("0/10:3", &b), 0);
    assert_true(b.m.v[0].lsn == 0x10 && b.m.v[0].idx == 3 && b.m.v[0].stream == 0);
    assert_int_equal(icepos_parse(NULL, &c), 0);
    assert_false(icepos_known(&c));
    icepos_format(&c, t, sizeof t);
    assert_string_equal(t, "none");
    const char *bad[] = {"",
                         "16B374D848:end",
                         "1/2",
                         "1/2:",
                         "1/2:x",
                         "1/2:3x",
                         "123456789/1:1",
                         "g/1:1",
                         "0=1/2:3,",
                         "x=1/2:3",
                         "0=1/2:3,0=1/2:4",
                         "1/2:3,,1/2:4",
                         "4294967296=1/2:3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        print_message("bad: %s\n", bad[i]);
        assert_int_equal(icepos_parse(bad[i], &d), CDC_EINVAL);
    }
    /* several streams: written as cdc_posmap_format writes them, read back */
    assert_int_equal(icepos_parse("0=0/10:end,7=0/2A:end", &d), 0);
    assert_int_equal((int)d.m.n, 2);
    assert_true(d.m.v[1].stream == 7 && d.m.v[1].lsn == 0x2A);
    assert_int_equal(icepos_format(&d, t, sizeof t), 0);
    assert_string_equal(t, "0=0/10:end,7=0/2A:end");
    /* too many streams for the summary: refused, not cut */
    char small[16];
    assert_int_equal(icepos_format(&d, small, sizeof small), CDC_EINVAL);
    /* what a table holds, and what the sink reports for several */
    struct cdc_event ev = {.pos = {0x10, 3, 0}};
    assert_true(icepos_holds(&b, &ev));
    ev.pos.idx = 4;
    assert_false(icepos_holds(&b, &ev));
    ev.pos = (struct cdc_pos){0x2A, 1, 7};
    assert_true(icepos_holds(&d, &ev));
    assert_false(icepos_holds(&b, &ev)); /* b holds nothing of stream 7 */
    ev.snapshot = true;
    ev.pos = (struct cdc_pos){0x10, 1, 0};
    assert_false(icepos_holds(&b, &ev)); /* snapshot rows are applied again */
    struct cdc_posmap o = {0};
    const struct icepos *v[] = {&a, &b};
    icepos_oldest(v, 2, &o);
    assert_true(o.n == 1 && o.v[0].lsn == 0x10 && o.v[0].idx == 3);
    const struct icepos *w[] = {&a, &c};
    icepos_oldest(w, 2, &o);
    assert_int_equal((int)o.n, 0);
    const struct icepos *x[] = {&d, &b};
    icepos_oldest(x, 2, &o); /* stream 7 only in d: left out */
    assert_true(o.n == 1 && o.v[0].stream == 0 && o.v[0].idx == 3);
    cdc_posmap_fini(&o);
    icepos_advance(&b, (struct cdc_pos){0x9, 1, 0}); /* never backwards */
    assert_true(b.m.v[0].lsn == 0x10);
    icepos_advance(&c, (struct cdc_pos){0x9, 1, 0});
    assert_true(icepos_known(&c) && c.m.v[0].lsn == 0x9);
    icepos_merge(&c, &d);
    assert_true(c.m.n == 2 && c.m.v[0].lsn == 0x10 && c.m.v[1].stream == 7);
    icepos_fini(&a);
    icepos_fini(&b);
    icepos_fini(&c);
    icepos_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_keys),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
