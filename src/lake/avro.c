/* Avro binary encoding, schemas, decoding and object container files (see
 * avro.h). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/jsonread.h"
#include "lake/avro.h"
#include "util/err.h"
#include "util/mem.h"

#define AVRO_MAX_DEPTH 32

/* ---- encoding ------------------------------------------------------------ */

void avro_put_long(struct buf *b, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    buf_reserve(b, 10);
    while (u >= 0x80) {
        b->p[b->len++] = (char)(u | 0x80);
        u >>= 7;
    }
    b->p[b->len++] = (char)u;
    b->p[b->len] = '\0';
}

void avro_put_bool(struct buf *b, bool v)
{
    buf_putc(b, v ? 1 : 0);
}

void avro_put_float(struct buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    char le[4] = {(char)u, (char)(u >> 8), (char)(u >> 16), (char)(u >> 24)};
    buf_put(b, le, 4);
}

void avro_put_double(struct buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (char)(u >> (8 * i));
    buf_put(b, le, 8);
}

void avro_put_bytes(struct buf *b, const void *p, size_t n)
{
    avro_put_long(b, (int64_t)n);
    buf_put(b, p, n);
}

void avro_put_string(struct buf *b, const char *s)
{
    avro_put_bytes(b, s, strlen(s));
}

void avro_ocf_header(struct buf *out, const char *schema_json, const struct avro_kv *meta, size_t n,
                     const uint8_t sync[16])
{
    buf_put(out, "Obj\x01", 4);
    avro_put_long(out, (int64_t)n + 2); /* one block of map entries */
    avro_put_string(out, "avro.schema");
    avro_put_string(out, schema_json);
    avro_put_string(out, "avro.codec");
    avro_put_string(out, "null");
    for (size_t i = 0; i < n; i++) {
        avro_put_string(out, meta[i].key);
        avro_put_string(out, meta[i].value);
    }
    avro_put_long(out, 0);
    buf_put(out, sync, 16);
}

void avro_ocf_block(struct buf *out, const void *data, size_t len, int64_t count,
                    const uint8_t sync[16])
{
    avro_put_long(out, count);
    avro_put_long(out, (int64_t)len);
    buf_put(out, data, len);
    buf_put(out, sync, 16);
}

/* ---- schemas --------------------------------------------------------------- */

/* Named types seen so far while parsing one schema (references resolve to
 * them; the first definition owns the node). */
struct names {
    struct avro_schema **v;
    size_t n;
};

static const char *const prim_names[] = {
    [AVRO_NULL] = "null",   [AVRO_BOOLEAN] = "boolean", [AVRO_INT] = "int",
    [AVRO_LONG] = "long",   [AVRO_FLOAT] = "float",     [AVRO_DOUBLE] = "double",
    [AVRO_BYTES] = "bytes", [AVRO_STRING] = "string",
};

void avro_schema_free(struct avro_schema *s)
{
    if (!s || s->target) {
        free(s);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        avro_schema_free(s->kids[i]);
        if (s->field_names)
            free(s->field_names[i]);
    }
    free(s->kids);
    free(s->field_names);
    free(s->field_ids);
    free(s->name);
    free(s);
}

static struct avro_schema *parse_node(const struct jsonv *j, struct names *nm, int depth, char *err,
                                      size_t errlen);

static struct avro_schema *new_node(enum avro_kind k)
{
    struct avro_schema *s = xcalloc(1, sizeof *s);
    s->kind = k;
    return s;
}

static void add_kid(struct avro_schema *s, struct avro_schema *k)
{
    s->kids = xrealloc(s->kids, (s->n + 1) * sizeof *s->kids);
    s->kids[s->n++] = k;
}

