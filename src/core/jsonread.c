#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/jsonread.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/str.h"

struct rd {
    const char *p, *end;
    int depth;
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
        int d = str_hexval((unsigned char)p[i]);
        if (d < 0)
            return -1;
        *v = *v * 16 + (unsigned)d;
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

#define MAX_DEPTH 128

static int value(struct rd *r, struct jsonv *v);

static int container(struct rd *r, struct jsonv *v, bool obj)
{
    const char close = obj ? '}' : ']';
    size_t cap = 0;
    v->t = obj ? JSONV_OBJ : JSONV_ARR;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = xrealloc(v->items, cap * sizeof *v->items);
            if (obj)
                v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
        }
        struct jsonv *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        ws(r);
        if (obj) {
            struct buf k = BUF_INIT;
            if (str(r, &k)) {
                buf_fini(&k);
                return -1;
            }
            v->keys[v->n] = k.p ? k.p : xstrdup("");
            ws(r);
            if (r->p >= r->end || *r->p != ':') {
                v->n++; /* the key is freed with v */
                return -1;
            }
            r->p++;
        }
        v->n++;
        if (value(r, item))
            return -1;
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 0;
        }
        return -1;
    }
}

static int value(struct rd *r, struct jsonv *v)
{
    ws(r);
    if (r->p >= r->end)
        return -1;
    char c = *r->p;
    size_t left = (size_t)(r->end - r->p);
    if (c == '{' || c == '[') {
        if (++r->depth > MAX_DEPTH)
            return -1;
        int rc = container(r, v, c == '{');
        r->depth--;
        return rc;
    }
    if (c == '"') {
        struct buf b = BUF_INIT;
        v->t = JSONV_STR;
        if (str(r, &b)) {
            buf_fini(&b);
            return -1;
        }
        v->s = b.p ? b.p : xstrdup("");
        return 0;
    }
    static const struct {
        const char *word;
        enum jsonv_type t;
        bool b;
    } words[] = {
        {"null", JSONV_NULL, false}, {"true", JSONV_BOOL, true}, {"false", JSONV_BOOL, false}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (left >= n && memcmp(r->p, words[i].word, n) == 0) {
            v->t = words[i].t;
            v->b = words[i].b;
            r->p += n;
            return 0;
        }
    }
    /* A number: json_valid has vouched for its syntax. */
    char tmp[64];
    size_t n = 0;
    while (n < left && n < sizeof tmp - 1 && strchr("+-.eE0123456789", r->p[n]))
        n++;
    if (n == 0 || n == sizeof tmp - 1)
        return -1;
    memcpy(tmp, r->p, n);
    tmp[n] = '\0';
    char *e;
    v->t = JSONV_NUM;
    v->num = strtod(tmp, &e);
    if (e != tmp + n)
        return -1;
    v->s = xstrdup(tmp); /* exact integers beyond 2^53 (Iceberg ids) need the text */
    r->p += n;
    return 0;
}

void jsonv_free(struct jsonv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jsonv_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    memset(v, 0, sizeof *v);
}

int jsonread_parse(const char *json, size_t len, struct jsonv *v)
{
    memset(v, 0, sizeof *v);
    struct rd r = {json, json + len, 0};
    if (!json_valid(json, len) || value(&r, v) != 0) {
        jsonv_free(v);
        return CDC_EINVAL;
    }
    ws(&r);
    if (r.p != r.end) {
        jsonv_free(v);
        return CDC_EINVAL;
    }
    return 0;
}

static struct jsonv *find(struct jsonv *o, const char *key)
{
    if (!o || o->t != JSONV_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    return NULL;
}

const struct jsonv *jsonv_get(const struct jsonv *o, const char *key)
{
    return find((struct jsonv *)o, key);
}

const char *jsonv_str(const struct jsonv *o, const char *key, const char *dflt)
{
    const struct jsonv *v = jsonv_get(o, key);
    return v && v->t == JSONV_STR ? v->s : dflt;
}

bool jsonv_int(const struct jsonv *v, int64_t lo, int64_t hi, int64_t *out)
{
    /* Compared as doubles first: a cast of a double out of int64_t's range
     * is undefined.  NaN fails every comparison. */
    if (!v || v->t != JSONV_NUM || !(v->num >= (double)lo && v->num <= (double)hi))
        return false;
    int64_t i = (int64_t)v->num;
    if ((double)i != v->num)
        return false;
    *out = i;
    return true;
}

double jsonv_num(const struct jsonv *o, const char *key, double dflt)
{
    const struct jsonv *v = jsonv_get(o, key);
    return v && v->t == JSONV_NUM ? v->num : dflt;
}

void jsonread_free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Parses json into *doc and finds key in its top-level object: 1 found
 * (*val set; the caller frees *doc), 0 absent, CDC_EINVAL malformed or not an
 * object (*doc freed in both cases). */
static int top_level(const char *json, size_t len, const char *key, struct jsonv *doc,
                     struct jsonv **val)
{
    int rc = CDC_EINVAL;
    if (jsonread_parse(json, len, doc) == 0 && doc->t == JSONV_OBJ) {
        *val = find(doc, key);
        rc = *val != NULL;
    }
    if (rc <= 0)
        jsonv_free(doc);
    return rc;
}

int jsonread_string_array(const char *json, size_t len, const char *key, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct jsonv doc;
    struct jsonv *v;
    int f = top_level(json, len, key, &doc, &v);
    if (f <= 0)
        return f;
    int rc = v->t == JSONV_ARR ? 0 : CDC_EINVAL;
    for (size_t i = 0; i < v->n && !rc; i++)
        if (v->items[i].t != JSONV_STR)
            rc = CDC_EINVAL;
    if (!rc && v->n) {
        *out = xcalloc(v->n, sizeof **out);
        for (size_t i = 0; i < v->n; i++) {
            (*out)[i] = v->items[i].s;
            v->items[i].s = NULL; /* moved */
        }
        *n = v->n;
    }
    jsonv_free(&doc);
    return rc;
}

int jsonread_string(const char *json, size_t len, const char *key, char **out)
{
    *out = NULL;
    struct jsonv doc;
    struct jsonv *v;
    int f = top_level(json, len, key, &doc, &v);
    if (f <= 0)
        return f;
    int rc = CDC_EINVAL;
    if (v->t == JSONV_STR) {
        *out = v->s;
        v->s = NULL; /* moved */
        rc = 0;
    }
    jsonv_free(&doc);
    return rc;
}
