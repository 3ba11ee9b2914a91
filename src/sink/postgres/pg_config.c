/* The PostgreSQL sink type: its block's keys, the summary `cdc validate`
 * prints, and how the engine drives it.
 *
 * batch_size (a common key) means here: a database transaction is
 * committed at a source transaction boundary once it holds 10 x batch_size
 * rows, or 60 x batch_size snapshot rows, or is 200 ms old, and a flush (a
 * commit at the next boundary) is due after 16 batches (one due while more
 * snapshot rows wait leaves a transaction open that is neither). */
#include <stdint.h>

#include "config/cfg_keys.h"
#include "sink/postgres/pg_config.h"
#include "util/redact.h"

static const char *const pg_mode_names[] = {"events", "replica"};
static const char *const dead_letter_scope_names[] = {"transaction", "row"};

#define T struct pg_sink_cfg
static const struct cfg_key pg_sink_keys[] = {
    K_STR(T, host, "localhost"),
    K_INT(T, port, 5432, 1, PORT_MAX),
    K_STR(T, database, NULL, .flags = CFG_REQUIRED),
    K_STR(T, username, "postgres"),
    K_STR(T, password, NULL, .flags = CFG_SECRET | CFG_NULLABLE),
    K_STR(T, sslmode, "prefer", CHOICES(cfg_sslmode_names)),
    K_ENUM(T, mode, PG_SINK_EVENTS, pg_mode_names),
    K_STR(T, target_table, "public.cdc_events", .check = cfg_check_table),
    K_STR(T, target_schema, NULL, .flags = CFG_NULLABLE),
    K_STR(T, checkpoint_table, "public.cdc_checkpoints", .check = cfg_check_table),
    K_BOOL(T, upsert, 1),
    K_BOOL(T, create_tables, 1),
    K_BOOL(T, drop_columns, 1),
    K_ENUM(T, dead_letter_scope, PG_DL_TRANSACTION, dead_letter_scope_names),
};
#undef T
static const struct cfg_schema pg_sink_schema = {KEYS(pg_sink_keys)};

/* "events public.cdc_events -> host:5432/db", the host without credentials. */
static void pg_describe(const struct sink_cfg *sc, struct buf *out)
{
    const struct pg_sink_cfg *pc = sc->conf;
    char shown[REDACT_URL_MAX];
    buf_printf(out, " %s", pc->mode == PG_SINK_REPLICA ? "replica" : "events");
    if (pc->mode == PG_SINK_EVENTS)
        buf_printf(out, " %s", pc->target_table);
    buf_printf(out, " -> %s:%d/%s", redact_url(pc->host, shown, sizeof shown), pc->port,
               pc->database);
}

/* A mirror keeps source transactions whole unless dead_letter_scope is row. */
static bool pg_dead_letters_transactions(const struct sink_cfg *sc)
{
    const struct pg_sink_cfg *pc = sc->conf;
    return pc->mode == PG_SINK_REPLICA && pc->dead_letter_scope == PG_DL_TRANSACTION;
}

const struct sink_type sink_postgres_type = {
    .name = "postgres",
    .description = "a PostgreSQL database: an event-log table or mirrors of the tables",
    .ops = &sink_postgres_ops,
    .schema = &pg_sink_schema,
    .conf_size = sizeof(struct pg_sink_cfg),
    .block_required = true,
    .common_keys = SINK_KEY_BATCH_SIZE | SINK_KEY_FLUSH_INTERVAL,
    .batch_size = 1000,
    .flush_interval_seconds = 0.2,
    .ordering = ORDER_TRANSACTION,
    .flush = SINK_FLUSH_ON_CATCH_UP,
    .ordered_snapshot = true,
    .flush_batches = 16,
    .describe = pg_describe,
    .dead_letters_transactions = pg_dead_letters_transactions,
};
