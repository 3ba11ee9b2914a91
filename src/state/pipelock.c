/* The pipeline lock (contract in pipelock.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state/pipelock.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/mem.h"
#include "util/str.h"

#define BUSY_RETRIES 5   /* the holder may let go between F_SETLK and F_GETLK */
#define NAME_WAITS   100 /* 10 ms each: a new holder writes its name just after locking */

struct pipelock {
    int fd; /* holds the record lock while open */
    char *path;
};

char *pipelock_path(const char *state_dir, const char *pipeline_id, const char *name)
{
    size_t n = strlen(state_dir);
    while (n > 1 && state_dir[n - 1] == '/')
        n--;
    return xasprintf("%.*s/%s/%s", (int)n, state_dir, pipeline_id, name);
}

/* The whole file, for writing or asking about writers. */
static struct flock whole_file(short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;
    return fl;
}

/* Fills h from the kernel's answer and, when the file's text was written by
 * that same process, from the text. */
static void read_holder(int fd, long pid, struct pipelock_holder *h)
{
    memset(h, 0, sizeof *h);
    h->pid = pid;
    char text[160];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return;
    text[n] = '\0';
    long fpid = 0;
    long long since = 0;
    char cmd[sizeof h->command];
    if (sscanf(text, "pid=%ld since_us=%lld command=%31[^\n]", &fpid, &since, cmd) == 3 &&
        fpid == pid) {
        str_copy(h->command, sizeof h->command, cmd);
        h->since_us = since;
    }
}

/* Who holds fd's file: 1 (and *h), 0 if nobody, or -errno. */
static int query(int fd, struct pipelock_holder *h)
{
    struct flock fl = whole_file(F_WRLCK);
    if (fcntl(fd, F_GETLK, &fl) != 0)
        return -errno;
    if (fl.l_type == F_UNLCK)
        return 0;
    read_holder(fd, (long)fl.l_pid, h);
    return 1;
}

/* query, giving a holder that has only just taken the lock (its text does
 * not name it yet) a moment to write its name. */
static int query_named(int fd, struct pipelock_holder *h)
{
    int q = query(fd, h);
    for (int i = 0; q > 0 && !h->command[0] && i < NAME_WAITS; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        q = query(fd, h);
    }
    return q;
}

void pipelock_describe(const struct pipelock_holder *h, char *out, size_t outlen)
{
    if (!h->command[0]) {
        snprintf(out, outlen, "another process (pid %ld)", h->pid);
        return;
    }
    char since[40] = "";
    if (h->since_us > 0) {
        time_t t = (time_t)(h->since_us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(since, sizeof since, ", since %Y-%m-%d %H:%M:%S UTC", &tm);
    }
    snprintf(out, outlen, "`cdc %s` (pid %ld%s)", h->command, h->pid, since);
}

int pipelock_acquire(struct pipelock **out, const char *state_dir, const char *pipeline_id,
                     const char *name, const char *command, struct pipelock_holder *holder,
                     char *err, size_t errlen)
{
    *out = NULL;
    char *path = pipelock_path(state_dir, pipeline_id, name);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    int rc = fs_make_dirs(path, dir, err, errlen);
    free(dir);
    if (rc) {
        free(path);
        return rc;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cdc_fail(err, errlen, CDC_EIO, "%s: cannot open the pipeline lock: %s", path,
                      strerror(errno));
        free(path);
        return rc;
    }
    struct pipelock_holder h;
    for (int attempt = 0;; attempt++) {
        struct flock fl = whole_file(F_WRLCK);
        if (fcntl(fd, F_SETLK, &fl) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        int q = e == EACCES || e == EAGAIN ? query_named(fd, &h) : -e;
        if (q == 0 && attempt < BUSY_RETRIES)
            continue; /* the holder just let go */
        if (q > 0) {
            char who[160];
            pipelock_describe(&h, who, sizeof who);
            rc = cdc_fail(err, errlen, CDC_EBUSY, "pipeline %s is in use by %s (lock %s)",
                          pipeline_id, who, path);
            if (holder)
                *holder = h;
        } else {
            rc = cdc_fail(err, errlen, CDC_EIO, "%s: cannot lock the pipeline: %s", path,
                          strerror(q < 0 ? -q : e));
        }
        close(fd);
        free(path);
        return rc;
    }
    /* For people and for a refused process's message: who holds it. */
    char text[160];
    int n = snprintf(text, sizeof text, "pid=%ld since_us=%" PRId64 " command=%s\n", (long)getpid(),
                     clock_wall_us(), command);
    /* If this fails the lock holds all the same; only a refusal's wording
     * suffers. */
    bool written = ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) == n;
    (void)written;
    struct pipelock *lk = xcalloc(1, sizeof *lk);
    lk->fd = fd;
    lk->path = path;
    *out = lk;
    return 0;
}

void pipelock_release(struct pipelock *lk)
{
    if (!lk)
        return;
    /* Readers ignore text naming a pid that does not hold the lock, so a
     * failure here is harmless. */
    bool cleared = ftruncate(lk->fd, 0) == 0;
    (void)cleared;
    close(lk->fd); /* drops the lock */
    free(lk->path);
    free(lk);
}

int pipelock_probe(const char *state_dir, const char *pipeline_id, const char *name,
                   struct pipelock_holder *holder, char *err, size_t errlen)
{
    char *path = pipelock_path(state_dir, pipeline_id, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        int rc = e == ENOENT || e == ENOTDIR
                     ? 0
                     : cdc_fail(err, errlen, CDC_EIO, "%s: cannot read the pipeline lock: %s", path,
                                strerror(e));
        free(path);
        return rc;
    }
    struct pipelock_holder h;
    int q = query_named(fd, &h);
    close(fd);
    if (q < 0) {
        q = cdc_fail(err, errlen, CDC_EIO, "%s: cannot query the pipeline lock: %s", path,
                     strerror(-q));
    } else if (q > 0 && holder) {
        *holder = h;
    }
    free(path);
    return q;
}
