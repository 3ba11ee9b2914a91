/* Allocation helpers.  Running out of memory for a few bytes is not something
 * a CDC engine can recover from meaningfully, and checking every small
 * allocation would bury the code; these functions report and abort instead.
 * This is the one place below main() that may end the process.  Large,
 * data-sized allocations that could legitimately fail use plain malloc and
 * report CDC_ERR to their caller. */
#ifndef CDC_UTIL_MEM_H
#define CDC_UTIL_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
