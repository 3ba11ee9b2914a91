/* The change event: one in-memory model for every source.
 *
 * An event is one allocation: the header, then the before/after value arrays,
 * then the value bytes.  Values are kept in the source's canonical text form
 * (what PostgreSQL's output functions print) with a type class per column, so
 * a PostgreSQL mirror re-reads them exactly and the JSON encoder can type them.
 *
 * Lifetime: the source creates an event with one reference per consumer that
 * will see it (cdc_event_new sets refs; the event log adjusts it on push);
 * every consumer drops its reference when done.  Events are never modified
 * after they are pushed, so sharing them across sink threads needs no lock. */
#ifndef CDC_CORE_EVENT_H
#define CDC_CORE_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Operation.  The user-visible ones are the Debezium `op` letters. */
enum cdc_op {
    CDC_OP_INSERT = 'c',
    CDC_OP_UPDATE = 'u',
    CDC_OP_DELETE = 'd',
    CDC_OP_READ = 'r', /* a snapshot row */
    CDC_OP_TRUNCATE = 't',
    CDC_OP_MESSAGE = 'm', /* a logical decoding message (pg_logical_emit_message) */
    /* Control events: they travel through the event log in order but are not
     * changes; sinks that do not care about them skip them. */
    CDC_OP_COMMIT = 'C', /* end of a source transaction: all its events precede it */
    CDC_OP_REWIND = 'W', /* the source restarted from an earlier position */
};

static inline bool cdc_op_is_control(int op)
{
    return op == CDC_OP_COMMIT || op == CDC_OP_REWIND;
}

/* Type class of a column, derived from the source's type (PostgreSQL type
 * OID, MySQL column type).  It decides how a value is encoded in JSON and how
 * a mirror column is declared; the value itself stays in canonical text. */
enum cdc_type {
    CDC_T_TEXT = 0, /* text, varchar, char, enums, and anything unknown */
    CDC_T_INT,      /* int2/int4/int8/oid: JSON number */
    CDC_T_FLOAT,    /* float4/float8: JSON number, or "NaN"/"Infinity" strings */
    CDC_T_NUMERIC,  /* numeric/decimal: exact text, JSON string */
    CDC_T_BOOL,     /* canonical text "t"/"f": JSON true/false */
    CDC_T_BYTES,    /* canonical text "\x" + hex: JSON base64 string */
    CDC_T_UUID,
    CDC_T_JSON, /* json/jsonb: JSON string holding the document (as Debezium) */
    CDC_T_DATE,
    CDC_T_TIME,
    CDC_T_TIMETZ,
    CDC_T_TIMESTAMP,
    CDC_T_TIMESTAMPTZ,
    CDC_T_INTERVAL,
    CDC_T_ARRAY, /* canonical array text ("{1,2,3}"): JSON string */
};

/* A position in one of the source's change streams: the commit LSN (or
 * binlog offset, or Kafka offset) of the transaction and the event's index
 * within it.  Never the begin LSN alone: several events share one.
 * CDC_POS_TXN_END as idx marks "the whole transaction".
 *
 * A source has one stream (PostgreSQL, MySQL: stream 0) or several (a Kafka
 * consumer: one per topic partition, interleaved in one event log).
 * Positions of one stream are ordered lexicographically by (lsn, idx);
 * positions of different streams are not ordered at all: whatever keeps
 * "how far" keeps it per stream (core/posmap.h).  stream is the last field,
 * so an initializer {lsn, idx} is a position of stream 0. */
struct cdc_pos {
    uint64_t lsn;
    uint64_t idx;
    uint32_t stream;
};
#define CDC_POS_TXN_END UINT64_MAX

/* Compares two positions of one stream.  Positions of different streams
 * compare by stream first: a total order for sorting sets of positions
 * (the dead-letter skip set), not an order of the stream. */
static inline int cdc_pos_cmp(struct cdc_pos a, struct cdc_pos b)
{
    if (a.stream != b.stream)
        return a.stream < b.stream ? -1 : 1;
    if (a.lsn != b.lsn)
        return a.lsn < b.lsn ? -1 : 1;
    if (a.idx != b.idx)
        return a.idx < b.idx ? -1 : 1;
    return 0;
}

