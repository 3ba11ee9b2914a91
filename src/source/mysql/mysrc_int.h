/* Private to the MySQL / MariaDB source (mysrc*.c): its state and what its
 * files share.
 *
 *   mysrc.c        the source_ops: open, prepare, start, poll, ack, stats
 *   mysrc_pos.c    positions: the stored binlog position, the commits not
 *                  yet confirmed, positions as text
 *   mysrc_admin.c  cdc deploy / undeploy, the server checks
 *   mysrc_snap.c   the initial snapshot's ops (source/snapshot/ does the rest)
 *
 * Positions.  The pipeline's position of stream 0 is the binlog scalar
 * (mydecode.h: file sequence << 32 | offset).  A commit is acknowledged at
 * the scalar just after its group; beside each such scalar the source keeps
 * the binlog file's name and the GTID state after the group, and once every
 * sink holds the commit it stores all three in the state store
 * (MYSRC_KEY_POSITION).  A restart resumes from the stored GTID state (the
 * server finds the place), or from the file and offset when there is no
 * GTID. */
#ifndef CDC_SOURCE_MYSQL_MYSRC_INT_H
#define CDC_SOURCE_MYSQL_MYSRC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "source/emitter.h"
#include "source/mysql/myconn.h"
#include "source/mysql/mydecode.h"
#include "source/mysql/mysnap.h"
#include "source/mysql/mystream.h"
#include "source/snapshot/incremental.h"
#include "source/snapshot/snapshot.h"
#include "source/source.h"

/* "<scalar> <file> <offset> <gtid state or ->": where streaming resumes. */
#define MYSRC_KEY_POSITION "mysql.position"

/* A place in the binlog: the scalar and what a restart needs. */
struct mysrc_place {
    uint64_t scalar;
    char file[MYDECODE_FILE_MAX];
    uint32_t pos;
    char *gtid; /* owned; "" when the server has no GTIDs */
};

void mysrc_place_fini(struct mysrc_place *p);
void mysrc_place_copy(struct mysrc_place *dst, const struct mysrc_place *src);

struct mysrc {
    const struct config *cfg;
    struct store *store;  /* borrowed */
    struct myconn_cfg cc; /* strings borrowed from cfg */
    struct myconn_server srv;
    struct emitter *em; /* borrowed during snapshot and poll */

    struct mysrc_place start;  /* where streaming starts (prepare) */
    struct mysrc_place stored; /* what the state store holds */
    bool have_stored;

    /* Commits emitted and not yet confirmed, oldest first. */
    struct mysrc_place *pend;
    size_t npend, cappend, headpend;

    /* The initial snapshot to take or finish (prepare): its id, and the
     * consistent snapshot opened for it (NULL when resuming). */
    char *snap_id;
    struct mysnap *snap;
    struct mysrc_reader *reader; /* shared by the snapshot's readers */

    /* Incremental snapshots: NULL when the signal table is unavailable. */
    struct isnap *isnap;
    struct mysnap *iconn; /* their reads (no snapshot transaction) */
    MYSQL *sigconn;       /* watermark rows */
    char *sig_db, *sig_name;
    char *sig_full; /* "db.name", also captured by the decoder */

    struct mystream *stream;
    struct mydecode *dec;
    bool idle_seen;     /* a heartbeat came in this poll */
    uint64_t received;  /* end of the newest group decoded */
    uint64_t confirmed; /* what every sink holds (the last ack) */
    int64_t last_store_us;
    int64_t last_event_ts_us; /* the server's time of the newest event (lag) */
    uint64_t n_bytes;
    char err[512];
};

/* ---------- mysrc_pos.c ---------- */

/* Reads MYSRC_KEY_POSITION into src->stored. */
int mysrc_load_position(struct mysrc *src, char *err, size_t errlen);
/* Stores place as MYSRC_KEY_POSITION (and in src->stored). */
int mysrc_store_position(struct mysrc *src, const struct mysrc_place *place, char *err,
                         size_t errlen);
/* A commit whose end is place (copied) was emitted. */
void mysrc_pending_push(struct mysrc *src, const struct mysrc_place *place);
/* The newest pending place at or before scalar (popping those before it),
 * or NULL; valid until the next push. */
const struct mysrc_place *mysrc_pending_take(struct mysrc *src, uint64_t scalar);
/* The pending place at exactly scalar, or NULL. */
const struct mysrc_place *mysrc_pending_find(const struct mysrc *src, uint64_t scalar);
/* Forgets the places after scalar (a restart there decodes them again). */
void mysrc_pending_drop_after(struct mysrc *src, uint64_t scalar);
void mysrc_pending_clear(struct mysrc *src);

int mysrc_parse_pos(const char *text, struct cdc_ack *pos, char *err, size_t errlen);
void mysrc_format_pos(uint64_t pos, char *buf, size_t len);

/* ---------- mysrc_admin.c ---------- */

/* The connection settings of cfg's source (strings borrowed). */
void mysrc_conn_cfg(const struct config *cfg, struct myconn_cfg *cc);
/* The server_id cdc reads the binlog as: source.mysql_server_id, or, unset,
 * one derived from pipeline_id. */
uint32_t mysrc_server_id(const struct config *cfg);
/* The server checks, with errors prefixed for the CLI. */
int mysrc_check(const struct config *cfg, struct myconn_server *srv, char *err, size_t errlen);
/* Whether the server still has binlog file (SHOW BINARY LOGS). */
int mysrc_has_binlog(const struct myconn_cfg *cc, const char *file, bool *has, char *err,
                     size_t errlen);
/* The binlog's end now, with the GTID state there. */
int mysrc_current_place(const struct myconn_cfg *cc, struct mysrc_place *out, char *err,
                        size_t errlen);
int mysrc_deploy(const struct config *cfg, FILE *out, char *err, size_t errlen);
void mysrc_undeploy_warning(const struct config *cfg, char *buf, size_t len);
int mysrc_undeploy(const struct config *cfg, FILE *out, char *err, size_t errlen);

/* ---------- mysrc_isnap.c ---------- */

/* The signal table of cfg (source.signal_table, or <database>.cdc_signal):
 * *db and *name (heap).  0 or CDC_EINVAL. */
int mysrc_signal_table(const struct config *cfg, char **db, char **name);
/* Creates the signal table if missing and opens incremental snapshots;
 * without it (no privilege) they stay off, with a warning.  Queues tables
 * added to source.tables since the initial snapshot. */
int mysrc_isnap_prepare(struct mysrc *src, char *err, size_t errlen);
bool mysrc_is_signal(const struct mysrc *src, const struct cdc_table *tab);
/* snap_ops.watermark: a row inserted into the signal table. */
int mysrc_watermark(void *arg, const char *table, const char *id, const char *type, char *err,
                    size_t errlen);
/* Between groups: records chunks every sink holds, starts the next one. */
int mysrc_isnap_between(struct mysrc *src, char *err, size_t errlen);
int mysrc_request_snapshot(const struct config *cfg, char *const *tables, size_t n, FILE *out,
                           char *err, size_t errlen);
void mysrc_isnap_close(struct mysrc *src);

/* ---------- mysrc_snap.c ---------- */

extern const struct snap_ops mysrc_snap_ops;
void mysrc_reader_free(struct mysrc_reader *rd);

#endif
