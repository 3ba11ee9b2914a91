#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#include <sanitizer/asan_interface.h>
#endif

#include "core/event.h"
#include "util/hash.h"
#include "util/mem.h"

struct cdc_table *cdc_table_new(uint64_t id, const char *schema, const char *name,
                                const char *topic_prefix, uint16_t ncols)
{
    struct cdc_table *tab = xcalloc(1, sizeof *tab);
    atomic_init(&tab->refs, 1);
    tab->id = id;
    tab->schema = xstrdup(schema);
    tab->name = xstrdup(name);
    tab->topic = xasprintf("%s.%s.%s", topic_prefix ? topic_prefix : "cdc", schema, name);
    tab->replident = 'd';
    tab->ncols = ncols;
    tab->cols = xcalloc(ncols ? ncols : 1, sizeof *tab->cols);
    return tab;
}

void cdc_table_ref(struct cdc_table *tab)
{
    atomic_fetch_add_explicit(&tab->refs, 1, memory_order_relaxed);
}

void cdc_table_unref(struct cdc_table *tab)
{
    cdc_table_unref_n(tab, 1);
}

void cdc_table_unref_n(struct cdc_table *tab, unsigned n)
{
    if (!tab || !n || atomic_fetch_sub_explicit(&tab->refs, n, memory_order_acq_rel) != n)
        return;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        free(tab->cols[i].name);
        free(tab->cols[i].type_name);
        free(tab->cols[i].missing);
    }
    free(tab->cols);
    free(tab->schema);
    free(tab->name);
    free(tab->topic);
    free(tab);
}

struct cdc_table *cdc_refbank_take(struct cdc_refbank *b, struct cdc_table *tab)
{
    if (b->tab != tab) {
        cdc_refbank_drop(b);
        b->tab = tab;
    }
    if (!b->n) {
        atomic_fetch_add_explicit(&tab->refs, CDC_REFBANK, memory_order_relaxed);
        b->n = CDC_REFBANK;
    }
    b->n--;
    return tab;
}

void cdc_refbank_drop(struct cdc_refbank *b)
{
    cdc_table_unref_n(b->tab, b->n);
    b->tab = NULL;
    b->n = 0;
}

void cdc_table_finish(struct cdc_table *tab)
{
    tab->nkeys = 0;
    for (uint16_t i = 0; i < tab->ncols; i++)
        tab->nkeys += tab->cols[i].key;
}

struct cdc_srcmeta *cdc_srcmeta_new(const void *data, size_t len)
{
    struct cdc_srcmeta *m = xmalloc(sizeof *m + (len ? len : 1));
    atomic_init(&m->refs, 1);
    m->len = (uint32_t)len;
    if (len)
        memcpy(m->data, data, len);
    return m;
}

void cdc_srcmeta_ref(struct cdc_srcmeta *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void cdc_srcmeta_unref(struct cdc_srcmeta *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* Events are made by a source's threads and freed by the sinks' runners.
 * glibc then frees each into the arena of the thread that made it, under
 * that arena's lock, while the maker allocates from it: the two threads
 * take turns on one lock for every event.  So the last release does not
 * free an event: it lays it in its maker's grave, and a thread that makes
 * events frees what lies in its grave every REAP_EVERY events it makes, in
 * its own arena.  Threads share GRAVES graves round robin (a shared grave
 * only costs some frees into another arena).  A grave that nobody reaps
 * (its maker is idle or gone) is freed by the thread that finds it holding
 * GRAVE_MAX events. */
#define GRAVES     16
#define REAP_EVERY 64
#define GRAVE_MAX  8192

/* Under AddressSanitizer a buried event is poisoned but for its link, so
 * a use after the last release is still caught. */
#if defined(__SANITIZE_ADDRESS__)
static void grave_poison(struct cdc_event *ev, bool on)
{
    char *p = (char *)ev, *link = (char *)&ev->dead_next, *end = p + malloc_usable_size(ev);
    if (on) {
        ASAN_POISON_MEMORY_REGION(p, (size_t)(link - p));
        ASAN_POISON_MEMORY_REGION(link + sizeof ev->dead_next,
                                  (size_t)(end - link - sizeof ev->dead_next));
    } else {
        ASAN_UNPOISON_MEMORY_REGION(p, (size_t)(end - p));
    }
}
#else
static void grave_poison(struct cdc_event *ev, bool on)
{
    (void)ev;
    (void)on;
}
#endif

struct grave {
    _Atomic(struct cdc_event *) head;
    atomic_uint count;
    char pad[64 - sizeof(void *) - sizeof(unsigned)]; /* a cache line each */
};
static struct grave graves[GRAVES];
static atomic_uint next_grave;
static __thread unsigned my_grave; /* 1 + the index, 0 until the thread makes an event */
static __thread unsigned made_since_reap;

static void reap(struct grave *g)
{
    struct cdc_event *ev = atomic_exchange_explicit(&g->head, NULL, memory_order_acquire);
    unsigned n = 0;
    while (ev) {
        struct cdc_event *next = ev->dead_next;
        grave_poison(ev, false);
        free(ev);
        ev = next;
        n++;
    }
    if (n)
        atomic_fetch_sub_explicit(&g->count, n, memory_order_relaxed);
}

void cdc_event_reap(void)
{
    for (unsigned i = 0; i < GRAVES; i++)
        if (atomic_load_explicit(&graves[i].head, memory_order_relaxed))
            reap(&graves[i]);
}

static void bury(struct cdc_event *ev)
{
    struct grave *g = &graves[ev->grave];
    ev->dead_next = atomic_load_explicit(&g->head, memory_order_relaxed);
    grave_poison(ev, true);
    while (!atomic_compare_exchange_weak_explicit(&g->head, &ev->dead_next, ev,
                                                  memory_order_release, memory_order_relaxed))
        ;
    if (atomic_fetch_add_explicit(&g->count, 1, memory_order_relaxed) + 1 >= GRAVE_MAX)
        reap(g);
}

struct cdc_event *cdc_event_new(uint16_t nvals_before, uint16_t nvals_after, size_t data_cap)
{
    if (!my_grave)
        my_grave = atomic_fetch_add_explicit(&next_grave, 1, memory_order_relaxed) % GRAVES + 1;
    if (++made_since_reap >= REAP_EVERY) {
        made_since_reap = 0;
        if (atomic_load_explicit(&graves[my_grave - 1].head, memory_order_relaxed))
            reap(&graves[my_grave - 1]);
    }
    size_t head = sizeof(struct cdc_event);
    size_t vals = ((size_t)nvals_before + nvals_after) * sizeof(struct cdc_val);
    size_t total = head + vals + data_cap;
    struct cdc_event *ev = xmalloc(total);
    memset(ev, 0, head + vals);
    atomic_init(&ev->refs, 1);
    ev->grave = (uint8_t)(my_grave - 1);
    struct cdc_val *v = (struct cdc_val *)(ev + 1);
    if (nvals_before) {
        ev->before = v;
        v += nvals_before;
    }
    if (nvals_after)
        ev->after = v;
    ev->data = (char *)ev + head + vals;
    ev->size = (uint32_t)(total > UINT32_MAX ? UINT32_MAX : total);
    return ev;
}

void cdc_event_ref(struct cdc_event *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
}

bool cdc_event_unref(struct cdc_event *ev)
{
    struct cdc_table *tab;
    bool freed = cdc_event_unref_keep_table(ev, &tab);
    cdc_table_unref(tab);
    return freed;
}

bool cdc_event_unref_keep_table(struct cdc_event *ev, struct cdc_table **tab)
{
    *tab = NULL;
    if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) != 1)
        return false;
    *tab = ev->tab;
    cdc_srcmeta_unref(ev->srcmeta);
    if (ev->data_free)
        ev->data_free(ev->data);
    bury(ev);
    return true;
}

