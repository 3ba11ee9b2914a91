#include <math.h>

#include "pipeline/retry.h"

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x2545f4914f6cdd1dULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

int64_t retry_delay_us(const struct retry_cfg *rc, unsigned attempt, int64_t advice_us,
                       uint64_t *rng)
{
    double d = rc->initial_wait_seconds;
    for (unsigned i = 2; i < attempt && d < rc->max_wait_seconds; i++)
        d *= rc->multiplier;
    if (d > rc->max_wait_seconds)
        d = rc->max_wait_seconds;
    if (rc->jitter) {
        double u = (double)(xorshift(rng) >> 11) / (double)(1ULL << 53);
        d = d / 2 + u * d / 2;
    }
    int64_t us = (int64_t)llround(d * 1e6);
    if (advice_us > us)
        us = advice_us;
    return us;
}
