/* The relation cache: pgoutput Relation messages turned into cdc_table
 * versions, keyed by relation OID.
 *
 * A Relation message names columns, type OIDs and the replica-identity key.
 * The cache adds what a mirror needs and the message lacks: SQL type names
 * (format_type) and, for REPLICA IDENTITY FULL/NOTHING, the primary key, both
 * read over the source's SQL connection.  It also knows which relations the
 * pipeline captures, so changes of other tables (a FOR ALL TABLES
 * publication) are dropped, and maps partitions published under their own
 * names to the captured partitioned table. */
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

/* With a publication that does not publish partitions through their root
 * (publish_via_partition_root = false), a partition's changes arrive under
 * the partition's name; when on, the cache captures them under the name of
 * the captured partitioned table they belong to (found in the catalog). */
void relcache_map_partitions(struct relcache *rc, bool on);

/* Why changes of relid cannot be placed (a partition that no longer exists,
 * under relcache_map_partitions), or NULL.  Such changes must stop the
 * pipeline: they may belong to a captured table. */
const char *relcache_problem(struct relcache *rc, uint64_t relid);

/* The current version for relid (borrowed; take a reference to keep it), or
 * NULL if no Relation message described it yet.  *captured says whether the
 * pipeline's tables include it. */
struct cdc_table *relcache_get(struct relcache *rc, uint64_t relid, bool *captured);

/* Describes schema.name from the catalog the way a pgoutput Relation message
 * would (same columns: not dropped, not generated, and when only_cols is not
 * NULL only those the publication's column list names; same key), for rows
 * read before any message described the table (snapshots).  conn may be
 * inside a snapshot transaction.  *out gets a new table with one reference. */
int relcache_describe(struct relcache *rc, PGconn *conn, const char *schema, const char *name,
                      char *const *only_cols, size_t n_only, struct cdc_table **out, char *err,
                      size_t errlen);

/* Type class of a built-in type OID; `category` is pg_type.typcategory when
 * known (0 otherwise) and decides for other types. */
enum cdc_type pgtype_class(uint32_t oid, char category);

#endif
