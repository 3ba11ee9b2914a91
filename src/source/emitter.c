/* The emitter; see emitter.h. */
#include <pthread.h>
#include <stdlib.h>

#include "pipeline/engine.h"
#include "schema/schema_hist.h"
#include "source/emitter.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

/* Events held before a push.  Events waiting here are outside the event
 * log's memory budget: few of them, counted in bytes as well. */
#define PUSH_BATCH       512
#define PUSH_BATCH_BYTES (256u << 10)
#define PUSH_WAIT_MS     100 /* a full pipeline is retried (and the hook called) this often */
#define PAUSE_POLL_US    50000
#define SEEN_TABLES      8 /* tables emitter_event remembers as versioned */

/* The commit history emitter_lag reads: one sample per HIST_WINDOW_US (the
 * last commit of the window), the newest HIST_CAP of them. */
#define HIST_CAP       8192
#define HIST_WINDOW_US 10000

struct hist_sample {
    uint64_t seq;      /* the newest seq given out at the sample */
    uint64_t events;   /* changes emitted up to it */
    uint64_t pos;      /* the newest commit position emitted (0: none yet) */
    int64_t ts;        /* its commit time, unix us; 0: snapshot rows (no commit time) */
    int64_t window_us; /* monotonic start of its window */
};

struct emitter {
    struct emitter_cfg cfg;
    pthread_mutex_t mu;            /* emitter_batch callers */
    uint64_t seq;                  /* last seq given out */
    struct cdc_acks last_end;      /* per stream; the source thread's */
    struct cdc_acks reached;       /* per stream: newest commit end or keepalive; the same */
    atomic_uint_fast64_t last_pos; /* the newest commit position of any stream (the history's) */
    struct cdc_event *pend[PUSH_BATCH]; /* numbered, not yet pushed */
    size_t npend;
    size_t pend_bytes;
    bool in_txn; /* changes emitted since the last commit or keepalive */
    /* The tables emitter_event versioned last (references; the source
     * thread's): events of these skip the history, also when a
     * transaction interleaves several tables. */
    struct cdc_table *seen[SEEN_TABLES];
    unsigned seen_next;
    atomic_bool failed;      /* see emitter_failed */
    pthread_mutex_t fail_mu; /* fail_err */
    char fail_err[1024];
    /* Read by other threads (emitter_counts) without the lock. */
    atomic_uint_fast64_t events, transactions;
    atomic_int_fast64_t last_commit_ts;

    pthread_mutex_t hist_mu; /* the history */
    struct hist_sample *hist;
    size_t hist_head, hist_n; /* ring: oldest at head */
    bool hist_wrapped;        /* samples were dropped */
};

struct emitter *emitter_new(const struct emitter_cfg *cfg)
{
    struct emitter *em = xcalloc(1, sizeof *em);
    em->cfg = *cfg;
    pthread_mutex_init(&em->mu, NULL);
    pthread_mutex_init(&em->hist_mu, NULL);
    pthread_mutex_init(&em->fail_mu, NULL);
    em->hist = xcalloc(HIST_CAP, sizeof *em->hist);
    return em;
}

void emitter_free(struct emitter *em)
{
    if (!em)
        return;
    for (size_t i = 0; i < em->npend; i++)
        cdc_event_unref(em->pend[i]);
    cdc_acks_fini(&em->last_end);
    cdc_acks_fini(&em->reached);
    for (unsigned i = 0; i < SEEN_TABLES; i++)
        cdc_table_unref(em->seen[i]);
    pthread_mutex_destroy(&em->fail_mu);
    pthread_mutex_destroy(&em->mu);
    pthread_mutex_destroy(&em->hist_mu);
    free(em->hist);
    free(em);
}

/* ---------- the commit history ---------- */

static struct hist_sample *hist_at(struct emitter *em, size_t i)
{
    return &em->hist[(em->hist_head + i) % HIST_CAP];
}

/* Records where the stream is: after a commit (ts its commit time) or a
 * batch of snapshot rows (ts 0).  Within one window the newest sample is
 * replaced, so the newest commit is always there. */
