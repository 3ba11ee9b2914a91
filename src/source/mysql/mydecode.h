/* The binlog decoder: raw events in, change events out.
 *
 * Fed one event at a time (the bytes libmariadb hands over, or a captured
 * file), it follows the format description, the current binlog file, the
 * event groups (GTID ... XID / COMMIT, or a standalone DDL), the table maps
 * and the rows events, and calls back with a `struct cdc_event` per changed
 * row (op c/u/d, full before/after images) and a CDC_OP_COMMIT event per
 * group.  MySQL-specific facts travel beside the events, in mydecode_txn and
 * mydecode_row, and with each change as its source metadata (ev->srcmeta,
 * one per rows event, and ev->src_row: see myjson.h), which the envelope's
 * source block is written from.
 *
 * Positions.  A binlog position (file, offset) becomes a 64-bit scalar
 * (file sequence << 32 | offset), monotonic along the binlog:
 *   - every event of a group has pos.lsn = the scalar of the group's first
 *     event (its GTID event) and pos.idx = its index in the group;
 *   - ev->lsn is the scalar of the rows event the change came from;
 *   - the COMMIT event has end_lsn = the scalar just after the group, where
 *     a restart by file and offset resumes; txn->gtid_state is the GTID
 *     state after the group, where a restart by GTID resumes.
 *
 * Rolled-back work: a transaction the server rolled back is not in the
 * binlog.  What the binlog can still hold is work rolled back to a
 * SAVEPOINT (when the transaction also changed a non-transactional table):
 * from a SAVEPOINT on, changes are held back and those a ROLLBACK TO undoes
 * are dropped.  A group ending in ROLLBACK after changes went out, XA
 * PREPARE groups, and compressed events are refused with an error rather
 * than guessed at.
 *
 * Not thread-safe: one decoder per stream. */
#ifndef CDC_SOURCE_MYSQL_MYDECODE_H
#define CDC_SOURCE_MYSQL_MYDECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "source/mysql/binlog.h"
#include "util/buf.h"

#define MYDECODE_GTID_MAX 64 /* "4294967295-4294967295-18446744073709551615" */
#define MYDECODE_FILE_MAX 512

/* The event group (transaction) being decoded.  Valid during the callbacks
 * of its events and its commit. */
struct mydecode_txn {
    bool have_gtid;
    struct binlog_gtid gtid;
    char gtid_text[MYDECODE_GTID_MAX]; /* "0-1-42", or "" without GTIDs */
    uint32_t server_id;
    bool have_thread;
    uint32_t thread_id; /* from the group's QUERY events, if any */
    char file[MYDECODE_FILE_MAX];
    uint32_t begin_pos; /* offset of the group's first event in file */
    uint64_t begin;     /* its scalar: every event's pos.lsn */
    uint32_t end_pos;   /* offset just after the group (at commit) */
    uint64_t end;       /* its scalar: the COMMIT event's end_lsn */
    bool have_xid;
    uint64_t xid;           /* the XID event's transaction number (InnoDB commits) */
    int64_t ts_us;          /* the group's timestamp (its GTID event), microseconds */
    uint64_t nchanges;      /* changes emitted so far */
    bool ddl;               /* the group is a statement such as CREATE / ALTER */
    const char *gtid_state; /* at commit: the GTID state after the group */
};

/* Where one change came from. */
struct mydecode_row {
    const struct mydecode_txn *txn;
    uint32_t pos;  /* offset of the rows event in txn->file */
    uint32_t row;  /* index of the row in that rows event (Debezium source.row) */
    int64_t ts_us; /* the rows event's timestamp, microseconds */
};

struct mydecode_ops {
    /* A change.  Takes ownership of ev (one reference). */
    int (*change)(void *arg, struct cdc_event *ev, const struct mydecode_row *row);
    /* The end of a group: ev is a CDC_OP_COMMIT event (ownership passes). */
    int (*commit)(void *arg, struct cdc_event *ev, const struct mydecode_txn *txn);
    /* Optional: a statement that is not a transaction boundary (DDL). */
    int (*query)(void *arg, const struct binlog_query *q, const struct mydecode_txn *txn);
    /* Optional: the server is idle at (file, pos), outside any group
     * (heartbeats).  Everything before that position has been delivered. */
    int (*idle)(void *arg, const char *file, uint32_t pos);
};

struct mydecode_cfg {
    const char *topic_prefix;  /* for cdc_table.topic; "cdc" if NULL */
    const char *const *tables; /* "db.table" captured; NULL = every user table */
    size_t ntables;
    bool checksum;         /* the server checksums events (@@binlog_checksum = CRC32) */
    size_t max_held_bytes; /* changes held after a SAVEPOINT; 0 = 64 MiB */
};

struct mydecode;

/* cfg's strings are copied. */
struct mydecode *mydecode_new(const struct mydecode_cfg *cfg, const struct mydecode_ops *ops,
                              void *arg);
void mydecode_free(struct mydecode *d);

/* Where the stream starts: the binlog file (a dump's first ROTATE says it
 * again) and the GTID state ("0-1-100,1-2-7"; NULL or "" if unknown).
 * Returns CDC_EINVAL if the state does not parse. */
int mydecode_set_start(struct mydecode *d, const char *file, uint32_t pos, const char *gtid_state,
                       char *err, size_t errlen);

/* Decodes one event at p[0..n).  Returns 0, a callback's non-zero return,
 * or a negative CDC_E* with err naming the event, table and column. */
int mydecode_feed(struct mydecode *d, const uint8_t *p, size_t n, char *err, size_t errlen);

/* The GTID state after the last complete group ("" if none known). */
const char *mydecode_gtid_state(const struct mydecode *d);
/* The current file and the offset after the last complete group. */
const char *mydecode_file(const struct mydecode *d);
uint32_t mydecode_pos(const struct mydecode *d);
/* True between a group's first event and its end. */
bool mydecode_in_group(const struct mydecode *d);

/* The scalar of a binlog position (see above). */
uint64_t mydecode_scalar(const char *file, uint32_t pos);

/* Parses a GTID state text into a canonical one (domains sorted, one GTID
 * each).  Returns 0 or CDC_EINVAL. */
int mydecode_gtid_state_parse(const char *text, struct buf *canonical, char *err, size_t errlen);

#endif
