/* Iceberg v2 table metadata (spec "Table Metadata"): the JSON document a
 * catalog points at, with schemas, partition specs, snapshots and their
 * logs.  Parsed into a struct the table layer edits to make the next version,
 * then written out whole.  Sort orders other than the unsorted order 0,
 * statistics files and fields this library does not know are not kept. */
#ifndef CDC_LAKE_ICE_META_H
#define CDC_LAKE_ICE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jsonread.h"
#include "lake/ice_schema.h"
#include "lake/ice_spec.h"
#include "util/buf.h"

struct ice_kv {
    char *key, *value; /* owned */
};

struct ice_snapshot {
    int64_t id;
    int64_t parent_id; /* -1: none */
    int64_t seq;
    int64_t ts_ms;
    int32_t schema_id;
    char *manifest_list; /* owned */
    size_t nsummary;
    struct ice_kv *summary; /* owned: "operation" first */
};

struct ice_ref {
    char *name; /* owned: "main", … */
    int64_t snapshot_id;
    bool tag;
    int64_t max_ref_age_ms; /* -1: not set */
};

struct ice_log_entry {
    int64_t ts_ms;
    int64_t snapshot_id; /* snapshot-log */
    char *file;          /* owned: metadata-log */
};

struct ice_meta {
    char table_uuid[40];
    char *location; /* owned */
    int64_t last_seq;
    int64_t last_updated_ms;
    int32_t last_column_id;
    size_t nschemas;
    struct ice_schema **schemas; /* owned */
    int32_t current_schema_id;
    size_t nspecs;
    struct ice_spec **specs; /* owned */
    int32_t default_spec_id;
    int32_t last_partition_id;
    size_t nprops;
    struct ice_kv *props;        /* owned */
    int64_t current_snapshot_id; /* -1: none */
    size_t nsnapshots;
    struct ice_snapshot *snapshots; /* owned, oldest first */
    size_t nrefs;
    struct ice_ref *refs; /* owned */
    size_t nsnaplog, nmetalog;
    struct ice_log_entry *snaplog, *metalog; /* owned */
};

/* New table metadata for a table at location with one schema and spec
 * (copied), a fresh table uuid and no snapshot. */
struct ice_meta *ice_meta_new(const char *location, const struct ice_schema *sc,
                              const struct ice_spec *sp, int64_t now_ms);
void ice_meta_free(struct ice_meta *m);
struct ice_meta *ice_meta_copy(const struct ice_meta *m);

void ice_meta_json(struct buf *b, const struct ice_meta *m);
/* One snapshot object as in "snapshots" (also a REST add-snapshot update). */
void ice_snapshot_json(struct buf *b, const struct ice_snapshot *s);
/* Parses a metadata document: 0, or CDC_EINVAL with a message naming the
 * field. */
int ice_meta_parse(const char *json, size_t len, struct ice_meta **out, char *err, size_t errlen);

/* The same from an already parsed document (a REST catalog's answer). */
int ice_meta_from_json(const struct jsonv *doc, struct ice_meta **out, char *err, size_t errlen);

const struct ice_schema *ice_meta_schema(const struct ice_meta *m); /* current */
const struct ice_spec *ice_meta_spec(const struct ice_meta *m, int32_t spec_id);
const struct ice_snapshot *ice_meta_snapshot(const struct ice_meta *m, int64_t id);
const struct ice_snapshot *ice_meta_current(const struct ice_meta *m); /* or NULL */
/* A summary value of a snapshot, or NULL. */
const char *ice_snapshot_get(const struct ice_snapshot *s, const char *key);
/* Sets key in a kv array (adding or replacing). */
void ice_kv_set(struct ice_kv **kv, size_t *n, const char *key, const char *value);
void ice_kvs_free(struct ice_kv *kv, size_t n);
/* Sets the "main" branch (and current-snapshot-id) to snapshot id. */
void ice_meta_set_main(struct ice_meta *m, int64_t id);

/* A random snapshot id in 1 .. 2^53-1 (JS readers parse ids as doubles). */
int64_t ice_new_snapshot_id(void);
/* A random version 4 UUID, 36 characters plus NUL. */
void ice_uuid(char out[37]);
/* An exact integer from a JSON number (its text): false if not one. */
bool ice_json_i64(const struct jsonv *v, int64_t *out);

#endif
