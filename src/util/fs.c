#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fs.h"
#include "util/mem.h"

int fs_make_dirs(const char *what, const char *dir, char *err, size_t errlen)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = cdc_fail(err, errlen, CDC_EIO, "%s: cannot create directory %s: %s", what, p,
                          strerror(errno));
            break;
        }
        if (stat(p, &sb) != 0) {
            rc = cdc_fail(err, errlen, CDC_EIO, "%s: cannot use directory %s: %s", what, p,
                          strerror(errno));
            break;
        }
        if (!S_ISDIR(sb.st_mode)) {
            rc = cdc_fail(err, errlen, CDC_EIO,
                          "%s: cannot create directory %s: a file is in the way", what, p);
            break;
        }
        if (end)
            break;
        *s = '/';
    }
    free(p);
    return rc;
}

int fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fs_sync_dir_of(const char *path)
{
    char *copy = xstrdup(path);
    int rc = fs_sync_dir(dirname(copy));
    int saved = errno;
    free(copy);
    errno = saved;
    return rc;
}