static struct avro_schema *by_name(const char *name, struct names *nm)
{
    for (int k = AVRO_NULL; k <= AVRO_STRING; k++)
        if (strcmp(name, prim_names[k]) == 0)
            return new_node((enum avro_kind)k);
    for (size_t i = 0; i < nm->n; i++) {
        if (strcmp(nm->v[i]->name, name) == 0) {
            struct avro_schema *r = new_node(nm->v[i]->kind);
            r->target = nm->v[i];
            return r;
        }
    }
    return NULL;
}

static struct avro_schema *fail_node(struct avro_schema *s, char *err, size_t errlen,
                                     const char *msg)
{
    avro_schema_free(s);
    cdc_fail(err, errlen, CDC_EINVAL, "Avro schema: %s", msg);
    return NULL;
}

static void remember(struct avro_schema *s, const struct jsonv *j, struct names *nm)
{
    const char *name = jsonv_str(j, "name", NULL);
    s->name = xstrdup(name ? name : "");
    nm->v = xrealloc(nm->v, (nm->n + 1) * sizeof *nm->v);
    nm->v[nm->n++] = s;
}

static struct avro_schema *parse_object(const struct jsonv *j, struct names *nm, int depth,
                                        char *err, size_t errlen)
{
    const struct jsonv *t = jsonv_get(j, "type");
    if (!t)
        return fail_node(NULL, err, errlen, "an object without \"type\"");
    if (t->t != JSONV_STR) /* {"type": {...}} or {"type": [...]} */
        return parse_node(t, nm, depth + 1, err, errlen);
    struct avro_schema *s;
    if (strcmp(t->s, "record") == 0 || strcmp(t->s, "error") == 0) {
        s = new_node(AVRO_RECORD);
        remember(s, j, nm);
        const struct jsonv *fields = jsonv_get(j, "fields");
        if (!fields || fields->t != JSONV_ARR)
            return fail_node(s, err, errlen, "a record without \"fields\"");
        s->field_names = xcalloc(fields->n ? fields->n : 1, sizeof *s->field_names);
        s->field_ids = xcalloc(fields->n ? fields->n : 1, sizeof *s->field_ids);
        for (size_t i = 0; i < fields->n; i++) {
            const struct jsonv *f = &fields->items[i];
            const char *fname = jsonv_str(f, "name", NULL);
            const struct jsonv *ft = jsonv_get(f, "type");
            if (!fname || !ft)
                return fail_node(s, err, errlen, "a record field without name or type");
            struct avro_schema *k = parse_node(ft, nm, depth + 1, err, errlen);
            if (!k)
                return fail_node(s, NULL, 0, "");
            int64_t id = -1;
            const struct jsonv *idv = jsonv_get(f, "field-id");
            if (idv && !jsonv_int(idv, 0, INT32_MAX, &id)) {
                avro_schema_free(k);
                return fail_node(s, err, errlen, "a record field with an invalid field-id");
            }
            s->field_names[s->n] = xstrdup(fname);
            s->field_ids[s->n] = (int32_t)id;
            add_kid(s, k);
        }
        return s;
    }
    if (strcmp(t->s, "array") == 0 || strcmp(t->s, "map") == 0) {
        bool arr = t->s[0] == 'a';
        s = new_node(arr ? AVRO_ARRAY : AVRO_MAP);
        const struct jsonv *it = jsonv_get(j, arr ? "items" : "values");
        struct avro_schema *k = it ? parse_node(it, nm, depth + 1, err, errlen) : NULL;
        if (!k)
            return fail_node(s, it ? NULL : err, errlen, "an array or map without items");
        add_kid(s, k);
        return s;
    }
    if (strcmp(t->s, "fixed") == 0) {
        double size = jsonv_num(j, "size", -1);
        if (size < 0 || size > (1 << 20) || size != (double)(size_t)size)
            return fail_node(NULL, err, errlen, "a fixed type without a valid size");
        s = new_node(AVRO_FIXED);
        s->size = (size_t)size;
        remember(s, j, nm);
        return s;
    }
    if (strcmp(t->s, "enum") == 0) {
        const struct jsonv *sym = jsonv_get(j, "symbols");
        if (!sym || sym->t != JSONV_ARR || sym->n == 0)
            return fail_node(NULL, err, errlen, "an enum without symbols");
        s = new_node(AVRO_ENUM);
        s->size = sym->n;
        remember(s, j, nm);
        return s;
    }
    /* {"type":"int","logicalType":"date"} and the like: the primitive. */
    s = by_name(t->s, nm);
    return s ? s : fail_node(NULL, err, errlen, "an unknown type name");
}

