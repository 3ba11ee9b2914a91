/* The iceberg sink type: its block's keys (the reference's names plus
 * catalog_token, compression and a few maintenance settings), their
 * checks, the summary `cdc validate` prints, how the engine drives it (a
 * table snapshot per batch or interval, never per trickle), and opening
 * the catalog and storage a block names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_keys.h"
#include "sink/iceberg/iceberg_sink.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/redact.h"

static const char *const write_mode_names[] = {"append", "upsert"};
static const char *const compression_names[] = {"zstd", "snappy", "uncompressed"};

/* A partition_by entry: a column, a transform of one ("day(ts)"), or
 * bucket(N, column); columns are checked against the table when it is
 * created. */
static const char *check_partition(const char *v)
{
    const char *what = "a list of columns or transforms: \"region\", \"day(created_at)\" "
                       "(year, month, day, hour) or \"bucket(16, id)\"";
    const char *p = v, *open = strchr(v, '(');
    while (*p == ' ')
        p++;
    if (!open) {
        if (!*p || strpbrk(p, ",)"))
            return what;
        return NULL;
    }
    size_t n = (size_t)(open - p);
    while (n && p[n - 1] == ' ')
        n--;
    static const char *const transforms[] = {"year", "month", "day", "hour", "bucket"};
    bool known = false, bucket = false;
    for (size_t i = 0; i < ARRAY_LEN(transforms); i++)
        if (strlen(transforms[i]) == n && strncmp(p, transforms[i], n) == 0) {
            known = true;
            bucket = i == 4;
        }
    const char *close = strchr(open, ')');
    if (!known || !close || close[1 + strspn(close + 1, " ")] != '\0' || close == open + 1)
        return what;
    const char *comma = strchr(open, ',');
    if (bucket != (comma != NULL && comma < close))
        return what;
    if (bucket) {
        char *end;
        long b = strtol(open + 1, &end, 10);
        if (b < 1 || b > 1000000 || end == open + 1)
            return what;
    }
    return NULL;
}

/* {schema} and {table} only, and some text. */
static const char *check_table_name(const char *v)
{
    const char *what = "a table name template using {schema} and {table}";
    if (!*v || strchr(v, '/'))
        return what;
    for (const char *p = strchr(v, '{'); p; p = strchr(p + 1, '{'))
        if (strncmp(p, "{schema}", 8) != 0 && strncmp(p, "{table}", 7) != 0)
            return what;
    return NULL;
}

static const char *check_namespace(const char *v)
{
    return *v && !strchr(v, '/') ? NULL : "a namespace (\"analytics\", \"db.sales\")";
}

static const char *check_warehouse(const char *v)
{
    if ((strncmp(v, "file:///", 8) == 0 && v[8]) || (strncmp(v, "s3://", 5) == 0 && v[5]))
        return NULL;
    return "a warehouse URI: file:///absolute/path or s3://bucket/prefix";
}

/* What kind of catalog catalog_uri names. */
enum catalog_kind { CAT_FS, CAT_SQL, CAT_REST, CAT_BAD };

static enum catalog_kind catalog_kind(const char *uri, const char **rest)
{
    *rest = uri;
    if (!uri || !*uri)
        return CAT_FS;
    if (strncmp(uri, "sqlite:///", 10) == 0 && uri[10])
        return CAT_SQL;
    if (strncmp(uri, "rest+", 5) == 0)
        *rest = uri + 5;
    if (strncmp(*rest, "http://", 7) == 0 || strncmp(*rest, "https://", 8) == 0)
        return CAT_REST;
    return CAT_BAD;
}

static const char *check_catalog_uri(const char *v)
{
    const char *rest;
    return catalog_kind(v, &rest) != CAT_BAD
               ? NULL
               : "sqlite:///relative.db or sqlite:////absolute.db (a SQL catalog), "
                 "rest+http(s)://host:port or http(s)://host:port (a REST catalog), or no "
                 "catalog_uri (a filesystem catalog in the warehouse)";
}

