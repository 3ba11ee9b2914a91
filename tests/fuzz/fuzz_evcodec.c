/* libFuzzer target for the event codec: whatever decodes must re-encode to
 * bytes that decode to the same encoding again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/evcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cdc_event *ev;
    if (evcodec_decode(data, size, NULL, &ev, NULL, 0) != 0)
        return 0;
    struct buf a = BUF_INIT, b = BUF_INIT;
    evcodec_encode(&a, ev);
    struct cdc_event *again;
    if (evcodec_decode((const uint8_t *)a.p, a.len, NULL, &again, NULL, 0) != 0)
        __builtin_trap();
    evcodec_encode(&b, again);
    if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
        __builtin_trap();
    cdc_event_unref(ev);
    cdc_event_unref(again);
    buf_fini(&a);
    buf_fini(&b);
    return 0;
}
