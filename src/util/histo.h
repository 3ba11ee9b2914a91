/* Latency histograms with fixed buckets, for /metrics.
 *
 * The bucket bounds are in seconds and the same for every histogram (from
 * 1 ms to 5 minutes), so that one Prometheus query can aggregate sinks.
 * Observations go to the first bucket whose upper bound is >= the value
 * (the last bucket is +Inf); counts are kept per bucket and summed when
 * rendered, as Prometheus wants them cumulative.
 *
 * Not thread-safe: the owner guards a histogram with its own lock, and
 * readers copy it under that lock. */
#ifndef CDC_UTIL_HISTO_H
#define CDC_UTIL_HISTO_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define HISTO_BUCKETS 16 /* finite bounds; one more bucket for +Inf */

/* The finite upper bounds, ascending, in seconds. */
extern const double histo_bounds[HISTO_BUCKETS];

struct histo {
    uint64_t counts[HISTO_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t count;
    double sum; /* seconds */
};

/* Adds one observation of v seconds (negative values count as 0). */
void histo_observe(struct histo *h, double v);
/* Adds n observations of the same value (one batch that became durable at
 * once). */
void histo_observe_n(struct histo *h, double v, uint64_t n);

/* Adds every observation of src to h. */
void histo_merge(struct histo *h, const struct histo *src);

/* Appends one histogram's samples in the Prometheus text format:
 *   NAME_bucket{LABELS,le="0.001"} 3 ... NAME_bucket{LABELS,le="+Inf"} N
 *   NAME_sum{LABELS} S
 *   NAME_count{LABELS} N
 * labels is the text between the braces without them ("sink=\"a\""), already
 * escaped; "" for none. */
void histo_render(const struct histo *h, const char *name, const char *labels, struct buf *out);

#endif
