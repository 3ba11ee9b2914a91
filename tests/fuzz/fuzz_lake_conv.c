/* libFuzzer target for the PostgreSQL text converters and the RLE/bit-packed
 * decoder: arbitrary bytes never crash them, and what RLE-decodes re-encodes
 * to values that decode the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lake/lake_conv.h"
#include "lake/parquet_enc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    bool b;
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    __int128 q;
    uint8_t u[16];
    struct buf bytes = BUF_INIT;
    lake_conv_bool(s, size, &b);
    lake_conv_i32(s, size, &i32);
    lake_conv_i64(s, size, &i64);
    lake_conv_f32(s, size, &f);
    lake_conv_f64(s, size, &d);
    lake_conv_date(s, size, &i32);
    lake_conv_time(s, size, &i64);
    lake_conv_timestamp(s, size, &i64);
    if (size)
        lake_conv_decimal(s, size, 1 + data[0] % 38, data[0] % 39 % (1 + data[0] % 38), &q);
    lake_conv_uuid(s, size, u);
    lake_conv_bytea(s, size, &bytes);
    buf_fini(&bytes);

    if (size < 2)
        return 0;
    int bw = 1 + data[0] % 32;
    size_t n = data[1] * 8u + 1;
    uint32_t *v = calloc(n, sizeof *v), *w = calloc(n, sizeof *w);
    if (parquet_rle_decode(data + 2, size - 2, bw, v, n) == 0) {
        struct buf enc = BUF_INIT;
        parquet_rle_encode(&enc, v, n, bw);
        if (parquet_rle_decode((const uint8_t *)enc.p, enc.len, bw, w, n) != 0 ||
            memcmp(v, w, n * sizeof *v) != 0)
            __builtin_trap();
        buf_fini(&enc);
    }
    free(v);
    free(w);
    return 0;
}
