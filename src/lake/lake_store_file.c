/* The file-system store: file:///absolute/path URIs (see lake_store.h).
 * Objects are written to a temporary name beside the target, fsynced and
 * renamed (or linked, for "no replace"); the directory is fsynced after, so
 * a crash leaves either the whole object or none (plus, at worst, a
 * temporary `.tmp-*` file that orphan cleanup removes). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lake/lake_store.h"
#include "lake/lake_store_file.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/mem.h"

static const char *path_of(const char *uri)
{
    return strncmp(uri, "file://", 7) == 0 ? uri + 7 : NULL;
}

static char *dir_of(const char *path)
{
    char *d = xstrdup(path);
    char *slash = strrchr(d, '/');
    if (slash == d)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    return d;
}

/* mkdir -p, fsyncing the parent of every directory it creates. */
int lake_mkdirs(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -1;
    char *parent = dir_of(dir);
    int rc = strcmp(parent, dir) == 0 ? -1 : lake_mkdirs(parent);
    if (rc == 0 && mkdir(dir, 0755) < 0 && errno != EEXIST)
        rc = -1;
    if (rc == 0)
        rc = fs_sync_dir(parent);
    free(parent);
    return rc;
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates path's directory and a temporary file beside path. */
static int open_temp(const char *path, char **tmp, char *err, size_t errlen)
{
    char *dir = dir_of(path);
    int rc = lake_mkdirs(dir);
    free(dir);
    if (rc < 0)
        return cdc_fail(err, errlen, CDC_EIO, "cannot create the directory of %s: %s", path,
                        strerror(errno));
    *tmp = xasprintf("%s.tmp-XXXXXX", path);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        rc = cdc_fail(err, errlen, CDC_EIO, "cannot create %s: %s", *tmp, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return rc;
    }
    return fd;
}

/* fsyncs and closes fd, then moves tmp to path (or links, for no-replace). */
static int publish(int fd, char *tmp, const char *path, int flags, char *err, size_t errlen)
{
    int rc = 0;
    if (fsync(fd) < 0)
        rc = cdc_fail(err, errlen, CDC_EIO, "fsync %s: %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0)
        rc = cdc_fail(err, errlen, CDC_EIO, "close %s: %s", tmp, strerror(errno));
    if (rc == 0 && (flags & LAKE_PUT_NOREPLACE)) {
        if (link(tmp, path) < 0)
            rc = errno == EEXIST
                     ? LAKE_STORE_EXISTS
                     : cdc_fail(err, errlen, CDC_EIO, "link %s: %s", path, strerror(errno));
        unlink(tmp);
    } else if (rc == 0) {
        if (rename(tmp, path) < 0)
            rc = cdc_fail(err, errlen, CDC_EIO, "rename to %s: %s", path, strerror(errno));
    }
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    if (rc == 0) {
        char *dir = dir_of(path);
        if (fs_sync_dir(dir) < 0)
            rc = cdc_fail(err, errlen, CDC_EIO, "fsync directory %s: %s", dir, strerror(errno));
        free(dir);
    }
    return rc;
}

static int file_put(struct lake_store *st, const char *uri, const void *data, size_t n, int flags,
                    char *err, size_t errlen)
{
    const char *path = path_of(uri);
    if (!path)
        return cdc_fail(err, errlen, CDC_EINVAL, "not a file:// URI: %s", uri);
    char *tmp;
    int fd = open_temp(path, &tmp, err, errlen);
    if (fd < 0)
        return fd;
    if (write_all(fd, data, n) < 0) {
        int rc = cdc_fail(err, errlen, CDC_EIO, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    return publish(fd, tmp, path, flags, err, errlen);
}

static int file_get(struct lake_store *st, const char *uri, struct buf *out, char *err,
                    size_t errlen)
{
    const char *path = path_of(uri);
    if (!path)
        return cdc_fail(err, errlen, CDC_EINVAL, "not a file:// URI: %s", uri);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? LAKE_STORE_ABSENT
                   : cdc_fail(err, errlen, CDC_EIO, "open %s: %s", path, strerror(errno));
    for (;;) {
        buf_reserve(out, 65536);
        ssize_t r = read(fd, out->p + out->len, 65536);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = cdc_fail(err, errlen, CDC_EIO, "read %s: %s", path, strerror(errno));
            close(fd);
            return rc;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
        out->p[out->len] = '\0';
    }
    close(fd);
    return 0;
}

static int file_head(struct lake_store *st, const char *uri, int64_t *size, char *err,
                     size_t errlen)
{
    const char *path = path_of(uri);
    struct stat sb;
    if (!path)
        return cdc_fail(err, errlen, CDC_EINVAL, "not a file:// URI: %s", uri);
    if (stat(path, &sb) < 0)
        return errno == ENOENT
                   ? LAKE_STORE_ABSENT
                   : cdc_fail(err, errlen, CDC_EIO, "stat %s: %s", path, strerror(errno));
    *size = (int64_t)sb.st_size;
    return 0;
}

static int file_del(struct lake_store *st, const char *uri, char *err, size_t errlen)
{
    const char *path = path_of(uri);
    if (!path)
        return cdc_fail(err, errlen, CDC_EINVAL, "not a file:// URI: %s", uri);
    if (unlink(path) < 0 && errno != ENOENT)
        return cdc_fail(err, errlen, CDC_EIO, "delete %s: %s", path, strerror(errno));
    return 0;
}

static int walk(const char *dir, lake_list_fn fn, void *arg, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < 32) {
                rc = walk(p, fn, arg, depth + 1);
            } else if (S_ISREG(st.st_mode)) {
                char *uri = xasprintf("file://%s", p);
                rc = fn(arg, uri, (int64_t)st.st_size,
                        (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
                free(uri);
            }
        }
        free(p);
    }
    closedir(d);
    return rc;
}

static int file_list(struct lake_store *st, const char *prefix, lake_list_fn fn, void *arg,
                     char *err, size_t errlen)
{
    const char *path = path_of(prefix);
    if (!path)
        return cdc_fail(err, errlen, CDC_EINVAL, "not a file:// URI: %s", prefix);
    char *dir = xstrdup(path);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    int rc = walk(dir, fn, arg, 0);
    if (rc < 0)
        rc = cdc_fail(err, errlen, CDC_EIO, "list %s: %s", dir, strerror(errno));
    free(dir);
    return rc < 0 ? rc : 0;
}

struct file_upload {
    struct lake_upload up;
    int fd;
    char *tmp;  /* owned */
    char *path; /* owned */
};

static int up_write(struct lake_upload *u, const void *data, size_t n, char *err, size_t errlen)
{
    struct file_upload *fu = (struct file_upload *)u;
    if (write_all(fu->fd, data, n) < 0)
        return cdc_fail(err, errlen, CDC_EIO, "write %s: %s", fu->tmp, strerror(errno));
    u->bytes += (int64_t)n;
    return 0;
}

static int up_commit(struct lake_upload *u, char *err, size_t errlen)
{
    struct file_upload *fu = (struct file_upload *)u;
    int rc = publish(fu->fd, fu->tmp, fu->path, 0, err, errlen);
    free(fu->path);
    free(fu);
    return rc;
}

static void up_abort(struct lake_upload *u)
{
    struct file_upload *fu = (struct file_upload *)u;
    close(fu->fd);
    unlink(fu->tmp);
    free(fu->tmp);
    free(fu->path);
    free(fu);
}

static const struct lake_upload_ops file_upload_ops = {up_write, up_commit, up_abort};

static int file_upload_open(struct lake_store *st, const char *uri, struct lake_upload **out,
                            char *err, size_t errlen)
{
    const char *path = path_of(uri);
    if (!path)
        return cdc_fail(err, errlen, CDC_EINVAL, "not a file:// URI: %s", uri);
    char *tmp;
    int fd = open_temp(path, &tmp, err, errlen);
    if (fd < 0)
        return fd;
    struct file_upload *fu = xcalloc(1, sizeof *fu);
    fu->up.ops = &file_upload_ops;
    fu->fd = fd;
    fu->tmp = tmp;
    fu->path = xstrdup(path);
    *out = &fu->up;
    return 0;
}

static void file_free(struct lake_store *st)
{
    free(st);
}

static const struct lake_store_ops file_ops = {
    .scheme = "file",
    .put = file_put,
    .get = file_get,
    .head = file_head,
    .del = file_del,
    .list = file_list,
    .upload_open = file_upload_open,
    .free = file_free,
};

int lake_store_file_open(struct lake_store **out, char *err, size_t errlen)
{
    struct lake_store *st = xcalloc(1, sizeof *st);
    st->ops = &file_ops;
    *out = st;
    return 0;
}
