/* A string-keyed hash map of pointers (open addressing).  Keys are copied;
 * values are borrowed unless the caller frees them (strmap_free_with). */
#ifndef CDC_UTIL_STRMAP_H
#define CDC_UTIL_STRMAP_H

#include <stddef.h>

struct strmap;

struct strmap *strmap_new(void);
/* Frees the map; calls free_value on every value if non-NULL.  NULL is a no-op. */
void strmap_free(struct strmap *m, void (*free_value)(void *));
void *strmap_get(const struct strmap *m, const char *key);
/* Sets key to value, returning the previous value (or NULL). */
void *strmap_put(struct strmap *m, const char *key, void *value);
size_t strmap_size(const struct strmap *m);

#endif