/* Keys that only mean something together. */
static void iceberg_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                          uint64_t ok)
{
    struct iceberg_sink_cfg *ic = obj;
    if (ic->warehouse && strncmp(ic->warehouse, "s3://", 5) == 0 &&
        (!ic->s3_access_key_id || !ic->s3_secret_access_key))
        cfg_error_key(ctx, cfg_key_line(map, "warehouse", line), "warehouse",
                      "an s3:// warehouse needs s3_access_key_id and s3_secret_access_key");
    if (ic->warehouse && strncmp(ic->warehouse, "file://", 7) == 0 && ic->s3_endpoint)
        cfg_error_key(ctx, cfg_key_line(map, "s3_endpoint", line), "s3_endpoint",
                      "only an s3:// warehouse uses s3_endpoint");
    if (ic->catalog_token && ic->catalog_uri) {
        const char *rest;
        if (catalog_kind(ic->catalog_uri, &rest) != CAT_REST)
            cfg_error_key(ctx, cfg_key_line(map, "catalog_token", line), "catalog_token",
                          "only a REST catalog (catalog_uri http(s)://…) takes a token");
    }
}

#define M struct iceberg_maint_cfg
static const struct cfg_key maint_keys[] = {
    K_BOOL(M, enabled, 0),
    K_FLT(M, expire_snapshots_interval_seconds, 3600.0, 0, .flags = CFG_GT),
    K_FLT(M, expire_snapshots_older_than_seconds, 86400.0, 0),
    K_INT(M, min_snapshots_to_keep, 1, 1, 1000000),
    K_FLT(M, compaction_interval_seconds, 7200.0, 0, .flags = CFG_GT),
    K_INT(M, compaction_file_threshold, 10, 1, 1000000),
    K_I64(M, compaction_max_rows_per_batch, 500000, 1, INT64_MAX),
    K_INT(M, target_file_size_mb, 128, 1, 1 << 20),
    K_FLT(M, orphan_file_grace_seconds, 600.0, 0),
};
#undef M
static const struct cfg_schema maint_schema = {KEYS(maint_keys)};

#define T struct iceberg_sink_cfg
static const struct cfg_key iceberg_sink_keys[] = {
    K_STR(T, catalog_name, "default", .check = cfg_check_id),
    K_STR(T, catalog_uri, NULL, .flags = CFG_NULLABLE | CFG_NOECHO, .check = check_catalog_uri),
    K_STR(T, catalog_token, NULL, .flags = CFG_NULLABLE | CFG_SECRET),
    K_STR(T, warehouse, NULL, .flags = CFG_REQUIRED | CFG_NOECHO, .check = check_warehouse),
    K_STR(T, table_namespace, "default", .check = check_namespace),
    K_STR(T, table_name, "{table}", .check = check_table_name),
    K_ENUM(T, write_mode, ICEBERG_APPEND, write_mode_names),
    K_BOOL(T, auto_create_table, 1),
    {.name = "partition_by",
     .type = CFG_STRLIST,
     .off = offsetof(T, partition_by),
     .count_off = offsetof(T, npartition_by),
     .check = check_partition,
     .item_desc = "columns or transforms (\"day(ts)\", \"bucket(16, id)\")"},
    K_STR(T, s3_endpoint, NULL, .flags = CFG_NULLABLE, .check = cfg_check_url),
    K_STR(T, s3_access_key_id, NULL, .flags = CFG_NULLABLE | CFG_NOECHO),
    K_STR(T, s3_secret_access_key, NULL, .flags = CFG_NULLABLE | CFG_SECRET),
    K_STR(T, s3_region, "us-east-1"),
    K_INT(T, write_executor_threads, 0, 0, 64),
    K_ENUM(T, compression, ICEBERG_ZSTD, compression_names),
    K_OBJ(T, maintenance, maint_schema),
};
#undef T
static const struct cfg_schema iceberg_sink_schema = {KEYS(iceberg_sink_keys),
                                                      .check = iceberg_check};

/* "upsert default.{table} -> sqlite:///…, warehouse s3://…": no secrets,
 * URIs without credentials. */
static void iceberg_describe(const struct sink_cfg *sc, struct buf *out)
{
    const struct iceberg_sink_cfg *ic = sc->conf;
    char a[REDACT_URL_MAX], b[REDACT_URL_MAX];
    const char *rest;
    enum catalog_kind k = catalog_kind(ic->catalog_uri, &rest);
    buf_printf(out, " %s %s.%s -> %s catalog %s, warehouse %s", write_mode_names[ic->write_mode],
               ic->table_namespace, ic->table_name,
               k == CAT_SQL    ? "SQL"
               : k == CAT_REST ? "REST"
                               : "filesystem",
               ic->catalog_name, redact_url(ic->warehouse, b, sizeof b));
    if (k != CAT_FS)
        buf_printf(out, " (%s)", redact_url(ic->catalog_uri, a, sizeof a));
    if (ic->npartition_by) {
        buf_puts(out, ", partitioned by ");
        for (size_t i = 0; i < ic->npartition_by; i++)
            buf_printf(out, "%s%s", i ? ", " : "", ic->partition_by[i]);
    }
    buf_printf(out, ", maintenance %s", ic->maintenance.enabled ? "on" : "off");
}

