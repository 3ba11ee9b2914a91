/* Table maintenance: compaction of small files with their deletes applied
 * (ice_compact.c), snapshot expiry that also deletes what expired
 * snapshots alone referenced, and removal of orphans left by interrupted
 * commits.  Each works on its own struct ice_table (not thread-safe with
 * respect to it); other writers of the table may commit meanwhile:
 * compaction and expiry commit optimistically and retry or give up. */
#ifndef CDC_LAKE_ICE_MAINT_H
#define CDC_LAKE_ICE_MAINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_table.h"
#include "lake/parquet_writer.h"

struct ice_compact_opts {
    size_t min_files;     /* do nothing unless small data files + delete files reach this */
    int64_t target_bytes; /* data files smaller than this are rewritten; new files end near it */
    int64_t max_rows;     /* rows one pass rewrites at most (0: no limit) */
    enum parquet_codec codec;
    /* Summary properties copied from the snapshot the compaction commits on
     * (cdc.position: the replace snapshot holds what its parent held). */
    const char *const *carry;
    size_t ncarry;
    /* Polled between row groups: true abandons the pass (nothing is left). */
    bool (*stop)(void *arg);
    void *stop_arg;
};

struct ice_compact_stats {
    size_t data_files, delete_files, new_files; /* rewritten, dropped, written */
    int64_t rows;                               /* live rows written */
    int64_t snapshot_id;                        /* the replace snapshot, or -1 */
};

/* Rewrites the current snapshot's small data files (oldest first, up to
 * max_rows) with every delete applied into new files of their partition,
 * and drops the delete files that then remove nothing: one "replace"
 * snapshot whose new files keep the data sequence number of the snapshot
 * read, so deletes committed meanwhile still apply to them.  A writer that
 * commits meanwhile is retried over, unless it removed a file the pass
 * rewrote (then CDC_EAGAIN: nothing changed, try later).  0 also when
 * there was nothing worth doing (stats say what was done). */
int ice_table_compact(struct ice_table *t, const struct ice_compact_opts *o,
                      struct ice_compact_stats *stats, char *err, size_t errlen);

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
