/* What the publication publishes of a captured table, read from the catalog.
 *
 * The stream carries exactly what the publication publishes: its row filter,
 * its column list, inheritance parents without their children (cdc lists
 * tables with ONLY), partitions under their partitioned table's name.  A
 * snapshot must read the same rows and columns, so snapshots ask here what
 * to read (pubrel_lookup), and the running source asks here, now and then,
 * whether the publication still publishes every captured table
 * (pubrel_unpublished). */
#ifndef CDC_SOURCE_PG_PUBREL_H
#define CDC_SOURCE_PG_PUBREL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* How to read the published rows of one captured table:
 *   SELECT <cols> FROM <from> [WHERE <filter>]
 * where from is `ONLY "s"."t"` for a table (an inheritance parent without its
 * children), `"s"."t"` for a partitioned table published through its root
 * (every partition), or, for a partitioned table whose partitions the
 * publication publishes one by one (each with its own row filter), a UNION
 * ALL of the partitions it publishes. */
struct pubrel {
    char *from;   /* owned */
    char *filter; /* owned: the row filter, or NULL */
    char **cols;  /* owned: the published columns, or NULL = every column */
    size_t ncols;
    bool no_ctid; /* from is a UNION: rows have no ctid to range over */
};

/* Fills *out for schema.name in publication pub.  CDC_EINVAL (err names the
 * table) when the publication does not publish it; CDC_ECONN when the
 * catalog cannot be read.  conn may be inside a snapshot transaction: the
 * answer is then as of that snapshot. */
int pubrel_lookup(PGconn *conn, const char *pub, const char *schema, const char *name,
                  struct pubrel *out, char *err, size_t errlen);
void pubrel_fini(struct pubrel *pr);

/* "FROM <from> [WHERE (<row filter>) AND (<pred>)]": the published rows that
 * pred (NULL: all) selects, as a heap string. */
char *pubrel_from_where(const struct pubrel *pr, const char *pred);

/* The configured tables that exist but that the configured publication does
 * not publish (neither the table nor any of its partitions): unpublished[i]
 * (when not NULL; source.ntables entries) for source.tables[i], and a heap
 * "schema.table, …" list of them in *missing (NULL when there is none).
 * Tables that no longer exist are left out.  Returns 0 or CDC_ECONN. */
int pubrel_unpublished(PGconn *conn, const struct config *cfg, bool *unpublished, char **missing,
                       char *err, size_t errlen);

/* *any = some configured table is partitioned. */
int pubrel_any_partitioned(PGconn *conn, const struct config *cfg, bool *any, char *err,
                           size_t errlen);

#endif
