/* Iceberg partition specs: fields with a transform of a source column, their
 * JSON, and the partition values rows map to (spec "Partition Transforms").
 * Unpartitioned tables use spec 0 with no fields. */
#ifndef CDC_LAKE_ICE_SPEC_H
#define CDC_LAKE_ICE_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jsonread.h"
#include "lake/ice_schema.h"
#include "util/buf.h"

enum ice_transform {
    ICE_T_IDENTITY,
    ICE_T_YEAR,
    ICE_T_MONTH,
    ICE_T_DAY,
    ICE_T_HOUR,
    ICE_T_BUCKET,
};

struct ice_pfield {
    int32_t source_id;
    int32_t field_id; /* 1000, 1001, … */
    char *name;       /* owned */
    enum ice_transform transform;
    int32_t buckets; /* ICE_T_BUCKET */
};

struct ice_spec {
    int32_t spec_id;
    uint32_t n;
    struct ice_pfield *fields; /* owned */
};

/* A partition value: NULL, an integer (int, long, date, and every transform
 * but identity-of-string) or a string. */
struct ice_pvalue {
    bool null;
    bool is_str;
    int64_t l;
    char *s; /* owned */
};

struct ice_spec *ice_spec_new(int32_t spec_id);
void ice_spec_free(struct ice_spec *sp);
struct ice_spec *ice_spec_copy(const struct ice_spec *sp);
/* Parses a `partition_by` list such as "day(created_at), bucket(16, id),
 * region" against schema sc; field ids start at first_field_id.  0, or
 * CDC_EINVAL naming the entry. */
int ice_spec_parse(const char *text, const struct ice_schema *sc, int32_t spec_id,
                   int32_t first_field_id, struct ice_spec **out, char *err, size_t errlen);
/* Checks that every field's transform applies to its source column's type. */
int ice_spec_check(const struct ice_spec *sp, const struct ice_schema *sc, char *err,
                   size_t errlen);

/* {"spec-id":0,"fields":[…]} and the fields array alone (manifest headers). */
void ice_spec_json(struct buf *b, const struct ice_spec *sp);
void ice_spec_fields_json(struct buf *b, const struct ice_spec *sp);
int ice_spec_from_json(const struct jsonv *v, struct ice_spec **out, char *err, size_t errlen);
int32_t ice_spec_max_field_id(const struct ice_spec *sp);

/* The Avro type of a partition field's value: "int", "long" or "string". */
const char *ice_pfield_avro_type(const struct ice_pfield *pf, const struct ice_schema *sc);

/* The partition value of canonical PostgreSQL text s[0..n) of the source
 * column (s == NULL: SQL NULL).  0 or CDC_EINVAL. */
int ice_partition_value(const struct ice_pfield *pf, const struct ice_field *src, const char *s,
                        size_t n, struct ice_pvalue *out);
void ice_pvalue_fini(struct ice_pvalue *v);
bool ice_pvalue_equal(const struct ice_pvalue *a, const struct ice_pvalue *b);

/* Iceberg's bucket hash: Murmur3 x86 32-bit, seed 0. */
uint32_t ice_murmur3(const void *data, size_t n);

#endif
