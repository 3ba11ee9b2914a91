/* A dead-letter entry as JSON, the same for `cdc dlq list --json` and the
 * control API's GET /v1/dlq. */
#ifndef CDC_STATE_DLQ_JSON_H
#define CDC_STATE_DLQ_JSON_H

#include "state/store.h"
#include "util/buf.h"

/* The table an entry's topic names: "public.items" of "cdc.public.items"
 * when topic_prefix is "cdc"; the topic itself when it does not start with
 * the prefix (the prefix changed since). */
const char *dlq_entry_table(const char *topic, const char *topic_prefix);

/* Appends one entry as a JSON object on one line: id, sink_id, position,
 * commit_lsn, event_index, topic, table, key (the stored key object, null
 * if none), op, error_class, attempts, http_status, status, error,
 * first_failed_us, dead_lettered_us, resolved_us (null while pending). */
void dlq_entry_json(struct buf *b, const struct dlq_entry *e, const char *topic_prefix);

#endif
