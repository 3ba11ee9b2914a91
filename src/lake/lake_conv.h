/* From cdc's canonical PostgreSQL text values to Iceberg/Parquet values.
 *
 * Events carry every value as the text PostgreSQL's output functions print
 * (DateStyle ISO, any TimeZone offset).  These functions parse that text into
 * the physical values the Parquet writer stores.  Each returns 0, or
 * CDC_EINVAL when the text is not a value of that type (the caller names the
 * table and column in its message).  Safe on arbitrary bytes; s need not be
 * NUL-terminated. */
#ifndef CDC_LAKE_LAKE_CONV_H
#define CDC_LAKE_LAKE_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "lake/ice_schema.h"
#include "util/buf.h"

int lake_conv_bool(const char *s, size_t n, bool *out);   /* "t"/"f" (also true/false) */
int lake_conv_i32(const char *s, size_t n, int32_t *out); /* decimal, range-checked */
int lake_conv_i64(const char *s, size_t n, int64_t *out);
int lake_conv_f32(const char *s, size_t n, float *out); /* also NaN, Infinity, -Infinity */
int lake_conv_f64(const char *s, size_t n, double *out);
/* "2024-02-29" (or "… BC") -> days since 1970-01-01. */
int lake_conv_date(const char *s, size_t n, int32_t *days);
/* "13:45:01.123456" -> microseconds since midnight ("24:00:00" allowed). */
int lake_conv_time(const char *s, size_t n, int64_t *micros);
/* "2024-02-29 13:45:01.5" (timestamp) or with an offset "+05:30" / "-08" /
 * "+00:00:00" (timestamptz, converted to UTC) -> microseconds since the epoch.
 * A timestamp without offset is taken as is; "infinity" is refused. */
int lake_conv_timestamp(const char *s, size_t n, int64_t *micros);
/* Numeric text ("-12.50", "1e3" refused) -> the unscaled integer for `scale`
 * digits after the point, which must fit `precision` digits.  Refuses NaN and
 * values with more fractional digits than scale (PG never prints them for a
 * numeric(p,s) column). */
int lake_conv_decimal(const char *s, size_t n, int precision, int scale, __int128 *unscaled);
/* "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" -> 16 bytes (also without dashes,
 * or braced, as PG accepts). */
int lake_conv_uuid(const char *s, size_t n, uint8_t out[16]);
/* "\x0a0b" -> bytes appended to out. */
int lake_conv_bytea(const char *s, size_t n, struct buf *out);

/* Minimal two's-complement big-endian bytes of v (1..16): the Iceberg
 * single-value form of a decimal.  Returns the length. */
size_t lake_decimal_min_bytes(__int128 v, uint8_t out[16]);
/* v as exactly len big-endian two's-complement bytes (sign-extended). */
void lake_decimal_be(__int128 v, uint8_t *out, size_t len);
/* Bytes a FIXED_LEN_BYTE_ARRAY needs to hold any decimal of that precision. */
uint32_t lake_decimal_fixed_len(int precision);

/* The Iceberg type a source column maps to (the table in docs/lakehouse.md):
 * sets f->type and, for numeric(p,s), precision/scale. */
void lake_type_for_column(const struct cdc_column *col, struct ice_field *f);
/* The same for a column of a source other than PostgreSQL (whose type ids
 * are not PostgreSQL's), by its type class alone: integers long, floats
 * double, booleans, dates, timestamps, binaries, uuids; the rest string. */
void lake_type_for_class(const struct cdc_column *col, struct ice_field *f);

#endif
