/* The initial snapshot: chunk queue, reader threads, durable progress,
 * resume and rewind; the source plans and reads (snapshot.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source/emitter.h"
#include "source/snapshot/snapshot.h"
#include "source/source.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define EMIT_BATCH  256
#define PROGRESS_US 200000 /* the progress (status line, /status) is updated this often */

struct stab {
    const char *configured; /* as written in source.tables (borrowed) */
    void *t;                /* the source's handle (open_table) */
    struct cdc_table *tab;  /* shape */
    uint64_t estimate;      /* rows expected */
    atomic_uint_fast64_t rows;
    unsigned nchunks, ndone;
    unsigned remaining; /* chunks this run reads (not done when it started) */
    bool reading;       /* ordered: a reader holds one of its chunks */
    bool fold;          /* no unique key, resumed: read again in full after a truncate */
};

struct chunk {
    unsigned t;        /* index into tables */
    unsigned no;       /* chunk number within its table's plan */
    uint64_t read_seq; /* the current read's chunk sequence: its rows' snapshot_chunk */
    char *text;        /* the source's description of the chunk (a plan line) */
    bool done;         /* durable in every sink (as recorded) */
    bool taken;        /* ordered: handed to a reader since the last rewind */
};

struct snap {
    const struct snap_initial_cfg *c;
    struct stab *t;
    size_t nt;
    struct chunk *ch;
    size_t nc, capc;
    pthread_mutex_t mu;
    size_t next; /* next chunk to hand out */
    /* One reader per table at a time (config_ordered_snapshot): a reader
     * waits on `freed` while every chunk left is of a table being read. */
    bool ordered;
    pthread_cond_t freed;
    atomic_bool failed;
    unsigned gen; /* bumped by a rewind: marks of older chunk reads are void */
    char err[512];
    int64_t started_us;
    int64_t wall_start_us;
    /* progress(): the recent rate, from the previous call */
    uint64_t rate_rows;
    int64_t rate_us;
    double rate;
};

/* Records the first failure; every reader stops. */
static void fail_snap(struct snap *s, const char *table, const char *why)
{
    pthread_mutex_lock(&s->mu);
    if (!atomic_load(&s->failed)) {
        snprintf(s->err, sizeof s->err, "snapshot of %s failed: %s", table, why);
        atomic_store(&s->failed, true);
    }
    pthread_mutex_unlock(&s->mu);
}

static char *key_of(const char *id, const char *what, const char *table, long no)
{
    if (no >= 0)
        return xasprintf("snapshot.%s.%s.%s.%ld", id, what, table, no);
    return xasprintf("snapshot.%s.%s.%s", id, what, table);
}

static void add_chunk(struct snap *s, unsigned t, char *text)
{
    if (s->nc == s->capc) {
        s->capc = s->capc ? 2 * s->capc : 64;
        s->ch = xrealloc(s->ch, s->capc * sizeof *s->ch);
    }
    s->ch[s->nc++] = (struct chunk){.t = t, .no = s->t[t].nchunks++, .text = text};
}

/* The stored plan of table i, made by the source when there is none. */
static int load_plan(struct snap *s, void *rd, size_t i, char **plan, char *err, size_t errlen)
{
    const struct snap_initial_cfg *c = s->c;
    struct stab *st = &s->t[i];
    char *pkey = key_of(c->id, "plan", st->configured, -1);
    int rc = store_kv_get(c->store, pkey, plan, err, errlen);
    if (rc || *plan) {
        free(pkey);
        return rc;
    }
    struct buf b = BUF_INIT;
    rc = c->ops->plan(c->arg, rd, st->t, c->cfg->source.snapshot_chunk_rows, &b, &st->estimate, err,
                      errlen);
    /* First line: the row estimate; then one chunk per line. */
    struct buf full = BUF_INIT;
    buf_printf(&full, "0 %" PRIu64 "\n", st->estimate);
    if (b.len)
        buf_put(&full, b.p, b.len);
    if (!rc)
        rc = store_kv_put(c->store, pkey, full.p, err, errlen);
    buf_fini(&b);
    free(pkey);
    *plan = full.p;
    return rc;
}

