#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/mycharset.h"
#include "source/mysql/mytype.h"
#include "util/mem.h"

void mycol_fini(struct mycol *c)
{
    free(c->name);
    for (uint32_t i = 0; i < c->nvalues; i++)
        free(c->values[i]);
    free(c->values);
    memset(c, 0, sizeof *c);
}

void mycol_copy(struct mycol *dst, const struct mycol *src)
{
    *dst = *src;
    dst->name = src->name ? xstrdup(src->name) : NULL;
    dst->values = NULL;
    if (src->nvalues) {
        dst->values = xcalloc(src->nvalues, sizeof *dst->values);
        for (uint32_t i = 0; i < src->nvalues; i++)
            dst->values[i] = xstrdup(src->values[i]);
    }
}

bool mytype_is_numeric(uint8_t type)
{
    switch (type) {
    case MYT_TINY:
    case MYT_SHORT:
    case MYT_INT24:
    case MYT_LONG:
    case MYT_LONGLONG:
    case MYT_NEWDECIMAL:
    case MYT_DECIMAL:
    case MYT_FLOAT:
    case MYT_DOUBLE:
        return true;
    default:
        return false;
    }
}

bool mytype_is_character(uint8_t type)
{
    switch (type) {
    case MYT_STRING:
    case MYT_VAR_STRING:
    case MYT_VARCHAR:
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_GEOMETRY: /* a BLOB underneath, so the server lists its charset */
        return true;
    default:
        return false;
    }
}

static bool is_bytes(const struct mycol *c)
{
    return c->charset == MYCHARSET_BINARY || c->charset == 0;
}

enum cdc_type mytype_class(const struct mycol *c)
{
    switch (c->type) {
    case MYT_TINY:
    case MYT_SHORT:
    case MYT_INT24:
    case MYT_LONG:
    case MYT_LONGLONG:
    case MYT_YEAR:
        return CDC_T_INT;
    case MYT_FLOAT:
    case MYT_DOUBLE:
        return CDC_T_FLOAT;
    case MYT_DECIMAL:
    case MYT_NEWDECIMAL:
        return CDC_T_NUMERIC;
    case MYT_DATE:
    case MYT_NEWDATE:
        return CDC_T_DATE;
    case MYT_TIME:
    case MYT_TIME2:
        return CDC_T_TIME;
    case MYT_DATETIME:
    case MYT_DATETIME2:
        return CDC_T_TIMESTAMP;
    case MYT_TIMESTAMP:
    case MYT_TIMESTAMP2:
        return CDC_T_TIMESTAMPTZ;
    case MYT_JSON:
        return CDC_T_JSON;
    case MYT_GEOMETRY:
        return CDC_T_BYTES;
    case MYT_STRING:
    case MYT_VARCHAR:
    case MYT_VAR_STRING:
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
        return is_bytes(c) ? CDC_T_BYTES : CDC_T_TEXT;
    default: /* BIT (a bit string), ENUM, SET, NULL */
        return CDC_T_TEXT;
    }
}

const char *mytype_pg_name(const struct mycol *c, char *buf, size_t len)
{
    const char *s = "text";
    switch (c->type) {
    case MYT_TINY:
    case MYT_YEAR:
        s = "smallint";
        break;
    case MYT_SHORT:
        s = c->is_unsigned ? "integer" : "smallint";
        break;
    case MYT_INT24:
        s = "integer";
        break;
    case MYT_LONG:
        s = c->is_unsigned ? "bigint" : "integer";
        break;
    case MYT_LONGLONG:
        s = c->is_unsigned ? "numeric(20,0)" : "bigint";
        break;
    case MYT_FLOAT:
        s = "real";
        break;
    case MYT_DOUBLE:
        s = "double precision";
        break;
    case MYT_DECIMAL:
    case MYT_NEWDECIMAL:
        snprintf(buf, len, "numeric(%u,%u)", c->precision ? c->precision : 10, c->scale);
        return buf;
    case MYT_DATE:
    case MYT_NEWDATE:
        s = "date";
        break;
    case MYT_TIME:
    case MYT_TIME2:
        s = "interval"; /* TIME spans -838:59:59 .. 838:59:59 */
        break;
    case MYT_DATETIME:
    case MYT_DATETIME2:
        snprintf(buf, len, "timestamp(%u) without time zone", c->fsp);
        return buf;
    case MYT_TIMESTAMP:
    case MYT_TIMESTAMP2:
        snprintf(buf, len, "timestamp(%u) with time zone", c->fsp);
        return buf;
    case MYT_BIT:
        snprintf(buf, len, "bit(%u)", c->bits ? c->bits : 1);
        return buf;
    case MYT_JSON:
        s = "jsonb";
        break;
    case MYT_GEOMETRY:
        s = "bytea";
        break;
    default:
        s = mytype_class(c) == CDC_T_BYTES ? "bytea" : "text";
        break;
    }
    snprintf(buf, len, "%s", s);
    return buf;
}

const char *mytype_sql_name(const struct mycol *c, char *buf, size_t len)
{
    const char *u = c->is_unsigned ? " unsigned" : "";
    bool bin = is_bytes(c);
    switch (c->type) {
    case MYT_TINY:
        snprintf(buf, len, "tinyint%s", u);
        break;
    case MYT_SHORT:
        snprintf(buf, len, "smallint%s", u);
        break;
    case MYT_INT24:
        snprintf(buf, len, "mediumint%s", u);
        break;
    case MYT_LONG:
        snprintf(buf, len, "int%s", u);
        break;
    case MYT_LONGLONG:
        snprintf(buf, len, "bigint%s", u);
        break;
    case MYT_FLOAT:
        snprintf(buf, len, "float%s", u);
        break;
    case MYT_DOUBLE:
        snprintf(buf, len, "double%s", u);
        break;
    case MYT_DECIMAL:
    case MYT_NEWDECIMAL:
        snprintf(buf, len, "decimal(%u,%u)%s", c->precision, c->scale, u);
        break;
    case MYT_YEAR:
        snprintf(buf, len, "year");
        break;
    case MYT_DATE:
    case MYT_NEWDATE:
        snprintf(buf, len, "date");
        break;
    case MYT_TIME:
    case MYT_TIME2:
        snprintf(buf, len, "time(%u)", c->fsp);
        break;
    case MYT_DATETIME:
    case MYT_DATETIME2:
        snprintf(buf, len, "datetime(%u)", c->fsp);
        break;
    case MYT_TIMESTAMP:
    case MYT_TIMESTAMP2:
        snprintf(buf, len, "timestamp(%u)", c->fsp);
        break;
    case MYT_BIT:
        snprintf(buf, len, "bit(%u)", c->bits);
        break;
    case MYT_ENUM:
        snprintf(buf, len, "enum");
        break;
    case MYT_SET:
        snprintf(buf, len, "set");
        break;
    case MYT_STRING:
        snprintf(buf, len, "%s(%u bytes)", bin ? "binary" : "char", c->length);
        break;
    case MYT_VARCHAR:
    case MYT_VAR_STRING:
        snprintf(buf, len, "%s(%u bytes)", bin ? "varbinary" : "varchar", c->length);
        break;
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
        snprintf(buf, len, "%s", bin ? "blob" : "text");
        break;
    case MYT_JSON:
        snprintf(buf, len, "json");
        break;
    case MYT_GEOMETRY:
        snprintf(buf, len, "geometry");
        break;
    default:
        snprintf(buf, len, "type %u", c->type);
        break;
    }
    return buf;
}
