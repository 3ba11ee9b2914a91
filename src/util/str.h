/* Small string helpers. */
#ifndef CDC_UTIL_STR_H
#define CDC_UTIL_STR_H

#include <stddef.h>

/* Copies src into dst[size], truncating, always NUL-terminated (size > 0).
 * Returns dst. */
char *str_copy(char *dst, size_t size, const char *src);
/* The value of the hex digit c (either case), or -1. */
int str_hexval(int c);

#endif