/* Formats a position for people: "16/B374D848:3", ":end" for a whole
 * transaction, and "#2" after it for a stream other than 0.  Returns buf. */
char *cdc_pos_format(struct cdc_pos pos, char *buf, size_t len);
#define CDC_POS_TEXT_MAX 64

/* A position a source may be told is durable everywhere, or asked to start
 * from: pos is the stream's own scalar, increasing along the stream
 * (PostgreSQL's LSN: the end of the newest transaction every sink holds; a
 * MySQL binlog scalar; a Kafka offset, the next one to read). */
struct cdc_ack {
    uint32_t stream;
    uint64_t pos;
};

struct cdc_column {
    char *name;        /* owned */
    char *type_name;   /* owned: SQL type for a mirror, e.g. "numeric(10,2)"; "text" if unknown */
    uint32_t type_oid; /* source type id (PostgreSQL OID) */
    int32_t typmod;
    enum cdc_type type;
    bool key; /* part of the event key (primary key / replica identity) */
    /* What the source's catalog said about the column when the shape was
     * described, for a mirror following schema changes; unknown (0, NULL,
     * false) for shapes read back from storage. */
    int16_t attnum;        /* the column's number in the source table, stable across renames */
    char *missing;         /* owned: the value rows older than the column get (PostgreSQL's
                              attmissingval, kept for a non-volatile ADD COLUMN default), or NULL */
    bool has_default;      /* the column has a default (or is an identity) */
    bool not_null;         /* the column is NOT NULL (false: nullable, or unknown) */
    bool volatile_default; /* the default is volatile (or an identity): adding the column made
                              the source rewrite its rows with values the log does not carry */
};

/* One version of a captured table's shape.  Immutable once published; a schema
 * change creates a new version.  Reference-counted: every event points at the
 * version it was decoded with. */
struct cdc_table {
    atomic_uint refs;
    uint64_t id;      /* source table id (PostgreSQL relation OID, MariaDB's 48-bit table id) */
    uint32_t version; /* increases with every new shape of the same id */
    char *schema;     /* owned */
    char *name;       /* owned */
    char *topic;      /* owned: "{topic_prefix}.{schema}.{name}" */
    char replident;   /* 'd' default, 'f' full, 'i' index, 'n' nothing */
    uint16_t ncols;
    uint16_t nkeys; /* columns with key=true */
    /* The key columns identify one row (a primary key or replica-identity
     * index).  False when the key is the whole old row of a REPLICA IDENTITY
     * FULL table without a primary key (duplicates possible), or empty. */
    bool key_unique;
    /* The key is a DEFERRABLE primary key: inside a transaction two rows may
     * share a key value (UPDATE t SET id = id + 1), so rows are found by
     * their whole old image (REPLICA IDENTITY FULL), not by key. */
    bool key_deferrable;
    struct cdc_column *cols; /* owned, ncols entries */
};

/* New table with ncols zeroed columns and one reference.  Strings are copied. */
struct cdc_table *cdc_table_new(uint64_t id, const char *schema, const char *name,
                                const char *topic_prefix, uint16_t ncols);
void cdc_table_ref(struct cdc_table *tab);
/* Drops a reference; frees on the last.  NULL is a no-op. */
void cdc_table_unref(struct cdc_table *tab);
/* Drops n references at once. */
void cdc_table_unref_n(struct cdc_table *tab, unsigned n);

/* References taken ahead by one thread that makes many events of a table
 * (a source's decoder, a snapshot read): one atomic add for every
 * CDC_REFBANK events instead of one each, on a counter the sinks' threads
 * keep changing as they release events.  Starts zeroed. */
#define CDC_REFBANK 256
struct cdc_refbank {
    struct cdc_table *tab; /* the table the references are of */
    unsigned n;            /* references held */
};
/* One reference of tab for the caller (what the bank holds of another
 * table goes back first). */
