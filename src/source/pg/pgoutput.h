/* pgoutput message parser (logical replication protocol versions 1 and 2).
 *
 * Pure: parses one message (the payload of an XLogData frame) into a struct
 * whose pointers point into the caller's buffer.  No allocation, no state;
 * every length is checked, so arbitrary bytes give CDC_EINVAL, never a crash.
 * Enum values equal the message type bytes on the wire. */
#ifndef CDC_SOURCE_PG_PGOUTPUT_H
#define CDC_SOURCE_PG_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pgo_type {
    PGO_BEGIN = 'B',
    PGO_COMMIT = 'C',
    PGO_ORIGIN = 'O',
    PGO_RELATION = 'R',
    PGO_TYPE = 'Y',
    PGO_INSERT = 'I',
    PGO_UPDATE = 'U',
    PGO_DELETE = 'D',
    PGO_TRUNCATE = 'T',
    PGO_MESSAGE = 'M',
    PGO_STREAM_START = 'S',
    PGO_STREAM_STOP = 'E',
    PGO_STREAM_COMMIT = 'c',
    PGO_STREAM_ABORT = 'A',
};

/* TupleData: a column count followed by that many columns.  Parsing checks
 * the whole tuple; pgo_tuple_next then walks it without further checks. */
struct pgo_tuple {
    uint16_t ncols;
    const uint8_t *p; /* first column's kind byte */
    size_t len;       /* bytes from p to the end of the tuple */
};

/* One column of a tuple: kind 'n' (null), 'u' (unchanged TOAST), 't' (text)
 * or 'b' (binary); data/len for 't' and 'b'. */
struct pgo_col {
    char kind;
    const char *data;
    uint32_t len;
};

/* Iterates a tuple checked by pgo_parse: *cursor starts at tuple->p. */
void pgo_tuple_next(const uint8_t **cursor, struct pgo_col *col);

/* A column description inside a Relation message. */
struct pgo_relcol {
    uint8_t flags; /* 1 = part of the replica identity key */
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
};

struct pgo_msg {
    enum pgo_type type;
    /* Xid of the streamed transaction for messages inside a stream block
     * (protocol 2), and for Stream Start/Commit/Abort; 0 otherwise. */
    uint32_t xid;
    union {
        struct {
            uint64_t final_lsn; /* LSN of the commit record */
            int64_t commit_ts;  /* microseconds since 2000-01-01 */
            uint32_t xid;
        } begin;
        struct {
            uint8_t flags;
            uint64_t commit_lsn; /* LSN of the commit record */
            uint64_t end_lsn;    /* end of the commit record */
            int64_t commit_ts;   /* microseconds since 2000-01-01 */
        } commit;                /* PGO_COMMIT and PGO_STREAM_COMMIT */
        struct {
            uint64_t lsn; /* commit LSN on the origin server */
            const char *name;
        } origin;
        struct {
            uint32_t relid;
            const char *nspname; /* "" means pg_catalog */
            const char *relname;
            char replident; /* 'd', 'n', 'f', 'i' */
            uint16_t ncols;
            const uint8_t *cols; /* walk with pgo_relcol_next */
        } relation;
        struct {
            uint32_t oid;
            const char *nspname;
            const char *typname;
        } typeinfo;
        struct {
            uint32_t relid;
            char old_kind;        /* 'K' key only, 'O' whole old row, 0 none */
            struct pgo_tuple old; /* valid when old_kind != 0 */
            struct pgo_tuple new; /* insert/update; for deletes unused */
        } change;
        struct {
            uint8_t options; /* 1 CASCADE, 2 RESTART IDENTITY */
            uint32_t nrels;
            const uint8_t *relids; /* nrels big-endian uint32 */
        } truncate;
        struct {
            uint8_t flags; /* 1 = transactional */
            uint64_t lsn;
            const char *prefix;
            const uint8_t *content;
            uint32_t len;
        } message;
        struct {
            uint8_t first_segment; /* 1 for the first block of this xid */
        } stream_start;
        struct {
            uint32_t subxid; /* == xid when the whole transaction aborted */
        } stream_abort;
    };
};

/* Parses buf[0..len).  `streaming` says whether the message arrived inside a
 * Stream Start/Stop block (then data messages begin with an xid).
 * Returns 0, or CDC_EINVAL with a description in err. */
int pgo_parse(const uint8_t *buf, size_t len, bool streaming, struct pgo_msg *m, char *err,
              size_t errlen);

/* Iterates relation columns of a parsed Relation message. */
void pgo_relcol_next(const uint8_t **cursor, struct pgo_relcol *col);

/* Reads the i-th relid of a parsed Truncate message. */
uint32_t pgo_truncate_relid(const struct pgo_msg *m, uint32_t i);

/* Big-endian readers shared with the replication framing code. */
static inline uint64_t pgo_get_u64(const uint8_t *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
           ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static inline uint32_t pgo_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint16_t pgo_get_u16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | (unsigned)p[1]);
}

static inline void pgo_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch). */
#define PG_EPOCH_OFFSET_US 946684800000000LL

#endif
