/* cdc's canonical value texts -> machine values (see valtext.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/valtext.h"
#include "util/err.h"
#include "util/str.h"

int valtext_bool(const char *s, size_t n, bool *out)
{
    if (str_is(s, n, "t") || str_is(s, n, "true")) {
        *out = true;
        return 0;
    }
    if (str_is(s, n, "f") || str_is(s, n, "false")) {
        *out = false;
        return 0;
    }
    return CDC_EINVAL;
}

/* Parses an optionally signed decimal integer filling s[0..n) exactly. */
static int parse_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n)
        return CDC_EINVAL;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CDC_EINVAL;
        if (v > (UINT64_MAX - 9) / 10)
            return CDC_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return CDC_EINVAL;
    int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
    if (r < lo || r > hi)
        return CDC_EINVAL;
    *out = r;
    return 0;
}

int valtext_i32(const char *s, size_t n, int32_t *out)
{
    int64_t v;
    if (parse_int(s, n, INT32_MIN, INT32_MAX, &v) < 0)
        return CDC_EINVAL;
    *out = (int32_t)v;
    return 0;
}

int valtext_i64(const char *s, size_t n, int64_t *out)
{
    return parse_int(s, n, INT64_MIN, INT64_MAX, out);
}

int valtext_f64(const char *s, size_t n, double *out)
{
    if (str_is(s, n, "NaN")) {
        *out = NAN;
        return 0;
    }
    if (str_is(s, n, "Infinity") || str_is(s, n, "-Infinity")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return CDC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", s[i]))
            return CDC_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n)
        return CDC_EINVAL;
    *out = v;
    return 0;
}

int valtext_f32(const char *s, size_t n, float *out)
{
    double d;
    if (valtext_f64(s, n, &d) < 0)
        return CDC_EINVAL;
    /* PG prints float4 with enough digits to round-trip through float. */
    char tmp[64];
    memcpy(tmp, s, n < 63 ? n : 63);
    tmp[n < 63 ? n : 63] = '\0';
    *out = isnan(d) || isinf(d) ? (float)d : strtof(tmp, NULL);
    return 0;
}

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (y may be <= 0:
 * year 0 is 1 BC). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly `digits` digits (or at least `digits` when more is true). */
static int digits_at(const char *s, size_t n, size_t *i, int digits, bool more, int64_t *out)
{
    int64_t v = 0;
    int k = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9' && (more || k < digits)) {
        if (k >= 9)
            return CDC_EINVAL;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    if (k < digits)
        return CDC_EINVAL;
    *out = v;
    return 0;
}

/* "YYYY-MM-DD" at s[*i]; the year has 4 or more digits. */
static int parse_ymd(const char *s, size_t n, size_t *i, int64_t *y, int *m, int *d)
{
    int64_t mm, dd;
    if (digits_at(s, n, i, 4, true, y) < 0 || *i >= n || s[(*i)++] != '-' ||
        digits_at(s, n, i, 2, false, &mm) < 0 || *i >= n || s[(*i)++] != '-' ||
        digits_at(s, n, i, 2, false, &dd) < 0)
        return CDC_EINVAL;
    /* February 29 is checked by days_of, once the era is known */
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (*y < 1 || mm < 1 || mm > 12 || dd < 1 || dd > mdays[mm - 1])
        return CDC_EINVAL;
    *m = (int)mm;
    *d = (int)dd;
    return 0;
}

static bool ends_bc(const char *s, size_t *n)
{
    if (*n >= 3 && memcmp(s + *n - 3, " BC", 3) == 0) {
        *n -= 3;
        return true;
    }
    return false;
}

/* Year y of a "… BC" date is astronomical year 1 - y, and leap years follow
 * the astronomical number (1 BC is one). */
static int days_of(int64_t y, int m, int d, bool bc, int64_t *out)
{
    if (bc)
        y = 1 - y;
    if (m == 2 && d == 29 && !leap(y))
        return CDC_EINVAL;
    *out = days_from_civil(y, m, d);
    return 0;
}

int valtext_date(const char *s, size_t n, int32_t *days)
{
    bool bc = ends_bc(s, &n);
    size_t i = 0;
    int64_t y, v;
    int m, d;
    if (parse_ymd(s, n, &i, &y, &m, &d) < 0 || i != n || days_of(y, m, d, bc, &v) < 0 ||
        v < INT32_MIN || v > INT32_MAX)
        return CDC_EINVAL;
    *days = (int32_t)v;
    return 0;
}

