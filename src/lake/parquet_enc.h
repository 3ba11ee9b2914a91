/* Parquet value encodings and page compression (Encodings.md):
 * the RLE/bit-packed hybrid used for definition levels and dictionary
 * indices, and the codecs.  Kept apart from the writer so tests can check
 * each encoding byte by byte, and decode what they encode. */
#ifndef CDC_LAKE_PARQUET_ENC_H
#define CDC_LAKE_PARQUET_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "lake/parquet_writer.h"
#include "util/buf.h"

/* Bits needed for values 0..max (at least 1). */
int parquet_bit_width(uint32_t max);

/* Appends the RLE/bit-packed hybrid encoding of v[0..n) at bit width bw
 * (1..32): runs of 8 or more equal values become RLE runs (varint(len << 1),
 * then the value in ceil(bw/8) little-endian bytes); everything else is
 * bit-packed in groups of 8 (varint(groups << 1 | 1), values LSB first), the
 * last group padded with zeros. */
void parquet_rle_encode(struct buf *b, const uint32_t *v, size_t n, int bw);
/* The same for 8-bit values (definition levels). */
void parquet_rle_encode_u8(struct buf *b, const uint8_t *v, size_t n, int bw);

/* Decodes n values of the hybrid encoding from p[0..len) into out: 0, or
 * CDC_EINVAL if the input ends early or is malformed.  For tests and fuzzing. */
int parquet_rle_decode(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n);

/* Appends v[0..n) booleans bit-packed LSB first (PLAIN for BOOLEAN). */
void parquet_pack_bools(struct buf *b, const uint8_t *v, size_t n);

/* Compresses src[0..n) with codec, replacing the contents of dst.
 * 0, or CDC_ERR with err. */
int parquet_compress(enum parquet_codec codec, int level, const void *src, size_t n,
                     struct buf *dst, char *err, size_t errlen);
/* The inverse, for tests: dst gets exactly raw_len bytes. */
int parquet_decompress(enum parquet_codec codec, const void *src, size_t n, size_t raw_len,
                       struct buf *dst);

#endif
