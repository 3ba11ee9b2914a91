/* File sink: one JSON envelope per line, appended in commit order, fsync'd
 * before a batch counts as durable.
 *
 * Exactly once across crashes: at open the sink removes a torn last line (a
 * write cut short by a crash) and reads the position of the last complete
 * line; the engine then skips every change at or before it.  A source with
 * several streams keeps a checkpoint beside the file instead (file_ckpt.h):
 * every stream's position and the length of the file that holds them, so
 * at open the sink cuts off what was written after it and reports the
 * checkpoint's positions.
 *
 * One writer at a time: the sink holds an exclusive flock on the file from
 * open to close and takes it before it looks at the tail, so it never cuts
 * a line another process (a second cdc, another pipeline configured with the
 * same path, `cdc dlq replay`) is in the middle of appending.  A file that is
 * locked cannot be opened: the error says so, and the engine retries. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config/cfg_keys.h"
#include "core/json.h"
#include "sink/file/file_ckpt.h"
#include "sink/file/file_sink.h"
#include "sink/sink.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/mem.h"

#define WRITE_CHUNK (256u << 10)
#define SCAN_LIMIT  (64u << 20)  /* how far back to look among positioned lines */
#define SCAN_FAR    (1ull << 30) /* how far back to look for a first one */
#define READY_FREE_BYTES                                                                           \
    (4u * WRITE_CHUNK) /* free space that ends a wait after failures (file_ready) */
/* Durable bytes further back than DROP_WINDOW from the end are dropped from
 * the page cache, DROP_STEP at least at a time (see drop_behind). */
#define DROP_WINDOW (64 << 20)
#define DROP_STEP   (16 << 20)

struct file_sink {
    int fd;
    off_t synced;       /* file size at the last successful fsync */
    off_t dropped;      /* the file's cached pages before this were dropped */
    struct buf out;     /* encoded, not yet written */
    uint64_t given_seq; /* newest seq passed to write() */
    bool unsynced;      /* bytes written since the last fsync */
    /* Several streams: the checkpoint (NULL with one stream, whose lines
     * carry their positions) and, per stream, the newest position written
     * (and, after a flush, durable). */
    struct file_ckpt *ck;
    struct cdc_posmap given;
    bool moved; /* given changed since the last checkpoint */
    /* A flush behind (sink.h): the fdatasync running in its own thread,
     * of the file up to sync_end, which holds the events up to sync_seq;
     * the errno it failed with, read once the thread is joined. */
    bool syncing;
    pthread_t sync_thread;
    off_t sync_end;
    uint64_t sync_seq;
    int sync_errno;
    uint64_t durable_seq; /* newest seq known durable */
};

static void *sync_main(void *arg)
{
    struct file_sink *fs = arg;
    fs->sync_errno = fdatasync(fs->fd) == 0 ? 0 : errno;
    return NULL;
}

/* Tells the kernel it may drop the cached pages of what was synced, but
 * the last DROP_WINDOW bytes (which a reader tailing the file finds in the
 * cache).  A sink appends far more than anyone reads back soon: a snapshot
 * writes gigabytes.  Kept, the pages fill the page cache, and each write
 * needs a page never used before; dropped, the next writes reuse them.
 * Where a fresh page is dear (a virtual machine whose host backs guest
 * memory on first use), writing 1 GB into new pages cost 2.5-3 s of kernel
 * time against 0.5 s reusing dropped ones.  Only synced (clean) pages are
 * dropped: the data is on disk, and the call cannot lose any. */
static void drop_behind(struct file_sink *fs)
{
    off_t end = fs->synced - DROP_WINDOW;
    if (end - fs->dropped < DROP_STEP)
        return;
    (void)posix_fadvise(fs->fd, fs->dropped, end - fs->dropped, POSIX_FADV_DONTNEED);
    fs->dropped = end;
}

/* Waits for the sync running behind, if any: 0, or the errno it failed with. */
static int sync_join(struct file_sink *fs)
{
    if (!fs->syncing)
        return 0;
    pthread_join(fs->sync_thread, NULL);
    fs->syncing = false;
    if (fs->sync_errno)
        return fs->sync_errno;
    fs->synced = fs->sync_end;
    fs->durable_seq = fs->sync_seq;
    drop_behind(fs);
    return 0;
}

/* Starts syncing everything written so far in a thread of its own; false
 * if it could not (the caller then syncs itself). */
