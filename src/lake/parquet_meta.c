/* Parquet PageHeader and FileMetaData in Thrift compact (see parquet_meta.h).
 * Field ids and types are parquet.thrift's; comments name each field. */
#include <string.h>

#include "lake/lake_conv.h"
#include "lake/parquet_meta.h"
#include "lake/thrift.h"
#include "util/err.h"

int parquet_leaf_init(struct parquet_leaf *leaf, const struct ice_field *f)
{
    leaf->f = f;
    leaf->type_len = 0;
    switch (f->type) {
    case ICE_BOOLEAN:
        leaf->phys = PQ_BOOLEAN;
        return 0;
    case ICE_INT:
    case ICE_DATE:
        leaf->phys = PQ_INT32;
        return 0;
    case ICE_LONG:
    case ICE_TIME:
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        leaf->phys = PQ_INT64;
        return 0;
    case ICE_FLOAT:
        leaf->phys = PQ_FLOAT;
        return 0;
    case ICE_DOUBLE:
        leaf->phys = PQ_DOUBLE;
        return 0;
    case ICE_STRING:
    case ICE_BINARY:
        leaf->phys = PQ_BYTE_ARRAY;
        return 0;
    case ICE_UUID:
    case ICE_FIXED:
        leaf->phys = PQ_FIXED_LEN_BYTE_ARRAY;
        leaf->type_len = f->type == ICE_UUID ? 16 : f->len;
        return 0;
    case ICE_DECIMAL:
        /* Iceberg App. A: precision <= 9 int32, <= 18 int64, else the
         * smallest fixed that holds it. */
        if (f->precision <= 9) {
            leaf->phys = PQ_INT32;
        } else if (f->precision <= 18) {
            leaf->phys = PQ_INT64;
        } else {
            leaf->phys = PQ_FIXED_LEN_BYTE_ARRAY;
            leaf->type_len = lake_decimal_fixed_len(f->precision);
        }
        return 0;
    }
    return CDC_ENOTSUP;
}

void parquet_meta_page_header(struct buf *b, int page_type, int32_t uncompressed,
                              int32_t compressed, int32_t num_values, int32_t encoding)
{
    struct thrift_w w;
    thrift_w_init(&w, b);
    thrift_field_i32(&w, 1, page_type);    /* type */
    thrift_field_i32(&w, 2, uncompressed); /* uncompressed_page_size */
    thrift_field_i32(&w, 3, compressed);   /* compressed_page_size */
    if (page_type == PQ_PAGE_DATA) {
        thrift_field_struct(&w, 5);          /* data_page_header */
        thrift_field_i32(&w, 1, num_values); /* num_values (nulls included) */
        thrift_field_i32(&w, 2, encoding);   /* encoding */
        thrift_field_i32(&w, 3, PQ_ENC_RLE); /* definition_level_encoding */
        thrift_field_i32(&w, 4, PQ_ENC_RLE); /* repetition_level_encoding */
        thrift_struct_end(&w);
    } else {
        thrift_field_struct(&w, 7);            /* dictionary_page_header */
        thrift_field_i32(&w, 1, num_values);   /* num_values */
        thrift_field_i32(&w, 2, PQ_ENC_PLAIN); /* encoding */
        thrift_field_bool(&w, 3, false);       /* is_sorted */
        thrift_struct_end(&w);
    }
    thrift_struct_end(&w);
}

/* ConvertedType values */
enum {
    CT_UTF8 = 0,
    CT_DECIMAL = 5,
    CT_DATE = 6,
    CT_TIME_MICROS = 8,
    CT_TIMESTAMP_MICROS = 10,
    CT_INT_32 = 17,
    CT_INT_64 = 18,
};

/* LogicalType union member with a TimeUnit of MICROS. */
static void logical_time(struct thrift_w *w, int16_t member, bool utc)
{
    thrift_field_struct(w, member); /* TIME (7) or TIMESTAMP (8) */
    thrift_field_bool(w, 1, utc);   /* isAdjustedToUTC */
    thrift_field_struct(w, 2);      /* unit: TimeUnit */
    thrift_field_struct(w, 2);      /* MICROS: MicroSeconds {} */
    thrift_struct_end(w);
    thrift_struct_end(w);
    thrift_struct_end(w);
}

