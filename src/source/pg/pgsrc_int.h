/* Private to the PostgreSQL source (pgsrc*.c): the source's state and the
 * functions its files share.
 *
 *   pgsrc.c          the run loop: reconnects, rewinds, stop, stats
 *   pgsrc_repl.c     the replication connection: start, status updates,
 *                    read coalescing, the side SQL connection, heartbeats
 *   pgsrc_decode.c   pgoutput messages to events: transactions, streamed
 *                    transactions, signals, pushing into the engine
 *   pgsrc_prepare.c  before streaming: publication, slot, initial snapshot */
#ifndef CDC_SOURCE_PG_PGSRC_INT_H
#define CDC_SOURCE_PG_PGSRC_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "source/pg/isnap.h"
#include "source/pg/pgsrc.h"
#include "source/pg/relcache.h"
#include "source/pg/spill.h"
#include "source/pg/xidsnap.h"

#define PUSH_BATCH       512
#define PUSH_BATCH_BYTES (256u << 10) /* events held before a push, by size too */
#define HEARTBEAT_PREFIX "cdc_heartbeat"

/* A table rebuilt by a resumed snapshot: its changes committed before
 * `until` by transactions the rebuild's snapshot saw are already in its rows. */
struct fold_rule {
    char *schema, *name;
    struct xidsnap snap;
    uint64_t until; /* WAL position when the snapshot was taken */
};

/* Per-table change counter within one transaction (data_collection_order). */
struct table_count {
    uint32_t relid;
    uint32_t n;
};

struct pgsrc {
    const struct config *cfg;
    struct store *store; /* borrowed: snapshot progress */
    /* Initial snapshot to take (or finish) before streaming: its id, and
     * the replication connection that exported its snapshot (kept idle until
     * the readers imported it), or NULL when resuming. */
    char *snap_id;
    PGconn *snap_exporter;
    char *snap_name;
    pthread_mutex_t emit_mu; /* snapshot readers push concurrently */
    struct engine *eng;      /* borrowed during pgsrc_run */
    const struct pgsrc_opts *opts;
    PGconn *conn;         /* SQL connection: catalog lookups, heartbeats */
    PGconn *repl;         /* replication connection, or NULL */
    int repl_lowat;       /* SO_RCVLOWAT now set on repl's socket (0: default) */
    bool coalesce;        /* reading in chunks: see COALESCE_BYTES */
    bool rcvbuf_fixed;    /* SO_RCVBUF set on repl's socket */
    size_t window_msgs;   /* messages received in the current window */
    int64_t window_start; /* monotonic us */
    struct relcache *rels;
    struct spill *spill;
    struct isnap *isnap; /* incremental snapshots; NULL when unavailable */
    struct fold_rule *folds;
    size_t nfolds;
    uint64_t start_lsn;

    /* transaction being decoded */
    bool in_txn;
    uint32_t xid;
    uint64_t commit_lsn;
    int64_t commit_ts; /* unix us */
    uint64_t next_idx;
    struct table_count *counts;
    size_t ncounts, capcounts;

    /* streamed transactions */
    bool in_stream;
    uint32_t stream_xid;

    uint64_t msg_lsn; /* LSN of the message being handled */
    /* The CopyData frame being handled (from PQgetCopyData), while it is:
     * an event for a large row takes it over (frame = NULL then) and holds
     * its values in it instead of a copy. */
    char *frame;
    size_t frame_len;
    uint64_t next_seq;        /* last seq assigned */
    uint64_t last_commit_end; /* end LSN of the newest transaction fully pushed */
    uint64_t write_lsn;       /* newest position received and processed */
    uint64_t sent_flush;      /* flush position last reported */
    int64_t last_status_us;
    int64_t next_heartbeat_us;
    bool ever_streamed;
    bool began;            /* the snapshot or the stream started: keep what was created */
    bool created_slot;     /* this run created the slot ... */
    bool created_pub;      /* ... or the publication (dropped if it fails before beginning) */
    char pub_actions[5];   /* what the publication published at start ("iudt") */
    int64_t next_check_us; /* next check of the slot and publication (monotonic us) */
    bool stats_paused;
    int64_t next_mem_log_us;

    struct cdc_event **pend; /* events assigned seqs, not yet pushed */
    size_t npend;
    size_t pend_bytes;

    /* counters, published to stats under mu by publish_stats */
    uint64_t n_events, n_txns, n_bytes, n_reconnects;
    pthread_mutex_t mu;
    struct pgsrc_stats stats;

    char err[512];
};

/* ---------- pgsrc_repl.c ---------- */

/* Sends a standby status update (write, flush = the confirmed position) when
 * due, or now with force.  CDC_ECONN when the connection broke. */
int pgsrc_send_status(struct pgsrc *src, bool force);
/* Answers a keepalive that asks for a reply (see the definition: what a
 * sink holds back never keeps the server from shutting down). */
int pgsrc_answer_keepalive(struct pgsrc *src);
/* Copies the counters into the stats others read. */
void pgsrc_publish_stats(struct pgsrc *src);
bool pgsrc_stop_requested(const struct pgsrc *src);
/* Decides, before a wait, whether to read in chunks; returns the timeout. */
int pgsrc_coalesce_wait_ms(struct pgsrc *src);
/* Starts streaming from lsn on a new replication connection. */
int pgsrc_start_streaming(struct pgsrc *src, uint64_t lsn);
/* Ends the replication connection and what was decoded but not committed. */
void pgsrc_close_repl(struct pgsrc *src);
/* Waits until the replication socket is readable or timeout_ms passes. */
void pgsrc_wait_socket(PGconn *conn, int timeout_ms);
/* (Re)connects the SQL connection used for catalog lookups. */
int pgsrc_ensure_sql_conn(struct pgsrc *src);
/* Emits a heartbeat message when source.heartbeat_interval_seconds says so. */
void pgsrc_heartbeat(struct pgsrc *src);

/* ---------- pgsrc_decode.c ---------- */

/* Pushes evs[0..n) into the engine (see the definition). */
int pgsrc_push_events(struct pgsrc *src, struct cdc_event **evs, size_t n, bool keepalive);
/* Pushes the events decoded and not yet pushed. */
int pgsrc_flush_pending(struct pgsrc *src);
/* Assigns ev the next seq and queues it for the engine (ownership moves). */
int pgsrc_emit(struct pgsrc *src, struct cdc_event *ev);
/* One CopyData frame of the replication stream. */
int pgsrc_handle_frame(struct pgsrc *src, const uint8_t *buf, size_t len);
/* Fold rules of the initial snapshot `id` (see struct fold_rule). */
int pgsrc_load_folds(struct pgsrc *src, const char *id, char *err, size_t errlen);
void pgsrc_free_folds(struct pgsrc *src);

/* ---------- pgsrc_prepare.c ---------- */

/* Runs (or finishes) the initial snapshot before streaming starts. */
int pgsrc_run_snapshot(struct pgsrc *src, char *err, size_t errlen);
/* Whether the publication (and with slot_too the slot) are still what
 * streaming needs.  CDC_EINVAL, with src->err saying what someone changed,
 * must stop the pipeline; CDC_ECONN means the check could not run. */
int pgsrc_check_source(struct pgsrc *src, bool slot_too);
/* Records in the state store that the pipeline streams from its slot (from
 * LSN `from`) and which tables are published. */
int pgsrc_record_history(struct pgsrc *src, uint64_t from);

#endif