static bool sync_behind(struct file_sink *fs)
{
    struct stat st;
    if (fstat(fs->fd, &st) != 0)
        return false;
    fs->sync_end = st.st_size;
    fs->sync_seq = fs->given_seq;
    fs->sync_errno = 0;
    if (pthread_create(&fs->sync_thread, NULL, sync_main, fs) != 0)
        return false;
    fs->syncing = true;
    fs->unsynced = false;
    return true;
}

static const struct file_sink_cfg *conf(const struct sink *sk)
{
    return sk->cfg->conf;
}

static int write_all(struct sink *sk, struct file_sink *fs)
{
    size_t off = 0;
    while (off < fs->out.len) {
        ssize_t w = write(fs->fd, fs->out.p + off, fs->out.len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            /* Drop what was not written: the reopen after this error re-reads
             * the file and the engine replays from what it holds. */
            buf_reset(&fs->out);
            return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot write %s: %s", conf(sk)->path,
                                  strerror(e));
        }
        off += (size_t)w;
        fs->unsynced = true;
    }
    buf_reset(&fs->out);
    return 0;
}

/* Offset just past the last '\n' strictly before `end`, or 0 if none. */
static int find_line_start(int fd, off_t end, off_t *start)
{
    char chunk[65536];
    off_t pos = end;
    while (pos > 0) {
        size_t n = pos < (off_t)sizeof chunk ? (size_t)pos : sizeof chunk;
        pos -= (off_t)n;
        if (pread(fd, chunk, n, pos) != (ssize_t)n)
            return -1;
        for (size_t i = n; i-- > 0;)
            if (chunk[i] == '\n') {
                *start = pos + (off_t)i + 1;
                return 0;
            }
    }
    *start = 0;
    return 0;
}

#define SCAN_LINES                                                                                 \
    1000 /* positioned lines to look at, at most (a replay of more                                 \
             old events than this at once could hide the newest) */

/* One stream: removes a torn last line and finds the newest position among
 * the last lines that carry one (snapshot rows do not).  The newest, not
 * the last: `cdc dlq replay` appends older events after the stream's lines. */
static int recover_tail(struct sink *sk, struct file_sink *fs, struct cdc_posmap *have)
{
    const char *path = conf(sk)->path;
    struct stat st;
    if (fstat(fs->fd, &st) != 0)
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot stat %s: %s", path, strerror(errno));
    off_t size = st.st_size;
    if (size == 0)
        return 0;
    char last;
    if (pread(fs->fd, &last, 1, size - 1) != 1)
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot read %s: %s", path, strerror(errno));
    if (last != '\n' && !sk->replay) {
        off_t start;
        if (find_line_start(fs->fd, size, &start) != 0)
            return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot read %s: %s", path,
                                  strerror(errno));
        if (ftruncate(fs->fd, start) != 0 || fsync(fs->fd) != 0)
            return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot truncate torn line in %s: %s",
                                  path, strerror(errno));
        log_warn("sink.file.torn_line_removed", "sink=%s bytes=%lld", sk->cfg->sink_id,
                 (long long)(size - start));
        size = start;
    }
    off_t end = size; /* end of the line under inspection, exclusive of its '\n' */
    struct buf line = BUF_INIT;
    int rc = 0;
    unsigned found = 0;
    /* A long run of snapshot rows may follow the last positioned line: look
     * further back until one is found. */
    while (end > 0 && found < SCAN_LINES && size - end < (off_t)(found ? SCAN_LIMIT : SCAN_FAR)) {
        off_t start;
        if (find_line_start(fs->fd, end - 1, &start) != 0) {
            rc =
                sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        size_t len = (size_t)(end - 1 - start);
        buf_reset(&line);
        buf_reserve(&line, len);
        if (pread(fs->fd, line.p, len, start) != (ssize_t)len) {
            rc =
                sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        line.len = len;
        struct cdc_pos pos;
        if (json_envelope_position(line.p, len, &pos) == 0) {
            cdc_posmap_raise(have, pos);
            found++;
        }
        end = start;
    }
    buf_fini(&line);
    return rc;
}

static void file_free(struct file_sink *fs)
{
    (void)sync_join(fs);
    if (fs->fd >= 0)
        close(fs->fd);
    file_ckpt_close(fs->ck);
    cdc_posmap_fini(&fs->given);
    buf_fini(&fs->out);
    free(fs);
}

/* Several streams: the checkpoint says what the file holds.  Cuts off what
 * was written after it (never acknowledged); creates it, from what the
 * file holds now, when there is none yet. */
static int open_checkpoint(struct sink *sk, struct file_sink *fs, struct cdc_posmap *have)
{
    const char *path = conf(sk)->path;
    struct stat st;
    if (fstat(fs->fd, &st) != 0)
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot stat %s: %s", path, strerror(errno));
    char e[512];
    bool found = false;
    /* No checkpoint yet: the file's lines do not say where each stream is,
     * so it holds nothing as far as the streams go (what the source sends
     * again is appended again, never skipped). */
    if (file_ckpt_open(&fs->ck, path, true, st.st_size, have, &found, e, sizeof e) != 0)
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "%s", e);
    if (!found) {
        if (st.st_size > 0)
            log_warn("sink.file.checkpoint_created", "sink=%s bytes=%lld hint=%s", sk->cfg->sink_id,
                     (long long)st.st_size,
                     log_q("the file had no checkpoint: changes the source sends again are "
                           "appended again"));
        return 0;
    }
    off_t len = 0;
    if (file_ckpt_read(fs->ck, &len, have, e, sizeof e) != 0)
        return sink_set_error(sk, SINK_ERR_FATAL, "%s", e);
    if (st.st_size < len)
        return sink_set_error(sk, SINK_ERR_FATAL,
                              "%s holds %lld bytes, fewer than its checkpoint says were "
                              "delivered (%lld): it was cut or replaced outside cdc",
                              path, (long long)st.st_size, (long long)len);
    if (st.st_size > len) {
        if (ftruncate(fs->fd, len) != 0 || fsync(fs->fd) != 0)
            return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot truncate %s: %s", path,
                                  strerror(errno));
        log_warn("sink.file.unacknowledged_removed", "sink=%s bytes=%lld", sk->cfg->sink_id,
                 (long long)(st.st_size - len));
    }
    return 0;
}

