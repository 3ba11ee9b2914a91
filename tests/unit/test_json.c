/* Unit tests for the JSON encoder (core/json.c): values of every type,
 * strings (escapes, Unicode, invalid UTF-8), and the validator json_valid.
 * Envelopes, keys and positions are test_json_envelope.c's.  Every document
 * is also checked by Python (jsontest.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event.h"
#include "core/json.h"
#include "util/buf.h"
#include "jsontest.h"

static void assert_value_n(enum cdc_type t, const char *in, size_t n, const char *want)
{
    struct buf b = BUF_INIT;
    json_value(&b, t, in, n);
    if (strcmp(checked(&b), want) != 0)
        fail_msg("type %d, input \"%.*s\": got %s, want %s", (int)t, (int)n, in, b.p, want);
    buf_fini(&b);
}

#define assert_value(t, lit, want) assert_value_n((t), (lit), sizeof(lit) - 1, (want))

static void assert_string_n(const char *in, size_t n, const char *want)
{
    struct buf b = BUF_INIT;
    json_string(&b, in, n);
    if (want && strcmp(checked(&b), want) != 0)
        fail_msg("input of %zu bytes: got %s, want %s", n, b.p, want);
    else if (!want)
        checked(&b);
    note('s', in, n, &b);
    buf_fini(&b);
}

#define assert_string(lit, want) assert_string_n((lit), sizeof(lit) - 1, (want))

/* ---- values --------------------------------------------------------------- */

static void test_value_int(void **state)
{
    assert_value(CDC_T_INT, "42", "42");
    assert_value(CDC_T_INT, "-7", "-7");
    assert_value(CDC_T_INT, "0", "0");
    assert_value(CDC_T_INT, "-0", "-0");
    assert_value(CDC_T_INT, "9223372036854775807", "9223372036854775807");
    assert_value(CDC_T_INT, "-9223372036854775808", "-9223372036854775808");
    assert_value(CDC_T_INT, "4294967295", "4294967295");
    assert_value(CDC_T_INT, "123456789012345678901234567890", "123456789012345678901234567890");
    /* Integer text outside JSON's grammar is normalised, digits untouched. */
    assert_value(CDC_T_INT, "+5", "5");
    assert_value(CDC_T_INT, "007", "7");
    assert_value(CDC_T_INT, "-00", "-0");
    /* Not an integer: a string. */
    assert_value(CDC_T_INT, "", "\"\"");
    assert_value(CDC_T_INT, "-", "\"-\"");
    assert_value(CDC_T_INT, "+", "\"+\"");
    assert_value(CDC_T_INT, "1.5", "\"1.5\"");
    assert_value(CDC_T_INT, "1e5", "\"1e5\"");
    assert_value(CDC_T_INT, " 1", "\" 1\"");
    assert_value(CDC_T_INT, "1 ", "\"1 \"");
    assert_value(CDC_T_INT, "0x10", "\"0x10\"");
    assert_value(CDC_T_INT, "abc", "\"abc\"");
    assert_value(CDC_T_INT, "--1", "\"--1\"");
}

static void test_value_float(void **state)
{
    assert_value(CDC_T_FLOAT, "1.5", "1.5");
    assert_value(CDC_T_FLOAT, "-2", "-2");
    assert_value(CDC_T_FLOAT, "0", "0");
    assert_value(CDC_T_FLOAT, "-0", "-0");
    assert_value(CDC_T_FLOAT, "1e+30", "1e+30");
    assert_value(CDC_T_FLOAT, "1.5e-07", "1.5e-07");
    assert_value(CDC_T_FLOAT, "-1.7976931348623157e+308", "-1.7976931348623157e+308");
    assert_value(CDC_T_FLOAT, "5E3", "5E3");
    assert_value(CDC_T_FLOAT, "NaN", "\"NaN\"");
    assert_value(CDC_T_FLOAT, "Infinity", "\"Infinity\"");
    assert_value(CDC_T_FLOAT, "-Infinity", "\"-Infinity\"");
    assert_value(CDC_T_FLOAT, "inf", "\"inf\"");
    /* Decimal text outside JSON's grammar is normalised. */
    assert_value(CDC_T_FLOAT, ".5", "0.5");
    assert_value(CDC_T_FLOAT, "-.5e3", "-0.5e3");
    assert_value(CDC_T_FLOAT, "5.", "5");
    assert_value(CDC_T_FLOAT, "5.e3", "5e3");
    assert_value(CDC_T_FLOAT, "+1.0", "1.0");
    assert_value(CDC_T_FLOAT, "00.10", "0.10");
    assert_value(CDC_T_FLOAT, "0012", "12");
    /* Not a number. */
    assert_value(CDC_T_FLOAT, "", "\"\"");
    assert_value(CDC_T_FLOAT, ".", "\".\"");
    assert_value(CDC_T_FLOAT, "-.", "\"-.\"");
    assert_value(CDC_T_FLOAT, "1e", "\"1e\"");
    assert_value(CDC_T_FLOAT, "1e+", "\"1e+\"");
    assert_value(CDC_T_FLOAT, "e5", "\"e5\"");
    assert_value(CDC_T_FLOAT, "1.2.3", "\"1.2.3\"");
    assert_value(CDC_T_FLOAT, "1,5", "\"1,5\"");
}

