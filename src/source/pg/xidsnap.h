/* What a PostgreSQL snapshot saw: from pg_current_snapshot()'s text
 * "xmin:xmax:xip,xip,…" (64-bit xids), answering for the 32-bit xids the
 * replication stream carries whether a transaction's effects are in rows read
 * with that snapshot. */
#ifndef CDC_SOURCE_PG_XIDSNAP_H
#define CDC_SOURCE_PG_XIDSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xidsnap {
    uint32_t xmax; /* first xid not yet assigned when it was taken */
    uint32_t *xip; /* owned: xids running then */
    size_t nxip;
};

/* Returns 0, or -1 if text is not a snapshot. */
int xidsnap_parse(struct xidsnap *xs, const char *text);
void xidsnap_fini(struct xidsnap *xs);
/* Whether the snapshot saw transaction xid committed.  (Aborted ones have no
 * changes in the stream, so "not running and older than xmax" suffices.) */
bool xidsnap_sees(const struct xidsnap *xs, uint32_t xid);

#endif
