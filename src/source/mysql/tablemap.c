/* TABLE_MAP layout (MySQL sql/log_event.h, MariaDB the same):
 *   post-header: table_id(6) flags(2)
 *   body: db_len(1) db NUL table_len(1) table NUL
 *         column_count(lenenc) column_types(column_count)
 *         metadata_len(lenenc) metadata(metadata_len)
 *         null_bits((column_count + 7) / 8)
 *         optional metadata: { type(1) length(lenenc) value(length) } ... */
#include <stdlib.h>
#include <string.h>

#include "source/mysql/tablemap.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

int tablemap_peek_id(const struct binlog_format *fmt, const struct binlog_event *ev,
                     uint64_t *table_id)
{
    size_t pl = fmt->post_len[ev->h.type];
    if (pl == 6) {
        if (ev->body_len < 6)
            return CDC_EINVAL;
        *table_id = binlog_u32(ev->body);
        return 0;
    }
    if (ev->body_len < 8)
        return CDC_EINVAL;
    *table_id = binlog_u48(ev->body);
    return 0;
}

void tablemap_free(struct tablemap *tm)
{
    if (!tm)
        return;
    for (uint32_t i = 0; i < tm->ncols; i++)
        mycol_fini(&tm->cols[i]);
    free(tm->cols);
    free(tm->db);
    free(tm->table);
    free(tm->shape);
    free(tm);
}

/* A bounded reader over one event. */
struct rd {
    const uint8_t *p, *end;
};

static int rd_lenenc(struct rd *r, uint64_t *v)
{
    return binlog_lenenc(&r->p, r->end, v);
}

/* The per-type metadata in the TABLE_MAP's metadata block. */
static int read_type_meta(struct rd *r, struct mycol *c)
{
    size_t left = (size_t)(r->end - r->p);
    const uint8_t *m = r->p;
    switch (c->type) {
    case MYT_FLOAT:
    case MYT_DOUBLE:
        if (left < 1)
            return -1;
        c->pack_len = m[0];
        r->p += 1;
        return 0;
    case MYT_BLOB:
    case MYT_TINY_BLOB:
    case MYT_MEDIUM_BLOB:
    case MYT_LONG_BLOB:
    case MYT_GEOMETRY:
    case MYT_JSON:
        if (left < 1)
            return -1;
        c->len_bytes = m[0];
        r->p += 1;
        return c->len_bytes >= 1 && c->len_bytes <= 4 ? 0 : -1;
    case MYT_VARCHAR:
    case MYT_VAR_STRING:
        if (left < 2)
            return -1;
        c->length = binlog_u16(m);
        r->p += 2;
        return 0;
    case MYT_BIT:
        if (left < 2)
            return -1;
        c->bits = (uint16_t)(m[1] * 8 + m[0]); /* bits % 8, then whole bytes */
        r->p += 2;
        return m[0] < 8 ? 0 : -1;
    case MYT_NEWDECIMAL:
        if (left < 2)
            return -1;
        c->precision = m[0];
        c->scale = m[1];
        r->p += 2;
        return c->precision >= 1 && c->precision <= 65 && c->scale <= 30 && c->scale <= c->precision
                   ? 0
                   : -1;
    case MYT_STRING:
    case MYT_ENUM:
    case MYT_SET: {
        if (left < 2)
            return -1;
        /* byte0 is the real type, whose bits 4-5 carry the length's bits
         * 8-9 inverted when the length exceeds 255; byte1 the length's low
         * byte (the pack length for ENUM and SET). */
        unsigned b0 = m[0], b1 = m[1];
        r->p += 2;
        if ((b0 & 0x30) != 0x30) {
            c->length = (((b0 & 0x30) ^ 0x30) << 4) | b1;
            b0 |= 0x30;
        } else {
            c->length = b1;
        }
        if (b0 == MYT_ENUM || b0 == MYT_SET) {
            c->type = (uint8_t)b0;
            c->pack_len = (uint8_t)b1;
            c->length = 0;
            if (b0 == MYT_ENUM ? (b1 < 1 || b1 > 2) : (b1 < 1 || b1 > 8))
                return -1;
        } else if (b0 != MYT_STRING) {
            return -1;
        }
        return 0;
    }
    case MYT_TIME2:
    case MYT_DATETIME2:
    case MYT_TIMESTAMP2:
        if (left < 1)
            return -1;
        c->fsp = m[0];
        r->p += 1;
        return c->fsp <= 6 ? 0 : -1;
    default:
        return 0;
    }
}

