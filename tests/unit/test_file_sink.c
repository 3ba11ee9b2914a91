/* File sink: one writer at a time.  A second opener of a file another sink
 * holds open is refused and leaves a line in progress alone; once the first
 * writer is gone, a torn last line is cut at open as before.  ready() says
 * whether the file system has room.  With one stream the lines say where the
 * file is; with several, the checkpoint beside it does: what was written
 * after it is cut off, a torn slot falls back to the other one, a file
 * shorter than its checkpoint stops the pipeline.  A flush behind syncs in
 * a thread and reports what the previous one made durable.  What is synced
 * leaves the page cache but for the file's last 64 MiB. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/json.h"
#include "sink/file/file_ckpt.h"
#include "sink/file/file_sink.h"
#include "sink/sink.h"
#include "source/pg/pgjson.h"

static const struct json_ctx jctx = {.pipeline_id = "p",
                                     .connector = "postgresql",
                                     .db = "db",
                                     .version = "0",
                                     .source = pgjson_source};
static const struct json_ctx jctx_streams = {.pipeline_id = "p",
                                             .connector = "postgresql",
                                             .db = "db",
                                             .version = "0",
                                             .source = pgjson_source,
                                             .multi_stream = true};
static char dir[] = "/tmp/cdc-file-sink-XXXXXX";
static char path[256];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    return 0;
}

static void remove_files(void)
{
    char *ck = file_ckpt_path(path);
    unlink(path);
    unlink(ck);
    free(ck);
}

static int teardown(void **state)
{
    (void)state;
    remove_files();
    return rmdir(dir);
}

static struct file_sink_cfg fcfg = {.path = path, .fsync = true};

static void sink_init(struct sink *sk, struct sink_cfg *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->sink_id = "jsonl";
    sc->type = &sink_file_type;
    sc->conf = &fcfg;
    memset(sk, 0, sizeof *sk);
    sk->ops = sc->type->ops;
    sk->cfg = sc;
    sk->json = &jctx;
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void append(const char *s)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    close(fd);
}

static void test_second_writer_refused_tail_untouched(void **state)
{
    (void)state;
    struct sink_cfg ca, cb;
    struct sink a, b;
    sink_init(&a, &ca);
    sink_init(&b, &cb);
    assert_true(ca.type->single_writer);
    struct cdc_posmap have = {0};
    assert_int_equal(a.ops->open(&a, &have), 0);
    /* the first writer is halfway through a line */
    append("{\"before\":null,\"after\":{\"id\":1");
    off_t size = file_size();
    assert_int_not_equal(b.ops->open(&b, &have), 0);
    assert_non_null(strstr(b.err, "another process"));
    assert_int_equal(file_size(), size); /* not cut as a torn line */
    /* a replay opener is refused the same way */
    b.replay = true;
    assert_int_not_equal(b.ops->open(&b, &have), 0);
    b.replay = false;
    assert_true(a.ops->ready(&a)); /* /tmp has room */
    a.ops->close(&a);

    /* the writer died mid-line: the next opener cuts the torn line */
    assert_int_equal(b.ops->open(&b, &have), 0);
    assert_int_equal(file_size(), 0);
    b.ops->close(&b);
    cdc_posmap_fini(&have);
}

/* ---------- positions ---------- */

static struct cdc_table *tab;

/* An insert into tab whose one value is val[0..len). */
static struct cdc_event *insert_of(uint32_t stream, uint64_t lsn, uint64_t idx, uint64_t seq,
                                   const char *val, size_t len)
{
    struct cdc_event *ev = cdc_event_new(0, 1, len + 1);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->after[0] = (struct cdc_val){0, (uint32_t)len, CDC_V_TEXT};
    memcpy(ev->data, val, len);
    ev->data[len] = '\0';
    ev->data_len = (uint32_t)len + 1;
    ev->pos = (struct cdc_pos){lsn, idx, stream};
    ev->total_order = (uint32_t)idx + 1;
    ev->table_order = 1;
    ev->seq = seq;
    return ev;
}

static struct cdc_event *change(uint32_t stream, uint64_t lsn, uint64_t idx, uint64_t seq)
{
    char val[32];
    int len = snprintf(val, sizeof val, "%llu", (unsigned long long)(lsn + idx));
    return insert_of(stream, lsn, idx, seq, val, (size_t)len);
}

static struct cdc_event *commit(uint32_t stream, uint64_t lsn, uint64_t seq)
{
    struct cdc_event *ev = cdc_event_new(0, 0, 0);
    ev->op = CDC_OP_COMMIT;
    ev->pos = (struct cdc_pos){lsn, CDC_POS_TXN_END, stream};
    ev->seq = seq;
    return ev;
}

/* Writes one transaction (two changes and its commit) and flushes it. */
static void write_txn(struct sink *sk, uint32_t stream, uint64_t lsn, uint64_t *seq)
{
    struct cdc_event *evs[3] = {change(stream, lsn, 0, ++*seq), change(stream, lsn, 1, ++*seq),
                                commit(stream, lsn, ++*seq)};
    assert_int_equal(sk->ops->write(sk, evs, 3), 0);
    uint64_t durable = 0;
    assert_int_equal(sk->ops->flush(sk, &durable), 0);
    assert_int_equal(durable, *seq);
    for (int i = 0; i < 3; i++)
        cdc_event_unref(evs[i]);
}

