#include <stdlib.h>
#include <string.h>

#include "source/pg/xidsnap.h"
#include "util/mem.h"

int xidsnap_parse(struct xidsnap *xs, const char *text)
{
    memset(xs, 0, sizeof *xs);
    char *end;
    strtoull(text, &end, 10);
    if (end == text || *end != ':')
        return -1;
    const char *p = end + 1;
    unsigned long long xmax = strtoull(p, &end, 10);
    if (end == p || *end != ':')
        return -1;
    xs->xmax = (uint32_t)xmax;
    p = end + 1;
    while (*p) {
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p)
            break;
        xs->xip = xrealloc(xs->xip, (xs->nxip + 1) * sizeof *xs->xip);
        xs->xip[xs->nxip++] = (uint32_t)x;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

void xidsnap_fini(struct xidsnap *xs)
{
    free(xs->xip);
    memset(xs, 0, sizeof *xs);
}

bool xidsnap_sees(const struct xidsnap *xs, uint32_t xid)
{
    /* xids compare modulo 2^32, as PostgreSQL's TransactionIdPrecedes. */
    if ((int32_t)(xid - xs->xmax) >= 0)
        return false;
    for (size_t i = 0; i < xs->nxip; i++)
        if (xs->xip[i] == xid)
            return false;
    return true;
}