static void hist_note(struct emitter *em, uint64_t seq, uint64_t pos, int64_t ts)
{
    int64_t now = clock_mono_us();
    uint64_t events = atomic_load_explicit(&em->events, memory_order_relaxed);
    pthread_mutex_lock(&em->hist_mu);
    struct hist_sample *last = em->hist_n ? hist_at(em, em->hist_n - 1) : NULL;
    if (last && now - last->window_us < HIST_WINDOW_US && (last->ts != 0) == (ts != 0)) {
        *last = (struct hist_sample){seq, events, pos, ts, last->window_us};
    } else {
        if (em->hist_n == HIST_CAP) {
            em->hist_head = (em->hist_head + 1) % HIST_CAP;
            em->hist_n--;
            em->hist_wrapped = true;
        }
        *hist_at(em, em->hist_n++) = (struct hist_sample){seq, events, pos, ts, now};
    }
    pthread_mutex_unlock(&em->hist_mu);
}

void emitter_lag(struct emitter *em, uint64_t seq, int64_t now_us, struct emitter_lag *lag)
{
    *lag = (struct emitter_lag){0, 0, 0};
    uint64_t events = atomic_load_explicit(&em->events, memory_order_relaxed);
    pthread_mutex_lock(&em->hist_mu);
    /* The first sample after seq (binary search: seqs only grow). */
    size_t lo = 0, hi = em->hist_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hist_at(em, mid)->seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == em->hist_n) {
        /* Nothing sampled after seq: caught up, or only what the newest
         * window replaced (the sink is behind by less than a window). */
        if (lo > 0)
            lag->pos = hist_at(em, lo - 1)->pos;
        pthread_mutex_unlock(&em->hist_mu);
        return;
    }
    uint64_t before = 0;
    if (lo > 0) {
        before = hist_at(em, lo - 1)->events;
        lag->pos = hist_at(em, lo - 1)->pos;
    } else if (em->hist_wrapped) {
        before = hist_at(em, 0)->events; /* older than the history: at least this much */
    }
    lag->events = events > before ? events - before : 0;
    for (size_t i = lo; i < em->hist_n; i++) {
        const struct hist_sample *h = hist_at(em, i);
        if (h->ts > 0) {
            lag->seconds = now_us > h->ts ? (double)(now_us - h->ts) / 1e6 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&em->hist_mu);
}

/* ---------- pause and progress ---------- */

bool emitter_paused(const struct emitter *em)
{
    return em->cfg.paused && atomic_load(em->cfg.paused);
}

bool emitter_wait_resumed(const struct emitter *em)
{
    bool waited = false;
    while (emitter_paused(em) && !emitter_stopping(em)) {
        waited = true;
        clock_sleep_us(PAUSE_POLL_US);
    }
    return waited;
}

void emitter_progress(struct emitter *em, const struct snap_progress *p)
{
    if (em->cfg.progress_hook)
        em->cfg.progress_hook(em->cfg.wait_arg, p);
}

void emitter_confirmed(struct emitter *em, struct cdc_acks *out)
{
    engine_confirmed(em->cfg.eng, out);
}

bool emitter_stopping(const struct emitter *em)
{
    return (em->cfg.stop && *em->cfg.stop) || engine_failed(em->cfg.eng, NULL, 0) ||
           atomic_load(&em->failed);
}

void emitter_set_stop(struct emitter *em, const volatile sig_atomic_t *stop)
{
    em->cfg.stop = stop;
}

bool emitter_in_txn(const struct emitter *em)
{
    return em->in_txn;
}

void emitter_forget_txn(struct emitter *em)
{
    em->in_txn = false;
}

/* Pushes evs[0..n) into the engine, waiting while it is full; the events are
 * the engine's or released afterwards.  With hook (the source thread) the
 * wait calls the wait hook, so the source keeps its server's connection
 * alive.  Returns CDC_ESTOP if a stop was requested while blocked (the
 * unpushed events are dropped: they were never confirmed, the next run gets
 * them), else 0. */
