/* libFuzzer target for the signal JSON reader. */
#include <stdint.h>
#include <stdlib.h>

#include "core/jsonread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **v;
    size_t n;
    if (jsonread_string_array((const char *)data, size, "data-collections", &v, &n) == 0)
        jsonread_free_strings(v, n);
    char *s;
    if (jsonread_string((const char *)data, size, "type", &s) == 0)
        free(s);
    return 0;
}
