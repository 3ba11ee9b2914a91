/* Word-at-a-time byte scanning: eight bytes per step, for the loops that
 * look for the few bytes needing work (escapes, separators) and copy the
 * runs between them whole.
 *
 * swar_zero(x) sets the high bit of each zero byte of x, swar_below(x, c) of
 * each byte under c (c <= 128).  Borrows can set bits only above a true hit,
 * so the lowest set bit (and the union of several tests) is exact; in a
 * little-endian word it names the first such byte (SWAR_FIRST). */
#ifndef CDC_UTIL_SWAR_H
#define CDC_UTIL_SWAR_H

#include <stdint.h>
#include <string.h>

#define SWAR_ONES  0x0101010101010101ULL
#define SWAR_HIGHS 0x8080808080808080ULL
/* Whether SWAR_FIRST may be used: the lowest bit is the first byte only
 * in little-endian words; elsewhere callers scan byte by byte. */
#define SWAR_LITTLE (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

static inline uint64_t swar_load(const void *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint64_t swar_zero(uint64_t x)
{
    return (x - SWAR_ONES) & ~x & SWAR_HIGHS;
}

static inline uint64_t swar_below(uint64_t x, unsigned char c)
{
    return (x - SWAR_ONES * c) & ~x & SWAR_HIGHS;
}

/* The bytes of x equal to c. */
static inline uint64_t swar_eq(uint64_t x, unsigned char c)
{
    return swar_zero(x ^ (SWAR_ONES * c));
}

/* The index of the first byte a non-zero hit marks (little-endian). */
#define SWAR_FIRST(hit) ((size_t)__builtin_ctzll(hit) / 8)

#endif
