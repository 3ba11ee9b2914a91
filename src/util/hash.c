#include <string.h>

#include "util/hash.h"

static inline uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Eight bytes per step: mix each word with a multiply and a rotation, then the
 * tail byte by byte.  The length is folded in so "a" and "a\0" differ. */
uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    const uint64_t m = 0xff51afd7ed558ccdULL;
    h ^= (uint64_t)n * 0xc4ceb9fe1a85ec53ULL;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = rotl(h ^ (w * m), 29) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t |= (uint64_t)p[i] << (8 * i);
    h = rotl(h ^ (t * m), 29) * 0x9e3779b97f4a7c15ULL;
    return h;
}

uint64_t hash_finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}
