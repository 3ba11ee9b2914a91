/* Consistent snapshot reads of MySQL / MariaDB tables, without locks.
 *
 * mysnap_open starts a REPEATABLE READ transaction WITH CONSISTENT SNAPSHOT
 * and reads the binlog position that matches its read view
 * (binlog_snapshot_file / binlog_snapshot_position, a MariaDB feature; the
 * GTID form from BINLOG_GTID_POS of that position), so streaming from that
 * position after the snapshot misses and repeats nothing (InnoDB tables).
 * Tables are read in primary-key order, in chunks of rows with a key above
 * the last one read, through the text protocol; each value is converted to
 * the same canonical text the binlog decoder produces (myvalue.h), and each
 * row becomes an op 'r' event of the table's shape (built like the
 * decoder's, from information_schema). */
#ifndef CDC_SOURCE_MYSQL_MYSNAP_H
#define CDC_SOURCE_MYSQL_MYSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "source/mysql/myconn.h"
#include "util/buf.h"

struct mysnap;
struct mysnap_table;

int mysnap_open(struct mysnap **out, const struct myconn_cfg *cfg, char *err, size_t errlen);
/* Ends the transaction and closes the connection. */
void mysnap_close(struct mysnap *s);

/* The binlog position of the snapshot: stream from here afterwards. */
const char *mysnap_file(const struct mysnap *s);
uint32_t mysnap_pos(const struct mysnap *s);
/* The GTID state at that position ("" if the server cannot tell). */
const char *mysnap_gtid_state(const struct mysnap *s);
/* When the snapshot was taken, microseconds since the epoch. */
int64_t mysnap_ts_us(const struct mysnap *s);

/* Describes db.table inside the snapshot.  A table without a primary key is
 * read in one chunk. */
int mysnap_table_open(struct mysnap *s, const char *db, const char *table, const char *topic_prefix,
                      struct mysnap_table **out, char *err, size_t errlen);
void mysnap_table_free(struct mysnap_table *t);
/* The table's shape (borrowed; take a reference to keep it). */
struct cdc_table *mysnap_table_shape(const struct mysnap_table *t);

/* Reads the next chunk of at most limit rows and hands each to row() as an
 * op 'r' event (ownership passes).  Returns the number of rows read (0 when
 * the table is done), a callback's non-zero return, or a negative CDC_E*. */
long mysnap_read_chunk(struct mysnap *s, struct mysnap_table *t, size_t limit,
                       int (*row)(void *arg, struct cdc_event *ev), void *arg, char *err,
                       size_t errlen);

/* Plans t's chunks for the initial snapshot (source/snapshot/): key ranges
 * of about chunk_rows rows, one line each appended to chunks ("<lo>|<hi>",
 * a bound being "-" or the key's values in hex; a table without a primary
 * key is one chunk), found by stepping through the primary key.
 * *estimate = the server's row estimate. */
int mysnap_plan(struct mysnap *s, struct mysnap_table *t, int64_t chunk_rows, struct buf *chunks,
                uint64_t *estimate, char *err, size_t errlen);
/* Reads the rows of one planned chunk, in key order (at most limit of them;
 * 0: all), handing each to row() as mysnap_read_chunk does.  0, a callback's non-zero return, or a
 * negative CDC_E*. */
int mysnap_read_range(struct mysnap *s, struct mysnap_table *t, const char *chunk, size_t limit,
                      int (*row)(void *arg, struct cdc_event *ev), void *arg, char *err,
                      size_t errlen);
/* Incremental snapshots: a connection without a snapshot transaction (each
 * read is one statement, consistent in itself); the key of a row read as a
 * chunk bound ("x<hex>,..." of its canonical text, for "<bound>|-"); and
 * whether t's key can be given back that way (integers, text, dates: not
 * bytes, TIMESTAMP, BIT or floating point). */
int mysnap_open_plain(struct mysnap **out, const struct myconn_cfg *cfg, char *err, size_t errlen);
/* Whether the connection still answers (mysql_ping). */
bool mysnap_alive(struct mysnap *s);
void mysnap_key_bound(const struct mysnap_table *t, const struct cdc_event *ev, struct buf *b);
bool mysnap_key_readable(const struct mysnap_table *t);

#endif