/* Loads or makes the plan of every table, and which chunks are done. */
static int prepare(struct snap *s, void *rd, char *const *tables, size_t n, char *err,
                   size_t errlen)
{
    const struct snap_initial_cfg *c = s->c;
    s->t = xcalloc(n ? n : 1, sizeof *s->t);
    s->nt = n;
    for (size_t i = 0; i < n; i++) {
        struct stab *st = &s->t[i];
        st->configured = tables[i];
        int rc = c->ops->open_table(c->arg, rd, tables[i], &st->t, &st->tab, err, errlen);
        char *plan = NULL;
        if (!rc)
            rc = load_plan(s, rd, i, &plan, err, errlen);
        if (rc) {
            free(plan);
            return rc;
        }
        char *save = NULL;
        char *line = strtok_r(plan, "\n", &save);
        uint64_t unused = 0, est = 0;
        if (line && sscanf(line, "%" SCNu64 " %" SCNu64, &unused, &est) == 2)
            st->estimate = est;
        while ((line = strtok_r(NULL, "\n", &save))) {
            add_chunk(s, (unsigned)i, xstrdup(line));
            struct chunk *ch = &s->ch[s->nc - 1];
            char *dkey = key_of(c->id, "done", tables[i], ch->no);
            char *v = NULL;
            rc = store_kv_get(c->store, dkey, &v, err, errlen);
            free(dkey);
            ch->done = v != NULL;
            st->ndone += ch->done;
            free(v);
            if (rc) {
                free(plan);
                return rc;
            }
        }
        free(plan);
        if (st->ndone)
            log_info("snapshot.resume", "table=%s chunks_done=%u of=%u", tables[i], st->ndone,
                     st->nchunks);
    }
    return 0;
}

/* ---------- reading ---------- */

int snap_next_chunk_seq(struct store *store, const char *table, uint64_t *seq, char *err,
                        size_t errlen)
{
    char *key = xasprintf("%s%s", SNAP_KEY_CHUNKSEQ, table);
    char *v = NULL;
    int rc = store_kv_get(store, key, &v, err, errlen);
    *seq = v ? strtoull(v, NULL, 10) : 0;
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, *seq + 1);
    if (!rc)
        rc = store_kv_put(store, key, num, err, errlen);
    free(v);
    free(key);
    return rc;
}

/* Every read of a chunk gets its own sequence number (its rows'
 * snapshot_chunk), so its rows are never taken for those of an earlier,
 * partial read of it: a read after a resume or a rewind may see other rows
 * in another order. */
static int next_chunk_seq(struct snap *s, const struct stab *st, uint64_t *seq)
{
    char err[256];
    pthread_mutex_lock(&s->mu);
    int rc = snap_next_chunk_seq(s->c->store, st->configured, seq, err, sizeof err);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        fail_snap(s, st->configured, err);
    return rc;
}

/* One chunk read: rows are positioned and go out in batches. */
struct chunk_read {
    struct snap *s;
    const struct chunk *ch;
    struct cdc_event *batch[EMIT_BATCH];
    size_t nb;
    uint64_t row, last_seq;
    int64_t batch_ts; /* the batch's emit_ts: read once, as its first row comes */
    int rc;           /* what emitting returned (the read stops then) */
};

static int on_row(void *arg, struct cdc_event *ev)
{
    struct chunk_read *r = arg;
    uint64_t pos = r->s->c->pos;
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    ev->pos = (struct cdc_pos){pos, 0, 0}; /* the stream starts after it */
    ev->snapshot_id = pos;                 /* the consistent point names the snapshot */
    ev->snapshot_chunk = r->ch->read_seq;
    ev->snapshot_row = (uint32_t)r->row++;
    ev->lsn = pos;
    ev->commit_ts = r->s->wall_start_us;
    if (r->nb == 0)
        r->batch_ts = clock_wall_us();
    ev->emit_ts = r->batch_ts;
    r->batch[r->nb++] = ev;
    if (r->nb == EMIT_BATCH) {
        /* Paused by the control API: hold the rows (the read waits on its
         * connection) until resumed. */
        emitter_wait_resumed(r->s->c->em);
        r->rc = emitter_batch(r->s->c->em, r->batch, r->nb, &r->last_seq);
        if (!r->rc)
            atomic_fetch_add(&r->s->t[r->ch->t].rows, r->nb);
        r->nb = 0;
    }
    if (!r->rc && atomic_load(&r->s->failed))
        r->rc = CDC_ESTOP;
    return r->rc;
}

