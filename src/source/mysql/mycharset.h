/* Character sets of MySQL / MariaDB columns, converted to UTF-8.
 *
 * A column's charset arrives as a collation number (TABLE_MAP optional
 * metadata, or a result set field).  utf8mb3/utf8mb4 and ascii pass through,
 * latin1 is converted here with the server's own table (Windows-1252 for
 * 0x80..0x9f, C1 controls for its five holes), 63 ("binary") means bytes,
 * and every other charset goes through iconv under the name libmariadb
 * knows it by.  A converter caches its iconv handles: one per thread. */
#ifndef CDC_SOURCE_MYSQL_MYCHARSET_H
#define CDC_SOURCE_MYSQL_MYCHARSET_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MYCHARSET_BINARY 63

enum mycharset_kind {
    MYCHARSET_UNKNOWN = 0, /* a collation number libmariadb does not know */
    MYCHARSET_BYTES,       /* binary: values are bytes, not text */
    MYCHARSET_UTF8,        /* utf8mb3, utf8mb4, ascii: already UTF-8 */
    MYCHARSET_LATIN1,
    MYCHARSET_OTHER, /* through iconv */
};

enum mycharset_kind mycharset_kind(uint32_t collation);
/* Longest character in bytes (1 for unknown collations). */
unsigned mycharset_maxlen(uint32_t collation);
/* The charset's name ("utf8mb4", "latin1", ...), or "?" */
const char *mycharset_name(uint32_t collation);

struct mycharset_conv;
struct mycharset_conv *mycharset_conv_new(void);
void mycharset_conv_free(struct mycharset_conv *cv);

/* Appends s[0..n), text in the given collation's charset, to out as UTF-8.
 * Bytes that are not valid in the source charset are kept as they are (the
 * JSON encoder replaces invalid UTF-8).  Returns 0, or -1 if the collation
 * is unknown or iconv cannot open it (nothing appended then). */
int mycharset_to_utf8(struct mycharset_conv *cv, uint32_t collation, const char *s, size_t n,
                      struct buf *out);

#endif
