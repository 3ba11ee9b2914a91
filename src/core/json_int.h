/* Private to the JSON encoder (json.c: the generic writer; json_value.c:
 * values, rows and keys; json_envelope.c: the Debezium envelope and reading
 * a position back): what they share, inline where it is hot. */
#ifndef CDC_CORE_JSON_INT_H
#define CDC_CORE_JSON_INT_H

#include <stdint.h>
#include <string.h>

#include "core/json.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

extern const char json_b64_digit[64];

/* A decimal number: what json_u64 appends, inline. */
static inline void json_put_u64(struct buf *b, uint64_t v)
{
    char tmp[BUF_U64_DIGITS];
    char *e = tmp + sizeof tmp, *p = buf_u64_digits(e, v);
    buf_put(b, p, (size_t)(e - p));
}

static inline void json_put_cstr(struct buf *b, const char *s)
{
    json_string(b, s ? s : "", s ? strlen(s) : 0);
}

static inline int json_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Four base64 digits of the low 24 bits of v. */
static inline void json_b64_quad(char *o, uint32_t v)
{
    o[0] = json_b64_digit[(v >> 18) & 63];
    o[1] = json_b64_digit[(v >> 12) & 63];
    o[2] = json_b64_digit[(v >> 6) & 63];
    o[3] = json_b64_digit[v & 63];
}

/* "ts_ms":…,"ts_us":…,"ts_ns":… of a time in microseconds since the epoch
 * (json.c). */
void json_put_ts(struct buf *b, int64_t us);
/* {"col":value,...} over the columns of row (all, or the key columns), or
 * null when there is no row (json_value.c). */
void json_put_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row,
                  int keys_only);

#endif
