/* The PostgreSQL sink's own keys (its block's, besides the common
 * batch_size and flush_interval_seconds): sink_cfg.conf of a postgres
 * sink.  The key table is pg_sink_keys in pg_config.c. */
#ifndef CDC_SINK_POSTGRES_PG_CONFIG_H
#define CDC_SINK_POSTGRES_PG_CONFIG_H

#include <stdbool.h>

#include "sink/sink.h"

enum pg_sink_mode {
    PG_SINK_EVENTS,  /* the reference's event-log table: event_key, event_value, source_* */
    PG_SINK_REPLICA, /* mirror each captured table, exactly once */
};

/* What the PostgreSQL mirror dead-letters when the destination refuses one
 * change (dead_letter_scope). */
enum pg_dead_letter_scope {
    PG_DL_TRANSACTION, /* the whole source transaction: the mirror never holds part of one */
    PG_DL_ROW,         /* only the refused change: the rest of its transaction is applied */
};

struct pg_sink_cfg {
    char *host;             /* default "localhost" */
    int port;               /* default 5432 */
    char *database;         /* required */
    char *username;         /* default "postgres" */
    char *password;         /* secret; or NULL */
    char *sslmode;          /* default "prefer" */
    enum pg_sink_mode mode; /* default events */
    char *target_table;     /* events mode; default "public.cdc_events" */
    char *target_schema;    /* replica mode; or NULL = same schema as the source table */
    char *checkpoint_table; /* default "public.cdc_checkpoints" */
    bool upsert;            /* default true */
    bool create_tables;     /* default true: create missing target tables, follow schema changes */
    bool drop_columns;      /* default true: a column the source drops is dropped in the mirror */
    enum pg_dead_letter_scope dead_letter_scope; /* default transaction */
};

extern const struct sink_type sink_postgres_type;
extern const struct sink_ops sink_postgres_ops; /* pg_sink.c */

/* The sink's own config. */
static inline const struct pg_sink_cfg *pg_conf(const struct sink *sk)
{
    return sk->cfg->conf;
}

#endif
