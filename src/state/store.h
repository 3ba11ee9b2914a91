/* The local state store: one SQLite database per pipeline
 * (`{state_dir}/{pipeline_id}/state.db`) holding what cdc must remember that
 * no destination holds for it: the dead-letter queue, snapshot progress, and
 * the schema history.
 *
 * Durable: WAL journal with synchronous=FULL, so a function that returned 0
 * survives kill -9 and power loss.  Thread-safe: one connection guarded by a
 * mutex; several processes (a running pipeline and `cdc dlq`) may open the
 * same file (busy timeout 10 s). */
#ifndef CDC_STATE_STORE_H
#define CDC_STATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

struct store;

/* Opens (creating directories, mode 0700, the file, mode 0600, and the schema
 * as needed).  path may be ":memory:" for tests.  Fails with err naming the
 * file if it is not a state store or was written by a newer cdc. */
int store_open(struct store **out, const char *path, char *err, size_t errlen);
void store_close(struct store *st);
/* "{state_dir}/{pipeline_id}/state.db", heap-allocated. */
char *store_path(const char *state_dir, const char *pipeline_id);

/* ---------- dead-letter queue ---------- */

enum dlq_status { DLQ_PENDING, DLQ_RESOLVED };

/* What a dead-lettered delivery looked like. */
struct dlq_failure {
    const char *sink_id;
    const char *error_class; /* "retryable" | "permanent" */
    const char *error;       /* the destination's answer, one line */
    int attempts;
    int http_status;         /* 0 if not HTTP */
    int64_t first_failed_us; /* unix us */
};

/* Stores ev (its binary encoding, for replay, and its JSON key and envelope,
 * for people) with the failure.  Returns 0 and the new entry's id (id may be
 * NULL); durable on return.  Any thread may call it (it blocks for the fsync,
 * and up to 10 s while another process writes).  key_json and value_json may
 * be NULL; control events are refused (CDC_EINVAL).  Ids are never reused. */
int store_dlq_add(struct store *st, const struct cdc_event *ev, const char *key_json,
                  const char *value_json, const struct dlq_failure *f, int64_t *id, char *err,
                  size_t errlen);
/* The same for n events with one failure, in one durable commit (an fsync
 * for a whole transaction's events); all or none are stored.  key_json and
 * value_json are arrays of n (or NULL); *first_id (may be NULL) gets the
 * first entry's id, the others follow it. */
int store_dlq_add_many(struct store *st, size_t n, const struct cdc_event *const *evs,
                       const char *const *key_json, const char *const *value_json,
                       const struct dlq_failure *f, int64_t *first_id, char *err, size_t errlen);

struct dlq_entry {
    int64_t id;
    char sink_id[128];
    struct cdc_pos pos;
    char topic[256];
    char op;
    char error_class[16];
    char error[512];
    int attempts;
    int http_status;
    int64_t first_failed_us;
    int64_t dead_lettered_us;
    enum dlq_status status;
    int64_t resolved_us; /* 0 while pending */
    /* Heap copies, freed by dlq_entry_fini: key_json by store_dlq_list and
     * store_dlq_get, the others by store_dlq_get only (NULL in listings). */
    char *key_json;
    char *value_json;
    uint8_t *event; /* evcodec encoding */
    size_t event_len;
};
void dlq_entry_fini(struct dlq_entry *e);

/* Calls fn for each entry (oldest first) of sink_id (NULL = all sinks),
 * pending only unless include_resolved; the entry (with its key) is valid
 * for the call only.  fn returns non-zero to stop.  fn
 * runs without the store's lock (entries are read a page at a time), so it
 * may call the store, e.g. store_dlq_resolve. */
int store_dlq_list(struct store *st, const char *sink_id, bool include_resolved,
                   int (*fn)(const struct dlq_entry *e, void *arg), void *arg, char *err,
                   size_t errlen);
/* One entry with its payloads.  CDC_EINVAL if there is no such id. */
int store_dlq_get(struct store *st, int64_t id, struct dlq_entry *e, char *err, size_t errlen);
/* Marks a pending entry resolved (now).  Resolving a resolved entry changes
 * nothing and returns 0; CDC_EINVAL if there is no such id. */
int store_dlq_resolve(struct store *st, int64_t id, char *err, size_t errlen);
/* Deletes resolved entries (or all with all = true); *n = how many. */
int store_dlq_purge(struct store *st, bool all, int64_t *n, char *err, size_t errlen);
/* Positions of sink_id's (NULL = every sink's) pending entries of changes
 * (not snapshot rows), with their streams, sorted (cdc_pos_cmp) without
 * duplicates: a sink skips them when the source replays
 * (they are done: dead-lettered).  *out is heap (NULL when *n = 0), caller
 * frees. */
int store_dlq_pending_positions(struct store *st, const char *sink_id, struct cdc_pos **out,
                                size_t *n, char *err, size_t errlen);
/* Counts for metrics: pending entries per sink_id (NULL = all); -1 if the
 * store cannot be read. */
int64_t store_dlq_count(struct store *st, const char *sink_id);

/* ---------- key/value (snapshot progress and other small state) ---------- */

/* Stores value under key (replacing).  Durable on return. */
int store_kv_put(struct store *st, const char *key, const char *value, char *err, size_t errlen);
/* *value = heap copy, or NULL if absent.  Returns 0 either way. */
int store_kv_get(struct store *st, const char *key, char **value, char *err, size_t errlen);
/* Deletes key (nothing if absent). */
int store_kv_delete(struct store *st, const char *key, char *err, size_t errlen);
/* Deletes every key starting with prefix (byte-wise; "" deletes all). */
int store_kv_delete_prefix(struct store *st, const char *prefix, char *err, size_t errlen);

/* ---------- schema history (store_schema.c; kept by schema/schema_hist.h) ---------- */

/* One version of a captured table's shape. */
struct schema_version {
    uint32_t version;        /* 1, 2, … per table */
    struct cdc_pos pos;      /* where it took effect: the first event that had it */
    int compatible;          /* against the previous version: 1 yes, 0 no; -1 the table's first */
    bool held;               /* stop_on_incompatible_schema refused it and no run accepted it yet */
    int64_t recorded_us;     /* unix us */
    char *changes;           /* owned: JSON array of the differences to the previous version */
    char *summary;           /* owned: the same in one line for people ("" for the first) */
    struct cdc_table *shape; /* owned reference: schema, name, key_unique and the columns
                                (name, type_name, type, type_oid, typmod, key, attnum,
                                not_null, has_default) */
};
void schema_version_fini(struct schema_version *v);

/* Records version v of v->shape's table (its columns too), durably.  A
 * version that exists already is an error (CDC_EINVAL). */
int store_schema_add(struct store *st, const struct schema_version *v, char *err, size_t errlen);
/* Calls fn for each version of schema.name (schema NULL: of every table),
 * by table and then version; v is valid for the call only.  fn returns
 * non-zero to stop.  fn runs without the store's lock. */
int store_schema_list(struct store *st, const char *schema, const char *name,
                      int (*fn)(const struct schema_version *v, void *arg), void *arg, char *err,
                      size_t errlen);
/* Clears a version's held mark (a run with stop_on_incompatible_schema off
 * let it through).  Nothing if there is no such version. */
int store_schema_release(struct store *st, const char *schema, const char *name, uint32_t version,
                         char *err, size_t errlen);

#endif