static void test_value_numeric_exact(void **state)
{
    assert_value(CDC_T_NUMERIC, "12345678901234567890.000000001",
                 "\"12345678901234567890.000000001\"");
    assert_value(CDC_T_NUMERIC, "-0.10", "\"-0.10\"");
    assert_value(CDC_T_NUMERIC, "NaN", "\"NaN\"");
    assert_value(CDC_T_NUMERIC, "42", "\"42\"");
}

static void test_value_bool(void **state)
{
    assert_value(CDC_T_BOOL, "t", "true");
    assert_value(CDC_T_BOOL, "f", "false");
    assert_value(CDC_T_BOOL, "true", "true");
    assert_value(CDC_T_BOOL, "false", "false");
    assert_value(CDC_T_BOOL, "T", "\"T\"");
    assert_value(CDC_T_BOOL, "yes", "\"yes\"");
    assert_value(CDC_T_BOOL, "", "\"\"");
    assert_value(CDC_T_BOOL, "tr", "\"tr\"");
}

static void test_value_bytes(void **state)
{
    assert_value(CDC_T_BYTES, "\\x", "\"\"");
    assert_value(CDC_T_BYTES, "\\x66", "\"Zg==\"");
    assert_value(CDC_T_BYTES, "\\x666f", "\"Zm8=\"");
    assert_value(CDC_T_BYTES, "\\x666f6f", "\"Zm9v\"");
    assert_value(CDC_T_BYTES, "\\x666f6f62", "\"Zm9vYg==\"");
    assert_value(CDC_T_BYTES, "\\x666f6f6261", "\"Zm9vYmE=\"");
    assert_value(CDC_T_BYTES, "\\x666f6f626172", "\"Zm9vYmFy\"");
    assert_value(CDC_T_BYTES, "\\xdeadbeef", "\"3q2+7w==\"");
    assert_value(CDC_T_BYTES, "\\xDEADBEEF", "\"3q2+7w==\"");
    assert_value(CDC_T_BYTES, "\\x00", "\"AA==\"");
    assert_value(CDC_T_BYTES, "\\xfbff", "\"+/8=\"");
    /* Not hex bytea text: the text itself. */
    assert_value(CDC_T_BYTES, "\\x0", "\"\\\\x0\"");
    assert_value(CDC_T_BYTES, "\\x6g", "\"\\\\x6g\"");
    assert_value(CDC_T_BYTES, "\\X66", "\"\\\\X66\"");
    assert_value(CDC_T_BYTES, "\\", "\"\\\\\"");
    assert_value(CDC_T_BYTES, "", "\"\"");
    assert_value(CDC_T_BYTES, "abc\\000", "\"abc\\\\000\"");
    assert_value(CDC_T_BYTES, "\\x666f6f62617", "\"\\\\x666f6f62617\"");
    assert_value(CDC_T_BYTES, "\\x666f6f62617z", "\"\\\\x666f6f62617z\"");

    /* Every byte value, checked against Python's base64. */
    char in[2 + 2 * 256];
    static const char hx[] = "0123456789abcdef";
    for (size_t len = 0; len <= 256; len += (len < 8 ? 1 : 37)) {
        in[0] = '\\';
        in[1] = 'x';
        for (size_t i = 0; i < len; i++) {
            unsigned c = (unsigned)(i * 7 + len) & 255;
            in[2 + 2 * i] = hx[c >> 4];
            in[3 + 2 * i] = hx[c & 15];
        }
        struct buf b = BUF_INIT;
        json_value(&b, CDC_T_BYTES, in, 2 + 2 * len);
        checked(&b);
        char raw[256] = {0};
        for (size_t i = 0; i < len; i++)
            raw[i] = (char)((i * 7 + len) & 255);
        note('b', raw, len, &b);
        buf_fini(&b);
    }
}

