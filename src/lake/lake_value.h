/* Values read back from Parquet (parquet_reader.h), as the lake layer's
 * users need them: the canonical PostgreSQL text core/valtext.h parses (so a
 * value can be written again exactly, or shown), JSON for people, a
 * normalized byte key for matching equality deletes and primary keys
 * whatever physical type a writer chose, and copying into a new file. */
#ifndef CDC_LAKE_LAKE_VALUE_H
#define CDC_LAKE_LAKE_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "lake/ice_schema.h"
#include "lake/ice_spec.h"
#include "lake/parquet_reader.h"
#include "lake/parquet_writer.h"
#include "util/buf.h"

/* Appends the text of the non-NULL value at row r of d (a column of
 * Iceberg field f): "t", "42", "-1.50", "2024-02-29", "13:45:01.5",
 * "2024-02-29 13:45:01.5" (+ "+00" for timestamptz; " BC" at the end of BC
 * dates), the uuid's 36 characters, "\x0a0b" for binary, strings as they are.
 * valtext reads every one of them back to the same value. */
void lake_value_text(const struct ice_field *f, const struct parquet_column_data *d, int64_t r,
                     struct buf *out);

/* Appends the value (or null) as JSON, in the change envelope's conventions:
 * numbers for integers and floats (NaN and infinities as strings), true or
 * false, strings for decimals and everything else, base64 for binary. */
void lake_value_json(const struct ice_field *f, const struct parquet_column_data *d, int64_t r,
                     struct buf *out);

/* Appends the normalized key form of the value (or NULL) at row r: equal
 * values of one Iceberg type give equal bytes whatever their physical type. */
void lake_value_key(const struct ice_field *f, const struct parquet_column_data *d, int64_t r,
                    struct buf *out);
/* The same from canonical text (s == NULL: NULL): 0, or CDC_EINVAL when the
 * text is not a value of f's type. */
int lake_key_from_text(const struct ice_field *f, const char *s, size_t n, struct buf *out);
/* Appends the normalized form of partition values (for keys that must
 * also match a partition). */
void lake_key_partition(const struct ice_pvalue *v, uint32_t n, struct buf *out);

/* Adds the value (or NULL) at row r of d to column col of pw, whose field
 * has f's type. */
void lake_value_add(struct parquet_writer *pw, uint32_t col, const struct ice_field *f,
                    const struct parquet_column_data *d, int64_t r);

#endif
