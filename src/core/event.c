#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (!tab || atomic_fetch_sub_explicit(&tab->refs, 1, memory_order_acq_rel) != 1)
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

struct cdc_event *cdc_event_new(uint16_t nvals_before, uint16_t nvals_after, size_t data_cap)
{
    size_t head = sizeof(struct cdc_event);
    size_t vals = ((size_t)nvals_before + nvals_after) * sizeof(struct cdc_val);
    size_t total = head + vals + data_cap;
    struct cdc_event *ev = xmalloc(total);
    memset(ev, 0, head + vals);
    atomic_init(&ev->refs, 1);
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
    if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) != 1)
        return false;
    cdc_table_unref(ev->tab);
    cdc_srcmeta_unref(ev->srcmeta);
    if (ev->data_free)
        ev->data_free(ev->data);
    free(ev);
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
