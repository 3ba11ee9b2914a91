#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source/pg/spill.h"
#include "util/err.h"
#include "util/mem.h"

/* Record header on disk (host byte order: the file never leaves this process). */
struct rec_head {
    uint32_t len;
    uint32_t subxid;
    uint64_t lsn;
};

struct stream_txn {
    uint32_t xid;
    FILE *f;
    char *path;
    uint64_t bytes;
    uint32_t *aborted; /* aborted subxids */
    size_t naborted, capaborted;
    struct stream_txn *next;
};

struct spill {
    char *dir;
    struct stream_txn *txns;
    struct stream_txn *replaying;
    uint8_t *rbuf;
    size_t rcap;
    uint64_t total_bytes;
};

static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

int spill_new(struct spill **out, const char *dir, char *err, size_t errlen)
{
    *out = NULL;
    if (mkdir_p(dir) != 0)
        return cdc_fail(err, errlen, CDC_EIO, "cannot create spill directory %s: %s", dir,
                        strerror(errno));
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n > 6 && strcmp(de->d_name + n - 6, ".spill") == 0) {
                char *path = xasprintf("%s/%s", dir, de->d_name);
                unlink(path);
                free(path);
            }
        }
        closedir(d);
    }
    struct spill *sp = xcalloc(1, sizeof *sp);
    sp->dir = xstrdup(dir);
    *out = sp;
    return 0;
}

static void txn_free(struct spill *sp, struct stream_txn *t)
{
    if (t->f)
        fclose(t->f);
    unlink(t->path);
    sp->total_bytes -= t->bytes;
    free(t->path);
    free(t->aborted);
    free(t);
}

static void txn_remove(struct spill *sp, uint32_t xid)
{
    for (struct stream_txn **pp = &sp->txns; *pp; pp = &(*pp)->next) {
        if ((*pp)->xid == xid) {
            struct stream_txn *t = *pp;
            *pp = t->next;
            if (sp->replaying == t)
                sp->replaying = NULL;
            txn_free(sp, t);
            return;
        }
    }
}

void spill_reset(struct spill *sp)
{
    while (sp->txns)
        txn_remove(sp, sp->txns->xid);
}

void spill_free(struct spill *sp)
{
    if (!sp)
        return;
    spill_reset(sp);
    free(sp->rbuf);
    free(sp->dir);
    free(sp);
}

static struct stream_txn *txn_find(struct spill *sp, uint32_t xid)
{
    for (struct stream_txn *t = sp->txns; t; t = t->next)
        if (t->xid == xid)
            return t;
    return NULL;
}

int spill_append(struct spill *sp, uint32_t xid, uint32_t subxid, uint64_t lsn, const uint8_t *msg,
                 size_t len, char *err, size_t errlen)
{
    struct stream_txn *t = txn_find(sp, xid);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        t->xid = xid;
        t->path = xasprintf("%s/%u.spill", sp->dir, xid);
        t->f = fopen(t->path, "w+b");
        if (!t->f) {
            int e = errno;
            free(t->path);
            free(t);
            return cdc_fail(err, errlen, CDC_EIO, "cannot create spill file in %s: %s", sp->dir,
                            strerror(e));
        }
        setvbuf(t->f, NULL, _IOFBF, 1 << 20);
        t->next = sp->txns;
        sp->txns = t;
    }
    struct rec_head h = {(uint32_t)len, subxid, lsn};
    if (fwrite(&h, sizeof h, 1, t->f) != 1 || (len && fwrite(msg, len, 1, t->f) != 1))
        return cdc_fail(err, errlen, CDC_EIO, "cannot write spill file %s: %s", t->path,
                        strerror(errno));
    t->bytes += sizeof h + len;
    sp->total_bytes += sizeof h + len;
    return 0;
}

void spill_abort(struct spill *sp, uint32_t xid, uint32_t subxid)
{
    if (subxid == xid) {
        txn_remove(sp, xid);
        return;
    }
    struct stream_txn *t = txn_find(sp, xid);
    if (!t)
        return;
    if (t->naborted == t->capaborted) {
        t->capaborted = t->capaborted ? 2 * t->capaborted : 8;
        t->aborted = xrealloc(t->aborted, t->capaborted * sizeof *t->aborted);
    }
    t->aborted[t->naborted++] = subxid;
}

int spill_begin_replay(struct spill *sp, uint32_t xid, char *err, size_t errlen)
{
    struct stream_txn *t = txn_find(sp, xid);
    sp->replaying = t;
    if (!t)
        return 0; /* nothing was spilled (an empty stream) */
    if (fflush(t->f) != 0 || fseek(t->f, 0, SEEK_SET) != 0)
        return cdc_fail(err, errlen, CDC_EIO, "cannot read spill file %s: %s", t->path,
                        strerror(errno));
    return 0;
}

static int is_aborted(const struct stream_txn *t, uint32_t subxid)
{
    for (size_t i = 0; i < t->naborted; i++)
        if (t->aborted[i] == subxid)
            return 1;
    return 0;
}

int spill_next(struct spill *sp, uint64_t *lsn, const uint8_t **msg, size_t *len)
{
    struct stream_txn *t = sp->replaying;
    if (!t)
        return 0;
    for (;;) {
        struct rec_head h;
        size_t got = fread(&h, 1, sizeof h, t->f);
        if (got == 0 && feof(t->f))
            return 0;
        if (got != sizeof h)
            return CDC_EIO;
        if (h.len > sp->rcap) {
            sp->rcap = h.len;
            sp->rbuf = xrealloc(sp->rbuf, sp->rcap);
        }
        if (h.len && fread(sp->rbuf, h.len, 1, t->f) != 1)
            return CDC_EIO;
        /* Relation and Type messages describe tables for the whole
         * transaction, even when sent within a subtransaction that later
         * rolled back: keep them. */
        if (is_aborted(t, h.subxid) && !(h.len && (sp->rbuf[0] == 'R' || sp->rbuf[0] == 'Y')))
            continue;
        *lsn = h.lsn;
        *msg = sp->rbuf;
        *len = h.len;
        return 1;
    }
}

void spill_finish(struct spill *sp, uint32_t xid)
{
    txn_remove(sp, xid);
    /* A large replay buffer is not worth keeping. */
    if (sp->rcap > (1u << 20)) {
        free(sp->rbuf);
        sp->rbuf = NULL;
        sp->rcap = 0;
    }
}

uint64_t spill_bytes(const struct spill *sp)
{
    return sp->total_bytes;
}