/* Reads one chunk and pushes its rows; marks the chunk with the tracker so
 * it is recorded once every sink holds it. */
static int read_chunk(struct snap *s, void *rd, size_t ci)
{
    pthread_mutex_lock(&s->mu);
    unsigned gen = s->gen;
    pthread_mutex_unlock(&s->mu);
    struct chunk *ch = &s->ch[ci];
    struct stab *st = &s->t[ch->t];
    uint64_t seq;
    if (next_chunk_seq(s, st, &seq) != 0)
        return CDC_ERR;
    ch->read_seq = seq;
    struct chunk_read r = {.s = s, .ch = ch};
    char why[512] = "";
    const struct snap_initial_cfg *c = s->c;
    int rc = c->ops->read_chunk(c->arg, rd, st->t, ch->text, on_row, &r, why, sizeof why);
    if (rc && rc != r.rc)
        fail_snap(s, st->configured, why); /* the read failed, not the emitting */
    if (!rc && r.nb) {
        emitter_wait_resumed(c->em);
        rc = emitter_batch(c->em, r.batch, r.nb, &r.last_seq);
        if (!rc)
            atomic_fetch_add(&st->rows, r.nb);
    } else {
        for (size_t i = 0; i < r.nb; i++)
            cdc_event_unref(r.batch[i]);
    }
    if (rc)
        return rc;
    emitter_mark(c->em, r.last_seq, ((uint64_t)gen << 32) | ci);
    return 0;
}

struct reader {
    struct snap *s;
    void *rd;
    pthread_t thread;
    atomic_bool running;
};

#define CHUNK_NONE SIZE_MAX       /* nothing left to read */
#define CHUNK_WAIT (SIZE_MAX - 1) /* ordered: what is left is of tables being read */

