/* Values read back from Parquet: text, JSON, keys, copies (see
 * lake_value.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/json.h"
#include "core/valtext.h"
#include "lake/lake_conv.h"
#include "lake/lake_value.h"

/* The unscaled value of a decimal slot, whatever its physical type. */
static __int128 decimal_of(const struct parquet_column_data *d, int64_t r)
{
    if (d->phys != PQ_FIXED_LEN_BYTE_ARRAY)
        return parquet_data_int(d, r);
    size_t n;
    const uint8_t *p = parquet_data_bytes(d, r, &n);
    __int128 v = n && (p[0] & 0x80) ? -1 : 0;
    for (size_t i = 0; i < n; i++)
        v = (__int128)((unsigned __int128)v << 8) | p[i];
    return v;
}

/* "YYYY-MM-DD" of a day number; *bc when the year is 1 BC or earlier. */
static void put_date(struct buf *out, int64_t days, bool *bc)
{
    int64_t y;
    int m, d;
    valtext_civil(days, &y, &m, &d);
    *bc = y <= 0;
    buf_printf(out, "%04" PRId64 "-%02d-%02d", *bc ? 1 - y : y, m, d);
}

/* "HH:MM:SS[.ffffff]" (fraction without trailing zeros, as PostgreSQL). */
static void put_time(struct buf *out, int64_t us)
{
    int64_t s = us / 1000000, f = us % 1000000;
    buf_printf(out, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, s / 3600, s / 60 % 60, s % 60);
    if (f) {
        char frac[8];
        snprintf(frac, sizeof frac, "%06" PRId64, f);
        size_t n = 6;
        while (n > 1 && frac[n - 1] == '0')
            n--;
        buf_putc(out, '.');
        buf_put(out, frac, n);
    }
}

