/* The key-hash set; see keyset.h. */
#include <stdlib.h>
#include <string.h>

#include "util/keyset.h"
#include "util/mem.h"

#define KEYSET_MIN  256
#define KEYSET_KEEP 4096 /* a clear keeps a table this small, or one well used */

static void insert(uint64_t *slots, size_t cap, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = h;
}

static void grow(struct keyset *ks)
{
    size_t ncap = ks->cap ? ks->cap * 2 : KEYSET_MIN;
    uint64_t *n = xcalloc(ncap, sizeof *n);
    for (size_t i = 0; i < ks->cap; i++)
        if (ks->slots[i])
            insert(n, ncap, ks->slots[i]);
    free(ks->slots);
    ks->slots = n;
    ks->cap = ncap;
}

bool keyset_add(struct keyset *ks, uint64_t h)
{
    if (h == 0)
        h = 1;
    if ((ks->used + 1) * 2 > ks->cap) /* at most half full: short probes */
        grow(ks);
    size_t i = (size_t)h & (ks->cap - 1);
    for (; ks->slots[i]; i = (i + 1) & (ks->cap - 1))
        if (ks->slots[i] == h)
            return false;
    ks->slots[i] = h;
    ks->used++;
    return true;
}

void keyset_clear(struct keyset *ks)
{
    if (ks->used == 0)
        return;
    /* A table the next group will likely fill again is emptied in place;
     * one grown for an earlier, larger group is given back, so a stream of
     * small groups does not clear a large table each time. */
    if (ks->cap > KEYSET_KEEP && ks->used * 8 < ks->cap) {
        keyset_fini(ks);
        return;
    }
    memset(ks->slots, 0, ks->cap * sizeof *ks->slots);
    ks->used = 0;
}

void keyset_fini(struct keyset *ks)
{
    free(ks->slots);
    *ks = (struct keyset){NULL, 0, 0};
}