static void logical_int(struct thrift_w *w, int bits)
{
    thrift_field_struct(w, 10);          /* INTEGER: IntType */
    thrift_field_i8(w, 1, (int8_t)bits); /* bitWidth (i8) */
    thrift_field_bool(w, 2, true);       /* isSigned */
    thrift_struct_end(w);
}

static void schema_element(struct thrift_w *w, const struct parquet_leaf *l)
{
    const struct ice_field *f = l->f;
    thrift_elem_struct(w);
    thrift_field_i32(w, 1, l->phys); /* type */
    if (l->phys == PQ_FIXED_LEN_BYTE_ARRAY)
        thrift_field_i32(w, 2, (int32_t)l->type_len); /* type_length */
    thrift_field_i32(w, 3, f->required ? 0 : 1);      /* repetition_type */
    thrift_field_string(w, 4, f->name);               /* name */
    int ct = -1;
    switch (f->type) {
    case ICE_INT:
        ct = CT_INT_32;
        break;
    case ICE_LONG:
        ct = CT_INT_64;
        break;
    case ICE_STRING:
        ct = CT_UTF8;
        break;
    case ICE_DECIMAL:
        ct = CT_DECIMAL;
        break;
    case ICE_DATE:
        ct = CT_DATE;
        break;
    case ICE_TIME:
        ct = CT_TIME_MICROS;
        break;
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        ct = CT_TIMESTAMP_MICROS;
        break;
    default:
        break;
    }
    if (ct >= 0)
        thrift_field_i32(w, 6, ct); /* converted_type */
    if (f->type == ICE_DECIMAL) {
        thrift_field_i32(w, 7, f->scale);     /* scale */
        thrift_field_i32(w, 8, f->precision); /* precision */
    }
    thrift_field_i32(w, 9, f->id); /* field_id */
    bool has_logical = true;
    switch (f->type) {
    case ICE_INT:
    case ICE_LONG:
    case ICE_STRING:
    case ICE_DECIMAL:
    case ICE_DATE:
    case ICE_TIME:
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
    case ICE_UUID:
        break;
    default:
        has_logical = false;
    }
    if (has_logical) {
        thrift_field_struct(w, 10); /* logicalType: LogicalType union */
        switch (f->type) {
        case ICE_INT:
            logical_int(w, 32);
            break;
        case ICE_LONG:
            logical_int(w, 64);
            break;
        case ICE_STRING:
            thrift_field_struct(w, 1); /* STRING: StringType {} */
            thrift_struct_end(w);
            break;
        case ICE_DECIMAL:
            thrift_field_struct(w, 5);            /* DECIMAL: DecimalType */
            thrift_field_i32(w, 1, f->scale);     /* scale */
            thrift_field_i32(w, 2, f->precision); /* precision */
            thrift_struct_end(w);
            break;
        case ICE_DATE:
            thrift_field_struct(w, 6); /* DATE: DateType {} */
            thrift_struct_end(w);
            break;
        case ICE_TIME:
            logical_time(w, 7, false);
            break;
        case ICE_TIMESTAMP:
            logical_time(w, 8, false);
            break;
        case ICE_TIMESTAMPTZ:
            logical_time(w, 8, true);
            break;
        case ICE_UUID:
            thrift_field_struct(w, 14); /* UUID: UUIDType {} */
            thrift_struct_end(w);
            break;
        default:
            break;
        }
        thrift_struct_end(w);
    }
    thrift_struct_end(w);
}

