/* The Debezium MySQL connector's `source` block for MySQL / MariaDB events,
 * written with core/json.h's writer:
 *
 *   {"version":"0.1.0","connector":"mysql","name":"shop","ts_ms":1718150400000,
 *    "snapshot":"false","db":"shop","sequence":null,"ts_us":...,"ts_ns":...,
 *    "table":"orders","server_id":1,"gtid":"0-1-42","file":"mysql-bin.000003",
 *    "pos":1234,"row":0,"thread":7,"query":null}
 *
 * Field order and meaning follow io.debezium.connector.mysql.Source: ts_* is
 * the event's time at the source (for snapshot rows, when the snapshot was
 * taken), pos the offset of the rows event in file, row the row's index in
 * that event, gtid the MariaDB GTID of the transaction (null without GTIDs),
 * thread the id of the session that wrote it (null if the binlog does not
 * say).
 *
 * The facts the event model has no room for travel with each change as its
 * source metadata (core/event.h, struct cdc_srcmeta): one per rows event,
 * shared by its rows, each row's index in ev->src_row.  myjson_event_source
 * writes the block from them (source_ops.json_source), also for an event
 * read back from the dead-letter queue. */
#ifndef CDC_SOURCE_MYSQL_MYJSON_H
#define CDC_SOURCE_MYSQL_MYJSON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/json.h"
#include "source/mysql/mydecode.h"
#include "util/buf.h"

struct myjson_source {
    const char *version;  /* cdc's version */
    const char *name;     /* the pipeline id */
    int64_t ts_us;        /* event time, microseconds since the epoch */
    const char *snapshot; /* "false", "true", "first", "last", "incremental"; NULL = "false" */
    const char *db;
    const char *table; /* NULL = null */
    uint32_t server_id;
    const char *gtid; /* NULL or "" = null */
    const char *file;
    uint64_t pos;
    uint32_t row;
    bool have_thread;
    uint32_t thread;
    const char *query;       /* NULL = null */
    uint64_t schema_version; /* the table's version in the schema history; 0 = not written */
};

/* Appends the block's object (no key): {"version":...}. */
void myjson_source(struct buf *b, const struct myjson_source *s);

/* Fills s (strings borrowed from ev, row and its transaction) for a
 * streamed change; version and name are left for the caller. */
void myjson_source_from_row(struct myjson_source *s, const struct cdc_event *ev,
                            const struct mydecode_row *row);

/* The source metadata of the rows event row describes (row->row is not
 * part of it: it goes to each event's src_row).  One reference. */
struct cdc_srcmeta *myjson_meta_new(const struct mydecode_row *row);

/* The block of ev from its source metadata (a json_source_fn): what
 * myjson_source_from_row gives for the row it was decoded from.  An event
 * without (a snapshot row) shows no binlog place. */
void myjson_event_source(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                         bool in_txn);

#endif
