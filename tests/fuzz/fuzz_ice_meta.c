/* libFuzzer target for the Iceberg table metadata reader (what the sink
 * reads after a restart): a document that parses is written out, and that
 * must parse and write out to the same text again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lake/ice_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct ice_meta *m, *again;
    if (ice_meta_parse((const char *)data, size, &m, err, sizeof err) != 0)
        return 0;
    struct buf a = BUF_INIT, b = BUF_INIT;
    ice_meta_json(&a, m);
    if (ice_meta_parse(a.p, a.len, &again, err, sizeof err) != 0)
        __builtin_trap();
    ice_meta_json(&b, again);
    if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
        __builtin_trap();
    ice_meta_free(m);
    ice_meta_free(again);
    buf_fini(&a);
    buf_fini(&b);
    return 0;
}
