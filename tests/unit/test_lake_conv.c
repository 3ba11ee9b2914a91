/* Unit tests for the Iceberg column type mapping (src/lake/lake_conv.c), the
 * file store (temporary name, no-replace, listing,
 * uploads) and the SigV4 signer (against a signature computed independently
 * with Python's hmac for the same request). */
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
        cmocka_unit_test(test_type_mapping),
        cmocka_unit_test(test_file_store),
        cmocka_unit_test(test_sigv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
