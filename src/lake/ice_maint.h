/* Table maintenance: snapshot expiry that also deletes what expired
 * snapshots alone referenced, and removal of orphans left by interrupted
 * commits.  Both run between commits of the same writer (not thread-safe
 * with respect to the table). */
#ifndef CDC_LAKE_ICE_MAINT_H
#define CDC_LAKE_ICE_MAINT_H

#include <stddef.h>
#include <stdint.h>

#include "lake/ice_table.h"

struct ice_expire_stats {
    size_t snapshots, manifest_lists, manifests, files; /* removed */
};

/* Expires snapshots older than older_than_ms that are neither referenced by a
 * branch or tag nor among the min_keep newest ancestors of main, commits the
 * trimmed metadata, then deletes the manifest lists of the expired
 * snapshots, the manifests no kept snapshot lists, and the data and delete
 * files no kept manifest holds live. */
int ice_table_expire(struct ice_table *t, int64_t older_than_ms, int min_keep,
                     struct ice_expire_stats *stats, char *err, size_t errlen);

/* Deletes files under the table's location that no metadata version in the
 * metadata log, snapshot, manifest list or manifest references (what an
 * interrupted commit leaves), if last modified before older_than_ms.
 * version-hint.text and referenced metadata files are never touched. */
int ice_table_clean_orphans(struct ice_table *t, int64_t older_than_ms, size_t *removed, char *err,
                            size_t errlen);

#endif
