#include "latency.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* p at the opening quote; returns the byte after the closing quote. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']')
                depth--;
            p++;
            if (depth == 0)
                return p;
        }
        return NULL;
    }
    /* number, true, false, null */
    const char *start = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\r' && *p != '\n')
        p++;
    return p > start && p < end ? p : NULL;
}

static int key_is(const char *k, const char *kend, const char *want)
{
    size_t n = strlen(want);
    return (size_t)(kend - k) == n + 2 && memcmp(k + 1, want, n) == 0;
}

/* Walks the members of the object at p (after leading whitespace).  For the
 * member named `key` calls found(value, end, arg); returns the byte after
 * the object or NULL. */
static const char *walk_object(const char *p, const char *end, const char *key,
                               void (*found)(const char *, const char *, void *), void *arg)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    while (p < end) {
        if (*p != '"')
            return NULL;
        const char *k = p;
        p = skip_string(p, end);
        if (!p)
            return NULL;
        const char *kend = p;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = skip_ws(p + 1, end);
        const char *v = p;
        p = skip_value(p, end);
        if (!p)
            return NULL;
        if (key_is(k, kend, key))
            found(v, p, arg);
        p = skip_ws(p, end);
        if (p >= end)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1, end);
    }
    return NULL;
}

static void found_ts(const char *v, const char *end, void *arg)
{
    int64_t x = 0;
    const char *p = v;
    while (p < end && *p >= '0' && *p <= '9')
        x = x * 10 + (*p++ - '0');
    if (p > v)
        *(int64_t *)arg = x;
}

static void found_source(const char *v, const char *end, void *arg)
{
    if (v < end && *v == '{')
        walk_object(v, end, "ts_us", found_ts, arg);
}

const char *envelope_scan(const char *p, const char *end, int64_t *ts_us)
{
    *ts_us = -1;
    return walk_object(p, end, "source", found_source, ts_us);
}

void lat_add(struct lat *l, int64_t ts_us, int64_t arrival_us)
{
    l->events++;
    if (!l->first_us)
        l->first_us = arrival_us;
    l->last_us = arrival_us;
    if (ts_us < 0) {
        l->no_ts++;
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) {
            perror("realloc");
            exit(1);
        }
    }
    l->v[l->n++] = arrival_us - ts_us;
}

long lat_add_body(struct lat *l, const char *p, size_t len, int64_t arrival_us)
{
    const char *end = p + len;
    int64_t ts;
    p = skip_ws(p, end);
    if (p < end && *p == '{') {
        if (!envelope_scan(p, end, &ts))
            return -1;
        lat_add(l, ts, arrival_us);
        return 1;
    }
    if (p >= end || *p != '[')
        return -1;
    long n = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return 0;
    while (p < end) {
        p = envelope_scan(p, end, &ts);
        if (!p)
            return -1;
        lat_add(l, ts, arrival_us);
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ']')
            return n;
        if (p >= end || *p != ',')
            return -1;
        p++;
    }
    return -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double pct_ms(const struct lat *l, double q)
{
    if (!l->n)
        return 0;
    size_t rank = (size_t)(q * (double)l->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return (double)l->v[rank - 1] / 1000.0;
}

void lat_report(struct lat *l, FILE *out)
{
    qsort(l->v, l->n, sizeof *l->v, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < l->n; i++)
        sum += (double)l->v[i];
    fprintf(out,
            "events=%llu samples=%zu no_ts=%llu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
            "p999_ms=%.3f max_ms=%.3f mean_ms=%.3f min_ms=%.3f first_us=%lld last_us=%lld\n",
            (unsigned long long)l->events, l->n, (unsigned long long)l->no_ts, pct_ms(l, 0.50),
            pct_ms(l, 0.90), pct_ms(l, 0.99), pct_ms(l, 0.999), l->n ? l->v[l->n - 1] / 1000.0 : 0,
            l->n ? sum / (double)l->n / 1000.0 : 0, l->n ? l->v[0] / 1000.0 : 0,
            (long long)l->first_us, (long long)l->last_us);
    fflush(out);
}

void lat_free(struct lat *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
