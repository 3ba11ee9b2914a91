/* The PostgreSQL source: reads the slot's pgoutput stream and feeds the engine.
 *
 * pgsrc_open checks the server and the configured tables, ensures the
 * publication and the slot exist, and learns where to start.  pgsrc_run then
 * streams until asked to stop: it decodes messages into events, spills streamed
 * transactions to disk until they commit, pushes events to the engine (waiting
 * when its buffers are full, while still sending status updates so the server
 * keeps the connection), registers each commit with the tracker, reports the
 * confirmed position, and reconnects with backoff when the connection breaks. */
#ifndef CDC_SOURCE_PG_PGSRC_H
#define CDC_SOURCE_PG_PGSRC_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "pipeline/engine.h"

struct pgsrc;

struct pgsrc_opts {
    /* Stop once everything committed at or before this LSN is confirmed
     * (0 = run until *stop). */
    uint64_t stop_at_lsn;
    /* Set asynchronously (signal handler) to ask for a graceful stop. */
    volatile sig_atomic_t *stop;
    /* While true the source reads nothing (it keeps the connection alive and
     * keeps confirming); NULL = never paused.  Set by the control API. */
    atomic_bool *paused;
};

struct pgsrc_stats {
    uint64_t events;         /* change events emitted */
    uint64_t transactions;   /* commits seen */
    uint64_t bytes_received; /* pgoutput payload bytes */
    uint64_t received_lsn;   /* newest position received */
    uint64_t confirmed_lsn;  /* newest position confirmed to the slot */
    uint64_t reconnects;
    uint64_t spilled_bytes; /* streamed transactions waiting on disk */
    int64_t last_commit_ts; /* unix us of the newest commit seen */
    int connected;          /* the replication connection is up */
    int paused;             /* reading is paused by the control API */
};

/* Connects and checks the server and the configured tables; creates
 * nothing, so a run that fails later (a sink, the health port) leaves the
 * source as it was.  Runtime problems (unreachable server, missing table)
 * come back as CDC_ECONN or CDC_EINVAL with one sentence in err.  store
 * (borrowed) keeps snapshot progress and what the pipeline streamed. */
struct store;
int pgsrc_open(struct pgsrc **out, const struct config *cfg, struct store *store, char *err,
               size_t errlen);
/* Ensures the signal table, the publication and the slot (creating them if
 * missing) and decides about the initial snapshot.  held: the newest
 * position any sink holds ({0, 0}: none).  A slot that is gone, or a table
 * no longer published, although the pipeline streamed before (the state
 * store says so, or a sink holds changes) is refused with CDC_EINVAL unless
 * the snapshot mode reads every table again. */
int pgsrc_prepare(struct pgsrc *src, struct cdc_pos held, char *err, size_t errlen);
/* After a failure before the snapshot or the stream began: drops the slot
 * and the publication this run created, so they do not pin WAL. */
void pgsrc_abandon(struct pgsrc *src);
/* The position streaming starts from (the slot's confirmed position). */
uint64_t pgsrc_start_lsn(const struct pgsrc *src);
/* Streams into eng until opts say stop (returns 0) or a fatal error. */
int pgsrc_run(struct pgsrc *src, struct engine *eng, const struct pgsrc_opts *opts, char *err,
              size_t errlen);
/* After the engine drained: confirms the final position and ends the stream. */
void pgsrc_finish(struct pgsrc *src, struct engine *eng);
void pgsrc_get_stats(struct pgsrc *src, struct pgsrc_stats *st);
void pgsrc_close(struct pgsrc *src);

#endif
