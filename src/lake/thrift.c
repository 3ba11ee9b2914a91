/* Thrift compact protocol encoder and generic decoder (see thrift.h). */
#include <stdlib.h>
#include <string.h>

#include "lake/thrift.h"
#include "util/err.h"
#include "util/mem.h"

void thrift_put_uvarint(struct buf *b, uint64_t v)
{
    buf_reserve(b, 10);
    while (v >= 0x80) {
        b->p[b->len++] = (char)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (char)v;
    b->p[b->len] = '\0';
}

void thrift_w_init(struct thrift_w *w, struct buf *b)
{
    w->b = b;
    w->depth = 0;
    w->last[0] = 0;
}

static void field_header(struct thrift_w *w, int16_t id, uint8_t type)
{
    int delta = id - w->last[w->depth];
    if (delta > 0 && delta <= 15) {
        buf_putc(w->b, (char)((delta << 4) | type));
    } else {
        buf_putc(w->b, (char)type);
        thrift_put_uvarint(w->b, thrift_zigzag(id));
    }
    w->last[w->depth] = id;
}

void thrift_field_i32(struct thrift_w *w, int16_t id, int32_t v)
{
    field_header(w, id, THRIFT_I32);
    thrift_put_uvarint(w->b, thrift_zigzag(v));
}

void thrift_field_i64(struct thrift_w *w, int16_t id, int64_t v)
{
    field_header(w, id, THRIFT_I64);
    thrift_put_uvarint(w->b, thrift_zigzag(v));
}

void thrift_field_i16(struct thrift_w *w, int16_t id, int16_t v)
{
    field_header(w, id, THRIFT_I16);
    thrift_put_uvarint(w->b, thrift_zigzag(v));
}

void thrift_field_i8(struct thrift_w *w, int16_t id, int8_t v)
{
    field_header(w, id, THRIFT_I8);
    buf_putc(w->b, (char)v);
}

void thrift_field_bool(struct thrift_w *w, int16_t id, bool v)
{
    field_header(w, id, v ? THRIFT_TRUE : THRIFT_FALSE);
}

static void put_double(struct buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (char)(u >> (8 * i));
    buf_put(b, le, 8);
}

void thrift_field_double(struct thrift_w *w, int16_t id, double v)
{
    field_header(w, id, THRIFT_DOUBLE);
    put_double(w->b, v);
}

void thrift_field_binary(struct thrift_w *w, int16_t id, const void *p, size_t n)
{
    field_header(w, id, THRIFT_BINARY);
    thrift_elem_binary(w, p, n);
}

void thrift_field_string(struct thrift_w *w, int16_t id, const char *s)
{
    thrift_field_binary(w, id, s, strlen(s));
}

static void push(struct thrift_w *w)
{
    /* Nesting is fixed by our own metadata layouts; deeper would be a bug. */
    if (w->depth + 1 < THRIFT_MAX_DEPTH)
        w->depth++;
    w->last[w->depth] = 0;
}

void thrift_field_struct(struct thrift_w *w, int16_t id)
{
    field_header(w, id, THRIFT_STRUCT);
    push(w);
}

static void list_header(struct buf *b, uint8_t elem_type, uint32_t n)
{
    if (n <= 14) {
        buf_putc(b, (char)((n << 4) | elem_type));
    } else {
        buf_putc(b, (char)(0xF0 | elem_type));
        thrift_put_uvarint(b, n);
    }
}

void thrift_field_list(struct thrift_w *w, int16_t id, enum thrift_type elem_type, uint32_t n)
{
    field_header(w, id, THRIFT_LIST);
    list_header(w->b, (uint8_t)elem_type, n);
}

void thrift_elem_i32(struct thrift_w *w, int32_t v)
{
    thrift_put_uvarint(w->b, thrift_zigzag(v));
}

void thrift_elem_i64(struct thrift_w *w, int64_t v)
{
    thrift_put_uvarint(w->b, thrift_zigzag(v));
}

void thrift_elem_binary(struct thrift_w *w, const void *p, size_t n)
{
    thrift_put_uvarint(w->b, n);
    buf_put(w->b, p, n);
}

void thrift_elem_struct(struct thrift_w *w)
{
    push(w);
}

void thrift_struct_end(struct thrift_w *w)
{
    buf_putc(w->b, 0);
    if (w->depth > 0)
        w->depth--;
}

/* ---- decoding ------------------------------------------------------------ */

struct rd {
    const uint8_t *p, *end;
};

static int rd_uvarint(struct rd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return CDC_EINVAL;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return CDC_EINVAL;
}

static int rd_zigzag(struct rd *r, int64_t *out)
{
    uint64_t u;
    if (rd_uvarint(r, &u) < 0)
        return CDC_EINVAL;
    *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

static int read_value(struct rd *r, struct thrift_node *n, uint8_t type, int depth);

static int read_struct(struct rd *r, struct thrift_node *n, int depth)
{
    if (depth >= THRIFT_MAX_DEPTH)
        return CDC_EINVAL;
    n->type = THRIFT_STRUCT;
    uint32_t cap = 0;
    int16_t last = 0;
    for (;;) {
        if (r->p >= r->end)
            return CDC_EINVAL;
        uint8_t h = *r->p++;
        if (h == THRIFT_STOP)
            return 0;
        uint8_t type = h & 0x0f;
        int64_t id;
        if (h >> 4) {
            id = last + (h >> 4);
        } else if (rd_zigzag(r, &id) < 0) {
            return CDC_EINVAL;
        }
        if (id < INT16_MIN || id > INT16_MAX || type > THRIFT_STRUCT)
            return CDC_EINVAL;
        last = (int16_t)id;
        if (n->nkids == cap) {
            cap = cap ? cap * 2 : 4;
            n->kids = xrealloc(n->kids, cap * sizeof *n->kids);
        }
        struct thrift_node *k = &n->kids[n->nkids++];
        memset(k, 0, sizeof *k);
        k->id = (int16_t)id;
        if (type == THRIFT_TRUE || type == THRIFT_FALSE) {
            k->type = THRIFT_TRUE;
            k->i = type == THRIFT_TRUE;
            continue;
        }
        if (read_value(r, k, type, depth + 1) < 0)
            return CDC_EINVAL;
    }
}

/* Reads elements of a list/set (count n, one type) or map (2n values). */
static int read_elems(struct rd *r, struct thrift_node *n, uint64_t count, uint8_t t1, uint8_t t2,
                      int depth)
{
    /* Every element takes at least one byte: bounds the allocation. */
    if (count > (uint64_t)(r->end - r->p))
        return CDC_EINVAL;
    if (count == 0)
        return 0;
    n->kids = xcalloc(count, sizeof *n->kids);
    for (uint64_t i = 0; i < count; i++) {
        struct thrift_node *k = &n->kids[n->nkids++];
        uint8_t t = (t2 && (i & 1)) ? t2 : t1;
        if (t == THRIFT_TRUE || t == THRIFT_FALSE) {
            if (r->p >= r->end)
                return CDC_EINVAL;
            k->type = THRIFT_TRUE;
            k->i = *r->p++ == THRIFT_TRUE;
            continue;
        }
        if (read_value(r, k, t, depth + 1) < 0)
            return CDC_EINVAL;
    }
    return 0;
}

static int read_value(struct rd *r, struct thrift_node *n, uint8_t type, int depth)
{
    if (depth >= THRIFT_MAX_DEPTH)
        return CDC_EINVAL;
    n->type = type;
    switch (type) {
    case THRIFT_I8:
        if (r->p >= r->end)
            return CDC_EINVAL;
        n->i = (int8_t)*r->p++;
        return 0;
    case THRIFT_I16:
    case THRIFT_I32:
    case THRIFT_I64: {
        if (rd_zigzag(r, &n->i) < 0)
            return CDC_EINVAL;
        if (type == THRIFT_I16 && (n->i < INT16_MIN || n->i > INT16_MAX))
            return CDC_EINVAL;
        if (type == THRIFT_I32 && (n->i < INT32_MIN || n->i > INT32_MAX))
            return CDC_EINVAL;
        return 0;
    }
    case THRIFT_DOUBLE: {
        if (r->end - r->p < 8)
            return CDC_EINVAL;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u |= (uint64_t)r->p[i] << (8 * i);
        memcpy(&n->d, &u, 8);
        r->p += 8;
        return 0;
    }
    case THRIFT_BINARY: {
        uint64_t len;
        if (rd_uvarint(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
            return CDC_EINVAL;
        n->bin = r->p;
        n->len = (uint32_t)len;
        r->p += len;
        return 0;
    }
    case THRIFT_LIST:
    case THRIFT_SET: {
        if (r->p >= r->end)
            return CDC_EINVAL;
        uint8_t h = *r->p++;
        uint64_t count = h >> 4;
        n->elem_type = h & 0x0f;
        if (count == 15 && rd_uvarint(r, &count) < 0)
            return CDC_EINVAL;
        if (n->elem_type == THRIFT_STOP || n->elem_type > THRIFT_STRUCT)
            return CDC_EINVAL;
        return read_elems(r, n, count, n->elem_type, 0, depth);
    }
    case THRIFT_MAP: {
        uint64_t count;
        if (rd_uvarint(r, &count) < 0)
            return CDC_EINVAL;
        if (count == 0)
            return 0;
        if (r->p >= r->end)
            return CDC_EINVAL;
        uint8_t kv = *r->p++;
        n->elem_type = kv >> 4;
        n->val_type = kv & 0x0f;
        if (!n->elem_type || !n->val_type || n->elem_type > THRIFT_STRUCT ||
            n->val_type > THRIFT_STRUCT || count > UINT32_MAX / 2)
            return CDC_EINVAL;
        return read_elems(r, n, count * 2, n->elem_type, n->val_type, depth);
    }
    case THRIFT_STRUCT:
        return read_struct(r, n, depth);
    default:
        return CDC_EINVAL;
    }
}

int thrift_decode(const uint8_t *data, size_t len, struct thrift_node *root, size_t *used)
{
    memset(root, 0, sizeof *root);
    struct rd r = {data, data + len};
    if (read_struct(&r, root, 0) < 0) {
        thrift_node_fini(root);
        return CDC_EINVAL;
    }
    if (used)
        *used = (size_t)(r.p - data);
    return 0;
}

void thrift_node_fini(struct thrift_node *n)
{
    for (uint32_t i = 0; i < n->nkids; i++)
        thrift_node_fini(&n->kids[i]);
    free(n->kids);
    memset(n, 0, sizeof *n);
}

const struct thrift_node *thrift_get(const struct thrift_node *s, int16_t id)
{
    if (!s || s->type != THRIFT_STRUCT)
        return NULL;
    for (uint32_t i = 0; i < s->nkids; i++)
        if (s->kids[i].id == id)
            return &s->kids[i];
    return NULL;
}

static void encode_value(struct thrift_w *w, const struct thrift_node *n);

static void encode_elems(struct thrift_w *w, const struct thrift_node *n)
{
    for (uint32_t i = 0; i < n->nkids; i++) {
        const struct thrift_node *k = &n->kids[i];
        if (k->type == THRIFT_TRUE)
            buf_putc(w->b, k->i ? THRIFT_TRUE : THRIFT_FALSE);
        else if (k->type == THRIFT_STRUCT)
            encode_value(w, k);
        else
            encode_value(w, k);
    }
}

static void encode_fields(struct thrift_w *w, const struct thrift_node *s)
{
    for (uint32_t i = 0; i < s->nkids; i++) {
        const struct thrift_node *k = &s->kids[i];
        if (k->type == THRIFT_TRUE) {
            thrift_field_bool(w, k->id, k->i != 0);
            continue;
        }
        field_header(w, k->id, k->type);
        encode_value(w, k);
    }
}

/* Writes a value without its field header. */
static void encode_value(struct thrift_w *w, const struct thrift_node *n)
{
    switch (n->type) {
    case THRIFT_I8:
        buf_putc(w->b, (char)n->i);
        break;
    case THRIFT_I16:
    case THRIFT_I32:
    case THRIFT_I64:
        thrift_put_uvarint(w->b, thrift_zigzag(n->i));
        break;
    case THRIFT_DOUBLE:
        put_double(w->b, n->d);
        break;
    case THRIFT_BINARY:
        thrift_elem_binary(w, n->bin, n->len);
        break;
    case THRIFT_LIST:
    case THRIFT_SET:
        list_header(w->b, n->elem_type, n->nkids);
        encode_elems(w, n);
        break;
    case THRIFT_MAP:
        thrift_put_uvarint(w->b, n->nkids / 2);
        if (n->nkids) {
            buf_putc(w->b, (char)((n->elem_type << 4) | n->val_type));
            encode_elems(w, n);
        }
        break;
    case THRIFT_STRUCT:
        push(w);
        encode_fields(w, n);
        thrift_struct_end(w);
        break;
    default:
        break;
    }
}

void thrift_encode_node(struct buf *b, const struct thrift_node *root)
{
    struct thrift_w w;
    thrift_w_init(&w, b);
    encode_fields(&w, root);
    thrift_struct_end(&w);
}