static int push(struct emitter *em, struct cdc_event **evs, size_t n, bool hook)
{
    size_t off = 0;
    int rc = 0;
    bool logged = false;
    while (off < n) {
        size_t done = 0;
        rc = engine_push(em->cfg.eng, evs + off, n - off, &done, PUSH_WAIT_MS);
        off += done;
        if (rc == 0)
            break;
        if (rc == CDC_ESTOP || emitter_stopping(em)) {
            rc = CDC_ESTOP;
            break;
        }
        if (!hook)
            continue;
        if (!logged) {
            log_debug("source.backpressure", "waiting=%zu", n - off);
            logged = true;
        }
        if (em->cfg.wait_hook)
            em->cfg.wait_hook(em->cfg.wait_arg);
    }
    for (size_t i = off; i < n; i++)
        cdc_event_unref(evs[i]);
    return rc == CDC_ESTOP ? CDC_ESTOP : 0;
}

int emitter_flush(struct emitter *em)
{
    int rc = push(em, em->pend, em->npend, true);
    em->npend = 0;
    em->pend_bytes = 0;
    return rc;
}

bool emitter_failed(struct emitter *em, char *err, size_t errlen)
{
    if (!atomic_load(&em->failed))
        return false;
    if (err && errlen) {
        pthread_mutex_lock(&em->fail_mu);
        str_copy(err, errlen, em->fail_err);
        pthread_mutex_unlock(&em->fail_mu);
    }
    return true;
}

static void set_failed(struct emitter *em, const char *why)
{
    pthread_mutex_lock(&em->fail_mu);
    if (!atomic_load(&em->failed))
        str_copy(em->fail_err, sizeof em->fail_err, why);
    atomic_store(&em->failed, true);
    pthread_mutex_unlock(&em->fail_mu);
}

/* Whether emitter_event versioned tab lately. */
static bool seen_lately(const struct emitter *em, const struct cdc_table *tab)
{
    for (unsigned i = 0; i < SEEN_TABLES; i++)
        if (em->seen[i] == tab)
            return true;
    return false;
}

int emitter_event(struct emitter *em, struct cdc_event *ev)
{
    if (atomic_load(&em->failed)) {
        cdc_event_unref(ev);
        return CDC_ESTOP;
    }
    if (em->cfg.schema && ev->tab && !cdc_op_is_control(ev->op) && !seen_lately(em, ev->tab)) {
        char e[1024] = "";
        if (schemahist_observe(em->cfg.schema, ev->tab, ev->pos, e, sizeof e) != 0) {
            /* What came before is delivered; this event and what follows
             * never are, so nothing past it is confirmed. */
            cdc_event_unref(ev);
            (void)emitter_flush(em);
            set_failed(em, e);
            return CDC_ESTOP;
        }
        cdc_table_ref(ev->tab);
        cdc_table_unref(em->seen[em->seen_next]);
        em->seen[em->seen_next] = ev->tab;
        em->seen_next = (em->seen_next + 1) % SEEN_TABLES;
    }
    ev->seq = ++em->seq;
    if (!cdc_op_is_control(ev->op)) {
        engine_route(em->cfg.eng, ev);
        atomic_fetch_add_explicit(&em->events, 1, memory_order_relaxed);
        em->in_txn |= ev->op != CDC_OP_MESSAGE || ev->msg_transactional;
    }
    em->pend[em->npend++] = ev;
    em->pend_bytes += ev->size;
    if (em->npend == PUSH_BATCH || em->pend_bytes >= PUSH_BATCH_BYTES)
        return emitter_flush(em);
    return 0;
}

int emitter_commit(struct emitter *em, struct cdc_event *ev)
{
    uint64_t end = ev->end_lsn;
    uint32_t stream = ev->pos.stream;
    int64_t ts = ev->commit_ts;
    int rc = emitter_event(em, ev);
    /* ev may be gone already (pushed and released, or freed on a stop): its
     * seq is the newest one given out. */
    if (rc == 0)
        engine_commit(em->cfg.eng, em->seq, stream, end);
    cdc_acks_set(&em->last_end, stream, end);
    cdc_acks_set(&em->reached, stream, end);
    atomic_store_explicit(&em->last_pos, end, memory_order_relaxed);
    atomic_fetch_add_explicit(&em->transactions, 1, memory_order_relaxed);
    atomic_store_explicit(&em->last_commit_ts, ts, memory_order_relaxed);
    em->in_txn = false;
    hist_note(em, em->seq, end, ts > 0 ? ts : 1);
    return rc;
}

