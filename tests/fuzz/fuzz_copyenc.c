/* libFuzzer target for the COPY text encoder (the mirror's snapshot loads):
 * the input is split into values at 0xff bytes (a value of one 0xfe byte is
 * NULL); the values encoded as one row must read back, with the COPY text
 * parser, as the same values, and the row must hold no raw newline. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/copytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXCOLS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t off[MAXCOLS], len[MAXCOLS];
    uint16_t ncols = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && ncols < MAXCOLS; i++)
        if (i == size || data[i] == 0xff) {
            off[ncols] = start;
            len[ncols++] = i - start;
            start = i + 1;
        }
    struct buf line = BUF_INIT;
    for (uint16_t c = 0; c < ncols; c++) {
        if (c)
            buf_putc(&line, '\t');
        bool null = len[c] == 1 && data[off[c]] == 0xfe;
        copytext_put(&line, null ? NULL : in + off[c], len[c]);
    }
    if (memchr(line.p, '\n', line.len) || memchr(line.p, '\r', line.len))
        __builtin_trap();
    struct cdc_val vals[MAXCOLS];
    char *out = malloc(line.len + ncols + 1);
    uint32_t dl = 0;
    if (copytext_row(line.p, line.len, ncols, vals, out, &dl, NULL, 0) != 0)
        __builtin_trap();
    for (uint16_t c = 0; c < ncols; c++) {
        bool null = len[c] == 1 && data[off[c]] == 0xfe;
        if (null != (vals[c].kind == CDC_V_NULL))
            __builtin_trap();
        if (!null && (vals[c].len != len[c] || memcmp(out + vals[c].off, in + off[c], len[c]) != 0))
            __builtin_trap();
    }
    free(out);
    buf_fini(&line);
    return 0;
}
