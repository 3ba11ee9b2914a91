/* Private to the PostgreSQL sink:
 *   pg_sink.c    connection, pipelined statements, transactions, the
 *                `events` mode;
 *   pg_ckpt.c    the checkpoint table (a position per stream);
 *   pg_mirror.c  replica mode: applying changes to mirror tables;
 *   pg_sql.c     the statements replica mode sends, built per table shape;
 *   pg_copy.c    replica mode: runs of snapshot rows or inserts loaded
 *                with COPY;
 *   pg_schema.c  replica mode: creating mirror tables and following the
 *                source's schema and key changes. */
#ifndef CDC_SINK_POSTGRES_PG_SINK_H
#define CDC_SINK_POSTGRES_PG_SINK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink/sink.h"
#include "util/buf.h"
#include "util/keyset.h"
#include "util/strmap.h"

enum pgs_kind { PGS_BEGIN, PGS_STMT, PGS_PREPARE, PGS_CKPT, PGS_COMMIT, PGS_DDL };

/* One result the pipeline owes us, in send order. */
struct pgs_pending {
    uint8_t kind;               /* enum pgs_kind */
    bool group;                 /* PGS_STMT: a multi-row statement ending with ev */
    bool must_match;            /* PGS_STMT: an UPDATE/DELETE that must find its row */
    uint64_t seq;               /* PGS_COMMIT: the marker made durable by it */
    const struct cdc_event *ev; /* the event applied (borrowed during write) */
};

/* Prefixes the statements that create tables: processes that share a
 * mirror (deliver roles of one consumer group) create each table once
 * instead of failing on the catalog's unique index.  Held until the
 * transaction ends. */
#define PGS_DDL_LOCK "SELECT pg_advisory_xact_lock(7171530730526582784); "

#define PGS_GROUP_SIZES 9 /* multi-row statements of 1, 2, 4, … 256 rows */
/* Snapshot rows or inserts of one table loaded with one COPY (pg_copy.c):
 * a group sent on its own needs at least PGS_COPY_MIN of them (fewer go out as
 * multi-row statements); a load holds at most PGS_COPY_MAX rows and about
 * PGS_LOAD_BYTES of COPY text. */
#define PGS_COPY_MIN   64
#define PGS_COPY_MAX   65536
#define PGS_LOAD_BYTES (16u << 20)
/* A load this large starts its COPY and streams the rest as it comes. */
#define PGS_STREAM_BYTES (256u << 10)

/* What the rows of a group are, which says how they go out: snapshot rows,
 * or inserts, are loaded with COPY where the mirror allows (a failed load
 * is narrowed down differently for each, so they never share one); other
 * rows, and a group of mixed rows, go as multi-row upserts; deletes by key
 * as multi-row deletes. */
enum pgs_grp { PGS_GRP_SNAPSHOT, PGS_GRP_INSERTS, PGS_GRP_UPSERTS, PGS_GRP_DELETES };

/* A mirror table for one shape of a source table. */
struct pgs_mirror {
    struct cdc_table *tab; /* owned reference */
    char *qname;           /* quoted target table */
    /* Type of the mirror's column for each source column, sent as the
     * parameter's type so the server never guesses one (a composite key
     * compared with an untyped parameter is an error). */
    Oid *types;
    /* Rows are found by their whole old image, not a unique key: a table
     * without one (REPLICA IDENTITY FULL), or whose key is DEFERRABLE
     * (two rows may share it inside a transaction). */
    bool by_row;
    char *ins_sql;                /* upsert, or plain insert when by_row */
    char *ins_n[PGS_GROUP_SIZES]; /* the same for 2^i rows, built when first needed */
    size_t group_max;             /* rows per statement: 256, fewer for wide tables */
    char *del_n[PGS_GROUP_SIZES]; /* by key: deletes of 2^i rows, built when first needed */
    size_t del_max;               /* rows per delete statement: 256, fewer for wide keys */
    char *upd_sql;                /* all columns, by old key or old row */
    char *del_sql;                /* by old key or old row */
    char *del_key_sql;            /* by_row with a key: by the new row's key (snapshot rows) */
    /* pg_copy.c, built when first needed: the staging table's statements,
     * and whether this connection created the table; loads straight into
     * the mirror, the transaction that allowed them, and how many runs to
     * upsert before trying again. */
    char *stage_create, *stage_insert;
    /* COPY into the staging table, and SAVEPOINT then COPY into the mirror
     * table; [1] in the binary format (pg_binary.c). */
    char *stage_copy[2], *direct_copy[2];
    bool stage_ready;
    /* Whether loads go in COPY's binary format: 0 not known yet, 1 every
     * column's type has one, -1 text (a type without, or a value
     * pg_binary.c did not convert). */
    int8_t binary;
    uint64_t direct_txn;  /* the database transaction that checked, and */
    bool direct_ok;       /* whether it allows direct loads */
    unsigned direct_skip; /* runs to upsert after a direct load met a key */
};