/* The next chunk to read, under mu. */
static size_t take_chunk(struct snap *s)
{
    while (s->next < s->nc && (s->ch[s->next].done || s->ch[s->next].taken))
        s->next++;
    if (!s->ordered)
        return s->next < s->nc ? s->next++ : CHUNK_NONE;
    /* The lowest chunk left of a table no reader holds: each table's
     * chunks go out in order, one at a time. */
    size_t got = CHUNK_NONE;
    for (size_t i = s->next; i < s->nc; i++) {
        struct chunk *ch = &s->ch[i];
        if (ch->done || ch->taken)
            continue;
        if (s->t[ch->t].reading) {
            got = CHUNK_WAIT;
            continue;
        }
        ch->taken = true;
        s->t[ch->t].reading = true;
        return i;
    }
    return got;
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct snap *s = rd->s;
    atomic_store(&rd->running, true);
    while (!atomic_load(&s->failed) && !emitter_stopping(s->c->em)) {
        emitter_wait_resumed(s->c->em); /* no new chunk while paused */
        pthread_mutex_lock(&s->mu);
        size_t ci = take_chunk(s);
        if (ci == CHUNK_WAIT) {
            struct timespec until;
            clock_deadline_after(&until, 50); /* looks at failures and stops again */
            pthread_cond_timedwait(&s->freed, &s->mu, &until);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        if (ci == CHUNK_NONE)
            break;
        int rc = read_chunk(s, rd->rd, ci);
        if (s->ordered) {
            pthread_mutex_lock(&s->mu);
            s->t[s->ch[ci].t].reading = false;
            pthread_cond_broadcast(&s->freed);
            pthread_mutex_unlock(&s->mu);
        }
        if (rc != 0)
            break;
    }
    atomic_store(&rd->running, false);
    return NULL;
}

/* ---------- progress ---------- */

/* Reports where the snapshot is: to the driver (/status, /metrics), on the
 * terminal's status line, and (to_log, final) in the log.  The rate is the
 * recent one (smoothed over the calls, every PROGRESS_US), so a pause or a
 * slow sink shows at once and the ETA follows. */
static void progress(struct snap *s, bool final, bool to_log)
{
    struct snap_progress p = {.running = !final, .eta_seconds = -1};
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nt; i++) {
        const struct stab *st = &s->t[i];
        p.rows_read += atomic_load(&st->rows);
        /* A resumed snapshot reads only the chunks not done: their share. */
        p.rows_estimated += st->nchunks ? st->estimate * st->remaining / st->nchunks : st->estimate;
        p.chunks_done += st->ndone;
        p.tables_done += st->ndone == st->nchunks;
    }
    pthread_mutex_unlock(&s->mu);
    p.chunks_total = s->nc;
    p.tables_total = s->nt;
    p.paused = emitter_paused(s->c->em);
    int64_t now = clock_mono_us();
    double secs = (double)(now - s->started_us) / 1e6;
    if (s->rate_us && now > s->rate_us) {
        double inst = (double)(p.rows_read - s->rate_rows) / ((double)(now - s->rate_us) / 1e6);
        s->rate = s->rate > 0 ? 0.7 * s->rate + 0.3 * inst : inst;
    }
    s->rate_rows = p.rows_read;
    s->rate_us = now;
    p.rows_per_second = final ? (secs > 0 ? (double)p.rows_read / secs : 0) : s->rate;
    if (final)
        p.eta_seconds = 0;
    else if (s->rate >= 1)
        p.eta_seconds =
            p.rows_estimated > p.rows_read ? (double)(p.rows_estimated - p.rows_read) / s->rate : 0;
    emitter_progress(s->c->em, &p);
    if (final) {
        log_status("");
    } else if (log_status_available()) {
        char line[200], eta[32] = "?";
        if (p.eta_seconds >= 0)
            snprintf(eta, sizeof eta, "%.0fs", p.eta_seconds);
        snprintf(line, sizeof line,
                 "snapshot: %" PRIu64 "/%" PRIu64 " rows, %" PRIu64 "/%" PRIu64 " chunks, %" PRIu64
                 "/%" PRIu64 " tables, %.0f rows/s, ETA %s%s",
                 p.rows_read, p.rows_estimated, p.chunks_done, p.chunks_total, p.tables_done,
                 p.tables_total, p.rows_per_second, eta, p.paused ? " (paused)" : "");
        log_status(line);
    }
    if (!to_log && !final)
        return;
    uint64_t rows = p.rows_read;
    double rate = p.rows_per_second, eta = p.eta_seconds;
    for (size_t i = 0; i < s->nt; i++) {
        struct stab *st = &s->t[i];
        uint64_t r = atomic_load(&st->rows);
        log_info(final ? "snapshot.table_done" : "snapshot.progress",
                 "table=%s rows=%" PRIu64 " estimate=%" PRIu64 " chunks_done=%u chunks=%u",
                 st->configured, r, st->estimate, st->ndone, st->nchunks);
    }
    log_info(final ? "snapshot.done" : "snapshot.rate",
             "rows=%" PRIu64 " seconds=%.1f rows_per_second=%.0f eta_seconds=%.0f", rows, secs,
             rate, eta);
}

/* Records chunks every sink now holds. */
static int record_done(struct snap *s, char *err, size_t errlen)
{
    uint64_t ids[64];
    size_t n;
    while ((n = emitter_take_marks(s->c->em, ids, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&s->mu);
            bool stale = (ids[i] >> 32) != s->gen;
            pthread_mutex_unlock(&s->mu);
            if (stale)
                continue;
            struct chunk *ch = &s->ch[ids[i] & 0xffffffffu];
            struct stab *st = &s->t[ch->t];
            if (ch->done)
                continue;
            char *dkey = key_of(s->c->id, "done", st->configured, ch->no);
            int rc = store_kv_put(s->c->store, dkey, "1", err, errlen);
            free(dkey);
            if (rc)
                return rc;
            pthread_mutex_lock(&s->mu);
            ch->done = true;
            st->ndone++;
            pthread_mutex_unlock(&s->mu);
        }
    }
    return 0;
}

/* A sink lost rows it had not made durable and asked for a replay.  Snapshot
 * rows are not in the source's log: read every chunk not yet recorded as
 * done again, and mark the restart in the log for the sink to resume after. */
static void serve_rewind(struct snap *s, uint32_t gen)
{
    struct cdc_acks restart = {0}; /* the stream restarts there: not the snapshot's business */
    emitter_rewind(s->c->em, gen, &restart);
    cdc_acks_fini(&restart);
    /* Only now: a read that started before the marker went out keeps the
     * old generation, so its mark is void and the chunk is read again. */
    pthread_mutex_lock(&s->mu);
    s->gen++;
    s->next = 0;
    for (size_t i = 0; i < s->nc; i++)
        s->ch[i].taken = false;
    pthread_mutex_unlock(&s->mu);
    log_info("snapshot.rewind", "generation=%u hint=%s", gen,
             log_q("chunks not yet durable in every sink are read again"));
}

