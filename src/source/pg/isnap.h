/* Incremental snapshots: reading a table's rows while streaming goes on
 * (the watermark technique published as DBLog).
 *
 * For each chunk (primary-key order, after the last key done):
 *   1. insert a low watermark row into the signal table;
 *   2. read the chunk;
 *   3. insert a high watermark row.
 * The stream is not interrupted.  When it reaches the low watermark, every
 * change to the table drops the buffered row with the same key (the stream's
 * version is newer); at the high watermark the remaining rows are emitted, in
 * stream order, as `op: "r"` events.  The slot keeps advancing throughout.
 *
 * The signal table has Debezium's layout (id text, type text, data text): a
 * row of type `execute-snapshot` with data
 * `{"data-collections": ["schema.table", …]}` queues tables (what
 * `cdc snapshot` writes); watermark rows carry this pipeline's id.  Progress
 * is stored per table (the last key durable everywhere), so a restart resumes
 * where it left off. */
#ifndef CDC_SOURCE_PG_ISNAP_H
#define CDC_SOURCE_PG_ISNAP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "source/pg/relcache.h"
#include "state/store.h"

struct isnap;

/* The signal table used when source.signal_table is not set. */
#define ISNAP_DEFAULT_SIGNAL_TABLE "public.cdc_signal"

int isnap_open(struct isnap **out, const struct config *cfg, struct store *store,
               struct relcache *rels, char *err, size_t errlen);
void isnap_free(struct isnap *is);

/* The signal table, split. */
const char *isnap_signal_schema(const struct isnap *is);
const char *isnap_signal_name(const struct isnap *is);

/* Queues tables (configured names, or names that match one) for an
 * incremental snapshot; persisted.  Tables already queued are kept once. */
int isnap_request(struct isnap *is, char *const *tables, size_t n, char *err, size_t errlen);

enum isnap_signal { ISNAP_IGNORED, ISNAP_QUEUED, ISNAP_WINDOW_OPEN, ISNAP_WINDOW_CLOSE };
/* A row inserted into the signal table (ev->after holds id, type, data). */
enum isnap_signal isnap_on_signal(struct isnap *is, const struct cdc_event *ev);

/* While a window is open: a change to a captured table. */
void isnap_on_change(struct isnap *is, const struct cdc_event *ev);

/* After ISNAP_WINDOW_CLOSE: the rows to emit (ownership moves to the caller,
 * who sets their positions), in key order.  Then isnap_emitted with the seq
 * of the last event emitted returns the id to pass to engine_mark. */
size_t isnap_take_rows(struct isnap *is, struct cdc_event ***rows);
uint64_t isnap_emitted(struct isnap *is);

/* Ids whose marks completed: the chunks are durable in every sink. */
int isnap_marks_done(struct isnap *is, const uint64_t *ids, size_t n, char *err, size_t errlen);

/* Starts the next chunk when none is in progress (on conn, the source's SQL
 * connection).  Returns 0 (also when there is nothing to do). */
int isnap_step(struct isnap *is, PGconn *conn, char *err, size_t errlen);

/* The stream restarted from the confirmed position: forget the chunk in
 * progress and whatever was emitted but is not durable; resume from the
 * last key every sink holds. */
void isnap_rewind(struct isnap *is);

/* Whether any table is queued or in progress. */
bool isnap_active(const struct isnap *is);

/* Position idx for the row-th row of a chunk with chunk sequence seq. */
static inline uint64_t isnap_row_idx(uint64_t chunk_seq, uint64_t row)
{
    return (chunk_seq << 32) | row;
}

#endif
