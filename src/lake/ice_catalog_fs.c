/* The filesystem catalog (Iceberg "File System Tables"): version N of a
 * table is <location>/metadata/vN.metadata.json, created with no-replace so
 * two writers cannot both make version N; metadata/version-hint.text holds
 * the latest N as a hint (rewritten after each commit, and read with a probe
 * for newer versions because a crash may leave it behind). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_catalog.h"
#include "lake/ice_catalog_fs.h"
#include "util/err.h"
#include "util/mem.h"

char *ice_catalog_table_location(const struct ice_catalog *cat, const char *ns, const char *table)
{
    return xasprintf("%s/%s/%s", cat->warehouse, ns, table);
}

void ice_catalog_free(struct ice_catalog *cat)
{
    if (cat)
        cat->ops->free(cat);
}

static char *version_uri(const char *location, long v)
{
    return xasprintf("%s/metadata/v%ld.metadata.json", location, v);
}

/* Reads and parses one metadata file. */
static int read_meta(struct lake_store *st, const char *uri, struct ice_meta **out, char *err,
                     size_t errlen)
{
    struct buf b = BUF_INIT;
    int rc = lake_store_get(st, uri, &b, err, errlen);
    if (rc == 0) {
        char perr[256];
        if (ice_meta_parse(b.p ? b.p : "", b.len, out, perr, sizeof perr) < 0)
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: %s", uri, perr);
    }
    buf_fini(&b);
    return rc;
}

static int fs_load(struct ice_catalog *cat, const char *ns, const char *table, char **location,
                   struct ice_meta **meta, char *err, size_t errlen)
{
    *location = NULL;
    *meta = NULL;
    char *loc = ice_catalog_table_location(cat, ns, table);
    char *hint_uri = xasprintf("%s/metadata/version-hint.text", loc);
    struct buf hint = BUF_INIT;
    long v = 1;
    int rc = lake_store_get(cat->store, hint_uri, &hint, err, errlen);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        char *end;
        v = strtol(hint.p ? hint.p : "", &end, 10);
        if (v < 1)
            v = 1;
    }
    /* The hint may lag behind a version committed just before a crash. */
    struct ice_meta *m = NULL;
    char *uri = version_uri(loc, v);
    rc = read_meta(cat->store, uri, &m, err, errlen);
    if (rc == LAKE_STORE_ABSENT) {
        free(uri);
        goto out; /* no table */
    }
    while (rc == 0) {
        char *next = version_uri(loc, v + 1);
        struct ice_meta *n = NULL;
        int r2 = read_meta(cat->store, next, &n, err, errlen);
        if (r2 != 0) {
            free(next);
            if (r2 < 0) {
                rc = r2;
                ice_meta_free(m);
                m = NULL;
            }
            break;
        }
        ice_meta_free(m);
        free(uri);
        m = n;
        uri = next;
        v++;
    }
    if (rc == 0) {
        *location = uri;
        *meta = m;
    } else {
        free(uri);
    }
out:
    buf_fini(&hint);
    free(hint_uri);
    free(loc);
    return rc;
}

/* vN of ".../metadata/vN.metadata.json", or 0. */
static long version_of(const char *uri)
{
    const char *s = uri ? strrchr(uri, '/') : NULL;
    long v = 0;
    if (s && sscanf(s, "/v%ld.metadata.json", &v) == 1)
        return v;
    return 0;
}

static int put_version(struct ice_catalog *cat, const struct ice_meta *meta, long v,
                       char **location, char *err, size_t errlen)
{
    struct buf json = BUF_INIT;
    ice_meta_json(&json, meta);
    char *uri = version_uri(meta->location, v);
    int rc = lake_store_put(cat->store, uri, json.p, json.len, LAKE_PUT_NOREPLACE, err, errlen);
    buf_fini(&json);
    if (rc == LAKE_STORE_EXISTS) {
        free(uri);
        return cdc_fail(err, errlen, CDC_EAGAIN,
                        "version %ld of %s was committed by another writer", v, meta->location);
    }
    if (rc < 0) {
        free(uri);
        return rc;
    }
    /* The hint is advisory: readers probe past it. */
    char *hint_uri = xasprintf("%s/metadata/version-hint.text", meta->location);
    char num[24];
    int n = snprintf(num, sizeof num, "%ld", v);
    char herr[256];
    lake_store_put(cat->store, hint_uri, num, (size_t)n, 0, herr, sizeof herr);
    free(hint_uri);
    *location = uri;
    return 0;
}

static int fs_create(struct ice_catalog *cat, const char *ns, const char *table,
                     const struct ice_meta *meta, char **location, struct ice_meta **out, char *err,
                     size_t errlen)
{
    int rc = put_version(cat, meta, 1, location, err, errlen);
    if (rc == 0)
        *out = ice_meta_copy(meta);
    return rc;
}

static int fs_commit(struct ice_catalog *cat, const struct ice_commit_req *req, char **location,
                     struct ice_meta **stored, char *err, size_t errlen)
{
    *stored = NULL;
    long v = version_of(req->base_location);
    if (v < 1)
        return cdc_fail(err, errlen, CDC_EINVAL, "%s is not a vN.metadata.json file",
                        req->base_location ? req->base_location : "(none)");
    return put_version(cat, req->meta, v + 1, location, err, errlen);
}

static void fs_free(struct ice_catalog *cat)
{
    free(cat->name);
    free(cat->warehouse);
    free(cat);
}

static const struct ice_catalog_ops fs_ops = {"filesystem", fs_load, fs_create, fs_commit, fs_free};

int ice_catalog_fs_open(struct lake_store *store, const char *warehouse, struct ice_catalog **out,
                        char *err, size_t errlen)
{
    struct ice_catalog *cat = xcalloc(1, sizeof *cat);
    cat->ops = &fs_ops;
    cat->store = store;
    cat->name = xstrdup("filesystem");
    cat->warehouse = xstrdup(warehouse);
    size_t n = strlen(cat->warehouse);
    while (n && cat->warehouse[n - 1] == '/')
        cat->warehouse[--n] = '\0';
    *out = cat;
    return 0;
}
