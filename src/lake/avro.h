/* Avro binary encoding and object container files (Avro 1.11 spec), for
 * Iceberg's manifests and manifest lists.
 *
 * Writing is direct: callers encode each record field by field with
 * avro_put_* (the field order is their schema's) and frame the result with
 * avro_ocf_header / avro_ocf_block.  The header keeps the schema JSON exactly
 * as given (with Iceberg's field-id attributes) and always carries
 * `avro.codec` ("null": the JS readers the tests use cannot all inflate).
 *
 * Reading is generic: the writer's schema from the header drives a decoder
 * into a tree of values, which tests, fuzzing and the table layer use to read
 * manifests back (by field name, so files from other writers with more or
 * fewer optional fields read too). */
#ifndef CDC_LAKE_AVRO_H
#define CDC_LAKE_AVRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* ---- encoding ------------------------------------------------------------ */

void avro_put_long(struct buf *b, int64_t v); /* int and long: zigzag varint */
void avro_put_bool(struct buf *b, bool v);
void avro_put_float(struct buf *b, float v);
void avro_put_double(struct buf *b, double v);
void avro_put_bytes(struct buf *b, const void *p, size_t n); /* bytes and string */
void avro_put_string(struct buf *b, const char *s);

struct avro_kv {
    const char *key;
    const char *value; /* NUL-terminated */
};

/* Appends the container header: magic "Obj\1", the metadata map (avro.schema,
 * avro.codec = "null", then meta[0..n)), and the 16-byte sync marker. */
void avro_ocf_header(struct buf *out, const char *schema_json, const struct avro_kv *meta, size_t n,
                     const uint8_t sync[16]);
/* Appends one block of `count` records already encoded in data[0..len). */
void avro_ocf_block(struct buf *out, const void *data, size_t len, int64_t count,
                    const uint8_t sync[16]);

/* ---- schemas and decoding -------------------------------------------------- */

enum avro_kind {
    AVRO_NULL,
    AVRO_BOOLEAN,
    AVRO_INT,
    AVRO_LONG,
    AVRO_FLOAT,
    AVRO_DOUBLE,
    AVRO_BYTES,
    AVRO_STRING,
    AVRO_RECORD,
    AVRO_ENUM,
    AVRO_ARRAY,
    AVRO_MAP,
    AVRO_UNION,
    AVRO_FIXED,
};

struct avro_schema {
    enum avro_kind kind;
    char *name;                       /* owned: records, enums, fixed */
    size_t size;                      /* fixed: bytes; enum: symbols */
    struct avro_schema **kids;        /* owned (unless `ref`): record fields, union branches,
                                         array items / map values (kids[0]) */
    char **field_names;               /* owned: record fields */
    int32_t *field_ids;               /* owned: record fields' "field-id" (-1 if absent) */
    size_t n;                         /* kids */
    const struct avro_schema *target; /* non-NULL: a reference to this named type */
};

/* Parses a schema JSON document: 0, or CDC_EINVAL with a message. */
int avro_schema_parse(const char *json, size_t len, struct avro_schema **out, char *err,
                      size_t errlen);
void avro_schema_free(struct avro_schema *s);

struct avro_value {
    const struct avro_schema *schema; /* borrowed */
    int64_t l;                        /* boolean, int, long, enum index, union branch */
    double d;                         /* float, double */
    uint8_t *p;                       /* owned: bytes, string, fixed */
    size_t len;
    struct avro_value *items; /* owned: record fields, array items, map values,
                                 the union's value (items[0]) */
    char **keys;              /* owned: map keys */
    size_t n;
};

/* Decodes one datum of schema s at *p (advanced).  0 or CDC_EINVAL. */
int avro_decode(const struct avro_schema *s, const uint8_t **p, const uint8_t *end,
                struct avro_value *v);
/* Encodes a decoded datum again (the inverse of avro_decode). */
void avro_encode(struct buf *b, const struct avro_value *v);
void avro_value_fini(struct avro_value *v);

/* Record field by name (unions unwrapped: NULL when the field is absent or
 * null); the string/number accessors return dflt in those cases. */
const struct avro_value *avro_get(const struct avro_value *rec, const char *field);
int64_t avro_get_long(const struct avro_value *rec, const char *field, int64_t dflt);
/* A string field as a fresh heap string, or NULL. */
char *avro_get_string(const struct avro_value *rec, const char *field);

struct avro_ocf {
    struct avro_schema *schema; /* owned */
    char *schema_json;          /* owned */
    size_t nmeta;
    char **keys, **values; /* owned: the header's metadata (values NUL-terminated) */
    uint8_t sync[16];
    size_t nrecords;
    struct avro_value *records; /* owned */
    size_t nblocks;
};

/* Reads a whole container file (codecs "null" and "deflate").  0, or
 * CDC_EINVAL with a message naming what is wrong. */
int avro_ocf_read(const uint8_t *data, size_t len, struct avro_ocf *f, char *err, size_t errlen);
void avro_ocf_fini(struct avro_ocf *f);
/* The header's value for key, or NULL. */
const char *avro_ocf_meta(const struct avro_ocf *f, const char *key);

#endif
