/* PostgreSQL's snapshot ops (source/snapshot/snapshot.h), arg being the
 * source (struct pgsrc):
 *
 *   initial      the slot is created exporting a snapshot, which every
 *                reader connection imports (SET TRANSACTION SNAPSHOT), so
 *                the readers see exactly the rows committed before the
 *                slot's consistent point; resuming after a crash, reader 0
 *                exports a fresh one for the others.  Chunks are key ranges
 *                or ctid page ranges (snapplan.c), read with
 *                COPY (SELECT …) TO STDOUT, whose text is exactly what
 *                logical decoding sends.  Rebuilt keyless tables get a fold
 *                rule: the fresh snapshot (xmin:xmax:xip) and the WAL
 *                position it was taken at.
 *   incremental  watermarks are rows inserted into the signal table; a
 *                chunk is COPY … ORDER BY key LIMIT n in a REPEATABLE READ
 *                transaction whose pg_current_snapshot() tells which
 *                transactions its rows show (snap_ops.saw); keys are row
 *                literals "(v1::t1, …)".
 *
 * Every read selects what the publication publishes (pubrel.h): its row
 * filter and column list, ONLY for inheritance parents, partitions through
 * their root. */
#ifndef CDC_SOURCE_PG_PGSNAP_H
#define CDC_SOURCE_PG_PGSNAP_H

#include "source/snapshot/snapshot.h"

/* The signal table used when source.signal_table is not set. */
#define PGSNAP_DEFAULT_SIGNAL_TABLE "public.cdc_signal"

extern const struct snap_ops pgsnap_ops;

#endif