static void test_value_text_classes(void **state)
{
    static const enum cdc_type classes[] = {
        CDC_T_TEXT,   CDC_T_NUMERIC,   CDC_T_UUID,        CDC_T_JSON,     CDC_T_DATE,  CDC_T_TIME,
        CDC_T_TIMETZ, CDC_T_TIMESTAMP, CDC_T_TIMESTAMPTZ, CDC_T_INTERVAL, CDC_T_ARRAY,
    };
    for (size_t i = 0; i < NELEM(classes); i++)
        assert_value(classes[i], "x\"y", "\"x\\\"y\"");
    assert_value(CDC_T_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                 "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
    assert_value(CDC_T_JSON, "{\"a\": [1, \"x\\n\"]}", "\"{\\\"a\\\": [1, \\\"x\\\\n\\\"]}\"");
    assert_value(CDC_T_DATE, "2024-06-12", "\"2024-06-12\"");
    assert_value(CDC_T_TIMESTAMPTZ, "2024-06-12 00:00:00.123+00", "\"2024-06-12 00:00:00.123+00\"");
    assert_value(CDC_T_INTERVAL, "1 day 02:03:04", "\"1 day 02:03:04\"");
    assert_value(CDC_T_ARRAY, "{1,2,NULL,\"a b\"}", "\"{1,2,NULL,\\\"a b\\\"}\"");
    /* An out-of-range class is treated as text. */
    assert_value((enum cdc_type)99, "7", "\"7\"");
}

/* ---- strings -------------------------------------------------------------- */

static void test_string_escapes(void **state)
{
    assert_string("", "\"\"");
    assert_string("plain", "\"plain\"");
    assert_string("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
    assert_string("\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"");
    assert_string("\x01\x1f\x0b\x7f", "\"\\u0001\\u001f\\u000b\x7f\"");
    assert_string("a\0b", "\"a\\u0000b\"");
    assert_string("\"\"\"\"\"\"\"\"\"\"", "\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\"");
    /* Bytes needing work at every position of an 8-byte word. */
    for (int k = 0; k < 16; k++) {
        char in[17];
        memset(in, 'a', 16);
        in[16] = '\0';
        in[k] = '\\';
        char want[32];
        snprintf(want, sizeof want, "\"%.*s\\\\%s\"", k, in, in + k + 1);
        assert_string_n(in, 16, want);
    }
}

static void test_string_unicode(void **state)
{
    assert_string("caf\xc3\xa9", "\"caf\xc3\xa9\"");                           /* é */
    assert_string("\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\""); /* 日本 */
    assert_string("\xf0\x9f\x98\x80!", "\"\xf0\x9f\x98\x80!\"");               /* 😀 */
    assert_string("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");                 /* U+10FFFF */
    assert_string("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");                         /* U+2028 */
    assert_string("\xef\xbb\xbf", "\"\xef\xbb\xbf\"");                         /* BOM */
}

static void test_string_invalid_utf8(void **state)
{
    assert_string("\xff", "\"" FFFD "\"");
    assert_string("a\x80z", "\"a" FFFD "z\"");
    assert_string("\xc3", "\"" FFFD "\"");
    assert_string("\xc3(", "\"" FFFD "(\"");
    assert_string("\xe2\x82"
                  "A",
                  "\"" FFFD "A\"");                                   /* one maximal subpart */
    assert_string("\xf0\x9f\x98", "\"" FFFD "\"");                    /* truncated emoji */
    assert_string("\xc0\xaf", "\"" FFFD FFFD "\"");                   /* overlong */
    assert_string("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"");          /* overlong */
    assert_string("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"");          /* surrogate */
    assert_string("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    assert_string("\xf8\x88\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD FFFD "\"");
    assert_string("\xfe\xff", "\"" FFFD FFFD "\"");
    assert_string("\xc3\xa9\xc3", "\"\xc3\xa9" FFFD "\"");
}

/* Long strings cross the encoder's internal slices; a multi-byte sequence or
 * an escape may straddle a slice boundary. */
static void test_string_long(void **state)
{
    static const char *tails[] = {"\xf0\x9f\x98\x80", "\n", "\xe2\x82", "\xff", "\"", "\xc3\xa9"};
    for (size_t t = 0; t < NELEM(tails); t++) {
        for (size_t len = 4090; len <= 4100; len++) {
            char *in = malloc(len + 16);
            memset(in, 'x', len);
            size_t tl = strlen(tails[t]);
            memcpy(in + len, tails[t], tl);
            memcpy(in + len + tl, "yz", 2);
            assert_string_n(in, len + tl + 2, NULL);
            free(in);
        }
    }
    /* 100 KB of control characters: the worst-case expansion. */
    size_t n = 100000;
    char *in = malloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)(i % 32);
    struct buf b = BUF_INIT;
    json_string(&b, in, n);
    checked(&b);
    note('s', in, n, &b);
    assert_true(b.len > n * 5);
    buf_fini(&b);
    free(in);
}

/* Pseudo-random bytes biased towards the interesting ones. */
static void test_string_random(void **state)
{
    static const unsigned char pick[] = {'a',  '"',  '\\', 0,    0x1f, 0x7f, 0x80, 0xbf, 0xc2,
                                         0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xff};
    uint64_t x = 0x243f6a8885a308d3ULL;
    char in[64];
    for (int iter = 0; iter < 3000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = x % sizeof in;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[i] = (char)((x >> 8) & 1 ? pick[x % sizeof pick] : (unsigned char)(x >> 16));
        }
        assert_string_n(in, n, NULL);
    }
}

/* ---- the validator itself ------------------------------------------------- */

static void test_validator(void **state)
{
    static const char *good[] = {
        "null",
        " true ",
        "false",
        "0",
        "-0",
        "1.5e+30",
        "-1E-7",
        "\"\"",
        "\"\\u00e9\\/\"",
        "\"\\ud83d\\ude00\"",
        "[]",
        "{}",
        "[1,[2,{\"a\":[]}]]",
        "{\"a\":1,\"b\":{\"c\":null}}",
        "\t\n\r [ 1 , 2 ] \n",
        "\"\xf0\x9f\x98\x80\x7f\"",
    };
    static const char *bad[] = {
        "",
        " ",
        "nul",
        "nulll",
        "True",
        "01",
        "1.",
        ".5",
        "+1",
        "1e",
        "-",
        "NaN",
        "Infinity",
        "[1,]",
        "[,1]",
        "{\"a\"1}",
        "{\"a\":}",
        "{a:1}",
        "{,}",
        "[1 2]",
        "\"",
        "\"\\\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\x01\"",
        "\"\n\"",
        "\"\xff\"",
        "\"\xc3\"",
        "\"\xed\xa0\x80\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "1 2",
        "[",
        "]",
        "{\"a\":1,}",
        "\"a\"\"b\"",
    };
    for (size_t i = 0; i < NELEM(good); i++)
        if (!json_valid(good[i], strlen(good[i])))
            fail_msg("rejected: %s", good[i]);
    for (size_t i = 0; i < NELEM(bad); i++)
        if (json_valid(bad[i], strlen(bad[i])))
            fail_msg("accepted: %s", bad[i]);
    assert_false(json_valid("\"\0\"", 3));
    assert_false(json_valid("1\0", 2));
    assert_false(json_valid(NULL, 0));

    /* Nesting: 256 levels are fine, 257 are not. */
    char deep[600];
    for (int d = 256; d <= 257; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        assert_int_equal(json_valid(deep, 2 * (size_t)d), d == 256);
    }
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_int),
        cmocka_unit_test(test_value_float),
        cmocka_unit_test(test_value_numeric_exact),
        cmocka_unit_test(test_value_bool),
        cmocka_unit_test(test_value_bytes),
        cmocka_unit_test(test_value_text_classes),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_string_unicode),
        cmocka_unit_test(test_string_invalid_utf8),
        cmocka_unit_test(test_string_long),
        cmocka_unit_test(test_string_random),
        cmocka_unit_test(test_validator),
        /* Last: checks every document the tests above produced. */
        cmocka_unit_test(test_python_cross_check),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    buf_fini(&checks);
    return rc;
}
