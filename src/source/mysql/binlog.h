/* MySQL / MariaDB binlog events: framing and the small control events.
 *
 * Pure: parses the bytes of one event (header included, as the server sends
 * it after the OK byte) into structs whose pointers point into the caller's
 * buffer.  No allocation; every length is checked, so arbitrary bytes give
 * CDC_EINVAL with a sentence, never a crash.  Enum values equal the event
 * type codes on the wire.  TABLE_MAP and rows events have their own modules
 * (tablemap.h, rows.h). */
#ifndef CDC_SOURCE_MYSQL_BINLOG_H
#define CDC_SOURCE_MYSQL_BINLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum binlog_type {
    BINLOG_QUERY = 2,
    BINLOG_STOP = 3,
    BINLOG_ROTATE = 4,
    BINLOG_INTVAR = 5,
    BINLOG_RAND = 13,
    BINLOG_USER_VAR = 14,
    BINLOG_FORMAT_DESCRIPTION = 15,
    BINLOG_XID = 16,
    BINLOG_TABLE_MAP = 19,
    BINLOG_WRITE_ROWS_V1 = 23,
    BINLOG_UPDATE_ROWS_V1 = 24,
    BINLOG_DELETE_ROWS_V1 = 25,
    BINLOG_INCIDENT = 26,
    BINLOG_HEARTBEAT = 27,
    BINLOG_IGNORABLE = 28,
    BINLOG_ROWS_QUERY = 29,
    BINLOG_WRITE_ROWS_V2 = 30,
    BINLOG_UPDATE_ROWS_V2 = 31,
    BINLOG_DELETE_ROWS_V2 = 32,
    BINLOG_XA_PREPARE = 38,
    BINLOG_PARTIAL_UPDATE_ROWS = 39,
    BINLOG_TRANSACTION_PAYLOAD = 40,
    /* MariaDB */
    BINLOG_ANNOTATE_ROWS = 160,
    BINLOG_CHECKPOINT = 161,
    BINLOG_GTID = 162,
    BINLOG_GTID_LIST = 163,
    BINLOG_START_ENCRYPTION = 164,
    BINLOG_QUERY_COMPRESSED = 165,
    BINLOG_WRITE_ROWS_COMPRESSED_V1 = 166,
    BINLOG_DELETE_ROWS_COMPRESSED = 171,
};

#define BINLOG_HEADER_LEN   19
#define BINLOG_CHECKSUM_LEN 4
/* Event header flag: an event the server made up (the rotate that opens a
 * dump, the format description it resends), not read from the file. */
#define BINLOG_F_ARTIFICIAL 0x0020

/* GTID event flags (MariaDB log_event.h). */
#define BINLOG_GTID_STANDALONE    0x01 /* no terminating XID / COMMIT follows */
#define BINLOG_GTID_GROUP_COMMIT  0x02 /* commit_id present */
#define BINLOG_GTID_TRANSACTIONAL 0x04
#define BINLOG_GTID_DDL           0x20
#define BINLOG_GTID_PREPARED_XA   0x40
#define BINLOG_GTID_COMPLETED_XA  0x80

/* The common event header (v4). */
struct binlog_header {
    uint32_t timestamp; /* seconds since the epoch, when the statement started */
    uint8_t type;       /* enum binlog_type */
    uint32_t server_id; /* server that first wrote the event */
    uint32_t size;      /* header + body + checksum */
    uint32_t next_pos;  /* position of the next event in the file (0 if artificial) */
    uint16_t flags;
};

/* What the FORMAT_DESCRIPTION event says about the events after it.  The
 * caller keeps one per stream; binlog_format_init gives the v4 defaults and
 * whether the server checksums events (known from @@binlog_checksum before
 * the first format description arrives, for the rotate that precedes it). */
struct binlog_format {
    bool checksum;         /* every event ends with a CRC32 */
    uint8_t header_len;    /* 19 */
    uint8_t post_len[256]; /* post-header length per event type */
    bool have_description; /* a FORMAT_DESCRIPTION event was seen */
    char server_version[51];
};

void binlog_format_init(struct binlog_format *fmt, bool checksum);

/* One framed event: the header, and the body between the header and the
 * checksum (the checksum is not verified here: libmariadb or TCP did). */
