/* MySQL / MariaDB column types: one description per column, built either
 * from a TABLE_MAP event (tablemap.c) or from information_schema (mysnap.c),
 * and the mapping from it to cdc's type classes and to the PostgreSQL type a
 * mirror declares.  Both sources of a description give the same mapping, so
 * a table's shape does not depend on whether its rows came from the binlog
 * or from a snapshot.  The table is documented in docs/mysql.md. */
#ifndef CDC_SOURCE_MYSQL_MYTYPE_H
#define CDC_SOURCE_MYSQL_MYTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/* Column type codes as they appear in TABLE_MAP (enum_field_types). */
enum mytype_code {
    MYT_DECIMAL = 0,
    MYT_TINY = 1,
    MYT_SHORT = 2,
    MYT_LONG = 3,
    MYT_FLOAT = 4,
    MYT_DOUBLE = 5,
    MYT_NULL = 6,
    MYT_TIMESTAMP = 7,
    MYT_LONGLONG = 8,
    MYT_INT24 = 9,
    MYT_DATE = 10,
    MYT_TIME = 11,
    MYT_DATETIME = 12,
    MYT_YEAR = 13,
    MYT_NEWDATE = 14,
    MYT_VARCHAR = 15,
    MYT_BIT = 16,
    MYT_TIMESTAMP2 = 17,
    MYT_DATETIME2 = 18,
    MYT_TIME2 = 19,
    MYT_JSON = 245, /* MySQL's binary JSON; MariaDB's JSON is a LONGTEXT */
    MYT_NEWDECIMAL = 246,
    MYT_ENUM = 247,
    MYT_SET = 248,
    MYT_TINY_BLOB = 249,
    MYT_MEDIUM_BLOB = 250,
    MYT_LONG_BLOB = 251,
    MYT_BLOB = 252,
    MYT_VAR_STRING = 253,
    MYT_STRING = 254,
    MYT_GEOMETRY = 255,
};

/* One column.  `type` is the real type: a TABLE_MAP's STRING whose metadata
 * says ENUM or SET is stored here as MYT_ENUM / MYT_SET. */
struct mycol {
    char *name; /* owned */
    uint8_t type;
    bool is_unsigned;
    bool nullable;
    bool key;          /* part of the primary key */
    uint32_t charset;  /* collation number; MYCHARSET_BINARY for bytes; 0 if none */
    uint32_t length;   /* CHAR/BINARY/VARCHAR: maximum bytes */
    uint8_t precision; /* DECIMAL */
    uint8_t scale;     /* DECIMAL */
    uint8_t fsp;       /* TIME/DATETIME/TIMESTAMP fractional digits, 0..6 */
    uint8_t len_bytes; /* BLOB/TEXT/GEOMETRY/JSON: bytes of the length prefix, 1..4 */
    uint8_t pack_len;  /* ENUM: 1..2, SET: 1..8; FLOAT/DOUBLE: 4/8 */
    uint16_t bits;     /* BIT(n) */
    uint32_t geometry; /* geometry kind, 0 = any */
    uint32_t nvalues;  /* ENUM/SET */
    char **values;     /* owned: ENUM/SET strings, UTF-8 */
};

void mycol_fini(struct mycol *c);
void mycol_copy(struct mycol *dst, const struct mycol *src);

/* Type class of the column's values (event.h). */
enum cdc_type mytype_class(const struct mycol *c);

/* The PostgreSQL type a mirror declares for the column, e.g. "numeric(20,0)"
 * for BIGINT UNSIGNED; written to buf (at least 48 bytes), returned. */
const char *mytype_pg_name(const struct mycol *c, char *buf, size_t len);

/* The column's type in MySQL's words ("bigint unsigned", "varchar(20)"),
 * for messages; written to buf, returned. */
const char *mytype_sql_name(const struct mycol *c, char *buf, size_t len);

/* True for the numeric types TABLE_MAP signedness bits cover. */
bool mytype_is_numeric(uint8_t type);
/* True for types whose charset is in DEFAULT/COLUMN_CHARSET (not ENUM/SET). */
bool mytype_is_character(uint8_t type);

#endif
