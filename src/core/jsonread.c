#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/jsonread.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

struct rd {
    const char *p, *end;
};

static void ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d > 15)
            return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

static void put_utf8(struct buf *b, unsigned cp)
{
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xc0 | cp >> 6);
        t[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xe0 | cp >> 12);
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        t[0] = (char)(0xf0 | cp >> 18);
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_put(b, t, n);
}

/* A string literal at r->p into b (unescaped); r->p moves past it. */
static int str(struct rd *r, struct buf *b)
{
    if (r->p >= r->end || *r->p != '"')
        return -1;
    r->p++;
    while (r->p < r->end) {
        char c = *r->p++;
        if (c == '"')
            return 0;
        if ((unsigned char)c < 0x20)
            return -1;
        if (c != '\\') {
            buf_putc(b, c);
            continue;
        }
        if (r->p >= r->end)
            return -1;
        c = *r->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            buf_putc(b, c);
            break;
        case 'b':
            buf_putc(b, '\b');
            break;
        case 'f':
            buf_putc(b, '\f');
            break;
        case 'n':
            buf_putc(b, '\n');
            break;
        case 'r':
            buf_putc(b, '\r');
            break;
        case 't':
            buf_putc(b, '\t');
            break;
        case 'u': {
            unsigned cp;
            if (r->end - r->p < 4 || hex4(r->p, &cp))
                return -1;
            r->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' || hex4(r->p + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                r->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return -1;
            }
            put_utf8(b, cp);
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

/* Finds key's value in the top-level object; r->p points at it on success.
 * Returns 1 found, 0 absent, -1 malformed. */
static int find_key(const char *json, size_t len, const char *key, struct rd *r)
{
    if (!json_valid(json, len))
        return -1;
    r->p = json;
    r->end = json + len;
    ws(r);
    if (r->p >= r->end || *r->p != '{')
        return -1;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == '}')
        return 0;
    struct buf k = BUF_INIT;
    int found = 0;
    for (;;) {
        ws(r);
        buf_reset(&k);
        if (str(r, &k)) {
            found = -1;
            break;
        }
        ws(r);
        if (r->p >= r->end || *r->p++ != ':') {
            found = -1;
            break;
        }
        ws(r);
        if (k.p && strcmp(k.p, key) == 0 && strlen(key) == k.len) {
            found = 1;
            break;
        }
        /* Skip the value: json_valid vouched for the document, so tracking
         * nesting and strings is enough. */
        int depth = 0;
        while (r->p < r->end) {
            char c = *r->p;
            if (c == '"') {
                struct buf skip = BUF_INIT;
                int bad = str(r, &skip);
                buf_fini(&skip);
                if (bad)
                    break;
                if (depth == 0)
                    break;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (depth == 0)
                    break;
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
            r->p++;
        }
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        break; /* '}' or end: not found */
    }
    buf_fini(&k);
    return found;
}

void jsonread_free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int jsonread_string_array(const char *json, size_t len, const char *key, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct rd r;
    int f = find_key(json, len, key, &r);
    if (f <= 0)
        return f < 0 ? CDC_EINVAL : 0;
    if (*r.p != '[')
        return CDC_EINVAL;
    r.p++;
    ws(&r);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    if (r.p < r.end && *r.p == ']') {
        *out = NULL;
        return 0;
    }
    for (;;) {
        ws(&r);
        struct buf s = BUF_INIT;
        if (str(&r, &s)) {
            buf_fini(&s);
            jsonread_free_strings(v, cnt);
            return CDC_EINVAL;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 4;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[cnt++] = s.p ? s.p : xstrdup("");
        ws(&r);
        if (r.p < r.end && *r.p == ',') {
            r.p++;
            continue;
        }
        if (r.p < r.end && *r.p == ']')
            break;
        jsonread_free_strings(v, cnt);
        return CDC_EINVAL;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int jsonread_string(const char *json, size_t len, const char *key, char **out)
{
    *out = NULL;
    struct rd r;
    int f = find_key(json, len, key, &r);
    if (f <= 0)
        return f < 0 ? CDC_EINVAL : 0;
    struct buf s = BUF_INIT;
    if (str(&r, &s)) {
        buf_fini(&s);
        return CDC_EINVAL;
    }
    *out = s.p ? s.p : xstrdup("");
    return 0;
}
