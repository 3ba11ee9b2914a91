/* One column chunk of the Parquet writer: the values of the open row group
 * (PLAIN form, definition levels, a dictionary while it stays small), their
 * statistics, and the encoding of the chunk into pages.  Internal to the
 * writer (parquet_writer.c), which owns one per column. */
#ifndef CDC_LAKE_PARQUET_COLUMN_H
#define CDC_LAKE_PARQUET_COLUMN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/parquet_meta.h"
#include "lake/parquet_writer.h"
#include "util/buf.h"

/* Min/max of one column over a chunk or the whole file, in the order the
 * column's type defines: signed for ints and decimals, IEEE without NaN for
 * floats, unsigned bytewise for strings, binary and uuid. */
struct pstats {
    bool has;
    int64_t imin, imax;
    double dmin, dmax;
    __int128 qmin, qmax;
    struct buf bmin, bmax;
};

enum pcol_bad { PCOL_OK = 0, PCOL_TWICE, PCOL_NULL, PCOL_KIND };

struct pcol {
    struct parquet_leaf leaf;
    bool decimal;
    uint32_t width; /* bytes per PLAIN value, 0 for BYTE_ARRAY */
    bool dict_allowed;
    /* the current row */
    bool set;
    uint8_t bad; /* enum pcol_bad: why the current row cannot be taken */
    /* the open row group */
    struct buf defs; /* one byte per row, optional columns only */
    struct buf vals; /* PLAIN values (BOOLEAN: one byte each) */
    uint32_t nvals;
    int64_t nulls, nans;
    struct pstats st;
    /* dictionary of the open chunk */
    bool dict_on;
    struct buf dict;    /* PLAIN form of the distinct values */
    uint32_t *dict_off; /* owned: offset of each entry in dict */
    uint32_t ndict, dict_cap;
    uint32_t *ht; /* owned: open addressing, entry id + 1 (0 = empty) */
    uint32_t ht_cap;
    uint32_t *ids; /* owned: dictionary id per value */
    uint32_t ids_cap;
    /* the open chunk as of the last complete row (a bad row rolls back) */
    size_t ok_defs, ok_vals;
    uint32_t ok_nvals;
    int64_t ok_nulls, ok_nans;
    /* the whole file */
    struct pstats fst;
    int64_t fvalues, fnulls, fnans, fsize;
};

/* Statistics updates (see struct pstats for the orders). */
void parquet_stats_int(struct pstats *s, int64_t v);
void parquet_stats_dbl(struct pstats *s, double v);
void parquet_stats_dec(struct pstats *s, __int128 v);
void parquet_stats_bytes(struct pstats *s, const void *p, size_t n);
/* Folds chunk statistics s into f. */
void parquet_stats_merge(const struct pcol *c, struct pstats *f, const struct pstats *s);
/* PLAIN bytes of the min (is_min) or max for the Parquet footer. */
void parquet_stats_plain(const struct pcol *c, const struct pstats *s, bool is_min, struct buf *b);
/* Iceberg single-value serialization of the bound (spec App. D). */
void parquet_stats_iceberg(const struct pcol *c, const struct pstats *s, bool is_min,
                           struct buf *b);

/* Appends one PLAIN value (BYTE_ARRAY: the bytes without the length). */
void parquet_column_push(struct pcol *c, const void *p, size_t n, size_t dict_max);

/* Takes the current row's value into the chunk (statistics included); the
 * next row starts after it. */
void parquet_column_commit_row(struct pcol *c);

/* Where a chunk's pages go. */
struct parquet_page_out {
    enum parquet_codec codec;
    int level;
    size_t page_bytes;
    int (*write)(void *arg, const void *p, size_t n, char *err, size_t errlen);
    void *arg;
    const int64_t *pos;                     /* the file offset of the next byte written */
    struct buf *page, *comp, *hdr, *levels; /* scratch */
};

/* Writes the open chunk of `rows` rows as pages and fills m; then empties the
 * chunk (its statistics folded into the file's).  0 or the write error. */
int parquet_column_write(struct pcol *c, const struct parquet_page_out *o, int64_t rows,
                         struct parquet_chunk_meta *m, char *err, size_t errlen);
void parquet_column_fini(struct pcol *c);

#endif
