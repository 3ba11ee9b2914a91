/* Binary keys to dense indexes (see lake_keymap.h). */
#include <stdlib.h>
#include <string.h>

#include "lake/lake_keymap.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/mem.h"

struct entry {
    uint64_t hash;
    uint64_t off; /* of the key in keys */
    uint32_t len;
};

struct lake_keymap {
    struct entry *e; /* by index */
    uint32_t n, cap;
    uint32_t *slot; /* index + 1, 0 = empty */
    uint32_t nslot; /* a power of two */
    struct buf keys;
};

struct lake_keymap *lake_keymap_new(void)
{
    return xcalloc(1, sizeof(struct lake_keymap));
}

void lake_keymap_free(struct lake_keymap *m)
{
    if (!m)
        return;
    free(m->e);
    free(m->slot);
    buf_fini(&m->keys);
    free(m);
}

void lake_keymap_clear(struct lake_keymap *m)
{
    m->n = 0;
    if (m->slot)
        memset(m->slot, 0, m->nslot * sizeof *m->slot);
    buf_reset(&m->keys);
}

size_t lake_keymap_count(const struct lake_keymap *m)
{
    return m->n;
}

static uint64_t hash_of(const void *key, size_t n)
{
    return hash_finish(hash_bytes(HASH_SEED, key, n));
}

static int64_t find(const struct lake_keymap *m, const void *key, size_t n, uint64_t h,
                    uint32_t *at)
{
    if (!m->nslot)
        return -1;
    uint32_t mask = m->nslot - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = m->slot[i];
        if (!s) {
            if (at)
                *at = i;
            return -1;
        }
        const struct entry *e = &m->e[s - 1];
        if (e->hash == h && e->len == n && memcmp(m->keys.p + e->off, key, n) == 0)
            return s - 1;
    }
}

static void rehash(struct lake_keymap *m)
{
    uint32_t cap = m->nslot ? m->nslot * 2 : 1024;
    free(m->slot);
    m->slot = xcalloc(cap, sizeof *m->slot);
    m->nslot = cap;
    for (uint32_t k = 0; k < m->n; k++) {
        uint32_t i = (uint32_t)m->e[k].hash & (cap - 1);
        while (m->slot[i])
            i = (i + 1) & (cap - 1);
        m->slot[i] = k + 1;
    }
}

int64_t lake_keymap_get(const struct lake_keymap *m, const void *key, size_t n)
{
    return find(m, key, n, hash_of(key, n), NULL);
}

uint32_t lake_keymap_put(struct lake_keymap *m, const void *key, size_t n, bool *added)
{
    uint64_t h = hash_of(key, n);
    int64_t got = find(m, key, n, h, NULL);
    if (added)
        *added = got < 0;
    if (got >= 0)
        return (uint32_t)got;
    if ((uint64_t)(m->n + 1) * 2 > m->nslot)
        rehash(m);
    uint32_t at = 0;
    find(m, key, n, h, &at);
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->e = xrealloc(m->e, m->cap * sizeof *m->e);
    }
    m->e[m->n] = (struct entry){h, m->keys.len, (uint32_t)n};
    buf_put(&m->keys, key, n);
    m->slot[at] = m->n + 1;
    return m->n++;
}

const void *lake_keymap_key(const struct lake_keymap *m, uint32_t i, size_t *n)
{
    *n = m->e[i].len;
    return m->keys.p + m->e[i].off;
}
