/* Reading an Iceberg table's rows as of a snapshot, with its deletes
 * applied (spec "Scan Planning"): a position delete removes row `pos` of
 * `file_path` from data files of an equal or lower data sequence number; an
 * equality delete removes rows whose equality columns equal a deleted key,
 * from data files of a lower data sequence number (and, for a partitioned
 * delete file, of the same partition).
 *
 * Opening a scan lists the snapshot's live files and loads every delete file
 * into memory; data files are then read one at a time, a row group at a
 * time, with the parquet reader.  Columns are matched by field id against
 * the snapshot's schema: a column a file predates reads as NULL.  Used by
 * `cdc lakehouse query` (time travel), compaction and the Iceberg sink's
 * look-up of values a change did not carry. */
#ifndef CDC_LAKE_ICE_SCAN_H
#define CDC_LAKE_ICE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_table.h"
#include "lake/parquet_reader.h"

struct ice_scan;

/* Plans a scan of snapshot snapshot_id (< 0: the current one; a table
 * without snapshots scans as empty). */
int ice_scan_open(struct ice_table *t, int64_t snapshot_id, struct ice_scan **out, char *err,
                  size_t errlen);
void ice_scan_free(struct ice_scan *s);

/* The schema the snapshot was written with. */
const struct ice_schema *ice_scan_schema(const struct ice_scan *s);
/* The snapshot's data sequence number (0 without a snapshot). */
int64_t ice_scan_seq(const struct ice_scan *s);
/* Live data files and delete files. */
size_t ice_scan_ndata(const struct ice_scan *s);
const struct ice_entry *ice_scan_data(const struct ice_scan *s, size_t i);
size_t ice_scan_ndeletes(const struct ice_scan *s);
const struct ice_entry *ice_scan_delete(const struct ice_scan *s, size_t i);
/* Whether delete file i still removes a row of a data file not in `except`
 * (paths, n of them), i.e. whether dropping it together with rewriting
 * those data files would change the table. */
bool ice_scan_delete_needed(const struct ice_scan *s, size_t i, const char *const *except,
                            size_t n);

/* The live rows of one row group of a data file. */
struct ice_rows {
    const struct ice_entry *file;
    int64_t base;       /* position in the file of the row group's first row */
    int64_t n;          /* live rows */
    const int64_t *idx; /* their indexes within the row group (position = base + idx) */
    uint32_t ncols;     /* the scan schema's fields */
    /* Per schema field: the row group's column, or NULL when the file
     * predates the field (every value NULL). */
    const struct parquet_column_data *const *cols;
};

/* Called once per row group with its live rows; non-zero stops the scan
 * and is returned. */
typedef int (*ice_rows_fn)(void *arg, const struct ice_rows *rows);

/* Reads data file i (ice_scan_data's numbering). */
int ice_scan_file(struct ice_scan *s, size_t i, ice_rows_fn fn, void *arg, char *err,
                  size_t errlen);

/* The schema with id schema_id in m, or NULL. */
const struct ice_schema *ice_meta_schema_by_id(const struct ice_meta *m, int32_t schema_id);

#endif
