/* Connect schemas: each function writes the description of one part of the
 * payload core/json.c produces, in the payload's field order. */
#include <string.h>

#include "core/json.h"
#include "transport/kafka/kschema.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

static bool name_is(const char *s, const char *const *names)
{
    for (; s && *names; names++)
        if (strcmp(s, *names) == 0)
            return true;
    return false;
}

void kschema_column_type(const struct cdc_column *col, const char **type, const char **name)
{
    static const char *const int8[] = {"tinyint", NULL};
    static const char *const int16[] = {"smallint", "int2", NULL};
    static const char *const int32[] = {"integer", "int", "int4", "mediumint", NULL};
    static const char *const float32[] = {"real", "float4", "float", NULL};
    *name = NULL;
    switch (col->type) {
    case CDC_T_INT:
        *type = name_is(col->type_name, int8)    ? "int8"
                : name_is(col->type_name, int16) ? "int16"
                : name_is(col->type_name, int32) ? "int32"
                                                 : "int64";
        break;
    case CDC_T_FLOAT:
        *type = name_is(col->type_name, float32) ? "float32" : "float64";
        break;
    case CDC_T_BOOL:
        *type = "boolean";
        break;
    case CDC_T_BYTES:
        *type = "bytes";
        break;
    case CDC_T_UUID:
        *type = "string";
        *name = "io.debezium.data.Uuid";
        break;
    case CDC_T_JSON:
        *type = "string";
        *name = "io.debezium.data.Json";
        break;
    default:
        *type = "string";
        break;
    }
}

/* {"type":T,"optional":O,["name":N,"version":1,]"field":F} */
static void put_field(struct buf *b, const char *type, bool optional, const char *name,
                      const char *field)
{
    PUT_LIT(b, "{\"type\":\"");
    buf_puts(b, type);
    buf_puts(b, optional ? "\",\"optional\":true," : "\",\"optional\":false,");
    if (name) {
        PUT_LIT(b, "\"name\":");
        json_string(b, name, strlen(name));
        PUT_LIT(b, ",\"version\":1,");
    }
    PUT_LIT(b, "\"field\":");
    json_string(b, field, strlen(field));
    buf_putc(b, '}');
}

/* The column fields of a row or key struct. */
static void put_columns(struct buf *b, const struct cdc_table *tab, bool keys_only)
{
    bool first = true;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        const struct cdc_column *col = &tab->cols[i];
        if (keys_only && !col->key)
            continue;
        const char *type, *name;
        kschema_column_type(col, &type, &name);
        if (!first)
            buf_putc(b, ',');
        first = false;
        put_field(b, type, !(col->key && tab->key_unique), name, col->name);
    }
}

/* The schema name of a part of tab's records: "<base>.<suffix>". */
static void put_name(struct buf *b, const struct cdc_table *tab, const char *suffix)
{
    struct buf n = BUF_INIT;
    buf_puts(&n, tab->topic ? tab->topic : "");
    buf_putc(&n, '.');
    buf_puts(&n, suffix);
    json_string(b, n.p, n.len);
    buf_fini(&n);
}

void kschema_key(struct buf *b, const struct cdc_table *tab)
{
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_columns(b, tab, true);
    PUT_LIT(b, "],\"optional\":false,\"name\":");
    put_name(b, tab, "Key");
    buf_putc(b, '}');
}

static void put_row(struct buf *b, const struct cdc_table *tab, const char *field)
{
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_columns(b, tab, false);
    PUT_LIT(b, "],\"optional\":true,\"name\":");
    put_name(b, tab, "Value");
    PUT_LIT(b, ",\"field\":");
    json_string(b, field, strlen(field));
    buf_putc(b, '}');
}

