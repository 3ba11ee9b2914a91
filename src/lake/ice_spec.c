/* Iceberg partition specs and transforms (see ice_spec.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/valtext.h"
#include "lake/ice_spec.h"
#include "util/err.h"
#include "util/mem.h"

struct ice_spec *ice_spec_new(int32_t spec_id)
{
    struct ice_spec *sp = xcalloc(1, sizeof *sp);
    sp->spec_id = spec_id;
    return sp;
}

void ice_spec_free(struct ice_spec *sp)
{
    if (!sp)
        return;
    for (uint32_t i = 0; i < sp->n; i++)
        free(sp->fields[i].name);
    free(sp->fields);
    free(sp);
}

static void add_field(struct ice_spec *sp, int32_t source_id, int32_t field_id, const char *name,
                      enum ice_transform t, int32_t buckets)
{
    sp->fields = xrealloc(sp->fields, (sp->n + 1) * sizeof *sp->fields);
    struct ice_pfield *f = &sp->fields[sp->n++];
    f->source_id = source_id;
    f->field_id = field_id;
    f->name = xstrdup(name);
    f->transform = t;
    f->buckets = buckets;
}

struct ice_spec *ice_spec_copy(const struct ice_spec *sp)
{
    struct ice_spec *c = ice_spec_new(sp->spec_id);
    for (uint32_t i = 0; i < sp->n; i++) {
        const struct ice_pfield *f = &sp->fields[i];
        add_field(c, f->source_id, f->field_id, f->name, f->transform, f->buckets);
    }
    return c;
}

int32_t ice_spec_max_field_id(const struct ice_spec *sp)
{
    int32_t m = 999; /* Iceberg: partition field ids start at 1000 */
    for (uint32_t i = 0; i < sp->n; i++)
        if (sp->fields[i].field_id > m)
            m = sp->fields[i].field_id;
    return m;
}

static const char *const tnames[] = {
    [ICE_T_IDENTITY] = "identity", [ICE_T_YEAR] = "year", [ICE_T_MONTH] = "month",
    [ICE_T_DAY] = "day",           [ICE_T_HOUR] = "hour", [ICE_T_BUCKET] = "bucket",
};

static void transform_str(const struct ice_pfield *f, char *out, size_t len)
{
    if (f->transform == ICE_T_BUCKET)
        snprintf(out, len, "bucket[%d]", f->buckets);
    else
        snprintf(out, len, "%s", tnames[f->transform]);
}

void ice_spec_fields_json(struct buf *b, const struct ice_spec *sp)
{
    buf_putc(b, '[');
    for (uint32_t i = 0; i < sp->n; i++) {
        const struct ice_pfield *f = &sp->fields[i];
        char t[32];
        transform_str(f, t, sizeof t);
        buf_printf(b, "%s{\"name\":", i ? "," : "");
        json_string(b, f->name, strlen(f->name));
        buf_printf(b, ",\"transform\":\"%s\",\"source-id\":%d,\"field-id\":%d}", t, f->source_id,
                   f->field_id);
    }
    buf_putc(b, ']');
}

void ice_spec_json(struct buf *b, const struct ice_spec *sp)
{
    buf_printf(b, "{\"spec-id\":%d,\"fields\":", sp->spec_id);
    ice_spec_fields_json(b, sp);
    buf_putc(b, '}');
}

static int parse_transform(const char *t, enum ice_transform *out, int32_t *buckets)
{
    int n;
    char tail;
    if (sscanf(t, "bucket[%d]%c", &n, &tail) == 1 && n > 0) {
        *out = ICE_T_BUCKET;
        *buckets = n;
        return 0;
    }
    for (int i = ICE_T_IDENTITY; i <= ICE_T_HOUR; i++) {
        if (strcmp(t, tnames[i]) == 0) {
            *out = (enum ice_transform)i;
            *buckets = 0;
            return 0;
        }
    }
    return CDC_EINVAL;
}