static struct avro_schema *parse_node(const struct jsonv *j, struct names *nm, int depth, char *err,
                                      size_t errlen)
{
    if (depth > AVRO_MAX_DEPTH)
        return fail_node(NULL, err, errlen, "nested too deeply");
    if (j->t == JSONV_STR) {
        struct avro_schema *s = by_name(j->s, nm);
        return s ? s : fail_node(NULL, err, errlen, "an unknown type name");
    }
    if (j->t == JSONV_ARR) {
        if (j->n == 0)
            return fail_node(NULL, err, errlen, "an empty union");
        struct avro_schema *s = new_node(AVRO_UNION);
        for (size_t i = 0; i < j->n; i++) {
            struct avro_schema *k = parse_node(&j->items[i], nm, depth + 1, err, errlen);
            if (!k)
                return fail_node(s, NULL, 0, "");
            add_kid(s, k);
        }
        return s;
    }
    if (j->t == JSONV_OBJ)
        return parse_object(j, nm, depth, err, errlen);
    return fail_node(NULL, err, errlen, "expected a name, an object or a union");
}

int avro_schema_parse(const char *json, size_t len, struct avro_schema **out, char *err,
                      size_t errlen)
{
    struct jsonv j;
    *out = NULL;
    if (jsonread_parse(json, len, &j) < 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "Avro schema: not valid JSON");
    struct names nm = {NULL, 0};
    *out = parse_node(&j, &nm, 0, err, errlen);
    free(nm.v);
    jsonv_free(&j);
    return *out ? 0 : CDC_EINVAL;
}

/* ---- decoding -------------------------------------------------------------- */

static int rd_long(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    uint64_t u = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return CDC_EINVAL;
        uint8_t c = *(*p)++;
        u |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return 0;
        }
    }
    return CDC_EINVAL;
}

static int rd_bytes(const uint8_t **p, const uint8_t *end, struct avro_value *v)
{
    int64_t n;
    if (rd_long(p, end, &n) < 0 || n < 0 || n > end - *p)
        return CDC_EINVAL;
    v->p = xmalloc((size_t)n + 1);
    memcpy(v->p, *p, (size_t)n);
    v->p[n] = '\0';
    v->len = (size_t)n;
    *p += n;
    return 0;
}

static int decode(const struct avro_schema *s, const uint8_t **p, const uint8_t *end,
                  struct avro_value *v, int depth);

/* Array and map blocks: count (negative: followed by a byte size), items. */
static int decode_blocks(const struct avro_schema *s, const uint8_t **p, const uint8_t *end,
                         struct avro_value *v, int depth)
{
    size_t cap = 0;
    for (;;) {
        int64_t count, size;
        if (rd_long(p, end, &count) < 0)
            return CDC_EINVAL;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN || rd_long(p, end, &size) < 0)
                return CDC_EINVAL;
            count = -count;
        }
        /* Every item takes at least one byte, except nulls: bound them too. */
        if (count > end - *p + 4096)
            return CDC_EINVAL;
        for (int64_t i = 0; i < count; i++) {
            if (v->n == cap) {
                cap = cap ? cap * 2 : 8;
                v->items = xrealloc(v->items, cap * sizeof *v->items);
                if (s->kind == AVRO_MAP)
                    v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
            }
            struct avro_value *it = &v->items[v->n];
            memset(it, 0, sizeof *it);
            if (s->kind == AVRO_MAP) {
                struct avro_value key = {0};
                if (rd_bytes(p, end, &key) < 0)
                    return CDC_EINVAL;
                v->keys[v->n] = (char *)key.p;
            }
            v->n++;
            if (decode(s->kids[0], p, end, it, depth + 1) < 0)
                return CDC_EINVAL;
        }
    }
}

