/* The small JSON reader used for snapshot signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/jsonread.h"
#include "util/err.h"

static int arr(const char *json, const char *key, char ***v, size_t *n)
{
    return jsonread_string_array(json, strlen(json), key, v, n);
}

static void test_arrays(void **state)
{
    (void)state;
    char **v;
    size_t n;
    assert_int_equal(arr("{\"data-collections\": [\"public.a\", \"s.\\\"B\\\"\"], \"type\": "
                         "\"incremental\"}",
                         "data-collections", &v, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "public.a");
    assert_string_equal(v[1], "s.\"B\"");
    jsonread_free_strings(v, n);
    /* the key after nested values, escapes, unicode */
    assert_int_equal(arr("{\"x\":{\"data-collections\":[1]},\"y\":[[\"]\"]],"
                         "\"data-collections\":[\"caf\\u00e9\",\"\\ud83d\\ude00\"]}",
                         "data-collections", &v, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "caf\xc3\xa9");
    assert_string_equal(v[1], "\xf0\x9f\x98\x80");
    jsonread_free_strings(v, n);
    assert_int_equal(arr("{\"a\":[]}", "a", &v, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(arr("{\"a\":1}", "b", &v, &n), 0); /* absent */
    assert_int_equal(n, 0);
    assert_null(v);
}

static void test_rejects(void **state)
{
    (void)state;
    char **v;
    size_t n;
    const char *bad[] = {"",
                         "[]",
                         "{",
                         "{\"a\":[1]}",
                         "{\"a\":\"x\"}",
                         "{\"a\":[\"x\",]}",
                         "{\"a\":[\"\\ud800\"]}",
                         "{\"a\":[\"x\"]} trailing",
                         "{'a':['x']}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(arr(bad[i], "a", &v, &n), CDC_EINVAL);
    char *s;
    assert_int_equal(jsonread_string("{\"type\":\"incremental\"}", 22, "type", &s), 0);
    assert_string_equal(s, "incremental");
    free(s);
    assert_int_equal(jsonread_string("{\"type\":5}", 10, "type", &s), CDC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