bool cdc_event_trunc_table(const struct cdc_event *ev, uint16_t i, const char **schema,
                           const char **name)
{
    if (ev->op != CDC_OP_TRUNCATE || i >= ev->trunc_count)
        return false;
    const char *p = ev->data, *end = ev->data + ev->data_len;
    for (uint16_t k = 0; k <= i; k++) {
        const char *s = p;
        const char *nul = memchr(s, '\0', (size_t)(end - s));
        if (!nul)
            return false;
        const char *n = nul + 1;
        nul = n < end ? memchr(n, '\0', (size_t)(end - n)) : NULL;
        if (!nul)
            return false;
        *schema = s;
        *name = n;
        p = nul + 1;
    }
    return true;
}

uint64_t cdc_event_key_hash(const struct cdc_event *ev)
{
    uint64_t h = HASH_SEED;
    if (!ev->tab)
        return hash_finish(h);
    h = hash_bytes(h, ev->tab->schema, strlen(ev->tab->schema) + 1);
    h = hash_bytes(h, ev->tab->name, strlen(ev->tab->name) + 1);
    const struct cdc_val *row = cdc_event_key_row(ev);
    if (!row)
        return hash_finish(h);
    for (uint16_t i = 0; i < ev->tab->ncols; i++) {
        if (!ev->tab->cols[i].key)
            continue;
        const struct cdc_val *v = &row[i];
        uint8_t k = v->kind;
        h = hash_bytes(h, &k, 1);
        if (v->kind == CDC_V_TEXT)
            h = hash_bytes(h, cdc_val_ptr(ev, v), v->len);
    }
    return hash_finish(h);
}

char *cdc_pos_format(struct cdc_pos pos, char *buf, size_t len)
{
    char stream[16] = "";
    if (pos.stream)
        snprintf(stream, sizeof stream, "#%u", pos.stream);
    if (pos.idx == CDC_POS_TXN_END)
        snprintf(buf, len, "%X/%X:end%s", (unsigned)(pos.lsn >> 32), (unsigned)pos.lsn, stream);
    else
        snprintf(buf, len, "%X/%X:%llu%s", (unsigned)(pos.lsn >> 32), (unsigned)pos.lsn,
                 (unsigned long long)pos.idx, stream);
    return buf;
}

bool cdc_event_key_changed(const struct cdc_event *ev)
{
    const struct cdc_table *tab = ev->tab;
    if (!tab || !ev->before || !ev->after)
        return false;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!tab->cols[i].key)
            continue;
        const struct cdc_val *a = &ev->before[i], *b = &ev->after[i];
        if (b->kind == CDC_V_UNCHANGED)
            continue;
        if (a->kind != b->kind ||
            (a->kind == CDC_V_TEXT &&
             (a->len != b->len || memcmp(cdc_val_ptr(ev, a), cdc_val_ptr(ev, b), a->len) != 0)))
            return true;
    }
    return false;
}
