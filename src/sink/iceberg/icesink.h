/* The iceberg sink's insides, shared by its files:
 *
 *   ice_sink.c    the sink ops: routing events to tables, transaction
 *                 boundaries, what a flush commits, what the sink holds
 *   ice_shape.c   a table's setup: load or create it, map the source
 *                 table's columns to its fields, follow added columns
 *   ice_rows.c    events into a table's open batch: data files, equality
 *                 and position deletes, the keys a batch wrote
 *   ice_fill.c    values an update did not carry (unchanged TOAST), found
 *                 in the batch's files or the table before the commit
 *   ice_commit.c  a batch's files finished and committed as one snapshot
 *   ice_maintain.c  compaction and expiry, in the background and for
 *                 `cdc lakehouse maintain`
 *
 * A batch is everything a table received since its last snapshot.  It is
 * committed only at a source transaction boundary, so a snapshot never
 * holds part of a transaction. */
#ifndef CDC_SINK_ICEBERG_ICESINK_H
#define CDC_SINK_ICEBERG_ICESINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_table.h"
#include "lake/ice_writer.h"
#include "lake/lake_keymap.h"
#include "sink/iceberg/ice_pos.h"
#include "sink/iceberg/iceberg_sink.h"

/* Names of the change columns append mode adds. */
#define ICESINK_COL_OP        "_cdc_op"
#define ICESINK_COL_TS        "_cdc_ts_ms"
#define ICESINK_COL_POS       "_cdc_position"
#define ICESINK_COL_TOPIC     "_cdc_topic"
#define ICESINK_COL_UNCHANGED "_cdc_unchanged"
#define ICESINK_NEXTRA        5

#define ICESINK_DEFERRED UINT32_MAX /* krow.file of a row not written yet */

/* A file the batch wrote or is writing. */
struct bfile {
    char *path;
    enum ice_content content;
    bool done;               /* finished and durable */
    struct ice_data_file df; /* when done */
    uint32_t part;           /* its partition (index into batch.parts) */
};

/* An open file of one partition. */
struct pwriter {
    struct ice_file_writer w;
    uint32_t file; /* index in batch.files */
    uint32_t part;
    int64_t rows;
};

/* A key the batch touched (upsert). */
struct kslot {
    int32_t head; /* newest row written with this key (krow index), -1: none */
    bool eqdel;   /* an equality delete of it is in the batch */
};

/* A row the batch wrote (or deferred), newest first per key. */
struct krow {
    uint32_t file; /* batch file, or ICESINK_DEFERRED (pos: the deferred row) */
    int64_t pos;
    uint64_t image; /* hash of the whole row, for tables with deferrable keys */
    int32_t next;
    bool alive;
};

/* Where a deferred row's missing values come from. */
enum fill_src { FILL_NONE, FILL_FILE, FILL_DEFERRED, FILL_TABLE };

/* An update whose new row lacks values (unchanged TOAST): written at the
 * commit, once the values are found.  Values are by field id. */
struct deferred {
    uint32_t n;
    int32_t *ids;  /* field ids */
    uint8_t *kind; /* enum cdc_vkind */
    uint32_t *off; /* into text */
    uint32_t *len;
    struct buf text;
    enum fill_src src;
    uint32_t file; /* FILL_FILE */
    int64_t pos;   /* FILL_FILE: row; FILL_DEFERRED: the deferred row */
    uint32_t slot; /* the key its previous row had (FILL_TABLE) */
    bool alive;
    uint64_t image;
};

struct batch {
    struct bfile *files;
    size_t nfiles, capfiles;
    struct ice_pvalue *parts; /* npart values per partition seen */
    size_t nparts;
    uint32_t npart;
    struct pwriter *data, *eq; /* open writers, one per partition at most */
    size_t ndata, neq;
    int64_t *posdel; /* (file, pos) pairs */
    size_t nposdel, capposdel;
    struct lake_keymap *keys; /* upsert */
    struct kslot *slots;
    size_t capslots;
    struct krow *rows;
    size_t nrows, caprows;
    struct deferred *def;
    size_t ndef, capdef;
    bool truncated;  /* remove every file the table has at the commit */
    bool committing; /* a commit was tried: its files may be in the table, never delete them */
    int64_t changes;
};

