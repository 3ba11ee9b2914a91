/* UTF-8 checking shared by the JSON encoder and the strict validator. */
#ifndef CDC_CORE_UTF8_H
#define CDC_CORE_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence starting at s[0] (a byte >= 0x80),
 * or 0 if it is ill-formed; then *bad is the length of its maximal subpart,
 * the bytes one U+FFFD replaces (Unicode 15, §3.9, "U+FFFD Substitution of
 * Maximal Subparts"). */
static inline size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    if (n < 2 || s[1] < lo || s[1] > hi) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if (i >= n || (s[i] & 0xc0) != 0x80) {
            *bad = i;
            return 0;
        }
    }
    return need;
}

#endif