struct cdc_table *cdc_refbank_take(struct cdc_refbank *b, struct cdc_table *tab);
/* Gives back what the bank holds. */
void cdc_refbank_drop(struct cdc_refbank *b);
/* Recounts nkeys after the caller set cols[].key. */
void cdc_table_finish(struct cdc_table *tab);

enum cdc_vkind {
    CDC_V_NULL = 0,
    CDC_V_UNCHANGED, /* the log did not carry this value (unchanged TOAST) */
    CDC_V_TEXT,      /* data[off .. off+len) holds the canonical text, and
                        data[off+len] is a NUL (so C APIs can take it as is) */
};

struct cdc_val {
    uint32_t off;
    uint32_t len;
    uint8_t kind; /* enum cdc_vkind */
};

/* What a source type knows of where an event came from beyond the event
 * model, for the envelope's source block (MySQL: binlog file and offset,
 * server id, GTID, thread, the rows event's time).  Bytes in the source
 * type's own layout, read only by its json_source; cdc stores them as they
 * are (evcodec), so a dead-lettered event keeps them.  The source makes one
 * per transaction or per record of one, shared by its events (each holds a
 * reference); immutable once an event points at it.  PostgreSQL needs
 * none. */
struct cdc_srcmeta {
    atomic_uint refs;
    uint32_t len;
    unsigned char data[];
};

/* A copy of data[0..len) with one reference. */
struct cdc_srcmeta *cdc_srcmeta_new(const void *data, size_t len);
void cdc_srcmeta_ref(struct cdc_srcmeta *m);
/* Drops a reference; frees on the last.  NULL is a no-op. */
void cdc_srcmeta_unref(struct cdc_srcmeta *m);

/* TRUNCATE options, as pgoutput's options byte carries them. */
enum { CDC_TRUNC_CASCADE = 1, CDC_TRUNC_RESTART_IDENTITY = 2 };

struct cdc_event {
    atomic_uint refs;
    uint8_t op;           /* enum cdc_op */
    bool before_key_only; /* before holds only the key columns (REPLICA IDENTITY DEFAULT/INDEX) */
    uint8_t grave;        /* where it goes once released (event.c) */
    uint16_t part;        /* partition, set by the router */
    uint32_t size;        /* bytes accounted against the memory budget */
    uint64_t seq;         /* position in the event log, set by the source (1, 2, …) */
    struct cdc_pos pos;
    /* Where the capture process read the event, when it came through a
     * transport that gives it positions of its own (has_origin: the Kafka
     * deliver role, whose pos is the record's offset in its partition's
     * stream).  Envelopes show the origin (cdc_event_origin). */
    struct cdc_pos origin;
    bool has_origin;
    uint64_t lsn;         /* LSN of the change record itself (Debezium source.lsn) */
    uint64_t end_lsn;     /* CDC_OP_COMMIT: end of the commit record, what the slot may confirm */
    int64_t commit_ts;    /* commit time, microseconds since the Unix epoch */
    int64_t emit_ts;      /* when cdc decoded the event, microseconds since the Unix epoch */
    uint64_t xid;         /* transaction id (PostgreSQL xid, MariaDB GTID sequence number) */
    uint32_t table_order; /* 1-based order of this event among its table's events in the txn */
    uint32_t total_order; /* 1-based order of this event in the txn (pos.idx + 1) */
    uint32_t rewind_gen;  /* CDC_OP_REWIND: generation of the rewind */
    bool snapshot;        /* produced by a snapshot read */
    /* Snapshot rows (and a snapshot's truncate): which snapshot read them,
     * the same across its resumes and re-reads (the initial snapshot: the
     * slot's consistent point; an incremental one: an id per run over a
     * table), and where in it: the chunk read (a number the table's reads
     * never repeat: every read of a chunk, after a resume or a rewind,
     * gets a new one) and the row's index in that read.  Their pos is
     * where in the stream they belong (the initial snapshot: the point the
     * stream starts after; an incremental one: the transaction that closed
     * its window), idx 0: rows are never skipped by position.  0 for
     * changes. */
    uint64_t snapshot_id;
    uint64_t snapshot_chunk;
    uint32_t snapshot_row;
    struct cdc_table *tab; /* owned reference; NULL for messages and control events */
    /* The source type's facts about where it came from (owned reference, or
     * NULL), and the event's index in the source record srcmeta describes
     * (MySQL: the row in its rows event). */
    struct cdc_srcmeta *srcmeta;
    uint32_t src_row;
    struct cdc_val *before; /* tab->ncols entries, or NULL */
    struct cdc_val *after;  /* tab->ncols entries, or NULL */
    /* CDC_OP_MESSAGE: prefix and content are values 0 and 1 of `after`
     * (with tab == NULL), and msg_transactional says which kind. */
    bool msg_transactional;
    /* CDC_OP_TRUNCATE: the statement's options (CDC_TRUNC_*) and the captured
     * tables it truncated together.  They have one event each, consecutive
     * in the transaction; this is number trunc_index (from 0) of
     * trunc_count, and data holds every table's name (see
     * cdc_event_trunc_table).  trunc_count is 0 for a truncate that stands
     * alone (a snapshot rebuilding a table). */
    uint8_t trunc_opts;
    uint16_t trunc_index, trunc_count;
    uint32_t data_len;
    char *data; /* value bytes, inside this allocation unless data_free is set */
    /* Set when data is a buffer of its own (a large row decoded in place in
     * the message that carried it): frees it with the event. */
    void (*data_free)(void *data);
    struct cdc_event *dead_next; /* in its grave, once released (event.c) */
};