/* One Iceberg table the sink writes. */
struct itable {
    char *name;  /* the Iceberg table name */
    char *label; /* "namespace.name" for messages */
    struct ice_table *t;
    struct icepos have; /* what its snapshots hold */
    bool has_rows;      /* its current snapshot has rows */
    /* The source shape it is set up for (referenced) and the mapping. */
    struct cdc_table *shape;
    int *field_of; /* per source column: index of its field in t's current schema */
    int *key_cols; /* upsert: source columns of the key, in order */
    uint32_t nkey;
    int32_t *eq_ids;           /* their field ids */
    struct ice_schema *eq_sc;  /* the equality delete files' schema */
    int extra[ICESINK_NEXTRA]; /* append: field indexes of the change columns */
    uint32_t nfields;          /* fields of the current schema */
    bool deferrable;           /* the key may repeat inside a transaction */
    struct batch b;
    /* Scratch for one change (ice_rows.c), kept to spare allocations. */
    const char **s_vals, **s_kvals;
    uint32_t *s_lens, *s_klens;
    bool *s_unchanged;
    size_t s_cap, s_kcap;
    struct buf s_key;
};

struct icemaint; /* ice_maintain.c */

struct icesink {
    struct lake_store *store;
    struct ice_catalog *cat;
    struct itable **tables;
    size_t ntables;
    /* Stream state. */
    bool in_txn;               /* inside a source transaction */
    uint64_t given_seq;        /* newest seq passed to write */
    uint64_t durable_seq;      /* newest seq every table holds durably */
    uint64_t boundary_seq;     /* seq of the newest event at a boundary */
    struct icepos last_commit; /* position of the newest COMMIT marker written */
    bool commit_due;           /* a flush came mid-transaction: commit at the boundary */
    struct icemaint *maint;
    struct cdc_table *last_tab; /* the last route taken (referenced) */
    struct itable *last_it;
};

static inline const struct iceberg_sink_cfg *icesink_conf(const struct sink *sk)
{
    return sk->cfg->conf;
}

/* ice_shape.c */
/* Loads table it (if it exists) and reads what it holds. */
int icesink_table_load(struct sink *sk, struct itable *it);
/* Makes it ready for rows of source shape tab: creates the table, maps the
 * columns, adds new ones.  Fails FATAL with the table and column named when
 * the change cannot be followed. */
int icesink_table_prepare(struct sink *sk, struct itable *it, struct cdc_table *tab);
void icesink_table_free(struct itable *it);

/* ice_rows.c */
/* Takes one change of it's source table into its batch. */
int icesink_apply(struct sink *sk, struct itable *it, const struct cdc_event *ev);
/* Ends every open file of the batch (the files stay in the batch). */
int icesink_close_writers(struct sink *sk, struct itable *it);
/* Writes one row of field-indexed texts (NULL pointer: NULL) as data. */
int icesink_put_row(struct sink *sk, struct itable *it, const char *const *vals,
                    const uint32_t *lens, uint32_t *file, int64_t *pos);
/* Writes the key texts (by eq_sc field) of a deleted key. */
int icesink_put_eq_delete(struct sink *sk, struct itable *it, const char *const *vals,
                          const uint32_t *lens);
/* Records that row pos of batch file `file` is deleted. */
void icesink_put_pos_delete(struct itable *it, uint32_t file, int64_t pos);
/* Writes the recorded position deletes as delete files of the batch. */
int icesink_write_pos_deletes(struct sink *sk, struct itable *it);
/* Drops the batch: open files aborted, finished ones deleted. */
void icesink_batch_discard(struct icesink *s, struct itable *it);
void icesink_batch_fini(struct batch *b);

/* ice_fill.c */
/* Finds the values deferred rows lack and writes the live ones. */
int icesink_fill(struct sink *sk, struct itable *it);

/* ice_commit.c */
/* Commits it's batch as one snapshot holding everything up to pos. */
int icesink_commit(struct sink *sk, struct itable *it, const struct icepos *pos);

/* ice_maintain.c */
int icemaint_start(struct sink *sk, struct icemaint **out);
/* Tells the background maintenance about a table the sink writes. */
void icemaint_add(struct icemaint *m, const char *name);
void icemaint_stop(struct icemaint *m);

/* Sets a sink error from a lake error code: connection problems are
 * UNREACHABLE, invalid data PERMANENT, the rest RETRYABLE. */
int icesink_lake_error(struct sink *sk, int rc, const char *what, const char *err);

#endif