static void assert_have(const struct cdc_posmap *have, uint32_t stream, uint64_t lsn, uint64_t idx)
{
    const struct cdc_pos *p = cdc_posmap_get(have, stream);
    assert_non_null(p);
    assert_int_equal(p->lsn, lsn);
    assert_int_equal(p->idx, idx);
}

/* One stream (a file written by earlier versions too): no checkpoint, the
 * newest line says where the file is. */
static void test_one_stream_reads_its_lines(void **state)
{
    (void)state;
    remove_files();
    struct sink_cfg sc;
    struct sink sk;
    sink_init(&sk, &sc);
    struct cdc_posmap have = {0};
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(have.n, 0);
    uint64_t seq = 0;
    write_txn(&sk, 0, 1000, &seq);
    write_txn(&sk, 0, 2000, &seq);
    sk.ops->close(&sk);
    char *ck = file_ckpt_path(path);
    assert_int_not_equal(access(ck, F_OK), 0);
    free(ck);
    cdc_posmap_clear(&have);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(have.n, 1);
    assert_have(&have, 0, 2000, 1); /* the last line */
    /* An event of another stream cannot be placed in such a file: the
     * pipeline stops rather than lose track of it. */
    struct cdc_event *ev = change(1, 10, 0, ++seq);
    assert_int_not_equal(sk.ops->write(&sk, &ev, 1), 0);
    assert_int_equal(sk.errclass, SINK_ERR_FATAL);
    cdc_event_unref(ev);
    sk.ops->close(&sk);
    cdc_posmap_fini(&have);
}

/* Writes ev (if any), flushes, and checks what the flush reports durable. */
static void flush_expect(struct sink *sk, struct cdc_event *ev, uint64_t want)
{
    uint64_t durable = 99;
    if (ev)
        assert_int_equal(sk->ops->write(sk, &ev, 1), 0);
    assert_int_equal(sk->ops->flush(sk, &durable), 0);
    assert_int_equal(durable, want);
}

/* A flush behind reports what the previous flush made durable while its
 * own sync runs; the next flush (behind or not) waits for that sync, and a
 * flush that is not behind reports everything written.  With several
 * streams (a checkpoint to write after the sync) every flush syncs. */
static void test_flush_behind(void **state)
{
    (void)state;
    remove_files();
    struct sink_cfg sc;
    struct sink sk;
    sink_init(&sk, &sc);
    struct cdc_posmap have = {0};
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    uint64_t seq = 0;
    struct cdc_event *a = change(0, 1000, 0, ++seq), *b = change(0, 2000, 0, ++seq);
    struct cdc_event *c = change(0, 3000, 0, ++seq), *d = change(0, 4000, 0, ++seq);
    sk.flush_behind = true;
    flush_expect(&sk, a, 0);    /* nothing synced before */
    flush_expect(&sk, b, 1);    /* a's sync, joined; b's started */
    flush_expect(&sk, NULL, 2); /* nothing new: b's sync joined */
    flush_expect(&sk, c, 2);
    sk.flush_behind = false;
    flush_expect(&sk, NULL, 3);
    /* closing with a sync running waits for it; the file holds all four */
    sk.flush_behind = true;
    flush_expect(&sk, d, 3);
    sk.ops->close(&sk);
    cdc_posmap_clear(&have);
    sink_init(&sk, &sc);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_have(&have, 0, 4000, 0);
    sk.ops->close(&sk);

    remove_files();
    sink_init(&sk, &sc);
    sk.json = &jctx_streams;
    cdc_posmap_clear(&have);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    sk.flush_behind = true;
    struct cdc_event *e = change(1, 10, 0, ++seq);
    flush_expect(&sk, e, seq);
    sk.ops->close(&sk);
    struct cdc_event *all[] = {a, b, c, d, e};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cdc_event_unref(all[i]);
    cdc_posmap_fini(&have);
    remove_files();
}

/* The share of [from, to) of the file that is in the page cache. */
static double resident(int fd, off_t from, off_t to)
{
    long pg = sysconf(_SC_PAGESIZE);
    from = from / pg * pg;
    size_t len = (size_t)(to - from), npages = (len + (size_t)pg - 1) / (size_t)pg, in = 0;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, from);
    assert_true(m != MAP_FAILED);
    unsigned char *vec = malloc(npages);
    assert_int_equal(mincore(m, len, vec), 0);
    for (size_t i = 0; i < npages; i++)
        in += vec[i] & 1;
    free(vec);
    munmap(m, len);
    return (double)in / (double)npages;
}

/* 100 MiB of lines of 64 KiB, flushed now and then (behind and not): once
 * synced, all but the last 64 MiB leave the page cache, and every line is
 * still in the file. */