/* Column i is the k-th column of its kind (numeric, character, enum/set):
 * the optional metadata lists per kind, in column order. */
static uint32_t nth_of_kind(const struct tablemap *tm, uint32_t k, int kind)
{
    for (uint32_t i = 0; i < tm->ncols; i++) {
        uint8_t t = tm->cols[i].type;
        int is = kind == 0   ? mytype_is_numeric(t)
                 : kind == 1 ? mytype_is_character(t)
                 : kind == 2 ? (t == MYT_ENUM || t == MYT_SET)
                 : kind == 3 ? t == MYT_ENUM
                 : kind == 4 ? t == MYT_SET
                             : t == MYT_GEOMETRY;
        if (is && k-- == 0)
            return i;
    }
    return UINT32_MAX;
}

enum { K_NUMERIC, K_CHAR, K_ENUMSET, K_ENUM, K_SET, K_GEOMETRY };

/* DEFAULT_CHARSET / ENUM_AND_SET_DEFAULT_CHARSET: a default collation, then
 * (index among the kind's columns, collation) pairs for the exceptions. */
static int read_default_charset(struct tablemap *tm, struct rd *r, int kind)
{
    uint64_t def, idx, coll;
    if (rd_lenenc(r, &def))
        return -1;
    for (uint32_t k = 0;; k++) {
        uint32_t i = nth_of_kind(tm, k, kind);
        if (i == UINT32_MAX)
            break;
        tm->cols[i].charset = (uint32_t)def;
    }
    while (r->p < r->end) {
        if (rd_lenenc(r, &idx) || rd_lenenc(r, &coll))
            return -1;
        uint32_t i = idx < UINT32_MAX ? nth_of_kind(tm, (uint32_t)idx, kind) : UINT32_MAX;
        if (i == UINT32_MAX)
            return -1;
        tm->cols[i].charset = (uint32_t)coll;
    }
    return 0;
}

/* COLUMN_CHARSET / ENUM_AND_SET_COLUMN_CHARSET: one collation per column. */
static int read_column_charset(struct tablemap *tm, struct rd *r, int kind)
{
    for (uint32_t k = 0; r->p < r->end; k++) {
        uint64_t coll;
        uint32_t i = nth_of_kind(tm, k, kind);
        if (i == UINT32_MAX || rd_lenenc(r, &coll))
            return -1;
        tm->cols[i].charset = (uint32_t)coll;
    }
    return 0;
}

/* Strings are kept raw here and converted once every charset is known. */
struct rawstr {
    const uint8_t *p;
    size_t n;
};

static int read_str_values(struct tablemap *tm, struct rd *r, int kind, struct rawstr **raw)
{
    for (uint32_t k = 0; r->p < r->end; k++) {
        uint32_t i = nth_of_kind(tm, k, kind);
        uint64_t count;
        if (i == UINT32_MAX || raw[i] || rd_lenenc(r, &count) || count > 65536)
            return -1;
        struct mycol *c = &tm->cols[i];
        c->nvalues = (uint32_t)count;
        c->values = xcalloc(count ? count : 1, sizeof *c->values);
        raw[i] = xcalloc(count ? count : 1, sizeof **raw);
        for (uint64_t v = 0; v < count; v++) {
            uint64_t len;
            if (rd_lenenc(r, &len) || len > (uint64_t)(r->end - r->p))
                return -1;
            raw[i][v].p = r->p;
            raw[i][v].n = (size_t)len;
            r->p += len;
        }
    }
    return 0;
}

