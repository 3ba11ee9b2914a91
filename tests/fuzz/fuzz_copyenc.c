/* libFuzzer target for the COPY text encoder (the mirror's snapshot loads):
 * the input is split into values at 0xff bytes (a value of one 0xfe byte is
 * NULL); the values encoded as one row must read back, with the COPY text
 * parser, as the same values, the row must hold no raw newline, and each
 * value must be escaped exactly as the byte-by-byte rule below says (the
 * encoder skips ahead a word at a time). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/copytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXCOLS 16

/* The reference: backslash, tab, newline and carriage return escaped. */
static void ref_put(struct buf *b, const char *s, size_t len)
{
    if (!s) {
        buf_put(b, "\\N", 2);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        const char *e = s[i] == '\\'   ? "\\\\"
                        : s[i] == '\t' ? "\\t"
                        : s[i] == '\n' ? "\\n"
                        : s[i] == '\r' ? "\\r"
                                       : NULL;
        if (e)
            buf_put(b, e, 2);
        else
            buf_putc(b, s[i]);
    }
}

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
    struct buf line = BUF_INIT, ref = BUF_INIT;
    for (uint16_t c = 0; c < ncols; c++) {
        if (c) {
            buf_putc(&line, '\t');
            buf_putc(&ref, '\t');
        }
        bool null = len[c] == 1 && data[off[c]] == 0xfe;
        copytext_put(&line, null ? NULL : in + off[c], len[c]);
        ref_put(&ref, null ? NULL : in + off[c], len[c]);
    }
    if (line.len != ref.len || (line.len && memcmp(line.p, ref.p, line.len) != 0))
        __builtin_trap();
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
    buf_fini(&ref);
    return 0;
}
