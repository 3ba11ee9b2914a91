/* COPY's binary format for the mirror's loads (pg_copy.c).
 *
 * Events carry the source's text of every value.  A text COPY makes the
 * mirror's backend run each type's input function on it, which for a
 * timestamptz or a numeric costs more than storing the row; the binary
 * format hands it the value itself.  pgs_bin_put turns a value's text into
 * the binary form of the mirror column's type, giving exactly what the
 * type's input function would make of that text in the sink's session
 * (TimeZone UTC, DateStyle ISO), or refuses it: the caller then loads the
 * row as text, so a text this code does not know is parsed by PostgreSQL as
 * before ('infinity' dates and timestamps, timestamps after the year
 * 294,246, floats outside their type's range, numerics of more than 4,000
 * digits).  Typmods (numeric(p,s), varchar(n), timestamp(p)) are applied by
 * the server's receive functions as by its input functions. */
#ifndef CDC_SINK_POSTGRES_PG_BINARY_H
#define CDC_SINK_POSTGRES_PG_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The file header of a binary COPY, and its 2-byte trailer. */
void pgs_bin_header(struct buf *b);
#define PGS_BIN_TRAILER "\377\377"
/* A tuple's column count, before its values. */
void pgs_bin_tuple(struct buf *b, uint16_t ncols);
/* Whether values of this type (a built-in type's OID) can go as binary. */
bool pgs_bin_type_ok(uint32_t type);
/* Appends a NULL. */
void pgs_bin_null(struct buf *b);
/* Appends the value s[0..n) of a column of `type` as its length and binary
 * form; 0, or CDC_EINVAL with b unchanged when the text is one this code
 * does not convert (the row must then go as text). */
int pgs_bin_put(struct buf *b, uint32_t type, const char *s, size_t n);

#endif
