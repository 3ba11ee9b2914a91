/* RLE/bit-packed hybrid, boolean packing and page codecs (see parquet_enc.h). */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "lake/parquet_enc.h"
#include "lake/thrift.h"
#include "util/err.h"
#include "util/mem.h"

int parquet_bit_width(uint32_t max)
{
    int bw = 1;
    while (bw < 32 && (max >> bw) != 0)
        bw++;
    return bw;
}

static void put_run(struct buf *b, uint32_t value, size_t count, int bw)
{
    thrift_put_uvarint(b, (uint64_t)count << 1);
    int nbytes = (bw + 7) / 8;
    for (int i = 0; i < nbytes; i++)
        buf_putc(b, (char)(value >> (8 * i)));
}

/* Bit-packs groups*8 values (missing ones past n are zeros). */
static void put_packed(struct buf *b, const uint32_t *v, size_t n, size_t groups, int bw)
{
    thrift_put_uvarint(b, ((uint64_t)groups << 1) | 1);
    size_t nbytes = groups * (size_t)bw; /* 8 values * bw bits = bw bytes per group */
    buf_reserve(b, nbytes);
    uint8_t *out = (uint8_t *)b->p + b->len;
    memset(out, 0, nbytes);
    uint64_t bit = 0;
    uint64_t mask = bw == 32 ? 0xffffffffu : ((1u << bw) - 1);
    for (size_t i = 0; i < n; i++, bit += (uint64_t)bw) {
        uint64_t chunk = (v[i] & mask) << (bit % 8);
        for (size_t byte = bit / 8; chunk; byte++, chunk >>= 8)
            out[byte] |= (uint8_t)chunk;
    }
    b->len += nbytes;
    b->p[b->len] = '\0';
}

static size_t run_at(const uint32_t *v, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && v[j] == v[i])
        j++;
    return j - i;
}

void parquet_rle_encode(struct buf *b, const uint32_t *v, size_t n, int bw)
{
    size_t i = 0;
    while (i < n) {
        size_t run = run_at(v, n, i);
        if (run >= 8) {
            put_run(b, v[i], run, bw);
            i += run;
            continue;
        }
        /* Bit-pack whole groups of 8 until a run of 8 or more starts at a
         * group boundary (the stream may end inside the last group). */
        size_t start = i;
        do {
            i += 8;
        } while (i < n && run_at(v, n < i + 8 ? n : i + 8, i) < 8);
        size_t end = i < n ? i : n;
        put_packed(b, v + start, end - start, (i - start) / 8, bw);
        i = end;
    }
}

void parquet_rle_encode_u8(struct buf *b, const uint8_t *v, size_t n, int bw)
{
    /* Widened whole: a bit-packed run may only be padded at the very end of
     * the stream, so the levels of a page cannot be encoded in slices. */
    uint32_t *tmp = xmalloc((n ? n : 1) * sizeof *tmp);
    for (size_t i = 0; i < n; i++)
        tmp[i] = v[i];
    parquet_rle_encode(b, tmp, n, bw);
    free(tmp);
}

static int rd_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return CDC_EINVAL;
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return CDC_EINVAL;
}

int parquet_rle_decode(const uint8_t *p, size_t len, int bw, uint32_t *out, size_t n)
{
    const uint8_t *end = p + len;
    size_t got = 0;
    if (bw < 1 || bw > 32)
        return CDC_EINVAL;
    while (got < n) {
        uint64_t h;
        if (rd_uvarint(&p, end, &h) < 0)
            return CDC_EINVAL;
        if (h & 1) {
            uint64_t groups = h >> 1;
            if (groups == 0 || groups > (uint64_t)(end - p) / (uint64_t)bw)
                return CDC_EINVAL;
            for (uint64_t i = 0; i < groups * 8 && got < n; i++) {
                uint64_t val = 0, bit = i * (uint64_t)bw;
                for (int k = 0; k < bw; k++, bit++)
                    val |= (uint64_t)((p[bit / 8] >> (bit % 8)) & 1) << k;
                out[got++] = (uint32_t)val;
            }
            p += groups * (uint64_t)bw;
        } else {
            uint64_t count = h >> 1;
            int nbytes = (bw + 7) / 8;
            if (count == 0 || end - p < nbytes)
                return CDC_EINVAL;
            uint32_t val = 0;
            for (int i = 0; i < nbytes; i++)
                val |= (uint32_t)p[i] << (8 * i);
            p += nbytes;
            if (bw < 32 && (val >> bw))
                return CDC_EINVAL;
            for (uint64_t i = 0; i < count && got < n; i++)
                out[got++] = val;
        }
    }
    return 0;
}

void parquet_pack_bools(struct buf *b, const uint8_t *v, size_t n)
{
    size_t nbytes = (n + 7) / 8;
    buf_reserve(b, nbytes);
    uint8_t *out = (uint8_t *)b->p + b->len;
    memset(out, 0, nbytes);
    for (size_t i = 0; i < n; i++)
        if (v[i])
            out[i / 8] |= (uint8_t)(1u << (i % 8));
    b->len += nbytes;
    b->p[b->len] = '\0';
}

int parquet_compress(enum parquet_codec codec, int level, const void *src, size_t n,
                     struct buf *dst, char *err, size_t errlen)
{
    buf_reset(dst);
    switch (codec) {
    case PARQUET_UNCOMPRESSED:
        buf_put(dst, src, n);
        return 0;
    case PARQUET_SNAPPY: {
        size_t cap = snappy_max_compressed_length(n);
        buf_reserve(dst, cap);
        size_t outlen = cap;
        if (snappy_compress(src, n, dst->p, &outlen) != SNAPPY_OK)
            return cdc_fail(err, errlen, CDC_ERR, "snappy compression failed");
        dst->len = outlen;
        return 0;
    }
    case PARQUET_ZSTD: {
        size_t cap = ZSTD_compressBound(n);
        buf_reserve(dst, cap);
        size_t r = ZSTD_compress(dst->p, cap, src, n, level ? level : 3);
        if (ZSTD_isError(r))
            return cdc_fail(err, errlen, CDC_ERR, "zstd compression failed: %s",
                            ZSTD_getErrorName(r));
        dst->len = r;
        return 0;
    }
    }
    return cdc_fail(err, errlen, CDC_ENOTSUP, "unknown Parquet codec %d", (int)codec);
}

int parquet_decompress(enum parquet_codec codec, const void *src, size_t n, size_t raw_len,
                       struct buf *dst)
{
    buf_reset(dst);
    buf_reserve(dst, raw_len);
    switch (codec) {
    case PARQUET_UNCOMPRESSED:
        if (n != raw_len)
            return CDC_EINVAL;
        buf_put(dst, src, n);
        return 0;
    case PARQUET_SNAPPY: {
        size_t outlen = raw_len;
        if (snappy_uncompress(src, n, dst->p, &outlen) != SNAPPY_OK || outlen != raw_len)
            return CDC_EINVAL;
        dst->len = outlen;
        return 0;
    }
    case PARQUET_ZSTD: {
        size_t r = ZSTD_decompress(dst->p, raw_len, src, n);
        if (ZSTD_isError(r) || r != raw_len)
            return CDC_EINVAL;
        dst->len = r;
        return 0;
    }
    }
    return CDC_EINVAL;
}
