/* The schema history as JSON; see schema_json.h. */
#include <inttypes.h>
#include <string.h>

#include "core/json.h"
#include "schema/schema_json.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

static void put_bool(struct buf *b, bool v)
{
    if (v)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
}

void schema_version_json(struct buf *b, const struct schema_version *v)
{
    const struct cdc_table *tab = v->shape;
    char where[CDC_POS_TEXT_MAX];
    cdc_pos_format(v->pos, where, sizeof where);
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s.%s", tab->schema, tab->name);
    PUT_LIT(b, "{\"table\":");
    json_cstr(b, name.p);
    buf_fini(&name);
    buf_printf(b, ",\"version\":%u,\"position\":", v->version);
    json_cstr(b, where);
    buf_printf(b, ",\"stream\":%u,\"lsn\":%" PRIu64 ",\"index\":%" PRIu64 ",\"compatible\":",
               v->pos.stream, v->pos.lsn, v->pos.idx);
    if (v->compatible < 0)
        PUT_LIT(b, "null");
    else
        put_bool(b, v->compatible != 0);
    PUT_LIT(b, ",\"held\":");
    put_bool(b, v->held);
    buf_printf(b, ",\"recorded_us\":%" PRId64 ",\"key_unique\":", v->recorded_us);
    put_bool(b, tab->key_unique);
    PUT_LIT(b, ",\"columns\":[");
    for (uint16_t i = 0; i < tab->ncols; i++) {
        const struct cdc_column *c = &tab->cols[i];
        if (i)
            buf_putc(b, ',');
        PUT_LIT(b, "{\"name\":");
        json_cstr(b, c->name);
        PUT_LIT(b, ",\"type\":");
        json_cstr(b, c->type_name);
        PUT_LIT(b, ",\"key\":");
        put_bool(b, c->key);
        PUT_LIT(b, ",\"not_null\":");
        put_bool(b, c->not_null);
        PUT_LIT(b, ",\"has_default\":");
        put_bool(b, c->has_default);
        buf_putc(b, '}');
    }
    PUT_LIT(b, "],\"changes\":");
    buf_puts(b, v->changes && v->changes[0] ? v->changes : "[]");
    PUT_LIT(b, ",\"summary\":");
    json_cstr(b, v->summary);
    buf_putc(b, '}');
}

bool schema_table_matches(const struct schema_version *v, const char *table)
{
    if (!table || !*table)
        return true;
    const struct cdc_table *tab = v->shape;
    const char *dot = strchr(table, '.');
    if (!dot)
        return strcmp(tab->name, table) == 0;
    size_t n = (size_t)(dot - table);
    return strlen(tab->schema) == n && strncmp(tab->schema, table, n) == 0 &&
           strcmp(tab->name, dot + 1) == 0;
}
