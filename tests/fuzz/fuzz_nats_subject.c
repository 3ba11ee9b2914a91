/* libFuzzer target for the NATS sink's subject templates: the input is a
 * template, then NUL-separated topic prefix, database, schema and table.
 * Whatever the template, the check must not crash; for one it accepts,
 * the subject rendered for any names must be one a client may publish to
 * (no empty token, no wildcard, no space). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sink/nats/nats_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *part[5] = {text, NULL, NULL, NULL, NULL};
    size_t used = strlen(text);
    for (int i = 1; i < 5 && used < size; i++) {
        part[i] = text + used + 1;
        used += strlen(part[i]) + 1;
    }
    if (nats_subject_check(part[0]) == NULL) {
        struct buf b = BUF_INIT;
        nats_subject(&b, part[0], part[1], part[2], part[3], part[4]);
        buf_putc(&b, '\0');
        if (!nats_subject_valid(b.p))
            __builtin_trap();
        buf_fini(&b);
    }
    free(text);
    return 0;
}
