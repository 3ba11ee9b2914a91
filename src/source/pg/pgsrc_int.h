/* Private to the PostgreSQL source (pgsrc*.c): the source's state and the
 * functions its files share.
 *
 *   pgsrc.c          the source_ops: start, poll, acknowledgements, stats
 *   pgsrc_repl.c     the replication connection: start, status updates,
 *                    read coalescing, the side SQL connection, heartbeats
 *   pgsrc_decode.c   pgoutput messages to events: transactions, streamed
 *                    transactions, signals, emitting them
 *   pgsrc_prepare.c  before streaming: publication, slot, initial snapshot
 *   pgsrc_admin.c    cdc deploy / undeploy / snapshot, positions as text
 *   pgsnap.c         the snapshot ops: readers, chunk plans, COPY,
 *                    watermarks (source/snapshot/ does the rest)
 *   pgjson.c         the envelope's source block */
#ifndef CDC_SOURCE_PG_PGSRC_INT_H
#define CDC_SOURCE_PG_PGSRC_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/event.h"
#include "source/emitter.h"
#include "source/pg/pgsnap.h"
#include "source/pg/pgsrc.h"
#include "source/pg/relcache.h"
#include "source/pg/spill.h"
#include "source/pg/xidsnap.h"
#include "source/snapshot/incremental.h"

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
    uint64_t relid;
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
    /* Resuming it: the snapshot reader 0 exported for the others, and the
     * fold rule of rebuilt tables ("<snapshot>\t<WAL position>"). */
    char *snap_exported, *snap_fold_rule;
    /* The decoder's references of the table it decodes (new_change). */
    struct cdc_refbank tab_refs;
    struct emitter *em;   /* borrowed from the driver during snapshot and poll */
    uint64_t confirmed;   /* durable in every sink: the last acknowledgement */
    PGconn *conn;         /* SQL connection: catalog lookups, heartbeats */
    PGconn *repl;         /* replication connection, or NULL */
    int repl_lowat;       /* SO_RCVLOWAT now set on repl's socket (0: default) */
    bool coalesce;        /* reading in chunks: see COALESCE_BYTES */
    bool rcvbuf_fixed;    /* SO_RCVBUF set on repl's socket */
    size_t window_msgs;   /* messages received in the current window */
    int64_t window_start; /* monotonic us */
    struct relcache *rels;
    struct spill *spill;
    struct isnap *isnap;         /* incremental snapshots; NULL when unavailable */
    char *sig_schema, *sig_name; /* the signal table, with isnap */
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
    uint64_t write_lsn;  /* newest position received and processed */
    uint64_t sent_flush; /* flush position last reported */
    int64_t last_status_us;
    int64_t next_heartbeat_us;
    bool ever_streamed;
    bool began;            /* the snapshot or the stream started: keep what was created */
    bool created_slot;     /* this run created the slot ... */
    bool created_pub;      /* ... or the publication (dropped if it fails before beginning) */
    char pub_actions[5];   /* what the publication published at start ("iudt") */
    int64_t next_check_us; /* next check of the slot and publication (monotonic us) */
    uint64_t steps;        /* frames handled, for stepping snapshots in a busy stream */
    int64_t last_step_us;
    uint64_t n_bytes; /* pgoutput payload bytes */

    char err[512];
};

/* ---------- pgsrc_repl.c ---------- */

/* Sends a standby status update (write, flush = the confirmed position) when
 * due, or now with force.  CDC_ECONN when the connection broke. */
int pgsrc_send_status(struct pgsrc *src, bool force);
/* Answers a keepalive that asks for a reply (see the definition: what a
 * sink holds back never keeps the server from shutting down). */
int pgsrc_answer_keepalive(struct pgsrc *src);
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

/* One CopyData frame of the replication stream. */
int pgsrc_handle_frame(struct pgsrc *src, const uint8_t *buf, size_t len);
/* Fold rules of the initial snapshot `id` (see struct fold_rule). */
int pgsrc_load_folds(struct pgsrc *src, const char *id, char *err, size_t errlen);
void pgsrc_free_folds(struct pgsrc *src);

/* ---------- pgsrc_prepare.c ---------- */

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
void pgsrc_close(struct pgsrc *src);
/* Runs (or finishes) the initial snapshot before streaming starts. */
int pgsrc_run_snapshot(struct pgsrc *src, char *err, size_t errlen);
/* Whether the publication (and with slot_too the slot) are still what
 * streaming needs.  CDC_EINVAL, with src->err saying what someone changed,
 * must stop the pipeline; CDC_ECONN means the check could not run. */
int pgsrc_check_source(struct pgsrc *src, bool slot_too);
/* Records in the state store that the pipeline streams from its slot (from
 * LSN `from`) and which tables are published. */
int pgsrc_record_history(struct pgsrc *src, uint64_t from);

/* ---------- pgsrc_admin.c ---------- */

int pgsrc_parse_pos(const char *text, struct cdc_ack *pos, char *err, size_t errlen);
void pgsrc_format_pos(uint64_t pos, char *buf, size_t len);
int pgsrc_deploy(const struct config *cfg, FILE *out, char *err, size_t errlen);
void pgsrc_undeploy_warning(const struct config *cfg, char *buf, size_t len);
int pgsrc_undeploy(const struct config *cfg, FILE *out, char *err, size_t errlen);
int pgsrc_request_snapshot(const struct config *cfg, char *const *tables, size_t n, FILE *out,
                           char *err, size_t errlen);

#endif