struct pgsink {
    PGconn *conn;
    bool in_dbtxn;           /* a BEGIN was sent and no COMMIT yet */
    uint64_t dbtxn_no;       /* database transactions begun on this connection */
    unsigned savepoints;     /* savepoints taken in the open one (pg_copy.c) */
    bool direct_check_ready; /* pg_copy.c's check statement is prepared */
    int64_t dbtxn_started_us;
    size_t rows_in_dbtxn;
    uint64_t given_seq;   /* newest seq passed to write() */
    uint64_t durable_seq; /* newest marker seq whose COMMIT succeeded */
    /* The database transaction may end here: everything sent so far ends at
     * a source commit, or at a snapshot row (which belongs to no source
     * transaction), or is a replayed event. */
    bool at_boundary;
    bool boundary_snapshot; /* ... at a snapshot row */
    uint64_t boundary_seq;  /* the newest event up to which a commit would cover */
    /* Per stream, the newest source commit applied in the open transaction:
     * the checkpoint rows to store with it (snapshot rows and replays never
     * move them). */
    struct cdc_posmap ckpt;
    char *save_sql; /* the checkpoint upsert */
    /* The source transaction being applied touched a table with a deferred
     * key: commit at its end, so the deferred check belongs to it alone. */
    bool commit_now;
    struct pgs_pending *pend;
    size_t npend, cappend;
    unsigned next_stmt;     /* for statement names */
    struct strmap *stmts;   /* statement text and types -> name (heap string) */
    struct strmap *mirrors; /* table shape -> struct pgs_mirror */
    /* The table version of the last change and its mirror (the version
     * held, so its address is not reused): most changes follow one of the
     * same table, and finding a mirror by shape hashes every column. */
    struct cdc_table *last_tab;
    struct pgs_mirror *last_mirror;
    char *ckpt_table;     /* quoted */
    char *registry_table; /* quoted: replica mode's record of mirror tables */
    char *events_table;   /* quoted (events mode) */
    struct buf sql, keybuf, valbuf, stmtkey;
    const char **vals; /* parameter scratch */
    Oid *types;
    size_t capvals;
    /* Replica inserts and whole-row upserts of one table, or deletes by
     * key from one table, waiting to go out as one multi-row statement
     * (borrowed events: flushed, or parked in the load, before write()
     * returns, and before any other statement).
     * grp_keys holds the keys of the group and of the load. */
    struct pgs_mirror *grp_mirror;
    const struct cdc_event **grp;
    size_t ngrp, capgrp;
    struct keyset grp_keys;
    uint8_t grp_kind;    /* enum pgs_grp */
    unsigned next_stage; /* for staging table names */
    /* Snapshot rows, or inserts, of one mirror parked for one COPY
     * (pg_copy.c), as COPY data in text or binary format, with the newest
     * row's header (no values) to name in errors.  Once the data is large,
     * its COPY is started and the data streamed as it grows (open; sent
     * bytes of it so far); the data is kept until the COPY ends, to load it
     * again if need be. */
    struct {
        struct pgs_mirror *m;
        uint8_t kind; /* PGS_GRP_SNAPSHOT or PGS_GRP_INSERTS */
        bool binary;  /* data is in COPY's binary format, from its header on */
        struct buf data;
        size_t nrows;
        struct cdc_event last;
        bool open;   /* a COPY of it is in progress on the connection */
        bool direct; /* ... straight into the mirror, under a savepoint */
        size_t sent;
    } load;
    /* The truncate group last applied: its transaction's commit LSN and its
     * first event's index (the other events of the group are then done). */
    bool trunc_done;
    struct cdc_pos trunc_first;
};