static int decode(const struct avro_schema *s, const uint8_t **p, const uint8_t *end,
                  struct avro_value *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (s->target)
        s = s->target;
    v->schema = s;
    if (depth > AVRO_MAX_DEPTH * 2)
        return CDC_EINVAL;
    switch (s->kind) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (*p >= end || **p > 1)
            return CDC_EINVAL;
        v->l = *(*p)++;
        return 0;
    case AVRO_INT:
    case AVRO_LONG:
        if (rd_long(p, end, &v->l) < 0)
            return CDC_EINVAL;
        return s->kind == AVRO_INT && (v->l < INT32_MIN || v->l > INT32_MAX) ? CDC_EINVAL : 0;
    case AVRO_ENUM:
        if (rd_long(p, end, &v->l) < 0 || v->l < 0 || (size_t)v->l >= s->size)
            return CDC_EINVAL;
        return 0;
    case AVRO_FLOAT: {
        if (end - *p < 4)
            return CDC_EINVAL;
        uint32_t u = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8 | (uint32_t)(*p)[2] << 16 |
                     (uint32_t)(*p)[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        v->d = f;
        *p += 4;
        return 0;
    }
    case AVRO_DOUBLE: {
        if (end - *p < 8)
            return CDC_EINVAL;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u |= (uint64_t)(*p)[i] << (8 * i);
        memcpy(&v->d, &u, 8);
        *p += 8;
        return 0;
    }
    case AVRO_BYTES:
    case AVRO_STRING:
        return rd_bytes(p, end, v);
    case AVRO_FIXED:
        if ((size_t)(end - *p) < s->size)
            return CDC_EINVAL;
        v->p = xmalloc(s->size + 1);
        memcpy(v->p, *p, s->size);
        v->p[s->size] = '\0';
        v->len = s->size;
        *p += s->size;
        return 0;
    case AVRO_RECORD:
        v->items = xcalloc(s->n ? s->n : 1, sizeof *v->items);
        for (size_t i = 0; i < s->n; i++) {
            v->n++;
            if (decode(s->kids[i], p, end, &v->items[i], depth + 1) < 0)
                return CDC_EINVAL;
        }
        return 0;
    case AVRO_ARRAY:
    case AVRO_MAP:
        return decode_blocks(s, p, end, v, depth);
    case AVRO_UNION:
        if (rd_long(p, end, &v->l) < 0 || v->l < 0 || (size_t)v->l >= s->n)
            return CDC_EINVAL;
        v->items = xcalloc(1, sizeof *v->items);
        v->n = 1;
        return decode(s->kids[v->l], p, end, &v->items[0], depth + 1);
    }
    return CDC_EINVAL;
}

int avro_decode(const struct avro_schema *s, const uint8_t **p, const uint8_t *end,
                struct avro_value *v)
{
    int rc = decode(s, p, end, v, 0);
    if (rc < 0)
        avro_value_fini(v);
    return rc;
}

