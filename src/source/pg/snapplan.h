/* Snapshot planning: how a table's published rows are split into chunks,
 * each a SQL predicate (on the key, or on page ranges of ctid for tables
 * without a unique key). */
#ifndef CDC_SOURCE_PG_SNAPPLAN_H
#define CDC_SOURCE_PG_SNAPPLAN_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/event.h"
#include "source/pg/pubrel.h"
#include "util/buf.h"

/* Appends to plan the chunks of table qname (shape tab, read as pub says),
 * one predicate a line, of about chunk_rows rows each; *estimate = rows
 * expected.  Runs inside the snapshot transaction, so the boundaries
 * describe the rows it will read. */
int snapplan_table(PGconn *conn, const char *qname, const struct pubrel *pub,
                   const struct cdc_table *tab, int64_t chunk_rows, struct buf *plan,
                   uint64_t *estimate, char *err, size_t errlen);

/* A string literal (E'…', a malloc'd string) of s[0..len) on one line: a
 * predicate is a line of the plan, and a key's text may hold newlines. */
char *snapplan_literal(const char *s, size_t len);

#endif