/* Resuming: a table without a unique key cannot take a fresh read of some
 * chunks on top of rows already delivered, nor the stream's replay of
 * changes the fresh read already shows.  It is rebuilt: a truncate event,
 * every chunk read again (one shared snapshot), and a fold rule, stored for
 * the source, that drops the changes the fresh read already shows. */
static int fold_keyless(struct snap *s, char *err, size_t errlen)
{
    const struct snap_initial_cfg *c = s->c;
    char *rule = NULL;
    struct buf rules = BUF_INIT;
    int rc = 0;
    for (size_t t = 0; t < s->nt && !rc; t++) {
        struct stab *st = &s->t[t];
        if (st->tab->key_unique || st->ndone == st->nchunks)
            continue;
        st->fold = true;
        st->ndone = 0;
        for (size_t i = 0; i < s->nc; i++) {
            if (s->ch[i].t != t || !s->ch[i].done)
                continue;
            s->ch[i].done = false;
            char *dkey = key_of(c->id, "done", st->configured, s->ch[i].no);
            rc = store_kv_delete(c->store, dkey, err, errlen);
            free(dkey);
        }
        if (!rule && c->ops->fold_rule)
            rule = c->ops->fold_rule(c->arg);
        if (rule)
            buf_printf(&rules, "%s\t%s\n", st->configured, rule);
        /* Clear what earlier attempts delivered, ahead of the rows. */
        uint64_t seq = 0, last;
        if (!rc && next_chunk_seq(s, st, &seq) != 0)
            rc = cdc_fail(err, errlen, CDC_EIO, "%s", s->err);
        if (rc)
            break;
        struct cdc_event *ev = cdc_event_new(0, 0, 0);
        ev->op = CDC_OP_TRUNCATE;
        ev->snapshot = true;
        cdc_table_ref(st->tab);
        ev->tab = st->tab;
        ev->pos = (struct cdc_pos){c->pos, 0, 0};
        ev->snapshot_id = c->pos;
        ev->snapshot_chunk = seq;
        ev->lsn = c->pos;
        ev->commit_ts = ev->emit_ts = clock_wall_us();
        if (emitter_batch(c->em, &ev, 1, &last) != 0)
            rc = CDC_ESTOP;
        log_info("snapshot.rebuild", "table=%s reason=%s", st->configured,
                 log_q("resumed without a unique key: truncated and read again in full"));
    }
    free(rule);
    if (!rc && rules.len) {
        char *key = xasprintf("snapshot.%s.folds", c->id);
        char *prev = NULL;
        rc = store_kv_get(c->store, key, &prev, err, errlen);
        struct buf all = BUF_INIT;
        /* Keep rules of tables not rebuilt now; replace the others. */
        if (!rc && prev) {
            char *save = NULL;
            for (char *line = strtok_r(prev, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                size_t tl = strcspn(line, "\t");
                bool replaced = false;
                for (size_t t = 0; t < s->nt; t++)
                    if (s->t[t].fold && strlen(s->t[t].configured) == tl &&
                        strncmp(s->t[t].configured, line, tl) == 0)
                        replaced = true;
                if (!replaced)
                    buf_printf(&all, "%s\n", line);
            }
        }
        buf_put(&all, rules.p, rules.len);
        if (!rc)
            rc = store_kv_put(c->store, key, all.p, err, errlen);
        free(prev);
        free(key);
        buf_fini(&all);
    }
    buf_fini(&rules);
    return rc;
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->nt; i++) {
        if (s->t[i].t)
            s->c->ops->close_table(s->c->arg, s->t[i].t);
        cdc_table_unref(s->t[i].tab);
    }
    for (size_t i = 0; i < s->nc; i++)
        free(s->ch[i].text);
    free(s->t);
    free(s->ch);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->freed);
}

/* Reader threads that ran out of chunks exited: after a rewind, start them
 * again for what is to be read again. */
static void restart_readers(struct snap *s, struct reader *rd, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (atomic_load(&rd[i].running))
            continue;
        pthread_join(rd[i].thread, NULL);
        atomic_store(&rd[i].running, true);
        if (pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]) != 0) {
            atomic_store(&rd[i].running, false);
            atomic_store(&s->failed, true);
        }
    }
}