int ice_spec_from_json(const struct jsonv *v, struct ice_spec **out, char *err, size_t errlen)
{
    *out = NULL;
    const struct jsonv *fields = jsonv_get(v, "fields");
    if (!v || v->t != JSONV_OBJ || !fields || fields->t != JSONV_ARR)
        return cdc_fail(err, errlen, CDC_EINVAL, "partition spec: expected spec-id and fields");
    int64_t id = 0;
    const struct jsonv *idv = jsonv_get(v, "spec-id");
    if (idv && !jsonv_int(idv, 0, INT32_MAX, &id))
        return cdc_fail(err, errlen, CDC_EINVAL, "partition spec: spec-id is not a valid id");
    struct ice_spec *sp = ice_spec_new((int32_t)id);
    for (size_t i = 0; i < fields->n; i++) {
        const struct jsonv *f = &fields->items[i];
        const char *name = jsonv_str(f, "name", NULL), *t = jsonv_str(f, "transform", NULL);
        enum ice_transform tr;
        int32_t buckets;
        int64_t src, fid;
        if (!name || !t || parse_transform(t, &tr, &buckets) < 0 ||
            !jsonv_int(jsonv_get(f, "source-id"), 1, INT32_MAX, &src) ||
            !jsonv_int(jsonv_get(f, "field-id"), 1, INT32_MAX, &fid)) {
            ice_spec_free(sp);
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "partition spec %d: field %zu: unsupported or incomplete", (int)id,
                            i + 1);
        }
        add_field(sp, (int32_t)src, (int32_t)fid, name, tr, buckets);
    }
    *out = sp;
    return 0;
}

static bool transform_fits(enum ice_transform t, enum ice_type ty)
{
    switch (t) {
    case ICE_T_IDENTITY:
        return ty == ICE_INT || ty == ICE_LONG || ty == ICE_DATE || ty == ICE_STRING;
    case ICE_T_YEAR:
    case ICE_T_MONTH:
    case ICE_T_DAY:
        return ty == ICE_DATE || ty == ICE_TIMESTAMP || ty == ICE_TIMESTAMPTZ;
    case ICE_T_HOUR:
        return ty == ICE_TIMESTAMP || ty == ICE_TIMESTAMPTZ;
    case ICE_T_BUCKET:
        return ty == ICE_INT || ty == ICE_LONG || ty == ICE_DATE || ty == ICE_STRING;
    }
    return false;
}

int ice_spec_check(const struct ice_spec *sp, const struct ice_schema *sc, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < sp->n; i++) {
        const struct ice_field *src = ice_schema_find(sc, sp->fields[i].source_id);
        if (!src)
            return cdc_fail(err, errlen, CDC_EINVAL, "partition field %s: no source column %d",
                            sp->fields[i].name, sp->fields[i].source_id);
        if (!transform_fits(sp->fields[i].transform, src->type))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "partition field %s: transform %s does not apply to column %s",
                            sp->fields[i].name, tnames[sp->fields[i].transform], src->name);
    }
    return 0;
}

/* One entry of a partition_by list: "col", "day(col)", "bucket(16, col)". */
static int parse_entry(const char *e, const struct ice_schema *sc, struct ice_spec *sp,
                       int32_t field_id, char *err, size_t errlen)
{
    char fn[32] = "", col[256] = "";
    int n = 0;
    enum ice_transform t = ICE_T_IDENTITY;
    if (sscanf(e, " bucket ( %d , %255[^) ] )", &n, col) == 2 && n > 0) {
        t = ICE_T_BUCKET;
    } else if (sscanf(e, " %31[a-z] ( %255[^) ] )", fn, col) == 2) {
        int32_t unused;
        if (parse_transform(fn, &t, &unused) < 0 || t == ICE_T_BUCKET)
            return cdc_fail(err, errlen, CDC_EINVAL, "partition_by: unknown transform in \"%s\"",
                            e);
    } else if (sscanf(e, "%255s", col) != 1) {
        return cdc_fail(err, errlen, CDC_EINVAL, "partition_by: cannot read \"%s\"", e);
    }
    const struct ice_field *src = NULL;
    for (uint32_t i = 0; i < sc->nfields && !src; i++)
        if (strcmp(sc->fields[i].name, col) == 0)
            src = &sc->fields[i];
    if (!src)
        return cdc_fail(err, errlen, CDC_EINVAL, "partition_by: no column \"%s\"", col);
    if (!transform_fits(t, src->type))
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "partition_by: transform %s does not apply to column %s", tnames[t], col);
    char name[300];
    if (t == ICE_T_IDENTITY)
        snprintf(name, sizeof name, "%s", col);
    else if (t == ICE_T_BUCKET)
        snprintf(name, sizeof name, "%s_bucket", col);
    else
        snprintf(name, sizeof name, "%s_%s", col, tnames[t]);
    add_field(sp, src->id, field_id, name, t, n);
    return 0;
}

int ice_spec_parse(const char *text, const struct ice_schema *sc, int32_t spec_id,
                   int32_t first_field_id, struct ice_spec **out, char *err, size_t errlen)
{
    struct ice_spec *sp = ice_spec_new(spec_id);
    const char *p = text ? text : "";
    while (*p) {
        /* an entry ends at a comma outside parentheses */
        const char *q = p;
        int depth = 0;
        while (*q && (*q != ',' || depth > 0)) {
            depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
            q++;
        }
        char e[512];
        size_t len = (size_t)(q - p) < sizeof e - 1 ? (size_t)(q - p) : sizeof e - 1;
        memcpy(e, p, len);
        e[len] = '\0';
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            blank &= isspace((unsigned char)e[i]) != 0;
        if (!blank && parse_entry(e, sc, sp, first_field_id + (int32_t)sp->n, err, errlen) < 0) {
            ice_spec_free(sp);
            return CDC_EINVAL;
        }
        p = *q ? q + 1 : q;
    }
    *out = sp;
    return 0;
}

