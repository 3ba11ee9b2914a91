/* The MySQL source's positions: binlog positions as people write them, and
 * the commits kept until every sink holds them (what a confirmed scalar
 * stores, where a restart at a scalar resumes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source/mysql/mysrc_int.h"
#include "util/err.h"

static void test_parse_format(void **state)
{
    (void)state;
    struct cdc_ack a = {9, 9};
    char err[200], text[SOURCE_POS_TEXT_MAX];
    assert_int_equal(mysrc_parse_pos("mysql-bin.000042:1234", &a, err, sizeof err), 0);
    assert_int_equal(a.stream, 0);
    assert_true(a.pos == ((42ULL << 32) | 1234));
    assert_true(a.pos == mydecode_scalar("mysql-bin.000042", 1234));
    mysrc_format_pos(a.pos, text, sizeof text);
    assert_string_equal(text, "42:1234");
    assert_int_equal(mysrc_parse_pos(text, &a, err, sizeof err), 0);
    assert_true(a.pos == ((42ULL << 32) | 1234));
    const char *bad[] = {"",     "1234",          "mysql-bin.000042",   ":5", "x:5", "3:",
                         "3:5x", "3:99999999999", "mysql-bin.000000:4", NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(mysrc_parse_pos(bad[i], &a, err, sizeof err), CDC_EINVAL);
        assert_non_null(strstr(err, "mysql-bin.000042:1234"));
    }
}

static void push(struct mysrc *src, uint64_t scalar, const char *gtid)
{
    struct mysrc_place p = {.scalar = scalar, .pos = (uint32_t)scalar, .gtid = (char *)gtid};
    snprintf(p.file, sizeof p.file, "mysql-bin.%06u", (unsigned)(scalar >> 32));
    mysrc_pending_push(src, &p);
}

static void test_pending(void **state)
{
    (void)state;
    struct mysrc src;
    memset(&src, 0, sizeof src);
    assert_null(mysrc_pending_take(&src, 100));
    /* enough commits to grow the ring while its head has moved */
    for (uint64_t i = 1; i <= 50; i++)
        push(&src, i * 10, "0-1-1");
    const struct mysrc_place *p = mysrc_pending_take(&src, 125);
    assert_non_null(p);
    assert_true(p->scalar == 120);                   /* the newest at or before */
    assert_true(mysrc_pending_take(&src, 125) == p); /* kept until a newer one is taken */
    for (uint64_t i = 51; i <= 200; i++) {
        char g[32];
        snprintf(g, sizeof g, "0-1-%u", (unsigned)i);
        push(&src, i * 10, g);
    }
    p = mysrc_pending_find(&src, 1500);
    assert_non_null(p);
    assert_string_equal(p->gtid, "0-1-150");
    assert_null(mysrc_pending_find(&src, 1505));
    assert_null(mysrc_pending_find(&src, 110)); /* taken past */
    p = mysrc_pending_take(&src, 1999);
    assert_true(p->scalar == 1990);
    assert_string_equal(p->gtid, "0-1-199");
    assert_string_equal(p->file, "mysql-bin.000000");
    assert_int_equal(src.npend, 2); /* 1990 and 2000 */
    /* a restart at 1990 decodes 2000 again */
    mysrc_pending_drop_after(&src, 1990);
    assert_int_equal(src.npend, 1);
    assert_non_null(mysrc_pending_find(&src, 1990));
    mysrc_pending_clear(&src);
    assert_null(mysrc_pending_take(&src, 5000));
    free(src.pend);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format),
        cmocka_unit_test(test_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
