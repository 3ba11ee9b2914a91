/* Unit tests for the parsers of cdc's canonical value texts
 * (src/core/valtext.c): what each accepts, what it refuses, the range
 * edges, and the day-number arithmetic the lakehouse shares with them. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/valtext.h"
#include "util/buf.h"
#include "util/err.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_ints_and_bools(void **state)
{
    int32_t i;
    int64_t l;
    bool b;
    assert_int_equal(valtext_i32(S("-2147483648"), &i), 0);
    assert_int_equal(i, INT32_MIN);
    assert_int_equal(valtext_i32(S("2147483648"), &i), CDC_EINVAL);
    assert_int_equal(valtext_i64(S("-9223372036854775808"), &l), 0);
    assert_true(l == INT64_MIN);
    assert_int_equal(valtext_i64(S("9223372036854775808"), &l), CDC_EINVAL);
    assert_int_equal(valtext_i64(S("99999999999999999999"), &l), CDC_EINVAL);
    assert_int_equal(valtext_i64(S(""), &l), CDC_EINVAL);
    assert_int_equal(valtext_i64(S("-"), &l), CDC_EINVAL);
    assert_int_equal(valtext_i64(S("1 "), &l), CDC_EINVAL);
    assert_int_equal(valtext_i64(S("0x10"), &l), CDC_EINVAL);
    assert_int_equal(valtext_bool(S("t"), &b), 0);
    assert_true(b);
    assert_int_equal(valtext_bool(S("f"), &b), 0);
    assert_false(b);
    assert_int_equal(valtext_bool(S("yes"), &b), CDC_EINVAL);
}

static void test_floats(void **state)
{
    double d;
    float f;
    assert_int_equal(valtext_f64(S("NaN"), &d), 0);
    assert_true(isnan(d));
    assert_int_equal(valtext_f64(S("-Infinity"), &d), 0);
    assert_true(isinf(d) && d < 0);
    assert_int_equal(valtext_f64(S("1.7976931348623157e+308"), &d), 0);
    assert_true(d == 1.7976931348623157e+308);
    assert_int_equal(valtext_f32(S("0.1"), &f), 0);
    assert_true(f == 0.1f);
    assert_int_equal(valtext_f64(S("inf"), &d), CDC_EINVAL);
    assert_int_equal(valtext_f64(S("1,5"), &d), CDC_EINVAL);
}

static void test_dates_times_timestamps(void **state)
{
    int32_t days;
    int64_t us;
    assert_int_equal(valtext_date(S("1970-01-01"), &days), 0);
    assert_int_equal(days, 0);
    assert_int_equal(valtext_date(S("2024-02-29"), &days), 0);
    assert_int_equal(days, 19782);
    assert_int_equal(valtext_date(S("1969-12-31"), &days), 0);
    assert_int_equal(days, -1);
    assert_int_equal(valtext_date(S("0001-01-01"), &days), 0);
    assert_int_equal(days, -719162);
    assert_int_equal(valtext_date(S("0001-01-01 BC"), &days), 0);
    assert_int_equal(days, -719162 - 366); /* 1 BC is a leap year */
    assert_int_equal(valtext_date(S("0001-02-29 BC"), &days), 0);
    assert_int_equal(valtext_date(S("0002-02-29 BC"), &days), CDC_EINVAL);
    assert_int_equal(valtext_date(S("12345-01-01"), &days), 0);
    assert_int_equal(valtext_date(S("2023-02-29"), &days), CDC_EINVAL);
    assert_int_equal(valtext_date(S("2024-13-01"), &days), CDC_EINVAL);
    assert_int_equal(valtext_date(S("infinity"), &days), CDC_EINVAL);
    assert_int_equal(valtext_date(S("24-01-01"), &days), CDC_EINVAL);

    assert_int_equal(valtext_time(S("13:45:01.123456"), &us), 0);
    assert_true(us == ((13 * 60 + 45) * 60 + 1) * 1000000LL + 123456);
    assert_int_equal(valtext_time(S("13:45:01.5"), &us), 0);
    assert_true(us % 1000000 == 500000);
    assert_int_equal(valtext_time(S("24:00:00"), &us), 0);
    assert_true(us == 86400000000LL);
    assert_int_equal(valtext_time(S("24:00:01"), &us), CDC_EINVAL);
    assert_int_equal(valtext_time(S("12:60:00"), &us), CDC_EINVAL);
    assert_int_equal(valtext_time(S("12:00:00.1234567"), &us), CDC_EINVAL);
    assert_int_equal(valtext_time(S("12:00:00."), &us), CDC_EINVAL);

    assert_int_equal(valtext_timestamp(S("1970-01-01 00:00:00"), &us), 0);
    assert_true(us == 0);
    assert_int_equal(valtext_timestamp(S("2024-02-29 13:45:01.5+05:30"), &us), 0);
    assert_true(us == 1709194501500000LL);
    assert_int_equal(valtext_timestamp(S("2024-02-29 08:15:01.5+00"), &us), 0);
    assert_true(us == 1709194501500000LL);
    assert_int_equal(valtext_timestamp(S("2024-02-29 00:15:01.5-08"), &us), 0);
    assert_true(us == 1709194501500000LL);
    assert_int_equal(valtext_timestamp(S("1969-12-31 23:59:59.999999+00"), &us), 0);
    assert_true(us == -1);
    assert_int_equal(valtext_timestamp(S("1970-01-01 00:00:00+00:00:01"), &us), 0);
    assert_true(us == -1000000);
    assert_int_equal(valtext_timestamp(S("2024-01-01T00:00:00"), &us), 0);
    assert_int_equal(valtext_timestamp(S("0001-01-01 00:00:00 BC"), &us), 0);
    assert_true(us == (-719162LL - 366) * 86400000000LL);
    assert_int_equal(valtext_timestamp(S("infinity"), &us), CDC_EINVAL);
    assert_int_equal(valtext_timestamp(S("2024-01-01"), &us), CDC_EINVAL);
    assert_int_equal(valtext_timestamp(S("2024-01-01 00:00:00+5"), &us), CDC_EINVAL);
    assert_int_equal(valtext_timestamp(S("2024-01-01 00:00:00 UTC"), &us), CDC_EINVAL);
    assert_int_equal(valtext_timestamp(S("300000-01-01 00:00:00"), &us), CDC_EINVAL);
}