/* Sends a statement by name (preparing `sql` with the parameter types under
 * a new name the first time this text and types are seen).  vals are
 * NUL-terminated texts or NULL; types may be NULL (the server infers). */
int pgs_send_stmt(struct sink *sk, const char *sql, int nparams, const char *const *vals,
                  const Oid *types, const struct cdc_event *ev);
/* Sends an unprepared statement (DDL, TRUNCATE) into the pipeline. */
int pgs_send_plain(struct sink *sk, const char *sql, enum pgs_kind kind,
                   const struct cdc_event *ev);
/* Waits for every pending result; the first failure becomes the sink error. */
int pgs_drain(struct sink *sk);
/* Sets the sink error for a failed result (res NULL: the connection's
 * error), naming ev; group: ev ends several rows sent together, so after
 * the reopen they go one by one to find the one refused.  Returns CDC_ERR. */
int pgs_result_error(struct sink *sk, PGresult *res, const struct cdc_event *ev, bool group);
/* Sets the sink error for a broken connection: "what: <libpq's error>". */
int pgs_conn_error(struct sink *sk, const char *what);
/* Runs a query outside the pipeline (after draining it), for catalog work and
 * DDL inside the open transaction.  On failure sets the sink error (class
 * cls unless the connection broke) and returns NULL. */
PGresult *pgs_query(struct sink *sk, const char *sql, int nparams, const char *const *vals,
                    enum sink_errclass cls);
/* Ensures the parameter scratch (vals, types) can hold n parameters. */
void pgs_scratch(struct pgsink *ps, size_t n);
/* Marks the statement just sent as a multi-row one ending with ev / as one
 * that must find its row. */
void pgs_mark_group(struct sink *sk, const struct cdc_event *last);
void pgs_mark_must_match(struct sink *sk);

/* The checkpoint table (pg_ckpt.c).  Its statements, for tests too (heap
 * strings; qschema is used by PGS_CKPT_CREATE only): */
enum pgs_ckpt_stmt {
    PGS_CKPT_CREATE,     /* the schema and the table */
    PGS_CKPT_HAS_STREAM, /* $1 = the quoted table: 1 if it has the stream column */
    PGS_CKPT_LOCK,       /* migrating a table from before streams: */
    PGS_CKPT_ADD_STREAM, /*   the column, its rows stream 0's */
    PGS_CKPT_PKEY,       /*   $1 = the quoted table: the old key's name */
    PGS_CKPT_REKEY,      /*   the key with the stream (after dropping the old one) */
    PGS_CKPT_INIT,       /* $1 pipeline, $2 sink: stream 0's row, if none */
    PGS_CKPT_READ,       /* $1, $2: every stream's row */
    PGS_CKPT_SAVE,       /* $1, $2, $3 stream, $4 commit_lsn, $5 event_index: upsert */
};
char *pgs_ckpt_sql(enum pgs_ckpt_stmt which, const char *qschema, const char *qtable);
/* PGS_CKPT_SAVE's $3..$5 for pos. */
void pgs_ckpt_params(struct cdc_pos pos, char stream[24], char lsn[24], char idx[24]);
/* Creates the table (and its schema), or migrates one from before streams. */
int pgs_ckpt_create(struct sink *sk, const char *qschema);
/* Makes sure stream 0's row exists, then reads every stream's into have. */
int pgs_ckpt_read(struct sink *sk, struct cdc_posmap *have);
/* Sends the upserts of ps->ckpt into the open transaction and clears it. */
int pgs_ckpt_send(struct sink *sk);

