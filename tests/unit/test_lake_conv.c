/* Unit tests for the PostgreSQL text converters (src/lake/lake_conv.c), the
 * column type mapping, the file store (temporary name, no-replace, listing,
 * uploads) and the SigV4 signer (against a signature computed independently
 * with Python's hmac for the same request). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lake/lake_conv.h"
#include "lake/lake_store.h"
#include "lake/s3_sigv4.h"
#include "util/buf.h"
#include "util/err.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_ints_and_bools(void **state)
{
    int32_t i;
    int64_t l;
    bool b;
    assert_int_equal(lake_conv_i32(S("-2147483648"), &i), 0);
    assert_int_equal(i, INT32_MIN);
    assert_int_equal(lake_conv_i32(S("2147483648"), &i), CDC_EINVAL);
    assert_int_equal(lake_conv_i64(S("-9223372036854775808"), &l), 0);
    assert_true(l == INT64_MIN);
    assert_int_equal(lake_conv_i64(S("9223372036854775808"), &l), CDC_EINVAL);
    assert_int_equal(lake_conv_i64(S("99999999999999999999"), &l), CDC_EINVAL);
    assert_int_equal(lake_conv_i64(S(""), &l), CDC_EINVAL);
    assert_int_equal(lake_conv_i64(S("-"), &l), CDC_EINVAL);
    assert_int_equal(lake_conv_i64(S("1 "), &l), CDC_EINVAL);
    assert_int_equal(lake_conv_i64(S("0x10"), &l), CDC_EINVAL);
    assert_int_equal(lake_conv_bool(S("t"), &b), 0);
    assert_true(b);
    assert_int_equal(lake_conv_bool(S("f"), &b), 0);
    assert_false(b);
    assert_int_equal(lake_conv_bool(S("yes"), &b), CDC_EINVAL);
}

static void test_floats(void **state)
{
    double d;
    float f;
    assert_int_equal(lake_conv_f64(S("NaN"), &d), 0);
    assert_true(isnan(d));
    assert_int_equal(lake_conv_f64(S("-Infinity"), &d), 0);
    assert_true(isinf(d) && d < 0);
    assert_int_equal(lake_conv_f64(S("1.7976931348623157e+308"), &d), 0);
    assert_true(d == 1.7976931348623157e+308);
    assert_int_equal(lake_conv_f32(S("0.1"), &f), 0);
    assert_true(f == 0.1f);
    assert_int_equal(lake_conv_f64(S("inf"), &d), CDC_EINVAL);
    assert_int_equal(lake_conv_f64(S("1,5"), &d), CDC_EINVAL);
}

static void test_dates_times_timestamps(void **state)
{
    int32_t days;
    int64_t us;
    assert_int_equal(lake_conv_date(S("1970-01-01"), &days), 0);
    assert_int_equal(days, 0);
    assert_int_equal(lake_conv_date(S("2024-02-29"), &days), 0);
    assert_int_equal(days, 19782);
    assert_int_equal(lake_conv_date(S("1969-12-31"), &days), 0);
    assert_int_equal(days, -1);
    assert_int_equal(lake_conv_date(S("0001-01-01"), &days), 0);
    assert_int_equal(days, -719162);
    assert_int_equal(lake_conv_date(S("0001-01-01 BC"), &days), 0);
    assert_int_equal(days, -719162 - 366); /* 1 BC is a leap year */
    assert_int_equal(lake_conv_date(S("0001-02-29 BC"), &days), 0);
    assert_int_equal(lake_conv_date(S("0002-02-29 BC"), &days), CDC_EINVAL);
    assert_int_equal(lake_conv_date(S("12345-01-01"), &days), 0);
    assert_int_equal(lake_conv_date(S("2023-02-29"), &days), CDC_EINVAL);
    assert_int_equal(lake_conv_date(S("2024-13-01"), &days), CDC_EINVAL);
    assert_int_equal(lake_conv_date(S("infinity"), &days), CDC_EINVAL);
    assert_int_equal(lake_conv_date(S("24-01-01"), &days), CDC_EINVAL);

    assert_int_equal(lake_conv_time(S("13:45:01.123456"), &us), 0);
    assert_true(us == ((13 * 60 + 45) * 60 + 1) * 1000000LL + 123456);
    assert_int_equal(lake_conv_time(S("13:45:01.5"), &us), 0);
    assert_true(us % 1000000 == 500000);
    assert_int_equal(lake_conv_time(S("24:00:00"), &us), 0);
    assert_true(us == 86400000000LL);
    assert_int_equal(lake_conv_time(S("24:00:01"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_time(S("12:60:00"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_time(S("12:00:00.1234567"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_time(S("12:00:00."), &us), CDC_EINVAL);

    assert_int_equal(lake_conv_timestamp(S("1970-01-01 00:00:00"), &us), 0);
    assert_true(us == 0);
    assert_int_equal(lake_conv_timestamp(S("2024-02-29 13:45:01.5+05:30"), &us), 0);
    assert_true(us == 1709194501500000LL);
    assert_int_equal(lake_conv_timestamp(S("2024-02-29 08:15:01.5+00"), &us), 0);
    assert_true(us == 1709194501500000LL);
    assert_int_equal(lake_conv_timestamp(S("2024-02-29 00:15:01.5-08"), &us), 0);
    assert_true(us == 1709194501500000LL);
    assert_int_equal(lake_conv_timestamp(S("1969-12-31 23:59:59.999999+00"), &us), 0);
    assert_true(us == -1);
    assert_int_equal(lake_conv_timestamp(S("1970-01-01 00:00:00+00:00:01"), &us), 0);
    assert_true(us == -1000000);
    assert_int_equal(lake_conv_timestamp(S("2024-01-01T00:00:00"), &us), 0);
    assert_int_equal(lake_conv_timestamp(S("0001-01-01 00:00:00 BC"), &us), 0);
    assert_true(us == (-719162LL - 366) * 86400000000LL);
    assert_int_equal(lake_conv_timestamp(S("infinity"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_timestamp(S("2024-01-01"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_timestamp(S("2024-01-01 00:00:00+5"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_timestamp(S("2024-01-01 00:00:00 UTC"), &us), CDC_EINVAL);
    assert_int_equal(lake_conv_timestamp(S("300000-01-01 00:00:00"), &us), CDC_EINVAL);
}

static void test_decimals(void **state)
{
    __int128 q;
    assert_int_equal(lake_conv_decimal(S("-12.50"), 10, 2, &q), 0);
    assert_true(q == -1250);
    assert_int_equal(lake_conv_decimal(S("7"), 10, 2, &q), 0);
    assert_true(q == 700);
    assert_int_equal(lake_conv_decimal(S("0.5"), 3, 2, &q), 0);
    assert_true(q == 50);
    assert_int_equal(lake_conv_decimal(S("00012.3"), 4, 1, &q), 0); /* leading zeros */
    assert_true(q == 123);
    assert_int_equal(lake_conv_decimal(S("123.4"), 4, 1, &q), 0);
    assert_int_equal(lake_conv_decimal(S("1234.5"), 4, 1, &q), CDC_EINVAL); /* > precision */
    assert_int_equal(lake_conv_decimal(S("1.234"), 10, 2, &q), CDC_EINVAL); /* > scale */
    assert_int_equal(lake_conv_decimal(S("NaN"), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(lake_conv_decimal(S("1e3"), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(lake_conv_decimal(S("."), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(lake_conv_decimal(S("1.2.3"), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(lake_conv_decimal(S("99999999999999999999999999999999999999"), 38, 0, &q), 0);
    __int128 max = 1;
    for (int i = 0; i < 38; i++)
        max *= 10;
    assert_true(q == max - 1);
    assert_int_equal(lake_conv_decimal(S("999999999999999999999999999999999999999"), 38, 0, &q),
                     CDC_EINVAL);
}

static void test_uuid_and_bytea(void **state)
{
    uint8_t u[16];
    assert_int_equal(lake_conv_uuid(S("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), u), 0);
    assert_int_equal(u[0], 0xa0);
    assert_int_equal(u[15], 0x11);
    assert_int_equal(lake_conv_uuid(S("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}"), u), 0);
    assert_int_equal(u[1], 0xee);
    assert_int_equal(lake_conv_uuid(S("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), u), CDC_EINVAL);
    assert_int_equal(lake_conv_uuid(S("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111"), u), CDC_EINVAL);
    assert_int_equal(lake_conv_uuid(S("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), u), CDC_EINVAL);
    struct buf b = BUF_INIT;
    assert_int_equal(lake_conv_bytea(S("\\x00FFab"), &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.p, "\x00\xff\xab", 3);
    buf_reset(&b);
    assert_int_equal(lake_conv_bytea(S("\\x"), &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(lake_conv_bytea(S("\\x0"), &b), CDC_EINVAL);
    assert_int_equal(lake_conv_bytea(S("\\x0g"), &b), CDC_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(lake_conv_bytea(S("abc"), &b), CDC_EINVAL);
    buf_fini(&b);
}

static void test_type_mapping(void **state)
{
    struct {
        uint32_t oid;
        int32_t typmod;
        enum ice_type want;
        int p, s;
    } cases[] = {
        {16, -1, ICE_BOOLEAN, 0, 0},
        {17, -1, ICE_BINARY, 0, 0},
        {21, -1, ICE_INT, 0, 0},
        {23, -1, ICE_INT, 0, 0},
        {20, -1, ICE_LONG, 0, 0},
        {26, -1, ICE_LONG, 0, 0},
        {700, -1, ICE_FLOAT, 0, 0},
        {701, -1, ICE_DOUBLE, 0, 0},
        {1082, -1, ICE_DATE, 0, 0},
        {1083, -1, ICE_TIME, 0, 0},
        {1114, -1, ICE_TIMESTAMP, 0, 0},
        {1184, -1, ICE_TIMESTAMPTZ, 0, 0},
        {2950, -1, ICE_UUID, 0, 0},
        {114, -1, ICE_STRING, 0, 0},
        {3802, -1, ICE_STRING, 0, 0},
        {25, -1, ICE_STRING, 0, 0},
        {1266, -1, ICE_STRING, 0, 0}, /* timetz */
        {1186, -1, ICE_STRING, 0, 0}, /* interval */
        {1700, ((10 << 16) | 2) + 4, ICE_DECIMAL, 10, 2},
        {1700, -1, ICE_STRING, 0, 0}, /* unconstrained numeric */
        {1700, ((40 << 16) | 2) + 4, ICE_STRING, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cdc_column col = {.type_oid = cases[i].oid, .typmod = cases[i].typmod};
        struct ice_field f = {0};
        lake_type_for_column(&col, &f);
        assert_int_equal(f.type, cases[i].want);
        assert_int_equal(f.precision, cases[i].p);
        assert_int_equal(f.scale, cases[i].s);
    }
}

static int count_files(void *arg, const char *uri, int64_t size, int64_t mtime)
{
    (*(int *)arg)++;
    return 0;
}

static void test_file_store(void **state)
{
    char dir[] = "/tmp/cdc-lake-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct lake_store *st;
    char err[256], uri[512];
    assert_int_equal(lake_store_open("file:///x", NULL, &st, err, sizeof err), 0);
    snprintf(uri, sizeof uri, "file://%s/a/b/c.json", dir);
    assert_int_equal(lake_store_put(st, uri, "one", 3, LAKE_PUT_NOREPLACE, err, sizeof err), 0);
    assert_int_equal(lake_store_put(st, uri, "two", 3, LAKE_PUT_NOREPLACE, err, sizeof err),
                     LAKE_STORE_EXISTS);
    struct buf b = BUF_INIT;
    assert_int_equal(lake_store_get(st, uri, &b, err, sizeof err), 0);
    assert_string_equal(b.p, "one"); /* not replaced */
    assert_int_equal(lake_store_put(st, uri, "three", 5, 0, err, sizeof err), 0);
    buf_reset(&b);
    assert_int_equal(lake_store_get(st, uri, &b, err, sizeof err), 0);
    assert_string_equal(b.p, "three");
    struct lake_upload *up;
    snprintf(uri, sizeof uri, "file://%s/a/up.bin", dir);
    assert_int_equal(lake_upload_open(st, uri, &up, err, sizeof err), 0);
    assert_int_equal(lake_upload_write(up, "ab", 2, err, sizeof err), 0);
    assert_int_equal(lake_upload_write(up, "cd", 2, err, sizeof err), 0);
    buf_reset(&b);
    assert_int_equal(lake_store_get(st, uri, &b, err, sizeof err), LAKE_STORE_ABSENT);
    assert_int_equal(lake_upload_commit(up, err, sizeof err), 0);
    assert_int_equal(lake_store_get(st, uri, &b, err, sizeof err), 0);
    assert_string_equal(b.p, "abcd");
    int64_t size = 0;
    assert_int_equal(lake_store_head(st, uri, &size, err, sizeof err), 0);
    assert_int_equal(size, 4);
    snprintf(uri, sizeof uri, "file://%s/a/aborted.bin", dir);
    assert_int_equal(lake_upload_open(st, uri, &up, err, sizeof err), 0);
    lake_upload_abort(up);
    int n = 0;
    snprintf(uri, sizeof uri, "file://%s/", dir);
    assert_int_equal(lake_store_list(st, uri, count_files, &n, err, sizeof err), 0);
    assert_int_equal(n, 2); /* c.json, up.bin: no temporary left behind */
    snprintf(uri, sizeof uri, "file://%s/a/up.bin", dir);
    assert_int_equal(lake_store_del(st, uri, err, sizeof err), 0);
    assert_int_equal(lake_store_del(st, uri, err, sizeof err), 0); /* absent is fine */
    assert_int_equal(lake_store_head(st, uri, &size, err, sizeof err), LAKE_STORE_ABSENT);
    assert_int_equal(lake_store_get(st, "s3://x/y", &b, err, sizeof err), CDC_EINVAL);
    lake_store_free(st);
    assert_int_equal(lake_store_open("ftp://x", NULL, &st, err, sizeof err), CDC_EINVAL);
    assert_int_equal(lake_store_open("s3://b/p", NULL, &st, err, sizeof err), CDC_EINVAL);
    buf_fini(&b);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_sigv4(void **state)
{
    char payload[65];
    s3_sha256_hex("hello", 5, payload);
    assert_string_equal(payload,
                        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    struct buf path = BUF_INIT, q = BUF_INIT, auth = BUF_INIT;
    buf_puts(&path, "/lake/");
    s3_uri_encode(&path, "db/t/a b.parquet", 16, true);
    assert_string_equal(path.p, "/lake/db/t/a%20b.parquet");
    buf_puts(&q, "partNumber=1&uploadId=");
    s3_uri_encode(&q, "x+y", 3, false);
    struct s3_sign_req r = {"PUT",
                            path.p,
                            q.p,
                            "127.0.0.1:9000",
                            payload,
                            "20240102T030405Z",
                            "us-east-1",
                            "AKIDEXAMPLE",
                            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            NULL};
    s3_sigv4_authorization(&auth, &r);
    /* the signature Python's hmac/hashlib compute for the same request */
    assert_string_equal(
        auth.p, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/s3/"
                "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                "Signature=166e0c195a6fc496cfb25307e62ca3787c2e5bc2b5914294991519b488f333f2");
    buf_fini(&path);
    buf_fini(&q);
    buf_fini(&auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ints_and_bools),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_dates_times_timestamps),
        cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_uuid_and_bytea),
        cmocka_unit_test(test_type_mapping),
        cmocka_unit_test(test_file_store),
        cmocka_unit_test(test_sigv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
