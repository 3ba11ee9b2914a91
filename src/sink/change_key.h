/* What identifies a change to a destination that drops repeats
 * (change_key.c explains the forms): the webhook's Idempotency-Key, the NATS
 * sink's Nats-Msg-Id. */
#ifndef CDC_SINK_CHANGE_KEY_H
#define CDC_SINK_CHANGE_KEY_H

#include <stddef.h>

#include "core/event.h"
#include "util/buf.h"

#define SINK_DIGEST_HEX (2 * 32)

/* The key of one change: appended to b. */
void sink_change_key(struct buf *b, const char *pipeline_id, const char *sink_id,
                     const struct cdc_event *ev);

/* Lowercase hex of the SHA-256 of the parts (each followed by a NUL, so
 * ("ab", "c") and ("a", "bc") differ). */
void sink_digest_hex(const char *const *parts, const size_t *lens, size_t n,
                     char hex[SINK_DIGEST_HEX + 1]);

#endif
