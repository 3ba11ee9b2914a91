/* GET /v1/schema: the schema history (schema/schema_hist.h) from the state
 * store, every table's versions or one table's (?table=schema.name), in the
 * objects `cdc schema --json` prints. */
#include <string.h>

#include "http/api_int.h"
#include "schema/schema_json.h"
#include "state/store.h"

struct schema_list {
    struct buf *out;
    const char *table;
    size_t n;
};

static int list_version(const struct schema_version *v, void *arg)
{
    struct schema_list *l = arg;
    if (!schema_table_matches(v, l->table))
        return 0;
    if (l->n++)
        buf_putc(l->out, ',');
    schema_version_json(l->out, v);
    return 0;
}

void control_schema(struct api *api, const struct http_request *rq, struct http_response *rs)
{
    const struct api_ctx *ctx = &api->ctx;
    if (!ctx->store) {
        json_error(rs, 503, "the state store is not open");
        return;
    }
    char table[512] = "";
    http_query_param(rq, "table", table, sizeof table);
    struct buf versions = BUF_INIT;
    struct schema_list l = {.out = &versions, .table = table};
    char err[1024];
    if (store_schema_list(ctx->store, NULL, NULL, list_version, &l, err, sizeof err) != 0) {
        buf_fini(&versions);
        json_error(rs, 500, err);
        return;
    }
    rs->content_type = "application/json";
    buf_printf(&rs->body, "{\"count\":%zu,\"versions\":[", l.n);
    if (versions.len)
        buf_put(&rs->body, versions.p, versions.len);
    buf_puts(&rs->body, "]}\n");
    buf_fini(&versions);
}
