/* The deliver role's source: the capture role's topics read through a
 * consumer group, as a struct source_ops (source/source.h).
 *
 * One stream per topic partition.  Its id is the same in every process of
 * the group, so sinks that share a destination (a postgres mirror's
 * checkpoint table) agree on it: (index of the table in source.tables) <<
 * 16 | partition.  A record at offset o is the event at position
 * {o + 1, 0} of its stream, a transaction of its own; the stream's
 * acknowledged position is the next offset to read, which is what the
 * group commits.  The event itself comes from the record's cdc.event header
 * (transport/kafka/kenc.h), with the capture position kept as its origin
 * (what envelopes show); a tombstone only moves its stream on.
 *
 * Offsets are committed per partition at what every sink holds (the commit
 * tracker's confirmed position per stream): every commit_interval_seconds
 * (at least every 200 ms), before partitions are revoked, and at the end.
 * Assignment is eager (range): a revoke ends this process's ownership of
 * the partitions, the next owner starts at the offsets committed then, so
 * what was in flight here is delivered twice at most, never lost.  A
 * partition assigned again resumes after what this process already read
 * (or at the group's offset, if another member got further meanwhile), so
 * a stream's positions never go back within a process. */
#ifndef CDC_SOURCE_KAFKA_KSRC_H
#define CDC_SOURCE_KAFKA_KSRC_H

#include "source/source.h"

extern const struct source_ops ksrc_ops;

/* The stream id of partition of the topic of table number table_index. */
static inline uint32_t ksrc_stream_id(size_t table_index, int32_t partition)
{
    return (uint32_t)table_index << 16 | (uint32_t)partition;
}

#endif
