/* The file sink's checkpoint; see file_ckpt.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sink/file/file_ckpt.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/mem.h"

#define MAGIC    "CDCK"
#define VERSION  1
#define HEAD_LEN 28 /* magic, version, generation, data_len, nstreams */

struct file_ckpt {
    int fd;
    char *path;
    uint64_t gen;        /* of the newest valid slot (0: none) */
    unsigned char *slot; /* FILE_CKPT_SLOT bytes of scratch */
};

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
    return hash_finish(hash_bytes(HASH_SEED ^ 0x4344434bu, p, n));
}

char *file_ckpt_path(const char *data_path)
{
    return xasprintf("%s%s", data_path, FILE_CKPT_SUFFIX);
}

void file_ckpt_close(struct file_ckpt *ck)
{
    if (!ck)
        return;
    if (ck->fd >= 0)
        close(ck->fd);
    free(ck->path);
    free(ck->slot);
    free(ck);
}

/* Decodes slot i into *gen, *data_len, pos; false if it is not valid. */
static bool read_slot(struct file_ckpt *ck, unsigned i, uint64_t *gen, off_t *data_len,
                      struct cdc_posmap *pos)
{
    ssize_t n = pread(ck->fd, ck->slot, FILE_CKPT_SLOT, (off_t)i * FILE_CKPT_SLOT);
    if (n < HEAD_LEN + 8 || memcmp(ck->slot, MAGIC, 4) != 0 || get_le(ck->slot + 4, 4) != VERSION)
        return false;
    uint64_t nstreams = get_le(ck->slot + 24, 4);
    if (nstreams > FILE_CKPT_MAX_STREAMS)
        return false;
    size_t end = HEAD_LEN + (size_t)nstreams * 20;
    if ((size_t)n < end + 8 || get_le(ck->slot + end, 8) != checksum(ck->slot, end))
        return false;
    uint64_t len = get_le(ck->slot + 16, 8);
    if (len > INT64_MAX)
        return false;
    *gen = get_le(ck->slot + 8, 8);
    *data_len = (off_t)len;
    cdc_posmap_clear(pos);
    for (uint64_t k = 0; k < nstreams; k++) {
        const unsigned char *e = ck->slot + HEAD_LEN + k * 20;
        cdc_posmap_set(
            pos, (struct cdc_pos){get_le(e + 4, 8), get_le(e + 12, 8), (uint32_t)get_le(e, 4)});
    }
    return true;
}

int file_ckpt_read(struct file_ckpt *ck, off_t *data_len, struct cdc_posmap *pos, char *err,
                   size_t errlen)
{
    struct cdc_posmap other = {0};
    uint64_t g0 = 0, g1 = 0;
    off_t l0 = 0, l1 = 0;
    bool ok0 = read_slot(ck, 0, &g0, &l0, pos);
    bool ok1 = read_slot(ck, 1, &g1, &l1, &other);
    int rc = 0;
    if (ok1 && (!ok0 || g1 > g0)) {
        cdc_posmap_copy(pos, &other);
        *data_len = l1;
        ck->gen = g1;
    } else if (ok0) {
        *data_len = l0;
        ck->gen = g0;
    } else {
        cdc_posmap_clear(pos);
        rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: no valid checkpoint in it", ck->path);
    }
    cdc_posmap_fini(&other);
    return rc;
}

int file_ckpt_write(struct file_ckpt *ck, off_t data_len, const struct cdc_posmap *pos, bool sync,
                    char *err, size_t errlen)
{
    if (pos->n > FILE_CKPT_MAX_STREAMS)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "%s: %zu streams, more than a checkpoint holds (%u)", ck->path, pos->n,
                        FILE_CKPT_MAX_STREAMS);
    uint64_t gen = ck->gen + 1;
    unsigned char *s = ck->slot;
    memcpy(s, MAGIC, 4);
    put_le(s + 4, VERSION, 4);
    put_le(s + 8, gen, 8);
    put_le(s + 16, (uint64_t)data_len, 8);
    put_le(s + 24, pos->n, 4);
    for (size_t k = 0; k < pos->n; k++) {
        unsigned char *e = s + HEAD_LEN + k * 20;
        put_le(e, pos->v[k].stream, 4);
        put_le(e + 4, pos->v[k].lsn, 8);
        put_le(e + 12, pos->v[k].idx, 8);
    }
    size_t end = HEAD_LEN + pos->n * 20;
    put_le(s + end, checksum(s, end), 8);
    /* The slot the previous generation did not use: a torn write leaves
     * that one valid. */
    off_t at = (off_t)(gen & 1 ? 1 : 0) * FILE_CKPT_SLOT;
    size_t len = end + 8, off = 0;
    while (off < len) {
        ssize_t w = pwrite(ck->fd, s + off, len - off, at + (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return cdc_fail(err, errlen, CDC_EIO, "cannot write %s: %s", ck->path,
                            strerror(w < 0 ? errno : EIO));
        off += (size_t)w;
    }
    if (sync && fdatasync(ck->fd) != 0)
        return cdc_fail(err, errlen, CDC_EIO, "cannot fsync %s: %s", ck->path, strerror(errno));
    ck->gen = gen;
    return 0;
}

int file_ckpt_open(struct file_ckpt **out, const char *data_path, bool create, off_t data_len,
                   const struct cdc_posmap *pos, bool *found, char *err, size_t errlen)
{
    *out = NULL;
    struct file_ckpt *ck = xcalloc(1, sizeof *ck);
    ck->path = file_ckpt_path(data_path);
    ck->slot = xcalloc(1, FILE_CKPT_SLOT);
    ck->fd = open(ck->path, O_RDWR | O_CLOEXEC);
    *found = ck->fd >= 0;
    int rc = 0;
    if (!*found && errno != ENOENT) {
        rc = cdc_fail(err, errlen, CDC_EIO, "cannot open %s: %s", ck->path, strerror(errno));
    } else if (!*found && create) {
        /* Written whole under another name first: a checkpoint file that
         * exists always has a valid slot. */
        char *tmp = xasprintf("%s.tmp", ck->path);
        ck->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (ck->fd < 0)
            rc = cdc_fail(err, errlen, CDC_EIO, "cannot create %s: %s", tmp, strerror(errno));
        else if ((rc = file_ckpt_write(ck, data_len, pos, true, err, errlen)) == 0 &&
                 (rename(tmp, ck->path) != 0 || fs_sync_dir_of(ck->path) != 0))
            rc = cdc_fail(err, errlen, CDC_EIO, "cannot create %s: %s", ck->path, strerror(errno));
        if (rc)
            unlink(tmp);
        free(tmp);
    }
    if (rc || ck->fd < 0) {
        file_ckpt_close(ck);
        return rc;
    }
    *out = ck;
    return 0;
}
