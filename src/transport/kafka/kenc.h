/* Change events as Kafka records: the encoding the kafka sink and the
 * capture role share.
 *
 *   topic    the template with {topic_prefix}, {schema}, {table}, {db}
 *            replaced; characters Kafka does not allow in topic names
 *            ([A-Za-z0-9._-] only) become "_".  Messages (op m) go to
 *            "{topic_prefix}.message".
 *   key      the key object of core/json.h (json_key) for tables whose key
 *            identifies one row; a null key for tables without one (no
 *            primary key or replica identity index: REPLICA IDENTITY FULL
 *            without a primary key would make the whole row the key, and
 *            compaction would then merge equal rows), truncates and
 *            messages.
 *   value    the envelope (json_envelope), byte for byte what the file sink
 *            writes.
 *   headers  "cdc.position": "<commit LSN>:<index>" (decimal), the event's
 *            position, on every record of a streamed event (not snapshot
 *            rows): consumers drop duplicates with it.
 *            "cdc.event" (with event_header: the capture role), on the
 *            record that carries the value: the event in core/evcodec.h's
 *            binary encoding, with its table shape (column names, SQL
 *            types, key), so the deliver role rebuilds the event exactly
 *            (docs/kafka.md says why).
 *
 * With schemas_enable the key and the value are each wrapped as Kafka
 * Connect's JsonConverter does, {"schema":S,"payload":P} (kschema.h); null
 * keys and values stay null.  With tombstones_on_delete, a delete with a
 * key is followed by a tombstone (same key, null value), and an update
 * that changed the key is preceded by a tombstone of the old key, so
 * compacted topics forget deleted rows.
 *
 * With event_header (the capture role) an update that changed the key
 * first becomes a delete of the old key on the old key's record (value: a
 * delete envelope, op d; header cdc.event: that delete), then the old key's
 * tombstone, then the update under the new key: per partition order is
 * all Kafka keeps, and the old key's partition must see its row go in order
 * with that key's other changes. */
#ifndef CDC_TRANSPORT_KAFKA_KENC_H
#define CDC_TRANSPORT_KAFKA_KENC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/json.h"
#include "transport/kafka/kproducer.h"

#define KENC_MAX_RECORDS 3
#define KENC_TOPIC_MAX   249 /* Kafka's limit on topic names */

struct kenc;

struct kenc_opts {
    const char *topic_template; /* NULL: "{topic_prefix}.{schema}.{table}" */
    const char *topic_prefix;   /* NULL: "cdc" */
    const struct json_ctx *json;
    bool schemas_enable;
    bool tombstones_on_delete;
    bool event_header; /* add the cdc.event header (the capture role) */
};

#define KENC_EVENT_HEADER "cdc.event"

/* Borrows every string of o for the encoder's life. */
struct kenc *kenc_new(const struct kenc_opts *o);
void kenc_free(struct kenc *e);

/* Encodes the records of ev into out[0..n) and returns n (0 for control
 * events), or CDC_EINVAL with err set when the event cannot become a record
 * (its topic name would be longer than Kafka allows).  The records point
 * into the encoder's buffers: valid until the next call. */
int kenc_event(struct kenc *e, const struct cdc_event *ev, struct kproducer_msg *out, char *err,
               size_t errlen);

/* Renders a topic template for one table into dst (size n); NULL schema or
 * table render as nothing.  Returns the length the name needs. */
size_t kenc_topic(const char *tmpl, const char *topic_prefix, const char *db, const char *schema,
                  const char *table, char *dst, size_t n);

#endif
