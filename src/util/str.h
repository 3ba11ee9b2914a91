/* Small string helpers. */
#ifndef CDC_UTIL_STR_H
#define CDC_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Copies src into dst[size], truncating, always NUL-terminated (size > 0).
 * Returns dst. */
char *str_copy(char *dst, size_t size, const char *src);
/* The value of the hex digit c (either case), or -1. */
int str_hexval(int c);
/* Whether s[0..n) is exactly the string lit. */
static inline bool str_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

#endif