static void test_cache_dropped_behind(void **state)
{
    (void)state;
    remove_files();
    struct sink_cfg sc;
    struct sink sk;
    sink_init(&sk, &sc);
    struct cdc_posmap have = {0};
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    enum { VAL = 64 << 10, LINES = 1600 };
    uint64_t seq = 0, durable;
    char *val = malloc(VAL);
    for (int i = 0; i < LINES; i++) {
        memset(val, 'a' + i % 26, VAL);
        struct cdc_event *ev = insert_of(0, 1000 + (uint64_t)i, 0, ++seq, val, VAL);
        assert_int_equal(sk.ops->write(&sk, &ev, 1), 0);
        cdc_event_unref(ev);
        if (i % 64 == 63) {
            sk.flush_behind = i % 128 == 63;
            assert_int_equal(sk.ops->flush(&sk, &durable), 0);
        }
    }
    free(val);
    sk.flush_behind = false;
    assert_int_equal(sk.ops->flush(&sk, &durable), 0);
    assert_int_equal(durable, seq);
    off_t size = file_size();
    assert_true(size > (off_t)LINES * VAL);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct statfs sf;
    assert_int_equal(fstatfs(fd, &sf), 0);
    if (sf.f_type != TMPFS_MAGIC) { /* tmpfs pages are the file: never dropped */
        assert_true(resident(fd, 0, size - (80 << 20)) < 0.1);
        assert_true(resident(fd, size - (32 << 20), size) > 0.9);
    }
    /* and the lines are all there, read back from the disk */
    char *buf = malloc(1 << 20);
    size_t lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, 1 << 20)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    free(buf);
    close(fd);
    assert_int_equal(lines, LINES);
    sk.ops->close(&sk);
    cdc_posmap_clear(&have);
    sink_init(&sk, &sc);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_have(&have, 0, 1000 + LINES - 1, 0);
    sk.ops->close(&sk);
    cdc_posmap_fini(&have);
    remove_files();
}

/* Several streams: the checkpoint holds each one's position; what was
 * appended after it is cut off at open. */
static void test_streams_checkpoint(void **state)
{
    (void)state;
    remove_files();
    struct sink_cfg sc;
    struct sink sk;
    sink_init(&sk, &sc);
    sk.json = &jctx_streams;
    struct cdc_posmap have = {0};
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(have.n, 0);
    uint64_t seq = 0;
    write_txn(&sk, 0, 5000, &seq);
    write_txn(&sk, 1, 20, &seq); /* the lagging stream: smaller positions */
    write_txn(&sk, 0, 6000, &seq);
    sk.ops->close(&sk);
    off_t size = file_size();

    cdc_posmap_clear(&have);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(have.n, 2);
    assert_have(&have, 0, 6000, CDC_POS_TXN_END);
    assert_have(&have, 1, 20, CDC_POS_TXN_END);
    sk.ops->close(&sk);

    /* Written after the last checkpoint (a crash before it was written):
     * never acknowledged, so cut off. */
    append("{\"before\":null,\"after\":{\"id\":7}}\n{\"before\":null,");
    cdc_posmap_clear(&have);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(file_size(), size);
    assert_have(&have, 1, 20, CDC_POS_TXN_END);
    write_txn(&sk, 1, 30, &seq);
    sk.ops->close(&sk);
    off_t size2 = file_size();

    /* The newest slot torn: the other, older one counts, and the data after
     * it goes. */
    char *ck = file_ckpt_path(path);
    FILE *f = fopen(ck, "r+b");
    assert_non_null(f);
    /* generations 1 (creation), 2, 3, 4, 5: the newest is in slot 1 */
    assert_int_equal(fseek(f, FILE_CKPT_SLOT + 30, SEEK_SET), 0);
    fputc('X', f);
    fclose(f);
    cdc_posmap_clear(&have);
    assert_int_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(file_size(), size);
    assert_have(&have, 1, 20, CDC_POS_TXN_END);
    assert_have(&have, 0, 6000, CDC_POS_TXN_END);
    sk.ops->close(&sk);
    assert_true(size2 > size);

    /* A file shorter than its checkpoint says was delivered: someone cut
     * it; cdc stops rather than deliver on top of a gap. */
    assert_int_equal(truncate(path, size / 2), 0);
    cdc_posmap_clear(&have);
    assert_int_not_equal(sk.ops->open(&sk, &have), 0);
    assert_int_equal(sk.errclass, SINK_ERR_FATAL);
    assert_non_null(strstr(sk.err, "fewer than its checkpoint"));
    free(ck);
    cdc_posmap_fini(&have);
    remove_files();
}

int main(void)
{
    tab = cdc_table_new(1, "public", "t", "cdc", 1);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("integer");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].key = true;
    cdc_table_finish(tab);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_refused_tail_untouched),
        cmocka_unit_test(test_one_stream_reads_its_lines),
        cmocka_unit_test(test_streams_checkpoint),
        cmocka_unit_test(test_flush_behind),
        cmocka_unit_test(test_cache_dropped_behind),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    cdc_table_unref(tab);
    return rc;
}
