/* Rows events (WRITE/UPDATE/DELETE_ROWS, v1 and v2): the row images of one
 * table map, decoded into cdc values.
 *
 * Layout: post-header table_id(6) flags(2) [v2: extra_len(2) extra data];
 * body: column_count(lenenc) columns_present(bitmap) [UPDATE: the after
 * image's columns_present], then rows.  A row image is a NULL bitmap over
 * the present columns, then the non-NULL values of the present columns in
 * column order.  An UPDATE row is a before image followed by an after
 * image.  Bitmaps are least significant bit first. */
#ifndef CDC_SOURCE_MYSQL_ROWS_H
#define CDC_SOURCE_MYSQL_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "source/mysql/binlog.h"
#include "source/mysql/mycharset.h"
#include "source/mysql/tablemap.h"
#include "util/buf.h"

struct rows_event {
    char op; /* 'c' write, 'u' update, 'd' delete */
    uint64_t table_id;
    uint16_t flags; /* bit 0: the statement's last rows event */
    uint32_t ncols;
    const uint8_t *present;       /* columns in the (before) image */
    const uint8_t *present_after; /* UPDATE: columns in the after image; else == present */
    const uint8_t *rows;          /* the first row */
    const uint8_t *end;
};

/* True for the rows event types this module reads. */
bool rows_is_rows_event(uint8_t type);
/* True for MariaDB's compressed rows events (log_bin_compress=ON). */
bool rows_is_compressed(uint8_t type);

int rows_parse(const struct binlog_format *fmt, const struct binlog_event *ev,
               struct rows_event *out, char *err, size_t errlen);

/* Decodes the row image at *cur (advanced past it) against tm: vals[i] for
 * each of tm's columns, the text in data (each value NUL-terminated, offsets
 * relative to data->p).  Columns the image does not carry are
 * CDC_V_UNCHANGED.  Errors name the table and the column. */
int rows_read_image(const struct rows_event *re, const struct tablemap *tm, const uint8_t *present,
                    const uint8_t **cur, struct cdc_val *vals, struct buf *data,
                    struct mycharset_conv *cv, char *err, size_t errlen);

#endif
