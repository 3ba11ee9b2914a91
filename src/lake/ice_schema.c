/* Iceberg schemas and their JSON form (see ice_schema.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lake/ice_schema.h"
#include "util/err.h"
#include "util/mem.h"

struct ice_schema *ice_schema_new(int32_t schema_id)
{
    struct ice_schema *sc = xcalloc(1, sizeof *sc);
    sc->schema_id = schema_id;
    return sc;
}

void ice_schema_free(struct ice_schema *sc)
{
    if (!sc)
        return;
    for (uint32_t i = 0; i < sc->nfields; i++)
        free(sc->fields[i].name);
    free(sc->fields);
    free(sc->ident_ids);
    free(sc);
}

struct ice_schema *ice_schema_copy(const struct ice_schema *sc)
{
    struct ice_schema *c = ice_schema_new(sc->schema_id);
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const struct ice_field *f = &sc->fields[i];
        struct ice_field *g = ice_schema_add(c, f->id, f->name, f->type, f->required);
        g->precision = f->precision;
        g->scale = f->scale;
        g->len = f->len;
    }
    for (uint32_t i = 0; i < sc->nident; i++)
        ice_schema_add_identifier(c, sc->ident_ids[i]);
    return c;
}

struct ice_field *ice_schema_add(struct ice_schema *sc, int32_t id, const char *name,
                                 enum ice_type type, bool required)
{
    sc->fields = xrealloc(sc->fields, (sc->nfields + 1) * sizeof *sc->fields);
    struct ice_field *f = &sc->fields[sc->nfields++];
    memset(f, 0, sizeof *f);
    f->id = id;
    f->name = xstrdup(name);
    f->type = type;
    f->required = required;
    if (type == ICE_UUID)
        f->len = 16;
    return f;
}

void ice_schema_add_identifier(struct ice_schema *sc, int32_t field_id)
{
    sc->ident_ids = xrealloc(sc->ident_ids, (sc->nident + 1) * sizeof *sc->ident_ids);
    sc->ident_ids[sc->nident++] = field_id;
}

int ice_schema_index(const struct ice_schema *sc, int32_t id)
{
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (sc->fields[i].id == id)
            return (int)i;
    return -1;
}

const struct ice_field *ice_schema_find(const struct ice_schema *sc, int32_t id)
{
    int i = ice_schema_index(sc, id);
    return i < 0 ? NULL : &sc->fields[i];
}

int32_t ice_schema_max_id(const struct ice_schema *sc)
{
    int32_t m = 0;
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (sc->fields[i].id > m)
            m = sc->fields[i].id;
    return m;
}

static const char *const type_names[] = {
    [ICE_BOOLEAN] = "boolean",
    [ICE_INT] = "int",
    [ICE_LONG] = "long",
    [ICE_FLOAT] = "float",
    [ICE_DOUBLE] = "double",
    [ICE_DATE] = "date",
    [ICE_TIME] = "time",
    [ICE_TIMESTAMP] = "timestamp",
    [ICE_TIMESTAMPTZ] = "timestamptz",
    [ICE_STRING] = "string",
    [ICE_UUID] = "uuid",
    [ICE_BINARY] = "binary",
};

void ice_type_format(const struct ice_field *f, char *out, size_t len)
{
    if (f->type == ICE_DECIMAL)
        snprintf(out, len, "decimal(%u,%u)", f->precision, f->scale);
    else if (f->type == ICE_FIXED)
        snprintf(out, len, "fixed[%u]", f->len);
    else if (f->type >= ICE_BOOLEAN && f->type <= ICE_FIXED && type_names[f->type])
        snprintf(out, len, "%s", type_names[f->type]);
    else
        snprintf(out, len, "?");
}

int ice_type_parse(const char *s, struct ice_field *f)
{
    unsigned p, sc, n;
    char tail;
    if (sscanf(s, "decimal(%u,%u)%c", &p, &sc, &tail) == 2 ||
        sscanf(s, "decimal(%u, %u)%c", &p, &sc, &tail) == 2) {
        if (p < 1 || p > 38 || sc > p)
            return CDC_EINVAL;
        f->type = ICE_DECIMAL;
        f->precision = (uint8_t)p;
        f->scale = (uint8_t)sc;
        return 0;
    }
    if (sscanf(s, "fixed[%u]%c", &n, &tail) == 1) {
        if (n < 1 || n > 1 << 20)
            return CDC_EINVAL;
        f->type = ICE_FIXED;
        f->len = n;
        return 0;
    }
    for (int t = ICE_BOOLEAN; t <= ICE_BINARY; t++) {
        if (type_names[t] && strcmp(s, type_names[t]) == 0) {
            f->type = (enum ice_type)t;
            f->len = t == ICE_UUID ? 16 : 0;
            return 0;
        }
    }
    return CDC_EINVAL;
}

void ice_schema_json(struct buf *b, const struct ice_schema *sc)
{
    buf_printf(b, "{\"type\":\"struct\",\"schema-id\":%d,\"identifier-field-ids\":[",
               sc->schema_id);
    for (uint32_t i = 0; i < sc->nident; i++)
        buf_printf(b, "%s%d", i ? "," : "", sc->ident_ids[i]);
    buf_puts(b, "],\"fields\":[");
    for (uint32_t i = 0; i < sc->nfields; i++) {
        const struct ice_field *f = &sc->fields[i];
        char t[40];
        ice_type_format(f, t, sizeof t);
        buf_printf(b, "%s{\"id\":%d,\"name\":", i ? "," : "", f->id);
        json_string(b, f->name, strlen(f->name));
        buf_printf(b, ",\"required\":%s,\"type\":\"%s\"}", f->required ? "true" : "false", t);
    }
    buf_puts(b, "]}");
}

int ice_schema_from_json(const struct jsonv *v, struct ice_schema **out, char *err, size_t errlen)
{
    *out = NULL;
    int64_t id;
    if (!v || v->t != JSONV_OBJ)
        return cdc_fail(err, errlen, CDC_EINVAL, "schema: expected an object");
    if (!jsonv_int(jsonv_get(v, "schema-id"), 0, INT32_MAX, &id))
        id = 0;
    const struct jsonv *fields = jsonv_get(v, "fields");
    if (!fields || fields->t != JSONV_ARR)
        return cdc_fail(err, errlen, CDC_EINVAL, "schema %d: \"fields\" is not an array", (int)id);
    struct ice_schema *sc = ice_schema_new((int32_t)id);
    for (size_t i = 0; i < fields->n; i++) {
        const struct jsonv *f = &fields->items[i];
        int64_t fid;
        const char *name = jsonv_str(f, "name", NULL);
        const struct jsonv *type = jsonv_get(f, "type");
        const struct jsonv *req = jsonv_get(f, "required");
        struct ice_field tmp = {0};
        if (!jsonv_int(jsonv_get(f, "id"), 1, INT32_MAX, &fid) || !name || !type ||
            type->t != JSONV_STR || ice_type_parse(type->s, &tmp) < 0 ||
            (req && req->t != JSONV_BOOL)) {
            ice_schema_free(sc);
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "schema %d: field %zu: expected id, name, required and a primitive "
                            "type",
                            (int)id, i + 1);
        }
        struct ice_field *g = ice_schema_add(sc, (int32_t)fid, name, tmp.type, req && req->b);
        g->precision = tmp.precision;
        g->scale = tmp.scale;
        g->len = tmp.len;
    }
    const struct jsonv *ids = jsonv_get(v, "identifier-field-ids");
    for (size_t i = 0; ids && ids->t == JSONV_ARR && i < ids->n; i++) {
        int64_t fid;
        if (!jsonv_int(&ids->items[i], 1, INT32_MAX, &fid) || !ice_schema_find(sc, (int32_t)fid)) {
            ice_schema_free(sc);
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "schema %d: identifier-field-ids names no field", (int)id);
        }
        ice_schema_add_identifier(sc, (int32_t)fid);
    }
    *out = sc;
    return 0;
}
