/* Small file-system helpers shared by the modules that keep files of their
 * own (the state store, the pipeline lock, the file sink, the lake's file
 * store). */
#ifndef CDC_UTIL_FS_H
#define CDC_UTIL_FS_H

#include <stddef.h>

/* Creates every missing directory of dir (mode 0700; existing ones are left
 * as they are).  Errors name `what` (the file the directory is for). */
int fs_make_dirs(const char *what, const char *dir, char *err, size_t errlen);

/* fsync()s the directory dir, so that names created or renamed in it are
 * durable: 0, or -1 with errno set. */
int fs_sync_dir(const char *dir);
/* fs_sync_dir of the directory that holds path. */
int fs_sync_dir_of(const char *path);

#endif
