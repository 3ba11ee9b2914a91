/* A fast, stable 64-bit hash for routing keys to partitions.  Stable means the
 * same bytes give the same value on every run and machine, so a key keeps its
 * partition across restarts.  Not for hash tables exposed to attackers. */
#ifndef CDC_UTIL_HASH_H
#define CDC_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Continues hash h over n bytes; start with HASH_SEED. */
uint64_t hash_bytes(uint64_t h, const void *data, size_t n);
#define HASH_SEED 0x9e3779b97f4a7c15ULL
/* Final avalanche; apply once before taking a modulus. */
uint64_t hash_finish(uint64_t h);

#endif
