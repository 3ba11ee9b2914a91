/* The own keys of the sink types the reference has and cdc does not
 * implement yet (planned.c): sink_cfg.conf of such a sink. */
#ifndef CDC_SINK_PLANNED_H
#define CDC_SINK_PLANNED_H

#include <stdbool.h>

#include "sink/registry.h"

struct iceberg_sink_cfg {
    char *catalog_uri;      /* required */
    char *warehouse;        /* required */
    char *table_name;       /* required */
    char *write_mode;       /* append | upsert; default append */
    bool auto_create_table; /* default true */
};

extern const struct sink_type sink_iceberg_type;

#endif