struct binlog_event {
    struct binlog_header h;
    const uint8_t *body;
    size_t body_len;
};

/* Frames the event at p[0..n).  n may exceed the event (the rest is
 * ignored) but not fall short of it. */
int binlog_frame(const struct binlog_format *fmt, const uint8_t *p, size_t n,
                 struct binlog_event *ev, char *err, size_t errlen);

/* FORMAT_DESCRIPTION: updates fmt (post-header lengths, checksum). */
int binlog_parse_format(struct binlog_format *fmt, const struct binlog_event *ev, char *err,
                        size_t errlen);

struct binlog_rotate {
    uint64_t pos; /* first position to read in the next file */
    const char *file;
    size_t file_len;
};
int binlog_parse_rotate(const struct binlog_format *fmt, const struct binlog_event *ev,
                        struct binlog_rotate *out, char *err, size_t errlen);

/* MariaDB GTID: domain-server-sequence; server_id is the event header's. */
struct binlog_gtid {
    uint64_t seq;
    uint32_t domain;
    uint32_t server_id;
    uint8_t flags; /* BINLOG_GTID_* */
    uint64_t commit_id;
};
int binlog_parse_gtid(const struct binlog_event *ev, struct binlog_gtid *out, char *err,
                      size_t errlen);

/* GTID_LIST: the GTID state at the start of a binlog file.  Walk it with
 * binlog_gtid_list_at(list, i, &g) for i < count. */
struct binlog_gtid_list {
    uint32_t count;
    const uint8_t *p; /* count entries of 16 bytes */
};
int binlog_parse_gtid_list(const struct binlog_event *ev, struct binlog_gtid_list *out, char *err,
                           size_t errlen);
void binlog_gtid_list_at(const struct binlog_gtid_list *l, uint32_t i, struct binlog_gtid *g);

int binlog_parse_xid(const struct binlog_event *ev, uint64_t *xid, char *err, size_t errlen);

struct binlog_query {
    uint32_t thread_id;
    uint32_t exec_time;
    uint16_t error_code;
    const char *db; /* not NUL-terminated */
    size_t db_len;
    const char *sql; /* not NUL-terminated */
    size_t sql_len;
};
int binlog_parse_query(const struct binlog_format *fmt, const struct binlog_event *ev,
                       struct binlog_query *out, char *err, size_t errlen);

/* HEARTBEAT: the server is idle at (file, h.next_pos). */
struct binlog_heartbeat {
    const char *file;
    size_t file_len;
};
int binlog_parse_heartbeat(const struct binlog_event *ev, struct binlog_heartbeat *out);

/* Kind of statement a QUERY event carries, as far as transaction boundaries
 * go: BEGIN, COMMIT, ROLLBACK, SAVEPOINT / ROLLBACK TO / RELEASE SAVEPOINT
 * (name in *name), XA ..., or anything else (DDL and the like). */
enum binlog_stmt {
    BINLOG_STMT_OTHER = 0,
    BINLOG_STMT_BEGIN,
    BINLOG_STMT_COMMIT,
    BINLOG_STMT_ROLLBACK,
    BINLOG_STMT_SAVEPOINT,
    BINLOG_STMT_ROLLBACK_TO,
    BINLOG_STMT_RELEASE,
    BINLOG_STMT_XA,
};
enum binlog_stmt binlog_query_kind(const char *sql, size_t len, const char **name,
                                   size_t *name_len);

/* Little-endian readers and the "length-encoded integer" of the protocol. */
static inline uint32_t binlog_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static inline uint32_t binlog_u24(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}
static inline uint32_t binlog_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t binlog_u48(const uint8_t *p)
{
    return (uint64_t)binlog_u32(p) | (uint64_t)binlog_u16(p + 4) << 32;
}
static inline uint64_t binlog_u64(const uint8_t *p)
{
    return (uint64_t)binlog_u32(p) | (uint64_t)binlog_u32(p + 4) << 32;
}

/* Reads a length-encoded integer at *p (< end), advancing *p.  Returns 0, or
 * -1 if it runs past end or is the NULL marker 0xfb. */
int binlog_lenenc(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* The sequence number in a binlog file name ("mysql-bin.000042" -> 42), or
 * 0 if the name has no numeric extension. */
uint32_t binlog_file_seq(const char *name, size_t len);

#endif
