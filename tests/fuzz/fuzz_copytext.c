/* libFuzzer target for the COPY text row parser: the first byte picks the
 * column count; values must stay inside the buffer the contract sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/pg/copytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t ncols = (uint16_t)(data[0] % 16 + 1);
    const char *line = (const char *)data + 1;
    size_t len = size - 1;
    struct cdc_val vals[16];
    char *out = malloc(len + ncols + 1);
    uint32_t dl = 0;
    if (copytext_row(line, len, ncols, vals, out, &dl, NULL, 0) == 0) {
        if (dl > len + ncols)
            __builtin_trap();
        for (uint16_t i = 0; i < ncols; i++)
            if (vals[i].kind == CDC_V_TEXT &&
                (vals[i].off + vals[i].len >= dl || out[vals[i].off + vals[i].len] != '\0'))
                __builtin_trap();
    }
    free(out);
    return 0;
}