static void column_chunk(struct thrift_w *w, const struct parquet_leaf *l,
                         const struct parquet_chunk_meta *c, int codec)
{
    int64_t start = c->dict_page_offset >= 0 ? c->dict_page_offset : c->data_page_offset;
    thrift_elem_struct(w);
    thrift_field_i64(w, 2, start);   /* file_offset */
    thrift_field_struct(w, 3);       /* meta_data: ColumnMetaData */
    thrift_field_i32(w, 1, l->phys); /* type */
    if (c->dict) {
        thrift_field_list(w, 2, THRIFT_I32, 3); /* encodings */
        thrift_elem_i32(w, PQ_ENC_PLAIN);
        thrift_elem_i32(w, PQ_ENC_RLE);
        thrift_elem_i32(w, PQ_ENC_RLE_DICTIONARY);
    } else {
        thrift_field_list(w, 2, THRIFT_I32, 2);
        thrift_elem_i32(w, PQ_ENC_PLAIN);
        thrift_elem_i32(w, PQ_ENC_RLE);
    }
    thrift_field_list(w, 3, THRIFT_BINARY, 1); /* path_in_schema */
    thrift_elem_binary(w, l->f->name, strlen(l->f->name));
    thrift_field_i32(w, 4, codec);               /* codec */
    thrift_field_i64(w, 5, c->num_values);       /* num_values */
    thrift_field_i64(w, 6, c->uncompressed);     /* total_uncompressed_size */
    thrift_field_i64(w, 7, c->compressed);       /* total_compressed_size */
    thrift_field_i64(w, 9, c->data_page_offset); /* data_page_offset */
    if (c->dict_page_offset >= 0)
        thrift_field_i64(w, 11, c->dict_page_offset); /* dictionary_page_offset */
    thrift_field_struct(w, 12);                       /* statistics */
    thrift_field_i64(w, 3, c->null_count);            /* null_count */
    if (c->has_minmax) {
        thrift_field_binary(w, 5, c->max.p, c->max.len); /* max_value */
        thrift_field_binary(w, 6, c->min.p, c->min.len); /* min_value */
    }
    thrift_struct_end(w); /* statistics */
    thrift_struct_end(w); /* meta_data */
    thrift_struct_end(w); /* ColumnChunk */
}

void parquet_meta_footer(struct buf *b, const struct parquet_leaf *leaves, uint32_t nleaves,
                         const struct parquet_rg_meta *rgs, uint32_t nrgs, int64_t num_rows,
                         int codec, const char *schema_json)
{
    struct thrift_w w;
    thrift_w_init(&w, b);
    thrift_field_i32(&w, 1, 1);                           /* version */
    thrift_field_list(&w, 2, THRIFT_STRUCT, nleaves + 1); /* schema */
    thrift_elem_struct(&w);                               /* root */
    thrift_field_string(&w, 4, "table");                  /* name */
    thrift_field_i32(&w, 5, (int32_t)nleaves);            /* num_children */
    thrift_struct_end(&w);
    for (uint32_t i = 0; i < nleaves; i++)
        schema_element(&w, &leaves[i]);
    thrift_field_i64(&w, 3, num_rows);             /* num_rows */
    thrift_field_list(&w, 4, THRIFT_STRUCT, nrgs); /* row_groups */
    for (uint32_t r = 0; r < nrgs; r++) {
        const struct parquet_rg_meta *rg = &rgs[r];
        thrift_elem_struct(&w);
        thrift_field_list(&w, 1, THRIFT_STRUCT, nleaves); /* columns */
        for (uint32_t i = 0; i < nleaves; i++)
            column_chunk(&w, &leaves[i], &rg->cols[i], codec);
        thrift_field_i64(&w, 2, rg->total_byte_size);  /* total_byte_size */
        thrift_field_i64(&w, 3, rg->num_rows);         /* num_rows */
        thrift_field_i64(&w, 5, rg->file_offset);      /* file_offset */
        thrift_field_i64(&w, 6, rg->total_compressed); /* total_compressed_size */
        thrift_field_i16(&w, 7, (int16_t)r);           /* ordinal */
        thrift_struct_end(&w);
    }
    thrift_field_list(&w, 5, THRIFT_STRUCT, 1); /* key_value_metadata */
    thrift_elem_struct(&w);
    thrift_field_string(&w, 1, "iceberg.schema"); /* key */
    thrift_field_string(&w, 2, schema_json);      /* value */
    thrift_struct_end(&w);
    thrift_field_string(&w, 6, "cdc version 0.1.0");  /* created_by */
    thrift_field_list(&w, 7, THRIFT_STRUCT, nleaves); /* column_orders */
    for (uint32_t i = 0; i < nleaves; i++) {
        thrift_elem_struct(&w);     /* ColumnOrder union */
        thrift_field_struct(&w, 1); /* TYPE_ORDER: TypeDefinedOrder {} */
        thrift_struct_end(&w);
        thrift_struct_end(&w);
    }
    thrift_struct_end(&w);
}
