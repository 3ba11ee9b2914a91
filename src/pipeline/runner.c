/* What both kinds of runner share (runner.h): state and stats, reporting
 * durability, failure streaks and backoff, rewinds, draining while
 * detached, and dead-lettering one event. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/json.h"
#include "pipeline/retry.h"
#include "pipeline/runner.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"

#define READY_POLL_US 500000 /* a detached sink asks whether it is ready this often */

void runner_set_state(struct runner *r, const char *state)
{
    pthread_mutex_lock(&r->mu);
    r->state = state;
    pthread_mutex_unlock(&r->mu);
}

void runner_note_error(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->errors++;
    str_copy(r->last_error, sizeof r->last_error, r->sk.err);
    pthread_mutex_unlock(&r->mu);
}

void runner_report_done(struct runner *r, uint64_t seq)
{
    if (seq == 0)
        return;
    pthread_mutex_lock(&r->mu);
    bool advanced = seq > r->done_seq;
    if (advanced)
        r->done_seq = seq;
    pthread_mutex_unlock(&r->mu);
    if (advanced)
        tracker_sink_done(r->eng->tracker, r->idx, seq);
}

uint32_t runner_request_rewind(struct runner *r)
{
    uint32_t gen = atomic_fetch_add(&r->eng->rewind_requested, 1) + 1;
    log_info("sink.rewind_requested", "sink=%s generation=%u", r->sk.cfg->sink_id, gen);
    return gen;
}

unsigned runner_failed(struct runner *r, uint64_t lost)
{
    r->fail_streak++;
    r->progress_need = lost ? lost : 1;
    r->progress_made = 0;
    return r->fail_streak;
}

void runner_progress(struct runner *r, uint64_t n)
{
    if (!r->fail_streak || n == 0)
        return;
    r->progress_made += n;
    if (r->progress_made < r->progress_need)
        return;
    log_info("sink.recovered", "sink=%s failures=%u", r->sk.cfg->sink_id, r->fail_streak);
    r->fail_streak = 0;
}

int64_t runner_backoff_us(struct runner *r, unsigned attempt, int64_t advice_us)
{
    unsigned streak = r->fail_streak ? r->fail_streak : 1;
    /* retry_delay_us counts attempt 2 as the first retry */
    return retry_delay_us(&r->sk.cfg->retry, streak + 1 + attempt, advice_us, &r->rng);
}

uint32_t runner_rewind_when_due(struct runner *r)
{
    if (r->fail_streak > REWIND_BUDGET) {
        /* Failing again and again right after reopening (a full disk, a
         * destination that accepts connections but not data): every rewind
         * makes the source stream the whole backlog again for every sink.
         * Wait out the backoff, then for the sink to say it can take data. */
        runner_set_state(r, "detached");
        log_warn("sink.detached", "sink=%s failures=%u hint=%s", r->sk.cfg->sink_id, r->fail_streak,
                 log_q("failing right after every reopen: waiting for it to be ready before "
                       "asking the source to replay"));
        if (!runner_drain_for(r, runner_backoff_us(r, 0, 0)))
            return 0;
        while (r->sk.ops->ready && !r->sk.ops->ready(&r->sk))
            if (!runner_drain_for(r, READY_POLL_US))
                return 0;
        log_info("sink.ready", "sink=%s failures=%u", r->sk.cfg->sink_id, r->fail_streak);
        runner_set_state(r, "retrying");
    }
    return runner_request_rewind(r);
}

bool runner_drain_for(struct runner *r, int64_t us)
{
    struct cdc_event *batch[READ_BATCH];
    int64_t end = clock_mono_us() + us;
    for (;;) {
        int64_t left = end - clock_mono_us();
        if (left <= 0 || atomic_load(&r->eng->abandon))
            return !atomic_load(&r->eng->abandon);
        int ms = left > 50000 ? 50 : (int)(left / 1000) + 1;
        int n = evlog_read(r->eng->log, r->idx, batch, READ_BATCH, ms);
        if (n == CDC_ESTOP)
            return false;
        if (n > 0)
            evlog_release(r->eng->log, batch, (size_t)n);
    }
}

static int pos_cmp(const void *a, const void *b)
{
    return cdc_pos_cmp(*(const struct cdc_pos *)a, *(const struct cdc_pos *)b);
}

bool runner_skipped_by_dlq(const struct runner *r, struct cdc_pos pos)
{
    if (r->nskip == 0)
        return false;
    return bsearch(&pos, r->skip, r->nskip, sizeof *r->skip, pos_cmp) != NULL;
}

bool runner_dlq_enabled(const struct runner *r)
{
    return r->eng->store && r->eng->cfg->platform.dlq.enabled;
}

int runner_dead_letter(struct runner *r, const struct cdc_event *ev, const char *errclass,
                       const char *error, int attempts, int http_status)
{
    if (!runner_dlq_enabled(r))
        return CDC_ERR;
    struct buf key = BUF_INIT, val = BUF_INIT;
    json_key(&key, ev);
    json_envelope(&val, ev, r->sk.json);
    struct dlq_failure f = {
        .sink_id = r->sk.cfg->sink_id,
        .error_class = errclass,
        .error = error,
        .attempts = attempts,
        .http_status = http_status,
        .first_failed_us = clock_wall_us(),
    };
    int64_t id = 0;
    char err[512];
    int rc = 0;
    if (r->eng->dlq_hook &&
        r->eng->dlq_hook(r->eng->dlq_arg, ev, f.sink_id, errclass, error, key.p, val.p) != 0)
        rc = cdc_fail(err, sizeof err, CDC_EIO, "the dead-letter topic did not take it");
    if (rc == 0)
        rc = store_dlq_add(r->eng->store, ev, key.p, val.p, &f, &id, err, sizeof err);
    buf_fini(&key);
    buf_fini(&val);
    char pos[CDC_POS_TEXT_MAX];
    cdc_pos_format(ev->pos, pos, sizeof pos);
    if (rc != 0) {
        log_error("sink.dead_letter_failed", "sink=%s position=%s error=%s", r->sk.cfg->sink_id,
                  pos, log_q(err));
        return CDC_ERR;
    }
    log_warn("sink.dead_lettered",
             "sink=%s id=%lld position=%s table=%s attempts=%d class=%s "
             "error=%s",
             r->sk.cfg->sink_id, (long long)id, pos, ev->tab ? ev->tab->topic : "-", attempts,
             errclass, log_q(error));
    /* Snapshot rows are skipped by content (deadletter.c), never by
     * position. */
    if (!ev->snapshot)
        runner_skip_add(r, ev->pos);
    pthread_mutex_lock(&r->mu);
    r->dead_lettered++;
    pthread_mutex_unlock(&r->mu);
    return 0;
}
