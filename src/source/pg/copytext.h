/* PostgreSQL COPY text format, one row at a time.
 *
 * Snapshots read tables with `COPY (SELECT …) TO STDOUT`: the fastest way to
 * get rows out of PostgreSQL, and the values are exactly the output-function
 * texts that logical decoding sends, so snapshot rows and streamed changes
 * share one representation.  A row is columns separated by tabs, `\N` for
 * NULL, backslash escapes for the rest. */
#ifndef CDC_SOURCE_PG_COPYTEXT_H
#define CDC_SOURCE_PG_COPYTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "util/buf.h"

/* Parses line[0..len) (without its newline) into ncols values.  Unescaped
 * bytes are appended to data at *data_len, each value followed by a NUL;
 * data needs room for len + ncols bytes.  Returns 0, or CDC_EINVAL with err
 * filled when the column count differs or an escape is malformed. */
int copytext_row(const char *line, size_t len, uint16_t ncols, struct cdc_val *vals, char *data,
                 uint32_t *data_len, char *err, size_t errlen);

/* Appends s[0..len) to b as one COPY text field: backslash, tab, newline
 * and carriage return escaped, every other byte as it is (what
 * copytext_row reads back as the same bytes).  NULL is written `\N`. */
void copytext_put(struct buf *b, const char *s, size_t len);

#endif
