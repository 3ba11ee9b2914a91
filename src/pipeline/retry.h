/* Exponential backoff with optional jitter, from the reference's retry block. */
#ifndef CDC_PIPELINE_RETRY_H
#define CDC_PIPELINE_RETRY_H

#include <stdint.h>

#include "config/config.h"

/* Delay before attempt number `attempt` (2 = the first retry) in microseconds:
 * initial * multiplier^(attempt-2), capped at max, then with jitter spread
 * uniformly over [delay/2, delay].  A server's Retry-After advice
 * (advice_us > 0) wins when longer.  rng is the caller's xorshift state. */
int64_t retry_delay_us(const struct retry_cfg *rc, unsigned attempt, int64_t advice_us,
                       uint64_t *rng);

#endif