static int read_optional(struct tablemap *tm, struct rd *all, struct rawstr **raw, char *err,
                         size_t errlen)
{
    while (all->p < all->end) {
        uint8_t type = *all->p++;
        uint64_t len;
        if (rd_lenenc(all, &len) || len > (uint64_t)(all->end - all->p))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "table map of %s.%s: optional metadata field %u overruns the event",
                            tm->db, tm->table, type);
        struct rd r = {all->p, all->p + len};
        all->p += len;
        int bad = 0;
        switch (type) {
        case TABLEMAP_SIGNEDNESS:
            for (uint32_t k = 0;; k++) {
                uint32_t i = nth_of_kind(tm, k, K_NUMERIC);
                if (i == UINT32_MAX)
                    break;
                if (k / 8 >= len) {
                    bad = 1;
                    break;
                }
                tm->cols[i].is_unsigned = (r.p[k / 8] & (0x80u >> (k % 8))) != 0;
            }
            break;
        case TABLEMAP_DEFAULT_CHARSET:
            bad = read_default_charset(tm, &r, K_CHAR);
            tm->have_charsets = true;
            break;
        case TABLEMAP_COLUMN_CHARSET:
            bad = read_column_charset(tm, &r, K_CHAR);
            tm->have_charsets = true;
            break;
        case TABLEMAP_ENUM_AND_SET_DEFAULT_CHARSET:
            bad = read_default_charset(tm, &r, K_ENUMSET);
            break;
        case TABLEMAP_ENUM_AND_SET_COLUMN_CHARSET:
            bad = read_column_charset(tm, &r, K_ENUMSET);
            break;
        case TABLEMAP_COLUMN_NAME:
            for (uint32_t i = 0; i < tm->ncols && !bad; i++) {
                uint64_t n;
                if (rd_lenenc(&r, &n) || n > (uint64_t)(r.end - r.p)) {
                    bad = 1;
                    break;
                }
                free(tm->cols[i].name);
                tm->cols[i].name = xstrndup((const char *)r.p, (size_t)n);
                r.p += n;
            }
            tm->have_names = !bad;
            break;
        case TABLEMAP_SET_STR_VALUE:
            bad = read_str_values(tm, &r, K_SET, raw);
            break;
        case TABLEMAP_ENUM_STR_VALUE:
            bad = read_str_values(tm, &r, K_ENUM, raw);
            break;
        case TABLEMAP_GEOMETRY_TYPE:
            for (uint32_t k = 0; r.p < r.end && !bad; k++) {
                uint64_t g;
                uint32_t i = nth_of_kind(tm, k, K_GEOMETRY);
                if (i == UINT32_MAX || rd_lenenc(&r, &g))
                    bad = 1;
                else
                    tm->cols[i].geometry = (uint32_t)g;
            }
            break;
        case TABLEMAP_SIMPLE_PRIMARY_KEY:
        case TABLEMAP_PRIMARY_KEY_WITH_PREFIX:
            while (r.p < r.end && !bad) {
                uint64_t idx, prefix;
                if (rd_lenenc(&r, &idx) || idx >= tm->ncols)
                    bad = 1;
                else if (type == TABLEMAP_PRIMARY_KEY_WITH_PREFIX && rd_lenenc(&r, &prefix))
                    bad = 1;
                else
                    tm->cols[idx].key = true;
            }
            break;
        default:
            break; /* newer fields (MySQL's COLUMN_VISIBILITY, ...) are skipped */
        }
        if (bad)
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "table map of %s.%s: malformed optional metadata field %u", tm->db,
                            tm->table, type);
    }
    return 0;
}

static int read_name(struct rd *r, char **out)
{
    if (r->p >= r->end)
        return -1;
    size_t n = *r->p++;
    if ((size_t)(r->end - r->p) < n + 1 || r->p[n] != '\0')
        return -1;
    *out = xstrndup((const char *)r->p, n);
    r->p += n + 1;
    return 0;
}

