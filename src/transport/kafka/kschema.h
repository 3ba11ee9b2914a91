/* Kafka Connect schemas for cdc's keys and envelopes, the "schema" half of
 * what Kafka Connect's JsonConverter writes with schemas.enable=true:
 * {"schema":S,"payload":P}.  P is exactly the key object or the envelope of
 * core/json.h; S describes it, field by field, so that Connect sinks (JDBC
 * sinks, converters) can read the payload with its types.
 *
 * Column types follow what the payload holds (docs/kafka.md has the table):
 * smallint int16, integer int32, bigint and oid int64, real float32, double
 * precision float64, boolean boolean, bytea bytes (base64 in the payload),
 * uuid and json/jsonb strings named io.debezium.data.Uuid / .Json, and every
 * other type (numeric, dates and times, intervals, arrays, text) a string
 * holding PostgreSQL's text form.  Key columns are required, all others
 * optional (cdc does not know NOT NULL constraints).
 *
 * Names follow Debezium: <base>.Key, <base>.Value, <base>.Envelope (version
 * 2), io.debezium.connector.<connector>.Source, event.block for the
 * transaction block; base is the table's "{topic_prefix}.{schema}.{table}". */
#ifndef CDC_TRANSPORT_KAFKA_KSCHEMA_H
#define CDC_TRANSPORT_KAFKA_KSCHEMA_H

#include "core/event.h"
#include "util/buf.h"

/* The Connect type of one column, and its semantic name (or NULL). */
void kschema_column_type(const struct cdc_column *col, const char **type, const char **name);

/* Appends the schema of tab's key object. */
void kschema_key(struct buf *b, const struct cdc_table *tab);

/* Appends the schema of the envelope of tab's row events (c, u, d, r, t). */
void kschema_envelope(struct buf *b, const struct cdc_table *tab, const char *connector);

/* Appends the schema of the envelope of logical decoding messages (m). */
void kschema_message(struct buf *b, const char *connector);

#endif
