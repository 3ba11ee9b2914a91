/* The runners' latency and request figures (runner.h): commit-to-durable
 * times, flush and request durations, HTTP status counts.  Everything is
 * added under the runner's stats mutex, which engine_sink_stats copies
 * under. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/runner.h"
#include "util/clock.h"
#include "util/mem.h"

void runner_lat_observe(struct histo *h, const struct cdc_event *ev, int64_t now_us)
{
    if (ev->snapshot || cdc_op_is_control(ev->op) || ev->commit_ts <= 0)
        return;
    histo_observe(h, (double)(now_us - ev->commit_ts) / 1e6);
}

void runner_lat_merge(struct runner *r, const struct histo *h)
{
    if (!h->count)
        return;
    pthread_mutex_lock(&r->mu);
    histo_merge(&r->durable_seconds, h);
    pthread_mutex_unlock(&r->mu);
}

void runner_lat_written(struct runner *r, struct cdc_event *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        if (ev->snapshot || cdc_op_is_control(ev->op) || ev->commit_ts <= 0)
            continue;
        struct lat_run *last = r->nlat ? &r->lat[r->nlat - 1] : NULL;
        if (last && last->commit_ts == ev->commit_ts) {
            last->last_seq = ev->seq;
            last->n++;
            continue;
        }
        if (r->nlat == r->caplat) {
            r->caplat = r->caplat ? 2 * r->caplat : 64;
            r->lat = xrealloc(r->lat, r->caplat * sizeof *r->lat);
        }
        r->lat[r->nlat++] = (struct lat_run){ev->seq, ev->commit_ts, 1};
    }
}

void runner_lat_durable(struct runner *r, uint64_t seq)
{
    size_t k = 0;
    while (k < r->nlat && r->lat[k].last_seq <= seq)
        k++;
    if (k == 0)
        return;
    int64_t now = clock_wall_us();
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < k; i++)
        histo_observe_n(&r->durable_seconds, (double)(now - r->lat[i].commit_ts) / 1e6,
                        r->lat[i].n);
    pthread_mutex_unlock(&r->mu);
    r->nlat -= k;
    memmove(r->lat, r->lat + k, r->nlat * sizeof *r->lat);
}

void runner_lat_lost(struct runner *r)
{
    r->nlat = 0;
}

void runner_note_request(struct runner *r, int http_status, int64_t duration_us)
{
    pthread_mutex_lock(&r->mu);
    if (duration_us > 0)
        histo_observe(&r->request_seconds, (double)duration_us / 1e6);
    if (http_status > 0) {
        /* One slot per code; once all but the last are taken, further codes
         * share the last one as code 0. */
        const unsigned other = ENGINE_HTTP_CODES - 1;
        unsigned i = 0;
        while (i < r->nhttp && i < other && r->http[i].code != http_status)
            i++;
        if (i == r->nhttp)
            r->http[r->nhttp++] = (struct http_count){i < other ? http_status : 0, 0};
        r->http[i].n++;
    }
    pthread_mutex_unlock(&r->mu);
}
