/* Time helpers.  Monotonic time for timers, wall time for event timestamps. */
#ifndef CDC_UTIL_CLOCK_H
#define CDC_UTIL_CLOCK_H

#include <stdint.h>

/* Microseconds on the monotonic clock. */
int64_t clock_mono_us(void);
/* Microseconds since the Unix epoch. */
int64_t clock_wall_us(void);
/* Sleeps up to us microseconds (interrupted early by signals). */
void clock_sleep_us(int64_t us);

#endif