/* "HH:MM:SS[.ffffff]" at s[*i] -> microseconds. */
static int parse_hms(const char *s, size_t n, size_t *i, int64_t *micros)
{
    int64_t h, mi, se, frac = 0;
    if (digits_at(s, n, i, 2, false, &h) < 0 || *i >= n || s[(*i)++] != ':' ||
        digits_at(s, n, i, 2, false, &mi) < 0 || *i >= n || s[(*i)++] != ':' ||
        digits_at(s, n, i, 2, false, &se) < 0)
        return CDC_EINVAL;
    if (*i < n && s[*i] == '.') {
        (*i)++;
        int k = 0;
        while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
            if (k >= 6)
                return CDC_EINVAL;
            frac = frac * 10 + (s[(*i)++] - '0');
            k++;
        }
        if (k == 0)
            return CDC_EINVAL;
        for (; k < 6; k++)
            frac *= 10;
    }
    if (mi > 59 || se > 60 || h > 24 || (h == 24 && (mi || se || frac)))
        return CDC_EINVAL;
    *micros = ((h * 60 + mi) * 60 + se) * 1000000 + frac;
    return 0;
}

int valtext_time(const char *s, size_t n, int64_t *micros)
{
    size_t i = 0;
    if (parse_hms(s, n, &i, micros) < 0 || i != n)
        return CDC_EINVAL;
    return 0;
}

int valtext_timestamp(const char *s, size_t n, int64_t *micros)
{
    bool bc = ends_bc(s, &n);
    size_t i = 0;
    int64_t y, days, tod, off = 0;
    int m, d;
    if (parse_ymd(s, n, &i, &y, &m, &d) < 0 || i >= n || (s[i] != ' ' && s[i] != 'T'))
        return CDC_EINVAL;
    i++;
    if (parse_hms(s, n, &i, &tod) < 0)
        return CDC_EINVAL;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int64_t oh, om = 0, os = 0;
        if (digits_at(s, n, &i, 2, false, &oh) < 0)
            return CDC_EINVAL;
        if (i < n && s[i] == ':') {
            i++;
            if (digits_at(s, n, &i, 2, false, &om) < 0)
                return CDC_EINVAL;
            if (i < n && s[i] == ':') {
                i++;
                if (digits_at(s, n, &i, 2, false, &os) < 0)
                    return CDC_EINVAL;
            }
        }
        if (om > 59 || os > 59)
            return CDC_EINVAL;
        off = sign * ((oh * 60 + om) * 60 + os);
    }
    if (i != n || days_of(y, m, d, bc, &days) < 0)
        return CDC_EINVAL;
    /* |days| < 2^31 keeps this far inside int64. */
    if (days < -106751991LL || days > 106751990LL)
        return CDC_EINVAL;
    *micros = days * 86400000000LL + tod - off * 1000000;
    return 0;
}

int valtext_decimal(const char *s, size_t n, int precision, int scale, __int128 *unscaled)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    __int128 v = 0;
    int intdigits = 0, fracdigits = 0;
    bool any = false, point = false;
    for (; i < n; i++) {
        if (s[i] == '.' && !point) {
            point = true;
            continue;
        }
        if (s[i] < '0' || s[i] > '9')
            return CDC_EINVAL;
        any = true;
        if (point) {
            if (++fracdigits > scale)
                return CDC_EINVAL;
        } else if (intdigits > 0 || s[i] != '0') {
            intdigits++;
        }
        if (intdigits + scale > 38)
            return CDC_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (!any || intdigits > precision - scale)
        return CDC_EINVAL;
    for (; fracdigits < scale; fracdigits++)
        v *= 10;
    *unscaled = neg ? -v : v;
    return 0;
}

int valtext_uuid(const char *s, size_t n, uint8_t out[16])
{
    size_t i = 0, k = 0;
    if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
        i = 1;
        n--;
    }
    while (i < n) {
        if (s[i] == '-' && k > 0 && k % 2 == 0 && k < 32) {
            i++;
            continue;
        }
        int v = str_hexval((unsigned char)s[i]);
        if (v < 0 || k >= 32)
            return CDC_EINVAL;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
        i++;
    }
    return k == 32 ? 0 : CDC_EINVAL;
}

int valtext_bytea(const char *s, size_t n, struct buf *out)
{
    if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2)
        return CDC_EINVAL;
    size_t start = out->len;
    buf_reserve(out, (n - 2) / 2);
    for (size_t i = 2; i < n; i += 2) {
        int hi = str_hexval((unsigned char)s[i]), lo = str_hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            out->len = start;
            return CDC_EINVAL;
        }
        out->p[out->len++] = (char)(hi << 4 | lo);
    }
    out->p[out->len] = '\0';
    return 0;
}

/* The proleptic Gregorian date of a day number (days since 1970-01-01; the
 * inverse of days_from_civil): year (0 is 1 BC), month 1-12, day 1-31. */
void valtext_civil(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = valtext_floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}
