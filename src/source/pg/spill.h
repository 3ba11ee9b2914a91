/* Spill files for streamed transactions.
 *
 * With pgoutput's `streaming on`, PostgreSQL sends a large transaction in
 * blocks while it is still running, and says only at the end whether it
 * committed or aborted.  Nothing of it may reach a sink before the commit, and
 * holding it in memory is what streaming exists to avoid, so each block's raw
 * messages are appended to a file per top-level transaction and replayed from
 * disk at Stream Commit.  Subtransaction aborts are remembered and their
 * records skipped at replay.  The files are scratch: after a crash PostgreSQL
 * streams the transaction again, so spill_new removes leftovers. */
#ifndef CDC_SOURCE_PG_SPILL_H
#define CDC_SOURCE_PG_SPILL_H

#include <stddef.h>
#include <stdint.h>

struct spill;

/* Creates dir if needed and removes stale spill files in it. */
int spill_new(struct spill **out, const char *dir, char *err, size_t errlen);
void spill_free(struct spill *sp);

/* Appends one message of top-level transaction xid, sent for subtransaction
 * subxid, whose change LSN is lsn. */
int spill_append(struct spill *sp, uint32_t xid, uint32_t subxid, uint64_t lsn, const uint8_t *msg,
                 size_t len, char *err, size_t errlen);
/* Stream Abort: the whole transaction (subxid == xid) or one subtransaction. */
void spill_abort(struct spill *sp, uint32_t xid, uint32_t subxid);
/* Forgets every transaction (after a reconnect: PostgreSQL resends them). */
void spill_reset(struct spill *sp);

/* Replays xid's messages in order, skipping aborted subtransactions: call
 * spill_next until it returns 0 (end) or < 0 (read error); the message stays
 * valid until the next call.  spill_finish deletes the transaction's file. */
int spill_begin_replay(struct spill *sp, uint32_t xid, char *err, size_t errlen);
int spill_next(struct spill *sp, uint64_t *lsn, const uint8_t **msg, size_t *len);
void spill_finish(struct spill *sp, uint32_t xid);

/* Bytes currently spilled, for metrics. */
uint64_t spill_bytes(const struct spill *sp);

#endif
