/* Private to the PostgreSQL sink (pg_sink.c: connection, transactions,
 * checkpoint, event-log mode; pg_mirror.c: replica mode). */
#ifndef CDC_SINK_POSTGRES_PG_SINK_H
#define CDC_SINK_POSTGRES_PG_SINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink/sink.h"
#include "util/buf.h"
#include "util/strmap.h"

enum pgs_kind { PGS_BEGIN, PGS_STMT, PGS_PREPARE, PGS_CKPT, PGS_COMMIT, PGS_DDL };

/* One result the pipeline owes us, in send order. */
struct pgs_pending {
    uint8_t kind;               /* enum pgs_kind */
    bool group;                 /* PGS_STMT: a multi-row statement ending with ev */
    uint64_t seq;               /* PGS_COMMIT: the marker made durable by it */
    const struct cdc_event *ev; /* PGS_STMT: the event applied (borrowed during write) */
};

struct pgsink {
    PGconn *conn;
    bool in_dbtxn; /* a BEGIN was sent and no COMMIT yet */
    int64_t dbtxn_started_us;
    size_t rows_in_dbtxn;
    uint64_t given_seq;   /* newest seq passed to write() */
    uint64_t durable_seq; /* newest marker seq whose COMMIT succeeded */
    /* The database transaction may end here: everything sent so far ends at
     * a source commit, or at a snapshot row (which belongs to no source
     * transaction), or is a replayed event. */
    bool at_boundary;
    uint64_t boundary_seq; /* the newest event up to which a commit would cover */
    /* Newest source commit applied in the open transaction: the checkpoint
     * to store with it (snapshot rows and replays never move it). */
    bool has_ckpt;
    struct cdc_pos ckpt_pos;
    struct pgs_pending *pend;
    size_t npend, cappend;
    unsigned next_stmt;     /* for statement names */
    struct strmap *stmts;   /* statement text key -> name (heap string) */
    struct strmap *mirrors; /* "relid:version" -> struct pgs_mirror */
    char *ckpt_table;       /* quoted */
    char *events_table;     /* quoted (events mode) */
    struct buf sql, keybuf, valbuf;
    const char **vals; /* parameter scratch */
    size_t capvals;
    bool warned_nokey;
    /* Replica inserts and whole-row upserts of one table waiting to go out
     * as one multi-row statement (borrowed events: flushed before write()
     * returns, and before any other statement). */
    struct pgs_mirror *grp_mirror;
    const struct cdc_event **grp;
    size_t ngrp, capgrp;
    struct strmap *grp_keys;
    struct buf grp_key;
};

/* Sends a statement by name (preparing `sql` under a new name the first time
 * this text is seen).  vals are NUL-terminated texts or NULL. */
int pgs_send_stmt(struct sink *sk, const char *sql, int nparams, const char *const *vals,
                  const struct cdc_event *ev);
/* Sends an unprepared statement (DDL, TRUNCATE) into the pipeline. */
int pgs_send_plain(struct sink *sk, const char *sql, enum pgs_kind kind,
                   const struct cdc_event *ev);
/* Waits for every pending result; the first failure becomes the sink error. */
int pgs_drain(struct sink *sk);
/* Runs a query outside the pipeline (after draining it), for catalog work. */
PGresult *pgs_query(struct sink *sk, const char *sql, int nparams, const char *const *vals);
/* Ensures vals can hold n parameters. */
const char **pgs_vals(struct pgsink *ps, size_t n);

/* Replica mode: applies one change event to its mirror table. */
int pgs_mirror_apply(struct sink *sk, const struct cdc_event *ev);
/* Sends the rows waiting to go out together (no-op when none). */
int pgs_mirror_flush_group(struct sink *sk);
/* Marks the statement just sent as a multi-row one ending with ev. */
void pgs_mark_group(struct sink *sk, const struct cdc_event *last);
void pgs_mirror_free(void *mirror);

#endif
