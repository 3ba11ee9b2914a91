/* Iceberg v2 manifests and manifest lists (spec "Manifests", "Manifest
 * Lists"): Avro container files whose schemas carry Iceberg's field ids.
 *
 * A manifest lists data files or delete files (never both) of one partition
 * spec, each with a status (added / existing / deleted), the numbers that
 * order it against deletes (sequence numbers), its partition values and the
 * column metrics the writer measured.  A manifest list is a snapshot's list
 * of manifests with their counts.  Both are written whole into a buffer (the
 * caller stores them) and read back by field name. */
#ifndef CDC_LAKE_ICE_MANIFEST_H
#define CDC_LAKE_ICE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_schema.h"
#include "lake/ice_spec.h"
#include "lake/parquet_writer.h"
#include "util/buf.h"

enum ice_content {
    ICE_CONTENT_DATA = 0,
    ICE_CONTENT_POS_DELETES = 1,
    ICE_CONTENT_EQ_DELETES = 2,
};

/* Field ids of a position delete file's columns (spec "Position Delete
 * Files"). */
#define ICE_POS_FILE_PATH_ID 2147483546
#define ICE_POS_POS_ID       2147483545

struct ice_col_stat {
    int32_t id;
    int64_t size, values, nulls, nans; /* -1: unknown */
    bool has_bounds;
    struct buf lower, upper; /* single-value serialization */
};

struct ice_data_file {
    enum ice_content content;
    char *path; /* owned: full URI */
    int64_t records, size;
    uint32_t npart;
    struct ice_pvalue *part; /* owned: one per partition field of the spec */
    uint32_t ncols;
    struct ice_col_stat *cols; /* owned */
    uint32_t nsplits;
    int64_t *splits; /* owned */
    uint32_t neq;
    int32_t *eq_ids;  /* owned: equality_ids (equality deletes) */
    char *referenced; /* owned: referenced_data_file, or NULL */
};

/* Fills df for a Parquet file just written (metrics copied from info). */
void ice_data_file_init(struct ice_data_file *df, enum ice_content content, const char *path,
                        const struct parquet_file_info *info);
void ice_data_file_copy(struct ice_data_file *dst, const struct ice_data_file *src);
void ice_data_file_fini(struct ice_data_file *df);

enum ice_status { ICE_EXISTING = 0, ICE_ADDED = 1, ICE_DELETED = 2 };

struct ice_entry {
    enum ice_status status;
    int64_t snapshot_id; /* -1: null (inherited) */
    int64_t seq;         /* data sequence number, -1: inherited */
    int64_t file_seq;    /* file sequence number, -1: inherited */
    struct ice_data_file df;
};

void ice_entries_free(struct ice_entry *e, size_t n);

/* Partition field summary of a manifest (manifest list field 507). */
struct ice_part_summary {
    bool contains_null;
    bool has_bounds;
    struct buf lower, upper;
};

/* One row of a manifest list. */
struct ice_manifest_file {
    char *path; /* owned */
    int64_t length;
    int32_t spec_id;
    int32_t content; /* 0 data, 1 deletes */
    int64_t seq, min_seq;
    int64_t added_snapshot_id;
    int32_t added_files, existing_files, deleted_files;
    int64_t added_rows, existing_rows, deleted_rows;
    uint32_t npart;
    struct ice_part_summary *parts; /* owned */
};

void ice_manifest_file_copy(struct ice_manifest_file *dst, const struct ice_manifest_file *src);
void ice_manifest_file_fini(struct ice_manifest_file *m);
void ice_manifest_files_free(struct ice_manifest_file *m, size_t n);

/* Writes a manifest of entries e[0..n) (content: 0 data, 1 deletes) into out,
 * and fills mf's counts, partition summaries, spec id and content (the caller
 * sets path, length, seq, min_seq and added_snapshot_id). */
void ice_manifest_write(struct buf *out, const struct ice_schema *sc, const struct ice_spec *sp,
                        int content, const struct ice_entry *e, size_t n, const uint8_t sync[16],
                        struct ice_manifest_file *mf);
/* Reads a manifest.  Partition values are read in the order of the file's
 * partition record.  0, or CDC_EINVAL with a message. */
int ice_manifest_read(const uint8_t *data, size_t len, struct ice_entry **out, size_t *n, char *err,
                      size_t errlen);

/* Writes a manifest list for snapshot_id (parent -1: none). */
void ice_manifest_list_write(struct buf *out, int64_t snapshot_id, int64_t parent_id, int64_t seq,
                             const struct ice_manifest_file *m, size_t n, const uint8_t sync[16]);
int ice_manifest_list_read(const uint8_t *data, size_t len, struct ice_manifest_file **out,
                           size_t *n, char *err, size_t errlen);

#endif
