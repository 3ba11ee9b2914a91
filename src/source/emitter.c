/* The emitter; see emitter.h. */
#include <pthread.h>
#include <stdlib.h>

#include "pipeline/engine.h"
#include "source/emitter.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

/* Events held before a push.  Events waiting here are outside the event
 * log's memory budget: few of them, counted in bytes as well. */
#define PUSH_BATCH       512
#define PUSH_BATCH_BYTES (256u << 10)
#define PUSH_WAIT_MS     100 /* a full pipeline is retried (and the hook called) this often */

struct emitter {
    struct emitter_cfg cfg;
    pthread_mutex_t mu;                 /* emitter_batch callers; the counters for readers */
    uint64_t seq;                       /* last seq given out */
    struct cdc_acks last_end;           /* per stream */
    struct cdc_event *pend[PUSH_BATCH]; /* numbered, not yet pushed */
    size_t npend;
    size_t pend_bytes;
    uint64_t events, transactions;
    int64_t last_commit_ts;
    bool in_txn; /* changes emitted since the last commit or keepalive */
};

struct emitter *emitter_new(const struct emitter_cfg *cfg)
{
    struct emitter *em = xcalloc(1, sizeof *em);
    em->cfg = *cfg;
    pthread_mutex_init(&em->mu, NULL);
    return em;
}

void emitter_free(struct emitter *em)
{
    if (!em)
        return;
    for (size_t i = 0; i < em->npend; i++)
        cdc_event_unref(em->pend[i]);
    cdc_acks_fini(&em->last_end);
    pthread_mutex_destroy(&em->mu);
    free(em);
}

bool emitter_stopping(const struct emitter *em)
{
    return (em->cfg.stop && *em->cfg.stop) || engine_failed(em->cfg.eng, NULL, 0);
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

int emitter_event(struct emitter *em, struct cdc_event *ev)
{
    ev->seq = ++em->seq;
    if (!cdc_op_is_control(ev->op)) {
        engine_route(em->cfg.eng, ev);
        em->events++;
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
    em->transactions++;
    em->last_commit_ts = ts;
    em->in_txn = false;
    return rc;
}

void emitter_keepalive(struct emitter *em, uint32_t stream, uint64_t pos)
{
    engine_commit(em->cfg.eng, em->seq, stream, pos);
    em->in_txn = false;
}

int emitter_batch(struct emitter *em, struct cdc_event **evs, size_t n, uint64_t *last_seq)
{
    if (n == 0)
        return 0;
    pthread_mutex_lock(&em->mu);
    for (size_t i = 0; i < n; i++) {
        evs[i]->seq = ++em->seq;
        if (!cdc_op_is_control(evs[i]->op)) {
            engine_route(em->cfg.eng, evs[i]);
            em->events++;
        }
    }
    *last_seq = em->seq;
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
    pthread_mutex_lock(&em->mu);
    c->events = em->events;
    c->transactions = em->transactions;
    c->last_commit_ts = em->last_commit_ts;
    c->pending_bytes = em->pend_bytes;
    pthread_mutex_unlock(&em->mu);
}
