/* Binary encoding of a change event, with its table shape, so an event can
 * leave memory and come back exactly: the dead-letter queue stores it for
 * replay into any sink, a slow sink's spool keeps its backlog on disk.
 *
 * Layout (little-endian, versioned by the first four bytes "CEV3"; "CEV2",
 * with 32-bit transaction and table ids and no extension word, and "CEV1",
 * the same without the truncate block, are still read):
 *   u8 op, u8 flags, u16 part, u64 pos.lsn, u64 pos.idx, u64 lsn, u64 end_lsn,
 *   i64 commit_ts, i64 emit_ts, u64 xid, u32 table_order, u32 total_order,
 *   u32 ext (bits saying which optional parts below are present),
 *   [u32 pos.stream, when ext says so: absent, stream 0]
 *   [u64 origin.lsn, u64 origin.idx, u32 origin.stream: an event that came
 *    through a transport (has_origin)]
 *   [u64 snapshot_chunk, u32 snapshot_row: snapshot rows (CEV3); older
 *    encodings held them in pos.idx as chunk << 32 | row]
 *   [u32 src_row, str srcmeta: the source type's bytes, when it has any]
 *   [u64 snapshot_id, when flags say so: older encodings without it decode as 0]
 *   [table: u32 length, u64 id, u32 version, str schema, str name, str topic,
 *    u8 replident, u8 key (1 unique, 2 deferrable), u16 ncols,
 *    ncols x (str name, str type_name, u32 type_oid, i32 typmod, u8 type, u8 key)]
 *   [truncate, for op 't': u8 options, u16 index, u16 count,
 *    str names (schema\0name\0 per table)]
 *   [before row] [after row]   row = nvals x (u8 kind [, u32 len, bytes])
 *   str = u32 len, bytes
 * The catalog facts of columns (attnum, missing value) are not kept: a shape
 * read back is one a mirror does not evolve from.
 * Not a wire format between versions of cdc: the version check rejects what a
 * different build wrote. */
#ifndef CDC_CORE_EVCODEC_H
#define CDC_CORE_EVCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "util/buf.h"

/* Appends the encoding of ev (a change or message, not a control event). */
void evcodec_encode(struct buf *b, const struct cdc_event *ev);

/* Reuses decoded table shapes across events (a spool holds millions of events
 * of a few tables).  Zero-initialize; evcodec_cache_fini drops the tables. */
struct evcodec_cache {
    struct evcodec_cached {
        uint64_t hash; /* of the encoded table bytes */
        uint32_t len;
        struct cdc_table *tab; /* owned reference */
    } slot[16];
    unsigned next;
};
void evcodec_cache_fini(struct evcodec_cache *cache);

/* Decodes one event (refs = 1, seq = 0).  cache may be NULL.  Returns 0, or
 * CDC_EINVAL with err filled for anything malformed or from another version. */
int evcodec_decode(const uint8_t *p, size_t len, struct evcodec_cache *cache,
                   struct cdc_event **out, char *err, size_t errlen);

#endif
