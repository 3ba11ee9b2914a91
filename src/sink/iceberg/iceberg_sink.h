/* The iceberg sink type: its own keys (sink_cfg.conf of an iceberg sink,
 * decoded by ice_config.c) and what `cdc lakehouse` shares with the sink:
 * opening the catalog and storage a sink's block names, and the names of
 * the tables it writes. */
#ifndef CDC_SINK_ICEBERG_ICEBERG_SINK_H
#define CDC_SINK_ICEBERG_ICEBERG_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lake/ice_catalog.h"
#include "lake/ice_maint.h"
#include "lake/lake_store.h"
#include "lake/parquet_writer.h"
#include "sink/sink.h"

enum iceberg_write_mode {
    ICEBERG_APPEND, /* one row per change, with _cdc_* columns */
    ICEBERG_UPSERT, /* the table mirrors the source table by primary key */
};

enum iceberg_compression { ICEBERG_ZSTD, ICEBERG_SNAPPY, ICEBERG_UNCOMPRESSED };

/* maintenance: background compaction and snapshot expiry. */
struct iceberg_maint_cfg {
    bool enabled;                               /* default false */
    double expire_snapshots_interval_seconds;   /* default 3600 */
    double expire_snapshots_older_than_seconds; /* default 86400 */
    int min_snapshots_to_keep;                  /* default 1 */
    double compaction_interval_seconds;         /* default 7200 */
    int compaction_file_threshold;              /* default 10 */
    int64_t compaction_max_rows_per_batch;      /* default 500000 */
    int target_file_size_mb;                    /* default 128: compaction and new files */
    double orphan_file_grace_seconds;           /* default 600: unreferenced files older are
                                                   removed when the sink opens */
};

struct iceberg_sink_cfg {
    char *catalog_name;                 /* default "default" */
    char *catalog_uri;                  /* or NULL: a filesystem catalog in the warehouse */
    char *catalog_token;                /* secret; or NULL: REST catalogs' bearer token */
    char *warehouse;                    /* required: file:///… or s3://bucket/prefix */
    char *table_namespace;              /* default "default" */
    char *table_name;                   /* default "{table}"; {schema} and {table} are replaced */
    enum iceberg_write_mode write_mode; /* default append */
    bool auto_create_table;             /* default true */
    char **partition_by;                /* "day(ts)", "bucket(16, id)", "region" */
    size_t npartition_by;
    char *s3_endpoint;                    /* or NULL: AWS */
    char *s3_access_key_id;               /* or NULL */
    char *s3_secret_access_key;           /* secret; or NULL */
    char *s3_region;                      /* default "us-east-1" */
    int write_executor_threads;           /* default 0; accepted (see docs/lakehouse.md) */
    enum iceberg_compression compression; /* default zstd */
    struct iceberg_maint_cfg maintenance;
};

extern const struct sink_type sink_iceberg_type;
extern const struct sink_ops sink_iceberg_ops; /* ice_sink.c */

/* sc's iceberg config, or NULL when sc is not an iceberg sink. */
const struct iceberg_sink_cfg *iceberg_sink_conf(const struct sink_cfg *sc);

/* Opens the storage and catalog the block names (the caller frees both:
 * catalog first).  0, or an error in err. */
int iceberg_open_catalog(const struct iceberg_sink_cfg *ic, struct lake_store **st,
                         struct ice_catalog **cat, char *err, size_t errlen);

/* The Iceberg table name for source table schema.table (table_name with
 * {schema} and {table} replaced; heap). */
char *iceberg_table_for(const struct iceberg_sink_cfg *ic, const char *schema, const char *table);

/* The distinct Iceberg table names the configured source tables map to
 * (heap array of heap strings). */
char **iceberg_configured_tables(const struct iceberg_sink_cfg *ic, const struct config *cfg,
                                 size_t *n);
void iceberg_free_names(char **names, size_t n);

/* What one maintenance pass does (iceberg_maintain). */
enum {
    ICEBERG_MAINT_COMPACT = 1 << 0, /* compaction, when the thresholds say so */
    ICEBERG_MAINT_EXPIRE = 1 << 1,  /* snapshots older than expire_snapshots_older_than_seconds */
    ICEBERG_MAINT_ORPHANS = 1 << 2, /* unreferenced files older than orphan_file_grace_seconds */
};

struct iceberg_maint_report {
    struct ice_compact_stats compact;
    struct ice_expire_stats expire;
    size_t orphans;
};

/* One maintenance pass over table `name` of the block ic (ice_maintain.c),
 * as the background maintenance runs it: a table that does not exist is
 * skipped; compaction that lost a race to another writer waits for the
 * next pass.  stop (may be NULL) is polled during compaction. */
int iceberg_maintain(struct ice_catalog *cat, const struct iceberg_sink_cfg *ic, const char *name,
                     unsigned what, struct iceberg_maint_report *rep, bool (*stop)(void *),
                     void *stop_arg, char *err, size_t errlen);

/* The writer's codec for the compression key. */
enum parquet_codec iceberg_codec(const struct iceberg_sink_cfg *ic);

#endif
