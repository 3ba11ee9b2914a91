/* The generic JSON writer: strings, numbers, times and base64 appended to a
 * caller's buffer (contract in json.h).  Values and rows are json_value.c's,
 * the Debezium envelope json_envelope.c's.
 *
 * Speed comes from three habits: fixed parts are appended as literals of
 * known length; strings are scanned eight bytes at a time for the few bytes
 * that need work and safe runs are copied whole; and each function reserves
 * its worst-case output once, then writes through a plain pointer. */
#include <stdint.h>
#include <string.h>

#include "core/json_int.h"
#include "core/utf8.h"
#include "util/swar.h"

/* ---- byte classes ------------------------------------------------------- */

/* What json_string must do with a byte: 0 copy it, ESC_* escape it,
 * ESC_UTF8 check the UTF-8 sequence it starts. */
enum { ESC_NONE = 0, ESC_SHORT, ESC_HEX, ESC_UTF8 };

static const uint8_t esc_class[256] = {
    [0x00 ... 0x07] = ESC_HEX, ['\b'] = ESC_SHORT,         ['\t'] = ESC_SHORT,
    ['\n'] = ESC_SHORT,        [0x0b] = ESC_HEX,           ['\f'] = ESC_SHORT,
    ['\r'] = ESC_SHORT,        [0x0e ... 0x1f] = ESC_HEX,  ['"'] = ESC_SHORT,
    ['\\'] = ESC_SHORT,        [0x80 ... 0xff] = ESC_UTF8,
};

/* The second character of the short escapes, by byte. */
static const char esc_short[128] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                    ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};

static const char hex_digit[16] = "0123456789abcdef";

/* True if any of the eight bytes in x needs work: below 0x20, '"', '\' or
 * 0x80 and above (util/swar.h: the union of the tests is exact). */
static inline int word_special(uint64_t x)
{
    return (swar_below(x, 0x20) | swar_eq(x, '"') | swar_eq(x, '\\') | (x & SWAR_HIGHS)) != 0;
}

/* ---- strings ------------------------------------------------------------ */

/* Input is escaped in slices of this many bytes so the worst-case reservation
 * (six output bytes per input byte) stays small for huge values. */
#define ESC_SLICE 4096

/* Escapes s[*pi .. stop) to o and returns the new end of the output; s holds
 * n bytes in all, since a UTF-8 sequence may run up to 3 bytes past stop.
 * The caller has reserved 6 * (stop - *pi) + 8 bytes at o: every input byte
 * yields at most 6 output bytes, and while 8 input bytes remain there is
 * room to store a whole word. */
static char *escape_slice(char *o, const unsigned char *s, size_t *pi, size_t stop, size_t n)
{
    size_t i = *pi;
    while (i < stop) {
        while (i + 8 <= stop) {
            uint64_t w = swar_load(s + i);
            if (word_special(w))
                break;
            memcpy(o, &w, 8);
            o += 8;
            i += 8;
        }
        while (i < stop && esc_class[s[i]] == ESC_NONE)
            *o++ = (char)s[i++];
        if (i >= stop)
            break;
        unsigned char c = s[i];
        switch (esc_class[c]) {
        case ESC_SHORT:
            o[0] = '\\';
            o[1] = esc_short[c];
            o += 2;
            i++;
            break;
        case ESC_HEX:
            memcpy(o, "\\u00", 4);
            o[4] = hex_digit[c >> 4];
            o[5] = hex_digit[c & 15];
            o += 6;
            i++;
            break;
        default: {
            size_t bad;
            size_t k = utf8_seq(s + i, n - i, &bad);
            if (k) {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            } else {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
                i += bad;
            }
            break;
        }
        }
    }
    *pi = i;
    return o;
}

void json_string(struct buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    /* Quotes, a UTF-8 sequence running past a slice, and the NUL. */
    buf_reserve(b, (n < ESC_SLICE ? n : ESC_SLICE) * 6 + 12);
    char *o = b->p + b->len;
    *o++ = '"';
    for (;;) {
        size_t stop = n - i > ESC_SLICE ? i + ESC_SLICE : n;
        o = escape_slice(o, s, &i, stop, n);
        if (i >= n)
            break;
        b->len = (size_t)(o - b->p);
        buf_reserve(b, (n - i < ESC_SLICE ? n - i : ESC_SLICE) * 6 + 12);
        o = b->p + b->len;
    }
    *o++ = '"';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

/* ---- numbers and times ------------------------------------------------- */

/* Microseconds to milliseconds, rounding toward minus infinity so times
 * before 1970 stay ordered. */
static inline void put_ms(struct buf *b, int64_t us)
{
    int64_t ms = us / 1000 - (us % 1000 < 0);
    if (ms < 0) {
        buf_putc(b, '-');
        json_put_u64(b, (uint64_t)0 - (uint64_t)ms);
    } else {
        json_put_u64(b, (uint64_t)ms);
    }
}

/* "ts_ms":…,"ts_us":…,"ts_ns":… as Debezium 2.x writes them: the same instant
 * at three precisions (ours are microseconds, so ts_ns ends in 000). */
void json_put_ts(struct buf *b, int64_t us)
{
    if (us >= 1000) {
        /* The digits once: ts_ms is them but the last three, ts_ns them
         * and "000". */
        char tmp[BUF_U64_DIGITS];
        char *e = tmp + sizeof tmp, *d = buf_u64_digits(e, (uint64_t)us);
        size_t n = (size_t)(e - d);
        buf_reserve(b, 3 * n + 32);
        PUT_LIT(b, "\"ts_ms\":");
        buf_put(b, d, n - 3);
        PUT_LIT(b, ",\"ts_us\":");
        buf_put(b, d, n);
        PUT_LIT(b, ",\"ts_ns\":");
        buf_put(b, d, n);
        PUT_LIT(b, "000");
        return;
    }
    PUT_LIT(b, "\"ts_ms\":");
    put_ms(b, us);
    PUT_LIT(b, ",\"ts_us\":");
    buf_put_i64(b, us);
    PUT_LIT(b, ",\"ts_ns\":");
    buf_put_i64(b, us);
    if (us != 0) /* "0000" would not be a JSON number */
        PUT_LIT(b, "000");
}

/* ---- bytes -------------------------------------------------------------- */

const char json_b64_digit[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void json_base64(struct buf *b, const void *data, size_t n)
{
    const unsigned char *s = data;
    buf_reserve(b, (n + 2) / 3 * 4 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3, o += 4)
        json_b64_quad(o, (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2]);
    if (n - i == 1) {
        json_b64_quad(o, (uint32_t)s[i] << 16);
        o[2] = o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        json_b64_quad(o, (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8);
        o[3] = '=';
        o += 4;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

void json_u64(struct buf *b, uint64_t v)
{
    json_put_u64(b, v);
}

void json_cstr(struct buf *b, const char *s)
{
    json_put_cstr(b, s);
}
