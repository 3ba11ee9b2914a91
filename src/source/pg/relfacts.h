/* Catalog facts about a captured table that pgoutput's Relation message does
 * not carry and a mirror needs to follow schema changes: each column's number
 * (attnum, stable across renames), the value rows older than a column get
 * (attmissingval, for a column added with a non-volatile default), whether a
 * column's default is volatile (adding it rewrote the table), and whether the
 * primary key used as the key is DEFERRABLE; and which columns are NOT NULL
 * (the schema history classifies an added column by it). */
#ifndef CDC_SOURCE_PG_RELFACTS_H
#define CDC_SOURCE_PG_RELFACTS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/event.h"

/* Fills cols[].attnum, .missing, .has_default, .volatile_default, .not_null and
 * key_deferrable of tab
 * (a shape being built, key columns and key_unique already set) from the
 * source's current catalog, matching columns by name.  A column the catalog
 * no longer has under that name (renamed or dropped since) keeps attnum 0.
 * Returns 0, or CDC_ECONN with err filled when the query failed. */
int relfacts_lookup(PGconn *conn, struct cdc_table *tab, char *err, size_t errlen);

#endif
