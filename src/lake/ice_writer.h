/* One new Parquet file of a table being written: its upload (streamed to
 * the table's store under <location>/data/<uuid>.parquet) and the Parquet
 * writer feeding it.  Finishing makes the file durable and describes it for
 * a manifest; aborting leaves nothing behind.  Used by compaction and the
 * Iceberg sink. */
#ifndef CDC_LAKE_ICE_WRITER_H
#define CDC_LAKE_ICE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "lake/ice_manifest.h"
#include "lake/ice_table.h"
#include "lake/parquet_writer.h"

struct ice_file_writer {
    char *path; /* owned: the file's URI */
    struct lake_upload *up;
    struct parquet_writer *pw; /* add rows through this */
};

/* Starts a file of rows of sc (copied by the writer). */
int ice_file_writer_open(struct ice_file_writer *w, struct ice_table *t,
                         const struct ice_schema *sc, const struct parquet_opts *o, char *err,
                         size_t errlen);
/* Writes the footer, completes the upload and fills df (content, partition
 * values copied).  The writer is spent afterwards, whatever happened. */
int ice_file_writer_finish(struct ice_file_writer *w, enum ice_content content,
                           const struct ice_pvalue *part, uint32_t npart, struct ice_data_file *df,
                           char *err, size_t errlen);
/* Drops the file (an open upload is aborted).  NULL members are fine. */
void ice_file_writer_abort(struct ice_file_writer *w);

#endif
