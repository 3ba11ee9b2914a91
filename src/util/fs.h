/* Small file-system helpers shared by the modules that keep files of their
 * own (the state store, the pipeline lock). */
#ifndef CDC_UTIL_FS_H
#define CDC_UTIL_FS_H

#include <stddef.h>

/* Creates every missing directory of dir (mode 0700; existing ones are left
 * as they are).  Errors name `what` (the file the directory is for). */
int fs_make_dirs(const char *what, const char *dir, char *err, size_t errlen);

#endif