static void test_decimals(void **state)
{
    __int128 q;
    assert_int_equal(valtext_decimal(S("-12.50"), 10, 2, &q), 0);
    assert_true(q == -1250);
    assert_int_equal(valtext_decimal(S("7"), 10, 2, &q), 0);
    assert_true(q == 700);
    assert_int_equal(valtext_decimal(S("0.5"), 3, 2, &q), 0);
    assert_true(q == 50);
    assert_int_equal(valtext_decimal(S("00012.3"), 4, 1, &q), 0); /* leading zeros */
    assert_true(q == 123);
    assert_int_equal(valtext_decimal(S("123.4"), 4, 1, &q), 0);
    assert_int_equal(valtext_decimal(S("1234.5"), 4, 1, &q), CDC_EINVAL); /* > precision */
    assert_int_equal(valtext_decimal(S("1.234"), 10, 2, &q), CDC_EINVAL); /* > scale */
    assert_int_equal(valtext_decimal(S("NaN"), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(valtext_decimal(S("1e3"), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(valtext_decimal(S("."), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(valtext_decimal(S("1.2.3"), 10, 2, &q), CDC_EINVAL);
    assert_int_equal(valtext_decimal(S("99999999999999999999999999999999999999"), 38, 0, &q), 0);
    __int128 max = 1;
    for (int i = 0; i < 38; i++)
        max *= 10;
    assert_true(q == max - 1);
    assert_int_equal(valtext_decimal(S("999999999999999999999999999999999999999"), 38, 0, &q),
                     CDC_EINVAL);
}

static void test_uuid_and_bytea(void **state)
{
    uint8_t u[16];
    assert_int_equal(valtext_uuid(S("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), u), 0);
    assert_int_equal(u[0], 0xa0);
    assert_int_equal(u[15], 0x11);
    assert_int_equal(valtext_uuid(S("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}"), u), 0);
    assert_int_equal(u[1], 0xee);
    assert_int_equal(valtext_uuid(S("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), u), CDC_EINVAL);
    assert_int_equal(valtext_uuid(S("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111"), u), CDC_EINVAL);
    assert_int_equal(valtext_uuid(S("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), u), CDC_EINVAL);
    struct buf b = BUF_INIT;
    assert_int_equal(valtext_bytea(S("\\x00FFab"), &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.p, "\x00\xff\xab", 3);
    buf_reset(&b);
    assert_int_equal(valtext_bytea(S("\\x"), &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(valtext_bytea(S("\\x0"), &b), CDC_EINVAL);
    assert_int_equal(valtext_bytea(S("\\x0g"), &b), CDC_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(valtext_bytea(S("abc"), &b), CDC_EINVAL);
    buf_fini(&b);
}

/* valtext_date's text of the date valtext_civil gives back for a day number
 * reads as that day number again. */
static void assert_civil_round_trip(int64_t days)
{
    char text[32];
    int64_t y;
    int m, d;
    valtext_civil(days, &y, &m, &d);
    assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
    int n = y > 0 ? snprintf(text, sizeof text, "%04lld-%02d-%02d", (long long)y, m, d)
                  : snprintf(text, sizeof text, "%04lld-%02d-%02d BC", (long long)(1 - y), m, d);
    int32_t back;
    assert_int_equal(valtext_date(text, (size_t)n, &back), 0);
    assert_int_equal(back, days);
}

/* valtext_civil inverts valtext_date: every day of a whole 400-year cycle
 * either side of 1970, every day around 1 BC / 1 AD, and every 37th day
 * from before 4713 BC to 9999 AD; the floor helpers round toward minus infinity. */
static void test_civil_and_floor(void **state)
{
    for (int64_t days = -146097 - 1000; days <= 146097 + 1000; days++)
        assert_civil_round_trip(days);
    for (int64_t days = -719528 - 800; days <= -719528 + 800; days++)
        assert_civil_round_trip(days);
    for (int64_t days = -2440588 - 365; days <= 2932896; days += 37)
        assert_civil_round_trip(days);
    assert_int_equal(valtext_floor_div(-1, 86400), -1);
    assert_int_equal(valtext_floor_div(86399, 86400), 0);
    assert_int_equal(valtext_floor_div(-86400, 86400), -1);
    assert_int_equal(valtext_floor_div(-86401, 86400), -2);
    assert_int_equal(valtext_floor_mod(-1, 86400), 86399);
    /* Near INT64_MIN the product overflows an int64: checked in 128 bits. */
    __int128 q = valtext_floor_div(INT64_MIN, 86400000000LL);
    assert_true((__int128)INT64_MIN - q * 86400000000LL ==
                valtext_floor_mod(INT64_MIN, 86400000000LL));
    assert_true(q * 86400000000LL <= INT64_MIN && (q + 1) * 86400000000LL > INT64_MIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ints_and_bools),         cmocka_unit_test(test_floats),
        cmocka_unit_test(test_dates_times_timestamps), cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_uuid_and_bytea),         cmocka_unit_test(test_civil_and_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