/* Whether an update with a before image changed a key column's value (a
 * column left out as unchanged did not). */
bool cdc_event_key_changed(const struct cdc_event *ev);

/* The position the event had where it was captured: what envelopes show. */
static inline struct cdc_pos cdc_event_origin(const struct cdc_event *ev)
{
    return ev->has_origin ? ev->origin : ev->pos;
}

/* Allocates an event with room for the given value arrays and data bytes, one
 * reference, and everything else zero.  Takes ownership of no table: the
 * caller sets ev->tab with a reference it owns. */
struct cdc_event *cdc_event_new(uint16_t nvals_before, uint16_t nvals_after, size_t data_cap);
/* For a table without columns, whose rows are empty, not absent: points
 * before/after (when wanted and NULL) at the event's empty value array. */
static inline void cdc_event_empty_rows(struct cdc_event *ev, bool before, bool after)
{
    if (before && !ev->before)
        ev->before = (struct cdc_val *)(ev + 1);
    if (after && !ev->after)
        ev->after = (struct cdc_val *)(ev + 1);
}
void cdc_event_ref(struct cdc_event *ev);
/* Drops a reference; returns true if that freed the event. */
bool cdc_event_unref(struct cdc_event *ev);
/* The same, but a freed event's table reference is the caller's to drop
 * (*tab; NULL when it held none or was not freed): releasing a run of
 * events of one table then costs one cdc_table_unref_n. */
bool cdc_event_unref_keep_table(struct cdc_event *ev, struct cdc_table **tab);
/* Frees the released events not yet freed (event.c keeps them for a
 * thread that makes events to free).  Any thread, at any time. */
void cdc_event_reap(void);

static inline const char *cdc_val_ptr(const struct cdc_event *ev, const struct cdc_val *v)
{
    return ev->data + v->off;
}

/* Number of value slots in before/after (the table's column count, or 2 for
 * messages). */
static inline uint16_t cdc_event_nvals(const struct cdc_event *ev)
{
    return ev->tab ? ev->tab->ncols : (ev->op == CDC_OP_MESSAGE ? 2 : 0);
}

/* The row whose key identifies the event: after for inserts/updates/reads,
 * before for deletes. */
static inline const struct cdc_val *cdc_event_key_row(const struct cdc_event *ev)
{
    return ev->after ? ev->after : ev->before;
}

/* The i-th table (0 <= i < trunc_count) of a truncate's group: pointers into
 * ev->data.  Returns false if i is out of range or the names are malformed. */
bool cdc_event_trunc_table(const struct cdc_event *ev, uint16_t i, const char **schema,
                           const char **name);

/* Stable hash of the table identity and key values (text forms), for routing. */
uint64_t cdc_event_key_hash(const struct cdc_event *ev);

#endif
