/* The small parsers and formatters behind /metrics and the DLQ listings:
 * histograms in the Prometheus text format, the /proc parsers of the
 * process_* figures, and a dead-letter entry as JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "state/dlq_json.h"
#include "util/buf.h"
#include "util/histo.h"
#include "util/procstat.h"

/* Buckets are cumulative, end with +Inf = count, and the sum adds up; a
 * value on a bound falls into that bound's bucket. */
static void test_histo_render(void **state)
{
    (void)state;
    struct histo h = {0};
    histo_observe(&h, 0.001); /* on the first bound */
    histo_observe(&h, 0.003);
    histo_observe_n(&h, 0.2, 3);
    histo_observe(&h, 1000); /* beyond the last bound */
    histo_observe(&h, -5);   /* a clock step back counts as 0 */
    struct buf b = BUF_INIT;
    histo_render(&h, "m_seconds", "a=\"x\"", &b);
    assert_non_null(strstr(b.p, "m_seconds_bucket{a=\"x\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(b.p, "m_seconds_bucket{a=\"x\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(b.p, "m_seconds_bucket{a=\"x\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(b.p, "m_seconds_bucket{a=\"x\",le=\"0.25\"} 6\n"));
    assert_non_null(strstr(b.p, "m_seconds_bucket{a=\"x\",le=\"300\"} 6\n"));
    assert_non_null(strstr(b.p, "m_seconds_bucket{a=\"x\",le=\"+Inf\"} 7\n"));
    assert_non_null(strstr(b.p, "m_seconds_sum{a=\"x\"} 1000.604000\n"));
    assert_non_null(strstr(b.p, "m_seconds_count{a=\"x\"} 7\n"));
    /* one line per bucket, +Inf last, then sum and count */
    size_t lines = 0;
    for (const char *p = b.p; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, HISTO_BUCKETS + 1 + 2);

    struct histo m = {0};
    histo_merge(&m, &h);
    histo_merge(&m, &h);
    assert_int_equal(m.count, 14);
    assert_int_equal(m.counts[HISTO_BUCKETS], 2);
    buf_reset(&b);
    histo_render(&(struct histo){0}, "e", "", &b);
    assert_non_null(strstr(b.p, "e_bucket{le=\"+Inf\"} 0\ne_sum 0.000000\ne_count 0\n"));
    buf_fini(&b);
    for (size_t i = 1; i < HISTO_BUCKETS; i++)
        assert_true(histo_bounds[i] > histo_bounds[i - 1]);
}

static void test_procstat_parse(void **state)
{
    (void)state;
    /* A command name with spaces and a parenthesis, as the kernel writes it. */
    const char stat[] =
        "4242 (cdc (worker) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 9 0 "
        "123456 987654321 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    double cpu = 0;
    uint64_t start = 0, vsz = 0, rss = 0;
    assert_true(procstat_parse_stat(stat, 100, 4096, &cpu, &start, &vsz, &rss));
    assert_true(cpu > 3.999 && cpu < 4.001);
    assert_int_equal(start, 123456);
    assert_int_equal(vsz, 987654321);
    assert_int_equal(rss, 2500 * 4096);
    assert_false(procstat_parse_stat("4242 (cdc) S 1 2 3\n", 100, 4096, &cpu, &start, &vsz, &rss));
    assert_false(procstat_parse_stat("no parenthesis", 100, 4096, &cpu, &start, &vsz, &rss));

    uint64_t btime = 0;
    assert_true(procstat_parse_btime("cpu  1 2 3\nintr 5 6\nctxt 7\nbtime 1718150400\n", &btime));
    assert_int_equal(btime, 1718150400);
    assert_false(procstat_parse_btime("cpu 1\n", &btime));

    int64_t fds = 0;
    const char limits[] =
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1024                 524288               files\n";
    assert_true(procstat_parse_max_fds(limits, &fds));
    assert_int_equal(fds, 1024);
    assert_true(
        procstat_parse_max_fds("Max open files            unlimited  unlimited  files\n", &fds));
    assert_int_equal(fds, INT64_MAX);
    assert_false(procstat_parse_max_fds("Max processes 10 10\n", &fds));

    /* and this process's figures make sense */
    struct procstat ps;
    procstat_self(&ps);
    assert_true(ps.resident_bytes > 0);
    assert_true(ps.open_fds >= 3);
    assert_true(ps.start_time_seconds > 1500000000.0);
}

static void test_dlq_entry_json(void **state)
{
    (void)state;
    struct dlq_entry e;
    memset(&e, 0, sizeof e);
    e.id = 7;
    snprintf(e.sink_id, sizeof e.sink_id, "hook");
    e.pos = (struct cdc_pos){.lsn = 0x16B3748, .idx = 2};
    snprintf(e.topic, sizeof e.topic, "shop.public.orders");
    e.op = 'u';
    snprintf(e.error_class, sizeof e.error_class, "permanent");
    snprintf(e.error, sizeof e.error, "HTTP 422: \"bad\"");
    e.attempts = 3;
    e.http_status = 422;
    e.first_failed_us = 10;
    e.dead_lettered_us = 20;
    e.key_json = "{\"id\":42,\"region\":\"eu\"}";
    struct buf b = BUF_INIT;
    dlq_entry_json(&b, &e, "shop");
    assert_true(json_valid(b.p, b.len));
    assert_string_equal(
        b.p, "{\"id\":7,\"sink_id\":\"hook\",\"position\":\"0/16B3748:2\",\"commit_lsn\":"
             "\"0/16B3748\",\"event_index\":2,\"stream\":0,\"topic\":\"shop.public.orders\","
             "\"table\":"
             "\"public.orders\",\"key\":{\"id\":42,\"region\":\"eu\"},\"op\":\"u\","
             "\"error_class\":\"permanent\",\"attempts\":3,\"http_status\":422,\"status\":"
             "\"pending\",\"error\":\"HTTP 422: \\\"bad\\\"\",\"first_failed_us\":10,"
             "\"dead_lettered_us\":20,\"resolved_us\":null}");
    /* a key that is not JSON, another prefix, resolved */
    e.key_json = "not json";
    e.status = DLQ_RESOLVED;
    e.resolved_us = 30;
    buf_reset(&b);
    dlq_entry_json(&b, &e, "cdc");
    assert_true(json_valid(b.p, b.len));
    assert_non_null(strstr(b.p, "\"table\":\"shop.public.orders\",\"key\":null"));
    assert_non_null(strstr(b.p, "\"status\":\"resolved\""));
    assert_non_null(strstr(b.p, "\"resolved_us\":30}"));
    buf_fini(&b);
    assert_string_equal(dlq_entry_table("cdc.public.t", "cdc"), "public.t");
    assert_string_equal(dlq_entry_table("cdcx.public.t", "cdc"), "cdcx.public.t");
    assert_string_equal(dlq_entry_table("cdc.", "cdc"), "cdc.");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histo_render),
        cmocka_unit_test(test_procstat_parse),
        cmocka_unit_test(test_dlq_entry_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
