/* Source positions as the iceberg sink keeps them: in each table snapshot's
 * summary (`cdc.position`), per table in memory, and as the positions the
 * sink reports having.  Everything that reads, writes, compares or combines
 * positions is here.
 *
 * A table holds one position per source stream (core/posmap.h).  The text
 * is cdc_posmap_format's: "16/B374D848:end" for a single stream 0 (what
 * the sink stores: it commits at transaction ends), "0=16/B374D848:end,
 * 3=0/2A:end" for several streams (a Kafka source's partitions). */
#ifndef CDC_SINK_ICEBERG_ICE_POS_H
#define CDC_SINK_ICEBERG_ICE_POS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"
#include "core/posmap.h"

#define ICEPOS_PROP     "cdc.position"
#define ICEPOS_TEXT_MAX 8192 /* a summary value; more streams than fit are refused */

/* What one table holds: nothing (a new table, or one without cdc.position)
 * when m is empty.  Zero-initialized is empty; icepos_fini frees it. */
struct icepos {
    struct cdc_posmap m;
};

void icepos_fini(struct icepos *p);
/* dst = src. */
void icepos_copy(struct icepos *dst, const struct icepos *src);
static inline bool icepos_known(const struct icepos *p)
{
    return p->m.n > 0;
}

/* The summary value: 0, or CDC_EINVAL when it does not fit in len bytes. */
int icepos_format(const struct icepos *p, char *out, size_t len);
/* Reads a summary value (NULL: none): 0, or CDC_EINVAL. */
int icepos_parse(const char *s, struct icepos *out);

/* Whether a table at `have` already holds the (streamed) event ev. */
bool icepos_holds(const struct icepos *have, const struct cdc_event *ev);
/* The table now also holds everything of pos's stream up to pos. */
void icepos_advance(struct icepos *p, struct cdc_pos pos);
/* p now also holds everything `more` holds. */
void icepos_merge(struct icepos *p, const struct icepos *more);

/* The positions to report for tables v[0..n) into out: per stream the
 * oldest (the engine skips what is at or before it; each table skips the
 * rest itself); a stream some table holds nothing of is left out. */
void icepos_oldest(const struct icepos *const *v, size_t n, struct cdc_posmap *out);

#endif
