/* MySQL source: the initial snapshot's ops (source/snapshot/snapshot.h).
 *
 * MariaDB cannot share one consistent snapshot between connections, so
 * every reader uses the one connection that started the snapshot
 * (START TRANSACTION WITH CONSISTENT SNAPSHOT, whose binlog position the
 * stream starts from), taking turns: snapshot_parallelism readers overlap
 * their emitting, not their reading.  Chunks are primary-key ranges
 * (mysnap_plan).  Resuming after a crash, a fresh snapshot reads the chunks
 * not done: their rows are newer than the stream's start, and the stream
 * then replays changes those rows already show, which leaves every keyed
 * row as the source has it.  A table without a primary key is read again
 * in full after a truncate (source/snapshot/), with no fold rule: changes
 * the stream replays on top of it may repeat (docs/mysql.md). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/myjson.h"
#include "source/mysql/mysrc_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

struct mysrc_reader {
    struct mysnap *snap;      /* owned */
    struct cdc_srcmeta *meta; /* the snapshot's binlog place, for its rows' source block */
    pthread_mutex_t mu;       /* one reader at a time on the connection */
    unsigned refs;
};

void mysrc_reader_free(struct mysrc_reader *rd)
{
    if (!rd)
        return;
    mysnap_close(rd->snap);
    cdc_srcmeta_unref(rd->meta);
    pthread_mutex_destroy(&rd->mu);
    free(rd);
}

/* Debezium's snapshot rows show the binlog place of the snapshot: file,
 * position and GTID state (when it fits the source metadata), at the time
 * the snapshot was taken. */
static struct cdc_srcmeta *snapshot_meta(struct mysrc *src, struct mysnap *s)
{
    struct mydecode_txn t;
    memset(&t, 0, sizeof t);
    str_copy(t.file, sizeof t.file, mysnap_file(s));
    const char *g = mysnap_gtid_state(s);
    if (strlen(g) < sizeof t.gtid_text)
        str_copy(t.gtid_text, sizeof t.gtid_text, g);
    t.server_id = src->srv.server_id;
    struct mydecode_row r = {.txn = &t, .pos = mysnap_pos(s), .ts_us = mysnap_ts_us(s)};
    return myjson_meta_new(&r);
}

static int open_reader(void *arg, unsigned i, void **out, char *err, size_t errlen)
{
    struct mysrc *src = arg;
    *out = NULL;
    if (i == 0 || !src->reader) {
        struct mysrc_reader *rd = xcalloc(1, sizeof *rd);
        pthread_mutex_init(&rd->mu, NULL);
        if (src->snap) {
            rd->snap = src->snap; /* the snapshot the stream starts after */
            src->snap = NULL;
        } else {
            int rc = mysnap_open(&rd->snap, &src->cc, err, errlen);
            if (rc) {
                mysrc_reader_free(rd);
                return rc;
            }
            log_info("snapshot.mysql_fresh", "file=%s pos=%u hint=%s", mysnap_file(rd->snap),
                     mysnap_pos(rd->snap),
                     log_q("resumed: the chunks not done are read from a new snapshot"));
        }
        rd->meta = snapshot_meta(src, rd->snap);
        mysrc_reader_free(src->reader);
        src->reader = rd;
    }
    src->reader->refs++;
    *out = src->reader;
    return 0;
}

static void close_reader(void *arg, void *p)
{
    struct mysrc *src = arg;
    struct mysrc_reader *rd = p;
    if (--rd->refs == 0) {
        if (src->reader == rd)
            src->reader = NULL;
        mysrc_reader_free(rd);
    }
}

/* rd NULL: an incremental snapshot's table, on the connection of their
 * reads. */
static int open_table(void *arg, void *p, const char *table, void **t, struct cdc_table **shape,
                      char *err, size_t errlen)
{
    struct mysrc *src = arg;
    struct mysrc_reader *rd = p;
    *t = NULL;
    *shape = NULL;
    struct mysnap *s = rd ? rd->snap : src->iconn;
    if (!s)
        return cdc_fail(err, errlen, CDC_EINVAL, "incremental snapshots are unavailable");
    char *db = NULL, *name = NULL;
    if (config_split_table(table, &db, &name) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "snapshot: malformed table %s", table);
    struct mysnap_table *mt = NULL;
    if (rd)
        pthread_mutex_lock(&rd->mu);
    int rc = mysnap_table_open(s, db, name, src->cfg->topic_prefix, &mt, err, errlen);
    if (rd)
        pthread_mutex_unlock(&rd->mu);
    free(db);
    free(name);
    if (rc)
        return rc;
    if (!rd && !mysnap_key_readable(mt)) {
        mysnap_table_free(mt);
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "table %s: an incremental snapshot needs a primary key of integers, "
                        "text or dates",
                        table);
    }
    struct cdc_table *tab = mysnap_table_shape(mt);
    cdc_table_ref(tab);
    *shape = tab;
    *t = mt;
    return 0;
}

static void close_table(void *arg, void *t)
{
    (void)arg;
    mysnap_table_free(t);
}

static int plan(void *arg, void *p, void *t, int64_t chunk_rows, struct buf *chunks,
                uint64_t *estimate, char *err, size_t errlen)
{
    (void)arg;
    struct mysrc_reader *rd = p;
    pthread_mutex_lock(&rd->mu);
    int rc = mysnap_plan(rd->snap, t, chunk_rows, chunks, estimate, err, errlen);
    pthread_mutex_unlock(&rd->mu);
    return rc;
}

struct meta_row {
    snap_row_fn row;
    void *arg;
    struct cdc_srcmeta *meta;
};

static int with_meta(void *arg, struct cdc_event *ev)
{
    struct meta_row *m = arg;
    if (m->meta && !ev->srcmeta) {
        cdc_srcmeta_ref(m->meta);
        ev->srcmeta = m->meta;
    }
    return m->row(m->arg, ev);
}

static int read_chunk(void *arg, void *p, void *t, const char *chunk, snap_row_fn row,
                      void *row_arg, char *err, size_t errlen)
{
    (void)arg;
    struct mysrc_reader *rd = p;
    struct meta_row m = {row, row_arg, rd->meta};
    pthread_mutex_lock(&rd->mu);
    int rc = mysnap_read_range(rd->snap, t, chunk, 0, with_meta, &m, err, errlen);
    pthread_mutex_unlock(&rd->mu);
    return rc;
}

/* ---------- incremental snapshots ---------- */

/* The rows after the key `after` (a bound as row_key gives it), one
 * statement: InnoDB reads them consistently as of its start. */
static int read_after(void *arg, void *t, const char *after, size_t limit, snap_row_fn row,
                      void *row_arg, char *err, size_t errlen)
{
    struct mysrc *src = arg;
    char *chunk = xasprintf("%s|-", after ? after : "-");
    int rc = mysnap_read_range(src->iconn, t, chunk, limit, row, row_arg, err, errlen);
    free(chunk);
    return rc;
}

static char *row_key(void *arg, void *t, const struct cdc_event *ev)
{
    (void)arg;
    struct buf b = BUF_INIT;
    mysnap_key_bound(t, ev, &b);
    return b.p ? b.p : xstrdup("");
}

const struct snap_ops mysrc_snap_ops = {
    .open_reader = open_reader,
    .close_reader = close_reader,
    .open_table = open_table,
    .close_table = close_table,
    .plan = plan,
    .read_chunk = read_chunk,
    .watermark = mysrc_watermark,
    .read_after = read_after,
    .row_key = row_key,
};
