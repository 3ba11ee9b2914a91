/* The schema history: every captured table's shape, versioned.
 *
 * Each shape a table shows (a struct cdc_table: columns, types, key) is a
 * version, numbered 1, 2, … per table and kept in the state store with the
 * position of the first event that had it.  A shape seen again (a restart,
 * a reconnect, a replay re-announcing it) is the version it already is, so
 * versions survive restarts; only a shape the table never had at that point
 * of the stream makes a new one.  A new version is compared with the one
 * before it (schema/schema_diff.h), logged as `schema.version_changed`, and
 * when it is incompatible and stop_on_incompatible_schema is on, refused:
 * it is recorded as held and schemahist_observe fails, so the caller stops
 * the pipeline before delivering any event of it.  Every run that meets the
 * held version refuses it again, until a run with the setting off lets it
 * through.
 *
 * Sources need not call this: the emitter (source/emitter.h) observes the
 * table of every event it is given, before numbering it, and sets
 * tab->version, which the envelope shows as source.schema_version.
 *
 * Threads: any; calls are serialized inside. */
#ifndef CDC_SCHEMA_SCHEMA_HIST_H
#define CDC_SCHEMA_SCHEMA_HIST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"

struct schemahist;
struct store;

/* store is borrowed for the history's life. */
struct schemahist *schemahist_new(struct store *store, bool stop_on_incompatible);
/* NULL is a no-op. */
void schemahist_free(struct schemahist *h);

/* The one call: the version of tab's shape at pos (the position of the
 * first event that carries tab), recorded if new; sets tab->version.  A tab
 * observed before returns at once (the history keeps a reference to the
 * latest few of each table).  Returns 0; CDC_EINVAL when the shape is an
 * incompatible change refused by stop_on_incompatible_schema (err names
 * the table, the columns and the changes); CDC_EIO when the store failed.
 * tab must not be pushed into the pipeline before this returned 0. */
int schemahist_observe(struct schemahist *h, struct cdc_table *tab, struct cdc_pos pos, char *err,
                       size_t errlen);

#endif
