/* Replaying dead-lettered events (`cdc dlq replay`): each stored event goes
 * to its sink again, outside the stream (struct sink's replay flag: the
 * sink delivers it as it is, and a sink with a checkpoint leaves the
 * checkpoint alone), and its entry is marked resolved once the sink holds
 * it durably.
 *
 * This is the driver only: the caller takes the pipeline's locks, picks the
 * entries and prints the outcomes. */
#ifndef CDC_PIPELINE_REPLAY_H
#define CDC_PIPELINE_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/json.h"
#include "state/store.h"

struct replay;

struct replay_opts {
    const struct config *cfg;    /* borrowed: the sinks as configured now */
    const struct json_ctx *json; /* borrowed: envelope settings */
    struct store *store;         /* borrowed: the dead-letter queue */
    /* Another process (owner, e.g. "cdc run (pid 42)") runs the pipeline:
     * sinks that take one writer at a time are left to it. */
    bool guest;
    const char *owner; /* borrowed; guest only */
};

enum replay_outcome {
    REPLAY_DELIVERED,    /* delivered and marked resolved */
    REPLAY_RESOLVED,     /* resolved meanwhile (another replay): nothing to do */
    REPLAY_PENDING,      /* not delivered, it stays pending: err says why */
    REPLAY_UNMARKED,     /* delivered, but could not be marked resolved (a later replay
                            delivers it again): err says why */
    REPLAY_STORE_FAILED, /* the entry could not be read: err says why */
};

struct replay_result {
    enum replay_outcome outcome;
    char sink_id[128]; /* the entry's sink */
    char err[1200];
};

/* Borrows everything in o for the replay's lifetime. */
struct replay *replay_new(const struct replay_opts *o);
/* Replays entry id, opening its sink on first use (a sink that cannot be
 * opened fails its later entries at once; one that fails a delivery is
 * reopened for its next entry).  May block on the destination: for a
 * per-key sink up to its reply timeout and a margin. */
void replay_entry(struct replay *r, int64_t id, struct replay_result *res);
/* Closes the sinks; NULL is a no-op. */
void replay_free(struct replay *r);

#endif
