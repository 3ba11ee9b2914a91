/* The PostgreSQL `source` block; see pgjson.h. */
#include "source/pg/pgjson.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

void pgjson_source(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                   bool in_txn)
{
    json_source_common(b, ev, ctx);
    PUT_LIT(b, ",\"sequence\":\"[\\\"");
    json_u64(b, cdc_event_origin(ev).lsn);
    PUT_LIT(b, "\\\",\\\"");
    json_u64(b, ev->lsn);
    PUT_LIT(b, "\\\"]\",\"schema\":");
    if (ev->tab) {
        json_cstr(b, ev->tab->schema);
        PUT_LIT(b, ",\"table\":");
        json_cstr(b, ev->tab->name);
    } else {
        PUT_LIT(b, "null,\"table\":null");
    }
    PUT_LIT(b, ",\"txId\":");
    if (in_txn || ev->tab)
        json_u64(b, ev->xid);
    else
        PUT_LIT(b, "null");
    PUT_LIT(b, ",\"lsn\":");
    json_u64(b, ev->lsn);
    PUT_LIT(b, ",\"xmin\":null");
    json_source_schema_version(b, ev);
    buf_putc(b, '}');
}
