/* JSON encoder for change events.  See json.h for the contract and
 * docs/envelope.md for the layout users rely on.
 *
 * Speed comes from three habits: fixed parts of the envelope are appended as
 * literals of known length; strings are scanned eight bytes at a time for the
 * few bytes that need work and safe runs are copied whole; and each function
 * reserves its worst-case output once, then writes through a plain pointer. */
#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "core/utf8.h"
#include "util/err.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

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

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* True if any of the eight bytes in x needs work: below 0x20, '"', '\' or
 * 0x80 and above.  Each term is the classic "has a zero byte" test; borrows
 * can only produce false positives above a true hit, so the union is exact. */
static inline int word_special(uint64_t x)
{
    uint64_t ctl = (x - ONES * 0x20) & ~x;
    uint64_t q = x ^ (ONES * '"');
    uint64_t bs = x ^ (ONES * '\\');
    return ((ctl | ((q - ONES) & ~q) | ((bs - ONES) & ~bs) | x) & HIGHS) != 0;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
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
            uint64_t w = load64(s + i);
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

static inline void put_cstr(struct buf *b, const char *s)
{
    json_string(b, s ? s : "", s ? strlen(s) : 0);
}

/* ---- numbers ------------------------------------------------------------ */

static const char digits2[200] = "00010203040506070809"
                                 "10111213141516171819"
                                 "20212223242526272829"
                                 "30313233343536373839"
                                 "40414243444546474849"
                                 "50515253545556575859"
                                 "60616263646566676869"
                                 "70717273747576777879"
                                 "80818283848586878889"
                                 "90919293949596979899";

static inline void put_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    char *e = tmp + sizeof tmp, *p = e;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digits2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    buf_put(b, p, (size_t)(e - p));
}

/* Microseconds to milliseconds, rounding toward minus infinity so times
 * before 1970 stay ordered. */
static inline void put_ms(struct buf *b, int64_t us)
{
    int64_t ms = us / 1000 - (us % 1000 < 0);
    if (ms < 0) {
        buf_putc(b, '-');
        put_u64(b, (uint64_t)0 - (uint64_t)ms);
    } else {
        put_u64(b, (uint64_t)ms);
    }
}

/* "ts_ms":…,"ts_us":…,"ts_ns":… as Debezium 2.x writes them: the same instant
 * at three precisions (ours are microseconds, so ts_ns ends in 000). */
static void put_ts(struct buf *b, int64_t us)
{
    PUT_LIT(b, "\"ts_ms\":");
    put_ms(b, us);
    PUT_LIT(b, ",\"ts_us\":");
    buf_put_i64(b, us);
    PUT_LIT(b, ",\"ts_ns\":");
    buf_put_i64(b, us);
    if (us != 0) /* "0000" would not be a JSON number */
        PUT_LIT(b, "000");
}

static inline int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Appends s[0..n) as a JSON number if it is a decimal number (an integer
 * when !frac), normalised to JSON's grammar: a leading '+' and redundant
 * leading zeros are dropped, ".5" gains its "0", "5." loses its ".".  The
 * digits themselves are never changed, so the value is exact.  Returns 0
 * without appending when the text is not a number (NaN, Infinity, junk). */
static int put_number(struct buf *b, const char *str, size_t n, int frac)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    size_t int_start = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t int_end = i;
    size_t frac_start = i, frac_end = i;
    if (frac && i < n && s[i] == '.') {
        frac_start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        frac_end = i;
    }
    if (int_end == int_start && frac_end == frac_start)
        return 0; /* no digits at all */
    size_t exp_start = i;
    if (frac && i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == d)
            return 0;
    }
    if (i != n)
        return 0;

    /* The common case, already in JSON form, is copied whole. */
    int canonical = s[0] != '+' && int_end > int_start &&
                    (s[int_start] != '0' || int_end - int_start == 1) &&
                    (frac_start == int_end || frac_end > frac_start);
    if (canonical) {
        buf_put(b, s, n);
        return 1;
    }
    buf_reserve(b, n + 2);
    if (neg)
        buf_putc(b, '-');
    while (int_end - int_start > 1 && s[int_start] == '0')
        int_start++;
    if (int_end > int_start)
        buf_put(b, s + int_start, int_end - int_start);
    else
        buf_putc(b, '0');
    if (frac_end > frac_start) {
        buf_putc(b, '.');
        buf_put(b, s + frac_start, frac_end - frac_start);
    }
    buf_put(b, s + exp_start, n - exp_start);
    return 1;
}

