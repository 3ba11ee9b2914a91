/* Source positions as the iceberg sink keeps them: in each table snapshot's
 * summary (`cdc.position`), per table in memory, and as the one position
 * the sink reports having.  Everything that reads, writes, compares or
 * combines positions is here, so that a position carrying more than one
 * stream (a Kafka source's partitions) changes this file only.
 *
 * The text is cdc_pos_format's: "16/B374D848:3", or "16/B374D848:end" for
 * a whole source transaction (what the sink stores: it commits at
 * transaction ends). */
#ifndef CDC_SINK_ICEBERG_ICE_POS_H
#define CDC_SINK_ICEBERG_ICE_POS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/event.h"

#define ICEPOS_PROP "cdc.position"

/* What one table holds. */
struct icepos {
    bool known; /* false: nothing (a new table, or one without cdc.position) */
    struct cdc_pos pos;
};

/* The summary value; out needs CDC_POS_TEXT_MAX bytes. */
void icepos_format(const struct icepos *p, char *out, size_t len);
/* Reads a summary value (NULL: none): 0, or CDC_EINVAL. */
int icepos_parse(const char *s, struct icepos *out);

/* Whether a table at `have` already holds the (streamed) event ev. */
bool icepos_holds(const struct icepos *have, const struct cdc_event *ev);
/* The table now also holds everything up to pos. */
void icepos_advance(struct icepos *p, struct cdc_pos pos);
/* Whether a is before b (an unknown position is before every known one). */
bool icepos_before(const struct icepos *a, const struct icepos *b);

/* The position to report for tables v[0..n): the oldest (the engine skips
 * what is at or before it; each table skips the rest itself), or {0,0}
 * when one of them holds nothing. */
struct cdc_pos icepos_oldest(const struct icepos *const *v, size_t n);

#endif