int tablemap_parse(const struct binlog_format *fmt, const struct binlog_event *ev,
                   struct mycharset_conv *cv, struct tablemap **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t pl = fmt->post_len[BINLOG_TABLE_MAP] ? fmt->post_len[BINLOG_TABLE_MAP] : 8;
    if (pl != 6 && pl != 8)
        return cdc_fail(err, errlen, CDC_EINVAL, "table map post-header of %zu bytes", pl);
    if (ev->body_len < pl)
        return cdc_fail(err, errlen, CDC_EINVAL, "table map event too short");
    struct tablemap *tm = xcalloc(1, sizeof *tm);
    struct rawstr **raw = NULL;
    int rc = CDC_EINVAL;
    tablemap_peek_id(fmt, ev, &tm->table_id);
    tm->flags = (uint16_t)binlog_u16(ev->body + pl - 2);
    tm->shape_len = ev->body_len - pl;
    tm->shape = xmalloc(tm->shape_len ? tm->shape_len : 1);
    memcpy(tm->shape, ev->body + pl, tm->shape_len);

    struct rd r = {ev->body + pl, ev->body + ev->body_len};
    uint64_t ncols, meta_len;
    if (read_name(&r, &tm->db) || read_name(&r, &tm->table)) {
        cdc_fail(err, errlen, CDC_EINVAL, "table map: bad database or table name");
        goto out;
    }
    if (rd_lenenc(&r, &ncols) || ncols == 0 || ncols > 4096 || ncols > (uint64_t)(r.end - r.p)) {
        cdc_fail(err, errlen, CDC_EINVAL, "table map of %s.%s: bad column count", tm->db,
                 tm->table);
        goto out;
    }
    tm->ncols = (uint32_t)ncols;
    tm->cols = xcalloc(tm->ncols, sizeof *tm->cols);
    raw = xcalloc(tm->ncols, sizeof *raw);
    for (uint32_t i = 0; i < tm->ncols; i++)
        tm->cols[i].type = r.p[i];
    r.p += tm->ncols;
    if (rd_lenenc(&r, &meta_len) || meta_len > (uint64_t)(r.end - r.p)) {
        cdc_fail(err, errlen, CDC_EINVAL, "table map of %s.%s: bad metadata length", tm->db,
                 tm->table);
        goto out;
    }
    struct rd meta = {r.p, r.p + meta_len};
    r.p += meta_len;
    for (uint32_t i = 0; i < tm->ncols; i++) {
        if (read_type_meta(&meta, &tm->cols[i]) != 0) {
            cdc_fail(err, errlen, CDC_EINVAL,
                     "table map of %s.%s: bad metadata for column %u (type %u)", tm->db, tm->table,
                     i + 1, tm->cols[i].type);
            goto out;
        }
    }
    size_t nb = (tm->ncols + 7) / 8;
    if ((size_t)(r.end - r.p) < nb) {
        cdc_fail(err, errlen, CDC_EINVAL, "table map of %s.%s: no null bitmap", tm->db, tm->table);
        goto out;
    }
    for (uint32_t i = 0; i < tm->ncols; i++)
        tm->cols[i].nullable = (r.p[i / 8] >> (i % 8)) & 1;
    r.p += nb;
    rc = read_optional(tm, &r, raw, err, errlen);
    if (rc)
        goto out;
    /* ENUM/SET strings in UTF-8, now that their charsets are known. */
    for (uint32_t i = 0; i < tm->ncols; i++) {
        struct mycol *c = &tm->cols[i];
        if (!raw[i])
            continue;
        for (uint32_t v = 0; v < c->nvalues; v++) {
            struct buf b = BUF_INIT;
            if (mycharset_to_utf8(cv, c->charset ? c->charset : 45, (const char *)raw[i][v].p,
                                  raw[i][v].n, &b) != 0)
                buf_put(&b, raw[i][v].p, raw[i][v].n);
            buf_putc(&b, '\0');
            c->values[v] = b.p;
        }
    }
    for (uint32_t i = 0; i < tm->ncols; i++) {
        if (!tm->cols[i].name)
            tm->cols[i].name = xasprintf("@%u", i + 1);
        tm->nkeys += tm->cols[i].key;
    }
    rc = 0;
out:
    if (raw) {
        for (uint32_t i = 0; i < tm->ncols; i++)
            free(raw[i]);
        free(raw);
    }
    if (rc) {
        tablemap_free(tm);
        return rc;
    }
    *out = tm;
    return 0;
}
