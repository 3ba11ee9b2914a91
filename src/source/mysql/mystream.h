/* A binlog dump over libmariadb's replication API (mariadb_rpl.h): the raw
 * bytes of each event, from a MariaDB GTID state or from a file and
 * position, with heartbeats while the server is idle.
 *
 * libmariadb only frames the events here; mydecode decodes them.  A stream
 * blocks in mystream_next until an event, a heartbeat (at most every
 * heartbeat_ms) or the end of the binlog (nonblock).  mystream_interrupt
 * may be called from another thread or a signal handler: the blocked read
 * returns at once and mystream_next returns CDC_ESTOP. */
#ifndef CDC_SOURCE_MYSQL_MYSTREAM_H
#define CDC_SOURCE_MYSQL_MYSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source/mysql/myconn.h"

/* The server no longer has the binlog the stream asked for (MySQL error
 * 1236: purged files, a GTID older than every binlog, or an unknown
 * position).  Distinct from every CDC_E* code: the caller may react with a
 * new snapshot rather than a retry. */
#define MYSTREAM_EPURGED (-64)

struct mystream_cfg {
    const struct myconn_cfg *conn;
    uint32_t server_id;     /* the replica id cdc presents; unique among replicas, not 0 */
    const char *gtid_state; /* start after this MariaDB GTID state, if non-empty */
    const char *file;       /* else at this binlog file ... */
    uint32_t pos;           /* ... and position (4 = start of the file) */
    unsigned heartbeat_ms;  /* ask for heartbeats when idle; 0 = none */
    bool nonblock;          /* end at the end of the binlog instead of waiting */
};

struct mystream;

int mystream_open(struct mystream **out, const struct mystream_cfg *cfg, char *err, size_t errlen);

/* The next event: *data and *len stay valid until the next call.  Returns 1
 * with an event, 0 at the end of the binlog (nonblock only), CDC_ESTOP after
 * mystream_interrupt, MYSTREAM_EPURGED, or CDC_ECONN. */
int mystream_next(struct mystream *s, const uint8_t **data, size_t *len, char *err, size_t errlen);

/* Whether the server checksums events (for mydecode_cfg.checksum). */
bool mystream_checksum(const struct mystream *s);

/* Makes a blocked or later mystream_next return CDC_ESTOP.  Async-signal-
 * safe and thread-safe. */
void mystream_interrupt(struct mystream *s);

void mystream_close(struct mystream *s);

#endif
