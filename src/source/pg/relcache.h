/* The relation cache: pgoutput Relation messages turned into cdc_table
 * versions, keyed by relation OID.
 *
 * A Relation message names columns, type OIDs and the replica-identity key.
 * The cache adds what a mirror needs and the message lacks: SQL type names
 * (format_type) and, for REPLICA IDENTITY FULL/NOTHING, the primary key, both
 * read over the source's SQL connection.  It also knows which relations the
 * pipeline captures, so changes of other tables (a FOR ALL TABLES
 * publication) are dropped. */
#ifndef CDC_SOURCE_PG_RELCACHE_H
#define CDC_SOURCE_PG_RELCACHE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "source/pg/pgoutput.h"

struct relcache;

struct relcache *relcache_new(const struct config *cfg);
void relcache_free(struct relcache *rc);

/* Makes a new table version current for the message's relation.  conn is the
 * SQL connection used for catalog lookups (borrowed).  Returns 0, or
 * CDC_ECONN when the lookup failed (err says why). */
int relcache_update(struct relcache *rc, PGconn *conn, const struct pgo_msg *m, char *err,
                    size_t errlen);

/* The current version for relid (borrowed; take a reference to keep it), or
 * NULL if no Relation message described it yet.  *captured says whether the
 * pipeline's tables include it. */
struct cdc_table *relcache_get(struct relcache *rc, uint32_t relid, bool *captured);

/* Describes schema.name from the catalog the way a pgoutput Relation message
 * would (same columns: not dropped, not generated; same key), for rows read
 * before any message described the table (snapshots).  conn may be inside a
 * snapshot transaction.  *out gets a new table with one reference. */
int relcache_describe(struct relcache *rc, PGconn *conn, const char *schema, const char *name,
                      struct cdc_table **out, char *err, size_t errlen);

/* Type class of a built-in type OID; `category` is pg_type.typcategory when
 * known (0 otherwise) and decides for other types. */
enum cdc_type pgtype_class(uint32_t oid, char category);

#endif