/* Waits for the readers while recording done chunks, serving rewinds and
 * showing progress; returns when every chunk is done, on a failure or a
 * stop. */
static int supervise(struct snap *s, struct reader *rd, unsigned n, char *err, size_t errlen)
{
    int rc = 0;
    int64_t next_log = clock_mono_us() + 10000000, next_report = 0;
    for (;;) {
        uint32_t rgen;
        if (emitter_rewind_wanted(s->c->em, &rgen)) {
            serve_rewind(s, rgen);
            restart_readers(s, rd, n);
        }
        if ((rc = record_done(s, err, errlen)))
            atomic_store(&s->failed, true);
        size_t done = 0;
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->nc; i++)
            done += s->ch[i].done;
        pthread_mutex_unlock(&s->mu);
        if (done == s->nc || atomic_load(&s->failed) || emitter_stopping(s->c->em))
            return rc;
        int64_t now = clock_mono_us();
        if (now >= next_report) {
            progress(s, false, now >= next_log);
            if (now >= next_log)
                next_log = now + 10000000;
            next_report = now + PROGRESS_US;
        }
        clock_sleep_us(20000);
    }
}

int snap_initial(const struct snap_initial_cfg *c, char *const *tables, size_t n, char *err,
                 size_t errlen)
{
    struct snap s;
    memset(&s, 0, sizeof s);
    s.c = c;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.freed, NULL);
    s.ordered = config_ordered_snapshot(c->cfg);
    atomic_init(&s.failed, false);
    s.started_us = clock_mono_us();
    s.wall_start_us = clock_wall_us();

    unsigned nrd = (unsigned)c->cfg->source.snapshot_parallelism;
    if (nrd < 1)
        nrd = 1;
    struct reader *rd = xcalloc(nrd, sizeof *rd);
    int rc = 0;
    /* Every reader joins the same snapshot before anything else happens. */
    for (unsigned i = 0; i < nrd && !rc; i++) {
        rd[i].s = &s;
        rc = c->ops->open_reader(c->arg, i, &rd[i].rd, err, errlen);
    }
    if (rc || (rc = prepare(&s, rd[0].rd, tables, n, err, errlen)))
        goto out;
    if (c->resumed && (rc = fold_keyless(&s, err, errlen)))
        goto out;
    size_t remaining = 0;
    for (size_t i = 0; i < s.nt; i++) {
        s.t[i].remaining = s.t[i].nchunks - s.t[i].ndone;
        remaining += s.t[i].remaining;
    }
    log_info("snapshot.started",
             "id=%s tables=%zu chunks=%zu remaining=%zu readers=%u "
             "one_reader_per_table=%s imported=%s",
             c->id, s.nt, s.nc, remaining, nrd, s.ordered ? "yes" : "no",
             c->resumed ? "no (resumed)" : "yes");
    for (unsigned i = 0; i < nrd; i++)
        atomic_store(&rd[i].running, true);
    for (unsigned i = 0; i < nrd; i++)
        if (pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]) != 0) {
            atomic_store(&s.failed, true);
            rc = cdc_fail(err, errlen, CDC_ERR, "snapshot: cannot start reader threads");
            for (unsigned k = 0; k < i; k++)
                pthread_join(rd[k].thread, NULL);
            goto out;
        }
    rc = supervise(&s, rd, nrd, err, errlen);
    for (unsigned i = 0; i < nrd; i++)
        pthread_join(rd[i].thread, NULL);
    if (!rc && atomic_load(&s.failed))
        rc = cdc_fail(err, errlen, CDC_ERR, "%s", s.err);
    else if (!rc && emitter_stopping(c->em))
        rc = CDC_ESTOP;
    if (!rc) {
        progress(&s, true, true);
        for (size_t i = 0; i < s.nt && !rc; i++) {
            char *key = xasprintf("%s%s", SNAP_KEY_TABLE, s.t[i].configured);
            rc = store_kv_put(c->store, key, c->id, err, errlen);
            free(key);
        }
    }
out:
    log_status(""); /* the progress line, whatever happened */
    snap_free(&s);
    for (unsigned i = 0; i < nrd; i++)
        if (rd[i].rd)
            c->ops->close_reader(c->arg, rd[i].rd);
    free(rd);
    return rc;
}
