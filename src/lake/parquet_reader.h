/* Parquet reader for the files src/lake writes: flat schemas of primitive
 * columns, v1 data pages (PLAIN, or RLE_DICTIONARY after one dictionary
 * page), definition levels for optional columns, UNCOMPRESSED, SNAPPY or
 * ZSTD.  Anything else (nested columns, v2 pages, other encodings and
 * codecs) is refused with a message saying what, never guessed at.
 *
 * The reader works on a whole file in memory (borrowed from the caller for
 * the reader's life) and decodes one column of one row group at a time, so
 * memory is bounded by a row group's column plus the file.  Used by table
 * scans (time travel, compaction, the sink's look-ups of unchanged values);
 * the fuzz target feeds it arbitrary bytes, so every length and offset is
 * checked and decoded data is capped (opts.max_bytes). */
#ifndef CDC_LAKE_PARQUET_READER_H
#define CDC_LAKE_PARQUET_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_schema.h"
#include "lake/parquet_meta.h"
#include "util/buf.h"

struct parquet_reader;

struct parquet_reader_opts {
    size_t max_bytes; /* decoded bytes one read may hold; 0: 1 GiB */
};

/* Reads the footer of data[0..len) (borrowed until parquet_reader_free).
 * 0, or CDC_EINVAL with a message naming what is wrong (label, e.g. the
 * file's path, starts it). */
int parquet_reader_open(struct parquet_reader **out, const void *data, size_t len,
                        const struct parquet_reader_opts *opts, const char *label, char *err,
                        size_t errlen);
void parquet_reader_free(struct parquet_reader *rd);

int64_t parquet_reader_rows(const struct parquet_reader *rd);
uint32_t parquet_reader_row_groups(const struct parquet_reader *rd);
int64_t parquet_reader_rg_rows(const struct parquet_reader *rd, uint32_t rg);
/* The file's columns as an Iceberg schema: names, field ids (0 when the file
 * has none), required flags and the types the annotations say. */
const struct ice_schema *parquet_reader_schema(const struct parquet_reader *rd);
/* The index of the column with field id `id`, or -1. */
int parquet_reader_find(const struct parquet_reader *rd, int32_t id);
/* A key of the footer's key-value metadata, or NULL (a pointer into the
 * file's bytes, not NUL-terminated: *n gets its length). */
const char *parquet_reader_kv(const struct parquet_reader *rd, const char *key, size_t *n);

/* One column of one row group, decoded: a value slot per row. */
struct parquet_column_data {
    int64_t rows;
    enum parquet_phys phys;
    uint32_t width;   /* bytes per fixed-width value (BOOLEAN: 1); 0 for BYTE_ARRAY */
    uint8_t *nulls;   /* owned: rows flags, 1 = NULL */
    uint8_t *fixed;   /* owned: rows * width bytes (zeros where NULL) */
    uint32_t *off;    /* owned, BYTE_ARRAY: rows + 1 offsets into bytes */
    struct buf bytes; /* BYTE_ARRAY values back to back */
};

/* Decodes column col of row group rg into out (which the caller finishes
 * with parquet_column_data_fini, also after a failure). */
int parquet_reader_read(struct parquet_reader *rd, uint32_t rg, uint32_t col,
                        struct parquet_column_data *out, char *err, size_t errlen);
void parquet_column_data_fini(struct parquet_column_data *d);

static inline bool parquet_data_null(const struct parquet_column_data *d, int64_t r)
{
    return d->nulls[r] != 0;
}

/* Integer value of a BOOLEAN, INT32 or INT64 slot (sign-extended). */
int64_t parquet_data_int(const struct parquet_column_data *d, int64_t r);
/* FLOAT or DOUBLE slot. */
double parquet_data_double(const struct parquet_column_data *d, int64_t r);
/* Bytes of a BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY slot. */
const uint8_t *parquet_data_bytes(const struct parquet_column_data *d, int64_t r, size_t *n);

#endif
