/* A growable byte buffer.  The hot paths (putc, put) are inline: the JSON
 * encoder and the sinks append millions of small pieces per second.
 * The buffer owns p; buf_fini frees it and leaves an empty buffer. */
#ifndef CDC_UTIL_BUF_H
#define CDC_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *p;    /* owned; NUL-terminated whenever len < cap */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_init(struct buf *b);
void buf_fini(struct buf *b);
/* Makes room for `extra` more bytes (plus a terminating NUL). */
void buf_grow(struct buf *b, size_t extra);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the decimal form of v. */
void buf_put_i64(struct buf *b, int64_t v);
void buf_put_u64(struct buf *b, uint64_t v);

extern const char buf_digits2[200]; /* "00" "01" … "99" */
/* Writes the decimal digits of v to end just before e, two at a time
 * (BUF_U64_DIGITS bytes before e are room enough); returns where they
 * start. */
#define BUF_U64_DIGITS 20
static inline char *buf_u64_digits(char *e, uint64_t v)
{
    char *p = e;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, buf_digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, buf_digits2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

static inline void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap)
        buf_grow(b, extra);
}

static inline void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static inline void buf_put(struct buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void buf_putc(struct buf *b, char c)
{
    buf_reserve(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

static inline void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

#endif
