/* The JSON encoder: change events as Debezium-compatible envelopes.
 * json.c is the generic writer (strings, numbers, base64), json_value.c
 * types values, rows and keys, json_envelope.c writes the envelope and reads
 * a position back, json_valid.c is the strict checker.
 *
 * Every sink that speaks JSON (files, webhooks) calls json_envelope once per
 * event, so this is the hottest code after the decoder: no allocation beyond
 * the caller's buffer growing, no printf, escaping by lookup table with runs
 * of safe bytes copied in bulk.  The layout is specified for users in
 * docs/envelope.md; change the two together.
 *
 * All functions append to a caller-owned buffer and never fail: any byte
 * sequence in an event produces valid JSON (a value that cannot be typed as
 * its column's class falls back to a JSON string). */
#ifndef CDC_CORE_JSON_H
#define CDC_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "util/buf.h"

struct json_ctx;

/* Appends the value of the envelope's "source" field for ev, an object from
 * '{' to '}': where the event came from, in the fields of the source type's
 * Debezium connector.  in_txn says whether the envelope carries a
 * transaction block.  Each source type has one (source_ops.json_source),
 * which source_json_ctx (source/source.h) puts into the pipeline's context. */
typedef void (*json_source_fn)(struct buf *b, const struct cdc_event *ev,
                               const struct json_ctx *ctx, bool in_txn);
/* For a snapshot row without srcmeta the encoder writes the block once and
 * copies it for the following rows while ctx, table, commit_ts, pos.lsn,
 * lsn, xid and in_txn stay the same: a json_source_fn must depend on
 * nothing else of such a row. */

/* What the envelope's "source" block says about the pipeline.  One per
 * pipeline, read-only while encoding, so sink threads share it without a lock.
 * All strings are borrowed; NULL encodes as "". */
struct json_ctx {
    const char *pipeline_id; /* source.name */
    const char *connector;   /* "postgresql" */
    const char *db;          /* source.db */
    const char *version;     /* source.version, e.g. "0.1.0" */
    /* The source type's block writer; NULL writes the fields every
     * connector shares (json_source_common) and the table. */
    json_source_fn source;
    /* The source has several streams (source_ops.multi_stream): an
     * envelope's transaction block does not give its event's stream
     * position, so a sink that finds its place in what it wrote (the file
     * sink) must keep a checkpoint of every stream's position instead. */
    bool multi_stream;
    /* Made by json_ctx_prepare (left zero, the encoder builds them for
     * every event): what the source block starts with, up to the commit
     * time ({"version":…,"connector":…,"name":…,), and the encoded db. */
    uint16_t head_len, db_len;
    char head[256], db_json[128];
};

/* Encodes ahead the parts of the source block that come from ctx alone
 * (after its strings are set; they must not change afterwards). */
void json_ctx_prepare(struct json_ctx *ctx);

/* For source block writers: the fields every Debezium connector starts its
 * block with, after an opening '{' (version, connector, name, ts_ms/us/ns of
 * ev->commit_ts, snapshot, db), without a closing one. */
void json_source_common(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx);
/* For source block writers, before the closing '}': ,"schema_version":N, the
 * version of the event's table (schema/schema_hist.h); nothing for events
 * without a table or a version. */
void json_source_schema_version(struct buf *b, const struct cdc_event *ev);
/* A decimal number; a C string as a JSON string (NULL as ""). */
void json_u64(struct buf *b, uint64_t v);
void json_cstr(struct buf *b, const char *s);

/* The placeholder Debezium puts where the log did not carry a value
 * (an unchanged TOASTed column, CDC_V_UNCHANGED). */
#define JSON_UNAVAILABLE_VALUE "__debezium_unavailable_value"

/* Appends the Debezium-style envelope of ev to b, without a newline.
 * Control events (CDC_OP_COMMIT, CDC_OP_REWIND) are not changes: nothing is
 * appended for them. */
void json_envelope(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx);

/* Appends the key object {"id":42,...}: the columns with cols[i].key, from the
 * after row (or before for deletes), in column order.  Appends "null" when the
 * table has no key columns, the event carries no row (truncate), or for
 * messages and control events. */
void json_key(struct buf *b, const struct cdc_event *ev);
/* The same from a given row of ev (before or after), e.g. the old key of an
 * update that changed it. */
void json_key_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row);

/* Appends one value of type class t whose canonical text is s[0..n) (see
 * event.h): a number for INT and FLOAT (a string for NaN/Infinity or text that
 * is not a number), true/false for BOOL, base64 of the bytes for BYTES ("\x"
 * hex text; any other text as a string), a string for every other class. */
void json_value(struct buf *b, enum cdc_type t, const char *s, size_t n);

/* Appends s[0..n) as a JSON string literal, quotes included.  '"' and '\'
 * are escaped, control characters become \b \f \n \r \t or \u00XX, valid
 * UTF-8 passes through unchanged, and each maximal invalid UTF-8 subsequence
 * becomes one U+FFFD (as Unicode recommends, and as Python and browsers do). */
void json_string(struct buf *b, const char *s, size_t n);

/* Appends the standard base64 (RFC 4648, with padding) of s[0..n) as a JSON
 * string literal, quotes included. */
void json_base64(struct buf *b, const void *s, size_t n);

/* Reads back the position from one line produced by json_envelope (a trailing
 * "\n" or "\r\n" is allowed): pos->lsn is the commit LSN and pos->idx is
 * transaction.total_order - 1, pos->stream 0.  Used when a sink of a
 * single-stream source starts, to find where its output left off.  Returns 0, or CDC_EINVAL (pos
 * untouched) if the line is not an envelope, is truncated, or carries no transaction block
 * (snapshot rows, non-transactional messages).  Safe on arbitrary bytes. */
int json_envelope_position(const char *line, size_t len, struct cdc_pos *pos);

/* True if s[0..n) is exactly one JSON value (RFC 8259, surrounding whitespace
 * allowed) in valid UTF-8, with no unpaired surrogate escapes and nesting no
 * deeper than 256.  A strict checker for tests, fuzzing and input validation;
 * not used on the encoding path. */
bool json_valid(const char *s, size_t n);

#endif
