/* Source positions of the iceberg sink (see ice_pos.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/iceberg/ice_pos.h"
#include "util/err.h"

void icepos_format(const struct icepos *p, char *out, size_t len)
{
    if (!p->known) {
        snprintf(out, len, "none");
        return;
    }
    cdc_pos_format(p->pos, out, len);
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

int icepos_parse(const char *s, struct icepos *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return 0;
    uint32_t hi, lo;
    if (hex32(&s, '/', &hi) < 0 || hex32(&s, ':', &lo) < 0)
        return CDC_EINVAL;
    uint64_t idx;
    if (strcmp(s, "end") == 0) {
        idx = CDC_POS_TXN_END;
    } else {
        char *end;
        if (*s < '0' || *s > '9')
            return CDC_EINVAL;
        idx = strtoull(s, &end, 10);
        if (*end)
            return CDC_EINVAL;
    }
    out->known = true;
    out->pos = (struct cdc_pos){(uint64_t)hi << 32 | lo, idx};
    return 0;
}

bool icepos_holds(const struct icepos *have, const struct cdc_event *ev)
{
    return have->known && !ev->snapshot && cdc_pos_cmp(ev->pos, have->pos) <= 0;
}

void icepos_advance(struct icepos *p, struct cdc_pos pos)
{
    if (!p->known || cdc_pos_cmp(pos, p->pos) > 0) {
        p->known = true;
        p->pos = pos;
    }
}

bool icepos_before(const struct icepos *a, const struct icepos *b)
{
    if (!b->known)
        return false;
    return !a->known || cdc_pos_cmp(a->pos, b->pos) < 0;
}

struct cdc_pos icepos_oldest(const struct icepos *const *v, size_t n)
{
    struct cdc_pos oldest = {0, 0};
    for (size_t i = 0; i < n; i++) {
        if (!v[i]->known)
            return (struct cdc_pos){0, 0};
        if (i == 0 || cdc_pos_cmp(v[i]->pos, oldest) < 0)
            oldest = v[i]->pos;
    }
    return oldest;
}