static int file_open(struct sink *sk, struct cdc_posmap *have)
{
    const char *path = conf(sk)->path;
    struct file_sink *fs = xcalloc(1, sizeof *fs);
    bool existed = access(path, F_OK) == 0;
    fs->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fs->fd < 0) {
        int e = errno;
        free(fs);
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot open %s: %s", path, strerror(e));
    }
    if (flock(fs->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        file_free(fs);
        if (e == EWOULDBLOCK)
            return sink_set_error(sk, SINK_ERR_RETRYABLE,
                                  "cannot open %s: another process (or another sink) is writing "
                                  "it; one writer at a time",
                                  path);
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot lock %s: %s", path, strerror(e));
    }
    if (!existed && fs_sync_dir_of(path) != 0)
        log_warn("sink.file.dir_fsync_failed", "sink=%s error=%s", sk->cfg->sink_id,
                 log_q(strerror(errno)));
    /* A file with a checkpoint keeps it, whatever the source is now. */
    char *ckpath = file_ckpt_path(path);
    bool checkpointed = sk->json->multi_stream || access(ckpath, F_OK) == 0;
    free(ckpath);
    int rc = checkpointed ? open_checkpoint(sk, fs, have) : recover_tail(sk, fs, have);
    if (rc != 0) {
        file_free(fs);
        return CDC_ERR;
    }
    cdc_posmap_copy(&fs->given, have);
    struct stat st;
    fs->synced = fstat(fs->fd, &st) == 0 ? st.st_size : 0;
    sk->priv = fs;
    return 0;
}

/* Several streams: the newest position of each, for the checkpoint (a
 * replay of dead letters leaves them alone).  Their positions cannot be read
 * back from the lines, so a file without a checkpoint refuses them. */
static int track_position(struct sink *sk, struct file_sink *fs, const struct cdc_event *ev)
{
    if (ev->snapshot || ev->op == CDC_OP_REWIND || sk->replay)
        return 0;
    if (!fs->ck) {
        if (ev->pos.stream == 0)
            return 0;
        sk->err_seq = 0;
        return sink_set_error(sk, SINK_ERR_FATAL,
                              "%s: an event of stream %u, but the file keeps no checkpoint of "
                              "several streams (the source type does not declare them)",
                              conf(sk)->path, ev->pos.stream);
    }
    cdc_posmap_set(&fs->given, ev->pos);
    fs->moved = true;
    return 0;
}