/* Replica mode (pg_mirror.c): applies one change event to its mirror table. */
int pgs_mirror_apply(struct sink *sk, const struct cdc_event *ev);
/* Sends the rows waiting to go out together, the load first (no-op when
 * none). */
int pgs_mirror_flush_group(struct sink *sk);
/* At the end of write(): parks a group of snapshot rows in the load, sends
 * any other. */
int pgs_mirror_end_write(struct sink *sk);
void pgs_mirror_free(void *mirror);
/* The hash of ev's new key (m not by_row), for grp_keys: equal keys hash
 * alike, and two keys that merely collide only end a group early. */
uint64_t pgs_mirror_key_hash(const struct pgs_mirror *m, const struct cdc_event *ev);

/* Runs of snapshot rows (pg_copy.c).  Whether m's rows may be loaded with
 * COPY (a unique, immediate key to upsert on). */
bool pgs_copy_usable(const struct pgs_mirror *m);
/* Moves the group (snapshot rows of a usable mirror) into the load, sending
 * the load first if it holds another mirror's rows and afterwards if it is
 * full. */
int pgs_copy_park(struct sink *sk);
/* Sends the load, as upserts in the open transaction (no-op when empty). */
int pgs_copy_send(struct sink *sk);
/* Forgets the load and the keys (after an error, at close). */
void pgs_copy_drop(struct pgsink *ps);

/* Statements (pg_sql.c), for m's shape; heap strings. */
char *pgs_sql_insert(const struct pgs_mirror *m, size_t rows);
/* The same upsert of every row in the staging table stage (of m's columns,
 * in order). */
char *pgs_sql_insert_from(const struct pgs_mirror *m, const char *stage);
/* "COPY target (m's columns) FROM STDIN", in the binary format if asked. */
char *pgs_sql_copy(const struct pgs_mirror *m, const char *target, bool binary);
/* The staging table stage: a temporary table of m's columns and their
 * types, emptied at every commit. */
char *pgs_sql_stage_create(const struct pgs_mirror *m, const char *stage);
/* tab's columns as a quoted, comma-separated list. */
void pgs_sql_put_cols(struct buf *b, const struct cdc_table *tab);
/* UPDATE setting the columns whose after value was carried (skip[i] false;
 * skip may be NULL), matching the old row; by key, key columns are set only
 * with set_keys.  NULL when there is nothing to set. */
char *pgs_sql_update(const struct pgs_mirror *m, const bool *skip, bool set_keys);
char *pgs_sql_delete(const struct pgs_mirror *m);
/* By key, rows at once: "DELETE … WHERE (key) IN (VALUES ($1, …), …)",
 * the key's columns of each row in column order. */
char *pgs_sql_delete_keys(const struct pgs_mirror *m, size_t rows);
char *pgs_sql_delete_key(const struct pgs_mirror *m);
/* Types of the match parameters, in the order pgs_sql_update/delete number
 * them, appended to types[n..]; returns the new count. */
int pgs_sql_match_types(const struct pgs_mirror *m, Oid *types, int n);

/* Schema (pg_schema.c): creates the mirror table for m's shape, or brings
 * an existing one in line with it (columns added, renamed, dropped, widened;
 * the key's unique index), and fills m->types.  A change it cannot make
 * stops the pipeline (SINK_ERR_FATAL) with a message naming table and
 * column. */
int pgs_schema_ensure(struct sink *sk, struct pgs_mirror *m);
/* The key's column names sorted by strcmp and joined by \x1f (as the
 * catalog queries list an index's columns), and as a quoted column list. */
void pgs_schema_key_names(const struct cdc_table *tab, struct buf *sorted, struct buf *list);
/* Creates the registry table beside the checkpoint table (replica mode). */
int pgs_schema_open(struct sink *sk, const char *schema_quoted);

#endif
