/* Positions per stream; see posmap.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/posmap.h"
#include "util/mem.h"

/* Index of the first entry whose stream is >= s (n when none).  The single
 * stream, the common case, is one compare. */
#define LOWER_BOUND(v, n, s)                                                                       \
    do {                                                                                           \
        size_t lo_ = 0, hi_ = (n);                                                                 \
        while (lo_ < hi_) {                                                                        \
            size_t mid_ = (lo_ + hi_) / 2;                                                         \
            if ((v)[mid_].stream < (s))                                                            \
                lo_ = mid_ + 1;                                                                    \
            else                                                                                   \
                hi_ = mid_;                                                                        \
        }                                                                                          \
        at = lo_;                                                                                  \
    } while (0)

void cdc_posmap_fini(struct cdc_posmap *m)
{
    free(m->v);
    memset(m, 0, sizeof *m);
}

void cdc_posmap_clear(struct cdc_posmap *m)
{
    m->n = 0;
}

const struct cdc_pos *cdc_posmap_get(const struct cdc_posmap *m, uint32_t stream)
{
    if (m->n == 1)
        return m->v[0].stream == stream ? &m->v[0] : NULL;
    size_t at;
    LOWER_BOUND(m->v, m->n, stream);
    return at < m->n && m->v[at].stream == stream ? &m->v[at] : NULL;
}

/* The slot of stream s, inserted (zero) if absent. */
static struct cdc_pos *posmap_slot(struct cdc_posmap *m, uint32_t stream, bool *fresh)
{
    size_t at;
    LOWER_BOUND(m->v, m->n, stream);
    *fresh = !(at < m->n && m->v[at].stream == stream);
    if (*fresh) {
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 4;
            m->v = xrealloc(m->v, m->cap * sizeof *m->v);
        }
        memmove(m->v + at + 1, m->v + at, (m->n - at) * sizeof *m->v);
        m->v[at] = (struct cdc_pos){0, 0, stream};
        m->n++;
    }
    return &m->v[at];
}

void cdc_posmap_set(struct cdc_posmap *m, struct cdc_pos pos)
{
    if (m->n == 1 && m->v[0].stream == pos.stream) {
        m->v[0] = pos;
        return;
    }
    bool fresh;
    *posmap_slot(m, pos.stream, &fresh) = pos;
}

bool cdc_posmap_raise(struct cdc_posmap *m, struct cdc_pos pos)
{
    bool fresh;
    struct cdc_pos *p = posmap_slot(m, pos.stream, &fresh);
    if (!fresh && cdc_pos_cmp(pos, *p) <= 0)
        return false;
    *p = pos;
    return true;
}

void cdc_posmap_copy(struct cdc_posmap *dst, const struct cdc_posmap *src)
{
    if (dst->cap < src->n) {
        dst->cap = src->n;
        dst->v = xrealloc(dst->v, dst->cap * sizeof *dst->v);
    }
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof *src->v);
    dst->n = src->n;
}

char *cdc_posmap_format(const struct cdc_posmap *m, char *buf, size_t len)
{
    char one[CDC_POS_TEXT_MAX];
    if (m->n == 0 || (m->n == 1 && m->v[0].stream == 0))
        return cdc_pos_format(m->n ? m->v[0] : (struct cdc_pos){0, 0, 0}, buf, len);
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->n && off + 1 < len; i++) {
        struct cdc_pos p = m->v[i];
        p.stream = 0; /* said in front */
        int w = snprintf(buf + off, len - off, "%s%u=%s", i ? "," : "", m->v[i].stream,
                         cdc_pos_format(p, one, sizeof one));
        if (w < 0 || (size_t)w >= len - off) {
            if (len >= 4)
                memcpy(buf + len - 4, "\xe2\x80\xa6", 4); /* … */
            break;
        }
        off += (size_t)w;
    }
    return buf;
}

/* ---------- scalar positions ---------- */

void cdc_acks_fini(struct cdc_acks *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}

void cdc_acks_clear(struct cdc_acks *a)
{
    a->n = 0;
}

const struct cdc_ack *cdc_acks_get(const struct cdc_acks *a, uint32_t stream)
{
    if (a->n == 1)
        return a->v[0].stream == stream ? &a->v[0] : NULL;
    size_t at;
    LOWER_BOUND(a->v, a->n, stream);
    return at < a->n && a->v[at].stream == stream ? &a->v[at] : NULL;
}

static struct cdc_ack *acks_slot(struct cdc_acks *a, uint32_t stream, bool *fresh)
{
    size_t at;
    LOWER_BOUND(a->v, a->n, stream);
    *fresh = !(at < a->n && a->v[at].stream == stream);
    if (*fresh) {
        if (a->n == a->cap) {
            a->cap = a->cap ? 2 * a->cap : 4;
            a->v = xrealloc(a->v, a->cap * sizeof *a->v);
        }
        memmove(a->v + at + 1, a->v + at, (a->n - at) * sizeof *a->v);
        a->v[at] = (struct cdc_ack){stream, 0};
        a->n++;
    }
    return &a->v[at];
}

void cdc_acks_set(struct cdc_acks *a, uint32_t stream, uint64_t pos)
{
    bool fresh;
    acks_slot(a, stream, &fresh)->pos = pos;
}

void cdc_acks_raise(struct cdc_acks *a, uint32_t stream, uint64_t pos)
{
    bool fresh;
    struct cdc_ack *p = acks_slot(a, stream, &fresh);
    if (fresh || pos > p->pos)
        p->pos = pos;
}

void cdc_acks_copy(struct cdc_acks *dst, const struct cdc_acks *src)
{
    if (dst->cap < src->n) {
        dst->cap = src->n;
        dst->v = xrealloc(dst->v, dst->cap * sizeof *dst->v);
    }
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof *src->v);
    dst->n = src->n;
}
