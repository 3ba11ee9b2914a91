/* Iceberg schemas: the primitive types the lakehouse writes, fields with their
 * Iceberg ids, and the schema JSON that goes into table metadata, manifests'
 * headers and the Parquet footer (`iceberg.schema`).
 *
 * Only flat schemas of primitive columns: cdc's rows are flat, and every PG
 * type without an exact Iceberg counterpart becomes a string (docs/lakehouse.md
 * has the mapping table). */
#ifndef CDC_LAKE_ICE_SCHEMA_H
#define CDC_LAKE_ICE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jsonread.h"
#include "util/buf.h"

enum ice_type {
    ICE_BOOLEAN = 1,
    ICE_INT,
    ICE_LONG,
    ICE_FLOAT,
    ICE_DOUBLE,
    ICE_DECIMAL, /* decimal(precision, scale), precision 1..38 */
    ICE_DATE,
    ICE_TIME,        /* microseconds since midnight */
    ICE_TIMESTAMP,   /* microseconds since the epoch, no zone */
    ICE_TIMESTAMPTZ, /* microseconds since the epoch, UTC */
    ICE_STRING,
    ICE_UUID,
    ICE_BINARY,
    ICE_FIXED, /* fixed[len] */
};

struct ice_field {
    int32_t id;
    char *name; /* owned */
    enum ice_type type;
    bool required;
    uint8_t precision, scale; /* ICE_DECIMAL */
    uint32_t len;             /* ICE_FIXED */
};

struct ice_schema {
    int32_t schema_id;
    uint32_t nfields;
    struct ice_field *fields; /* owned */
    uint32_t nident;
    int32_t *ident_ids; /* owned: identifier-field-ids */
};

struct ice_schema *ice_schema_new(int32_t schema_id);
void ice_schema_free(struct ice_schema *sc);
struct ice_schema *ice_schema_copy(const struct ice_schema *sc);
/* Appends a field (name copied) and returns it, for setting precision/scale. */
struct ice_field *ice_schema_add(struct ice_schema *sc, int32_t id, const char *name,
                                 enum ice_type type, bool required);
void ice_schema_add_identifier(struct ice_schema *sc, int32_t field_id);
const struct ice_field *ice_schema_find(const struct ice_schema *sc, int32_t id);
/* Index of the field with that id, or -1. */
int ice_schema_index(const struct ice_schema *sc, int32_t id);
int32_t ice_schema_max_id(const struct ice_schema *sc);

/* The Iceberg type string: "long", "decimal(10,2)", "fixed[16]". */
void ice_type_format(const struct ice_field *f, char *out, size_t len);
/* Parses a type string into f->type/precision/scale/len: 0 or CDC_EINVAL. */
int ice_type_parse(const char *s, struct ice_field *f);

/* Appends {"type":"struct","schema-id":…,"identifier-field-ids":[…],"fields":[…]}. */
void ice_schema_json(struct buf *b, const struct ice_schema *sc);
/* Reads a schema object; 0, or CDC_EINVAL with a message (nested types are
 * refused: they are never written by this library). */
int ice_schema_from_json(const struct jsonv *v, struct ice_schema **out, char *err, size_t errlen);

#endif