void avro_value_fini(struct avro_value *v)
{
    for (size_t i = 0; i < v->n; i++) {
        avro_value_fini(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->p);
    memset(v, 0, sizeof *v);
}

void avro_encode(struct buf *b, const struct avro_value *v)
{
    switch (v->schema->kind) {
    case AVRO_NULL:
        break;
    case AVRO_BOOLEAN:
        avro_put_bool(b, v->l != 0);
        break;
    case AVRO_INT:
    case AVRO_LONG:
    case AVRO_ENUM:
        avro_put_long(b, v->l);
        break;
    case AVRO_FLOAT:
        avro_put_float(b, (float)v->d);
        break;
    case AVRO_DOUBLE:
        avro_put_double(b, v->d);
        break;
    case AVRO_BYTES:
    case AVRO_STRING:
        avro_put_bytes(b, v->p, v->len);
        break;
    case AVRO_FIXED:
        buf_put(b, v->p, v->len);
        break;
    case AVRO_RECORD:
        for (size_t i = 0; i < v->n; i++)
            avro_encode(b, &v->items[i]);
        break;
    case AVRO_ARRAY:
    case AVRO_MAP:
        if (v->n) {
            avro_put_long(b, (int64_t)v->n);
            for (size_t i = 0; i < v->n; i++) {
                if (v->keys)
                    avro_put_string(b, v->keys[i]);
                avro_encode(b, &v->items[i]);
            }
        }
        avro_put_long(b, 0);
        break;
    case AVRO_UNION:
        avro_put_long(b, v->l);
        avro_encode(b, &v->items[0]);
        break;
    }
}

const struct avro_value *avro_get(const struct avro_value *rec, const char *field)
{
    if (!rec || !rec->schema || rec->schema->kind != AVRO_RECORD)
        return NULL;
    for (size_t i = 0; i < rec->n && i < rec->schema->n; i++) {
        if (strcmp(rec->schema->field_names[i], field) != 0)
            continue;
        const struct avro_value *v = &rec->items[i];
        while (v->schema->kind == AVRO_UNION)
            v = &v->items[0];
        return v->schema->kind == AVRO_NULL ? NULL : v;
    }
    return NULL;
}

int64_t avro_get_long(const struct avro_value *rec, const char *field, int64_t dflt)
{
    const struct avro_value *v = avro_get(rec, field);
    if (!v || (v->schema->kind != AVRO_INT && v->schema->kind != AVRO_LONG &&
               v->schema->kind != AVRO_BOOLEAN))
        return dflt;
    return v->l;
}

char *avro_get_string(const struct avro_value *rec, const char *field)
{
    const struct avro_value *v = avro_get(rec, field);
    if (!v || (v->schema->kind != AVRO_STRING && v->schema->kind != AVRO_BYTES))
        return NULL;
    return xstrndup((const char *)v->p, v->len);
}

/* ---- container files ------------------------------------------------------- */

static int inflate_raw(const uint8_t *src, size_t n, struct buf *dst)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return CDC_EINVAL;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    int rc;
    do {
        buf_reserve(dst, 65536);
        z.next_out = (Bytef *)dst->p + dst->len;
        z.avail_out = 65536;
        rc = inflate(&z, Z_NO_FLUSH);
        dst->len = (size_t)((char *)z.next_out - dst->p);
        if (dst->len > ((size_t)64 << 20))
            rc = Z_DATA_ERROR; /* a manifest block is never this large */
    } while (rc == Z_OK);
    inflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : CDC_EINVAL;
}

static int ocf_fail(struct avro_ocf *f, char *err, size_t errlen, const char *what)
{
    avro_ocf_fini(f);
    return cdc_fail(err, errlen, CDC_EINVAL, "Avro file: %s", what);
}

