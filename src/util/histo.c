/* Fixed-bucket histograms; see histo.h. */
#include <inttypes.h>

#include "util/histo.h"

const double histo_bounds[HISTO_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,      2.5,   5,    10,    30,   60,  300};

void histo_observe_n(struct histo *h, double v, uint64_t n)
{
    if (n == 0)
        return;
    if (!(v > 0)) /* also NaN */
        v = 0;
    size_t i = 0;
    while (i < HISTO_BUCKETS && v > histo_bounds[i])
        i++;
    h->counts[i] += n;
    h->count += n;
    h->sum += v * (double)n;
}

void histo_observe(struct histo *h, double v)
{
    histo_observe_n(h, v, 1);
}

void histo_merge(struct histo *h, const struct histo *src)
{
    for (size_t i = 0; i <= HISTO_BUCKETS; i++)
        h->counts[i] += src->counts[i];
    h->count += src->count;
    h->sum += src->sum;
}

void histo_render(const struct histo *h, const char *name, const char *labels, struct buf *out)
{
    const char *sep = labels && *labels ? "," : "";
    if (!labels)
        labels = "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= HISTO_BUCKETS; i++) {
        cum += h->counts[i];
        buf_printf(out, "%s_bucket{%s%sle=\"", name, labels, sep);
        if (i < HISTO_BUCKETS)
            buf_printf(out, "%g", histo_bounds[i]);
        else
            buf_puts(out, "+Inf");
        buf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    buf_printf(out, "%s_sum%s%s%s %.6f\n", name, open, labels, close, h->sum);
    buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", name, open, labels, close, h->count);
}
