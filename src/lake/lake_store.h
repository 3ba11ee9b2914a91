/* Object storage for lake files behind one small ops table: the local file
 * system (`file:///abs/path`) and S3-compatible servers (`s3://bucket/key`,
 * SigV4 over libcurl).  Every path is a full URI, as Iceberg metadata stores
 * them.
 *
 * Durability: put and upload_commit return only once the object is durable
 * (file: written to a temporary name, fsynced, renamed, directory fsynced;
 * S3: the server acknowledged the PUT or the multipart completion).  A
 * put with LAKE_PUT_NOREPLACE fails with LAKE_STORE_EXISTS instead of
 * overwriting, which the filesystem catalog's commit relies on. */
#ifndef CDC_LAKE_LAKE_STORE_H
#define CDC_LAKE_LAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Positive results that are not errors. */
#define LAKE_STORE_ABSENT 1 /* get/head: no such object */
#define LAKE_STORE_EXISTS 2 /* put with LAKE_PUT_NOREPLACE: the object exists */

#define LAKE_PUT_NOREPLACE 1

struct lake_store;
struct lake_upload;

/* Called for each object under a prefix; return non-zero to stop. */
typedef int (*lake_list_fn)(void *arg, const char *uri, int64_t size, int64_t mtime_ms);

struct lake_store_ops {
    const char *scheme;
    int (*put)(struct lake_store *st, const char *uri, const void *data, size_t n, int flags,
               char *err, size_t errlen);
    int (*get)(struct lake_store *st, const char *uri, struct buf *out, char *err, size_t errlen);
    /* Size of an object: 0, LAKE_STORE_ABSENT or an error. */
    int (*head)(struct lake_store *st, const char *uri, int64_t *size, char *err, size_t errlen);
    int (*del)(struct lake_store *st, const char *uri, char *err, size_t errlen);
    int (*list)(struct lake_store *st, const char *prefix, lake_list_fn fn, void *arg, char *err,
                size_t errlen);
    int (*upload_open)(struct lake_store *st, const char *uri, struct lake_upload **out, char *err,
                       size_t errlen);
    void (*free)(struct lake_store *st);
};

struct lake_store {
    const struct lake_store_ops *ops;
};

/* A streaming upload (large Parquet files): write in pieces, then commit
 * (durable, visible) or abort (nothing left behind). */
struct lake_upload_ops {
    int (*write)(struct lake_upload *up, const void *data, size_t n, char *err, size_t errlen);
    int (*commit)(struct lake_upload *up, char *err, size_t errlen);
    void (*abort)(struct lake_upload *up);
};

struct lake_upload {
    const struct lake_upload_ops *ops;
    int64_t bytes;
};

/* S3 settings (strings borrowed for the call; the store copies them). */
struct lake_s3_cfg {
    const char *endpoint; /* "http://127.0.0.1:9000"; NULL: https://s3.<region>.amazonaws.com */
    const char *region;   /* "us-east-1" */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* may be NULL */
    size_t part_bytes;         /* multipart part size; 0: 8 MiB */
};

/* Opens the store for a warehouse URI (file:// or s3://; s3 may be NULL for
 * file).  0, or CDC_EINVAL / CDC_ENOTSUP naming the URI. */
int lake_store_open(const char *warehouse, const struct lake_s3_cfg *s3, struct lake_store **out,
                    char *err, size_t errlen);
void lake_store_free(struct lake_store *st);

static inline int lake_store_put(struct lake_store *st, const char *uri, const void *data, size_t n,
                                 int flags, char *err, size_t errlen)
{
    return st->ops->put(st, uri, data, n, flags, err, errlen);
}
static inline int lake_store_get(struct lake_store *st, const char *uri, struct buf *out, char *err,
                                 size_t errlen)
{
    return st->ops->get(st, uri, out, err, errlen);
}
static inline int lake_store_head(struct lake_store *st, const char *uri, int64_t *size, char *err,
                                  size_t errlen)
{
    return st->ops->head(st, uri, size, err, errlen);
}
static inline int lake_store_del(struct lake_store *st, const char *uri, char *err, size_t errlen)
{
    return st->ops->del(st, uri, err, errlen);
}
static inline int lake_store_list(struct lake_store *st, const char *prefix, lake_list_fn fn,
                                  void *arg, char *err, size_t errlen)
{
    return st->ops->list(st, prefix, fn, arg, err, errlen);
}
static inline int lake_upload_open(struct lake_store *st, const char *uri, struct lake_upload **out,
                                   char *err, size_t errlen)
{
    return st->ops->upload_open(st, uri, out, err, errlen);
}
static inline int lake_upload_write(struct lake_upload *up, const void *data, size_t n, char *err,
                                    size_t errlen)
{
    return up->ops->write(up, data, n, err, errlen);
}
/* Commits and frees the upload (also on failure). */
static inline int lake_upload_commit(struct lake_upload *up, char *err, size_t errlen)
{
    return up->ops->commit(up, err, errlen);
}
/* Aborts and frees the upload. */
static inline void lake_upload_abort(struct lake_upload *up)
{
    up->ops->abort(up);
}

/* The file-system and S3 implementations (lake_store_file.c, lake_store_s3.c). */
int lake_store_file_open(struct lake_store **out, char *err, size_t errlen);
int lake_store_s3_open(const struct lake_s3_cfg *cfg, struct lake_store **out, char *err,
                       size_t errlen);

#endif
