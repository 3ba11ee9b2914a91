/* The file-system store (file:// URIs); opened through lake_store_open. */
#ifndef CDC_LAKE_LAKE_STORE_FILE_H
#define CDC_LAKE_LAKE_STORE_FILE_H

/* mkdir -p that fsyncs the parent of each directory it creates: 0 or -1
 * (errno set). */
int lake_mkdirs(const char *dir);

#endif
