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

struct timespec;
/* *ts = timeout_ms from now on the wall clock: the deadline of a
 * pthread_cond_timedwait on a condition variable of default attributes. */
void clock_deadline_after(struct timespec *ts, int timeout_ms);

#endif
