/* Comparing two shapes of one table: whether they are the same version, and
 * if not, what changed and whether a consumer of the old shape can read the
 * new one.
 *
 * Source-neutral: columns are compared by name, SQL type name (with its
 * size, e.g. "character varying(20)", "varchar(20)"), key flag and, to tell
 * a rename from a drop and an add, the source's column number (attnum) when
 * both shapes know it, else the column's place.
 *
 * Compatible: a column added that is nullable or has a default; a type
 * widened within its family (int2 < int4 < int8, and to numeric; float4 <
 * float8; varchar(n) to a longer varchar, unbounded varchar or text;
 * numeric(p,s) to one holding every value of it; the same for binary
 * strings).  Incompatible: a column dropped or renamed, a type narrowed or
 * changed to another family, a NOT NULL column added without a default, a
 * key changed. */
#ifndef CDC_SCHEMA_SCHEMA_DIFF_H
#define CDC_SCHEMA_SCHEMA_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "util/buf.h"

enum schema_change_kind {
    SCHEMA_ADDED,
    SCHEMA_DROPPED,
    SCHEMA_RENAMED,
    SCHEMA_WIDENED,
    SCHEMA_NARROWED,
    SCHEMA_RETYPED,
    SCHEMA_KEY_CHANGED,
};

#define SCHEMA_NAME_MAX 256

/* One difference.  column is the column's name in the old shape (its new
 * name for SCHEMA_ADDED; the key's columns for SCHEMA_KEY_CHANGED). */
struct schema_change {
    enum schema_change_kind kind;
    bool compatible;
    char column[SCHEMA_NAME_MAX];
    char old_val[SCHEMA_NAME_MAX]; /* old type, old key (added: "") */
    char new_val[SCHEMA_NAME_MAX]; /* new type, new name (renamed), new key (dropped: "") */
};

/* "added", "dropped", "renamed", "widened", "narrowed", "retyped", "key_changed". */
const char *schema_change_kind_name(enum schema_change_kind kind);

/* Whether a and b are the same version: the same columns in the same order
 * (name, type name, key flag) and the same key_unique.  What the shapes say
 * beyond that (attnum, nullability, defaults) does not make a new version. */
bool schema_same_shape(const struct cdc_table *a, const struct cdc_table *b);

/* The differences from old to new (heap array, *n entries; NULL when none).
 * Returns whether every one is compatible. */
bool schema_diff(const struct cdc_table *old_tab, const struct cdc_table *new_tab,
                 struct schema_change **out, size_t *n);

/* Compares two type names: 1 when new widens old (every old value fits),
 * -1 when it narrows it within the same family, 0 when they are the same,
 * 2 when the family changes. */
int schema_type_cmp(const char *old_type, const char *new_type);

/* The changes as a JSON array:
 * [{"column":"c","change":"widened","from":"integer","to":"bigint","compatible":true},…]. */
void schema_changes_json(struct buf *b, const struct schema_change *ch, size_t n);
/* One line for logs and errors: "column c widened integer -> bigint; …". */
void schema_changes_text(struct buf *b, const struct schema_change *ch, size_t n);

#endif
