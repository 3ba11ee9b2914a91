/* Sink types of the reference that cdc does not implement yet.  Their
 * blocks are checked like any other, so a reference pipeline validates up
 * to the plain "not implemented" that `cdc validate` and `cdc run` give for
 * an enabled sink of such a type.  A type moves to its own folder when it
 * is implemented. */
#include <stdint.h>

#include "config/cfg_keys.h"
#include "sink/planned.h"

/* ---------- iceberg ---------- */

static const char *const write_mode_names[] = {"append", "upsert"};

#define T struct iceberg_sink_cfg
static const struct cfg_key iceberg_sink_keys[] = {
    K_STR(T, catalog_uri, NULL, .flags = CFG_REQUIRED | CFG_NOECHO),
    K_STR(T, warehouse, NULL, .flags = CFG_REQUIRED),
    K_STR(T, table_name, NULL, .flags = CFG_REQUIRED),
    K_STR(T, write_mode, "append", CHOICES(write_mode_names)),
    K_BOOL(T, auto_create_table, 1),
};
#undef T
static const struct cfg_schema iceberg_sink_schema = {KEYS(iceberg_sink_keys)};

const struct sink_type sink_iceberg_type = {
    .name = "iceberg",
    .description = "an Apache Iceberg table (not implemented yet)",
    .availability = SINK_NOT_IMPLEMENTED,
    .schema = &iceberg_sink_schema,
    .conf_size = sizeof(struct iceberg_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 1000,
    .flush_interval_seconds = 60,
    .ordering = ORDER_TRANSACTION,
    .flush = SINK_FLUSH_INTERVAL_ONLY, /* a table snapshot per flush */
};
