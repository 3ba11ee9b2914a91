/* Positions per stream.
 *
 * A source has one or more streams (PostgreSQL and MySQL one, stream 0; a
 * Kafka consumer one per topic partition, interleaved in one event log), and
 * positions are ordered only within a stream.  Whatever keeps "how far" for
 * a pipeline keeps it per stream: what a sink holds (struct cdc_posmap, full
 * positions), what the commit tracker confirmed and where a source starts
 * (struct cdc_acks, one scalar per stream).
 *
 * Both are small arrays sorted by stream: a lookup is a compare for the
 * common single stream and a binary search otherwise.  Zero-initialized
 * values are empty maps; _fini frees them.  Not thread-safe. */
#ifndef CDC_CORE_POSMAP_H
#define CDC_CORE_POSMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

/* One full position per stream (pos.stream is the key). */
struct cdc_posmap {
    struct cdc_pos *v; /* owned; sorted by stream, one entry per stream */
    size_t n, cap;
};

void cdc_posmap_fini(struct cdc_posmap *m);
void cdc_posmap_clear(struct cdc_posmap *m);
/* The position of stream s, or NULL (nothing known of it). */
const struct cdc_pos *cdc_posmap_get(const struct cdc_posmap *m, uint32_t stream);
/* Sets pos.stream's position to pos. */
void cdc_posmap_set(struct cdc_posmap *m, struct cdc_pos pos);
/* Sets pos.stream's position to pos if it has none or an older one;
 * returns whether it did. */
bool cdc_posmap_raise(struct cdc_posmap *m, struct cdc_pos pos);
/* Whether pos is at or before what m holds for its stream. */
static inline bool cdc_posmap_covers(const struct cdc_posmap *m, struct cdc_pos pos)
{
    const struct cdc_pos *h = cdc_posmap_get(m, pos.stream);
    return h && cdc_pos_cmp(pos, *h) <= 0;
}
/* dst = src. */
void cdc_posmap_copy(struct cdc_posmap *dst, const struct cdc_posmap *src);
/* "16/B374D848:3" for a single stream 0, "0=16/B374D848:3,2=…" otherwise
 * (at most len bytes, cut with "…"); "none" when empty.  Returns buf. */
char *cdc_posmap_format(const struct cdc_posmap *m, char *buf, size_t len);

/* One scalar position per stream (struct cdc_ack, core/event.h). */
struct cdc_acks {
    struct cdc_ack *v; /* owned; sorted by stream, one entry per stream */
    size_t n, cap;
};

void cdc_acks_fini(struct cdc_acks *a);
void cdc_acks_clear(struct cdc_acks *a);
/* The entry of stream s, or NULL. */
const struct cdc_ack *cdc_acks_get(const struct cdc_acks *a, uint32_t stream);
/* Sets stream's position. */
void cdc_acks_set(struct cdc_acks *a, uint32_t stream, uint64_t pos);
/* Sets stream's position if it has none or a smaller one. */
void cdc_acks_raise(struct cdc_acks *a, uint32_t stream, uint64_t pos);
/* dst = src. */
void cdc_acks_copy(struct cdc_acks *dst, const struct cdc_acks *src);

#endif
