/* Parquet writer: one file of flat Iceberg rows, fed column by column.
 *
 * Rows are added value by value (parquet_add_* for each column of the row, in
 * any order, then parquet_end_row).  Values accumulate per column until the
 * row group reaches opts.row_group_bytes; then each column chunk is written
 * as an optional dictionary page and v1 data pages (PLAIN, or RLE_DICTIONARY
 * when the dictionary is smaller; definition levels as RLE for optional
 * columns), each page compressed with the file's codec.  The footer carries
 * statistics with TypeDefinedOrder column orders, field ids, LogicalType and
 * ConvertedType annotations and the Iceberg schema under `iceberg.schema`.
 *
 * Bytes leave through the caller's write callback in file order; memory is
 * bounded by one row group plus its largest compressed page.  Not thread-safe:
 * one writer per thread. */
#ifndef CDC_LAKE_PARQUET_WRITER_H
#define CDC_LAKE_PARQUET_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_schema.h"
#include "util/buf.h"

/* Codec numbers as parquet.thrift's CompressionCodec. */
enum parquet_codec {
    PARQUET_UNCOMPRESSED = 0,
    PARQUET_SNAPPY = 1,
    PARQUET_ZSTD = 6,
};

struct parquet_opts {
    enum parquet_codec codec;
    int zstd_level;         /* 0: 3 */
    size_t row_group_bytes; /* 0: 128 MiB of accumulated values */
    size_t page_bytes;      /* 0: 1 MiB of values per data page */
    size_t dict_max_bytes;  /* 0: 1 MiB; a chunk whose dictionary outgrows it is PLAIN */
    bool no_dictionary;
    const char *label; /* borrowed: names the table in error messages; may be NULL */
};

/* Receives the file's bytes in order; returns 0 or a negative CDC_E* with err. */
typedef int (*parquet_write_fn)(void *arg, const void *data, size_t n, char *err, size_t errlen);

/* Per-column figures Iceberg's manifests carry (data_file metrics). */
struct parquet_col_metrics {
    int32_t field_id;
    int64_t values; /* including nulls */
    int64_t nulls;
    int64_t nans; /* float/double only */
    int64_t size; /* compressed bytes of the column's chunks, page headers included */
    bool has_bounds;
    struct buf lower, upper; /* Iceberg single-value serialization */
};

struct parquet_file_info {
    int64_t rows;
    int64_t size; /* file bytes */
    uint32_t ncols;
    struct parquet_col_metrics *cols; /* owned, ncols */
    uint32_t nrow_groups;
    int64_t *row_group_offsets; /* owned: split offsets */
};

struct parquet_writer;

/* New writer for rows of sc (copied).  Writes the leading magic through fn.
 * 0, or a negative CDC_E* (e.g. a type the writer cannot store). */
int parquet_writer_new(struct parquet_writer **out, const struct ice_schema *sc,
                       const struct parquet_opts *opts, parquet_write_fn fn, void *arg, char *err,
                       size_t errlen);
void parquet_writer_free(struct parquet_writer *pw);

/* Values of the current row; col is the index of the field in the schema.
 * The physical kind must match the column's type (checked by parquet_end_row:
 * a mismatch is a programming error reported as CDC_EINVAL). */
void parquet_add_null(struct parquet_writer *pw, uint32_t col);
void parquet_add_bool(struct parquet_writer *pw, uint32_t col, bool v);
void parquet_add_i32(struct parquet_writer *pw, uint32_t col, int32_t v); /* int, date */
void parquet_add_i64(struct parquet_writer *pw, uint32_t col, int64_t v); /* long, time, ts */
void parquet_add_f32(struct parquet_writer *pw, uint32_t col, float v);
void parquet_add_f64(struct parquet_writer *pw, uint32_t col, double v);
/* string, binary, fixed, uuid (16 bytes, big-endian as printed) */
void parquet_add_bytes(struct parquet_writer *pw, uint32_t col, const void *p, size_t n);
void parquet_add_decimal(struct parquet_writer *pw, uint32_t col, __int128 unscaled);
/* Converts canonical PostgreSQL text to the column's type and adds it.
 * CDC_EINVAL with "table T, column C: …" when the text is not such a value. */
int parquet_add_text(struct parquet_writer *pw, uint32_t col, const char *s, size_t n, char *err,
                     size_t errlen);
/* Ends the row: every column must have exactly one value, required ones not
 * NULL.  May write a row group.  On error the row is discarded. */
int parquet_end_row(struct parquet_writer *pw, char *err, size_t errlen);

/* Rows so far and an estimate of the file size if finished now. */
int64_t parquet_writer_rows(const struct parquet_writer *pw);
int64_t parquet_writer_bytes(const struct parquet_writer *pw);

/* Writes the last row group and the footer; fills info (free with
 * parquet_file_info_fini).  The writer is spent afterwards: free it. */
int parquet_writer_finish(struct parquet_writer *pw, struct parquet_file_info *info, char *err,
                          size_t errlen);
void parquet_file_info_fini(struct parquet_file_info *info);

/* A write callback appending to a struct buf (arg). */
int parquet_write_to_buf(void *arg, const void *data, size_t n, char *err, size_t errlen);

#endif
