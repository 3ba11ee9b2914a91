/* Shared by the `cdc dlq` subcommands: cmd_dlq.c (list, show, purge and the
 * dispatch) and cmd_dlq_replay.c. */
#ifndef CDC_MAIN_DLQ_H
#define CDC_MAIN_DLQ_H

#include <stdbool.h>
#include <stdint.h>

#include "main/cli.h"
#include "state/store.h"

struct dlq_cmd {
    const struct cli_opts *o;
    const struct config *cfg;
    const char *name; /* the state's name: the pipeline id, or "ID.deliver" */
    const char *path; /* the state file */
    /* With the Kafka transport and no --role: the capture role's state
     * file, which `list` looks into for pending entries to mention. */
    const char *other_path;
    int64_t id; /* --id or show's ID; 0 = none */
};

/* The sink called sink_id in the config, or NULL. */
const struct sink_cfg *dlq_find_sink(const struct config *cfg, const char *sink_id);
/* Whether the state file exists (or cannot be checked: then opening it says why). */
bool dlq_state_file_exists(const struct dlq_cmd *c);
/* Opens the state store; 0, or 1 with the error printed. */
int dlq_open_store(const struct dlq_cmd *c, struct store **st);

/* The subcommand: 0 all replayed, 1 some stay pending, 2 usage error. */
int dlq_replay(const struct dlq_cmd *c);

#endif
