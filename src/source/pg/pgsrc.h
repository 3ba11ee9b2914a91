/* The PostgreSQL source: reads the slot's pgoutput stream.
 *
 * open checks the server and the configured tables; prepare ensures the
 * publication and the slot exist and learns where to start; snapshot takes
 * the initial snapshot through parallel COPY readers that share the slot's
 * exported snapshot; start, poll and ack stream: messages are decoded into
 * events, streamed transactions spilled to disk until they commit, every
 * transaction emitted with its end LSN, and the confirmed position sent in
 * standby status updates.  The driver (source/driver.h) does the rest. */
#ifndef CDC_SOURCE_PG_PGSRC_H
#define CDC_SOURCE_PG_PGSRC_H

#include "source/source.h"

extern const struct source_ops pgsrc_ops;

#endif
