/* A map from binary keys (lake_value.h's normalized keys) to dense
 * indexes 0, 1, 2, … in insertion order, for the sets table scans and the
 * Iceberg sink keep: equality-deleted keys, the keys a batch has written.
 * Keys are copied; callers keep their per-key data in arrays indexed by
 * what put returns.  Open addressing; about 24 bytes per key plus the key. */
#ifndef CDC_LAKE_LAKE_KEYMAP_H
#define CDC_LAKE_LAKE_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lake_keymap;

struct lake_keymap *lake_keymap_new(void);
void lake_keymap_free(struct lake_keymap *m);
/* Forgets every key (the memory stays for reuse). */
void lake_keymap_clear(struct lake_keymap *m);
size_t lake_keymap_count(const struct lake_keymap *m);
/* The index of key, or -1. */
int64_t lake_keymap_get(const struct lake_keymap *m, const void *key, size_t n);
/* The index of key, adding it if absent (*added tells which; may be NULL). */
uint32_t lake_keymap_put(struct lake_keymap *m, const void *key, size_t n, bool *added);
/* The key with index i. */
const void *lake_keymap_key(const struct lake_keymap *m, uint32_t i, size_t *n);

#endif