void emitter_keepalive(struct emitter *em, uint32_t stream, uint64_t pos)
{
    engine_commit(em->cfg.eng, em->seq, stream, pos);
    const struct cdc_ack *a = cdc_acks_get(&em->reached, stream);
    if (!a || a->pos < pos)
        cdc_acks_set(&em->reached, stream, pos);
    em->in_txn = false;
}

int emitter_batch(struct emitter *em, struct cdc_event **evs, size_t n, uint64_t *last_seq)
{
    if (n == 0)
        return 0;
    const struct cdc_table *last = NULL;
    for (size_t i = 0; i < n && em->cfg.schema && !atomic_load(&em->failed); i++) {
        struct cdc_event *ev = evs[i];
        if (!ev->tab || ev->tab == last || cdc_op_is_control(ev->op))
            continue;
        char e[1024] = "";
        if (schemahist_observe(em->cfg.schema, ev->tab, ev->pos, e, sizeof e) != 0)
            set_failed(em, e);
        last = ev->tab;
    }
    if (atomic_load(&em->failed)) {
        for (size_t i = 0; i < n; i++)
            cdc_event_unref(evs[i]);
        return CDC_ESTOP;
    }
    pthread_mutex_lock(&em->mu);
    uint64_t data = 0;
    for (size_t i = 0; i < n; i++) {
        evs[i]->seq = ++em->seq;
        if (!cdc_op_is_control(evs[i]->op)) {
            engine_route(em->cfg.eng, evs[i]);
            data++;
        }
    }
    atomic_fetch_add_explicit(&em->events, data, memory_order_relaxed);
    *last_seq = em->seq;
    if (data)
        hist_note(em, em->seq, atomic_load_explicit(&em->last_pos, memory_order_relaxed), 0);
    /* One batch at a time, so the log receives them in seq order. */
    int rc = push(em, evs, n, false);
    pthread_mutex_unlock(&em->mu);
    return rc;
}

uint64_t emitter_last_seq(struct emitter *em)
{
    pthread_mutex_lock(&em->mu);
    uint64_t s = em->seq;
    pthread_mutex_unlock(&em->mu);
    return s;
}

void emitter_mark(struct emitter *em, uint64_t seq, uint64_t id)
{
    engine_mark(em->cfg.eng, seq, id);
}

size_t emitter_take_marks(struct emitter *em, uint64_t *ids, size_t max)
{
    return engine_take_marks(em->cfg.eng, ids, max);
}

bool emitter_rewind_wanted(struct emitter *em, uint32_t *gen)
{
    return engine_rewind_wanted(em->cfg.eng, gen);
}

int emitter_rewind(struct emitter *em, uint32_t gen, struct cdc_acks *restart)
{
    int rc = emitter_flush(em);
    if (rc)
        return rc;
    engine_rewind(em->cfg.eng, gen, restart);
    cdc_acks_copy(&em->last_end, restart);
    em->in_txn = false;
    struct cdc_event *ev = cdc_event_new(0, 0, 0);
    ev->op = CDC_OP_REWIND;
    ev->rewind_gen = gen;
    uint64_t seq;
    return emitter_batch(em, &ev, 1, &seq);
}

const struct cdc_acks *emitter_reached(const struct emitter *em)
{
    return &em->reached;
}

const struct cdc_acks *emitter_last_ends(const struct emitter *em)
{
    return &em->last_end;
}

void emitter_set_last_ends(struct emitter *em, const struct cdc_ack *v, size_t n)
{
    cdc_acks_clear(&em->last_end);
    for (size_t i = 0; i < n; i++)
        cdc_acks_set(&em->last_end, v[i].stream, v[i].pos);
}

void emitter_counts(struct emitter *em, struct emitter_counts *c)
{
    c->events = atomic_load_explicit(&em->events, memory_order_relaxed);
    c->transactions = atomic_load_explicit(&em->transactions, memory_order_relaxed);
    c->last_commit_ts = atomic_load_explicit(&em->last_commit_ts, memory_order_relaxed);
    c->pending_bytes = em->pend_bytes;
}
