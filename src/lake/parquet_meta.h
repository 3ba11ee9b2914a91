/* Parquet metadata structures as the writer fills them, and their Thrift
 * compact serialization (parquet.thrift: PageHeader, FileMetaData and what
 * they hold).  Field numbers in the .c follow the IDL one for one. */
#ifndef CDC_LAKE_PARQUET_META_H
#define CDC_LAKE_PARQUET_META_H

#include <stdbool.h>
#include <stdint.h>

#include "lake/ice_schema.h"
#include "util/buf.h"

/* parquet.thrift Type */
enum parquet_phys {
    PQ_BOOLEAN = 0,
    PQ_INT32 = 1,
    PQ_INT64 = 2,
    PQ_FLOAT = 4,
    PQ_DOUBLE = 5,
    PQ_BYTE_ARRAY = 6,
    PQ_FIXED_LEN_BYTE_ARRAY = 7,
};

/* parquet.thrift Encoding */
enum { PQ_ENC_PLAIN = 0, PQ_ENC_RLE = 3, PQ_ENC_RLE_DICTIONARY = 8 };
/* parquet.thrift PageType */
enum { PQ_PAGE_DATA = 0, PQ_PAGE_DICTIONARY = 2 };

/* The physical layout of one Iceberg column. */
struct parquet_leaf {
    const struct ice_field *f; /* borrowed from the writer's schema copy */
    enum parquet_phys phys;
    uint32_t type_len; /* FIXED_LEN_BYTE_ARRAY */
};

/* Chooses the physical type for an Iceberg field: 0 or CDC_ENOTSUP. */
int parquet_leaf_init(struct parquet_leaf *leaf, const struct ice_field *f);

struct parquet_chunk_meta {
    int64_t num_values;               /* rows, nulls included */
    int64_t uncompressed, compressed; /* page headers included */
    int64_t data_page_offset;
    int64_t dict_page_offset; /* -1: none */
    bool dict;
    int64_t null_count;
    bool has_minmax;
    struct buf min, max; /* PLAIN bytes of the statistics */
};

struct parquet_rg_meta {
    int64_t num_rows;
    int64_t total_byte_size; /* uncompressed */
    int64_t total_compressed;
    int64_t file_offset;
    struct parquet_chunk_meta *cols; /* owned, one per leaf */
};

/* Appends a PageHeader: a v1 data page (PQ_PAGE_DATA, values encoded with
 * `encoding`, levels RLE) or a dictionary page (PQ_PAGE_DICTIONARY, PLAIN). */
void parquet_meta_page_header(struct buf *b, int page_type, int32_t uncompressed,
                              int32_t compressed, int32_t num_values, int32_t encoding);

/* Appends the whole FileMetaData struct. */
void parquet_meta_footer(struct buf *b, const struct parquet_leaf *leaves, uint32_t nleaves,
                         const struct parquet_rg_meta *rgs, uint32_t nrgs, int64_t num_rows,
                         int codec, const char *schema_json);

#endif