const struct sink_type sink_iceberg_type = {
    .name = "iceberg",
    .description = "Apache Iceberg tables (Parquet data, v2 metadata), appended or upserted",
    .ops = &sink_iceberg_ops,
    .schema = &iceberg_sink_schema,
    .conf_size = sizeof(struct iceberg_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 10000,
    .flush_interval_seconds = 60,
    .ordering = ORDER_TRANSACTION,
    .flush = SINK_FLUSH_INTERVAL_ONLY, /* a table snapshot per flush */
    /* `cdc dlq replay` waits for the pipeline to stop: its commits would
     * carry the position the table had when it loaded, older than what a
     * running sink commits meanwhile. */
    .single_writer = true,
    .describe = iceberg_describe,
};

const struct iceberg_sink_cfg *iceberg_sink_conf(const struct sink_cfg *sc)
{
    return sc->type == &sink_iceberg_type ? sc->conf : NULL;
}

enum parquet_codec iceberg_codec(const struct iceberg_sink_cfg *ic)
{
    return ic->compression == ICEBERG_SNAPPY         ? PARQUET_SNAPPY
           : ic->compression == ICEBERG_UNCOMPRESSED ? PARQUET_UNCOMPRESSED
                                                     : PARQUET_ZSTD;
}

int iceberg_open_catalog(const struct iceberg_sink_cfg *ic, struct lake_store **st,
                         struct ice_catalog **cat, char *err, size_t errlen)
{
    *st = NULL;
    *cat = NULL;
    struct lake_s3_cfg s3 = {
        .endpoint = ic->s3_endpoint,
        .region = ic->s3_region,
        .access_key_id = ic->s3_access_key_id,
        .secret_access_key = ic->s3_secret_access_key,
    };
    bool is_s3 = strncmp(ic->warehouse, "s3://", 5) == 0;
    int rc = lake_store_open(ic->warehouse, is_s3 ? &s3 : NULL, st, err, errlen);
    if (rc)
        return rc;
    const char *rest;
    switch (catalog_kind(ic->catalog_uri, &rest)) {
    case CAT_FS:
        rc = ice_catalog_fs_open(*st, ic->warehouse, cat, err, errlen);
        break;
    case CAT_SQL:
        rc = ice_catalog_sql_open(*st, ic->catalog_name, ic->catalog_uri, ic->warehouse, cat, err,
                                  errlen);
        break;
    case CAT_REST:
        rc = ice_catalog_rest_open(*st, ic->catalog_name, rest, ic->warehouse, ic->catalog_token,
                                   cat, err, errlen);
        break;
    case CAT_BAD:
        rc = cdc_fail(err, errlen, CDC_EINVAL, "catalog_uri: not a catalog cdc knows");
        break;
    }
    if (rc) {
        lake_store_free(*st);
        *st = NULL;
    }
    return rc;
}

char *iceberg_table_for(const struct iceberg_sink_cfg *ic, const char *schema, const char *table)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "");
    for (const char *p = ic->table_name; *p;) {
        if (strncmp(p, "{schema}", 8) == 0) {
            buf_puts(&b, schema);
            p += 8;
        } else if (strncmp(p, "{table}", 7) == 0) {
            buf_puts(&b, table);
            p += 7;
        } else {
            buf_putc(&b, *p++);
        }
    }
    return b.p;
}

char **iceberg_configured_tables(const struct iceberg_sink_cfg *ic, const struct config *cfg,
                                 size_t *n)
{
    char **out = xcalloc(cfg->source.ntables + 1, sizeof *out);
    *n = 0;
    for (size_t i = 0; i < cfg->source.ntables; i++) {
        char *schema, *table;
        if (config_split_table(cfg->source.tables[i], &schema, &table) != 0)
            continue;
        char *name = iceberg_table_for(ic, schema, table);
        free(schema);
        free(table);
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = strcmp(out[k], name) == 0;
        if (dup)
            free(name);
        else
            out[(*n)++] = name;
    }
    return out;
}

void iceberg_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
