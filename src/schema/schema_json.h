/* The schema history as people and programs read it: `cdc schema --json`
 * and GET /v1/schema write the same objects. */
#ifndef CDC_SCHEMA_SCHEMA_JSON_H
#define CDC_SCHEMA_SCHEMA_JSON_H

#include <stdbool.h>

#include "state/store.h"
#include "util/buf.h"

/* {"table":"public.t","version":2,"position":"0/16B5000:0","stream":0,
 *  "lsn":N,"index":N,"compatible":true|false|null,"held":false,
 *  "recorded_us":N,"key_unique":…,"columns":[{"name":…,"type":…,"key":…,
 *  "not_null":…,"has_default":…},…],"changes":[…],"summary":"…"}
 *  (changes: schema_changes_json; summary: schema_changes_text). */
void schema_version_json(struct buf *b, const struct schema_version *v);

/* Whether v belongs to table: "schema.name", or a name alone (any schema);
 * NULL or "" matches every table. */
bool schema_table_matches(const struct schema_version *v, const char *table);

#endif
