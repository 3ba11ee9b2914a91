#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "source/mysql/mycharset.h"
#include "util/mem.h"

/* MySQL's latin1 is Windows-1252, with 0x81 0x8d 0x8f 0x90 0x9d mapped to
 * the C1 control of the same number (checked against the server:
 * CONVERT(_latin1 x'80..9f' USING utf8mb4)). */
static const uint16_t latin1_c1[32] = {
    0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008d, 0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

static const MARIADB_CHARSET_INFO *info(uint32_t collation)
{
    return collation ? mariadb_get_charset_by_nr(collation) : NULL;
}

enum mycharset_kind mycharset_kind(uint32_t collation)
{
    if (collation == MYCHARSET_BINARY)
        return MYCHARSET_BYTES;
    const MARIADB_CHARSET_INFO *ci = info(collation);
    if (!ci || !ci->csname)
        return MYCHARSET_UNKNOWN;
    if (strcmp(ci->csname, "utf8mb4") == 0 || strcmp(ci->csname, "utf8mb3") == 0 ||
        strcmp(ci->csname, "utf8") == 0 || strcmp(ci->csname, "ascii") == 0)
        return MYCHARSET_UTF8;
    if (strcmp(ci->csname, "latin1") == 0)
        return MYCHARSET_LATIN1;
    if (strcmp(ci->csname, "binary") == 0)
        return MYCHARSET_BYTES;
    return MYCHARSET_OTHER;
}

unsigned mycharset_maxlen(uint32_t collation)
{
    const MARIADB_CHARSET_INFO *ci = info(collation);
    return ci && ci->char_maxlen ? ci->char_maxlen : 1;
}

const char *mycharset_name(uint32_t collation)
{
    const MARIADB_CHARSET_INFO *ci = info(collation);
    return ci && ci->csname ? ci->csname : "?";
}

#define CONV_SLOTS 4

struct mycharset_conv {
    struct {
        uint32_t collation; /* 0 = empty */
        iconv_t cd;
    } slot[CONV_SLOTS];
    unsigned next;
};

struct mycharset_conv *mycharset_conv_new(void)
{
    return xcalloc(1, sizeof(struct mycharset_conv));
}

void mycharset_conv_free(struct mycharset_conv *cv)
{
    if (!cv)
        return;
    for (unsigned i = 0; i < CONV_SLOTS; i++)
        if (cv->slot[i].collation)
            iconv_close(cv->slot[i].cd);
    free(cv);
}

static void put_utf8(struct buf *out, uint32_t c)
{
    char t[4];
    size_t k;
    if (c < 0x80) {
        t[0] = (char)c;
        k = 1;
    } else if (c < 0x800) {
        t[0] = (char)(0xc0 | c >> 6);
        t[1] = (char)(0x80 | (c & 0x3f));
        k = 2;
    } else {
        t[0] = (char)(0xe0 | c >> 12);
        t[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        t[2] = (char)(0x80 | (c & 0x3f));
        k = 3;
    }
    buf_put(out, t, k);
}

static void latin1_to_utf8(const char *str, size_t n, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)str;
    buf_reserve(out, n * 2);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80)
            continue;
        buf_put(out, s + run, i - run);
        put_utf8(out, s[i] < 0xa0 ? latin1_c1[s[i] - 0x80] : s[i]);
        run = i + 1;
    }
    buf_put(out, s + run, n - run);
}

static iconv_t open_conv(struct mycharset_conv *cv, uint32_t collation)
{
    for (unsigned i = 0; i < CONV_SLOTS; i++)
        if (cv->slot[i].collation == collation)
            return cv->slot[i].cd;
    const MARIADB_CHARSET_INFO *ci = info(collation);
    if (!ci || !ci->encoding || !ci->encoding[0])
        return (iconv_t)-1;
    iconv_t cd = iconv_open("UTF-8", ci->encoding);
    if (cd == (iconv_t)-1)
        return cd;
    unsigned k = cv->next++ % CONV_SLOTS;
    if (cv->slot[k].collation)
        iconv_close(cv->slot[k].cd);
    cv->slot[k].collation = collation;
    cv->slot[k].cd = cd;
    return cd;
}

static int iconv_to_utf8(iconv_t cd, const char *s, size_t n, struct buf *out)
{
    iconv(cd, NULL, NULL, NULL, NULL);
    buf_reserve(out, n * 4 + 16);
    char *in = (char *)s;
    size_t left = n;
    while (left > 0) {
        buf_reserve(out, left * 4 + 16);
        char *o = out->p + out->len;
        size_t room = out->cap - out->len - 1;
        size_t r = iconv(cd, &in, &left, &o, &room);
        out->len = (size_t)(o - out->p);
        if (r == (size_t)-1) {
            if (errno == E2BIG)
                continue;
            /* An invalid or truncated sequence: keep the byte as is. */
            buf_putc(out, *in);
            in++;
            left--;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    out->p[out->len] = '\0';
    return 0;
}

int mycharset_to_utf8(struct mycharset_conv *cv, uint32_t collation, const char *s, size_t n,
                      struct buf *out)
{
    switch (mycharset_kind(collation)) {
    case MYCHARSET_UTF8:
    case MYCHARSET_BYTES:
        buf_put(out, s, n);
        return 0;
    case MYCHARSET_LATIN1:
        latin1_to_utf8(s, n, out);
        return 0;
    case MYCHARSET_OTHER: {
        iconv_t cd = open_conv(cv, collation);
        if (cd == (iconv_t)-1)
            return -1;
        return iconv_to_utf8(cd, s, n, out);
    }
    default:
        return -1;
    }
}