static int file_write(struct sink *sk, struct cdc_event *const *evs, size_t n)
{
    struct file_sink *fs = sk->priv;
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *ev = evs[i];
        if (track_position(sk, fs, ev) != 0)
            return CDC_ERR;
        if (cdc_op_is_control(ev->op))
            continue;
        json_envelope(&fs->out, ev, sk->json);
        buf_putc(&fs->out, '\n');
        if (fs->out.len >= WRITE_CHUNK && write_all(sk, fs) != 0)
            return CDC_ERR;
    }
    if (n)
        fs->given_seq = evs[n - 1]->seq;
    return 0;
}

/* Writes what is buffered and makes the file durable up to here, or, for
 * a flush behind (one stream: the lines say what the file holds), starts
 * that in a thread and reports what the previous flush made durable.
 * Either way the sync started by the previous flush is waited for first:
 * one runs at a time, and encoding the next batch overlaps it. */
static int file_flush(struct sink *sk, uint64_t *durable_seq)
{
    struct file_sink *fs = sk->priv;
    if (write_all(sk, fs) != 0)
        return CDC_ERR;
    int e = sync_join(fs);
    if (e == 0 && sk->flush_behind && !fs->ck && conf(sk)->fsync && fs->unsynced &&
        sync_behind(fs)) {
        *durable_seq = fs->durable_seq;
        return 0;
    }
    if (e == 0 && fs->unsynced && conf(sk)->fsync && fdatasync(fs->fd) != 0)
        e = errno;
    if (e) {
        /* After a failed fsync the page cache may say the data is there
         * when the disk does not have it: cut the file back to what was
         * synced, so the reopen replays the rest. */
        if (ftruncate(fs->fd, fs->synced) != 0 || fdatasync(fs->fd) != 0)
            log_error("sink.file.truncate_failed", "sink=%s error=%s", sk->cfg->sink_id,
                      log_q(strerror(errno)));
        return sink_set_error(sk, SINK_ERR_RETRYABLE, "cannot fsync %s: %s", conf(sk)->path,
                              strerror(e));
    }
    bool wrote = fs->unsynced;
    fs->unsynced = false;
    struct stat st;
    if (fstat(fs->fd, &st) == 0)
        fs->synced = st.st_size;
    if (wrote && conf(sk)->fsync)
        drop_behind(fs);
    if (fs->ck && (fs->moved || wrote)) {
        /* Only now is it acknowledged: a crash before this leaves the data
         * beyond the previous checkpoint, and the next open cuts it off. */
        char msg[512];
        if (file_ckpt_write(fs->ck, fs->synced, &fs->given, conf(sk)->fsync, msg, sizeof msg) != 0)
            return sink_set_error(sk, SINK_ERR_RETRYABLE, "%s", msg);
        fs->moved = false;
    }
    fs->durable_seq = fs->given_seq;
    *durable_seq = fs->given_seq;
    return 0;
}

/* Whether the file system has room again after the sink kept failing (a
 * full disk): at least READY_FREE_BYTES for an unprivileged writer.  A file
 * system that cannot tell is taken at its word. */
static bool file_ready(struct sink *sk)
{
    struct file_sink *fs = sk->priv;
    struct statvfs sv;
    if (!fs || fstatvfs(fs->fd, &sv) != 0)
        return true;
    return (uint64_t)sv.f_bavail * sv.f_frsize >= READY_FREE_BYTES;
}

static void file_close(struct sink *sk)
{
    struct file_sink *fs = sk->priv;
    if (!fs)
        return;
    file_free(fs);
    sk->priv = NULL;
}

static const struct sink_ops file_ops = {
    .open = file_open,
    .write = file_write,
    .flush = file_flush,
    .close = file_close,
    .ready = file_ready,
};

/* ---------- configuration ---------- */

#define T struct file_sink_cfg
static const struct cfg_key file_keys[] = {
    K_STR(T, path, NULL, .flags = CFG_REQUIRED),
    K_BOOL(T, fsync, 1),
};
#undef T
static const struct cfg_schema file_schema = {KEYS(file_keys)};

static void file_describe(const struct sink_cfg *sc, struct buf *out)
{
    const struct file_sink_cfg *fc = sc->conf;
    buf_printf(out, " %s", fc->path);
}

const struct sink_type sink_file_type = {
    .name = "file",
    .description = "JSON lines appended to a file, fsync'd before they count",
    .ops = &file_ops,
    .schema = &file_schema,
    .conf_size = sizeof(struct file_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 10000,
    .flush_interval_seconds = 0.2,
    .ordering = ORDER_TRANSACTION,
    .flush = SINK_FLUSH_ON_CATCH_UP,
    .single_writer = true,
    .describe = file_describe,
};
