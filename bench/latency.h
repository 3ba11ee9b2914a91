/* Shared by the benchmark's sink-side helpers (tail-lat, webhook-rx): finding
 * the commit time in an envelope and summarizing commit-to-arrival latencies. */
#ifndef CDC_BENCH_LATENCY_H
#define CDC_BENCH_LATENCY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Wall clock in microseconds since the epoch (the clock PostgreSQL stamps
 * commits with, on the same machine). */
int64_t now_us(void);

/* Scans one envelope object starting at p (leading whitespace allowed) and
 * stores its source.ts_us in *ts_us (-1 if it has none).  Returns the first
 * byte after the object, or NULL if the text up to end is not one complete
 * JSON object. */
const char *envelope_scan(const char *p, const char *end, int64_t *ts_us);

/* Latency samples in microseconds, plus counts and arrival times. */
struct lat {
    int64_t *v;
    size_t n, cap;
    uint64_t events;  /* envelopes seen (with or without a commit time) */
    uint64_t no_ts;   /* envelopes without source.ts_us */
    int64_t first_us; /* arrival of the first envelope, 0 if none */
    int64_t last_us;  /* arrival of the last envelope */
};

/* Records one envelope that arrived at arrival_us and was committed at
 * ts_us (-1: unknown). */
void lat_add(struct lat *l, int64_t ts_us, int64_t arrival_us);

/* Scans every envelope in a body that holds one envelope or a JSON array of
 * them (webhook batches); returns how many were found, or -1 if the body is
 * neither. */
long lat_add_body(struct lat *l, const char *p, size_t len, int64_t arrival_us);

/* Prints one line of key=value pairs: events, samples, p50/p90/p99/p99.9/max
 * and mean in milliseconds, first/last arrival in microseconds. */
void lat_report(struct lat *l, FILE *out);

/* Frees the samples. */
void lat_free(struct lat *l);

#endif
