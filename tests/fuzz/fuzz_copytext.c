/* libFuzzer target for the COPY text row parser: the first byte picks the
 * column count; values must stay inside the buffer the contract sizes.  The
 * parser skips ahead a word at a time, so its fields are checked against a
 * plain byte-by-byte split: the same fields, NULLs where `\N` stands alone,
 * a field without a backslash copied as it is, and one with a backslash
 * read as that field alone reads. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/copytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXCOLS 16

/* The fields of line, byte by byte: the count (MAXCOLS + 1 when there are
 * more), each one's bounds and whether it holds a backslash. */
static unsigned split(const char *line, size_t len, size_t *from, size_t *to, bool *esc)
{
    unsigned n = 0;
    size_t start = 0;
    bool e = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != '\t') {
            if (line[i] == '\\') {
                e = true;
                if (i + 1 < len)
                    i++; /* an escaped tab is not a separator */
            }
            continue;
        }
        if (n == MAXCOLS)
            return MAXCOLS + 1;
        from[n] = start;
        to[n] = i;
        esc[n++] = e;
        start = i + 1;
        e = false;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t ncols = (uint16_t)(data[0] % MAXCOLS + 1);
    const char *line = (const char *)data + 1;
    size_t len = size - 1;
    struct cdc_val vals[MAXCOLS];
    char *out = malloc(len + ncols + 1);
    uint32_t dl = 0;
    int rc = copytext_row(line, len, ncols, vals, out, &dl, NULL, 0);
    size_t from[MAXCOLS], to[MAXCOLS];
    bool esc[MAXCOLS];
    unsigned n = split(line, len, from, to, esc);
    if ((rc == 0) != (n == ncols))
        __builtin_trap();
    if (rc == 0) {
        if (dl > len + ncols)
            __builtin_trap();
        for (uint16_t i = 0; i < ncols; i++) {
            const char *f = line + from[i];
            size_t flen = to[i] - from[i];
            bool null = flen == 2 && f[0] == '\\' && f[1] == 'N';
            if ((vals[i].kind == CDC_V_NULL) != null)
                __builtin_trap();
            if (null)
                continue;
            if (vals[i].off + vals[i].len >= dl || out[vals[i].off + vals[i].len] != '\0')
                __builtin_trap();
            if (!esc[i] && (vals[i].len != flen || memcmp(out + vals[i].off, f, flen) != 0))
                __builtin_trap();
            if (esc[i]) {
                struct cdc_val one;
                char *o1 = malloc(flen + 2);
                uint32_t dl1 = 0;
                if (copytext_row(f, flen, 1, &one, o1, &dl1, NULL, 0) != 0 ||
                    one.len != vals[i].len || memcmp(o1 + one.off, out + vals[i].off, one.len) != 0)
                    __builtin_trap();
                free(o1);
            }
        }
    }
    free(out);
    return 0;
}
