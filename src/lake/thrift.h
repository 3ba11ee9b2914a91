/* Thrift compact protocol: the encoding of Parquet's metadata (FileMetaData,
 * PageHeader).  The encoder appends to a caller's buffer and never fails; it
 * tracks the last field id per open struct because compact field headers carry
 * the id as a delta.  The decoder reads one struct into a generic tree, for
 * tests and fuzzing (it re-encodes to the same bytes) and for reading back the
 * footers we wrote.
 *
 * Wire rules (thrift-compact-protocol): integers are zigzag varints, a field
 * header is (delta << 4) | type when 1 <= delta <= 15, else type then the
 * zigzag i16 id; booleans in fields live in the header's type nibble; a struct
 * ends with a 0 byte; a list header is (n << 4) | elemtype for n <= 14, else
 * 0xF0 | elemtype then varint n. */
#ifndef CDC_LAKE_THRIFT_H
#define CDC_LAKE_THRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Compact type nibbles, as on the wire. */
enum thrift_type {
    THRIFT_STOP = 0,
    THRIFT_TRUE = 1, /* in a field header: a bool field whose value is true */
    THRIFT_FALSE = 2,
    THRIFT_I8 = 3,
    THRIFT_I16 = 4,
    THRIFT_I32 = 5,
    THRIFT_I64 = 6,
    THRIFT_DOUBLE = 7,
    THRIFT_BINARY = 8,
    THRIFT_LIST = 9,
    THRIFT_SET = 10,
    THRIFT_MAP = 11,
    THRIFT_STRUCT = 12,
};
#define THRIFT_BOOL THRIFT_TRUE /* the element type of a list of bools */

#define THRIFT_MAX_DEPTH 32

struct thrift_w {
    struct buf *b; /* borrowed */
    int depth;
    int16_t last[THRIFT_MAX_DEPTH]; /* last field id written, per open struct */
};

/* Starts writing a top-level struct into b (appending). */
void thrift_w_init(struct thrift_w *w, struct buf *b);

/* Fields of the current struct. */
void thrift_field_i32(struct thrift_w *w, int16_t id, int32_t v);
void thrift_field_i64(struct thrift_w *w, int16_t id, int64_t v);
void thrift_field_i16(struct thrift_w *w, int16_t id, int16_t v);
void thrift_field_i8(struct thrift_w *w, int16_t id, int8_t v);
void thrift_field_bool(struct thrift_w *w, int16_t id, bool v);
void thrift_field_double(struct thrift_w *w, int16_t id, double v);
void thrift_field_binary(struct thrift_w *w, int16_t id, const void *p, size_t n);
void thrift_field_string(struct thrift_w *w, int16_t id, const char *s);
/* Opens a struct-valued field; close it with thrift_struct_end. */
void thrift_field_struct(struct thrift_w *w, int16_t id);
/* Opens a list-valued field of n elements of elem_type; then write n elements
 * with thrift_elem_* (structs with thrift_elem_struct + thrift_struct_end). */
void thrift_field_list(struct thrift_w *w, int16_t id, enum thrift_type elem_type, uint32_t n);
void thrift_elem_i32(struct thrift_w *w, int32_t v);
void thrift_elem_i64(struct thrift_w *w, int64_t v);
void thrift_elem_binary(struct thrift_w *w, const void *p, size_t n);
void thrift_elem_struct(struct thrift_w *w);
/* Writes the stop byte of the innermost open struct (the top-level one too). */
void thrift_struct_end(struct thrift_w *w);

/* Varint helpers shared with the Parquet encoder. */
void thrift_put_uvarint(struct buf *b, uint64_t v);
static inline uint64_t thrift_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* ---- decoding ------------------------------------------------------------ */

/* A decoded value.  Structs keep their fields in wire order with ids; lists,
 * sets and maps keep their elements (a map as key, value, key, value…). */
struct thrift_node {
    uint8_t type;      /* enum thrift_type; bools are THRIFT_TRUE with v.i 0/1 */
    uint8_t elem_type; /* lists/sets: element type; maps: key type */
    uint8_t val_type;  /* maps: value type */
    int16_t id;        /* field id inside a struct, else 0 */
    int64_t i;         /* bool, i8, i16, i32, i64 */
    double d;
    const uint8_t *bin; /* borrowed: points into the decoded input */
    uint32_t len;
    struct thrift_node *kids; /* owned: struct fields, list/set/map elements */
    uint32_t nkids;
};

/* Decodes one struct from data[0..len) into *root; *used gets the bytes read.
 * 0, or CDC_EINVAL (root left empty) on malformed or truncated input or
 * nesting deeper than THRIFT_MAX_DEPTH.  root->bin pointers borrow data. */
int thrift_decode(const uint8_t *data, size_t len, struct thrift_node *root, size_t *used);
void thrift_node_fini(struct thrift_node *n);
/* The field with id in struct s, or NULL. */
const struct thrift_node *thrift_get(const struct thrift_node *s, int16_t id);
/* Re-encodes a decoded struct (canonical form: short headers where allowed). */
void thrift_encode_node(struct buf *b, const struct thrift_node *root);

#endif
