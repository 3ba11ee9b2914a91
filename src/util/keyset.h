/* A set of 64-bit key hashes, for "was this key seen in the current group?"
 * on a per-row path: open addressing, no allocation per key, cleared in
 * place.  Two keys with the same hash are one member, so a caller must only
 * use a false "seen" to do something harmless (end a group early); equal
 * keys always collide, so "not seen" is exact. */
#ifndef CDC_UTIL_KEYSET_H
#define CDC_UTIL_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keyset {
    uint64_t *slots; /* 0 = empty; a hash of 0 is stored as 1 */
    size_t cap;      /* power of two, or 0 before the first add */
    size_t used;
};

/* Adds h; false if it was already a member. */
bool keyset_add(struct keyset *ks, uint64_t h);
/* Empties the set; a large table little used is given back. */
void keyset_clear(struct keyset *ks);
void keyset_fini(struct keyset *ks);

#endif
