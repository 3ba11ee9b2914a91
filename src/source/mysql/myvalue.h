/* Column values of MySQL / MariaDB in cdc's canonical text.
 *
 * Two doors lead to the same text: myvalue_decode reads a value from a rows
 * event (the server's storage format), myvalue_from_text reads the text the
 * server returns for a SELECT (snapshots).  The canonical forms, which a
 * PostgreSQL mirror accepts for the type mytype_pg_name declares:
 *
 *   integers     decimal, unsigned as unsigned ("18446744073709551615")
 *   FLOAT/DOUBLE shortest text that reads back as the same float / double
 *   DECIMAL      exact, with the column's scale ("-12.50")
 *   DATE         "2024-02-29"        DATETIME(n) "2024-02-29 13:14:15.123"
 *   TIMESTAMP(n) "2024-02-29 13:14:15.123+00" (UTC)
 *   TIME(n)      "-838:59:59.000"    YEAR "2024", and "0" for YEAR 0
 *   zero dates   as the server prints them ("0000-00-00 00:00:00")
 *   BIT(n)       n binary digits ("0000001010")
 *   ENUM, SET    the member strings ("a,c"); "" for the invalid ENUM 0
 *   text         UTF-8 (converted from the column's charset)
 *   bytes        "\x" + lowercase hex; BINARY(n) padded with 0x00 to n
 *
 * Which SELECT expression a snapshot must use for each column (FLOAT is
 * printed to 6 digits by the server, so it is read as a DOUBLE) comes from
 * myvalue_select_expr. */
#ifndef CDC_SOURCE_MYSQL_MYVALUE_H
#define CDC_SOURCE_MYSQL_MYVALUE_H

#include <stddef.h>
#include <stdint.h>

#include "source/mysql/mycharset.h"
#include "source/mysql/mytype.h"
#include "util/buf.h"

/* Decodes the value of column c at p[0..end): appends its canonical text to
 * out and sets *used to the bytes it took.  Returns 0, or CDC_EINVAL (err
 * says what is wrong with the value; the caller names table and column). */
int myvalue_decode(const struct mycol *c, const uint8_t *p, const uint8_t *end, size_t *used,
                   struct buf *out, struct mycharset_conv *cv, char *err, size_t errlen);

/* Appends the canonical text of s[0..n), what the server's text protocol
 * returned for myvalue_select_expr(c) in a utf8mb4 session whose time_zone
 * is '+00:00'.  Returns 0 or CDC_EINVAL. */
int myvalue_from_text(const struct mycol *c, const char *s, size_t n, struct buf *out, char *err,
                      size_t errlen);

/* Appends the SELECT expression for column c (its name backquoted). */
void myvalue_select_expr(const struct mycol *c, struct buf *sql);

/* Shortest decimal text that reads back as exactly v. */
void myvalue_put_float(struct buf *out, float v);
void myvalue_put_double(struct buf *out, double v);

#endif
