/* The standard process figures Prometheus clients export (process_*), read
 * from Linux's /proc.  The parsers are pure functions over the files' text
 * so they can be tested on captured samples. */
#ifndef CDC_UTIL_PROCSTAT_H
#define CDC_UTIL_PROCSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct procstat {
    double cpu_seconds;        /* user + system time */
    uint64_t resident_bytes;   /* resident set size */
    uint64_t virtual_bytes;    /* virtual memory size */
    double start_time_seconds; /* since the Unix epoch */
    int64_t open_fds;          /* -1 if unknown */
    int64_t max_fds;           /* the soft limit; -1 if unknown */
};

/* From the text of /proc/<pid>/stat: utime and stime (fields 14, 15),
 * starttime (22), vsize (23) and rss (24), the clock ticks per second and
 * the page size given.  The command name (field 2) may hold spaces and
 * parentheses: fields are counted after its last ')'.  false if malformed. */
bool procstat_parse_stat(const char *text, long ticks, long page_size, double *cpu_seconds,
                         uint64_t *start_ticks, uint64_t *virtual_bytes, uint64_t *resident_bytes);
/* The boot time ("btime N") from the text of /proc/stat; false if absent. */
bool procstat_parse_btime(const char *text, uint64_t *btime);
/* The soft limit of "Max open files" from /proc/<pid>/limits; false if
 * absent ("unlimited" gives INT64_MAX). */
bool procstat_parse_max_fds(const char *text, int64_t *max_fds);

/* This process's figures now; what cannot be read stays 0 (or -1). */
void procstat_self(struct procstat *ps);

#endif
