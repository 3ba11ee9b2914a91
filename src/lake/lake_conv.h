/* Iceberg's side of cdc's values: the decimal byte forms Parquet and
 * Iceberg store, and the Iceberg type a source column maps to.  The texts
 * themselves are parsed by core/valtext.h. */
#ifndef CDC_LAKE_LAKE_CONV_H
#define CDC_LAKE_LAKE_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "lake/ice_schema.h"

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
