/* The strict JSON validator (json_valid, declared in json.h): for tests,
 * fuzzing and input checks, never on the encoding path. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/json.h"
#include "core/utf8.h"

static inline int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

struct jv {
    const unsigned char *s;
    size_t n;
    size_t i;
    int depth;
};

#define JV_MAX_DEPTH 256

static void jv_ws(struct jv *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int jv_hex4(struct jv *p, unsigned *v)
{
    if (p->n - p->i < 4)
        return -1;
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p->s[p->i++];
        unsigned h;
        if (c >= '0' && c <= '9')
            h = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            h = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            h = (unsigned)(c - 'A' + 10);
        else
            return -1;
        x = x << 4 | h;
    }
    *v = x;
    return 0;
}

static int jv_string(struct jv *p)
{
    p->i++; /* '"' */
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            size_t bad, k = utf8_seq(p->s + p->i, p->n - p->i, &bad);
            if (!k)
                return -1;
            p->i += k;
            continue;
        }
        p->i++;
        if (c != '\\')
            continue;
        if (p->i >= p->n)
            return -1;
        c = p->s[p->i++];
        if (c == 'u') {
            unsigned u, lo;
            if (jv_hex4(p, &u))
                return -1;
            if (u >= 0xdc00 && u <= 0xdfff)
                return -1; /* lone low surrogate */
            if (u >= 0xd800 && u <= 0xdbff) {
                if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                    return -1;
                p->i += 2;
                if (jv_hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
            }
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return -1;
        }
    }
    return -1;
}

static int jv_number(struct jv *p)
{
    const unsigned char *s = p->s;
    size_t n = p->n, i = p->i;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return -1;
    }
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == d)
            return -1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == d)
            return -1;
    }
    p->i = i;
    return 0;
}

static int jv_literal(struct jv *p, const char *lit, size_t len)
{
    if (p->n - p->i < len || memcmp(p->s + p->i, lit, len) != 0)
        return -1;
    p->i += len;
    return 0;
}

static int jv_value(struct jv *p);

/* Object or array: the two differ only in the brackets and the "key:" part. */
static int jv_container(struct jv *p, unsigned char close)
{
    if (++p->depth > JV_MAX_DEPTH)
        return -1;
    p->i++;
    jv_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (p->i >= p->n || p->s[p->i] != '"' || jv_string(p))
                return -1;
            jv_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return -1;
            p->i++;
        }
        if (jv_value(p))
            return -1;
        if (p->i >= p->n)
            return -1;
        if (p->s[p->i] == close) {
            p->i++;
            p->depth--;
            return 0;
        }
        if (p->s[p->i] != ',')
            return -1;
        p->i++;
        jv_ws(p);
    }
}

/* One value with the whitespace around it. */
static int jv_value(struct jv *p)
{
    jv_ws(p);
    if (p->i >= p->n)
        return -1;
    int r;
    switch (p->s[p->i]) {
    case '{':
        r = jv_container(p, '}');
        break;
    case '[':
        r = jv_container(p, ']');
        break;
    case '"':
        r = jv_string(p);
        break;
    case 't':
        r = jv_literal(p, "true", 4);
        break;
    case 'f':
        r = jv_literal(p, "false", 5);
        break;
    case 'n':
        r = jv_literal(p, "null", 4);
        break;
    default:
        r = jv_number(p);
        break;
    }
    if (r)
        return -1;
    jv_ws(p);
    return 0;
}

bool json_valid(const char *s, size_t n)
{
    struct jv p = {(const unsigned char *)s, n, 0, 0};
    if (!s)
        return false;
    return jv_value(&p) == 0 && p.i == n;
}
