/* cdc's canonical value texts -> machine values.
 *
 * Events carry every value as the text PostgreSQL's output functions print
 * (DateStyle ISO, any TimeZone offset); other sources write their values in
 * the same forms.  These functions parse that text into machine values, for
 * the sinks that store values rather than texts (the lakehouse's Parquet
 * writer, the PostgreSQL mirror's binary COPY).  Each returns 0, or
 * CDC_EINVAL when the text is not a value of that type (the caller names the
 * table and column in its message).  Safe on arbitrary bytes; s need not be
 * NUL-terminated. */
#ifndef CDC_CORE_VALTEXT_H
#define CDC_CORE_VALTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

int valtext_bool(const char *s, size_t n, bool *out);   /* "t"/"f" (also true/false) */
int valtext_i32(const char *s, size_t n, int32_t *out); /* decimal, range-checked */
int valtext_i64(const char *s, size_t n, int64_t *out);
int valtext_f32(const char *s, size_t n, float *out); /* also NaN, Infinity, -Infinity */
int valtext_f64(const char *s, size_t n, double *out);
/* "2024-02-29" (or "… BC") -> days since 1970-01-01. */
int valtext_date(const char *s, size_t n, int32_t *days);
/* "13:45:01.123456" -> microseconds since midnight ("24:00:00" allowed). */
int valtext_time(const char *s, size_t n, int64_t *micros);
/* "2024-02-29 13:45:01.5" (timestamp) or with an offset "+05:30" / "-08" /
 * "+00:00:00" (timestamptz, converted to UTC) -> microseconds since the epoch.
 * A timestamp without offset is taken as is; "infinity" is refused. */
int valtext_timestamp(const char *s, size_t n, int64_t *micros);
/* Numeric text ("-12.50", "1e3" refused) -> the unscaled integer for `scale`
 * digits after the point, which must fit `precision` digits.  Refuses NaN and
 * values with more fractional digits than scale (PG never prints them for a
 * numeric(p,s) column). */
int valtext_decimal(const char *s, size_t n, int precision, int scale, __int128 *unscaled);
/* "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" -> 16 bytes (also without dashes,
 * or braced, as PG accepts). */
int valtext_uuid(const char *s, size_t n, uint8_t out[16]);
/* "\x0a0b" -> bytes appended to out. */
int valtext_bytea(const char *s, size_t n, struct buf *out);

/* The date of a day number (days since 1970-01-01): year (0 is 1 BC, -1 is
 * 2 BC), month 1-12, day 1-31, proleptic Gregorian. */
void valtext_civil(int64_t days, int64_t *y, int *m, int *d);

/* a / b rounded toward minus infinity (b > 0 or b < 0, not 0). */
static inline int64_t valtext_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* a - valtext_floor_div(a, b) * b, without the product (which overflows for
 * an a near INT64_MIN). */
static inline int64_t valtext_floor_mod(int64_t a, int64_t b)
{
    int64_t m = a % b;
    return m != 0 && (m < 0) != (b < 0) ? m + b : m;
}

#endif
