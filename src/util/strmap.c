#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/mem.h"
#include "util/strmap.h"

struct slot {
    char *key; /* owned; NULL = empty */
    void *value;
    uint64_t hash;
};

struct strmap {
    struct slot *slots;
    size_t cap; /* power of two */
    size_t used;
};

struct strmap *strmap_new(void)
{
    struct strmap *m = xcalloc(1, sizeof *m);
    m->cap = 16;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    return m;
}

void strmap_free(struct strmap *m, void (*free_value)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        free(m->slots[i].key);
        if (free_value)
            free_value(m->slots[i].value);
    }
    free(m->slots);
    free(m);
}

static struct slot *find(struct slot *slots, size_t cap, const char *key, uint64_t h)
{
    size_t i = h & (cap - 1);
    while (slots[i].key && (slots[i].hash != h || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static uint64_t key_hash(const char *key)
{
    return hash_finish(hash_bytes(HASH_SEED, key, strlen(key)));
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct slot *s = find(m->slots, m->cap, key, key_hash(key));
    return s->key ? s->value : NULL;
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
    if ((m->used + 1) * 4 > m->cap * 3) {
        size_t ncap = m->cap * 2;
        struct slot *n = xcalloc(ncap, sizeof *n);
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key)
                *find(n, ncap, m->slots[i].key, m->slots[i].hash) = m->slots[i];
        free(m->slots);
        m->slots = n;
        m->cap = ncap;
    }
    uint64_t h = key_hash(key);
    struct slot *s = find(m->slots, m->cap, key, h);
    if (s->key) {
        void *old = s->value;
        s->value = value;
        return old;
    }
    s->key = xstrdup(key);
    s->hash = h;
    s->value = value;
    m->used++;
    return NULL;
}

size_t strmap_size(const struct strmap *m)
{
    return m->used;
}
