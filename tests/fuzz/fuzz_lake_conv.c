/* libFuzzer target for the parsers of canonical value texts (core/valtext.h)
 * and the RLE/bit-packed decoder: arbitrary bytes never crash them, and what
 * RLE-decodes re-encodes to values that decode the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/valtext.h"
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
    valtext_bool(s, size, &b);
    valtext_i32(s, size, &i32);
    valtext_i64(s, size, &i64);
    valtext_f32(s, size, &f);
    valtext_f64(s, size, &d);
    valtext_date(s, size, &i32);
    valtext_time(s, size, &i64);
    valtext_timestamp(s, size, &i64);
    if (size)
        valtext_decimal(s, size, 1 + data[0] % 38, data[0] % 39 % (1 + data[0] % 38), &q);
    valtext_uuid(s, size, u);
    valtext_bytea(s, size, &bytes);
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
