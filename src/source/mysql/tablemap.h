/* TABLE_MAP events: which table a table id stands for in the rows events
 * that follow, with each column's type, type metadata and, with
 * binlog_row_metadata=FULL, the optional metadata: column names,
 * signedness, charsets, ENUM/SET strings, primary key and geometry kinds.
 * That metadata reflects the table when the event was written, so decoding
 * needs no schema history and no SQL parser across DDL. */
#ifndef CDC_SOURCE_MYSQL_TABLEMAP_H
#define CDC_SOURCE_MYSQL_TABLEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source/mysql/binlog.h"
#include "source/mysql/mycharset.h"
#include "source/mysql/mytype.h"

/* Optional metadata field types (TLV type bytes). */
enum tablemap_opt {
    TABLEMAP_SIGNEDNESS = 1,
    TABLEMAP_DEFAULT_CHARSET = 2,
    TABLEMAP_COLUMN_CHARSET = 3,
    TABLEMAP_COLUMN_NAME = 4,
    TABLEMAP_SET_STR_VALUE = 5,
    TABLEMAP_ENUM_STR_VALUE = 6,
    TABLEMAP_GEOMETRY_TYPE = 7,
    TABLEMAP_SIMPLE_PRIMARY_KEY = 8,
    TABLEMAP_PRIMARY_KEY_WITH_PREFIX = 9,
    TABLEMAP_ENUM_AND_SET_DEFAULT_CHARSET = 10,
    TABLEMAP_ENUM_AND_SET_COLUMN_CHARSET = 11,
};

struct tablemap {
    uint64_t table_id; /* 48 bits on the wire */
    uint16_t flags;
    char *db;    /* owned */
    char *table; /* owned */
    uint32_t ncols;
    struct mycol *cols; /* owned, ncols entries */
    bool have_names;    /* COLUMN_NAME was present (binlog_row_metadata=FULL) */
    bool have_charsets; /* a charset field was present */
    uint32_t nkeys;     /* primary-key columns */
    /* The event body after table id and flags: two TABLE_MAPs for the same
     * id with equal shape bytes describe the same table shape. */
    uint8_t *shape; /* owned */
    size_t shape_len;
};

/* Reads the table id of a TABLE_MAP or rows event (the first 6 bytes of the
 * post-header, 4 on very old servers).  Returns 0 or CDC_EINVAL. */
int tablemap_peek_id(const struct binlog_format *fmt, const struct binlog_event *ev,
                     uint64_t *table_id);

/* Parses a TABLE_MAP event into a new tablemap (*out, owned by the caller).
 * ENUM/SET strings are converted to UTF-8 with cv. */
int tablemap_parse(const struct binlog_format *fmt, const struct binlog_event *ev,
                   struct mycharset_conv *cv, struct tablemap **out, char *err, size_t errlen);

void tablemap_free(struct tablemap *tm);

#endif