const char *ice_pfield_avro_type(const struct ice_pfield *pf, const struct ice_schema *sc)
{
    const struct ice_field *src = ice_schema_find(sc, pf->source_id);
    if (pf->transform == ICE_T_IDENTITY && src) {
        if (src->type == ICE_STRING)
            return "string";
        if (src->type == ICE_LONG)
            return "long";
    }
    return "int";
}

uint32_t ice_murmur3(const void *data, size_t n)
{
    const uint8_t *p = data;
    const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
    uint32_t h = 0, k;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
            (uint32_t)p[i + 3] << 24;
        k *= c1;
        k = (k << 15) | (k >> 17);
        k *= c2;
        h ^= k;
        h = (h << 13) | (h >> 19);
        h = h * 5 + 0xe6546b64;
    }
    k = 0;
    switch (n & 3) {
    case 3:
        k ^= (uint32_t)p[i + 2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)p[i + 1] << 8;
        /* fall through */
    case 1:
        k ^= p[i];
        k *= c1;
        k = (k << 15) | (k >> 17);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)n;
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

int ice_partition_value(const struct ice_pfield *pf, const struct ice_field *src, const char *s,
                        size_t n, struct ice_pvalue *out)
{
    memset(out, 0, sizeof *out);
    if (!s) {
        out->null = true;
        return 0;
    }
    int64_t v = 0, micros = 0;
    int32_t i32;
    bool is_time = false;
    switch (src->type) {
    case ICE_INT:
        if (valtext_i32(s, n, &i32) < 0)
            return CDC_EINVAL;
        v = i32;
        break;
    case ICE_LONG:
        if (valtext_i64(s, n, &v) < 0)
            return CDC_EINVAL;
        break;
    case ICE_DATE:
        if (valtext_date(s, n, &i32) < 0)
            return CDC_EINVAL;
        v = i32;
        micros = (int64_t)i32 * 86400000000LL;
        is_time = true;
        break;
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        if (valtext_timestamp(s, n, &micros) < 0)
            return CDC_EINVAL;
        is_time = true;
        break;
    case ICE_STRING:
        break;
    default:
        return CDC_EINVAL;
    }
    switch (pf->transform) {
    case ICE_T_IDENTITY:
        if (src->type == ICE_STRING) {
            out->is_str = true;
            out->s = xstrndup(s, n);
        } else {
            out->l = v;
        }
        return 0;
    case ICE_T_BUCKET: {
        /* int, long and date hash as 8-byte little-endian longs; strings
         * hash their UTF-8 bytes. */
        uint32_t h;
        if (src->type == ICE_STRING) {
            h = ice_murmur3(s, n);
        } else {
            uint8_t le[8];
            for (int i = 0; i < 8; i++)
                le[i] = (uint8_t)((uint64_t)v >> (8 * i));
            h = ice_murmur3(le, 8);
        }
        out->l = (int64_t)((h & 0x7fffffffu) % (uint32_t)pf->buckets);
        return 0;
    }
    case ICE_T_YEAR:
    case ICE_T_MONTH:
    case ICE_T_DAY:
    case ICE_T_HOUR: {
        if (!is_time)
            return CDC_EINVAL;
        int64_t days = valtext_floor_div(micros, 86400000000LL), y;
        int m, d;
        valtext_civil(days, &y, &m, &d);
        if (pf->transform == ICE_T_DAY)
            out->l = days;
        else if (pf->transform == ICE_T_HOUR)
            out->l = valtext_floor_div(micros, 3600000000LL);
        else if (pf->transform == ICE_T_MONTH)
            out->l = (y - 1970) * 12 + (m - 1);
        else
            out->l = y - 1970;
        return 0;
    }
    }
    return CDC_EINVAL;
}

void ice_pvalue_fini(struct ice_pvalue *v)
{
    free(v->s);
    memset(v, 0, sizeof *v);
}

bool ice_pvalue_equal(const struct ice_pvalue *a, const struct ice_pvalue *b)
{
    if (a->null || b->null)
        return a->null == b->null;
    if (a->is_str != b->is_str)
        return false;
    return a->is_str ? strcmp(a->s, b->s) == 0 : a->l == b->l;
}
