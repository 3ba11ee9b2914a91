/* Storage formats read here (MySQL/MariaDB Field::pack and the my_time.c
 * packed formats), per type:
 *   TINY..LONGLONG  little-endian, 1/2/3/4/8 bytes
 *   FLOAT, DOUBLE   little-endian IEEE 754
 *   NEWDECIMAL      big-endian groups of 9 digits in 4 bytes, sign in the
 *                   top bit (set = positive; negative values inverted)
 *   DATE            3 bytes LE: day(5) month(4) year(15)
 *   TIME2           3 bytes BE (hours/minutes/seconds + 0x800000) + fraction
 *   DATETIME2       5 bytes BE (year*13+month, day, h, m, s + 2^39) + fraction
 *   TIMESTAMP2      4 bytes BE seconds since the epoch + fraction
 *   fraction        (fsp + 1) / 2 bytes BE, in units of 10^(6 - 2*bytes) us
 *   YEAR            1 byte, year - 1900, 0 for YEAR 0
 *   BIT             (bits + 7) / 8 bytes BE
 *   ENUM, SET       1-2 byte index (1-based) / 1-8 byte bitmask, LE
 *   CHAR, VARCHAR   1 or 2 byte length (2 when the maximum exceeds 255)
 *   BLOB, TEXT      1-4 byte length, as the table map says */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "source/mysql/binlog.h"
#include "source/mysql/myvalue.h"
#include "util/err.h"

static const char hexd[16] = "0123456789abcdef";

static void put_hex(struct buf *out, const uint8_t *p, size_t n)
{
    buf_reserve(out, 2 + 2 * n);
    char *o = out->p + out->len;
    *o++ = '\\';
    *o++ = 'x';
    for (size_t i = 0; i < n; i++) {
        *o++ = hexd[p[i] >> 4];
        *o++ = hexd[p[i] & 15];
    }
    out->len = (size_t)(o - out->p);
    out->p[out->len] = '\0';
}

static void put_digits(struct buf *out, unsigned v, int width)
{
    char t[12];
    int k = 0;
    do {
        t[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || k < width);
    buf_reserve(out, (size_t)k);
    while (k)
        out->p[out->len++] = t[--k];
    out->p[out->len] = '\0';
}

/* ".123" for microseconds us shown with fsp digits. */
static void put_frac(struct buf *out, unsigned us, unsigned fsp)
{
    if (!fsp)
        return;
    char t[7];
    for (int i = 5; i >= 0; i--) {
        t[i] = (char)('0' + us % 10);
        us /= 10;
    }
    buf_putc(out, '.');
    buf_put(out, t, fsp > 6 ? 6 : fsp);
}

static void put_date(struct buf *out, unsigned y, unsigned m, unsigned d)
{
    put_digits(out, y, 4);
    buf_putc(out, '-');
    put_digits(out, m, 2);
    buf_putc(out, '-');
    put_digits(out, d, 2);
}

static void put_hms(struct buf *out, unsigned h, unsigned mi, unsigned s)
{
    put_digits(out, h, 2);
    buf_putc(out, ':');
    put_digits(out, mi, 2);
    buf_putc(out, ':');
    put_digits(out, s, 2);
}

void myvalue_put_float(struct buf *out, float v)
{
    char t[48];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, (double)v);
        if (strtof(t, NULL) == v)
            break;
    }
    buf_puts(out, t);
}

void myvalue_put_double(struct buf *out, double v)
{
    char t[48];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v)
            break;
    }
    buf_puts(out, t);
}

static inline uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}
static inline uint32_t be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | be24(p + 1);
}
static inline uint64_t be40(const uint8_t *p)
{
    return (uint64_t)p[0] << 32 | be32(p + 1);
}
static inline uint64_t be48(const uint8_t *p)
{
    return (uint64_t)be16(p) << 32 | be32(p + 2);
}

/* Bytes of the fractional part for fsp digits. */
static size_t frac_bytes(unsigned fsp)
{
    return (fsp + 1) / 2;
}

/* ---- DECIMAL ---------------------------------------------------------- */

static const uint8_t dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};

static size_t decimal_size(unsigned prec, unsigned scale)
{
    unsigned intg = prec - scale;
    return (intg / 9) * 4 + dig2bytes[intg % 9] + (scale / 9) * 4 + dig2bytes[scale % 9];
}

