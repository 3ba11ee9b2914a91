/* Iceberg catalogs behind one small ops table: where a table's current
 * metadata file is, and the atomic swap that makes a new version current.
 *
 * Optimistic commits: the table layer writes data, manifests and the manifest
 * list, then asks the catalog to commit a new metadata version built on the
 * one it loaded.  The filesystem and SQL catalogs write the metadata file
 * themselves (never overwriting one) and then swap the pointer (no-replace
 * rename of vN.metadata.json; an UPDATE … WHERE metadata_location = base);
 * the REST catalog sends the changes with requirements and lets the server
 * write it.  CDC_EAGAIN means another writer committed first: reload and
 * redo.  Files written for a commit that never swapped the pointer are
 * orphans: ice_table_clean_orphans removes them.
 *
 * Implementations: ice_catalog_fs.c (`version-hint.text`), ice_catalog_sql.c
 * (PyIceberg SqlCatalog tables in SQLite), ice_catalog_rest.c. */
#ifndef CDC_LAKE_ICE_CATALOG_H
#define CDC_LAKE_ICE_CATALOG_H

#include <stddef.h>

#include "lake/ice_meta.h"
#include "lake/lake_store.h"

struct ice_catalog;

/* What a commit changes, for catalogs that apply changes (REST); the others
 * use base_location and meta. */
struct ice_commit_req {
    const char *ns, *table;
    const char *base_location;     /* the metadata file the change builds on */
    const struct ice_meta *base;   /* its content */
    const struct ice_meta *meta;   /* the new version, complete */
    const char *requirements_json; /* REST: [{"type":"assert-ref-snapshot-id",…}] */
    const char *updates_json;      /* REST: [{"action":"add-snapshot",…}] */
};

struct ice_catalog_ops {
    const char *name;
    /* The current metadata: 0 with *location and *meta (heap), or
     * LAKE_STORE_ABSENT when the table does not exist. */
    int (*load)(struct ice_catalog *cat, const char *ns, const char *table, char **location,
                struct ice_meta **meta, char *err, size_t errlen);
    /* Registers a new table whose first metadata is meta.  0 with the
     * metadata as stored (*location, *out), or CDC_EAGAIN if the table exists. */
    int (*create)(struct ice_catalog *cat, const char *ns, const char *table,
                  const struct ice_meta *meta, char **location, struct ice_meta **out, char *err,
                  size_t errlen);
    /* Makes req->meta current if the table is still at req->base_location.
     * 0 with *location (and, for catalogs that write metadata themselves,
     * *stored: the version as the catalog wrote it; else NULL), CDC_EAGAIN on
     * a conflict, or an error (CDC_ECONN when the outcome is unknown: reload
     * before retrying). */
    int (*commit)(struct ice_catalog *cat, const struct ice_commit_req *req, char **location,
                  struct ice_meta **stored, char *err, size_t errlen);
    void (*free)(struct ice_catalog *cat);
};

struct ice_catalog {
    const struct ice_catalog_ops *ops;
    struct lake_store *store; /* borrowed: where metadata files are written */
    char *name;               /* owned: catalog_name */
    char *warehouse;          /* owned: warehouse URI without trailing slash */
};

/* The default location of a table: <warehouse>/<ns>/<table>. */
char *ice_catalog_table_location(const struct ice_catalog *cat, const char *ns, const char *table);
void ice_catalog_free(struct ice_catalog *cat);

/* Filesystem catalog: tables under warehouse, metadata/vN.metadata.json and
 * metadata/version-hint.text (what icebird and Hadoop tables read). */
int ice_catalog_fs_open(struct lake_store *store, const char *warehouse, struct ice_catalog **out,
                        char *err, size_t errlen);
/* SQL catalog in SQLite: uri "sqlite:///relative.db" or "sqlite:////abs.db"
 * (SQLAlchemy's forms, as PyIceberg's SqlCatalog takes them). */
int ice_catalog_sql_open(struct lake_store *store, const char *catalog_name, const char *uri,
                         const char *warehouse, struct ice_catalog **out, char *err, size_t errlen);
/* REST catalog client: uri "http://host:port" (the /v1 API below it). */
int ice_catalog_rest_open(struct lake_store *store, const char *catalog_name, const char *uri,
                          const char *warehouse, const char *token, struct ice_catalog **out,
                          char *err, size_t errlen);

#endif
