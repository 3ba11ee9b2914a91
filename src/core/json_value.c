/* Values, rows and keys as JSON: each value's canonical text typed by its
 * column's class (contract in json.h). */
#include <stdint.h>
#include <string.h>

#include "core/json_int.h"

/* ---- numbers ------------------------------------------------------------ */

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
    while (i < n && json_is_digit(s[i]))
        i++;
    size_t int_end = i;
    size_t frac_start = i, frac_end = i;
    if (frac && i < n && s[i] == '.') {
        frac_start = ++i;
        while (i < n && json_is_digit(s[i]))
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
        while (i < n && json_is_digit(s[i]))
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

/* Nibble value + 1 of a hex digit, 0 for anything else. */
static const uint8_t hex_value1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

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
            json_b64_quad(o, v);
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
        json_b64_quad(o, v << 16);
        o[2] = o[3] = '=';
        o += 4;
    } else if (k == 2) {
        json_b64_quad(o, v << 8);
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
void json_put_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row,
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
        json_put_cstr(b, col->name);
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
    json_put_row(b, ev, row, 1);
}
