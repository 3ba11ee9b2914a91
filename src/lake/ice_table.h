/* An Iceberg v2 table: load or create it through a catalog, then commit new
 * snapshots (append, row delta, replace), roll back, expire snapshots with
 * their unreferenced files, and clean up orphans of interrupted commits.
 *
 * Every change is one optimistic commit: new manifests and a manifest list
 * are written next to the table's metadata, a new metadata version is built
 * on the loaded one (sequence number + 1, snapshot log, metadata log) and the
 * catalog swaps its pointer.  On CDC_EAGAIN (another writer was first) the
 * files this commit wrote are removed and the caller reloads (ice_table_refresh)
 * and retries; data files it wrote stay valid for the retry.
 *
 * Snapshot summaries carry the spec's metrics (added-data-files,
 * total-records, …) and the caller's properties (the sink's `cdc.position`).
 * Not thread-safe. */
#ifndef CDC_LAKE_ICE_TABLE_H
#define CDC_LAKE_ICE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_catalog.h"
#include "lake/ice_manifest.h"
#include "lake/ice_meta.h"
#include "lake/lake_store.h"

struct ice_table {
    struct ice_catalog *cat;  /* borrowed */
    struct lake_store *store; /* borrowed */
    char *ns, *name;          /* owned */
    char *meta_location;      /* owned: the current metadata file */
    struct ice_meta *meta;    /* owned: its content */
};

/* Loads a table: 0, LAKE_STORE_ABSENT if the catalog has none, or an error. */
int ice_table_load(struct ice_catalog *cat, const char *ns, const char *name,
                   struct ice_table **out, char *err, size_t errlen);
/* Creates a table at the catalog's default location (props may be NULL).
 * CDC_EAGAIN if it exists already. */
int ice_table_create(struct ice_catalog *cat, const char *ns, const char *name,
                     const struct ice_schema *sc, const struct ice_spec *sp,
                     const struct ice_kv *props, size_t nprops, struct ice_table **out, char *err,
                     size_t errlen);
/* Reloads the current metadata from the catalog. */
int ice_table_refresh(struct ice_table *t, char *err, size_t errlen);
void ice_table_free(struct ice_table *t);

/* A fresh URI for a new file of this table:
 * <location>/<dir>/<uuid><suffix>, e.g. dir "data", suffix ".parquet". */
char *ice_table_new_path(const struct ice_table *t, const char *dir, const char *suffix);

/* One snapshot's worth of changes.  Arrays are borrowed. */
struct ice_change {
    const struct ice_data_file *data; /* data files to add */
    size_t ndata;
    const struct ice_data_file *deletes; /* position / equality delete files to add */
    size_t ndeletes;
    const char *const *remove; /* paths of live data or delete files to remove */
    size_t nremove;
    /* Data sequence number for the added files, or -1 for this snapshot's.
     * Compaction passes the sequence number of the snapshot it read, so
     * equality deletes committed meanwhile still apply to the new files. */
    int64_t data_seq;
    bool replace;               /* "replace" (compaction): same rows, new files */
    const struct ice_kv *props; /* extra summary properties, e.g. cdc.position */
    size_t nprops;
};

/* Commits c as a new snapshot on top of the current one.  The operation is
 * "append" (only data added), "delete" (only deletes added or files removed),
 * "overwrite" (both) or "replace" (c->replace).  0 with *snapshot_id (may be
 * NULL), CDC_EAGAIN on a conflict, or an error. */
int ice_table_commit(struct ice_table *t, const struct ice_change *c, int64_t *snapshot_id,
                     char *err, size_t errlen);

/* Adds optional columns to the current schema: a new schema version
 * (schema id one above the highest) made current, without a snapshot.
 * Field ids are assigned from last-column-id + 1 and written back into
 * fields[].id; names must be new.  A REST catalog gets add-schema and
 * set-current-schema with their requirements.  0, CDC_EAGAIN on a
 * conflict, or an error (ice_evolve.c). */
int ice_table_add_columns(struct ice_table *t, struct ice_field *fields, size_t n, char *err,
                          size_t errlen);

/* Makes an existing snapshot current again (a new metadata version, no new
 * snapshot). */
int ice_table_rollback(struct ice_table *t, int64_t snapshot_id, char *err, size_t errlen);

/* The newest value of summary property key along the current snapshot's
 * ancestry (heap string), or NULL. */
char *ice_table_find_prop(const struct ice_table *t, const char *key);

/* The live files of a snapshot (current if id < 0): data and delete entries
 * of its manifests with status added or existing. */
int ice_table_files(struct ice_table *t, int64_t snapshot_id, struct ice_entry **out, size_t *n,
                    char *err, size_t errlen);

/* Reads a manifest list / a manifest of this table from the store. */
int ice_table_read_list(struct ice_table *t, const char *uri, struct ice_manifest_file **out,
                        size_t *n, char *err, size_t errlen);
int ice_table_read_manifest(struct ice_table *t, const char *uri, struct ice_entry **out, size_t *n,
                            char *err, size_t errlen);

/* Milliseconds since the epoch (what timestamps in metadata use). */
int64_t ice_now_ms(void);

#endif
