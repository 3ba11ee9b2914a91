/* Source positions of the iceberg sink (see ice_pos.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/iceberg/ice_pos.h"
#include "util/err.h"

void icepos_fini(struct icepos *p)
{
    cdc_posmap_fini(&p->m);
}

void icepos_copy(struct icepos *dst, const struct icepos *src)
{
    cdc_posmap_copy(&dst->m, &src->m);
}

int icepos_format(const struct icepos *p, char *out, size_t len)
{
    if (!icepos_known(p)) {
        snprintf(out, len, "none");
        return 0;
    }
    cdc_posmap_format(&p->m, out, len);
    /* A cut text ends in "…": never stored as a position. */
    return strstr(out, "\xe2\x80\xa6") ? CDC_EINVAL : 0;
}

/* A hexadecimal number of 1..8 digits ending at `stop`. */
static int hex32(const char **s, char stop, uint32_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    int n = 0;
    for (; *p && *p != stop; p++, n++) {
        int d = *p >= '0' && *p <= '9'   ? *p - '0'
                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                                         : -1;
        if (d < 0 || n >= 8)
            return CDC_EINVAL;
        v = v << 4 | (uint64_t)d;
    }
    if (n == 0 || *p != stop)
        return CDC_EINVAL;
    *out = (uint32_t)v;
    *s = p + 1;
    return 0;
}

/* A decimal number of 1..20 digits; *s moves past it. */
static int dec64(const char **s, uint64_t *out)
{
    if (**s < '0' || **s > '9')
        return CDC_EINVAL;
    char *end;
    *out = strtoull(*s, &end, 10);
    if (end - *s > 20)
        return CDC_EINVAL;
    *s = end;
    return 0;
}

/* One "[S=]H/L:idx" entry ending at ',' or the end. */
static int parse_one(const char **s, struct cdc_pos *pos)
{
    const char *p = *s;
    uint64_t stream = 0;
    const char *eq = strchr(p, '='), *comma = strchr(p, ',');
    if (eq && (!comma || eq < comma)) {
        if (dec64(&p, &stream) < 0 || p != eq || stream > UINT32_MAX)
            return CDC_EINVAL;
        p++;
    }
    uint32_t hi, lo;
    if (hex32(&p, '/', &hi) < 0 || hex32(&p, ':', &lo) < 0)
        return CDC_EINVAL;
    uint64_t idx;
    if (strncmp(p, "end", 3) == 0) {
        idx = CDC_POS_TXN_END;
        p += 3;
    } else if (dec64(&p, &idx) < 0) {
        return CDC_EINVAL;
    }
    if (*p != '\0' && *p != ',')
        return CDC_EINVAL;
    *pos = (struct cdc_pos){(uint64_t)hi << 32 | lo, idx, (uint32_t)stream};
    *s = p;
    return 0;
}

int icepos_parse(const char *s, struct icepos *out)
{
    cdc_posmap_clear(&out->m);
    if (!s)
        return 0;
    for (;;) {
        struct cdc_pos pos;
        if (parse_one(&s, &pos) < 0 || cdc_posmap_get(&out->m, pos.stream)) {
            cdc_posmap_clear(&out->m);
            return CDC_EINVAL;
        }
        cdc_posmap_set(&out->m, pos);
        if (*s == '\0')
            return 0;
        s++; /* ',' */
    }
}

bool icepos_holds(const struct icepos *have, const struct cdc_event *ev)
{
    return !ev->snapshot && cdc_posmap_covers(&have->m, ev->pos);
}

void icepos_advance(struct icepos *p, struct cdc_pos pos)
{
    cdc_posmap_raise(&p->m, pos);
}

void icepos_merge(struct icepos *p, const struct icepos *more)
{
    for (size_t i = 0; i < more->m.n; i++)
        cdc_posmap_raise(&p->m, more->m.v[i]);
}

void icepos_oldest(const struct icepos *const *v, size_t n, struct cdc_posmap *out)
{
    cdc_posmap_clear(out);
    if (n == 0)
        return;
    for (size_t s = 0; s < v[0]->m.n; s++) {
        struct cdc_pos oldest = v[0]->m.v[s];
        bool everywhere = true;
        for (size_t i = 1; i < n && everywhere; i++) {
            const struct cdc_pos *p = cdc_posmap_get(&v[i]->m, oldest.stream);
            if (!p)
                everywhere = false;
            else if (cdc_pos_cmp(*p, oldest) < 0)
                oldest = *p;
        }
        if (everywhere)
            cdc_posmap_set(out, oldest);
    }
}
