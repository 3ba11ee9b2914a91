#include <stdbool.h>
#include <string.h>

#include "source/pg/copytext.h"
#include "util/err.h"
#include "util/str.h"
#include "util/swar.h"

/* Unescapes one field s[0..n) into out; returns the bytes written. */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 == n) {
            out[o++] = c;
            continue;
        }
        c = s[++i];
        switch (c) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'v':
            out[o++] = '\v';
            break;
        case 'x':
            if (i + 1 < n && str_hexval((unsigned char)s[i + 1]) >= 0) {
                int v = str_hexval((unsigned char)s[++i]);
                if (i + 1 < n && str_hexval((unsigned char)s[i + 1]) >= 0)
                    v = v * 16 + str_hexval((unsigned char)s[++i]);
                out[o++] = (char)v;
            } else {
                out[o++] = 'x';
            }
            break;
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 0; k < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; k++)
                    v = v * 8 + (s[++i] - '0');
                out[o++] = (char)v;
            } else {
                out[o++] = c; /* \\ and any other escaped character */
            }
        }
    }
    return o;
}

/* The first i >= from with s[i] a tab or a backslash, or n. */
static size_t next_tab_or_escape(const char *s, size_t from, size_t n)
{
    size_t i = from;
    for (; SWAR_LITTLE && i + 8 <= n; i += 8) {
        uint64_t w = swar_load(s + i);
        uint64_t hit = swar_eq(w, '\t') | swar_eq(w, '\\');
        if (hit)
            return i + SWAR_FIRST(hit);
    }
    while (i < n && s[i] != '\t' && s[i] != '\\')
        i++;
    return i;
}

int copytext_row(const char *line, size_t len, uint16_t ncols, struct cdc_val *vals, char *data,
                 uint32_t *data_len, char *err, size_t errlen)
{
    if (ncols == 0) /* a table without columns: its rows are empty lines */
        return len == 0 ? 0 : cdc_fail(err, errlen, CDC_EINVAL, "COPY row has more than 0 columns");
    size_t start = 0, i = 0;
    uint16_t col = 0;
    bool escaped = false; /* the field holds a backslash */
    for (;;) {
        i = next_tab_or_escape(line, i, len);
        if (i < len && line[i] == '\\') {
            escaped = true;
            i += i + 1 < len ? 2 : 1; /* an escaped tab is not a separator */
            continue;
        }
        /* i ends a field: a tab, or the end of the line */
        if (col == ncols)
            return cdc_fail(err, errlen, CDC_EINVAL, "COPY row has more than %u columns", ncols);
        size_t end = i > len ? len : i;
        struct cdc_val *v = &vals[col++];
        if (end - start == 2 && line[start] == '\\' && line[start + 1] == 'N') {
            v->kind = CDC_V_NULL;
            v->off = v->len = 0;
        } else {
            v->kind = CDC_V_TEXT;
            v->off = *data_len;
            char *out = data + *data_len;
            if (escaped) {
                v->len = (uint32_t)unescape(line + start, end - start, out);
            } else {
                memcpy(out, line + start, end - start);
                v->len = (uint32_t)(end - start);
            }
            out[v->len] = '\0';
            *data_len += v->len + 1;
        }
        if (i >= len)
            break;
        start = ++i;
        escaped = false;
    }
    if (col != ncols)
        return cdc_fail(err, errlen, CDC_EINVAL, "COPY row has %u columns, expected %u", col,
                        ncols);
    return 0;
}

void copytext_put(struct buf *b, const char *s, size_t len)
{
    if (!s) {
        buf_put(b, "\\N", 2);
        return;
    }
    /* Most values need no escape: find the first byte that may (a control
     * character or a backslash) a word at a time, and copy up to it. */
    size_t i = 0;
    for (; SWAR_LITTLE && i + 8 <= len; i += 8) {
        uint64_t w = swar_load(s + i);
        uint64_t hit = swar_below(w, 0x20) | swar_eq(w, '\\');
        if (hit) {
            i += SWAR_FIRST(hit);
            break;
        }
    }
    if (i >= len) {
        buf_put(b, s, len);
        return;
    }
    buf_reserve(b, len);
    size_t from = 0;
    for (; i < len; i++) {
        char e;
        switch (s[i]) {
        case '\\':
            e = '\\';
            break;
        case '\t':
            e = 't';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        default:
            continue;
        }
        buf_put(b, s + from, i - from);
        buf_putc(b, '\\');
        buf_putc(b, e);
        from = i + 1;
    }
    buf_put(b, s + from, len - from);
}
