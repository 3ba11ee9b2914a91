/* The Idempotency-Key of a webhook request: the key of its change when it
 * carries one (sink/change_key.c gives the forms), else
 * <pipeline>:<sink>:batch:<count>:<SHA-256 of the keys of its changes>: the
 * same batch again has the same key, and a batch that differs in any change
 * has another. */
#include "sink/change_key.h"
#include "sink/webhook/webhook.h"

void webhook_request_key(struct buf *b, const char *pipeline_id, const char *sink_id,
                         struct cdc_event *const *evs, size_t n)
{
    size_t ndata = 0;
    const struct cdc_event *only = NULL;
    for (size_t i = 0; i < n; i++)
        if (!cdc_op_is_control(evs[i]->op)) {
            ndata++;
            only = evs[i];
        }
    if (ndata == 1) {
        sink_change_key(b, pipeline_id, sink_id, only);
        return;
    }
    /* The changes' keys, each followed by a NUL (sink_digest_hex adds the last). */
    struct buf keys = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        if (!cdc_op_is_control(evs[i]->op)) {
            if (keys.len)
                buf_putc(&keys, '\0');
            sink_change_key(&keys, pipeline_id, sink_id, evs[i]);
        }
    const char *parts[1] = {keys.p ? keys.p : ""};
    size_t lens[1] = {keys.len};
    char hex[SINK_DIGEST_HEX + 1];
    sink_digest_hex(parts, lens, 1, hex);
    buf_printf(b, "%s:%s:batch:%zu:%s", pipeline_id, sink_id, ndata, hex);
    buf_fini(&keys);
}