/* Reads k big-endian bytes of the (sign-fixed) decimal image. */
static uint32_t dec_group(const uint8_t *p, size_t k)
{
    uint32_t v = 0;
    for (size_t i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

static int decode_decimal(const struct mycol *c, const uint8_t *p, size_t avail, size_t *used,
                          struct buf *out, char *err, size_t errlen)
{
    unsigned prec = c->precision, scale = c->scale;
    if (prec == 0 || prec > 65 || scale > 30 || scale > prec)
        return cdc_fail(err, errlen, CDC_EINVAL, "DECIMAL(%u,%u) is not a valid type", prec, scale);
    size_t size = decimal_size(prec, scale);
    if (avail < size)
        return cdc_fail(err, errlen, CDC_EINVAL, "DECIMAL value truncated");
    uint8_t b[40];
    memcpy(b, p, size);
    bool neg = !(b[0] & 0x80);
    b[0] ^= 0x80;
    if (neg)
        for (size_t i = 0; i < size; i++)
            b[i] ^= 0xff;
    unsigned intg = prec - scale;
    size_t at = 0;
    char digits[96];
    size_t nd = 0;
    /* integer part: a partial group of intg % 9 digits, then whole groups */
    size_t k = dig2bytes[intg % 9];
    if (k) {
        uint32_t v = dec_group(b, k);
        nd += (size_t)snprintf(digits + nd, sizeof digits - nd, "%0*u", (int)(intg % 9), v);
        at += k;
    }
    for (unsigned g = 0; g < intg / 9; g++, at += 4)
        nd += (size_t)snprintf(digits + nd, sizeof digits - nd, "%09u", dec_group(b + at, 4));
    size_t lead = 0;
    while (lead + 1 < nd && digits[lead] == '0')
        lead++;
    char frac[40];
    size_t nf = 0;
    for (unsigned g = 0; g < scale / 9; g++, at += 4)
        nf += (size_t)snprintf(frac + nf, sizeof frac - nf, "%09u", dec_group(b + at, 4));
    k = dig2bytes[scale % 9];
    if (k)
        nf += (size_t)snprintf(frac + nf, sizeof frac - nf, "%0*u", (int)(scale % 9),
                               dec_group(b + at, k));
    bool zero = true;
    for (size_t i = lead; i < nd; i++)
        zero &= digits[i] == '0';
    for (size_t i = 0; i < nf; i++)
        zero &= frac[i] == '0';
    if (neg && !zero)
        buf_putc(out, '-');
    if (nd > lead)
        buf_put(out, digits + lead, nd - lead);
    else
        buf_putc(out, '0');
    if (scale) {
        buf_putc(out, '.');
        buf_put(out, frac, nf);
    }
    *used = size;
    return 0;
}

/* ---- temporal ----------------------------------------------------------- */

static void put_time_packed(struct buf *out, int64_t packed, unsigned fsp)
{
    uint64_t mag = (uint64_t)packed;
    if (packed < 0) {
        buf_putc(out, '-');
        mag = (uint64_t)0 - mag;
    }
    uint64_t hms = mag >> 24;
    unsigned us = (unsigned)(mag & 0xffffff);
    put_hms(out, (unsigned)((hms >> 12) & 0x3ff), (unsigned)((hms >> 6) & 0x3f),
            (unsigned)(hms & 0x3f));
    put_frac(out, us, fsp);
}

static int decode_time2(const uint8_t *p, unsigned fsp, struct buf *out)
{
    int64_t intpart = (int64_t)be24(p) - 0x800000;
    int64_t frac = 0;
    switch (fsp) {
    case 1:
    case 2:
        frac = p[3];
        if (intpart < 0 && frac) {
            intpart++;
            frac -= 0x100;
        }
        frac *= 10000;
        break;
    case 3:
    case 4:
        frac = be16(p + 3);
        if (intpart < 0 && frac) {
            intpart++;
            frac -= 0x10000;
        }
        frac *= 100;
        break;
    case 5:
    case 6:
        put_time_packed(out, (int64_t)be48(p) - 0x800000000000LL, fsp);
        return 0;
    default:
        break;
    }
    put_time_packed(out, intpart * (1LL << 24) + frac, fsp);
    return 0;
}

static int64_t frac_signed(const uint8_t *p, unsigned fsp)
{
    switch (fsp) {
    case 1:
    case 2:
        return (int8_t)p[0] * 10000LL;
    case 3:
    case 4:
        return (int16_t)be16(p) * 100LL;
    case 5:
    case 6: {
        uint32_t v = be24(p);
        return (v & 0x800000) ? (int64_t)v - 0x1000000 : (int64_t)v;
    }
    default:
        return 0;
    }
}

static void decode_datetime2(const uint8_t *p, unsigned fsp, struct buf *out)
{
    int64_t intpart = (int64_t)be40(p) - 0x8000000000LL;
    int64_t frac = frac_signed(p + 5, fsp);
    /* Negative values are not produced by the server; magnitudes keep the
     * text sane for damaged input. */
    uint64_t ymdhms = (uint64_t)(intpart < 0 ? -intpart : intpart);
    unsigned us = (unsigned)((frac < 0 ? -frac : frac) % 1000000);
    uint64_t ymd = ymdhms >> 17, ym = ymd >> 5, hms = ymdhms & 0x1ffff;
    put_date(out, (unsigned)(ym / 13), (unsigned)(ym % 13), (unsigned)(ymd & 31));
    buf_putc(out, ' ');
    put_hms(out, (unsigned)(hms >> 12), (unsigned)((hms >> 6) & 63), (unsigned)(hms & 63));
    put_frac(out, us, fsp);
}

static void put_timestamp(struct buf *out, uint32_t sec, unsigned us, unsigned fsp)
{
    if (sec == 0 && us == 0) { /* the zero TIMESTAMP */
        buf_puts(out, "0000-00-00 00:00:00");
        put_frac(out, 0, fsp);
        return;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    put_date(out, (unsigned)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
    buf_putc(out, ' ');
    put_hms(out, (unsigned)tm.tm_hour, (unsigned)tm.tm_min, (unsigned)tm.tm_sec);
    put_frac(out, us, fsp);
    buf_puts(out, "+00");
}

/* ---- everything ---------------------------------------------------------- */

static void put_bits(struct buf *out, const uint8_t *p, size_t nbytes, unsigned bits)
{
    buf_reserve(out, bits);
    for (unsigned i = 0; i < bits; i++) {
        unsigned bit = bits - 1 - i; /* most significant first */
        size_t byte = nbytes - 1 - bit / 8;
        out->p[out->len++] = (p[byte] >> (bit % 8)) & 1 ? '1' : '0';
    }
    out->p[out->len] = '\0';
}

static int put_text(const struct mycol *c, const uint8_t *p, size_t n, struct buf *out,
                    struct mycharset_conv *cv, char *err, size_t errlen)
{
    if (c->charset == MYCHARSET_BINARY || c->charset == 0) {
        put_hex(out, p, n);
        /* BINARY(n): the server strips the 0x00 padding it stores */
        for (size_t i = n; c->type == MYT_STRING && i < c->length; i++)
            buf_put(out, "00", 2);
        return 0;
    }
    if (mycharset_to_utf8(cv, c->charset, (const char *)p, n, out) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "unknown character set (collation %u)",
                        c->charset);
    return 0;
}

static uint64_t le(const uint8_t *p, size_t k)
{
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (avail < (size_t)(k))                                                                   \
            return cdc_fail(err, errlen, CDC_EINVAL, "value truncated (%zu of %zu bytes)", avail,  \
                            (size_t)(k));                                                          \
    } while (0)

int myvalue_decode(const struct mycol *c, const uint8_t *p, const uint8_t *end, size_t *used,
                   struct buf *out, struct mycharset_conv *cv, char *err, size_t errlen)
{
    size_t avail = end >= p ? (size_t)(end - p) : 0;
    size_t k = 0;
    switch (c->type) {
    case MYT_TINY:
        NEED(1);
        k = 1;
        if (c->is_unsigned)
            buf_put_u64(out, p[0]);
        else
            buf_put_i64(out, (int8_t)p[0]);
        break;
    case MYT_SHORT:
        NEED(2);
        k = 2;
        if (c->is_unsigned)
            buf_put_u64(out, binlog_u16(p));
        else
            buf_put_i64(out, (int16_t)binlog_u16(p));
        break;
    case MYT_INT24: {
        NEED(3);
        k = 3;
        uint32_t v = binlog_u24(p);
        if (c->is_unsigned)
            buf_put_u64(out, v);
        else
            buf_put_i64(out, (v & 0x800000) ? (int64_t)v - 0x1000000 : (int64_t)v);
        break;
    }
    case MYT_LONG:
        NEED(4);
        k = 4;
        if (c->is_unsigned)
            buf_put_u64(out, binlog_u32(p));
        else
            buf_put_i64(out, (int32_t)binlog_u32(p));
        break;
    case MYT_LONGLONG:
        NEED(8);
        k = 8;
        if (c->is_unsigned)
            buf_put_u64(out, binlog_u64(p));
        else
            buf_put_i64(out, (int64_t)binlog_u64(p));
        break;
    case MYT_FLOAT: {
        NEED(4);
        k = 4;
        uint32_t bits = binlog_u32(p);
        float f;
        memcpy(&f, &bits, 4);
        myvalue_put_float(out, f);
        break;
    }
    case MYT_DOUBLE: {
        NEED(8);
        k = 8;
        uint64_t bits = binlog_u64(p);
        double d;
        memcpy(&d, &bits, 8);
        myvalue_put_double(out, d);
        break;
    }
    case MYT_NEWDECIMAL:
        return decode_decimal(c, p, avail, used, out, err, errlen);
    case MYT_YEAR:
        NEED(1);
        k = 1;
        buf_put_u64(out, p[0] ? 1900u + p[0] : 0);
        break;
    case MYT_DATE:
    case MYT_NEWDATE: {
        NEED(3);
        k = 3;
        uint32_t v = binlog_u24(p);
        put_date(out, v >> 9, (v >> 5) & 15, v & 31);
        break;
    }
    case MYT_TIME: { /* before MySQL 5.6: HHMMSS as a signed 3-byte integer */
        NEED(3);
        k = 3;
        uint32_t u = binlog_u24(p);
        int32_t v = (u & 0x800000) ? (int32_t)u - 0x1000000 : (int32_t)u;
        if (v < 0) {
            buf_putc(out, '-');
            v = -v;
        }
        put_hms(out, (unsigned)(v / 10000), (unsigned)(v / 100 % 100), (unsigned)(v % 100));
        break;
    }
    case MYT_TIME2:
        k = 3 + frac_bytes(c->fsp);
        NEED(k);
        decode_time2(p, c->fsp, out);
        break;
    case MYT_DATETIME: { /* before 5.6: YYYYMMDDhhmmss as an 8-byte integer */
        NEED(8);
        k = 8;
        uint64_t v = binlog_u64(p);
        uint64_t d = v / 1000000, t = v % 1000000;
        put_date(out, (unsigned)(d / 10000), (unsigned)(d / 100 % 100), (unsigned)(d % 100));
        buf_putc(out, ' ');
        put_hms(out, (unsigned)(t / 10000), (unsigned)(t / 100 % 100), (unsigned)(t % 100));
        break;
    }
    case MYT_DATETIME2:
        k = 5 + frac_bytes(c->fsp);
        NEED(k);
        decode_datetime2(p, c->fsp, out);
        break;
    case MYT_TIMESTAMP:
        NEED(4);
        k = 4;
        put_timestamp(out, binlog_u32(p), 0, 0);
        break;
    case MYT_TIMESTAMP2: {
        k = 4 + frac_bytes(c->fsp);
        NEED(k);
        unsigned us = c->fsp >= 5   ? be24(p + 4)
                      : c->fsp >= 3 ? be16(p + 4) * 100
                      : c->fsp >= 1 ? p[4] * 10000u
                                    : 0;
        put_timestamp(out, be32(p), us, c->fsp);
        break;
    }
    case MYT_BIT: {
        size_t nbytes = (c->bits + 7u) / 8u;
        k = nbytes;
        NEED(k);
        put_bits(out, p, nbytes, c->bits);
        break;
    }
    case MYT_ENUM: {
        k = c->pack_len;
        NEED(k);
        uint64_t idx = le(p, k);
        if (idx == 0)
            break; /* the empty string of an invalid value */
        if (idx > c->nvalues)
            return cdc_fail(err, errlen, CDC_EINVAL, "ENUM index %llu of %u values",
                            (unsigned long long)idx, c->nvalues);
        buf_puts(out, c->values[idx - 1]);
        break;
    }
    case MYT_SET: {
        k = c->pack_len;
        NEED(k);
        uint64_t mask = le(p, k);
        bool first = true;
        for (uint32_t i = 0; i < 64 && mask; i++, mask >>= 1) {
            if (!(mask & 1))
                continue;
            if (i >= c->nvalues)
                return cdc_fail(err, errlen, CDC_EINVAL, "SET bit %u of %u values", i, c->nvalues);
            if (!first)
                buf_putc(out, ',');
            first = false;
            buf_puts(out, c->values[i]);
        }
        break;
    }
    case MYT_STRING:
    case MYT_VARCHAR:
    case MYT_VAR_STRING: {
        size_t lb = c->length > 255 ? 2 : 1;
        NEED(lb);
        size_t n = lb == 1 ? p[0] : binlog_u16(p);
        k = lb + n;
        NEED(k);
        int rc = put_text(c, p + lb, n, out, cv, err, errlen);
        *used = k;
        return rc;
    }
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_GEOMETRY: {
        size_t lb = c->len_bytes;
        if (lb < 1 || lb > 4)
            return cdc_fail(err, errlen, CDC_EINVAL, "BLOB with a %zu-byte length", lb);
        NEED(lb);
        uint64_t n = le(p, lb);
        if (n > avail - lb)
            return cdc_fail(err, errlen, CDC_EINVAL, "value of %llu bytes truncated",
                            (unsigned long long)n);
        k = lb + (size_t)n;
        if (c->type == MYT_GEOMETRY) {
            put_hex(out, p + lb, (size_t)n);
            break;
        }
        int rc = put_text(c, p + lb, (size_t)n, out, cv, err, errlen);
        *used = k;
        return rc;
    }
    case MYT_JSON:
        return cdc_fail(err, errlen, CDC_ENOTSUP,
                        "MySQL's binary JSON is not supported (MariaDB stores JSON as text)");
    case MYT_NULL:
        break;
    default:
        return cdc_fail(err, errlen, CDC_ENOTSUP, "column type %u is not supported", c->type);
    }
    *used = k;
    return 0;
}

/* ---- from SELECT text ---------------------------------------------------- */

void myvalue_select_expr(const struct mycol *c, struct buf *sql)
{
    bool as_double = c->type == MYT_FLOAT;
    if (as_double)
        buf_puts(sql, "CAST(");
    buf_putc(sql, '`');
    for (const char *s = c->name; *s; s++) {
        if (*s == '`')
            buf_putc(sql, '`');
        buf_putc(sql, *s);
    }
    buf_putc(sql, '`');
    if (as_double)
        buf_puts(sql, " AS DOUBLE)");
}

int myvalue_from_text(const struct mycol *c, const char *s, size_t n, struct buf *out, char *err,
                      size_t errlen)
{
    char tmp[64];
    switch (c->type) {
    case MYT_FLOAT:
    case MYT_DOUBLE: {
        if (n == 0 || n >= sizeof tmp)
            return cdc_fail(err, errlen, CDC_EINVAL, "not a number: %.*s", (int)(n > 40 ? 40 : n),
                            s);
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *e;
        double d = strtod(tmp, &e);
        if (*e)
            return cdc_fail(err, errlen, CDC_EINVAL, "not a number: %s", tmp);
        if (c->type == MYT_FLOAT)
            myvalue_put_float(out, (float)d);
        else
            myvalue_put_double(out, d);
        return 0;
    }
    case MYT_YEAR: {
        unsigned y = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || y > 100000)
                return cdc_fail(err, errlen, CDC_EINVAL, "not a year: %.*s", (int)n, s);
            y = y * 10 + (unsigned)(s[i] - '0');
        }
        buf_put_u64(out, y);
        return 0;
    }
    case MYT_TIMESTAMP:
    case MYT_TIMESTAMP2:
        buf_put(out, s, n);
        if (!(n >= 10 && memcmp(s, "0000-00-00", 10) == 0))
            buf_puts(out, "+00");
        return 0;
    case MYT_BIT: {
        size_t nbytes = (c->bits + 7u) / 8u;
        if (n != nbytes)
            return cdc_fail(err, errlen, CDC_EINVAL, "BIT(%u) value of %zu bytes", c->bits, n);
        put_bits(out, (const uint8_t *)s, n, c->bits);
        return 0;
    }
    case MYT_GEOMETRY:
        put_hex(out, (const uint8_t *)s, n);
        return 0;
    case MYT_STRING:
    case MYT_VARCHAR:
    case MYT_VAR_STRING:
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
        if (c->charset == MYCHARSET_BINARY || c->charset == 0)
            put_hex(out, (const uint8_t *)s, n);
        else
            buf_put(out, s, n);
        return 0;
    default: /* integers, DECIMAL, DATE, TIME, DATETIME, ENUM, SET: as printed */
        buf_put(out, s, n);
        return 0;
    }
}