/* The shortest decimal form that reads back as the same float/double. */
static void put_float(struct buf *out, double v, bool single)
{
    if (isnan(v)) {
        buf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_puts(out, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char tmp[40];
    for (int prec = single ? 6 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (single ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(out, tmp);
}

static void put_decimal(struct buf *out, __int128 v, int scale)
{
    char digits[48];
    int n = 0;
    bool neg = v < 0;
    unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (n <= scale)
        digits[n++] = '0';
    if (neg)
        buf_putc(out, '-');
    for (int i = n - 1; i >= 0; i--) {
        buf_putc(out, digits[i]);
        if (i == scale && scale > 0)
            buf_putc(out, '.');
    }
}

void lake_value_text(const struct ice_field *f, const struct parquet_column_data *d, int64_t r,
                     struct buf *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t n;
    const uint8_t *p;
    bool bc = false;
    int64_t v;
    switch (f->type) {
    case ICE_BOOLEAN:
        buf_putc(out, parquet_data_int(d, r) ? 't' : 'f');
        return;
    case ICE_INT:
    case ICE_LONG:
        buf_put_i64(out, parquet_data_int(d, r));
        return;
    case ICE_FLOAT:
    case ICE_DOUBLE:
        put_float(out, parquet_data_double(d, r), f->type == ICE_FLOAT);
        return;
    case ICE_DECIMAL:
        put_decimal(out, decimal_of(d, r), f->scale);
        return;
    case ICE_DATE:
        put_date(out, parquet_data_int(d, r), &bc);
        break;
    case ICE_TIME:
        put_time(out, parquet_data_int(d, r));
        return;
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        v = parquet_data_int(d, r);
        put_date(out, valtext_floor_div(v, 86400000000LL), &bc);
        buf_putc(out, ' ');
        put_time(out, valtext_floor_mod(v, 86400000000LL));
        if (f->type == ICE_TIMESTAMPTZ)
            buf_puts(out, "+00");
        break;
    case ICE_UUID:
        p = parquet_data_bytes(d, r, &n);
        for (size_t i = 0; i < n; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                buf_putc(out, '-');
            buf_putc(out, hex[p[i] >> 4]);
            buf_putc(out, hex[p[i] & 15]);
        }
        return;
    case ICE_BINARY:
        p = parquet_data_bytes(d, r, &n);
        buf_puts(out, "\\x");
        for (size_t i = 0; i < n; i++) {
            buf_putc(out, hex[p[i] >> 4]);
            buf_putc(out, hex[p[i] & 15]);
        }
        return;
    case ICE_STRING:
    case ICE_FIXED:
        p = parquet_data_bytes(d, r, &n);
        buf_put(out, p, n);
        return;
    }
    if (bc)
        buf_puts(out, " BC");
}

void lake_value_json(const struct ice_field *f, const struct parquet_column_data *d, int64_t r,
                     struct buf *out)
{
    if (!d || parquet_data_null(d, r)) {
        buf_puts(out, "null");
        return;
    }
    enum cdc_type t;
    switch (f->type) {
    case ICE_BOOLEAN:
        t = CDC_T_BOOL;
        break;
    case ICE_INT:
    case ICE_LONG:
        t = CDC_T_INT;
        break;
    case ICE_FLOAT:
    case ICE_DOUBLE:
        t = CDC_T_FLOAT;
        break;
    case ICE_DECIMAL:
        t = CDC_T_NUMERIC;
        break;
    case ICE_BINARY:
        t = CDC_T_BYTES;
        break;
    default:
        t = CDC_T_TEXT;
    }
    struct buf txt = BUF_INIT;
    lake_value_text(f, d, r, &txt);
    json_value(out, t, txt.p ? txt.p : "", txt.len);
    buf_fini(&txt);
}

/* Key tags: NULL, an integer-like value (16 bytes big-endian), a float
 * (8 bytes of the double), bytes (4-byte length, then the bytes). */
enum { KEY_NULL = 0, KEY_INT = 1, KEY_FLOAT = 2, KEY_BYTES = 3 };

static void key_int(struct buf *out, __int128 v)
{
    uint8_t b[17];
    b[0] = KEY_INT;
    lake_decimal_be(v, b + 1, 16);
    buf_put(out, b, sizeof b);
}

static void key_float(struct buf *out, double v)
{
    uint8_t b[9];
    b[0] = KEY_FLOAT;
    if (v == 0)
        v = 0; /* -0.0 and +0.0 are one key */
    if (isnan(v))
        v = NAN; /* and every NaN */
    memcpy(b + 1, &v, 8);
    buf_put(out, b, sizeof b);
}

static void key_bytes(struct buf *out, const void *p, size_t n)
{
    uint8_t b[5] = {KEY_BYTES, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                    (uint8_t)n};
    buf_put(out, b, sizeof b);
    buf_put(out, p, n);
}

void lake_value_key(const struct ice_field *f, const struct parquet_column_data *d, int64_t r,
                    struct buf *out)
{
    if (!d || parquet_data_null(d, r)) {
        buf_putc(out, KEY_NULL);
        return;
    }
    size_t n;
    const uint8_t *p;
    switch (f->type) {
    case ICE_FLOAT:
    case ICE_DOUBLE:
        key_float(out, parquet_data_double(d, r));
        return;
    case ICE_DECIMAL:
        key_int(out, decimal_of(d, r));
        return;
    case ICE_STRING:
    case ICE_BINARY:
    case ICE_UUID:
    case ICE_FIXED:
        p = parquet_data_bytes(d, r, &n);
        key_bytes(out, p, n);
        return;
    default:
        key_int(out, parquet_data_int(d, r));
        return;
    }
}

int lake_key_from_text(const struct ice_field *f, const char *s, size_t n, struct buf *out)
{
    if (!s) {
        buf_putc(out, KEY_NULL);
        return 0;
    }
    bool b;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    __int128 q;
    uint8_t u[16];
    int rc = 0;
    switch (f->type) {
    case ICE_BOOLEAN:
        if (!(rc = valtext_bool(s, n, &b)))
            key_int(out, b);
        break;
    case ICE_INT:
        if (!(rc = valtext_i32(s, n, &i32)))
            key_int(out, i32);
        break;
    case ICE_DATE:
        if (!(rc = valtext_date(s, n, &i32)))
            key_int(out, i32);
        break;
    case ICE_LONG:
        if (!(rc = valtext_i64(s, n, &i64)))
            key_int(out, i64);
        break;
    case ICE_TIME:
        if (!(rc = valtext_time(s, n, &i64)))
            key_int(out, i64);
        break;
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        if (!(rc = valtext_timestamp(s, n, &i64)))
            key_int(out, i64);
        break;
    case ICE_FLOAT:
        if (!(rc = valtext_f32(s, n, &f32)))
            key_float(out, f32);
        break;
    case ICE_DOUBLE:
        if (!(rc = valtext_f64(s, n, &f64)))
            key_float(out, f64);
        break;
    case ICE_DECIMAL:
        if (!(rc = valtext_decimal(s, n, f->precision, f->scale, &q)))
            key_int(out, q);
        break;
    case ICE_UUID:
        if (!(rc = valtext_uuid(s, n, u)))
            key_bytes(out, u, 16);
        break;
    case ICE_BINARY: {
        struct buf tmp = BUF_INIT;
        if (!(rc = valtext_bytea(s, n, &tmp)))
            key_bytes(out, tmp.p, tmp.len);
        buf_fini(&tmp);
        break;
    }
    case ICE_STRING:
    case ICE_FIXED:
        key_bytes(out, s, n);
        break;
    }
    return rc;
}

void lake_key_partition(const struct ice_pvalue *v, uint32_t n, struct buf *out)
{
    for (uint32_t i = 0; i < n; i++) {
        if (v[i].null)
            buf_putc(out, KEY_NULL);
        else if (v[i].is_str)
            key_bytes(out, v[i].s, strlen(v[i].s));
        else
            key_int(out, v[i].l);
    }
}

void lake_value_add(struct parquet_writer *pw, uint32_t col, const struct ice_field *f,
                    const struct parquet_column_data *d, int64_t r)
{
    if (!d || parquet_data_null(d, r)) {
        parquet_add_null(pw, col);
        return;
    }
    size_t n;
    const uint8_t *p;
    switch (f->type) {
    case ICE_BOOLEAN:
        parquet_add_bool(pw, col, parquet_data_int(d, r) != 0);
        return;
    case ICE_INT:
    case ICE_DATE:
        parquet_add_i32(pw, col, (int32_t)parquet_data_int(d, r));
        return;
    case ICE_LONG:
    case ICE_TIME:
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        parquet_add_i64(pw, col, parquet_data_int(d, r));
        return;
    case ICE_FLOAT:
        parquet_add_f32(pw, col, (float)parquet_data_double(d, r));
        return;
    case ICE_DOUBLE:
        parquet_add_f64(pw, col, parquet_data_double(d, r));
        return;
    case ICE_DECIMAL:
        parquet_add_decimal(pw, col, decimal_of(d, r));
        return;
    default:
        p = parquet_data_bytes(d, r, &n);
        parquet_add_bytes(pw, col, p, n);
        return;
    }
}
