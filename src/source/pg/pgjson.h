/* The Debezium PostgreSQL connector's `source` block, written for every
 * event of a PostgreSQL pipeline (json_ctx.source):
 *
 *   {"version":"0.1.0","connector":"postgresql","name":"shop",
 *    "ts_ms":…,"ts_us":…,"ts_ns":…,"snapshot":"false","db":"shop",
 *    "sequence":"[\"<commit LSN>\",\"<change LSN>\"]","schema":"public",
 *    "table":"customers","txId":771,"lsn":24023128,"xmin":null}
 *
 * ts_* is the commit time, sequence the transaction's commit LSN and the
 * change's own LSN (decimal, as Debezium writes them), txId the transaction
 * id (null for a message outside a transaction).  docs/envelope.md
 * describes it for users; change the two together. */
#ifndef CDC_SOURCE_PG_PGJSON_H
#define CDC_SOURCE_PG_PGJSON_H

#include <stdbool.h>

#include "core/json.h"

void pgjson_source(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                   bool in_txn);

#endif