/* The source block; schema and table are null only for messages. */
static void put_source(struct buf *b, const char *connector, bool has_table)
{
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_field(b, "string", false, NULL, "version");
    buf_putc(b, ',');
    put_field(b, "string", false, NULL, "connector");
    buf_putc(b, ',');
    put_field(b, "string", false, NULL, "name");
    buf_putc(b, ',');
    put_field(b, "int64", false, NULL, "ts_ms");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "ts_us");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "ts_ns");
    PUT_LIT(b, ",{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\","
               "\"version\":1,\"parameters\":{\"allowed\":\"true,last,false,incremental\"},"
               "\"default\":\"false\",\"field\":\"snapshot\"},");
    put_field(b, "string", false, NULL, "db");
    buf_putc(b, ',');
    put_field(b, "string", true, NULL, "sequence");
    buf_putc(b, ',');
    put_field(b, "string", !has_table, NULL, "schema");
    buf_putc(b, ',');
    put_field(b, "string", !has_table, NULL, "table");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "txId");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "lsn");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "xmin");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "schema_version"); /* cdc's schema history */
    PUT_LIT(b, "],\"optional\":false,\"name\":");
    struct buf n = BUF_INIT;
    buf_printf(&n, "io.debezium.connector.%s.Source", connector ? connector : "");
    json_string(b, n.p, n.len);
    buf_fini(&n);
    PUT_LIT(b, ",\"field\":\"source\"}");
}

static void put_times(struct buf *b)
{
    put_field(b, "int64", true, NULL, "ts_ms");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "ts_us");
    buf_putc(b, ',');
    put_field(b, "int64", true, NULL, "ts_ns");
}

static void put_transaction(struct buf *b)
{
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_field(b, "string", false, NULL, "id");
    buf_putc(b, ',');
    put_field(b, "int64", false, NULL, "total_order");
    buf_putc(b, ',');
    put_field(b, "int64", false, NULL, "data_collection_order");
    PUT_LIT(b, "],\"optional\":true,\"name\":\"event.block\",\"version\":1,"
               "\"field\":\"transaction\"}");
}

/* The truncate block (docs/envelope.md): only truncates carry it. */
static void put_truncate(struct buf *b)
{
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_field(b, "boolean", false, NULL, "cascade");
    buf_putc(b, ',');
    put_field(b, "boolean", false, NULL, "restart_identity");
    PUT_LIT(b, ",{\"type\":\"array\",\"items\":{\"type\":\"struct\",\"fields\":[");
    put_field(b, "string", false, NULL, "schema");
    buf_putc(b, ',');
    put_field(b, "string", false, NULL, "table");
    PUT_LIT(b, "],\"optional\":false},\"optional\":false,\"field\":\"tables\"}],"
               "\"optional\":true,\"field\":\"truncate\"}");
}

void kschema_envelope(struct buf *b, const struct cdc_table *tab, const char *connector)
{
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_row(b, tab, "before");
    buf_putc(b, ',');
    put_row(b, tab, "after");
    buf_putc(b, ',');
    put_source(b, connector, true);
    buf_putc(b, ',');
    put_field(b, "string", false, NULL, "op");
    buf_putc(b, ',');
    put_times(b);
    buf_putc(b, ',');
    put_truncate(b);
    buf_putc(b, ',');
    put_transaction(b);
    PUT_LIT(b, "],\"optional\":false,\"name\":");
    put_name(b, tab, "Envelope");
    PUT_LIT(b, ",\"version\":2}");
}

void kschema_message(struct buf *b, const char *connector)
{
    struct buf n = BUF_INIT;
    PUT_LIT(b, "{\"type\":\"struct\",\"fields\":[");
    put_field(b, "string", false, NULL, "op");
    buf_putc(b, ',');
    put_times(b);
    buf_putc(b, ',');
    put_source(b, connector, false);
    PUT_LIT(b, ",{\"type\":\"struct\",\"fields\":[");
    put_field(b, "string", true, NULL, "prefix");
    buf_putc(b, ',');
    put_field(b, "bytes", true, NULL, "content");
    PUT_LIT(b, "],\"optional\":true,\"name\":");
    buf_printf(&n, "io.debezium.connector.%s.Message", connector ? connector : "");
    json_string(b, n.p, n.len);
    PUT_LIT(b, ",\"field\":\"message\"},");
    put_transaction(b);
    PUT_LIT(b, "],\"optional\":false,\"name\":");
    buf_reset(&n);
    buf_printf(&n, "io.debezium.connector.%s.MessageValue", connector ? connector : "");
    json_string(b, n.p, n.len);
    PUT_LIT(b, "}");
    buf_fini(&n);
}