/* ---- bytes -------------------------------------------------------------- */

static const char b64_digit[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Nibble value + 1 of a hex digit, 0 for anything else. */
static const uint8_t hex_value1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static inline void b64_quad(char *o, uint32_t v)
{
    o[0] = b64_digit[(v >> 18) & 63];
    o[1] = b64_digit[(v >> 12) & 63];
    o[2] = b64_digit[(v >> 6) & 63];
    o[3] = b64_digit[v & 63];
}

void json_base64(struct buf *b, const void *data, size_t n)
{
    const unsigned char *s = data;
    buf_reserve(b, (n + 2) / 3 * 4 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3, o += 4)
        b64_quad(o, (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2]);
    if (n - i == 1) {
        b64_quad(o, (uint32_t)s[i] << 16);
        o[2] = o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        b64_quad(o, (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8);
        o[3] = '=';
        o += 4;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

/* Appends the base64 of the bytes PostgreSQL's hex bytea text ("\x0aff")
 * stands for.  Returns 0 without appending if the text is not that form. */
static int put_bytea(struct buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n < 2 || s[0] != '\\' || s[1] != 'x' || (n & 1))
        return 0;
    s += 2;
    n = (n - 2) / 2; /* decoded bytes */
    buf_reserve(b, (n + 2) / 3 * 4 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    uint32_t v = 0, bad = 0;
    size_t k = 0; /* bytes in v */
    for (size_t i = 0; i < n; i++) {
        /* An invalid digit wraps to 0xffffffff and sets bits above the nibble. */
        uint32_t h = hex_value1[s[2 * i]] - 1u, l = hex_value1[s[2 * i + 1]] - 1u;
        bad |= h | l;
        v = v << 8 | h << 4 | l;
        if (++k == 3) {
            b64_quad(o, v);
            o += 4;
            v = 0;
            k = 0;
        }
    }
    if (bad & ~15u) {
        b->p[b->len] = '\0'; /* nothing was committed */
        return 0;
    }
    if (k == 1) {
        b64_quad(o, v << 16);
        o[2] = o[3] = '=';
        o += 4;
    } else if (k == 2) {
        b64_quad(o, v << 8);
        o[3] = '=';
        o += 4;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
    return 1;
}

/* ---- values and rows ---------------------------------------------------- */

void json_value(struct buf *b, enum cdc_type t, const char *s, size_t n)
{
    switch (t) {
    case CDC_T_INT:
        if (put_number(b, s, n, 0))
            return;
        break;
    case CDC_T_FLOAT:
        if (put_number(b, s, n, 1))
            return;
        break;
    case CDC_T_BOOL:
        if ((n == 1 && s[0] == 't') || (n == 4 && memcmp(s, "true", 4) == 0)) {
            PUT_LIT(b, "true");
            return;
        }
        if ((n == 1 && s[0] == 'f') || (n == 5 && memcmp(s, "false", 5) == 0)) {
            PUT_LIT(b, "false");
            return;
        }
        break;
    case CDC_T_BYTES:
        if (put_bytea(b, s, n))
            return;
        break;
    default:
        break;
    }
    json_string(b, s, n);
}

static void put_val(struct buf *b, const struct cdc_event *ev, const struct cdc_val *v,
                    enum cdc_type t)
{
    switch (v->kind) {
    case CDC_V_TEXT:
        json_value(b, t, cdc_val_ptr(ev, v), v->len);
        break;
    case CDC_V_UNCHANGED:
        PUT_LIT(b, "\"" JSON_UNAVAILABLE_VALUE "\"");
        break;
    default:
        PUT_LIT(b, "null");
        break;
    }
}

/* Appends {"col":value,...} over the columns of row (all of them, or only the
 * key columns), or null when there is no row. */
static void put_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row,
                    int keys_only)
{
    if (!row || !ev->tab) {
        PUT_LIT(b, "null");
        return;
    }
    const struct cdc_table *tab = ev->tab;
    buf_putc(b, '{');
    int first = 1;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        const struct cdc_column *col = &tab->cols[i];
        if (keys_only && !col->key)
            continue;
        if (!first)
            buf_putc(b, ',');
        first = 0;
        put_cstr(b, col->name);
        buf_putc(b, ':');
        put_val(b, ev, &row[i], col->type);
    }
    buf_putc(b, '}');
}

void json_key(struct buf *b, const struct cdc_event *ev)
{
    json_key_row(b, ev, cdc_event_key_row(ev));
}

void json_key_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row)
{
    if (!ev->tab || !ev->tab->nkeys || ev->op == CDC_OP_MESSAGE || cdc_op_is_control(ev->op))
        row = NULL;
    put_row(b, ev, row, 1);
}

/* ---- the envelope ------------------------------------------------------- */

/* ---- the source block --------------------------------------------------- */

void json_u64(struct buf *b, uint64_t v)
{
    put_u64(b, v);
}

void json_cstr(struct buf *b, const char *s)
{
    put_cstr(b, s);
}

void json_source_common(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    PUT_LIT(b, "{\"version\":");
    put_cstr(b, ctx->version);
    PUT_LIT(b, ",\"connector\":");
    put_cstr(b, ctx->connector);
    PUT_LIT(b, ",\"name\":");
    put_cstr(b, ctx->pipeline_id);
    buf_putc(b, ',');
    put_ts(b, ev->commit_ts);
    if (ev->snapshot)
        PUT_LIT(b, ",\"snapshot\":\"true\",\"db\":");
    else
        PUT_LIT(b, ",\"snapshot\":\"false\",\"db\":");
    put_cstr(b, ctx->db);
}

/* "source":{...}: the source type's block, or the shared fields and the
 * table.  Messages carry no table, so schema and table are null. */
static void put_source(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                       int has_txn)
{
    PUT_LIT(b, "\"source\":");
    if (ctx->source) {
        ctx->source(b, ev, ctx, has_txn != 0);
        return;
    }
    json_source_common(b, ev, ctx);
    PUT_LIT(b, ",\"schema\":");
    if (ev->tab) {
        put_cstr(b, ev->tab->schema);
        PUT_LIT(b, ",\"table\":");
        put_cstr(b, ev->tab->name);
    } else {
        PUT_LIT(b, "null,\"table\":null");
    }
    buf_putc(b, '}');
}

/* "transaction":{...} or null; always the envelope's last field, which is
 * what json_envelope_position relies on. */
static void put_transaction(struct buf *b, const struct cdc_event *ev, int has_txn)
{
    if (!has_txn) {
        PUT_LIT(b, "\"transaction\":null");
        return;
    }
    PUT_LIT(b, "\"transaction\":{\"id\":\"");
    put_u64(b, ev->xid);
    buf_putc(b, ':');
    put_u64(b, ev->pos.lsn);
    PUT_LIT(b, "\",\"total_order\":");
    put_u64(b, ev->total_order);
    PUT_LIT(b, ",\"data_collection_order\":");
    put_u64(b, ev->table_order);
    buf_putc(b, '}');
}

/* {"op":"m",...}: a logical decoding message.  Prefix and content are values
 * 0 and 1 of after; the content is raw bytes, hence base64. */
/* The truncate block: the statement's options and every captured table it
 * truncated together (one event per table carries the same block). */
static void put_truncate(struct buf *b, const struct cdc_event *ev)
{
    PUT_LIT(b, "\"truncate\":{\"cascade\":");
    if (ev->trunc_opts & CDC_TRUNC_CASCADE)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
    PUT_LIT(b, ",\"restart_identity\":");
    if (ev->trunc_opts & CDC_TRUNC_RESTART_IDENTITY)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
    PUT_LIT(b, ",\"tables\":[");
    uint16_t n = ev->trunc_count ? ev->trunc_count : 1;
    for (uint16_t i = 0; i < n; i++) {
        const char *schema = ev->tab->schema, *name = ev->tab->name;
        if (ev->trunc_count && !cdc_event_trunc_table(ev, i, &schema, &name))
            break;
        if (i)
            buf_putc(b, ',');
        PUT_LIT(b, "{\"schema\":");
        json_string(b, schema, strlen(schema));
        PUT_LIT(b, ",\"table\":");
        json_string(b, name, strlen(name));
        buf_putc(b, '}');
    }
    PUT_LIT(b, "]},");
}

static void put_message(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    int has_txn = ev->msg_transactional;
    PUT_LIT(b, "{\"op\":\"m\",");
    put_ts(b, ev->emit_ts);
    buf_putc(b, ',');
    put_source(b, ev, ctx, has_txn);
    PUT_LIT(b, ",\"message\":{\"prefix\":");
    const struct cdc_val *v = ev->after;
    if (v && v[0].kind == CDC_V_TEXT)
        json_string(b, cdc_val_ptr(ev, &v[0]), v[0].len);
    else
        PUT_LIT(b, "\"\"");
    PUT_LIT(b, ",\"content\":");
    if (v && v[1].kind == CDC_V_TEXT)
        json_base64(b, cdc_val_ptr(ev, &v[1]), v[1].len);
    else
        PUT_LIT(b, "\"\"");
    PUT_LIT(b, "},");
    put_transaction(b, ev, has_txn);
    buf_putc(b, '}');
}

void json_envelope(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    int op = ev->op;
    if (cdc_op_is_control(op))
        return;
    if (op == CDC_OP_MESSAGE) {
        put_message(b, ev, ctx);
        return;
    }
    int has_txn = op != CDC_OP_READ && !ev->snapshot;
    const struct cdc_val *before = NULL, *after = NULL;
    if (op == CDC_OP_UPDATE || op == CDC_OP_DELETE)
        before = ev->before;
    if (op == CDC_OP_INSERT || op == CDC_OP_UPDATE || op == CDC_OP_READ)
        after = ev->after;

    PUT_LIT(b, "{\"before\":");
    put_row(b, ev, before, 0);
    PUT_LIT(b, ",\"after\":");
    put_row(b, ev, after, 0);
    buf_putc(b, ',');
    put_source(b, ev, ctx, has_txn);
    PUT_LIT(b, ",\"op\":");
    if (op == CDC_OP_INSERT || op == CDC_OP_UPDATE || op == CDC_OP_DELETE || op == CDC_OP_READ ||
        op == CDC_OP_TRUNCATE) {
        char lit[5] = {'"', (char)op, '"', ','};
        buf_put(b, lit, 4);
    } else {
        char c = (char)op; /* not a known op: still valid JSON */
        json_string(b, &c, 1);
        buf_putc(b, ',');
    }
    put_ts(b, ev->emit_ts);
    buf_putc(b, ',');
    if (op == CDC_OP_TRUNCATE && ev->tab)
        put_truncate(b, ev);
    put_transaction(b, ev, has_txn);
    buf_putc(b, '}');
}

/* ---- reading a position back -------------------------------------------- */

/* Parses 1..20 decimal digits at s[*i..n) into *v, rejecting overflow and
 * leading zeros (the encoder never writes them). */
static int parse_u64(const char *s, size_t n, size_t *i, uint64_t *v)
{
    size_t j = *i;
    uint64_t x = 0;
    while (j < n && is_digit((unsigned char)s[j])) {
        unsigned d = (unsigned)(s[j] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
        j++;
    }
    if (j == *i || (s[*i] == '0' && j - *i > 1))
        return -1;
    *v = x;
    *i = j;
    return 0;
}

static int expect(const char *s, size_t n, size_t *i, const char *lit, size_t litlen)
{
    if (n - *i < litlen || memcmp(s + *i, lit, litlen) != 0)
        return -1;
    *i += litlen;
    return 0;
}

#define EXPECT(lit) expect(line, len, &i, (lit), sizeof(lit) - 1)

/* The transaction block is the envelope's last field and its fields are
 * fixed, so the line is read from its last "transaction" key to the end: text
 * inside row values cannot fake it, because a string value cannot contain an
 * unescaped '"' and no row value is an object. */
int json_envelope_position(const char *line, size_t len, struct cdc_pos *pos)
{
    static const char key[] = ",\"transaction\":{\"id\":\"";
    const size_t klen = sizeof key - 1;
    if (!line)
        return CDC_EINVAL;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (!(len >= 11 && memcmp(line, "{\"before\":", 10) == 0) &&
        !(len >= 10 && memcmp(line, "{\"op\":\"m\",", 10) == 0))
        return CDC_EINVAL;
    if (len < klen + 2)
        return CDC_EINVAL;
    size_t at = len - klen;
    for (;;) {
        if (line[at] == ',' && memcmp(line + at, key, klen) == 0)
            break;
        if (at == 0)
            return CDC_EINVAL;
        at--;
    }
    size_t i = at + klen;
    uint64_t xid, lsn, total, dco;
    if (parse_u64(line, len, &i, &xid) || EXPECT(":") || parse_u64(line, len, &i, &lsn) ||
        EXPECT("\",\"total_order\":") || parse_u64(line, len, &i, &total) || total == 0 ||
        total > UINT32_MAX || EXPECT(",\"data_collection_order\":") ||
        parse_u64(line, len, &i, &dco) || dco > UINT32_MAX || EXPECT("}}") || i != len)
        return CDC_EINVAL;
    pos->lsn = lsn;
    pos->idx = total - 1;
    pos->stream = 0; /* a line shows a position of a single-stream source */
    return 0;
}