int avro_ocf_read(const uint8_t *data, size_t len, struct avro_ocf *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    const uint8_t *p = data, *end = data + len;
    if (len < 4 || memcmp(p, "Obj\x01", 4) != 0)
        return ocf_fail(f, err, errlen, "no Obj\\1 magic");
    p += 4;
    for (;;) { /* the metadata map */
        int64_t count, size;
        if (rd_long(&p, end, &count) < 0)
            return ocf_fail(f, err, errlen, "truncated header");
        if (count == 0)
            break;
        if (count < 0 && (count == INT64_MIN || rd_long(&p, end, &size) < 0))
            return ocf_fail(f, err, errlen, "truncated header");
        count = count < 0 ? -count : count;
        if (count > end - p)
            return ocf_fail(f, err, errlen, "bad header map");
        for (int64_t i = 0; i < count; i++) {
            struct avro_value k = {0}, v = {0};
            if (rd_bytes(&p, end, &k) < 0 || rd_bytes(&p, end, &v) < 0) {
                free(k.p);
                return ocf_fail(f, err, errlen, "truncated header entry");
            }
            f->keys = xrealloc(f->keys, (f->nmeta + 1) * sizeof *f->keys);
            f->values = xrealloc(f->values, (f->nmeta + 1) * sizeof *f->values);
            f->keys[f->nmeta] = (char *)k.p;
            f->values[f->nmeta++] = (char *)v.p;
        }
    }
    if (end - p < 16)
        return ocf_fail(f, err, errlen, "no sync marker");
    memcpy(f->sync, p, 16);
    p += 16;
    const char *schema = avro_ocf_meta(f, "avro.schema");
    const char *codec = avro_ocf_meta(f, "avro.codec");
    if (!schema)
        return ocf_fail(f, err, errlen, "no avro.schema in the header");
    bool deflate = codec && strcmp(codec, "deflate") == 0;
    if (codec && !deflate && strcmp(codec, "null") != 0)
        return ocf_fail(f, err, errlen, "unsupported avro.codec");
    f->schema_json = xstrdup(schema);
    if (avro_schema_parse(schema, strlen(schema), &f->schema, err, errlen) < 0) {
        avro_ocf_fini(f);
        return CDC_EINVAL;
    }
    size_t cap = 0;
    struct buf raw = BUF_INIT;
    while (p < end) {
        int64_t count, size;
        if (rd_long(&p, end, &count) < 0 || rd_long(&p, end, &size) < 0 || count < 0 || size < 0 ||
            size > end - p || end - p - size < 16) {
            buf_fini(&raw);
            return ocf_fail(f, err, errlen, "truncated block");
        }
        const uint8_t *bp = p, *bend = p + size;
        if (deflate) {
            buf_reset(&raw);
            if (inflate_raw(p, (size_t)size, &raw) < 0) {
                buf_fini(&raw);
                return ocf_fail(f, err, errlen, "bad deflate block");
            }
            bp = (const uint8_t *)raw.p;
            bend = bp + raw.len;
        }
        if (count > (bend - bp) + 4096) {
            buf_fini(&raw);
            return ocf_fail(f, err, errlen, "block count larger than the block");
        }
        for (int64_t i = 0; i < count; i++) {
            if (f->nrecords == cap) {
                cap = cap ? cap * 2 : 16;
                f->records = xrealloc(f->records, cap * sizeof *f->records);
            }
            if (avro_decode(f->schema, &bp, bend, &f->records[f->nrecords]) < 0) {
                buf_fini(&raw);
                return ocf_fail(f, err, errlen, "a record does not match the schema");
            }
            f->nrecords++;
        }
        if (bp != bend) {
            buf_fini(&raw);
            return ocf_fail(f, err, errlen, "bytes left over in a block");
        }
        p += size;
        if (memcmp(p, f->sync, 16) != 0) {
            buf_fini(&raw);
            return ocf_fail(f, err, errlen, "sync marker mismatch");
        }
        p += 16;
        f->nblocks++;
    }
    buf_fini(&raw);
    return 0;
}

void avro_ocf_fini(struct avro_ocf *f)
{
    for (size_t i = 0; i < f->nrecords; i++)
        avro_value_fini(&f->records[i]);
    free(f->records);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->keys[i]);
        free(f->values[i]);
    }
    free(f->keys);
    free(f->values);
    avro_schema_free(f->schema);
    free(f->schema_json);
    memset(f, 0, sizeof *f);
}

const char *avro_ocf_meta(const struct avro_ocf *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->keys[i], key) == 0)
            return f->values[i];
    return NULL;
}
